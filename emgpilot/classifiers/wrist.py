"""Wrist flexion / extension network: a tiny per-window classifier of forearm EMG.

The network sees one window of the causally conditioned stream ``forearm_emg.filtered``
(band-pass 20-95 Hz + 50/60 Hz notches, see :mod:`emgpilot.signals.preprocess`) and returns
probabilities of ``rest``, ``fist``, ``wrist_flexion`` and ``wrist_extension``.

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
  at run time, ~tens of microseconds per decision).
* Armband rotation: the Myo sits rotated differently on each wearer. :class:`RotationEstimator`
  derives a per-wearer reference from the wearer's own unlabelled activity (the phase of the
  first circular harmonic of the mean spatial activity pattern) and ``WristModel.rotation``
  rolls the electrodes back to the canonical orientation the network was trained in. Training
  data is aligned the same way, with jitter, so estimation errors of about one electrode are
  tolerated. See ``docs/readme/wrist.md`` for the measured effect.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from emgpilot.signals.filters import design_bandpass, design_notches
from emgpilot.signals.preprocess import EMGFilterConfig

log = logging.getLogger(__name__)

CLASSES: tuple[str, ...] = ("rest", "fist", "wrist_flexion", "wrist_extension")
N_CHANNELS = 8
FS_HZ = 200.0
DEFAULT_WINDOW = 40  # 200 ms at 200 Hz
FEATURE_NAMES: tuple[str, ...] = ("log_mav", "log_wl", "zc", "ssc", "rel_log_mav", "log_wl_over_mav")
N_FEATURES = len(FEATURE_NAMES)
_EPS = 0.1  # counts; keeps log() finite on flat (disconnected) channels
WEIGHTS_PACKAGE = "emgpilot.classifiers"  # weights live in its weights/ folder (package data)
WEIGHTS_NAME = "wrist"


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


def activity_phase(features: np.ndarray, active_quantile: float = 0.5) -> float | None:
    """Angle (radians) of the wearer's mean spatial activity pattern around the armband.

    Uses the relative log amplitude (feature ``rel_log_mav``) of the more active windows
    (total level above the ``active_quantile`` of the given windows), averages it, and returns
    the phase of its first circular harmonic. ``None`` when there are no windows.
    """
    f = np.asarray(features)
    if f.ndim != 3 or f.shape[0] == 0:
        return None
    level = f[:, 0].mean(axis=1)
    active = level >= np.quantile(level, active_quantile)
    profile = f[active, 4].mean(axis=0)
    return phase_of_profile(profile)


def phase_of_profile(profile: np.ndarray) -> float:
    """Phase of the first circular harmonic of an electrode profile ``[C]``."""
    c = profile.shape[-1]
    k = np.exp(-2j * np.pi * np.arange(c) / c)
    return float(np.angle(np.sum(profile * k)))


def shift_from_phase(phase: float, reference_phase: float, channels: int = N_CHANNELS) -> float:
    """Electrode shift (fractional, in ``[-C/2, C/2)``) that moves ``phase`` onto ``reference_phase``."""
    step = 2 * np.pi / channels
    delta = (phase - reference_phase) / step
    return float((delta + channels / 2) % channels - channels / 2)


def roll_channels(x: np.ndarray, shift: int, axis: int = -1) -> np.ndarray:
    """Rotate electrodes: output electrode ``i`` takes input electrode ``i + shift``."""
    return np.roll(x, -int(shift), axis=axis)


@dataclass
class RotationEstimator:
    """Streaming estimate of how far the armband sits rotated from the training orientation.

    Feed it filtered windows (or their features) as they come; it keeps an exponential moving
    average of the spatial activity pattern of active windows (level above a running rest
    estimate) and reports the integer electrode shift for :meth:`WristModel.predict_proba`.
    Until ``min_active`` active windows were seen it reports ``None`` (use no alignment).

    Parameters
    ----------
    reference_phase : canonical phase the network was trained at (``WristModel.reference_phase``).
    halflife : in active windows, of the moving average.
    min_active : active windows needed before an estimate is given.
    margin : log-level above the running rest level that counts as active (1.0 = ~2.7x).
    """

    reference_phase: float
    halflife: float = 400.0
    min_active: int = 40
    margin: float = 1.0
    channels: int = N_CHANNELS
    _profile: np.ndarray = field(init=False, repr=False)
    _rest_level: float | None = field(init=False, default=None, repr=False)
    n_active: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._profile = np.zeros(self.channels)

    def update(self, windows_or_features: np.ndarray) -> None:
        f = np.asarray(windows_or_features)
        if f.ndim == 3 and f.shape[1] != N_FEATURES:
            f = window_features(f)
        alpha = 1.0 - 0.5 ** (1.0 / self.halflife)
        for row in f:
            level = float(row[0].mean())
            # Rest level: fast to follow downwards, slow upwards, so gestures do not drag it up.
            if self._rest_level is None:
                self._rest_level = level
            elif level < self._rest_level:
                self._rest_level += 0.2 * (level - self._rest_level)
            else:
                self._rest_level += 0.002 * (level - self._rest_level)
            if level > self._rest_level + self.margin:
                self.n_active += 1
                a = max(alpha, 1.0 / self.n_active)
                self._profile += a * (row[4] - self._profile)

    @property
    def shift(self) -> int | None:
        if self.n_active < self.min_active:
            return None
        s = shift_from_phase(phase_of_profile(self._profile), self.reference_phase, self.channels)
        return int(np.round(s)) % self.channels


def estimate_shift(model: WristModel, feats: np.ndarray, active_quantile: float = 0.5) -> int:
    """Electrode shift under which the network is most confident on a wearer's unlabelled windows.

    Scores each of the ``C`` circular shifts by the mean log-probability of the predicted class
    over the more active windows (level above ``active_quantile``; rest windows say nothing
    about orientation) and returns the best. A rotated armband makes the spatial patterns
    look unlike anything seen in training, so the network is least sure at wrong shifts.
    """
    f = np.asarray(feats)
    if f.ndim != 3 or f.shape[0] == 0:
        return 0
    level = f[:, 0].mean(axis=1)
    f = f[level >= np.quantile(level, active_quantile)]
    scores = np.empty(model.channels)
    for shift in range(model.channels):
        z = model.logits_from_features(f, rotation=shift)
        z = z - z.max(axis=1, keepdims=True)
        scores[shift] = float(np.mean(-np.log(np.exp(z).sum(axis=1))))
    return int(np.argmax(scores))


def _circ_conv(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Circular 1-D convolution over electrodes: ``x [B, Cin, E]``, ``weight [Cout, Cin, K]``."""
    k = weight.shape[2]
    half = k // 2
    taps = np.stack([np.roll(x, half - j, axis=2) for j in range(k)], axis=2)  # [B, Cin, K, E]
    return np.einsum("bcke,ock->boe", taps, weight, optimize=True) + bias[None, :, None]


