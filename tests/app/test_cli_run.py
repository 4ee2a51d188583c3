"""``emgpilot run`` (headless) and ``record``: argument checks, summaries, device problems, files kept."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from emgpilot.app.cli import build_parser, main
from emgpilot.signals.recording import open_recording

FAST = ["run", "--headless", "--duration", "1", "--speed", "max"]


@pytest.fixture
def data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["run", "--headless", "--seed", "-3", "--duration", "1"], "--seed"),
        (["run", "--headless", "--duration", "-5"], "--duration"),
        (["run", "--headless", "--duration", "0"], "--duration"),
        (["record", "--source", "synthetic", "--seed", "-1", "--duration", "1", "-o", "x.mcap"], "--seed"),
        (["record", "--source", "synthetic", "--duration", "-1", "-o", "x.mcap"], "--duration"),
        (["fake-device", "myo", "--seed", "-1"], "--seed"),
        (["fake-device", "myoware-csv", "--channels", "0"], "--channels"),
    ],
)
def test_bad_numbers_are_usage_errors(argv, option, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and "Traceback" not in err


def test_fake_board_and_drivers_agree_on_adc_bits():
    parser = build_parser()
    fake = parser.parse_args(["fake-device", "myoware-binary"])
    record = parser.parse_args(["record", "--duration", "1", "-o", "x.mcap"])
    run = parser.parse_args(["run"])
    assert fake.bits == record.upper_arm_bits == run.upper_arm_bits == 10


def test_fake_device_with_an_impossible_link_is_one_line(tmp_path, capsys):
    link = tmp_path / "no-such-folder" / "ttyX"
    assert main(["fake-device", "myo", "--link", str(link), "--duration", "0.1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(link) in err and "No such file" in err


def test_recording_is_another_name_for_replay(tmp_path, capsys):
    rec = tmp_path / "r.mcap"
    assert main([*FAST, "--record", str(rec)]) == 0
    capsys.readouterr()
    assert main(["run", "--headless", "--source", "recording", "--recording", str(rec), "--speed", "max"]) == 0
    assert capsys.readouterr().out.startswith("replay:")


def test_takeoff_without_a_drone_is_an_error(capsys):
    assert main([*FAST, "--takeoff"]) == 2
    assert "--takeoff needs a drone" in capsys.readouterr().err


def test_an_existing_recording_is_never_overwritten_by_default(tmp_path, capsys):
    rec = tmp_path / "precious.mcap"
    rec.write_bytes(b"keep me")
    for argv in ([*FAST, "--record", str(rec)], ["record", "--source", "synthetic", "--duration", "1", "-o", str(rec)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "already exists" in err and "--overwrite" in err
        assert rec.read_bytes() == b"keep me"
    assert main([*FAST, "--record", str(rec), "--overwrite"]) == 0
    assert open_recording(rec).chunk("forearm_emg") is not None


def test_command_line_takeoff_is_stamped_in_data_time(tmp_path, capsys):
    rec = tmp_path / "s.mcap"
    fly = ["run", "--headless", "--duration", "4", "--speed", "max", "--drone", "sim", "--takeoff"]
    code = main([*fly, "--record", str(rec)])
    assert code == 0
    out = capsys.readouterr().out
    drone = [line for line in out.splitlines() if line.startswith("drone sim:")]
    assert len(drone) == 1 and "commands sent (take-off, landing" in drone[0] and "/6 hoops" in drone[0]
    assert not drone[0].startswith("drone sim: 0 commands")  # the take-off and landing went out
    assert main(["info", str(rec), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert math.isfinite(info["duration_s"]) and info["duration_s"] == pytest.approx(4.0, abs=0.05)


def test_a_wrong_port_is_a_clear_error_not_a_hang(tmp_path, capsys):
    rec = tmp_path / "r.mcap"
    live = ["--source", "myo", "--port", "/dev/null", "--duration", "3", "--connect-timeout", "0.3"]
    assert main(["run", "--headless", *live]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no data within 0.3 s" in err and "myo: error: cannot open /dev/null: not a serial port" in err
    assert "{" not in err  # no Python dict
    assert main(["record", *live, "-o", str(rec)]) == 2
    err = capsys.readouterr().err
    assert "not a serial port" in err and "not written" in err and "{" not in err
    assert not rec.exists()


def test_a_device_in_error_is_reported_and_the_wearer_told(data_home, tmp_path, capsys):
    """The Myo streams (fake dongle); the upper-arm port is no serial port: said, not swallowed."""
    from emgpilot.signals.fakes import FakeMyoDongle

    myo = FakeMyoDongle(link=tmp_path / "ttyMyo")
    myo.start()
    rec = tmp_path / "r.mcap"
    live = ["--source", "myo", "--port", myo.path, "--upper-arm-port", "/dev/null", "--duration", "1"]
    try:
        run_code = main(["run", "--headless", *live, "--wearer", "ana"])
        run_out, run_err = capsys.readouterr()
        record_code = main(["record", *live, "-o", str(rec)])
        record_out, record_err = capsys.readouterr()
    finally:
        myo.stop()
    assert run_code == 0
    assert "wearer ana: armband rotation not updated: only" in run_out
    assert "warning: myoware: error: cannot open /dev/null: not a serial port" in run_err
    assert "warning: no samples from upper_emg" in run_err
    # a recording that lacks a requested sensor failed, even though the Myo part is kept
    assert record_code == 1 and rec.exists()
    assert "warning: no samples from upper_emg" in record_err
    device_line = next(line for line in record_out.splitlines() if line.startswith("  device: "))
    assert "{" not in device_line and '"' not in device_line  # readable counters, not JSON


def test_replaying_an_armband_the_recogniser_cannot_read_is_one_line(tmp_path, capsys):
    # A 10-electrode armband (the 3DC set, imported): the wrist network needs a Myo's 8.
    import numpy as np

    from emgpilot.signals.recording import RecordingWriter
    from emgpilot.signals.streams import FOREARM_EMG, Chunk, StreamInfo

    ten = StreamInfo(FOREARM_EMG.name, "emg", 200.0, tuple(f"ch{i}" for i in range(10)), ("counts",) * 10)
    path = tmp_path / "ten.mcap"
    with RecordingWriter(path, streams=[ten], background_flush=False) as writer:
        writer.write([Chunk(ten, np.arange(400) / 200.0, np.zeros((400, 10)))])
    assert main(["run", "--headless", "--source", "replay", "--recording", str(path), "--speed", "max"]) == 2
    err = capsys.readouterr().err
    assert "needs 8 forearm electrodes" in err and "has 10" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--legacy-discovery"], "--legacy-discovery is for --drone bebop"),
        (["--drone", "bebop", "--handshake-port", "44444"], "only used with --legacy-discovery"),
    ],
)
def test_legacy_discovery_options_need_a_bebop(extra, says, capsys):
    assert main([*FAST, *extra]) == 2
    assert says in capsys.readouterr().err


SAMPLE = str(Path(__file__).parents[2] / "emgpilot" / "recordings" / "myo_readings_right_10000_s1.mcap")


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--source", "synthetic", "--recording", "r.mcap"], "--recording is replayed with --source replay"),
        (["--source", "myo", "--recording", "r.mcap"], "--recording is replayed with --source replay"),
        (["--ip", "10.0.0.1"], "--ip is for --drone bebop, not --drone none"),
        (["--drone", "sim", "--ip", "10.0.0.1"], "--ip is for --drone bebop, not --drone sim"),
        (["--discovery-port", "1"], "--discovery-port is for --drone bebop"),
        (["--port", "/dev/ttyACM0"], "--port is for the live devices (--source myo)"),
        (["--upper-arm-port", "/dev/ttyACM0"], "--upper-arm-port is for the live devices"),
        (["--mapping", "m.toml"], "--mapping maps gestures to drone commands: it needs --drone"),
        (["--source", "replay", "--recording", "r.mcap", "--seed", "3"], "--seed is for the synthetic arm"),
    ],
)
def test_options_the_session_would_ignore_are_refused(extra, says, capsys):
    assert main([*FAST, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err


def test_recording_alone_means_a_replay_of_it(capsys):
    assert main([*FAST, "--recording", SAMPLE]) == 0
    assert capsys.readouterr().out.startswith("replay:")


def test_the_gui_gets_the_same_checks_and_settled_defaults(monkeypatch, capsys):
    from emgpilot.app.commands import COMMAND_MODULES

    if "gui" not in COMMAND_MODULES:
        pytest.skip("no GUI in this build")
    from emgpilot.app.commands import gui

    handed: list = []
    monkeypatch.setattr(gui, "run_gui_from_run_args", lambda args: handed.append(args) or 0)
    assert main(["run", "--recording", SAMPLE]) == 0
    assert handed[-1].source == "replay" and handed[-1].ip == "192.168.42.1" and handed[-1].seed == 0
    assert main(["run", "--source", "replay", "--recording", SAMPLE, "--seed", "2"]) == 2
    assert "--seed is for the synthetic arm" in capsys.readouterr().err
    # the window flies the simulator even without --drone: a mapping is for it
    assert main(["run", "--mapping", "m.toml"]) == 0
    assert handed[-1].mapping == "m.toml" and len(handed) == 2
    assert main(["run", "--drone", "bebop", "--ip", "127.0.0.1"]) == 0
    assert handed[-1].ip == "127.0.0.1"


@pytest.mark.parametrize(
    ("extra", "option"),
    [
        (["--source", "myo", "--port", "none", "--upper-arm-protocol", "binary"], "--upper-arm-protocol"),
        (["--source", "myo", "--port", "none", "--connect-timeout", "5"], "--connect-timeout"),
        (["--drone", "bebop", "--ip", "127.0.0.1", "--discovery-port", "45000"], "--discovery-port"),
        (["--drone", "bebop", "--legacy-discovery"], "--legacy-discovery"),
        (["--json"], "--json"),
    ],
)
def test_options_the_window_would_drop_are_refused_without_headless(extra, option, capsys, monkeypatch):
    import emgpilot.app.commands.gui as gui

    monkeypatch.setattr(gui, "run_gui_from_run_args", lambda args: pytest.fail("the window opened"))
    assert main(["run", *extra]) == 2
    err = capsys.readouterr().err
    assert "not used by the window; add --headless" in err and option in err


def test_overwrite_in_the_window_keeps_the_old_recording_unless_the_new_one_has_data(tmp_path, capsys, monkeypatch):
    import emgpilot.app.commands.gui as gui

    old = tmp_path / "old.mcap"
    assert main([*FAST, "--record", str(old)]) == 0  # a real recording to keep
    before = old.read_bytes()
    # a window that records nothing: the old file is back
    monkeypatch.setattr(gui, "run_gui_from_run_args", lambda args: 0)
    assert main(["run", "--record", str(old), "--overwrite"]) == 0
    assert old.read_bytes() == before and not (tmp_path / "old.mcap.replaced").exists()
    # a window that records: the new file stays, the old one is gone
    longer = ["run", "--headless", "--duration", "2", "--speed", "max"]
    monkeypatch.setattr(gui, "run_gui_from_run_args", lambda args: main([*longer, "--record", args.record]))
    assert main(["run", "--record", str(old), "--overwrite"]) == 0
    assert old.exists() and old.read_bytes() != before and not (tmp_path / "old.mcap.replaced").exists()
