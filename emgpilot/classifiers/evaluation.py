"""Offline evaluation: run the full live pipeline over recordings with ground truth and score it.

Each input session is replayed through :func:`emgpilot.build.build_pipeline` exactly as live
data would flow (the sensor chunks in data-time order, nothing looked up ahead, the cue stream
kept away from the pipeline), as fast as the CPU allows. The gesture events and the per-window
``decision`` stream are scored with :mod:`emgpilot.classifiers.metrics`, and the Hudgins + LDA
baseline of :mod:`emgpilot.classifiers.baseline` is trained and tested on the same EMG.

Inputs: recordings (anything :func:`emgpilot.signals.recording.open_recording` reads), the
shared ``.npz`` datasets (converted in memory by :func:`emgpilot.signals.importers.load_npz`),
and synthetic wearers generated in memory.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emgpilot.classifiers.baseline import BaselineResult, evaluate_baseline, repetition_split
from emgpilot.classifiers.metrics import (
    GRACE_S,
    UNLABELLED,
    EventScore,
    WindowScore,
    cue_windows,
    expected_name,
    score_events,
    score_windows,
    window_truth,
)
from emgpilot.signals.streams import (
    DECISION,
    FOREARM_EMG,
    FOREARM_IMU,
    SENSOR_STREAMS,
    Chunk,
    CueEvent,
    GapEvent,
    GestureEvent,
    Message,
    StreamInfo,
    message_time,
)

log = logging.getLogger(__name__)

SENSOR_NAMES = {s.name for s in SENSOR_STREAMS}

FEED_GAPS = True
"""Whether GapEvents of the inputs are pushed into the pipeline, as a live device does (the
importers put one between every original file of a session)."""
TIMELINE_RATE_HZ = 20.0
OFFLINE_BLOCK_S = 10.0
"""Offline replays join each stream's consecutive chunks into blocks of up to this many data-seconds
before pushing them: the pipeline's output does not depend on chunking (tested), and per-push Python
overhead dominates with the sources' own ~0.25-1 s chunks (synthetic 10 min: ~140x -> ~1000x real
time on one core)."""


class EvaluationError(Exception):
    """An input cannot be evaluated (missing, unreadable, no ground truth)."""


@dataclass
class Session:
    """One continuous stretch of data with ground truth, from a file or generated."""

    name: str
    streams: list[StreamInfo]
    messages: list[Message]
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    dataset: str = ""


@dataclass
class Timeline:
    """A light copy of what happened, for the report's per-file plot."""

    t_env: np.ndarray
    envelope: np.ndarray
    cues: list[tuple[float, float, str]]
    events: list[tuple[float, str, bool]]


@dataclass
class SessionResult:
    """Everything measured on one session (or the error that stopped it)."""

    name: str
    source: str
    dataset: str = ""
    duration_s: float = 0.0
    cpu_s: float = 0.0
    has_imu: bool = False
    events: EventScore = field(default_factory=EventScore)
    windows: WindowScore = field(default_factory=WindowScore)
    windows_on_baseline_test: WindowScore = field(default_factory=WindowScore)
    baseline: BaselineResult | None = None
    timeline: Timeline | None = None
    error: str | None = None
    rotation_prior: int | None = None
    """The armband rotation the session started from (a returning wearer), if any."""
    learnt_rotation: int | None = None
    """The armband rotation the session ended with (see :func:`emgpilot.wearer.learnt_rotation`)."""
    calibrated_from: str | None = None
    """The session the wearer's calibration was made from (``evaluate --calibrate-first``), if any."""

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"name": self.name, "source": self.source, "dataset": self.dataset, "error": self.error}
        d: dict[str, Any] = {
            "name": self.name,
            "source": self.source,
            "dataset": self.dataset,
            "duration_s": self.duration_s,
            "has_imu": self.has_imu,
        }
        d.update(self.events.to_dict())
        d["confusion"] = self.windows.confusion_dict()
        d["window"] = self.windows.to_dict()
        d["window_CA_on_baseline_test"] = self.windows_on_baseline_test.CA
        d["baseline_window_CA"] = self.baseline.ca if self.baseline else math.nan
        d["baseline"] = self.baseline.to_dict() if self.baseline else None
        d["realtime_factor"] = self.duration_s / self.cpu_s if self.cpu_s > 0 else math.nan
        d["rotation_prior"] = self.rotation_prior
        d["learnt_rotation"] = self.learnt_rotation
        d["calibrated_from"] = self.calibrated_from
        return d


