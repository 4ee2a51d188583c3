"""Optional one-session calibration of the wrist classification to one wearer.

The recogniser needs no calibration: the wrist network was trained on other people and the
detectors learn each wearer's levels while they fly. A wearer who is willing to make a short
cued session (a few repetitions each of fist, wrist flexion and wrist extension, with rest in
between) can still teach it their own patterns: a linear discriminant (shrinkage LDA, equal
class priors) on the network's window features, in the wearer's own electrode order. At run
time its log-probabilities are added to the network's (:meth:`WearerCalibration.blend`), and the
armband rotation that best explains the labelled windows becomes the rotation estimate's start.

The calibration holds for the way the band was worn: after putting it on differently, calibrate
again. It is stored as a small JSON file (never a pickle); :mod:`emgpilot.wearer` keeps one per
named wearer.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emgpilot.signals.streams import FOREARM_EMG, Chunk, CueEvent, GapEvent, Message, message_time
from emgpilot.signals.vocabulary import PRIMITIVE_OF, REST

log = logging.getLogger(__name__)

FORMAT = "emgpilot-wearer-calibration"
VERSION = 1
MIN_WINDOWS = 20
"""Settled windows (50 ms apart: one second of a held gesture) each calibrated class needs."""
SETTLE_S = 1.0
"""Windows starting this soon after a cue change are left out: the wearer has not followed it yet."""
STEP = 10
"""Samples between calibration windows (50 ms at 200 Hz)."""

CALIBRATION_PLAN: tuple[str, ...] = ("fist", "wrist_flexion", "wrist_extension")
"""The gestures a calibration session cues (rest comes between them)."""
CALIBRATION_REPETITIONS = 5
CALIBRATION_HOLD_S = 3.0
CALIBRATION_REST_S = 3.0


def calibration_schedule(
    plan: Sequence[str] = CALIBRATION_PLAN,
    repetitions: int = CALIBRATION_REPETITIONS,
    hold_s: float = CALIBRATION_HOLD_S,
    rest_s: float = CALIBRATION_REST_S,
    start_s: float = 3.0,
) -> list[tuple[float, float, str]]:
    """``(start, duration, gesture)`` cues of a calibration session: each gesture held ``hold_s``
    ``repetitions`` times in a row, ``rest_s`` of rest between (about 1.5 min by default)."""
    items = []
    t = start_s
    for gesture in plan:
        for _ in range(repetitions):
            items.append((t, hold_s, gesture))
            t += hold_s + rest_s
    return items


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


class CalibrationError(ValueError):
    """A calibration that cannot be made or used (the message says why, naming the file)."""


@dataclass(frozen=True)
class WearerCalibration:
    """A wearer's own linear classifier over the wrist network's window features.

    Parameters
    ----------
    classes : the classes it was fitted on (a subset of the wrist network's).
    coef, intercept : linear scores ``feats.reshape(B, -1) @ coef.T + intercept``, ``[K, F*C]`` / ``[K]``.
    feature_names, window, channels : the feature layout it expects (the wrist network's).
    rotation : electrode shift of the band that best explains the labelled windows for the
        network (in the network's ring order, i.e. after mirroring a left arm), or None.
    mirrored : whether that shift was found with the ring mirrored (a left arm).
    windows : labelled windows per class it was fitted on.
    created, source : when and from what.
    means, precision : the discriminant's class means ``[K, F*C]`` and inverse shared covariance
        ``[F*C, F*C]``: how well a window fits the wearer's own gestures (:meth:`log_density`),
        which tells whether the band sits where it sat during the calibration.
    """

    classes: tuple[str, ...]
    coef: np.ndarray
    intercept: np.ndarray
    feature_names: tuple[str, ...]
    window: int
    channels: int
    rotation: int | None = None
    mirrored: bool = False
    windows: dict[str, int] = field(default_factory=dict)
    created: str = ""
    source: str = ""
    means: np.ndarray | None = None
    precision: np.ndarray | None = None

    def log_proba(self, feats: np.ndarray) -> np.ndarray:
        """Class log-probabilities ``[B, K]`` for window features ``[B, F, C]`` in the wearer's electrode order."""
        from emgpilot.classifiers.detectors import tiled

        x = np.asarray(feats, dtype=np.float64).reshape(len(feats), self.coef.shape[1])
        if not len(x):
            return np.zeros((0, len(self.classes)))
        return _log_softmax(tiled(lambda tile: tile @ self.coef.T + self.intercept, x))

    def log_density(self, feats: np.ndarray) -> np.ndarray:
        """How well each window fits the nearest of the wearer's calibrated classes: the largest
        ``-0.5 * Mahalanobis distance**2`` to a class mean ``[B]`` (needs ``means``/``precision``)."""
        from emgpilot.classifiers.detectors import tiled

        assert self.means is not None and self.precision is not None
        x = np.asarray(feats, dtype=np.float64).reshape(len(feats), self.precision.shape[0])
        if not len(x):
            return np.zeros(0)
        const = np.sum((self.means @ self.precision) * self.means, axis=1)

        def fit(tile: np.ndarray) -> np.ndarray:
            px = tile @ self.precision
            q = np.sum(px * tile, axis=1)[:, None] - 2.0 * (px @ self.means.T) + const[None, :]
            return -0.5 * q.min(axis=1)

        return tiled(fit, x)

    def blend(self, probs: np.ndarray, feats: np.ndarray, classes: Sequence[str]) -> np.ndarray:
        """The network's ``probs`` ``[B, len(classes)]`` combined with this calibration (product of
        the two, renormalised). Classes it was not fitted on get an uninformative factor."""
        index = {c: i for i, c in enumerate(classes)}
        logq = np.full((len(probs), len(classes)), -math.log(len(self.classes)))
        logq[:, [index[c] for c in self.classes]] = self.log_proba(feats)
        z = np.log(np.asarray(probs, dtype=np.float64) + 1e-9) + logq
        return np.exp(_log_softmax(z)).astype(np.float32)

    def check_model(self, model: Any) -> None:
        """Raise :class:`CalibrationError` unless ``model`` computes the features this calibration expects."""
        if tuple(model_feature_names(model)) != tuple(self.feature_names):
            raise CalibrationError(
                f"calibration made on features {self.feature_names}, the wrist network computes "
                f"{model_feature_names(model)}: calibrate again"
            )
        if int(model.window) != self.window or int(model.channels) != self.channels:
            raise CalibrationError(
                f"calibration made for {self.window}-sample windows of {self.channels} electrodes, the wrist "
                f"network uses {model.window} x {model.channels}: calibrate again"
            )
        missing = [c for c in self.classes if c not in tuple(model.classes)]
        if missing:
            raise CalibrationError(f"calibration classes {missing} are not among the wrist network's {model.classes}")

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "classes": list(self.classes),
            "feature_names": list(self.feature_names),
            "window": self.window,
            "channels": self.channels,
            "rotation": self.rotation,
            "mirrored": self.mirrored,
            "windows": dict(self.windows),
            "created": self.created,
            "source": self.source,
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
            "means": None if self.means is None else self.means.tolist(),
            "precision": None if self.precision is None else self.precision.tolist(),
        }

    @classmethod
    def from_dict(cls, d: Any, where: str = "calibration") -> WearerCalibration:
        """Validate and build; :class:`CalibrationError` naming ``where`` on anything wrong."""

        def bad(what: str) -> CalibrationError:
            return CalibrationError(f"{where}: {what}")

        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise bad(f"not an emgpilot wearer calibration (format must be {FORMAT!r})")
        if d.get("version") != VERSION:
            raise bad(f"version {d.get('version')!r} is not supported (this emgpilot reads version {VERSION})")
        classes = d.get("classes")
        names = d.get("feature_names")
        if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) for c in classes):
            raise bad("classes must be a list of at least two names")
        if len(set(classes)) != len(classes):
            raise bad("classes repeat")
        if not isinstance(names, list) or not names or not all(isinstance(c, str) for c in names):
            raise bad("feature_names must be a list of names")
        window, channels, rotation = d.get("window"), d.get("channels"), d.get("rotation")
        for key, value in (("window", window), ("channels", channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise bad(f"{key} must be a positive integer, not {value!r}")
        if rotation is not None and (isinstance(rotation, bool) or not isinstance(rotation, int)):
            raise bad(f"rotation must be an electrode shift or null, not {rotation!r}")
        try:
            coef = np.asarray(d.get("coef"), dtype=np.float64)
            intercept = np.asarray(d.get("intercept"), dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise bad(f"coef/intercept are not numeric arrays ({e})") from e
        if coef.shape != (len(classes), len(names) * channels) or intercept.shape != (len(classes),):
            raise bad(
                f"coef {coef.shape} / intercept {intercept.shape} do not fit {len(classes)} classes x "
                f"{len(names)} features x {channels} electrodes"
            )
        if not (np.isfinite(coef).all() and np.isfinite(intercept).all()):
            raise bad("coef/intercept hold NaN or infinite values")
        windows = d.get("windows", {})
        if not isinstance(windows, dict):
            raise bad("windows must be an object")
        means = precision = None
        if d.get("means") is not None or d.get("precision") is not None:
            try:
                means = np.asarray(d.get("means"), dtype=np.float64)
                precision = np.asarray(d.get("precision"), dtype=np.float64)
            except (TypeError, ValueError) as e:
                raise bad(f"means/precision are not numeric arrays ({e})") from e
            dim = len(names) * channels
            if means.shape != (len(classes), dim) or precision.shape != (dim, dim):
                raise bad(f"means {means.shape} / precision {precision.shape} do not fit {len(classes)} x {dim}")
            if not (np.isfinite(means).all() and np.isfinite(precision).all()):
                raise bad("means/precision hold NaN or infinite values")
        return cls(
            classes=tuple(classes),
            coef=coef,
            intercept=intercept,
            feature_names=tuple(names),
            window=window,
            channels=channels,
            rotation=None if rotation is None else rotation % channels,
            mirrored=bool(d.get("mirrored", False)),
            windows={str(k): int(v) for k, v in windows.items()},
            created=str(d.get("created", "")),
            source=str(d.get("source", "")),
            means=means,
            precision=precision,
        )

    def save(self, path: str | Path) -> Path:
        """Write atomically (a crash never leaves half a file)."""
        from emgpilot.config import write_text_atomic

        return write_text_atomic(path, json.dumps(self.to_dict()) + "\n")


def load_calibration(path: str | Path) -> WearerCalibration:
    """Read a calibration file; :class:`CalibrationError` naming the file if it cannot be used."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise CalibrationError(f"calibration file {path} does not exist") from e
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CalibrationError(f"calibration file {path} is unreadable ({e})") from e
    return WearerCalibration.from_dict(data, where=f"calibration file {path}")


# --------------------------------------------------------------------------- labelled windows
def is_forearm_emg(m: Message) -> bool:
    """A forearm EMG chunk, or a gap in that stream: what a calibration needs of a session."""
    name = FOREARM_EMG.name
    return (isinstance(m, Chunk) and m.info.name == name) or (isinstance(m, GapEvent) and m.source_stream == name)


def model_feature_names(model: Any) -> tuple[str, ...]:
    """The names of the per-electrode features ``model.features`` computes (the wrist network's by default)."""
    from emgpilot.classifiers.wrist import FEATURE_NAMES

    return tuple(getattr(model, "feature_names", FEATURE_NAMES))


def forearm_class(label: str, classes: Sequence[str], left_arm: bool = False) -> str | None:
    """The wrist-network class a cue label asks of the forearm, or None (not a forearm class).
    On a left arm the thumb-up waves swap (wave left is a wrist extension there)."""
    if left_arm and label in ("wave_left", "wave_right"):
        label = "wave_right" if label == "wave_left" else "wave_left"
    name = PRIMITIVE_OF.get(label, label)
    if name.startswith("other:"):
        name = name[len("other:") :]
    return name if name in classes else None


def labelled_windows(
    messages: Iterable[Message],
    classes: Sequence[str],
    window: int,
    preprocess: Any = None,
    settle_s: float = SETTLE_S,
    step: int = STEP,
    left_arm: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Conditioned forearm EMG windows under a held cue, and their class names.

    The forearm EMG is conditioned exactly as in the pipeline (:class:`EMGConditioner`, gaps
    included). A window is kept when it lies inside one cue, starts at least ``settle_s`` after
    that cue began, spans no data gap, and the cue asks the forearm for one of ``classes``.

    Returns
    -------
    windows ``[N, window, C]`` float32 and labels ``[N]`` (class names).
    """
    from emgpilot.signals.pipeline import Pipeline
    from emgpilot.signals.preprocess import EMGConditioner, PreprocessConfig

    messages = sorted(messages, key=message_time)
    info = next((m.info for m in messages if isinstance(m, Chunk) and m.info.name == FOREARM_EMG.name), None)
    if info is None:
        raise CalibrationError("the session has no forearm EMG (forearm_emg) to calibrate from")
    cues = [m for m in messages if isinstance(m, CueEvent)]
    if not cues:
        raise CalibrationError("the session has no cues: calibration needs a cued session (which gesture when)")
    cfg = preprocess if preprocess is not None else PreprocessConfig()
    stage = EMGConditioner(info, cfg.forearm)
    pipe = Pipeline([stage], sources=[info.name])
    filtered = stage.outputs[0].name
    outputs: list[Message] = []
    for m in messages:
        if is_forearm_emg(m):
            outputs += pipe.push(m)
    outputs += pipe.finish()
    conditioned = [out for out in outputs if isinstance(out, Chunk) and out.info.name == filtered and len(out)]
    ts, xs = [out.t for out in conditioned], [out.data for out in conditioned]
    if not ts:
        return np.zeros((0, window, info.n_channels), np.float32), np.zeros(0, dtype=object)
    t = np.concatenate(ts)
    x = np.concatenate(xs).astype(np.float32)
    starts = np.arange(0, len(t) - window + 1, step)
    if not len(starts):
        return np.zeros((0, window, x.shape[1]), np.float32), np.zeros(0, dtype=object)
    t0, t1 = t[starts], t[starts + window - 1]
    # no gap inside the window: its span is that of contiguous samples (half a sample of slack)
    contiguous = (t1 - t0) <= (window - 0.5) / info.rate_hz
    cue_t = np.array([c.t for c in cues])
    k0 = np.searchsorted(cue_t, t0, side="right") - 1
    k1 = np.searchsorted(cue_t, t1, side="right") - 1
    keep = contiguous & (k0 >= 0) & (k0 == k1)
    keep &= t0 - cue_t[np.maximum(k0, 0)] >= settle_s
    names = np.array([forearm_class(c.label, classes, left_arm) or "" for c in cues], dtype=object)
    label = names[np.maximum(k0, 0)]
    keep &= label != ""
    idx = starts[keep]
    win = np.lib.stride_tricks.sliding_window_view(x, window, axis=0)[idx]  # [N, C, W]
    return np.ascontiguousarray(np.transpose(win, (0, 2, 1))), label[keep]


# --------------------------------------------------------------------------- fitting
def fit_calibration(
    feats: np.ndarray,
    labels: Sequence[str],
    model: Any,
    mirrored: bool = False,
    source: str = "",
    min_windows: int = MIN_WINDOWS,
) -> WearerCalibration:
    """Fit a wearer's calibration to labelled window features.

    Parameters
    ----------
    feats : ``[N, F, C]`` window features (``model.features``) in the wearer's electrode order.
    labels : class name per window (classes of ``model``).
    model : the wrist network (its classes, feature layout, and its rotation scores).
    mirrored : the wearer's arm is set to left (the network sees the ring mirrored).
    source : what it was made from (kept in the file).
    min_windows : windows each class needs; classes with fewer are left out.
    """
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    labels = np.asarray(labels, dtype=object)
    feats = np.asarray(feats, dtype=np.float64)
    if len(feats) != len(labels):
        raise CalibrationError(f"{len(feats)} windows but {len(labels)} labels")
    counts = {c: int((labels == c).sum()) for c in model.classes}
    kept = tuple(c for c in model.classes if counts[c] >= min_windows)
    gestures = [c for c in kept if c != REST]
    if REST not in kept or len(gestures) < 2:
        have = ", ".join(f"{c} {n}" for c, n in counts.items() if n) or "none"
        raise CalibrationError(
            f"calibration needs rest and at least two gestures with {min_windows}+ settled windows each "
            f"(about {min_windows * STEP / 200:.0f} s held after the first second); labelled windows: {have}"
        )
    sel = np.isin(labels, kept)
    y = labels[sel].astype(str)
    x = feats[sel].reshape(int(sel.sum()), -1)
    lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto", priors=np.full(len(kept), 1.0 / len(kept)))
    lda.fit(x, y)
    order = [list(lda.classes_).index(c) for c in kept]
    coef, intercept = np.asarray(lda.coef_)[order], np.asarray(lda.intercept_)[order]
    means, precision = np.asarray(lda.means_)[order], np.linalg.pinv(np.asarray(lda.covariance_))
    rotation = best_rotation(model, feats[sel], y, mirrored)
    return WearerCalibration(
        classes=kept,
        coef=coef,
        intercept=intercept,
        feature_names=model_feature_names(model),
        window=int(model.window),
        channels=int(model.channels),
        rotation=rotation,
        mirrored=bool(mirrored),
        windows={c: counts[c] for c in kept},
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        source=source,
        means=means,
        precision=precision,
    )


def best_rotation(model: Any, feats: np.ndarray, labels: np.ndarray, mirrored: bool) -> int | None:
    """The electrode shift under which the network gives the labelled gesture windows the highest
    likelihood (in the network's ring order), or None for a network without shift scores."""
    if not hasattr(model, "logits_from_features"):
        return None
    index = {c: i for i, c in enumerate(model.classes)}
    gesture = labels != REST
    f = np.asarray(feats[gesture], dtype=np.float32)
    if mirrored:
        f = np.ascontiguousarray(f[:, :, ::-1])
    y = np.array([index[c] for c in labels[gesture]])
    best, best_ll = 0, -math.inf
    for shift in range(int(model.channels)):
        logp = _log_softmax(np.asarray(model.logits_from_features(f, shift), dtype=np.float64))
        ll = float(logp[np.arange(len(y)), y].sum())
        if ll > best_ll:
            best, best_ll = shift, ll
    return best


def session_features(
    messages: Iterable[Message], model: Any, preprocess: Any = None, left_arm: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Features ``[N, F, C]`` and class names of one cued session's settled windows."""
    windows, labels = labelled_windows(messages, model.classes, int(model.window), preprocess, left_arm=left_arm)
    if windows.ndim == 3 and windows.shape[2] != int(model.channels):
        raise CalibrationError(
            f"the wrist network needs {model.channels} forearm electrodes (a Myo armband); this session has "
            f"{windows.shape[2]}"
        )
    if not len(windows):
        raise CalibrationError("no settled windows under a cue of fist, wrist flexion/extension or rest")
    return model.features(windows), labels


def calibrate_session(
    messages: Iterable[Message],
    model: Any,
    mirrored: bool = False,
    preprocess: Any = None,
    source: str = "",
) -> WearerCalibration:
    """A calibration from one cued session's messages (see :func:`labelled_windows`)."""
    feats, labels = session_features(messages, model, preprocess, left_arm=mirrored)
    return fit_calibration(feats, labels, model, mirrored=mirrored, source=source)


def calibrate_with_config(messages: Iterable[Message], cfg: Any, source: str = "") -> WearerCalibration:
    """A calibration from one cued session with the wrist network, conditioning and arm of the
    pipeline configuration ``cfg``."""
    from emgpilot.classifiers.recognition import load_wrist

    try:
        model = load_wrist(cfg.recognition.wrist_model)
    except ValueError as e:
        raise CalibrationError(str(e)) from e
    if model is None:
        raise CalibrationError("calibration needs the wrist network (recognition.wrist_model)")
    left = cfg.recognition.fusion.arm == "left"
    return calibrate_session(messages, model, mirrored=left, preprocess=cfg.preprocess, source=source)


def split_half_accuracy(feats: np.ndarray, labels: np.ndarray, model: Any) -> float | None:
    """How well the calibration separates the wearer's own classes: fitted on the first half of
    each class's windows (in time) and tested on the second half, and the other way round. None
    when a half is too small to fit."""
    labels = np.asarray(labels, dtype=object)
    first = np.zeros(len(labels), dtype=bool)
    for c in set(labels.tolist()):
        idx = np.flatnonzero(labels == c)
        first[idx[: len(idx) // 2]] = True
    correct = total = 0
    for train in (first, ~first):
        try:
            cal = fit_calibration(feats[train], labels[train], model, min_windows=MIN_WINDOWS // 2)
        except CalibrationError:
            return None
        test = ~train & np.isin(labels, cal.classes)
        guess = np.array(cal.classes, dtype=object)[np.argmax(cal.log_proba(feats[test]), axis=1)]
        correct += int((guess == labels[test]).sum())
        total += int(test.sum())
    return correct / total if total else None


RECORDING_KEY = "wearer_calibration"
"""Recording metadata key holding the calibration a session ran with (see :func:`recorded_calibration`)."""


def calibration_metadata(cfg: Any) -> dict[str, Any]:
    """``{RECORDING_KEY: the calibration cfg uses}`` for a recording's metadata ({} without one), so a
    replay can use exactly it wherever the file has gone."""
    path = cfg.recognition.wrist_calibration
    return {RECORDING_KEY: load_calibration(path).to_dict()} if path else {}


def recorded_calibration(metadata: dict[str, Any], where: str) -> WearerCalibration | None:
    """The calibration a recording says its session ran with, if any (:class:`CalibrationError` if broken)."""
    data = metadata.get(RECORDING_KEY)
    return None if data is None else WearerCalibration.from_dict(data, where=f"{where}: {RECORDING_KEY}")
