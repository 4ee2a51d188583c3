"""A window whose live device sends nothing: a screenshot run ends with the device status (no
picture), the open window says why in its status bar; time-limit options need --screenshot."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from emgpilot.app.cli import CLIError, main
from emgpilot.app.commands import gui as gui_cmd
from emgpilot.app.gui import session as session_mod
from emgpilot.app.gui.session import SessionSpec
from tests.app.test_gui import WAIT_MS, make_window, no_leaks  # noqa: F401 (a fixture)
from tests.standins import StandInMyo


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 1.0  # every look at the clock costs a second: no waiting 30 s
        return self.t


def live_spec() -> SessionSpec:
    return SessionSpec(source="myo", myo_port="/dev/x", drone="none", demo_idle=False, duration_s=2.0)


def screenshot_after_5_s_without_data(shot):
    gui_cmd.launch(
        live_spec(),
        screenshot=str(shot),
        settings=str(shot.with_suffix(".toml")),
        connect_timeout_s=5.0,
        clock=FakeClock(),
    )


@pytest.mark.usefixtures("no_leaks")
def test_a_screenshot_without_data_fails_with_the_device_status(monkeypatch, tmp_path):
    monkeypatch.setattr(session_mod, "open_device", lambda spec: StandInMyo(idle_wait_s=0.02))
    shot = tmp_path / "m.png"
    with pytest.raises(CLIError) as e:
        screenshot_after_5_s_without_data(shot)
    assert str(e.value) == "no data within 5 s (myo: error: cannot open /dev/x): no screenshot written"
    assert not shot.exists()


@pytest.mark.usefixtures("no_leaks")
def test_a_screenshot_whose_source_stops_fails_saying_when(monkeypatch, tmp_path):
    monkeypatch.setattr(
        session_mod, "open_device", lambda spec: StandInMyo(chunks=5, status=("lost", "unplugged"), idle_wait_s=0.02)
    )
    shot = tmp_path / "m.png"
    with pytest.raises(CLIError) as e:
        screenshot_after_5_s_without_data(shot)
    assert str(e.value).startswith("the source stopped sending data at 0.5 s (nothing for 5 s; myo: lost: unplugged)")
    assert not shot.exists()


@pytest.mark.usefixtures("no_leaks")
def test_the_open_window_shows_why_no_data_comes(monkeypatch, qtbot, tmp_path):
    monkeypatch.setattr(session_mod, "open_device", lambda spec: StandInMyo(idle_wait_s=0.02))
    spec = live_spec()
    spec.duration_s = None
    win = make_window(qtbot, tmp_path, spec)
    qtbot.waitUntil(lambda: "no data yet (myo: error: cannot open /dev/x)" in win.status_label.text(), timeout=WAIT_MS)


def test_a_screenshot_in_a_missing_folder_is_refused_not_created(tmp_path, capsys):
    shot = tmp_path / "nope" / "a.png"
    assert main(["gui", "--demo", "--screenshot", str(shot)]) == 2
    assert f"--screenshot {shot}: no folder {shot.parent}" in capsys.readouterr().err
    assert not shot.parent.exists()
