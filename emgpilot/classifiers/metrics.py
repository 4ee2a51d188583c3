"""Scoring of recognised gestures against a ground-truth cue stream.

Two levels, both additive so that results of many files pool by summing:

* **Event level** (Conduct-A-Bot's cued protocol), :func:`score_events`. Each *cue window* (a
  maximal run of one non-rest label) counts once: *correct* if the first gesture event between
  the cue onset and ``grace_s`` after its offset is the cued gesture, *wrong* if it is another
  gesture, *missed* if there is none. Events during rest outside that grace period are *false
  events*, reported per minute of rest. Latency is event time minus cue onset (correct events
  only). Cues outside the vocabulary are "other motion": the share of their windows that
  produced any event. Without an IMU, waves are scored by their wrist primitive (flexion or
  extension) and rotations are not scored.
* **Window level**, :func:`score_windows`: LibEMG's offline metrics on the per-window
  ``decision`` stream. Rejected windows (class ``-1``) are removed before CA, AER, INS and the
  confusion matrix; REJ is the share of rejected windows. CA = correct / kept windows; AER =
  1 - CA over the windows whose *prediction* is not rest; INS = (prediction changes - truth
  changes) / kept windows, floored at 0.

Two choices LibEMG leaves open are fixed here: a window is labelled with the cue in force at its
last sample (the decision's time), and windows before the first cue or under an out-of-vocabulary
cue are left out of window metrics. The confusion matrix keeps every class (rows = truth,
columns = prediction) instead of only the classes present in the truth.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emgpilot.signals.streams import CueEvent, GestureEvent
from emgpilot.signals.vocabulary import DECISION_CLASSES, GESTURES, PRIMITIVE_OF, REST, cue_target

GRACE_S = 1.0
"""Events up to this long after a cue's offset still answer that cue."""

NO_EVENT = "none"
ROTATIONS = ("rotate_cw", "rotate_ccw")


# --------------------------------------------------------------------------- cue windows
@dataclass(frozen=True)
class CueWindow:
    """A maximal run of one cue label, ``[onset, offset)``; ``target`` as in :func:`cue_target`."""

    onset: float
    offset: float
    label: str
    target: str | None

    @property
    def duration(self) -> float:
        return self.offset - self.onset


def cue_windows(cues: Iterable[CueEvent], t_end: float, breaks: Iterable[float] = ()) -> list[CueWindow]:
    """Cut the cue transitions into runs of one label; the last run ends at ``t_end``.

    Consecutive cues with the same label merge into one window, except across a ``break``: the
    time data resumes after a gap (separate recordings of one label, e.g. sign-language samples,
    stay separate windows).
    """
    ordered = sorted(cues, key=lambda c: c.t)
    runs: list[list[Any]] = []
    for cue in ordered:
        if runs and runs[-1][1] == cue.label:
            continue
        runs.append([float(cue.t), cue.label])
    cuts = sorted(float(b) for b in breaks)
    out = []
    for i, (onset, label) in enumerate(runs):
        offset = runs[i + 1][0] if i + 1 < len(runs) else max(float(t_end), onset)
        target = cue_target(label)
        lo, hi = np.searchsorted(cuts, [onset, offset], side="right")
        for cut in [*cuts[lo:hi], offset]:
            if cut > onset:
                out.append(CueWindow(onset, min(cut, offset), label, target))
                onset = cut
    return out


def expected_name(target: str | None, has_imu: bool) -> str | None:
    """The name an event must carry to answer a cue of ``target``; None: the cue is not scored.

    With an IMU a gesture is matched on ``GestureEvent.gesture``; without one every cue is
    matched on ``GestureEvent.primitive`` and rotations (which need the gyroscope) drop out.
    Primitive cues (public datasets) are always matched on the primitive.
    """
    if target is None or target == REST:
        return None
    if target in GESTURES:
        if has_imu:
            return target
        primitive = PRIMITIVE_OF[target]
        return None if primitive in ROTATIONS else primitive
    return None if (target in ROTATIONS and not has_imu) else target


def _event_name(event: GestureEvent, target: str | None, has_imu: bool) -> str:
    """What the event says, in the same vocabulary as :func:`expected_name` for this cue."""
    if has_imu and target in GESTURES:
        return event.gesture
    return event.primitive or PRIMITIVE_OF.get(event.gesture, event.gesture)


