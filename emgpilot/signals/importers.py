"""Converters from the public ``.npz`` datasets (see ``../shared/data/README.md``) to our streams.

Each file becomes one :class:`ImportedSession` per subject and recording session (all
repetitions of a session stay together, in their original order, so an evaluation can train on
a subject's earlier repetitions and test on later ones). Inside a session:

* EMG is ``forearm_emg`` (float32 counts, exact) at the dataset's true channel count and rate;
  IMU is ``forearm_imu`` where the dataset has one.
* Data time is sample index / rate; the original files (segments) follow each other with a
  :data:`SEGMENT_GAP_S` gap, announced by a :class:`GapEvent`, so nothing overlaps and no
  continuity is invented.
* Labels become :class:`CueEvent` transitions in our cue vocabulary (``"fist(power grip)"`` ->
  ``"fist"``); per-segment facts (label, repetition, original segment id, times) are kept in
  ``metadata["segments"]``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emgpilot.signals.streams import (
    EVENT_STREAMS,
    FOREARM_EMG,
    FOREARM_IMU,
    Chunk,
    CueEvent,
    GapEvent,
    Message,
    StreamInfo,
    with_rate,
)
from emgpilot.signals.vocabulary import CUE_TO_TARGET

log = logging.getLogger(__name__)

SEGMENT_GAP_S = 1.0
"""Least data-time gap between consecutive original recordings (files) of a session; each
recording starts on a whole second."""

LICENCES = {
    "cote_allard_myo": "GPL-3.0 (UlysseCoteAllard/MyoArmbandDataset)",
    "myo_readings": "MIT (c) 2021 Aljaz Francic (aljazfrancic/myo-readings-dataset)",
    "3dc": "none stated: research use with citation (LibEMG/3DCDataset)",
    "lis_myo_emg_imu": "research and education (airtlab Italian Sign Language alphabet dataset)",
}

MYO_READINGS_CUE_S = 5.0
"""myo_readings alternates ~5 s rest / ~5 s gesture cues; used to measure each file's true rate."""


class DatasetError(ValueError):
    """A file is not one of the known dataset layouts, or cannot be read."""


@dataclass
class ImportedSession:
    """One subject's session, converted: declared streams, messages in time order, facts."""

    name: str
    streams: list[StreamInfo]
    messages: list[Message]
    metadata: dict[str, Any] = field(default_factory=dict)


def cue_label(class_name: str) -> str:
    """Dataset class name -> cue label of our vocabulary.

    ``"fist(power grip)"`` -> ``"fist"``; names outside :data:`CUE_TO_TARGET` become
    ``"other:<name>"`` (a motion outside the vocabulary).
    """
    base = re.sub(r"\(.*?\)", "", str(class_name)).strip().lower().replace(" ", "_").replace("-", "_")
    return base if base in CUE_TO_TARGET else f"other:{base}"


def load_npz(path: str | Path) -> list[ImportedSession]:
    """Detect the layout of a dataset ``.npz`` and convert it (never loads pickles)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except FileNotFoundError as e:
        raise DatasetError(f"{path}: no such file") from e
    except OSError as e:
        raise DatasetError(f"{path}: cannot read ({e})") from e
    if head != b"PK\x03\x04":
        # Not a zip archive; numpy would go on to try it as a pickle and say so.
        raise DatasetError(f"{path}: not a .npz dataset file (no zip archive header)")
    try:
        # Our own handle: numpy leaves its file open when the archive turns out to be broken.
        with path.open("rb") as f, np.load(f, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise DatasetError(f"{path}: holds pickled objects, which emgpilot never loads") from e
        raise DatasetError(f"{path}: not a readable .npz dataset file ({e})") from e
    except (OSError, zipfile.BadZipFile, EOFError) as e:
        raise DatasetError(f"{path}: not a readable .npz dataset file ({e})") from e
    keys = set(arrays)
    if {"emg", "orientation", "gyro", "acc"} <= keys:
        return _lis(path, arrays)
    if {"emg", "imu_quat", "imu_segment"} <= keys:
        return _3dc(path, arrays)
    if {"emg", "labels", "file_gesture", "session", "segment"} <= keys:
        return _myo_readings(path, arrays)
    if {"emg", "labels", "rep", "session", "segment", "session_names"} <= keys:
        return _cote_allard(path, arrays)
    raise DatasetError(
        f"{path}: unknown dataset layout (keys {sorted(keys)}); "
        "known: cote_allard_myo, myo_readings, 3dc, lis_myo_emg_imu"
    )


# --------------------------------------------------------------------------- common builder


def _runs(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and stop indices of runs of equal values."""
    if len(a) == 0:
        return np.empty(0, int), np.empty(0, int)
    change = np.flatnonzero(a[1:] != a[:-1]) + 1
    return np.concatenate([[0], change]), np.concatenate([change, [len(a)]])


