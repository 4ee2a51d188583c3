"""The synthetic arm's body: who wears it (:class:`Wearer`), what it does (:class:`Schedule`), and
the physiology tables that turn a gesture label into muscle activation and forearm motion.

Everything here is data plus pure functions of data time, so the device in
:mod:`emgpilot.signals.synthetic` can recompute any block of samples and get the same numbers.

Conventions (right arm; a left arm mirrors them, see :class:`Wearer`):

* Forearm frame: x along the forearm towards the hand, z out of the back (dorsal side) of the
  forearm, y = z x x. Palm down with the forearm horizontal, the frame equals the world frame
  (X forward, Y left, Z up) and the accelerometer reads +1 g on z.
* Forearm roll about +x: 0 = palm down, +90 deg = thumb up on a right arm (-90 deg on a left
  arm). Seen from the elbow looking at the hand, a positive roll is clockwise, so ``rotate_cw``
  gives a positive gyroscope x rate on either arm (supination on a right arm).
* Armband rotation: the Myo (and its IMU, which sits in one pod) is turned around the forearm
  by ``band_rotation_deg``: it shifts which electrode sees which muscle (fractionally) and
  rotates the IMU's y/z axes about x by the same angle.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from emgpilot.signals.vocabulary import GESTURES, PRIMITIVE_OF, REST, cue_target

# --------------------------------------------------------------------------- muscles

MUSCLES: tuple[str, ...] = (
    "extensor",
    "flexor",
    "radial",
    "ulnar",
    "pronator",
    "supinator",
    "wrist_flexor",
    "biceps",
    "triceps",
)
"""Muscle groups the arm simulates: seven forearm groups under the Myo, two upper-arm muscles."""
N_FOREARM_MUSCLES = 7
_M = {m: i for i, m in enumerate(MUSCLES)}

# Angle of each forearm group around the forearm (deg, 0 = dorsal midline where the Myo's IMU pod
# sits for a wearer with band rotation 0; positive towards the radial/thumb side on a right arm)
# and how focal its surface field is (von Mises concentration). Groups: "extensor" = the finger
# extensors on the back; "flexor" = the finger flexors (superficial and deep), the broad mass on
# the palm side towards the ulna; "radial" = the radial wrist extensors and brachioradialis;
# "ulnar" = extensor and flexor carpi ulnaris on the ulnar edge; pronator teres; the deep
# supinator; "wrist_flexor" = flexor carpi radialis and palmaris longus (palm side, radial).
# Angles, widths and the forearm part of the wrist patterns below were fitted (least squares,
# each pattern's prime mover held fixed; afterwards every pattern rescaled to its previous
# channel-mean level, so the level table holds) to real Myo recordings: the median over subjects
# of each gesture's channel RMS, each subject turned so that its wrist-extension peak sits at
# electrode 0 (cote_allard_myo pre_* and four myo_readings development subjects;
# ``python -m emgpilot.signals.synthetic_levels --patterns``).
MUSCLE_ANGLE_DEG = np.array([-22.0, 200.0, 28.0, -66.0, 135.0, 40.0, 125.0])
MUSCLE_KAPPA = np.array([6.0, 3.0, 6.0, 2.0, 1.4, 1.0, 6.0])
CROSSTALK_FLOOR = 0.05
"""Fraction of a muscle's field every electrode picks up through volume conduction."""
ELECTRODE_PITCH_DEG = -45.0
"""Angle from one Myo electrode to the next in the wearer's physical frame (right-hand rotation
about +x). Negative: on a right arm the channel numbers grow from the back of the forearm
towards the radial (thumb) side, as real recordings show (radial deviation peaks one electrode
after the wrist-extension peak, ulnar deviation one before)."""
ELECTRODE_ZERO_DEG = 90.0
"""Physical angle of electrode 0 from the IMU pod's position (band rotation 0): two electrodes, so
that the median wearer's wrist-extension peak sits at electrode 1.4, as in real recordings with
the standard placement (cote_allard_myo pre_*: circular mean 1.15, range 0.68-1.84 over 19
people). The wrist network's "standard placement" is then a synthetic band rotation of 0. A whole
number of electrodes keeps the sampled patterns (fitted on this grid) exactly as they were."""

