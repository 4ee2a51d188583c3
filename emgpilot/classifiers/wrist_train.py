"""Training and cross-subject evaluation of the wrist network (PyTorch, CPU, seeded).

Data: the shared ``cote_allard_myo`` recordings (``pre_*`` = previous users for training,
``eval_*`` = people only used for the final report). Every recording segment is conditioned
with the same causal filter the live pipeline uses (:func:`emgpilot.classifiers.wrist.conditioning_sos`,
``sosfilt`` from a zero state; the first ``warmup`` samples of a segment are dropped because
the live filter has no such start-up transient), cut into windows, and turned into
per-electrode features.

Rotation handling (measured in ``docs/readme/wrist.md``): with ``joint_rotation`` the network
is trained over 4 gestures x 8 electrode shifts (:func:`_joint_loss`), so that a wearer's
armband rotation can be estimated from their own unlabelled windows
(:func:`emgpilot.classifiers.wrist.estimate_shift`). ``full_rotation`` (random shift
augmentation, a rotation-invariant model) is kept for comparison.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
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
    OTHER_CLASSES,
    RotationEstimator,
    WristModel,
    conditioning_sos,
    estimate_shift,
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
    full_rotation: bool = False  # random shift in 0..7 (rotation-invariant augmentation, for comparison)
    joint_rotation: bool = True  # train p(gesture, rotation | window) over all 8 electrode shifts
    rotation_smoothing: float = 0.0  # joint mode: target mass moved to the +-1 neighbouring shifts
    other_classes: tuple[str, ...] = OTHER_CLASSES  # out-of-vocabulary motions learnt as extra classes
    gain_sd: float = 0.3  # log-amplitude augmentation (per window), in natural-log units
    # Per-electrode log gain augmentation: every armband's electrodes differ in contact and gain
    # (the one armband of cote_allard pre_* has its own per-channel levels even at rest).
    channel_gain_sd: float = 0.25
    conv: tuple[int, ...] = (16, 16)
    dense: tuple[int, ...] = (32,)
    kernel: int = 3
    epochs: int = 15
    batch: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    members: int = 3  # networks trained with seeds seed, seed+1, ...; their log-probabilities are averaged
    threads: int = 1
    myo_readings: bool = False  # also train on myo_readings people (cue-labelled), aligned by a first model
    cued_step: int = 40  # window step for myo_readings (it has ~10x more data per person)
    cued_settle: int = 200  # myo_readings: skip windows within 1 s after a cue change (labels lag movement)


@dataclass
class SubjectData:
    """Windows of one subject, as features ``[N, F, C]`` with 4-class labels and segment ids."""

    name: str
    features: np.ndarray
    labels: np.ndarray
    segments: np.ndarray
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


def model_classes(cfg: TrainConfig) -> tuple[str, ...]:
    """Output classes of the network: the vocabulary's four, then the out-of-vocabulary motions."""
    return CLASSES + tuple(c for c in cfg.other_classes if c not in CLASSES)


def class_map(class_names: Sequence[str], classes: Sequence[str] = CLASSES) -> np.ndarray:
    """Lookup table from a file's label index to an index into ``classes`` (-1 = not learnt)."""
    table = np.full(len(class_names), -1, dtype=np.int64)
    for i, name in enumerate(class_names):
        if str(name) in classes:
            table[i] = list(classes).index(str(name))
    return table


