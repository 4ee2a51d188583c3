"""Recording writer and reader: exact round trip, crash safety, clear errors on damaged files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from emgpilot import __version__
from emgpilot.signals.recording import RecordingError, RecordingWriter, open_recording
from emgpilot.signals.streams import (
    EVENT_STREAMS,
    FOREARM_EMG,
    FOREARM_IMU,
    UPPER_EMG,
    Chunk,
    CueEvent,
    GapEvent,
    StatusEvent,
    StreamInfo,
    concat_chunks,
)


def _session(seconds: float = 4.0, chunk_s: float = 0.02, seed: int = 3) -> list:
    """Source-like messages: int-valued EMG, jittered-time IMU, float upper-arm EMG, events."""
    rng = np.random.default_rng(seed)
    msgs: list = []
    step = 0
    t = 0.0
    while t < seconds:
        k_emg = np.arange(round(t * 200), round((t + chunk_s) * 200))
        msgs.append(Chunk(FOREARM_EMG, k_emg / 200.0, rng.integers(-128, 128, (len(k_emg), 8)).astype(np.float64)))
        k_up = np.arange(round(t * 1000), round((t + chunk_s) * 1000))
        msgs.append(Chunk(UPPER_EMG, k_up / 1000.0, rng.normal(0, 50, (len(k_up), 2))))
        if step % 2 == 0:
            k_imu = np.arange(round(t * 50), round((t + 2 * chunk_s) * 50))
            jitter = rng.uniform(0, 1e-3, len(k_imu))
            msgs.append(
                Chunk(FOREARM_IMU, k_imu / 50.0 + jitter, rng.normal(0, 1, (len(k_imu), 10)).astype(np.float32))
            )
        if step % 50 == 0:
            msgs.append(CueEvent(t=t, label="fist" if step % 100 else "rest"))
        step += 1
        t = round(t + chunk_s, 9)
    return msgs


def _by_stream(msgs: list) -> dict[str, Chunk]:
    out: dict[str, list[Chunk]] = {}
    for m in msgs:
        if isinstance(m, Chunk):
            out.setdefault(m.info.name, []).append(m)
    return {k: concat_chunks(v) for k, v in out.items()}


def _write(path: Path, msgs: list, **kw) -> None:
    with RecordingWriter(
        path, [FOREARM_EMG, UPPER_EMG, FOREARM_IMU, EVENT_STREAMS["cue"]], kw.pop("meta", {}), **kw
    ) as w:
        w.write(msgs)


def test_round_trip_is_exact_and_keeps_dtypes(tmp_path):
    msgs = _session()
    path = tmp_path / "s.mcap"
    _write(path, msgs, meta={"device": {"type": "test"}, "pipeline_config": {"preprocess": {}}})
    rec = open_recording(path)
    assert not rec.recovered and rec.complete and rec.warnings == []
    assert rec.metadata["emgpilot_version"] == __version__
    assert rec.metadata["device"] == {"type": "test"} and "created_utc" in rec.metadata
    assert rec.metadata["pipeline_config"] == {"preprocess": {}}
    assert set(rec.streams) == {"forearm_emg", "upper_emg", "forearm_imu", "cue"}
    for name, want in _by_stream(msgs).items():
        got = rec.chunk(name)
        assert got.info == want.info
        assert got.data.dtype == want.data.dtype, name
        np.testing.assert_array_equal(got.t, want.t, err_msg=name)
        np.testing.assert_array_equal(got.data, want.data, err_msg=name)
    assert rec.events("cue") == [m for m in msgs if isinstance(m, CueEvent)]
    assert rec.duration_s == pytest.approx(max(m.t_end for m in msgs if isinstance(m, Chunk)))


def test_integral_floats_are_stored_compactly(tmp_path):
    """Int8-valued float EMG must take about one byte per value on disk."""
    n = 20000
    x = np.random.default_rng(0).integers(-128, 128, (n, 8)).astype(np.float64)
    path = tmp_path / "c.mcap"
    with RecordingWriter(path, [FOREARM_EMG], {}) as w:
        w.write([Chunk(FOREARM_EMG, np.arange(n) / 200.0, x)])
    assert path.stat().st_size < n * 8 * 1.2 + 10_000
    np.testing.assert_array_equal(open_recording(path).chunk("forearm_emg").data, x)


def test_events_stay_ordered_relative_to_chunks(tmp_path):
    a = Chunk(FOREARM_EMG, np.arange(10) / 200.0, np.zeros((10, 8)))
    b = Chunk(FOREARM_EMG, (10 + np.arange(10)) / 200.0, np.ones((10, 8)))
    gap = GapEvent(t=0.1, source_stream="forearm_emg", t_resume=0.5, reason="test")
    c = Chunk(FOREARM_EMG, (100 + np.arange(10)) / 200.0, np.full((10, 8), 2.0))
    path = tmp_path / "o.mcap"
    with RecordingWriter(path, [FOREARM_EMG], {}) as w:
        w.write([a, b, gap, c])
    got = list(open_recording(path).messages())
    assert [type(m).__name__ for m in got] == ["Chunk", "GapEvent", "Chunk"]
    np.testing.assert_array_equal(got[0].data, np.concatenate([a.data, b.data]))
    assert got[1] == gap


def test_streams_added_on_the_fly(tmp_path):
    extra = StreamInfo("detector.test", "state", 20.0, ("p",), ("1",))
    late = StreamInfo("late_events", "event", 0.0)
    path = tmp_path / "f.mcap"
    with RecordingWriter(path, [FOREARM_EMG], {}) as w:
        w.add_stream(late)
        w.write([Chunk(extra, np.arange(3) / 20.0, np.ones((3, 1), np.float32)), StatusEvent(t=0.0, device="x")])
    rec = open_recording(path)
    assert rec.streams["detector.test"] == extra and "late_events" in rec.streams and "status" in rec.streams
    assert len(rec.chunk("detector.test")) == 3 and rec.events("status")[0].device == "x"


def test_flush_interval_with_a_fake_clock(tmp_path):
    """While the file is open, everything written more than one interval ago is on disk."""
    now = [0.0]
    path = tmp_path / "live.mcap"
    w = RecordingWriter(path, [FOREARM_EMG], {}, clock=lambda: now[0], background_flush=False)
    try:
        for k in range(100):
            now[0] = k * 0.02
            w.write([Chunk(FOREARM_EMG, (4 * k + np.arange(4)) / 200.0, np.full((4, 8), float(k % 100)))])
            rec = open_recording(path)
            assert rec.recovered
            on_disk = len(rec.chunk("forearm_emg")) if rec.stream_stats()["forearm_emg"].messages else 0
            assert on_disk >= 4 * (k + 1) - 4 * 26  # at most 0.5 s (25 writes) not yet flushed
    finally:
        w.close()
    assert not open_recording(path).recovered


def test_timer_thread_flushes_when_no_more_data_arrives(tmp_path):
    """A stalled source must not leave data in memory: the timer thread flushes it."""
    path = tmp_path / "stall.mcap"
    now = [0.0]
    with RecordingWriter(path, [FOREARM_EMG], {}, flush_interval_s=0.05, clock=lambda: now[0]) as w:
        w.write([Chunk(FOREARM_EMG, np.arange(10) / 200.0, np.ones((10, 8)))])  # too soon to flush
        assert not w._flushed.is_set()
        now[0] = 1.0  # the source stalls; time passes
        assert w._flushed.wait(timeout=30), "no flush without further writes"
        rec = open_recording(path)
        assert rec.recovered and len(rec.chunk("forearm_emg")) == 10


def _damaged(tmp_path: Path, name: str, mutate) -> Path:
    src = tmp_path / "good.mcap"
    if not src.exists():
        _write(src, _session(seconds=2.0))
    data = bytearray(src.read_bytes())
    path = tmp_path / name
    path.write_bytes(bytes(mutate(data)))
    return path


def test_truncated_file_is_recovered_up_to_the_last_intact_message(tmp_path):
    good = _damaged(tmp_path, "copy.mcap", lambda d: d)
    full = open_recording(good)
    size = good.stat().st_size
    tail = open_recording(_damaged(tmp_path, "tail.mcap", lambda d: d[: size - 100]))
    assert not tail.recovered and len(tail) == len(full) and "summary" in tail.warnings[0]
    for cut in (size // 3, size // 2):
        path = _damaged(tmp_path, f"cut{cut}.mcap", lambda d, cut=cut: d[:cut])
        rec = open_recording(path)
        assert rec.recovered and not rec.complete
        assert path.name in rec.warnings[0] and "recovered" in rec.warnings[0]
        assert 0 < len(rec) < len(full)
        want = full.chunk("forearm_emg")
        got = rec.chunk("forearm_emg")
        np.testing.assert_array_equal(got.data, want.data[: len(got)])


@pytest.mark.parametrize(
    ("label", "mutate", "expect"),
    [
        ("empty", lambda d: b"", "not a recording"),
        ("garbage", lambda d: os.urandom(5000), "not a recording"),
        ("text", lambda d: b"hello, I am a CSV file\n1,2,3\n", "not a recording"),
        ("header_only", lambda d: d[:40], "nothing recoverable"),
        ("bad_record", lambda d: d[:3000] + b"\x55" + d[3001:], "damaged"),
        ("flipped_data", lambda d: d[:6000] + bytes([d[6000] ^ 0xFF]) + d[6001:], "checksum"),
    ],
)
def test_damaged_files_raise_a_clear_error(tmp_path, label, mutate, expect):
    path = _damaged(tmp_path, f"{label}.mcap", mutate)
    with pytest.raises(RecordingError) as err:
        open_recording(path)
    msg = str(err.value)
    assert str(path) in msg and expect in msg, msg


def test_damage_in_the_middle_can_be_recovered_on_request(tmp_path):
    good = _damaged(tmp_path, "copy.mcap", lambda d: d)
    # Find a message record in the middle and corrupt its opcode.
    data = bytearray(good.read_bytes())
    pos = 8
    starts = []
    while pos < len(data):
        op, length = data[pos], int.from_bytes(data[pos + 1 : pos + 9], "little")
        if op == 0x05:
            starts.append(pos)
        if op == 0x0F:
            break
        pos += 9 + length
    middle = starts[len(starts) // 2]
    data[middle] = 0x55
    path = tmp_path / "mid.mcap"
    path.write_bytes(bytes(data))
    with pytest.raises(RecordingError, match="intact before it"):
        open_recording(path)
    rec = open_recording(path, recover=True)
    assert rec.recovered and len(rec) == len(starts) // 2  # every message before the damaged one


def test_a_zeroed_stretch_is_found_at_the_damaged_message_not_counted_as_intact(tmp_path):
    # 400 zero bytes in the middle: the record lengths still add up, a sample block header does
    # not. The summary used to divide by its zero channel count (a traceback).
    good = _damaged(tmp_path, "copy.mcap", lambda d: d)
    data = bytearray(good.read_bytes())
    pos, blocks = 8, []
    while pos < len(data):
        op, length = data[pos], int.from_bytes(data[pos + 1 : pos + 9], "little")
        if op == 0x05 and length > 500:
            blocks.append(pos + 9 + 22)  # the sample block, after the message record's own header
        pos += 9 + length
    middle = blocks[len(blocks) // 2]
    data[middle : middle + 400] = bytes(400)
    path = tmp_path / "zeroed.mcap"
    path.write_bytes(bytes(data))
    with pytest.raises(RecordingError, match="intact before it"):
        open_recording(path)
    rec = open_recording(path, recover=True)
    assert rec.recovered and 0 < len(rec) < len(open_recording(good))
    for name in ("forearm_emg", "upper_emg"):  # what is kept decodes
        assert len(rec.chunk(name))


def test_a_checksum_mismatch_does_not_claim_any_part_intact(tmp_path):
    # One sample value changed: every record still parses; only the data checksum knows.
    good = _damaged(tmp_path, "copy.mcap", lambda d: d)
    data = bytearray(good.read_bytes())
    pos, payload = 8, None
    while pos < len(data):
        op, length = data[pos], int.from_bytes(data[pos + 1 : pos + 9], "little")
        if op == 0x05 and length > 500:
            payload = pos + 9 + length - 10  # inside the sample values at the end of the block
            break
        pos += 9 + length
    assert payload is not None
    data[payload] ^= 0x01
    path = tmp_path / "flipped.mcap"
    path.write_bytes(bytes(data))
    with pytest.raises(RecordingError) as err:
        open_recording(path)
    msg = str(err.value)
    assert "checksum" in msg and "cannot be told" in msg and "intact" not in msg
    assert len(open_recording(path, recover=True)) == len(open_recording(good))


def test_foreign_mcap_file_is_refused(tmp_path):
    from mcap.writer import CompressionType, Writer

    path = tmp_path / "foreign.mcap"
    with open(path, "wb") as fh:
        w = Writer(fh, compression=CompressionType.NONE)
        w.start()
        sid = w.register_schema("x", "jsonschema", b"{}")
        cid = w.register_channel("/x", "json", sid)
        w.add_message(cid, log_time=0, data=json.dumps({"a": 1}).encode(), publish_time=0)
        w.finish()
    with pytest.raises(RecordingError, match=r"foreign\.mcap"):
        open_recording(path)


def test_missing_file_and_unwritable_path(tmp_path):
    with pytest.raises(RecordingError, match=r"nope\.mcap"):
        open_recording(tmp_path / "nope.mcap")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RecordingError, match="cannot create"):
        RecordingWriter(blocker / "sub" / "r.mcap", [FOREARM_EMG], {})


CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from emgpilot.signals.recording import RecordingWriter
    from emgpilot.signals.streams import EVENT_STREAMS, FOREARM_EMG, UPPER_EMG, Chunk, CueEvent

    now = [0.0]
    # The writer's clock follows data time, as in a live 1x session: flushing depends on the
    # data written, not on how fast this process happens to run.
    w = RecordingWriter(sys.argv[1], [FOREARM_EMG, UPPER_EMG, EVENT_STREAMS["cue"]], {"device": {"type": "child"}},
                        clock=lambda: now[0], background_flush=False)
    k = 0
    while True:
        t0 = k * 0.02
        now[0] = t0 + 0.02
        msgs = [
            Chunk(FOREARM_EMG, (4 * k + np.arange(4)) / 200.0, np.full((4, 8), float(k % 127))),
            Chunk(UPPER_EMG, (20 * k + np.arange(20)) / 1000.0, np.full((20, 2), k * 0.5)),
        ]
        if k % 50 == 0:
            msgs.append(CueEvent(t=t0, label="fist" if k % 100 else "rest"))
        w.write(msgs)
        print(f"{now[0]:.3f}", flush=True)
        if sys.stdin.readline() == "":  # wait for the parent's go-ahead
            break
        k += 1
    """
)


def test_sigkilled_recorder_leaves_a_readable_file(tmp_path):
    path = tmp_path / "killed.mcap"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        reported = 0.0
        while reported < 5.0:
            line = proc.stdout.readline()
            assert line, "recorder child died early"
            reported = float(line)
            if reported < 5.0:
                proc.stdin.write("go\n")
                proc.stdin.flush()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        proc.stdin.close()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    rec = open_recording(path)
    assert rec.recovered and rec.metadata["device"] == {"type": "child"}
    emg = rec.chunk("forearm_emg")
    upper = rec.chunk("upper_emg")
    # Everything older than 1 s (of the session's clock) before the kill is there, exactly.
    assert emg.t_end >= reported - 1.0 and upper.t_end >= reported - 1.0
    k = np.arange(len(emg)) // 4
    np.testing.assert_array_equal(emg.t, np.arange(len(emg)) / 200.0)
    np.testing.assert_array_equal(emg.data, np.repeat((k % 127).astype(np.float64)[:, None], 8, axis=1))
    cues = rec.events("cue")
    np.testing.assert_allclose([c.t for c in cues], np.arange(len(cues)))
    assert len(cues) >= int(reported - 1.0)