def _scalar(arrays: dict[str, np.ndarray], key: str, default: Any = None) -> Any:
    v = arrays.get(key)
    return default if v is None else v.item() if v.ndim == 0 else v.tolist()


class _SessionBuilder:
    """Appends segments (one original recording each) one after the other in data time."""

    def __init__(self, emg_info: StreamInfo, imu_info: StreamInfo | None = None) -> None:
        self.emg_info = emg_info
        self.imu_info = imu_info
        self.messages: list[Message] = []
        self.segments: list[dict[str, Any]] = []
        self.cursor = 0.0
        self._last_label: str | None = None
        self._last_end: float | None = None

    def add_segment(
        self,
        emg: np.ndarray,
        labels: list[str] | np.ndarray,
        facts: dict[str, Any],
        imu: np.ndarray | None = None,
        imu_rate: float | None = None,
        imu_offset: int = 0,
    ) -> None:
        """One original recording: ``emg [n, ch]``, a cue label per sample, optional IMU rows.

        ``imu_offset`` is the index of the first IMU row on the IMU's own grid (rows dropped at
        the start keep their time slot).
        """
        rate = self.emg_info.rate_hz
        n = len(emg)
        if n == 0:
            return
        t0 = self.cursor
        if self._last_end is not None:
            for info in (self.emg_info, self.imu_info):
                if info is not None:
                    self.messages.append(
                        GapEvent(
                            t=self._last_end, source_stream=info.name, t_resume=t0, reason="separate original recording"
                        )
                    )
        # Sample times on the exact grid k / rate (segments start on whole seconds): compact to
        # store and identical however the stream is later cut.
        t = (round(t0 * rate) + np.arange(n, dtype=np.int64)) / rate
        x = np.asarray(emg, dtype=np.float32)
        labels = np.asarray(labels)
        starts, stops = _runs(labels)
        imu_t = None
        if imu is not None and self.imu_info is not None and len(imu):
            imu_rate = float(imu_rate or self.imu_info.rate_hz)
            imu_t = (round(t0 * imu_rate) + imu_offset + np.arange(len(imu), dtype=np.int64)) / imu_rate
        for a, b in zip(starts, stops, strict=True):
            label = str(labels[a])
            if label != self._last_label:
                self.messages.append(CueEvent(t=float(t[a]), label=label))
                self._last_label = label
            self.messages.append(Chunk(self.emg_info, t[a:b], x[a:b]))
            if imu_t is not None:
                lo = 0 if a == 0 else np.searchsorted(imu_t, t[a], side="left")
                hi = len(imu_t) if b == n else np.searchsorted(imu_t, t[b], side="left")
                if hi > lo:
                    self.messages.append(Chunk(self.imu_info, imu_t[lo:hi], np.asarray(imu[lo:hi], np.float32)))
        t_end = float(t[-1]) + 1.0 / rate
        if imu_t is not None:
            t_end = max(t_end, float(imu_t[-1]) + 1.0 / self.imu_info.rate_hz)
        self.segments.append({**facts, "t_start": t0, "t_end": t_end, "samples": n})
        self._last_end = t_end
        self.cursor = float(math.ceil(t_end + SEGMENT_GAP_S))

    def build(self, name: str, metadata: dict[str, Any]) -> ImportedSession:
        streams = [
            self.emg_info,
            *([self.imu_info] if self.imu_info else []),
            EVENT_STREAMS["cue"],
            EVENT_STREAMS["gap"],
        ]
        meta = {
            **metadata,
            "rate_hz": self.emg_info.rate_hz,
            "n_channels": self.emg_info.n_channels,
            "duration_s": self._last_end or 0.0,
            "segment_gap_s": SEGMENT_GAP_S,
            "segments": self.segments,
        }
        return ImportedSession(name=name, streams=streams, messages=self.messages, metadata=meta)


def _emg_info(n_channels: int, rate_hz: float) -> StreamInfo:
    if n_channels == FOREARM_EMG.n_channels:
        return with_rate(FOREARM_EMG, rate_hz)
    return dataclasses.replace(
        FOREARM_EMG,
        rate_hz=float(rate_hz),
        channels=tuple(f"emg{i}" for i in range(n_channels)),
        units=("counts",) * n_channels,
    )


def _source(path: Path, dataset: str, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "source_file": path.name,
        "source_commit": _scalar(arrays, "source_commit"),
        "licence": LICENCES[dataset],
    }


# --------------------------------------------------------------------------- layouts


