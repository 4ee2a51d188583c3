"""A virtual Parrot Bebop 2: the simulator served over ARSDK (protocol v1) on loopback.

The unmodified Olympe client (or any ARSDK controller) connects to it exactly as to a real
Bebop 2 and flies a :class:`~emgpilot.drone.sim.DroneSim`:

1. Discovery (TCP, default port 44445): on accept the drone sends its JSON description,
   NUL-terminated, and keeps the connection open (closing it makes Olympe drop the device).
2. Handshake (TCP, default port 44444): reads the controller's JSON (its ``d2c_port``),
   answers ``{"status": 0, "c2d_port": ...}`` (no ``proto_v``: protocol v1, like a Bebop 2).
3. UDP link: acks and de-duplicates the acked buffers, answers pings, pings when idle and
   declares the link lost after 3 unanswered pings (the drone then hovers), runs the commands
   (TakeOff, Landing, Emergency, PCMD, moveBy, AllStates, AllSettings, and the optional protobuf
   ``generic.custom_cmd`` requests, answered so that Olympe connects in well under a second)
   and sends events (FlyingStateChanged, moveByEnd, battery) on the acked buffer with retries,
   and telemetry (position, speed, attitude, altitude) on the non-acked buffer.

Safety of the test set-up: it binds and sends only to 127.0.0.1 and refuses anything else.
Everything runs on one thread with non-blocking sockets; :meth:`VirtualBebop.close` ends it.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import selectors
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from emgpilot.drone import arsdk
from emgpilot.drone.arsdk import Buffer, Command, Frame, FrameType
from emgpilot.drone.backend import DroneState
from emgpilot.drone.sim import DroneSim, SimEvent

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
DEFAULT_HOME = (48.8785, 2.3675)
"""Where the virtual drone's GPS places its take-off point (lat, lon in degrees)."""
_MAX_HANDSHAKE_BYTES = 64 * 1024


def require_loopback(host: str, what: str = "address") -> str:
    """Return ``"127.0.0.1"`` for ``host`` in {127.0.0.1, localhost}; raise otherwise.

    The virtual drone is a test and demo device: it must never be reachable from, or send to,
    another machine.
    """
    if host == "localhost":
        return LOOPBACK
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"virtual Bebop: {what} {host!r} is not an IP address; only {LOOPBACK} is allowed") from None
    if str(ip) != LOOPBACK:
        raise ValueError(f"virtual Bebop: refusing {what} {host}: it binds and sends only to {LOOPBACK} (loopback)")
    return LOOPBACK


@dataclass(frozen=True)
class ReceivedCommand:
    """A command the virtual drone received (after de-duplication)."""

    t: float
    buffer_id: int
    command: Command

    @property
    def name(self) -> str:
        return self.command.name


@dataclass
class _Pending:
    frame: Frame
    sent_at: float
    tries: int


class _Session:
    """One connected controller: where to send, sequence numbers, acked queue, keep-alive."""

    def __init__(self, peer: tuple[str, int], now: float) -> None:
        self.peer = peer
        self.seq = arsdk.SeqCounter()
        self.dedup = arsdk.Deduplicator()
        self.acked_queue: deque[bytes] = deque()
        self.pending: _Pending | None = None
        self.last_rx = now
        self.last_ping = now
        self.missed_pings = 0


