"""Replay: a recorded run's pipeline outputs are reproduced exactly, at max and paced speed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emgpilot.build import PipelineConfig, build_pipeline, pipeline_config_from_dict
from emgpilot.config import to_mapping
from emgpilot.signals.device import Device
from emgpilot.signals.recording import RecordingWriter, open_recording
from emgpilot.signals.replay import ReplayDevice, coalesce, compare_outputs, source_stream_names
from emgpilot.signals.runner import SessionRunner
from emgpilot.signals.streams import (
    EVENT_STREAMS,
    FOREARM_EMG,
    FOREARM_IMU,
    UPPER_EMG,
    Chunk,
    CueEvent,
    GapEvent,
    Message,
    StreamInfo,
    message_stream,
)


class ListDevice:
    """A finite fake device: hands out prepared batches, one per read."""

    name = "list"

    def __init__(self, batches: list[list[Message]], streams: list[StreamInfo]) -> None:
        self._batches = list(batches)
        self._streams = streams
        self._i = 0

    def streams(self) -> list[StreamInfo]:
        return self._streams

    def info(self) -> dict:
        return {"type": "list"}

    def start(self) -> None:
        pass

    def read(self, timeout: float | None = None) -> list[Message]:
        if self._i >= len(self._batches):
            return []
        self._i += 1
        return self._batches[self._i - 1]

    @property
    def finished(self) -> bool:
        return self._i >= len(self._batches)

    def stop(self) -> None:
        pass


def _arm_batches(seconds: float = 12.0, seed: int = 7) -> list[list[Message]]:
    """EMG bursts on a noise floor, IMU with jittered stamps, cues, and a 1 s forearm dropout."""
    rng = np.random.default_rng(seed)
    batches = []
    step = 0.02
    n_steps = round(seconds / step)
    for k in range(n_steps):
        t = k * step
        active = (t % 3.0) > 1.5
        batch: list[Message] = []
        if k % 150 == 0:
            batch.append(CueEvent(t=t, label="fist" if active else "rest"))
        if k % 150 == 75:
            batch.append(CueEvent(t=t, label="fist"))
        dropped = 6.0 <= t < 7.0
        if k == round(6.0 / step):
            batch.append(GapEvent(t=6.0, source_stream="forearm_emg", t_resume=7.0, reason="test dropout"))
        if not dropped:
            ke = np.arange(round(t * 200), round((t + step) * 200))
            scale = 40 if active else 3
            batch.append(
                Chunk(FOREARM_EMG, ke / 200.0, np.clip(np.rint(rng.normal(0, scale, (len(ke), 8))), -128, 127))
            )
        ku = np.arange(round(t * 1000), round((t + step) * 1000))
        batch.append(Chunk(UPPER_EMG, ku / 1000.0, rng.normal(0, 20, (len(ku), 2)).astype(np.float32)))
        ki = np.arange(round(t * 50), round((t + step) * 50))
        if len(ki):
            imu = rng.normal(0, 0.1, (len(ki), 10))
            imu[:, 0] = 1.0
            batch.append(Chunk(FOREARM_IMU, ki / 50.0 + rng.uniform(0, 2e-3, len(ki)), imu))
        batches.append(batch)
    return batches


SOURCES = [FOREARM_EMG, UPPER_EMG, FOREARM_IMU, EVENT_STREAMS["cue"], EVENT_STREAMS["gap"]]


def _record(path, batches, cfg: PipelineConfig | None = None) -> list[Message]:
    """A recorded run exactly as ``emgpilot run --record`` does it; returns its derived outputs."""
    cfg = cfg or PipelineConfig()
    device = ListDevice(batches, SOURCES)
    pipeline = build_pipeline(device.streams(), cfg)
    derived: list[Message] = []
    names = {s.name for s in SOURCES}
    with RecordingWriter(
        path,
        [*device.streams(), *pipeline.output_streams],
        {"device": device.info(), "pipeline_config": to_mapping(cfg), "command": "run"},
    ) as rec:
        runner = SessionRunner(
            device,
            pipeline,
            recorder=rec,
            sinks=[lambda b: derived.extend(m for m in b if message_stream(m) not in names)],
        )
        runner.run()
    return derived


def _replay(path, speed: float = math.inf, consumed_only: bool = False, **kw) -> tuple[ReplayDevice, list[Message]]:
    rec = open_recording(path)
    cfg = pipeline_config_from_dict(rec.metadata["pipeline_config"])
    device = ReplayDevice(rec, speed=speed, **kw)
    pipeline = build_pipeline(device.streams(), cfg)
    if consumed_only:  # as ``emgpilot replay`` does: only events a stage consumes keep their place
        device.barrier_events = {name for stage in pipeline.stages for name in stage.inputs}
    names = {s.name for s in device.streams()}
    out: list[Message] = []
    SessionRunner(device, pipeline, sinks=[lambda b: out.extend(m for m in b if message_stream(m) not in names)]).run()
    return device, out


def test_replay_reproduces_a_recorded_run_exactly(tmp_path):
    path = tmp_path / "run.mcap"
    live = _record(path, _arm_batches())
    device, replayed = _replay(path)
    assert isinstance(device, Device)
    recorded = device.recorded_outputs()
    assert {message_stream(m) for m in recorded} == {message_stream(m) for m in live}
    result = compare_outputs(recorded, replayed)
    assert result["identical"], {k: v for k, v in result["streams"].items() if v["differ"] or v["missing"]}
    assert result["match"] > 10_000
    # The recording holds the live outputs bit for bit, too.
    assert compare_outputs(live, recorded)["identical"]
    # Letting unconsumed events (cues) pass ahead of the joined chunks changes nothing either.
    device, replayed = _replay(path, consumed_only=True)
    assert compare_outputs(recorded, replayed)["identical"]


def test_paced_replay_gives_the_same_outputs_and_sleeps_data_time(tmp_path):
    path = tmp_path / "run.mcap"
    _record(path, _arm_batches(seconds=6.0))
    now = [100.0]
    slept = []

    def sleep(dt: float) -> None:
        slept.append(dt)
        now[0] += dt

    device, paced = _replay(path, speed=4.0, clock=lambda: now[0], sleep=sleep)
    result = compare_outputs(device.recorded_outputs(), paced)
    assert result["identical"]
    assert sum(slept) == pytest.approx(6.0 / 4.0, abs=0.05)


def test_only_source_streams_are_replayed(tmp_path):
    path = tmp_path / "run.mcap"
    _record(path, _arm_batches(seconds=3.0))
    rec = open_recording(path)
    assert sorted(source_stream_names(rec)) == ["cue", "forearm_emg", "forearm_imu", "gap", "upper_emg"]
    device = ReplayDevice(rec)
    device.start()
    seen = set()
    while not device.finished:
        seen |= {message_stream(m) for m in device.read()}
    device.stop()
    assert seen == {"cue", "forearm_emg", "forearm_imu", "upper_emg"}
    assert all(message_stream(m) not in seen for m in device.recorded_outputs())
    only_emg = ReplayDevice(rec, streams=["forearm_emg"])
    assert [s.name for s in only_emg.streams()] == ["forearm_emg"]
    with pytest.raises(ValueError, match="no stream"):
        ReplayDevice(rec, streams=["nonexistent"])


def test_coalesce_joins_chunks_but_keeps_events_in_place():
    c = [Chunk(FOREARM_EMG, (i * 4 + np.arange(4)) / 200.0, np.full((4, 8), float(i))) for i in range(6)]
    u = [Chunk(UPPER_EMG, (i * 20 + np.arange(20)) / 1000.0, np.zeros((20, 2))) for i in range(6)]
    cue = CueEvent(t=0.06, label="fist")
    msgs = [c[0], u[0], c[1], u[1], c[2], u[2], cue, c[3], u[3], c[4], u[4], c[5], u[5]]
    out = list(coalesce(iter(msgs)))
    assert [message_stream(m) for m in out] == ["forearm_emg", "upper_emg", "cue", "forearm_emg", "upper_emg"]
    assert len(out[0]) == 12 and len(out[3]) == 12
    np.testing.assert_array_equal(out[3].data[:, 0], np.repeat([3.0, 4.0, 5.0], 4))
    capped = list(coalesce(iter(c), max_samples=8))
    assert [len(m) for m in capped] == [8, 8, 8]


def test_compare_outputs_counts_differences():
    info = StreamInfo("x.filtered", "filtered", 10.0, ("a",), ("1",))
    a = [Chunk(info, np.arange(10) / 10.0, np.arange(10.0)[:, None])]
    b = [
        Chunk(info, np.arange(5) / 10.0, np.arange(5.0)[:, None]),
        Chunk(info, (5 + np.arange(4)) / 10.0, np.full((4, 1), 9.0)),
    ]
    res = compare_outputs(a, b)
    assert res["streams"]["x.filtered"]["match"] == 5
    assert res["streams"]["x.filtered"]["differ"] == 4
    assert res["streams"]["x.filtered"]["missing"] == 1
    assert not res["identical"]


def test_coalesce_lets_unconsumed_events_pass_but_keeps_gaps_in_place():
    c = [Chunk(FOREARM_EMG, (i * 4 + np.arange(4)) / 200.0, np.full((4, 8), float(i))) for i in range(5)]
    u = [Chunk(UPPER_EMG, (i * 20 + np.arange(20)) / 1000.0, np.zeros((20, 2))) for i in range(5)]
    cue = CueEvent(t=0.04, label="fist")
    gap = GapEvent(t=0.06, source_stream="forearm_emg", t_resume=0.08, reason="test")
    msgs = [c[0], u[0], c[1], u[1], cue, u[2], gap, u[3], c[4], u[4]]
    out = list(coalesce(iter(msgs), barrier_events=set()))
    names = [message_stream(m) for m in out]
    assert names == ["cue", "forearm_emg", "upper_emg", "gap", "upper_emg", "forearm_emg", "upper_emg"]
    assert [len(m) for m in out if isinstance(m, Chunk)] == [8, 60, 20, 4, 20]


def test_paced_messages_cut_pieces_interleaved_by_time_and_keep_barriers():
    from emgpilot.signals.replay import PacedMessages
    from emgpilot.signals.streams import message_time

    emg = Chunk(FOREARM_EMG, np.arange(20) / 200.0, np.arange(160.0).reshape(20, 8))  # 0-95 ms
    upper = Chunk(UPPER_EMG, np.arange(100) / 1000.0, np.zeros((100, 2)))  # 0-99 ms
    empty = Chunk(FOREARM_IMU, np.zeros(0), np.zeros((0, FOREARM_IMU.n_channels)))
    cue = CueEvent(t=0.1, label="fist")
    gap = GapEvent(t=0.2, source_stream="forearm_emg", t_resume=0.5)
    back = Chunk(FOREARM_EMG, 0.5 + np.arange(10) / 200.0, np.zeros((10, 8)))  # 500-545 ms
    older = Chunk(UPPER_EMG, 0.49 + np.arange(5) / 1000.0, np.zeros((5, 2)))  # 490-494 ms
    msgs = [emg, upper, empty, cue, gap, back, older]
    paced = PacedMessages(msgs, 0.03)
    listed = list(paced)
    assert [message_stream(m) for m in listed] == [
        "forearm_imu",  # the empty chunk (time -inf) sorts first
        *["forearm_emg", "upper_emg"] * 4,  # pieces of at most 30 ms, in time order
        "cue",
        "gap",
        "forearm_emg",  # the first piece of a stream back from a gap is a barrier: before the older upper-arm chunk
        "upper_emg",
        "forearm_emg",
    ]
    np.testing.assert_array_equal(
        np.concatenate([m.data for m in listed[:9] if message_stream(m) == "forearm_emg"]), emg.data
    )
    assert sum(len(m) for m in listed if message_stream(m) == "upper_emg") == 105
    for i, m in enumerate(listed):
        assert paced.time(i) == message_time(m)
        assert bool(paced.carries_data[i]) == (i != 0)
        if isinstance(m, Chunk):
            np.testing.assert_array_equal(paced[i].t, m.t)
    # Messages that are not cut come back as themselves.
    assert paced[9] is cue and paced[10] is gap and paced[0] is empty and paced[12] is older
    assert len(paced) == len(listed) == 14 and len(paced[2:5]) == 3
