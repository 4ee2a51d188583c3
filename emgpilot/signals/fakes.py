"""Hardware stand-ins on pseudo-terminals: a BLED112 dongle with a Myo behind it, and a
microcontroller streaming MyoWare samples (CSV lines or binary frames).

A pseudo-terminal does not throttle to any baud rate, so each fake paces itself in wall
time like the hardware it imitates (this is device pacing, not test timing). Each can be
unplugged and plugged back (the pty disappears and a new one appears under the same
symlink), fall silent, or have its bytes damaged, for fault tests and demos.

Data comes from a :class:`SignalSource`: the built-in :class:`SimpleArm` (no dependencies),
the project's synthetic arm when available (:func:`default_source`), or recorded arrays
(:class:`ArraySource`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import struct
import threading
import time
import tty
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from emgpilot.signals import bgapi
from emgpilot.signals.myo import (
    EMG_HANDLES,
    HANDLE_BATTERY,
    HANDLE_COMMAND,
    HANDLE_FIRMWARE,
    HANDLE_IMU,
    HANDLE_NAME,
    MYO_SERVICE_UUID,
)
from emgpilot.signals.myoware import MyoWareConfig, encode_csv_line, encode_frame

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- data sources


class SignalSource(Protocol):
    """Raw device counts, ``n`` samples at a time, continuing where the last call stopped."""

    def forearm_emg(self, n: int) -> np.ndarray:
        """``[n, 8]`` int8 Myo EMG counts."""
        ...

    def forearm_imu(self, n: int) -> np.ndarray:
        """``[n, 10]`` int16 Myo IMU counts (quaternion x16384, accel x2048, gyro x16)."""
        ...

    def upper_emg(self, n: int, n_channels: int, adc_bits: int) -> np.ndarray:
        """``[n, n_channels]`` ADC counts in ``[0, 2**adc_bits)``."""
        ...


class SimpleArm:
    """A cheap, deterministic arm: rest with bursts of contraction, a slowly rolling forearm.

    Good enough to exercise drivers and filters; the synthetic arm model is the realistic one.
    """

    def __init__(self, seed: int = 0, emg_rate: float = 200.0, imu_rate: float = 50.0, upper_rate: float = 1000.0):
        self._rng = np.random.default_rng(seed)
        self._n = {"emg": 0, "imu": 0, "upper": 0}
        self._rates = {"emg": emg_rate, "imu": imu_rate, "upper": upper_rate}
        self._gain = 1.0 + 0.5 * self._rng.random(8)

    def _times(self, key: str, n: int) -> np.ndarray:
        start = self._n[key]
        self._n[key] += n
        return (start + np.arange(n)) / self._rates[key]

    @staticmethod
    def _activity(t: np.ndarray, period: float, on: float, phase: float = 0.0) -> np.ndarray:
        return 0.08 + 0.92 * (((t + phase) % period) < on)

    def forearm_emg(self, n: int) -> np.ndarray:
        t = self._times("emg", n)
        amp = 20.0 * self._activity(t, 3.0, 1.0)[:, None] * self._gain
        x = self._rng.normal(size=(n, 8)) * amp
        return np.clip(np.round(x), -128, 127).astype(np.int8)

    def forearm_imu(self, n: int) -> np.ndarray:
        t = self._times("imu", n)
        angle = 0.6 * np.sin(2 * np.pi * 0.1 * t)
        rate = 0.6 * 2 * np.pi * 0.1 * np.cos(2 * np.pi * 0.1 * t)
        out = np.zeros((n, 10))
        out[:, 0] = np.cos(angle / 2) * 16384
        out[:, 1] = np.sin(angle / 2) * 16384
        out[:, 5] = np.sin(angle) * 2048
        out[:, 6] = np.cos(angle) * 2048
        out[:, 7] = np.degrees(rate) * 16
        out[:, 4:10] += self._rng.normal(scale=4.0, size=(n, 6))
        return np.clip(np.round(out), -32768, 32767).astype(np.int16)

    def upper_emg(self, n: int, n_channels: int, adc_bits: int) -> np.ndarray:
        t = self._times("upper", n)
        full = (1 << adc_bits) - 1
        amp = 0.05 * full * np.stack([self._activity(t, 4.0, 1.5, 0.5 * k) for k in range(n_channels)], axis=1)
        x = full / 2 + self._rng.normal(size=(n, n_channels)) * amp
        return np.clip(np.round(x), 0, full).astype(np.uint16)


class ArraySource:
    """Replays recorded raw counts (looping): EMG ``[n, 8]``, IMU ``[m, 10]``, upper-arm ``[k, c]``."""

    def __init__(self, emg: np.ndarray | None = None, imu: np.ndarray | None = None, upper: np.ndarray | None = None):
        self._arrays = {"emg": emg, "imu": imu, "upper": upper}
        self._pos = {"emg": 0, "imu": 0, "upper": 0}
        self._fallback = SimpleArm()

    def _take(self, key: str, n: int) -> np.ndarray | None:
        arr = self._arrays[key]
        if arr is None or not len(arr):
            return None
        idx = (self._pos[key] + np.arange(n)) % len(arr)
        self._pos[key] = (self._pos[key] + n) % len(arr)
        return arr[idx]

    def forearm_emg(self, n: int) -> np.ndarray:
        x = self._take("emg", n)
        return self._fallback.forearm_emg(n) if x is None else np.clip(np.round(x), -128, 127).astype(np.int8)

    def forearm_imu(self, n: int) -> np.ndarray:
        x = self._take("imu", n)
        return self._fallback.forearm_imu(n) if x is None else np.clip(np.round(x), -32768, 32767).astype(np.int16)

    def upper_emg(self, n: int, n_channels: int, adc_bits: int) -> np.ndarray:
        x = self._take("upper", n)
        if x is None or x.shape[1] != n_channels:
            return self._fallback.upper_emg(n, n_channels, adc_bits)
        return np.clip(np.round(x), 0, (1 << adc_bits) - 1).astype(np.uint16)

    @classmethod
    def from_recording(cls, path: str | Path) -> ArraySource:
        """Raw streams of an emgpilot recording (IMU converted back to device counts)."""
        from emgpilot.signals.recording import open_recording

        rec = open_recording(path)
        names = {s for s in rec.stream_stats()}
        emg = rec.chunk("forearm_emg").data if "forearm_emg" in names else None
        imu = rec.chunk("forearm_imu").data if "forearm_imu" in names else None
        if imu is not None:
            imu = imu * np.array([16384.0] * 4 + [2048.0] * 3 + [16.0] * 3)
        upper = rec.chunk("upper_emg").data if "upper_emg" in names else None
        return cls(emg, imu, upper)


class SyntheticSource:
    """Raw counts from the project's synthetic arm (realistic gestures, wearer, noise).

    The arm gives Myo EMG as int8 counts, MyoWare as 10-bit counts (2 channels at 1 kHz) and
    the IMU in physical units; this turns them into what the hardware puts on the wire. An
    upper-arm request the arm cannot serve (other channel count or rate) falls back to
    :class:`SimpleArm`.
    """

    def __init__(self, seed: int = 0, streams: tuple[str, ...] = ("forearm_emg", "forearm_imu", "upper_emg")) -> None:
        from emgpilot.signals.synthetic import SyntheticArm

        self._arm = SyntheticArm(seed=seed, speed=float("inf"), chunk_s=0.1, streams=streams)
        self._buf: dict[str, list[np.ndarray]] = {name: [] for name in streams}
        self._held = dict.fromkeys(streams, 0)
        self._fallback = SimpleArm(seed)

    def _take(self, name: str, n: int) -> np.ndarray:
        while self._held[name] < n:
            for m in self._arm.read(0):
                data = getattr(m, "data", None)
                if data is not None and m.info.name in self._buf:
                    self._buf[m.info.name].append(np.asarray(data))
                    self._held[m.info.name] += len(data)
        joined = np.concatenate(self._buf[name])
        self._buf[name] = [joined[n:]]
        self._held[name] = len(joined) - n
        return joined[:n]

    def forearm_emg(self, n: int) -> np.ndarray:
        return np.clip(np.round(self._take("forearm_emg", n)), -128, 127).astype(np.int8)

    def forearm_imu(self, n: int) -> np.ndarray:
        x = self._take("forearm_imu", n) * np.array([16384.0] * 4 + [2048.0] * 3 + [16.0] * 3)
        return np.clip(np.round(x), -32768, 32767).astype(np.int16)

    def upper_emg(self, n: int, n_channels: int, adc_bits: int) -> np.ndarray:
        if n_channels != 2 or "upper_emg" not in self._buf:
            return self._fallback.upper_emg(n, n_channels, adc_bits)
        x = self._take("upper_emg", n) * (((1 << adc_bits) - 1) / 1023.0)
        return np.clip(np.round(x), 0, (1 << adc_bits) - 1).astype(np.uint16)


def default_source(
    seed: int = 0, streams: tuple[str, ...] = ("forearm_emg", "forearm_imu", "upper_emg")
) -> SignalSource:
    """The project's synthetic arm when it is importable, else :class:`SimpleArm`."""
    try:
        return SyntheticSource(seed, streams)
    except ImportError as e:
        log.info("synthetic arm not available (%s): using the simple generator", e)
        return SimpleArm(seed)


