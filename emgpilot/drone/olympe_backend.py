"""The Parrot Bebop 2 through Olympe (optional extra ``bebop``; imported lazily).

:class:`OlympeBackend` implements :class:`~emgpilot.drone.backend.DroneBackend`:

* A fast TCP reachability check (about 1 s) runs before Olympe's ``connect()``, which would
  otherwise block for 45 s when no drone is there.
* One worker thread owns the ``olympe.Drone`` object: connect, disconnect, take-off, landing,
  piloting and moveBy go through its queue, so the caller (the GUI) never blocks on the network
  except in ``connect``/``disconnect``, which :meth:`OlympeBackend.connect_async` also runs off
  the calling thread. Olympe's own ~7 threads end with ``destroy()`` in :meth:`close`.
* :meth:`OlympeBackend.emergency` skips the queue (a long connect must not delay it) and works
  around Olympe 8.5's protocol-v1 bug: ``Emergency`` is a high-priority command for which the
  C library has no queue on v1 ("Unable to find suitable queue for cmd: 1,0,4"), so it never
  left the PC. The Drone subclass below re-sends such a command on the acked buffer; if that
  fails too, it falls back to ``Landing`` (and logs an error).
* Telemetry events (flying state, position, speed, attitude, altitude, battery, moveBy end)
  update a :class:`~emgpilot.drone.backend.DroneState` and are kept, time-stamped, for the
  recording (:meth:`OlympeBackend.drain_events`).
* ``legacy_discovery=True`` skips Olympe 8.5's JSON discovery (TCP 44445) and hands Olympe a
  raw Bebop 2 device whose handshake is on TCP 44444, as older firmwares (and Olympe 7.7)
  work. NOT verified on a real Bebop 2 yet; it is verified against the virtual Bebop 2.
* Olympe's console logging is turned down to warnings through ``olympe.log.update_config``
  (and the harmless "media websocket" error a Bebop always causes is silenced).
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import queue
import socket
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from types import ModuleType
from typing import Any

from emgpilot.drone import arsdk
from emgpilot.drone.backend import DroneState

log = logging.getLogger(__name__)

BEBOP2_IP = "192.168.42.1"
"""The Bebop 2's address on its own Wi-Fi access point."""
REACHABILITY_TIMEOUT_S = 1.0
CONNECT_TIMEOUT_S = 45.0
"""Olympe refuses anything shorter (one attempt, no retry: :meth:`OlympeBackend.close` cuts it short)."""
CLOSE_TIMEOUT_S = 35.0
"""How long :meth:`OlympeBackend.close` waits for Olympe (its own disconnect time-out is 30 s)."""

_olympe: ModuleType | None = None
_olympe_lock = threading.Lock()


class OlympeUnavailable(ImportError):
    """Olympe (the ``bebop`` extra) is not installed or does not import here."""


def import_olympe(log_level: str = "WARNING") -> ModuleType:
    """Import Olympe once (~2 s), quietly, and turn its logging down to ``log_level``.

    Raises
    ------
    OlympeUnavailable
        With the install hint, when ``import olympe`` fails.
    """
    global _olympe
    with _olympe_lock:
        if _olympe is not None:
            return _olympe
        loader_log = logging.getLogger("olympe.module_loader")
        quiet = _BelowWarning()
        loader_log.addFilter(quiet)  # its INFO lines are printed during the import itself
        try:
            with warnings.catch_warnings():
                # Olympe's own import-time noise, not ours: its SDL2 notice, and the escape
                # sequences in the docstrings it compiles for every message.
                warnings.filterwarnings("ignore", message="Using SDL2 binaries", category=UserWarning)
                warnings.filterwarnings("ignore", category=DeprecationWarning)
                warnings.filterwarnings("ignore", category=SyntaxWarning)
                import olympe
                import olympe.messages  # builds every message class (~1 s)
        except ImportError as e:
            raise OlympeUnavailable(
                f"Olympe is not available ({e}); install the extra: pip install 'emgpilot[bebop]' "
                "(Linux x86_64, Python 3.9-3.12)"
            ) from e
        finally:
            loader_log.removeFilter(quiet)
        quiet_olympe_logging(olympe, log_level)
        _olympe = olympe
        return olympe