def segment_windows(
    emg: np.ndarray,
    labels: np.ndarray,
    segment: np.ndarray,
    table: np.ndarray,
    window: int,
    step: int,
    warmup: int,
    settle: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Causally filter each segment and cut windows; keep windows whose segment label is one of ours.

    A window's label is the label of its last sample (the decision time). With ``settle`` > 0
    (per-sample cue labels), windows that start less than ``settle`` samples after a label
    change are skipped: the wearer has not yet followed the cue.
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
        if settle > 0:
            changes = np.flatnonzero(np.diff(labels[idx]) != 0) + 1
            if len(changes):
                pos = np.searchsorted(changes, ends - 1, side="right") - 1
                since = np.where(pos >= 0, ends - window - changes[np.maximum(pos, 0)], np.iinfo(np.int64).max)
                keep &= since >= settle
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


def load_subject(
    path: Path,
    window: int,
    step: int,
    warmup: int,
    keep_windows: bool = False,
    classes: Sequence[str] = CLASSES,
) -> SubjectData:
    data = load_recording(path)
    table = class_map(data["class_names"], classes)
    x, y, s = segment_windows(data["emg"], data["labels"], data["segment"], table, window, step, warmup)
    feats = window_features(x)
    extra: dict[str, Any] = {"windows": x} if keep_windows else {}
    if "session" in data:
        extra["session"] = data["session"]
    return SubjectData(path.stem, feats, y, s, extra)


def load_cued_subject(path: Path, cfg: TrainConfig) -> SubjectData:
    """A ``myo_readings`` person: per-sample cue labels, all sessions, transitions skipped."""
    data = load_recording(path)
    table = class_map(data["class_names"], model_classes(cfg))
    x, y, s = segment_windows(
        data["emg"], data["labels"], data["segment"], table, cfg.window, cfg.cued_step, cfg.warmup, cfg.cued_settle
    )
    return SubjectData(path.stem, window_features(x), y, s)


# myo_readings people not used: right_32185 runs at ~240 Hz, left_44444 wears it on the left arm (mirrored).
CUED_EXCLUDED = ("right_32185", "left_44444")


def cued_files(data_dir: Path) -> list[Path]:
    folder = Path(data_dir) / "myo_readings"
    files = [p for p in sorted(folder.glob("*.npz")) if p.stem not in CUED_EXCLUDED]
    if not files:
        raise FileNotFoundError(f"no myo_readings recordings in {folder}")
    return files


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
    layers.append(nn.Linear(din, len(model_classes(cfg))))
    return nn.Sequential(*layers)


def seed_everything(seed: int, threads: int) -> None:
    torch = _torch()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)


def train(subjects: Sequence[SubjectData], cfg: TrainConfig, extra: Sequence[SubjectData] = ()) -> WristModel:
    """Train on the given subjects; returns a numpy :class:`WristModel` (weights exported from torch).

    ``extra`` people (other recordings, unknown armband rotation) are first aligned to the
    canonical orientation with a model trained on ``subjects`` alone
    (:func:`~emgpilot.classifiers.wrist.estimate_shift`), then added to the training set.
    """
    if extra:
        first = train(subjects, cfg)
        shifts = {e.name: estimate_shift(first, e.features) for e in extra}
        log.info("extra people aligned with shifts %s", shifts)
        aligned = [
            SubjectData(e.name, np.roll(e.features, -shifts[e.name], axis=2), e.labels, e.segments) for e in extra
        ]
        model = train([*subjects, *aligned], cfg)
        model.meta["extra_people_shifts"] = shifts
        return model
    torch = _torch()
    seed_everything(cfg.seed, cfg.threads)
    feats = np.concatenate([s.features for s in subjects]).astype(np.float32)
    labels = np.concatenate([s.labels for s in subjects]).astype(np.int64)
    mean = feats.mean(axis=(0, 2), keepdims=True)[0]  # [F, 1]: shared over electrodes (rotation-agnostic)
    std = feats.std(axis=(0, 2), keepdims=True)[0] + 1e-6
    # Class weights: each class counts equally whatever its window count.
    n_classes = len(model_classes(cfg))
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    class_w = torch.tensor(counts.sum() / (n_classes * np.maximum(counts, 1)), dtype=torch.float32)
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
    rel_row = torch.tensor([0, 0, 0, 0, 1.0, 0], dtype=torch.float32)[:, None]  # relative level across electrodes
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
            if cfg.channel_gain_sd > 0:
                ge = rng.normal(0.0, cfg.channel_gain_sd, size=(len(idx), 1, N_CHANNELS))
                ge_rel = ge - ge.mean(axis=2, keepdims=True)
                xb = xb + torch.from_numpy(ge.astype(np.float32)) * gain_rows
                xb = xb + torch.from_numpy(ge_rel.astype(np.float32)) * rel_row
            if cfg.full_rotation:
                shifts = rng.integers(0, N_CHANNELS, size=len(idx))
            else:
                shifts = None
            if shifts is not None:
                gather = (np.arange(N_CHANNELS)[None, :] + shifts[:, None]) % N_CHANNELS
                gidx = torch.from_numpy(np.broadcast_to(gather[:, None, :], xb.shape).copy())
                xb = torch.gather(xb, 2, gidx)
            xb = (xb - mean_t) / std_t
            if cfg.joint_rotation:
                loss = _joint_loss(net, xb, y_all[idx], class_w, cfg.rotation_smoothing)
            else:
                loss = loss_fn(net(xb), y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach())
        log.debug("epoch %d loss %.4f", epoch, total / steps_per_epoch)
    log.info("trained on %d windows in %.1f s", n, time.perf_counter() - t0)
    return export(net, cfg, mean, std, [s.name for s in subjects])


