"""Sample recordings shipped with emgpilot (see README.md in this folder)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SAMPLE_NAME = "myo_readings_right_10000_s1.mcap"
"""Real Myo EMG with cue labels, converted from the MIT-licensed myo-readings dataset."""


def sample_path() -> Path:
    """Path of the shipped sample recording (``emgpilot replay --sample``)."""
    ref = resources.files(__name__) / SAMPLE_NAME
    path = Path(str(ref))
    if not path.is_file():
        raise FileNotFoundError(f"sample recording {SAMPLE_NAME} is missing from the emgpilot installation")
    return path
