"""Wearer profiles: what the recogniser learnt about a wearer, kept for their next session.

Every detector calibrates itself while the wearer flies, so a wearer needs no calibration step.
The one thing that is slow to learn again is where the armband sits around the forearm: the
rotation estimate needs several different gestures before it is sure, and a wearer who starts
with one gesture type (say six wrist flexions) is classified under the standard placement until
then. A returning wearer usually puts the Myo on the same way, so their last rotation becomes
the starting point (and the bound's centre) of the new session's estimate
(``recognition.wrist_rotation_prior``). The estimate still follows the evidence from there.

Profiles are small JSON files, one per wearer, in the user's data folder (``wearers/``). A
profile is only updated when the session's estimate rests on at least
:data:`MIN_ROTATION_WINDOWS` active windows. A wearer who made the optional one-session
calibration (:mod:`emgpilot.classifiers.calibration`) has it beside their profile
(``wearers/calibrations/``); their sessions use it too.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from emgpilot.build import PipelineConfig

log = logging.getLogger(__name__)

PROFILE_SOURCES = ("myo",)
"""Sources whose wearer a profile describes: a person wearing a Myo. Replays and the synthetic arm
neither read nor write profiles (a demo must not overwrite its user's profile)."""

MIN_ROTATION_WINDOWS = 100
"""Taught windows (every 4th active window) an estimate needs before it is kept: ~20 s of gestures."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ProfileError(ValueError):
    """A wearer name or profile file that cannot be used (the message names the file)."""


@dataclass
class WearerProfile:
    """What is remembered about one wearer.

    Parameters
    ----------
    name : the wearer's name (letters, digits, ``_ . -``).
    arm : ``right`` or ``left`` once known (the electrode ring is mirrored on a left arm, so a
        rotation learnt on one arm means nothing on the other).
    wrist_rotation : electrode shift the rotation estimate settled on last time (None: unknown).
    sessions : sessions that updated this profile.
    updated : ISO time of the last update.
    """

    name: str
    arm: str | None = None
    wrist_rotation: int | None = None
    sessions: int = 0
    updated: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_profile_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("emgpilot")) / "wearers"


def check_name(name: str) -> str:
    """``name`` if it can name a profile file, else :class:`ProfileError`."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ProfileError(
            f"wearer name {name!r}: use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    return name


def profile_path(name: str, folder: str | Path | None = None) -> Path:
    return Path(folder if folder is not None else default_profile_dir()) / f"{check_name(name)}.json"


def load_profile(name: str, folder: str | Path | None = None) -> WearerProfile:
    """The stored profile of ``name``, or a new empty one if there is none.

    A file that exists but cannot be read raises :class:`ProfileError` (it is left untouched).
    """
    path = profile_path(name, folder)
    if not path.exists():
        return WearerProfile(name=name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ProfileError(f"wearer profile {path} is unreadable ({e}); move it away to start afresh") from e
    if not isinstance(data, dict):
        raise ProfileError(f"wearer profile {path} holds {type(data).__name__}, not an object")
    arm = data.get("arm")
    rotation = data.get("wrist_rotation")
    sessions = data.get("sessions", 0)
    if arm not in (None, "right", "left"):
        raise ProfileError(f"wearer profile {path}: arm must be 'right' or 'left', not {arm!r}")
    if rotation is not None and (isinstance(rotation, bool) or not isinstance(rotation, int) or not 0 <= rotation < 8):
        raise ProfileError(f"wearer profile {path}: wrist_rotation must be an electrode shift 0-7, not {rotation!r}")
    if isinstance(sessions, bool) or not isinstance(sessions, int) or sessions < 0:
        raise ProfileError(f"wearer profile {path}: sessions must be a count, not {sessions!r}")
    return WearerProfile(
        name=name, arm=arm, wrist_rotation=rotation, sessions=sessions, updated=str(data.get("updated", ""))
    )


def save_profile(profile: WearerProfile, folder: str | Path | None = None) -> Path:
    """Write ``profile`` atomically (a crash never leaves half a file); returns its path."""
    from emgpilot.config import write_text_atomic

    return write_text_atomic(profile_path(profile.name, folder), json.dumps(profile.to_dict(), indent=2) + "\n")


def configured_arm(cfg: PipelineConfig) -> str | None:
    arm = cfg.recognition.fusion.arm
    return arm if arm in ("right", "left") else None


def apply_profile(
    cfg: PipelineConfig | None, profile: WearerProfile, folder: str | Path | None = None
) -> PipelineConfig:
    """``cfg`` for this wearer: their arm (when the configuration leaves it to ``auto``), their
    last armband rotation as the rotation estimate's starting point, and their calibration if they
    made one (``emgpilot calibrate``; a broken calibration file raises :class:`ProfileError`)."""
    from emgpilot.build import with_wearer_arm

    cfg = with_wearer_arm(cfg, profile.arm)
    path = calibration_path(profile.name, folder)
    if path.exists():
        from emgpilot.classifiers.calibration import CalibrationError
        from emgpilot.classifiers.recognition import check_calibration

        cfg = with_calibration(cfg, path)
        try:
            check_calibration(cfg.recognition)
        except CalibrationError as e:
            raise ProfileError(f"{e}; calibrate again or delete it") from e
    # A left arm's ring is mirrored before the network: a rotation learnt in one ring order
    # means nothing in the other (a profile without an arm was learnt unmirrored).
    if profile.wrist_rotation is None or (profile.arm == "left") != (configured_arm(cfg) == "left"):
        return cfg
    return with_rotation_prior(cfg, profile.wrist_rotation)


def with_calibration(cfg: PipelineConfig | None, path: str | Path, calibration: Any = None) -> PipelineConfig:
    """``cfg`` using the calibration file at ``path``; given the ``calibration`` itself, its armband
    rotation (if made on the configured arm) also becomes the rotation estimate's start."""
    cfg = cfg or PipelineConfig()
    cfg = replace(cfg, recognition=replace(cfg.recognition, wrist_calibration=str(path)))
    if calibration is None or calibration.rotation is None:
        return cfg
    if calibration.mirrored != (configured_arm(cfg) == "left"):
        return cfg
    return with_rotation_prior(cfg, calibration.rotation)


def calibration_path(name: str, folder: str | Path | None = None) -> Path:
    """Where ``name``'s calibration (:mod:`emgpilot.classifiers.calibration`) is kept."""
    return Path(folder if folder is not None else default_profile_dir()) / "calibrations" / f"{check_name(name)}.json"


def save_calibration(
    name: str, calibration: Any, folder: str | Path | None = None, arm: str | None = None
) -> WearerProfile:
    """Keep ``calibration`` as ``name``'s, and the rotation and arm (``right``/``left`` if known)
    it was made with in their profile (created if needed); returns the updated profile."""
    profile = load_profile(name, folder)
    calibration.save(calibration_path(name, folder))
    if arm not in ("right", "left"):
        # made with the ring mirrored: a left arm; unmirrored: not a left arm (right, or not said)
        arm = "left" if calibration.mirrored else (None if profile.arm == "left" else profile.arm)
    profile = replace(
        profile,
        arm=arm,
        wrist_rotation=profile.wrist_rotation if calibration.rotation is None else int(calibration.rotation),
        updated=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    save_profile(profile, folder)
    return profile


def with_rotation_prior(cfg: PipelineConfig | None, shift: int | None) -> PipelineConfig:
    """``cfg`` with the rotation estimate starting from ``shift`` (None: unchanged), and without the
    rotation-invariant start (``wrist_invariant_windows = 0``): the rotation is known."""
    cfg = cfg or PipelineConfig()
    if shift is None:
        return cfg
    # The rotation is known: no need to classify the first gestures rotation-free.
    return replace(
        cfg, recognition=replace(cfg.recognition, wrist_rotation_prior=int(shift), wrist_invariant_windows=0)
    )


def learnt_rotation(pipeline: Any) -> int | None:
    """The armband rotation a pipeline's activation detector has learnt, if the estimate rests on
    at least :data:`MIN_ROTATION_WINDOWS` windows (None otherwise, or without an estimator)."""
    for stage in getattr(pipeline, "stages", ()):
        if getattr(stage, "name", "") == "detector.activation" and getattr(stage, "rotation_windows", 0):
            if stage.rotation_windows >= MIN_ROTATION_WINDOWS:
                return int(stage.electrode_shift)
    return None


def updated_profile(profile: WearerProfile, pipeline: Any, cfg: PipelineConfig) -> WearerProfile:
    """``profile`` after a session run with ``pipeline`` (built from ``cfg``)."""
    rotation = learnt_rotation(pipeline)
    arm = configured_arm(cfg) or profile.arm
    if rotation is None:
        log.info("wearer %s: too few gestures to update the armband rotation", profile.name)
        return replace(profile, arm=arm)
    return replace(
        profile,
        arm=arm,
        wrist_rotation=rotation,
        sessions=profile.sessions + 1,
        updated=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )


def remember_session(
    profile: WearerProfile, pipeline: Any, cfg: PipelineConfig, folder: str | Path | None = None
) -> WearerProfile:
    """Update ``profile`` with what a session run with ``pipeline`` learnt and save it; returns the
    updated profile (``OSError`` if it cannot be written)."""
    profile = updated_profile(profile, pipeline, cfg)
    log.info("wearer profile saved to %s", save_profile(profile, folder))
    return profile
