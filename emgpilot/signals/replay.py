"""Replay of a recording as a :class:`~emgpilot.signals.device.Device`.

Only the *source* streams are replayed (sensor streams and the events a device or the
experimenter produced: cue, gap, status); derived pipeline outputs are recomputed by the
pipeline and the recorded ones are available from :meth:`ReplayDevice.recorded_outputs` for
comparison.

At ``speed`` ``max`` consecutive chunks of each stream are joined into large blocks (never
across an event), because the pipeline's output does not depend on how its input was cut;
this is what makes an hour of data replay in seconds. At a finite speed the samples are
released in small pieces as their data time comes due, like hardware would.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np

from emgpilot.signals.recording import Recording, open_recording
from emgpilot.signals.streams import Chunk, Event, GapEvent, Message, StreamInfo, message_stream, message_time

log = logging.getLogger(__name__)

SOURCE_EVENT_STREAMS = frozenset({"cue", "gap", "status"})
"""Event streams made by devices or the experimenter, not by the pipeline."""

SENSOR_KINDS = frozenset({"emg", "imu"})


def source_stream_names(rec: Recording) -> list[str]:
    """Streams of ``rec`` that came from a device (not derived by the pipeline).

    The recording's metadata may list them (``"source_streams"``); otherwise sensor streams
    (kind ``emg``/``imu`` with no ``.`` in the name) and the events in
    :data:`SOURCE_EVENT_STREAMS` count as sources.
    """
    listed = rec.metadata.get("source_streams")
    if isinstance(listed, list) and listed:
        return [n for n in listed if n in rec.streams]
    names = []
    for name, info in rec.streams.items():
        if "." in name:
            continue
        if (info.kind in SENSOR_KINDS and not info.is_event) or name in SOURCE_EVENT_STREAMS:
            names.append(name)
    return names


def coalesce(
    msgs: Iterator[Message], max_samples: int = 1 << 16, barrier_events: Collection[str] | None = None
) -> Iterator[Message]:
    """Join consecutive chunks of each stream into large chunks, keeping events in place.

    Chunks buffered before an event are emitted before it, so the order of data relative to
    events (gaps, cues) is kept; only the interleaving of different streams' chunks changes,
    which the pipeline's watermarks make irrelevant -- except while a stream is absent after a
    :class:`GapEvent`: the pipeline then decides without it until its data returns, so the
    returning chunk is a barrier too (everything before it in file order stays before it).

    ``barrier_events``: event streams whose position matters (those a pipeline stage consumes;
    gaps always do). Other events are passed on at once, ahead of the chunks still being
    joined, which keeps blocks large. ``None``: every event is a barrier.
    """
    pending: dict[str, list[Chunk]] = {}
    counts: dict[str, int] = {}
    gapped: set[str] = set()

    def emit(name: str) -> Chunk:
        parts = pending.pop(name)
        counts.pop(name)
        if len(parts) == 1:
            return parts[0]
        return Chunk(parts[0].info, np.concatenate([c.t for c in parts]), np.concatenate([c.data for c in parts]))

    for m in msgs:
        if isinstance(m, Chunk):
            name = m.info.name
            if name in gapped:
                gapped.discard(name)
                for other in list(pending):
                    yield emit(other)
            if name in pending and pending[name][0].info != m.info:
                yield emit(name)
            pending.setdefault(name, []).append(m)
            counts[name] = counts.get(name, 0) + len(m)
            if counts[name] >= max_samples:
                yield emit(name)
        elif barrier_events is None or isinstance(m, GapEvent) or message_stream(m) in barrier_events:
            for name in list(pending):
                yield emit(name)
            if isinstance(m, GapEvent):
                gapped.add(m.source_stream)
            yield m
        else:
            yield m
    for name in list(pending):
        yield emit(name)


def _piece_bounds(m: Chunk, piece_s: float) -> list[int]:
    """Sample indices cutting ``m`` into pieces of at most ``piece_s`` data seconds (``[0, len]``: whole)."""
    if len(m) > 1 and m.t[-1] - m.t[0] > piece_s:
        edges = np.searchsorted(m.t, np.arange(m.t[0] + piece_s, m.t[-1], piece_s), side="right")
        bounds = [0, *edges.tolist(), len(m)]
        return [a for a, b in itertools.pairwise(bounds) if b > a] + [len(m)]
    return [0, len(m)]


class PacedMessages(Sequence[Message]):
    """Messages with every chunk cut into pieces of at most ``piece_s`` data seconds, interleaved by
    time, cut only when a piece is read.

    Events and the first chunk of a stream returning after a gap stay barriers (see
    :func:`coalesce`): pieces are only reordered between two barriers.

    An hour's recording is about half a million pieces: creating them all up front took seconds
    (the window froze while a recording opened) and memory. This keeps one (message, start, stop,
    time) entry per piece and slices when asked; :meth:`time` needs no slicing.
    """

    def __init__(self, msgs: Iterable[Message], piece_s: float) -> None:
        self._msgs: list[Message] = list(msgs)
        src: list[int] = []
        lo: list[int] = []
        hi: list[int] = []
        key: list[float] = []
        group: list[tuple[int, int, int, float]] = []
        gapped: set[str] = set()

        def add(entries: list[tuple[int, int, int, float]]) -> None:
            for i, a, b, t in entries:
                src.append(i)
                lo.append(a)
                hi.append(b)
                key.append(t)

        def close_group() -> None:
            group.sort(key=lambda e: e[3])  # stable: ties keep file order
            add(group)
            group.clear()

        for i, m in enumerate(self._msgs):
            if isinstance(m, Chunk):
                bounds = _piece_bounds(m, piece_s)
                t = m.t
                pieces = [(i, a, b, float(t[b - 1]) if b > a else -math.inf) for a, b in itertools.pairwise(bounds)]
                if m.info.name in gapped:
                    gapped.discard(m.info.name)
                    close_group()
                    add([pieces.pop(0)])
                group.extend(pieces)
            else:
                close_group()
                if isinstance(m, GapEvent):
                    gapped.add(m.source_stream)
                add([(i, -1, -1, message_time(m))])
        close_group()
        self._src = np.asarray(src, dtype=np.int64)
        self._lo = np.asarray(lo, dtype=np.int64)
        self._hi = np.asarray(hi, dtype=np.int64)
        self.times = np.asarray(key, dtype=np.float64)
        """``message_time`` of every entry."""
        self.carries_data = (self._lo < 0) | (self._hi > self._lo)
        """Entries that are events or non-empty chunk pieces."""

    def __len__(self) -> int:
        return len(self._src)

    def time(self, i: int) -> float:
        return float(self.times[i])

    def first_time(self) -> float:
        """Time of the first sample (or event) of the whole sequence; 0 when it holds none."""
        firsts = [_first_time(m) for m in self._msgs]
        known = [t for t in firsts if t is not None]
        return min(known) if known else 0.0

    @overload
    def __getitem__(self, i: int) -> Message: ...

    @overload
    def __getitem__(self, i: slice) -> list[Message]: ...

    def __getitem__(self, i: int | slice) -> Message | list[Message]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        m = self._msgs[int(self._src[i])]
        a, b = int(self._lo[i]), int(self._hi[i])
        if a < 0 or (a == 0 and b == len(m)):
            return m
        return m.slice(a, b)


class ReplayDevice:
    """Feeds a recording's source streams as a device would.

    Parameters
    ----------
    path_or_recording : a recording path or an opened :class:`Recording`.
    speed : data seconds per wall second; ``inf`` replays as fast as possible.
    streams : source streams to replay (default: every source stream of the file).
    max_block_samples : at ``speed`` inf, the largest chunk handed out.
    barrier_events : at ``speed`` inf, event streams that must keep their exact place between
        chunks (see :func:`coalesce`); set it to the event streams the pipeline consumes.
        ``None`` (default) keeps every event in place.
    piece_s : at finite speed, the longest chunk piece released at once (data seconds).
    clock, sleep : wall clock and sleep function (replaceable in tests).
    """

    name = "replay"

    def __init__(
        self,
        path_or_recording: str | Path | Recording,
        speed: float = math.inf,
        streams: list[str] | None = None,
        *,
        max_block_samples: int = 4096,
        barrier_events: Collection[str] | None = None,
        piece_s: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if isinstance(path_or_recording, Recording):
            self.recording = path_or_recording
        else:
            self.recording = open_recording(path_or_recording)
        if not speed > 0:
            raise ValueError(f"replay speed must be positive, not {speed}")
        self.speed = float(speed)
        available = source_stream_names(self.recording)
        if streams is None:
            chosen = available
        else:
            unknown = [s for s in streams if s not in self.recording.streams]
            if unknown:
                raise ValueError(
                    f"{self.recording.path}: no stream(s) {unknown}; it has {sorted(self.recording.streams)}"
                )
            chosen = list(streams)
        self._names = chosen
        self.max_block_samples = int(max_block_samples)
        self.barrier_events = None if barrier_events is None else set(barrier_events)
        self.piece_s = float(piece_s)
        self._clock = clock
        self._sleep = sleep
        self._queue = PacedMessages((), self.piece_s)
        self._pos = 0
        self._iter: Iterator[Message] | None = None
        self._finished = False
        self._started = False
        self._wall0 = 0.0
        self._t0 = 0.0

    # ----------------------------------------------------------------- Device protocol
    def streams(self) -> list[StreamInfo]:
        return [self.recording.streams[n] for n in self._names]

    def info(self) -> dict[str, Any]:
        return {
            "type": "replay",
            "path": str(self.recording.path),
            "speed": "max" if math.isinf(self.speed) else self.speed,
            "streams": list(self._names),
            "recorded_device": self.recording.metadata.get("device"),
        }

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        src = self.recording.messages(set(self._names))
        if math.isinf(self.speed):
            self._iter = coalesce(src, self.max_block_samples, self.barrier_events)
        else:
            self._queue = PacedMessages(src, self.piece_s)
            self._t0 = self._queue.first_time()
            self._wall0 = self._clock()

    def read(self, timeout: float | None = None) -> list[Message]:
        if not self._started:
            self.start()
        if self._finished:
            return []
        if self._iter is not None:
            return self._read_fast()
        return self._read_paced(timeout)

    @property
    def finished(self) -> bool:
        return self._finished

    def stop(self) -> None:
        self._iter = None
        self._queue = PacedMessages((), self.piece_s)
        self._finished = True

    # ----------------------------------------------------------------- extras
    def recorded_outputs(self) -> list[Message]:
        """The derived messages the recording holds (pipeline outputs), in file order."""
        derived = set(self.recording.streams) - set(source_stream_names(self.recording))
        return list(self.recording.messages(derived))

    # ----------------------------------------------------------------- internals
    def _read_fast(self) -> list[Message]:
        out: list[Message] = []
        samples = 0
        assert self._iter is not None
        for m in self._iter:
            out.append(m)
            samples += len(m) if isinstance(m, Chunk) else 0
            if samples >= self.max_block_samples:
                return out
        self._finished = True
        return out

    def _read_paced(self, timeout: float | None) -> list[Message]:
        if self._pos >= len(self._queue):
            self._finished = True
            return []
        due_t = self._queue.time(self._pos)
        wait = self._wall0 + (due_t - self._t0) / self.speed - self._clock()
        if wait > 0:
            if timeout is not None and wait > timeout:
                self._sleep(max(0.0, timeout))
                return []
            self._sleep(wait)
        now_t = self._t0 + (self._clock() - self._wall0) * self.speed
        out: list[Message] = []
        while self._pos < len(self._queue) and self._queue.time(self._pos) <= now_t:
            out.append(self._queue[self._pos])
            self._pos += 1
        if not out:  # clock did not move (fake clock): release the message we waited for
            out.append(self._queue[self._pos])
            self._pos += 1
        if self._pos >= len(self._queue):
            self._finished = True
        return out


def _first_time(m: Message) -> float | None:
    if isinstance(m, Chunk):
        return float(m.t[0]) if len(m) else None
    if isinstance(m, Event):
        return float(m.t)
    return None


def compare_outputs(recorded: list[Message], recomputed: list[Message]) -> dict[str, Any]:
    """Compare recomputed derived messages with the recorded ones, stream by stream.

    Chunk boundaries may differ (replay joins chunks), so regular streams are compared sample by
    sample after joining; events are compared as multisets of their JSON. Returns per-stream
    counts (``match``, ``differ``, ``missing``: recorded but not recomputed, ``extra``) and totals.
    """
    rec_by, new_by = _group(recorded), _group(recomputed)
    per_stream: dict[str, dict[str, Any]] = {}
    totals = {"match": 0, "differ": 0, "missing": 0, "extra": 0}
    for name in sorted(rec_by):
        a, b = rec_by[name], new_by.get(name, [])
        if any(isinstance(m, Chunk) for m in a):
            res = _compare_chunks([m for m in a if isinstance(m, Chunk)], [m for m in b if isinstance(m, Chunk)])
        else:
            res = _compare_events([m for m in a if isinstance(m, Event)], [m for m in b if isinstance(m, Event)])
        per_stream[name] = res
        for k in totals:
            totals[k] += res[k]
    return {
        **totals,
        "identical": totals["differ"] == 0 and totals["missing"] == 0 and totals["extra"] == 0,
        "streams": per_stream,
        "not_recorded": sorted(set(new_by) - set(rec_by)),
    }


def _group(msgs: list[Message]) -> dict[str, list[Message]]:
    out: dict[str, list[Message]] = {}
    for m in msgs:
        out.setdefault(message_stream(m), []).append(m)
    return out


def _compare_chunks(a: list[Chunk], b: list[Chunk]) -> dict[str, Any]:
    def join(cs: list[Chunk]) -> tuple[np.ndarray, np.ndarray]:
        if not cs:
            return np.empty(0), np.empty((0, 0))
        return np.concatenate([c.t for c in cs]), np.concatenate([c.data for c in cs]).astype(np.float64)

    ta, xa = join(a)
    tb, xb = join(b)
    n = min(len(ta), len(tb))
    res: dict[str, Any] = {"unit": "samples", "recorded": len(ta), "recomputed": len(tb)}
    if n and xa.shape[1] == xb.shape[1]:
        same_t = ta[:n] == tb[:n]
        same_x = np.all((xa[:n] == xb[:n]) | (np.isnan(xa[:n]) & np.isnan(xb[:n])), axis=1)
        match = int(np.count_nonzero(same_t & same_x))
        with np.errstate(invalid="ignore"):  # inf - inf where both are inf
            diff = np.abs(xa[:n] - xb[:n])
        diff[same_x] = 0.0
        res["max_abs_diff"] = float(np.nanmax(diff, initial=0.0)) if not np.all(np.isnan(diff)) else math.nan
    else:
        match = 0
    res.update(match=match, differ=n - match, missing=len(ta) - n, extra=len(tb) - n)
    return res


def _compare_events(a: list[Event], b: list[Event]) -> dict[str, Any]:
    from collections import Counter

    ca, cb = Counter(e.to_json() for e in a), Counter(e.to_json() for e in b)
    match = sum((ca & cb).values())
    only_a, only_b = len(a) - match, len(b) - match
    differ = min(only_a, only_b)
    return {
        "unit": "events",
        "recorded": len(a),
        "recomputed": len(b),
        "match": match,
        "differ": differ,
        "missing": only_a - differ,
        "extra": only_b - differ,
    }
