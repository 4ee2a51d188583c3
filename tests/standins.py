"""Device stand-ins shared by tests: a live sensor that gives a status and a little data, then nothing."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from emgpilot.signals.streams import EVENT_STREAMS, FOREARM_EMG, Chunk, Message, StatusEvent


class StandInMyo:
    """A live Myo on a wrong port, or one that is lost: one ``status``, then ``chunks`` reads of 0.1 s
    of EMG (data time from ``t0``), then nothing, for ever.

    ``idle_wait_s``: how long a read with nothing to give waits, as a real driver's queue does (a
    reader thread then does not spin); 0 for a caller that drives its own fake clock.
    """

    name = "myo"

    def __init__(
        self,
        chunks: int = 0,
        status: tuple[str, str] = ("error", "cannot open /dev/x"),
        t0: float = 0.0,
        idle_wait_s: float = 0.0,
    ) -> None:
        self._status = [StatusEvent(t=0.0, device="myo", status=status[0], detail=status[1])]
        self._chunks = chunks
        self._t = t0
        self._idle_wait_s = idle_wait_s
        self._idle = threading.Event()  # never set
        self.stopped = False

    def streams(self) -> list:
        return [FOREARM_EMG, EVENT_STREAMS["status"]]

    def info(self) -> dict[str, Any]:
        return {}

    def start(self) -> None:
        pass

    def stop(self) -> None:
        self.stopped = True

    @property
    def finished(self) -> bool:
        return False

    def read(self, timeout: float | None = None) -> list[Message]:
        out: list[Message] = [*self._status]
        self._status = []
        if self._chunks > 0:
            self._chunks -= 1
            t = self._t + np.arange(20) / 200.0
            self._t += 0.1
            out.append(Chunk(FOREARM_EMG, t, np.zeros((20, 8), np.float32)))
        elif not out and self._idle_wait_s > 0:
            self._idle.wait(min(timeout or 0.0, self._idle_wait_s))
        return out
