"""Serial-port plumbing shared by the acquisition drivers.

* :func:`list_ports` -- candidate ports and what they probably are (by USB VID:PID).
* :class:`HostClock` -- the host reference all devices of one session stamp against.
* :class:`SampleClock` -- data time from sample counting at the nominal rate, slowly
  drift-corrected against the host clock (a low-gain phase-locked loop), with drop counting.
* :class:`PortDevice` -- base of the serial drivers: one owner thread that opens the port,
  reads with timeouts, detects silence and loss, reconnects, and hands typed messages to
  :meth:`read` through a queue.
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from emgpilot.signals.streams import EVENT_STREAMS, Chunk, GapEvent, Message, StatusEvent, StreamInfo

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- port discovery

BLED112_VID_PID = (0x2458, 0x0001)

# (vid, pid or None for any) -> what the port probably is, and its kind
KNOWN_USB_IDS: dict[tuple[int, int | None], tuple[str, str]] = {
    (0x2458, 0x0001): ("BLED112 Bluetooth dongle (Myo armband)", "myo-dongle"),
    (0x2341, None): ("Arduino", "microcontroller"),
    (0x2A03, None): ("Arduino (arduino.org)", "microcontroller"),
    (0x1B4F, None): ("SparkFun board", "microcontroller"),
    (0x239A, None): ("Adafruit board", "microcontroller"),
    (0x16C0, 0x0483): ("Teensy (USB serial)", "microcontroller"),
    (0x16C0, None): ("Teensy / V-USB device", "microcontroller"),
    (0x2E8A, None): ("Raspberry Pi Pico (RP2040)", "microcontroller"),
    (0x303A, None): ("Espressif ESP32 (native USB)", "microcontroller"),
    (0x10C4, 0xEA60): ("CP210x USB-UART (ESP32/ESP8266 boards)", "microcontroller"),
    (0x1A86, 0x7523): ("CH340 USB-UART (Arduino clones, ESP boards)", "microcontroller"),
    (0x1A86, 0x55D4): ("CH9102 USB-UART (ESP32 boards)", "microcontroller"),
    (0x0403, 0x6001): ("FTDI USB-UART (Arduino Nano/older boards)", "microcontroller"),
    (0x0403, 0x6015): ("FTDI FT-X USB-UART", "microcontroller"),
}


@dataclass(frozen=True)
class PortCandidate:
    device: str
    kind: str  # "myo-dongle", "microcontroller" or "unknown"
    what: str
    vid: int | None = None
    pid: int | None = None
    description: str = ""
    serial_number: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "kind": self.kind,
            "what": self.what,
            "vid_pid": f"{self.vid:04X}:{self.pid:04X}" if self.vid is not None and self.pid is not None else None,
            "description": self.description,
            "serial_number": self.serial_number,
        }


def identify(vid: int | None, pid: int | None) -> tuple[str, str]:
    """``(what, kind)`` for a USB VID:PID."""
    if vid is None:
        return ("serial port (no USB id)", "unknown")
    for key in ((vid, pid), (vid, None)):
        if key in KNOWN_USB_IDS:
            return KNOWN_USB_IDS[key]
    return (f"USB serial device {vid:04X}:{(pid or 0):04X}", "unknown")


def list_ports(include_unknown: bool = True) -> list[PortCandidate]:
    """Serial ports on this machine, dongles first, then microcontrollers."""
    from serial.tools import list_ports as lp

    found = []
    for p in lp.comports():
        what, kind = identify(p.vid, p.pid)
        if kind == "unknown" and not include_unknown:
            continue
        found.append(PortCandidate(p.device, kind, what, p.vid, p.pid, p.description or "", p.serial_number))
    order = {"myo-dongle": 0, "microcontroller": 1, "unknown": 2}
    return sorted(found, key=lambda c: (order[c.kind], c.device))


def find_dongle() -> str | None:
    """Device path of the first BLED112 dongle, if any."""
    for c in list_ports(include_unknown=False):
        if c.kind == "myo-dongle":
            return c.device
    return None


# --------------------------------------------------------------------------- clocks


class HostClock:
    """Monotonic seconds since this clock was made; ``epoch`` is the wall time of its zero."""

    def __init__(self) -> None:
        self._origin = time.monotonic()
        self.epoch = time.time()

    def __call__(self) -> float:
        return time.monotonic() - self._origin


class SampleClock:
    """Data time of a regularly sampled stream.

    Sample ``k`` is at ``t0 + offset + k * period``. ``t0`` is anchored at the first batch
    (host arrival time minus the batch's duration); a second-order loop (proportional on the
    phase, integral on the period) nudges ``offset`` and ``period`` so the stamps follow the
    host clock on average: the device's crystal drifts, USB jitter averages out. With the
    default gains (per second of data) the loop is critically damped with a time constant of
    about 20 s: sample spacing stays at the nominal period unless the device really runs off
    it, and jitter or a stall moves stamps by a fraction of a millisecond per second. A host-time lag
    beyond ``resync_s`` means samples were lost without trace: the counter jumps over them and
    they are counted as dropped.

    Parameters
    ----------
    rate_hz : nominal sample rate.
    kp, ki : loop gains per second of data (phase 1/s, frequency 1/s^2).
    resync_s : lag (or lead) beyond which the clock re-anchors instead of slewing.
    max_rate_error : the estimated period stays within this fraction of nominal.
    """

    def __init__(
        self,
        rate_hz: float,
        kp: float = 0.05,
        ki: float = 0.000625,
        resync_s: float = 0.5,
        max_rate_error: float = 0.02,
    ) -> None:
        self.rate_hz = float(rate_hz)
        self.nominal_period = 1.0 / self.rate_hz
        self.kp = kp
        self.ki = ki
        self.resync_s = resync_s
        self.max_rate_error = max_rate_error
        self.dropped = 0
        self.resyncs = 0
        self.samples = 0
        self._t0: float | None = None
        self._count = 0
        self._offset = 0.0
        self._period = self.nominal_period
        self._last_t = -np.inf

    @property
    def period(self) -> float:
        return self._period

    @property
    def last_t(self) -> float:
        return float(self._last_t)

    def reanchor(self) -> None:
        """Forget the phase (after a gap); the next batch re-anchors at its arrival time."""
        self._t0 = None

    def stamp(self, n: int, host_t: float, lost: int = 0) -> np.ndarray:
        """Stamps of ``n`` samples whose last one arrived at ``host_t``, after ``lost`` known-missing ones."""
        if n <= 0:
            self._count += max(lost, 0)
            self.dropped += max(lost, 0)
            return np.empty(0, dtype=np.float64)
        if self._t0 is None:
            self._t0 = host_t - (n - 1) * self._period
            self._count = 0
            self._offset = 0.0
        else:
            if lost > 0:
                self._count += lost
                self.dropped += lost
            err = host_t - (self._t0 + self._offset + (self._count + n - 1) * self._period)
            if err > self.resync_s:
                # samples vanished without a sequence number to tell: skip the counter over them
                missing = round(err / self._period)
                self._count += missing
                self.dropped += missing
                self.resyncs += 1
            elif err < -self.resync_s:
                # the device ran far ahead of the host (clock jump, burst after a stall): re-anchor,
                # but never before the last stamp given out
                self._t0 = max(host_t - (n - 1) * self._period, self._last_t + self._period)
                self._count = 0
                self._offset = 0.0
                self.resyncs += 1
            else:
                dt = n * self.nominal_period  # data time this batch covers
                self._offset += min(1.0, self.kp * dt) * err
                ratio = self._period / self.nominal_period - 1.0 + self.ki * dt * err
                ratio = float(np.clip(ratio, -self.max_rate_error, self.max_rate_error))
                period = self.nominal_period * (1.0 + ratio)
                # keep the newest stamp where it is when the period changes
                self._offset += (self._count + n - 1) * (self._period - period)
                self._period = period
        idx = np.arange(self._count, self._count + n, dtype=np.float64)
        return self._finish(self._t0 + self._offset + idx * self._period, n)

    def _finish(self, t: np.ndarray, n: int) -> np.ndarray:
        # stamps never go backwards, whatever the loop does
        floor = self._last_t + 1e-3 * self._period
        if t[0] < floor:
            t = np.maximum(t, floor + np.arange(n) * self._period * 1e-3)
        self._count += n
        self.samples += n
        self._last_t = t[-1]
        return t


# --------------------------------------------------------------------------- port device base


def drain_queue(q: queue.Queue[Message], timeout: float | None) -> list[Message]:
    """Everything in ``q``, waiting up to ``timeout`` seconds for the first message."""
    out: list[Message] = []
    try:
        out.append(q.get(timeout=timeout) if timeout else q.get_nowait())
    except queue.Empty:
        return out
    while True:
        try:
            out.append(q.get_nowait())
        except queue.Empty:
            return out


class PortError(RuntimeError):
    """The protocol on an open port failed (no answer, refused); retry after a pause."""


class LinkLost(PortError):
    """The port is fine but the device behind it went away (a Bluetooth link dropped)."""


def open_serial(path: str, baudrate: int = 115200, timeout: float = 0.05) -> Any:
    """A pyserial port with read and write timeouts (never a blocking call without one)."""
    import serial

    return serial.Serial(port=path, baudrate=baudrate, timeout=timeout, write_timeout=0.5)


# errno values that waiting does not cure: the path exists but is not a usable serial port
_PERMANENT_OPEN_ERRORS = {
    errno.ENOTTY: "not a serial port",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}
_OPEN_HINTS = {
    errno.EACCES: " (on Linux: add yourself to the 'dialout' group)",
    errno.EBUSY: " (another program has it open?)",
}


def open_error_reason(e: BaseException) -> tuple[str, bool]:
    """Why a port did not open, in words, and whether retrying can help (False: the user must act).

    pyserial hides the errno of a failed configuration in its message ("Could not configure port:
    (25, 'Inappropriate ioctl for device')"), so it is dug out of the text when not set.
    """
    code = getattr(e, "errno", None)
    strerror = getattr(e, "strerror", None)
    if code is None:
        m = re.search(r"\((\d+), '([^']*)'\)|\[Errno (\d+)\] ([^:']*)", str(e))
        if m:
            code = int(m.group(1) or m.group(3))
            strerror = m.group(2) or m.group(4)
    if code is None:
        return str(e), False
    strerror = strerror or os.strerror(code)
    if code in _PERMANENT_OPEN_ERRORS:
        return f"{_PERMANENT_OPEN_ERRORS[code]} ({strerror}){_OPEN_HINTS.get(code, '')}", False
    if code == errno.ENOENT:
        return "no such port (unplugged?)", True
    return f"{strerror}{_OPEN_HINTS.get(code, '')}", True


class PortDevice:
    """Base of the serial drivers: owner thread, queue, silence/loss/reconnect handling.

    Subclasses implement :meth:`sensor_streams` and :meth:`_session` (speak the protocol on
    an open port, calling :meth:`_read_port` for bytes and :meth:`_emit_chunk` for data).
    ``_session`` returns only when :attr:`_stop` is set; port failures propagate as
    ``SerialException``/``OSError``; a protocol failure raises :class:`PortError`.
    """

    name = "port"
    model = "serial device"

    def __init__(
        self,
        port: str | None,
        baudrate: int = 115200,
        clock: Callable[[], float] | None = None,
        read_timeout: float = 0.05,
        silence_s: float = 0.5,
        reconnect_interval_s: float = 0.25,
        opener: Callable[[str, int, float], Any] = open_serial,
    ) -> None:
        self.port = port
        self.baudrate = int(baudrate)
        self.clock = clock or HostClock()
        self.read_timeout = read_timeout
        self.silence_s = silence_s
        self.reconnect_interval_s = reconnect_interval_s
        self._opener = opener
        self._queue: queue.Queue[Message] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ser: Any = None
        self._last_rx = 0.0
        self._silent = False
        self._gapped: set[str] = set()
        self._last_t: dict[str, float] = {}
        self._ever_connected = False
        self._status = "stopped"
        self.counters: dict[str, int] = {"lost": 0, "reconnects": 0, "silences": 0, "bytes": 0}
        self.errors: list[str] = []

    # ----------------------------------------------------------------- Device protocol
    def sensor_streams(self) -> list[StreamInfo]:
        raise NotImplementedError

    def streams(self) -> list[StreamInfo]:
        return [*self.sensor_streams(), EVENT_STREAMS["status"], EVENT_STREAMS["gap"]]

    def info(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"name": self.name, "model": self.model, "port": self.port, "baudrate": self.baudrate}
        epoch = getattr(self.clock, "epoch", None)
        if epoch is not None:
            facts["data_time_zero_unix"] = epoch  # wall time at data time 0 (host monotonic clock)
        return facts

    def stats(self) -> dict[str, Any]:
        """Counters for a status bar: link state, drops, resyncs, bad input."""
        return {"status": self._status, **self.counters}

    @property
    def status(self) -> str:
        return self._status

    @property
    def finished(self) -> bool:
        return False

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} already started")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"device-{self.name}", daemon=True)
        self._thread.start()

    def read(self, timeout: float | None = None) -> list[Message]:
        return drain_queue(self._queue, timeout)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            if self._thread.is_alive():
                log.error("%s: owner thread did not stop within 5 s", self.name)
            self._thread = None

    @property
    def queue_size(self) -> int:
        return self._queue.qsize()

    # ----------------------------------------------------------------- owner thread
    def _run(self) -> None:
        announced_missing = False
        while not self._stop.is_set():
            path = self._resolve_port()
            if path is None:
                if not announced_missing:
                    self._emit_status("searching", f"no {self.model} port found")
                    announced_missing = True
                self._stop.wait(self.reconnect_interval_s)
                continue
            try:
                self._ser = self._opener(path, self.baudrate, self.read_timeout)
            except (OSError, ValueError) as e:  # SerialException is an OSError
                if not announced_missing:
                    reason, transient = open_error_reason(e)
                    # keep retrying either way (a fixed permission or a re-plugged board recovers),
                    # but a path that is no serial port is the user's to fix: say so as an error
                    self._emit_status("searching" if transient else "error", f"cannot open {path}: {reason}")
                    announced_missing = True
                self._stop.wait(self.reconnect_interval_s)
                continue
            announced_missing = False
            try:
                # bytes that waited in the OS buffer while nobody listened are stale
                self._ser.reset_input_buffer()
                self._last_rx = self.clock()
                self._silent = False
                self._session(self._ser)
            except LinkLost as e:
                self._mark_lost("lost", f"{path}: {e}")
                self._stop.wait(self.reconnect_interval_s)
            except PortError as e:
                self.errors = [*self.errors[-9:], str(e)]
                self._mark_lost("error", f"{path}: {e}")
                self._stop.wait(max(self.reconnect_interval_s, 1.0))
            except OSError as e:
                self._mark_lost("lost", f"{path}: {e}")
                self._stop.wait(self.reconnect_interval_s)
            except Exception as e:  # a driver bug must not kill acquisition silently: report, retry
                log.exception("%s: unexpected failure on %s", self.name, path)
                self.errors = [*self.errors[-9:], repr(e)]
                self._mark_lost("error", f"{path}: internal error {e!r}")
                self._stop.wait(max(self.reconnect_interval_s, 1.0))
            finally:
                self._close_port()
        self._emit_status("stopped", "")

    def _resolve_port(self) -> str | None:
        return self.port

    def _close_port(self) -> None:
        ser, self._ser = self._ser, None
        if ser is not None:
            try:
                ser.close()
            except OSError as e:
                log.debug("%s: closing port: %s", self.name, e)

    def _session(self, ser: Any) -> None:
        raise NotImplementedError

    def _connected(self, detail: str = "") -> None:
        """The subclass has a working link: say so (first time or after a loss)."""
        if self._ever_connected:
            self.counters["reconnects"] += 1
            self._emit_status("reconnected", detail)
        else:
            self._ever_connected = True
            self._emit_status("connected", detail)
        self._on_gap()

    def _on_gap(self) -> None:
        """Hook: clocks re-anchor after any gap."""

    def _read_port(self, ser: Any) -> tuple[bytes, float]:
        """Bytes waiting (or what arrives within the read timeout) and the host time after reading.

        Raises on a vanished port; marks the device silent after ``silence_s`` without bytes.
        """
        data = ser.read(min(max(ser.in_waiting, 1), 1 << 15))
        if data and ser.in_waiting:  # read(1) woke on the first byte of a burst: take the rest too
            data += ser.read(min(ser.in_waiting, 1 << 15))
        now = self.clock()
        if data:
            self.counters["bytes"] += len(data)
            self._last_rx = now
        elif not self._silent and now - self._last_rx > self.silence_s:
            self._silent = True
            self.counters["silences"] += 1
            self._emit_status("silent", f"no data for {now - self._last_rx:.2f} s")
            self._emit_gaps("silent")
            self._on_gap()
        return bytes(data), now

    def _mark_lost(self, status: str, detail: str) -> None:
        if status == "lost":
            self.counters["lost"] += 1
        # info only: the status event carries it, and run/record log status changes as warnings
        log.info("%s: %s (%s)", self.name, status, detail)
        self._emit_status(status, detail)
        self._emit_gaps(status)
        self._on_gap()

    def _emit_status(self, status: str, detail: str) -> None:
        self._status = status
        self._queue.put(StatusEvent(t=self.clock(), device=self.name, status=status, detail=detail))

    def _emit_gaps(self, reason: str) -> None:
        for info in self.sensor_streams():
            if info.name in self._gapped:
                continue
            self._gapped.add(info.name)
            t = self._last_t.get(info.name, self.clock())
            self._queue.put(GapEvent(t=t, source_stream=info.name, reason=reason))

    def _emit_chunk(self, info: StreamInfo, t: np.ndarray, data: np.ndarray) -> None:
        if not len(t):
            return
        if info.name in self._gapped:
            self._gapped.discard(info.name)
        if self._silent:
            self._silent = False
            self._emit_status("resumed", "")
        self._last_t[info.name] = float(t[-1])
        self._queue.put(Chunk(info, t, np.asarray(data, dtype=np.float32)))


class CompositeDevice:
    """Several port devices (forearm Myo + upper-arm board) as one :class:`Device`.

    The children share one host clock (their data times line up) and one queue (``read``
    wakes on whichever speaks first); each keeps its own owner thread.
    """

    def __init__(self, children: list[PortDevice], name: str = "arm") -> None:
        if not children:
            raise ValueError("a composite device needs at least one child")
        self.name = name
        self.children = list(children)
        self._queue: queue.Queue[Message] = queue.Queue()
        clock = self.children[0].clock
        for child in self.children:
            child.clock = clock
            child._queue = self._queue

    def streams(self) -> list[StreamInfo]:
        sensors = [s for c in self.children for s in c.sensor_streams()]
        return [*sensors, EVENT_STREAMS["status"], EVENT_STREAMS["gap"]]

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "devices": [c.info() for c in self.children]}

    def stats(self) -> dict[str, Any]:
        return {c.name: c.stats() for c in self.children}

    @property
    def finished(self) -> bool:
        return False

    def start(self) -> None:
        for c in self.children:
            c.start()

    def read(self, timeout: float | None = None) -> list[Message]:
        return drain_queue(self._queue, timeout)

    def stop(self) -> None:
        for c in self.children:
            c.stop()
