"""Wrist flexion / extension network: a tiny per-window classifier of forearm EMG.

The network sees one window of the causally conditioned stream ``forearm_emg.filtered``
(band-pass 20-95 Hz + 50/60 Hz notches, see :mod:`emgpilot.signals.preprocess`) and returns
probabilities of ``rest``, ``fist``, ``wrist_flexion`` and ``wrist_extension``, and of three
forearm motions outside the vocabulary (``radial_deviation``, ``ulnar_deviation``,
``hand_open``) so that fusion can reject them.

Design
------
* Input features, per electrode (:func:`window_features`): log mean absolute value, log
  waveform length, zero-crossing and slope-sign-change rates (Hudgins), the electrode's log
  amplitude relative to the mean over the eight electrodes (the spatial pattern, free of the
  wearer's overall signal level) and the log ratio of waveform length to amplitude (a
  spectral-shape cue, also level free).
* Network: circular convolutions across the eight electrodes (the armband is a ring), then
  dense layers. Trained in PyTorch (:mod:`emgpilot.classifiers.wrist_train`); inference is a
  plain numpy forward pass over weights read from a safetensors file (no pickles, no torch
  at run time). The shipped model averages three such networks (seeds 0-2), ~150 us per
  decision.
* Armband rotation: the Myo sits rotated differently on each wearer. The network is trained
  jointly over gesture and electrode shift: the same network scores all eight circular shifts
  of a window, and the loss asks for the right class *at shift 0* against all 8 x 7
  (class, shift) pairs. It therefore learns to be unsure at wrong shifts, so
  ``log p(shift | window)`` summed over a wearer's unlabelled active windows
  (:func:`estimate_shift`, streaming: :class:`RotationEstimator`) finds how the armband sits,
  and ``WristModel.rotation`` rolls the electrodes back. See ``docs/readme/wrist.md`` for the
  measured effect.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from emgpilot.signals.filters import design_bandpass, design_notches
from emgpilot.signals.preprocess import EMGFilterConfig

log = logging.getLogger(__name__)

CLASSES: tuple[str, ...] = ("rest", "fist", "wrist_flexion", "wrist_extension")
# Forearm motions outside the vocabulary that the network also learns (Cote-Allard records them):
# so it can say "none of ours", and so that such motions do not pull the rotation estimate.
OTHER_CLASSES: tuple[str, ...] = ("radial_deviation", "ulnar_deviation", "hand_open")
N_CHANNELS = 8
FS_HZ = 200.0
DEFAULT_WINDOW = 40  # 200 ms at 200 Hz
FEATURE_NAMES: tuple[str, ...] = ("log_mav", "log_wl", "zc", "ssc", "rel_log_mav", "log_wl_over_mav")
N_FEATURES = len(FEATURE_NAMES)
_EPS = 0.1  # counts; keeps log() finite on flat (disconnected) channels
WEIGHTS_PACKAGE = "emgpilot.classifiers"  # weights live in its weights/ folder (package data)
WEIGHTS_NAME = "wrist"
INVARIANT_NAME = "wrist_invariant"
"""The rotation-invariant companion network (trained with random electrode shifts): it classifies
a new wearer's first gestures while the rotation estimate rests on few windows."""


def conditioning_sos(fs: float = FS_HZ, cfg: EMGFilterConfig | None = None) -> np.ndarray:
    """The SOS cascade :class:`~emgpilot.signals.preprocess.EMGConditioner` applies (band-pass + notches).

    Training conditions raw recordings with exactly this causal filter so the network sees
    what ``forearm_emg.filtered`` carries live.
    """
    cfg = cfg or EMGFilterConfig()
    sos = design_bandpass(cfg.band_hz[0], cfg.band_hz[1], fs, cfg.order)
    notch = design_notches(cfg.notch_hz, fs, cfg.notch_q)
    return sos if notch is None else np.vstack([sos, notch])


