"""Crash-safe session recordings (MCAP) and their validating reader.

File layout (see docs/readme/recording.md for why):

* An **unchunked MCAP** file: every record goes straight to disk, so a process killed with
  SIGKILL leaves a valid prefix. The writer flushes to the OS at least every
  ``flush_interval_s`` (0.5 s) of wall time, from ``write`` and from a small timer thread, so
  everything older than 1 s survives a crash.
* One MCAP ``Metadata`` record named ``emgpilot`` with the session metadata as JSON (app
  version, creation time, declared streams, device info and configuration from the caller).
* Regular streams (EMG, IMU, envelopes...) as ``ros2msg`` / CDR messages of a tiny
  ``emgpilot_msgs/msg/SampleBlock<Type>`` schema: ``t0``, ``rate_hz``, a time code (sample times
  implicit when they lie on the nominal grid, explicit ``float64[] t`` otherwise) and the samples
  ``data[]`` row-major. Foxglove and PlotJuggler decode it with no plug-in.
* Consecutive chunks of one stream are joined into blocks of up to ``max_block_s`` of data
  before they are written (never across an event or the return of a stream after a gap, so the
  order of data relative to events and gap recoveries is kept: see :func:`replay.coalesce`).
* Float samples that are exact integers (ADC counts) are stored as int8/int16 and restored to
  their original dtype when read: lossless, several times smaller.
* Events (cue, gesture, command, safety, status, gap) as JSON (:meth:`Event.to_json`).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import platform
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emgpilot import __version__
from emgpilot.signals.streams import EVENT_STREAMS, Chunk, Event, GapEvent, Message, StreamInfo

log = logging.getLogger(__name__)

FORMAT = "emgpilot-mcap/1"
METADATA_NAME = "emgpilot"
STREAM_METADATA_NAME = "emgpilot.stream"
MAGIC = b"\x89MCAP0\r\n"
CDR_LE = b"\x00\x01\x00\x00"

# MCAP opcodes (https://mcap.dev/spec)
_OP_HEADER, _OP_FOOTER, _OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE, _OP_CHUNK = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
_OP_METADATA, _OP_DATA_END = 0x0C, 0x0F
_KNOWN_OPS = set(range(0x01, 0x10))

# numpy dtype -> ros2msg element type
_ROS_TYPES: dict[str, str] = {
    "int8": "int8",
    "uint8": "uint8",
    "int16": "int16",
    "uint16": "uint16",
    "int32": "int32",
    "uint32": "uint32",
    "int64": "int64",
    "uint64": "uint64",
    "float32": "float32",
    "float64": "float64",
}

TIME_EXPLICIT, TIME_INDEX_GRID, TIME_OFFSET_GRID = 0, 1, 2

_SCHEMA_TEXT = """\
# emgpilot sample block: n_samples x n_channels samples of one stream, row-major.
# Stream name, channel names and units are in the channel metadata ("stream", JSON).
float64 t0        # data time of the first sample, seconds
float64 rate_hz   # nominal sample rate of the stream
uint32 time_code  # 0: t lists every sample time
                  # 1: t[i] = (round(t0*rate_hz) + i) / rate_hz;  2: t[i] = t0 + i / rate_hz