# --------------------------------------------------------------------------- event level
@dataclass
class EventScore:
    """Additive event-level tallies of one file (or of many, after :meth:`pooled`)."""

    cued: int = 0
    correct: int = 0
    wrong: int = 0
    missed: int = 0
    extra: int = 0
    false_events: int = 0
    rest_s: float = 0.0
    other_windows: int = 0
    other_with_event: int = 0
    unscored_windows: int = 0
    latencies_s: list[float] = field(default_factory=list)
    per_gesture: dict[str, dict[str, int]] = field(default_factory=dict)
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return self.correct / self.cued if self.cued else math.nan

    @property
    def false_per_min(self) -> float:
        return self.false_events / (self.rest_s / 60.0) if self.rest_s > 0 else math.nan

    @property
    def other_motion_rate(self) -> float:
        return self.other_with_event / self.other_windows if self.other_windows else math.nan

    def latency_ms(self) -> dict[str, float]:
        if not self.latencies_s:
            return {"median": math.nan, "p90": math.nan}
        lat = np.asarray(self.latencies_s) * 1000.0
        return {"median": float(np.median(lat)), "p90": float(np.percentile(lat, 90))}

    @classmethod
    def pooled(cls, scores: Iterable[EventScore]) -> EventScore:
        total = cls()
        for s in scores:
            for name in (
                "cued",
                "correct",
                "wrong",
                "missed",
                "extra",
                "false_events",
                "other_windows",
                "other_with_event",
                "unscored_windows",
            ):
                setattr(total, name, getattr(total, name) + getattr(s, name))
            total.rest_s += s.rest_s
            total.latencies_s.extend(s.latencies_s)
            for g, d in s.per_gesture.items():
                row = total.per_gesture.setdefault(g, {"cued": 0, "correct": 0, "wrong": 0, "missed": 0})
                for k, v in d.items():
                    row[k] = row.get(k, 0) + v
            for g, d in s.confusion.items():
                row = total.confusion.setdefault(g, {})
                for k, v in d.items():
                    row[k] = row.get(k, 0) + v
        return total

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_accuracy": self.accuracy,
            "events": {
                "cued": self.cued,
                "correct": self.correct,
                "wrong": self.wrong,
                "missed": self.missed,
                "extra": self.extra,
            },
            "false_events": self.false_events,
            "rest_min": self.rest_s / 60.0,
            "false_events_per_min": self.false_per_min,
            "latency_ms": self.latency_ms(),
            "per_gesture": {g: dict(d) for g, d in sorted(self.per_gesture.items())},
            "event_confusion": {g: dict(d) for g, d in sorted(self.confusion.items())},
            "other_motion_windows": self.other_windows,
            "other_motion_event_rate": self.other_motion_rate,
            "unscored_windows": self.unscored_windows,
        }


def score_events(
    cues: Iterable[CueEvent],
    events: Sequence[GestureEvent],
    t_end: float,
    has_imu: bool,
    grace_s: float = GRACE_S,
    breaks: Iterable[float] = (),
) -> EventScore:
    """Score gesture events against cues (see the module docstring for the rules).

    Parameters
    ----------
    cues : ground-truth label transitions.
    events : recognised gestures, any order.
    t_end : end of the data (closes the last cue window).
    has_imu : whether the recording had a forearm IMU (decides how waves and rotations score).
    grace_s : how long after a cue's offset an event still answers it.
    breaks : times data resumed after a gap (see :func:`cue_windows`).

    Notes
    -----
    When the next non-rest cue starts within the grace period, the search for an answer stops at
    that onset, so one event never answers two cues.
    """
    windows = cue_windows(cues, t_end, breaks)
    events = sorted(events, key=lambda e: e.t)
    times = np.array([e.t for e in events], dtype=float)
    score = EventScore()
    active = [w for w in windows if w.target != REST]
    for i, w in enumerate(active):
        stop = w.offset + grace_s
        if i + 1 < len(active):
            stop = min(stop, active[i + 1].onset)
        lo, hi = np.searchsorted(times, [w.onset, stop], side="left")
        answers = events[lo:hi]
        if w.target is None:
            score.other_windows += 1
            score.other_with_event += bool(answers)
            continue
        expected = expected_name(w.target, has_imu)
        if expected is None:
            score.unscored_windows += 1
            continue
        row = score.per_gesture.setdefault(expected, {"cued": 0, "correct": 0, "wrong": 0, "missed": 0})
        score.cued += 1
        row["cued"] += 1
        got = _event_name(answers[0], w.target, has_imu) if answers else NO_EVENT
        conf = score.confusion.setdefault(expected, {})
        conf[got] = conf.get(got, 0) + 1
        if not answers:
            score.missed += 1
            row["missed"] += 1
        elif got == expected:
            score.correct += 1
            row["correct"] += 1
            score.latencies_s.append(float(answers[0].t - w.onset))
        else:
            score.wrong += 1
            row["wrong"] += 1
        score.extra += max(0, len(answers) - 1)
    # Rest time that counts for false events: rest windows minus the grace after an active cue.
    grace_until = -math.inf
    for w in windows:
        if w.target != REST:
            grace_until = w.offset + grace_s
            continue
        start = max(w.onset, min(grace_until, w.offset))
        if w.offset <= start:
            continue
        score.rest_s += w.offset - start
        lo, hi = np.searchsorted(times, [start, w.offset], side="left")
        score.false_events += int(hi - lo)
    return score


