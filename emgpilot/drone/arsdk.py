"""ARSDK (protocol v1, as a Parrot Bebop 2 speaks it): frames, commands and protocol constants.

Pure Python, no Olympe: the virtual Bebop 2 (:mod:`emgpilot.drone.virtual_bebop`) and the tests
use it to speak to the real Olympe client. The wire facts come from ``docs/protocols.md``
section 1 (shared with the lead):

* A UDP datagram carries one or more frames ``u8 type | u8 buffer_id | u8 seq | u32 size |
  payload``, little-endian, ``size`` counting the 7-byte header.
* A command payload is ``u8 project | u8 class | u16 command`` followed by its arguments in
  order (ints as sized, float f32, double f64, string = bytes + NUL, enum = i32,
  binary = u32 length + bytes).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

# ---------------------------------------------------------------------------------- constants

DISCOVERY_PORT = 44445
"""TCP port Olympe 8.5 asks for the device's JSON description (the device keeps it open)."""
HANDSHAKE_PORT = 44444
"""TCP port of the JSON connection handshake (what a Bebop 2 firmware serves)."""
DEFAULT_D2C_PORT = 9988
"""UDP port the controller usually listens on (read the real one from the handshake)."""
BEBOP2_MODEL_ID = 0x090C
"""ARSDK product id of the Bebop 2 (``model.id`` in the discovery JSON, as a hex string)."""

HEADER = struct.Struct("<BBBI")
HEADER_SIZE = HEADER.size  # 7
MAX_FRAME_SIZE = 65507  # largest UDP payload over IPv4
ACK_OFFSET = 128
"""The ack of a frame received on buffer ``b`` travels on buffer ``b + 128``."""

ACK_RETRY_S = 0.150
"""Retry period of an unacknowledged frame on an acked buffer."""
ACK_MAX_RETRIES = 5
KEEPALIVE_IDLE_S = 2.0
"""Ping after this long without receiving anything."""
KEEPALIVE_MAX_MISSED = 3
"""Unanswered pings in a row that mean the link is lost."""


class FrameType(IntEnum):
    ACK = 1
    DATA = 2
    LOW_LATENCY = 3
    DATA_WITH_ACK = 4


class Buffer(IntEnum):
    """Buffer ids of a Bebop 2 (c2d = controller to drone, d2c = drone to controller)."""

    PING = 0
    PONG = 1
    C2D_NON_ACK = 10  # PCMD
    C2D_ACK = 11  # TakeOff, Landing, moveBy, AllStates...
    C2D_EMERGENCY = 12  # Emergency on a real Bebop 2 (Olympe 8.5 has no queue for it on v1)
    D2C_ACK = 126  # FlyingStateChanged, AllStatesChanged, moveByEnd, battery
    D2C_NON_ACK = 127  # position, speed, attitude, altitude


ACKED_C2D_BUFFERS = frozenset({Buffer.C2D_ACK, Buffer.C2D_EMERGENCY})

FLYING_STATES: tuple[str, ...] = ("landed", "takingoff", "hovering", "flying", "landing", "emergency")
"""``FlyingStateChanged.state`` enum, in order."""
MOVE_BY_ERRORS: tuple[str, ...] = ("ok", "unknown", "busy", "notAvailable", "interrupted")
"""``moveByEnd.error`` enum, in order."""
POSITION_UNAVAILABLE = 500.0
"""``PositionChanged`` value meaning "no GPS fix"."""


class FrameError(ValueError):
    """A datagram that is not a valid sequence of ARSDK v1 frames."""


class CommandError(ValueError):
    """A command payload that does not match its declared arguments."""


# ---------------------------------------------------------------------------------- frames


@dataclass(frozen=True)
class Frame:
    """One ARSDK v1 frame."""

    type: int
    buffer_id: int
    seq: int
    payload: bytes = b""

    def encode(self) -> bytes:
        return encode_frame(self)


def encode_frame(frame: Frame) -> bytes:
    """The bytes of one frame (header + payload)."""
    size = HEADER_SIZE + len(frame.payload)
    if size > MAX_FRAME_SIZE:
        raise FrameError(f"frame of {size} bytes exceeds the UDP limit ({MAX_FRAME_SIZE})")
    for name, value in (("type", frame.type), ("buffer_id", frame.buffer_id), ("seq", frame.seq)):
        if not 0 <= int(value) <= 255:
            raise FrameError(f"frame {name} {value} is not a byte")
    return HEADER.pack(int(frame.type), int(frame.buffer_id), int(frame.seq), size) + bytes(frame.payload)


