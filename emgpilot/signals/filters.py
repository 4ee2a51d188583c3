"""Causal, stateful filters. Filter state is data: ``sos`` plus ``zi``, so a stream cut into
chunks of any size gives the same output as the whole stream at once."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal


@dataclass
class SOSFilter:
    """A cascade of second-order sections applied causally along axis 0.

    Parameters
    ----------
    sos : ``[n_sections, 6]`` coefficients.
    n_channels : number of columns filtered in parallel.
    """

    sos: np.ndarray
    n_channels: int
    zi: np.ndarray | None = None
    steady_start: bool = False

    def __post_init__(self) -> None:
        self.sos = np.asarray(self.sos, dtype=np.float64)
        if self.zi is None:
            self.reset()

    def reset(self) -> None:
        self.zi = np.zeros((self.sos.shape[0], 2, self.n_channels))
        self._fresh = self.steady_start

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if x.shape[0] == 0:
            return np.zeros((0, self.n_channels))
        if self._fresh:
            # Start as if the first sample had always been there: an ADC's DC offset (~512
            # counts on a 10-bit MyoWare input) would otherwise ring through the band-pass for
            # a second and look like muscle activity to the detectors' first fits.
            self.zi = signal.sosfilt_zi(self.sos)[:, :, None] * np.asarray(x[0], dtype=np.float64)[None, None, :]
            self._fresh = False
        y, self.zi = signal.sosfilt(self.sos, x, axis=0, zi=self.zi)
        return y

    def state(self) -> dict[str, np.ndarray | bool]:
        return {"zi": np.array(self.zi, copy=True), "fresh": self._fresh}

    def load_state(self, state: dict[str, np.ndarray | bool]) -> None:
        zi = np.asarray(state["zi"], dtype=np.float64)
        if zi.shape != (self.sos.shape[0], 2, self.n_channels):
            raise ValueError(f"filter state has shape {zi.shape}, expected {(self.sos.shape[0], 2, self.n_channels)}")
        self.zi = zi.copy()
        self._fresh = bool(state.get("fresh", False))


def design_bandpass(low_hz: float, high_hz: float, fs: float, order: int = 4) -> np.ndarray:
    """Butterworth band-pass (or high-pass when ``high_hz`` reaches Nyquist) as SOS."""
    nyq = fs / 2.0
    if not 0 < low_hz < nyq:
        raise ValueError(f"band-pass low edge {low_hz} Hz must lie in (0, {nyq}) Hz")
    if high_hz >= nyq * 0.98:
        return signal.butter(order, low_hz, btype="highpass", fs=fs, output="sos")
    if high_hz <= low_hz:
        raise ValueError(f"band-pass edges {low_hz}-{high_hz} Hz are out of order")
    return signal.butter(order, [low_hz, high_hz], btype="bandpass", fs=fs, output="sos")


def design_lowpass(cutoff_hz: float, fs: float, order: int = 2) -> np.ndarray:
    nyq = fs / 2.0
    if not 0 < cutoff_hz < nyq:
        raise ValueError(f"low-pass cutoff {cutoff_hz} Hz must lie in (0, {nyq}) Hz")
    return signal.butter(order, cutoff_hz, btype="lowpass", fs=fs, output="sos")


def design_notches(freqs_hz: tuple[float, ...], fs: float, q: float = 30.0, harmonics: int = 1) -> np.ndarray | None:
    """IIR notches at each mains frequency and its first ``harmonics`` multiples below Nyquist."""
    sections = []
    nyq = fs / 2.0
    for f0 in freqs_hz:
        for k in range(1, harmonics + 1):
            f = f0 * k
            if f >= nyq * 0.98:
                break
            b, a = signal.iirnotch(f, q, fs=fs)
            sections.append(signal.tf2sos(b, a))
    if not sections:
        return None
    return np.vstack(sections)
