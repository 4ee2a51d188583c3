"""The pty fakes themselves, the soak harness, and the acquisition CLI commands driven against fakes."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import serial

from emgpilot.app.cli import main
from emgpilot.signals import bgapi
from emgpilot.signals.fakes import ArraySource, FakeMyoDongle, FakeMyoWareBoard, PtyPort, SimpleArm, make_fake
from emgpilot.signals.myoware import CSVDecoder, MyoWareConfig
from emgpilot.signals.recording import RecordingWriter, open_recording
from emgpilot.signals.serialio import identify
from emgpilot.signals.soak import soak_device
from emgpilot.signals.streams import FOREARM_EMG, FOREARM_IMU, Chunk


def read_until(ser: serial.Serial, n: int, tries: int = 200) -> bytes:
    out = b""
    for _ in range(tries):  # each read times out after 50 ms: bounded, never a hang
        out += ser.read(max(1, ser.in_waiting))
        if len(out) >= n:
            break
    return out


def test_pty_port_link_survives_replug(tmp_path: Path) -> None:
    port = PtyPort(tmp_path / "ttyFAKE")
    port.plug()
    first = os.readlink(port.path)
    with serial.Serial(port.path, timeout=0.05) as ser:
        port.write(b"hello")
        assert read_until(ser, 5) == b"hello"
    port.unplug()
    assert not os.path.lexists(port.path)
    port.plug()
    assert os.path.exists(port.path) and os.readlink(port.path).startswith("/dev/")
    assert first.startswith("/dev/")
    port.unplug()


def test_writes_never_block_when_nobody_reads(tmp_path: Path) -> None:
    port = PtyPort(tmp_path / "ttyFULL")
    port.plug()
    try:
        written = sum(port.write(bytes(4096)) for _ in range(200))  # 800 kB into a pty nobody drains
        assert 0 < written < 800 * 1024
    finally:
        port.unplug()


def test_fake_board_paces_itself_at_its_rate(tmp_path: Path) -> None:
    cfg = MyoWareConfig(protocol="csv", sequence=True)
    fake = FakeMyoWareBoard(cfg, link=tmp_path / "ttyB", keep_sent=True)
    fake.start()
    try:
        with serial.Serial(fake.path, timeout=0.05) as ser:
            data = read_until(ser, 3000)
    finally:
        fake.stop()
    # measured on the fake's own clock, not the test's
    assert fake.samples_sent == pytest.approx(fake.stream_time * cfg.rate_hz, abs=1)
    dec = CSVDecoder(2, 10, sequence=True)
    block = dec.feed(data)
    assert len(block.values) > 100 and dec.stats.bad == 0
    assert np.all(np.diff(block.seq) == 1)


def test_fake_dongle_answers_commands_and_skips_garbage(tmp_path: Path) -> None:
    fake = FakeMyoDongle(link=tmp_path / "ttyD")
    fake.start()
    try:
        with serial.Serial(fake.path, timeout=0.05) as ser:
            ser.write(b"\x13\x37" + bgapi.command(bgapi.CMD_SYSTEM_HELLO) + bgapi.command(bgapi.CMD_DISCOVER, b"\x01"))
            parser = bgapi.PacketParser()
            pkts: list[bgapi.Packet] = []
            for _ in range(100):
                pkts += parser.feed(read_until(ser, 1, tries=1))
                if any(p.key == bgapi.EVT_SCAN_RESPONSE for p in pkts):
                    break
            ser.write(bgapi.command(bgapi.CMD_END_PROCEDURE))
    finally:
        fake.stop()
    keys = [p.key for p in pkts]
    assert keys[:2] == [bgapi.CMD_SYSTEM_HELLO, bgapi.CMD_DISCOVER]
    assert bgapi.EVT_SCAN_RESPONSE in keys
    assert fake.parser.stats.garbage_bytes == 2


def test_simple_arm_ranges() -> None:
    arm = SimpleArm(3)
    emg, imu, up = arm.forearm_emg(400), arm.forearm_imu(100), arm.upper_emg(1000, 3, 10)
    assert emg.dtype == np.int8 and emg.shape == (400, 8) and emg.std() > 1
    q = imu[:, :4].astype(float) / 16384
    assert np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=0.01)
    assert up.shape == (1000, 3) and up.min() >= 0 and up.max() <= 1023


def test_array_source_replays_a_recording(tmp_path: Path) -> None:
    path = tmp_path / "raw.mcap"
    emg = np.arange(80, dtype=np.float32).reshape(10, 8) - 40
    imu = np.tile(np.array([1, 0, 0, 0, 0, 0, 1, 0, 0, 0], dtype=np.float32), (4, 1))
    with RecordingWriter(path, [FOREARM_EMG, FOREARM_IMU]) as rec:
        rec.write([Chunk(FOREARM_EMG, np.arange(10) / 200, emg), Chunk(FOREARM_IMU, np.arange(4) / 50, imu)])
    src = ArraySource.from_recording(path)
    assert src.forearm_emg(15).tolist() == np.concatenate([emg, emg[:5]]).tolist()  # loops
    assert src.forearm_imu(1).tolist() == [[16384, 0, 0, 0, 0, 0, 2048, 0, 0, 0]]
    assert src.upper_emg(5, 2, 10).shape == (5, 2)  # absent stream: synthetic stand-in


def test_make_fake_kinds() -> None:
    assert isinstance(make_fake("myo"), FakeMyoDongle)
    assert make_fake("myoware-binary").config.protocol == "binary"
    with pytest.raises(ValueError, match="unknown fake"):
        make_fake("toaster")


def test_identify_known_usb_ids() -> None:
    assert identify(0x2458, 0x0001)[1] == "myo-dongle"
    assert identify(0x2341, 0x0043)[1] == "microcontroller"
    assert identify(0x16C0, 0x0483)[0].startswith("Teensy")
    assert identify(None, None)[1] == "unknown" and identify(0x1234, 0x5678)[1] == "unknown"


@pytest.mark.parametrize("kind", ["myo", "myoware-binary"])
def test_short_soak_in_data_time(kind: str) -> None:
    result = soak_device(kind, 20.0, checkpoints=4)
    assert result.data_s >= 20.0
    for name, n in result.expected.items():
        assert result.samples[name] == pytest.approx(n, abs=12)
    assert result.stats["dropped"] == 0 and result.stats["lost"] == 0
    assert len(result.memory_mb) == 3


# ----------------------------------------------------------------------------- CLI


def test_devices_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--json", "--all"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert isinstance(listed, list)
    assert all({"device", "kind", "what"} <= set(p) for p in listed)


def test_record_command_against_fakes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    myo = FakeMyoDongle(link=tmp_path / "ttyMyo")
    board = FakeMyoWareBoard(MyoWareConfig(protocol="binary", adc_bits=12), link=tmp_path / "ttyBoard")
    myo.start()
    board.start()
    out = tmp_path / "session.mcap"
    try:
        code = main(
            [
                "record",
                "--port",
                myo.path,
                "--upper-arm-port",
                board.path,
                "--upper-arm-protocol",
                "binary",
                "--upper-arm-bits",
                "12",
                "--duration",
                "1.5",
                "-o",
                str(out),
                "--json",
            ]
        )
    finally:
        myo.stop()
        board.stop()
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    rec = open_recording(out)
    upper, emg = rec.chunk("upper_emg"), rec.chunk("forearm_emg")
    assert len(upper) == summary["samples"]["upper_emg"]
    # the window opens with whichever device streams first: check each stream's own span
    for chunk, rate in ((upper, 1000.0), (emg, 200.0)):
        span = chunk.t[-1] - chunk.t[0]
        # The 1.5 s run starts at the first chunk read; the other device's first samples may be
        # stamped a little earlier (host clock, two reader threads), so allow some slack.
        assert 1.2 < span < 1.6
        assert len(chunk) == pytest.approx(span * rate + 1, rel=0.01)
    assert summary["device"]["myo"]["dropped"] == 0


def test_record_without_a_dongle_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["record", "--port", "none", "--duration", "1", "-o", str(tmp_path / "x.mcap")])
    assert code == 2
    assert "--upper-arm-port" in capsys.readouterr().err


def test_run_with_a_missing_port_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "--headless", "--source", "myo", "--port", "/dev/does-not-exist"])
    assert code == 2 and "no such serial port" in capsys.readouterr().err


def test_fake_device_command_prints_its_port(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    link = tmp_path / "ttyDemo"
    assert main(["fake-device", "myoware-csv", "--link", str(link), "--duration", "0.3"]) == 0
    assert capsys.readouterr().out.strip() == str(link)
    assert not link.exists()  # cleaned up on exit


def test_bgapi_payload_builders_used_by_the_fake() -> None:
    status = struct.pack("<BB6sBHHHB", 0, 5, b"\x01" * 6, 0, 6, 64, 0, 255)
    assert len(status) == 16  # matches the parser's rule for connection status


def test_pty_port_never_replaces_a_file_at_its_link(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"important")
    port = PtyPort(notes)
    with pytest.raises(OSError, match="not a symlink"):
        port.plug()
    assert not port.plugged and notes.read_bytes() == b"important"


def test_pty_port_replaces_the_link_an_earlier_fake_left(tmp_path: Path) -> None:
    link = tmp_path / "ttyFAKE"
    link.symlink_to("/dev/pts/no-such-pty")  # a killed fake's dangling link
    port = PtyPort(link)
    port.plug()
    try:
        assert os.readlink(link) == port.slave_name
    finally:
        port.unplug()
    assert not os.path.lexists(link)
