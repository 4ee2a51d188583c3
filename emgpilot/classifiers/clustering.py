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
    refit_every : windows between refits.
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
    """

    history: int = 1200
    refit_every: int = 20
    min_history: int = 20
    em_iterations: int = 6
    max_fit_points: int = 300
    prior_lift: float = 1.4
    min_lift: float = 0.7
    min_rest_z: float = 4.0
    min_separation: float = 1.0
    min_weight: float = 0.03
    min_std: float = 0.05
    threshold_quantile: float = 0.0
    release_fraction: float = 0.6
    memory_decay: float = 1.0
    abs_min_threshold: float = -math.inf


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
        self.since_refit = 0
        self.valid = False  # last fit found two well separated clusters
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
        return self.since_refit >= self.cfg.refit_every

    def windows_until_due(self) -> int:
        """How many more values may be added before a refit is due."""
        if not math.isfinite(self.thr_on):
            return max(0, self.cfg.min_history - self._n)
        return max(0, self.cfg.refit_every - self.since_refit)

    def state_dict(self) -> dict[str, Any]:
        return {
            "buf": self._buf.copy(),
            "n": self._n,
            "since_refit": self.since_refit,
            "valid": self.valid,
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
        self.since_refit = int(state["since_refit"])
        self.valid = bool(state["valid"])
        self.ever_valid = bool(state["ever_valid"])
        p = [float(v) for v in np.asarray(state["params"], dtype=np.float64)]
        self.w_active, self.rest_mean, self.rest_std, self.active_mean, self.active_std, self.thr_on, self.thr_off = p

    # ----------------------------------------------------------------- data
    def add(self, values: np.ndarray) -> None:
        """Append values to the rolling history (in order)."""
        v = np.asarray(values, dtype=np.float64).ravel()
        n_in = len(v)
        h = self.cfg.history
        if len(v) >= h:
            v = v[-h:]
        start = self._n % h
        first = min(len(v), h - start)
        self._buf[start : start + first] = v[:first]
        if first < len(v):
            self._buf[: len(v) - first] = v[first:]
        self._n += n_in
        self.since_refit += n_in

    def history(self) -> np.ndarray:
        """The rolling history, oldest first."""
        h = self.cfg.history
        if self._n <= h:
            return self._buf[: self._n].copy()
        start = self._n % h
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
        if len(x) < 2:
            return
        if len(x) > cfg.max_fit_points:
            # Deterministic subsample that always keeps the newest value.
            step = len(x) / cfg.max_fit_points
            idx = (len(x) - 1 - (np.arange(cfg.max_fit_points) * step).astype(np.int64))[::-1]
            x = x[idx]
        q10, q50, q98 = np.quantile(x, [0.1, 0.5, 0.98])
        # Robust rest estimate for when the mixture is not trustworthy: the low half of the data.
        low = x[x <= q50]
        robust_rest_mean = float(np.median(low))
        robust_rest_std = max(float(1.4826 * np.median(np.abs(low - robust_rest_mean))), cfg.min_std)

        # Warm start from the last fit when it had both clusters inside the data's range.
        if self.valid and q10 - 1 < self.rest_mean < self.active_mean < q98 + 1:
            w, mr, sr, ma, sa = self.w_active, self.rest_mean, self.rest_std, self.active_mean, self.active_std
        else:
            w, mr, ma = 0.3, float(q10), float(max(q98, q10 + cfg.min_separation))
            sr = sa = max((ma - mr) / 4.0, cfg.min_std)
        min_var = cfg.min_std**2
        for _ in range(cfg.em_iterations):
            w = min(max(w, 1e-3), 1 - 1e-3)
            la = math.log(w) - math.log(sa) - 0.5 * ((x - ma) / sa) ** 2
            lr = math.log(1 - w) - math.log(sr) - 0.5 * ((x - mr) / sr) ** 2
            r = 1.0 / (1.0 + np.exp(np.clip(lr - la, -50, 50)))
            na = float(r.sum())
            nr = len(x) - na
            if na < 1e-6 or nr < 1e-6:
                break
            w = na / len(x)
            ma = float(r @ x) / na
            mr = float((1 - r) @ x) / nr
            sa = math.sqrt(max(float(r @ (x - ma) ** 2) / na, min_var))
            sr = math.sqrt(max(float((1 - r) @ (x - mr) ** 2) / nr, min_var))
        if ma < mr:
            w, mr, sr, ma, sa = 1 - w, ma, sa, mr, sr
        separation_ok = (ma - mr) >= cfg.min_separation and (ma - mr) >= 2.0 * (sr + sa) / 2
        self.valid = bool(separation_ok and cfg.min_weight <= w <= 1 - cfg.min_weight)
        if self.valid:
            self.ever_valid = True
            self.w_active, self.rest_mean, self.rest_std, self.active_mean, self.active_std = w, mr, sr, ma, sa
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

    def _update_thresholds(self) -> None:
        cfg = self.cfg
        mr, sr = self.rest_mean, self.rest_std
        floor = mr + max(cfg.min_lift, cfg.min_rest_z * sr)
        if not self.ever_valid or not math.isfinite(self.active_mean):
            thr = mr + max(cfg.prior_lift, cfg.min_rest_z * sr)
        else:
            thr = self._equal_posterior_point()
            thr = thr + cfg.threshold_quantile * (self.active_mean - thr)
            thr = max(thr, floor)
        thr = max(thr, cfg.abs_min_threshold)
        self.thr_on = float(thr)
        self.thr_off = float(mr + cfg.release_fraction * (thr - mr))

    def _equal_posterior_point(self) -> float:
        """Where w_a N(x; ma, sa) = w_r N(x; mr, sr), between the two means."""
        w = min(max(self.w_active, 1e-3), 1 - 1e-3)
        mr, sr, ma, sa = self.rest_mean, self.rest_std, self.active_mean, self.active_std
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
                s = math.sqrt(disc)
                roots = [(-b + s) / (2 * a), (-b - s) / (2 * a)]
        inside = [r for r in roots if mr <= r <= ma]
        if inside:
            return min(inside)
        # No crossing between the means (very unequal weights): fall back to the midpoint
        # weighted by the spreads.
        return mr + (ma - mr) * sr / (sr + sa)