def train_members(subjects: Sequence[SubjectData], cfg: TrainConfig, extra: Sequence[SubjectData] = ()) -> WristModel:
    """``cfg.members`` networks (seeds ``cfg.seed`` + i) in one model whose answers are averaged.

    A single network's cross-subject accuracy depends a lot on its seed (0.898-0.917 CA4 on the
    eval_* people, 0.78-0.84 on the myo_readings development windows); the average does not.
    """
    if cfg.members <= 1:
        return train(subjects, cfg, extra)
    members = [train(subjects, replace(cfg, seed=cfg.seed + i), extra) for i in range(cfg.members)]
    return combine_members(members)


def combine_members(members: Sequence[WristModel]) -> WristModel:
    """One :class:`WristModel` holding several networks trained on the same data."""
    first = members[0]
    tensors = {k: first.tensors[k] for k in ("feature_mean", "feature_std")}
    for i, m in enumerate(members):
        if not np.array_equal(m.tensors["feature_mean"], first.tensors["feature_mean"]):
            raise ValueError("networks of one model must share their feature normalisation (same training data)")
        tensors.update({f"member{i}.{k}": v for k, v in m.tensors.items() if k not in ("feature_mean", "feature_std")})
    meta = dict(first.meta, members=len(members))
    if any("extra_people_shifts" in m.meta for m in members):
        meta["extra_people_shifts"] = [m.meta.get("extra_people_shifts") for m in members]
    return WristModel(tensors=tensors, meta=meta)


def _joint_loss(net, xb, yb, class_w, smoothing: float):
    """Cross-entropy over the classes x 8 (class, shift) pairs; the true pair is (label, shift 0).

    The same network scores every circular shift of the window, so it learns both the gesture
    and which shift puts the wearer's electrodes into the canonical orientation -- and to be
    unsure at wrong shifts, which is what lets a wearer's rotation be estimated later.
    """
    torch = _torch()
    b, _, c = xb.shape
    n_conv_modules = 2 * sum(isinstance(m, torch.nn.Conv1d) for m in net)
    # Circular convolutions commute with rolling the electrodes: run them once, roll their output.
    h = net[:n_conv_modules](xb)  # [B, H, C]
    rolled = torch.stack([torch.roll(h, -r, dims=2) for r in range(c)], dim=1)  # [B, R, H, C]
    n_classes = len(class_w)
    logits = net[n_conv_modules:](rolled.reshape(b * c, h.shape[1], c)).reshape(b, c * n_classes)  # r * K + g
    logp = torch.log_softmax(logits, dim=1).reshape(b, c, n_classes)
    target = torch.zeros_like(logp)
    rows = torch.arange(b)
    target[rows, 0, yb] = 1.0 - smoothing
    if smoothing > 0:
        target[rows, 1, yb] = smoothing / 2
        target[rows, c - 1, yb] = smoothing / 2
    per_window = -(target * logp).sum(dim=(1, 2))
    w = class_w[yb]
    return (per_window * w).sum() / w.sum()


def export(net, cfg: TrainConfig, mean: np.ndarray, std: np.ndarray, names: list[str]):
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
        "classes": list(model_classes(cfg)),
        "window": cfg.window,
        "channels": N_CHANNELS,
        "fs_hz": 200.0,
        "input_stream": "forearm_emg.filtered",
        "features": list(FEATURE_NAMES),
        "normalisation": "per-feature z-score with feature_mean/feature_std (shared over electrodes)",
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


