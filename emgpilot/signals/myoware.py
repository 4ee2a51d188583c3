"""Upper-arm EMG from MyoWare sensors read by a microcontroller on a serial port.

Two wire protocols:

* **CSV lines** (what most sketches print): ``v0,v1\\r\\n``, optionally with a leading
  sequence number ``seq,v0,v1``. Handles a partial first line, ``\\r``/``\\n``/``\\r\\n``
  endings, corrupted lines (wrong field count, out-of-range values, non-ASCII), a line that
  lost its newline (merges with the next one: rejected, or split when its ``\\r`` survived).
* **Binary frames** (:data:`FRAME_SYNC`, sequence number, samples, checksum) for rates CSV
  cannot carry; the matching sketch is ``emgpilot/firmware/myoware_binary/myoware_binary.ino``.

Frame layout (little-endian)::

    A5 5A | u16 seq | u8 n_channels | u8 n_samples | n_samples x n_channels x u16 | u16 fletcher16

``seq`` is the index of the frame's first sample modulo 65536, so lost samples are counted
exactly; the Fletcher-16 checksum covers everything after the sync word.
"""

from __future__ import annotations

import dataclasses
import logging
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from emgpilot.signals.serialio import PortDevice, SampleClock
from emgpilot.signals.streams import UPPER_EMG, StreamInfo

log = logging.getLogger(__name__)

FRAME_SYNC = b"\xa5\x5a"
FRAME_HEADER = 6  # sync + seq + n_channels + n_samples
SEQ_MODULUS = 1 << 16
MAX_FRAME_SAMPLES = 64


def fletcher16(data: bytes) -> int:
    """Fletcher-16 checksum (two running sums modulo 255), as computed by the sketch."""
    s1 = s2 = 0
    for b in data:
        s1 = (s1 + b) % 255
        s2 = (s2 + s1) % 255
    return (s2 << 8) | s1


def encode_frame(seq: int, samples: np.ndarray) -> bytes:
    """Bytes of one binary frame; ``samples`` is ``[n_samples, n_channels]`` of ADC counts."""
    samples = np.asarray(samples)
    n_samples, n_channels = samples.shape
    if not 1 <= n_samples <= MAX_FRAME_SAMPLES:
        raise ValueError(f"a frame carries 1..{MAX_FRAME_SAMPLES} samples, not {n_samples}")
    body = struct.pack("<HBB", seq % SEQ_MODULUS, n_channels, n_samples) + samples.astype("<u2").tobytes()
    return FRAME_SYNC + body + struct.pack("<H", fletcher16(body))


def encode_csv_line(values: np.ndarray | list[int], seq: int | None = None) -> bytes:
    fields = [str(int(v)) for v in values]
    if seq is not None:
        fields.insert(0, str(seq % SEQ_MODULUS))
    return (",".join(fields) + "\r\n").encode("ascii")


@dataclass
class DecodeStats:
    samples: int = 0
    bad: int = 0  # corrupted lines or frames
    resyncs: int = 0  # times the reader lost and regained the framing
    garbage_bytes: int = 0
    merged: int = 0  # CSV lines that lost their newline but were recovered from a lone \r

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass
class Block:
    """Samples decoded from one read: values ``[n, channels]`` and, per sample, its sequence number (or -1)."""

    values: np.ndarray
    seq: np.ndarray


