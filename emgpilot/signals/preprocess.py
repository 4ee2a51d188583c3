"""Causal conditioning stages: EMG band-pass + notch, rectified low-pass envelopes, IMU resampling."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emgpilot.signals.filters import SOSFilter, design_bandpass, design_lowpass, design_notches
from emgpilot.signals.pipeline import Stage
from emgpilot.signals.streams import FOREARM_EMG, FOREARM_IMU, UPPER_EMG, Chunk, Message, StreamInfo


@dataclass
class EMGFilterConfig:
    """Conditioning of one EMG stream.

    ``envelope_rate_hz`` decimates the envelope (taking every k-th sample of the input grid).
    """

    band_hz: tuple[float, float] = (20.0, 95.0)
    notch_hz: tuple[float, ...] = (50.0, 60.0)
    notch_q: float = 30.0
    envelope_hz: float = 5.0
    envelope_rate_hz: float = 100.0
    order: int = 4


@dataclass
class IMUConfig:
    rate_hz: float = 50.0


@dataclass
class PreprocessConfig:
    forearm: EMGFilterConfig = field(default_factory=EMGFilterConfig)
    upper_arm: EMGFilterConfig = field(
        default_factory=lambda: EMGFilterConfig(band_hz=(20.0, 450.0), envelope_rate_hz=100.0)
    )
    imu: IMUConfig = field(default_factory=IMUConfig)


class EMGConditioner(Stage):
    """Band-pass + notch, then full-wave rectification and a low-pass envelope.

    Outputs ``<input>.filtered`` at the input rate and ``<input>.envelope`` at
    ``envelope_rate_hz`` (an integer divisor of the input rate).
    """

    def __init__(self, source: StreamInfo, cfg: EMGFilterConfig) -> None:
        fs = source.rate_hz
        self.name = f"condition.{source.name}"
        self.inputs = (source.name,)
        self.source = source
        self.cfg = cfg
        self.decimation = max(1, round(fs / cfg.envelope_rate_hz))
        self.filtered = StreamInfo(f"{source.name}.filtered", "filtered", fs, source.channels, source.units)
        self.envelope = StreamInfo(
            f"{source.name}.envelope", "envelope", fs / self.decimation, source.channels, source.units
        )
        self.outputs = (self.filtered, self.envelope)
        sos = design_bandpass(cfg.band_hz[0], cfg.band_hz[1], fs, cfg.order)
        notch = design_notches(cfg.notch_hz, fs, cfg.notch_q)
        if notch is not None:
            sos = np.vstack([sos, notch])
        n = source.n_channels
        self._band = SOSFilter(sos, n, steady_start=True)
        self._smooth = SOSFilter(design_lowpass(cfg.envelope_hz, fs), n)
        self._phase = 0  # samples seen modulo the decimation factor

    def reset(self) -> None:
        self._band.reset()
        self._smooth.reset()
        self._phase = 0

    def process(self, msg: Message) -> list[Message]:
        if not isinstance(msg, Chunk) or len(msg) == 0:
            return []
        x = msg.data.astype(np.float64, copy=False)
        filtered = self._band(x)
        env = self._smooth(np.abs(filtered))
        # Keep samples whose absolute index is a multiple of the decimation factor, so the
        # envelope grid does not depend on chunk boundaries.
        first = (-self._phase) % self.decimation
        self._phase = (self._phase + len(msg)) % self.decimation
        keep = slice(first, None, self.decimation)
        return [
            Chunk(self.filtered, msg.t, filtered.astype(np.float32)),
            Chunk(self.envelope, msg.t[keep], np.maximum(env[keep], 0.0).astype(np.float32)),
        ]

    def state_dict(self) -> dict[str, Any]:
        return {"band": self._band.state(), "smooth": self._smooth.state(), "phase": self._phase}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._band.load_state(state["band"])
        self._smooth.load_state(state["smooth"])
        self._phase = int(state["phase"])


class IMUResampler(Stage):
    """Puts IMU samples on the exact grid ``k / rate_hz`` of data time by linear interpolation.

    A grid point is emitted once the first sample after it has arrived (at most one input
    period of delay), so the result is causal and independent of chunking. The quaternion is
    re-normalised after interpolation.
    """

    def __init__(self, source: StreamInfo, cfg: IMUConfig) -> None:
        self.name = f"resample.{source.name}"
        self.inputs = (source.name,)
        self.rate = cfg.rate_hz
        self.resampled = StreamInfo(f"{source.name}.resampled", "imu", cfg.rate_hz, source.channels, source.units)
        self.outputs = (self.resampled,)
        self.reset()

    def reset(self) -> None:
        self._last_t: float | None = None
        self._last_x: np.ndarray | None = None
        self._next_k: int | None = None

    def process(self, msg: Message) -> list[Message]:
        if not isinstance(msg, Chunk) or len(msg) == 0:
            return []
        t = msg.t
        x = msg.data.astype(np.float64, copy=False)
        if self._last_t is not None:
            t = np.concatenate([[self._last_t], t])
            x = np.vstack([self._last_x[None, :], x])
        if self._next_k is None:
            self._next_k = int(np.ceil(t[0] * self.rate - 1e-9))
        last_k = int(np.floor(t[-1] * self.rate + 1e-9))
        self._last_t, self._last_x = float(t[-1]), x[-1].copy()
        if last_k < self._next_k:
            return []
        grid = np.arange(self._next_k, last_k + 1) / self.rate
        self._next_k = last_k + 1
        # Strictly increasing time is needed by np.interp; drop repeated stamps.
        order = np.concatenate([[True], np.diff(t) > 0])
        t, x = t[order], x[:, :][order]
        out = np.empty((len(grid), x.shape[1]))
        for c in range(x.shape[1]):
            out[:, c] = np.interp(grid, t, x[:, c])
        if x.shape[1] >= 4:
            norm = np.linalg.norm(out[:, :4], axis=1, keepdims=True)
            out[:, :4] /= np.where(norm > 0, norm, 1.0)
        return [Chunk(self.resampled, grid, out.astype(np.float32))]

    def state_dict(self) -> dict[str, Any]:
        return {
            "last_t": self._last_t,
            "last_x": None if self._last_x is None else self._last_x.copy(),
            "next_k": self._next_k,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._last_t = state["last_t"]
        self._last_x = None if state["last_x"] is None else np.asarray(state["last_x"]).copy()
        self._next_k = state["next_k"]


def preprocessing_stages(cfg: PreprocessConfig, sources: dict[str, StreamInfo] | None = None) -> list[Stage]:
    """Conditioning stages for whichever sensor streams are present.

    ``sources`` maps stream name to its declaration (a device may run off-nominal rate).
    """
    sources = sources if sources is not None else {s.name: s for s in (FOREARM_EMG, FOREARM_IMU, UPPER_EMG)}
    stages: list[Stage] = []
    if FOREARM_EMG.name in sources:
        stages.append(EMGConditioner(sources[FOREARM_EMG.name], cfg.forearm))
    if UPPER_EMG.name in sources:
        stages.append(EMGConditioner(sources[UPPER_EMG.name], cfg.upper_arm))
    if FOREARM_IMU.name in sources:
        stages.append(IMUResampler(sources[FOREARM_IMU.name], cfg.imu))
    return stages
