"""The ARSDK v1 frame and command codec (no network, no Olympe except one cross-check)."""

from __future__ import annotations

import importlib.util
import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emgpilot.drone import arsdk
from emgpilot.drone.arsdk import Buffer, Frame, FrameType

frames_strategy = st.builds(
    Frame,
    type=st.sampled_from([int(t) for t in FrameType]),
    buffer_id=st.integers(0, 255),
    seq=st.integers(0, 255),
    payload=st.binary(max_size=64),
)


def test_frame_header_layout_is_little_endian_with_size_including_header():
    raw = arsdk.encode_frame(Frame(FrameType.DATA_WITH_ACK, Buffer.C2D_ACK, 7, b"\x01\x00\x01\x00"))
    assert raw == bytes([4, 11, 7]) + struct.pack("<I", 11) + b"\x01\x00\x01\x00"


@given(st.lists(frames_strategy, min_size=1, max_size=6))
def test_frames_round_trip_several_per_datagram(frames):
    datagram = arsdk.encode_frames(frames)
    assert arsdk.decode_frames(datagram) == frames


@pytest.mark.parametrize(
    ("datagram", "message"),
    [
        (b"\x02\x0a\x00", "truncated frame header"),
        (bytes([2, 10, 0]) + struct.pack("<I", 3), "smaller than its header"),
        (bytes([2, 10, 0]) + struct.pack("<I", 20) + b"abc", "declares 20 bytes"),
        (bytes([9, 10, 0]) + struct.pack("<I", 7), "unknown frame type 9"),
        # a good frame followed by garbage: the whole datagram is refused
        (arsdk.encode_frame(Frame(2, 10, 0, b"x")) + b"\x01", "truncated frame header"),
    ],
)
def test_bad_datagrams_raise_frame_error(datagram, message):
    with pytest.raises(arsdk.FrameError, match=message):
        arsdk.decode_frames(datagram)


def test_encode_refuses_out_of_range_header_fields():
    with pytest.raises(arsdk.FrameError, match="seq 256"):
        arsdk.encode_frame(Frame(2, 10, 256))


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_fuzz_frame_parser_never_fails_other_than_frame_error(data):
    try:
        frames = arsdk.decode_frames(data)
    except arsdk.FrameError:
        return
    # whatever parses re-encodes to exactly the same bytes
    assert arsdk.encode_frames(frames) == data


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True  # a signalling NaN may come back quieted
    return a == b


def _check_command_bytes(data: bytes) -> None:
    try:
        cmd = arsdk.decode_command(data)
    except arsdk.CommandError:
        return
    if cmd.spec is not None:
        again = arsdk.decode_command(arsdk.encode_command(cmd.spec, **cmd.args))
        assert again.args.keys() == cmd.args.keys()
        assert all(_same(again.args[k], v) for k, v in cmd.args.items())


@settings(max_examples=300)
@given(st.binary(max_size=80))
def test_fuzz_command_decoder_never_fails_other_than_command_error(data):
    _check_command_bytes(data)


@settings(max_examples=300)
@given(st.sampled_from(arsdk.SPECS), st.binary(max_size=40))
def test_fuzz_command_arguments_of_known_messages(spec, tail):
    _check_command_bytes(struct.pack("<BBH", *spec.ids) + tail)


def test_sequence_numbers_are_per_buffer_and_wrap_at_256():
    seq = arsdk.SeqCounter()
    got = [seq.next(Buffer.D2C_ACK) for _ in range(258)]
    assert got[:3] == [0, 1, 2]
    assert got[255:] == [255, 0, 1]
    assert seq.next(Buffer.D2C_NON_ACK) == 0


def test_ack_frame_format():
    received = Frame(FrameType.DATA_WITH_ACK, Buffer.C2D_ACK, 200, b"payload")
    ack = arsdk.ack_frame(received, seq=5)
    assert ack == Frame(FrameType.ACK, 139, 5, bytes([200]))
    assert arsdk.acked_seq(ack) == 200
    with pytest.raises(arsdk.FrameError):
        arsdk.acked_seq(received)


def test_deduplicator_drops_a_repeated_seq_only():
    dedup = arsdk.Deduplicator()
    f0 = Frame(FrameType.DATA_WITH_ACK, 11, 0)
    assert dedup.is_new(f0)
    assert not dedup.is_new(f0)  # a retry whose ack was lost
    assert dedup.is_new(Frame(FrameType.DATA_WITH_ACK, 11, 1))
    assert dedup.is_new(Frame(FrameType.DATA_WITH_ACK, 12, 1))  # other buffer: independent
    assert dedup.is_new(Frame(FrameType.DATA_WITH_ACK, 11, 0))  # after wrap-around


def test_pcmd_encoding_matches_the_documented_layout():
    payload = arsdk.encode_command("ardrone3.Piloting.PCMD", 1, -20, 50, -100, 100, 0)
    assert payload == struct.pack("<BBHBbbbbI", 1, 0, 2, 1, -20, 50, -100, 100, 0)
    cmd = arsdk.decode_command(payload)
    assert cmd.name == "ardrone3.Piloting.PCMD"
    assert cmd.args == {"flag": 1, "roll": -20, "pitch": 50, "yaw": -100, "gaz": 100, "timestampAndSeqNum": 0}


