"""How fast the synthetic arm generates data at speed ``max`` (all three sensor streams).

``python -m emgpilot.signals.synthetic_bench [--minutes 60] [--chunk-s 1.0] [--seed 0]`` prints the
process CPU time and the wall time to read that much data, and the x-real-time factor.
"""

from __future__ import annotations

import argparse
import math
import time

from emgpilot.signals.synthetic import SyntheticArm


def bench(minutes: float = 60.0, chunk_s: float = 1.0, seed: int = 0) -> dict[str, float]:
    """Read ``minutes`` of data at speed max; returns cpu_s, wall_s and samples."""
    arm = SyntheticArm(seed=seed, speed=math.inf, chunk_s=chunk_s, duration_s=minutes * 60.0)
    samples = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    arm.start()
    while not arm.finished:
        for m in arm.read():
            samples += len(getattr(m, "data", ()))
    arm.stop()
    return {
        "data_s": minutes * 60.0,
        "chunk_s": chunk_s,
        "cpu_s": time.process_time() - cpu0,
        "wall_s": time.perf_counter() - wall0,
        "samples": samples,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="data minutes to generate (default 60)")
    parser.add_argument("--chunk-s", type=float, default=1.0, help="data seconds per read (default 1.0)")
    parser.add_argument("--seed", type=int, default=0, help="wearer/schedule seed")
    args = parser.parse_args(argv)
    r = bench(args.minutes, args.chunk_s, args.seed)
    print(
        f"{r['data_s']:.0f} s of data in chunks of {r['chunk_s']:g} s: cpu {r['cpu_s']:.2f} s, "
        f"wall {r['wall_s']:.2f} s ({r['data_s'] / r['cpu_s']:.0f}x real time per CPU second), "
        f"{r['samples']} samples"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