class CSVDecoder:
    """Line reader for ``[seq,]v0,...,v{n-1}`` records.

    The first line after opening is assumed partial and skipped. Lines longer than any valid
    record are dropped (a lost newline in a stream of garbage).
    """

    def __init__(self, n_channels: int = 2, adc_bits: int = 10, sequence: bool = False) -> None:
        self.n_channels = n_channels
        self.max_value = (1 << adc_bits) - 1
        self.sequence = sequence
        self.n_fields = n_channels + (1 if sequence else 0)
        self.max_line = self.n_fields * 7 + 4
        self.stats = DecodeStats()
        self._buf = bytearray()
        self._synced = False

    def reset(self) -> None:
        self._buf.clear()
        self._synced = False

    def feed(self, data: bytes) -> Block:
        buf = self._buf
        buf += data
        rows: list[list[int]] = []
        start = 0
        while True:
            end = buf.find(b"\n", start)
            if end < 0:
                break
            line = bytes(buf[start:end])
            start = end + 1
            if not self._synced:
                self._synced = True
                self.stats.resyncs += 1
                self.stats.garbage_bytes += len(line) + 1
                continue
            self._take_line(line, rows)
        del buf[:start]
        if len(buf) > self.max_line:
            # no newline where one must have been: drop and wait for the next line start
            self.stats.bad += 1
            self.stats.garbage_bytes += len(buf)
            buf.clear()
            self._synced = False
        return self._block(rows)

    def _take_line(self, line: bytes, rows: list[list[int]]) -> None:
        parts = [p for p in line.split(b"\r") if p]
        if len(parts) > 1:
            # a record lost its "\n" but kept its "\r": both halves may still be good
            self.stats.merged += 1
        elif not parts:
            return  # empty line
        for part in parts:
            row = self._parse(part)
            if row is None:
                self.stats.bad += 1
                self.stats.garbage_bytes += len(part)
            else:
                rows.append(row)

    def _parse(self, text: bytes) -> list[int] | None:
        fields = text.split(b",")
        if len(fields) != self.n_fields:
            return None
        row = []
        for f in fields:
            f = f.strip(b" ")
            if not f.isdigit() or len(f) > 6:  # isdigit on bytes: ASCII digits only
                return None
            row.append(int(f))
        if any(v > self.max_value for v in row[1 if self.sequence else 0 :]):
            return None
        if self.sequence and row[0] >= SEQ_MODULUS:
            return None
        return row

    def _block(self, rows: list[list[int]]) -> Block:
        self.stats.samples += len(rows)
        if not rows:
            return Block(np.empty((0, self.n_channels), np.float32), np.empty(0, np.int64))
        arr = np.asarray(rows, dtype=np.int64)
        if self.sequence:
            return Block(arr[:, 1:].astype(np.float32), arr[:, 0])
        return Block(arr.astype(np.float32), np.full(len(rows), -1, np.int64))


class BinaryDecoder:
    """Reader for binary frames: finds the sync word, checks size and checksum, resyncs on damage."""

    def __init__(self, n_channels: int = 2, adc_bits: int = 12) -> None:
        self.n_channels = n_channels
        self.max_value = (1 << adc_bits) - 1
        self.stats = DecodeStats()
        self._buf = bytearray()
        self._lost_sync = False

    def reset(self) -> None:
        self._buf.clear()
        self._lost_sync = False

    def _skip(self, n: int) -> None:
        self.stats.garbage_bytes += n
        if not self._lost_sync:
            self._lost_sync = True
            self.stats.resyncs += 1

    def feed(self, data: bytes) -> Block:
        buf = self._buf
        buf += data
        values: list[np.ndarray] = []
        seqs: list[np.ndarray] = []
        i = 0
        n = len(buf)
        while True:
            j = buf.find(FRAME_SYNC, i)
            if j < 0:
                # keep a trailing 0xA5 that may start the next sync word
                keep = 1 if n > i and buf[n - 1] == FRAME_SYNC[0] else 0
                if n - keep > i:
                    self._skip(n - keep - i)
                i = n - keep
                break
            if j > i:
                self._skip(j - i)
                i = j
            if n - i < FRAME_HEADER:
                break
            seq, nch, nsamp = struct.unpack_from("<HBB", buf, i + 2)
            if nch != self.n_channels or not 1 <= nsamp <= MAX_FRAME_SAMPLES:
                self.stats.bad += 1
                self._skip(1)
                i += 1
                continue
            size = FRAME_HEADER + 2 * nch * nsamp + 2
            if n - i < size:
                break
            body = bytes(buf[i + 2 : i + size - 2])
            (check,) = struct.unpack_from("<H", buf, i + size - 2)
            if check != fletcher16(body):
                self.stats.bad += 1
                self._skip(1)
                i += 1
                continue
            block = np.frombuffer(body, dtype="<u2", offset=4).reshape(nsamp, nch)
            if int(block.max()) > self.max_value:
                self.stats.bad += 1
                self._skip(size)
                i += size
                continue
            self._lost_sync = False
            values.append(block.astype(np.float32))
            seqs.append((seq + np.arange(nsamp, dtype=np.int64)) % SEQ_MODULUS)
            i += size
        del buf[:i]
        if not values:
            return Block(np.empty((0, self.n_channels), np.float32), np.empty(0, np.int64))
        v = np.concatenate(values)
        self.stats.samples += len(v)
        return Block(v, np.concatenate(seqs))