float64[] t
uint32 n_channels
{elem}[] data
"""

_EVENT_SCHEMA = json.dumps({"type": "object", "properties": {"type": {"type": "string"}, "t": {"type": "number"}}})


class RecordingError(ValueError):
    """A recording cannot be written, or a file is not a readable recording."""


# --------------------------------------------------------------------------- encoding


def _implicit_times(code: int, t0: float, rate_hz: float, n: int) -> np.ndarray:
    """Sample times of a block whose times lie on a grid (writer and reader share this)."""
    if code == TIME_INDEX_GRID:
        k0 = round(t0 * rate_hz)
        return (k0 + np.arange(n, dtype=np.int64)) / rate_hz
    if code == TIME_OFFSET_GRID:
        return t0 + np.arange(n, dtype=np.int64) / rate_hz
    raise ValueError(f"unknown time code {code}")


def _time_code(t: np.ndarray, rate_hz: float) -> int:
    if rate_hz > 0 and len(t) > 1:
        for code in (TIME_INDEX_GRID, TIME_OFFSET_GRID):
            if np.array_equal(_implicit_times(code, float(t[0]), rate_hz, len(t)), t):
                return code
    return TIME_EXPLICIT


def _storage_dtype(data: np.ndarray) -> np.dtype:
    """Smallest dtype that holds ``data`` exactly (integral floats become int8/int16)."""
    dt = data.dtype
    if dt.kind == "f" and data.size:
        lo, hi = float(data.min()), float(data.max())  # NaN propagates and fails the tests below
        if -128.0 <= lo and hi <= 32767.0 and np.array_equal(data, np.rint(data)):
            if not np.any(np.signbit(data) & (data == 0)):  # -0.0 would come back as +0.0
                return np.dtype(np.int8) if hi <= 127.0 else np.dtype(np.int16)
    if dt.kind == "b":
        return np.dtype(np.uint8)
    if dt.name not in _ROS_TYPES:
        raise RecordingError(f"cannot record samples of dtype {dt}")
    return dt.newbyteorder("<") if dt.byteorder == ">" else dt


def encode_block(t: np.ndarray, data: np.ndarray, rate_hz: float, storage: np.dtype) -> bytes:
    """CDR (little endian) bytes of one ``SampleBlock`` message."""
    code = _time_code(t, rate_hz)
    t_list = np.ascontiguousarray(t, dtype="<f8") if code == TIME_EXPLICIT else np.empty(0, "<f8")
    n, c = data.shape
    head = struct.pack("<ddII", float(t[0]) if n else 0.0, float(rate_hz), code, len(t_list))
    mid = struct.pack("<II", c, n * c)
    return b"".join((CDR_LE, head, t_list.tobytes(), mid, np.ascontiguousarray(data, dtype=storage).tobytes()))


def check_block(buf: bytes | memoryview, start: int, end: int, storage: np.dtype, n_channels: int) -> None:
    """Raise ValueError unless ``buf[start:end]`` has a consistent ``SampleBlock`` header for a
    stream of ``n_channels`` (what :func:`decode_block` relies on), without reading the samples."""
    if end - start < 36 or bytes(buf[start : start + 4]) != CDR_LE:
        raise ValueError("not a sample block")
    t0, rate, code, n_t = struct.unpack_from("<ddII", buf, start + 4)
    off = start + 28 + 8 * n_t
    if off + 8 > end:
        raise ValueError("sample block shorter than its time list")
    channels, n_values = struct.unpack_from("<II", buf, off)
    if channels != n_channels or off + 8 + n_values * storage.itemsize != end or n_values % channels:
        raise ValueError("sample block size does not match its header")
    if code != TIME_EXPLICIT and not (math.isfinite(t0) and math.isfinite(rate) and rate > 0):
        raise ValueError("sample block has no valid start time and rate")


def decode_block(buf: bytes | memoryview, start: int, end: int, storage: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """``(t, data)`` of a ``SampleBlock`` message stored in ``buf[start:end]`` (data as stored)."""
    t0, rate, code, n_t = struct.unpack_from("<ddII", buf, start + 4)
    off = start + 4 + 24
    if off + 8 * n_t + 8 > end:
        raise ValueError("sample block shorter than its time list")
    t = np.frombuffer(buf, "<f8", n_t, off)
    off += 8 * n_t
    n_channels, n_values = struct.unpack_from("<II", buf, off)
    off += 8
    if off + n_values * storage.itemsize != end or n_channels == 0 or n_values % n_channels:
        raise ValueError("sample block size does not match its header")
    data = np.frombuffer(buf, storage, n_values, off).reshape(-1, n_channels)
    n = data.shape[0]
    if code == TIME_EXPLICIT:
        if n_t != n:
            raise ValueError("sample block has a time list of the wrong length")
        t = t.copy()
    else:
        t = _implicit_times(code, t0, rate, n)
    return t, data


def _ns(t: float) -> int:
    return max(0, round(t * 1e9)) if np.isfinite(t) else 0


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)


# --------------------------------------------------------------------------- writer


class RecordingWriter:
    """Writes every stream of a session to one crash-safe MCAP file.

    Parameters
    ----------
    path : output file (parent folders are created).
    streams : streams declared up front (more may appear later, see :meth:`add_stream`).
    metadata : caller facts stored as JSON (device info, ``pipeline_config``, command...).
    flush_interval_s : longest wall time between flushes to the OS.
    max_block_s : longest block of one stream written as one message (data time).
    clock : wall clock for the flush interval (a fake clock in tests).
    background_flush : run a timer thread so data is flushed even when ``write`` is not called.
    overwrite : replace an existing file at ``path`` (False: :class:`RecordingError` if one exists).

    Arrays passed to :meth:`write` must not be modified afterwards (they are buffered until
    the next flush).
    """

    def __init__(
        self,
        path: str | Path,
        streams: list[StreamInfo],
        metadata: dict[str, Any] | None = None,
        *,
        flush_interval_s: float = 0.5,
        max_block_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        background_flush: bool = True,
        overwrite: bool = True,
    ) -> None:
        from mcap.writer import CompressionType, Writer

        self.path = Path(path)
        self.flush_interval_s = float(flush_interval_s)
        self.max_block_s = float(max_block_s)
        self._clock = clock
        self._lock = threading.RLock()
        self._closed = False
        self._error: BaseException | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # "xb" refuses an existing file atomically: a recording is never lost to a typo
            self._fh = open(self.path, "wb" if overwrite else "xb")  # closed in close()
        except FileExistsError as e:
            if not self.path.parent.is_dir():  # mkdir's complaint: a file stands where a folder must
                from emgpilot.config import os_error_reason

                raise RecordingError(f"cannot create recording {self.path}: {os_error_reason(self.path, e)}") from e
            raise RecordingError(f"recording {self.path} already exists") from e
        except OSError as e:
            from emgpilot.config import os_error_reason

            raise RecordingError(f"cannot create recording {self.path}: {os_error_reason(self.path, e)}") from e
        self._mcap = Writer(self._fh, use_chunking=False, compression=CompressionType.NONE, enable_data_crcs=True)
        self._streams: dict[str, StreamInfo] = {}
        self._schemas: dict[str, int] = {}
        self._channels: dict[tuple, int] = {}
        self._pending: dict[str, list[Chunk]] = {}
        self._pending_n: dict[str, int] = {}
        self._gapped: set[str] = set()
        self._seq = 0
        self._started = False
        try:
            self._mcap.start(profile="", library=f"emgpilot {__version__}")
            for info in streams:
                self._register_stream(info, announce=False)
            meta = {
                "format": FORMAT,
                "emgpilot_version": __version__,
                "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
                "host": {"python": platform.python_version(), "platform": platform.platform()},
                "streams": [s.to_dict() for s in streams],
                **(metadata or {}),
            }
            self._mcap.add_metadata(METADATA_NAME, {"json": json.dumps(meta, default=_json_default)})
            for info in streams:
                if info.is_event:
                    self._channel_for_event(info)
            self._fh.flush()
        except OSError as e:
            self._fh.close()
            raise RecordingError(f"cannot write recording {self.path}: {e.strerror or e}") from e
        self._started = True
        self._last_flush = self._clock()
        self._flushed = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if background_flush:
            self._thread = threading.Thread(target=self._flush_loop, name=f"recorder-{self.path.name}", daemon=True)
            self._thread.start()

    # ----------------------------------------------------------------- public API
    def add_stream(self, info: StreamInfo) -> None:
        """Declare a stream that was not known when the file was opened."""
        with self._lock:
            self._register_stream(info, announce=True)

    def write(self, msgs: list[Message]) -> None:
        """Record messages (chunks and events of any stream) in the order given."""
        with self._lock:
            self._check_open()
            try:
                for m in msgs:
                    if isinstance(m, Chunk):
                        self._add_chunk(m)
                    else:
                        self._add_event(m)
                if self._clock() - self._last_flush >= self.flush_interval_s:
                    self._flush_locked()
            except OSError as e:
                self._error = e
                raise RecordingError(f"cannot write recording {self.path}: {e.strerror or e}") from e

    def flush(self) -> None:
        """Write everything buffered and hand it to the OS (survives a killed process)."""
        with self._lock:
            self._check_open()
            self._flush_locked()

    def close(self) -> None:
        """Flush, write the MCAP summary and footer, close the file. Safe to call twice."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(5.0)
            self._thread = None
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._write_all_pending()
                self._mcap.finish()
                self._fh.flush()
            except OSError as e:
                raise RecordingError(f"cannot finish recording {self.path}: {e.strerror or e}") from e
            finally:
                self._fh.close()

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- internals
    def _check_open(self) -> None:
        if self._closed:
            raise RecordingError(f"recording {self.path} is closed")
        if self._error is not None:
            raise RecordingError(f"recording {self.path} failed earlier: {self._error}")

    def _register_stream(self, info: StreamInfo, announce: bool) -> None:
        known = self._streams.get(info.name)
        if known is not None:
            return
        self._streams[info.name] = info
        if announce:
            self._mcap.add_metadata(STREAM_METADATA_NAME, {"json": json.dumps(info.to_dict())})
            if info.is_event:
                self._channel_for_event(info)

    def _schema(self, elem: str) -> int:
        if elem not in self._schemas:
            name = f"emgpilot_msgs/msg/SampleBlock{elem.capitalize()}"
            self._schemas[elem] = self._mcap.register_schema(name, "ros2msg", _SCHEMA_TEXT.format(elem=elem).encode())
        return self._schemas[elem]

    def _channel_for_block(self, info: StreamInfo, orig: np.dtype, storage: np.dtype) -> int:
        key = (info, orig.str, storage.str)
        cid = self._channels.get(key)
        if cid is None:
            cid = self._mcap.register_channel(
                topic=info.name,
                message_encoding="cdr",
                schema_id=self._schema(_ROS_TYPES[storage.name]),
                metadata={"stream": json.dumps(info.to_dict()), "dtype": orig.str, "storage": storage.str},
            )
            self._channels[key] = cid
        return cid

    def _channel_for_event(self, info: StreamInfo) -> int:
        key = (info.name, "event")
        cid = self._channels.get(key)
        if cid is None:
            if "event" not in self._schemas:
                self._schemas["event"] = self._mcap.register_schema(
                    "emgpilot.Event", "jsonschema", _EVENT_SCHEMA.encode()
                )
            cid = self._mcap.register_channel(
                topic=info.name,
                message_encoding="json",
                schema_id=self._schemas["event"],
                metadata={"stream": json.dumps(info.to_dict())},
            )
            self._channels[key] = cid
        return cid

    def _add_chunk(self, chunk: Chunk) -> None:
        if len(chunk) == 0:
            return
        name = chunk.info.name
        if name not in self._streams:
            self._register_stream(chunk.info, announce=True)
        if name in self._gapped:
            # First data after a gap: the pipeline treats the stream as absent until now, so what
            # other streams delivered before this chunk must stay before it on disk.
            self._gapped.discard(name)
            self._write_all_pending()
        pending = self._pending.get(name)
        if pending and (pending[0].info != chunk.info or pending[0].data.dtype != chunk.data.dtype):
            self._write_block(name)
            pending = None
        if pending is None:
            self._pending[name] = pending = []
            self._pending_n[name] = 0
        pending.append(chunk)
        self._pending_n[name] += len(chunk)
        if self._pending_n[name] >= max(1.0, chunk.info.rate_hz * self.max_block_s):
            self._write_block(name)

    def _add_event(self, event: Event) -> None:
        # Chunks buffered so far were delivered before this event: keep that order on disk.
        self._write_all_pending()
        if isinstance(event, GapEvent):
            self._gapped.add(event.source_stream)
        info = self._streams.get(event.stream)
        if info is None:
            info = EVENT_STREAMS.get(event.stream, StreamInfo(event.stream, "event", 0.0))
            self._register_stream(info, announce=True)
        cid = self._channel_for_event(info)
        self._seq += 1
        t = _ns(float(event.t))
        self._mcap.add_message(cid, log_time=t, data=event.to_json().encode(), publish_time=t, sequence=self._seq)

    def _write_block(self, name: str) -> None:
        chunks = self._pending.pop(name, None)
        self._pending_n.pop(name, None)
        if not chunks:
            return
        info = chunks[0].info
        if len(chunks) == 1:
            t, data = chunks[0].t, chunks[0].data
        else:
            t = np.concatenate([c.t for c in chunks])
            data = np.concatenate([c.data for c in chunks])
        storage = _storage_dtype(data)
        cid = self._channel_for_block(info, data.dtype, storage)
        payload = encode_block(np.asarray(t, dtype=np.float64), data, info.rate_hz, storage)
        self._seq += 1
        self._mcap.add_message(
            cid, log_time=_ns(float(t[-1])), data=payload, publish_time=_ns(float(t[0])), sequence=self._seq
        )

    def _write_all_pending(self) -> None:
        for name in list(self._pending):
            self._write_block(name)

    def _flush_locked(self) -> None:
        self._write_all_pending()
        self._fh.flush()
        self._last_flush = self._clock()
        self._flushed.set()  # lets tests wait for a flush instead of sleeping

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_interval_s / 2):
            with self._lock:
                if self._closed or self._error is not None:
                    return
                if self._clock() - self._last_flush >= self.flush_interval_s:
                    try:
                        self._flush_locked()
                    except OSError as e:  # reported by the next write()
                        self._error = e
                        log.error("recording %s: flush failed: %s", self.path, e)
                        return


