"""BGAPI codec and resynchronising parser."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emgpilot.signals import bgapi
from emgpilot.signals.bgapi import Packet, PacketParser


def notification(handle: int, value: bytes) -> bytes:
    return bgapi.event(
        bgapi.EVT_ATTRIBUTE_VALUE, struct.pack("<BHB", 0, handle, bgapi.ATT_NOTIFY) + bgapi.u8array(value)
    )


GOOD = [
    bgapi.encode(False, 6, 4, b"\x00\x00"),
    notification(0x2B, bytes(range(16))),
    bgapi.event(bgapi.EVT_PROCEDURE_COMPLETED, struct.pack("<BHH", 0, 0, 0x19)),
    notification(0x1C, bytes(20)),
    bgapi.event(bgapi.EVT_CONNECTION_STATUS, bytes(16)),
    bgapi.event(bgapi.EVT_SCAN_RESPONSE, struct.pack("<bB6sBB", -60, 0, b"abcdef", 1, 255) + bgapi.u8array(b"xyz")),
]


def test_encode_header_layout() -> None:
    raw = bgapi.encode(True, 4, 5, bytes(300))
    assert raw[0] == 0x80 | 1 and raw[1] == 300 & 0xFF and raw[2:4] == b"\x04\x05"
    assert bgapi.command(bgapi.CMD_DISCOVER, b"\x01") == b"\x00\x01\x06\x02\x01"
    with pytest.raises(ValueError, match="exceeds"):
        bgapi.encode(False, 0, 0, bytes(3000))


def test_parser_reads_every_known_packet_even_byte_by_byte() -> None:
    stream = b"".join(GOOD)
    whole = PacketParser().feed(stream)
    parser = PacketParser()
    split = [p for b in stream for p in parser.feed(bytes((b,)))]
    assert [p.encode() for p in whole] == GOOD
    assert whole == split
    assert parser.stats.garbage_bytes == 0 and parser.pending == 0


def test_garbage_between_packets_is_skipped_and_counted() -> None:
    garbage = b"\xff\x13\x37\x00\x99\x80\x42"
    parser = PacketParser()
    got = parser.feed(garbage + GOOD[1] + garbage + GOOD[3])
    assert [p.encode() for p in got] == [GOOD[1], GOOD[3]]
    assert parser.stats.garbage_bytes == 2 * len(garbage)
    assert parser.stats.resyncs == 2


def test_truncated_packet_costs_only_itself() -> None:
    parser = PacketParser()
    cut = GOOD[1][:9]  # header promises 21 bytes of payload, 5 arrive
    got = parser.feed(cut + GOOD[3] + GOOD[1] + GOOD[2])
    assert [p.encode() for p in got] == [GOOD[3], GOOD[1], GOOD[2]]
    assert parser.stats.garbage_bytes == len(cut)


def test_inconsistent_array_length_is_rejected() -> None:
    bad = bytearray(notification(0x2B, bytes(16)))
    bad[8] = 40  # uint8array claims more than the packet holds
    parser = PacketParser()
    assert parser.feed(bytes(bad) + GOOD[2]) == [Packet(True, 4, 1, GOOD[2][4:])]


def test_direction_tables() -> None:
    cmd = bgapi.command(bgapi.CMD_CONNECT_DIRECT, bytes(6) + struct.pack("<BHHHH", 0, 6, 6, 64, 0))
    assert PacketParser("to_dongle").feed(cmd)[0].key == bgapi.CMD_CONNECT_DIRECT
    assert PacketParser("from_dongle").feed(cmd) == []  # a response to connect has 3 bytes, not 15
    with pytest.raises(ValueError, match="direction"):
        PacketParser("sideways")


def test_payload_helpers_and_addresses() -> None:
    conn, handle, typ, value = bgapi.parse_attribute_value(GOOD[1][4:])
    assert (conn, handle, typ, value) == (0, 0x2B, 1, bytes(range(16)))
    rssi, address, addr_type, adv = bgapi.parse_scan_response(GOOD[5][4:])
    assert (rssi, address, addr_type, adv) == (-60, b"abcdef", 1, b"xyz")
    text = bgapi.format_address(bytes([0xC2, 0x9B, 0x8C, 0x52, 0xA4, 0xE0]))
    assert text == "E0:A4:52:8C:9B:C2"
    assert bgapi.parse_address(text) == bytes([0xC2, 0x9B, 0x8C, 0x52, 0xA4, 0xE0])
    with pytest.raises(ValueError, match="Bluetooth address"):
        bgapi.parse_address("E0:A4:52")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.integers(1, 64))
def test_fuzz_random_bytes_never_crash(data: bytes, step: int) -> None:
    parser = PacketParser()
    for i in range(0, len(data), step):
        for p in parser.feed(data[i : i + step]):
            assert len(p.encode()) == 4 + len(p.payload)
    assert parser.pending <= 4 + 266
    assert parser.stats.garbage_bytes <= len(data)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(GOOD), max_size=20), st.lists(st.integers(1, 50), min_size=1, max_size=10))
def test_fuzz_chunking_does_not_change_packets(packets: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(packets)
    parser = PacketParser()
    got: list[Packet] = []
    i = k = 0
    while i < len(stream):
        step = cuts[k % len(cuts)]
        got += parser.feed(stream[i : i + step])
        i += step
        k += 1
    assert [p.encode() for p in got] == packets


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_stream_recovers_after_garbage(garbage: bytes) -> None:
    """After any garbage, a run of good packets is found again (at worst a few are lost to it)."""
    parser = PacketParser()
    tail = GOOD * 30
    got = parser.feed(garbage + b"".join(tail))
    # garbage can swallow at most one max-length packet's worth of bytes
    assert len(got) >= len(tail) - 30
    assert [p.encode() for p in got[-20:]] == tail[-20:]