def encode_frames(frames: Iterable[Frame]) -> bytes:
    """Several frames packed into one datagram."""
    return b"".join(encode_frame(f) for f in frames)


def decode_frames(datagram: bytes) -> list[Frame]:
    """Split a datagram into frames.

    Raises
    ------
    FrameError
        On a truncated header, a size smaller than the header, a size running past the end of
        the datagram, or an unknown frame type. Nothing is returned for a bad datagram: a peer
        that sends garbage gets no partial interpretation.
    """
    frames: list[Frame] = []
    view = memoryview(datagram)
    pos = 0
    while pos < len(view):
        if len(view) - pos < HEADER_SIZE:
            raise FrameError(f"truncated frame header at byte {pos} of {len(view)}")
        ftype, buffer_id, seq, size = HEADER.unpack_from(view, pos)
        if size < HEADER_SIZE:
            raise FrameError(f"frame size {size} at byte {pos} is smaller than its header")
        if pos + size > len(view):
            raise FrameError(f"frame at byte {pos} declares {size} bytes, only {len(view) - pos} left")
        if ftype not in _FRAME_TYPES:
            raise FrameError(f"unknown frame type {ftype} at byte {pos}")
        frames.append(Frame(ftype, buffer_id, seq, bytes(view[pos + HEADER_SIZE : pos + size])))
        pos += size
    return frames


_FRAME_TYPES = frozenset(int(t) for t in FrameType)


def ack_frame(received: Frame, seq: int) -> Frame:
    """The ack of ``received`` (type 1 on buffer id + 128, payload = the acked seq byte)."""
    return Frame(FrameType.ACK, (received.buffer_id + ACK_OFFSET) & 0xFF, seq & 0xFF, bytes([received.seq & 0xFF]))


def acked_seq(ack: Frame) -> int:
    """The sequence number an ack frame acknowledges."""
    if ack.type != FrameType.ACK or len(ack.payload) != 1:
        raise FrameError(f"not an ack frame: type {ack.type}, {len(ack.payload)}-byte payload")
    return ack.payload[0]


class SeqCounter:
    """Per-buffer outgoing sequence numbers (start at 0, wrap at 256)."""

    def __init__(self) -> None:
        self._next: dict[int, int] = {}

    def next(self, buffer_id: int) -> int:
        seq = self._next.get(buffer_id, 0)
        self._next[buffer_id] = (seq + 1) & 0xFF
        return seq


class Deduplicator:
    """Drops a frame whose seq repeats the previous one on the same buffer (a retry whose ack
    got lost); the caller still acks it."""

    def __init__(self) -> None:
        self._last: dict[int, int] = {}

    def is_new(self, frame: Frame) -> bool:
        if self._last.get(frame.buffer_id) == frame.seq:
            return False
        self._last[frame.buffer_id] = frame.seq
        return True

    def reset(self) -> None:
        self._last.clear()


# ---------------------------------------------------------------------------------- commands

_SCALARS: dict[str, struct.Struct] = {
    "u8": struct.Struct("<B"),
    "i8": struct.Struct("<b"),
    "u16": struct.Struct("<H"),
    "i16": struct.Struct("<h"),
    "u32": struct.Struct("<I"),
    "i32": struct.Struct("<i"),
    "u64": struct.Struct("<Q"),
    "i64": struct.Struct("<q"),
    "float": struct.Struct("<f"),
    "double": struct.Struct("<d"),
    "enum": struct.Struct("<i"),
}
ARG_TYPES = frozenset({*_SCALARS, "string", "binary"})
_IDS = struct.Struct("<BBH")


@dataclass(frozen=True)
class CommandSpec:
    """One ARSDK message: ``full_name`` (feature.Class.name), ids and typed arguments."""

    full_name: str
    project: int
    cls: int
    cmd: int
    args: tuple[tuple[str, str], ...] = ()
    acked: bool = True
    enums: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def ids(self) -> tuple[int, int, int]:
        return (self.project, self.cls, self.cmd)

    @property
    def name(self) -> str:
        return self.full_name.rsplit(".", 1)[-1]


