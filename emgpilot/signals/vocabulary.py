"""The gesture vocabulary shared by the synthetic arm, the recognisers, evaluation and the drone.

Gestures (what the wearer means) and primitives (what the muscles do):

========== ================== ===========================
gesture    primitive          default drone command
========== ================== ===========================
stiffen    stiffen            stop / hover
fist       fist               forward
wave_up    wrist_extension    up     (palm down)
wave_down  wrist_flexion      down   (palm down)
wave_left  wrist_flexion      left   (thumb up, right arm)
wave_right wrist_extension    right  (thumb up, right arm)
rotate_ccw rotate_ccw         turn left
rotate_cw  rotate_cw          turn right
========== ================== ===========================
"""

from __future__ import annotations

REST = "rest"

GESTURES: tuple[str, ...] = (
    "stiffen",
    "fist",
    "wave_up",
    "wave_down",
    "wave_left",
    "wave_right",
    "rotate_cw",
    "rotate_ccw",
)

PRIMITIVES: tuple[str, ...] = (
    "stiffen",
    "fist",
    "wrist_flexion",
    "wrist_extension",
    "rotate_cw",
    "rotate_ccw",
)

# Which hand orientation turns a wrist primitive into which wave, for a right arm.
# A left arm mirrors left/right (see :func:`wave_gesture`).
WAVE_BY_ORIENTATION: dict[tuple[str, str], str] = {
    ("palm_down", "wrist_flexion"): "wave_down",
    ("palm_down", "wrist_extension"): "wave_up",
    ("thumb_up", "wrist_flexion"): "wave_left",
    ("thumb_up", "wrist_extension"): "wave_right",
}

PRIMITIVE_OF: dict[str, str] = {
    "stiffen": "stiffen",
    "fist": "fist",
    "wave_up": "wrist_extension",
    "wave_down": "wrist_flexion",
    "wave_left": "wrist_flexion",
    "wave_right": "wrist_extension",
    "rotate_cw": "rotate_cw",
    "rotate_ccw": "rotate_ccw",
}

# Cue labels of public datasets and of the synthetic arm, mapped onto our vocabulary.
# A label mapping to None is a motion outside the vocabulary ("other motion").
CUE_TO_TARGET: dict[str, str | None] = {
    REST: REST,
    **{g: g for g in GESTURES},
    "wrist_flexion": "wrist_flexion",
    "wrist_extension": "wrist_extension",
    "supination": None,
    "pronation": None,
    "radial_deviation": None,
    "ulnar_deviation": None,
    "hand_open": None,
    "chuck_grip": None,
    "pinch_grip": None,
    "elbow_flexion": None,
    "free_movement": None,
    "sign_letter": None,
}
"""Cue label -> gesture, primitive, ``rest``, or None for motions outside the vocabulary.

Forearm rotations in the public datasets (pronation/supination) are held postures rather than
the quick rotate gesture and carry no gyroscope, so they count as other motion.
"""


def wave_gesture(primitive: str, orientation: str, arm: str = "right") -> str:
    """Wave gesture for a wrist primitive given the hand orientation.

    Parameters
    ----------
    primitive : ``wrist_flexion`` or ``wrist_extension``.
    orientation : ``palm_down`` or ``thumb_up``.
    arm : ``right`` or ``left``; a left arm mirrors left and right.
    """
    gesture = WAVE_BY_ORIENTATION[(orientation, primitive)]
    if arm == "left" and orientation == "thumb_up":
        gesture = "wave_right" if gesture == "wave_left" else "wave_left"
    return gesture


def cue_target(label: str) -> str | None:
    """What a cue label expects: a gesture, a primitive, ``rest``, or None (other motion)."""
    if label.startswith("other:"):
        return None
    if label not in CUE_TO_TARGET:
        raise ValueError(f"unknown cue label {label!r}")
    return CUE_TO_TARGET[label]


DECISION_CLASSES: tuple[str, ...] = (REST, *PRIMITIVES)
"""Classes of the per-window ``decision`` stream; index -1 means the window was rejected."""
