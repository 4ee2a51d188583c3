"""Streaming two-cluster ("rest" vs "active") model of one scalar feature.

Every detector reduces its signal to one number per decision window (a log amplitude, a log
rotation rate...). :class:`OnlineMixture` keeps a rolling history of that number and, every
``refit_every`` windows, refits a two-component 1-D Gaussian mixture by a few warm-started EM
iterations. From the fit it derives an adaptive threshold (the point where both components are
equally likely, kept at a safe distance above the rest cluster) and a lower release threshold
(hysteresis).

Why a mixture over a rolling history: the wearer's signal levels are unknown (no calibration),
differ by an order of magnitude between people, and drift with fatigue and electrode shift. A
gesture and rest form two clusters in log amplitude; tracking both clusters lets the threshold
follow the wearer. The rolling history forgets old levels (drift), while the last trustworthy
active cluster is remembered so a long rest (history without any gesture) does not collapse
the threshold into the noise.

Cold start: until a valid active cluster was ever seen, the threshold is a conservative prior
relative to the noise floor (rest level + ``prior_lift`` in log units, i.e. a multiple of the
rest amplitude, as physiology gives: Myo rest ~1-7 counts RMS, held gestures ~8-55).

Everything here is deterministic and depends only on the sequence of values (never on how they
were cut into chunks): refits happen at fixed window counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class MixtureConfig:
    """Settings of an :class:`OnlineMixture` (feature units, usually natural-log amplitude).

    Parameters
    ----------
    history : windows kept in the rolling history.
    refit_every : windows between refits once settled.
    refit_every_initial : windows between refits during the first ``initial_windows`` windows
        (a new wearer's levels are learnt quickly, then refits get cheaper and rarer).
    min_history : windows needed before the detector is armed.
    em_iterations : EM iterations per refit (warm-started from the previous fit).
    max_fit_points : the history is subsampled to at most this many points for a refit (speed).
    prior_lift : cold-start threshold above the rest level (log units: 1.4 = 4x amplitude).
    min_lift : the threshold never sits closer than this above the rest mean.
    min_rest_z : ... nor closer than this many rest standard deviations.
    min_separation : active minus rest mean needed for a fit to count as a real gesture cluster.
    min_weight : each component's weight needed for a fit to be valid.
    min_std : floor of each component's standard deviation.
    threshold_quantile : fraction of the way from the equal-posterior point towards the active
        mean at which the on-threshold sits (0 = equal posterior).
    release_fraction : release (off) threshold as a fraction of the way from rest mean to the
        on-threshold (hysteresis).
    memory_decay : per refit, how much a remembered active cluster relaxes towards "unknown"
        (1.0 = never forgets).
    abs_min_threshold : physiological lower bound of the on-threshold (feature units).
    cold_threshold : lower bound of the threshold until a valid active cluster was seen.
    history_floor : values below it are not kept in the history (the detector then clusters
        only "moving" windows, e.g. slow posture turns vs quick rotations).
    split_upper : also look for two clusters among the active values (spill-over from other
        gestures vs the detector's own gesture) and threshold between those when they separate
        by at least ``split_separation``.
    """

    history: int = 1200
    refit_every: int = 100
    refit_every_initial: int = 20
    initial_windows: int = 600
    min_history: int = 20
    em_iterations: int = 5
    max_fit_points: int = 240
    prior_lift: float = 1.2
    min_lift: float = 0.7
    min_rest_z: float = 4.0
    min_separation: float = 0.6
    min_weight: float = 0.03
    min_std: float = 0.05
    threshold_quantile: float = 0.0
    release_fraction: float = 0.6
    memory_decay: float = 1.0
    abs_min_threshold: float = -math.inf
    cold_threshold: float = -math.inf
    history_floor: float = -math.inf
    split_upper: bool = False
    split_separation: float = 0.8


class OnlineMixture:
    """Rolling-history 2-component 1-D Gaussian mixture with derived thresholds.

    Use :meth:`add` to append values (vectorised); call :meth:`refit` when
    :attr:`due` says so. :attr:`thr_on`/:attr:`thr_off` are valid once :attr:`armed`.
    """

    def __init__(self, cfg: MixtureConfig) -> None:
        self.cfg = cfg
        self.reset()

    # ----------------------------------------------------------------- state
    def reset(self) -> None:
        self._buf = np.zeros(self.cfg.history)
        self._n = 0  # total values ever added
        self._n_hist = 0  # values stored in the history (those above history_floor)
        self.since_refit = 0
        self.valid = False  # last fit found two well separated clusters
        self.split = False  # the active values split into two clusters (see split_upper)
        self.split_params = (0.0, math.nan, math.nan, math.nan, math.nan)
        self.ever_valid = False
        self.w_active = 0.0
        self.rest_mean = math.nan
        self.rest_std = math.nan
        self.active_mean = math.nan
        self.active_std = math.nan
        self.thr_on = math.inf
        self.thr_off = math.inf

    @property
    def n_seen(self) -> int:
        return self._n

    @property
    def armed(self) -> bool:
        return self._n >= self.cfg.min_history and math.isfinite(self.thr_on)

    @property
    def due(self) -> bool:
        """A refit is due (enough windows since the last one, or the first one is possible)."""
        if not math.isfinite(self.thr_on):
            return self._n >= self.cfg.min_history
        return self.since_refit >= self._interval()

    def _interval(self) -> int:
        cfg = self.cfg
        return cfg.refit_every_initial if self._n < cfg.initial_windows else cfg.refit_every

    def windows_until_due(self) -> int:
        """How many more values may be added before a refit is due."""
        if not math.isfinite(self.thr_on):
            return max(0, self.cfg.min_history - self._n)
        return max(0, self._interval() - self.since_refit)

    def state_dict(self) -> dict[str, Any]:
        return {
            "buf": self._buf.copy(),
            "n": self._n,
            "n_hist": self._n_hist,
            "since_refit": self.since_refit,
            "valid": self.valid,
            "split": self.split,
            "split_params": np.array(self.split_params),
            "ever_valid": self.ever_valid,
            "params": np.array(self._params()),
        }

    def _params(self) -> list[float]:
        fit = [self.w_active, self.rest_mean, self.rest_std, self.active_mean, self.active_std]
        return [*fit, self.thr_on, self.thr_off]

    def load_state_dict(self, state: dict[str, Any]) -> None:
        buf = np.asarray(state["buf"], dtype=np.float64)
        if buf.shape != (self.cfg.history,):
            raise ValueError(f"mixture history has shape {buf.shape}, expected ({self.cfg.history},)")
        self._buf = buf.copy()
        self._n = int(state["n"])
        self._n_hist = int(state["n_hist"])
        self.since_refit = int(state["since_refit"])
        self.valid = bool(state["valid"])
        self.split = bool(state["split"])
        self.split_params = tuple(float(v) for v in np.asarray(state["split_params"], dtype=np.float64))
        self.ever_valid = bool(state["ever_valid"])
        p = [float(v) for v in np.asarray(state["params"], dtype=np.float64)]
        self.w_active, self.rest_mean, self.rest_std, self.active_mean, self.active_std, self.thr_on, self.thr_off = p

    # ----------------------------------------------------------------- data
    def add(self, values: np.ndarray) -> None:
        """Append values to the rolling history (in order)."""
        v = np.asarray(values, dtype=np.float64).ravel()
        n_in = len(v)
        self._n += n_in
        self.since_refit += n_in
        if math.isfinite(self.cfg.history_floor):
            v = v[v >= self.cfg.history_floor]
        h = self.cfg.history
        n_keep = len(v)
        if len(v) >= h:
            v = v[-h:]
        start = (self._n_hist + n_keep - len(v)) % h
        first = min(len(v), h - start)
        self._buf[start : start + first] = v[:first]
        if first < len(v):
            self._buf[: len(v) - first] = v[first:]
        self._n_hist += n_keep

    def history(self) -> np.ndarray:
        """The rolling history, oldest first."""
        h = self.cfg.history
        if self._n_hist <= h:
            return self._buf[: self._n_hist].copy()
        start = self._n_hist % h
        return np.concatenate([self._buf[start:], self._buf[:start]])

    def posterior(self, values: np.ndarray) -> np.ndarray:
        """Posterior probability of the active cluster for each value (0 before the first fit)."""
        v = np.asarray(values, dtype=np.float64)
        if not math.isfinite(self.rest_mean) or not math.isfinite(self.active_mean):
            return np.zeros_like(v)
        w = min(max(self.w_active, 1e-3), 1 - 1e-3)
        la = math.log(w) - math.log(self.active_std) - 0.5 * ((v - self.active_mean) / self.active_std) ** 2
        lr = math.log(1 - w) - math.log(self.rest_std) - 0.5 * ((v - self.rest_mean) / self.rest_std) ** 2
        return 1.0 / (1.0 + np.exp(np.clip(lr - la, -50, 50)))

    # ----------------------------------------------------------------- fitting
    def refit(self) -> None:
        """Refit the mixture on the rolling history and update the thresholds."""
        cfg = self.cfg
        self.since_refit = 0
        x = self.history()
        if len(x) < 10:
            # Too little (gated) history to say anything: the cold-start threshold holds.
            if math.isfinite(cfg.history_floor) and not self.ever_valid:
                self.rest_mean, self.rest_std = cfg.history_floor, cfg.min_std
                self._update_thresholds()
            return
        if len(x) > cfg.max_fit_points:
            # Deterministic subsample that always keeps the newest value.
            step = len(x) / cfg.max_fit_points
            idx = (len(x) - 1 - (np.arange(cfg.max_fit_points) * step).astype(np.int64))[::-1]
            x = x[idx]
        xs = np.sort(x)
        m = len(xs)
        q03, q98 = (float(xs[min(m - 1, int(q * (m - 1) + 0.5))]) for q in (0.03, 0.98))
        # Robust rest estimate for when the mixture is not trustworthy: the lowest 30 % of the
        # data (gestures can fill most of a history, e.g. back-to-back cued gestures).
        low = xs[: max(3, (3 * m) // 10)]
        robust_rest_mean = float(low[len(low) // 2])
        dev = np.sort(np.abs(low - robust_rest_mean))
        robust_rest_std = max(1.4826 * float(dev[len(dev) // 2]), cfg.min_std)

        # Warm start from the last fit when it had both clusters inside the data's range.
        # (Rest may be a small minority of the history, e.g. back-to-back gestures: initialise it
        # from the lowest values.)
        if self.valid and xs[0] - 0.5 < self.rest_mean < self.active_mean < xs[-1] + 0.5:
            w, mr, sr, ma, sa = self.w_active, self.rest_mean, self.rest_std, self.active_mean, self.active_std
        else:
            w, mr, ma = 0.3, q03, float(max(q98, q03 + cfg.min_separation))
            sr = sa = max((ma - mr) / 4.0, cfg.min_std)
        w, mr, sr, ma, sa = _em2(xs, (w, mr, sr, ma, sa), cfg.em_iterations, cfg.min_std)
        if ma < mr:
            w, mr, sr, ma, sa = 1 - w, ma, sa, mr, sr
        separation_ok = (ma - mr) >= cfg.min_separation and (ma - mr) >= 2.0 * (sr + sa) / 2
        self.valid = bool(separation_ok and cfg.min_weight <= w <= 1 - cfg.min_weight)
        if self.valid:
            self.ever_valid = True
            self.w_active, self.rest_mean, self.rest_std, self.active_mean, self.active_std = w, mr, sr, ma, sa
            if cfg.split_upper:
                previous = self.split_params if self.split else None
                self.split = False
                self._split_active(xs)
                if not self.split and previous is not None:
                    # The recent history holds only one active cluster. If it is the lower one
                    # seen before (spill-over), the gesture's cluster is just absent lately:
                    # keep the earlier split rather than lowering the threshold onto spill-over.
                    _, ml, _, mu, _ = previous
                    if abs(ma - ml) < abs(ma - mu):
                        self.split, self.split_params = True, previous
        else:
            # No gesture cluster in the recent history: keep tracking the rest level, and keep
            # the remembered active cluster (if any) so the threshold stays meaningful.
            self.rest_mean, self.rest_std = robust_rest_mean, robust_rest_std
            if self.ever_valid:
                if math.isfinite(self.active_mean):
                    d = cfg.memory_decay
                    prior_active = self.rest_mean + cfg.prior_lift
                    self.active_mean = d * max(self.active_mean, self.rest_mean) + (1 - d) * prior_active
                    self.w_active = max(self.w_active, cfg.min_weight)
            else:
                self.active_mean = math.nan
                self.active_std = math.nan
                self.w_active = 0.0
        self._update_thresholds()

    def _split_active(self, xs: np.ndarray) -> None:
        """Look for two clusters among the active values (e.g. spill-over vs the real gesture).

        When the active values split cleanly, the upper cluster is the gesture and the
        threshold is placed between the two upper clusters.
        """
        cfg = self.cfg
        upper = xs[xs > self._equal_posterior_point()]
        if len(upper) < 20:
            return
        m = len(upper)
        lo, hi = float(upper[int(0.1 * (m - 1))]), float(upper[int(0.9 * (m - 1))])
        if hi - lo < cfg.split_separation:
            return
        init = (0.5, lo, max((hi - lo) / 4, cfg.min_std), hi, max((hi - lo) / 4, cfg.min_std))
        w, ml, sl, mu, su = _em2(upper, init, cfg.em_iterations + 3, cfg.min_std)
        if mu < ml:
            w, ml, sl, mu, su = 1 - w, mu, su, ml, sl
        if mu - ml >= cfg.split_separation and mu - ml >= 2.5 * (sl + su) / 2 and 0.08 <= w <= 0.92:
            self.split = True
            self.split_params = (w, ml, sl, mu, su)

    def _update_thresholds(self) -> None:
        cfg = self.cfg
        mr, sr = self.rest_mean, self.rest_std
        floor = mr + max(cfg.min_lift, cfg.min_rest_z * sr)
        if not self.ever_valid or not math.isfinite(self.active_mean):
            thr = max(mr + max(cfg.prior_lift, cfg.min_rest_z * sr), cfg.cold_threshold)
        else:
            if self.split:
                thr = _equal_point(*self.split_params)
            else:
                thr = self._equal_posterior_point()
            thr = thr + cfg.threshold_quantile * (self.active_mean - thr)
            thr = max(thr, floor)
        thr = max(thr, cfg.abs_min_threshold)
        self.thr_on = float(thr)
        self.thr_off = float(mr + cfg.release_fraction * (thr - mr))

    def _equal_posterior_point(self) -> float:
        """Where w_a N(x; ma, sa) = w_r N(x; mr, sr), between the two means."""
        return _equal_point(self.w_active, self.rest_mean, self.rest_std, self.active_mean, self.active_std)


def _equal_point(w: float, mr: float, sr: float, ma: float, sa: float) -> float:
    """Where w N(x; ma, sa) = (1 - w) N(x; mr, sr), between the two means."""
    w = min(max(w, 1e-3), 1 - 1e-3)
    if not math.isfinite(sa):
        return ma
    # Solve a x^2 + b x + c = 0 from the log densities.
    a = 0.5 / sr**2 - 0.5 / sa**2
    b = ma / sa**2 - mr / sr**2
    c = 0.5 * mr**2 / sr**2 - 0.5 * ma**2 / sa**2 + math.log(w / sa) - math.log((1 - w) / sr)
    roots: list[float] = []
    if abs(a) < 1e-12:
        if abs(b) > 1e-12:
            roots = [-c / b]
    else:
        disc = b * b - 4 * a * c
        if disc >= 0:
            r = math.sqrt(disc)
            roots = [(-b + r) / (2 * a), (-b - r) / (2 * a)]
    inside = [r for r in roots if mr <= r <= ma]
    if inside:
        return min(inside)
    # No crossing between the means (very unequal weights): fall back to the midpoint
    # weighted by the spreads.
    return mr + (ma - mr) * sr / (sr + sa)


def _em2(
    xs: np.ndarray, init: tuple[float, float, float, float, float], iterations: int, min_std: float
) -> tuple[float, float, float, float, float]:
    """A few EM iterations of a 2-component 1-D Gaussian mixture: returns (w_active, mr, sr, ma, sa)."""
    w, mr, sr, ma, sa = init
    x = xs
    m = len(x)
    min_var = min_std**2
    sum_x = float(x.sum())
    x2 = x * x
    sum_x2 = float(x2.sum())
    for _ in range(iterations):
        w = min(max(w, 1e-3), 1 - 1e-3)
        # log-odds rest vs active, as a quadratic in x (fewer array passes).
        qa, qr = 0.5 / (sa * sa), 0.5 / (sr * sr)
        c0 = math.log((1 - w) / sr) - math.log(w / sa) - qr * mr * mr + qa * ma * ma
        c1 = 2 * qr * mr - 2 * qa * ma
        c2 = qa - qr
        z = (c2 * x + c1) * x + c0
        np.clip(z, -50, 50, out=z)
        r = 1.0 / (1.0 + np.exp(z))
        na = float(r.sum())
        nr = m - na
        if na < 1e-6 or nr < 1e-6:
            break
        s1 = float(r @ x)
        s2 = float(r @ x2)
        w = na / m
        ma = s1 / na
        mr = (sum_x - s1) / nr
        sa = math.sqrt(max(s2 / na - ma * ma, min_var))
        sr = math.sqrt(max((sum_x2 - s2) / nr - mr * mr, min_var))
    return w, mr, sr, ma, sa
