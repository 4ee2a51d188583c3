"""The synthetic arm: a physiologically plausible Myo (8-ch EMG 200 Hz + IMU 50 Hz) and MyoWare
biceps/triceps (1 kHz) generator with a ground-truth cue stream, for demos, tests and benchmarks.

How the numbers are made (see also :mod:`emgpilot.signals.synthetic_model`):

* Every signal is generated in fixed blocks (:data:`BLOCK_S`) of absolute data time. Random
  inputs (EMG carriers, noise, small involuntary movements, motion artefacts) come from a
  generator seeded by ``(seed, block, purpose)``; band-limiting filters run block after block
  with their state carried. Everything that depends on what the wearer does (muscle activation,
  forearm angles) is a pure function of data time. So the output never depends on ``chunk_s``
  or on how fast it is read, and the same seed gives bit-identical data.
* EMG = sqrt(noise floor^2 + sum over muscles of (activation x strength x spatial gain)^2) times
  a unit-variance carrier, plus powerline hum (sampled, so 50 Hz at 200 Hz aliases naturally),
  motion artefacts and slow gain drift; then int8 counts (Myo) or 10-bit ADC counts around the
  sensor's offset (MyoWare). Carrier and floor have the Myo's spectrum (:func:`myo_front_end`),
  super-Gaussian activity, a spiky rest floor and neighbouring channels that correlate, all
  measured against real Myo recordings (``docs/readme/synthetic.md``); the spectrum slides
  lower with fatigue.
* IMU = the forearm's orientation (yaw, elevation, roll about the forearm axis, a small wave
  wobble) composed with the armband's rotation: quaternion, gravity plus small linear
  accelerations, and the body-frame angular rate with bias and noise, quantised like the Myo.

:meth:`SyntheticArm.perform` adds a gesture at the current data time from any thread (the GUI's
demo keys); the already emitted past never changes.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import signal

from emgpilot.signals.streams import (
    EVENT_STREAMS,
    FOREARM_EMG,
    FOREARM_IMU,
    UPPER_EMG,
    Chunk,
    CueEvent,
    Message,
    StreamInfo,
)
from emgpilot.signals.synthetic_model import (
    DEFAULT_PERFORM_OTHER_S,
    DEFAULT_PERFORM_S,
    MUSCLES,
    N_FOREARM_MUSCLES,
    PATTERN_BRIGHTNESS,
    Schedule,
    ScheduleItem,
    Wearer,
    bump,
    check_label,
    cycloid,
    motion_kind,
    muscle_pattern,
    pattern_vector,
    smoothstep,
    wave_orientation,
    wave_primitive,
)
from emgpilot.signals.vocabulary import REST

__all__ = ["Schedule", "SyntheticArm", "Wearer", "generate"]

BLOCK_S = 10.0
"""Internal generation block (s); an integer number of samples for every stream."""
_HORIZON_S = 6.0  # schedule items are compiled this far ahead (posture changes start early)
_MAX_TURN_DPS = 110.0  # fastest palm-down/thumb-up posture change (rotate gestures are >= 120 deg/s)
_MAX_EVENT_S = 2.0  # longest random event (micro movement, artefact tail), for block look-back
_UNIFORM_SD = math.sqrt(12.0)  # scales a centred uniform draw to unit variance
_AXES = ("yaw", "elev", "roll", "wobble")
_SENSOR_STREAMS = {s.name: s for s in (FOREARM_EMG, FOREARM_IMU, UPPER_EMG)}

# Purposes that seed independent random streams per block.
_P_FOREARM, _P_UPPER, _P_IMU, _P_EVENTS, _P_ITEM, _P_PERFORM, _P_WEARER_FIXED = range(7)


# --------------------------------------------------------------------------- compiled actions


@dataclass
class _Envelope:
    """Muscle activation ``act`` with smooth onset/offset ramps between ``t0`` and ``t1``;
    ``bright`` is the share of the brighter Myo carrier in this activity's signal."""

    t0: float
    t1: float
    ramp_on: float
    ramp_off: float
    act: np.ndarray
    bright: float = 0.0

    def __call__(self, t: np.ndarray) -> np.ndarray:
        return np.minimum(smoothstep((t - self.t0) / self.ramp_on), smoothstep((self.t1 - t) / self.ramp_off))


