"""``emgpilot calibrate`` and how a wearer's calibration reaches a session."""

from __future__ import annotations

import json

import pytest

from emgpilot.app.cli import main
from emgpilot.build import PipelineConfig
from emgpilot.classifiers.calibration import load_calibration
from emgpilot.recordings import sample_path
from emgpilot.wearer import ProfileError, apply_profile, calibration_path, load_profile


def test_calibrate_a_wearer_then_list_use_and_forget_it(tmp_path, capsys):
    assert main(["calibrate", "--synthetic", "4", "--wearer", "ana", "--dir", str(tmp_path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["classes"] == ["rest", "fist", "wrist_flexion", "wrist_extension"]
    assert result["split_half_accuracy"] > 0.9 and result["arm"] == "right"
    cal = load_calibration(calibration_path("ana", tmp_path))
    profile = load_profile("ana", tmp_path)
    assert profile.arm == "right" and profile.wrist_rotation == cal.rotation
    cfg = apply_profile(PipelineConfig(), profile, tmp_path)
    assert cfg.recognition.wrist_calibration == str(calibration_path("ana", tmp_path))
    assert cfg.recognition.wrist_rotation_prior == cal.rotation and cfg.recognition.wrist_invariant_windows == 0

    assert main(["wearers", "--dir", str(tmp_path), "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)["wearers"]
    assert listed["name"] == "ana" and listed["calibrated"] is True

    calibration_path("ana", tmp_path).write_text("{", encoding="utf-8")
    with pytest.raises(ProfileError, match="calibrate again"):
        apply_profile(PipelineConfig(), profile, tmp_path)
    assert main(["wearers", "--dir", str(tmp_path), "--forget", "ana"]) == 0
    assert not calibration_path("ana", tmp_path).exists() and not (tmp_path / "ana.json").exists()


def test_calibrate_from_the_shipped_real_recording_to_a_file(tmp_path, capsys):
    out = tmp_path / "me.json"
    assert main(["calibrate", str(sample_path()), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "calibration saved" in text and "wrist_calibration" in text
    cal = load_calibration(out)
    # the myo-readings session cues wrist flexion/extension, radial/ulnar deviation and fist
    assert {"rest", "fist", "wrist_flexion", "wrist_extension", "radial_deviation"} <= set(cal.classes)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["calibrate", "--wearer", "ana"], "give one cued session"),
        (["calibrate", "missing.mcap", "--out", "x.json"], "missing.mcap"),
        (["calibrate", "--synthetic", "1", "--wearer", "../x"], "wearer name"),
        (["calibrate", "SAMPLE", "--session", "2", "--out", "x.json"], "holds 1 session"),
    ],
)
def test_calibrate_usage_errors_are_clear(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = [str(sample_path()) if a == "SAMPLE" else a for a in argv]
    assert main([*argv, "--dir", str(tmp_path)] if "--wearer" in argv else argv) != 0
    assert message in capsys.readouterr().err


def test_a_session_without_gesture_cues_cannot_calibrate(tmp_path, capsys):
    rec = tmp_path / "rest.mcap"
    assert main(["record", "--source", "synthetic", "--seed", "2", "--duration", "3", "-o", str(rec)]) == 0
    capsys.readouterr()
    assert main(["calibrate", str(rec), "--out", str(tmp_path / "c.json")]) != 0
    err = capsys.readouterr().err
    assert "calibration needs rest and at least two gestures" in err or "no settled windows" in err


def test_a_live_cued_session_calibrates_a_simulated_wearer(tmp_path, capsys):
    out = tmp_path / "live.json"
    assert main(["calibrate", "--live", "synthetic", "--seed", "3", "--out", str(out), "--json"]) == 0
    text = capsys.readouterr().out
    assert "WRIST FLEXION" in text  # the cues are shown as they come
    result = json.loads(text[text.index("{\n") :])
    assert result["split_half_accuracy"] > 0.95
    assert load_calibration(out).windows["wrist_extension"] >= 100


def test_a_live_cued_session_through_the_myo_driver_warns_when_the_cues_were_not_followed(tmp_path, capsys):
    """The real Myo driver against the fake dongle on a pseudo-terminal (its wearer does not follow
    the cues): one hold of each gesture, just long enough to fit; it is saved (the user asked) with a
    warning exactly when the split-half check is poor."""
    from emgpilot.app.commands.calibrate import POOR_SPLIT_HALF
    from emgpilot.signals.fakes import FakeMyoDongle

    myo = FakeMyoDongle(link=tmp_path / "ttyMyo")
    myo.start()
    try:
        argv = ["calibrate", "--live", "myo", "--port", myo.path, "--reps", "1", "--hold", "2.4", "--rest", "0.3"]
        code = main([*argv, "--wearer", "ana", "--dir", str(tmp_path), "--json"])
    finally:
        myo.stop()
    captured = capsys.readouterr()
    assert code == 0 and "FIST" in captured.out
    result = json.loads(captured.out[captured.out.index("{\n") :])
    assert calibration_path("ana", tmp_path).exists()
    poor = result["split_half_accuracy"] is not None and result["split_half_accuracy"] < POOR_SPLIT_HALF
    assert ("warning:" in captured.err) == poor


def test_a_hold_too_short_to_calibrate_is_refused_before_the_session(tmp_path, capsys):
    argv = ["calibrate", "--live", "myo", "--port", "/dev/null", "--reps", "1", "--hold", "0.5", "--rest", "0.5"]
    assert main([*argv, "--wearer", "ana", "--dir", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "--hold 0.5: too short" in captured.err and "give --hold 2.2 or more" in captured.err
    assert "cued calibration session" not in captured.out  # refused before any cue
    assert not (tmp_path / "calibrations").exists()


def test_a_configuration_names_its_calibration_and_a_recording_keeps_it_for_replay(tmp_path, capsys):
    from emgpilot.build import load_pipeline_config
    from emgpilot.config import ConfigError

    assert main(["calibrate", "--synthetic", "2", "--out", str(tmp_path / "me.json")]) == 0
    (tmp_path / "cfg.toml").write_text('[recognition]\nwrist_calibration = "me.json"\n', encoding="utf-8")
    cfg = load_pipeline_config(tmp_path / "cfg.toml")  # relative to the configuration file
    assert cfg.recognition.wrist_calibration == str(tmp_path / "me.json")
    (tmp_path / "bad.toml").write_text('[recognition]\nwrist_calibration = "none.json"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"wrist_calibration: calibration file .*none\.json does not exist"):
        load_pipeline_config(tmp_path / "bad.toml")

    rec = tmp_path / "r.mcap"
    run = ["run", "--headless", "--source", "synthetic", "--seed", "2", "--duration", "40", "--speed", "max"]
    assert main([*run, "--config", str(tmp_path / "cfg.toml"), "--record", str(rec)]) == 0
    (tmp_path / "me.json").unlink()  # the recording keeps the calibration it ran with
    capsys.readouterr()
    assert main(["replay", str(rec), "--json"]) == 0
    out = capsys.readouterr()
    assert "warning" not in out.err
    report = json.loads(out.out)
    assert report["comparison"]["differ"] == 0 and report["comparison"]["match"] > 0


def test_a_replay_without_its_calibration_goes_on_uncalibrated(tmp_path, capsys):
    from emgpilot.app.commands.replay import with_recorded_calibration
    from emgpilot.build import PipelineConfig, with_wearer_arm
    from emgpilot.wearer import with_calibration

    cfg = with_calibration(with_wearer_arm(PipelineConfig(), "right"), tmp_path / "gone.json")
    replayed = with_recorded_calibration(cfg, {}, "old.mcap", str(tmp_path))
    assert replayed.recognition.wrist_calibration == ""
    assert "old.mcap was recorded with a wearer calibration" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--synthetic", "-3"], "argument --synthetic: must be 0 or more, not -3"),
        (["--live", "synthetic", "--seed", "-1"], "argument --seed: must be 0 or more"),
        (["SAMPLE", "--session", "0"], "argument --session: must be 1 or more"),
        (["--live", "synthetic", "--reps", "0"], "argument --reps"),
    ],
)
def test_calibrate_bad_numbers_are_usage_errors_naming_the_option(argv, message, tmp_path, capsys):
    argv = [str(sample_path()) if a == "SAMPLE" else a for a in argv]
    with pytest.raises(SystemExit) as e:
        main(["calibrate", *argv, "--out", str(tmp_path / "x.json")])
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_calibrate_with_a_folder_as_config_is_one_line(tmp_path, capsys):
    assert main(["calibrate", "--synthetic", "1", "--config", str(tmp_path), "--out", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path}: cannot read it" in err and "Traceback" not in err