def window_features(windows: np.ndarray) -> np.ndarray:
    """Per-electrode features of filtered EMG windows.

    Parameters
    ----------
    windows : ``[B, W, C]`` filtered EMG (counts).

    Returns
    -------
    ``[B, N_FEATURES, C]`` float32, in the order of :data:`FEATURE_NAMES`.
    """
    x = np.asarray(windows, dtype=np.float32)
    if x.ndim != 3:
        raise ValueError(f"windows must be [batch, samples, channels], got shape {x.shape}")
    w = x.shape[1]
    if w < 3:
        raise ValueError(f"windows need at least 3 samples, got {w}")
    d = np.diff(x, axis=1)
    log_mav = np.log(np.abs(x).mean(axis=1) + _EPS)
    log_wl = np.log(np.abs(d).mean(axis=1) + _EPS)
    zc = (x[:, 1:] * x[:, :-1] < 0).mean(axis=1)
    ssc = (d[:, 1:] * d[:, :-1] < 0).mean(axis=1)
    rel = log_mav - log_mav.mean(axis=1, keepdims=True)
    ratio = log_wl - log_mav
    return np.stack([log_mav, log_wl, zc, ssc, rel, ratio], axis=1).astype(np.float32)


def signed_shift(shift: int, n: int = N_CHANNELS) -> int:
    """An electrode shift ``0..n-1`` as the nearest signed turn (7 -> -1): how far round the band sits."""
    shift = int(shift) % n
    return shift - n if shift > n // 2 else shift


def roll_channels(x: np.ndarray, shift: int, axis: int = -1) -> np.ndarray:
    """Rotate electrodes: output electrode ``i`` takes input electrode ``i + shift``."""
    return np.roll(x, -int(shift), axis=axis)


def shift_log_likelihood(model: WristModel, feats: np.ndarray) -> np.ndarray:
    """``log p(shift | window)`` ``[B, C]`` from the joint (gesture, shift) scores of the network."""
    return _shift_log_likelihood(model.logits_all_shifts(feats))


def _shift_log_likelihood(z: np.ndarray) -> np.ndarray:
    """``log p(shift | window)`` from joint logits ``z [B, C, K]``."""
    flat = z.reshape(z.shape[0], -1)
    m = flat.max(axis=1, keepdims=True)
    lse_all = m[:, 0] + np.log(np.exp(flat - m).sum(axis=1))
    zm = z.max(axis=2, keepdims=True)
    lse_shift = zm[..., 0] + np.log(np.exp(z - zm).sum(axis=2))
    return lse_shift - lse_all[:, None]


def shift_evidence(model: WristModel, feats: np.ndarray) -> np.ndarray:
    """Per-window evidence ``[B, C]`` about the wearer's electrode shift.

    ``log p(shift | window)`` weighted by the window's probability of not being rest (rest
    windows say nothing about where the muscles are).
    """
    z = model.logits_all_shifts(feats)  # [B, C, K]
    flat = z.reshape(z.shape[0], -1)
    p = np.exp(flat - flat.max(axis=1, keepdims=True))
    p = (p / p.sum(axis=1, keepdims=True)).reshape(z.shape)
    p_rest = p[:, :, model.classes.index("rest")].sum(axis=1)
    return _shift_log_likelihood(z) * (1.0 - p_rest)[:, None]


@lru_cache(maxsize=16)
def _bound_mask(n: int, max_shift: int) -> np.ndarray:
    """0 for the shifts within ``max_shift`` electrodes of 0 (around a ring of ``n``), -inf beyond."""
    k = np.arange(n)
    mask = np.where(np.minimum(k, n - k) > max_shift, -np.inf, 0.0)
    mask.flags.writeable = False
    return mask


@lru_cache(maxsize=16)
def _ring_index(n: int, k: int, offset: int) -> np.ndarray:
    """``idx[j, i] = (i + j + offset) % n``: row j picks ``np.roll(x, -(j + offset))`` of a ring of ``n``."""
    idx = (np.arange(n)[None, :] + np.arange(k)[:, None] + offset) % n
    idx.flags.writeable = False
    return idx


def best_shift(scores: np.ndarray, max_shift: int | None = None) -> int:
    """The shift with the highest score among those within ``max_shift`` electrodes of 0."""
    scores = np.asarray(scores, dtype=np.float64)
    if max_shift is not None:
        scores = scores + _bound_mask(len(scores), int(max_shift))
    return int(np.argmax(scores))


def estimate_shift(model: WristModel, feats: np.ndarray, max_shift: int | None = None) -> int:
    """Most likely electrode shift of a wearer from unlabelled windows (features ``[B, F, C]``)."""
    f = np.asarray(feats)
    if f.ndim != 3 or f.shape[0] == 0:
        return 0
    return best_shift(shift_evidence(model, f).sum(axis=0), max_shift)


