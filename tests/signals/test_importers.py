"""Importers of the shared ``.npz`` datasets (small slices of the real files, written to tmp)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from emgpilot.signals.importers import DatasetError, ImportedSession, cue_label, load_npz, write_session
from emgpilot.signals.recording import open_recording
from emgpilot.signals.streams import Chunk, CueEvent, GapEvent, message_time
from emgpilot.signals.vocabulary import cue_target


def _slice_rows(src, dst, keep: np.ndarray, per_row: tuple[str, ...], extra: dict | None = None) -> None:
    """Copy ``src`` to ``dst`` keeping rows ``keep`` of the per-sample arrays."""
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    for k in per_row:
        arrays[k] = arrays[k][keep]
    arrays.update(extra or {})
    np.savez(dst, **arrays)


def _first_segments(path, n_per_session: int) -> np.ndarray:
    with np.load(path, allow_pickle=False) as z:
        seg, ses = z["segment"], z["session"]
    keep = np.zeros(len(seg), bool)
    for s in np.unique(ses):
        segs = np.unique(seg[ses == s])[:n_per_session]
        keep |= (ses == s) & np.isin(seg, segs)
    return keep


def _check_session(s: ImportedSession) -> None:
    """Time runs forward without overlap; cues are valid labels; streams are declared."""
    declared = {i.name: i for i in s.streams}
    last_end: dict[str, float] = {}
    for m in s.messages:
        if isinstance(m, Chunk):
            assert declared[m.info.name] == m.info
            assert np.all(np.diff(m.t) > 0)
            assert m.t[0] > last_end.get(m.info.name, -np.inf)
            last_end[m.info.name] = m.t_end
        elif isinstance(m, CueEvent):
            cue_target(m.label)  # raises for a label outside the vocabulary
    cue_times = [message_time(m) for m in s.messages if isinstance(m, CueEvent)]
    assert cue_times == sorted(cue_times)
    segs = s.metadata["segments"]
    assert all(a["t_end"] < b["t_start"] for a, b in itertools.pairwise(segs))
    gaps = [m for m in s.messages if isinstance(m, GapEvent)]
    assert len(gaps) == (len(segs) - 1) * len([i for i in s.streams if not i.is_event])


def test_cue_label_mapping():
    assert cue_label("fist(power grip)") == "fist"
    assert cue_label("wrist_flexion") == "wrist_flexion"
    assert cue_label("hand_open") == "hand_open"
    assert cue_label("Q") == "other:q"
    assert cue_target(cue_label("pinch_grip")) is None


def test_cote_allard(shared_data, tmp_path):
    src = shared_data / "cote_allard_myo" / "eval_Male0.npz"
    keep = _first_segments(src, 3)
    dst = tmp_path / "eval_Male0.npz"
    _slice_rows(src, dst, keep, ("emg", "labels", "rep", "session", "segment"))
    sessions = load_npz(dst)
    assert [s.name for s in sessions] == [
        "cote_allard_eval_Male0_training0",
        "cote_allard_eval_Male0_Test0",
        "cote_allard_eval_Male0_Test1",
    ]
    with np.load(dst) as z:
        n0 = int((z["session"] == 0).sum())
        first = z["emg"][z["session"] == 0][:5]
    s = sessions[0]
    _check_session(s)
    emg = [m for m in s.messages if isinstance(m, Chunk)]
    assert sum(len(c) for c in emg) == n0
    assert emg[0].info.rate_hz == 200.0 and emg[0].info.n_channels == 8
    np.testing.assert_array_equal(emg[0].data[:5], first.astype(np.float32))
    assert {seg["rep"] for seg in s.metadata["segments"]} <= {0, 1, 2, 3}
    assert s.metadata["licence"].startswith("GPL-3.0")


def test_myo_readings_off_nominal_rate_and_session_numbers(shared_data, tmp_path):
    for subject, rate in (("right_32185", 240.0), ("right_40052", 200.0)):
        src = shared_data / "myo_readings" / f"{subject}.npz"
        dst = tmp_path / f"{subject}.npz"
        _slice_rows(src, dst, _first_segments(src, 2), ("emg", "labels", "file_gesture", "session", "segment"))
        sessions = load_npz(dst)
        assert [s.metadata["session"] for s in sessions] == [1, 2, 3]
        assert all(s.name.endswith(f"{subject}_s{i}") for i, s in enumerate(sessions, 1))
        for s in sessions:
            _check_session(s)
            assert s.metadata["rate_hz"] == pytest.approx(rate, abs=1.0)
            labels = {m.label for m in s.messages if isinstance(m, CueEvent)}
            assert "rest" in labels and len(labels) >= 2
    assert sessions[0].metadata["session_raw"] == 0  # right_40052 numbers sessions 0-2


def test_3dc_emg_at_1khz_and_quaternion_imu(shared_data, tmp_path):
    src = shared_data / "3dc" / "participant01.npz"
    keep = _first_segments(src, 8)  # labels 0-7 of rep 0, includes fist(power grip)
    with np.load(src, allow_pickle=False) as z:
        kept_segments = np.unique(z["segment"][keep])
        imu_keep = np.isin(z["imu_segment"], kept_segments)
    dst = tmp_path / "participant01.npz"
    _slice_rows(src, dst, keep, ("emg", "labels", "rep", "session", "segment"))
    with np.load(dst) as z:
        arrays = {k: z[k] for k in z.files}
    for k in ("imu_quat", "imu_labels", "imu_segment"):
        arrays[k] = arrays[k][imu_keep]
    np.savez(dst, **arrays)
    sessions = load_npz(dst)
    assert [s.name for s in sessions] == ["3dc_participant01_train", "3dc_participant01_test"]
    s = sessions[0]
    _check_session(s)
    emg = [m for m in s.messages if isinstance(m, Chunk) and m.info.name == "forearm_emg"]
    imu = [m for m in s.messages if isinstance(m, Chunk) and m.info.name == "forearm_imu"]
    assert emg[0].info.rate_hz == 1000.0 and emg[0].info.n_channels == 10
    q = np.concatenate([c.data for c in imu])
    assert np.isnan(q[:, 4:]).all() and not np.isnan(q[:, :4]).any()
    np.testing.assert_allclose(np.linalg.norm(q[:, :4], axis=1), 1.0, atol=1e-3)
    labels = [m.label for m in s.messages if isinstance(m, CueEvent)]
    assert "fist" in labels and not any("(" in label for label in labels)


def test_lis_sign_letters_with_imu(shared_data, tmp_path):
    src = shared_data / "lis_myo_emg_imu" / "lis_alphabet.npz"
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    for k in ("emg", "gyro", "acc", "orientation", "labels", "timestamp"):
        arrays[k] = arrays[k][:12]
    dst = tmp_path / "lis.npz"
    np.savez(dst, **arrays)
    sessions = load_npz(dst)
    assert sum(len(s.metadata["segments"]) for s in sessions) == 12
    for s in sessions:
        _check_session(s)
        imu = [m for m in s.messages if isinstance(m, Chunk) and m.info.name == "forearm_imu"]
        assert imu and imu[0].info.n_channels == 10
        assert {m.label for m in s.messages if isinstance(m, CueEvent)} == {"sign_letter"}


def test_imported_session_writes_a_recording(shared_data, tmp_path):
    src = shared_data / "myo_readings" / "left_44444.npz"
    dst = tmp_path / "left_44444.npz"
    _slice_rows(src, dst, _first_segments(src, 1), ("emg", "labels", "file_gesture", "session", "segment"))
    session = load_npz(dst)[0]
    rec = open_recording(write_session(session, tmp_path / "out.mcap"))
    want = np.concatenate([m.data for m in session.messages if isinstance(m, Chunk)])
    np.testing.assert_array_equal(rec.chunk("forearm_emg").data, want)
    assert rec.events("cue") == [m for m in session.messages if isinstance(m, CueEvent)]
    assert rec.metadata["import"]["subject"] == "44444"


def test_unknown_or_unsafe_files_are_refused(tmp_path):
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(DatasetError, match="unknown dataset layout"):
        load_npz(tmp_path / "other.npz")
    np.savez(tmp_path / "pickled.npz", emg=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DatasetError, match="pickled objects, which emgpilot never loads"):
        load_npz(tmp_path / "pickled.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(DatasetError, match=r"text\.npz: not a \.npz dataset file"):
        load_npz(tmp_path / "text.npz")
    (tmp_path / "cut.npz").write_bytes((tmp_path / "other.npz").read_bytes()[:40])  # truncated
    with pytest.raises(DatasetError, match=r"cut\.npz: not a readable \.npz"):
        load_npz(tmp_path / "cut.npz")
    with pytest.raises(DatasetError, match="no such file"):
        load_npz(tmp_path / "missing.npz")
