"""Assembles the full pipeline (conditioning, detectors, fusion) from one configuration."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from emgpilot.classifiers.recognition import RecognitionConfig, recognition_stages
from emgpilot.config import ConfigError, from_mapping, load_toml
from emgpilot.signals.pipeline import Pipeline, Stage
from emgpilot.signals.preprocess import PreprocessConfig, preprocessing_stages
from emgpilot.signals.streams import FOREARM_EMG, FOREARM_IMU, UPPER_EMG, StreamInfo


@dataclass
class PipelineConfig:
    """Everything that decides what the pipeline computes. Stored in every recording."""

    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    recognition: RecognitionConfig = field(default_factory=RecognitionConfig)


def load_pipeline_config(path: str | Path | None = None) -> PipelineConfig:
    """The configuration in the TOML file ``path`` (None: the defaults). A wearer calibration it
    names (relative to the file) and every stage's settings are checked now, so a bad value is a
    configuration error naming the file, not a failure when a device starts."""
    if path is None:
        return PipelineConfig()
    cfg = load_toml(PipelineConfig, path)
    calibration = cfg.recognition.wrist_calibration
    if calibration:
        resolved = Path(path).parent / calibration  # an absolute path stays as it is
        cfg = replace(cfg, recognition=replace(cfg.recognition, wrist_calibration=str(resolved)))
    from emgpilot.classifiers.calibration import CalibrationError

    try:
        # The stages for every sensor the app knows: each checks its own settings (the activation
        # detector loads the calibration and checks it against the wrist network).
        build_stages(cfg, {s.name: s for s in (FOREARM_EMG, FOREARM_IMU, UPPER_EMG)})
    except CalibrationError as e:
        raise ConfigError(f"{path}: recognition.wrist_calibration: {e}") from e
    except ValueError as e:
        raise ConfigError(f"{path}: {e}") from e
    return cfg


def pipeline_config_from_dict(data: dict) -> PipelineConfig:
    return from_mapping(PipelineConfig, data)


def declared_arm(metadata: dict[str, Any]) -> str | None:
    """The arm a recording says its wearer wore the armband on (``arm``/``hand``), if any."""
    nested = metadata.get("import") if isinstance(metadata.get("import"), dict) else {}
    for value in (metadata.get("arm"), metadata.get("hand"), nested.get("hand")):
        if value in ("left", "right"):
            return str(value)
    return None


def with_wearer_arm(cfg: PipelineConfig | None, arm: str | None) -> PipelineConfig:
    """``cfg`` for a wearer who declared their ``arm``, as a user sets ``arm`` in the app.

    Only a configuration that leaves ``recognition.fusion.arm = "auto"`` is changed: on a left
    arm the electrode ring is mirrored for the wrist network, which gravity cannot tell.
    """
    cfg = cfg or PipelineConfig()
    fusion = cfg.recognition.fusion
    if arm not in ("left", "right") or fusion.arm != "auto":
        return cfg
    return replace(cfg, recognition=replace(cfg.recognition, fusion=replace(fusion, arm=arm)))


def build_stages(cfg: PipelineConfig, sources: dict[str, StreamInfo]) -> list[Stage]:
    stages = preprocessing_stages(cfg.preprocess, sources)
    available = {**sources, **{out.name: out for stage in stages for out in stage.outputs}}
    return stages + recognition_stages(cfg.recognition, available)


def build_pipeline(sources: list[StreamInfo], cfg: PipelineConfig | None = None) -> Pipeline:
    """The pipeline for a device or recording that provides ``sources``."""
    cfg = cfg or PipelineConfig()
    by_name = {s.name: s for s in sources if not s.is_event}
    return Pipeline(build_stages(cfg, by_name), sources=[s.name for s in sources])