# --------------------------------------------------------------------------- inputs
def _load_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile]
    try:
        from emgpilot.signals.recording import RecordingError

        errors.append(RecordingError)
    except ImportError:  # the recording module is written in parallel; npz still works without it
        pass
    return tuple(errors)


def dataset_of(path: Path) -> str:
    """The dataset a shared file belongs to (its folder name), or the file's suffix."""
    return path.parent.name if path.suffix == ".npz" else path.suffix.lstrip(".") or "recording"


_RECOVER_HINT = re.compile(r" \(`emgpilot info/replay --recover` read[^)]*\)")
"""The reader's hint for a damaged recording names an option that evaluate, calibrate and bench
do not have."""

RECOVER_ELSEWHERE = " (this command needs an undamaged file; `emgpilot replay --recover` replays what can be read)"


def sessions_from_path(path: str | Path) -> list[Session]:
    """The sessions stored in one file. Raises EvaluationError with a message naming the file."""
    path = Path(path)
    if not path.exists():
        raise EvaluationError(f"{path}: no such file")
    if path.is_dir():
        raise EvaluationError(f"{path}: is a folder (pass its files, e.g. {path}/*.npz)")
    try:
        if path.suffix == ".npz":
            try:
                from emgpilot.signals.importers import load_npz
            except ImportError as e:
                raise EvaluationError(f"{path}: the .npz dataset importer is not available ({e})") from e

            imported = load_npz(path)
            return [
                Session(
                    name=s.name if len(imported) > 1 else path.stem,
                    streams=list(s.streams),
                    messages=list(s.messages),
                    metadata=dict(s.metadata),
                    source=str(path),
                    dataset=dataset_of(path),
                )
                for s in imported
            ]
        from emgpilot.signals.recording import open_recording

        rec = open_recording(path)
        streams = rec.streams
        streams = list(streams.values()) if isinstance(streams, dict) else list(streams)
        return [
            Session(
                name=path.stem,
                streams=streams,
                messages=list(rec.messages()),
                metadata=dict(rec.metadata),
                source=str(path),
                dataset=dataset_of(path),
            )
        ]
    except _load_errors() as e:
        text = _RECOVER_HINT.sub(RECOVER_ELSEWHERE, str(e))
        raise EvaluationError(text if str(path) in text else f"{path}: cannot read it ({text})") from e


def synthetic_session(seed: int, duration_s: float) -> Session:
    """One synthetic wearer (all 8 gestures, a random cue schedule), generated in memory."""
    from emgpilot.signals.synthetic import Schedule, SyntheticArm

    arm = SyntheticArm(
        seed=seed, speed=math.inf, duration_s=duration_s, schedule=Schedule.random(seed, duration_s), chunk_s=0.25
    )
    return _arm_session(arm, f"wearer{seed:02d}", f"synthetic:seed={seed}")


CALIBRATION_SEED_OFFSET = 1_000_003
"""A synthetic wearer's calibration session draws its noise from this seed offset (same wearer,
other data)."""


def synthetic_calibration_session(seed: int) -> Session:
    """A cued calibration session (:data:`emgpilot.classifiers.calibration.CALIBRATION_PLAN`) by
    synthetic wearer ``seed``, with other noise than their evaluation session."""
    from emgpilot.classifiers.calibration import calibration_schedule
    from emgpilot.signals.synthetic import Schedule, SyntheticArm, Wearer

    items = calibration_schedule()
    end = items[-1][0] + items[-1][1] + 3.0
    arm = SyntheticArm(
        seed=seed + CALIBRATION_SEED_OFFSET,
        wearer=Wearer.random(seed),
        speed=math.inf,
        schedule=Schedule.scripted(items, end_s=end),
        chunk_s=0.25,
    )
    return _arm_session(arm, f"wearer{seed:02d}_calibration", f"synthetic:seed={seed}:calibration")


def _arm_session(arm: Any, name: str, source: str) -> Session:
    messages: list[Message] = []
    arm.start()
    try:
        while not arm.finished:
            messages.extend(arm.read(0.0))
        messages.extend(arm.read(0.0))
    finally:
        arm.stop()
    return Session(
        name=name,
        streams=list(arm.streams()),
        messages=messages,
        metadata=dict(arm.info()),
        source=source,
        dataset="synthetic",
    )


