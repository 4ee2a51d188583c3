"""Shared conformance check every detector and the fusion stage pass.

clone (fresh state, same configuration), determinism, independence of the chunk size (1, 7,
500 give identical outputs), and a state_dict round trip in the middle of a stream.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import numpy as np
import pytest

from emgpilot.classifiers.detectors import (
    ActivationDetector,
    DetectorConfig,
    FistDetector,
    RotationDetector,
    StiffenDetector,
)
from emgpilot.classifiers.fusion import FusionConfig, GestureFusion
from emgpilot.classifiers.recognition import RecognitionConfig
from emgpilot.signals.pipeline import Pipeline, Stage
from emgpilot.signals.streams import Chunk, Event, Message, message_stream

from ._synth import FILTERED, IMU, UPPER_ENV, FakeWrist, cut, fake_calibration, forearm, imu, upper

ROT_CFG = RecognitionConfig().rotation

STAGES: dict[str, tuple[Callable[[], Stage], Callable[[], Chunk]]] = {
    "activation": (lambda: ActivationDetector(FILTERED, DetectorConfig()), forearm),
    "activation+wrist": (lambda: ActivationDetector(FILTERED, DetectorConfig(), FakeWrist()), forearm),
    "activation+wrist+calibration": (
        lambda: ActivationDetector(FILTERED, DetectorConfig(), FakeWrist(), calibration=fake_calibration()),
        forearm,
    ),
    "fist": (lambda: FistDetector(FILTERED, DetectorConfig()), forearm),
    "stiffen": (lambda: StiffenDetector(UPPER_ENV, DetectorConfig()), upper),
    "rotation": (lambda: RotationDetector(IMU, ROT_CFG), imu),
}


def _collect(msgs: list[Message]) -> dict[str, tuple[np.ndarray, np.ndarray] | list[dict]]:
    """Outputs per stream: chunks joined, events as dicts."""
    chunks: dict[str, list[Chunk]] = {}
    events: dict[str, list[dict]] = {}
    for m in msgs:
        if isinstance(m, Chunk):
            chunks.setdefault(m.stream, []).append(m)
        else:
            assert isinstance(m, Event)
            events.setdefault(message_stream(m), []).append(m.to_dict())
    out: dict = {k: (np.concatenate([c.t for c in v]), np.concatenate([c.data for c in v])) for k, v in chunks.items()}
    out.update(events)
    return out


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], tuple):
            np.testing.assert_array_equal(a[k][0], b[k][0], err_msg=k)
            np.testing.assert_array_equal(a[k][1], b[k][1], err_msg=k)
        else:
            assert a[k] == b[k], k


def _run(stage: Stage, chunks: list[Chunk]) -> dict:
    out: list[Message] = []
    for c in chunks:
        out.extend(stage.process(c))
    return _collect(out)


@pytest.mark.parametrize("name", sorted(STAGES))
def test_detector_conformance(name: str) -> None:
    make, signal = STAGES[name]
    data = signal()
    ref_stage = make()
    ref = _run(ref_stage, cut(data, 500))
    # The detector actually did something on this signal (a conformance check of a silent
    # detector would prove little).
    state = ref[ref_stage.outputs[0].name][1]
    assert state[:, 9].max() == 1.0 and state[:, 9].min() == 0.0

    # Determinism: a second instance gives identical outputs.
    _assert_same(ref, _run(make(), cut(data, 500)))
    # Chunk-size independence.
    for size in (1, 7):
        _assert_same(ref, _run(make(), cut(data, size)))
    # clone(): same configuration, no learnt state.
    twin = ref_stage.clone()
    assert twin is not ref_stage
    _assert_same(ref, _run(twin, cut(data, 500)))
    # State round trip in the middle of the stream.
    first = make()
    half = len(data) // 2 + 3
    out1 = _run(first, cut(data.slice(0, half), 13))
    resumed = make()
    resumed.load_state_dict(copy.deepcopy(first.state_dict()))
    out2 = _run(resumed, cut(data.slice(half, len(data)), 13))
    joined = {
        k: (np.concatenate([out1[k][0], out2[k][0]]), np.concatenate([out1[k][1], out2[k][1]])) for k in ref
    }
    _assert_same(ref, joined)


def _fusion_inputs() -> list[Chunk]:
    """Detector streams computed once from synthetic signals: the fusion's inputs."""
    streams: list[Chunk] = []
    for make, signal in (STAGES["activation+wrist"], STAGES["fist"], STAGES["stiffen"], STAGES["rotation"]):
        for m in make().process(signal()):
            assert isinstance(m, Chunk)
            streams.append(m)
    return streams


