"""A recording as a pausable, speed-adjustable device for the GUI's replay controls.

Seeking re-runs the pipeline from the start of the file up to the target (the adaptive detectors
depend on everything before), so the session restarts with ``start_at``: data before it is
released at once (the runner pushes it through the pipeline at full speed), then playback is
paced at ``speed``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from emgpilot.signals.recording import Recording, open_recording
from emgpilot.signals.replay import PacedMessages, source_stream_names
from emgpilot.signals.streams import Message, StreamInfo

_FAST_BATCH = 500  # messages per read while fast-forwarding (keeps the runner responsive to stop)


_CACHE: dict[tuple[str, int, int], Recording] = {}


def open_cached(path: str | Path) -> Recording:
    """Open a recording, reusing the last one if the file did not change (seeking reopens the session)."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return open_recording(p)  # raises the reader's clear error
    key = (str(p.resolve()), st.st_mtime_ns, st.st_size)
    rec = _CACHE.get(key)
    if rec is None:
        rec = open_recording(p)
        _CACHE.clear()  # keep one: recordings can be large
        _CACHE[key] = rec
    return rec


class ReplaySource:
    """Device over a recording's source streams with pause, speed and a start offset.

    Parameters
    ----------
    path_or_recording : a file or an opened :class:`Recording`.
    speed : data seconds per wall second (``inf``: as fast as possible).
    start_at : data time (relative to the file's start) to fast-forward to.
    duration_s : replay only this many data seconds from the file's start (None: all of it).
    clock : wall clock (a fake one in tests).
    """

    name = "replay"

    def __init__(
        self,
        path_or_recording: str | Path | Recording,
        speed: float = 1.0,
        start_at: float = 0.0,
        duration_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        rec = path_or_recording if isinstance(path_or_recording, Recording) else open_cached(path_or_recording)
        if not speed > 0:
            raise ValueError(f"replay speed must be positive, not {speed}")
        self.recording = rec
        self._names = source_stream_names(rec)
        self._msgs = PacedMessages(rec.messages(set(self._names)), 0.02)
        times = self._msgs.times[self._msgs.carries_data]
        self.t_first = float(times.min()) if len(times) else 0.0
        self.t_last = float(times.max()) if len(times) else 0.0
        if duration_s is not None:
            # the end moves in: the slider, the status and ``finished`` all see the shorter replay
            self.t_last = min(self.t_last, self.t_first + max(0.0, float(duration_s)))
        # the first message past the end (not a search: untimed entries may sit anywhere)
        past = np.flatnonzero(self._msgs.times > self.t_last) if duration_s is not None else ()
        self._end = int(past[0]) if len(past) else len(self._msgs)
        self.start_at = self.t_first + max(0.0, float(start_at))
        self._speed = float(speed)
        self._clock = clock
        self._pos = 0
        self._paused = False
        self._anchor_wall = 0.0
        self._anchor_t = self.start_at
        self._wake = threading.Event()
        self._stopped = False
        self._forwarded = False
        self.position = self.t_first  # data time of the last released message

    # ----------------------------------------------------------------- controls (any thread)
    @property
    def duration_s(self) -> float:
        return self.t_last - self.t_first

    @property
    def speed(self) -> float:
        return self._speed

    def set_speed(self, speed: float) -> None:
        if not speed > 0:
            raise ValueError(f"replay speed must be positive, not {speed}")
        self._reanchor()
        self._speed = float(speed)
        self._wake.set()

    @property
    def paused(self) -> bool:
        return self._paused

    def set_paused(self, paused: bool) -> None:
        if not paused:
            self._reanchor()
        self._paused = paused
        self._wake.set()

    def _reanchor(self) -> None:
        self._anchor_t = max(self.position, self.start_at)
        self._anchor_wall = self._clock()

    def recorded_outputs(
        self, names: tuple[str, ...] = ("gesture", "decision", "command", "safety", "drone_telemetry")
    ) -> list[Message]:
        """Derived messages the file holds (recorded decisions, shown next to the recomputed ones)."""
        wanted = {n for n in names if n in self.recording.streams and n not in self._names}
        return list(self.recording.messages(wanted)) if wanted else []

    # ----------------------------------------------------------------- Device protocol
    def streams(self) -> list[StreamInfo]:
        return [self.recording.streams[n] for n in self._names]

    def info(self) -> dict[str, Any]:
        return {
            "type": "replay",
            "path": str(self.recording.path),
            "recorded_device": self.recording.metadata.get("device"),
        }

    def start(self) -> None:
        self._stopped = False
        self._reanchor()

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()

    @property
    def finished(self) -> bool:
        return self._pos >= self._end

    def read(self, timeout: float | None = None) -> list[Message]:
        if self.finished or self._stopped:
            return []
        # fast-forward part: everything before start_at at once
        if not self._forwarded:
            if self._msgs.time(self._pos) < self.start_at:
                return self._release(lambda t: t < self.start_at, limit=_FAST_BATCH)
            self._forwarded = True
            self._reanchor()
        if self._paused:
            self._wait(timeout)
            return []
        if math.isinf(self._speed):
            return self._release(lambda t: True, limit=_FAST_BATCH)
        now_t = self._anchor_t + (self._clock() - self._anchor_wall) * self._speed
        due = self._msgs.time(self._pos)
        if due > now_t:
            wait = (due - now_t) / self._speed
            self._wait(wait if timeout is None else min(wait, timeout))
            now_t = self._anchor_t + (self._clock() - self._anchor_wall) * self._speed
            if due > now_t or self._paused:
                return []
        return self._release(lambda t: t <= now_t, limit=None)

    def _wait(self, seconds: float | None) -> None:
        self._wake.clear()
        self._wake.wait(0.05 if seconds is None else max(0.0, seconds))

    def _release(self, keep: Callable[[float], bool], limit: int | None) -> list[Message]:
        """Messages from the current position while ``keep(message time)``, at most ``limit``."""
        out: list[Message] = []
        while self._pos < self._end:
            t = self._msgs.time(self._pos)
            if not keep(t):
                break
            if math.isfinite(t) and self._msgs.carries_data[self._pos]:
                self.position = max(self.position, t)
            out.append(self._msgs[self._pos])
            self._pos += 1
            if limit is not None and len(out) >= limit:
                break
        return out
