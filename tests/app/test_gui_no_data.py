"""A window whose live device sends nothing: a screenshot run ends with the device status (no
picture), the open window says why in its status bar; time-limit options need --screenshot."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from emgpilot.app.cli import CLIError, main
from emgpilot.app.commands import gui as gui_cmd
from emgpilot.app.gui import session as session_mod
from emgpilot.app.gui.session import SessionSpec
from emgpilot.signals.streams import EVENT_STREAMS, FOREARM_EMG, Chunk, Message, StatusEvent
from tests.app.test_gui import WAIT_MS, make_window, no_leaks  # noqa: F401 (a fixture)


class StandInMyo:
    """A live Myo on a wrong port (or lost): one status, ``chunks`` reads of 0.1 s of EMG, then nothing."""

    name = "myo"

    def __init__(self, chunks: int = 0, status: tuple[str, str] = ("error", "cannot open /dev/x")) -> None:
        self._status = [StatusEvent(t=0.0, device="myo", status=status[0], detail=status[1])]
        self._chunks = chunks
        self._t = 0.0
        self._idle = threading.Event()  # never set: a read waits as a real driver's queue does

    def streams(self) -> list:
        return [FOREARM_EMG, EVENT_STREAMS["status"]]

    def info(self) -> dict[str, Any]:
        return {}

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    @property
    def finished(self) -> bool:
        return False

    def read(self, timeout: float | None = None) -> list[Message]:
        out: list[Message] = [*self._status]
        self._status = []
        if self._chunks > 0:
            self._chunks -= 1
            t = self._t + np.arange(20) / 200.0
            self._t += 0.1
            out.append(Chunk(FOREARM_EMG, t, np.zeros((20, 8), np.float32)))
        elif not out:
            self._idle.wait(min(timeout or 0.0, 0.02))
        return out


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 1.0  # every look at the clock costs a second: no waiting 30 s
        return self.t


def live_spec() -> SessionSpec:
    return SessionSpec(source="myo", myo_port="/dev/x", drone="none", demo_idle=False, duration_s=2.0)


@pytest.mark.usefixtures("no_leaks")
def test_a_screenshot_without_data_fails_with_the_device_status(monkeypatch, tmp_path):
    monkeypatch.setattr(session_mod, "open_device", lambda spec: StandInMyo())
    shot = tmp_path / "m.png"
    with pytest.raises(CLIError) as e:
        gui_cmd.launch(
            live_spec(),
            screenshot=str(shot),
            settings=str(tmp_path / "s.toml"),
            connect_timeout_s=5.0,
            clock=FakeClock(),
        )
    assert str(e.value) == "no data within 5 s (myo: error: cannot open /dev/x): no screenshot written"
    assert not shot.exists()


@pytest.mark.usefixtures("no_leaks")
def test_a_screenshot_whose_source_stops_fails_saying_when(monkeypatch, tmp_path):
    monkeypatch.setattr(session_mod, "open_device", lambda spec: StandInMyo(chunks=5, status=("lost", "unplugged")))
    shot = tmp_path / "m.png"
    with pytest.raises(CLIError) as e:
        gui_cmd.launch(
            live_spec(),
            screenshot=str(shot),
            settings=str(tmp_path / "s.toml"),
            connect_timeout_s=5.0,
            clock=FakeClock(),
        )
    assert str(e.value).startswith("the source stopped sending data at 0.5 s (nothing for 5 s; myo: lost: unplugged)")
    assert not shot.exists()


@pytest.mark.usefixtures("no_leaks")
def test_the_open_window_shows_why_no_data_comes(monkeypatch, qtbot, tmp_path):
    monkeypatch.setattr(session_mod, "open_device", lambda spec: StandInMyo())
    spec = live_spec()
    spec.duration_s = None
    win = make_window(qtbot, tmp_path, spec)
    qtbot.waitUntil(lambda: "no data yet (myo: error: cannot open /dev/x)" in win.status_label.text(), timeout=WAIT_MS)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--demo", "--seconds", "2"], "--seconds is for --screenshot (the window runs until you close it)"),
        (["--source", "myo", "--connect-timeout", "3"], "--connect-timeout is for --screenshot"),
        (["--demo", "--connect-timeout", "0", "--screenshot", "x.png"], "argument --connect-timeout"),
    ],
)
def test_time_limits_are_for_screenshots(argv, message, capsys):
    try:
        code = main(["gui", *argv])
    except SystemExit as e:  # argparse's own usage errors exit
        code = e.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_a_screenshot_in_a_missing_folder_is_refused_not_created(tmp_path, capsys):
    shot = tmp_path / "nope" / "a.png"
    assert main(["gui", "--demo", "--screenshot", str(shot)]) == 2
    assert f"--screenshot {shot}: no folder {shot.parent}" in capsys.readouterr().err
    assert not shot.parent.exists()
