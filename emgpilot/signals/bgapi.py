"""BGAPI packet codec for the Silicon Labs BLED112 dongle, with a resynchronising parser.

A BGAPI packet is ``b0 b1 class command payload``: bit 7 of ``b0`` marks an event (0 = a
command from the host or its response), bits 6:3 the technology type (0 = Bluetooth LE) and
bits 2:0 the high bits of the payload length, ``b1`` its low byte. The wire has no checksum
and no sync word, so the parser checks every header it meets against the table of messages
emgpilot knows (class, command and a payload length rule) and, on a mismatch, drops one byte
and looks again. Garbage, truncated packets and a stream joined mid-packet therefore cost only
the damaged bytes and are counted, never a crash.

The same parser reads both directions: ``direction="from_dongle"`` (responses and events, used
by the driver) and ``direction="to_dongle"`` (commands, used by the fake dongle).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

EVENT_BIT = 0x80
MAX_PAYLOAD = 2047  # 11 bits of length

# Classes and commands/events used here (BGAPI Bluetooth Smart API reference).
CLS_SYSTEM, CLS_CONNECTION, CLS_ATTCLIENT, CLS_GAP = 0, 3, 4, 6

# host -> dongle commands (class, command)
CMD_SYSTEM_HELLO = (0, 1)
CMD_SYSTEM_GET_CONNECTIONS = (0, 6)
CMD_DISCONNECT = (3, 0)
CMD_READ_BY_HANDLE = (4, 4)
CMD_ATTRIBUTE_WRITE = (4, 5)
CMD_GAP_SET_MODE = (6, 1)
CMD_DISCOVER = (6, 2)
CMD_CONNECT_DIRECT = (6, 3)
CMD_END_PROCEDURE = (6, 4)
CMD_SET_SCAN_PARAMETERS = (6, 7)

# dongle -> host events (class, event)
EVT_SYSTEM_BOOT = (0, 0)
EVT_CONNECTION_STATUS = (3, 0)
EVT_CONNECTION_DISCONNECTED = (3, 4)
EVT_ATTCLIENT_INDICATED = (4, 0)
EVT_PROCEDURE_COMPLETED = (4, 1)
EVT_ATTRIBUTE_VALUE = (4, 5)
EVT_SCAN_RESPONSE = (6, 0)

# attribute value types in EVT_ATTRIBUTE_VALUE
ATT_READ, ATT_NOTIFY, ATT_INDICATE = 0, 1, 2


@dataclass(frozen=True)
class Packet:
    """One BGAPI message. ``event`` is False for commands and responses."""

    event: bool
    cls: int
    cmd: int
    payload: bytes = b""

    @property
    def key(self) -> tuple[int, int]:
        return (self.cls, self.cmd)

    def encode(self) -> bytes:
        return encode(self.event, self.cls, self.cmd, self.payload)


def encode(event: bool, cls: int, cmd: int, payload: bytes = b"") -> bytes:
    """Bytes of one packet."""
    n = len(payload)
    if n > MAX_PAYLOAD:
        raise ValueError(f"BGAPI payload of {n} bytes exceeds {MAX_PAYLOAD}")
    b0 = (EVENT_BIT if event else 0) | (n >> 8)
    return bytes((b0, n & 0xFF, cls, cmd)) + bytes(payload)


def command(key: tuple[int, int], payload: bytes = b"") -> bytes:
    return encode(False, key[0], key[1], payload)


def event(key: tuple[int, int], payload: bytes = b"") -> bytes:
    return encode(True, key[0], key[1], payload)


def u8array(data: bytes) -> bytes:
    """BGAPI ``uint8array``: one length byte, then the bytes."""
    if len(data) > 255:
        raise ValueError("uint8array longer than 255 bytes")
    return bytes((len(data),)) + bytes(data)


# ----------------------------------------------------------------- payload length rules
# A rule takes the payload and says whether it is well formed. ``_fixed(n)`` for fixed-size
# payloads; ``_array_at(k)`` for a payload whose byte k is a uint8array length ending it.


Rule = tuple[int, int, Callable[[bytes], bool]]  # (shortest, longest, check of the whole payload)


def _fixed(n: int) -> Rule:
    return (n, n, lambda p: len(p) == n)


def _array_at(k: int) -> Rule:
    return (k + 1, k + 1 + 255, lambda p: len(p) > k and len(p) == k + 1 + p[k])


# Responses and events the dongle sends.
FROM_DONGLE_RESPONSES: dict[tuple[int, int], Rule] = {
    CMD_SYSTEM_HELLO: _fixed(0),
    CMD_SYSTEM_GET_CONNECTIONS: _fixed(1),
    CMD_DISCONNECT: _fixed(3),
    CMD_READ_BY_HANDLE: _fixed(3),
    CMD_ATTRIBUTE_WRITE: _fixed(3),
    CMD_GAP_SET_MODE: _fixed(2),
    CMD_DISCOVER: _fixed(2),
    CMD_CONNECT_DIRECT: _fixed(3),
    CMD_END_PROCEDURE: _fixed(2),
    CMD_SET_SCAN_PARAMETERS: _fixed(2),
}
FROM_DONGLE_EVENTS: dict[tuple[int, int], Rule] = {
    EVT_SYSTEM_BOOT: _fixed(12),
    EVT_CONNECTION_STATUS: _fixed(16),
    EVT_CONNECTION_DISCONNECTED: _fixed(3),
    EVT_ATTCLIENT_INDICATED: _fixed(3),
    EVT_PROCEDURE_COMPLETED: _fixed(5),
    EVT_ATTRIBUTE_VALUE: _array_at(4),
    EVT_SCAN_RESPONSE: _array_at(10),
}
# Commands the host sends.
TO_DONGLE_COMMANDS: dict[tuple[int, int], Rule] = {
    CMD_SYSTEM_HELLO: _fixed(0),
    CMD_SYSTEM_GET_CONNECTIONS: _fixed(0),
    CMD_DISCONNECT: _fixed(1),
    CMD_READ_BY_HANDLE: _fixed(3),
    CMD_ATTRIBUTE_WRITE: _array_at(3),
    CMD_GAP_SET_MODE: _fixed(2),
    CMD_DISCOVER: _fixed(1),
    CMD_CONNECT_DIRECT: _fixed(15),
    CMD_END_PROCEDURE: _fixed(0),
    CMD_SET_SCAN_PARAMETERS: _fixed(5),
}


@dataclass
class ParserStats:
    packets: int = 0
    garbage_bytes: int = 0
    resyncs: int = 0  # times the parser had to search for the next valid header

    def as_dict(self) -> dict[str, int]:
        return {"packets": self.packets, "garbage_bytes": self.garbage_bytes, "resyncs": self.resyncs}


@dataclass
class PacketParser:
    """Turns a byte stream into :class:`Packet` objects, skipping anything malformed.

    Only messages in the direction's table are accepted (header, class/command and payload
    length rule must all match); everything else is skipped byte by byte and counted.
    """

    direction: str = "from_dongle"
    stats: ParserStats = field(default_factory=ParserStats)
    max_buffer: int = 1 << 16

    def __post_init__(self) -> None:
        if self.direction == "from_dongle":
            self._rules = {False: FROM_DONGLE_RESPONSES, True: FROM_DONGLE_EVENTS}
        elif self.direction == "to_dongle":
            self._rules = {False: TO_DONGLE_COMMANDS, True: {}}
        else:
            raise ValueError(f"direction must be 'from_dongle' or 'to_dongle', not {self.direction!r}")
        self._buf = bytearray()
        self._skipping = False

    def reset(self) -> None:
        """Forget buffered bytes (after reopening a port)."""
        self._buf.clear()
        self._skipping = False

    @property
    def pending(self) -> int:
        """Bytes held while waiting for the rest of a packet."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Packet]:
        buf = self._buf
        buf += data
        out: list[Packet] = []
        i = 0
        n = len(buf)
        while n - i >= 4:
            b0 = buf[i]
            is_event = bool(b0 & EVENT_BIT)
            length = ((b0 & 0x07) << 8) | buf[i + 1]
            rule = self._rules[is_event].get((buf[i + 2], buf[i + 3])) if b0 & 0x78 == 0 else None
            if rule is None or not rule[0] <= length <= rule[1]:
                self._skip(1)
                i += 1
                continue
            end = i + 4 + length
            if n < end:
                break  # wait for the rest
            payload = bytes(buf[i + 4 : end])
            # No checksum on the wire: a truncated packet followed by good ones can look valid.
            # If what follows is no header but a whole valid packet starts inside this one,
            # this one is a false start.
            if not rule[2](payload) or (
                n >= end + 4 and not self._plausible_header(buf, end) and self._packet_inside(buf, i + 1, end)
            ):
                self._skip(1)
                i += 1
                continue
            self._skipping = False
            out.append(Packet(is_event, buf[i + 2], buf[i + 3], payload))
            self.stats.packets += 1
            i += 4 + length
        if i:
            del buf[:i]
        if len(buf) > self.max_buffer:  # cannot happen with the length cap; belt and braces
            self._skip(len(buf))
            buf.clear()
        return out

    def _plausible_header(self, buf: bytearray, j: int) -> bool:
        b0 = buf[j]
        if b0 & 0x78:
            return False
        rule = self._rules[bool(b0 & EVENT_BIT)].get((buf[j + 2], buf[j + 3]))
        return rule is not None and rule[0] <= (((b0 & 0x07) << 8) | buf[j + 1]) <= rule[1]

    def _packet_inside(self, buf: bytearray, start: int, stop: int) -> bool:
        n = len(buf)
        for j in range(start, stop):
            if j + 4 > n or not self._plausible_header(buf, j):
                continue
            end = j + 4 + (((buf[j] & 0x07) << 8) | buf[j + 1])
            rule = self._rules[bool(buf[j] & EVENT_BIT)][(buf[j + 2], buf[j + 3])]
            if end <= n and rule[2](bytes(buf[j + 4 : end])):
                return True
        return False

    def _skip(self, n: int) -> None:
        if not self._skipping:
            self._skipping = True
            self.stats.resyncs += 1
        self.stats.garbage_bytes += n