# --------------------------------------------------------------------------- reader


@dataclass
class _Channel:
    info: StreamInfo
    is_event: bool
    dtype: np.dtype | None = None
    storage: np.dtype | None = None


@dataclass
class StreamStats:
    """Samples (or events), messages and the data time covered by one stream of a file."""

    samples: int = 0
    messages: int = 0
    t_first: float = float("inf")
    t_last: float = float("-inf")

    @property
    def duration_s(self) -> float:
        return self.t_last - self.t_first if self.t_last >= self.t_first else 0.0


@dataclass
class Recording:
    """A validated recording. Messages are decoded on demand from the file's bytes."""

    path: Path
    metadata: dict[str, Any]
    streams: dict[str, StreamInfo]
    recovered: bool = False
    warnings: list[str] = field(default_factory=list)
    complete: bool = True
    _buf: bytes = field(default=b"", repr=False)
    _channels: dict[int, _Channel] = field(default_factory=dict, repr=False)
    _index: list[tuple[int, int, int]] = field(default_factory=list, repr=False)  # (channel id, start, end)

    # ----------------------------------------------------------------- access
    def __len__(self) -> int:
        return len(self._index)

    def messages(self, streams: set[str] | None = None) -> Iterator[Message]:
        """Every message (or those of ``streams``) in file order."""
        for cid, start, end in self._index:
            ch = self._channels[cid]
            if streams is not None and ch.info.name not in streams:
                continue
            yield self._decode(ch, start, end)

    def chunk(self, name: str) -> Chunk:
        """All samples of a regular stream joined into one chunk."""
        info = self._regular(name)
        parts = [m for m in self.messages({name}) if isinstance(m, Chunk)]
        if not parts:
            return Chunk(info, np.empty(0), np.empty((0, info.n_channels), dtype=np.float32))
        if len(parts) == 1:
            return parts[0]
        return Chunk(parts[0].info, np.concatenate([c.t for c in parts]), np.concatenate([c.data for c in parts]))

    def events(self, name: str) -> list[Event]:
        if name not in self.streams:
            raise KeyError(f"{self.path}: no stream {name!r} (streams: {sorted(self.streams)})")
        return [m for m in self.messages({name}) if isinstance(m, Event)]

    def stream_stats(self) -> dict[str, StreamStats]:
        """Per-stream sample/event counts and time span, read without decoding the samples."""
        stats = {name: StreamStats() for name in self.streams}
        for cid, start, end in self._index:
            ch = self._channels[cid]
            st = stats.setdefault(ch.info.name, StreamStats())
            st.messages += 1
            if ch.is_event:
                t = float(json.loads(bytes(self._buf[start:end]))["t"])
                st.samples += 1
                t0 = t1 = t
            else:
                n, t0, t1 = self._block_span(start, end, ch.storage)
                st.samples += n
            st.t_first = min(st.t_first, t0)
            st.t_last = max(st.t_last, t1)
        return stats

    @property
    def duration_s(self) -> float:
        stats = [s for s in self.stream_stats().values() if s.messages]
        if not stats:
            return 0.0
        return max(s.t_last for s in stats) - min(s.t_first for s in stats)

    # ----------------------------------------------------------------- internals
    def _regular(self, name: str) -> StreamInfo:
        info = self.streams.get(name)
        if info is None:
            raise KeyError(f"{self.path}: no stream {name!r} (streams: {sorted(self.streams)})")
        if info.is_event:
            raise KeyError(f"{self.path}: stream {name!r} is an event stream; use events()")
        return info

    def _block_span(self, start: int, end: int, storage: np.dtype) -> tuple[int, float, float]:
        t0, rate, code, n_t = struct.unpack_from("<ddII", self._buf, start + 4)
        off = start + 28 + 8 * n_t
        n_channels, n_values = struct.unpack_from("<II", self._buf, off)
        n = n_values // n_channels
        if code == TIME_EXPLICIT:
            (first,) = struct.unpack_from("<d", self._buf, start + 28)
            (last,) = struct.unpack_from("<d", self._buf, start + 28 + 8 * (n_t - 1))
            return n, first, last
        # Scalar versions of _implicit_times (the same IEEE operations, so the same values).
        if code == TIME_INDEX_GRID:
            k0 = round(t0 * rate)
            return n, float(k0) / rate, float(k0 + n - 1) / rate
        return n, t0, t0 + float(n - 1) / rate

    def _decode(self, ch: _Channel, start: int, end: int) -> Message:
        try:
            if ch.is_event:
                return Event.from_dict(json.loads(bytes(self._buf[start:end])))
            t, data = decode_block(self._buf, start, end, ch.storage)
            data = data.astype(ch.dtype) if data.dtype != ch.dtype else data.copy()
            return Chunk(ch.info, t, data)
        except (ValueError, TypeError, struct.error) as e:
            raise RecordingError(f"{self.path}: corrupt {ch.info.name!r} message at byte {start}: {e}") from e