def _spec(full_name: str, ids: tuple[int, int, int], args: Sequence[tuple[str, str]] = (), acked: bool = True, **enums):
    return CommandSpec(full_name, *ids, tuple(args), acked, dict(enums))


_CUSTOM_ARGS = (("service_id", "u16"), ("msg_num", "u16"), ("payload", "binary"))

SPECS: tuple[CommandSpec, ...] = (
    _spec("common.Settings.AllSettings", (0, 2, 0)),
    _spec("common.SettingsState.AllSettingsChanged", (0, 3, 0)),
    _spec("common.Common.AllStates", (0, 4, 0)),
    _spec("common.Common.CurrentDate", (0, 4, 1), [("date", "string")]),
    _spec("common.Common.CurrentTime", (0, 4, 2), [("time", "string")]),
    _spec("common.Common.CurrentDateTime", (0, 4, 4), [("datetime", "string")]),
    _spec("common.CommonState.AllStatesChanged", (0, 5, 0)),
    _spec("common.CommonState.BatteryStateChanged", (0, 5, 1), [("percent", "u8")]),
    _spec("common.CommonState.WifiSignalChanged", (0, 5, 7), [("rssi", "i16")], acked=False),
    _spec("ardrone3.Piloting.TakeOff", (1, 0, 1)),
    _spec(
        "ardrone3.Piloting.PCMD",
        (1, 0, 2),
        [("flag", "u8"), ("roll", "i8"), ("pitch", "i8"), ("yaw", "i8"), ("gaz", "i8"), ("timestampAndSeqNum", "u32")],
        acked=False,
    ),
    _spec("ardrone3.Piloting.Landing", (1, 0, 3)),
    _spec("ardrone3.Piloting.Emergency", (1, 0, 4)),
    _spec(
        "ardrone3.Piloting.moveBy",
        (1, 0, 7),
        [("dX", "float"), ("dY", "float"), ("dZ", "float"), ("dPsi", "float")],
    ),
    _spec("ardrone3.PilotingState.FlyingStateChanged", (1, 4, 1), [("state", "enum")], state=FLYING_STATES),
    _spec(
        "ardrone3.PilotingState.PositionChanged",
        (1, 4, 4),
        [("latitude", "double"), ("longitude", "double"), ("altitude", "double")],
        acked=False,
    ),
    _spec(
        "ardrone3.PilotingState.SpeedChanged",
        (1, 4, 5),
        [("speedX", "float"), ("speedY", "float"), ("speedZ", "float")],
        acked=False,
    ),
    _spec(
        "ardrone3.PilotingState.AttitudeChanged",
        (1, 4, 6),
        [("roll", "float"), ("pitch", "float"), ("yaw", "float")],
        acked=False,
    ),
    _spec("ardrone3.PilotingState.AltitudeChanged", (1, 4, 8), [("altitude", "double")], acked=False),
    _spec(
        "ardrone3.PilotingEvent.moveByEnd",
        (1, 34, 0),
        [("dX", "float"), ("dY", "float"), ("dZ", "float"), ("dPsi", "float"), ("error", "enum")],
        error=MOVE_BY_ERRORS,
    ),
    _spec("generic.custom_cmd", (133, 0, 1), _CUSTOM_ARGS),
    _spec("generic.custom_cmd_non_ack", (133, 0, 2), _CUSTOM_ARGS, acked=False),
    _spec("generic.custom_evt", (133, 0, 3), _CUSTOM_ARGS),
    _spec("generic.custom_evt_non_ack", (133, 0, 4), _CUSTOM_ARGS, acked=False),
)
BY_NAME: dict[str, CommandSpec] = {s.full_name: s for s in SPECS}
BY_IDS: dict[tuple[int, int, int], CommandSpec] = {s.ids: s for s in SPECS}


@dataclass(frozen=True)
class Command:
    """A decoded command or event. ``spec`` is None for ids this module does not know;
    ``raw_args`` then holds the undecoded argument bytes."""

    ids: tuple[int, int, int]
    args: dict[str, Any]
    spec: CommandSpec | None = None
    raw_args: bytes = b""

    @property
    def name(self) -> str:
        return self.spec.full_name if self.spec else "unknown.{}.{}.{}".format(*self.ids)


def _spec_of(name_or_spec: str | CommandSpec) -> CommandSpec:
    if isinstance(name_or_spec, CommandSpec):
        return name_or_spec
    try:
        return BY_NAME[name_or_spec]
    except KeyError:
        raise CommandError(f"unknown ARSDK message {name_or_spec!r}") from None


