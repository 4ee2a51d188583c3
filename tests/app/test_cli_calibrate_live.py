"""``emgpilot calibrate --live``: a silent or lost device is one clear error (never a hang), a
poor session is saved with a warning, and the options fit the chosen kind of session."""

from __future__ import annotations

import json

import pytest

from emgpilot.app.cli import CLIError, main
from emgpilot.app.commands.calibrate import POOR_SPLIT_HALF, min_hold_s, run_cues
from emgpilot.app.gui.cues import CuePlan
from emgpilot.classifiers.calibration import load_calibration
from tests.standins import StandInMyo


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 0.5  # every look costs half a second: no sleeping
        return self.t


PLAN = CuePlan(gestures=("fist", "wave_down", "wave_up"), repetitions=1, cue_s=3.0, rest_s=1.0, random_order=False)


def test_no_data_within_the_connect_timeout_is_one_line_with_the_device_status(capsys):
    device = StandInMyo()
    with pytest.raises(CLIError) as e:
        run_cues(device, PLAN, what="the Myo", connect_timeout_s=2.0, stall_s=5.0, clock=FakeClock())
    assert str(e.value) == "no data within 2 s (myo: error: cannot open /dev/x): nothing saved"
    assert device.stopped


def test_a_device_that_stops_mid_session_is_an_error_naming_when(capsys):
    device = StandInMyo(chunks=42, status=("connected", "Fake Myo"), t0=100.0)  # 4.2 s of data, then silence
    with pytest.raises(CLIError) as e:
        run_cues(device, PLAN, what="the Myo", connect_timeout_s=30.0, stall_s=5.0, clock=FakeClock())
    assert (
        str(e.value) == "the Myo stopped sending data at 4.1 s of the session (myo: connected: Fake Myo): nothing saved"
    )
    assert "FIST" in capsys.readouterr().out  # the cues went on while data came
    assert device.stopped


def test_a_wrong_port_ends_the_live_calibration_with_the_reason(tmp_path, capsys):
    out = tmp_path / "c.json"
    argv = ["calibrate", "--live", "myo", "--port", "/dev/null", "--reps", "1", "--hold", "3", "--rest", "1"]
    assert main([*argv, "--connect-timeout", "0.2", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no data within 0.2 s (myo: error: cannot open /dev/null: not a serial port" in err
    assert err.endswith("nothing saved") and not out.exists()


def test_a_poor_calibration_is_saved_with_a_warning(tmp_path, capsys, monkeypatch):
    from emgpilot.classifiers import calibration

    out = tmp_path / "me.json"
    assert main(["calibrate", "--synthetic", "2", "--out", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err  # a wearer who followed the cues
    monkeypatch.setattr(calibration, "split_half_accuracy", lambda *a: POOR_SPLIT_HALF - 0.01)
    assert main(["calibrate", "--synthetic", "2", "--out", str(out), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["split_half_accuracy"] < POOR_SPLIT_HALF
    assert "warning: only 59 % of the session's windows are told apart" in captured.err
    assert "cues were probably not followed or the band moved" in captured.err and "calibrate again" in captured.err
    assert load_calibration(out).classes  # saved all the same: the user asked for it


def test_the_shortest_hold_gives_each_gesture_its_settled_windows():
    assert min_hold_s(5, 40) == 1.4 and min_hold_s(1, 40) == 2.2
    assert min_hold_s(20, 40) == 1.3  # one window a hold: the settling second plus one 0.2 s window


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--live", "synthetic", "--rest", "-1"], "argument --rest: must be a number above 0, not -1"),
        (["--live", "synthetic", "--hold", "0"], "argument --hold: must be a number above 0"),
        (["--live", "myo", "--connect-timeout", "0"], "argument --connect-timeout: must be a number above 0"),
    ],
)
def test_live_numbers_are_argparse_errors(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["calibrate", *argv, "--out", str(tmp_path / "x.json")])
    assert e.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--live", "synthetic", "--hold", "1"], "--hold 1: too short for 5 hold(s) of each gesture"),
        (["--live", "synthetic", "--hold", "2", "--reps", "1"], "give --hold 2.2 or more"),
        (
            ["--synthetic", "1", "--reps", "3", "--port", "x", "--session", "2"],
            "not used with --synthetic SEED: --session (for a recording/dataset file), "
            "--reps (for --live synthetic / --live myo), --port (for --live myo)",
        ),
        (["--live", "synthetic", "--port", "x"], "not used with --live synthetic: --port (for --live myo)"),
        (["--live", "synthetic", "--connect-timeout", "3"], "--connect-timeout (for --live myo)"),
        (["--live", "myo", "--seed", "2"], "not used with --live myo: --seed (for --live synthetic)"),
    ],
)
def test_options_the_session_cannot_use_are_refused(argv, message, tmp_path, capsys):
    out = tmp_path / "x.json"
    assert main(["calibrate", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists()