def _make_fusion() -> GestureFusion:
    return GestureFusion(
        FusionConfig(fist_level_episodes=2),  # the wearer's fist levels weigh in from the third fist
        ("activation", "fist", "stiffen", "rotation"),
        FakeWrist.classes,
        IMU.channels,
    )


def _fusion_run(streams: list[Chunk], size: int, split: float | None = None) -> dict:
    """Feed the fusion through a Pipeline (watermarks), chunks interleaved by time."""
    msgs = [c for s in streams for c in cut(s, size)]
    msgs.sort(key=lambda c: (c.t[0], c.stream))
    fusion = _make_fusion()
    pipe = Pipeline([fusion], sources=[s.stream for s in streams])
    out: list[Message] = []
    if split is None:
        out += pipe.push_many(msgs)
    else:
        head = [m for m in msgs if m.t[0] < split]
        tail = [m for m in msgs if m.t[0] >= split]
        out += pipe.push_many(head)
        state = copy.deepcopy(pipe.state_dict())
        fusion2 = _make_fusion()
        pipe = Pipeline([fusion2], sources=[s.stream for s in streams])
        pipe.load_state_dict(state)
        out += pipe.push_many(tail)
    out += pipe.finish()
    return _collect(out)


def test_fusion_conformance() -> None:
    streams = _fusion_inputs()
    ref = _fusion_run(streams, 500)
    gestures = [e["gesture"] for e in ref["gesture"]]
    assert {"stiffen", "rotate_cw", "rotate_ccw"} <= set(gestures)
    _assert_same(ref, _fusion_run(streams, 500))
    for size in (1, 7):
        _assert_same(ref, _fusion_run(streams, size))
    _assert_same(ref, _fusion_run(streams, 7, split=11.3))
    twin = _make_fusion().clone()
    assert isinstance(twin, GestureFusion)


def test_full_pipeline_is_independent_of_chunking():
    """The whole recognition (conditioning, detectors, wrist network, fusion) on the synthetic arm:
    the device's own chunks, 7-sample chunks and 10 s blocks give identical outputs."""
    from emgpilot.build import build_pipeline
    from emgpilot.signals.streams import concat_chunks, message_time
    from emgpilot.signals.synthetic import Schedule, SyntheticArm

    arm = SyntheticArm(seed=3, speed=float("inf"), duration_s=40.0, schedule=Schedule.random(seed=3))
    msgs: list[Message] = []
    arm.start()
    try:
        while not arm.finished:
            msgs.extend(arm.read(0.0))
        msgs.extend(arm.read(0.0))
    finally:
        arm.stop()
    sources = [s for s in arm.streams() if not s.is_event]
    names = {s.name for s in sources}
    chunks = [m for m in msgs if isinstance(m, Chunk) and m.stream in names]
    whole = {n: concat_chunks([c for c in chunks if c.stream == n]) for n in names}

    def rechunk(seconds: float | None, samples: int | None = None) -> list[Chunk]:
        out = []
        for c in whole.values():
            k = samples or int(seconds * c.info.rate_hz)
            out += cut(c, k)
        return sorted(out, key=message_time)

    def run(feed: list[Chunk]) -> dict:
        pipe = build_pipeline(sources)
        out: list[Message] = []
        for m in feed:
            out += pipe.push(m)
        out += pipe.finish()
        return _collect([m for m in out if message_stream(m) not in names])

    ref = run(sorted(chunks, key=message_time))
    assert ref["gesture"], "the synthetic wearer's gestures produced no event"
    _assert_same(ref, run(rechunk(10.0)))
    _assert_same(ref, run(rechunk(None, 7)))