# Myo counts RMS at the best electrode for full activation (1.0) of each forearm group, and
# MyoWare ADC counts RMS for the upper-arm muscles, for the median wearer. Chosen so that the
# median wearer's 200 ms RMS matches the median real subject (docs/readme/synthetic.md).
MUSCLE_PEAK_COUNTS = np.array([66.0, 34.0, 25.0, 25.0, 16.0, 14.0, 30.0, 110.0, 90.0])

# Fraction of each muscle group's peak activation per motion (before vigour and wearer strength).
# A real power grip is the finger flexors with the radial and ulnar wrist extensors co-contracting
# to hold the wrist straight. The fist's forearm part was refitted by hand against each group's
# measured electrode field on the median wearer, more radial extensors and flexor carpi radialis:
# the median wearer's aligned fist pattern now correlates 0.79 with the real median (was 0.53).
# Over 20 random wearers the per-wearer correlation (synthetic_levels --patterns) is 0.22 (was
# 0.32; real people 0.47-0.59): wearer variation dominates and real fists vary a lot. Wrist
# flexion is flexor carpi radialis and ulnaris with the finger flexors; wrist extension
# recruits the radial and ulnar wrist extensors with the finger extensors; radial deviation is
# the radial extensors with flexor carpi radialis. Stiffen co-contracts biceps and triceps;
# elbow flexion is the biceps alone (the stiffen detector must not fire on it).
_PATTERNS: dict[str, dict[str, float]] = {
    REST: {},
    "fist": {"flexor": 0.60, "radial": 0.80, "ulnar": 0.65, "wrist_flexor": 0.60, "biceps": 0.08, "triceps": 0.05},
    "wrist_flexion": {"wrist_flexor": 0.65, "flexor": 0.55, "ulnar": 0.40, "radial": 0.11, "extensor": 0.09},
    "wrist_extension": {"extensor": 0.95, "radial": 0.63, "ulnar": 0.78, "flexor": 0.08, "wrist_flexor": 0.05},
    "stiffen": {"biceps": 0.60, "triceps": 0.60, "flexor": 0.17, "extensor": 0.17},
    "elbow_flexion": {"biceps": 0.50, "triceps": 0.05, "radial": 0.53},
    "supinate": {"supinator": 0.62, "biceps": 0.20, "extensor": 0.10},
    "pronate": {"pronator": 0.61, "flexor": 0.12},
    "hand_open": {"extensor": 0.80, "radial": 0.22, "ulnar": 0.22},
    "radial_deviation": {"radial": 0.55, "wrist_flexor": 0.50, "extensor": 0.45, "flexor": 0.14, "ulnar": 0.04},
    "ulnar_deviation": {"ulnar": 0.95, "flexor": 0.27, "extensor": 0.19, "radial": 0.09},
    "chuck_grip": {"flexor": 0.61, "extensor": 0.27, "radial": 0.27},
    "pinch_grip": {"flexor": 0.48, "extensor": 0.20, "radial": 0.34},
    "sign_letter": {"flexor": 0.42, "extensor": 0.42, "radial": 0.14, "ulnar": 0.14},
}

PATTERN_BRIGHTNESS: dict[str, float] = {"fist": 0.3, "radial_deviation": 0.2, "chuck_grip": 0.2, "pinch_grip": 0.2}
"""Share of a brighter (more high-frequency) Myo carrier in a pattern's EMG. Real power grips and
radial deviation have higher zero-crossing rates and waveform length per mean absolute value
on their active channels than wrist flexion or extension (cote_allard_myo pre_* and the
myo_readings development subjects: ZC 0.61 vs 0.57-0.59 per sample, WL/MAV 1.64-1.65 vs
1.58-1.62); patterns not listed use the ordinary carrier."""


def pattern_vector(name: str) -> np.ndarray:
    """Activation fractions of :data:`MUSCLES` for a muscle pattern name."""
    v = np.zeros(len(MUSCLES))
    for m, a in _PATTERNS[name].items():
        v[_M[m]] = a
    return v


OTHER_MOTIONS: tuple[str, ...] = ("hand_open", "radial_deviation", "ulnar_deviation", "elbow_flexion", "free_movement")
"""Non-vocabulary motions a random schedule mixes in (their cue target is None)."""