@dataclass
class MyoWareConfig:
    """The microcontroller's stream: protocol, channels, rate, ADC resolution, baud rate."""

    protocol: str = "csv"  # "csv" or "binary"
    channels: tuple[str, ...] = ("biceps", "triceps")
    rate_hz: float = 1000.0
    adc_bits: int = 10
    baudrate: int = 115200
    sequence: bool = False  # CSV only: lines start with a sequence number

    def __post_init__(self) -> None:
        if self.protocol not in ("csv", "binary"):
            raise ValueError(f"MyoWare protocol must be 'csv' or 'binary', not {self.protocol!r}")
        if not self.channels:
            raise ValueError("MyoWare needs at least one channel")
        if not 1 <= self.adc_bits <= 16:
            raise ValueError(f"ADC resolution of {self.adc_bits} bits is not supported (1..16)")
        if not self.rate_hz > 0:
            raise ValueError("MyoWare rate must be positive")
        self.channels = tuple(self.channels)

    @classmethod
    def for_channels(cls, n: int, **kw: Any) -> MyoWareConfig:
        names = ("biceps", "triceps") if n == 2 else tuple(f"ch{i}" for i in range(n))
        return cls(channels=names, **kw)

    def stream(self) -> StreamInfo:
        return dataclasses.replace(
            UPPER_EMG, rate_hz=float(self.rate_hz), channels=self.channels, units=("counts",) * len(self.channels)
        )

    def bytes_per_second(self) -> float:
        """Worst-case wire load in bytes/s (every value at its widest), for the baud-rate check."""
        n = len(self.channels)
        if self.protocol == "binary":
            per_frame = FRAME_HEADER + 2 + 2 * n * 10
            return per_frame * self.rate_hz / 10
        digits = len(str((1 << self.adc_bits) - 1))
        per_line = n * digits + (n - 1) + 2 + (6 if self.sequence else 0)
        return per_line * self.rate_hz


def make_decoder(cfg: MyoWareConfig) -> CSVDecoder | BinaryDecoder:
    if cfg.protocol == "binary":
        return BinaryDecoder(len(cfg.channels), cfg.adc_bits)
    return CSVDecoder(len(cfg.channels), cfg.adc_bits, cfg.sequence)