# --------------------------------------------------------------------------- one session
def _sources(session: Session) -> list[StreamInfo]:
    return [s for s in session.streams if not s.is_event and s.name in SENSOR_NAMES]


def _concat(chunks: list[Chunk]) -> tuple[np.ndarray, np.ndarray]:
    chunks = [c for c in chunks if len(c)]
    if not chunks:
        return np.zeros(0), np.zeros((0, 0))
    return np.concatenate([c.t for c in chunks]), np.concatenate([c.data for c in chunks])


def offline_blocks(feed: list[Message], block_s: float = OFFLINE_BLOCK_S) -> list[Message]:
    """Join each stream's consecutive chunks into blocks of at most ``block_s`` data-seconds.

    A block ends at a jump in data time (more than 1.5 sample periods between chunks) and at
    ``block_s``; blocks keep data-time order (by last sample, as the feed). Only the chunking
    changes, which the pipeline's output does not depend on. A feed holding GapEvents is returned
    as it is: while a source is absent its watermark follows the other sources' progress, which
    does depend on their chunking (the importers' files come in one chunk per original file anyway).
    """
    from emgpilot.signals.streams import concat_chunks

    if any(isinstance(m, GapEvent) for m in feed):
        return list(feed)
    open_blocks: dict[str, list[Chunk]] = {}
    out: list[Message] = []

    def close(name: str) -> None:
        parts = open_blocks.pop(name)
        out.append(parts[0] if len(parts) == 1 else concat_chunks(parts))

    for m in feed:
        if not isinstance(m, Chunk):
            out.append(m)
            continue
        name = m.info.name
        parts = open_blocks.get(name)
        if parts is not None and len(m):
            tolerance = 1.5 / m.info.rate_hz if m.info.rate_hz > 0 else 0.0
            if float(m.t[0]) - parts[-1].t_end > tolerance or m.t_end - float(parts[0].t[0]) > block_s:
                close(name)
                parts = None
        if parts is None:
            open_blocks[name] = [m]
        else:
            parts.append(m)
    for name in list(open_blocks):
        close(name)
    out.sort(key=message_time)  # stable: events and each stream keep their order
    return out


def _segments(t: np.ndarray, fs: float) -> list[tuple[int, int]]:
    """Contiguous stretches of samples (a jump over 1.5 sample periods starts a new one)."""
    if not len(t):
        return []
    breaks = np.flatnonzero(np.diff(t) > 1.5 / fs) + 1
    edges = [0, *breaks.tolist(), len(t)]
    return list(itertools.pairwise(edges))