@dataclass
class WristModel:
    """The shipped wrist network (numpy inference).

    ``classes``, ``window`` (samples at 200 Hz) and ``channels`` describe the input and
    output; ``rotation`` (electrode shift, default 0) is applied to every window before
    classification -- set it from a :class:`RotationEstimator` to compensate the armband's
    rotation on this wearer.
    """

    tensors: dict[str, np.ndarray]
    meta: dict[str, Any]
    rotation: int = 0

    def __post_init__(self) -> None:
        self.classes: tuple[str, ...] = tuple(self.meta["classes"])
        self.window: int = int(self.meta["window"])
        self.channels: int = int(self.meta["channels"])
        self.reference_phase: float = float(self.meta.get("reference_phase", 0.0))
        self._mean = self.tensors["feature_mean"].astype(np.float32)
        self._std = self.tensors["feature_std"].astype(np.float32)
        self._n_conv = int(self.meta["arch"]["n_conv"])
        self._n_dense = int(self.meta["arch"]["n_dense"])
        if self.classes != CLASSES:
            raise ValueError(f"wrist weights declare classes {self.classes}, expected {CLASSES}")

    def features(self, windows: np.ndarray) -> np.ndarray:
        """Per-electrode features ``[B, F, C]`` of raw filtered windows ``[B, W, C]``."""
        return window_features(windows)

    def new_rotation_estimator(self, **kwargs: Any) -> RotationEstimator:
        return RotationEstimator(reference_phase=self.reference_phase, channels=self.channels, **kwargs)

    def logits_from_features(self, feats: np.ndarray, rotation: int | None = None) -> np.ndarray:
        shift = self.rotation if rotation is None else rotation
        h = (feats - self._mean) / self._std
        if shift:
            h = roll_channels(h, shift, axis=2)
        for i in range(self._n_conv):
            h = np.maximum(_circ_conv(h, self.tensors[f"conv{i}.weight"], self.tensors[f"conv{i}.bias"]), 0.0)
        h = h.reshape(h.shape[0], -1)
        for i in range(self._n_dense):
            h = h @ self.tensors[f"dense{i}.weight"].T + self.tensors[f"dense{i}.bias"]
            if i < self._n_dense - 1:
                h = np.maximum(h, 0.0)
        return h

    def predict_proba(self, windows: np.ndarray, rotation: int | None = None) -> np.ndarray:
        """Class probabilities ``[B, 4]`` for filtered windows ``[B, W, 8]`` (float32).

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


def load_wrist_model(path: str | Path | None = None) -> WristModel:
    """Load wrist weights from a ``.safetensors`` file (metadata in the ``.json`` beside it).

    ``path=None`` loads the weights shipped in the package. Only safetensors is read: a
    weights file cannot execute code.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load as st_load

    if path is None:
        base = resources.files(WEIGHTS_PACKAGE) / "weights"
        blob = (base / f"{WEIGHTS_NAME}.safetensors").read_bytes()
        meta_text = (base / f"{WEIGHTS_NAME}.json").read_text(encoding="utf-8")
        where = f"package {WEIGHTS_PACKAGE}/weights/{WEIGHTS_NAME}.safetensors"
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

    Sets torch to one thread when torch is already imported (inference itself is numpy).
    """
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    model = model or load_wrist_model()
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