@dataclass
class RotationEstimator:
    """Streaming estimate of the armband's rotation on the current wearer (no labels needed).

    Accumulates :func:`shift_evidence` of the windows it is given, with exponential forgetting
    (so a slipped armband is followed), on top of a prior that favours the standard placement
    (shift 0). Use ``model.predict_proba(windows, rotation=estimator.shift)`` or set
    ``model.rotation = estimator.shift``. Feeding every 4th decision window is plenty.

    Parameters
    ----------
    model : the wrist model whose joint (gesture, shift) scores are used.
    prior_nats : head start of shift 0, in nats of evidence (a few confident active windows).
    halflife : windows after which old evidence counts half.
    max_shift : only shifts within this many electrodes of the standard placement are
        considered (None: any). The Myo is put on with its logo on the back of the forearm, so
        large rotations are rare, while the summed window evidence can be confidently wrong.
    escape_nats, escape_min_windows : with a bound, a shift beyond it is still taken once at
        least ``escape_min_windows`` windows were taught and it leads the best bounded shift by
        more than ``escape_nats`` per window (None: never).
    prior_shift : where the prior (and the bound) is centred: 0 = the standard placement, or
        the rotation this wearer's armband had last time (a returning wearer).
    """

    model: WristModel
    prior_nats: float = 20.0
    halflife: float = 2000.0
    max_shift: int | None = None
    escape_nats: float | None = None
    escape_min_windows: int = 200
    prior_shift: int = 0
    scores: np.ndarray = field(init=False)
    n_windows: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self.prior_shift = int(self.prior_shift) % self.model.channels
        self.reset()

    def prior(self) -> np.ndarray:
        """The prior scores: ``prior_nats`` on ``prior_shift``, 0 elsewhere."""
        prior = np.zeros(self.model.channels)
        prior[self.prior_shift] = self.prior_nats
        return prior

    def reset(self) -> None:
        self.scores = self.prior()
        self.n_windows = 0

    def update(self, windows: np.ndarray) -> int:
        """Add filtered windows ``[B, W, C]``; returns the current shift."""
        return self.update_features(self.model.features(windows))

    def update_features(self, feats: np.ndarray) -> int:
        """Like :meth:`update` for precomputed features ``[B, F, C]``."""
        if len(feats) == 0:
            return self.shift
        for row in shift_evidence(self.model, feats):
            self.teach(row)
        return self.shift

    def teach(self, evidence: np.ndarray) -> None:
        """Add one window's :func:`shift_evidence` row."""
        prior = self.prior()
        # Forget towards the prior, not towards zero, so the prior never fades away entirely.
        self.scores = prior + 0.5 ** (1.0 / self.halflife) * (self.scores - prior) + evidence
        self.n_windows += 1

    @property
    def shift(self) -> int:
        return self.choose(self.scores, self.n_windows)

    def choose(self, scores: np.ndarray, n_windows: int) -> int:
        """The shift for these ``scores`` after ``n_windows`` taught windows: the best within
        ``max_shift``, unless the best beyond it leads by more than ``escape_nats`` per window
        (an armband worn further round than the bound, seen clearly over many windows)."""
        free = int(np.argmax(scores))
        if self.max_shift is None:
            return free
        c = self.prior_shift
        bounded = (best_shift(np.roll(scores, -c), self.max_shift) + c) % len(scores)
        if bounded == free or self.escape_nats is None or n_windows < self.escape_min_windows:
            return bounded
        n_eff = min(n_windows, self.halflife / math.log(2.0))  # forgetting caps the evidence's weight
        if scores[free] - scores[bounded] > self.escape_nats * n_eff:
            return free
        return bounded

    def state_dict(self) -> dict[str, Any]:
        return {"scores": self.scores.copy(), "n_windows": self.n_windows}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        scores = np.asarray(state["scores"], dtype=np.float64)
        if scores.shape != (self.model.channels,):
            raise ValueError(f"rotation estimator state has shape {scores.shape}, expected ({self.model.channels},)")
        self.scores = scores.copy()
        self.n_windows = int(state["n_windows"])


def _mean_log_softmax(logits: list[np.ndarray], axis: int) -> np.ndarray:
    """Mean over networks of ``log_softmax(z, axis)`` (a normalised geometric mean of their answers)."""
    total = np.zeros_like(logits[0])
    for z in logits:
        m = z.max(axis=axis, keepdims=True)
        total += z - m - np.log(np.exp(z - m).sum(axis=axis, keepdims=True))
    return total / len(logits)