# ----------------------------------------------------------------- payload helpers


def parse_attribute_value(payload: bytes) -> tuple[int, int, int, bytes]:
    """``(connection, handle, type, value)`` of an EVT_ATTRIBUTE_VALUE payload."""
    conn, handle, typ, n = struct.unpack_from("<BHBB", payload)
    return conn, handle, typ, bytes(payload[5 : 5 + n])


def parse_scan_response(payload: bytes) -> tuple[int, bytes, int, bytes]:
    """``(rssi, address, address_type, adv_data)`` of an EVT_SCAN_RESPONSE payload."""
    rssi = struct.unpack_from("<b", payload)[0]
    address = bytes(payload[2:8])
    addr_type = payload[8]
    n = payload[10]
    return rssi, address, addr_type, bytes(payload[11 : 11 + n])


def result_code(payload: bytes, offset: int = 0) -> int:
    return struct.unpack_from("<H", payload, offset)[0]


def format_address(address: bytes) -> str:
    """BLE address bytes (little-endian on the wire) as ``AA:BB:CC:DD:EE:FF``."""
    return ":".join(f"{b:02X}" for b in reversed(address))


def parse_address(text: str) -> bytes:
    """Inverse of :func:`format_address`."""
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6:
        raise ValueError(f"not a Bluetooth address: {text!r} (expected AA:BB:CC:DD:EE:FF)")
    try:
        return bytes(int(p, 16) for p in reversed(parts))
    except ValueError:
        raise ValueError(f"not a Bluetooth address: {text!r} (expected AA:BB:CC:DD:EE:FF)") from None
