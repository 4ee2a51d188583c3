"""Assembles gesture recognition (detectors, wrist network, fusion) for the streams present.

``recognition_stages(cfg, streams)`` returns the stages to append after conditioning: one
detector per signal family whose input exists, then the fusion stage. ``streams`` maps every
available stream name (sources and conditioned streams) to its declaration.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from functools import lru_cache

from emgpilot.classifiers.clustering import MixtureConfig
from emgpilot.classifiers.detectors import (
    ActivationDetector,
    DetectorConfig,
    FistDetector,
    RotationDetector,
    StiffenDetector,
    TimingConfig,
    WristClassifier,
)
from emgpilot.classifiers.fusion import IMU_STREAM, FusionConfig, GestureFusion
from emgpilot.signals.pipeline import Stage
from emgpilot.signals.streams import StreamInfo

log = logging.getLogger(__name__)

FOREARM_FILTERED = "forearm_emg.filtered"
UPPER_ENVELOPE = "upper_emg.envelope"


# Detector-specific defaults are subclasses (not default factories) so that a TOML table that
# overrides one setting keeps the detector's other defaults (the strict loader builds the
# annotated class).

_G0_DPS = 5.0


@dataclass
class RotationMixtureConfig(MixtureConfig):
    """Rotation: only "moving" windows (> 30 deg/s) enter the history, so the mixture separates
    slow posture turns (e.g. palm down -> thumb up before a wave, ~70-120 deg/s) from quick
    deliberate rotations (~170-300 deg/s). Before both were seen the threshold is 140 deg/s; it
    never drops below 100 deg/s (the slow return after a rotation stays under it)."""

    history: int = 600
    refit_every: int = 125
    refit_every_initial: int = 25
    initial_windows: int = 750
    min_history: int = 25
    min_separation: float = 0.3
    prior_lift: float = 0.0
    min_lift: float = 0.2
    min_rest_z: float = 1.0
    history_floor: float = math.log(30.0 + _G0_DPS)
    cold_threshold: float = math.log(140.0 + _G0_DPS)
    abs_min_threshold: float = math.log(100.0 + _G0_DPS)


@dataclass
class RotationTimingConfig(TimingConfig):
    min_on: int = 2
    min_off: int = 3
    refractory: int = 12


@dataclass
class RotationDetectorConfig(DetectorConfig):
    """50 Hz IMU: 6-sample windows every 2 samples (25 Hz decisions)."""

    window_s: float = 0.12
    step_s: float = 0.04
    mixture: RotationMixtureConfig = field(default_factory=RotationMixtureConfig)
    timing: RotationTimingConfig = field(default_factory=RotationTimingConfig)


@dataclass
class StiffenMixtureConfig(MixtureConfig):
    """Stiffening co-contracts hard: both muscles far above their floor. A fist or an elbow
    flexion can spill over into both muscles (~3-4x): when the active values form two clusters,
    the threshold goes between them (``split_upper``). Stiffens are rarer than forearm gestures,
    so the history is longer."""

    history: int = 3000
    prior_lift: float = 1.6
    min_lift: float = 1.0
    split_upper: bool = True


@dataclass
class StiffenDetectorConfig(DetectorConfig):
    mixture: StiffenMixtureConfig = field(default_factory=StiffenMixtureConfig)


@dataclass
class RecognitionConfig:
    """Settings of gesture recognition.

    Parameters
    ----------
    enabled : build the recognition stages at all.
    wrist_model : ``"shipped"`` (weights in the package), a path to a ``.safetensors`` file, or
        ``""`` for none (waves are then not recognised).
    wrist_rotation : how the armband's rotation around the forearm is compensated before the
        wrist network: ``auto``, ``estimator``, ``infomax`` or ``none`` (see
        :func:`emgpilot.classifiers.detectors._resolve_rotation_mode`).
    wrist_max_rotation : the estimated rotation stays within this many electrodes (45 deg each)
        of the standard placement (logo on the back of the forearm); -1 allows any. Not applied
        with ``fusion.arm = "left"``.
    wrist_rotation_escape : a rotation beyond that bound is still taken when, after 200 taught
        windows, its evidence leads by more than this many nats per window (a band clearly worn
        further round); -1: never.
    wrist_rotation_prior : the electrode shift the estimate starts from, and the bound's centre:
        0 = the standard placement; a returning wearer's profile (:mod:`emgpilot.wearer`) puts the
        rotation their armband had last time here.
    wrist_invariant_model : the rotation-invariant companion network (``"shipped"``, a path, or
        ``""`` for none). It needs no rotation estimate, so it classifies a new wearer's first
        gestures: its answer is blended with the main network's, its weight falling from 1 to 0
        over the first ``wrist_invariant_windows`` windows that teach the rotation estimate (every
        4th active window: 50 is ~10 s of gestures). 0 turns it off; a wearer profile with a known
        rotation turns it off too.
    wrist_calibration : path of a wearer calibration file (:mod:`emgpilot.classifiers.calibration`,
        made by ``emgpilot calibrate`` from one cued session); ``""`` for none (the default: no
        calibration is needed). A wearer profile with a calibration sets it.
    """

    enabled: bool = True
    wrist_model: str = "shipped"
    wrist_rotation: str = "auto"
    wrist_max_rotation: int = 1
    wrist_rotation_escape: float = 0.5
    wrist_rotation_prior: int = 0
    wrist_invariant_model: str = "shipped"
    wrist_invariant_windows: int = 50
    wrist_calibration: str = ""
    activation: DetectorConfig = field(default_factory=DetectorConfig)
    fist: DetectorConfig = field(default_factory=DetectorConfig)
    stiffen: StiffenDetectorConfig = field(default_factory=StiffenDetectorConfig)
    rotation: RotationDetectorConfig = field(default_factory=RotationDetectorConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)


@lru_cache(maxsize=8)
def _load_network(spec: str, companion: bool) -> WristClassifier | None:
    what = "rotation-invariant wrist network" if companion else "wrist network"
    without = "not used" if companion else "wrist flexion/extension will not be recognised"
    try:
        from emgpilot.classifiers.wrist import INVARIANT_NAME, WEIGHTS_NAME, load_wrist_model
    except ImportError as e:
        log.warning("%s unavailable (%s): %s", what, e, without)
        return None
    try:
        return load_wrist_model(None if spec == "shipped" else spec, INVARIANT_NAME if companion else WEIGHTS_NAME)
    except ImportError as e:
        log.warning("cannot load %s %r (%s): %s", what, spec, e, without)
        return None
    except (FileNotFoundError, ValueError, OSError) as e:
        # A network the user named that cannot be read is a configuration error, not a quiet
        # session without flexion/extension.
        setting = "wrist_invariant_model" if companion else "wrist_model"
        raise ValueError(f"recognition.{setting}: {e}") from e


def load_wrist(spec: str) -> WristClassifier | None:
    """The wrist model named by ``spec`` (see :class:`RecognitionConfig`), or None."""
    return _load_network(spec, False) if spec else None


def load_invariant(spec: str) -> WristClassifier | None:
    """The rotation-invariant companion named by ``spec`` (see :class:`RecognitionConfig`), or None."""
    return _load_network(spec, True) if spec else None


def check_calibration(cfg: RecognitionConfig) -> None:
    """Raise :class:`~emgpilot.classifiers.calibration.CalibrationError` (a ValueError naming the file)
    unless ``cfg.wrist_calibration`` is empty or a calibration the configured wrist network can use."""
    if not cfg.wrist_calibration:
        return
    from emgpilot.classifiers.calibration import load_calibration

    calibration = load_calibration(cfg.wrist_calibration)
    model = load_wrist(cfg.wrist_model)
    if model is not None:
        calibration.check_model(model)


def _companion_for(model: WristClassifier | None, cfg: RecognitionConfig) -> WristClassifier | None:
    """The rotation-invariant companion for ``model``, if configured and it answers the same classes."""
    if model is None or cfg.wrist_invariant_windows <= 0:
        return None
    companion = load_invariant(cfg.wrist_invariant_model)
    if companion is not None and tuple(companion.classes) != tuple(model.classes):
        log.warning(
            "the rotation-invariant wrist network answers %s, the wrist network %s: not used",
            tuple(companion.classes),
            tuple(model.classes),
        )
        return None
    return companion


def recognition_stages(
    cfg: RecognitionConfig, streams: dict[str, StreamInfo], wrist: WristClassifier | None = None
) -> list[Stage]:
    """Detector and fusion stages for the available ``streams``.

    Parameters
    ----------
    cfg : settings.
    streams : every stream available to the recogniser (name -> declaration), including the
        conditioned ones (``forearm_emg.filtered``, ``upper_emg.envelope``, ``forearm_imu.resampled``).
    wrist : a wrist model to use instead of loading ``cfg.wrist_model`` (tests).
    """
    if not cfg.enabled:
        return []
    stages: list[Stage] = []
    detectors: list[str] = []
    wrist_classes = None
    calibration = None
    if FOREARM_FILTERED in streams:
        src = streams[FOREARM_FILTERED]
        model = wrist if wrist is not None else load_wrist(cfg.wrist_model)
        if cfg.wrist_calibration:
            if model is None:
                log.warning("wearer calibration %s not used: there is no wrist network", cfg.wrist_calibration)
            else:
                from emgpilot.classifiers.calibration import load_calibration

                calibration = load_calibration(cfg.wrist_calibration)
        # A left arm (fusion.arm = "left") mirrors the electrode ring for the wrist network.
        left = cfg.fusion.arm == "left"
        # Where a mirrored ring's standard placement falls depends on where the Myo's logo pod sits
        # among the electrodes, which no recording here pins down: left arms are not bounded.
        bounded = cfg.wrist_max_rotation >= 0 and not left
        activation = ActivationDetector(
            src,
            cfg.activation,
            model,
            cfg.wrist_rotation,
            mirror=left,
            max_shift=cfg.wrist_max_rotation if bounded else None,
            escape_nats=cfg.wrist_rotation_escape if cfg.wrist_rotation_escape >= 0 else None,
            prior_shift=cfg.wrist_rotation_prior,
            invariant=_companion_for(model, cfg),
            invariant_windows=cfg.wrist_invariant_windows,
            calibration=calibration,
        )
        stages.append(activation)
        stages.append(FistDetector(src, cfg.fist))
        detectors += ["activation", "fist"]
        if model is not None:
            wrist_classes = tuple(model.classes)
    if UPPER_ENVELOPE in streams:
        stages.append(StiffenDetector(streams[UPPER_ENVELOPE], cfg.stiffen))
        detectors.append("stiffen")
    fusion_cfg = cfg.fusion
    if calibration is not None:
        # The calibration knows this wearer's own fist and flexion; the unsupervised level
        # clusters only second-guessed it (development: 137 -> 135 of 145 calibrated events).
        fusion_cfg = replace(fusion_cfg, fist_level_episodes=0)
    imu_channels = None
    if IMU_STREAM in streams:
        stages.append(RotationDetector(streams[IMU_STREAM], cfg.rotation))
        detectors.append("rotation")
        imu_channels = streams[IMU_STREAM].channels
    if detectors:
        stages.append(GestureFusion(fusion_cfg, tuple(detectors), wrist_classes, imu_channels))
    return stages
