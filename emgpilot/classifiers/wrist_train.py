"""Training and cross-subject evaluation of the wrist network (PyTorch, CPU, seeded).

Data: the shared ``cote_allard_myo`` recordings (``pre_*`` = previous users for training,
``eval_*`` = people only used for the final report). Every recording segment is conditioned
with the same causal filter the live pipeline uses (:func:`emgpilot.classifiers.wrist.conditioning_sos`,
``sosfilt`` from a zero state; the first ``warmup`` samples of a segment are dropped because
the live filter has no such start-up transient), cut into windows, and turned into
per-electrode features.

Rotation handling (measured in ``docs/readme/wrist.md``): every subject's windows are rolled
to a canonical orientation derived from that subject's own unlabelled activity
(:func:`emgpilot.classifiers.wrist.activity_phase`), and training adds random shifts of up to
``jitter`` electrodes so that a slightly wrong estimate does not hurt.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import signal

from emgpilot.classifiers.wrist import (
    CLASSES,
    DEFAULT_WINDOW,
    FEATURE_NAMES,
    N_CHANNELS,
    N_FEATURES,
    WristModel,
    activity_phase,
    conditioning_sos,
    estimate_shift,
    roll_channels,
    shift_from_phase,
    window_features,
)

log = logging.getLogger(__name__)

# The three pre_* files that are the same person as eval_Female0 (see the data README).
SAME_PERSON_AS_EVAL_FEMALE0 = ("pre_Female7", "pre_Female8", "pre_Female9")


@dataclass
class TrainConfig:
    """Everything that decides the shipped weights (stored in the weights' JSON)."""

    window: int = DEFAULT_WINDOW
    step: int = 5  # training windows every 25 ms
    eval_step: int = 10  # evaluation windows every 50 ms (LibEMG reference uses 50 ms)
    warmup: int = 20  # samples dropped at each segment start (filter start-up)
    align: bool = False  # roll each subject to its own activity reference
    jitter: int = 0  # random electrode shift in [-jitter, jitter] during training
    full_rotation: bool = False  # random shift in 0..7 (rotation-invariant baseline)
    gain_sd: float = 0.3  # log-amplitude augmentation (per window), in natural-log units
    conv: tuple[int, ...] = (16, 16)
    dense: tuple[int, ...] = (32,)
    kernel: int = 3
    epochs: int = 15
    batch: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 1


@dataclass
class SubjectData:
    """Windows of one subject, as features ``[N, F, C]`` with 4-class labels and segment ids."""

    name: str
    features: np.ndarray
    labels: np.ndarray
    segments: np.ndarray
    phase: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def load_recording(path: Path) -> dict[str, np.ndarray]:
    """Read one shared ``.npz`` (never with pickles) and check the keys we need."""
    try:
        with np.load(path, allow_pickle=False) as d:
            data = {k: d[k] for k in d.files}
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot read EMG recording {path}: {e}") from e
    for key in ("emg", "labels", "segment", "class_names"):
        if key not in data:
            raise ValueError(f"{path} has no {key!r} array (keys: {sorted(data)})")
    if data["emg"].ndim != 2 or data["emg"].shape[1] != N_CHANNELS:
        raise ValueError(f"{path}: emg must be [N, {N_CHANNELS}], got {data['emg'].shape}")
    fs = float(data.get("fs", 200))
    if abs(fs - 200.0) > 1e-6:
        raise ValueError(f"{path}: expected 200 Hz Myo data, file says {fs} Hz")
    return data


def class_map(class_names: Sequence[str]) -> np.ndarray:
    """Lookup table from a file's label index to our class index (-1 = not one of ours)."""
    table = np.full(len(class_names), -1, dtype=np.int64)
    for i, name in enumerate(class_names):
        if str(name) in CLASSES:
            table[i] = CLASSES.index(str(name))
    return table


def segment_windows(
    emg: np.ndarray, labels: np.ndarray, segment: np.ndarray, table: np.ndarray, window: int, step: int, warmup: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Causally filter each segment and cut windows; keep windows whose segment label is one of ours.

    A window's label is the label of its last sample (the decision time).
    """
    sos = conditioning_sos()
    xs, ys, ss = [], [], []
    for seg_id in np.unique(segment):
        idx = np.flatnonzero(segment == seg_id)
        lab = table[labels[idx]]
        if not np.any(lab >= 0):
            continue
        raw = emg[idx].astype(np.float64)
        filt = signal.sosfilt(sos, raw, axis=0).astype(np.float32)
        ends = np.arange(warmup + window, len(idx) + 1, step)
        if len(ends) == 0:
            continue
        y = lab[ends - 1]
        keep = y >= 0
        ends, y = ends[keep], y[keep]
        if len(ends) == 0:
            continue
        win = np.lib.stride_tricks.sliding_window_view(filt, window, axis=0)  # [n, C, W]
        xs.append(np.transpose(win[ends - window], (0, 2, 1)))
        ys.append(y)
        ss.append(np.full(len(y), int(seg_id)))
    if not xs:
        return np.zeros((0, window, N_CHANNELS), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ss)


def load_subject(path: Path, window: int, step: int, warmup: int, keep_windows: bool = False) -> SubjectData:
    data = load_recording(path)
    table = class_map(data["class_names"])
    x, y, s = segment_windows(data["emg"], data["labels"], data["segment"], table, window, step, warmup)
    feats = window_features(x)
    extra: dict[str, Any] = {"windows": x} if keep_windows else {}
    if "session" in data:
        extra["session"] = data["session"]
    return SubjectData(path.stem, feats, y, s, activity_phase(feats), extra)


def subject_files(data_dir: Path, prefix: str) -> list[Path]:
    folder = Path(data_dir) / "cote_allard_myo"
    files = sorted(folder.glob(f"{prefix}_*.npz"))
    if not files:
        raise FileNotFoundError(f"no {prefix}_*.npz recordings in {folder}")
    return files


def person_of(name: str) -> str:
    """Person id: the three pre_* files of eval_Female0's person count as one."""
    return "person_eval_Female0" if name in SAME_PERSON_AS_EVAL_FEMALE0 else name


# --------------------------------------------------------------------------- torch part


def _torch():
    import torch

    return torch


def build_net(cfg: TrainConfig):
    torch = _torch()
    nn = torch.nn
    layers: list[Any] = []
    cin = N_FEATURES
    for cout in cfg.conv:
        layers += [nn.Conv1d(cin, cout, cfg.kernel, padding=cfg.kernel // 2, padding_mode="circular"), nn.ReLU()]
        cin = cout
    layers.append(nn.Flatten())
    din = cin * N_CHANNELS
    for dout in cfg.dense:
        layers += [nn.Linear(din, dout), nn.ReLU()]
        din = dout
    layers.append(nn.Linear(din, len(CLASSES)))
    return nn.Sequential(*layers)


def seed_everything(seed: int, threads: int) -> None:
    torch = _torch()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)


def aligned(subject: SubjectData, cfg: TrainConfig, reference_phase: float) -> np.ndarray:
    """The subject's features rolled to the canonical orientation (or unchanged)."""
    if not cfg.align or subject.phase is None:
        return subject.features
    shift = int(np.round(shift_from_phase(subject.phase, reference_phase))) % N_CHANNELS
    return roll_channels(subject.features, shift, axis=2)


def train(subjects: Sequence[SubjectData], cfg: TrainConfig) -> WristModel:
    """Train on the given subjects; returns a numpy :class:`WristModel` (weights exported from torch)."""
    torch = _torch()
    seed_everything(cfg.seed, cfg.threads)
    reference_phase = 0.0
    feats = np.concatenate([aligned(s, cfg, reference_phase) for s in subjects]).astype(np.float32)
    labels = np.concatenate([s.labels for s in subjects]).astype(np.int64)
    mean = feats.mean(axis=(0, 2), keepdims=True)[0]  # [F, 1]: shared over electrodes (rotation-agnostic)
    std = feats.std(axis=(0, 2), keepdims=True)[0] + 1e-6
    # Class weights: each class counts equally whatever its window count.
    counts = np.bincount(labels, minlength=len(CLASSES)).astype(np.float64)
    class_w = torch.tensor(counts.sum() / (len(CLASSES) * np.maximum(counts, 1)), dtype=torch.float32)
    net = build_net(cfg)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = len(labels)
    steps_per_epoch = max(1, n // cfg.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch)
    loss_fn = torch.nn.CrossEntropyLoss(weight=class_w)
    rng = np.random.default_rng(cfg.seed)
    x_all = torch.from_numpy(feats)
    y_all = torch.from_numpy(labels)
    mean_t, std_t = torch.from_numpy(mean), torch.from_numpy(std)
    gain_rows = torch.tensor([1.0, 1.0, 0, 0, 0, 0], dtype=torch.float32)[:, None]  # features that move with gain
    t0 = time.perf_counter()
    net.train()
    for epoch in range(cfg.epochs):
        order = rng.permutation(n)
        total = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * cfg.batch : (b + 1) * cfg.batch]
            xb = x_all[idx].clone()
            if cfg.gain_sd > 0:
                g = torch.from_numpy(rng.normal(0.0, cfg.gain_sd, size=(len(idx), 1, 1)).astype(np.float32))
                xb = xb + g * gain_rows
            if cfg.full_rotation:
                shifts = rng.integers(0, N_CHANNELS, size=len(idx))
            elif cfg.jitter > 0:
                shifts = rng.integers(-cfg.jitter, cfg.jitter + 1, size=len(idx))
            else:
                shifts = None
            if shifts is not None:
                gather = (np.arange(N_CHANNELS)[None, :] + shifts[:, None]) % N_CHANNELS
                gidx = torch.from_numpy(np.broadcast_to(gather[:, None, :], xb.shape).copy())
                xb = torch.gather(xb, 2, gidx)
            xb = (xb - mean_t) / std_t
            loss = loss_fn(net(xb), y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        log.debug("epoch %d loss %.4f", epoch, total / steps_per_epoch)
    log.info("trained on %d windows in %.1f s", n, time.perf_counter() - t0)
    return export(net, cfg, mean, std, reference_phase, [s.name for s in subjects])


def export(net, cfg: TrainConfig, mean: np.ndarray, std: np.ndarray, reference_phase: float, names: list[str]):
    """Torch module -> numpy tensors + metadata (the safetensors layout of the shipped weights)."""
    import torch

    tensors: dict[str, np.ndarray] = {
        "feature_mean": mean.astype(np.float32),
        "feature_std": std.astype(np.float32),
    }
    convs = [m for m in net if isinstance(m, torch.nn.Conv1d)]
    denses = [m for m in net if isinstance(m, torch.nn.Linear)]
    for i, m in enumerate(convs):
        tensors[f"conv{i}.weight"] = m.weight.detach().numpy().astype(np.float32).copy()
        tensors[f"conv{i}.bias"] = m.bias.detach().numpy().astype(np.float32).copy()
    for i, m in enumerate(denses):
        tensors[f"dense{i}.weight"] = m.weight.detach().numpy().astype(np.float32).copy()
        tensors[f"dense{i}.bias"] = m.bias.detach().numpy().astype(np.float32).copy()
    meta = {
        "format": "emgpilot-wrist-1",
        "classes": list(CLASSES),
        "window": cfg.window,
        "channels": N_CHANNELS,
        "fs_hz": 200.0,
        "input_stream": "forearm_emg.filtered",
        "features": list(FEATURE_NAMES),
        "normalisation": "per-feature z-score with feature_mean/feature_std (shared over electrodes)",
        "reference_phase": reference_phase,
        "arch": {"n_conv": len(convs), "n_dense": len(denses), "conv": list(cfg.conv), "dense": list(cfg.dense)},
        "train_config": _jsonable(asdict(cfg)),
        "training_subjects": names,
    }
    return WristModel(tensors=tensors, meta=meta)


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def save_model(model: WristModel, out_dir: Path, name: str = "wrist") -> Path:
    from safetensors.numpy import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.safetensors"
    save_file({k: np.ascontiguousarray(v) for k, v in model.tensors.items()}, str(path))
    (out_dir / f"{name}.json").write_text(json.dumps(model.meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- evaluation


def evaluate_subject(
    model: WristModel, subject: SubjectData, rotation: int = 0, estimate_rotation: bool = False
) -> dict[str, float]:
    """Window accuracy (4 classes) and flexion-vs-extension accuracy on active windows.

    ``rotation`` simulates the armband sitting that many electrodes further round (electrode
    ``i`` then reads what electrode ``i - rotation`` read). With ``estimate_rotation`` the
    model's shift is estimated from the subject's own unlabelled windows
    (:func:`emgpilot.classifiers.wrist.estimate_shift`); otherwise no compensation.
    """
    feats = subject.features
    if rotation:
        feats = np.roll(feats, rotation, axis=2)
    shift = estimate_shift(model, feats) if estimate_rotation else 0
    logits = model.logits_from_features(feats, rotation=shift)
    pred = logits.argmax(axis=1)
    y = subject.labels
    wrist = np.isin(y, (2, 3))
    two = np.where(logits[wrist, 2] >= logits[wrist, 3], 2, 3)
    return {
        "ca4": float(np.mean(pred == y)),
        "flex_ext": float(np.mean(two == y[wrist])) if wrist.any() else float("nan"),
        "n": len(y),
        "shift": int(shift),
    }


def cross_validate(
    subjects: Sequence[SubjectData],
    cfg: TrainConfig,
    n_folds: int = 5,
    rotations: Sequence[int] = (0,),
    estimate_rotation: bool = False,
) -> dict[str, Any]:
    """Leave-people-out CV on the given (pre_*) subjects: folds of whole people."""
    people = sorted({person_of(s.name) for s in subjects})
    rng = np.random.default_rng(1234)
    order = rng.permutation(len(people))
    folds = [set(np.array(people)[order[i::n_folds]]) for i in range(n_folds)]
    per_subject: dict[str, dict[int, dict[str, float]]] = {}
    for k, held in enumerate(folds):
        train_s = [s for s in subjects if person_of(s.name) not in held]
        test_s = [s for s in subjects if person_of(s.name) in held]
        model = train(train_s, cfg)
        for s in test_s:
            per_subject[s.name] = {r: evaluate_subject(model, s, r, estimate_rotation) for r in rotations}
        log.info("fold %d done (%d test subjects)", k, len(test_s))
    summary = {
        r: {
            "ca4": float(np.mean([v[r]["ca4"] for v in per_subject.values()])),
            "flex_ext": float(np.mean([v[r]["flex_ext"] for v in per_subject.values()])),
        }
        for r in rotations
    }
    return {"per_subject": per_subject, "summary": summary}


# --------------------------------------------------------------------------- the shipped model


def training_subjects(data_dir: Path, cfg: TrainConfig) -> list[SubjectData]:
    """All ``pre_*`` except the three files that are eval_Female0's person."""
    files = [p for p in subject_files(data_dir, "pre") if p.stem not in SAME_PERSON_AS_EVAL_FEMALE0]
    return [load_subject(p, cfg.window, cfg.step, cfg.warmup) for p in files]


def evaluation_subjects(data_dir: Path, cfg: TrainConfig) -> list[SubjectData]:
    return [load_subject(p, cfg.window, cfg.eval_step, cfg.warmup) for p in subject_files(data_dir, "eval")]


def evaluate_report(
    model: WristModel, subjects: Sequence[SubjectData], rotations: Sequence[int] = tuple(range(N_CHANNELS))
) -> dict[str, Any]:
    """Per-subject CA (4 classes) and flexion-vs-extension accuracy, for each artificial rotation."""
    per_subject = {s.name: {str(r): evaluate_subject(model, s, r) for r in rotations} for s in subjects}
    mean = {
        str(r): {
            "ca4": float(np.mean([v[str(r)]["ca4"] for v in per_subject.values()])),
            "flex_ext": float(np.mean([v[str(r)]["flex_ext"] for v in per_subject.values()])),
        }
        for r in rotations
    }
    return {"per_subject": per_subject, "mean": mean}


def train_and_evaluate(data_dir: Path, cfg: TrainConfig) -> tuple[WristModel, dict[str, Any]]:
    """Train the shipped model on the clean ``pre_*`` people and report on the ``eval_*`` people once."""
    t0 = time.perf_counter()
    train_s = training_subjects(data_dir, cfg)
    model = train(train_s, cfg)
    train_s_time = time.perf_counter() - t0
    report = evaluate_report(model, evaluation_subjects(data_dir, cfg))
    report["train_seconds"] = round(train_s_time, 1)
    model.meta["seed"] = cfg.seed
    model.meta["eval"] = {
        "subjects": sorted(report["per_subject"]),
        "window_step": cfg.eval_step,
        "ca4_mean": report["mean"]["0"]["ca4"],
        "flex_ext_mean": report["mean"]["0"]["flex_ext"],
        "per_subject_ca4": {k: v["0"]["ca4"] for k, v in report["per_subject"].items()},
        "per_subject_flex_ext": {k: v["0"]["flex_ext"] for k, v in report["per_subject"].items()},
        "ca4_by_rotation": {r: v["ca4"] for r, v in report["mean"].items()},
    }
    return model, report


def format_report(report: dict[str, Any]) -> str:
    lines = ["subject          CA(4 classes)  flexion-vs-extension"]
    for name, v in sorted(report["per_subject"].items()):
        lines.append(f"{name:16s} {v['0']['ca4']:13.3f}  {v['0']['flex_ext']:20.3f}")
    m = report["mean"]["0"]
    lines.append(f"{'mean':16s} {m['ca4']:13.3f}  {m['flex_ext']:20.3f}")
    lines.append("artificial armband rotation (electrodes): " + "  ".join(report["mean"].keys()))
    lines.append("  CA(4) mean:    " + "  ".join(f"{v['ca4']:.3f}" for v in report["mean"].values()))
    lines.append("  flex/ext mean: " + "  ".join(f"{v['flex_ext']:.3f}" for v in report["mean"].values()))
    return "\n".join(lines)
