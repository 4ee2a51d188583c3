"""Fusion of the detector states into gesture events and a per-window decision stream.

The fusion stage samples the latest state of every detector on a fixed grid of data time
(``tick_s``, 50 ms), but only up to the pipeline's watermark, so every input is complete for
the ticks it decides: the result is independent of chunking and of the order in which the
streams' chunks arrived.

Episode logic (one event per gesture):

1. idle: when any detector turns active an episode starts;
2. collecting, for ``coincidence_s``: which detectors were active, the wrist network's
   probabilities averaged over the forearm-active ticks, the rotation rate, the gravity
   direction; the gesture is then chosen by priority
   stop (stiffen) > rotate > wave (flexion/extension) > forward (fist);
3. busy until every detector was inactive for ``release_s``. A stiffen that starts during a
   busy episode of another gesture still produces ``stiffen`` at once: stop is never lost.

Fist or flexion: the wrist network trained on other people confuses the two most, while within
one wearer a fist is the stronger effort (it recruits the whole forearm). The stage therefore
clusters the fist detector's level above rest over the wearer's recent fist-or-flexion episodes
(two clusters, 1-D) and, once they separate clearly, weighs an episode's level under the two
clusters into the network's fist-vs-flexion odds (:class:`FusionConfig`, ``fist_level_*``).

A wave's axis comes from the accelerometer (gravity in the forearm frame, see
:class:`FusionConfig`): palm down gives up/down, thumb up gives left/right
(:func:`emgpilot.signals.vocabulary.wave_gesture`). Without an IMU the event's gesture is the
primitive's name (``wrist_flexion``/``wrist_extension``) so it can be scored by primitive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from emgpilot.classifiers.detectors import COL
from emgpilot.signals.pipeline import Stage
from emgpilot.signals.streams import DECISION, EVENT_STREAMS, Chunk, GestureEvent, Message
from emgpilot.signals.vocabulary import DECISION_CLASSES, wave_gesture

IMU_STREAM = "forearm_imu.resampled"
WRIST_STREAM = "wrist"
DETECTORS = ("stiffen", "rotation", "activation", "fist")

_IDLE, _COLLECT, _BUSY = 0, 1, 2
_CLS = {name: i for i, name in enumerate(DECISION_CLASSES)}
_FOREARM = ("fist", "wrist_flexion", "wrist_extension")
_FIST_OR_FLEXION = ("fist", "wrist_flexion")


def split_levels(levels: np.ndarray) -> tuple[float, float, float] | None:
    """Two clusters of 1-D ``levels`` (exact 2-means): ``(lower mean, upper mean, pooled std)``.

    None with fewer than 4 values (each cluster needs two).
    """
    x = np.sort(np.asarray(levels, dtype=np.float64))
    n = len(x)
    if n < 4:
        return None
    c1, c2 = np.cumsum(x), np.cumsum(x * x)
    i = np.arange(2, n - 1)  # size of the lower cluster
    lo_sum, hi_sum = c1[i - 1], c1[-1] - c1[i - 1]
    sse = (c2[i - 1] - lo_sum**2 / i) + (c2[-1] - c2[i - 1] - hi_sum**2 / (n - i))
    b = int(np.argmin(sse))
    k = int(i[b])
    return float(lo_sum[b] / k), float(hi_sum[b] / (n - k)), math.sqrt(max(float(sse[b]), 0.0) / (n - 2))


@dataclass
class FusionConfig:
    """Settings of the fusion stage.

    Parameters
    ----------
    tick_s : decision period (data time).
    coincidence_s : evidence is gathered this long after an episode's first onset.
    release_s : every detector must be inactive this long before a new episode may start.
    return_s : a rotation opposite to the previous one within this time is the forearm
        turning back, not a new gesture.
    stale_s : a detector state older than this (no data, e.g. a gap in a recording) counts as
        inactive, and ticks where every detector is stale give no decision.
    stiffen_margin_with_forearm : when the forearm is active in the same episode, the stiffen
        detector must exceed its threshold by this much (log units) to win: a strong fist
        spills over into the upper arm, while a real stiffen is far above its threshold.
    wave_min_prob : mean share of flexion (or extension) among the non-rest wrist classes
        needed for a wave.
    fist_min_prob : mean share of fist needed for forward when the fist detector did not fire.
    rest_max_prob : an episode whose wrist evidence is mostly "rest" (an unfamiliar motion) is
        rejected when the mean rest probability exceeds this.
    other_max_prob : an episode is rejected when the wrist network's mean probability of the
        motions outside the vocabulary it knows (radial/ulnar deviation, hand open) exceeds this.
    arm : ``right``, ``left`` (mirrors wave left/right with the thumb up) or ``auto``: with the
        thumb up, gravity lies along +y of the forearm frame on a right arm and -y on a left arm
        (forearm roll +90 vs -90 deg), so the sign of ``thumb_up_axis`` tells the arm.
    cw_sign : sign of gyro x for a clockwise rotation seen from the elbow (positive roll about
        +x, towards the hand).
    palm_down_axis, thumb_up_axis : accelerometer channels gravity lies along in the two
        hand orientations (forearm horizontal).
    fist_level_episodes : fist-or-flexion episodes the wearer must have made before their levels
        are used (0 turns the level evidence off).
    fist_level_history : how many recent fist-or-flexion episode levels are clustered.
    fist_level_separation : the two clusters must lie this many pooled standard deviations
        apart to be used.
    fist_level_agreement_z : and the network must agree that the stronger episodes are the
        fists: the correlation ``r`` between the episodes' levels and the network's fist share
        (of fist + flexion) must be significant, ``r * sqrt(n) > fist_level_agreement_z``
        (one-sided, 1.645 = 5 %). Without it a wearer making only fists would see the weaker
        half of them called flexions.
    fist_level_min_std : floor of the pooled standard deviation (log units).
    fist_level_max_nats : the level's log-likelihood ratio (upper cluster = fist, lower =
        flexion), added to the network's log odds of fist vs flexion, is clipped to +- this.
    """

    tick_s: float = 0.05
    coincidence_s: float = 0.3
    release_s: float = 0.25
    return_s: float = 2.5
    stale_s: float = 0.15
    stiffen_margin_with_forearm: float = 0.6
    wave_min_prob: float = 0.5
    fist_min_prob: float = 0.5
    rest_max_prob: float = 0.6
    other_max_prob: float = 1.0
    arm: str = "auto"
    cw_sign: float = 1.0
    palm_down_axis: str = "az"
    thumb_up_axis: str = "ay"
    fist_level_episodes: int = 10
    fist_level_history: int = 40
    fist_level_separation: float = 2.5
    fist_level_agreement_z: float = 1.645
    fist_level_min_std: float = 0.05
    fist_level_max_nats: float = 2.0


class GestureFusion(Stage):
    """Turns detector states (+ wrist probabilities + IMU) into ``gesture`` events and ``decision``.

    Parameters
    ----------
    cfg : settings.
    detectors : names of the detectors present (subset of ``stiffen``, ``rotation``,
        ``activation``, ``fist``).
    wrist_classes : class names of the ``wrist`` stream, or None without a wrist model.
    imu_channels : channel names of ``forearm_imu.resampled``, or None without an IMU.
    """

    name = "fusion"

    def __init__(
        self,
        cfg: FusionConfig,
        detectors: tuple[str, ...],
        wrist_classes: tuple[str, ...] | None = None,
        imu_channels: tuple[str, ...] | None = None,
    ) -> None:
        unknown = set(detectors) - set(DETECTORS)
        if unknown:
            raise ValueError(f"fusion: unknown detectors {sorted(unknown)}")
        if cfg.arm not in ("right", "left", "auto"):
            raise ValueError(f"fusion: arm must be 'right', 'left' or 'auto', not {cfg.arm!r}")
        if cfg.fist_level_episodes > 0:
            if cfg.fist_level_history < max(4, cfg.fist_level_episodes):
                raise ValueError(
                    f"fusion: fist_level_history ({cfg.fist_level_history}) must be at least 4 and at least"
                    f" fist_level_episodes ({cfg.fist_level_episodes})"
                )
            if not cfg.fist_level_min_std > 0:
                raise ValueError(f"fusion: fist_level_min_std must be > 0, not {cfg.fist_level_min_std}")
        if imu_channels is not None:
            for axis in (cfg.palm_down_axis, cfg.thumb_up_axis):
                if axis not in imu_channels:
                    raise ValueError(f"fusion: IMU channel {axis!r} not in {imu_channels}")
        self.cfg = cfg
        self.detectors = tuple(d for d in DETECTORS if d in detectors)
        self.wrist_classes = wrist_classes
        self.imu_channels = imu_channels
        inputs = [f"detector.{d}" for d in self.detectors]
        if wrist_classes is not None:
            inputs.append(WRIST_STREAM)
            self._wrist_idx = [wrist_classes.index(c) for c in _FOREARM]
            self._wrist_rest = wrist_classes.index("rest") if "rest" in wrist_classes else None
            self._wrist_other = [i for i, c in enumerate(wrist_classes) if c not in (*_FOREARM, "rest")]
        if imu_channels is not None:
            inputs.append(IMU_STREAM)
            self._acc_idx = (imu_channels.index(cfg.palm_down_axis), imu_channels.index(cfg.thumb_up_axis))
        self.inputs = tuple(inputs)
        self.outputs = (EVENT_STREAMS["gesture"], DECISION)
        self.reset()

    # ----------------------------------------------------------------- state
    def reset(self) -> None:
        self._buf_t: dict[str, np.ndarray] = {}
        self._buf_x: dict[str, np.ndarray] = {}
        self._last: dict[str, np.ndarray | None] = {name: None for name in self.inputs}
        self._first_t: dict[str, float] = {}
        self._t_max = -math.inf
        self._next_k: int | None = None
        self._state = _IDLE
        self._onset_k = 0
        self._quiet = 0
        self._gesture = ""
        self._primitive = ""
        self._last_rotation = ("", -math.inf)
        # (level, the network's fist share of fist + flexion) of the recent fist-or-flexion episodes
        self._fist_levels: list[tuple[float, float]] = []
        self._ev = self._new_evidence()

    @staticmethod
    def _new_evidence() -> dict[str, float]:
        return {
            "stiffen": 0.0,
            "stiffen_margin": -math.inf,
            "rotation": 0.0,
            "rotation_rate": 0.0,
            "activation": 0.0,
            "fist": 0.0,
            "wrist_ticks": 0.0,
            "p_fist": 0.0,
            "p_flexion": 0.0,
            "p_extension": 0.0,
            "p_rest": 0.0,
            "p_other": 0.0,
            "fist_level": 0.0,
            "fist_level_ticks": 0.0,
            "fist_level_nats": 0.0,
            "palm_down_g": math.nan,
            "thumb_up_g": math.nan,
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "buf_t": {k: v.copy() for k, v in self._buf_t.items()},
            "buf_x": {k: v.copy() for k, v in self._buf_x.items()},
            "last": {k: None if v is None else v.copy() for k, v in self._last.items()},
            "first_t": dict(self._first_t),
            "t_max": self._t_max,
            "next_k": self._next_k,
            "machine": {
                "state": self._state,
                "onset_k": self._onset_k,
                "quiet": self._quiet,
                "gesture": self._gesture,
                "primitive": self._primitive,
                "last_rotation": list(self._last_rotation),
            },
            "evidence": dict(self._ev),
            "fist_levels": np.asarray(self._fist_levels, dtype=np.float64).reshape(-1, 2),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._buf_t = {k: np.asarray(v).copy() for k, v in state["buf_t"].items()}
        self._buf_x = {k: np.asarray(v).copy() for k, v in state["buf_x"].items()}
        self._last = {k: None if v is None else np.asarray(v).copy() for k, v in state["last"].items()}
        self._first_t = {k: float(v) for k, v in state["first_t"].items()}
        self._t_max = float(state["t_max"])
        self._next_k = None if state["next_k"] is None else int(state["next_k"])
        m = state["machine"]
        self._state, self._onset_k, self._quiet = int(m["state"]), int(m["onset_k"]), int(m["quiet"])
        self._gesture, self._primitive = str(m["gesture"]), str(m["primitive"])
        self._last_rotation = (str(m["last_rotation"][0]), float(m["last_rotation"][1]))
        self._ev = {k: float(v) for k, v in state["evidence"].items()}
        self._fist_levels = [(float(a), float(b)) for a, b in np.asarray(state["fist_levels"], dtype=np.float64)]

    # ----------------------------------------------------------------- data
    def process(self, msg: Message) -> list[Message]:
        if not isinstance(msg, Chunk) or len(msg) == 0:
            return []
        name = msg.stream
        x = np.asarray(msg.data, dtype=np.float64)
        if name in self._buf_t:
            self._buf_t[name] = np.concatenate([self._buf_t[name], msg.t])
            self._buf_x[name] = np.vstack([self._buf_x[name], x])
        else:
            self._buf_t[name] = np.asarray(msg.t, dtype=np.float64).copy()
            self._buf_x[name] = x.copy()
            self._first_t.setdefault(name, float(msg.t[0]))
        self._t_max = max(self._t_max, msg.t_end)
        return []

    def advance(self, watermark: float) -> list[Message]:
        dt = self.cfg.tick_s
        if self._next_k is None:
            if not self._first_t:
                return []
            t0 = min(self._first_t.values())
            if t0 > watermark:
                return []
            self._next_k = math.ceil(t0 / dt - 1e-9)
        horizon = min(watermark, self._t_max)
        last_k = math.floor(horizon / dt + 1e-9)
        if last_k < self._next_k:
            return []
        ks = np.arange(self._next_k, last_k + 1)
        ticks = ks * dt
        self._next_k = last_k + 1
        sampled = {name: self._sample(name, ticks) for name in self.inputs}
        cols: dict[str, np.ndarray | None] = {}
        fresh = np.zeros(len(ticks), dtype=bool)
        for name, got in sampled.items():
            if got is None:
                cols[name] = None
                continue
            rows, age = got
            if name.startswith("detector."):
                # Stale detector state (data stopped, e.g. a gap in the recording) means inactive.
                stale = ~(age <= self.cfg.stale_s)
                if stale.any():
                    rows = rows.copy()
                    rows[stale, COL["active"]] = 0.0
                fresh |= ~stale
            cols[name] = rows
        return self._run(ks, ticks, cols, fresh)

    def _sample(self, name: str, ticks: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Latest row of ``name`` at or before each tick (NaN rows where none yet), and its age (s).

        The last row's time is kept as the row's final column internally.
        """
        bt = self._buf_t.get(name)
        last = self._last.get(name)
        if bt is None or len(bt) == 0:
            if last is None:
                return None
            rows = np.repeat(last[None, :-1], len(ticks), axis=0)
            return rows, ticks - last[-1]
        bx = self._buf_x[name]
        idx = np.searchsorted(bt, ticks + 1e-9, side="right") - 1
        if last is None:
            last = np.full(bx.shape[1] + 1, np.nan)
            last[-1] = -math.inf
        ok = idx >= 0
        rows = np.where(ok[:, None], bx[np.maximum(idx, 0)], last[None, :-1])
        t_row = np.where(ok, bt[np.maximum(idx, 0)], last[-1])
        # Keep only what later ticks may still need: the last used row and anything newer.
        used = int(idx[-1])
        if used >= 0:
            self._last[name] = np.append(bx[used], bt[used])
            self._buf_t[name] = bt[used + 1 :]
            self._buf_x[name] = bx[used + 1 :]
        return rows, ticks - t_row

    # ----------------------------------------------------------------- decisions
    def _col(self, cols: dict[str, np.ndarray | None], det: str, channel: str, n: int) -> list[float]:
        arr = cols.get(f"detector.{det}")
        if arr is None:
            return [0.0] * n
        if channel == "rate":
            return np.nan_to_num(arr[:, len(COL)]).tolist()
        return np.nan_to_num(arr[:, COL[channel]]).tolist()

    def _run(
        self, ks: np.ndarray, ticks: np.ndarray, cols: dict[str, np.ndarray | None], fresh: np.ndarray
    ) -> list[Message]:
        cfg = self.cfg
        n = len(ks)
        st = self._col(cols, "stiffen", "active", n)
        st_value, st_thr = self._col(cols, "stiffen", "value", n), self._col(cols, "stiffen", "threshold", n)
        st_margin = [a - b for a, b in zip(st_value, st_thr, strict=True)]
        rot = self._col(cols, "rotation", "active", n)
        rate = self._col(cols, "rotation", "rate", n) if "rotation" in self.detectors else [0.0] * n
        act = self._col(cols, "activation", "active", n)
        fist = self._col(cols, "fist", "active", n)
        fist_rows = cols.get("detector.fist")
        if fist_rows is not None:
            # The fist detector's level above the wearer's rest (NaN before its first fit).
            fist_level = (fist_rows[:, COL["value"]] - fist_rows[:, COL["rest_mean"]]).tolist()
        else:
            fist_level = [math.nan] * n
        wrist = cols.get(WRIST_STREAM)
        if wrist is not None:
            pw = wrist[:, self._wrist_idx]  # fist, flexion, extension
            prest = wrist[:, self._wrist_rest] if self._wrist_rest is not None else np.zeros(n)
            pother = wrist[:, self._wrist_other].sum(axis=1)
            valid = ~np.isnan(pw).any(axis=1)
            denom = np.where(valid, pw.sum(axis=1), 1.0)
            q = np.where(valid[:, None], pw / np.maximum(denom, 1e-9)[:, None], np.nan)
            q_list = q.tolist()
            prest_list = np.nan_to_num(prest).tolist()
            pother_list = np.nan_to_num(pother).tolist()
            valid_list = valid.tolist()
        else:
            q_list = [[math.nan] * 3] * n
            prest_list = [0.0] * n
            pother_list = [0.0] * n
            valid_list = [False] * n
        imu = cols.get(IMU_STREAM)
        if imu is not None:
            acc = imu[:, list(self._acc_idx)].tolist()
        else:
            acc = [[math.nan, math.nan]] * n

        coincidence = max(1, round(cfg.coincidence_s / cfg.tick_s))
        release = max(1, round(cfg.release_s / cfg.tick_s))
        events: list[Message] = []
        dec = np.empty((n, 2), dtype=np.float32)
        any_vec = np.zeros(n, dtype=bool)
        for flags in (st, rot, act, fist):
            any_vec |= np.asarray(flags) > 0
        on_idx = np.flatnonzero(any_vec)
        i = 0
        while i < n:
            if self._state == _IDLE and not any_vec[i]:
                # Fast path: idle and nothing active until the next onset -> rest windows.
                nxt = np.searchsorted(on_idx, i)
                j = int(on_idx[nxt]) if nxt < len(on_idx) else n
                dec[i:j] = (_CLS["rest"], 1.0)
                i = j
                continue
            k = int(ks[i])
            s_on, r_on, a_on, f_on = st[i] > 0, rot[i] > 0, act[i] > 0, fist[i] > 0
            any_on = s_on or r_on or a_on or f_on
            if self._state == _IDLE and any_on:
                self._state, self._onset_k, self._ev = _COLLECT, k, self._new_evidence()
                self._ev["palm_down_g"], self._ev["thumb_up_g"] = acc[i]
            if self._state == _COLLECT:
                ev = self._ev
                ev["stiffen"] = max(ev["stiffen"], float(s_on))
                if s_on:
                    ev["stiffen_margin"] = max(ev["stiffen_margin"], st_margin[i])
                ev["activation"] = max(ev["activation"], float(a_on))
                ev["fist"] = max(ev["fist"], float(f_on))
                if r_on:
                    ev["rotation"] = 1.0
                    ev["rotation_rate"] += rate[i]
                if math.isfinite(fist_level[i]):
                    ev["fist_level"] += fist_level[i]
                    ev["fist_level_ticks"] += 1
                if (a_on or f_on) and valid_list[i]:
                    ev["wrist_ticks"] += 1
                    qi = q_list[i]
                    ev["p_fist"] += qi[0]
                    ev["p_flexion"] += qi[1]
                    ev["p_extension"] += qi[2]
                    ev["p_rest"] += prest_list[i]
                    ev["p_other"] += pother_list[i]
                if k - self._onset_k + 1 >= coincidence or (s_on and not (a_on or f_on)) or not any_on:
                    events.extend(self._decide(float(ticks[i])))
                    self._state, self._quiet = _BUSY, 0
            elif self._state == _BUSY:
                if s_on and self._primitive != "stiffen":
                    forearm = a_on or f_on
                    if not forearm or st_margin[i] >= cfg.stiffen_margin_with_forearm:
                        self._ev = self._new_evidence()
                        self._ev["stiffen"] = 1.0
                        self._ev["stiffen_margin"] = st_margin[i]
                        events.extend(self._decide(float(ticks[i])))
                self._quiet = 0 if any_on else self._quiet + 1
                if self._quiet >= release:
                    self._state, self._gesture, self._primitive = _IDLE, "", ""
            s_win = s_on and (not (a_on or f_on) or st_margin[i] >= cfg.stiffen_margin_with_forearm)
            dec[i] = self._window_decision(s_win, r_on, a_on, f_on, rate[i], q_list[i], valid_list[i])
            i += 1
        # No decision for ticks without any fresh detector data (gaps in the recording).
        out: list[Message] = []
        if fresh.any():
            keep = fresh if not fresh.all() else slice(None)
            out.append(Chunk(DECISION, ticks.astype(np.float64)[keep], dec[keep]))
        return [*events, *out]

    def _window_decision(
        self, s_on: bool, r_on: bool, a_on: bool, f_on: bool, rate: float, q: list[float], valid: bool
    ) -> tuple[float, float]:
        """Class of one decision window (index into DECISION_CLASSES, -1 = rejected), confidence."""
        if s_on:
            return _CLS["stiffen"], 1.0
        if r_on:
            return _CLS["rotate_cw" if rate * self.cfg.cw_sign > 0 else "rotate_ccw"], 1.0
        if a_on or f_on:
            # Inside a decided forearm episode, hold its primitive (the event's decision).
            if self._state == _BUSY and self._primitive in _FOREARM:
                return _CLS[self._primitive], 1.0
            if valid:
                j = int(np.argmax(q))
                return _CLS[_FOREARM[j]], float(q[j])
            if f_on:
                return _CLS["fist"], 0.5
            return -1, 0.0
        return _CLS["rest"], 1.0

    def _decide(self, t: float) -> list[Message]:
        """Choose the episode's gesture by priority; an empty list rejects the episode."""
        cfg = self.cfg
        ev = self._ev
        primitive = ""
        confidence = 0.0
        forearm = ev["activation"] > 0 or ev["fist"] > 0
        if ev["stiffen"] > 0 and (not forearm or ev["stiffen_margin"] >= cfg.stiffen_margin_with_forearm):
            primitive, confidence = "stiffen", 1.0
        elif ev["rotation"] > 0:
            primitive = "rotate_cw" if ev["rotation_rate"] * cfg.cw_sign > 0 else "rotate_ccw"
            confidence = 1.0
            last, t_last = self._last_rotation
            if last and last != primitive and t - t_last < cfg.return_s:
                # The forearm turning back after a rotation: no new gesture.
                self._primitive, self._gesture = "rotate_return", ""
                return []
            self._last_rotation = (primitive, t)
        elif ev["wrist_ticks"] > 0:
            m = ev["wrist_ticks"]
            p = [ev["p_fist"] / m, ev["p_flexion"] / m, ev["p_extension"] / m]
            j = int(np.argmax(p))
            if ev["p_rest"] / m > cfg.rest_max_prob or ev["p_other"] / m > cfg.other_max_prob:
                primitive = ""
            elif j > 0 and p[j] >= cfg.wave_min_prob:
                primitive, confidence = _FOREARM[j], p[j]
            elif j == 0 and (ev["fist"] > 0 or p[0] >= cfg.fist_min_prob):
                primitive, confidence = "fist", p[0]
            if primitive in _FIST_OR_FLEXION and ev["fist_level_ticks"] > 0:
                primitive, confidence = self._weigh_fist_level(p, ev["fist_level"] / ev["fist_level_ticks"])
        elif ev["fist"] > 0:
            primitive, confidence = "fist", 0.5
        self._primitive = primitive
        if not primitive:
            self._gesture = ""
            return []
        gesture = primitive
        if primitive in ("wrist_flexion", "wrist_extension"):
            orientation = self._orientation(ev["palm_down_g"], ev["thumb_up_g"])
            if orientation is not None:
                arm = cfg.arm
                if arm == "auto":
                    arm = "right" if ev["thumb_up_g"] >= 0 else "left"
                gesture = wave_gesture(primitive, orientation, arm)
        self._gesture = gesture
        evidence = {k: float(v) for k, v in ev.items() if math.isfinite(v)}
        for key in ("p_fist", "p_flexion", "p_extension", "p_rest", "p_other"):
            if ev["wrist_ticks"] > 0:
                evidence[key] = ev[key] / ev["wrist_ticks"]
        ticks = evidence.pop("fist_level_ticks", 0.0)
        if ticks:
            evidence["fist_level"] = ev["fist_level"] / ticks
        else:
            evidence.pop("fist_level", None)
        event = GestureEvent(t=t, gesture=gesture, primitive=primitive, confidence=float(confidence), evidence=evidence)
        return [event]

    def _weigh_fist_level(self, p: list[float], level: float) -> tuple[str, float]:
        """Fist or flexion for an episode the network put in one of the two, with the wearer's
        own levels: the episode's ``level`` under the two clusters of the recent fist-or-flexion
        episodes (upper = fist) adds its log-likelihood ratio to the network's log odds. The
        episode then joins the history. Returns the primitive and its share of the pair."""
        cfg = self.cfg
        pair = p[0] + p[1]
        share = p[0] / pair if pair > 0 else 0.5
        nats = self._level_nats(level)
        if cfg.fist_level_episodes > 0:
            self._fist_levels.append((level, share))
            del self._fist_levels[: -cfg.fist_level_history]
        self._ev["fist_level_nats"] = nats
        log_odds = math.log(p[0] + 1e-6) - math.log(p[1] + 1e-6) + nats
        share_fist = 1.0 / (1.0 + math.exp(-log_odds))
        if share_fist > 0.5:
            return "fist", pair * share_fist
        return "wrist_flexion", pair * (1.0 - share_fist)

    def _level_nats(self, level: float) -> float:
        """Log-likelihood ratio fist vs flexion of ``level`` under the history's two clusters
        (0 while the history is short, the clusters overlap, or the network disagrees)."""
        cfg = self.cfg
        if cfg.fist_level_episodes <= 0 or len(self._fist_levels) < cfg.fist_level_episodes:
            return 0.0
        history = np.asarray(self._fist_levels[-cfg.fist_level_history :])
        levels, shares = history[:, 0], history[:, 1]
        split = split_levels(levels)
        if split is None or levels.std() == 0 or shares.std() == 0:
            return 0.0
        lower, upper, std = split
        std = max(std, cfg.fist_level_min_std)
        agreement = float(np.corrcoef(levels, shares)[0, 1])
        significant = agreement * math.sqrt(len(levels)) > cfg.fist_level_agreement_z
        if upper - lower <= cfg.fist_level_separation * std or not significant:
            return 0.0
        llr = ((level - lower) ** 2 - (level - upper) ** 2) / (2.0 * std * std)
        return min(max(llr, -cfg.fist_level_max_nats), cfg.fist_level_max_nats)

    @staticmethod
    def _orientation(palm_down_g: float, thumb_up_g: float) -> str | None:
        if math.isnan(palm_down_g) or math.isnan(thumb_up_g):
            return None
        return "palm_down" if abs(palm_down_g) >= abs(thumb_up_g) else "thumb_up"