SUPPORTED_LABELS: tuple[str, ...] = (
    REST,
    *GESTURES,
    "wrist_flexion",
    "wrist_extension",
    "pronation",
    "supination",
    "chuck_grip",
    "pinch_grip",
    "sign_letter",
    *OTHER_MOTIONS,
)

TURN_ALLOWANCE_S = 2.5
"""Extra rest a random schedule leaves before a wave that needs the other hand orientation."""

# Default action durations (s) when perform() is called without one: quick flight gestures.
DEFAULT_PERFORM_S: dict[str, float] = {"stiffen": 1.0, "elbow_flexion": 1.2, "free_movement": 1.5}
DEFAULT_PERFORM_OTHER_S = 0.6


def check_label(label: str) -> str:
    """Validate a schedule label (vocabulary cue label the arm knows how to perform)."""
    if label not in SUPPORTED_LABELS:
        try:
            cue_target(label)
        except ValueError:
            raise ValueError(f"unknown synthetic arm label {label!r}; known: {', '.join(SUPPORTED_LABELS)}") from None
        raise ValueError(f"the synthetic arm cannot perform {label!r}; known: {', '.join(SUPPORTED_LABELS)}")
    return label


# --------------------------------------------------------------------------- wearer


@dataclass(frozen=True)
class Wearer:
    """One simulated person wearing the sensors. ``Wearer()`` is the median wearer.

    Attributes
    ----------
    arm : ``"right"`` or ``"left"`` (handedness of the arm wearing the sensors).
    band_rotation_deg : Myo rotation around the forearm; 45 deg is one electrode pitch.
    channel_gains : per-electrode contact gain.
    noise_floor : Myo electrode/amplifier noise, counts RMS per channel at rest.
    noise_channel : per-channel multiplier of ``noise_floor`` (skin impedance differs).
    rest_spike_rate_hz, rest_spike_share : sparse spikes in the Myo's noise floor (per channel)
        and their share of its power: real rest EMG is heavy-tailed, not Gaussian.
    emg_modulation_sd : log-sd of the fast amplitude fluctuation of muscle activity (real
        surface EMG is super-Gaussian).
    channel_coupling, floor_coupling, common_coupling : how much each Myo electrode's muscle
        signal (noise floor) mixes with its neighbours' and with a component common to all
        electrodes (real neighbouring channels correlate).
    tonic : resting muscle tone as a fraction of peak activation (adds rest EMG).
    hum_hz : mains frequency (50 or 60, slightly off nominal); 50 Hz aliases onto itself and
        60 Hz stays at 60 Hz when sampled at 200 Hz.
    hum_forearm, hum_upper : powerline hum amplitude (counts) on the Myo / MyoWare channels.
    strength : overall contraction strength (1 = median real subject).
    muscle_strength : per :data:`MUSCLES` multiplier (some people have a weak fist...).
    upper_gains : biceps/triceps sensor placement gain.
    upper_offset : MyoWare ADC offsets (counts, 10-bit ADC centred near 512).
    upper_noise : MyoWare noise floor, counts RMS.
    artefact_per_min : motion artefacts (cable/electrode movement transients) per minute.
    micro_move_per_min : small involuntary movements at rest (EMG blip and a small IMU motion).
    fatigue_gain : EMG amplitude rise at full fatigue; fatigue_tau_s : time constant of fatigue.
    fatigue_slowing : how far the EMG spectrum moves to low frequencies at full fatigue (0..1).
    drift_depth, drift_period_s : slow electrode gain drift (sweat, impedance) over minutes.
    vigour_sd : log-sd of the contraction strength of one repetition.
    duration_sd : log-sd of how long the wearer holds a gesture versus the schedule.
    rotate_peak_dps : typical peak gyro rate of a forearm rotate gesture.
    turn_peak_dps : typical peak gyro rate of a leisurely palm-down/thumb-up posture change.
    gyro_bias_dps, gyro_noise_dps, acc_noise_g : IMU imperfections.
    elevation_deg : resting forearm elevation above horizontal.
    acc_scale : accelerometer scale error (real Myo recordings read gravity as ~0.96 g).
    muscle_angle_offset_deg : per forearm group, how far this person's muscle sits from the
        table position (anatomy and forearm girth differ).
    field_focus : multiplies every forearm group's field concentration (thin subcutaneous tissue
        gives focal patterns; real subjects' patterns range from broad to focal).
    """

    arm: str = "right"
    band_rotation_deg: float = 0.0
    channel_gains: tuple[float, ...] = (1.0,) * 8
    noise_floor: float = 2.5
    noise_channel: tuple[float, ...] = (1.0,) * 8
    rest_spike_rate_hz: float = 0.8
    rest_spike_share: float = 0.35
    emg_modulation_sd: float = 0.45
    channel_coupling: float = 0.25
    floor_coupling: float = 0.12
    common_coupling: float = 0.25
    tonic: float = 0.01
    hum_hz: float = 50.0
    hum_forearm: float = 0.5
    hum_upper: float = 3.0
    strength: float = 1.0
    muscle_strength: tuple[float, ...] = (1.0,) * len(MUSCLES)
    upper_gains: tuple[float, float] = (1.0, 1.0)
    upper_offset: tuple[float, float] = (512.0, 512.0)
    upper_noise: float = 3.0
    artefact_per_min: float = 1.0
    micro_move_per_min: float = 4.0
    fatigue_gain: float = 0.15
    fatigue_tau_s: float = 1200.0
    fatigue_slowing: float = 0.4
    drift_depth: float = 0.08
    drift_period_s: float = 420.0
    vigour_sd: float = 0.15
    duration_sd: float = 0.15
    rotate_peak_dps: float = 220.0
    turn_peak_dps: float = 70.0
    gyro_bias_dps: tuple[float, float, float] = (0.5, -0.3, 0.2)
    gyro_noise_dps: float = 0.6
    acc_noise_g: float = 0.006
    elevation_deg: float = 5.0
    acc_scale: float = 1.0
    muscle_angle_offset_deg: tuple[float, ...] = (0.0,) * N_FOREARM_MUSCLES
    field_focus: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.arm not in ("right", "left"):
            raise ValueError(f"Wearer.arm must be 'right' or 'left', not {self.arm!r}")
        if len(self.channel_gains) != 8 or len(self.noise_channel) != 8:
            raise ValueError("Wearer.channel_gains and noise_channel need 8 values (Myo electrodes)")
        if len(self.muscle_strength) != len(MUSCLES):
            raise ValueError(f"Wearer.muscle_strength needs {len(MUSCLES)} values ({', '.join(MUSCLES)})")
        if len(self.muscle_angle_offset_deg) != N_FOREARM_MUSCLES:
            raise ValueError(f"Wearer.muscle_angle_offset_deg needs {N_FOREARM_MUSCLES} values (forearm groups)")

    @classmethod
    def random(cls, seed: int, max_rotation_deg: float = 35.0, left_arm_p: float = 0.1) -> Wearer:
        """A plausible random wearer; seeds 0..19 span weak to strong users.

        ``max_rotation_deg`` bounds the armband rotation: wearers are asked to put the logo pod
        on the back of the forearm, and the IMU's gravity reading must still tell palm down from
        thumb up (those differ by 90 deg of forearm roll).
        """
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x3EA2E5]))

        def logn(sd: Any, n: int | None = None) -> Any:
            return np.exp(rng.normal(0.0, sd, n))

        wearer = cls(
            arm="left" if rng.random() < left_arm_p else "right",
            band_rotation_deg=float(rng.uniform(-max_rotation_deg, max_rotation_deg)),
            channel_gains=tuple(float(g) for g in logn(0.15, 8)),
            noise_floor=float(np.clip(2.5 * logn(0.3), 1.2, 6.0)),
            noise_channel=tuple(float(g) for g in np.clip(logn(0.35, 8), 0.6, 3.0)),
            tonic=float(rng.uniform(0.0, 0.03)),
            rest_spike_rate_hz=float(rng.uniform(0.3, 3.0)),
            rest_spike_share=float(rng.uniform(0.0, 0.7)),
            emg_modulation_sd=float(rng.uniform(0.35, 0.6)),
            hum_hz=float((50.0 if rng.random() < 0.6 else 60.0) + rng.normal(0.0, 0.03)),
            hum_forearm=float(rng.uniform(0.0, 1.5)),
            hum_upper=float(rng.uniform(0.5, 8.0)),
            strength=float(np.clip(logn(0.35), 0.4, 2.3)),
            # Real subjects' fist and flexion levels vary more than their extension levels.
            # The wrist-flexor group's value is drawn last (below) and put in its place then.
            muscle_strength=tuple(
                float(g)
                for g in np.insert(
                    np.clip(logn(np.array([0.2, 0.35, 0.25, 0.25, 0.25, 0.25, 0.3, 0.3])), 0.4, 2.2), 6, 1.0
                )
            ),
            upper_gains=(float(logn(0.35)), float(logn(0.35))),
            upper_offset=(float(rng.normal(512.0, 15.0)), float(rng.normal(512.0, 15.0))),
            upper_noise=float(rng.uniform(1.5, 6.0)),
            artefact_per_min=float(rng.uniform(0.2, 3.0)),
            micro_move_per_min=float(rng.uniform(1.0, 8.0)),
            fatigue_gain=float(rng.uniform(0.0, 0.3)),
            fatigue_tau_s=float(rng.uniform(600.0, 2400.0)),
            fatigue_slowing=float(rng.uniform(0.1, 0.6)),
            drift_depth=float(rng.uniform(0.02, 0.15)),
            drift_period_s=float(rng.uniform(180.0, 900.0)),
            vigour_sd=float(rng.uniform(0.08, 0.25)),
            duration_sd=float(rng.uniform(0.05, 0.25)),
            rotate_peak_dps=float(rng.uniform(170.0, 280.0)),
            turn_peak_dps=float(rng.uniform(50.0, 90.0)),
            gyro_bias_dps=tuple(float(b) for b in rng.normal(0.0, 1.0, 3)),  # type: ignore[arg-type]
            gyro_noise_dps=float(rng.uniform(0.3, 1.2)),
            acc_noise_g=float(rng.uniform(0.003, 0.01)),
            elevation_deg=float(rng.uniform(-10.0, 20.0)),
            acc_scale=float(rng.uniform(0.95, 1.02)),
            channel_coupling=float(rng.uniform(0.12, 0.35)),
            floor_coupling=float(rng.uniform(0.03, 0.25)),
            common_coupling=float(rng.uniform(0.1, 0.35)),
            # Drawn last so that adding them left every other property of seeded wearers unchanged.
            muscle_angle_offset_deg=tuple(float(a) for a in np.clip(rng.normal(0.0, 10.0, N_FOREARM_MUSCLES), -20, 20)),
            field_focus=float(np.clip(logn(0.3), 0.6, 1.8)),
            seed=int(seed),
        )
        strength = list(wearer.muscle_strength)
        strength[_M["wrist_flexor"]] = float(np.clip(logn(0.35), 0.4, 2.2))
        return replace(wearer, muscle_strength=tuple(strength))

    @property
    def sign(self) -> float:
        """+1 for a right arm, -1 for a left arm (mirrors angles around the forearm)."""
        return 1.0 if self.arm == "right" else -1.0

    def thumb_up_roll_deg(self) -> float:
        return 90.0 * self.sign

    def spatial_gain(self) -> np.ndarray:
        """``[6, 8]`` gain of each forearm muscle group at each Myo electrode (peak 1)."""
        electrode = np.deg2rad(self.band_rotation_deg + ELECTRODE_ZERO_DEG + ELECTRODE_PITCH_DEG * np.arange(8))
        # Physical angles grow with a right-hand rotation about +x; the radial side of a right arm
        # lies at negative angles there, so the table (positive = radial) is negated, and mirrored
        # again for a left arm.
        muscle = np.deg2rad(-self.sign * (MUSCLE_ANGLE_DEG + np.asarray(self.muscle_angle_offset_deg)))
        kappa = MUSCLE_KAPPA * self.field_focus
        field_ = np.exp(kappa[:, None] * (np.cos(electrode[None, :] - muscle[:, None]) - 1.0))
        return CROSSTALK_FLOOR + (1.0 - CROSSTALK_FLOOR) * field_

    def peak_counts(self) -> np.ndarray:
        """``[len(MUSCLES)]`` counts RMS at full activation, including this wearer's strength."""
        upper = np.array([1.0] * N_FOREARM_MUSCLES + list(self.upper_gains))
        return MUSCLE_PEAK_COUNTS * self.strength * np.asarray(self.muscle_strength) * upper

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- schedule