def _cote_allard(path: Path, a: dict[str, np.ndarray]) -> list[ImportedSession]:
    fs = float(_scalar(a, "fs", 200))
    names = [cue_label(c) for c in a["class_names"].tolist()]
    session_names = a["session_names"].tolist()
    emg, labels, rep, session, segment = a["emg"], a["labels"], a["rep"], a["session"], a["segment"]
    info = _emg_info(emg.shape[1], fs)
    out = []
    for s in np.unique(session):
        idx = np.flatnonzero(session == s)
        b = _SessionBuilder(info)
        seg_starts, seg_stops = _runs(segment[idx])
        for i0, i1 in zip(seg_starts, seg_stops, strict=True):
            sl = idx[i0:i1]
            lab = labels[sl]
            b.add_segment(
                emg[sl],
                [names[k] for k in lab],
                {
                    "segment": int(segment[sl[0]]),
                    "rep": int(rep[sl[0]]),
                    "label": names[int(lab[0])],
                    "class_name": str(a["class_names"][int(lab[0])]),
                },
            )
        sname = session_names[int(s)] if int(s) < len(session_names) else str(int(s))
        stem = path.stem
        out.append(
            b.build(
                f"cote_allard_{stem}_{sname}",
                {
                    **_source(path, "cote_allard_myo", a),
                    "subject": _scalar(a, "subject", stem),
                    "session": int(s),
                    "session_name": sname,
                    "class_names": a["class_names"].tolist(),
                },
            )
        )
    return out


def _myo_readings(path: Path, a: dict[str, np.ndarray]) -> list[ImportedSession]:
    fs_nominal = float(_scalar(a, "fs", 200))
    names = [cue_label(c) for c in a["class_names"].tolist()]
    emg, labels, session, segment, file_gesture = a["emg"], a["labels"], a["session"], a["segment"], a["file_gesture"]
    seg_starts, seg_stops = _runs(segment)
    # The cue alternates every ~5 s: the median length of complete label runs measures the rate.
    inner = []
    for s0, s1 in zip(seg_starts, seg_stops, strict=True):
        r0, r1 = _runs(labels[s0:s1])
        inner.extend((r1 - r0)[1:-1].tolist())
    notes = ["8 malformed rows were dropped from the source, leaving 1-sample discontinuities that cannot be located"]
    fs = fs_nominal
    fs_measured = float(np.median(inner)) / MYO_READINGS_CUE_S if inner else fs_nominal
    if abs(fs_measured / fs_nominal - 1.0) > 0.05:
        fs = round(fs_measured, 1)
        notes.append(
            f"file says {fs_nominal:g} Hz but the 5 s cues hold {np.median(inner):.0f} samples: rate taken as {fs:g} Hz"
        )
        log.info("%s: off-nominal rate, using %.1f Hz", path.name, fs)
    info = _emg_info(emg.shape[1], fs)
    raw_sessions = sorted(int(s) for s in np.unique(session))
    hand = str(_scalar(a, "hand", "right"))
    subject = str(_scalar(a, "subject", path.stem))
    out = []
    for number, s in enumerate(raw_sessions, start=1):
        b = _SessionBuilder(info)
        for s0, s1 in zip(seg_starts, seg_stops, strict=True):
            if int(session[s0]) != s:
                continue
            b.add_segment(
                emg[s0:s1],
                [names[k] for k in labels[s0:s1]],
                {
                    "segment": int(segment[s0]),
                    "file_gesture": names[int(file_gesture[s0])],
                    "label": names[int(file_gesture[s0])],
                },
            )
        out.append(
            b.build(
                f"myo_readings_{hand}_{subject}_s{number}",
                {
                    **_source(path, "myo_readings", a),
                    "subject": subject,
                    "hand": hand,
                    "session": number,
                    "session_raw": s,
                    "rate_nominal_hz": fs_nominal,
                    "rate_measured_hz": round(fs_measured, 2),
                    "class_names": a["class_names"].tolist(),
                    "notes": notes,
                },
            )
        )
    return out


