"""Myo armband through a BLED112 dongle: BGAPI over pyserial, with timeouts everywhere.

Connect sequence (see the project's protocol notes): end any scan, drop stale connections,
scan for the Myo's control-service UUID (or a given address), connect, read firmware, name
and battery, enable IMU and the four EMG characteristics, set raw EMG (200 Hz) + IMU (50 Hz),
never sleep, vibrate once. Then EMG and IMU notifications become ``forearm_emg`` and
``forearm_imu`` chunks.

Each EMG notification holds two consecutive samples and the four EMG characteristics rotate,
so a skipped characteristic means lost notifications (counted; the sample counter jumps
over them). Longer losses show up against the host clock (:class:`SampleClock`).
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from typing import Any

import numpy as np

from emgpilot.signals import bgapi
from emgpilot.signals.bgapi import Packet
from emgpilot.signals.serialio import LinkLost, PortDevice, PortError, SampleClock, find_dongle
from emgpilot.signals.streams import FOREARM_EMG, FOREARM_IMU, StreamInfo

log = logging.getLogger(__name__)

# GATT handles of the Myo (firmware 1.x)
HANDLE_NAME = 0x03
HANDLE_BATTERY = 0x11
HANDLE_FIRMWARE = 0x17
HANDLE_COMMAND = 0x19
HANDLE_IMU = 0x1C
EMG_HANDLES = (0x2B, 0x2E, 0x31, 0x34)
CCCD_NOTIFY = b"\x01\x00"

# Control service d5060001-a904-deb9-4748-2c7f4a124842, as it appears (little-endian) in adverts
MYO_SERVICE_UUID = bytes.fromhex("d5060001a904deb947482c7f4a124842")[::-1]

EMG_MODE_FILTERED = 0x02
EMG_MODE_RAW = 0x03

QUAT_SCALE = 16384.0
ACCEL_SCALE = 2048.0  # counts per g
GYRO_SCALE = 16.0  # counts per deg/s
_IMU_SCALE = np.array([QUAT_SCALE] * 4 + [ACCEL_SCALE] * 3 + [GYRO_SCALE] * 3, dtype=np.float32)


def set_mode_command(emg_mode: int = EMG_MODE_RAW, imu_mode: int = 1, classifier: int = 0) -> bytes:
    return bytes((0x01, 0x03, emg_mode, imu_mode, classifier))


VIBRATE_SHORT = b"\x03\x01\x01"
NEVER_SLEEP = b"\x09\x01\x01"


def decode_emg(value: bytes) -> np.ndarray:
    """Two 8-channel int8 samples of one EMG notification, as ``[2, 8]`` float32 counts."""
    if len(value) != 16:
        raise ValueError(f"EMG notification of {len(value)} bytes (expected 16)")
    return np.frombuffer(value, dtype=np.int8).reshape(2, 8).astype(np.float32)


def decode_imu(value: bytes) -> np.ndarray:
    """One IMU sample: quaternion (w, x, y, z), accel (g), gyro (deg/s) -- ``[10]`` float32."""
    if len(value) != 20:
        raise ValueError(f"IMU notification of {len(value)} bytes (expected 20)")
    return np.frombuffer(value, dtype="<i2").astype(np.float32) / _IMU_SCALE


def is_myo_advert(adv: bytes) -> bool:
    return MYO_SERVICE_UUID in adv


class MyoDevice(PortDevice):
    """Myo armband via a BLED112 dongle on ``port`` (auto-detected by VID:PID when None).

    Parameters
    ----------
    port : dongle serial port; None finds the first BLED112.
    address : Myo Bluetooth address ``AA:BB:CC:DD:EE:FF``; None connects to the first Myo seen.
    emg_mode : :data:`EMG_MODE_RAW` (default) or :data:`EMG_MODE_FILTERED`.
    scan_timeout_s : give up a scan after this long (then retry after a pause).
    vibrate : buzz once on connect.
    relink_after_s : silence after which the Bluetooth link is presumed dead and re-made.
    """

    name = "myo"
    model = "Myo armband via BLED112"

    def __init__(
        self,
        port: str | None = None,
        address: str | None = None,
        emg_mode: int = EMG_MODE_RAW,
        scan_timeout_s: float = 10.0,
        command_timeout_s: float = 1.0,
        vibrate: bool = True,
        relink_after_s: float = 3.0,
        **kw: Any,
    ) -> None:
        super().__init__(port, baudrate=115200, **kw)
        self.address = bgapi.parse_address(address) if address else None
        self.emg_mode = emg_mode
        self.scan_timeout_s = scan_timeout_s
        self.command_timeout_s = command_timeout_s
        self.vibrate = vibrate
        self.relink_after_s = relink_after_s
        self.parser = bgapi.PacketParser("from_dongle")
        self.emg_clock = SampleClock(FOREARM_EMG.rate_hz)
        self.imu_clock = SampleClock(FOREARM_IMU.rate_hz)
        self._pending: deque[tuple[Packet, float]] = deque()
        self._conn: int | None = None
        self._last_emg_index: int | None = None
        self.device_facts: dict[str, Any] = {}
        self.counters.update({"emg_notifications": 0, "imu_notifications": 0, "emg_rotation_drops": 0, "bad": 0})

    # ----------------------------------------------------------------- Device protocol
    def sensor_streams(self) -> list[StreamInfo]:
        return [FOREARM_EMG, FOREARM_IMU]

    def info(self) -> dict[str, Any]:
        return {
            **super().info(),
            **self.device_facts,
            "emg_mode": "raw" if self.emg_mode == EMG_MODE_RAW else "filtered",
        }

    def stats(self) -> dict[str, Any]:
        return {
            **super().stats(),
            **{f"bgapi_{k}": v for k, v in self.parser.stats.as_dict().items()},
            "dropped": self.emg_clock.dropped + self.imu_clock.dropped,
            "emg_dropped": self.emg_clock.dropped,
            "imu_dropped": self.imu_clock.dropped,
            "clock_resyncs": self.emg_clock.resyncs + self.imu_clock.resyncs,
            "battery": self.device_facts.get("battery_percent"),
        }

    def _resolve_port(self) -> str | None:
        return self.port or find_dongle()

    def _on_gap(self) -> None:
        self.emg_clock.reanchor()
        self.imu_clock.reanchor()
        self._last_emg_index = None

    # ----------------------------------------------------------------- session
    def _session(self, ser: Any) -> None:
        self.parser.reset()
        self._pending.clear()
        self._conn = None
        try:
            self._handshake()
            facts = self.device_facts
            self._connected(
                f"{facts.get('name', 'Myo')} {facts.get('address', '')} "
                f"firmware {facts.get('firmware', '?')} battery {facts.get('battery_percent')} %"
            )
            self._stream()
        except _Stopped:
            return
        finally:
            if self._stop.is_set() and self._conn is not None:
                self._goodbye()

    def _goodbye(self) -> None:
        """Drop the Bluetooth link on a deliberate stop (the Myo then goes back to sleep)."""
        try:
            self._ser.write(bgapi.command(bgapi.CMD_DISCONNECT, bytes((self._conn,))))
        except OSError as e:
            log.debug("%s: disconnect on stop: %s", self.name, e)

    def _stream(self) -> None:
        while not self._stop.is_set():
            data, now = self._read_port(self._ser)
            if data:
                self._handle(self.parser.feed(data), now)
            elif self._silent and now - self._last_rx > self.relink_after_s:
                raise LinkLost(f"no data from the Myo for {now - self._last_rx:.1f} s")

    def _handshake(self) -> None:
        self._emit_status("connecting", f"dongle on {self._ser.port}")
        self._command(bgapi.CMD_END_PROCEDURE)
        for handle in range(3):
            self._command(bgapi.CMD_DISCONNECT, bytes((handle,)))
        address, addr_type = self._scan()
        rsp = self._command(bgapi.CMD_CONNECT_DIRECT, address + struct.pack("<BHHHH", addr_type, 6, 6, 64, 0))
        result, conn = struct.unpack("<HB", rsp.payload)
        if result:
            raise PortError(f"connect to {bgapi.format_address(address)} refused (BGAPI error 0x{result:04X})")
        status = self._wait_event(bgapi.EVT_CONNECTION_STATUS, lambda p: p.payload[0] == conn, 5.0)
        if status is None or not status.payload[1] & 0x01:
            self._command(bgapi.CMD_END_PROCEDURE)
            raise PortError(f"no connection to {bgapi.format_address(address)} within 5 s")
        self._conn = conn
        fw = self._read_attribute(HANDLE_FIRMWARE)
        facts: dict[str, Any] = {**self.device_facts, "address": bgapi.format_address(address)}
        if len(fw) >= 8:
            major, minor, patch, hw = struct.unpack_from("<4H", fw)
            facts["firmware"] = f"{major}.{minor}.{patch}"
            facts["hardware_rev"] = hw
            if major == 0:
                raise PortError(f"Myo firmware {facts['firmware']} is too old for raw EMG (update with Myo Connect)")
        facts["name"] = self._read_attribute(HANDLE_NAME).decode("utf-8", "replace")
        battery = self._read_attribute(HANDLE_BATTERY)
        facts["battery_percent"] = battery[0] if battery else None
        self.device_facts = facts
        self._write_attribute(HANDLE_IMU + 1, CCCD_NOTIFY)
        for handle in EMG_HANDLES:
            self._write_attribute(handle + 1, CCCD_NOTIFY)
        self._write_attribute(HANDLE_COMMAND, set_mode_command(self.emg_mode, 1, 0))
        self._write_attribute(HANDLE_COMMAND, NEVER_SLEEP)
        if self.vibrate:
            self._write_attribute(HANDLE_COMMAND, VIBRATE_SHORT)
        log.info("%s: connected to %s", self.name, facts)

    def _scan(self) -> tuple[bytes, int]:
        self._emit_status("scanning", "looking for a Myo")
        self._command(bgapi.CMD_DISCOVER, b"\x01")
        deadline = self.clock() + self.scan_timeout_s
        try:
            while self.clock() < deadline:
                for pkt, _ in self._next_packets(deadline):
                    if pkt.event and pkt.key == bgapi.EVT_SCAN_RESPONSE:
                        rssi, address, addr_type, adv = bgapi.parse_scan_response(pkt.payload)
                        if (self.address is None and is_myo_advert(adv)) or address == self.address:
                            self.device_facts = {"rssi": rssi}
                            return address, addr_type
        finally:
            self._command(bgapi.CMD_END_PROCEDURE)
        wanted = bgapi.format_address(self.address) if self.address else "any Myo"
        raise PortError(f"no Myo found ({wanted}) within {self.scan_timeout_s:.0f} s")

    # ----------------------------------------------------------------- BGAPI exchange
    def _next_packets(self, deadline: float) -> list[tuple[Packet, float]]:
        """Packets read until ``deadline`` or the first ones to arrive; notifications are handled on the way."""
        if self._pending:
            out = list(self._pending)
            self._pending.clear()
            return out
        while not self._stop.is_set():
            data = self._ser.read(max(self._ser.in_waiting, 1))
            if data and self._ser.in_waiting:
                data += self._ser.read(self._ser.in_waiting)
            now = self.clock()
            if data:
                self.counters["bytes"] += len(data)
                self._last_rx = now
                pkts = self.parser.feed(data)
                if pkts:
                    self._handle([p for p in pkts if _is_stream_packet(p)], now)
                    return [(p, now) for p in pkts if not _is_stream_packet(p)]
            if now >= deadline:
                return []
        raise _Stopped

    def _wait(self, match: Any, timeout: float) -> Packet | None:
        deadline = self.clock() + timeout
        while True:
            got = self._next_packets(deadline)
            for i, (pkt, _t) in enumerate(got):
                if match(pkt):
                    self._pending.extend(got[i + 1 :])
                    return pkt
                self._other(pkt)
            if self.clock() >= deadline:
                return None

    def _other(self, pkt: Packet) -> None:
        if pkt.event and pkt.key == bgapi.EVT_CONNECTION_DISCONNECTED and pkt.payload[0] == self._conn:
            self._conn = None
            raise LinkLost(f"Bluetooth link to the Myo dropped (reason 0x{bgapi.result_code(pkt.payload, 1):04X})")

    def _command(self, key: tuple[int, int], payload: bytes = b"") -> Packet:
        self._ser.write(bgapi.command(key, payload))
        rsp = self._wait(lambda p: not p.event and p.key == key, self.command_timeout_s)
        if rsp is None:
            raise PortError(f"dongle did not answer BGAPI command {key} within {self.command_timeout_s} s")
        return rsp

    def _wait_event(self, key: tuple[int, int], match: Any, timeout: float) -> Packet | None:
        return self._wait(lambda p: p.event and p.key == key and match(p), timeout)

    def _read_attribute(self, handle: int) -> bytes:
        rsp = self._command(bgapi.CMD_READ_BY_HANDLE, struct.pack("<BH", self._conn, handle))
        if bgapi.result_code(rsp.payload, 1):
            raise PortError(f"reading Myo attribute 0x{handle:02X} refused")

        def is_value(p: Packet) -> bool:
            conn, h, typ, _ = bgapi.parse_attribute_value(p.payload)
            return conn == self._conn and h == handle and typ != bgapi.ATT_NOTIFY

        evt = self._wait_event(bgapi.EVT_ATTRIBUTE_VALUE, is_value, self.command_timeout_s)
        if evt is None:
            raise PortError(f"no value for Myo attribute 0x{handle:02X} within {self.command_timeout_s} s")
        return bgapi.parse_attribute_value(evt.payload)[3]

    def _write_attribute(self, handle: int, value: bytes) -> None:
        payload = struct.pack("<BH", self._conn, handle) + bgapi.u8array(value)
        rsp = self._command(bgapi.CMD_ATTRIBUTE_WRITE, payload)
        if bgapi.result_code(rsp.payload, 1):
            raise PortError(f"writing Myo attribute 0x{handle:02X} refused")
        done = self._wait_event(
            bgapi.EVT_PROCEDURE_COMPLETED, lambda p: p.payload[0] == self._conn, self.command_timeout_s
        )
        if done is None:
            raise PortError(f"write to Myo attribute 0x{handle:02X} not confirmed within {self.command_timeout_s} s")

    # ----------------------------------------------------------------- data
    def _handle(self, pkts: list[Packet], host_t: float) -> None:
        """Turn a read's notifications into chunks (one per contiguous run of EMG samples)."""
        emg_runs: list[tuple[int, list[np.ndarray]]] = []
        imu_rows: list[np.ndarray] = []
        for pkt in pkts:
            if not _is_stream_packet(pkt):
                self._other(pkt)
                continue
            _, handle, _, value = bgapi.parse_attribute_value(pkt.payload)
            try:
                if handle == HANDLE_IMU:
                    imu_rows.append(decode_imu(value))
                    self.counters["imu_notifications"] += 1
                elif handle in EMG_HANDLES:
                    samples = decode_emg(value)
                    index = EMG_HANDLES.index(handle)
                    lost = 0
                    if self._last_emg_index is not None:
                        lost = 2 * ((index - self._last_emg_index - 1) % 4)
                    self._last_emg_index = index
                    self.counters["emg_notifications"] += 1
                    if lost:
                        self.counters["emg_rotation_drops"] += lost // 2
                    if lost or not emg_runs:
                        emg_runs.append((lost, []))
                    emg_runs[-1][1].append(samples)
                elif handle == HANDLE_BATTERY and value:
                    self.device_facts["battery_percent"] = value[0]
            except ValueError as e:
                self.counters["bad"] += 1
                log.debug("%s: bad notification on 0x%02X: %s", self.name, handle, e)
        for lost, rows in emg_runs:
            data = np.concatenate(rows)
            self._emit_chunk(FOREARM_EMG, self.emg_clock.stamp(len(data), host_t, lost=lost), data)
        if imu_rows:
            data = np.stack(imu_rows)
            self._emit_chunk(FOREARM_IMU, self.imu_clock.stamp(len(data), host_t), data)


