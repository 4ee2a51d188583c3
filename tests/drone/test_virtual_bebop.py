"""The virtual Bebop 2 against a minimal raw ARSDK client written from the protocol notes
(no Olympe here: tests/drone/test_olympe_backend.py runs the real client)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from emgpilot.drone import arsdk
from emgpilot.drone.arsdk import Buffer, Frame, FrameType
from emgpilot.drone.virtual_bebop import VirtualBebop, require_loopback

TIMEOUT = 5.0


class RawClient:
    """Discovery + handshake + UDP link, frame by frame."""

    def __init__(self, vb: VirtualBebop) -> None:
        self.vb = vb
        self.discovery = socket.create_connection(("127.0.0.1", vb.discovery_port), timeout=TIMEOUT)
        self.info = json.loads(_read_until_nul(self.discovery))
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.udp.settimeout(0.2)
        with socket.create_connection(("127.0.0.1", self.info["port"]), timeout=TIMEOUT) as hs:
            request = {
                "controller_name": "raw-test",
                "controller_type": "pytest",
                "d2c_port": self.udp.getsockname()[1],
                "device_id": "",
                "qos_mode": 0,
                "proto_v_min": 1,
                "proto_v_max": 3,
            }
            hs.sendall(json.dumps(request).encode() + b"\0")
            self.answer = json.loads(_read_until_nul(hs))
        self.c2d = ("127.0.0.1", self.answer["c2d_port"])
        self.seq = arsdk.SeqCounter()
        self.auto_ack = True
        self.auto_pong = True
        self.seen: list[Frame] = []
        self.backlog: list[Frame] = []

    def send(self, frame: Frame) -> None:
        self.udp.sendto(frame.encode(), self.c2d)

    def command(self, name: str, *args, buffer: int = Buffer.C2D_ACK, seq: int | None = None) -> Frame:
        ftype = FrameType.DATA if buffer == Buffer.C2D_NON_ACK else FrameType.DATA_WITH_ACK
        frame = Frame(ftype, buffer, self.seq.next(buffer) if seq is None else seq, arsdk.encode_command(name, *args))
        self.send(frame)
        return frame

    def expect(self, predicate: Callable[[Frame], bool], timeout: float = TIMEOUT) -> Frame:
        """The first frame (already received or arriving within ``timeout``) that matches;
        frames that do not match stay in the backlog for later expectations."""
        for i, frame in enumerate(self.backlog):
            if predicate(frame):
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for frame in self._receive():
                if predicate(frame):
                    return frame
                self.backlog.append(frame)
        raise AssertionError(f"no matching frame within {timeout} s; last frames: {self.seen[-5:]}")

    def expect_event(self, name: str, timeout: float = TIMEOUT, **args) -> arsdk.Command:
        def match(frame: Frame) -> bool:
            if frame.buffer_id not in (Buffer.D2C_ACK, Buffer.D2C_NON_ACK):
                return False
            cmd = arsdk.decode_command(frame.payload)
            return cmd.name == name and all(cmd.args.get(k) == v for k, v in args.items())

        return arsdk.decode_command(self.expect(match, timeout).payload)

    def _receive(self) -> Iterator[Frame]:
        try:
            data, addr = self.udp.recvfrom(65535)
        except TimeoutError:
            return
        assert addr[0] == "127.0.0.1"
        for frame in arsdk.decode_frames(data):
            self.seen.append(frame)
            if frame.type == FrameType.DATA_WITH_ACK and self.auto_ack:
                self.send(arsdk.ack_frame(frame, self.seq.next(frame.buffer_id + 128)))
            if frame.buffer_id == Buffer.PING and self.auto_pong:
                self.send(Frame(FrameType.DATA, Buffer.PONG, frame.seq, frame.payload))
            yield frame

    def close(self) -> None:
        self.udp.close()
        self.discovery.close()


def _read_until_nul(sock: socket.socket) -> str:
    buf = b""
    while b"\0" not in buf:
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError(f"connection closed before the NUL terminator: {buf!r}")
        buf += chunk
    return buf.split(b"\0", 1)[0].decode()


@pytest.fixture
def vb() -> Iterator[VirtualBebop]:
    # 4x faster than real time: take-off and landing take ~0.6 s instead of ~2.5 s
    drone = VirtualBebop(discovery_port=0, handshake_port=0, keepalive_idle_s=0.3, time_scale=4.0).start()
    yield drone
    drone.close()


@pytest.fixture
def client(vb: VirtualBebop) -> Iterator[RawClient]:
    c = RawClient(vb)
    yield c
    c.close()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.42.1", "10.0.0.5", "::1", "example.com"])
def test_refuses_any_non_loopback_address(host):
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        VirtualBebop(host=host, discovery_port=0, handshake_port=0)
    with pytest.raises(ValueError):
        require_loopback(host)
    assert require_loopback("localhost") == "127.0.0.1"


def test_busy_port_is_reported_with_its_number():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"discovery port 127.0.0.1:{port}"):
            VirtualBebop(discovery_port=port, handshake_port=0).start()


def test_discovery_answer_and_handshake(vb, client):
    assert client.info["model.id"] == "0x090c"
    assert client.info["port"] == vb.handshake_port
    assert client.answer["status"] == 0 and client.answer["c2d_port"] == vb.c2d_port
    assert "proto_v" not in client.answer  # protocol v1, like a Bebop 2
    # the discovery connection stays open: no EOF while the session runs
    client.discovery.settimeout(0.2)
    with pytest.raises(TimeoutError):
        client.discovery.recv(1)
    assert vb.link_up


def test_acked_command_is_acked_deduplicated_and_runs_the_sim(vb, client):
    frame = client.command("ardrone3.Piloting.TakeOff")
    ack = client.expect(lambda f: f.type == FrameType.ACK and f.buffer_id == Buffer.C2D_ACK + 128)
    assert arsdk.acked_seq(ack) == frame.seq
    client.send(frame)  # a retry: acked again, run once
    ack2 = client.expect(lambda f: f.type == FrameType.ACK and f.buffer_id == Buffer.C2D_ACK + 128)
    assert arsdk.acked_seq(ack2) == frame.seq
    client.expect_event("ardrone3.PilotingState.FlyingStateChanged", state=1)  # takingoff
    client.expect_event("ardrone3.PilotingState.FlyingStateChanged", state=2)  # hovering
    assert len(vb.commands_named("TakeOff")) == 1
    assert vb.state().flying_state == "hovering"


def test_ping_is_answered_with_a_pong_echoing_seq_and_payload(client):
    client.send(Frame(FrameType.DATA, Buffer.PING, 42, b"\x01\x02\x03\x04\x05\x06\x07\x08"))
    pong = client.expect(lambda f: f.buffer_id == Buffer.PONG)
    assert (pong.seq, pong.payload) == (42, b"\x01\x02\x03\x04\x05\x06\x07\x08")


def test_connect_sequence_answers_all_states_settings_and_optional_protobuf_requests(client):
    client.command("common.Common.AllStates")
    client.expect_event("common.CommonState.BatteryStateChanged", percent=100)
    client.expect_event("common.CommonState.AllStatesChanged")
    client.command("common.Settings.AllSettings")
    client.expect_event("common.SettingsState.AllSettingsChanged")
    developer_get_state = (arsdk.service_id("arsdk.developer.Command"), 16)
    client.command("generic.custom_cmd", *developer_get_state, b"")
    evt = client.expect_event("generic.custom_evt")
    assert evt.args == {"service_id": 21916, "msg_num": 16, "payload": b"\x82\x01\x00"}


def test_unacked_event_is_retransmitted_with_the_same_seq(client):
    client.auto_ack = False
    client.command("common.Settings.AllSettings")
    first = client.expect(lambda f: f.buffer_id == Buffer.D2C_ACK)
    again = client.expect(lambda f: f.buffer_id == Buffer.D2C_ACK)
    assert again == first  # same seq, same payload
    client.send(arsdk.ack_frame(first, 0))
    client.auto_ack = True


def test_pcmd_moves_the_sim_and_telemetry_follows(vb, client):
    client.command("ardrone3.Piloting.TakeOff")
    client.expect_event("ardrone3.PilotingState.FlyingStateChanged", state=2)
    client.command("ardrone3.Piloting.PCMD", 1, 0, 60, 0, 0, 0, buffer=Buffer.C2D_NON_ACK)
    assert vb.wait_until(lambda v: v.sim.x > 0.5, TIMEOUT)
    speed_ids = arsdk.BY_NAME["ardrone3.PilotingState.SpeedChanged"].ids
    forward = client.expect(  # north = forward at take-off
        lambda f: (
            f.buffer_id == Buffer.D2C_NON_ACK
            and (c := arsdk.decode_command(f.payload)).ids == speed_ids
            and c.args["speedX"] > 0.1
        )
    )
    assert forward.type == FrameType.DATA
    client.command("ardrone3.Piloting.PCMD", 1, 0, 0, 0, 0, 0, buffer=Buffer.C2D_NON_ACK)
    client.command("ardrone3.Piloting.moveBy", 0.0, 0.0, -0.5, 0.0)  # 0.5 m up
    end = client.expect_event("ardrone3.PilotingEvent.moveByEnd", timeout=10.0)
    assert end.args["error"] == 0 and end.args["dZ"] == pytest.approx(-0.5)
    assert vb.state().z == pytest.approx(1.5, abs=0.1)
    client.command("ardrone3.Piloting.Landing")
    client.expect_event("ardrone3.PilotingState.FlyingStateChanged", state=4)
    client.expect_event("ardrone3.PilotingState.FlyingStateChanged", state=0, timeout=10.0)


def test_emergency_on_its_own_buffer_cuts_the_motors(vb, client):
    client.command("ardrone3.Piloting.TakeOff")
    client.expect_event("ardrone3.PilotingState.FlyingStateChanged", state=2)
    client.command("ardrone3.Piloting.Emergency", buffer=Buffer.C2D_EMERGENCY)
    client.expect_event("ardrone3.PilotingState.FlyingStateChanged", state=5)
    assert vb.commands_named("Emergency")[0].buffer_id == Buffer.C2D_EMERGENCY


def test_garbage_datagrams_are_dropped_and_the_link_survives(vb, client):
    client.udp.sendto(b"\xff\x00garbage", client.c2d)
    client.send(Frame(FrameType.DATA, Buffer.PING, 1, b"12345678"))
    assert client.expect(lambda f: f.buffer_id == Buffer.PONG).seq == 1
    assert vb.link_up


def test_silent_controller_is_pinged_then_declared_lost_and_the_drone_hovers(vb, client):
    client.command("ardrone3.Piloting.TakeOff")
    client.expect_event("ardrone3.PilotingState.FlyingStateChanged", state=2)
    client.auto_pong = False
    client.command("ardrone3.Piloting.PCMD", 1, 0, 50, 0, 0, 0, buffer=Buffer.C2D_NON_ACK)
    client.expect(lambda f: f.buffer_id == Buffer.PING)  # the drone asks whether we are there
    assert vb.wait_until(lambda v: not v.link_up, TIMEOUT)  # 3 unanswered pings
    assert vb.state().link == "lost"
    assert vb.wait_until(lambda v: v.sim.flying_state == "hovering", TIMEOUT)  # PCMD zeroed


def test_go_silent_stops_all_traffic(vb, client):
    client.expect_event("ardrone3.PilotingState.AltitudeChanged")  # telemetry flows
    vb.go_silent()
    # drain what was already in flight, then nothing more arrives (not even pongs)
    client.backlog.clear()
    client.send(Frame(FrameType.DATA, Buffer.PING, 3, b"12345678"))
    with pytest.raises(AssertionError, match="no matching frame"):
        client.expect(lambda f: f.buffer_id == Buffer.PONG, timeout=0.5)
    vb.go_silent(False)
    client.send(Frame(FrameType.DATA, Buffer.PING, 4, b"12345678"))
    assert client.expect(lambda f: f.buffer_id == Buffer.PONG).seq == 4


def test_close_is_idempotent_and_releases_the_ports():
    vb = VirtualBebop(discovery_port=0, handshake_port=0).start()
    port = vb.discovery_port
    vb.close()
    vb.close()
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))  # free again


def test_sim_command_serves_then_stops(capsys):
    from emgpilot.app.cli import main

    assert main(["sim", "--arsdk", "--discovery-port", "0", "--handshake-port", "0", "--duration", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "discovery  tcp" in out and "fly it: emgpilot run --headless --drone bebop --ip 127.0.0.1" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sim", "--arsdk", "--host", "192.168.42.1"], "refusing host 192.168.42.1"),
        (["sim"], "use --arsdk"),
    ],
)
def test_sim_command_user_errors(capsys, argv, message):
    from emgpilot.app.cli import main

    assert main(argv) == 2
    assert message in capsys.readouterr().err
