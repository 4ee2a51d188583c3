"""``emgpilot replay``, ``import`` and ``info`` end to end (in-process)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emgpilot.app.cli import main
from emgpilot.build import PipelineConfig, build_pipeline
from emgpilot.config import to_mapping
from emgpilot.signals.recording import RecordingWriter
from emgpilot.signals.streams import EVENT_STREAMS, FOREARM_EMG, FOREARM_IMU, Chunk, CueEvent, message_stream


def _recorded_run(path, seconds: float = 6.0) -> None:
    """Source data pushed through the default pipeline in 20 ms steps, everything recorded."""
    rng = np.random.default_rng(5)
    sources = [FOREARM_EMG, FOREARM_IMU, EVENT_STREAMS["cue"]]
    cfg = PipelineConfig()
    pipe = build_pipeline(sources, cfg)
    with RecordingWriter(
        path, [*sources, *pipe.output_streams], {"device": {"type": "test"}, "pipeline_config": to_mapping(cfg)}
    ) as w:
        for k in range(round(seconds / 0.02)):
            t = k * 0.02
            batch = []
            if k % 100 == 0:
                batch.append(CueEvent(t=t, label="rest" if k % 200 == 0 else "fist"))
            ke = np.arange(4 * k, 4 * k + 4)
            scale = 30 if (k // 100) % 2 else 2
            batch.append(Chunk(FOREARM_EMG, ke / 200.0, np.rint(rng.normal(0, scale, (4, 8)))))
            if k % 2 == 0:
                imu = np.zeros((2, 10))
                imu[:, 0] = 1.0
                batch.append(Chunk(FOREARM_IMU, (k + np.arange(2)) / 50.0, imu))
            out = []
            for m in batch:
                out.append(m)
                out.extend(pipe.push(m))
            w.write(out)
        w.write(pipe.finish())


def test_info_json_keys(tmp_path, capsys):
    path = tmp_path / "r.mcap"
    _recorded_run(path)
    assert main(["info", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["path"] == str(path)
    assert d["duration_s"] == pytest.approx(6.0, abs=0.05)
    emg = d["streams"]["forearm_emg"]
    assert emg["samples"] == 1200 and emg["rate_hz"] == 200.0 and emg["duration_s"] == pytest.approx(5.995)
    assert d["streams"]["forearm_imu"]["samples"] == 300
    assert d["labels"] == {"rest": 2, "fist": 1}
    for name in ("forearm_emg.filtered", "forearm_emg.envelope", "forearm_imu.resampled"):
        assert name in d["streams"]
    assert main(["info", str(path)]) == 0
    assert "forearm_emg" in capsys.readouterr().out


def test_replay_json_reproduces_the_recorded_outputs(tmp_path, capsys):
    path = tmp_path / "r.mcap"
    _recorded_run(path)
    assert main(["replay", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["duration_s"] == pytest.approx(6.0, abs=0.05)
    assert d["samples"]["forearm_emg"] == 1200
    cmp = d["comparison"]
    assert cmp["identical"] and cmp["match"] > 1200 and cmp["differ"] == 0 and cmp["missing"] == 0
    assert main(["replay", str(path), "--speed", "50"]) == 0
    out = capsys.readouterr().out
    assert "identical" in out and "x real time" in out


def test_damaged_or_foreign_files_give_one_line_errors(tmp_path, capsys):
    good = tmp_path / "r.mcap"
    _recorded_run(good, seconds=1.0)
    bad = tmp_path / "bad.mcap"
    bad.write_bytes(b"\x89MCAP0\r\n" + b"\x00" * 10)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    for cmd in ("info", "replay"):
        for path in (bad, text, tmp_path / "missing.mcap"):
            assert main([cmd, str(path)]) == 2
            err = capsys.readouterr().err.strip()
            assert len(err.splitlines()) == 1 and str(path) in err and "Traceback" not in err


def write_tiny_cote_npz(path, labels=(0, 5, 0, 2), sessions=(0, 0, 1, 1), n=300):
    """A tiny file in the cote_allard_myo layout (one segment of ``n`` samples per label), made
    here so no shared data is needed."""
    rng = np.random.default_rng(0)
    n_seg = len(labels)
    np.savez(
        path,
        emg=rng.integers(-20, 20, (n_seg * n, 8)).astype(np.int8),
        labels=np.repeat(np.array(labels, np.int8), n),
        rep=np.repeat(np.array(sessions, np.int8), n),
        session=np.repeat(np.array(sessions, np.int8), n),
        segment=np.repeat(np.arange(n_seg, dtype=np.int16), n),
        fs=np.int32(200),
        class_names=np.array(
            ["rest", "radial_deviation", "wrist_flexion", "ulnar_deviation", "wrist_extension", "fist", "hand_open"]
        ),
        session_names=np.array(["training0", "Test0", "Test1"]),
        subject=np.array("Test/0"),
        source_commit=np.array("0" * 40),
    )


def test_import_writes_one_recording_per_session(tmp_path, capsys):
    n = 300
    npz = tmp_path / "pre_Test0.npz"
    write_tiny_cote_npz(npz, n=n)
    out_dir = tmp_path / "out"
    assert main(["import", str(npz), "-o", str(out_dir)]) == 0
    printed = capsys.readouterr().out
    files = sorted(out_dir.glob("*.mcap"))
    assert [f.name for f in files] == ["cote_allard_pre_Test0_Test0.mcap", "cote_allard_pre_Test0_training0.mcap"]
    assert "wrote 2 recording(s)" in printed
    assert main(["info", str(files[1]), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["streams"]["forearm_emg"]["samples"] == 2 * n
    assert d["labels"] == {"rest": 1, "fist": 1}
    assert main(["import", str(tmp_path / "nothing.npz"), "-o", str(out_dir)]) == 2
    assert "nothing.npz" in capsys.readouterr().err


def test_sample_recording_is_shipped_and_replays(capsys):
    assert main(["info", "--sample", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["streams"]["forearm_emg"]["samples"] > 50_000
    assert "Aljaz Francic" in d["metadata"]["import"]["licence"]
    assert set(d["labels"]) >= {"rest", "fist", "wrist_flexion", "wrist_extension"}
    assert main(["replay", "--sample", "--conditioning-only", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["samples"]["forearm_emg.filtered"] == d["streams"]["forearm_emg"]["samples"]
    assert r["comparison"] is None


@pytest.mark.parametrize("cmd", ["replay", "import", "info"])
def test_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([cmd, "--help"])
    assert e.value.code == 0
    assert "usage" in capsys.readouterr().out


def test_sources_of_a_recording_are_not_derived(tmp_path):
    from emgpilot.signals.recording import open_recording
    from emgpilot.signals.replay import ReplayDevice

    path = tmp_path / "r.mcap"
    _recorded_run(path, seconds=1.0)
    dev = ReplayDevice(open_recording(path))
    assert {s.name for s in dev.streams()} == {"forearm_emg", "forearm_imu", "cue"}
    derived = {message_stream(m) for m in dev.recorded_outputs()}
    assert "forearm_emg.filtered" in derived and not derived & {"forearm_emg", "forearm_imu", "cue"}


def test_run_into_a_recording_that_cannot_be_created_is_a_one_line_error(tmp_path, capsys):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file where the recording's folder should be")
    target = blocker / "session.mcap"
    args = ["run", "--headless", "--source", "synthetic", "--duration", "1", "--speed", "max"]
    assert main([*args, "--record", str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{blocker} is a file, not a folder" in err


def test_import_refuses_recordings_already_there_and_writes_none(tmp_path, capsys):
    npz = tmp_path / "pre_Test0.npz"
    write_tiny_cote_npz(npz)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    edited = out_dir / "cote_allard_pre_Test0_training0.mcap"
    edited.write_bytes(b"my edited recording")
    assert main(["import", str(npz), "-o", str(out_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(edited) in err and "--overwrite" in err
    assert edited.read_bytes() == b"my edited recording"
    # checked for all outputs before writing any: the other session was not written either
    assert sorted(f.name for f in out_dir.iterdir()) == [edited.name]
    assert main(["import", str(npz), "-o", str(out_dir), "--overwrite"]) == 0
    assert "wrote 2 recording(s)" in capsys.readouterr().out
    assert edited.read_bytes() != b"my edited recording"


def test_import_of_the_same_file_twice_writes_it_once(tmp_path, capsys):
    npz = tmp_path / "pre_Test0.npz"
    write_tiny_cote_npz(npz)
    assert main(["import", str(npz), str(tmp_path), "-o", str(tmp_path / "out")]) == 0
    assert "wrote 2 recording(s)" in capsys.readouterr().out
