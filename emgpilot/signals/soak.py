"""Soak benchmark: an hour of device data through the real drivers, in data time, as fast as possible.

Each fake device is wired to its driver through :class:`VirtualSerial`, a pyserial stand-in
whose clock advances by one USB poll (``step_s``) each time the driver finds nothing waiting.
The driver's owner thread, parser, sample clock and queue are the production ones; only the
wire and the wall clock are replaced. While it runs, the consumer samples the queue length and
the traced Python memory: both must stay flat over the hour.

Run: ``.venv/bin/python -m emgpilot.signals.soak --hours 1`` (prints a JSON report).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import time
import tracemalloc
from dataclasses import dataclass, field
from typing import Any

from emgpilot.signals.fakes import FakeMyoDongle, FakeMyoWareBoard, SimpleArm, _FakeDevice
from emgpilot.signals.myo import MyoDevice
from emgpilot.signals.myoware import MyoWareConfig, MyoWareDevice
from emgpilot.signals.serialio import PortDevice
from emgpilot.signals.streams import Chunk

log = logging.getLogger(__name__)


class VirtualSerial:
    """Both ends of a wire in memory: the fake writes into it, the driver reads from it.

    Time is virtual: it advances by ``step_s`` whenever the driver polls an empty wire, and the
    fake is ticked at that time. Nothing sleeps, so an hour of data runs as fast as the code.
    """

    def __init__(self, fake: _FakeDevice, step_s: float = 0.01, t_end: float = float("inf")) -> None:
        self.fake = fake
        self.step_s = step_s
        self.t = 0.0
        self.t_end = t_end
        self.port = "virtual"
        self._rx = bytearray()

    # --- fake side
    def write_from_fake(self, data: bytes) -> int:
        self._rx += data
        return len(data)

    # --- driver side (pyserial interface)
    @property
    def in_waiting(self) -> int:
        return len(self._rx)

    def read(self, size: int = 1) -> bytes:
        if not self._rx:
            if self.t >= self.t_end:
                time.sleep(0.001)  # the hour is over: idle until the consumer stops the driver
                return b""
            self.t += self.step_s
            self.fake._tick(self.t)
        out = bytes(self._rx[:size])
        del self._rx[:size]
        return out

    def write(self, data: bytes) -> int:
        if isinstance(self.fake, FakeMyoDongle):
            self.fake._on_bytes(bytes(data))
        return len(data)

    def reset_input_buffer(self) -> None:
        self._rx.clear()

    def close(self) -> None:
        pass


def _attach(fake: _FakeDevice, wire: VirtualSerial) -> None:
    # the fake's _raw_write calls self.port.write(data) under its lock
    class _Port:
        plugged = True
        path = "virtual"

        @staticmethod
        def write(data: bytes) -> int:
            return wire.write_from_fake(data)

    fake.port = _Port()  # type: ignore[assignment]


@dataclass
class SoakResult:
    device: str
    data_s: float
    wall_s: float
    samples: dict[str, int]
    expected: dict[str, int]
    max_queue: int
    memory_mb: list[float] = field(default_factory=list)  # memory at each checkpoint
    queue_at_checkpoints: list[int] = field(default_factory=list)
    memory_kind: str = "rss"
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def memory_growth_mb(self) -> float:
        """Growth from the first checkpoint after warm-up to the last."""
        return self.memory_mb[-1] - self.memory_mb[0] if len(self.memory_mb) >= 2 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "data_s": round(self.data_s, 3),
            "wall_s": round(self.wall_s, 2),
            "speedup": round(self.data_s / self.wall_s, 1) if self.wall_s else None,
            "samples": self.samples,
            "expected": self.expected,
            "max_queue": self.max_queue,
            "queue_at_checkpoints": self.queue_at_checkpoints,
            "memory": self.memory_kind,
            "memory_mb_first_last_max": [
                round(self.memory_mb[0], 3),
                round(self.memory_mb[-1], 3),
                round(max(self.memory_mb), 3),
            ]
            if self.memory_mb
            else [],
            "memory_growth_mb": round(self.memory_growth_mb, 3),
            "memory_mb": [round(m, 3) for m in self.memory_mb],
            "stats": self.stats,
        }


def _rss_mb() -> float:
    """Resident memory of this process (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def soak_device(kind: str, data_s: float, checkpoints: int = 12, memory: str = "rss") -> SoakResult:
    """Run ``kind`` (``myo``, ``myoware-csv``, ``myoware-binary``) for ``data_s`` seconds of data time.

    ``memory``: ``"rss"`` (resident set size, no overhead) or ``"tracemalloc"`` (Python
    allocations only, exact, but slows the run several times).
    """
    if memory not in ("rss", "tracemalloc"):
        raise ValueError(f"memory must be 'rss' or 'tracemalloc', not {memory!r}")
    trace_memory = memory == "tracemalloc"
    fake: _FakeDevice
    if kind == "myo":
        fake = FakeMyoDongle(source=SimpleArm())
        expected = {"forearm_emg": int(data_s * 200), "forearm_imu": int(data_s * 50)}
    else:
        protocol = kind.split("-")[1]
        # CSV with sequence numbers needs more than 115200 baud at 1 kHz: use the common 250000
        csv = protocol == "csv"
        cfg = MyoWareConfig(protocol=protocol, adc_bits=10 if csv else 12, sequence=csv, baudrate=250000)
        fake = FakeMyoWareBoard(cfg, source=SimpleArm())
        expected = {"upper_emg": int(data_s * cfg.rate_hz)}
    wire = VirtualSerial(fake, t_end=data_s)
    _attach(fake, wire)
    common = {"clock": lambda: wire.t, "opener": lambda path, baud, timeout: wire}
    dev: PortDevice
    if kind == "myo":
        dev = MyoDevice("virtual", vibrate=False, **common)
    else:
        dev = MyoWareDevice("virtual", fake.config, **common)  # type: ignore[attr-defined]
    samples: dict[str, int] = {}
    mem: list[float] = []
    queue_at_checkpoint: list[int] = []
    max_queue = 0
    next_check = data_s / checkpoints
    if trace_memory:
        tracemalloc.start()
    wall0 = time.perf_counter()
    dev.start()
    try:
        while True:
            msgs = dev.read(0.05)
            max_queue = max(max_queue, dev.queue_size + len(msgs))
            for m in msgs:
                if isinstance(m, Chunk):
                    samples[m.info.name] = samples.get(m.info.name, 0) + len(m)
            # Checkpoints follow the data the consumer has taken, not the wire's clock: the driver
            # thread may run far ahead of this loop, and every checkpoint must still be taken.
            consumed_s = data_s * min(samples.get(n, 0) / max(e, 1) for n, e in expected.items())
            # (1 % slack: the last few samples may still be in flight when the wire runs out)
            while consumed_s >= 0.99 * next_check and len(mem) < checkpoints:
                gc.collect()
                mem.append(tracemalloc.get_traced_memory()[0] / 1e6 if trace_memory else _rss_mb())
                queue_at_checkpoint.append(dev.queue_size)
                next_check += data_s / checkpoints
            if wire.t >= data_s and not wire.in_waiting and dev.queue_size == 0:
                break
    finally:
        dev.stop()
        if trace_memory:
            tracemalloc.stop()
    for m in dev.read(0):
        if isinstance(m, Chunk):
            samples[m.info.name] = samples.get(m.info.name, 0) + len(m)
    wall = time.perf_counter() - wall0
    # the first checkpoint is the warm-up (imports, first allocations)
    return SoakResult(
        kind, wire.t, wall, samples, expected, max_queue, mem[1:] or mem, queue_at_checkpoint, memory, dev.stats()
    )


ALL_KINDS = ("myo", "myoware-csv", "myoware-binary")


def bench_soak(hours: float = 1.0, kinds: tuple[str, ...] = ALL_KINDS, memory: str = "rss") -> list[SoakResult]:
    """The soak for every device kind; see the module docstring."""
    return [soak_device(kind, hours * 3600.0, memory=memory) for kind in kinds]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0, help="data time per device (default 1 hour)")
    parser.add_argument("--kinds", nargs="+", default=list(ALL_KINDS), choices=ALL_KINDS)
    parser.add_argument("--memory", choices=["rss", "tracemalloc"], default="rss", help="how memory is measured")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    results = bench_soak(args.hours, tuple(args.kinds), args.memory)
    print(json.dumps([r.to_dict() for r in results], indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
