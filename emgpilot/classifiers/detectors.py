"""Streaming detector stages: one self-calibrating on/off detector per signal family.

Each detector reduces fixed windows of its input stream to one scalar feature, keeps an
:class:`~emgpilot.classifiers.clustering.OnlineMixture` of that feature, and turns it into an
on/off state with hysteresis (on/release thresholds), a minimum duration and a refractory
period. It publishes its full state every window on ``detector.<name>`` for fusion, the GUI and
the recording.

Windows are aligned to absolute sample indices of the input (window ``j`` covers samples
``[j*step - window, j*step)``), so results never depend on how the stream was cut into chunks.

========== ========================= ================================================
detector   input                     feature (per window)
========== ========================= ================================================
activation forearm_emg.filtered      log of the mean per-electrode RMS (any forearm effort)
fist       forearm_emg.filtered      mean per-electrode log RMS (broad, all-compartment effort)
stiffen    upper_emg.envelope        min over biceps/triceps of log level above that
                                     muscle's own floor (co-contraction, not elbow flexion)
rotation   forearm_imu.resampled     log(|gyro x| + g0), direction = sign of gyro x
========== ========================= ================================================

The activation detector also runs the wrist network (:mod:`emgpilot.classifiers.wrist`) on
the windows where the forearm is (nearly) active and publishes its class probabilities on
``wrist``.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from emgpilot.classifiers.clustering import MixtureConfig, OnlineMixture
from emgpilot.signals.pipeline import Stage
from emgpilot.signals.streams import Chunk, Message, StreamInfo

log = logging.getLogger(__name__)

STATE_CHANNELS: tuple[str, ...] = (
    "value",
    "threshold",
    "release",
    "rest_mean",
    "active_mean",
    "rest_std",
    "active_std",
    "posterior",
    "armed",
    "active",
)
"""Channels of every ``detector.<name>`` stream (some detectors append more)."""

COL = {name: i for i, name in enumerate(STATE_CHANNELS)}

GAP_S = 0.25
"""Data-time jump (s) that counts as a break in the data (a gap): detectors restart their windows."""


@dataclass
class TimingConfig:
    """On/off logic of a detector, in decision windows.

    Parameters
    ----------
    min_on : consecutive windows above the on-threshold before the detector turns active.
    min_off : consecutive windows below the release threshold before it turns inactive.
    refractory : windows after turning inactive during which it cannot turn active again.
    """

    min_on: int = 2
    min_off: int = 2
    refractory: int = 4


@dataclass
class DetectorConfig:
    """Window, mixture and timing of one detector.

    ``window_s``/``step_s`` are rounded to whole samples of the input stream; the decision rate
    is the input rate divided by the step in samples.
    """

    window_s: float = 0.2
    step_s: float = 0.05
    mixture: MixtureConfig = field(default_factory=MixtureConfig)
    timing: TimingConfig = field(default_factory=TimingConfig)

    def samples(self, rate_hz: float) -> tuple[int, int]:
        """(window, step) in samples at ``rate_hz``."""
        return max(1, round(self.window_s * rate_hz)), max(1, round(self.step_s * rate_hz))


class WindowedDetector(Stage):
    """Base of the detectors: aligned windows -> scalar feature -> mixture -> on/off state.

    Subclasses implement :meth:`features` and may add channels (``extra_channels``).
    """

    extra_channels: tuple[str, ...] = ()

    def __init__(self, name: str, source: StreamInfo, cfg: DetectorConfig, window: int | None = None) -> None:
        self.window, self.step = cfg.samples(source.rate_hz)
        if window is not None:
            self.window = window
        self.name = f"detector.{name}"
        self.detector = name
        self.source = source
        self.inputs = (source.name,)
        self.cfg = cfg
        self.rate_hz = source.rate_hz / self.step
        channels = STATE_CHANNELS + self.extra_channels
        self.state_info = StreamInfo(f"detector.{name}", "detector", self.rate_hz, channels, ("1",) * len(channels))
        self.outputs = (self.state_info,)
        self.mixture = OnlineMixture(cfg.mixture)
        self.reset()

    # ----------------------------------------------------------------- subclass API
    def features(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Feature of each window ``[B, W, C]``: ``(values [B], extras [B, len(extra_channels)])``."""
        raise NotImplementedError

    def _values(self, raw: np.ndarray) -> np.ndarray:
        """Turn the per-window output of :meth:`features` into mixture values, at decision time
        (after any refit that precedes these windows). Default: the feature itself."""
        return raw

    def _before_refit(self) -> None:
        """Hook run right before each mixture refit."""

    def _after_windows(self, windows: np.ndarray, rows: np.ndarray, t: np.ndarray) -> list[Message]:
        """Hook after state rows were computed (extra outputs)."""
        return []

    # ----------------------------------------------------------------- state
    def reset(self) -> None:
        self.mixture.reset()
        n_ch = self.source.n_channels
        self._tail_x = np.zeros((0, n_ch))
        self._tail_t = np.zeros(0)
        self._n_seen = 0  # input samples seen
        self._last_t = -math.inf  # time of the last input sample
        self._next_j = math.ceil(self.window / self.step)  # next window index to emit
        self._count_on = 0
        self._count_off = 0
        self._active = False
        self._refractory = 0

    def state_dict(self) -> dict[str, Any]:
        return {
            "tail_x": self._tail_x.copy(),
            "tail_t": self._tail_t.copy(),
            "n_seen": self._n_seen,
            "last_t": self._last_t,
            "next_j": self._next_j,
            "timing": np.array([self._count_on, self._count_off, int(self._active), self._refractory]),
            "mixture": self.mixture.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._tail_x = np.asarray(state["tail_x"], dtype=np.float64).copy()
        self._tail_t = np.asarray(state["tail_t"], dtype=np.float64).copy()
        self._n_seen = int(state["n_seen"])
        self._last_t = float(state["last_t"])
        self._next_j = int(state["next_j"])
        c_on, c_off, active, refr = (int(v) for v in np.asarray(state["timing"]))
        self._count_on, self._count_off, self._active, self._refractory = c_on, c_off, bool(active), refr
        self.mixture.load_state_dict(state["mixture"])

    # ----------------------------------------------------------------- processing
    def process(self, msg: Message) -> list[Message]:
        if not isinstance(msg, Chunk) or len(msg) == 0:
            return []
        # A jump in data time (samples missing for longer than GAP_S) ends any gesture: the
        # windows restart after it and the on/off state is reset.
        t_in = np.asarray(msg.t, dtype=np.float64)
        if len(t_in) <= 16:
            # Live-sized chunks: a Python loop is ~15x cheaper than the numpy calls (same float64
            # arithmetic, same cuts).
            cuts, prev_t = [], self._last_t
            for i, t_i in enumerate(t_in.tolist()):
                if t_i - prev_t > GAP_S:
                    cuts.append(i)
                prev_t = t_i
        else:
            prev = np.concatenate([[self._last_t], t_in[:-1]])
            cuts = np.flatnonzero(t_in - prev > GAP_S).tolist()
        self._last_t = float(t_in[-1])
        if not cuts:
            return self._process_piece(msg.data, t_in)
        out: list[Message] = []
        edges = [0, *cuts, len(t_in)]
        for a, b in itertools.pairwise(edges):
            if a in cuts:
                self._restart_after_gap()
            if b > a:
                out.extend(self._process_piece(msg.data[a:b], t_in[a:b]))
        return out

    def _restart_after_gap(self) -> None:
        self._tail_x = self._tail_x[:0]
        self._tail_t = self._tail_t[:0]
        self._next_j = max(self._next_j, math.ceil((self._n_seen + self.window) / self.step))
        self._count_on = self._count_off = 0
        self._active = False
        self._refractory = 0

    def _process_piece(self, data: np.ndarray, t_in: np.ndarray) -> list[Message]:
        w, s = self.window, self.step
        x = np.concatenate([self._tail_x, data.astype(np.float64, copy=False)])
        t = np.concatenate([self._tail_t, t_in])
        a0 = self._n_seen - len(self._tail_t)  # absolute index of x[0]
        self._n_seen += len(t_in)
        last_j = self._n_seen // s
        keep = min(w - 1, len(x)) if w > 1 else 0
        self._tail_x = x[len(x) - keep :].copy()
        self._tail_t = t[len(t) - keep :].copy()
        if last_j < self._next_j:
            return []
        js = np.arange(self._next_j, last_j + 1)
        self._next_j = last_j + 1
        starts = js * s - w - a0
        windows = np.ascontiguousarray(sliding_window_view(x, w, axis=0)[starts].transpose(0, 2, 1))  # [B, W, C]
        t_win = t[starts + w - 1]
        values, extras = self.features(windows)
        rows = self._decide(values)
        if self.extra_channels:
            rows = np.hstack([rows, extras])
        out: list[Message] = [Chunk(self.state_info, t_win, rows.astype(np.float32))]
        out.extend(self._after_windows(windows, rows, t_win))
        return out

    def _decide(self, raw: np.ndarray) -> np.ndarray:
        """State rows for consecutive windows, refitting the mixture at fixed counts."""
        rows = np.empty((len(raw), len(STATE_CHANNELS)))
        mix = self.mixture
        i = 0
        n = len(raw)
        while i < n:
            if mix.due:
                self._before_refit()
                mix.refit()
            k = mix.windows_until_due()
            k = n - i if k == 0 else min(k, n - i)
            seg = self._values(raw[i : i + k])
            rows[i : i + k] = self._segment_rows(seg)
            mix.add(seg)
            i += k
        if mix.due:
            self._before_refit()
            mix.refit()
        return rows

    def _segment_rows(self, seg: np.ndarray) -> np.ndarray:
        mix = self.mixture
        rows = np.empty((len(seg), len(STATE_CHANNELS)))
        rows[:, COL["value"]] = seg
        rows[:, COL["threshold"]] = mix.thr_on
        rows[:, COL["release"]] = mix.thr_off
        rows[:, COL["rest_mean"]] = mix.rest_mean
        rows[:, COL["active_mean"]] = mix.active_mean
        rows[:, COL["rest_std"]] = mix.rest_std
        rows[:, COL["active_std"]] = mix.active_std
        rows[:, COL["posterior"]] = mix.posterior(seg)
        armed = mix.armed
        rows[:, COL["armed"]] = float(armed)
        active = rows[:, COL["active"]]
        if not armed:
            active[:] = 0.0
            self._active = False
            self._count_on = self._count_off = 0
            return rows
        thr_on, thr_off = mix.thr_on, mix.thr_off
        timing = self.cfg.timing
        # Fast path: idle and nothing crosses the on-threshold in this segment.
        if not self._active and self._refractory == 0 and float(seg.max()) <= thr_on:
            self._count_on = 0
            active[:] = 0.0
            return rows
        c_on, c_off, act, refr = self._count_on, self._count_off, self._active, self._refractory
        for i, v in enumerate(seg.tolist()):
            if refr > 0:
                refr -= 1
                act = False
                c_on = 0
            elif not act:
                c_on = c_on + 1 if v > thr_on else 0
                if c_on >= timing.min_on:
                    act, c_off = True, 0
            else:
                c_off = c_off + 1 if v < thr_off else 0
                if c_off >= timing.min_off:
                    act, c_on, refr = False, 0, timing.refractory
            active[i] = float(act)
        self._count_on, self._count_off, self._active, self._refractory = c_on, c_off, act, refr
        return rows


# --------------------------------------------------------------------------- detectors

_EPS = 0.5  # counts; keeps log() finite on flat channels


def _log_rms(windows: np.ndarray) -> np.ndarray:
    """Per-channel log RMS ``[B, C]`` of windows ``[B, W, C]``."""
    return 0.5 * np.log(np.mean(windows * windows, axis=1) + _EPS**2)


class WristClassifier(Protocol):
    """What the activation detector needs from the wrist network (see ``emgpilot.classifiers.wrist``)."""

    classes: tuple[str, ...]
    window: int
    channels: int

    def predict_proba(self, windows: np.ndarray) -> np.ndarray: ...


_BATCH = 16


def tiled(fn: Any, x: np.ndarray, *args: Any) -> np.ndarray:
    """``fn(x, *args)`` computed on tiles of exactly ``_BATCH`` rows (the last one zero-padded).

    Matrix products and einsum pick their blocking and contraction path from the array shapes,
    so a window's result would differ in the last bits with the batch it happened to share (i.e.
    with chunking). Calling the model only with one fixed shape makes every row go through the
    same arithmetic.
    """
    n = len(x)
    out = []
    for a in range(0, n, _BATCH):
        tile = x[a : a + _BATCH]
        if len(tile) < _BATCH:
            tile = np.concatenate([tile, np.zeros((_BATCH - len(tile), *x.shape[1:]), dtype=x.dtype)])
        out.append(fn(tile, *args)[: min(_BATCH, n - a)])
    return np.concatenate(out)


ROTATION_MODES = ("auto", "estimator", "infomax", "none")
ROTATION_STREAM = "wrist.rotation"
INFOMAX_HISTORY = 256  # active windows kept for choosing the electrode shift
INFOMAX_MIN = 60  # active windows needed before the first choice
INFOMAX_EVERY = 30  # active windows between choices
INFOMAX_MARGIN = 0.02
ESTIMATOR_EVERY = 4  # active windows per rotation-estimator update
CALIBRATION_MOVES = (-1, 0, 1)  # electrode turns of the band since a wearer calibration that are followed
CALIBRATION_TRACK_MIN = 100  # active windows before the turn may change
CALIBRATION_TRACK_WINDOWS = 200  # averaging span of the fit under each turn
CALIBRATION_MOVE_NATS = 8.0  # lead per window (log density) another turn needs


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def _resolve_rotation_mode(mode: str, wrist: WristClassifier | None) -> str:
    """How the armband's rotation is handled for this model.

    ``estimator``: the network scores gesture and electrode shift jointly and
    :class:`emgpilot.classifiers.wrist.RotationEstimator` accumulates the wearer's shift from
    active windows; ``infomax``: choose the shift that makes the model's answers most informative
    (see :meth:`ActivationDetector._infomax_shift`); ``none``: windows as they are. ``auto``
    picks the estimator when the model supports it, else none.
    """
    if wrist is None:
        return "none"
    has_logits = hasattr(wrist, "features") and hasattr(wrist, "logits_from_features")
    joint = has_logits and hasattr(wrist, "logits_all_shifts")
    if mode == "auto":
        return "estimator" if joint else "none"
    if mode == "estimator" and not joint:
        raise ValueError("this wrist model does not score electrode shifts (no rotation estimator)")
    if mode == "infomax" and not has_logits:
        raise ValueError("this wrist model does not expose features/logits for the infomax rotation choice")
    return mode


class ActivationDetector(WindowedDetector):
    """Any forearm effort: log of the mean per-electrode RMS of ``forearm_emg.filtered``.

    With a wrist model it also publishes the model's class probabilities on ``wrist`` for the
    windows whose value reaches the release threshold (others carry NaN), and keeps a per-wearer
    estimate of the armband's rotation from the active windows when the model supports it.
    """

    def __init__(
        self,
        source: StreamInfo,
        cfg: DetectorConfig,
        wrist: WristClassifier | None = None,
        rotation_mode: str = "auto",
        mirror: bool = False,
        max_shift: int | None = None,
        escape_nats: float | None = None,
        prior_shift: int = 0,
        invariant: WristClassifier | None = None,
        invariant_windows: int = 0,
        calibration: Any = None,
    ) -> None:
        if rotation_mode not in ROTATION_MODES:
            raise ValueError(f"wrist rotation mode must be one of {ROTATION_MODES}, not {rotation_mode!r}")
        self.wrist = wrist
        # A left arm mirrors the electrode ring (the network learnt right arms); no rotation undoes
        # that, so the electrode order is reversed before the network (and its rotation estimate).
        self.mirror = bool(mirror)
        self.max_shift = max_shift
        self.escape_nats = escape_nats
        self.prior_shift = int(prior_shift)
        self.rotation_mode = _resolve_rotation_mode(rotation_mode, wrist)
        # The rotation-invariant companion classifies while the rotation estimate is thin.
        self.invariant = invariant if self.rotation_mode == "estimator" and invariant_windows > 0 else None
        self.invariant_windows = int(invariant_windows)
        if self.invariant is not None and tuple(self.invariant.classes) != tuple(wrist.classes):  # type: ignore[union-attr]
            raise ValueError(
                f"the rotation-invariant network's classes {tuple(self.invariant.classes)} differ from the "
                f"wrist network's {tuple(wrist.classes)}"  # type: ignore[union-attr]
            )
        # The wearer's own calibration (emgpilot.classifiers.calibration), if they made one.
        self.calibration = calibration if wrist is not None else None
        if self.calibration is not None:
            if not hasattr(wrist, "features"):
                raise ValueError("a wearer calibration needs a wrist model that exposes its window features")
            self.calibration.check_model(wrist)
        # With a wrist model the windows are the model's (both see the same samples).
        super().__init__("activation", source, cfg, window=None if wrist is None else int(wrist.window))
        if wrist is not None:
            if wrist.channels != source.n_channels:
                raise ValueError(
                    f"the wrist network needs {wrist.channels} forearm electrodes (a Myo armband); "
                    f"{source.name} has {source.n_channels}"
                )
            self.wrist_info = StreamInfo(
                "wrist", "probabilities", self.rate_hz, tuple(wrist.classes), ("1",) * len(wrist.classes)
            )
            self.outputs = (self.state_info, self.wrist_info)
            if self.rotation_mode != "none":
                # Per classified window: the electrode shift it used, the one the wearer's evidence
                # favours with no bound (the GUI shows both so a band worn far round is noticed),
                # and the rotation-invariant companion's weight in its answer.
                self.rotation_info = StreamInfo(
                    ROTATION_STREAM,
                    "state",
                    self.rate_hz,
                    ("shift", "evidence_shift", "companion"),
                    ("electrodes", "electrodes", "1"),
                )
                self.outputs = (*self.outputs, self.rotation_info)

    def reset(self) -> None:
        super().reset()
        self._estimator = None
        self._est_count = 0
        self._cal_fit = np.zeros(len(CALIBRATION_MOVES))
        self._cal_n = 0
        self._cal_move = 0
        if self.rotation_mode == "estimator":
            from emgpilot.classifiers.wrist import RotationEstimator

            self._estimator = RotationEstimator(
                model=self.wrist, max_shift=self.max_shift, escape_nats=self.escape_nats, prior_shift=self.prior_shift
            )
        n_feat = 0
        if self.rotation_mode == "infomax":
            probe = self.wrist.features(np.zeros((1, self.window, self.source.n_channels), np.float32))  # type: ignore[union-attr]
            n_feat = probe.shape[1]
        self._im_ring = np.zeros((INFOMAX_HISTORY, n_feat, self.source.n_channels), dtype=np.float32)
        self._im_count = 0
        self._im_shift = 0

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self._estimator is not None:
            state["rotation"] = {**self._estimator.state_dict(), "count": self._est_count}
        state["infomax"] = {"ring": self._im_ring.copy(), "count": self._im_count, "shift": self._im_shift}
        state["calibration"] = {"fit": self._cal_fit.copy(), "count": self._cal_n, "move": self._cal_move}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        rot = state.pop("rotation", None)
        im = state.pop("infomax")
        cal = state.pop("calibration")
        super().load_state_dict(state)
        self._cal_fit = np.asarray(cal["fit"], dtype=np.float64).copy()
        self._cal_n = int(cal["count"])
        self._cal_move = int(cal["move"])
        if self._estimator is not None and rot is not None:
            rot = dict(rot)
            self._est_count = int(rot.pop("count"))
            self._estimator.load_state_dict(rot)
        self._im_ring = np.asarray(im["ring"], dtype=np.float32).copy()
        self._im_count = int(im["count"])
        self._im_shift = int(im["shift"])

    @property
    def electrode_shift(self) -> int:
        """Electrode shift currently applied before the wrist network (0 = none)."""
        if self._estimator is not None:
            return int(self._estimator.shift)
        return self._im_shift

    @property
    def rotation_windows(self) -> int:
        """Active windows the rotation estimate rests on (0 without an estimator)."""
        return self._estimator.n_windows if self._estimator is not None else 0

    def features(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rms = np.sqrt(np.mean(windows * windows, axis=1))
        return np.log(rms.mean(axis=1) + _EPS), np.zeros((len(windows), 0))

    def _after_windows(self, windows: np.ndarray, rows: np.ndarray, t: np.ndarray) -> list[Message]:
        if self.wrist is None:
            return []
        k = len(self.wrist.classes)
        probs = np.full((len(windows), k), np.nan, dtype=np.float32)
        rotation = np.full((len(windows), 3), np.nan, dtype=np.float32)
        near = (rows[:, COL["value"]] >= rows[:, COL["release"]]) | (rows[:, COL["active"]] > 0)
        near &= rows[:, COL["armed"]] > 0
        n_near = int(near.sum())
        if n_near:
            x = windows[near].astype(np.float32)
            if self.mirror:
                x = np.ascontiguousarray(x[:, :, ::-1])
            feats = None
            if self.rotation_mode == "none":
                out = tiled(self.wrist.predict_proba, x)
            else:
                feats = tiled(self.wrist.features, x)
                # Only windows the detector calls active teach the armband rotation; each window
                # is classified with the shift known before it (so chunking never matters).
                shifts, free, taught = self._adapt_rotation(feats, rows[near, COL["active"]] > 0)
                weight = self._companion_weight(taught)
                rotation[near] = np.stack([shifts, free, weight], axis=1)
                out = np.empty((n_near, k), dtype=np.float32)
                for shift in np.unique(shifts).tolist():
                    sel = shifts == shift
                    out[sel] = _softmax(tiled(self.wrist.logits_from_features, feats[sel], shift))
                if self.invariant is not None:
                    out = self._blend_invariant(out, feats, weight)
            if self.calibration is not None:
                out = self._blend_calibration(out, x, feats, rows[near, COL["active"]] > 0)
            probs[near] = out
        if self.rotation_mode == "none":
            return [Chunk(self.wrist_info, t, probs)]
        return [Chunk(self.wrist_info, t, probs), Chunk(self.rotation_info, t, rotation)]

    def _blend_calibration(
        self, out: np.ndarray, x: np.ndarray, feats: np.ndarray | None, active: np.ndarray
    ) -> np.ndarray:
        """The network's answers ``out`` combined with the wearer's calibration, which was fitted in
        the wearer's own electrode order (``feats``, if given, are in the network's: mirrored on a
        left arm). The active windows also tell whether the band has turned since the calibration
        (:meth:`_follow_band`); each window uses the turn known before it."""
        from emgpilot.classifiers.wrist import roll_channels

        cal = self.calibration
        if feats is None:
            feats = tiled(self.wrist.features, x)  # type: ignore[union-attr]
        own = feats[:, :, ::-1] if self.mirror else feats
        classes = self.wrist.classes  # type: ignore[union-attr]
        if cal.precision is None:
            return cal.blend(out, own, classes)
        moves = self._follow_band(own, active)
        result = np.empty_like(out)
        for move in np.unique(moves).tolist():
            sel = moves == move
            result[sel] = cal.blend(out[sel], roll_channels(own[sel], move, axis=2), classes)
        return result

    def _follow_band(self, own: np.ndarray, active: np.ndarray) -> np.ndarray:
        """The electrode turn since the calibration for each window (in order), learning from the
        active ones: a running mean of how well the window fits the wearer's calibrated gestures
        under each turn; another turn is taken once it leads by :data:`CALIBRATION_MOVE_NATS`."""
        from emgpilot.classifiers.wrist import roll_channels

        act = np.flatnonzero(active)
        fit = np.stack([self.calibration.log_density(roll_channels(own[act], m, axis=2)) for m in CALIBRATION_MOVES], 1)
        moves = np.empty(len(own), dtype=np.int64)
        j = 0
        for i in range(len(own)):
            moves[i] = self._cal_move
            if j < len(act) and act[j] == i:
                self._cal_n += 1
                rate = max(1.0 / self._cal_n, 1.0 / CALIBRATION_TRACK_WINDOWS)
                self._cal_fit += rate * (fit[j] - self._cal_fit)
                j += 1
                if self._cal_n >= CALIBRATION_TRACK_MIN:
                    best = int(np.argmax(self._cal_fit))
                    lead = self._cal_fit[best] - self._cal_fit[CALIBRATION_MOVES.index(self._cal_move)]
                    if lead > CALIBRATION_MOVE_NATS:
                        log.info(
                            "the band seems turned by %+d electrode(s) since the calibration: following it",
                            CALIBRATION_MOVES[best],
                        )
                        self._cal_move = CALIBRATION_MOVES[best]
        return moves

    def _companion_weight(self, taught: np.ndarray) -> np.ndarray:
        """The companion's weight per window: ``1 - taught / N`` (taught before the window), at least 0."""
        if self.invariant is None:
            return np.zeros(len(taught))
        return np.clip(1.0 - taught / self.invariant_windows, 0.0, 1.0)

    def _blend_invariant(self, out: np.ndarray, feats: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Blend the companion's probabilities in (geometric mean) with per-window weights ``w``."""
        cold = w > 0
        if not cold.any():
            return out
        inv = _softmax(tiled(self.invariant.logits_from_features, feats[cold], 0))  # type: ignore[union-attr]
        wc = w[cold][:, None]
        logp = (1.0 - wc) * np.log(out[cold] + 1e-9) + wc * np.log(inv + 1e-9)
        blended = out.copy()
        blended[cold] = _softmax(logp)
        return blended

    def _adapt_rotation(self, feats: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Electrode shift for each window (in order), learning from the active ones; the shift
        the evidence favours without the bound; and how many windows had taught the estimate
        before each window."""
        shifts = np.empty(len(feats), dtype=np.int64)
        free = np.empty(len(feats), dtype=np.int64)
        taught = np.empty(len(feats), dtype=np.float64)
        if self._estimator is not None:
            # Every ESTIMATOR_EVERY-th active window teaches the estimator. The evidence of the
            # chosen windows is computed in one padded batch (bit-identical per row), then added
            # in order with the estimator's own forgetting rule, so each window is classified
            # with the shift known before it whatever the chunking.
            from emgpilot.classifiers.wrist import shift_evidence

            est = self._estimator
            act_idx = np.flatnonzero(active)
            counts = self._est_count + np.arange(len(act_idx))
            teach = act_idx[counts % ESTIMATOR_EVERY == 0]
            self._est_count += len(act_idx)
            evidence = {}
            if len(teach):
                ev = tiled(lambda f: shift_evidence(self.wrist, f), feats[teach])
                evidence = dict(zip(teach.tolist(), ev, strict=True))
            # The estimate only changes when a window teaches it: choose once per change.
            a = 0
            for b in [*(i + 1 for i in sorted(evidence)), len(feats)]:
                if b > a:
                    shifts[a:b] = est.choose(est.scores, est.n_windows)
                    free[a:b] = int(np.argmax(est.scores))
                    taught[a:b] = est.n_windows
                    if b - 1 in evidence:
                        est.teach(evidence[b - 1])
                    a = b
            return shifts, free, taught
        taught[:] = self._im_count
        for i in range(len(feats)):
            shifts[i] = self._im_shift
            if active[i]:
                self._im_ring[self._im_count % INFOMAX_HISTORY] = feats[i]
                self._im_count += 1
                if self._im_count >= INFOMAX_MIN and self._im_count % INFOMAX_EVERY == 0:
                    self._im_shift = self._infomax_shift()
        return shifts, shifts.copy(), taught

    def _infomax_shift(self) -> int:
        """The electrode shift under which the network's decisions on this wearer's recent active
        windows carry the most information (confident per window, diverse across windows).

        A network trained on other people sees a rotated armband as an unfamiliar pattern and
        tends to give one class to everything; at the right rotation the wearer's different
        gestures get different, confident answers. Mutual information between windows and
        predicted (non-rest) class = H(mean prediction) - mean H(prediction).
        """
        n = min(self._im_count, INFOMAX_HISTORY)
        feats = self._im_ring[:n]
        best_shift, best_mi = self._im_shift, -math.inf
        scores = {}
        for shift in range(self.source.n_channels):
            p = _softmax(tiled(self.wrist.logits_from_features, feats, shift))  # type: ignore[union-attr]
            q = p[:, 1:] / np.maximum(p[:, 1:].sum(axis=1, keepdims=True), 1e-9)
            h_each = float(-(q * np.log(q + 1e-9)).sum(axis=1).mean())
            mq = q.mean(axis=0)
            scores[shift] = float(-(mq * np.log(mq + 1e-9)).sum()) - h_each
        for shift, mi in scores.items():
            if mi > best_mi + 1e-12:
                best_shift, best_mi = shift, mi
        # Hysteresis: keep the current shift unless another is clearly better.
        if best_mi < scores[self._im_shift] + INFOMAX_MARGIN:
            return self._im_shift
        return best_shift


class FistDetector(WindowedDetector):
    """Broad forearm effort: mean over electrodes of log RMS (a geometric mean).

    A clenched fist recruits flexors and extensors all around the forearm, so every electrode
    rises; a wrist flexion or extension mostly raises one side. The geometric mean rewards the
    broad pattern more than the arithmetic mean used by the activation detector.
    """

    def __init__(self, source: StreamInfo, cfg: DetectorConfig) -> None:
        super().__init__("fist", source, cfg)

    def features(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _log_rms(windows).mean(axis=1), np.zeros((len(windows), 0))


class StiffenDetector(WindowedDetector):
    """Upper-arm co-contraction: both biceps and triceps well above their own rest floor.

    Feature: ``min(level_biceps - floor_biceps, level_triceps - floor_triceps)`` with ``level`` the
    log mean envelope of the window and ``floor`` each muscle's low percentile over the rolling
    history (refreshed at every refit, and the stored history is rewritten with the new floors so
    the mixture always sees one scale). A plain elbow flexion raises only the biceps, so the
    minimum stays near zero.
    """

    extra_channels = ("biceps_level", "triceps_level")

    def __init__(self, source: StreamInfo, cfg: DetectorConfig, floor_quantile: float = 0.1) -> None:
        self.floor_quantile = floor_quantile
        super().__init__("stiffen", source, cfg)
        if source.n_channels != 2:
            raise ValueError(
                f"stiffen detector needs 2 channels (biceps, triceps), {source.name} has {source.n_channels}"
            )

    def reset(self) -> None:
        super().reset()
        self._levels = np.zeros((self.cfg.mixture.history, 2))
        self._floor = np.full(2, np.nan)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["levels"] = self._levels.copy()
        state["floor"] = self._floor.copy()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        self._levels = np.asarray(state.pop("levels"), dtype=np.float64).copy()
        self._floor = np.asarray(state.pop("floor"), dtype=np.float64).copy()
        super().load_state_dict(state)

    def features(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        level = np.log(np.mean(np.abs(windows), axis=1) + _EPS)  # [B, 2]
        if np.isnan(self._floor).any():
            # Before the first refit: the first window's levels are the best guess of rest.
            self._floor = level[0].copy()
        return level, level

    def _values(self, raw: np.ndarray) -> np.ndarray:
        # Store the raw levels in the ring aligned with the mixture history, at decision time
        # (after any refit that precedes these windows), so refits never see future windows.
        h = self.cfg.mixture.history
        n0 = self.mixture._n_hist
        keep = raw[-h:]
        idx = (n0 + len(raw) - len(keep) + np.arange(len(keep))) % h
        self._levels[idx] = keep
        return np.min(raw - self._floor, axis=1)

    def _before_refit(self) -> None:
        mix = self.mixture
        h = self.cfg.mixture.history
        n_hist = mix._n_hist
        n = min(n_hist, h)
        if n == 0:
            return
        if n_hist <= h:
            lv = self._levels[:n]
        else:
            start = n_hist % h
            lv = np.concatenate([self._levels[start:], self._levels[:start]])
        self._floor = np.quantile(lv, self.floor_quantile, axis=0)
        values = np.min(lv - self._floor, axis=1)
        # Rewrite the mixture's history on the new scale (same ring positions).
        if n_hist <= h:
            mix._buf[:n] = values
        else:
            start = n_hist % h
            mix._buf[start:] = values[: h - start]
            mix._buf[:start] = values[h - start :]


class RotationDetector(WindowedDetector):
    """Forearm rotation: gyroscope rate about the forearm axis (x), with direction.

    Feature: ``log(|mean gx| + g0)`` over the window (deg/s); ``direction`` is +1 when the mean
    rate is positive. ``abs_min_rate_dps`` is a physiological floor: a deliberate forearm
    rotation turns faster than arm swing while waving or walking.
    """

    extra_channels = ("rate",)

    def __init__(self, source: StreamInfo, cfg: DetectorConfig, g0_dps: float = 5.0, axis: str = "gx") -> None:
        self.g0 = g0_dps
        if axis not in source.channels:
            raise ValueError(f"rotation detector needs channel {axis!r}; {source.name} has {source.channels}")
        self.axis = source.channels.index(axis)
        super().__init__("rotation", source, cfg)

    def features(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rate = windows[:, :, self.axis].mean(axis=1)
        return np.log(np.abs(rate) + self.g0), rate[:, None]