def evaluate_session(
    session: Session,
    cfg: Any = None,
    keep_timeline: bool = False,
    grace_s: float = GRACE_S,
    baseline: bool = True,
    pipeline_factory: Callable[[list[StreamInfo], Any], Any] | None = None,
    feed_gaps: bool = FEED_GAPS,
    block_s: float | None = OFFLINE_BLOCK_S,
    rotation_prior: int | None = None,
) -> SessionResult:
    """Run the pipeline over one session as live, then score it.

    Parameters
    ----------
    session : the data (sensor chunks and cue events).
    cfg : pipeline configuration (None: defaults).
    keep_timeline : keep a light copy of envelope, cues and events for the report's plots.
    grace_s : see :func:`emgpilot.classifiers.metrics.score_events`.
    baseline : also train and test the Hudgins + LDA baseline.
    pipeline_factory : ``(sources, cfg) -> Pipeline`` (default: the app's build_pipeline).
    feed_gaps : push the inputs' GapEvents into the pipeline (see :data:`FEED_GAPS`).
    block_s : push chunks joined into blocks of this many data-seconds (:func:`offline_blocks`;
        None or 0: the inputs' own chunks). The results do not depend on it, only the speed.
    rotation_prior : start the armband rotation estimate from this electrode shift (a returning
        wearer, see :mod:`emgpilot.wearer`); None: the configuration's.
    """
    result = SessionResult(
        name=session.name, source=session.source, dataset=session.dataset, rotation_prior=rotation_prior
    )
    cues = [m for m in session.messages if isinstance(m, CueEvent)]
    if not cues:
        result.error = f"{session.source or session.name}: no cue stream (ground truth) to score against"
        return result
    sources = _sources(session)
    if not sources:
        result.error = f"{session.source or session.name}: no sensor stream ({', '.join(sorted(SENSOR_NAMES))})"
        return result
    names = {s.name for s in sources}
    gaps = [m for m in session.messages if isinstance(m, GapEvent) and m.source_stream in names]
    feed: list[Message] = [m for m in session.messages if isinstance(m, Chunk) and m.info.name in names]
    if feed_gaps:
        feed.extend(gaps)
    feed.sort(key=message_time)  # stable: each stream keeps its own order
    from emgpilot.build import build_pipeline, declared_arm, with_wearer_arm
    from emgpilot.wearer import learnt_rotation, with_rotation_prior

    if pipeline_factory is None:
        pipeline_factory = build_pipeline
    # A wearer who declared their arm (a left-arm Myo mirrors the electrode ring) is scored with
    # that setting, as they would have set it in the app.
    run_cfg = with_rotation_prior(with_wearer_arm(cfg, declared_arm(session.metadata)), rotation_prior)
    try:
        pipeline = pipeline_factory(sources, run_cfg)
    except ValueError as e:
        # e.g. a 10-electrode armband: this input cannot be scored, the others still are.
        result.error = f"{session.source or session.name}: {e}"
        return result

    gestures: list[GestureEvent] = []
    decisions: list[Chunk] = []
    envelopes: list[Chunk] = []
    env_name = f"{FOREARM_EMG.name}.envelope"

    def collect(out: list[Message]) -> None:
        for m in out:
            if isinstance(m, GestureEvent):
                gestures.append(m)
            elif isinstance(m, Chunk):
                if m.info.name == DECISION.name:
                    decisions.append(m)
                elif keep_timeline and m.info.name == env_name:
                    envelopes.append(m)

    # CPU time of this process, not wall time: other processes on a shared machine do not count.
    cpu0 = time.process_time()
    for msg in offline_blocks(feed, block_s) if block_s else feed:
        collect(pipeline.push(msg))
    collect(pipeline.finish())
    result.cpu_s = time.process_time() - cpu0
    result.learnt_rotation = learnt_rotation(pipeline)

    chunk_times = [(float(c.t[0]), c.t_end) for c in feed if isinstance(c, Chunk) and len(c)]
    if not chunk_times:
        result.error = f"{session.source or session.name}: sensor streams hold no samples"
        return result
    t_start = min(a for a, _ in chunk_times)
    t_end = max(b for _, b in chunk_times)
    result.duration_s = t_end - t_start
    result.has_imu = FOREARM_IMU.name in names
    data_end = t_end + 1.0 / max(s.rate_hz for s in sources)
    breaks = sorted({float(g.t_resume) for g in gaps if math.isfinite(g.t_resume)})
    result.events = score_events(cues, gestures, data_end, result.has_imu, grace_s, breaks)

    t_dec, dec = _concat(decisions)
    y_pred = dec[:, 0].astype(np.int64) if len(t_dec) else np.zeros(0, dtype=np.int64)
    y_true = window_truth(cues, t_dec, data_end, result.has_imu, breaks)
    # Decisions the pipeline ticks through a data gap (between two original files) judge no data.
    for g in gaps:
        if math.isfinite(g.t_resume):
            y_true[(t_dec > g.t) & (t_dec < g.t_resume)] = UNLABELLED
    result.windows = score_windows(y_true, y_pred)

    windows = cue_windows(cues, data_end, breaks)
    train_flags = repetition_split(windows)

    def train_of(times: np.ndarray) -> np.ndarray:
        onsets = np.array([w.onset for w in windows])
        idx = np.searchsorted(onsets, times, side="right") - 1
        out = np.full(len(times), None, dtype=object)
        ok = idx >= 0
        out[ok] = np.array(train_flags, dtype=object)[idx[ok]]
        return out

    if baseline and FOREARM_EMG.name in names:
        emg_chunks = [m for m in feed if isinstance(m, Chunk) and m.info.name == FOREARM_EMG.name]
        t_emg, x_emg = _concat(emg_chunks)
        fs = next(s.rate_hz for s in sources if s.name == FOREARM_EMG.name)
        result.baseline = evaluate_baseline(
            t_emg,
            x_emg,
            lambda times: window_truth(cues, times, data_end, result.has_imu, breaks),
            train_of,
            fs,
            _segments(t_emg, fs),
        )
        if len(t_dec):
            test = train_of(t_dec) == False  # noqa: E712 - object array holding True/False/None
            result.windows_on_baseline_test = score_windows(np.where(test, y_true, UNLABELLED), y_pred)

    if keep_timeline:
        result.timeline = _timeline(envelopes, windows, gestures, result)
    return result


