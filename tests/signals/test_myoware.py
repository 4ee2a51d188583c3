"""MyoWare readers (CSV lines, binary frames), the sample clock, and the driver against the fake board."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emgpilot.build import build_pipeline
from emgpilot.signals.fakes import FakeMyoWareBoard, collect
from emgpilot.signals.myoware import (
    BinaryDecoder,
    CSVDecoder,
    MyoWareConfig,
    MyoWareDevice,
    encode_csv_line,
    encode_frame,
    fletcher16,
)
from emgpilot.signals.recording import RecordingWriter, open_recording
from emgpilot.signals.runner import SessionRunner
from emgpilot.signals.serialio import SampleClock
from emgpilot.signals.streams import Chunk, GapEvent, StatusEvent

# ----------------------------------------------------------------------------- CSV


def csv_lines(rows: np.ndarray, seq0: int | None = None) -> bytes:
    return b"".join(encode_csv_line(r, None if seq0 is None else seq0 + k) for k, r in enumerate(rows))


ROWS = np.array([[512, 498], [0, 1023], [7, 80], [1000, 3]])


def test_csv_skips_partial_first_line_and_reads_the_rest() -> None:
    dec = CSVDecoder(2, 10)
    block = dec.feed(b"2,511\r\n" + csv_lines(ROWS))
    assert block.values.tolist() == ROWS.tolist()
    assert (block.seq == -1).all()
    assert dec.stats.resyncs == 1 and dec.stats.bad == 0


def test_csv_endings_and_bad_lines_are_counted_not_fatal() -> None:
    dec = CSVDecoder(2, 10)
    dec.feed(b"\n")
    data = (
        b"1,2\n"  # bare \n ending
        b"3,4\r\n"
        b"5,6,7\r\n"  # wrong field count
        b"5,1024\r\n"  # out of range for 10 bits
        b"5,\xff\xfe\r\n"  # non-ASCII
        b"-5,6\r\n"  # negative
        b"\r\n"  # empty line
        b"8,9\r\n"
    )
    block = dec.feed(data)
    assert block.values.tolist() == [[1, 2], [3, 4], [8, 9]]
    assert dec.stats.bad == 4


def test_csv_line_without_newline_merges_and_is_recovered_when_its_cr_survived() -> None:
    dec = CSVDecoder(2, 10)
    dec.feed(b"\n")
    block = dec.feed(b"1,2\r3,4\r\n" + b"5,67,8\r\n" + b"9,10\r\n")
    assert block.values.tolist() == [[1, 2], [3, 4], [9, 10]]
    assert dec.stats.merged == 1 and dec.stats.bad == 1


def test_csv_runaway_line_is_dropped_and_reader_resyncs() -> None:
    dec = CSVDecoder(2, 10)
    dec.feed(b"\n")
    dec.feed(b"1" * 200)  # a stuck board, no newline ever
    assert dec.stats.bad == 1
    block = dec.feed(b"23\r\n4,5\r\n")  # tail of the bad line, then a good one
    assert block.values.tolist() == [[4, 5]]


def test_csv_with_sequence_numbers() -> None:
    dec = CSVDecoder(2, 10, sequence=True)
    block = dec.feed(b"\n" + csv_lines(ROWS, seq0=65534))
    assert block.seq.tolist() == [65534, 65535, 0, 1]
    assert block.values.tolist() == ROWS.tolist()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.integers(1, 100))
def test_csv_fuzz_random_bytes(data: bytes, step: int) -> None:
    dec = CSVDecoder(3, 12, sequence=True)
    for i in range(0, len(data), step):
        block = dec.feed(data[i : i + step])
        assert block.values.shape[1] == 3 and len(block.seq) == len(block.values)
        assert (block.values <= 4095).all() and (block.values >= 0).all()
    assert len(dec._buf) <= dec.max_line


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=8), st.binary(max_size=200))
def test_csv_chunking_does_not_change_samples(cuts: list[int], garbage: bytes) -> None:
    rows = np.random.default_rng(0).integers(0, 1024, size=(50, 2))
    stream = garbage.replace(b"\n", b"") + b"\n" + csv_lines(rows)
    dec = CSVDecoder(2, 10)
    out, i, k = [], 0, 0
    while i < len(stream):
        out.append(dec.feed(stream[i : i + cuts[k % len(cuts)]]).values)
        i += cuts[k % len(cuts)]
        k += 1
    assert np.concatenate(out).tolist() == rows.tolist()


# ----------------------------------------------------------------------------- binary


def test_fletcher16_reference_values() -> None:
    assert fletcher16(b"abcde") == 0xC8F0
    assert fletcher16(b"abcdef") == 0x2057


def test_binary_roundtrip_and_sequence() -> None:
    vals = np.arange(40).reshape(20, 2) * 100
    data = encode_frame(65530, vals[:10]) + encode_frame(65540, vals[10:])
    block = BinaryDecoder(2, 12).feed(data)
    assert block.values.tolist() == vals.tolist()
    assert block.seq.tolist() == [(65530 + k) % 65536 for k in range(20)]


def test_binary_damage_is_skipped_and_counted() -> None:
    vals = np.full((10, 2), 7)
    good = [encode_frame(10 * k, vals + k) for k in range(5)]
    bad_sum = bytearray(good[1])
    bad_sum[-1] ^= 0xFF
    dec = BinaryDecoder(2, 12)
    block = dec.feed(b"\x00garbage\xa5" + good[0] + bytes(bad_sum) + good[2][:17] + good[3] + good[4])
    assert block.seq.tolist() == [*range(0, 10), *range(30, 50)]
    assert dec.stats.bad >= 1 and dec.stats.resyncs >= 2


def test_binary_rejects_wrong_channel_count_and_out_of_range() -> None:
    dec = BinaryDecoder(2, 10)
    block = dec.feed(encode_frame(0, np.zeros((10, 3))) + encode_frame(10, np.full((10, 2), 2000)))
    assert len(block.values) == 0 and dec.stats.bad == 2


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.integers(1, 100))
def test_binary_fuzz_random_bytes(data: bytes, step: int) -> None:
    dec = BinaryDecoder(2, 12)
    for i in range(0, len(data), step):
        block = dec.feed(data[i : i + step])
        assert block.values.shape[1] == 2 and (block.values <= 4095).all()
    assert len(dec._buf) < 6 + 2 * 2 * 64 + 2


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300), st.lists(st.integers(1, 60), min_size=1, max_size=8))
def test_binary_recovers_after_garbage(garbage: bytes, cuts: list[int]) -> None:
    frames = [encode_frame(10 * k, np.full((10, 2), k)) for k in range(30)]
    stream = garbage + b"".join(frames)
    dec = BinaryDecoder(2, 12)
    seqs, i, k = [], 0, 0
    while i < len(stream):
        seqs += dec.feed(stream[i : i + cuts[k % len(cuts)]]).seq.tolist()
        i += cuts[k % len(cuts)]
        k += 1
    # garbage may hide at most the first frame (a false sync with a lucky checksum is ~1/65536)
    assert seqs[-280:] == list(range(20, 300))


# ----------------------------------------------------------------------------- sample clock


def test_sample_clock_follows_an_off_nominal_device_and_counts_silent_drops() -> None:
    rng = np.random.default_rng(1)
    clock = SampleClock(1000.0)
    true_period = 1 / 1003.0  # the board's crystal runs 0.3 % fast
    stamps, k = [], 0
    for batch in range(12000):  # 120 s of data in 10-sample reads
        k += 10
        if batch == 9000:
            k += 800  # 0.8 s of samples lost in a USB stall, no sequence numbers to tell
        host = k * true_period + 0.002 + abs(rng.normal(0, 0.0005))
        stamps.append(clock.stamp(10, host))
    t = np.concatenate(stamps)
    assert np.all(np.diff(t) > 0)
    assert clock.dropped == pytest.approx(800, rel=0.05)  # lag-based: as good as the phase estimate
    assert 1 / clock.period == pytest.approx(1003.0, rel=1e-3)
    # between the anchor and the loss, sample spacing never strays far from the device's
    spacing = np.diff(np.concatenate(stamps[:8000]))
    assert np.all(np.abs(spacing * 1003.0 - 1) < 0.05)


def test_sample_clock_known_losses_skip_the_counter() -> None:
    clock = SampleClock(100.0)
    t1 = clock.stamp(5, 0.04)
    t2 = clock.stamp(5, 0.14, lost=5)
    assert t2[0] - t1[-1] == pytest.approx(0.06, abs=1e-3)
    assert clock.dropped == 5
    clock.reanchor()
    t3 = clock.stamp(5, 100.0)
    assert t3[-1] == pytest.approx(100.0) and t3[0] > t2[-1]


# ----------------------------------------------------------------------------- driver + fake board


@pytest.fixture(params=["csv", "binary"])
def board(request: pytest.FixtureRequest, tmp_path: Path):
    cfg = MyoWareConfig(protocol=request.param, adc_bits=10 if request.param == "csv" else 12, sequence=False)
    fake = FakeMyoWareBoard(cfg, link=tmp_path / "ttyMYOWARE", keep_sent=True)
    fake.start()
    yield fake
    fake.stop()


def samples(msgs: list, name: str = "upper_emg") -> int:
    return sum(len(m) for m in msgs if isinstance(m, Chunk) and m.info.name == name)


def statuses(msgs: list) -> list[str]:
    return [m.status for m in msgs if isinstance(m, StatusEvent)]


def test_end_to_end_through_pipeline_into_a_recording(board: FakeMyoWareBoard, tmp_path: Path) -> None:
    dev = MyoWareDevice(board.path, board.config)
    pipeline = build_pipeline(dev.streams())
    path = tmp_path / "upper.mcap"
    with RecordingWriter(path, [*dev.streams(), *pipeline.output_streams], {"device": dev.info()}) as rec:
        stats = SessionRunner(dev, pipeline, recorder=rec, duration_s=2.0).run()
    recording = open_recording(path)
    chunk = recording.chunk("upper_emg")
    assert len(chunk) == pytest.approx(2000, rel=0.01)
    assert stats.samples["upper_emg"] == len(chunk)
    assert len(recording.chunk("upper_emg.envelope")) > 0
    # the values are the board's, bit for bit
    sent = np.concatenate(board.sent).astype(np.float32)
    start = np.flatnonzero((sent == chunk.data[0]).all(axis=1))
    assert any(np.array_equal(sent[s : s + len(chunk)], chunk.data) for s in start)
    # rate from the data's own stamps
    assert (len(chunk) - 1) / (chunk.t[-1] - chunk.t[0]) == pytest.approx(1000.0, rel=0.01)


def test_board_reset_on_open_then_damaged_records(tmp_path: Path) -> None:
    cfg = MyoWareConfig(protocol="csv", adc_bits=10, sequence=True)
    fake = FakeMyoWareBoard(cfg, link=tmp_path / "ttyUNO", reset_garbage_s=0.5)
    fake.start()
    dev = MyoWareDevice(fake.path, cfg)
    dev.start()
    try:
        got = collect(dev, lambda m: samples(m) >= 300)
        fake.mutate_next(lambda b: b.replace(b"\r\n", b"", 1))  # a record loses its newline
        fake.mutate_next(lambda b: b[: len(b) // 2])  # a write cut short
        fake.inject(b"\x00\xff\xfe garbage \x80\n")
        fake.mutate_next(lambda b: b[len(b) // 3 :])  # and one cut at the front
        got += collect(dev, lambda m: samples(m) >= 1000)
    finally:
        dev.stop()
        fake.stop()
    s = dev.stats()
    assert statuses(got)[:2] == ["connecting", "connected"]
    assert s["resyncs"] >= 2 and s["garbage_bytes"] > 0 and s["bad"] >= 2
    assert s["dropped"] > 0  # the cut records are missing from the sequence
    t = np.concatenate([m.t for m in got if isinstance(m, Chunk)])
    assert np.all(np.diff(t) > 0)


def test_binary_sequence_gap_counts_exact_drops(tmp_path: Path) -> None:
    cfg = MyoWareConfig(protocol="binary", adc_bits=12)
    fake = FakeMyoWareBoard(cfg, link=tmp_path / "ttyBIN")
    fake.start()
    dev = MyoWareDevice(fake.path, cfg)
    dev.start()
    try:
        got = collect(dev, lambda m: samples(m) >= 100)
        frame = 6 + 2 * 2 * 10 + 2
        fake.mutate_next(lambda b: b[frame:])  # the first frame of the next write is lost
        got += collect(dev, lambda m: samples(m) >= 400)
    finally:
        dev.stop()
        fake.stop()
    assert dev.stats()["dropped"] == 10
    t = np.concatenate([m.t for m in got if isinstance(m, Chunk)])
    # the stamps skip exactly the lost frame
    assert np.sum(np.diff(t) > 5e-3) == 1


def test_silent_board_is_detected_and_resumes(board: FakeMyoWareBoard) -> None:
    dev = MyoWareDevice(board.path, board.config)
    dev.start()
    try:
        got = collect(dev, lambda m: samples(m) >= 200)
        board.pause()
        got += collect(dev, lambda m: "silent" in statuses(m))
        board.resume()
        got += collect(dev, lambda m: "resumed" in statuses(m))
    finally:
        dev.stop()
    silent = next(m for m in got if isinstance(m, StatusEvent) and m.status == "silent")
    last_before = max(m.t_end for m in got if isinstance(m, Chunk) and m.t_end < silent.t)
    assert silent.t - last_before < 1.0  # data time of the device's own clock
    gaps = [m for m in got if isinstance(m, GapEvent)]
    assert [g.source_stream for g in gaps] == ["upper_emg"]
    assert statuses(got)[-1] == "resumed"


def test_wrong_protocol_is_reported(board: FakeMyoWareBoard) -> None:
    other = "binary" if board.config.protocol == "csv" else "csv"
    cfg = MyoWareConfig(protocol=other, adc_bits=board.config.adc_bits)
    dev = MyoWareDevice(board.path, cfg)
    dev.start()
    try:
        got = collect(dev, lambda m: "error" in statuses(m))
    finally:
        dev.stop()
    error = next(m for m in got if isinstance(m, StatusEvent) and m.status == "error")
    assert "check the protocol" in error.detail and samples(got) == 0


def test_port_disappears_and_comes_back(board: FakeMyoWareBoard) -> None:
    dev = MyoWareDevice(board.path, board.config)
    dev.start()
    try:
        got = collect(dev, lambda m: samples(m) >= 200)
        t_unplug = dev.clock()
        board.unplug()
        got += collect(dev, lambda m: "lost" in statuses(m))
        n_before = samples(got)
        board.plug()
        got += collect(dev, lambda m: "reconnected" in statuses(m) and samples(m) > n_before + 200)
    finally:
        dev.stop()
    lost = next(m for m in got if isinstance(m, StatusEvent) and m.status == "lost")
    assert lost.t - t_unplug < 0.5
    assert any(isinstance(m, GapEvent) and m.reason == "lost" for m in got)
    assert statuses(got)[-1] == "reconnected" and dev.stats()["reconnects"] == 1
    assert samples(got) > n_before + 200


# ----------------------------------------------------------------------------- the shipped sketch

SKETCH = Path(__file__).resolve().parents[2] / "emgpilot" / "firmware" / "myoware_binary" / "myoware_binary.ino"

ARDUINO_STUB = """
#pragma once
#include <cstdint>
#include <cstdio>
#include <algorithm>
using std::min;
enum { A0 = 0, A1 = 1, A2 = 2, A3 = 3 };
extern uint32_t fake_us;
extern uint32_t fake_reads;
inline uint32_t micros() { return fake_us; }
inline int analogRead(uint8_t pin) { return (int)((fake_reads++ * 7 + pin * 100) % 1024); }
struct FakeSerial {
  double budget = 0;       // bytes the UART could have sent by now
  double bytes_per_us = 0;
  uint32_t last_us = 0;
  void begin(uint32_t baud) { bytes_per_us = LINK_BAUD / 10.0 / 1e6; (void)baud; }
  int availableForWrite() {
    budget = std::min(64.0, budget + (fake_us - last_us) * bytes_per_us);
    last_us = fake_us;
    return (int)budget;
  }
  size_t write(const uint8_t *p, size_t n) { budget -= n; return fwrite(p, 1, n, stdout); }
};
extern FakeSerial Serial;
"""

HARNESS = """
#include "Arduino.h"
uint32_t fake_us = 0; uint32_t fake_reads = 0; FakeSerial Serial;
#include "sketch.cpp"
int main() { setup(); for (long i = 0; i < 1000000; i++) { fake_us += 2; loop(); } return 0; }
"""


@pytest.mark.parametrize("link_baud", [115200, 9600])
def test_shipped_sketch_speaks_the_binary_protocol(tmp_path: Path, link_baud: int) -> None:
    """Compile the Arduino sketch for the host against a stub core and decode what it sends."""
    import shutil
    import subprocess

    cxx = shutil.which("g++") or shutil.which("clang++")
    if cxx is None:
        pytest.skip("no C++ compiler to build the sketch on the host")
    (tmp_path / "Arduino.h").write_text(ARDUINO_STUB.replace("LINK_BAUD", str(link_baud)))
    (tmp_path / "sketch.cpp").write_text(SKETCH.read_text())
    (tmp_path / "main.cpp").write_text(HARNESS)
    exe = tmp_path / "sketch"
    subprocess.run(
        [cxx, "-std=c++17", "-O1", "-I", str(tmp_path), "-o", str(exe), str(tmp_path / "main.cpp")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    out = subprocess.run([str(exe)], check=True, capture_output=True, timeout=60).stdout  # 2 s of board time
    dec = BinaryDecoder(2, 10)
    block = dec.feed(out)
    assert dec.stats.bad == 0 and dec.stats.garbage_bytes == 0
    steps = np.diff(block.seq) % 65536
    if link_baud == 115200:
        assert len(block.values) == pytest.approx(2000, abs=10) and np.all(steps == 1)
    else:
        # 9600 baud carries a fifth of the data: whole frames are dropped, never damaged
        assert 200 < len(block.values) < 600 and np.all(steps[steps != 1] % 10 == 1)
    # the stub's ramp survives the trip: each channel steps by 14 counts per sample (mod 1024)
    ok = steps == 1
    assert np.all((np.diff(block.values[:, 0])[ok] % 1024) == 14)
