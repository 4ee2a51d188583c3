import numpy as np
import pytest

from emgpilot.build import PipelineConfig, build_pipeline
from emgpilot.classifiers.recognition import RecognitionConfig
from emgpilot.signals.pipeline import Pipeline, Stage
from emgpilot.signals.streams import FOREARM_EMG, FOREARM_IMU, UPPER_EMG, Chunk, CueEvent, GapEvent, StreamInfo


def _signals(seconds: float = 6.0, seed: int = 1) -> dict[str, Chunk]:
    rng = np.random.default_rng(seed)
    out = {}
    for info in (FOREARM_EMG, UPPER_EMG, FOREARM_IMU):
        n = int(seconds * info.rate_hz)
        t = np.arange(n) / info.rate_hz + 0.0004 * (info is FOREARM_IMU)
        x = rng.normal(0, 10, (n, info.n_channels)).astype(np.float32)
        if info is FOREARM_IMU:
            x[:, :4] = [1, 0, 0, 0]
        out[info.name] = Chunk(info, t, x)
    return out


def _run_in_chunks(chunk_sizes: dict[str, int]) -> dict[str, np.ndarray]:
    data = _signals()
    # Conditioning only: recognition has its own conformance test (tests/classifiers).
    cfg = PipelineConfig(recognition=RecognitionConfig(enabled=False))
    pipe = build_pipeline(list(data[k].info for k in data), cfg)
    msgs = []
    for name, chunk in data.items():
        size = chunk_sizes[name]
        msgs += [chunk.slice(i, i + size) for i in range(0, len(chunk), size)]
    msgs.sort(key=lambda c: c.t[0])
    out: dict[str, list] = {}
    for m in pipe.push_many(msgs) + pipe.finish():
        out.setdefault(m.stream, []).append(m)
    return {k: (np.concatenate([c.t for c in v]), np.concatenate([c.data for c in v])) for k, v in out.items()}


def test_conditioning_is_independent_of_chunk_size():
    ref = _run_in_chunks({"forearm_emg": 500, "upper_emg": 500, "forearm_imu": 500})
    assert set(ref) == {
        "forearm_emg.filtered",
        "forearm_emg.envelope",
        "upper_emg.filtered",
        "upper_emg.envelope",
        "forearm_imu.resampled",
    }
    for sizes in (
        {"forearm_emg": 1, "upper_emg": 1, "forearm_imu": 1},
        {"forearm_emg": 7, "upper_emg": 7, "forearm_imu": 7},
    ):
        got = _run_in_chunks(sizes)
        for name, (t, x) in ref.items():
            np.testing.assert_array_equal(got[name][0], t, err_msg=name)
            np.testing.assert_allclose(got[name][1], x, rtol=1e-5, atol=1e-4, err_msg=name)


def test_envelope_rate_and_grid():
    ref = _run_in_chunks({"forearm_emg": 33, "upper_emg": 101, "forearm_imu": 3})
    t_env = ref["forearm_emg.envelope"][0]
    np.testing.assert_allclose(np.diff(t_env), 0.01)
    t_imu = ref["forearm_imu.resampled"][0]
    np.testing.assert_allclose(t_imu * 50, np.round(t_imu * 50), atol=1e-9)


class _Fusion(Stage):
    """Emits one cue per input chunk once all inputs have passed its time."""

    name = "fusion"
    inputs = ("a", "b")
    outputs = (StreamInfo("fused", "event", 0.0),)

    def reset(self):
        self.pending: list[float] = []

    def process(self, msg):
        self.pending.append(msg.t_end)
        return []

    def advance(self, wm):
        ready = sorted(t for t in self.pending if t <= wm)
        self.pending = [t for t in self.pending if t > wm]
        return [CueEvent(t=t, label="x") for t in ready]


def test_watermark_waits_for_every_input_and_gaps_release_it():
    a = StreamInfo("a", "emg", 10.0, ("c",))
    b = StreamInfo("b", "emg", 10.0, ("c",))
    pipe = Pipeline([_Fusion()], sources=["a", "b"])
    out = pipe.push(Chunk(a, np.array([1.0]), np.zeros((1, 1))))
    assert out == []  # b has not reached t=1 yet
    out = pipe.push(Chunk(b, np.array([1.5]), np.zeros((1, 1))))
    assert [e.t for e in out] == [1.0]
    out = pipe.push(Chunk(a, np.array([2.0]), np.zeros((1, 1))))
    assert [e.t for e in out] == [1.5]  # b is complete to 1.5, a to 2.0
    out = pipe.push(GapEvent(t=1.6, source_stream="b", reason="lost"))
    assert [e.t for e in out] == [2.0]  # b lost: nothing waits for it any more


def test_duplicate_producers_rejected():
    class S(Stage):
        name = "s"
        outputs = (FOREARM_EMG,)

    with pytest.raises(ValueError, match="two producers"):
        Pipeline([S()], sources=["forearm_emg"])


def test_a_stage_whose_only_input_was_lost_resumes_with_its_data():
    a = StreamInfo("a", "emg", 10.0, ("c",))
    b = StreamInfo("b", "emg", 10.0, ("c",))

    class _Single(_Fusion):
        inputs = ("a",)

    pipe = Pipeline([_Single()], sources=["a", "b"])
    assert [e.t for e in pipe.push(Chunk(a, np.array([1.0]), np.zeros((1, 1))))] == [1.0]
    pipe.push(Chunk(b, np.array([1.0]), np.zeros((1, 1))))
    pipe.push(GapEvent(t=1.1, source_stream="a", reason="unplugged"))
    assert pipe.watermark("a") == 1.1  # absent: follows the other sources, never infinity
    pipe.push(Chunk(b, np.array([3.0]), np.zeros((1, 1))))
    assert pipe.watermark("a") == 3.0
    # Back: its data flows through the stage again (with infinity it would never advance).
    assert [e.t for e in pipe.push(Chunk(a, np.array([3.5]), np.zeros((1, 1))))] == [3.5]
    assert pipe.watermark("a") == 3.5
