"""The deterministic pipeline: stages wired by stream name, driven by data time.

A :class:`Stage` consumes messages of the streams it names in ``inputs`` and returns new
messages. Stages that combine several streams (fusion) must not decide anything about time
``t`` before every input has reached ``t``; the pipeline tells them with :meth:`Stage.advance`
and a *watermark*: the data time up to which all of the stage's inputs are complete.

The same :class:`Pipeline` object serves live acquisition, replay and offline evaluation. Its
output depends only on the messages pushed, never on how they were cut into chunks or on the
wall clock.
"""

from __future__ import annotations

import copy
import logging
import math
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from emgpilot.signals.streams import Chunk, GapEvent, Message, StreamInfo, message_stream

log = logging.getLogger(__name__)

INF = math.inf


class Stage:
    """Base class of a pipeline stage.

    Subclasses set ``name``, ``inputs`` (stream names) and ``outputs`` (declared output
    streams), and implement :meth:`process`; multi-input stages also implement
    :meth:`advance`. State must be restorable via :meth:`state_dict`/:meth:`load_state_dict`.
    """

    name: str = "stage"
    inputs: tuple[str, ...] = ()
    outputs: tuple[StreamInfo, ...] = ()

    def process(self, msg: Message) -> list[Message]:
        raise NotImplementedError

    def advance(self, watermark: float) -> list[Message]:
        """All inputs are complete up to ``watermark``: emit what can now be decided."""
        return []

    def reset(self) -> None:
        """Forget everything learnt from data; keep the configuration."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError(f"stage {self.name!r} keeps no state but got {sorted(state)}")

    def clone(self) -> Stage:
        """A fresh copy with the same configuration and no learnt state."""
        twin = copy.deepcopy(self)
        twin.reset()
        return twin


class Pipeline:
    """Routes messages through stages in declaration order and tracks watermarks.

    Parameters
    ----------
    stages : stages in topological order (a stage's inputs come from sources or earlier stages).
    sources : names of the source streams that will actually be fed. Streams no source and no
        stage provides are absent: they never hold back a watermark.
    """

    def __init__(self, stages: Sequence[Stage], sources: Iterable[str]) -> None:
        self.stages = list(stages)
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate stage names in {names}")
        self.sources = set(sources)
        self._producer: dict[str, Stage] = {}
        for stage in self.stages:
            for out in stage.outputs:
                if out.name in self._producer or out.name in self.sources:
                    raise ValueError(f"stream {out.name!r} has two producers")
                self._producer[out.name] = stage
        self._consumers: dict[str, list[Stage]] = {}
        for stage in self.stages:
            for name in stage.inputs:
                self._consumers.setdefault(name, []).append(stage)
        self._source_wm: dict[str, float] = {}
        self._absent: set[str] = set()
        self._stage_wm: dict[str, float] = {}
        self.reset()

    # ----------------------------------------------------------------- structure
    @property
    def output_streams(self) -> list[StreamInfo]:
        return [out for stage in self.stages for out in stage.outputs]

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(f"no stage named {name!r}")

    def reset(self) -> None:
        for stage in self.stages:
            stage.reset()
        self._source_wm = {name: -INF for name in self.sources}
        self._absent = set()
        self._stage_wm = {stage.name: -INF for stage in self.stages}

    # ----------------------------------------------------------------- data flow
    def push(self, msg: Message) -> list[Message]:
        """Feed one source message; return every message the stages derive from it."""
        out = self._route(msg)
        name = message_stream(msg)
        if isinstance(msg, Chunk) and name in self.sources:
            if len(msg):
                self._absent.discard(name)
                self._source_wm[name] = max(self._source_wm[name], msg.t_end)
        elif isinstance(msg, GapEvent) and msg.source_stream in self.sources:
            # A lost device must not stall stages waiting on it: treat it as absent until its
            # data comes back. The gap is part of the data, so a replay does the same.
            self._absent.add(msg.source_stream)
            gone = msg.source_stream
            self._source_wm[gone] = max(self._source_wm[gone], float(msg.t))
        out.extend(self._advance())
        return out

    def push_many(self, msgs: Iterable[Message]) -> list[Message]:
        out: list[Message] = []
        for msg in msgs:
            out.extend(self.push(msg))
        return out

    def finish(self) -> list[Message]:
        """The sources have ended: let every stage decide what is left."""
        for name in self._source_wm:
            self._source_wm[name] = INF
        return self._advance()

    def watermark(self, stream: str) -> float:
        """Data time up to which ``stream`` is complete."""
        if stream in self.sources:
            if stream in self._absent:
                # An absent stream holds nothing back, but it must not leap to infinity either:
                # a stage whose inputs are all absent would then never advance again.
                return max(self._source_wm[stream], self._frontier())
            return self._source_wm[stream]
        producer = self._producer.get(stream)
        if producer is None:
            return INF
        return self._input_wm(producer)

    # ----------------------------------------------------------------- internals
    def _frontier(self) -> float:
        """The furthest any source has got (absent streams follow it)."""
        return max(self._source_wm.values(), default=-INF)

    def _input_wm(self, stage: Stage) -> float:
        return min((self.watermark(name) for name in stage.inputs), default=INF)

    def _stream_wm(self, stream: str, known: dict[str, float]) -> float:
        """:meth:`watermark`, reusing the input watermarks of stages already in ``known``."""
        producer = self._producer.get(stream)
        if producer is not None and producer.name in known:
            return known[producer.name]
        return self.watermark(stream)

    def _route(self, msg: Message) -> list[Message]:
        derived: list[Message] = []
        queue: deque[Message] = deque([msg])
        first = True
        while queue:
            m = queue.popleft()
            if not first:
                derived.append(m)
            first = False
            for stage in self._consumers.get(message_stream(m), ()):
                queue.extend(stage.process(m))
        return derived

    def _advance(self) -> list[Message]:
        out: list[Message] = []
        # Watermarks depend only on the sources' progress, which no stage can change: compute each
        # stage's input watermark once per call, from its producers' (stages are in topological
        # order), instead of re-walking the graph for every stage (half the routing cost per push).
        known: dict[str, float] = {}
        for stage in self.stages:
            wm = min((self._stream_wm(name, known) for name in stage.inputs), default=INF)
            known[stage.name] = wm
            if wm > self._stage_wm[stage.name]:
                self._stage_wm[stage.name] = wm
                for m in stage.advance(wm):
                    out.append(m)
                    out.extend(self._route(m))
        return out

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {
            "stages": {s.name: s.state_dict() for s in self.stages},
            "source_wm": dict(self._source_wm),
            "absent": sorted(self._absent),
            "stage_wm": dict(self._stage_wm),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for s in self.stages:
            s.load_state_dict(state["stages"][s.name])
        self._source_wm = dict(state["source_wm"])
        self._absent = set(state["absent"])
        self._stage_wm = dict(state["stage_wm"])
