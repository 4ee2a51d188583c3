"""Offline block joining: same samples, same order per stream, blocks end at jumps and block_s;
a feed with gap events keeps its chunks."""

import numpy as np

from emgpilot.classifiers.evaluation import offline_blocks
from emgpilot.signals.streams import FOREARM_EMG, FOREARM_IMU, Chunk, GapEvent, message_time


def _chunks(info, t0: float, t1: float, chunk_s: float) -> list[Chunk]:
    t = np.arange(round(t0 * info.rate_hz), round(t1 * info.rate_hz)) / info.rate_hz
    x = np.arange(len(t) * info.n_channels, dtype=np.float64).reshape(len(t), info.n_channels) + t0
    k = max(1, round(chunk_s * info.rate_hz))
    return [Chunk(info, t[i : i + k], x[i : i + k]) for i in range(0, len(t), k)]


def _feed() -> list:
    feed = _chunks(FOREARM_EMG, 0.0, 25.0, 0.25) + _chunks(FOREARM_IMU, 0.0, 25.0, 0.25)
    feed += _chunks(FOREARM_EMG, 40.0, 45.0, 0.25)  # a data-time jump of 15 s
    feed.sort(key=message_time)
    return feed


def _stream(msgs: list, name: str) -> tuple[np.ndarray, np.ndarray]:
    cs = [m for m in msgs if isinstance(m, Chunk) and m.info.name == name]
    return np.concatenate([c.t for c in cs]), np.concatenate([c.data for c in cs])


def test_blocks_keep_every_sample_in_order_and_time_sorted():
    feed = _feed()
    blocks = offline_blocks(feed, 10.0)
    assert len(blocks) < len(feed)
    for name in (FOREARM_EMG.name, FOREARM_IMU.name):
        t_a, x_a = _stream(feed, name)
        t_b, x_b = _stream(blocks, name)
        np.testing.assert_array_equal(t_a, t_b)
        np.testing.assert_array_equal(x_a, x_b)
    times = [message_time(m) for m in blocks]
    assert times == sorted(times)


def test_blocks_end_at_block_size_and_jumps():
    blocks = offline_blocks(_feed(), 10.0)
    emg = [m for m in blocks if isinstance(m, Chunk) and m.info.name == FOREARM_EMG.name]
    assert len(emg) == 4  # 0-10, 10-20, 20-25, then 40-45 after the jump
    for c in emg:
        assert c.t_end - float(c.t[0]) <= 10.0
        assert np.all(np.diff(c.t) < 1.5 / FOREARM_EMG.rate_hz)  # no block spans the 15 s jump


def test_a_feed_with_gap_events_keeps_its_chunks():
    feed = _feed()
    feed.append(GapEvent(t=25.0, source_stream=FOREARM_EMG.name, t_resume=40.0))
    feed.sort(key=message_time)
    assert offline_blocks(feed, 10.0) == feed