# --------------------------------------------------------------------------- window level
N_CLASSES = len(DECISION_CLASSES)
REST_INDEX = DECISION_CLASSES.index(REST)
REJECTED = -1
UNLABELLED = -2


def decision_class(target: str | None, has_imu: bool) -> int:
    """Index into DECISION_CLASSES a window under ``target`` should get; UNLABELLED if none."""
    if target is None:
        return UNLABELLED
    if target == REST:
        return REST_INDEX
    primitive = PRIMITIVE_OF.get(target, target)
    if primitive in ROTATIONS and not has_imu:
        return UNLABELLED
    return DECISION_CLASSES.index(primitive) if primitive in DECISION_CLASSES else UNLABELLED


def window_truth(
    cues: Iterable[CueEvent], times: np.ndarray, t_end: float, has_imu: bool, breaks: Iterable[float] = ()
) -> np.ndarray:
    """True decision class at each time (the cue in force at that instant), UNLABELLED if none."""
    windows = cue_windows(cues, t_end, breaks)
    truth = np.full(len(times), UNLABELLED, dtype=np.int64)
    if not windows:
        return truth
    onsets = np.array([w.onset for w in windows])
    classes = np.array([decision_class(w.target, has_imu) for w in windows])
    idx = np.searchsorted(onsets, times, side="right") - 1
    inside = (idx >= 0) & (times < windows[-1].offset + 1e-9)
    truth[inside] = classes[idx[inside]]
    return truth


@dataclass
class WindowScore:
    """Additive window-level tallies (LibEMG definitions), pooled by summing."""

    n: int = 0
    rejected: int = 0
    correct: int = 0
    active_predictions: int = 0
    active_errors: int = 0
    prediction_changes: int = 0
    truth_changes: int = 0
    confusion: np.ndarray = field(default_factory=lambda: np.zeros((N_CLASSES, N_CLASSES), dtype=np.int64))

    @property
    def kept(self) -> int:
        return self.n - self.rejected

    @property
    def CA(self) -> float:
        return self.correct / self.kept if self.kept else math.nan

    @property
    def AER(self) -> float:
        return self.active_errors / self.active_predictions if self.active_predictions else math.nan

    @property
    def INS(self) -> float:
        if not self.kept:
            return math.nan
        return max(0.0, (self.prediction_changes - self.truth_changes) / self.kept)

    @property
    def REJ(self) -> float:
        return self.rejected / self.n if self.n else math.nan

    @classmethod
    def pooled(cls, scores: Iterable[WindowScore]) -> WindowScore:
        total = cls()
        for s in scores:
            for name in (
                "n",
                "rejected",
                "correct",
                "active_predictions",
                "active_errors",
                "prediction_changes",
                "truth_changes",
            ):
                setattr(total, name, getattr(total, name) + getattr(s, name))
            total.confusion = total.confusion + s.confusion
        return total

    def confusion_dict(self) -> dict[str, Any]:
        """Rows = truth, columns = prediction, over every class seen in either."""
        seen = [i for i in range(N_CLASSES) if self.confusion[i, :].sum() or self.confusion[:, i].sum()]
        return {
            "labels": [DECISION_CLASSES[i] for i in seen],
            "matrix": [[int(self.confusion[r, c]) for c in seen] for r in seen],
        }

    def to_dict(self) -> dict[str, Any]:
        return {"CA": self.CA, "AER": self.AER, "INS": self.INS, "REJ": self.REJ, "windows": self.n}


def score_windows(y_true: np.ndarray, y_pred: np.ndarray) -> WindowScore:
    """LibEMG's offline metrics for one contiguous sequence of windows.

    ``y_true`` holds DECISION_CLASSES indices (UNLABELLED windows are dropped first), ``y_pred``
    the same or REJECTED (-1).
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{len(y_true)} labels for {len(y_pred)} predictions")
    labelled = y_true != UNLABELLED
    y_true, y_pred = y_true[labelled], y_pred[labelled]
    score = WindowScore(n=len(y_true), rejected=int(np.sum(y_pred == REJECTED)))
    kept = y_pred != REJECTED
    t, p = y_true[kept], y_pred[kept]
    score.correct = int(np.sum(t == p))
    active = p != REST_INDEX
    score.active_predictions = int(active.sum())
    score.active_errors = int(np.sum(t[active] != p[active]))
    score.prediction_changes = int(np.count_nonzero(p[1:] != p[:-1]))
    score.truth_changes = int(np.count_nonzero(t[1:] != t[:-1]))
    np.add.at(score.confusion, (t, p), 1)
    return score


def json_safe(value: Any) -> Any:
    """NaN/inf -> None and numpy scalars -> Python, recursively (strict JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
