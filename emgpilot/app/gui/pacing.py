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


class RedrawGate:
    """Whether a scrolling panel has anything new to show this frame.

    A panel is redrawn when its view moved by at least ``min_px`` pixels (a 10 s view scrolls
    2.5 pixels per frame: every frame), or when new data arrived and ``data_refresh_s`` passed
    since its last redraw (a 1 h view moves one pixel per 5 s: its newest column is refreshed on
    every third frame, 10 times a second, instead of repainting identical pixels 30 times), or
    when it was not drawn on its previous chance (hidden, first frame).

    Parameters
    ----------
    min_px : view movement, in pixels, that always redraws.
    data_refresh_s : wait before new data in a still view is shown (0.09: every third 30 fps frame).
    clock : seconds, monotonic.
    """

    def __init__(
        self, min_px: float = 0.5, data_refresh_s: float = 0.09, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.min_px = min_px
        self.data_refresh_s = data_refresh_s
        self.clock = clock
        self._drawn: dict[str, tuple[float, float, float, int]] = {}

    def forget(self, panel: str) -> None:
        """The panel was not drawn (hidden): draw it at its next chance."""
        self._drawn.pop(panel, None)

    def due(self, panel: str, x0: float, x1: float, width_px: float, data_version: int) -> bool:
        """True (and remembered as drawn) if ``panel`` showing ``[x0, x1]`` over ``width_px``
        pixels should be redrawn; ``data_version`` changes whenever new data arrives."""
        now = self.clock()
        last = self._drawn.get(panel)
        if last is not None:
            lx0, lx1, wall, version = last
            s_per_px = (x1 - x0) / max(width_px, 1.0)
            moved = max(abs(x0 - lx0), abs(x1 - lx1)) >= self.min_px * s_per_px
            fresh = version != data_version and now - wall >= self.data_refresh_s
            if not (moved or fresh):
                return False
        self._drawn[panel] = (x0, x1, now, data_version)
        return True
