"""Compare the synthetic arm's Myo EMG with real recordings (rest / fist / flexion / extension).

``python -m emgpilot.signals.synthetic_levels [SHARED_DATA_DIR]`` prints a markdown table of
per-subject medians of 200 ms window RMS (mean over the 8 channels, and the strongest channel)
for the real ``cote_allard_myo`` and ``myo_readings`` subjects and for 20 synthetic wearers;
``--shape`` prints spectral band shares and amplitude statistics instead, ``--patterns`` the
spatial pattern of each gesture around the electrode ring (each subject turned so that its
wrist-extension peak is at electrode 0) and per-channel ZC / WL-per-MAV statistics, for
``cote_allard_myo/pre_*`` and the ``myo_readings`` development subjects only.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from emgpilot.signals.streams import Chunk
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


def _held_gestures(seed: int, items: list[tuple[float, float, str]], names: list[str]) -> tuple[Chunk, np.ndarray]:
    """Forearm EMG of wearer ``seed`` holding the scripted ``items``, with per-sample class labels.

    The onset/offset ramps are labelled -1 (skipped), as the real held-gesture labels mostly do.
    """
    data, _ = generate(
        seed=seed, duration_s=items[-1][0] + 6.0, schedule=Schedule.scripted(items), streams=("forearm_emg",)
    )
    emg = data["forearm_emg"]
    labels = np.zeros(len(emg), dtype=np.int8)
    for t0, dur, label in items:
        labels[(emg.t >= t0 + 0.3) & (emg.t < t0 + dur - 0.2)] = names.index(label)
        labels[(emg.t >= t0) & (emg.t < t0 + 0.3)] = -1
        labels[(emg.t >= t0 + dur - 0.2) & (emg.t < t0 + dur + 0.3)] = -1
    return emg, labels


def synthetic_levels(seeds: Iterable[int] = range(20), reps: int = 2) -> list[dict[str, tuple[float, float]]]:
    """Cued sessions (3 s rest / 3 s gesture) of each synthetic wearer, measured like the real data."""
    res = []
    gestures = ("fist", "wrist_flexion", "wrist_extension")
    items = [(3.0 + 6.0 * i, 3.0, gestures[i % 3]) for i in range(3 * reps)]
    names = list(CLASSES)
    for seed in seeds:
        emg, labels = _held_gestures(seed, items, names)
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


PATTERN_CLASSES = ("fist", "wrist_flexion", "wrist_extension", "radial_deviation", "ulnar_deviation")
DEV_MYO_READINGS = ("right_10000", "right_12345", "right_19999", "right_22222")
"""The myo_readings development subjects (the others are held out for recognition results)."""


def channel_levels(emg: np.ndarray, labels: np.ndarray, names: list[str], classes: Iterable[str]) -> dict[str, dict]:
    """Per class: median per-channel RMS of 200 ms windows fully inside the label (``rms``, [8]),
    and the mean per-channel zero-crossing rate (per sample) and waveform length per mean
    absolute value (``zc``, ``wl_mav``, [8]): the spectral content the recognisers' time-domain
    features see (means, not medians: one window's ZC comes in steps of 1/39)."""
    n = len(emg) // WINDOW
    x = emg[: n * WINDOW].astype(np.float64).reshape(n, WINDOW, emg.shape[1])
    x = x - x.mean(axis=1, keepdims=True)
    rms = np.sqrt((x**2).mean(axis=1))
    mav = np.abs(x).mean(axis=1) + 1e-9
    wl = np.abs(np.diff(x, axis=1)).sum(axis=1) / (WINDOW - 1)
    zc = (np.signbit(x[:, 1:]) != np.signbit(x[:, :-1])).mean(axis=1)
    lab = labels[: n * WINDOW].reshape(n, WINDOW)
    out: dict[str, dict] = {}
    for cls in ("rest", *classes):
        if cls not in names:
            continue
        sel = (lab == names.index(cls)).all(axis=1)
        if sel.sum() < 5:
            continue
        out[cls] = {
            "rms": np.median(rms[sel], axis=0),
            "zc": zc[sel].mean(axis=0),
            "wl_mav": (wl[sel] / mav[sel]).mean(axis=0),
        }
    return out


def circular_shift(v: np.ndarray, shift: float) -> np.ndarray:
    """``v`` (around a ring of electrodes) turned by ``shift`` electrodes (fractional: band-limited
    interpolation), so that ``out[k] = v[k + shift]``."""
    n = len(v)
    f = np.fft.rfft(v)
    k = np.arange(len(f))
    return np.fft.irfft(f * np.exp(2j * np.pi * k * shift / n), n)


def aligned_patterns(levels: dict[str, dict], classes: Iterable[str] = PATTERN_CLASSES) -> dict[str, np.ndarray] | None:
    """Each gesture's rest-subtracted channel RMS, normalised to mean 1 and turned around the ring
    so that the wrist-extension pattern's first circular harmonic peaks at electrode 0 (removes
    the armband's rotation, which differs between people)."""
    if "wrist_extension" not in levels or "rest" not in levels:
        return None
    rest = levels["rest"]["rms"]

    def active(cls: str) -> np.ndarray:
        return np.sqrt(np.maximum(levels[cls]["rms"] ** 2 - rest**2, 0.0)) + 1e-6

    ext = active("wrist_extension")
    phase = np.angle(np.sum(ext * np.exp(2j * np.pi * np.arange(len(ext)) / len(ext))))
    shift = phase / (2 * np.pi) * len(ext)
    out = {}
    for cls in classes:
        if cls in levels:
            a = active(cls)
            out[cls] = circular_shift(a / a.mean(), shift)
    return out


def real_pattern_sets(root: Path) -> dict[str, list[dict[str, dict]]]:
    """Channel levels of the pattern reference subjects: ``cote_allard_myo/pre_*`` and the four
    ``myo_readings`` development subjects (never the held-out evaluation subjects)."""
    sets: dict[str, list[dict[str, dict]]] = {}
    files = {
        "cote_allard_myo pre_*": sorted((root / "cote_allard_myo").glob("pre_*.npz")),
        "myo_readings dev": [root / "myo_readings" / f"{s}.npz" for s in DEV_MYO_READINGS],
    }
    for name, paths in files.items():
        sets[name] = []
        for f in paths:
            if not f.is_file():
                log.warning("%s not found: skipped", f)
                continue
            with np.load(f, allow_pickle=False) as d:
                names = [str(n) for n in d["class_names"]]
                sets[name].append(channel_levels(d["emg"], d["labels"], names, PATTERN_CLASSES))
    return sets


def synthetic_pattern_levels(seeds: Iterable[int] = range(20), reps: int = 2) -> list[dict[str, dict]]:
    """Channel levels of cued synthetic sessions (3 s holds of each pattern class), like the real data."""
    n = len(PATTERN_CLASSES)
    items = [(3.0 + 6.0 * i, 3.0, PATTERN_CLASSES[i % n]) for i in range(n * reps)]
    names = ["rest", *PATTERN_CLASSES]
    res = []
    for seed in seeds:
        emg, labels = _held_gestures(seed, items, names)
        res.append(channel_levels(emg.data, labels, names, PATTERN_CLASSES))
    return res


def aligned_stack(levels: list[dict[str, dict]]) -> dict[str, np.ndarray]:
    """Per class, ``[n_subjects, 8]`` aligned patterns (:func:`aligned_patterns`) of a set."""
    aligned = [a for a in (aligned_patterns(lv) for lv in levels) if a is not None]
    return {c: np.array([a[c] for a in aligned if c in a]) for c in PATTERN_CLASSES}


def pattern_sets(root: Path, seeds: Iterable[int] = range(20)) -> dict[str, list[dict[str, dict]]]:
    """Channel levels of the real pattern reference sets plus the synthetic wearers ``seeds``."""
    sets = real_pattern_sets(root)
    sets["synthetic"] = synthetic_pattern_levels(seeds)
    return sets


def active_spectrum(levels: dict[str, dict], cls: str, stat: str) -> float | None:
    """Mean of a per-channel spectral statistic (``zc`` or ``wl_mav``) over the class's three
    strongest channels (the muscles' own signal rather than the noise floor)."""
    if cls not in levels:
        return None
    strongest = np.argsort(levels[cls]["rms"])[-3:]
    return float(levels[cls][stat][strongest].mean())


def pattern_table(sets: dict[str, list[dict[str, dict]]]) -> str:
    """Markdown table: per set and class, the median aligned pattern per electrode, its
    focality (strongest aligned channel / mean, median over subjects), how well each subject's
    pattern correlates with the real subjects' median (median and p10), and the spectral
    statistics of the three strongest channels (median over subjects)."""
    real = [lv for name, levels in sets.items() if name != "synthetic" for lv in levels]
    real_median = {c: np.median(v, axis=0) for c, v in aligned_stack(real).items() if len(v)}
    lines = [
        "| set | n | class | aligned channel RMS / mean, electrodes 0-7 | focality | corr. with real median: "
        "median (p10) | ZC per sample | WL/MAV |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, levels in sets.items():
        stack = aligned_stack(levels)
        for cls in ("rest", *PATTERN_CLASSES):
            zc = [v for v in (active_spectrum(lv, cls, "zc") for lv in levels) if v is not None]
            wl = [v for v in (active_spectrum(lv, cls, "wl_mav") for lv in levels) if v is not None]
            spectral = f"{np.median(zc):.3f} | {np.median(wl):.3f}" if zc else "- | -"
            if cls == "rest":
                lines.append(f"| {name} | {len(levels)} | rest | - | - | - | {spectral} |")
                continue
            v = stack.get(cls)
            if v is None or not len(v):
                continue
            corr = np.array([np.corrcoef(row, real_median[cls])[0, 1] for row in v])
            cells = " ".join(f"{x:.2f}" for x in np.median(v, axis=0))
            lines.append(
                f"| {name} | {len(v)} | {cls} | {cells} | {np.median(v.max(axis=1)):.2f} "
                f"| {np.median(corr):.2f} ({np.percentile(corr, 10):.2f}) | {spectral} |"
            )
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
    parser.add_argument(
        "--patterns",
        action="store_true",
        help="print spatial patterns around the ring (aligned on wrist extension) and ZC / WL per MAV",
    )
    args = parser.parse_args(argv)
    root = Path(args.shared_data)
    if args.shape:
        print(shape_table(root))
        return 0
    if args.patterns:
        print(pattern_table(pattern_sets(root)))
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