def encode_command(name_or_spec: str | CommandSpec, *args: Any, **kwargs: Any) -> bytes:
    """Encode a command/event payload; arguments positionally or by name.

    Enum arguments accept their index or their name (``state="hovering"``).
    """
    spec = _spec_of(name_or_spec)
    if len(args) > len(spec.args):
        raise CommandError(f"{spec.full_name} takes {len(spec.args)} arguments, got {len(args)}")
    values = dict(zip((n for n, _ in spec.args), args, strict=False))
    for key, value in kwargs.items():
        if key not in {n for n, _ in spec.args}:
            raise CommandError(f"{spec.full_name} has no argument {key!r}")
        if key in values:
            raise CommandError(f"{spec.full_name}: argument {key!r} given twice")
        values[key] = value
    out = bytearray(_IDS.pack(*spec.ids))
    for arg_name, arg_type in spec.args:
        if arg_name not in values:
            raise CommandError(f"{spec.full_name}: missing argument {arg_name!r}")
        value = values[arg_name]
        if arg_type == "enum" and isinstance(value, str):
            names = spec.enums.get(arg_name, ())
            if value not in names:
                raise CommandError(f"{spec.full_name}.{arg_name}: unknown value {value!r} (one of {names})")
            value = names.index(value)
        out += _encode_arg(spec, arg_name, arg_type, value)
    return bytes(out)


def _encode_arg(spec: CommandSpec, arg_name: str, arg_type: str, value: Any) -> bytes:
    try:
        if arg_type == "string":
            data = str(value).encode("utf-8")
            if b"\0" in data:
                raise CommandError(f"{spec.full_name}.{arg_name}: NUL inside a string")
            return data + b"\0"
        if arg_type == "binary":
            data = bytes(value)
            return struct.pack("<I", len(data)) + data
        return _SCALARS[arg_type].pack(value)
    except struct.error as e:
        raise CommandError(f"{spec.full_name}.{arg_name} ({arg_type}) = {value!r}: {e}") from e


def decode_command(payload: bytes) -> Command:
    """Decode a command/event payload.

    Raises
    ------
    CommandError
        On a payload shorter than the ids, or arguments that do not match a known spec.
    """
    if len(payload) < _IDS.size:
        raise CommandError(f"command payload of {len(payload)} bytes is shorter than its ids")
    ids = _IDS.unpack_from(payload, 0)
    spec = BY_IDS.get(ids)
    if spec is None:
        return Command(ids, {}, None, bytes(payload[_IDS.size :]))
    pos = _IDS.size
    args: dict[str, Any] = {}
    for arg_name, arg_type in spec.args:
        try:
            if arg_type == "string":
                end = payload.index(b"\0", pos)
                args[arg_name] = payload[pos:end].decode("utf-8", errors="replace")
                pos = end + 1
            elif arg_type == "binary":
                (n,) = struct.unpack_from("<I", payload, pos)
                pos += 4
                if pos + n > len(payload):
                    raise CommandError(f"{spec.full_name}.{arg_name}: {n} bytes declared, {len(payload) - pos} left")
                args[arg_name] = bytes(payload[pos : pos + n])
                pos += n
            else:
                s = _SCALARS[arg_type]
                (args[arg_name],) = s.unpack_from(payload, pos)
                pos += s.size
        except (struct.error, ValueError) as e:
            if isinstance(e, CommandError):
                raise
            raise CommandError(f"{spec.full_name}: truncated argument {arg_name!r} ({arg_type})") from e
    if pos != len(payload):
        raise CommandError(f"{spec.full_name}: {len(payload) - pos} trailing bytes")
    return Command(ids, args, spec, bytes(payload[_IDS.size :]))


# ---------------------------------------------------------------------------------- protobuf extras


def service_id(service_name: str) -> int:
    """16-bit Jenkins one-at-a-time hash naming a protobuf service in ``generic.custom_*``
    (e.g. ``arsdk.developer.Event`` = 21916)."""
    h = 0
    for c in service_name.encode("ascii"):
        h = (h + c) & 0xFFFFFFFF
        h = (h + (h << 10)) & 0xFFFFFFFF
        h ^= h >> 6
    h = (h + (h << 3)) & 0xFFFFFFFF
    h ^= h >> 11
    h = (h + (h << 15)) & 0xFFFFFFFF
    return h & 0xFFFF