def _read_str(buf: bytes, off: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<I", buf, off)
    off += 4
    if off + n > len(buf):
        raise ValueError("string runs past the end of the file")
    return bytes(buf[off : off + n]).decode("utf-8"), off + n


def _read_map(buf: bytes, off: int, end: int) -> tuple[dict[str, str], int]:
    (n,) = struct.unpack_from("<I", buf, off)
    off += 4
    stop = off + n
    if stop > end:
        raise ValueError("map runs past the end of its record")
    out = {}
    while off < stop:
        k, off = _read_str(buf, off)
        v, off = _read_str(buf, off)
        out[k] = v
    return out, off


def open_recording(path: str | Path, *, recover: bool = False) -> Recording:
    """Open and validate a recording.

    A file that simply ends early (the recorder was killed or the disk filled) is opened with
    ``recovered=True`` and a warning saying what was kept. A file that is damaged in the middle
    (unknown record, inconsistent sizes, checksum mismatch) raises :class:`RecordingError`
    saying how much of it is intact, unless ``recover`` is set, which keeps that part.
    Files that are not emgpilot recordings raise :class:`RecordingError`.
    """
    path = Path(path)
    try:
        buf = path.read_bytes()
    except OSError as e:
        raise RecordingError(f"cannot read recording {path}: {e.strerror or e}") from e
    size = len(buf)
    if size < len(MAGIC) or buf[: len(MAGIC)] != MAGIC:
        raise RecordingError(f"{path} is not a recording (no MCAP magic at the start); nothing recoverable")

    schemas: dict[int, tuple[str, str, bytes]] = {}
    channels: dict[int, _Channel] = {}
    index: list[tuple[int, int, int]] = []
    metadata: dict[str, Any] | None = None
    late_streams: list[StreamInfo] = []
    problem: str | None = None  # damage inside the file
    checksum_only = False  # the only sign of damage is the data checksum: nothing is known intact
    truncated_at: int | None = None
    data_end = footer = False
    pos = len(MAGIC)
    while pos < size:
        if pos + 9 > size:
            truncated_at = pos
            break
        op = buf[pos]
        (length,) = struct.unpack_from("<Q", buf, pos + 1)
        body, end = pos + 9, pos + 9 + length
        if op not in _KNOWN_OPS and op < 0x80:
            problem = f"unknown record type 0x{op:02x} at byte {pos}"
            break
        if end > size:
            truncated_at = pos
            break
        try:
            if op == _OP_SCHEMA:
                (sid,) = struct.unpack_from("<H", buf, body)
                name, off = _read_str(buf, body + 2)
                enc, off = _read_str(buf, off)
                schemas[sid] = (name, enc, b"")
            elif op == _OP_CHANNEL:
                cid, _sid = struct.unpack_from("<HH", buf, body)
                _topic, off = _read_str(buf, body + 4)
                enc, off = _read_str(buf, off)
                meta, off = _read_map(buf, off, end)
                info = StreamInfo.from_dict(json.loads(meta["stream"]))
                if enc == "json":
                    channels[cid] = _Channel(info, True)
                else:
                    channels[cid] = _Channel(info, False, np.dtype(meta["dtype"]), np.dtype(meta["storage"]))
            elif op == _OP_MESSAGE:
                (cid,) = struct.unpack_from("<H", buf, body)
                if cid not in channels:
                    raise ValueError(f"message on undeclared channel {cid}")
                ch = channels[cid]
                # A damaged header would otherwise be found (or crash) only when decoded, and the
                # summary of the intact part would count it.
                if ch.is_event:
                    json.loads(bytes(buf[body + 22 : end]))["t"]
                else:
                    check_block(buf, body + 22, end, ch.storage, ch.info.n_channels)
                index.append((cid, body + 22, end))
            elif op == _OP_METADATA:
                name, off = _read_str(buf, body)
                meta, off = _read_map(buf, off, end)
                if name == METADATA_NAME:
                    metadata = json.loads(meta["json"])
                elif name == STREAM_METADATA_NAME:
                    late_streams.append(StreamInfo.from_dict(json.loads(meta["json"])))
            elif op == _OP_CHUNK:
                raise ValueError("chunked MCAP (written by another tool) is not supported")
            elif op == _OP_DATA_END:
                (crc,) = struct.unpack_from("<I", buf, body)
                data_end = True
                if crc and zlib.crc32(memoryview(buf)[:pos]) != crc:
                    checksum_only = True
                    problem = (
                        "data checksum mismatch: bytes were changed after writing, somewhere in its data "
                        "(every record still reads, so which values are wrong cannot be told)"
                    )
            elif op == _OP_FOOTER:
                footer = True
        except (ValueError, KeyError, struct.error, UnicodeDecodeError) as e:
            problem = f"corrupt {_op_name(op)} record at byte {pos}: {e}"
            break
        if data_end:
            break
        pos = end

    if metadata is None:
        if problem is None and truncated_at is None and not index:
            what = "no emgpilot metadata (an MCAP file from another program?)"
        else:
            what = "it ends before its metadata (truncated or damaged at the start)"
        raise RecordingError(f"{path} is not a readable emgpilot recording: {what}; nothing recoverable")
    if data_end and not footer:
        footer = buf.endswith(MAGIC)
    streams: dict[str, StreamInfo] = {}
    for d in metadata.get("streams", []):
        info = StreamInfo.from_dict(d)
        streams[info.name] = info
    for info in late_streams:
        streams.setdefault(info.name, info)
    for ch in channels.values():
        streams.setdefault(ch.info.name, ch.info)
    rec = Recording(path, metadata, streams, _buf=buf, _channels=channels, _index=index)
    if problem is not None:
        if checksum_only:
            msg = f"{path} is damaged: {problem}; readable: {_kept_summary(rec)}"
            hint = "`emgpilot info/replay --recover` read it as it is, wrong values included"
        else:
            msg = f"{path} is damaged: {problem}; intact before it: {_kept_summary(rec)}"
            hint = "`emgpilot info/replay --recover` read that part"
        if not recover:
            raise RecordingError(f"{msg} ({hint})")
        rec.recovered, rec.complete = True, False
        rec.warnings.append(msg)
    elif not data_end:
        where = f"ends inside a record at byte {truncated_at} of {size}" if truncated_at is not None else "has no end"
        rec.recovered, rec.complete = True, False
        rec.warnings.append(f"{path} was not closed properly (it {where}); recovered {_kept_summary(rec)}")
    elif not footer:
        rec.warnings.append(f"{path}: summary section missing or cut; all data intact")
    for w in rec.warnings:
        log.warning("%s", w)
    return rec


def _op_name(op: int) -> str:
    return {
        _OP_SCHEMA: "schema",
        _OP_CHANNEL: "channel",
        _OP_MESSAGE: "message",
        _OP_METADATA: "metadata",
        _OP_CHUNK: "chunk",
        _OP_DATA_END: "data-end",
    }.get(op, f"0x{op:02x}")


def _kept_summary(rec: Recording) -> str:
    try:
        stats = rec.stream_stats()
    except (ValueError, KeyError, struct.error, ArithmeticError) as e:  # a message body is damaged too
        return f"{len(rec)} messages (undecodable: {e})"
    used = [s for s in stats.values() if s.messages]
    if not used:
        return "metadata only, no data"
    t0 = min(s.t_first for s in used)
    t1 = max(s.t_last for s in used)
    return f"{len(rec)} messages, data time {t0:.3f}-{t1:.3f} s"