class MyoWareDevice(PortDevice):
    """MyoWare EMG through a microcontroller on ``port``, as the ``upper_emg`` stream.

    Sample times come from the sequence numbers (binary, or CSV with ``sequence``) or from
    counting records, at the nominal rate, drift-corrected against the host clock.
    """

    name = "myoware"
    model = "MyoWare via microcontroller"

    def __init__(self, port: str | None, config: MyoWareConfig | None = None, **kw: Any) -> None:
        self.config = config or MyoWareConfig()
        super().__init__(port, baudrate=self.config.baudrate, **kw)
        self._info = self.config.stream()
        self.decoder = make_decoder(self.config)
        self.sample_clock = SampleClock(self.config.rate_hz)
        self._next_seq: int | None = None
        # bytes_per_second() is the worst case (every value at its widest); 8N1 framing makes a
        # byte 10 bits on the wire. Up to 100 % the UART keeps up; only beyond it are samples lost.
        load = self.config.bytes_per_second() / (self.config.baudrate / 10)
        if load > 1.0:
            log.warning(
                "%s: %d channels at %.0f Hz (%s) need up to %.0f %% of %d baud; expect drops "
                "(use binary or a faster baud)",
                self.name,
                len(self.config.channels),
                self.config.rate_hz,
                self.config.protocol,
                100 * load,
                self.config.baudrate,
            )
        elif load > 0.9:
            log.info(
                "%s: the link is up to %.0f %% busy (%d baud): no margin", self.name, 100 * load, self.config.baudrate
            )

    def sensor_streams(self) -> list[StreamInfo]:
        return [self._info]

    def info(self) -> dict[str, Any]:
        cfg = self.config
        return {
            **super().info(),
            "protocol": cfg.protocol,
            "channels": list(cfg.channels),
            "rate_hz": cfg.rate_hz,
            "adc_bits": cfg.adc_bits,
            "sequence": cfg.sequence or cfg.protocol == "binary",
        }

    def stats(self) -> dict[str, Any]:
        return {
            **super().stats(),
            **self.decoder.stats.as_dict(),
            "dropped": self.sample_clock.dropped,
            "clock_resyncs": self.sample_clock.resyncs,
            "rate_estimate_hz": round(1.0 / self.sample_clock.period, 3),
        }

    def _on_gap(self) -> None:
        self.sample_clock.reanchor()
        self._next_seq = None

    def _session(self, ser: Any) -> None:
        self.decoder.reset()
        self._on_gap()
        cfg = self.config
        self._emit_status("connecting", f"{cfg.protocol}, {len(cfg.channels)} channels at {cfg.baudrate} baud")
        announced = warned = False
        opened = self.clock()
        while not self._stop.is_set():
            data, now = self._read_port(ser)
            if not data:
                continue
            block = self.decoder.feed(data)
            if not len(block.values):
                if not announced and not warned and now - opened > 3.0:
                    # bytes but no records: usually a wrong protocol, channel count or baud rate
                    warned = True
                    self._emit_status(
                        "error",
                        f"{self.port}: data arrives but no valid {cfg.protocol} records with "
                        f"{len(cfg.channels)} channels: check the protocol, channels, ADC bits and baud rate",
                    )
                continue
            if not announced:
                # the link counts as up once real records arrive (a resetting board sends garbage first)
                announced = True
                self._connected(f"{self.config.protocol} on {self.port}")
            self._stamp_and_emit(block, now)

    def _stamp_and_emit(self, block: Block, host_t: float) -> None:
        """Split at sequence jumps so each run of contiguous samples is stamped with its losses."""
        seq = block.seq
        if seq[0] < 0:
            self._emit_chunk(self._info, self.sample_clock.stamp(len(seq), host_t), block.values)
            return
        # positions where the sequence does not continue by one
        steps = (np.diff(seq) - 1) % SEQ_MODULUS
        cuts = np.flatnonzero(steps) + 1
        start = 0
        for stop in [*cuts.tolist(), len(seq)]:
            first = int(seq[start])
            lost = 0 if self._next_seq is None else (first - self._next_seq) % SEQ_MODULUS
            if lost > SEQ_MODULUS // 2:
                lost = 0  # a step backwards: the board restarted its counter
            n = stop - start
            # the last run arrived at host_t; earlier runs arrived at least as early
            self._emit_chunk(self._info, self.sample_clock.stamp(n, host_t, lost=lost), block.values[start:stop])
            self._next_seq = (int(seq[stop - 1]) + 1) % SEQ_MODULUS
            start = stop