@dataclass
class _Profile:
    """An angle change on one axis: ``step`` (0 -> amp, cycloid) or ``bump`` (0 -> amp -> 0)."""

    axis: str
    t0: float
    dur: float
    amp_deg: float
    shape: str = "step"

    def __call__(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u = (t - self.t0) / self.dur
        pos, vel = cycloid(u) if self.shape == "step" else bump(u)
        return self.amp_deg * pos, self.amp_deg * vel / self.dur


@dataclass
class _Accel:
    """Linear acceleration pulse (accelerate then brake) along a forearm-frame axis, in g."""

    t0: float
    dur: float
    vec_g: np.ndarray

    def __call__(self, t: np.ndarray) -> np.ndarray:
        u = (t - self.t0) / self.dur
        s = np.where((u > 0) & (u < 1), np.sin(2.0 * math.pi * np.clip(u, 0, 1)), 0.0)
        return s[:, None] * self.vec_g[None, :]


@dataclass
class _Artefact:
    """Damped low-frequency transient (electrode/cable movement) on some channels, in counts."""

    sensor: str  # "forearm" or "upper"
    t0: float
    weights: np.ndarray
    freq_hz: float
    decay_s: float

    @property
    def t_end(self) -> float:
        return self.t0 + 6.0 * self.decay_s

    def __call__(self, t: np.ndarray) -> np.ndarray:
        dt = t - self.t0
        on = (dt >= 0) & (dt < 6.0 * self.decay_s)
        dtc = np.where(on, dt, 0.0)
        wave = np.where(on, np.exp(-dtc / self.decay_s) * np.sin(2.0 * math.pi * self.freq_hz * dtc), 0.0)
        return wave[:, None] * self.weights[None, :]


@dataclass
class _Action:
    """Everything one gesture (or one random event) does to the signals, as pure functions of t."""

    t_start: float
    t_end: float  # last time it has any effect
    envelopes: list[_Envelope] = field(default_factory=list)
    profiles: list[_Profile] = field(default_factory=list)
    accels: list[_Accel] = field(default_factory=list)
    artefacts: list[_Artefact] = field(default_factory=list)
    end_cue: tuple[float, int, str] | None = None  # the "rest" cue that ends this gesture


def _span(t: np.ndarray, t_from: float, t_to: float) -> slice:
    """Indices of the sorted times ``t`` with ``t_from <= t <= t_to`` (where an effect is non-zero)."""
    return slice(int(np.searchsorted(t, t_from, "left")), int(np.searchsorted(t, t_to, "right")))


# Every effect below is exactly zero outside its time span, so only that span is evaluated.


def _eval_activation(actions: Sequence[_Action], t: np.ndarray) -> np.ndarray:
    out = np.zeros((t.shape[0], len(MUSCLES)))
    for a in actions:
        for e in a.envelopes:
            sl = _span(t, e.t0, e.t1)
            if sl.stop > sl.start:
                out[sl] += e(t[sl])[:, None] * e.act[None, :]
    return out


def _eval_brightness(actions: Sequence[_Action], t: np.ndarray) -> np.ndarray:
    """Share of the brighter carrier per sample: the envelopes' ``bright`` weighted by their
    forearm activation (0 where nothing is active)."""
    num = np.zeros(t.shape[0])
    den = np.full(t.shape[0], 1e-9)
    for a in actions:
        for e in a.envelopes:
            sl = _span(t, e.t0, e.t1)
            if sl.stop > sl.start:
                env = e(t[sl]) * float(np.sqrt(np.sum(e.act[:N_FOREARM_MUSCLES] ** 2)))
                den[sl] += env
                if e.bright > 0.0:
                    num[sl] += env * e.bright
    return num / den


def _eval_angles(actions: Sequence[_Action], t: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Angle (deg) and rate (deg/s) per axis: the sum of every profile."""
    pos = {ax: np.zeros(t.shape[0]) for ax in _AXES}
    vel = {ax: np.zeros(t.shape[0]) for ax in _AXES}
    for a in actions:
        for p in a.profiles:
            sl = _span(t, p.t0, p.t0 + p.dur)
            if sl.stop > sl.start:
                dp, dv = p(t[sl])
                pos[p.axis][sl] += dp
                vel[p.axis][sl] += dv
            if p.shape == "step" and sl.stop < t.shape[0]:
                pos[p.axis][sl.stop :] += p.amp_deg  # a completed step keeps its end angle
    return {ax: (pos[ax], vel[ax]) for ax in _AXES}


def _eval_accel(actions: Sequence[_Action], t: np.ndarray) -> np.ndarray:
    out = np.zeros((t.shape[0], 3))
    for a in actions:
        for acc in a.accels:
            sl = _span(t, acc.t0, acc.t0 + acc.dur)
            if sl.stop > sl.start:
                out[sl] += acc(t[sl])
    return out


def _eval_artefacts(actions: Sequence[_Action], t: np.ndarray, sensor: str, n_ch: int) -> np.ndarray | None:
    """Sum of the motion artefacts of one sensor, or None when there are none in this block."""
    out = None
    for a in actions:
        for art in a.artefacts:
            if art.sensor != sensor:
                continue
            sl = _span(t, art.t0, art.t_end)
            if sl.stop > sl.start:
                if out is None:
                    out = np.zeros((t.shape[0], n_ch))
                out[sl] += art(t[sl])
    return out


# --------------------------------------------------------------------------- rotations


def _axis_quat(axis: int, angle_rad: np.ndarray) -> np.ndarray:
    q = np.zeros((angle_rad.shape[0], 4))
    q[:, 0] = np.cos(angle_rad / 2)
    q[:, 1 + axis] = np.sin(angle_rad / 2)
    return q


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w1, x1, y1, z1 = a.T
    w2, x2, y2, z2 = b.T
    out = np.empty_like(a)
    out[:, 0] = w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2
    out[:, 1] = w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2
    out[:, 2] = w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2
    out[:, 3] = w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2
    return out


def _quat_to_matrix(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q.T
    m = np.empty((q.shape[0], 3, 3))
    m[:, 0, 0] = 1 - 2 * (y * y + z * z)
    m[:, 0, 1] = 2 * (x * y - w * z)
    m[:, 0, 2] = 2 * (x * z + w * y)
    m[:, 1, 0] = 2 * (x * y + w * z)
    m[:, 1, 1] = 1 - 2 * (x * x + z * z)
    m[:, 1, 2] = 2 * (y * z - w * x)
    m[:, 2, 0] = 2 * (x * z - w * y)
    m[:, 2, 1] = 2 * (y * z + w * x)
    m[:, 2, 2] = 1 - 2 * (x * x + y * y)
    return m


def orientation_and_rate(
    angles_rad: Sequence[np.ndarray], rates_rad: Sequence[np.ndarray], axes: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Quaternion of ``R = R_1(a_1) R_2(a_2) ... R_n(a_n)`` (intrinsic rotations about local axes)
    and the body-frame angular rate ``sum_i rate_i (R_{i+1}..R_n)^T e_i`` (rad/s)."""
    n = angles_rad[0].shape[0]
    omega = np.zeros((n, 3))
    # Walk from the innermost rotation outwards, keeping the product of the rotations inside.
    inner = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
    for ang, rate, ax in zip(reversed(angles_rad), reversed(rates_rad), reversed(axes), strict=True):
        # R_inner^T e_ax is row `ax` of R_inner.
        omega += rate[:, None] * _quat_to_matrix(inner)[:, ax, :]
        inner = _quat_mul(_axis_quat(ax, ang), inner)
    return inner, omega


def sensor_kinematics(
    yaw: np.ndarray,
    pitch: np.ndarray,
    roll: np.ndarray,
    wobble: np.ndarray,
    band: float,
    yaw_rate: np.ndarray,
    pitch_rate: np.ndarray,
    roll_rate: np.ndarray,
    wobble_rate: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """Closed form of ``R = Rz(yaw) Ry(pitch) Rx(roll) Ry(wobble) Rx(band)`` (radians, rad/s).

    Returns the quaternion ``[n, 4]``, the body-frame angular rate ``[n, 3]`` (rad/s), gravity as
    the sensor's specific force ``R^T e_z`` ``[n, 3]`` (g), and a function mapping forearm-frame
    vectors (after roll) into the sensor frame. :func:`orientation_and_rate` is the general (slower)
    version this is tested against.
    """
    cp, sp = np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    cw, sw = np.cos(wobble), np.sin(wobble)
    cb, sb = math.cos(band), math.sin(band)

    def to_sensor(v: np.ndarray) -> np.ndarray:
        # (Ry(wobble) Rx(band))^T v = Rx(band)^T Ry(wobble)^T v
        ux = cw * v[:, 0] - sw * v[:, 2]
        uz = sw * v[:, 0] + cw * v[:, 2]
        out = np.empty_like(v)
        out[:, 0] = ux
        out[:, 1] = cb * v[:, 1] + sb * uz
        out[:, 2] = -sb * v[:, 1] + cb * uz
        return out

    n = yaw.shape[0]
    # Body rates of Rz(yaw) Ry(pitch) Rx(roll) in the rolled forearm frame.
    w_f = np.empty((n, 3))
    w_f[:, 0] = roll_rate - yaw_rate * sp
    w_f[:, 1] = pitch_rate * cr + yaw_rate * cp * sr
    w_f[:, 2] = -pitch_rate * sr + yaw_rate * cp * cr
    omega = to_sensor(w_f)
    omega[:, 1] += wobble_rate * cb  # the wobble turns about the forearm's y: Rx(band)^T e_y
    omega[:, 2] -= wobble_rate * sb
    up_f = np.empty((n, 3))
    up_f[:, 0] = -sp
    up_f[:, 1] = cp * sr
    up_f[:, 2] = cp * cr
    gravity = to_sensor(up_f)
    # Quaternion: ZYX Euler in closed form, then the wobble and the constant band rotation.
    c1, s1 = np.cos(yaw / 2), np.sin(yaw / 2)
    c2, s2 = np.cos(pitch / 2), np.sin(pitch / 2)
    c3, s3 = np.cos(roll / 2), np.sin(roll / 2)
    q = np.empty((n, 4))
    q[:, 0] = c3 * c2 * c1 + s3 * s2 * s1
    q[:, 1] = s3 * c2 * c1 - c3 * s2 * s1
    q[:, 2] = c3 * s2 * c1 + s3 * c2 * s1
    q[:, 3] = c3 * c2 * s1 - s3 * s2 * c1
    q = _quat_mul(q, _axis_quat(1, wobble))
    cb2, sb2 = math.cos(band / 2), math.sin(band / 2)
    qb = np.empty_like(q)  # q (x) (cos b/2, sin b/2, 0, 0)
    qb[:, 0] = q[:, 0] * cb2 - q[:, 1] * sb2
    qb[:, 1] = q[:, 0] * sb2 + q[:, 1] * cb2
    qb[:, 2] = q[:, 2] * cb2 + q[:, 3] * sb2
    qb[:, 3] = q[:, 3] * cb2 - q[:, 2] * sb2
    return qb, omega, gravity, to_sensor


# --------------------------------------------------------------------------- the device


def _block_rng(seed: int, purpose: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, purpose, index]))


def _unit_gain(sos: np.ndarray, fs: float) -> float:
    """Gain that gives the filter's white-noise output unit variance."""
    impulse = np.zeros(int(fs * 4))
    impulse[0] = 1.0
    h = signal.sosfilt(sos, impulse)
    return 1.0 / math.sqrt(float(np.sum(h * h)))


def myo_front_end(fs: float = 200.0, emphasis: float = 0.08) -> np.ndarray:
    """The spectral shape of the Myo's "raw" output, as SOS.

    Real Myo rest and gesture recordings (cote_allard_myo, myo_readings) share one shape: little
    below 10 Hz, dips at 50 and 60 Hz (the armband notches mains hum), and a flat to rising
    density up to Nyquist (EMG power at 100-200 Hz aliases down at 200 Hz sampling); gestures
    carry a bit more high-frequency power than rest. Modelled as a 1st-order 12 Hz high-pass, a
    pre-emphasis ``1 - emphasis z^-1`` (0.08 for the noise floor, 0.2 for muscle activity) and
    notches at 50 Hz (Q 12) and 60 Hz (Q 40); the band shares match the real ones within a few
    percent (``python -m emgpilot.signals.synthetic_levels --shape``).
    """
    hp = signal.butter(1, 12.0, btype="highpass", fs=fs, output="sos")
    pre = np.array([[1.0, -emphasis, 0.0, 1.0, 0.0, 0.0]])
    notches = [signal.tf2sos(*signal.iirnotch(f0, q, fs=fs)) for f0, q in ((50.0, 12.0), (60.0, 40.0))]
    return np.vstack([hp, pre, *notches])


BRIGHT_EMPHASIS = 0.6
"""Pre-emphasis of the brighter Myo carrier that grips mix in (see ``PATTERN_BRIGHTNESS``)."""


@lru_cache(maxsize=8)
def _carrier_filters(fs: float) -> dict[str, tuple[np.ndarray, float] | None]:
    """Carrier filters with unit-variance gains: ``hi`` (fresh muscle), ``lo`` (fatigued muscle:
    the spectrum slides down), ``floor`` (electrode/amplifier noise; None = white)."""
    if fs <= 250:  # Myo: everything passes its front end
        active = myo_front_end(fs, emphasis=0.2)
        bright = myo_front_end(fs, emphasis=BRIGHT_EMPHASIS)
        floor = myo_front_end(fs, emphasis=0.08)
        lo = np.vstack([signal.butter(2, [20.0, 60.0], btype="bandpass", fs=fs, output="sos"), active[2:]])
        return {
            "hi": (active, _unit_gain(active, fs)),
            "lo": (lo, _unit_gain(lo, fs)),
            "floor": (floor, _unit_gain(floor, fs)),
            "bright": (bright, _unit_gain(bright, fs)),
        }
    hi = signal.butter(2, [40.0, 300.0], btype="bandpass", fs=fs, output="sos")
    lo = signal.butter(2, [20.0, 120.0], btype="bandpass", fs=fs, output="sos")
    return {"hi": (hi, _unit_gain(hi, fs)), "lo": (lo, _unit_gain(lo, fs)), "floor": None, "bright": None}


@dataclass(frozen=True)
class _NoiseShape:
    """Non-Gaussian statistics of a sensor's noise, per wearer.

    ``modulation_sd``: log-sd of a fast (~15 Hz) random amplitude modulation of muscle activity
    (motor units firing irregularly makes surface EMG super-Gaussian: excess kurtosis ~1-5 and
    mean-absolute/RMS ~0.75 in real Myo gestures, 0.80 for Gaussian noise).
    ``spike_rate_hz`` / ``spike_share``: sparse spikes per channel and their share of the noise
    floor's power (real Myo rest is heavy-tailed: mostly quiet with sparse spikes, excess
    kurtosis 6-130, mean-absolute/RMS 0.4-0.75). Zero share keeps a Gaussian floor.
    ``spatial`` / ``floor_spatial``: ``(neighbour, next-neighbour, common)`` weights that mix each
    electrode's carrier (floor) with those of the electrodes around the ring and with a component
    common to all (volume conduction, shared reference): real Myo channels correlate, about
    0.3-0.65 between neighbours during gestures and 0.1-0.4 at rest. None: independent channels.
    """

    modulation_sd: float = 0.0
    spike_rate_hz: float = 0.0
    spike_share: float = 0.0
    spatial: tuple[float, float, float] | None = None
    floor_spatial: tuple[float, float, float] | None = None


def ring_mixing(n_ch: int, neighbour: float, next_neighbour: float, common: float) -> np.ndarray:
    """``[n_ch, n_ch + 1]`` matrix mixing independent unit-variance sources (one per electrode plus
    a common one) into electrode signals of unit variance correlated around the ring."""
    m = np.zeros((n_ch, n_ch + 1))
    for k in range(n_ch):
        for offset, weight in ((0, 1.0), (1, neighbour), (-1, neighbour), (2, next_neighbour), (-2, next_neighbour)):
            m[k, (k + offset) % n_ch] += weight
        m[k, n_ch] = common
    return m / np.sqrt((m * m).sum(axis=1, keepdims=True))


_SPIKE_POWER = 13.0 / 3.0  # E[a^2] of spike magnitudes uniform in [1, 3]


class _Carriers:
    """Unit-variance band-limited EMG carrier and floor noise per block, generated in block
    order (filter states carried).

    Fatigue slides the EMG spectrum down: the carrier mixes a high and a low band with the weight
    ``low_weight(t)`` taken at the block's middle (fatigue changes over minutes, blocks last 10 s).
    """

    def __init__(
        self,
        seed: int,
        purpose: int,
        fs: float,
        n_ch: int,
        low_weight: Callable[[float], float],
        shape: _NoiseShape,
    ) -> None:
        self.seed, self.purpose, self.fs, self.n_ch = seed, purpose, fs, n_ch
        self.low_weight = low_weight
        self.shape = shape
        self.n = round(fs * BLOCK_S)
        self.filters = dict(_carrier_filters(fs))
        mod = signal.butter(1, 15.0, btype="lowpass", fs=fs, output="sos")
        self.filters["mod"] = (mod, _unit_gain(mod, fs))
        # With spatial mixing there is one more source than electrodes (the common component).
        self.mix = None if shape.spatial is None else ring_mixing(n_ch, *shape.spatial)
        self.floor_mix = None if shape.floor_spatial is None else ring_mixing(n_ch, *shape.floor_spatial)
        self.n_src = n_ch + 1 if self.mix is not None or self.floor_mix is not None else n_ch
        # Filtered along the last axis ([source, sample] layout), which sosfilt runs without copies.
        self.zi = {k: np.zeros((f[0].shape[0], self.n_src, 2)) for k, f in self.filters.items() if f is not None}
        self.next_block = 0
        self.cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray | None]] = {}

    def _filtered(self, key: str, u: np.ndarray, unit: float = _UNIFORM_SD) -> np.ndarray:
        """Filter a white input with standard deviation ``1 / unit`` to unit variance."""
        f = self.filters[key]
        assert f is not None
        y, self.zi[key] = signal.sosfilt(f[0], u, axis=-1, zi=self.zi[key])
        y *= f[1] * unit
        return y

    def get(self, block: int) -> tuple[np.ndarray, np.ndarray]:
        """(carrier, floor noise), each ``[n, n_ch]`` with unit variance."""
        carrier, floor, _ = self.get_all(block)
        return carrier, floor

    def get_all(self, block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(carrier, floor noise, brighter carrier or None), each ``[n, n_ch]`` with unit variance."""
        if block in self.cache:
            return self.cache[block]
        if block < self.next_block:
            raise RuntimeError(f"synthetic arm: block {block} was discarded (blocks are generated in order)")
        shape = self.shape
        white_floor = self.filters["floor"] is None
        has_bright = self.filters.get("bright") is not None
        while self.next_block <= block:
            rng = _block_rng(self.seed, self.purpose, self.next_block)
            # Uniform draws are ~6x cheaper than normal ones; filtering (or summing three, for a
            # white floor) makes the result near-Gaussian anyway. The brighter carrier's input
            # is the last row, so the other rows are the same draws with or without it.
            u = rng.random((7 if white_floor else 5 + has_bright, self.n_src, self.n))
            u -= 0.5
            w_lo = self.low_weight((self.next_block + 0.5) * BLOCK_S)
            carrier = self._filtered("hi", u[0])
            carrier *= math.sqrt(1.0 - w_lo)
            carrier += self._filtered("lo", u[1]) * math.sqrt(w_lo)
            bright = self._filtered("bright", u[5]) if has_bright else None
            if shape.modulation_sd > 0:
                sd = shape.modulation_sd
                modulation = np.exp(sd * self._filtered("mod", u[2]) - sd * sd)  # unit mean power
                carrier *= modulation
                if bright is not None:
                    bright *= modulation
            if white_floor:
                floor = u[3] + u[4]
                floor += u[5]
                floor *= 2.0
            else:
                floor_in = u[3] * (_UNIFORM_SD * math.sqrt(1.0 - shape.spike_share))
                if shape.spike_share > 0:
                    # Sparse spikes: a sample is a spike with probability p, magnitude 1-3, random sign.
                    p = shape.spike_rate_hz / self.fs
                    v = u[4] + 0.5
                    hit = v < p
                    mag = 1.0 + 4.0 * np.abs(v[hit] / p - 0.5)
                    sign = np.where(v[hit] / p < 0.5, 1.0, -1.0)
                    floor_in[hit] += sign * mag * math.sqrt(shape.spike_share / (p * _SPIKE_POWER))
                floor = self._filtered("floor", floor_in, unit=1.0)
            carrier = carrier[: self.n_ch] if self.mix is None else self.mix @ carrier
            floor = floor[: self.n_ch] if self.floor_mix is None else self.floor_mix @ floor
            if bright is not None:
                bright = np.ascontiguousarray((bright[: self.n_ch] if self.mix is None else self.mix @ bright).T)
            self.cache[self.next_block] = (np.ascontiguousarray(carrier.T), np.ascontiguousarray(floor.T), bright)
            self.next_block += 1
        for old in [b for b in self.cache if b < block - 1]:
            del self.cache[old]
        return self.cache[block]


class SyntheticArm:
    """A simulated wearer with a Myo armband and two MyoWare sensors, as a :class:`Device`.

    Parameters
    ----------
    seed : seeds the wearer (when ``wearer`` is None), the random schedule (when ``schedule`` is
        None) and every noise source. Same seed -> bit-identical output for any ``chunk_s``.
    speed : 1 paces ``read`` like hardware, N runs N x faster, ``inf`` returns data at once.
    schedule : what the wearer does; default ``Schedule.random(seed, duration_s)``.
        ``Schedule.idle()`` rests until :meth:`perform` is called.
    wearer : who wears it; default ``Wearer.random(seed)``.
    chunk_s : data time returned per ``read``.
    duration_s : stop after this much data (also stops at a scripted schedule's end).
    streams : which sensor streams to emit (the ``cue`` stream is always emitted).
    clock, sleep : wall clock and sleep used for pacing (inject fakes in tests).
    """

    name = "synthetic"

    def __init__(
        self,
        seed: int = 0,
        speed: float = 1.0,
        schedule: Schedule | None = None,
        wearer: Wearer | None = None,
        chunk_s: float = 0.02,
        duration_s: float | None = None,
        streams: tuple[str, ...] = ("forearm_emg", "forearm_imu", "upper_emg"),
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] | None = None,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"synthetic arm: speed must be > 0, not {speed}")
        if not chunk_s > 0:
            raise ValueError(f"synthetic arm: chunk_s must be > 0, not {chunk_s}")
        if duration_s is not None and not duration_s > 0:
            raise ValueError(f"synthetic arm: duration_s must be > 0, not {duration_s}")
        unknown = [s for s in streams if s not in _SENSOR_STREAMS]
        if unknown:
            raise ValueError(f"synthetic arm: unknown streams {unknown}; choose from {sorted(_SENSOR_STREAMS)}")
        self.seed = int(seed)
        self.speed = float(speed)
        self.wearer = wearer if wearer is not None else Wearer.random(self.seed)
        self.schedule = schedule if schedule is not None else Schedule.random(self.seed, duration_s)
        self.chunk_s = float(chunk_s)
        self.duration_s = duration_s
        self.stream_names = tuple(streams)
        self._clock = clock
        self._stop_event = threading.Event()
        self._sleep = sleep if sleep is not None else self._stop_event.wait
        self._lock = threading.RLock()

        ends = [e for e in (duration_s, self.schedule.end_s) if e is not None]
        self.end_s: float | None = min(ends) if ends else None
        self._chunk_index = 0
        self._t_emitted = 0.0  # data time up to which samples were emitted
        self._next_index = dict.fromkeys(self.stream_names, 0)  # next sample index per stream
        self._stream_specs = [
            (
                name,
                "t:" + name,
                _SENSOR_STREAMS[name],
                _SENSOR_STREAMS[name].rate_hz,
                round(_SENSOR_STREAMS[name].rate_hz * BLOCK_S),
            )
            for name in self.stream_names
        ]
        self._pruned_below = -1
        self._wall0: float | None = None
        self._finished = False

        # Compiled behaviour: actions sorted by start, cue changes, posture.
        self._actions: list[_Action] = []
        self._action_starts: list[float] = []
        self._max_action_len = 0.0
        self._cues: list[tuple[float, int, str]] = [(0.0, 0, REST)]
        self._cue_seq = 1
        self._cue_next = 0  # index of the next cue to emit
        self._n_items_compiled = 0
        self._compiled_until = -math.inf
        self._roll_target = 0.0  # posture roll the wearer holds after the compiled actions
        # Completed posture changes keep their roll forever: (end time, delta) sorted by end.
        self._posture_ends: list[float] = []
        self._posture_deltas: list[float] = []
        self._roll_free_at = 0.0  # when the last compiled forearm roll motion ends
        self._n_performed = 0

        w = self.wearer
        forearm_shape = _NoiseShape(
            w.emg_modulation_sd,
            w.rest_spike_rate_hz,
            w.rest_spike_share,
            spatial=(w.channel_coupling, 0.3 * w.channel_coupling, w.common_coupling),
            floor_spatial=(w.floor_coupling, 0.3 * w.floor_coupling, 0.5 * w.common_coupling),
        )
        self._carr_f = _Carriers(self.seed, _P_FOREARM, FOREARM_EMG.rate_hz, 8, self._low_band_weight, forearm_shape)
        self._carr_u = _Carriers(
            self.seed, _P_UPPER, UPPER_EMG.rate_hz, 2, self._low_band_weight, _NoiseShape(w.emg_modulation_sd)
        )
        self._blocks: dict[int, dict[str, np.ndarray]] = {}
        self._events_cache: dict[int, tuple[_Action, ...]] = {}
        self._hum_tables: dict[tuple[float, int], tuple[np.ndarray, np.ndarray]] = {}
        fs_f = FOREARM_EMG.rate_hz
        response = signal.sosfreqz(myo_front_end(fs_f), worN=[self.wearer.hum_hz], fs=fs_f)[1][0]
        self._myo_hum_response = (float(abs(response)), float(np.angle(response)))
        self._fixed = self._fixed_parameters()
        self._gain_f = self.wearer.spatial_gain() ** 2  # [6, 8], used on squared amplitudes
        self._peak = self.wearer.peak_counts()

    # ------------------------------------------------------------------ Device protocol

    def streams(self) -> list[StreamInfo]:
        return [_SENSOR_STREAMS[s] for s in self.stream_names] + [EVENT_STREAMS["cue"]]

    def info(self) -> dict[str, Any]:
        return {
            "device": "synthetic arm",
            "model": "emgpilot.signals.synthetic.SyntheticArm",
            "seed": self.seed,
            "arm": self.wearer.arm,
            "speed": self.speed if math.isfinite(self.speed) else "max",
            "chunk_s": self.chunk_s,
            "duration_s": self.duration_s,
            "wearer": self.wearer.to_dict(),
            "schedule": self.schedule.describe(),
        }

    def start(self) -> None:
        """Start (or resume after :meth:`stop`) pacing from now at the current data time."""
        with self._lock:
            self._wall0 = self._clock() - self._t_emitted / self.speed
            self._stop_event.clear()

    def stop(self) -> None:
        self._stop_event.set()

    @property
    def finished(self) -> bool:
        return self._finished

    @property
    def data_time(self) -> float:
        """Data time of the next sample to be emitted."""
        return self._t_emitted

    def read(self, timeout: float | None = None) -> list[Message]:
        """The next ``chunk_s`` of every stream and the cue changes inside it.

        At a finite speed, waits until the chunk is due (wall clock), at most ``timeout``
        seconds; returns ``[]`` if it is not due by then. Running late, it returns every chunk
        already due at once (up to 1 s of data).
        """
        if self._finished:
            return []
        if self._wall0 is None:
            self.start()
        n_chunks = 1
        if math.isfinite(self.speed):
            assert self._wall0 is not None
            t_due = self._boundary(self._chunk_index + 1)
            wait = self._wall0 + t_due / self.speed - self._clock()
            if wait > 0:
                if timeout is not None and wait > timeout:
                    if timeout > 0:
                        self._sleep(timeout)
                    return []
                self._sleep(wait)
                if self._stop_event.is_set() and self._wall0 + t_due / self.speed - self._clock() > 0:
                    return []
            else:
                behind = (self._clock() - self._wall0) * self.speed
                n_chunks = max(1, min(int(behind / self.chunk_s) - self._chunk_index, int(1.0 / self.chunk_s)))
        with self._lock:
            t0 = self._boundary(self._chunk_index)
            t1 = self._boundary(self._chunk_index + n_chunks)
            if self.end_s is not None and t1 >= self.end_s - 1e-9:
                t1 = self.end_s
                self._finished = True
            self._chunk_index += n_chunks
            msgs = self._produce(t0, t1)
            self._t_emitted = t1
            return msgs

    # ------------------------------------------------------------------ live control

    def perform(self, label: str, duration_s: float | None = None) -> float:
        """Make the wearer perform ``label`` starting at the current data time (thread-safe).

        A wave that needs the other hand orientation is preceded by a posture change, so the
        gesture (and its cue) starts when the hand has turned. Returns the gesture's start time.
        """
        check_label(label)
        if duration_s is not None and not duration_s > 0:
            raise ValueError(f"perform({label!r}): duration_s must be > 0, not {duration_s}")
        with self._lock:
            now = self._t_emitted
            self._compile_until(now + _HORIZON_S)
            jitter = duration_s is None
            dur = duration_s if duration_s is not None else DEFAULT_PERFORM_S.get(label, DEFAULT_PERFORM_OTHER_S)
            rng = _block_rng(self.seed, _P_PERFORM, self._n_performed)
            self._n_performed += 1
            interrupted = self._interrupt(now)
            t_start = self._compile_item(ScheduleItem(now, dur, label, jitter=jitter), None, rng, earliest=now)
            if interrupted and t_start > now:
                self._add_cue(now, REST)
            # The emitted past is unchanged (every new effect starts at or after `now`); blocks
            # holding any future sample are recomputed.
            first_dirty = math.floor(now / BLOCK_S)
            for b in [b for b in self._blocks if b >= first_dirty]:
                del self._blocks[b]
            return t_start

    def _interrupt(self, now: float) -> bool:
        """End the gestures still held at ``now`` (the wearer switches to a new one): their
        activation starts ramping off now and their pending end cue is dropped. Nothing
        before ``now`` changes."""
        interrupted = False
        lo = bisect.bisect_left(self._action_starts, now - self._max_action_len - 1e-9)
        hi = bisect.bisect_right(self._action_starts, now)
        for a in self._actions[lo:hi]:
            if a.end_cue is None or a.end_cue[0] <= now:
                continue
            for e in a.envelopes:
                e.t1 = min(e.t1, now + e.ramp_off)
            k = bisect.bisect_left(self._cues, a.end_cue)
            if k >= self._cue_next and k < len(self._cues) and self._cues[k] == a.end_cue:
                del self._cues[k]
            a.end_cue = None
            interrupted = True
        return interrupted

    # ------------------------------------------------------------------ internals: time grid

    def _boundary(self, k: int) -> float:
        return k * self.chunk_s

    def _produce(self, t0: float, t1: float) -> list[Message]:
        if t1 + _HORIZON_S > self._compiled_until:
            self._compile_until(t1 + _HORIZON_S)
        msgs: list[Message] = []
        cues = self._cues
        while self._cue_next < len(cues) and cues[self._cue_next][0] < t1:
            t, _, label = cues[self._cue_next]
            self._cue_next += 1
            msgs.append(CueEvent(t=t, label=label))
        next_index = self._next_index
        for name, t_key, info, rate, per_block in self._stream_specs:
            i0 = next_index[name]
            i1 = math.ceil(t1 * rate - 1e-6)
            next_index[name] = i1
            b = i0 // per_block
            if i1 <= (b + 1) * per_block:  # the usual case: inside one cached block
                blk = self._blocks.get(b) or self._block(b)
                k0, k1 = i0 - b * per_block, max(i0, i1) - b * per_block
                msgs.append(Chunk(info, blk[t_key][k0:k1], blk[name][k0:k1]))
            else:
                msgs.append(Chunk(info, *self._samples(name, rate, i0, i1)))
        keep_from = math.floor(t1 / BLOCK_S) - 1
        if keep_from > self._pruned_below:
            for old in [k for k in self._blocks if k < keep_from]:
                del self._blocks[old]
            self._pruned_below = keep_from
            # Blocks before keep_from are never made again (reads only move forward; perform()
            # only redoes blocks from the present on): one more block of margin, then forget.
            self._forget_actions_before((keep_from - 1) * BLOCK_S)
        return msgs

    def _forget_actions_before(self, t: float) -> None:
        """Drop compiled actions that ended before ``t`` (an hour's session kept them all: ~1.4 MB)."""
        cut = bisect.bisect_left(self._action_starts, t - self._max_action_len - 1e-9)
        if cut > 0:
            del self._actions[:cut]
            del self._action_starts[:cut]

    def _samples(self, name: str, rate: float, i0: int, i1: int) -> tuple[np.ndarray, np.ndarray]:
        """Times and values of samples ``i0 .. i1 - 1`` of a stream, cut from the cached blocks."""
        per_block = round(rate * BLOCK_S)
        b = i0 // per_block
        if (i1 - 1) // per_block == b or i1 <= i0:
            blk = self._block(b)
            k0, k1 = i0 - b * per_block, max(i0, i1) - b * per_block
            return blk["t:" + name][k0:k1], blk[name][k0:k1]
        ts, parts = [], []
        i = i0
        while i < i1:
            b = i // per_block
            j = min(i1, (b + 1) * per_block)
            blk = self._block(b)
            ts.append(blk["t:" + name][i - b * per_block : j - b * per_block])
            parts.append(blk[name][i - b * per_block : j - b * per_block])
            i = j
        return np.concatenate(ts), np.concatenate(parts)

    def _block(self, b: int) -> dict[str, np.ndarray]:
        blk = self._blocks.get(b)
        if blk is None:
            blk = self._compose(b)
            self._blocks[b] = blk
        return blk

    # ------------------------------------------------------------------ internals: behaviour

    def _fixed_parameters(self) -> dict[str, np.ndarray]:
        """Per-wearer constants derived from the seed: phases of hum, drift, wander, tremor."""
        rng = _block_rng(self.seed, _P_WEARER_FIXED, 0)
        w = self.wearer
        return {
            "hum_phase_f": rng.uniform(0, 2 * math.pi, 8),
            "hum_gain_f": rng.uniform(0.5, 1.5, 8),
            "hum_phase_u": rng.uniform(0, 2 * math.pi, 2),
            "drift_period": w.drift_period_s * rng.uniform(0.7, 1.3, 10),
            "drift_phase": rng.uniform(0, 2 * math.pi, 10),
            "wander_freq": rng.uniform(0.03, 0.3, (3, 3)),
            "wander_amp": rng.uniform(0.3, 1.5, (3, 3)),
            "wander_phase": rng.uniform(0, 2 * math.pi, (3, 3)),
            "tremor_freq": rng.uniform(0.5, 2.5, 2),
            "tremor_phase": rng.uniform(0, 2 * math.pi, 2),
            "offset_wander": rng.uniform(1.0, 4.0, 2),
        }

    def _compile_until(self, t: float) -> None:
        """Compile schedule items starting before ``t`` (in steps, so reading many small chunks
        does not rescan the schedule each time). An item's compilation sees its successor (the
        schedule is extended 30 s past it), so the result never depends on when this runs."""
        if t <= self._compiled_until:
            return
        t = max(t, self._compiled_until + BLOCK_S)
        while True:
            i = self._n_items_compiled
            items = self.schedule.extend_until(t)
            if i >= len(items) or items[i].t_start >= t:
                break
            items = self.schedule.extend_until(items[i].t_start + 30.0)
            nxt = items[i + 1] if i + 1 < len(items) else None
            self._compile_item(items[i], nxt, _block_rng(self.seed, _P_ITEM, i), earliest=0.0)
            self._n_items_compiled += 1
        self._compiled_until = t

    def _add_action(self, a: _Action) -> None:
        k = bisect.bisect_right(self._action_starts, a.t_start)
        self._action_starts.insert(k, a.t_start)
        self._actions.insert(k, a)
        self._max_action_len = max(self._max_action_len, a.t_end - a.t_start)

    def _add_cue(self, t: float, label: str) -> tuple[float, int, str]:
        cue = (t, self._cue_seq, label)
        bisect.insort(self._cues, cue)
        self._cue_seq += 1
        return cue

    def _compile_item(
        self, item: ScheduleItem, nxt: ScheduleItem | None, rng: np.random.Generator, earliest: float
    ) -> float:
        """Turn one schedule item into actions and cues. Returns the gesture's start time."""
        w = self.wearer
        label = item.label
        t0 = item.t_start
        # Posture change first if a wave needs the other hand orientation.
        orient = wave_orientation(label)
        if orient is not None:
            target = 0.0 if orient == "palm_down" else w.thumb_up_roll_deg()
            delta = target - self._roll_target
            if abs(delta) > 1e-6:
                peak = w.turn_peak_dps * rng.uniform(0.8, 1.2)
                dur_turn = 2.0 * abs(delta) / peak
                gap = rng.uniform(0.15, 0.35)
                if earliest > 0.0:  # live: turn now (once the forearm is free), gesture after
                    turn_start = max(earliest, self._roll_free_at)
                    t0 = turn_start + dur_turn + gap
                else:
                    # Turn in the rest before the wave, after any earlier forearm roll has finished
                    # (a turn on top of a rotation's return would add up to a rotate-like speed).
                    # Squeezed, the wearer turns faster (up to _MAX_TURN_DPS) and, if still short
                    # of time, waves while finishing the turn.
                    free = max(0.0, self._roll_free_at)
                    turn_start = max(free, t0 - dur_turn - gap)
                    if turn_start + dur_turn > t0 - 0.05:
                        dur_turn = max(t0 - 0.05 - free, 2.0 * abs(delta) / _MAX_TURN_DPS)
                        turn_start = free
                self._add_action(
                    _Action(turn_start, turn_start + dur_turn, profiles=[_Profile("roll", turn_start, dur_turn, delta)])
                )
                k = bisect.bisect_right(self._posture_ends, turn_start + dur_turn)
                self._posture_ends.insert(k, turn_start + dur_turn)
                self._posture_deltas.insert(k, delta)
                self._roll_target = target
                self._roll_free_at = max(self._roll_free_at, turn_start + dur_turn)
        dur = item.duration
        if item.jitter:
            dur = float(np.clip(dur * math.exp(rng.normal(0.0, w.duration_sd)), 0.5 * dur, min(1.5 * dur, dur + 1.0)))
        if nxt is not None:
            dur = max(0.2, min(dur, nxt.t_start - 0.3 - t0))
        vigour = float(np.clip(math.exp(rng.normal(0.0, w.vigour_sd)), 0.55, 1.8))
        kind = motion_kind(label)
        ramp_on, ramp_off = rng.uniform(0.05, 0.15), rng.uniform(0.05, 0.15)
        act = pattern_vector(muscle_pattern(label, w.arm)) * vigour
        action = _Action(t0, t0 + dur)

        if kind == "rotate" or kind == "hold_roll":
            sign = 1.0 if label in ("rotate_cw",) else -1.0
            if kind == "hold_roll":
                sign = (1.0 if label == "supination" else -1.0) * w.sign
                amp = rng.uniform(40.0, 70.0)
                peak = w.turn_peak_dps * rng.uniform(0.8, 1.2)
            else:
                amp = rng.uniform(50.0, 85.0) * math.sqrt(vigour)
                peak = float(np.clip(w.rotate_peak_dps * vigour * rng.uniform(0.85, 1.15), 120.0, 320.0))
            t_out = 2.0 * amp / peak
            # The return to neutral is unhurried (a third of the twist's speed, at most 100 deg/s),
            # so it does not look like a rotation the other way.
            back_peak = min(100.0, peak * rng.uniform(0.25, 0.4)) if kind == "rotate" else peak
            t_back = 2.0 * amp / back_peak
            dur = max(dur, t_out)
            action.profiles += [
                _Profile("roll", t0, t_out, sign * amp),
                _Profile("roll", t0 + dur, t_back, -sign * amp),
            ]
            action.t_end = t0 + dur + t_back
        elif kind == "wave":
            direction = 1.0 if wave_primitive(label, w.arm) == "wrist_extension" else -1.0
            tw = rng.uniform(0.2, 0.3)
            wobble = -direction * rng.uniform(2.0, 5.0) * vigour
            acc = direction * rng.uniform(0.05, 0.15) * vigour
            action.profiles += [_Profile("wobble", t0, tw, wobble), _Profile("wobble", t0 + dur, tw, -wobble)]
            action.accels += [
                _Accel(t0, tw, np.array([0.0, 0.0, acc])),
                _Accel(t0 + dur, tw, np.array([0.0, 0.0, -acc])),
            ]
            action.t_end = t0 + dur + tw
        elif kind == "elbow":
            amp = rng.uniform(40.0, 70.0) * vigour
            t_up = rng.uniform(0.5, 0.8)
            action.profiles += [_Profile("elev", t0, t_up, amp), _Profile("elev", t0 + dur, t_up * 1.2, -amp)]
            action.t_end = t0 + dur + t_up * 1.2
        elif kind == "free":
            act = np.concatenate([rng.uniform(0.0, 0.3, N_FOREARM_MUSCLES), rng.uniform(0.0, 0.2, 2)]) * vigour
            n_moves = max(1, int(dur / 0.5))
            for _ in range(n_moves):
                ts = t0 + rng.uniform(0.0, max(dur - 0.4, 0.01))
                axis = str(rng.choice(["yaw", "elev", "roll"]))
                action.profiles.append(_Profile(axis, ts, rng.uniform(0.4, 1.0), rng.normal(0, 10), "bump"))
                action.accels.append(_Accel(ts, rng.uniform(0.2, 0.5), rng.normal(0.0, 0.1, 3)))
            action.t_end = t0 + dur + 1.0
        if kind in ("wave", "rotate", "free") and rng.random() < 0.3:
            action.artefacts.append(self._artefact(rng, t0 + rng.uniform(0.0, 0.15), "forearm"))
        bright = 0.0 if kind == "free" else PATTERN_BRIGHTNESS.get(muscle_pattern(label, w.arm), 0.0)
        action.envelopes.append(_Envelope(t0, t0 + dur, ramp_on, ramp_off, act, bright))
        self._add_action(action)
        self._add_cue(t0, label)
        action.end_cue = self._add_cue(t0 + dur, REST)
        if any(p.axis == "roll" for p in action.profiles):
            self._roll_free_at = max(self._roll_free_at, action.t_end)
        return t0

    def _artefact(self, rng: np.random.Generator, t0: float, sensor: str) -> _Artefact:
        n_ch = 8 if sensor == "forearm" else 2
        if sensor == "forearm":
            centre = rng.uniform(0, 8)
            dist = np.minimum(np.abs(np.arange(8) - centre), 8 - np.abs(np.arange(8) - centre))
            weights = np.exp(-0.5 * dist**2)
            amp = rng.lognormal(math.log(8.0), 0.5)
        else:
            weights = rng.uniform(0.3, 1.0, n_ch)
            amp = rng.lognormal(math.log(25.0), 0.5)
        weights = weights * amp * rng.choice([-1.0, 1.0])
        if sensor == "forearm":  # what is left of a movement transient after the Myo's 20 Hz high-pass
            return _Artefact(sensor, t0, weights, rng.uniform(10.0, 25.0), rng.uniform(0.03, 0.08))
        return _Artefact(sensor, t0, weights, rng.uniform(3.0, 8.0), rng.uniform(0.05, 0.12))

    def _block_events(self, b: int) -> tuple[_Action, ...]:
        """Random events starting in block ``b``: small movements and motion artefacts."""
        cached = self._events_cache.get(b)
        if cached is not None:
            return cached
        events = self._make_block_events(b)
        self._events_cache[b] = events
        for old in [k for k in self._events_cache if k < b - 4]:
            del self._events_cache[old]
        return events

    def _make_block_events(self, b: int) -> tuple[_Action, ...]:
        w = self.wearer
        rng = _block_rng(self.seed, _P_EVENTS, b)
        t_b = b * BLOCK_S
        events: list[_Action] = []
        for _ in range(rng.poisson(w.micro_move_per_min / 60.0 * BLOCK_S)):
            ts = t_b + rng.uniform(0.0, BLOCK_S)
            dur = rng.uniform(0.3, 1.0)
            act = np.zeros(len(MUSCLES))
            act[rng.integers(N_FOREARM_MUSCLES)] = rng.uniform(0.02, 0.08)
            a = _Action(ts, ts + dur, envelopes=[_Envelope(ts, ts + dur, dur / 2, dur / 2, act)])
            for axis in ("yaw", "elev", "roll"):
                a.profiles.append(_Profile(axis, ts, dur, rng.normal(0.0, 2.5), "bump"))
            events.append(a)
        for sensor in ("forearm", "upper"):
            for _ in range(rng.poisson(w.artefact_per_min / 60.0 * BLOCK_S)):
                art = self._artefact(rng, t_b + rng.uniform(0.0, BLOCK_S), sensor)
                events.append(_Action(art.t0, art.t_end, artefacts=[art]))
        return tuple(events)

    def _posture_roll(self, t_a: float) -> float:
        """Roll (deg) of the posture changes completed by ``t_a`` (those still running are actions)."""
        k = bisect.bisect_right(self._posture_ends, t_a)
        return float(sum(self._posture_deltas[:k]))

    def _actions_for(self, t_a: float, t_b: float) -> list[_Action]:
        """Compiled and random actions with an effect inside [t_a, t_b); posture changes that
        ended before ``t_a`` are left to :meth:`_posture_roll`."""
        hi = bisect.bisect_left(self._action_starts, t_b)
        lo = bisect.bisect_left(self._action_starts, t_a - self._max_action_len - 1e-9)
        found = [a for a in self._actions[lo:hi] if a.t_end > t_a]
        b = math.floor(t_a / BLOCK_S)
        for bb in range(max(0, b - math.ceil(_MAX_EVENT_S / BLOCK_S)), b + 1):
            found.extend(a for a in self._block_events(bb) if a.t_end > t_a and a.t_start < t_b)
        return found

    # ------------------------------------------------------------------ internals: signals

    def _compose(self, b: int) -> dict[str, np.ndarray]:
        t_a, t_b = b * BLOCK_S, (b + 1) * BLOCK_S
        self._compile_until(t_b + _HORIZON_S)
        actions = self._actions_for(t_a, t_b)
        slow = self._slow(b, actions) if {"forearm_emg", "upper_emg"} & set(self.stream_names) else {}
        out: dict[str, np.ndarray] = {}
        for name in self.stream_names:
            out["t:" + name] = self._times(b, _SENSOR_STREAMS[name].rate_hz)
            if name == "forearm_emg":
                out[name] = self._forearm(b, actions, slow)
            elif name == "upper_emg":
                out[name] = self._upper(b, actions, slow)
            else:
                out[name] = self._imu(b, actions)
        return out

    def _times(self, b: int, rate: float, extra: int = 0) -> np.ndarray:
        n = round(rate * BLOCK_S)
        return (b * n + np.arange(n + extra)) / rate

    def _fatigue(self, t: np.ndarray) -> np.ndarray:
        return 1.0 - np.exp(-t / self.wearer.fatigue_tau_s)

    def _slow(self, b: int, actions: list[_Action]) -> dict[str, np.ndarray]:
        """Slowly varying quantities on the 200 Hz grid of the block plus the next block's first
        point (so the 1 kHz stream can interpolate): muscle activation in counts RMS (with force
        tremor and fatigue), gain drift, weight of the fatigued low-frequency carrier."""
        w, f = self.wearer, self._fixed
        t = self._times(b, FOREARM_EMG.rate_hz, extra=1)
        act = _eval_activation(actions, t) + w.tonic
        tremor = (
            1.0
            + 0.06 * np.sin(2 * math.pi * f["tremor_freq"][0] * t + f["tremor_phase"][0])
            + 0.04 * np.sin(2 * math.pi * f["tremor_freq"][1] * t + f["tremor_phase"][1])
        )
        fatigue = self._fatigue(t)
        scale = tremor * (1.0 + w.fatigue_gain * fatigue)
        drift = 1.0 + w.drift_depth * np.sin(2 * math.pi * t[:, None] / f["drift_period"][None, :] + f["drift_phase"])
        return {
            "t": t,
            "act": act * (scale[:, None] * self._peak[None, :]),
            "drift": drift,
            "bright": _eval_brightness(actions, t),
        }

    def _low_band_weight(self, t: float) -> float:
        """Share of the low-frequency carrier: grows as the wearer fatigues."""
        fatigue = 1.0 - math.exp(-t / self.wearer.fatigue_tau_s)
        return min(0.9, 0.05 + 0.7 * self.wearer.fatigue_slowing * fatigue)

    @staticmethod
    def _upsample(x: np.ndarray, factor: int) -> np.ndarray:
        """Linear interpolation of ``[n + 1, ...]`` grid values onto ``n * factor`` samples."""
        frac = (np.arange(factor) / factor).reshape((1, factor) + (1,) * (x.ndim - 1))
        y = x[:-1, None] * (1.0 - frac) + x[1:, None] * frac
        return y.reshape((-1, *x.shape[1:]))

    def _hum(self, b: int, rate: float, amp: np.ndarray, phase: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Powerline hum ``amp * sin(2 pi f t + phase)`` of block ``b`` as ``(cos_k, sin_k)``
        tables and per-channel weights: ``hum = cos_k[:, None] * wc + sin_k[:, None] * ws``
        (sampling the sine itself is what makes 50 Hz alias at 200 Hz)."""
        n = round(rate * BLOCK_S)
        key = (rate, n)
        table = self._hum_tables.get(key)
        if table is None:
            beta = 2 * math.pi * self.wearer.hum_hz * np.arange(n) / rate
            table = self._hum_tables[key] = (np.cos(beta), np.sin(beta))
        alpha = 2 * math.pi * self.wearer.hum_hz * (b * n / rate) + phase
        return amp * np.sin(alpha), amp * np.cos(alpha)

    def _add_hum(self, x: np.ndarray, b: int, rate: float, amp: np.ndarray, phase: np.ndarray) -> None:
        w_cos, w_sin = self._hum(b, rate, amp, phase)
        cos_k, sin_k = self._hum_tables[(rate, x.shape[0])]
        x += cos_k[:, None] * w_cos[None, :]
        x += sin_k[:, None] * w_sin[None, :]

    def _forearm(self, b: int, actions: list[_Action], slow: dict[str, np.ndarray]) -> np.ndarray:
        w, f = self.wearer, self._fixed
        t = slow["t"][:-1]
        carrier, white, bright = self._carr_f.get_all(b)
        share = slow["bright"][:-1]
        if bright is not None and share.any():
            # Grips carry more high-frequency power: mix in the brighter carrier (unit variance kept).
            carrier = carrier * np.sqrt(1.0 - share)[:, None] + bright * np.sqrt(share)[:, None]
        a = slow["act"][:-1, :N_FOREARM_MUSCLES]
        # [n, 8] counts RMS of muscle activity (einsum: no BLAS threads for this small product)
        amp = np.sqrt(np.einsum("nm,mk->nk", a * a, self._gain_f))
        floor = w.noise_floor * np.asarray(w.noise_channel)
        x = amp * carrier
        x += floor[None, :] * white
        # The Myo's notches pass only a trace of the hum (a sinusoid through a linear filter).
        hum_gain, hum_shift = self._myo_hum_response
        hum_amp = w.hum_forearm * hum_gain * f["hum_gain_f"]
        self._add_hum(x, b, FOREARM_EMG.rate_hz, hum_amp, f["hum_phase_f"] + hum_shift)
        artefacts = _eval_artefacts(actions, t, "forearm", 8)
        if artefacts is not None:
            x += artefacts
        x *= np.asarray(w.channel_gains)[None, :] * slow["drift"][:-1, :8]
        np.rint(x, out=x)
        np.clip(x, -128, 127, out=x)
        return x.astype(np.int8)

    def _upper(self, b: int, actions: list[_Action], slow: dict[str, np.ndarray]) -> np.ndarray:
        w, f = self.wearer, self._fixed
        factor = round(UPPER_EMG.rate_hz / FOREARM_EMG.rate_hz)
        carrier, white = self._carr_u.get(b)
        a = slow["act"][:, N_FOREARM_MUSCLES:]
        # Each sensor also picks up 10 % of the other muscle (cross-talk through the arm).
        amp = self._upsample(np.sqrt(a * a + (0.1 * a[:, ::-1]) ** 2) * slow["drift"][:, 8:10], factor)
        x = amp * carrier
        x += w.upper_noise * white
        self._add_hum(x, b, UPPER_EMG.rate_hz, np.full(2, w.hum_upper), f["hum_phase_u"])
        artefacts = _eval_artefacts(actions, self._times(b, UPPER_EMG.rate_hz), "upper", 2)
        if artefacts is not None:
            x += artefacts
        # The ADC offset wanders by a few counts over minutes: computed on the 200 Hz grid.
        t_slow = slow["t"][:-1]
        offset = np.asarray(w.upper_offset)[None, :] + f["offset_wander"][None, :] * np.sin(
            2 * math.pi * t_slow[:, None] / 97.0 + np.array([0.0, 1.3])[None, :]
        )
        x += np.repeat(offset, factor, axis=0)
        np.rint(x, out=x)
        np.clip(x, 0, 1023, out=x)
        return x.astype(np.int16)

    def _imu(self, b: int, actions: list[_Action]) -> np.ndarray:
        w, f = self.wearer, self._fixed
        t = self._times(b, FOREARM_IMU.rate_hz)
        n = t.shape[0]
        ang = _eval_angles(actions, t)
        deg = math.pi / 180.0
        angles, rates = {}, {}
        ang["roll"] = (ang["roll"][0] + self._posture_roll(b * BLOCK_S), ang["roll"][1])
        for i, axis in enumerate(("yaw", "elev", "roll")):
            ph = 2 * math.pi * f["wander_freq"][i][:, None] * t[None, :] + f["wander_phase"][i][:, None]
            wander = (f["wander_amp"][i][:, None] * np.sin(ph)).sum(0)
            wander_rate = (f["wander_amp"][i][:, None] * 2 * math.pi * f["wander_freq"][i][:, None] * np.cos(ph)).sum(0)
            angles[axis] = (ang[axis][0] + wander) * deg
            rates[axis] = (ang[axis][1] + wander_rate) * deg
        angles["elev"] = angles["elev"] + w.elevation_deg * deg
        q, omega, gravity, to_sensor = sensor_kinematics(
            angles["yaw"],
            -angles["elev"],
            angles["roll"],
            ang["wobble"][0] * deg,
            w.band_rotation_deg * deg,
            rates["yaw"],
            -rates["elev"],
            rates["roll"],
            ang["wobble"][1] * deg,
        )
        lin = to_sensor(_eval_accel(actions, t))  # small linear accelerations, forearm frame -> sensor
        rng = _block_rng(self.seed, _P_IMU, b)
        acc = (gravity + lin) * w.acc_scale + rng.normal(0.0, w.acc_noise_g, (n, 3))
        gyro = omega / deg + np.asarray(w.gyro_bias_dps)[None, :] + rng.normal(0.0, w.gyro_noise_dps, (n, 3))
        # Quantise like the Myo's int16 fields (quaternion / 16384, acc / 2048 g, gyro / 16 deg/s).
        out = np.empty((n, 10), dtype=np.float32)
        out[:, 0:4] = np.rint(q * 16384.0) / 16384.0
        out[:, 4:7] = np.rint(np.clip(acc, -16, 16) * 2048.0) / 2048.0
        out[:, 7:10] = np.rint(np.clip(gyro, -2000, 2000) * 16.0) / 16.0
        return out

    # ------------------------------------------------------------------ helpers for tests/tools

    def label_at(self, t: float) -> str:
        """Ground-truth cue label in force at data time ``t`` (compiles ahead if needed)."""
        with self._lock:
            self._compile_until(t + _HORIZON_S)
            k = bisect.bisect_right(self._cues, (t, math.inf, ""))
            return self._cues[k - 1][2] if k else REST


def generate(
    seed: int = 0,
    duration_s: float = 60.0,
    schedule: Schedule | None = None,
    wearer: Wearer | None = None,
    streams: tuple[str, ...] = ("forearm_emg", "forearm_imu", "upper_emg"),
    chunk_s: float = BLOCK_S,
) -> tuple[dict[str, Chunk], list[CueEvent]]:
    """Generate ``duration_s`` of data at once: one joined chunk per stream, and the cue events."""
    arm = SyntheticArm(
        seed=seed,
        speed=math.inf,
        schedule=schedule,
        wearer=wearer,
        chunk_s=chunk_s,
        duration_s=duration_s,
        streams=streams,
    )
    parts: dict[str, list[Chunk]] = {s: [] for s in streams}
    cues: list[CueEvent] = []
    arm.start()
    while not arm.finished:
        for m in arm.read():
            if isinstance(m, Chunk):
                parts[m.info.name].append(m)
            elif isinstance(m, CueEvent):
                cues.append(m)
    arm.stop()
    joined = {
        s: Chunk(c[0].info, np.concatenate([x.t for x in c]), np.concatenate([x.data for x in c]))
        for s, c in parts.items()
    }
    return joined, cues