@dataclass(frozen=True)
class ScheduleItem:
    """The wearer performs ``label`` from ``t_start`` for ``duration`` seconds (data time)."""

    t_start: float
    duration: float
    label: str
    jitter: bool = False
    """Let the wearer's own duration variability change the hold time (random schedules)."""

    @property
    def t_end(self) -> float:
        return self.t_start + self.duration


@dataclass
class Schedule:
    """What the arm does and when: scripted items, a random session, or idle (rest only).

    Use the constructors :meth:`random`, :meth:`scripted` and :meth:`idle`. ``end_s`` is when
    the session ends (None: never, the device runs until stopped or its ``duration_s``).
    """

    kind: str
    end_s: float | None
    params: dict[str, Any] = field(default_factory=dict)
    _items: list[ScheduleItem] = field(default_factory=list)
    _generator: Iterator[ScheduleItem] | None = None
    _exhausted: bool = True

    @classmethod
    def scripted(cls, items: Sequence[tuple[float, float, str]], end_s: float | None = None) -> Schedule:
        """Fixed items ``(t_start, duration, label)``; ends 1 s after the last item unless ``end_s``."""
        parsed = []
        for i, item in enumerate(items):
            try:
                t0, dur, label = item
            except (TypeError, ValueError):
                raise ValueError(f"schedule item {i} must be (t_start, duration, label), not {item!r}") from None
            if not (float(t0) >= 0 and float(dur) > 0):
                raise ValueError(f"schedule item {i} {item!r}: t_start must be >= 0 and duration > 0")
            parsed.append(ScheduleItem(float(t0), float(dur), check_label(str(label))))
        parsed.sort(key=lambda it: it.t_start)
        for a, b in itertools.pairwise(parsed):
            if b.t_start < a.t_end - 1e-9:
                raise ValueError(
                    f"schedule items overlap: {a.label} at {a.t_start:g} s and {b.label} at {b.t_start:g} s"
                )
        if end_s is None:
            end_s = (parsed[-1].t_end if parsed else 0.0) + 1.0
        described = [[p.t_start, p.duration, p.label] for p in parsed]
        return cls(kind="scripted", end_s=float(end_s), params={"items": described}, _items=parsed)

    @classmethod
    def idle(cls) -> Schedule:
        """Rest forever (the GUI's demo mode adds gestures with :meth:`SyntheticArm.perform`)."""
        return cls(kind="idle", end_s=None)

    @classmethod
    def random(
        cls,
        seed: int,
        duration_s: float | None = None,
        gestures: Sequence[str] = GESTURES,
        rest_s: tuple[float, float] = (1.5, 4.0),
        gesture_s: tuple[float, float] = (0.4, 1.2),
        other_motion_rate: float = 0.1,
        other_motions: Sequence[str] = OTHER_MOTIONS,
    ) -> Schedule:
        """Random gestures separated by rest; ``duration_s`` None makes an endless session.

        ``other_motion_rate`` is the fraction of actions that are non-vocabulary motions.
        """
        for g in (*gestures, *other_motions):
            check_label(g)
        if not gestures:
            raise ValueError("Schedule.random needs at least one gesture")
        if not (0 < rest_s[0] <= rest_s[1] and 0 < gesture_s[0] <= gesture_s[1]):
            raise ValueError(f"rest_s {rest_s} and gesture_s {gesture_s} must be increasing positive ranges")
        if not 0.0 <= other_motion_rate <= 1.0:
            raise ValueError(f"other_motion_rate must lie in [0, 1], not {other_motion_rate}")
        params = {
            "seed": int(seed),
            "gestures": list(gestures),
            "rest_s": list(rest_s),
            "gesture_s": list(gesture_s),
            "other_motion_rate": other_motion_rate,
            "other_motions": list(other_motions),
        }

        def generate() -> Iterator[ScheduleItem]:
            rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5C4ED]))
            t = float(rng.uniform(*rest_s))
            orientation = "palm_down"
            while True:
                if other_motions and rng.random() < other_motion_rate:
                    label = str(other_motions[rng.integers(len(other_motions))])
                else:
                    label = str(gestures[rng.integers(len(gestures))])
                wanted = wave_orientation(label)
                if wanted is not None and wanted != orientation:
                    # The wearer first turns the hand (palm down <-> thumb up): allow time for it.
                    t += TURN_ALLOWANCE_S
                    orientation = wanted
                dur = float(rng.uniform(*gesture_s))
                yield ScheduleItem(round(t, 6), round(dur, 6), label, jitter=True)
                t += dur + float(rng.uniform(*rest_s))

        end = None if duration_s is None else float(duration_s)
        return cls(kind="random", end_s=end, params=params, _generator=generate(), _exhausted=False)

    def items_until(self, t: float) -> list[ScheduleItem]:
        """All items starting before ``t`` (a random schedule grows lazily)."""
        items = self.extend_until(t)
        return items[: bisect.bisect_left([it.t_start for it in items], t)]

    def extend_until(self, t: float) -> list[ScheduleItem]:
        """Generate items at least up to start time ``t``; returns the (shared, growing) item list."""
        while not self._exhausted and (not self._items or self._items[-1].t_start < t):
            assert self._generator is not None
            item = next(self._generator)
            if self.end_s is not None and item.t_start >= self.end_s:
                self._exhausted = True
                break
            self._items.append(item)
        return self._items

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "end_s": self.end_s, **self.params}