def _3dc(path: Path, a: dict[str, np.ndarray]) -> list[ImportedSession]:
    fs = float(_scalar(a, "fs", 1000))
    imu_fs = float(_scalar(a, "imu_fs_approx", 50.0))
    names = [cue_label(c) for c in a["class_names"].tolist()]
    session_names = a["session_names"].tolist() if "session_names" in a else []
    emg, labels, rep, session, segment = a["emg"], a["labels"], a["rep"], a["session"], a["segment"]
    quat, imu_segment = a["imu_quat"], a["imu_segment"]
    info = _emg_info(emg.shape[1], fs)
    imu_info = with_rate(FOREARM_IMU, imu_fs)
    imu_rows = {int(k): np.flatnonzero(imu_segment == k) for k in np.unique(imu_segment)}
    out = []
    stem = path.stem
    for s in np.unique(session):
        idx = np.flatnonzero(session == s)
        b = _SessionBuilder(info, imu_info)
        seg_starts, seg_stops = _runs(segment[idx])
        for i0, i1 in zip(seg_starts, seg_stops, strict=True):
            sl = idx[i0:i1]
            seg_id = int(segment[sl[0]])
            rows = imu_rows.get(seg_id, np.empty(0, int))
            q = quat[rows]
            valid = np.flatnonzero(np.any(q != 0, axis=1))  # the first row of each recording is all zeros
            first = int(valid[0]) if len(valid) else len(q)
            imu = np.full((len(q) - first, FOREARM_IMU.n_channels), np.nan, dtype=np.float32)
            imu[:, :4] = q[first:]
            b.add_segment(
                emg[sl],
                [names[k] for k in labels[sl]],
                {
                    "segment": seg_id,
                    "rep": int(rep[sl[0]]),
                    "label": names[int(labels[sl[0]])],
                    "class_name": str(a["class_names"][int(labels[sl[0]])]),
                    "imu_samples": len(imu),
                },
                imu=imu,
                imu_rate=imu_fs,
                imu_offset=first,
            )
        sname = session_names[int(s)] if int(s) < len(session_names) else str(int(s))
        out.append(
            b.build(
                f"3dc_{stem}_{sname}",
                {
                    **_source(path, "3dc", a),
                    "subject": _scalar(a, "subject", stem),
                    "session": int(s),
                    "session_name": sname,
                    "class_names": a["class_names"].tolist(),
                    "channel_mean_counts": np.round(emg[idx].mean(axis=0), 2).tolist(),
                    "notes": [
                        "EMG kept as raw int16 counts with the armband's DC offset (the band-pass removes it)",
                        "IMU: orientation quaternion only (column order as stored by the source); "
                        "accelerometer and gyroscope columns are NaN; the all-zero first row of each "
                        "recording is dropped; times are row index / 50 Hz (approximate rate)",
                    ],
                },
            )
        )
    return out


def _lis(path: Path, a: dict[str, np.ndarray]) -> list[ImportedSession]:
    fs = float(_scalar(a, "fs", 200))
    emg = a["emg"]  # [n_samples, 400, 8]
    imu_all = np.concatenate([a["orientation"], a["acc"], a["gyro"]], axis=2)
    letters = a["class_names"].tolist()
    labels = a["labels"]
    stamps = [str(s) for s in a["timestamp"].tolist()] if "timestamp" in a else ["unknown"] * len(emg)
    info = _emg_info(emg.shape[2], fs)
    imu_info = with_rate(FOREARM_IMU, fs)  # IMU values are stored on the EMG's grid (repeated)
    by_day: dict[str, list[int]] = {}
    for i, st in enumerate(stamps):
        by_day.setdefault("/".join(st.split("/")[:3]), []).append(i)
    out = []
    for day, items in by_day.items():
        items.sort(key=lambda i: (stamps[i], i))
        b = _SessionBuilder(info, imu_info)
        for i in items:
            b.add_segment(
                emg[i],
                ["sign_letter"] * emg.shape[1],
                {"sample": i, "label": "sign_letter", "letter": letters[int(labels[i])], "timestamp": stamps[i]},
                imu=imu_all[i],
                imu_rate=fs,
            )
        d = day.split("/")
        iso = f"20{d[2]}-{d[1]}-{d[0]}" if len(d) == 3 else day.replace("/", "-")
        out.append(
            b.build(
                f"lis_{iso}",
                {
                    **_source(path, "lis_myo_emg_imu", a),
                    "subject": "unknown (grouped by recording day)",
                    "session": iso,
                    "class_names": letters,
                    "notes": [
                        "one segment per 2 s sign sample, ordered by its timestamp (1 s resolution)",
                        "IMU on the 200 Hz EMG grid as stored (values repeat between IMU updates); quaternion "
                        "column order as stored by the source; acc in g, gyro in deg/s",
                    ],
                },
            )
        )
    return out


# --------------------------------------------------------------------------- to a recording


def write_session(session: ImportedSession, path: str | Path, overwrite: bool = True) -> Path:
    """Write an imported session as a recording.

    ``overwrite=False`` refuses an existing file (:class:`RecordingError`) instead of replacing it.
    """
    from emgpilot.signals.recording import RecordingWriter

    path = Path(path)
    with RecordingWriter(
        path,
        session.streams,
        {
            "command": "import",
            "device": {"type": "import", **{k: session.metadata.get(k) for k in ("dataset", "source_file", "subject")}},
            "source_streams": [s.name for s in session.streams],
            "import": session.metadata,
        },
        background_flush=False,
        overwrite=overwrite,
    ) as w:
        w.write(session.messages)
    return path