# --------------------------------------------------------------------------- pseudo-terminal


class PtyPort:
    """A pseudo-terminal whose slave end a driver opens like a serial port.

    With ``link`` the driver opens a symlink that survives :meth:`unplug`/:meth:`plug`
    (a new pty each time, like a USB device re-enumerating). The fake keeps the slave end
    open itself so that writes never fail while no driver listens.
    """

    def __init__(self, link: str | Path | None = None) -> None:
        self.link = Path(link) if link else None
        self.master: int | None = None
        self.slave: int | None = None
        self.slave_name = ""

    @property
    def path(self) -> str:
        return str(self.link) if self.link else self.slave_name

    @property
    def plugged(self) -> bool:
        return self.master is not None

    def plug(self) -> None:
        if self.master is not None:
            return
        if self.link and os.path.lexists(self.link) and not self.link.is_symlink():
            # only a symlink (an earlier fake's link) may be replaced: a file there is someone's data
            raise OSError(
                errno.EEXIST, f"cannot create the link {self.link}: it exists and is not a symlink (left untouched)"
            )
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no line editing: a byte pipe like a USB CDC port
        os.set_blocking(master, False)
        self.master, self.slave = master, slave
        self.slave_name = os.ttyname(slave)
        if self.link:
            tmp = self.link.with_name(self.link.name + ".tmp")
            try:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
                tmp.symlink_to(self.slave_name)
                os.replace(tmp, self.link)
            except OSError as e:
                # no half-plugged port (open pty, no link); whatever stands at the link path is not ours
                for fd in (master, slave):
                    os.close(fd)
                self.master = self.slave = None
                raise OSError(e.errno, f"cannot create the link {self.link}: {e.strerror or e}") from e

    def unplug(self) -> None:
        if self.link:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()
        for fd in (self.master, self.slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master = self.slave = None

    def write(self, data: bytes) -> int:
        """Write without blocking; bytes that do not fit are lost (a UART overrun). Returns bytes written."""
        if self.master is None or not data:
            return 0
        try:
            return os.write(self.master, data)
        except BlockingIOError:
            return 0
        except OSError as e:
            if e.errno in (errno.EIO, errno.EBADF):
                return 0
            raise

    def read(self, timeout: float) -> bytes:
        if self.master is None:
            time.sleep(timeout)
            return b""
        try:
            ready, _, _ = select.select([self.master], [], [], max(timeout, 0.0))
            if ready:
                return os.read(self.master, 4096)
        except BlockingIOError:
            return b""
        except (OSError, ValueError) as e:  # closed under us by unplug()
            log.debug("pty read: %s", e)
        return b""


# --------------------------------------------------------------------------- fake base


class _FakeDevice:
    """Owner thread, pacing and fault injection shared by the fakes."""

    tick_s = 0.005

    streams_used: tuple[str, ...] = ()

    def __init__(self, link: str | Path | None = None, source: SignalSource | None = None, seed: int = 0) -> None:
        self.port = PtyPort(link)
        self.source = source or default_source(seed, self.streams_used)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._paused = False
        self._inject: deque[bytes] = deque()
        self._calls: deque[Callable[[], None]] = deque()  # fault actions run on the fake's thread
        self._mutations: deque[Callable[[bytes], bytes]] = deque()
        self.bytes_written = 0
        self.bytes_lost = 0

    @property
    def path(self) -> str:
        return self.port.path

    def start(self) -> str:
        """Open the pty and start streaming; returns the path a driver should open."""
        self.port.plug()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop_safely, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self.path

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None
        self.port.unplug()

    def __enter__(self) -> _FakeDevice:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # faults ------------------------------------------------------------
    def unplug(self) -> None:
        """The USB device disappears (its port path goes away)."""
        with self._lock:
            self.port.unplug()

    def plug(self) -> None:
        """It comes back (a new pty under the same link path)."""
        with self._lock:
            self.port.plug()
        self._calls.append(self._on_plug)  # a freshly powered device: reset on the fake's thread

    def pause(self) -> None:
        """Fall silent with the port still open."""
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    def inject(self, data: bytes) -> None:
        """Write these bytes (garbage, a truncated packet...) before the next regular data."""
        self._inject.append(bytes(data))

    def mutate_next(self, fn: Callable[[bytes], bytes]) -> None:
        """Damage the next regular write: ``fn(bytes) -> bytes`` (drop a newline, cut a frame...)."""
        self._mutations.append(fn)

    # internals ----------------------------------------------------------
    def _on_plug(self) -> None:
        pass

    def _write(self, data: bytes) -> None:
        while self._inject:
            self._raw_write(self._inject.popleft())
        if self._mutations and data:
            data = self._mutations.popleft()(data)
        self._raw_write(data)

    def _raw_write(self, data: bytes) -> None:
        if self._paused or not data:
            return
        with self._lock:
            n = self.port.write(data)
        self.bytes_written += n
        self.bytes_lost += len(data) - n

    def _loop_safely(self) -> None:
        try:
            self._loop()
        except Exception:  # a fake must never take a test down silently
            log.exception("%s crashed", type(self).__name__)

    def _loop(self) -> None:
        t0 = time.perf_counter()
        while not self._stop.is_set():
            if self.port.plugged:
                with self._lock:
                    incoming = self.port.read(self.tick_s)
            else:
                self._stop.wait(self.tick_s)
                incoming = b""
            if incoming:
                self._on_bytes(incoming)
            while self._calls:
                self._calls.popleft()()
            self._tick(time.perf_counter() - t0)

    def _on_bytes(self, data: bytes) -> None:
        pass

    def _tick(self, elapsed: float) -> None:
        raise NotImplementedError


# --------------------------------------------------------------------------- fake BLED112 + Myo

MYO_ADDRESS = bytes.fromhex("c29b8c52a4e0")  # little-endian on the wire: E0:A4:52:8C:9B:C2
OTHER_ADDRESS = bytes.fromhex("112233445566")


def myo_advert() -> bytes:
    """Advertising data of a Myo: flags, then the control-service UUID (AD type 0x06)."""
    return b"\x02\x01\x06" + bytes((17, 0x06)) + MYO_SERVICE_UUID


class FakeMyoDongle(_FakeDevice):
    """A BLED112 dongle with one Myo (firmware 1.5.1970) in range, speaking BGAPI on a pty.

    Streams raw EMG (two samples per notification, four rotating characteristics, 200 Hz)
    and IMU (50 Hz) once the client has enabled notifications and set the mode, like the
    armband. ``sent_emg`` keeps what was sent when ``keep_sent`` is true (for tests).
    """

    streams_used = ("forearm_emg", "forearm_imu")

    def __init__(
        self,
        link: str | Path | None = None,
        source: SignalSource | None = None,
        seed: int = 0,
        keep_sent: bool = False,
        battery: int = 87,
        name: str = "Fake Myo",
    ) -> None:
        super().__init__(link, source, seed)
        self.parser = bgapi.PacketParser("to_dongle")
        self.keep_sent = keep_sent
        self.battery = battery
        self.myo_name = name
        self.sent_emg: list[np.ndarray] = []
        self.emg_samples_sent = 0
        self.imu_samples_sent = 0
        self.commands_seen: deque[tuple[int, int]] = deque(maxlen=1000)
        self._skip_notifications = 0
        self._reset_link()

    def _reset_link(self) -> None:
        self.scanning = False
        self.connected = False
        self.cccd: set[int] = set()
        self.emg_mode = 0
        self.imu_mode = 0
        self.vibrations = 0
        self.never_sleep = False
        self._stream_t0: float | None = None
        self._emg_notes = 0
        self._imu_samples = 0
        self._next_advert = 0.0
        self._now = 0.0

    def _on_plug(self) -> None:
        self.parser.reset()
        self._reset_link()

    # faults
    def drop_notifications(self, n: int) -> None:
        """The radio loses the next ``n`` EMG notifications."""
        self._skip_notifications += n

    def ble_disconnect(self) -> None:
        """The armband goes out of range: connection-lost event, streaming stops."""
        self._calls.append(self._ble_disconnect)

    def _ble_disconnect(self) -> None:
        if self.connected:
            self._write(bgapi.event(bgapi.EVT_CONNECTION_DISCONNECTED, struct.pack("<BH", 0, 0x0208)))
        self._reset_link()

    @property
    def emg_stream_time(self) -> float:
        """Seconds of the fake's own clock since EMG streaming began (0 when not streaming)."""
        return 0.0 if self._stream_t0 is None else self._now - self._stream_t0

    @property
    def streaming_emg(self) -> bool:
        return self.connected and self.emg_mode in (2, 3) and all(h + 1 in self.cccd for h in EMG_HANDLES)

    @property
    def streaming_imu(self) -> bool:
        return self.connected and self.imu_mode == 1 and HANDLE_IMU + 1 in self.cccd

    # protocol
    def _on_bytes(self, data: bytes) -> None:
        for pkt in self.parser.feed(data):
            self.commands_seen.append(pkt.key)
            self._answer(pkt)

    def _respond(self, key: tuple[int, int], payload: bytes) -> None:
        self._write(bgapi.encode(False, key[0], key[1], payload))

    def _answer(self, pkt: bgapi.Packet) -> None:
        key, p = pkt.key, pkt.payload
        if key == bgapi.CMD_END_PROCEDURE:
            self._respond(key, struct.pack("<H", 0 if self.scanning else 0x0181))
            self.scanning = False
        elif key == bgapi.CMD_DISCONNECT:
            handle = p[0]
            if self.connected and handle == 0:
                self._respond(key, struct.pack("<BH", handle, 0))
                self._write(bgapi.event(bgapi.EVT_CONNECTION_DISCONNECTED, struct.pack("<BH", 0, 0x0216)))
                self._reset_link()
            else:
                self._respond(key, struct.pack("<BH", handle, 0x0186))  # not connected
        elif key == bgapi.CMD_DISCOVER:
            self._respond(key, struct.pack("<H", 0))
            self.scanning = True
            self._next_advert = self._now
        elif key == bgapi.CMD_CONNECT_DIRECT:
            address = bytes(p[0:6])
            self._respond(key, struct.pack("<HB", 0, 0))
            if address == MYO_ADDRESS:
                self.connected = True
                status = struct.pack("<BB6sBHHHB", 0, 0x05, address, p[6], 6, 64, 0, 0xFF)
                self._write(bgapi.event(bgapi.EVT_CONNECTION_STATUS, status))
        elif key == bgapi.CMD_READ_BY_HANDLE:
            conn, handle = struct.unpack("<BH", p)
            value = self._attribute(handle)
            ok = self.connected and conn == 0 and value is not None
            self._respond(key, struct.pack("<BH", conn, 0 if ok else 0x0401))
            if ok:
                self._write(
                    bgapi.event(
                        bgapi.EVT_ATTRIBUTE_VALUE,
                        struct.pack("<BHB", conn, handle, bgapi.ATT_READ) + bgapi.u8array(value),
                    )
                )
        elif key == bgapi.CMD_ATTRIBUTE_WRITE:
            conn, handle = struct.unpack_from("<BH", p)
            value = bytes(p[4 : 4 + p[3]])
            ok = self.connected and conn == 0
            self._respond(key, struct.pack("<BH", conn, 0 if ok else 0x0186))
            if ok:
                self._write_attr(handle, value)
                self._write(bgapi.event(bgapi.EVT_PROCEDURE_COMPLETED, struct.pack("<BHH", conn, 0, handle)))
        elif key == bgapi.CMD_SYSTEM_GET_CONNECTIONS:
            self._respond(key, b"\x03")
        elif key in (bgapi.CMD_GAP_SET_MODE, bgapi.CMD_SET_SCAN_PARAMETERS):
            self._respond(key, struct.pack("<H", 0))
        elif key == bgapi.CMD_SYSTEM_HELLO:
            self._respond(key, b"")

    def _attribute(self, handle: int) -> bytes | None:
        return {
            HANDLE_FIRMWARE: struct.pack("<4H", 1, 5, 1970, 2),
            HANDLE_NAME: self.myo_name.encode(),
            HANDLE_BATTERY: bytes((self.battery,)),
        }.get(handle)

    def _write_attr(self, handle: int, value: bytes) -> None:
        if handle == HANDLE_COMMAND and value:
            cmd = value[0]
            if cmd == 0x01 and len(value) >= 5:
                self.emg_mode, self.imu_mode = value[2], value[3]
            elif cmd == 0x03:
                self.vibrations += 1
            elif cmd == 0x09 and len(value) >= 3:
                self.never_sleep = bool(value[2])
        elif value[:1] in (b"\x01", b"\x02"):
            self.cccd.add(handle)
        else:
            self.cccd.discard(handle)

    def _tick(self, elapsed: float) -> None:
        self._now = elapsed
        if self.scanning and elapsed >= self._next_advert:
            # a neighbour's advert first, then the Myo, like a busy room
            for addr, adv, rssi in (
                (OTHER_ADDRESS, b"\x02\x01\x06\x03\x03\x0f\x18", -70),
                (MYO_ADDRESS, myo_advert(), -50),
            ):
                payload = struct.pack("<bB6sBB", rssi, 0, addr, 1, 0xFF) + bgapi.u8array(adv)
                self._write(bgapi.event(bgapi.EVT_SCAN_RESPONSE, payload))
            self._next_advert = elapsed + 0.05
        if not (self.streaming_emg or self.streaming_imu):
            self._stream_t0 = None
            return
        if self._stream_t0 is None:
            self._stream_t0 = elapsed
            self._emg_notes = self._imu_samples = 0
        t = elapsed - self._stream_t0
        out = bytearray()
        if self.streaming_emg:
            due = int(t * 100.0)  # notifications (two samples each) due by now
            for _ in range(max(0, due - self._emg_notes)):
                handle = EMG_HANDLES[self._emg_notes % 4]
                samples = self.source.forearm_emg(2)
                self._emg_notes += 1
                if self._skip_notifications:
                    self._skip_notifications -= 1
                    continue
                self.emg_samples_sent += 2
                if self.keep_sent:
                    self.sent_emg.append(samples)
                out += bgapi.event(
                    bgapi.EVT_ATTRIBUTE_VALUE,
                    struct.pack("<BHB", 0, handle, bgapi.ATT_NOTIFY) + bgapi.u8array(samples.tobytes()),
                )
        if self.streaming_imu:
            due = int(t * 50.0)
            n = max(0, due - self._imu_samples)
            if n:
                rows = self.source.forearm_imu(n).astype("<i2")
                self._imu_samples += n
                self.imu_samples_sent += n
                for row in rows:
                    out += bgapi.event(
                        bgapi.EVT_ATTRIBUTE_VALUE,
                        struct.pack("<BHB", 0, HANDLE_IMU, bgapi.ATT_NOTIFY) + bgapi.u8array(row.tobytes()),
                    )
        if out:
            self._write(bytes(out))


# --------------------------------------------------------------------------- fake microcontroller


class FakeMyoWareBoard(_FakeDevice):
    """A microcontroller sampling MyoWare sensors and printing CSV lines or binary frames.

    ``reset_garbage_s`` imitates an Uno/Nano resetting when the port opens: that long of
    bootloader noise before the first record.
    """

    streams_used = ("upper_emg",)

    def __init__(
        self,
        config: MyoWareConfig | None = None,
        link: str | Path | None = None,
        source: SignalSource | None = None,
        seed: int = 0,
        reset_garbage_s: float = 0.0,
        frame_samples: int = 10,
        keep_sent: bool = False,
    ) -> None:
        super().__init__(link, source, seed)
        self.config = config or MyoWareConfig()
        self.frame_samples = frame_samples
        self.reset_garbage_s = reset_garbage_s
        self.keep_sent = keep_sent
        self.sent: list[np.ndarray] = []
        self.samples_sent = 0
        self._samples_made = 0
        self._boot_until = reset_garbage_s
        self._garbage_rng = np.random.default_rng(seed + 1)
        self._now = 0.0

    @property
    def stream_time(self) -> float:
        """Seconds of the fake's own clock covered by the samples it made."""
        return self._now - getattr(self, "_t_base", self._now)

    def reset_board(self, garbage_s: float = 2.0) -> None:
        """The board reboots: ``garbage_s`` of noise, then records with a restarted counter."""
        self._calls.append(lambda: self._reset_board(garbage_s))

    def _reset_board(self, garbage_s: float) -> None:
        self._boot_until = self._now + garbage_s
        self._samples_made = 0

    def _on_plug(self) -> None:
        if self.reset_garbage_s:
            self._reset_board(self.reset_garbage_s)

    def _tick(self, elapsed: float) -> None:
        cfg = self.config
        if self._now == 0.0 or elapsed < self._boot_until:
            # while booting (and before the first tick) the clock of the sample counter is held
            self._t_base = elapsed - self._samples_made / cfg.rate_hz
        self._now = elapsed
        if elapsed < self._boot_until:
            noise = self._garbage_rng.integers(
                0, 256, size=max(1, int(cfg.baudrate / 10 * self.tick_s)), dtype=np.uint8
            )
            self._raw_write(noise.tobytes())
            return
        due = int((elapsed - self._t_base) * cfg.rate_hz)
        step = self.frame_samples if cfg.protocol == "binary" else 1
        n = (due - self._samples_made) // step * step
        if n <= 0:
            return
        values = self.source.upper_emg(n, len(cfg.channels), cfg.adc_bits)
        first = self._samples_made
        self._samples_made += n
        if self.keep_sent:
            self.sent.append(values)
        self.samples_sent += n
        if cfg.protocol == "binary":
            out = b"".join(encode_frame(first + k, values[k : k + step]) for k in range(0, n, step))
        else:
            seqs = range(first, first + n)
            out = b"".join(encode_csv_line(v, s if cfg.sequence else None) for v, s in zip(values, seqs, strict=True))
        self._write(out)


def make_fake(kind: str, link: str | Path | None = None, **kw: Any) -> _FakeDevice:
    """``myo``, ``myoware-csv`` or ``myoware-binary``."""
    if kind == "myo":
        return FakeMyoDongle(link, **kw)
    if kind in ("myoware-csv", "myoware-binary"):
        config = kw.pop("config", None) or MyoWareConfig(
            protocol=kind.split("-")[1], adc_bits=10 if kind == "myoware-csv" else 12
        )
        return FakeMyoWareBoard(config, link, **kw)
    raise ValueError(f"unknown fake device {kind!r} (myo, myoware-csv, myoware-binary)")


def collect(device: Any, until: Callable[[list[Any]], bool], limit_s: float = 10.0) -> list[Any]:
    """Read ``device`` until ``until(messages so far)`` holds or ``limit_s`` of wall time passed.

    The limit only stops a broken run from hanging; callers check what arrived, not how long it took.
    """
    got: list[Any] = []
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        got += device.read(0.05)
        if until(got):
            break
    return got
