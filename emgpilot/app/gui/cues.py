"""Cued gesture sessions (Conduct-A-Bot's LED-cue protocol), without Qt.

A :class:`CuePlan` lists the cues: each gesture ``repetitions`` times (optionally shuffled), each
shown for ``cue_s`` and followed by ``rest_s`` of rest. The :class:`CueSequencer` runs in the
session runner's thread, in data time: when data time reaches a cue's onset it emits a
:class:`~emgpilot.signals.streams.CueEvent` (the ground truth written to the recording) and, with
the synthetic arm, makes the simulated wearer follow the cue. :func:`score_cued_session` scores
the recognised gestures against those cues with the evaluation metrics.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any

from emgpilot.classifiers.metrics import EventScore, score_events
from emgpilot.signals.streams import CueEvent, GestureEvent, Message
from emgpilot.signals.vocabulary import GESTURES, REST

ARROWS: dict[str, str] = {
    # glyphs every common UI font has (emoji hands are missing from many Linux fonts)
    "stiffen": "\u25a0",  # square: stop
    "fist": "\u25cf",  # filled circle: a clenched fist
    "wave_up": "\u2b06",
    "wave_down": "\u2b07",
    "wave_left": "\u2b05",
    "wave_right": "\u27a1",
    "rotate_cw": "\u21bb",
    "rotate_ccw": "\u21ba",
    REST: "\u25cb",  # empty circle
}
"""Icon shown for each cue."""


@dataclass
class CuePlan:
    """Which gestures, how often, how long, in which order."""

    gestures: tuple[str, ...] = GESTURES
    repetitions: int = 3
    cue_s: float = 3.0
    rest_s: float = 3.0
    lead_in_s: float = 3.0
    random_order: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = [g for g in self.gestures if g not in GESTURES]
        if unknown:
            raise ValueError(f"cued session: unknown gestures {unknown}; choose from {', '.join(GESTURES)}")
        if not self.gestures:
            raise ValueError("cued session: choose at least one gesture")
        if self.repetitions < 1 or not self.cue_s > 0 or not self.rest_s > 0 or self.lead_in_s < 0:
            raise ValueError("cued session: repetitions >= 1, cue and rest durations > 0")

    def order(self) -> list[str]:
        labels = [g for _ in range(self.repetitions) for g in self.gestures]
        if self.random_order:
            random.Random(self.seed).shuffle(labels)
        return labels

    @property
    def duration_s(self) -> float:
        return self.lead_in_s + len(self.gestures) * self.repetitions * (self.cue_s + self.rest_s)


@dataclass
class CueState:
    """What the cue display shows now."""

    label: str = REST
    index: int = 0  # 1-based number of the current cue, 0 during the lead-in
    total: int = 0
    remaining_s: float = 0.0  # until the next change
    next_label: str | None = None
    done: bool = False


@dataclass
class CueSequencer:
    """Emits the plan's cues in data time (see the module docstring)."""

    plan: CuePlan
    follow_with_arm: bool = True
    cues: list[CueEvent] = field(default_factory=list)
    gestures: list[GestureEvent] = field(default_factory=list)
    t0: float | None = None
    t_end: float | None = None
    _changes: list[tuple[float, str]] = field(default_factory=list)
    _pos: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _schedule(self, t0: float) -> None:
        t = t0 + self.plan.lead_in_s
        for label in self.plan.order():
            self._changes.append((t, label))
            self._changes.append((t + self.plan.cue_s, REST))
            t += self.plan.cue_s + self.plan.rest_s
        self.t_end = t

    def update(self, t: float, arm: Any | None = None) -> list[Message]:
        """Runner thread: emit the cues due by data time ``t`` (stamped at ``t``, when shown)."""
        with self._lock:
            if self.t0 is None:
                self.t0 = t
                self._schedule(t)
                first = CueEvent(t=t, label=REST)
                self.cues.append(first)
                out: list[Message] = [first]
            else:
                out = []
            while self._pos < len(self._changes) and self._changes[self._pos][0] <= t:
                _, label = self._changes[self._pos]
                self._pos += 1
                ev = CueEvent(t=t, label=label)
                self.cues.append(ev)
                out.append(ev)
                if label != REST and arm is not None and self.follow_with_arm:
                    arm.perform(label, min(self.plan.cue_s * 0.6, 2.0))
            return out

    def observe(self, msgs: list[Message]) -> None:
        """GUI thread: collect the recognised gestures of the session."""
        with self._lock:
            if self.t0 is None:
                return
            self.gestures.extend(m for m in msgs if isinstance(m, GestureEvent) and m.t >= self.t0)

    def state(self, t: float) -> CueState:
        with self._lock:
            total = len(self._changes) // 2
            if self.t0 is None:
                return CueState(total=total, remaining_s=self.plan.lead_in_s)
            if self.t_end is not None and t >= self.t_end:
                return CueState(index=total, total=total, done=True)
            label = self.cues[-1].label if self.cues else REST
            index = (self._pos + 1) // 2
            nxt = self._changes[self._pos] if self._pos < len(self._changes) else (self.t_end or t, REST)
            next_label = next((lb for _, lb in self._changes[self._pos :] if lb != REST), None)
            return CueState(label, index, total, max(0.0, nxt[0] - t), next_label, False)

    def finished(self, t: float) -> bool:
        """All cues shown and the last rest (grace period for late events) over."""
        return self.t_end is not None and t >= self.t_end

    def score(self, has_imu: bool = True) -> EventScore:
        with self._lock:
            t_end = self.t_end if self.t_end is not None else 0.0
            return score_events(list(self.cues), list(self.gestures), t_end, has_imu=has_imu)


def score_table(score: EventScore) -> list[tuple[str, int, int, int, int, str]]:
    """Rows ``(gesture, cued, correct, wrong, missed, accuracy %)`` plus a total row."""
    rows = []
    for g, d in sorted(score.per_gesture.items()):
        acc = f"{100.0 * d['correct'] / d['cued']:.0f}" if d["cued"] else "-"
        rows.append((g, d["cued"], d["correct"], d["wrong"], d["missed"], acc))
    acc = f"{100.0 * score.accuracy:.1f}" if score.cued else "-"
    rows.append(("all", score.cued, score.correct, score.wrong, score.missed, acc))
    return rows