def _circ_conv(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Circular 1-D convolution over electrodes: ``x [B, Cin, E]``, ``weight [Cout, Cin, K]``."""
    k = weight.shape[2]
    half = k // 2
    e = x.shape[2]
    taps = x[:, :, _ring_index(e, k, -half)]  # [B, Cin, K, E]: tap j is np.roll(x, half - j)
    b, cin = taps.shape[:2]
    return np.matmul(weight.reshape(weight.shape[0], cin * k), taps.reshape(b, cin * k, e)) + bias[None, :, None]


@dataclass
class WristModel:
    """The shipped wrist network (numpy inference).

    ``classes`` (the vocabulary's :data:`CLASSES` first, then any motions outside it),
    ``window`` (samples at 200 Hz) and ``channels`` describe the input and output;
    ``rotation`` (electrode shift, default 0) is applied to every window before
    classification -- set it from a :class:`RotationEstimator` to compensate the armband's
    rotation on this wearer. With ``meta["members"]`` > 1 the weights hold several networks
    (tensors ``member<i>.<name>``, trained with different seeds) whose log-probabilities are
    averaged: one network's answer depends a lot on its seed.
    """

    tensors: dict[str, np.ndarray]
    meta: dict[str, Any]
    rotation: int = 0

    def __post_init__(self) -> None:
        self.classes: tuple[str, ...] = tuple(self.meta["classes"])
        self.window: int = int(self.meta["window"])
        self.channels: int = int(self.meta["channels"])
        self._mean = self.tensors["feature_mean"].astype(np.float32)
        self._std = self.tensors["feature_std"].astype(np.float32)
        self._n_conv = int(self.meta["arch"]["n_conv"])
        self._n_dense = int(self.meta["arch"]["n_dense"])
        n_members = int(self.meta.get("members", 1))
        if n_members == 1:
            self._members = [self.tensors]
        else:
            self._members = [
                {k.split(".", 1)[1]: v for k, v in self.tensors.items() if k.startswith(f"member{i}.")}
                for i in range(n_members)
            ]
        for i, member in enumerate(self._members):
            need = [f"conv{j}.{p}" for j in range(self._n_conv) for p in ("weight", "bias")]
            need += [f"dense{j}.{p}" for j in range(self._n_dense) for p in ("weight", "bias")]
            missing = set(need) - member.keys()
            if missing:
                raise ValueError(f"wrist weights: network {i} lacks tensors {sorted(missing)}")
        if self.classes[: len(CLASSES)] != CLASSES:
            raise ValueError(f"wrist weights declare classes {self.classes}, expected {CLASSES} first")

    def features(self, windows: np.ndarray) -> np.ndarray:
        """Per-electrode features ``[B, F, C]`` of raw filtered windows ``[B, W, C]``."""
        return window_features(windows)

    @property
    def n_members(self) -> int:
        return len(self._members)

    def _conv(self, h: np.ndarray, t: dict[str, np.ndarray]) -> np.ndarray:
        for i in range(self._n_conv):
            h = np.maximum(_circ_conv(h, t[f"conv{i}.weight"], t[f"conv{i}.bias"]), 0.0)
        return h

    def _head(self, h: np.ndarray, t: dict[str, np.ndarray]) -> np.ndarray:
        h = h.reshape(h.shape[0], -1)
        for i in range(self._n_dense):
            h = h @ t[f"dense{i}.weight"].T + t[f"dense{i}.bias"]
            if i < self._n_dense - 1:
                h = np.maximum(h, 0.0)
        return h

    def logits_from_features(self, feats: np.ndarray, rotation: int | None = None) -> np.ndarray:
        """Logits ``[B, K]`` of features ``[B, F, C]`` under electrode shift ``rotation`` (default: ``rotation``).

        Several networks: the mean of their log-probabilities.
        """
        shift = self.rotation if rotation is None else rotation
        h = (feats - self._mean) / self._std
        if shift:
            h = roll_channels(h, shift, axis=2)
        if len(self._members) == 1:
            return self._head(self._conv(h, self.tensors), self.tensors)
        return _mean_log_softmax([self._head(self._conv(h, t), t) for t in self._members], axis=1)

    def logits_all_shifts(self, feats: np.ndarray) -> np.ndarray:
        """Logits ``[B, C, K]`` of every window under every electrode shift.

        The circular convolutions commute with rolling the electrodes, so they run once. Several
        networks: the mean of their log-probabilities over all (shift, class) pairs.
        """
        h0 = (np.asarray(feats, dtype=np.float32) - self._mean) / self._std
        c = h0.shape[2]
        idx = _ring_index(c, c, 0)  # row s: np.roll(h, -s), every shift at once
        out = []
        for t in self._members:
            h = self._conv(h0, t)
            b, nh = h.shape[:2]
            rolled = np.moveaxis(h[:, :, idx], 2, 1).reshape(b * c, nh, c)
            out.append(self._head(rolled, t).reshape(b, c, -1))
        if len(out) == 1:
            return out[0]
        b, c, k = out[0].shape
        return _mean_log_softmax([z.reshape(b, c * k) for z in out], axis=1).reshape(b, c, k)

    def predict_proba(self, windows: np.ndarray, rotation: int | None = None) -> np.ndarray:
        """Class probabilities ``[B, len(classes)]`` for filtered windows ``[B, W, 8]`` (float32).

        ``rotation`` overrides ``self.rotation`` for this call.
        """
        x = np.asarray(windows, dtype=np.float32)
        if x.ndim != 3 or x.shape[2] != self.channels:
            raise ValueError(f"windows must be [batch, {self.window}, {self.channels}], got shape {x.shape}")
        if x.shape[1] != self.window:
            raise ValueError(f"windows must have {self.window} samples, got {x.shape[1]}")
        z = self.logits_from_features(self.features(x), rotation)
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def load_wrist_model(path: str | Path | None = None, shipped_name: str = WEIGHTS_NAME) -> WristModel:
    """Load wrist weights from a ``.safetensors`` file (metadata in the ``.json`` beside it).

    ``path=None`` loads the weights shipped in the package (``shipped_name``: :data:`WEIGHTS_NAME`
    or :data:`INVARIANT_NAME`). Only safetensors is read: a weights file cannot execute code.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load as st_load

    if path is None:
        base = resources.files(WEIGHTS_PACKAGE) / "weights"
        blob = (base / f"{shipped_name}.safetensors").read_bytes()
        meta_text = (base / f"{shipped_name}.json").read_text(encoding="utf-8")
        where = f"package {WEIGHTS_PACKAGE}/weights/{shipped_name}.safetensors"
    else:
        p = Path(path)
        if p.suffix != ".safetensors":
            raise ValueError(f"wrist weights must be a .safetensors file, got {p}")
        meta_path = p.with_suffix(".json")
        if not p.is_file() or not meta_path.is_file():
            raise FileNotFoundError(f"wrist weights need both {p} and {meta_path}")
        blob = p.read_bytes()
        meta_text = meta_path.read_text(encoding="utf-8")
        where = str(p)
    try:
        tensors = st_load(blob)
        meta = json.loads(meta_text)
    except (ValueError, OSError, SafetensorError) as e:
        raise ValueError(f"cannot read wrist weights from {where}: {e}") from e
    missing = {"feature_mean", "feature_std"} - tensors.keys()
    if missing:
        raise ValueError(f"wrist weights in {where} lack tensors {sorted(missing)}")
    return WristModel(tensors={k: np.asarray(v, dtype=np.float32) for k, v in tensors.items()}, meta=meta)


def benchmark_latency(model: WristModel | None = None, n_calls: int = 2000, seed: int = 0) -> dict[str, float]:
    """Time one decision (a batch of one window) on one core; returns microseconds per call.

    BLAS is limited to one thread (and torch too, if imported; inference itself is numpy).
    """
    import sys

    from threadpoolctl import threadpool_limits

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    with threadpool_limits(limits=1):
        return _time_calls(model or load_wrist_model(), n_calls, seed)


def _time_calls(model: WristModel, n_calls: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 10, size=(1, model.window, model.channels)).astype(np.float32)
    for _ in range(50):
        model.predict_proba(x)
    times = np.empty(n_calls)
    for i in range(n_calls):
        t0 = time.perf_counter()
        model.predict_proba(x)
        times[i] = time.perf_counter() - t0
    us = times * 1e6
    return {"median_us": float(np.median(us)), "p99_us": float(np.quantile(us, 0.99)), "mean_us": float(us.mean())}