class _Stopped(Exception):
    """The device was asked to stop in the middle of an exchange."""


def _is_stream_packet(p: Packet) -> bool:
    return p.event and p.key == bgapi.EVT_ATTRIBUTE_VALUE and p.payload[3] == bgapi.ATT_NOTIFY


def open_live_arm(
    port: str | None = None,
    upper_arm_port: str | None = None,
    address: str | None = None,
    upper_arm: Any = None,
) -> Any:
    """The live device for ``--source myo``: the Myo (``port``; None finds the dongle, ``"none"``
    leaves it out) plus, with ``upper_arm_port``, the MyoWare board (``upper_arm``: a
    :class:`~emgpilot.signals.myoware.MyoWareConfig`), combined into one device.

    Raises ``DeviceError`` when no dongle is found and no port was given.
    """
    import os

    from emgpilot.signals.device import DeviceError
    from emgpilot.signals.myoware import MyoWareDevice
    from emgpilot.signals.serialio import CompositeDevice

    for path in (port, upper_arm_port):
        # POSIX device paths can be checked up front (Windows COM names cannot)
        if path and path != "none" and path.startswith("/") and not os.path.exists(path):
            raise DeviceError(f"no such serial port: {path} (see 'emgpilot devices')")
    children: list[PortDevice] = []
    if port != "none":
        dongle = port or find_dongle()
        if dongle is None:
            raise DeviceError("no BLED112 dongle (USB 2458:0001) found: plug it in or pass --port PATH")
        children.append(MyoDevice(dongle, address=address))
    if upper_arm_port:
        children.append(MyoWareDevice(upper_arm_port, upper_arm))
    if not children:
        raise DeviceError("no device selected: --port none needs --upper-arm-port")
    return children[0] if len(children) == 1 else CompositeDevice(children)
