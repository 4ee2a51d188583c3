"""Frame pacing for the window's frame timer (no Qt here, so it is tested with a fake clock).

A plain repeating ``QTimer(33)`` loses time whenever one frame runs late: Qt re-arms it a full
interval after the late frame, so a single slow frame (another process took the core for a
moment) costs a frame slot, and the rate tops out at 1000/33 = 30.3 fps with no slack. The
pacer keeps a fixed schedule instead, like a display's refresh: frame ``k`` is due at
``t0 + k / fps``. After a late frame the next one keeps its slot (so it starts sooner and the
rate stays 30 fps); slots that passed while a frame was still running are dropped, never drawn
back to back.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

FPS = 30.0


class FramePacer:
    """When the next frame is due.

    Parameters
    ----------
    fps : frames per second aimed at.
    clock : seconds, monotonic (tests pass a fake one).
    """

    def __init__(self, fps: float = FPS, clock: Callable[[], float] = time.perf_counter) -> None:
        if not fps > 0:
            raise ValueError(f"frames per second must be > 0, got {fps}")
        self.period_s = 1.0 / fps
        self.clock = clock
        self.due: float | None = None

    def frame_started(self) -> int:
        """Call at the start of every frame; returns milliseconds until the next frame is due."""
        now = self.clock()
        if self.due is None:
            self.due = now
        nxt = self.due + self.period_s
        if nxt <= now + 1e-3:  # that slot has passed too: drop the missed ones, stay on the grid
            nxt = self.due + self.period_s * (math.floor((now - self.due) / self.period_s) + 1)
            if nxt <= now + 1e-3:
                nxt += self.period_s
        self.due = nxt
        return max(0, round((nxt - now) * 1000.0))