ROTATION_MODES = ("fixed", "streaming", "estimated")


def evaluate_subject(
    model: WristModel, subject: SubjectData, rotation: int = 0, mode: str = "fixed", block: int = 20
) -> dict[str, float]:
    """Window accuracy (4 classes) and flexion-vs-extension accuracy on the wrist windows.

    ``rotation`` simulates the armband sitting that many electrodes further round (electrode
    ``i`` then reads what electrode ``i - rotation`` read). ``mode`` says how the model's shift
    is chosen: ``fixed`` = 0 (trust the standard placement); ``streaming`` = a
    :class:`~emgpilot.classifiers.wrist.RotationEstimator` fed the windows in recorded order,
    each block of ``block`` windows classified with the estimate from the windows before it
    (cold start included); ``estimated`` = :func:`~emgpilot.classifiers.wrist.estimate_shift`
    over all of the subject's unlabelled windows.
    """
    feats = subject.features
    if rotation:
        feats = np.roll(feats, rotation, axis=2)
    n = len(feats)
    if mode == "fixed":
        shifts = np.zeros(n, dtype=np.int64)
    elif mode == "estimated":
        shifts = np.full(n, estimate_shift(model, feats), dtype=np.int64)
    elif mode == "streaming":
        est = RotationEstimator(model)
        shifts = np.empty(n, dtype=np.int64)
        for a in range(0, n, block):
            shifts[a : a + block] = est.shift
            est.update_features(feats[a : a + block])
    else:
        raise ValueError(f"unknown rotation mode {mode!r}; expected one of {ROTATION_MODES}")
    logits = np.empty((n, len(model.classes)), dtype=np.float32)
    for sh in np.unique(shifts):
        rows = shifts == sh
        logits[rows] = model.logits_from_features(feats[rows], rotation=int(sh))
    # The vocabulary's four classes are scored (out-of-vocabulary windows still teach the shift).
    ours = subject.labels < len(CLASSES)
    pred = logits[ours, : len(CLASSES)].argmax(axis=1)
    y = subject.labels[ours]
    wrist = np.isin(y, (2, 3))
    two = np.where(logits[ours][wrist, 2] >= logits[ours][wrist, 3], 2, 3)
    return {
        "ca4": float(np.mean(pred == y)),
        "flex_ext": float(np.mean(two == y[wrist])) if wrist.any() else float("nan"),
        "n": n,
        "final_shift": int(shifts[-1]),
        "correct_shift_fraction": float(np.mean(shifts == rotation % N_CHANNELS)),
    }


