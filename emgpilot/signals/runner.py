"""Drives a device through the pipeline into a recorder and any number of sinks.

One code path for everything: :meth:`SessionRunner.step` is the "manual mode" a test calls
itself; :meth:`SessionRunner.run` loops it (in the caller's thread or a thread of its own).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from emgpilot.signals.device import Device
from emgpilot.signals.pipeline import Pipeline
from emgpilot.signals.streams import Chunk, Message, message_stream, message_time

log = logging.getLogger(__name__)

Sink = Callable[[list[Message]], None]


@dataclass
class RunStats:
    """What a run saw: samples per stream, data time covered, message counts."""

    samples: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    t_first: float = float("inf")
    t_last: float = float("-inf")

    def add(self, msgs: Iterable[Message]) -> None:
        for m in msgs:
            name = message_stream(m)
            if isinstance(m, Chunk):
                if len(m):
                    self.samples[name] = self.samples.get(name, 0) + len(m)
                    self.t_first = min(self.t_first, float(m.t[0]))
                    self.t_last = max(self.t_last, m.t_end)
            else:
                self.events[name] = self.events.get(name, 0) + 1

    @property
    def duration_s(self) -> float:
        return max(0.0, self.t_last - self.t_first) if self.t_last > self.t_first else 0.0


class SessionRunner:
    """Reads a device, records its messages, runs them through the pipeline, feeds sinks.

    Parameters
    ----------
    device : the source.
    pipeline : built for the device's streams.
    recorder : optional object with ``write(msgs)`` (every source and derived message).
    sinks : callables receiving each batch of messages (source and derived), in order.
    duration_s : stop after this much data time (None: until the device finishes).
    """

    def __init__(
        self,
        device: Device,
        pipeline: Pipeline,
        recorder: object | None = None,
        sinks: Iterable[Sink] = (),
        duration_s: float | None = None,
    ) -> None:
        self.device = device
        self.pipeline = pipeline
        self.recorder = recorder
        self.sinks = list(sinks)
        self.duration_s = duration_s
        self.stats = RunStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0: float | None = None
        self._flushed = False
        self.error: BaseException | None = None

    def step(self, timeout: float | None = 0.1) -> list[Message]:
        """One read from the device, pushed through everything. Returns all messages."""
        inputs = self.device.read(timeout)
        if self.duration_s is not None and inputs:
            inputs = self._clip(inputs)
        batch: list[Message] = []
        for msg in inputs:
            batch.append(msg)
            batch.extend(self.pipeline.push(msg))
        if self.done and not self._flushed:
            self._flushed = True
            batch.extend(self.pipeline.finish())
        self._deliver(batch)
        return batch

    def _clip(self, inputs: list[Message]) -> list[Message]:
        for m in inputs:
            if isinstance(m, Chunk) and len(m) and self._t0 is None:
                self._t0 = float(m.t[0])
        if self._t0 is None:
            return inputs
        end = self._t0 + self.duration_s
        kept: list[Message] = []
        for m in inputs:
            if isinstance(m, Chunk):
                n = int((m.t < end).sum())
                if n:
                    kept.append(m.slice(0, n) if n < len(m) else m)
                if n < len(m):
                    self._stop.set()
            elif message_time(m) < end:
                kept.append(m)
        return kept

    def _deliver(self, batch: list[Message]) -> None:
        if not batch:
            return
        self.stats.add(batch)
        if self.recorder is not None:
            self.recorder.write(batch)
        for sink in self.sinks:
            sink(batch)

    @property
    def done(self) -> bool:
        return self._stop.is_set() or self.device.finished

    def run(self) -> RunStats:
        """Loop until the device finishes, the duration is reached or :meth:`stop` is called."""
        self.device.start()
        try:
            while not self.done:
                self.step()
            if not self._flushed:
                self.step(timeout=0.0)
        except BaseException as e:  # kept for the owner thread to report, then re-raised
            self.error = e
            raise
        finally:
            self.device.stop()
        return self.stats

    def start_thread(self) -> None:
        """Run in a background thread (the device's owner thread)."""
        if self._thread is not None:
            raise RuntimeError("runner already started")
        self._thread = threading.Thread(target=self._run_quietly, name=f"runner-{self.device.name}", daemon=True)
        self._thread.start()

    def _run_quietly(self) -> None:
        try:
            self.run()
        except Exception:
            log.exception("session runner for %s failed", self.device.name)

    def stop(self, join_timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(join_timeout)
            if self._thread.is_alive():
                log.error("runner thread for %s did not stop within %.1f s", self.device.name, join_timeout)
            self._thread = None