def _timeline(envelopes: list[Chunk], windows: list, gestures: list[GestureEvent], result: SessionResult) -> Timeline:
    t_env, env = _concat(envelopes)
    if len(t_env):
        rate = 1.0 / np.median(np.diff(t_env)) if len(t_env) > 1 else TIMELINE_RATE_HZ
        step = max(1, round(rate / TIMELINE_RATE_HZ))
        t_env, env = t_env[::step], env[::step].mean(axis=1)
    else:
        env = np.zeros(0)
    cues = [(w.onset, w.offset, w.label) for w in windows if w.target != "rest"]
    events = []
    for g in gestures:
        answered = [w for w in windows if w.target != "rest" and w.onset <= g.t < w.offset + GRACE_S]
        expected = {expected_name(w.target, result.has_imu) for w in answered}
        events.append((float(g.t), g.gesture or g.primitive, bool({g.gesture, g.primitive} & expected)))
    return Timeline(t_env, env, cues, events)


# --------------------------------------------------------------------------- many sessions
@dataclass
class InputSpec:
    """One thing to evaluate: a file path, or a synthetic wearer seed."""

    label: str
    load: Callable[[], list[Session]]
    calibration: Callable[[], Session] | None = None
    """A separate cued session of the same wearer for ``--calibrate-first`` (None: the input's first session)."""


def path_inputs(paths: Iterable[str | Path]) -> list[InputSpec]:
    return [InputSpec(str(p), lambda p=p: sessions_from_path(p)) for p in paths]


def synthetic_inputs(n: int, duration_s: float, first_seed: int = 0) -> list[InputSpec]:
    return [
        InputSpec(
            f"synthetic wearer {s}",
            lambda s=s: [synthetic_session(s, duration_s)],
            lambda s=s: synthetic_calibration_session(s),
        )
        for s in range(first_seed, first_seed + n)
    ]


def calibrate_for(session: Session, cfg: Any = None) -> Any:
    """The wearer calibration made from one cued ``session`` (:class:`CalibrationError` if it cannot be)."""
    from emgpilot.build import PipelineConfig, declared_arm, with_wearer_arm
    from emgpilot.classifiers.calibration import calibrate_with_config

    cfg = with_wearer_arm(cfg or PipelineConfig(), declared_arm(session.metadata))
    return calibrate_with_config(session.messages, cfg, source=session.source or session.name)


def evaluate_inputs(
    inputs: list[InputSpec],
    cfg: Any = None,
    keep_timeline: bool = False,
    progress: bool = True,
    baseline: bool = True,
    feed_gaps: bool = FEED_GAPS,
    returning: bool = False,
    calibrate_first: bool = False,
) -> list[SessionResult]:
    """Evaluate every input; a failing input becomes a result with ``error`` set.

    With ``returning``, the sessions of one input (one person's file, in recorded order) are
    scored as a returning wearer would run them: each starts from the armband rotation the
    previous one learnt (:mod:`emgpilot.wearer`). The first session of every input starts fresh.

    With ``calibrate_first``, each wearer first makes a calibration
    (:mod:`emgpilot.classifiers.calibration`) from their first session, which is then not scored
    (a synthetic wearer makes a separate cued calibration session), and the other sessions run
    with it and with the rotation it found.
    """
    import tempfile
    from contextlib import nullcontext

    from tqdm import tqdm

    results: list[SessionResult] = []
    bar = tqdm(inputs, unit="file", disable=not progress, dynamic_ncols=True, leave=False)
    # the calibration files of this run (removed at the end, whatever happens)
    scratch = tempfile.TemporaryDirectory(prefix="emgpilot-calibration-") if calibrate_first else nullcontext()
    with scratch as folder:
        try:
            for spec in bar:
                bar.set_postfix_str(Path(spec.label).name, refresh=False)
                results.extend(
                    _evaluate_input(spec, cfg, keep_timeline, baseline, feed_gaps, returning, folder, len(results))
                )
        finally:
            bar.close()
    return results


