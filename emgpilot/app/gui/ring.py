"""Ring buffers for live plots: O(chunk) appends, copy-free views, min/max pyramid for long history.

A plot asks for ``window(t0, t1, max_points)``: the samples between two data times, reduced to
at most about ``max_points`` points. Short windows come straight from the buffer (a slice, no
copy). Long windows (an hour zoomed out) come from a pyramid of per-block minima and maxima that
is updated as data arrives, so a frame never touches more than a few thousand values whatever
the history length.

Storage trick: every sample is written twice, at ``i % cap`` and ``i % cap + cap``, so the last
``n <= cap`` samples are always one contiguous slice.
"""

from __future__ import annotations

import numpy as np


class _Ring:
    """Fixed-capacity ring of ``[n, c]`` float32 rows with float64 times; mirror-written."""

    def __init__(self, capacity: int, n_channels: int) -> None:
        self.cap = max(1, int(capacity))
        self.c = int(n_channels)
        self.t = np.zeros(2 * self.cap, dtype=np.float64)
        self.x = np.zeros((2 * self.cap, self.c), dtype=np.float32)
        self.count = 0  # samples ever written

    def __len__(self) -> int:
        return min(self.count, self.cap)

    def append(self, t: np.ndarray, x: np.ndarray) -> None:
        m = int(t.shape[0])
        if m == 0:
            return
        if m > self.cap:  # only the newest cap samples can be kept
            t, x = t[-self.cap :], x[-self.cap :]
            self.count += m - self.cap
            m = self.cap
        start = self.count % self.cap
        first = min(m, self.cap - start)
        for off in (0, self.cap):
            self.t[off + start : off + start + first] = t[:first]
            self.x[off + start : off + start + first] = x[:first]
            if first < m:
                self.t[off : off + m - first] = t[first:]
                self.x[off : off + m - first] = x[first:]
        self.count += m

    def last(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The newest ``n`` rows as contiguous views (no copy)."""
        n = min(n, len(self))
        end = self.count % self.cap + self.cap
        return self.t[end - n : end], self.x[end - n : end]

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        return self.last(len(self))


class RingBuffer:
    """History of one regular stream for plotting.

    Parameters
    ----------
    capacity : samples of history (e.g. one hour at the stream's rate).
    n_channels : columns.
    factor : samples per block between pyramid levels.
    levels : pyramid levels above the raw samples.
    raw_capacity : raw samples kept (default: all of ``capacity``). Longer windows than this come
        from the pyramid alone, which keeps the whole history: an hour of 1 kHz EMG then costs a
        few tens of MB instead of hundreds.
    min_level_rows : every level keeps at least this many rows (or the whole history).
    """

    def __init__(
        self,
        capacity: int,
        n_channels: int,
        factor: int = 4,
        levels: int = 7,
        raw_capacity: int | None = None,
        min_level_rows: int = 16384,
    ) -> None:
        self.factor = int(factor)
        capacity = max(1, int(capacity))
        raw_cap = capacity if raw_capacity is None else max(1, min(capacity, int(raw_capacity)))
        self.raw = _Ring(raw_cap, n_channels)
        self.n_channels = int(n_channels)
        # level k holds one row per factor**k raw samples: [min of each channel, max of each channel]
        self.levels: list[_Ring] = []
        for k in range(1, levels + 1):
            span = self.factor**k
            cap = max(raw_cap // span, min(capacity // span, min_level_rows))
            self.levels.append(_Ring(cap + 1, 2 * n_channels))

    def __len__(self) -> int:
        return len(self.raw)

    @property
    def count(self) -> int:
        return self.raw.count

    def clear(self) -> None:
        self.raw.count = 0
        for lv in self.levels:
            lv.count = 0

    def append(self, t: np.ndarray, x: np.ndarray) -> None:
        """Add rows ``x`` ``[m, c]`` at times ``t`` ``[m]`` (increasing); cost O(m)."""
        self.raw.append(np.asarray(t, dtype=np.float64), np.asarray(x, dtype=np.float32))
        below: _Ring = self.raw
        c = self.n_channels
        for k, lv in enumerate(self.levels):
            complete = below.count // self.factor  # blocks whose inputs are all written
            new = complete - lv.count
            if new <= 0:
                break
            need = new * self.factor
            if need > len(below):  # inputs already overwritten (huge append): restart level
                lv.count = complete - len(below) // self.factor
                new = complete - lv.count
                need = new * self.factor
            extra = below.count - complete * self.factor
            bt, bx = below.last(need + extra)
            bt, bx = bt[:need], bx[:need]
            blocks = bx.reshape(new, self.factor, bx.shape[1])
            if k == 0:
                lo, hi = blocks.min(axis=1), blocks.max(axis=1)
            else:
                lo, hi = blocks[:, :, :c].min(axis=1), blocks[:, :, c:].max(axis=1)
            lv.append(bt[:: self.factor], np.concatenate([lo, hi], axis=1))
            below = lv

    def latest(self) -> tuple[float, np.ndarray] | None:
        if not len(self.raw):
            return None
        t, x = self.raw.last(1)
        return float(t[0]), x[0]

    def t_range(self) -> tuple[float, float] | None:
        if not len(self.raw):
            return None
        t, _ = self.raw.view()
        return float(t[0]), float(t[-1])

    def window(self, t0: float, t1: float, max_points: int = 2000) -> tuple[np.ndarray, np.ndarray]:
        """Samples in ``[t0, t1]``, reduced so that about ``max_points`` points remain.

        Returns ``(t [n], y [n, c])``. Reduced data alternates each block's minimum and maximum
        (both stamped at the block's start), so peaks stay visible. The newest samples that do
        not fill a block yet come from the finer levels.
        """
        t, x = self.raw.view()
        if t.shape[0] == 0:
            return t, x
        i0, i1 = np.searchsorted(t, [t0, t1], side="left")
        i0 = max(0, int(i0) - 1)
        i1 = min(t.shape[0], int(i1) + 1)
        if i1 - i0 <= max_points and self._covers(self.raw, t, t0):
            return t[i0:i1], x[i0:i1]
        # the finest level that still holds t0 and gives at most max_points points
        for k, lv in enumerate(self.levels, start=1):
            lt, _ = lv.view()
            if lt.shape[0] == 0:
                break
            j0, j1 = np.searchsorted(lt, [t0, t1], side="left")
            if 2 * (int(j1) - int(j0) + 1) <= max_points and self._covers(lv, lt, t0):
                return self._reduced(k, t0, t1)
        return self._reduced(len(self.levels), t0, t1)

    @staticmethod
    def _covers(ring: _Ring, t: np.ndarray, t0: float) -> bool:
        """The ring still holds data from ``t0`` on (or everything ever written)."""
        return ring.count <= ring.cap or t[0] <= t0

    def _reduced(self, level: int, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
        c = self.n_channels
        lv = self.levels[level - 1]
        lt, lx = lv.view()
        j0, j1 = np.searchsorted(lt, [t0, t1], side="left")
        j0 = max(0, int(j0) - 1)
        j1 = int(j1)
        bt, bx = lt[j0:j1], lx[j0:j1]
        out_t = np.repeat(bt, 2)
        out_y = np.empty((2 * bt.shape[0], c), dtype=np.float32)
        out_y[0::2] = bx[:, :c]
        out_y[1::2] = bx[:, c:]
        # newest samples not yet in a block of this level: finer data (fewer than factor rows per level)
        above_count = lv.count
        for finer in range(level - 1, -1, -1):
            ring = self.raw if finer == 0 else self.levels[finer - 1]
            n_tail = ring.count - above_count * self.factor
            if n_tail > 0:
                tt, tx = ring.last(n_tail)
                if finer == 0:
                    out_t, out_y = np.concatenate([out_t, tt]), np.concatenate([out_y, tx])
                else:
                    ty = np.empty((2 * tt.shape[0], c), dtype=np.float32)
                    ty[0::2] = tx[:, :c]
                    ty[1::2] = tx[:, c:]
                    out_t, out_y = np.concatenate([out_t, np.repeat(tt, 2)]), np.concatenate([out_y, ty])
            above_count = ring.count
        return out_t, out_y
