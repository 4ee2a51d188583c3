"""Myo driver against the fake BLED112 dongle; the unmodified pyomyo client against the same fake."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emgpilot.build import build_pipeline
from emgpilot.signals import bgapi
from emgpilot.signals.bgapi import Packet
from emgpilot.signals.fakes import FakeMyoDongle, FakeMyoWareBoard, collect
from emgpilot.signals.myo import MyoDevice, decode_emg, decode_imu, is_myo_advert
from emgpilot.signals.myoware import MyoWareConfig, MyoWareDevice
from emgpilot.signals.recording import RecordingWriter, open_recording
from emgpilot.signals.runner import SessionRunner
from emgpilot.signals.serialio import CompositeDevice
from emgpilot.signals.streams import Chunk, GapEvent, StatusEvent


def samples(msgs: list, name: str = "forearm_emg") -> int:
    return sum(len(m) for m in msgs if isinstance(m, Chunk) and m.info.name == name)


def statuses(msgs: list, device: str | None = None) -> list[str]:
    return [m.status for m in msgs if isinstance(m, StatusEvent) and (device is None or m.device == device)]


def test_decoders_and_scales() -> None:
    emg = decode_emg(bytes([1, 2, 3, 4, 5, 6, 7, 8, 255, 254, 253, 252, 128, 127, 0, 9]))
    assert emg.tolist() == [[1, 2, 3, 4, 5, 6, 7, 8], [-1, -2, -3, -4, -128, 127, 0, 9]]
    raw = np.array([16384, 0, 0, -16384, 2048, -1024, 0, 16, -160, 8], dtype="<i2").tobytes()
    imu = decode_imu(raw)
    assert imu.tolist() == [1.0, 0.0, 0.0, -1.0, 1.0, -0.5, 0.0, 1.0, -10.0, 0.5]
    with pytest.raises(ValueError, match="expected 16"):
        decode_emg(b"\x00" * 15)


@pytest.fixture
def dongle(tmp_path: Path):
    fake = FakeMyoDongle(link=tmp_path / "ttyACM_BLED112", keep_sent=True)
    fake.start()
    yield fake
    fake.stop()


def test_connects_configures_and_streams(dongle: FakeMyoDongle) -> None:
    dev = MyoDevice(dongle.path)
    dev.start()
    try:
        got = collect(dev, lambda m: samples(m) >= 200 and samples(m, "forearm_imu") >= 40)
        # what the armband was told, seen from its side
        assert dongle.emg_mode == 3 and dongle.imu_mode == 1
        assert dongle.never_sleep and dongle.vibrations == 1
    finally:
        dev.stop()
    assert statuses(got)[:3] == ["connecting", "scanning", "connected"]
    info = dev.info()
    assert info["firmware"] == "1.5.1970" and info["name"] == "Fake Myo" and info["battery_percent"] == 87
    assert info["address"] == "E0:A4:52:8C:9B:C2"
    emg = np.concatenate([m.data for m in got if isinstance(m, Chunk) and m.info.name == "forearm_emg"])
    sent = np.concatenate(dongle.sent_emg).astype(np.float32)
    assert np.array_equal(emg, sent[: len(emg)])
    imu = np.concatenate([m.data for m in got if isinstance(m, Chunk) and m.info.name == "forearm_imu"])
    assert np.allclose(np.linalg.norm(imu[:, :4], axis=1), 1.0, atol=0.01)  # unit quaternions
    assert np.allclose(np.linalg.norm(imu[:, 4:7], axis=1), 1.0, atol=0.05)  # 1 g at rest
    assert dev.stats()["dropped"] == 0


def test_lost_notifications_are_counted_from_the_rotation(dongle: FakeMyoDongle) -> None:
    dev = MyoDevice(dongle.path)
    dev.start()
    try:
        got = collect(dev, lambda m: samples(m) >= 100)
        dongle.drop_notifications(3)
        got += collect(dev, lambda m: samples(m) >= 300)
    finally:
        dev.stop()
    s = dev.stats()
    assert s["emg_rotation_drops"] == 3 and s["emg_dropped"] == 6
    t = np.concatenate([m.t for m in got if isinstance(m, Chunk) and m.info.name == "forearm_emg"])
    jumps = np.diff(t) * 200.0
    assert np.sum(jumps > 3) == 1 and jumps.max() == pytest.approx(7.0, abs=0.3)


def test_garbage_and_truncated_packets_do_not_stop_the_stream(dongle: FakeMyoDongle) -> None:
    dev = MyoDevice(dongle.path)
    dev.start()
    try:
        got = collect(dev, lambda m: samples(m) >= 100)
        dongle.inject(b"\xde\xad\xbe\xef\x80\x00\x04")
        dongle.mutate_next(lambda b: b[:11])  # a notification cut short, the rest of the write lost
        dongle.inject(bytes(range(256)))
        got += collect(dev, lambda m: samples(m) >= 400)
    finally:
        dev.stop()
    s = dev.stats()
    assert s["bgapi_garbage_bytes"] > 0 and s["bgapi_resyncs"] >= 1
    assert s["lost"] == 0 and s["reconnects"] == 0
    assert samples(got) >= 400


def test_bluetooth_link_loss_and_relink(dongle: FakeMyoDongle) -> None:
    dev = MyoDevice(dongle.path)
    dev.start()
    try:
        got = collect(dev, lambda m: samples(m) >= 100)
        dongle.ble_disconnect()
        got += collect(dev, lambda m: "reconnected" in statuses(m))
        n = samples(got)
        got += collect(dev, lambda m: samples(m) >= n + 100)
    finally:
        dev.stop()
    assert "lost" in statuses(got)
    assert {g.source_stream for g in got if isinstance(g, GapEvent)} == {"forearm_emg", "forearm_imu"}
    assert samples(got) >= n + 100


def test_dongle_unplugged_then_back(dongle: FakeMyoDongle) -> None:
    dev = MyoDevice(dongle.path)
    dev.start()
    try:
        got = collect(dev, lambda m: samples(m) >= 100)
        t_unplug = dev.clock()
        dongle.unplug()
        got += collect(dev, lambda m: "lost" in statuses(m))
        dongle.plug()
        got += collect(dev, lambda m: "reconnected" in statuses(m))
        n = samples(got)
        got += collect(dev, lambda m: samples(m) >= n + 100)
    finally:
        dev.stop()
    lost = next(m for m in got if isinstance(m, StatusEvent) and m.status == "lost")
    assert lost.t - t_unplug < 0.5
    assert samples(got) >= n + 100
    t = np.concatenate([m.t for m in got if isinstance(m, Chunk) and m.info.name == "forearm_emg"])
    assert np.all(np.diff(t) > 0)


def test_silent_myo_is_detected_then_relinked_when_silence_lasts(dongle: FakeMyoDongle) -> None:
    dev = MyoDevice(dongle.path, relink_after_s=1.0)
    dev.start()
    try:
        got = collect(dev, lambda m: samples(m) >= 100)
        dongle.pause()  # a short radio dropout: the link survives
        got += collect(dev, lambda m: "silent" in statuses(m))
        dongle.resume()
        got += collect(dev, lambda m: "resumed" in statuses(m))
        dongle.pause()  # a long one: the driver gives the link up and makes a new one
        got += collect(dev, lambda m: "lost" in statuses(m))
        dongle.resume()
        got += collect(dev, lambda m: "reconnected" in statuses(m))
        n = samples(got)
        got += collect(dev, lambda m: samples(m) >= n + 50)
    finally:
        dev.stop()
    silent = next(m for m in got if isinstance(m, StatusEvent) and m.status == "silent")
    last = max(m.t_end for m in got if isinstance(m, Chunk) and m.t_end < silent.t)
    assert silent.t - last < 1.0  # the device's data clock
    seq = statuses(got)
    assert seq.index("silent") < seq.index("resumed") < seq.index("lost") < seq.index("reconnected")
    assert samples(got) >= n + 50


def test_end_to_end_into_a_recording(dongle: FakeMyoDongle, tmp_path: Path) -> None:
    dev = MyoDevice(dongle.path)
    pipeline = build_pipeline(dev.streams())
    path = tmp_path / "myo.mcap"
    with RecordingWriter(path, [*dev.streams(), *pipeline.output_streams], {"device": dev.info()}) as rec:
        SessionRunner(dev, pipeline, recorder=rec, duration_s=2.0).run()
    recording = open_recording(path)
    emg, imu = recording.chunk("forearm_emg"), recording.chunk("forearm_imu")
    assert len(emg) == pytest.approx(400, rel=0.01)
    assert len(imu) == pytest.approx(100, abs=1)  # 1 % of 100 samples is one sample
    assert (len(emg) - 1) / (emg.t[-1] - emg.t[0]) == pytest.approx(200.0, rel=0.01)
    assert len(recording.chunk("forearm_imu.resampled")) > 0
    assert statuses(recording.events("status"))[-1] in ("connected", "stopped")


def test_composite_keeps_recording_when_the_upper_arm_board_vanishes(dongle: FakeMyoDongle, tmp_path: Path) -> None:
    cfg = MyoWareConfig(protocol="binary", adc_bits=12)
    board = FakeMyoWareBoard(cfg, link=tmp_path / "ttyUSB_board")
    board.start()
    dev = CompositeDevice([MyoDevice(dongle.path), MyoWareDevice(board.path, cfg)])
    pipeline = build_pipeline(dev.streams())
    path = tmp_path / "both.mcap"
    state = {"phase": 0, "emg_at_loss": 0}

    def fault_script(batch: list) -> None:
        """Unplug the board after a while, plug it back once the loss was reported."""
        msgs = state.setdefault("msgs", [])
        msgs += batch
        if state["phase"] == 0 and samples(msgs, "upper_emg") >= 500:
            board.unplug()
            state["phase"] = 1
        elif state["phase"] == 1 and "lost" in statuses(msgs, "myoware"):
            state["emg_at_loss"] = samples(msgs)
            board.plug()
            state["phase"] = 2

    try:
        with RecordingWriter(path, [*dev.streams(), *pipeline.output_streams], {"device": dev.info()}) as rec:
            SessionRunner(dev, pipeline, recorder=rec, sinks=[fault_script], duration_s=3.0).run()
    finally:
        board.stop()
    recording = open_recording(path)
    status = statuses(recording.events("status"), "myoware")
    assert "lost" in status and "reconnected" in status
    gaps = recording.events("gap")
    assert [g.source_stream for g in gaps] == ["upper_emg"]
    # the forearm kept flowing through the board's outage
    emg = recording.chunk("forearm_emg")
    # every sample over the Myo's own span (the 3 s count from the board's first sample, and the Myo
    # connects 30-70 ms later, so a fixed count of 600 failed now and then)
    assert (len(emg) - 1) / (emg.t[-1] - emg.t[0]) == pytest.approx(200.0, rel=0.01)
    assert emg.t[-1] - emg.t[0] > 2.8 and len(emg) > state["emg_at_loss"] > 0
    assert np.diff(emg.t).max() < 0.05
    upper = recording.chunk("upper_emg")
    assert np.diff(upper.t).max() > 0.05  # the board's gap is in the data, not papered over


PYOMYO_CLIENT = textwrap.dedent(
    """
    import json, sys
    from pyomyo import Myo, emg_mode
    n = int(sys.argv[2])
    m = Myo(sys.argv[1], mode=emg_mode.RAW)
    got, imu = [], []
    m.add_emg_handler(lambda emg, moving: got.append(list(emg)))
    m.add_imu_handler(lambda q, a, g: imu.append(list(q)))
    m.connect()
    while len(got) < n:
        m.run()
    print("RESULT " + json.dumps({"emg": got, "imu": len(imu)}))
    """
)


def test_unmodified_pyomyo_client_gets_200_samples_per_second(dongle: FakeMyoDongle, tmp_path: Path) -> None:
    pytest.importorskip("pyomyo", reason="install with: pip install --no-deps pyomyo==0.0.5")
    script = tmp_path / "client.py"
    script.write_text(PYOMYO_CLIENT)
    # pyomyo blocks without timeouts and prints: a subprocess with a hard limit contains it
    proc = subprocess.run([sys.executable, str(script), dongle.path, "400"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))[7:])
    got = np.array(result["emg"])
    sent = np.concatenate(dongle.sent_emg)
    # every notification of all four characteristics arrived, in order, as two samples each
    assert got.shape == (400, 8)
    assert np.array_equal(got, sent[:400])
    assert result["imu"] >= 90  # 50 Hz beside 200 Hz EMG over the same 2 s of device time
    # the fake streamed at 200 samples per second of its own (device) clock
    assert dongle.emg_samples_sent / dongle.emg_stream_time == pytest.approx(200.0, rel=0.01)


def test_advert_detection() -> None:
    from emgpilot.signals.fakes import myo_advert

    assert is_myo_advert(myo_advert())
    assert not is_myo_advert(b"\x02\x01\x06\x03\x03\x0f\x18")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([0x2B, 0x2E, 0x31, 0x34, 0x1C, 0x11, 0x99]), st.binary(max_size=24)),
        max_size=30,
    )
)
def test_fuzz_notifications_never_crash_the_decoder(notes: list[tuple[int, bytes]]) -> None:
    """Notifications of any handle and length: good ones become samples, the rest are counted."""
    dev = MyoDevice("/dev/null", clock=lambda: 1.0)
    pkts = [
        Packet(True, 4, 5, struct.pack("<BHB", 0, handle, bgapi.ATT_NOTIFY) + bgapi.u8array(value))
        for handle, value in notes
    ]
    dev._handle(pkts, host_t=1.0)
    msgs = dev.read(0)
    good_emg = sum(1 for h, v in notes if h in (0x2B, 0x2E, 0x31, 0x34) and len(v) == 16)
    good_imu = sum(1 for h, v in notes if h == 0x1C and len(v) == 20)
    bad = sum(1 for h, v in notes if (h in (0x2B, 0x2E, 0x31, 0x34) and len(v) != 16) or (h == 0x1C and len(v) != 20))
    assert samples(msgs) == 2 * good_emg and samples(msgs, "forearm_imu") == good_imu
    assert dev.counters["bad"] == bad
