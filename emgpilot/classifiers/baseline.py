"""The field's reference pipeline: Hudgins time-domain features + LDA, trained within-subject.

Features follow LibEMG's definitions per channel of a window ``x[0..L-1]``:

* MAV = mean |x|
* ZC  = number of sign changes from strictly positive to strictly negative or back
  (``diff(sign(x)) == +-2``: a run through an exact 0 does not count)
* SSC = number of ``k`` with ``(x[k] - x[k-1]) * (x[k] - x[k+1]) >= 0`` (threshold 0)
* WL  = sum |x[k+1] - x[k]|

concatenated feature by feature (MAV of every channel, then ZC, SSC, WL). Windows are 200 ms
long every 50 ms, on the raw EMG as float (no filtering), as in the README's reference figures.

The baseline is trained on the *earlier repetitions* of each cued label of one recording
(see :func:`repetition_split`) and tested on the later ones, so its accuracy reads as "what a
standard per-user calibrated classifier reaches on this same data".
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from emgpilot.classifiers.metrics import UNLABELLED, CueWindow

log = logging.getLogger(__name__)

WINDOW_S = 0.2
STEP_S = 0.05
FEATURES = ("MAV", "ZC", "SSC", "WL")


def window_ends(n_samples: int, length: int, step: int) -> np.ndarray:
    """Index one past the last sample of each full window (LibEMG's windowing)."""
    if n_samples < length:
        return np.zeros(0, dtype=np.int64)
    return np.arange(length, n_samples + 1, step, dtype=np.int64)


def windows_at(x: np.ndarray, ends: np.ndarray, length: int) -> np.ndarray:
    """``[n_windows, n_channels, length]`` windows of ``x [n, channels]`` ending at ``ends``."""
    x = np.asarray(x, dtype=np.float64)
    view = sliding_window_view(x, length, axis=0)  # [n - length + 1, channels, length]
    return view[np.asarray(ends, dtype=np.int64) - length]


def hudgins_features(windows: np.ndarray) -> np.ndarray:
    """MAV, ZC, SSC, WL of ``windows [n, channels, length]`` -> ``[n, 4 * channels]``."""
    w = np.asarray(windows, dtype=np.float64)
    mav = np.mean(np.abs(w), axis=2)
    sign_change = np.diff(np.sign(w), axis=2)
    zc = np.sum(np.abs(sign_change) == 2, axis=2)
    ssc = np.sum((w[:, :, 1:-1] - w[:, :, :-2]) * (w[:, :, 1:-1] - w[:, :, 2:]) >= 0.0, axis=2)
    wl = np.sum(np.abs(np.diff(w, axis=2)), axis=2)
    return np.concatenate([mav, zc, ssc, wl], axis=1).astype(np.float64)


class HudginsLDA:
    """Hudgins features + scikit-learn's LDA (default ``svd`` solver, as LibEMG uses)."""

    def __init__(self) -> None:
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        self.model = LinearDiscriminantAnalysis()
        self.classes_: np.ndarray | None = None

    def fit(self, windows: np.ndarray, labels: np.ndarray) -> HudginsLDA:
        self.model.fit(hudgins_features(windows), labels)
        self.classes_ = self.model.classes_
        return self

    def predict(self, windows: np.ndarray) -> np.ndarray:
        return self.model.predict(hudgins_features(windows))


def repetition_split(windows: list[CueWindow]) -> list[bool]:
    """Which cue windows are "earlier repetitions" (training) and which are later (test).

    The k-th run of each label is its repetition k; the first half of the repetitions of every
    label (rounded up, at least one, and never all of them when there are two or more) trains.
    Rest runs follow the same rule, so training and test both keep the rest they came with.
    """
    count: dict[str, int] = {}
    rep_of = []
    for w in windows:
        rep_of.append(count.get(w.label, 0))
        count[w.label] = count.get(w.label, 0) + 1
    out = []
    for w, rep in zip(windows, rep_of, strict=True):
        n = count[w.label]
        n_train = 1 if n == 1 else min(n - 1, (n + 1) // 2)
        out.append(rep < n_train)
    return out


@dataclass
class BaselineResult:
    """Window CA of the baseline on the test windows, and which windows those were."""

    ca: float
    n_train: int
    n_test: int
    classes: list[int]
    test_times: np.ndarray
    test_predictions: np.ndarray

    def to_dict(self) -> dict[str, float | int | list[int]]:
        return {"CA": self.ca, "train_windows": self.n_train, "test_windows": self.n_test, "classes": self.classes}


def evaluate_baseline(
    t: np.ndarray,
    emg: np.ndarray,
    truth_of: callable,
    train_of: callable,
    fs: float,
    segments: Iterable[tuple[int, int]] | None = None,
) -> BaselineResult | None:
    """Train and test the baseline on one recording's EMG.

    Parameters
    ----------
    t, emg : sample times ``[n]`` and raw EMG ``[n, channels]``.
    truth_of : maps window end times to decision-class indices (UNLABELLED to skip).
    train_of : maps window end times to True (training), False (test) or None (neither).
    fs : sample rate.
    segments : ``(start, stop)`` sample ranges of contiguous data; windows never span two.

    Returns None when there is nothing to train or test on (e.g. a single class).
    """
    length = max(2, round(WINDOW_S * fs))
    step = max(1, round(STEP_S * fs))
    if segments is None:
        segments = [(0, len(t))]
    ends = np.concatenate([start + window_ends(stop - start, length, step) for start, stop in segments] or [[]])
    ends = ends.astype(np.int64)
    if not len(ends):
        return None
    times = t[ends - 1]
    truth = np.asarray(truth_of(times))
    train = np.asarray(train_of(times), dtype=object)
    labelled = truth != UNLABELLED
    tr = labelled & (train == True)  # noqa: E712 - object array holding True/False/None
    te = labelled & (train == False)  # noqa: E712
    if len(np.unique(truth[tr])) < 2 or not te.any():
        return None
    model = HudginsLDA().fit(windows_at(emg, ends[tr], length), truth[tr])
    pred = model.predict(windows_at(emg, ends[te], length))
    ca = float(np.mean(pred == truth[te]))
    return BaselineResult(ca, int(tr.sum()), int(te.sum()), [int(c) for c in model.classes_], times[te], pred)