def _evaluate_input(
    spec: InputSpec,
    cfg: Any,
    keep_timeline: bool,
    baseline: bool,
    feed_gaps: bool,
    returning: bool,
    calibrations: str | None,
    index: int,
) -> list[SessionResult]:
    """The results of one input (see :func:`evaluate_inputs`); ``calibrations``: a folder for the
    wearer's calibration file when calibrating first."""
    from emgpilot.classifiers.calibration import CalibrationError
    from emgpilot.wearer import with_calibration

    try:
        sessions = spec.load()
    except EvaluationError as e:
        log.debug("%s", e)
        return [SessionResult(name=Path(spec.label).stem, source=spec.label, error=str(e))]
    if not sessions:
        return [SessionResult(name=spec.label, source=spec.label, error=f"{spec.label}: holds no session")]
    prior: int | None = None
    run_cfg, calibrated_from = cfg, None
    if calibrations is not None:
        try:
            cal_session = spec.calibration() if spec.calibration is not None else None
            if cal_session is None:
                if len(sessions) < 2:
                    raise CalibrationError("--calibrate-first needs two or more sessions of the wearer")
                cal_session, sessions = sessions[0], sessions[1:]
            calibration = calibrate_for(cal_session, cfg)
        except (CalibrationError, EvaluationError) as e:
            return [SessionResult(name=Path(spec.label).stem, source=spec.label, error=f"{spec.label}: {e}")]
        path = calibration.save(Path(calibrations) / f"calibration{index}.json")
        run_cfg = with_calibration(cfg, path)
        prior, calibrated_from = calibration.rotation, cal_session.source or cal_session.name
    results = []
    for session in sessions:
        res = evaluate_session(
            session,
            run_cfg,
            keep_timeline=keep_timeline,
            baseline=baseline,
            feed_gaps=feed_gaps,
            rotation_prior=prior if (returning or calibrated_from) else None,
        )
        res.calibrated_from = calibrated_from
        if res.error:
            log.debug("%s", res.error)
        elif res.learnt_rotation is not None and not calibrated_from:
            prior = res.learnt_rotation
        results.append(res)
    return results


# --------------------------------------------------------------------------- summary
def summarize(results: list[SessionResult]) -> dict[str, Any]:
    """The pooled result (JSON-ready apart from NaN) with ``per_file`` and ``per_dataset``."""
    ok = [r for r in results if r.ok]
    pooled = _pool(ok)
    pooled["files"] = len({r.source for r in ok})
    pooled["failed"] = [r.to_dict() for r in results if not r.ok]
    datasets = sorted({r.dataset for r in ok})
    pooled["per_dataset"] = {d: _pool([r for r in ok if r.dataset == d]) for d in datasets}
    # One row per input file (a subject of a public dataset, a synthetic wearer), its sessions pooled.
    sources = list(dict.fromkeys(r.source for r in ok))
    pooled["per_source"] = {
        src: {**_pool([r for r in ok if r.source == src]), "dataset": next(r.dataset for r in ok if r.source == src)}
        for src in sources
    }
    pooled["per_file"] = [r.to_dict() for r in results]
    return pooled


def _pool(results: list[SessionResult]) -> dict[str, Any]:
    events = EventScore.pooled(r.events for r in results)
    windows = WindowScore.pooled(r.windows for r in results)
    on_test = WindowScore.pooled(r.windows_on_baseline_test for r in results)
    base = [r.baseline for r in results if r.baseline is not None]
    n_test = sum(b.n_test for b in base)
    duration = sum(r.duration_s for r in results)
    cpu = sum(r.cpu_s for r in results)
    out: dict[str, Any] = {"sessions": len(results), "duration_s": duration}
    out.update(events.to_dict())
    out["confusion"] = windows.confusion_dict()
    out["window"] = windows.to_dict()
    out["window_CA_on_baseline_test"] = on_test.CA
    out["baseline_window_CA"] = sum(b.ca * b.n_test for b in base) / n_test if n_test else math.nan
    out["realtime_factor"] = duration / cpu if cpu > 0 else math.nan
    return out