class _BelowWarning(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


def quiet_olympe_logging(olympe: ModuleType, level: str = "WARNING") -> None:
    """Route Olympe's logs through the application's logging at ``level`` (no console handler
    of its own), and silence the "media websocket" error every Bebop connect causes (a Bebop 2
    has no HTTP media API)."""
    olympe.log.update_config(
        {
            "loggers": {
                "olympe": {"level": level, "handlers": [], "propagate": True},
                "olympe.media": {"level": "CRITICAL", "handlers": [], "propagate": True},
                "ulog": {"level": "ERROR" if level != "DEBUG" else "DEBUG", "handlers": [], "propagate": True},
            }
        }
    )


def tcp_reachable(ip: str, port: int, timeout: float = REACHABILITY_TIMEOUT_S) -> tuple[bool, str]:
    """Whether a TCP connection to ``ip:port`` opens within ``timeout``; with the reason if not."""
    try:
        with socket.create_connection((ip, port), timeout=timeout):
            return True, ""
    except TimeoutError:
        return False, f"no answer from {ip}:{port} within {timeout:.1f} s (is the drone's Wi-Fi joined?)"
    except OSError as e:
        return False, f"{ip}:{port} unreachable: {e.strerror or e}"


def _bebop2_drone_class(olympe: ModuleType) -> type:
    """An ``olympe.Drone`` subclass with the Emergency-on-v1 work-around and the legacy
    (handshake on 44444) raw discovery. Built at run time: Olympe is an optional import."""
    import ctypes

    import olympe_deps as od
    from olympe.concurrent import Future
    from olympe.connection.discovery import DiscoveryNetRaw
    from olympe.messages.ardrone3.Piloting import Landing
    from olympe.messaging.arsdk_events import ArsdkMessageEvent
    from olympe.messaging.arsdk_messages import ArsdkMessageBufferType
    from olympe.utils import callback_decorator

    class Bebop2Drone(olympe.Drone):
        def __init__(
            self, ip: str, *, discovery_port: int, legacy_discovery: bool = False, handshake_port: int = 44444
        ) -> None:
            self._legacy_discovery = legacy_discovery
            self._legacy_handshake_port = int(handshake_port)
            self.rerouted_commands: list[str] = []
            self._abort_lock = threading.Lock()
            self._abort_wake: threading.Event | None = None
            super().__init__(ip, discovery_port=discovery_port)

        async def _async_discover_device(self, deadline: float):  # type: ignore[override]
            if not self._legacy_discovery:
                return await super()._async_discover_device(deadline)
            await self._backend.ready()
            discovery = DiscoveryNetRaw(
                self._backend,
                ip_addr=self._ip_addr,
                timeout=max(1.0, (deadline - time.time()) / 2),
                port=self._legacy_handshake_port,
                device_type=int(od.ARSDK_DEVICE_TYPE_BEBOP_2),
                name="Bebop2",
            )
            device = await discovery.async_get_device()
            if device is None:
                await discovery._astop()
            return device, discovery

        def connect_abortable(self, abort: threading.Event, timeout: float = CONNECT_TIMEOUT_S) -> bool:
            """Olympe 8.5's ``connect()`` (one attempt within ``timeout`` s), except that it also
            returns as soon as ``abort`` is set and :meth:`abort_connect` is called: it then ends
            the half-open connection as Olympe does on its own time-out, and returns False.

            Olympe's ``connect()`` cannot be interrupted: ``disconnect()`` refuses while a
            connection is in progress, and its Future cannot be cancelled once running."""
            from olympe.concurrent.sync import Event
            from olympe.controllers.cmd_itf import ConnectionState

            wake = threading.Event()
            with self._abort_lock:
                self._abort_wake = wake
            try:
                fut = self._loop.run_async(self._aconnect, timeout, 1)  # 1: no retry after a failure
                fut.add_done_callback(lambda _f: wake.set())
                if abort.is_set():  # close() came before _abort_wake was there
                    wake.set()
                wake.wait(timeout)
            finally:
                with self._abort_lock:
                    self._abort_wake = None
            if fut.done() and not abort.is_set():
                # Olympe's own ending of connect()
                failed = fut.cancelled() or fut.exception() is not None
                if not failed and self.connection_state == ConnectionState.Error:
                    if self._device is None:
                        self._on_device_removed()
                    else:
                        failed = True
                if not failed:
                    return bool(self.connected)
            why = "aborted" if abort.is_set() else f"failed within {timeout:.0f} s"
            self.logger.warning(f"Connection to device '{self._ip_addr_str}' {why}: disconnecting")
            if not self.connected:
                # as Olympe's connect() does on a time-out: lets disconnect() go ahead although
                # a connection is still in progress
                self.connection_state = ConnectionState.Timeout
            self.disconnect()
            if not fut.done():
                # Olympe's connect coroutine still waits for the drone's states: let it end now
                # (it cleans up after a failed connect) rather than leave it to destroy(), which
                # would wait 3 s for it
                self._loop.run_async(Event.release_event, self._connect_sync_event)
            return False

        def abort_connect(self) -> None:
            """Wake a :meth:`connect_abortable` in progress (from any thread) so that it sees
            its ``abort`` event; nothing happens when none is in progress."""
            with self._abort_lock:
                wake = self._abort_wake
            if wake is not None:
                wake.set()

        @callback_decorator()
        def _send_command_impl(self, message, args, quiet=False):
            # Olympe 8.5's body, plus one thing: a HIGH_PRIO command (Emergency) that the C
            # library refuses (no such queue on protocol v1) is sent again on the acked buffer.
            argv = message._encode_args(args)
            cmd = od.struct_arsdk_cmd()
            res = od.arsdk_cmd_enc_argv(ctypes.pointer(cmd), message.arsdk_desc, argv._length_, argv)
            if res != 0:
                self.logger.error(f"Error while encoding command {message.fullName}: {res}")
            if self._cmd_itf is None:
                raise RuntimeError("[sendcmd] Error cmd interface seems to be destroyed")
            send_command_future = Future(self._loop)
            send_status_userdata = ctypes.pointer(ctypes.py_object((send_command_future, message, args)))
            self._send_status_userdata[id(send_command_future)] = send_status_userdata
            res = od.arsdk_cmd_itf_send(self._cmd_itf, ctypes.pointer(cmd), self._send_status, send_status_userdata)
            if res != 0 and message.buffer_type == ArsdkMessageBufferType.HIGH_PRIO:
                cmd.buffer_type = od.ARSDK_CMD_BUFFER_TYPE_ACK
                res = od.arsdk_cmd_itf_send(self._cmd_itf, ctypes.pointer(cmd), self._send_status, send_status_userdata)
                if res == 0:
                    self.rerouted_commands.append(message.fullName)
                    self.logger.info(f"{message.fullName} re-routed to the acked buffer (protocol v1)")
            if res != 0:
                self.logger.error(f"Error while sending command {message.fullName}: {res}")
                send_command_future.set_result(False)
                if message.fullName == "ardrone3.Piloting.Emergency":
                    # last resort: a landing still brings the drone down
                    self.logger.error("Emergency could not be sent: sending Landing instead")
                    self.rerouted_commands.append("ardrone3.Piloting.Landing (Emergency fallback)")
                    return self._send_command_impl(Landing, {}, quiet=quiet)
                return send_command_future
            event = ArsdkMessageEvent(message, args)
            self._scheduler.process_event(event)
            (self.logger.debug if quiet else self.logger.info)(f"{event} has been sent to the device")
            return send_command_future

    return Bebop2Drone


class OlympeBackend:
    """A real (or virtual) Bebop 2 through Olympe. See the module docstring.

    Parameters
    ----------
    ip : the drone's address (192.168.42.1 on its own Wi-Fi; 127.0.0.1 for the virtual Bebop).
    discovery_port : TCP port of Olympe's JSON discovery (44445).
    legacy_discovery : skip the JSON discovery and connect straight to the handshake port
        (``handshake_port``, 44444), as older Bebop 2 firmwares need. Not verified on hardware.
    handshake_port : the handshake port used with ``legacy_discovery``.
    olympe_log_level : level of Olympe's own loggers.
    reachability_timeout : seconds the TCP check waits before giving up.
    close_timeout : seconds :meth:`close` waits for Olympe to disconnect (see there).
    """

    name = "bebop"

    def __init__(
        self,
        ip: str = BEBOP2_IP,
        discovery_port: int = arsdk.DISCOVERY_PORT,
        legacy_discovery: bool = False,
        handshake_port: int = arsdk.HANDSHAKE_PORT,
        olympe_log_level: str = "WARNING",
        reachability_timeout: float = REACHABILITY_TIMEOUT_S,
        close_timeout: float = CLOSE_TIMEOUT_S,
    ) -> None:
        self.ip = ip
        self.discovery_port = int(discovery_port)
        self.legacy_discovery = legacy_discovery
        self.handshake_port = int(handshake_port)
        self.olympe_log_level = olympe_log_level
        self.reachability_timeout = reachability_timeout
        self.close_timeout = close_timeout
        self.last_error = ""
        """Why the last connect failed (for the GUI status line)."""

        self._lock = threading.Lock()
        self._changed = threading.Condition()  # notified on every Olympe event and link change
        self._jobs: queue.Queue[tuple[Callable[[], Any], concurrent.futures.Future] | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._drone: Any = None
        self._olympe: ModuleType | None = None
        self._link = "disconnected"
        self._user_disconnected = True
        self._closing = False  # close() has been called: only landing and emergency still go out
        self._closed = False
        self._worker_sent_away = False  # close() queued the worker's last jobs
        self._connect_abort = threading.Event()  # the latest connect's; set by disconnect() and close()
        self._t = 0.0
        self._tel: dict[str, Any] = {}
        self._heading0: float | None = None
        self._gps_origin: tuple[float, float] | None = None
        self._dead_reckoning = [0.0, 0.0]
        self._last_speed_time: float | None = None
        self._move_pending = False
        self._pcmd_latest: tuple[int, ...] = (0, 0, 0, 0)
        self._pcmd_queued = False
        self._events: list[tuple[float, str, dict[str, Any]]] = []
        self._subscriber: Any = None

    # ------------------------------------------------------------------ worker thread
    def _submit(self, fn: Callable[[], Any]) -> concurrent.futures.Future:
        if self._closing:
            raise RuntimeError("OlympeBackend is closed")
        return self._enqueue(fn)

    def _enqueue(self, fn: Callable[[], Any]) -> concurrent.futures.Future:
        fut: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:  # held while queueing: nothing can land behind close()'s end-of-work marker
            if self._worker_sent_away:
                raise RuntimeError("OlympeBackend is closed")
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="olympe-backend", daemon=True)
                self._worker.start()
            self._jobs.put((fn, fut))
        return fut

    def _work(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            fn, fut = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except Exception as e:  # reported to whoever waits on the future, and logged
                log.exception("Olympe backend job failed")
                fut.set_exception(e)

    # ------------------------------------------------------------------ seams (tests replace these)
    def _check_reachable(self) -> tuple[bool, str]:
        port = self.handshake_port if self.legacy_discovery else self.discovery_port
        return tcp_reachable(self.ip, port, self.reachability_timeout)

    def _new_drone(self) -> Any:
        """A Bebop2Drone for :attr:`ip` (imports Olympe on first use)."""
        if self._olympe is None:
            self._olympe = import_olympe(self.olympe_log_level)
        cls = _bebop2_drone_class(self._olympe)
        return cls(
            self.ip,
            discovery_port=self.discovery_port,
            legacy_discovery=self.legacy_discovery,
            handshake_port=self.handshake_port,
        )

    def _piloting_message(self, name: str) -> Any:
        """The Olympe message class ``ardrone3.Piloting.<name>`` (TakeOff, Landing, Emergency, moveBy)."""
        from olympe.messages.ardrone3 import Piloting

        return getattr(Piloting, name)

    # ------------------------------------------------------------------ link
    def connect(self) -> bool:
        """Check reachability, then connect through Olympe (blocks: call it off the GUI
        thread, or use :meth:`connect_async`). Returns True once the drone answers; False if it
        does not, or if :meth:`close` or :meth:`disconnect` cut the attempt short."""
        return bool(self.connect_async().result())

    def connect_async(self) -> concurrent.futures.Future:
        """:meth:`connect` on the worker thread; the Future resolves to True/False."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        if self._closing:
            self.last_error = "Bebop 2: not connecting, the backend is closed"
            log.warning(self.last_error)
            fut.set_result(False)
            return fut
        ok, why = self._check_reachable()
        if not ok:
            self.last_error = f"Bebop 2 not reachable: {why}"
            log.warning(self.last_error)
            fut.set_result(False)
            return fut
        abort = threading.Event()
        with self._lock:
            self._connect_abort = abort  # disconnect() and close() set it
        self._link = "connecting"
        try:
            return self._submit(lambda: self._do_connect(abort))
        except RuntimeError:  # close() came in between
            self._link = "disconnected"
            fut.set_result(False)
            return fut

    def cancel_connect(self) -> None:
        """Make a connect in progress (or queued) give up at once: it disconnects whatever Olympe
        opened meanwhile and resolves to False. Any thread; no-op without one."""
        with self._lock:
            abort = self._connect_abort
        abort.set()
        drone = self._drone
        if drone is not None and hasattr(drone, "abort_connect"):
            drone.abort_connect()

    def _do_connect(self, abort: threading.Event) -> bool:
        if abort.is_set():
            self._connect_aborted(0.0)
            return False
        if self._drone is not None and self._drone.connected:
            self._set_link("connected")
            return True
        if self._drone is None:
            self._drone = self._new_drone()
            self._subscriber = self._drone.subscribe(self._on_event, None)  # None: every event
        t0 = time.monotonic()
        ok = bool(self._drone.connect_abortable(abort, CONNECT_TIMEOUT_S))
        if abort.is_set():
            # close() or disconnect() came while Olympe was connecting: whatever Olympe did
            # meanwhile, no link may stay open (nor piloting start) behind the user's back
            self._connect_aborted(time.monotonic() - t0)
            return False
        if not ok:
            self._set_link("disconnected")
            self.last_error = f"Olympe could not connect to {self.ip} (after {time.monotonic() - t0:.1f} s)"
            log.warning(self.last_error)
            return False
        log.info("connected to the Bebop 2 at %s in %.2f s", self.ip, time.monotonic() - t0)
        self._user_disconnected = False
        self.last_error = ""
        self._drone.start_piloting()
        self._set_link("connected")
        return True

    def _connect_aborted(self, after_s: float) -> None:
        self.last_error = f"connecting to {self.ip} cancelled (disconnect or close, after {after_s:.1f} s)"
        log.info(self.last_error)
        self._release_drone()  # a fresh Olympe Drone for the next connect: this one may be half-open
        self._set_link("disconnected")

    def _set_link(self, link: str) -> None:
        self._link = link
        with self._changed:
            self._changed.notify_all()

    def disconnect(self) -> None:
        """Disconnect (blocks until Olympe is done; off the GUI thread). A connect in progress
        is cut short first, so this does not wait for Olympe's 45 s connect time-out."""
        if self._worker is None or self._closing:
            return
        self._user_disconnected = True
        self.cancel_connect()
        try:
            self._submit(self._do_disconnect).result()
        except RuntimeError:  # close() came in between: it disconnects
            return

    def _do_disconnect(self) -> None:
        if self._drone is not None and (self._drone.connected or self._drone.connecting):
            self._drone.disconnect()
        self._set_link("disconnected")

    def close(self) -> None:
        """Disconnect, destroy the Olympe Drone (its threads end) and stop the worker.

        From the moment it is called no queued take-off, PCMD or moveBy reaches the drone (a
        landing still does, and :meth:`emergency` until the link is down), and a connect in
        progress is aborted instead of waited for. Waits at most :attr:`close_timeout` s for the worker;
        if Olympe is stuck beyond that, the worker still disconnects and destroys the Drone
        when Olympe returns (a connect that succeeds that late is disconnected at once)."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        self._user_disconnected = True
        self.cancel_connect()
        with self._lock:
            worker = self._worker
            if worker is not None:
                done: concurrent.futures.Future = concurrent.futures.Future()
                self._jobs.put((self._do_close, done))
                self._jobs.put(None)  # the worker ends after _do_close, whenever Olympe lets it
            self._worker_sent_away = True
        if worker is not None:
            try:
                done.result(timeout=self.close_timeout)
            except concurrent.futures.TimeoutError:
                log.error(
                    "Olympe did not shut down within %.0f s; the worker closes the link when Olympe returns",
                    self.close_timeout,
                )
            else:
                worker.join(timeout=5.0)
        self._closed = True
        with self._lock:
            self._worker = None
        self._set_link("disconnected")

    def _do_close(self) -> None:
        self._release_drone()
        self._set_link("disconnected")

    def _release_drone(self) -> None:
        """Disconnect and destroy the Olympe Drone, if any (worker thread)."""
        drone = self._drone
        if drone is None:
            return
        if drone.connected or drone.connecting:
            # Disconnect first: destroy() stops the media loop before it disconnects, and the
            # disconnection then waits 5 s on that stopped loop.
            drone.disconnect()  # (it stops piloting; stop_piloting() itself logs a bogus error)
        # only now: until the link is down, emergency() still reaches the drone
        self._drone = None
        if self._subscriber is not None:
            drone.unsubscribe(self._subscriber)
            self._subscriber = None
        media = getattr(drone, "_media", None)
        if media is not None:
            # destroy() stops the media loop, then resets the media state on that stopped
            # loop and waits 5 s for nothing (the Drone is going away: nothing to reset).
            media.reset_state = lambda: None
        drone.destroy()

    def wait_until(self, predicate: Callable[[OlympeBackend], bool], timeout: float) -> bool:
        """Block until ``predicate(self)`` holds (re-checked on every Olympe event, at least
        every 0.1 s) or ``timeout`` passes; returns its last value. For tests and scripts."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return bool(predicate(self))
                self._changed.wait(min(remaining, 0.1))
        return True

    @property
    def link(self) -> str:
        """disconnected / connecting / connected / lost (the drone stopped answering)."""
        if self._closed:
            return "disconnected"
        drone = self._drone
        if self._link == "connected" and drone is not None and not drone.connected and not self._user_disconnected:
            return "lost"
        return self._link

    @property
    def closing(self) -> bool:
        """:meth:`close` has been called (commands other than landing and emergency are refused)."""
        return self._closing

    # ------------------------------------------------------------------ commands
    def _send_when_connected(self, what: str, make: Callable[[Any], None]) -> bool:
        """Queue ``make(drone)`` for the worker; False (and a warning) when there is no link.

        Once :meth:`close` has been called only a landing is still sent, even if the job was
        queued before (behind a connect in progress, say)."""

        def allowed() -> bool:
            return not self._closing or (what == "land" and not self._closed)

        def job() -> None:
            drone = self._drone
            if not allowed():
                log.warning("Bebop 2: %s dropped, the backend is closing", what)
            elif drone is None or not drone.connected:
                log.warning("Bebop 2: %s not sent, link is %s", what, self.link)
            else:
                make(drone)
                return
            if what == "pcmd":
                with self._lock:
                    self._pcmd_queued = False

        if self._worker is None or not allowed():
            log.warning("Bebop 2: %s not sent, %s", what, "the backend is closed" if self._closing else "not connected")
            return False
        try:
            self._enqueue(job)
        except RuntimeError:
            return False
        return True

    def takeoff(self) -> None:
        def send(drone: Any) -> None:
            with self._lock:
                self._heading0 = None  # re-anchor the local frame at this take-off
                self._gps_origin = None
                self._dead_reckoning = [0.0, 0.0]
            drone(self._piloting_message("TakeOff")())

        self._send_when_connected("takeoff", send)

    def land(self) -> None:
        def send(drone: Any) -> None:
            drone(self._piloting_message("Landing")())

        self._send_when_connected("land", send)

    def emergency(self) -> None:
        """Cut the motors now, from the calling thread (never queued behind other jobs): it
        reaches the drone whenever the link is up, closing or not."""
        drone = self._drone
        if drone is None or not drone.connected:
            log.error("Bebop 2: EMERGENCY not sent, link is %s", self.link)
            return
        drone(self._piloting_message("Emergency")())  # see Bebop2Drone._send_command_impl for the v1 work-around

    def pcmd(self, roll: int, pitch: int, yaw: int, gaz: int) -> None:
        # Coalesced: the supervisor may call this at every step; only the latest setpoint
        # matters, so at most one pcmd job waits in the queue.
        with self._lock:
            self._pcmd_latest = tuple(int(max(-100, min(100, v))) for v in (roll, pitch, yaw, gaz))
            if self._pcmd_queued:
                return
            self._pcmd_queued = True

        def send(drone: Any) -> None:
            with self._lock:
                values = self._pcmd_latest
                self._pcmd_queued = False
            if not any(values) and self._move_pending:
                # A Bebop 2 ends a running moveBy when it gets a new one (moveByEnd
                # "interrupted"): a zero move is how "stop" reaches it.
                drone(self._piloting_message("moveBy")(0.0, 0.0, 0.0, 0.0))
            drone.piloting(*values, 0)  # 0 s: held until the next call

        if not self._send_when_connected("pcmd", send):
            with self._lock:
                self._pcmd_queued = False

    def move_by(self, dx: float, dy: float, dz: float, dpsi: float) -> None:
        def send(drone: Any) -> None:
            self._move_pending = True
            drone.piloting(0, 0, 0, 0, 0)
            drone(self._piloting_message("moveBy")(float(dx), float(dy), float(dz), float(dpsi)))

        self._send_when_connected("move_by", send)

    # ------------------------------------------------------------------ telemetry
    def _on_event(self, event: Any, _scheduler: Any = None) -> None:
        """Olympe's thread: keep the latest value of every telemetry message."""
        with self._changed:
            self._changed.notify_all()
        message = getattr(event, "message", None)
        if message is None:
            return
        name = message.fullName
        short = _TELEMETRY.get(name)
        if short is None:
            return
        args = {k: (v.name if hasattr(v, "name") else v) for k, v in dict(event.args).items()}
        now = time.monotonic()
        with self._lock:
            self._events.append((now, short, args))
            if len(self._events) > 100_000:
                del self._events[:50_000]
            self._tel[short] = args
            if short == "attitude" and self._heading0 is None:
                self._heading0 = float(args["yaw"])
            elif short == "speed":
                self._integrate_speed(args, now)
            elif short == "position" and self._gps_origin is None and _gps_valid(args):
                self._gps_origin = (float(args["latitude"]), float(args["longitude"]))
            elif short == "move_by_end":
                self._move_pending = False

    def _integrate_speed(self, args: dict[str, Any], now: float) -> None:
        if self._last_speed_time is not None:
            dt = min(now - self._last_speed_time, 0.5)
            x, y = arsdk.rotate_ned_to_local(float(args["speedX"]), float(args["speedY"]), self._heading0 or 0.0)
            self._dead_reckoning[0] += x * dt
            self._dead_reckoning[1] += y * dt
        self._last_speed_time = now

    def drain_events(self) -> list[tuple[float, str, dict[str, Any]]]:
        """Telemetry events received since the last call: (monotonic time, kind, args), kind in
        flying_state, position, speed, attitude, altitude, battery, move_by_end."""
        with self._lock:
            out, self._events = self._events, []
        return out

    def state(self) -> DroneState:
        with self._lock:
            tel = dict(self._tel)
            heading0 = self._heading0 or 0.0
            origin = self._gps_origin
            dr = list(self._dead_reckoning)
        s = DroneState(t=self._t, link=self.link)
        if "speed" in tel and "attitude" in tel:
            sp, at = tel["speed"], tel["attitude"]
            (vx, vy, vz), (roll, pitch, yaw) = arsdk.local_from_ned(
                (sp["speedX"], sp["speedY"], sp["speedZ"]), (at["roll"], at["pitch"], at["yaw"]), heading0
            )
            s = replace(s, vx=vx, vy=vy, vz=vz, roll=roll, pitch=pitch, yaw=yaw)
        x, y = dr
        pos = tel.get("position")
        if pos is not None and origin is not None and _gps_valid(pos):
            north, east = arsdk.north_east_from_gps(float(pos["latitude"]), float(pos["longitude"]), origin)
            x, y = arsdk.rotate_ned_to_local(north, east, heading0)
        s = replace(s, x=x, y=y)
        if "altitude" in tel:
            s = replace(s, z=float(tel["altitude"]["altitude"]))
        if "battery" in tel:
            s = replace(s, battery=float(tel["battery"]["percent"]))
        if "flying_state" in tel:
            s = replace(s, flying_state=str(tel["flying_state"]["state"]))
        return s

    def step(self, t: float) -> None:
        """Record the data time the next :meth:`state` is stamped with (telemetry arrives on
        its own from Olympe's threads)."""
        self._t = float(t)

    @property
    def rerouted_commands(self) -> list[str]:
        """Commands the Emergency work-around re-routed to the acked buffer."""
        drone = self._drone
        return list(drone.rerouted_commands) if drone is not None else []


_TELEMETRY = {
    "ardrone3.PilotingState.FlyingStateChanged": "flying_state",
    "ardrone3.PilotingState.PositionChanged": "position",
    "ardrone3.PilotingState.SpeedChanged": "speed",
    "ardrone3.PilotingState.AttitudeChanged": "attitude",
    "ardrone3.PilotingState.AltitudeChanged": "altitude",
    "common.CommonState.BatteryStateChanged": "battery",
    "ardrone3.PilotingEvent.moveByEnd": "move_by_end",
}


def _gps_valid(args: dict[str, Any]) -> bool:
    lat, lon = float(args["latitude"]), float(args["longitude"])
    return (
        abs(lat - arsdk.POSITION_UNAVAILABLE) > 1e-6
        and abs(lon - arsdk.POSITION_UNAVAILABLE) > 1e-6
        and math.isfinite(lat)
        and math.isfinite(lon)
    )