def test_command_round_trips_floats_doubles_enums_strings_and_binary():
    move = arsdk.decode_command(arsdk.encode_command("ardrone3.Piloting.moveBy", 1.5, -0.25, 0.0, math.pi / 2))
    assert move.args["dX"] == 1.5 and move.args["dY"] == -0.25
    assert move.args["dPsi"] == pytest.approx(math.pi / 2, rel=1e-6)
    state = arsdk.decode_command(arsdk.encode_command("ardrone3.PilotingState.FlyingStateChanged", state="hovering"))
    assert state.args == {"state": 2}
    pos = arsdk.decode_command(arsdk.encode_command("ardrone3.PilotingState.PositionChanged", 48.8785, 2.3675, 500.0))
    assert pos.args["latitude"] == 48.8785  # f64: exact
    dt = arsdk.decode_command(arsdk.encode_command("common.Common.CurrentDateTime", "20261121T205600+0000"))
    assert dt.args == {"datetime": "20261121T205600+0000"}
    evt = arsdk.decode_command(arsdk.encode_command("generic.custom_evt", 21916, 16, b"\x82\x01\x00"))
    assert evt.args == {"service_id": 21916, "msg_num": 16, "payload": b"\x82\x01\x00"}


def test_command_errors_are_clear():
    with pytest.raises(arsdk.CommandError, match="unknown ARSDK message"):
        arsdk.encode_command("ardrone3.Piloting.Flip")
    with pytest.raises(arsdk.CommandError, match="missing argument 'dPsi'"):
        arsdk.encode_command("ardrone3.Piloting.moveBy", 1.0, 0.0, 0.0)
    with pytest.raises(arsdk.CommandError, match="unknown value 'cruising'"):
        arsdk.encode_command("ardrone3.PilotingState.FlyingStateChanged", state="cruising")
    with pytest.raises(arsdk.CommandError, match=r"PCMD.roll \(i8\) = 200"):
        arsdk.encode_command("ardrone3.Piloting.PCMD", 1, 200, 0, 0, 0, 0)
    with pytest.raises(arsdk.CommandError, match="truncated argument 'dY'"):
        arsdk.decode_command(arsdk.encode_command("ardrone3.Piloting.moveBy", 1.0, 0.0, 0.0, 0.0)[:9])
    with pytest.raises(arsdk.CommandError, match="trailing bytes"):
        arsdk.decode_command(arsdk.encode_command("ardrone3.Piloting.TakeOff") + b"\x00")
    with pytest.raises(arsdk.CommandError, match="shorter than its ids"):
        arsdk.decode_command(b"\x01\x00")


def test_unknown_command_ids_decode_without_arguments():
    cmd = arsdk.decode_command(bytes([1, 0, 99, 0, 1, 2]))
    assert cmd.spec is None and cmd.ids == (1, 0, 99) and cmd.raw_args == b"\x01\x02"
    assert cmd.name == "unknown.1.0.99"


def test_service_ids_are_the_jenkins_hash_olympe_uses():
    assert arsdk.service_id("arsdk.developer.Event") == 21916
    assert arsdk.service_id("arsdk.camera.Event") == 45089


def test_proto_empty_field_selects_the_oneof_with_an_empty_message():
    assert arsdk.proto_empty_field(16) == b"\x82\x01\x00"
    assert arsdk.proto_empty_field(3) == b"\x1a\x00"


def test_ned_conversions_round_trip_for_any_take_off_heading():
    for heading0 in (0.0, 0.7, -2.5):
        # a drone flying "forward-left" in the local frame, yawed 0.3 rad CCW
        vx, vy, vz, roll, pitch, yaw = 1.0, 0.5, -0.2, 0.05, 0.1, 0.3
        # what a drone whose take-off heading is heading0 would report (NED, yaw clockwise from north)
        c, s = math.cos(heading0), math.sin(heading0)
        north = vx * c + vy * s
        east = vx * s - vy * c
        speed_ned = (north, east, -vz)
        attitude_ned = (roll, -pitch, heading0 - yaw)
        (lvx, lvy, lvz), (lr, lp, ly) = arsdk.local_from_ned(speed_ned, attitude_ned, heading0)
        assert (lvx, lvy, lvz) == pytest.approx((vx, vy, vz))
        assert (lr, lp, ly) == pytest.approx((roll, pitch, yaw))
    assert arsdk.ned_from_local(vx, vy, vz, roll, pitch, yaw) == ((vx, -vy, -vz), (roll, -pitch, -yaw))


def test_gps_conversion_round_trips_to_the_centimetre():
    home = (48.8785, 2.3675)
    lat, lon = arsdk.gps_from_local(12.0, -7.0, home)  # 12 m north, 7 m east
    north, east = arsdk.north_east_from_gps(lat, lon, home)
    assert north == pytest.approx(12.0, abs=0.01) and east == pytest.approx(7.0, abs=0.01)


@pytest.mark.skipif(importlib.util.find_spec("olympe") is None, reason="olympe (extra 'bebop') not installed")
def test_command_table_matches_olympe_message_definitions():
    from emgpilot.drone.olympe_backend import import_olympe

    import_olympe()
    import olympe.messages as messages

    for spec in arsdk.SPECS:
        message = messages
        for part in spec.full_name.split("."):
            message = getattr(message, part)
        assert (message.feature_id, message.class_id, message.msg_id) == spec.ids, spec.full_name
        assert list(message.args_name) == [a for a, _ in spec.args], spec.full_name