def cross_validate(
    subjects: Sequence[SubjectData],
    cfg: TrainConfig,
    n_folds: int = 5,
    rotations: Sequence[int] = (0,),
    mode: str = "fixed",
    extra: Sequence[SubjectData] = (),
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
        model = train(train_s, cfg, extra)
        for s in test_s:
            per_subject[s.name] = {r: evaluate_subject(model, s, r, mode) for r in rotations}
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
    return [load_subject(p, cfg.window, cfg.step, cfg.warmup, classes=model_classes(cfg)) for p in files]


def extra_training_subjects(data_dir: Path, cfg: TrainConfig) -> list[SubjectData]:
    return [load_cued_subject(p, cfg) for p in cued_files(data_dir)] if cfg.myo_readings else []


def evaluation_subjects(data_dir: Path, cfg: TrainConfig) -> list[SubjectData]:
    files = subject_files(data_dir, "eval")
    return [load_subject(p, cfg.window, cfg.eval_step, cfg.warmup, classes=model_classes(cfg)) for p in files]


def evaluate_report(
    model: WristModel,
    subjects: Sequence[SubjectData],
    rotations: Sequence[int] = tuple(range(N_CHANNELS)),
    modes: Sequence[str] = ROTATION_MODES,
) -> dict[str, Any]:
    """Per-subject CA (4 classes) and flexion-vs-extension accuracy, per rotation mode and artificial rotation."""
    out: dict[str, Any] = {}
    for mode in modes:
        per_subject = {s.name: {str(r): evaluate_subject(model, s, r, mode) for r in rotations} for s in subjects}
        mean = {
            str(r): {
                key: float(np.mean([v[str(r)][key] for v in per_subject.values()]))
                for key in ("ca4", "flex_ext", "correct_shift_fraction")
            }
            for r in rotations
        }
        out[mode] = {"per_subject": per_subject, "mean": mean}
    return out


def train_and_evaluate(data_dir: Path, cfg: TrainConfig) -> tuple[WristModel, dict[str, Any]]:
    """Train the shipped model on the clean ``pre_*`` people and report on the ``eval_*`` people once."""
    from threadpoolctl import threadpool_limits

    # Many small matrix products: BLAS threads only fight each other (10x slower on a busy machine).
    with threadpool_limits(limits=cfg.threads):
        return _train_and_evaluate(data_dir, cfg)


def _train_and_evaluate(data_dir: Path, cfg: TrainConfig) -> tuple[WristModel, dict[str, Any]]:
    t0 = time.perf_counter()
    train_s = training_subjects(data_dir, cfg)
    model = train_members(train_s, cfg, extra_training_subjects(data_dir, cfg))
    train_seconds = time.perf_counter() - t0
    modes = ROTATION_MODES if cfg.joint_rotation else ("fixed",)
    report = evaluate_report(model, evaluation_subjects(data_dir, cfg), modes=modes)
    report["train_seconds"] = round(train_seconds, 1)
    model.meta["seed"] = cfg.seed
    model.meta["eval"] = {
        "subjects": sorted(report["fixed"]["per_subject"]),
        "window_step": cfg.eval_step,
        **{
            mode: {
                "ca4_mean": report[mode]["mean"]["0"]["ca4"],
                "flex_ext_mean": report[mode]["mean"]["0"]["flex_ext"],
                "per_subject_ca4": {k: v["0"]["ca4"] for k, v in report[mode]["per_subject"].items()},
                "per_subject_flex_ext": {k: v["0"]["flex_ext"] for k, v in report[mode]["per_subject"].items()},
                "ca4_by_rotation": {r: v["ca4"] for r, v in report[mode]["mean"].items()},
            }
            for mode in modes
        },
    }
    return model, report


def format_report(report: dict[str, Any]) -> str:
    """The cross-subject accuracies as aligned tables: one column pair (CA4, flexion/extension)
    per rotation mode, the mode named above its pair."""
    modes = [m for m in ROTATION_MODES if m in report]
    names = sorted(report["fixed"]["per_subject"])
    label_w = max(len("subject"), *(len(n) for n in names))
    pair_w = len("CA4") + 2 + len("flex/ext")

    def pair(v: dict[str, float]) -> str:
        return f"{v['ca4']:>5.3f}  {v['flex_ext']:>8.3f}".rjust(pair_w)

    lines = ["cross-subject window accuracy on people never trained on (armband as worn):"]
    lines.append(" " * label_w + "".join(f"    {m:^{pair_w}s}" for m in modes).rstrip())
    lines.append(f"{'subject':{label_w}s}" + "".join(f"    {'CA4':>5s}  {'flex/ext':>8s}" for _ in modes))
    for name in names:
        lines.append(f"{name:{label_w}s}" + "".join(f"    {pair(report[m]['per_subject'][name]['0'])}" for m in modes))
    lines.append(f"{'mean':{label_w}s}" + "".join(f"    {pair(report[m]['mean']['0'])}" for m in modes))
    rots = list(report["fixed"]["mean"])
    rows = [(f"{label} {m}", m, key) for m in modes for key, label in (("ca4", "CA4"), ("flex_ext", "flex/ext"))]
    row_w = max(len("rotation r"), *(len(r[0]) for r in rows))
    lines.append("")
    lines.append("mean over subjects with the armband artificially rotated by r electrodes:")
    lines.append(f"  {'rotation r':{row_w}s}" + "".join(f"  {r:>6s}" for r in rots))
    for label, m, key in rows:
        lines.append(f"  {label:{row_w}s}" + "".join(f"  {report[m]['mean'][r][key]:6.3f}" for r in rots))
    return "\n".join(lines)
