"""Drives a device through the pipeline into a recorder and any number of sinks.

One code path for everything: :meth:`SessionRunner.step` is the "manual mode" a test calls
itself; :meth:`SessionRunner.run` loops it (in the caller's thread or a thread of its own).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from emgpilot.signals.device import Device, DeviceError
from emgpilot.signals.pipeline import Pipeline
from emgpilot.signals.streams import Chunk, Message, StatusEvent, message_stream, message_time

log = logging.getLogger(__name__)

Sink = Callable[[list[Message]], None]

BAD_STATUSES = frozenset({"error", "searching", "lost", "silent"})
"""Device states a user must hear about: no data is flowing, or something is wrong."""


class NoDataError(DeviceError):
    """A live device delivered no data within the connect timeout."""


def format_status(device: str, status: str, detail: str = "") -> str:
    """``myo: error: cannot open /dev/null: not a serial port (...)`` -- one readable line."""
    return f"{device}: {status}: {detail}" if detail else f"{device}: {status}"


def problem_statuses(statuses: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """The devices among ``statuses`` whose ``(status, detail)`` is a problem (:data:`BAD_STATUSES`)."""
    return {dev: sd for dev, sd in statuses.items() if sd[0] in BAD_STATUSES}


def describe_statuses(statuses: dict[str, tuple[str, str]]) -> str:
    """Every device's latest status, ``; ``-separated (``no status from any device`` if none)."""
    if not statuses:
        return "no status from any device"
    return "; ".join(format_status(dev, st, detail) for dev, (st, detail) in sorted(statuses.items()))


class StatusLog:
    """Sink that logs each device status change: problems as warnings, the rest as info.

    A headless user sees a wrong port, a lost board or a protocol mismatch without ``-v``.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or log
        self._last: dict[str, tuple[str, str]] = {}

    def __call__(self, batch: list[Message]) -> None:
        for m in batch:
            if not isinstance(m, StatusEvent) or self._last.get(m.device) == (m.status, m.detail):
                continue
            self._last[m.device] = (m.status, m.detail)
            level = logging.WARNING if m.status in BAD_STATUSES else logging.INFO
            self.logger.log(level, "%s", format_status(m.device, m.status, m.detail))


@dataclass
class RunStats:
    """What a run saw: samples per stream, data time covered, message counts."""

    samples: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    t_first: float = float("inf")
    t_last: float = float("-inf")
    # latest (status, detail) per device; "stopped" (the device's own shutdown) is not kept so
    # that the state it stopped from stays visible in a summary
    device_status: dict[str, tuple[str, str]] = field(default_factory=dict)

    def add(self, msgs: Iterable[Message]) -> None:
        for m in msgs:
            name = message_stream(m)
            if isinstance(m, StatusEvent) and m.status != "stopped":
                self.device_status[m.device] = (m.status, m.detail)
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

    def problems(self) -> dict[str, tuple[str, str]]:
        """Devices whose latest status is a problem (error, searching, lost, silent)."""
        return problem_statuses(self.device_status)


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

    def run(self, connect_timeout_s: float | None = None, clock: Callable[[], float] = time.monotonic) -> RunStats:
        """Loop until the device finishes, the duration is reached or :meth:`stop` is called.

        With ``connect_timeout_s``, raise :class:`NoDataError` (naming every device's status) if
        no sample arrives within that much ``clock`` time: a live device on a wrong port would
        otherwise wait forever, since the duration counts data time.
        """
        self.device.start()
        started = clock()
        try:
            while not self.done:
                self.step()
                if connect_timeout_s is not None and not self.stats.samples and clock() - started > connect_timeout_s:
                    raise NoDataError(
                        f"no data within {connect_timeout_s:g} s ({describe_statuses(self.stats.device_status)})"
                    )
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