# --------------------------------------------------------------------------- motion profiles


def smoothstep(u: np.ndarray) -> np.ndarray:
    """0 -> 1 with zero slope at both ends (C1), clipped outside [0, 1]."""
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


def cycloid(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-jerk-like 0 -> 1 position and its derivative d/du (peak 2 at u = 0.5)."""
    inside = (u > 0.0) & (u < 1.0)
    uc = np.clip(u, 0.0, 1.0)
    pos = uc - np.sin(2.0 * math.pi * uc) / (2.0 * math.pi)
    vel = np.where(inside, 1.0 - np.cos(2.0 * math.pi * uc), 0.0)
    return pos, vel


def bump(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """0 -> 1 -> 0 raised cosine over u in [0, 1] and its derivative d/du."""
    inside = (u > 0.0) & (u < 1.0)
    uc = np.clip(u, 0.0, 1.0)
    pos = np.where(inside, 0.5 - 0.5 * np.cos(2.0 * math.pi * uc), 0.0)
    vel = np.where(inside, math.pi * np.sin(2.0 * math.pi * uc), 0.0)
    return pos, vel


def motion_kind(label: str) -> str:
    """How a label moves the forearm: ``wave``, ``rotate``, ``hold_roll``, ``elbow``, ``free`` or ``still``."""
    if label.startswith("wave_") or label in ("wrist_flexion", "wrist_extension"):
        return "wave"
    if label.startswith("rotate_"):
        return "rotate"
    if label in ("pronation", "supination"):
        return "hold_roll"
    if label == "elbow_flexion":
        return "elbow"
    if label == "free_movement":
        return "free"
    return "still"


def wave_primitive(label: str, arm: str) -> str:
    """Wrist primitive behind a wave label (a left arm mirrors left/right)."""
    if label in ("wrist_flexion", "wrist_extension"):
        return label
    primitive = PRIMITIVE_OF[label]
    if arm == "left" and label in ("wave_left", "wave_right"):
        primitive = "wrist_extension" if primitive == "wrist_flexion" else "wrist_flexion"
    return primitive


def wave_orientation(label: str) -> str | None:
    """Hand orientation a label asks for (waves up/down palm down, left/right thumb up)."""
    if label in ("wave_up", "wave_down"):
        return "palm_down"
    if label in ("wave_left", "wave_right"):
        return "thumb_up"
    return None


def muscle_pattern(label: str, arm: str) -> str:
    """Name of the :data:`_PATTERNS` entry a label activates."""
    kind = motion_kind(label)
    if kind == "wave":
        return wave_primitive(label, arm)
    if label in ("rotate_cw", "rotate_ccw", "pronation", "supination"):
        if label in ("pronation", "supination"):
            return "pronate" if label == "pronation" else "supinate"
        # Clockwise seen from the elbow is supination on a right arm, pronation on a left arm.
        cw = label == "rotate_cw"
        return "supinate" if cw == (arm == "right") else "pronate"
    if label in ("stiffen", "fist", "elbow_flexion", REST) or label in _PATTERNS:
        return label
    return REST
