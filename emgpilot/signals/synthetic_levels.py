"""Compare the synthetic arm's Myo EMG levels with real recordings (rest / fist / flexion / extension).

Run ``python -m emgpilot.signals.synthetic_levels [SHARED_DATA_DIR]``: prints a markdown table of
per-subject medians of 200 ms window RMS (mean over the 8 channels, and the strongest channel)
for the real ``cote_allard_myo`` and ``myo_readings`` subjects and for 20 synthetic wearers.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from emgpilot.signals.synthetic import generate
from emgpilot.signals.synthetic_model import Schedule

log = logging.getLogger(__name__)

CLASSES = ("rest", "fist", "wrist_flexion", "wrist_extension")
WINDOW = 40  # 200 ms at 200 Hz


def window_levels(emg: np.ndarray, labels: np.ndarray, names: list[str]) -> dict[str, tuple[float, float]]:
    """Per class: median over 200 ms windows (fully inside one label) of the channel-mean RMS and
    of the strongest channel's RMS."""
    n = len(emg) // WINDOW
    x = emg[: n * WINDOW].astype(np.float64).reshape(n, WINDOW, emg.shape[1])
    rms = np.sqrt((x**2).mean(axis=1))
    lab = labels[: n * WINDOW].reshape(n, WINDOW)
    out = {}
    for cls in CLASSES:
        if cls not in names:
            continue
        k = names.index(cls)
        sel = (lab == k).all(axis=1)
        if sel.any():
            out[cls] = (float(np.median(rms[sel].mean(axis=1))), float(np.median(rms[sel].max(axis=1))))
    return out


def real_levels(folder: Path) -> list[dict[str, tuple[float, float]]]:
    """One level dict per recording file in ``folder``."""
    res = []
    for f in sorted(folder.glob("*.npz")):
        with np.load(f, allow_pickle=False) as d:
            names = [str(n) for n in d["class_names"]]
            res.append(window_levels(d["emg"], d["labels"], names))
    return res


def synthetic_levels(seeds: Iterable[int] = range(20), reps: int = 2) -> list[dict[str, tuple[float, float]]]:
    """Cued sessions (3 s rest / 3 s gesture) of each synthetic wearer, measured like the real data."""
    res = []
    gestures = ("fist", "wrist_flexion", "wrist_extension")
    items = [(3.0 + 6.0 * i, 3.0, gestures[i % 3]) for i in range(3 * reps)]
    names = list(CLASSES)
    for seed in seeds:
        data, _ = generate(
            seed=seed, duration_s=items[-1][0] + 6.0, schedule=Schedule.scripted(items), streams=("forearm_emg",)
        )
        emg = data["forearm_emg"]
        labels = np.zeros(len(emg), dtype=np.int8)
        for t0, dur, label in items:
            # Skip the onset/offset ramps as the real held-gesture labels mostly do.
            labels[(emg.t >= t0 + 0.3) & (emg.t < t0 + dur - 0.2)] = names.index(label)
            labels[(emg.t >= t0) & (emg.t < t0 + 0.3)] = -1
            labels[(emg.t >= t0 + dur - 0.2) & (emg.t < t0 + dur + 0.3)] = -1
        res.append(window_levels(emg.data, labels, names))
    return res


def summarize(levels: list[dict[str, tuple[float, float]]], cls: str, which: int) -> str:
    v = np.array([lv[cls][which] for lv in levels if cls in lv])
    if not len(v):
        return "-"
    p10, med, p90 = np.percentile(v, [10, 50, 90])
    return f"{med:.1f} ({p10:.1f}-{p90:.1f}; {v.min():.1f}-{v.max():.1f})"


def table(sets: dict[str, list[dict[str, tuple[float, float]]]]) -> str:
    lines = [
        "| set | n | class | channel-mean RMS: median (p10-p90; min-max) | strongest channel RMS |",
        "|---|---|---|---|---|",
    ]
    for name, levels in sets.items():
        for cls in CLASSES:
            lines.append(
                f"| {name} | {len(levels)} | {cls} | {summarize(levels, cls, 0)} | {summarize(levels, cls, 1)} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shared_data", nargs="?", default=str(Path(__file__).resolve().parents[3] / "shared" / "data"),
                        help="folder holding cote_allard_myo/ and myo_readings/")
    args = parser.parse_args(argv)
    root = Path(args.shared_data)
    sets: dict[str, list[dict[str, tuple[float, float]]]] = {}
    for name in ("cote_allard_myo", "myo_readings"):
        if (root / name).is_dir():
            sets[name] = real_levels(root / name)
        else:
            log.warning("%s not found under %s: skipped", name, root)
    sets["synthetic (20 wearers)"] = synthetic_levels()
    print(table(sets))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
