"""Typed, timestamped messages that flow between every part of emgpilot.

Two message shapes exist:

* :class:`Chunk` -- a block of regularly sampled numeric data (EMG, IMU, envelopes,
  detector states, drone telemetry). ``t`` holds one data-time stamp per sample.
* :class:`Event` subclasses -- irregular, typed occurrences (cue changes, gestures,
  commands, safety decisions, device status, gaps).

Time is always the data's time in seconds (device sample counting, or the simulator's
clock), never the wall clock.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np


@dataclass(frozen=True)
class StreamInfo:
    """Declaration of one stream: what it is, how fast it runs, what its channels mean.

    Parameters
    ----------
    name : unique stream name, e.g. ``"forearm_emg"``.
    kind : family of the stream (``"emg"``, ``"imu"``, ``"envelope"``, ``"event"`` ...).
    rate_hz : nominal sample rate; ``0.0`` for irregular (event) streams.
    channels : channel names, one per data column (empty for event streams).
    units : unit of each channel (same length as ``channels``).
    """

    name: str
    kind: str
    rate_hz: float
    channels: tuple[str, ...] = ()
    units: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.units and len(self.units) != len(self.channels):
            raise ValueError(f"stream {self.name!r}: {len(self.units)} units for {len(self.channels)} channels")

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def is_event(self) -> bool:
        return self.rate_hz == 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "rate_hz": self.rate_hz,
            "channels": list(self.channels),
            "units": list(self.units),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StreamInfo:
        return cls(
            name=str(d["name"]),
            kind=str(d["kind"]),
            rate_hz=float(d["rate_hz"]),
            channels=tuple(d.get("channels", ())),
            units=tuple(d.get("units", ())),
        )


@dataclass(frozen=True, eq=False)
class Chunk:
    """A block of samples of one regular stream.

    ``t`` is float64 ``[n]`` data time in seconds; ``data`` is ``[n, n_channels]``.
    """

    info: StreamInfo
    t: np.ndarray
    data: np.ndarray

    def __post_init__(self) -> None:
        if self.t.ndim != 1 or self.data.ndim != 2 or self.data.shape[0] != self.t.shape[0]:
            raise ValueError(f"chunk of {self.info.name!r}: t {self.t.shape} and data {self.data.shape} do not match")
        if self.data.shape[1] != self.info.n_channels:
            raise ValueError(
                f"chunk of {self.info.name!r}: {self.data.shape[1]} columns, stream declares {self.info.n_channels}"
            )

    @property
    def stream(self) -> str:
        return self.info.name

    def __len__(self) -> int:
        return int(self.t.shape[0])

    @property
    def t_end(self) -> float:
        """Time of the last sample (``-inf`` for an empty chunk)."""
        return float(self.t[-1]) if len(self) else float("-inf")

    def slice(self, start: int, stop: int) -> Chunk:
        return Chunk(self.info, self.t[start:stop], self.data[start:stop])


def concat_chunks(chunks: list[Chunk]) -> Chunk:
    """Join chunks of one stream in order."""
    if not chunks:
        raise ValueError("no chunks to join")
    info = chunks[0].info
    return Chunk(info, np.concatenate([c.t for c in chunks]), np.concatenate([c.data for c in chunks]))


# --------------------------------------------------------------------------- events

_EVENT_TYPES: dict[str, type[Event]] = {}


@dataclass(frozen=True)
class Event:
    """Base of every irregular message. Subclasses set ``stream`` and add typed fields."""

    stream: ClassVar[str] = "event"
    t: float

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _EVENT_TYPES[cls.__name__] = cls

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["type"] = type(self).__name__
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Event:
        d = dict(d)
        type_name = d.pop("type", None)
        cls = _EVENT_TYPES.get(str(type_name))
        if cls is None:
            raise ValueError(f"unknown event type {type_name!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"event {type_name}: unknown fields {sorted(unknown)}")
        return cls(**d)


@dataclass(frozen=True)
class CueEvent(Event):
    """Ground truth: from ``t`` on, the wearer is asked to (or does) ``label``."""

    stream: ClassVar[str] = "cue"
    label: str = "rest"


@dataclass(frozen=True)
class GestureEvent(Event):
    """A recognised gesture.

    ``gesture`` is a vocabulary name (see :mod:`emgpilot.signals.vocabulary`), ``primitive``
    the muscle-level action behind it (``wrist_flexion`` for a wave down...), so recordings
    without an IMU can still be scored.
    """

    stream: ClassVar[str] = "gesture"
    gesture: str = ""
    primitive: str = ""
    confidence: float = 0.0
    evidence: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class CommandEvent(Event):
    """A drone command produced by the mapper (before or after safety, see ``stage``)."""

    stream: ClassVar[str] = "command"
    command: str = ""
    args: dict[str, float] = field(default_factory=dict)
    source: str = ""


@dataclass(frozen=True)
class SafetyEvent(Event):
    """A decision of the safety supervisor, with its reason."""

    stream: ClassVar[str] = "safety"
    action: str = ""
    reason: str = ""


@dataclass(frozen=True)
class StatusEvent(Event):
    """Device or link status change (``connected``, ``lost``, ``reconnected`` ...)."""

    stream: ClassVar[str] = "status"
    device: str = ""
    status: str = ""
    detail: str = ""


@dataclass(frozen=True)
class GapEvent(Event):
    """Samples of ``source_stream`` are missing between ``t`` and ``t_resume``."""

    stream: ClassVar[str] = "gap"
    source_stream: str = ""
    t_resume: float = float("nan")
    reason: str = ""


Message = Chunk | Event


def message_stream(msg: Message) -> str:
    return msg.info.name if isinstance(msg, Chunk) else msg.stream


def message_time(msg: Message) -> float:
    """Time of the latest sample a message carries."""
    return msg.t_end if isinstance(msg, Chunk) else float(msg.t)


# --------------------------------------------------------------------------- standard streams

IMU_CHANNELS = ("qw", "qx", "qy", "qz", "ax", "ay", "az", "gx", "gy", "gz")
IMU_UNITS = ("1", "1", "1", "1", "g", "g", "g", "deg/s", "deg/s", "deg/s")

FOREARM_EMG = StreamInfo("forearm_emg", "emg", 200.0, tuple(f"emg{i}" for i in range(8)), ("counts",) * 8)
"""Myo armband EMG: 8 channels, 200 Hz, raw int8 counts."""

FOREARM_IMU = StreamInfo("forearm_imu", "imu", 50.0, IMU_CHANNELS, IMU_UNITS)
"""Myo IMU: orientation quaternion, accelerometer (g), gyroscope (deg/s); x runs along the forearm."""

UPPER_EMG = StreamInfo("upper_emg", "emg", 1000.0, ("biceps", "triceps"), ("counts", "counts"))
"""Upper-arm EMG through a microcontroller ADC (MyoWare raw output), ~1 kHz."""

DECISION = StreamInfo("decision", "decision", 20.0, ("class", "confidence"), ("index", "1"))
"""Per-window recognition output (every 50 ms): index into
:data:`emgpilot.signals.vocabulary.DECISION_CLASSES` (-1 = rejected) and its confidence.
Window-level metrics (CA, AER, INS, REJ) are computed on it."""

EVENT_STREAMS = {
    name: StreamInfo(name, "event", 0.0) for name in ("cue", "gesture", "command", "safety", "status", "gap")
}

SENSOR_STREAMS = (FOREARM_EMG, FOREARM_IMU, UPPER_EMG)


def with_rate(info: StreamInfo, rate_hz: float) -> StreamInfo:
    """Same stream declared at another nominal rate (a device that runs off-nominal)."""
    return dataclasses.replace(info, rate_hz=float(rate_hz))