class VirtualBebop:
    """The virtual Bebop 2 server.

    Parameters
    ----------
    host : must be 127.0.0.1 (or "localhost"); anything else raises ``ValueError``.
    discovery_port : TCP port of the JSON discovery answer; 0 = ephemeral; None = no discovery
        service (like a real Bebop 2 firmware, which only has the handshake port).
    handshake_port : TCP port of the connection handshake; 0 = ephemeral.
    sim : the simulated drone (a fresh :class:`DroneSim` if None).
    telemetry_hz : rate of position/speed/attitude/altitude telemetry.
    answer_optional : answer Olympe's optional protobuf requests (connect in < 1 s instead of ~12 s).
    gps : send a GPS position (around ``home``); False sends "unavailable" (500) like indoors.
    name, serial : what the discovery JSON advertises.
    tick_s : period of the loop (simulation step, retries, keep-alive).
    keepalive_idle_s : ping after this long without hearing the controller; 3 unanswered
        pings in a row = link lost (the drone hovers).
    time_scale : simulated seconds per wall-clock second (> 1 makes tests fly faster; the
        protocol timers stay in wall-clock time).
    """

    def __init__(
        self,
        host: str = LOOPBACK,
        discovery_port: int | None = arsdk.DISCOVERY_PORT,
        handshake_port: int = arsdk.HANDSHAKE_PORT,
        sim: DroneSim | None = None,
        telemetry_hz: float = 10.0,
        answer_optional: bool = True,
        gps: bool = True,
        home: tuple[float, float] = DEFAULT_HOME,
        name: str = "Bebop2-virtual",
        serial: str = "EMGPILOTVIRTUAL01",
        tick_s: float = 0.005,
        keepalive_idle_s: float = arsdk.KEEPALIVE_IDLE_S,
        time_scale: float = 1.0,
    ) -> None:
        self.host = require_loopback(host, "host")
        self._want_discovery_port = discovery_port
        self._want_handshake_port = int(handshake_port)
        self.sim = sim or DroneSim()
        self.telemetry_period = 1.0 / float(telemetry_hz)
        self.answer_optional = answer_optional
        self.gps = gps
        self.home = home
        self.name = name
        self.serial = serial
        self.tick_s = tick_s
        self.keepalive_idle_s = keepalive_idle_s
        if time_scale <= 0:
            raise ValueError(f"virtual Bebop: time_scale must be positive, got {time_scale}")
        self.time_scale = float(time_scale)

        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sel: selectors.DefaultSelector | None = None
        self._discovery_sock: socket.socket | None = None
        self._handshake_sock: socket.socket | None = None
        self._udp: socket.socket | None = None
        self._discovery_conns: list[socket.socket] = []
        self._handshake_conns: dict[socket.socket, bytearray] = {}
        self._session: _Session | None = None
        self._silent = False
        self._last_battery: int | None = None
        self._last_telemetry = 0.0
        self._last_step = 0.0
        self._t0 = 0.0

        self.received: list[ReceivedCommand] = []
        """Every command received (de-duplicated), in order: what tests assert on."""
        self.link_log: list[tuple[float, str]] = []
        """(time, "connected" | "lost" | "replaced") link changes."""
        self.discovery_port: int | None = None
        self.handshake_port: int = 0
        self.c2d_port: int = 0

    # ------------------------------------------------------------------ life cycle
    def start(self) -> VirtualBebop:
        """Bind the sockets (raising ``OSError`` naming the busy port) and start serving."""
        if self._thread is not None:
            return self
        self._sel = selectors.DefaultSelector()
        try:
            if self._want_discovery_port is not None:
                self._discovery_sock = self._listen(self._want_discovery_port, "discovery")
                self.discovery_port = self._discovery_sock.getsockname()[1]
            self._handshake_sock = self._listen(self._want_handshake_port, "handshake")
            self.handshake_port = self._handshake_sock.getsockname()[1]
            self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._udp.bind((self.host, 0))
            self._udp.setblocking(False)
            self.c2d_port = self._udp.getsockname()[1]
            self._sel.register(self._udp, selectors.EVENT_READ, "udp")
        except OSError:
            self._close_sockets()
            raise
        self._t0 = time.monotonic()
        self._last_step = self._t0
        self.sim.t = 0.0
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="virtual-bebop", daemon=True)
        self._thread.start()
        log.info(
            "virtual Bebop 2 on %s: discovery %s, handshake %d, c2d UDP %d",
            self.host,
            self.discovery_port,
            self.handshake_port,
            self.c2d_port,
        )
        return self

    def close(self) -> None:
        """Stop the thread and close every socket. Safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            if self._thread.is_alive():
                log.error("virtual Bebop thread did not stop within 5 s")
            self._thread = None
        self._close_sockets()

    stop = close

    def __enter__(self) -> VirtualBebop:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _listen(self, port: int, what: str) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((self.host, int(port)))
        except OSError as e:
            s.close()
            msg = f"virtual Bebop: cannot bind the {what} port {self.host}:{port}: {e.strerror}"
            raise OSError(e.errno, msg) from e
        s.listen(4)
        s.setblocking(False)
        assert self._sel is not None
        self._sel.register(s, selectors.EVENT_READ, what)
        return s

    def _close_sockets(self) -> None:
        socks = [*self._discovery_conns, *self._handshake_conns, self._discovery_sock, self._handshake_sock, self._udp]
        for s in socks:
            if s is not None:
                try:
                    s.close()
                except OSError as e:
                    log.debug("closing socket: %s", e)
        self._discovery_conns.clear()
        self._handshake_conns.clear()
        self._discovery_sock = self._handshake_sock = self._udp = None
        if self._sel is not None:
            self._sel.close()
            self._sel = None

    # ------------------------------------------------------------------ controls for tests and the CLI
    def go_silent(self, silent: bool = True) -> None:
        """Fault injection: stop sending and receiving anything on UDP (a radio loss).

        The TCP discovery connection stays open, as it would through a stalled radio link.
        """
        with self._lock:
            self._silent = silent
            log.info("virtual Bebop: %s", "silent" if silent else "talking again")

    @property
    def link_up(self) -> bool:
        with self._lock:
            return self._session is not None

    def state(self) -> DroneState:
        """The simulated drone's state, with ``link`` the controller link."""
        with self._lock:
            s = self.sim.state()
            link = "connected" if self._session is not None else ("lost" if self._lost() else "disconnected")
            return replace(s, link=link)

    def _lost(self) -> bool:
        return bool(self.link_log) and self.link_log[-1][1] == "lost"

    def commands_named(self, name: str) -> list[ReceivedCommand]:
        """Received commands whose full or short name is ``name``."""
        with self._lock:
            return [r for r in self.received if r.name == name or r.name.rsplit(".", 1)[-1] == name]

    def wait_until(self, predicate: Callable[[VirtualBebop], bool], timeout: float) -> bool:
        """Block until ``predicate(self)`` is true (evaluated under the lock after every change
        and tick) or ``timeout`` seconds pass. Returns the predicate's last value."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                if predicate(self):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return bool(predicate(self))
                self._changed.wait(min(remaining, 0.05))

    # ------------------------------------------------------------------ the loop
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                assert self._sel is not None
                for key, _ in self._sel.select(timeout=self.tick_s):
                    self._on_readable(key.fileobj, key.data)  # type: ignore[arg-type]
                with self._changed:
                    self._tick(time.monotonic())
                    self._changed.notify_all()
        except Exception:
            log.exception("virtual Bebop stopped on an error")
            raise

    def _on_readable(self, sock: socket.socket, what: str) -> None:
        if what in ("discovery", "handshake"):
            try:
                conn, addr = sock.accept()
            except OSError as e:
                log.debug("accept on %s: %s", what, e)
                return
            if addr[0] != LOOPBACK:
                log.error("virtual Bebop: refusing %s connection from %s (loopback only)", what, addr[0])
                conn.close()
                return
            conn.setblocking(False)
            assert self._sel is not None
            if what == "discovery":
                self._discovery_conns.append(conn)
                self._sel.register(conn, selectors.EVENT_READ, "discovery_conn")
                self._send_discovery(conn)
            else:
                self._handshake_conns[conn] = bytearray()
                self._sel.register(conn, selectors.EVENT_READ, "handshake_conn")
        elif what == "discovery_conn":
            data = self._recv_tcp(sock)
            if data == b"":
                self._drop_tcp(sock)
                self._discovery_conns.remove(sock)
        elif what == "handshake_conn":
            data = self._recv_tcp(sock)
            if data is None:
                return
            if not data:
                self._drop_tcp(sock)
                self._handshake_conns.pop(sock, None)
                return
            buf = self._handshake_conns[sock]
            buf += data
            self._try_handshake(sock, buf)
        elif what == "udp":
            self._on_udp()

    @staticmethod
    def _recv_tcp(sock: socket.socket) -> bytes | None:
        """Bytes read; b"" when the peer closed; None on a spurious wake-up."""
        try:
            return sock.recv(4096)
        except BlockingIOError:
            return None
        except OSError as e:
            log.debug("tcp recv: %s", e)
            return b""

    def _drop_tcp(self, sock: socket.socket) -> None:
        assert self._sel is not None
        try:
            self._sel.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()

    def _send_discovery(self, conn: socket.socket) -> None:
        info = {
            "model.id": f"0x{arsdk.BEBOP2_MODEL_ID:04x}",
            "serial": self.serial,
            "port": self.handshake_port,
            "name": self.name,
        }
        try:
            conn.sendall(json.dumps(info).encode() + b"\0")
        except OSError as e:
            log.warning("virtual Bebop: discovery answer failed: %s", e)

    def _try_handshake(self, conn: socket.socket, buf: bytearray) -> None:
        if len(buf) > _MAX_HANDSHAKE_BYTES:
            log.warning("virtual Bebop: handshake request over %d bytes, dropped", _MAX_HANDSHAKE_BYTES)
            self._finish_handshake(conn, None)
            return
        text = bytes(buf).split(b"\0", 1)[0].strip()
        try:
            request = json.loads(text.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return  # incomplete: wait for more bytes
        if not isinstance(request, dict):
            log.warning("virtual Bebop: handshake request is not a JSON object: %r", text[:80])
            self._finish_handshake(conn, {"status": -1})
            return
        try:
            d2c_port = int(request.get("d2c_port", arsdk.DEFAULT_D2C_PORT))
        except (TypeError, ValueError):
            self._finish_handshake(conn, {"status": -1})
            return
        peer_ip = conn.getpeername()[0]
        with self._lock:
            now = time.monotonic()
            if self._session is not None and not self._silent and now - self._session.last_rx < 1.0:
                log.warning("virtual Bebop: refusing a second controller while one is connected")
                self._finish_handshake(conn, {"status": -1})
                return
            if self._session is not None:
                self.link_log.append((now - self._t0, "replaced"))
            self._session = _Session((require_loopback(peer_ip, "controller address"), d2c_port), now)
            self.link_log.append((now - self._t0, "connected"))
            self._last_battery = None
        log.info(
            "virtual Bebop: controller %r (%s) connected, d2c %s:%d",
            request.get("controller_name"),
            request.get("controller_type"),
            peer_ip,
            d2c_port,
        )
        self._finish_handshake(
            conn,
            {
                "status": 0,
                "c2d_port": self.c2d_port,
                "qos_mode": 0,
                "arstream_fragment_size": 65000,
                "arstream_fragment_maximum_number": 4,
                "arstream_max_ack_interval": 0,
                "c2d_update_port": 51,
                "c2d_user_port": 21,
            },
        )

    def _finish_handshake(self, conn: socket.socket, answer: dict | None) -> None:
        if answer is not None:
            try:
                conn.sendall(json.dumps(answer).encode() + b"\0")
            except OSError as e:
                log.warning("virtual Bebop: handshake answer failed: %s", e)
        self._handshake_conns.pop(conn, None)
        self._drop_tcp(conn)

    # ------------------------------------------------------------------ UDP
    def _on_udp(self) -> None:
        assert self._udp is not None
        while True:
            try:
                datagram, addr = self._udp.recvfrom(65535)
            except BlockingIOError:
                return
            except OSError as e:
                log.debug("udp recv: %s", e)
                return
            with self._changed:
                session = self._session
                if self._silent or session is None or addr[0] != session.peer[0]:
                    continue
                try:
                    frames = arsdk.decode_frames(datagram)
                except arsdk.FrameError as e:
                    log.warning("virtual Bebop: bad datagram from %s: %s", addr, e)
                    continue
                session.last_rx = time.monotonic()
                session.missed_pings = 0
                for frame in frames:
                    self._on_frame(session, frame)
                self._changed.notify_all()

    def _on_frame(self, session: _Session, frame: Frame) -> None:
        if frame.type == FrameType.ACK:
            if frame.buffer_id == Buffer.D2C_ACK + arsdk.ACK_OFFSET and session.pending is not None:
                try:
                    seq = arsdk.acked_seq(frame)
                except arsdk.FrameError as e:
                    log.warning("virtual Bebop: %s", e)
                    return
                if seq == session.pending.frame.seq:
                    session.pending = None
                    self._send_next_acked(session, time.monotonic())
            return
        if frame.buffer_id == Buffer.PING:
            self._send(session, [Frame(FrameType.DATA, Buffer.PONG, frame.seq, frame.payload)])
            return
        if frame.buffer_id == Buffer.PONG:
            return  # any reception already reset the keep-alive
        if frame.type == FrameType.DATA_WITH_ACK:
            ack = arsdk.ack_frame(frame, session.seq.next(frame.buffer_id + arsdk.ACK_OFFSET))
            self._send(session, [ack])
        if not session.dedup.is_new(frame):
            return
        if frame.buffer_id not in (Buffer.C2D_NON_ACK, *arsdk.ACKED_C2D_BUFFERS):
            log.debug("virtual Bebop: frame on unexpected buffer %d ignored", frame.buffer_id)
            return
        try:
            command = arsdk.decode_command(frame.payload)
        except arsdk.CommandError as e:
            log.warning("virtual Bebop: undecodable command on buffer %d: %s", frame.buffer_id, e)
            return
        self.received.append(ReceivedCommand(time.monotonic() - self._t0, frame.buffer_id, command))
        self._handle(session, command)

    def _handle(self, session: _Session, command: Command) -> None:
        name, a = command.name, command.args
        if name != "ardrone3.Piloting.PCMD":
            log.debug("virtual Bebop <- %s %s", name, a)
        sim = self.sim
        if name == "common.Settings.AllSettings":
            self._queue_event("common.SettingsState.AllSettingsChanged")
        elif name == "common.Common.AllStates":
            self._queue_event("common.CommonState.BatteryStateChanged", round(sim.battery))
            self._queue_event("ardrone3.PilotingState.FlyingStateChanged", state=sim.flying_state)
            self._queue_event("common.CommonState.AllStatesChanged")
        elif name == "generic.custom_cmd":
            answer = arsdk.OPTIONAL_PROTO_ANSWERS.get((a["service_id"], a["msg_num"]))
            if answer is not None and self.answer_optional:
                service, msg = answer
                self._queue_event("generic.custom_evt", service, msg, arsdk.proto_empty_field(msg))
        elif name == "ardrone3.Piloting.TakeOff":
            sim.takeoff()
        elif name == "ardrone3.Piloting.Landing":
            sim.land()
        elif name == "ardrone3.Piloting.Emergency":
            sim.emergency()
        elif name == "ardrone3.Piloting.PCMD":
            sim.set_pcmd(a["flag"], a["roll"], a["pitch"], a["yaw"], a["gaz"])
        elif name == "ardrone3.Piloting.moveBy":
            sim.move_by(a["dX"], a["dY"], a["dZ"], a["dPsi"])
        self._forward_sim_events(sim.pop_events())

    # ------------------------------------------------------------------ sending
    def _send(self, session: _Session, frames: list[Frame]) -> None:
        if self._silent or self._udp is None:
            return
        dest = session.peer
        if dest[0] != LOOPBACK:  # defence in depth: sessions are only created for loopback
            raise RuntimeError(f"virtual Bebop: refusing to send to {dest[0]}")
        try:
            self._udp.sendto(arsdk.encode_frames(frames), dest)
        except OSError as e:
            log.debug("udp send to %s: %s", dest, e)

    def _queue_event(self, name: str, *args: object, **kwargs: object) -> None:
        session = self._session
        if session is None:
            return
        session.acked_queue.append(arsdk.encode_command(name, *args, **kwargs))
        if session.pending is None:
            self._send_next_acked(session, time.monotonic())

    def _send_next_acked(self, session: _Session, now: float) -> None:
        if session.pending is not None or not session.acked_queue or self._silent:
            return
        payload = session.acked_queue.popleft()
        frame = Frame(FrameType.DATA_WITH_ACK, Buffer.D2C_ACK, session.seq.next(Buffer.D2C_ACK), payload)
        session.pending = _Pending(frame, now, 1)
        self._send(session, [frame])

    def _forward_sim_events(self, events: list[SimEvent]) -> None:
        for ev in events:
            if ev.kind == "flying_state":
                self._queue_event("ardrone3.PilotingState.FlyingStateChanged", state=ev.detail["state"])
            elif ev.kind == "move_by_end":
                d = ev.detail
                self._queue_event(
                    "ardrone3.PilotingEvent.moveByEnd", d["dx"], d["dy"], d["dz"], d["dpsi"], error=d["error"]
                )

    # ------------------------------------------------------------------ periodic work
    def _tick(self, now: float) -> None:
        dt = now - self._last_step
        self._last_step = now
        if dt > 0:
            self.sim.step(min(dt, 0.5) * self.time_scale)
        session = self._session
        if session is None:
            self.sim.pop_events()  # nobody to tell
            return
        self._forward_sim_events(self.sim.pop_events())
        if self._silent:
            return
        # acked events: retry, then give up on that one frame and carry on
        p = session.pending
        if p is not None and now - p.sent_at >= arsdk.ACK_RETRY_S:
            if p.tries > arsdk.ACK_MAX_RETRIES:
                log.warning("virtual Bebop: event %s never acked, dropped", arsdk.decode_command(p.frame.payload).name)
                session.pending = None
                self._send_next_acked(session, now)
            else:
                p.tries += 1
                p.sent_at = now
                self._send(session, [p.frame])
        # battery (acked, on change)
        percent = round(self.sim.battery)
        if percent != self._last_battery:
            self._last_battery = percent
            self._queue_event("common.CommonState.BatteryStateChanged", percent)
        # telemetry (non-acked, all in one datagram)
        if now - self._last_telemetry >= self.telemetry_period:
            self._last_telemetry = now
            self._send(session, self._telemetry_frames(session))
        # keep-alive and link loss
        idle = self.keepalive_idle_s
        if now - session.last_rx >= idle and now - session.last_ping >= idle:
            if session.missed_pings >= arsdk.KEEPALIVE_MAX_MISSED:
                self._link_lost(now)
                return
            session.missed_pings += 1
            session.last_ping = now
            ns = time.monotonic_ns()
            payload = struct.pack("<II", ns // 1_000_000_000, ns % 1_000_000_000)
            self._send(session, [Frame(FrameType.DATA, Buffer.PING, session.seq.next(Buffer.PING), payload)])

    def _link_lost(self, now: float) -> None:
        log.warning("virtual Bebop: link lost (no answer to %d pings): hovering", arsdk.KEEPALIVE_MAX_MISSED)
        self._session = None
        self.link_log.append((now - self._t0, "lost"))
        self.sim.set_pcmd(1, 0, 0, 0, 0)  # like a Bebop: stop and hover where it is

    def _telemetry_frames(self, session: _Session) -> list[Frame]:
        s = self.sim
        (sx, sy, sz), (roll, pitch, yaw) = arsdk.ned_from_local(s.vx, s.vy, s.vz, s.roll, s.pitch, s.yaw)
        if self.gps:
            lat, lon = arsdk.gps_from_local(s.x, s.y, self.home)
            alt = s.z
        else:
            lat = lon = alt = arsdk.POSITION_UNAVAILABLE
        payloads = [
            arsdk.encode_command("ardrone3.PilotingState.PositionChanged", lat, lon, alt),
            arsdk.encode_command("ardrone3.PilotingState.SpeedChanged", sx, sy, sz),
            arsdk.encode_command("ardrone3.PilotingState.AttitudeChanged", roll, pitch, yaw),
            arsdk.encode_command("ardrone3.PilotingState.AltitudeChanged", s.z),
        ]
        return [Frame(FrameType.DATA, Buffer.D2C_NON_ACK, session.seq.next(Buffer.D2C_NON_ACK), p) for p in payloads]
