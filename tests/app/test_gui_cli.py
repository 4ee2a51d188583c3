"""``emgpilot gui`` from the command line: Ctrl-C / SIGTERM close the window in order, a replay
honours --seconds, option errors name the option, a screenshot fails early with the reason."""

from __future__ import annotations

import math
import signal
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from emgpilot.app.gui.interrupt import CloseOnSignals
from emgpilot.app.gui.replay import ReplaySource
from tests.app.test_gui import WAIT_MS, fast_demo, make_window, no_leaks  # noqa: F401 (a fixture)

SAMPLE = Path(__file__).parents[2] / "emgpilot" / "recordings" / "myo_readings_right_10000_s1.mcap"


@pytest.mark.usefixtures("no_leaks")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_closes_the_window_and_finishes_the_recording(qtbot, tmp_path, signum):
    """The handler is called directly (no signal reaches pytest): it posts the same close as the
    window's close button, so the session closes and the recording gets its end."""
    from emgpilot.signals.recording import open_recording

    spec = fast_demo(seed=1)
    spec.record = str(tmp_path / "run.mcap")
    win = make_window(qtbot, tmp_path, spec)
    before = signal.getsignal(signum)
    with CloseOnSignals(win) as closer:
        assert signal.getsignal(signum) == closer.handle
        qtbot.waitUntil(lambda: win.store.t_latest > 1.0, timeout=WAIT_MS)
        closer.handle(signum, None)
        qtbot.waitUntil(lambda: not win.isVisible(), timeout=WAIT_MS)
        assert closer.received == signum
    assert signal.getsignal(signum) == before  # the previous handler is back
    rec = open_recording(tmp_path / "run.mcap")
    assert not rec.warnings, rec.warnings  # closed properly: no recovery needed
    assert rec.duration_s > 0.5


def test_a_replay_stops_after_duration_s():
    """`gui --source recording --seconds 2 --screenshot`: only the first 2 data seconds are replayed."""
    src = ReplaySource(SAMPLE, speed=math.inf, duration_s=2.0)
    assert src.duration_s == pytest.approx(2.0)
    src.start()
    n = 0
    while not src.finished:
        n += len(src.read(0.0))
    assert n > 0
    assert src.position - src.t_first == pytest.approx(2.0, abs=0.05)
    whole = ReplaySource(SAMPLE, speed=math.inf)
    assert whole.duration_s > 5.0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--demo", "--seed", "-1"], "argument --seed: must be 0 or more"),
        (["--demo", "--seconds", "0", "--screenshot", "x.png"], "argument --seconds"),
        (["--demo", "--wearer", "bob"], "--wearer is for live sessions"),
        (["--source", "replay", "--wearer", "bob", "--recording", str(SAMPLE)], "not --source recording"),
        (["--screenshot", "/proc/emgpilot-test.png"], "--screenshot /proc/emgpilot-test.png: cannot write it"),
        (["--screenshot", "shot.txt"], "give a .png"),
        # time limits are for screenshots: an open window runs until it is closed
        (["--demo", "--seconds", "2"], "--seconds is for --screenshot (the window runs until you close it)"),
        (["--source", "myo", "--connect-timeout", "3"], "--connect-timeout is for --screenshot"),
        (["--demo", "--connect-timeout", "0", "--screenshot", "x.png"], "argument --connect-timeout"),
    ],
)
def test_option_errors_name_the_option(capsys, argv, message):
    from emgpilot.app.cli import main

    try:
        code = main(["gui", *argv])
    except SystemExit as e:  # argparse's own usage errors exit
        code = e.code
    assert code == 2
    assert message in capsys.readouterr().err


def test_replay_is_another_name_for_recording(monkeypatch, tmp_path):
    from emgpilot.app import cli
    from emgpilot.app.commands import gui as gui_cmd

    opened = []
    monkeypatch.setattr(gui_cmd, "launch", lambda spec, **kw: opened.append(spec) or 0)
    argv = ["gui", "--source", "replay", "--recording", str(SAMPLE), "--screenshot", str(tmp_path / "s.png")]
    assert cli.main([*argv, "--seconds", "4"]) == 0
    assert opened[-1].source == "recording" and opened[-1].duration_s == 4.0
    assert not (tmp_path / "s.png").exists()  # the up-front write check leaves nothing behind


@pytest.mark.usefixtures("no_leaks")
def test_a_session_that_does_not_open_says_why(qtbot, tmp_path, capsys):
    from emgpilot.app.cli import main

    bad = tmp_path / "bad.mcap"
    bad.write_text("not a recording")
    shot = tmp_path / "shot.png"
    argv = ["gui", "--source", "recording", "--recording", str(bad), "--screenshot", str(shot)]
    assert main([*argv, "--settings", str(tmp_path / "s.toml")]) == 2
    err = capsys.readouterr().err
    assert "the session did not open: cannot open recording:" in err and "bad.mcap" in err
    assert "WARNING" not in err
    assert not (tmp_path / "s.toml").exists()  # a screenshot run leaves the user's settings alone
