"""Small deterministic signals with gestures, shared by the classifier tests."""

from __future__ import annotations

import numpy as np

from emgpilot.signals.streams import FOREARM_IMU, Chunk, StreamInfo

FILTERED = StreamInfo("forearm_emg.filtered", "filtered", 200.0, tuple(f"emg{i}" for i in range(8)))
UPPER_ENV = StreamInfo("upper_emg.envelope", "envelope", 100.0, ("biceps", "triceps"))
IMU = StreamInfo("forearm_imu.resampled", "imu", 50.0, FOREARM_IMU.channels, FOREARM_IMU.units)


def bursts(seconds: float, rate: float, period_s: float = 5.0, on_s: float = 2.0, start_s: float = 3.0) -> np.ndarray:
    """Boolean ``[n]``: on for ``on_s`` every ``period_s`` after ``start_s``."""
    t = np.arange(int(seconds * rate)) / rate
    return (t >= start_s) & (((t - start_s) % period_s) < on_s)


def forearm(seconds: float = 30.0, seed: int = 0, gain: float = 12.0) -> Chunk:
    """Filtered-like forearm EMG: noise of ~2 counts, bursts with a spatial pattern."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 200)
    on = bursts(seconds, 200.0)
    pattern = 1.0 + gain * np.array([1.0, 0.8, 0.3, 0.1, 0.1, 0.2, 0.5, 0.9])
    scale = np.where(on[:, None], pattern[None, :], 1.0)
    x = rng.normal(0.0, 2.0, (n, 8)) * scale
    return Chunk(FILTERED, np.arange(n) / 200.0, x.astype(np.float32))


def upper(seconds: float = 30.0, seed: int = 1, co_contract: bool = True) -> Chunk:
    """Envelope-like biceps/triceps: rest ~3, bursts raise both (or only biceps)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 100)
    on = bursts(seconds, 100.0, start_s=4.0)
    level = np.full((n, 2), 3.0)
    level[on, 0] = 30.0
    if co_contract:
        level[on, 1] = 25.0
    x = level * np.exp(rng.normal(0, 0.15, (n, 2)))
    return Chunk(UPPER_ENV, np.arange(n) / 100.0, x.astype(np.float32))


def imu(seconds: float = 30.0, seed: int = 2, palm_down: bool = True) -> Chunk:
    """Resampled-like IMU at 50 Hz: gravity on z (palm down) or y, gyro x bursts alternating sign."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 50)
    t = np.arange(n) / 50.0
    x = np.zeros((n, 10))
    x[:, 0] = 1.0
    x[:, 6 if palm_down else 5] = -1.0
    x[:, 7:] = rng.normal(0, 1.5, (n, 3))
    on = bursts(seconds, 50.0, on_s=0.6, start_s=2.5)
    cycle = np.floor((t - 2.5) / 5.0).astype(int)
    sign = np.where(cycle % 2 == 0, 1.0, -1.0)
    x[on, 7] += 200.0 * sign[on]
    return Chunk(IMU, t, x.astype(np.float32))


def cut(chunk: Chunk, size: int) -> list[Chunk]:
    return [chunk.slice(i, i + size) for i in range(0, len(chunk), size)]


class FakeWrist:
    """Deterministic stand-in for the wrist network: softmax of channel-group log levels."""

    classes = ("rest", "fist", "wrist_flexion", "wrist_extension")
    feature_names = ("log_rms",)
    window = 40
    channels = 8

    def features(self, windows: np.ndarray) -> np.ndarray:
        """Per-electrode log RMS ``[B, 1, 8]``."""
        return (0.5 * np.log(np.mean(windows.astype(np.float64) ** 2, axis=1) + 0.25))[:, None, :]

    def logits_from_features(self, feats: np.ndarray, shift: int = 0) -> np.ndarray:
        lr = np.roll(feats[:, 0, :], -int(shift), axis=1)
        level = lr.mean(axis=1)
        return np.stack([2.0 - level, lr[:, 3:5].mean(1), lr[:, 0:2].mean(1), lr[:, 6:8].mean(1) - 0.5], axis=1)

    def predict_proba(self, windows: np.ndarray) -> np.ndarray:
        z = self.logits_from_features(self.features(windows))
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def fake_calibration(seed: int = 3):
    """A fixed wearer calibration over :class:`FakeWrist`'s features (three of its classes)."""
    from emgpilot.classifiers.calibration import WearerCalibration

    rng = np.random.default_rng(seed)
    return WearerCalibration(
        classes=("rest", "fist", "wrist_flexion"),
        coef=rng.normal(0, 1.0, (3, 8)),
        intercept=np.array([2.0, 0.0, -1.0]),
        feature_names=FakeWrist.feature_names,
        window=40,
        channels=8,
        means=rng.normal(1.0, 0.5, (3, 8)),
        precision=np.eye(8) * 4.0,
    )
