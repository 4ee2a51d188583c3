"""Assembles the full pipeline (conditioning, detectors, fusion) from one configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from emgpilot.classifiers.recognition import RecognitionConfig, recognition_stages
from emgpilot.config import from_mapping, load_toml
from emgpilot.signals.pipeline import Pipeline, Stage
from emgpilot.signals.preprocess import PreprocessConfig, preprocessing_stages
from emgpilot.signals.streams import StreamInfo


@dataclass
class PipelineConfig:
    """Everything that decides what the pipeline computes. Stored in every recording."""

    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    recognition: RecognitionConfig = field(default_factory=RecognitionConfig)


def load_pipeline_config(path: str | Path | None = None) -> PipelineConfig:
    return PipelineConfig() if path is None else load_toml(PipelineConfig, path)


def pipeline_config_from_dict(data: dict) -> PipelineConfig:
    return from_mapping(PipelineConfig, data)


def build_stages(cfg: PipelineConfig, sources: dict[str, StreamInfo]) -> list[Stage]:
    stages = preprocessing_stages(cfg.preprocess, sources)
    available = {**sources, **{out.name: out for stage in stages for out in stage.outputs}}
    return stages + recognition_stages(cfg.recognition, available)


def build_pipeline(sources: list[StreamInfo], cfg: PipelineConfig | None = None) -> Pipeline:
    """The pipeline for a device or recording that provides ``sources``."""
    cfg = cfg or PipelineConfig()
    by_name = {s.name: s for s in sources if not s.is_event}
    return Pipeline(build_stages(cfg, by_name), sources=[s.name for s in sources])