def proto_empty_field(field_number: int) -> bytes:
    """A protobuf message whose only content is an empty sub-message in ``field_number``.

    That is the smallest valid ``Event`` whose oneof selects the answer (Olympe looks the
    field up by name, so a wholly empty payload would not decode).
    """
    tag = (field_number << 3) | 2  # wire type 2 = length-delimited
    out = bytearray()
    while True:
        byte = tag & 0x7F
        tag >>= 7
        if tag:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            break
    return bytes(out) + b"\x00"


OPTIONAL_PROTO_ANSWERS: dict[tuple[int, int], tuple[int, int]] = {
    (service_id("arsdk.developer.Command"), 16): (service_id("arsdk.developer.Event"), 16),
    (service_id("arsdk.network.Command"), 16): (service_id("arsdk.network.Event"), 19),
    (service_id("arsdk.privacy.Command"), 16): (service_id("arsdk.privacy.Event"), 16),
    (service_id("arsdk.camera.Command"), 16): (service_id("arsdk.camera.Event"), 16),
    (service_id("arsdk.antiflicker.Command"), 16): (service_id("arsdk.antiflicker.Event"), 16),
    (service_id("arsdk.pointnfly.Command"), 16): (service_id("arsdk.pointnfly.Event"), 16),
    (service_id("arsdk.connectivity.Command"), 16): (service_id("arsdk.connectivity.Event"), 16),
}
"""``generic.custom_cmd`` (service, msg) Olympe sends after connecting to a non-ANAFI drone
-> the ``custom_evt`` (service, msg) that answers it (developer/network/privacy state, camera
list, ...). Olympe waits up to 3 s for four of them unless answered."""


# ---------------------------------------------------------------------------------- frames of reference

EARTH_RADIUS_M = 6378137.0


def ned_from_local(
    vx: float, vy: float, vz: float, roll: float, pitch: float, yaw: float
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Project velocities and attitude (frame of :mod:`emgpilot.drone.backend`: x forward at
    take-off, y left, z up, yaw CCW, pitch > 0 nose down) into the Bebop's NED telemetry
    (``SpeedChanged`` north/east/down, ``AttitudeChanged`` roll right-down, pitch nose-up,
    yaw clockwise), taking the take-off heading as north.

    Returns ``((speedX, speedY, speedZ), (roll, pitch, yaw))``.
    """
    return (vx, -vy, -vz), (roll, -pitch, -yaw)


def local_from_ned(
    speed_ned: tuple[float, float, float], attitude_ned: tuple[float, float, float], heading0: float = 0.0
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Inverse of :func:`ned_from_local` for a take-off heading ``heading0`` (rad clockwise
    from north). Returns ``((vx, vy, vz), (roll, pitch, yaw))`` in the local frame."""
    north, east, down = speed_ned
    x, y = rotate_ned_to_local(north, east, heading0)
    roll, pitch, yaw_ned = attitude_ned
    yaw = -(yaw_ned - heading0)
    yaw = math.atan2(math.sin(yaw), math.cos(yaw))
    return (x, y, -down), (roll, -pitch, yaw)


def rotate_ned_to_local(north: float, east: float, heading0: float) -> tuple[float, float]:
    """North/east components -> (forward-at-take-off, left) for a take-off heading ``heading0``."""
    c, s = math.cos(heading0), math.sin(heading0)
    return north * c + east * s, north * s - east * c


def gps_from_local(x: float, y: float, home: tuple[float, float]) -> tuple[float, float]:
    """Latitude/longitude (deg) of local (x north, y west) metres around ``home``."""
    lat0, lon0 = home
    north, east = x, -y
    lat = lat0 + math.degrees(north / EARTH_RADIUS_M)
    lon = lon0 + math.degrees(east / (EARTH_RADIUS_M * math.cos(math.radians(lat0))))
    return lat, lon


def north_east_from_gps(lat: float, lon: float, home: tuple[float, float]) -> tuple[float, float]:
    """Metres north and east of ``home`` (equirectangular: fine over a flying field)."""
    lat0, lon0 = home
    north = math.radians(lat - lat0) * EARTH_RADIUS_M
    east = math.radians(lon - lon0) * EARTH_RADIUS_M * math.cos(math.radians(lat0))
    return north, east
