"""Assembles the full pipeline (conditioning, detectors, fusion) from one configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from emgpilot.config import from_mapping, load_toml
from emgpilot.signals.pipeline import Pipeline, Stage
from emgpilot.signals.preprocess import PreprocessConfig, preprocessing_stages
from emgpilot.signals.streams import StreamInfo


@dataclass
class PipelineConfig:
    """Everything that decides what the pipeline computes. Stored in every recording."""

    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)


def load_pipeline_config(path: str | Path | None = None) -> PipelineConfig:
    return PipelineConfig() if path is None else load_toml(PipelineConfig, path)


def pipeline_config_from_dict(data: dict) -> PipelineConfig:
    return from_mapping(PipelineConfig, data)


def build_stages(cfg: PipelineConfig, sources: dict[str, StreamInfo]) -> list[Stage]:
    return preprocessing_stages(cfg.preprocess, sources)


def build_pipeline(sources: list[StreamInfo], cfg: PipelineConfig | None = None) -> Pipeline:
    """The pipeline for a device or recording that provides ``sources``."""
    cfg = cfg or PipelineConfig()
    by_name = {s.name: s for s in sources if not s.is_event}
    return Pipeline(build_stages(cfg, by_name), sources=[s.name for s in sources])
