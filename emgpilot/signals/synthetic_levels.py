"""Compare the synthetic arm's Myo EMG with real recordings (rest / fist / flexion / extension).

``python -m emgpilot.signals.synthetic_levels [SHARED_DATA_DIR]`` prints a markdown table of
per-subject medians of 200 ms window RMS (mean over the 8 channels, and the strongest channel)
for the real ``cote_allard_myo`` and ``myo_readings`` subjects and for 20 synthetic wearers;
``--shape`` prints spectral band shares and amplitude statistics instead.
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


BANDS_HZ = ((0, 10), (10, 20), (20, 48), (48, 52), (52, 58), (58, 62), (62, 100))


def shape_stats(emg: np.ndarray, labels: np.ndarray, names: list[str], cls: str) -> dict[str, float] | None:
    """Spectral band shares (% of power, Welch over 128-sample segments), amplitude statistics
    (mean-absolute / RMS, excess kurtosis, per channel then averaged) and the mean correlation of
    neighbouring and opposite electrodes of one class's raw EMG."""
    from scipy import signal, stats

    if cls not in names:
        return None
    idx = np.flatnonzero(labels == names.index(cls))
    segments = [s for s in np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1) if len(s) >= 256]
    if not segments:
        return None
    psd, ratio, kurt, adj, opp = [], [], [], [], []
    for seg in segments:
        x = emg[seg[20:]].astype(np.float64)  # skip the first 100 ms: label edges
        x -= x.mean(axis=0)
        f, p = signal.welch(x, fs=200.0, nperseg=128, axis=0)
        psd.append(p.mean(axis=1))
        rms = np.sqrt((x**2).mean(axis=0)) + 1e-9
        ratio.append(float(np.mean(np.abs(x).mean(axis=0) / rms)))
        kurt.append(float(np.mean(stats.kurtosis(x, axis=0))))
        c = np.corrcoef(x.T)
        n_ch = x.shape[1]
        adj.append(float(np.mean([c[k, (k + 1) % n_ch] for k in range(n_ch)])))
        opp.append(float(np.mean([c[k, (k + n_ch // 2) % n_ch] for k in range(n_ch)])))
    p = np.mean(psd, axis=0)
    total = p.sum()
    out = {f"{a}-{b} Hz": 100.0 * float(p[(f >= a) & (f < b)].sum() / total) for a, b in BANDS_HZ}
    out["mav/rms"] = float(np.median(ratio))
    out["kurtosis"] = float(np.median(kurt))
    out["corr neighbours"] = float(np.median(adj))
    out["corr opposite"] = float(np.median(opp))
    return out


def shape_table(root: Path, seeds: Iterable[int] = range(10)) -> str:
    """Markdown table of :func:`shape_stats` for real sets (medians over files) and synthetic wearers."""
    sets: dict[str, list[tuple[np.ndarray, np.ndarray, list[str]]]] = {}
    for name in ("cote_allard_myo", "myo_readings"):
        files = sorted((root / name).glob("*.npz"))
        sets[name] = []
        for f in files:
            with np.load(f, allow_pickle=False) as d:
                sets[name].append((d["emg"], d["labels"], [str(n) for n in d["class_names"]]))
    items = [(3.0 + 8.0 * i, 5.0, ("fist", "wrist_extension")[i % 2]) for i in range(4)]
    sets["synthetic"] = []
    for seed in seeds:
        data, _ = generate(
            seed=seed, duration_s=items[-1][0] + 7.0, schedule=Schedule.scripted(items), streams=("forearm_emg",)
        )
        emg = data["forearm_emg"]
        labels = np.full(len(emg), -1, dtype=np.int8)
        labels[emg.t < 2.8] = 0
        for t0, dur, label in items:
            labels[(emg.t >= t0 + 0.3) & (emg.t < t0 + dur - 0.2)] = list(CLASSES).index(label)
        sets["synthetic"].append((emg.data, labels, list(CLASSES)))
    cols = [f"{a}-{b} Hz" for a, b in BANDS_HZ] + ["mav/rms", "kurtosis", "corr neighbours", "corr opposite"]
    # mav/rms needs two decimals: Gaussian noise gives 0.80, real rest ~0.65-0.75.
    lines = ["| set | class | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for name, recs in sets.items():
        for cls in ("rest", "fist", "wrist_extension"):
            st = [r for r in (shape_stats(*rec, cls) for rec in recs) if r is not None]
            if st:
                vals = [np.median([r[c] for r in st]) for c in cols]
                cells = [
                    f"{v:.1f}" if c.endswith("Hz") or c == "kurtosis" else f"{v:.2f}"
                    for c, v in zip(cols, vals, strict=True)
                ]
                lines.append(f"| {name} | {cls} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
    parser.add_argument(
        "shared_data",
        nargs="?",
        default=str(Path(__file__).resolve().parents[3] / "shared" / "data"),
        help="folder holding cote_allard_myo/ and myo_readings/",
    )
    parser.add_argument("--shape", action="store_true", help="print spectral band shares and amplitude statistics")
    args = parser.parse_args(argv)
    root = Path(args.shared_data)
    if args.shape:
        print(shape_table(root))
        return 0
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
