"""GUI settings persisted between runs, as a small TOML file in the user's config folder.

Unknown or mistyped keys in the file are reported (logged) and replaced by defaults: a broken
settings file must never stop the window from opening.
"""

from __future__ import annotations

import dataclasses
import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


def default_settings_path() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir("emgpilot")) / "gui.toml"


@dataclass
class GuiSettings:
    """What the window remembers."""

    source: str = "synthetic"
    drone: str = "sim"
    ip: str = "192.168.42.1"
    mapping: str = ""
    recording: str = ""
    myo_port: str = ""
    upper_arm_port: str = ""
    wearer: str = ""
    record_dir: str = ""
    seed: int = 0
    window_s: float = 10.0
    cue_gestures: list[str] = field(default_factory=list)
    cue_repetitions: int = 3
    cue_s: float = 3.0
    rest_s: float = 3.0
    cue_random: bool = True

    @classmethod
    def load(cls, path: Path) -> GuiSettings:
        if not path.exists():
            return cls()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
            log.warning("settings %s unreadable (%s); using defaults", path, e)
            return cls()
        out = cls()
        types = {f.name: type(getattr(out, f.name)) for f in dataclasses.fields(cls)}
        for key, value in data.items():
            want = types.get(key)
            if want is None:
                log.warning("settings %s: unknown key %r ignored", path, key)
                continue
            if want is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if not isinstance(value, want) or (want is int and isinstance(value, bool)):
                log.warning("settings %s: %s should be %s, not %r; default kept", path, key, want.__name__, value)
                continue
            setattr(out, key, value)
        return out

    def save(self, path: Path) -> None:
        lines = []
        for f in dataclasses.fields(self):
            lines.append(f"{f.name} = {_toml_value(getattr(self, f.name))}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        except OSError as e:
            log.warning("cannot save settings to %s: %s", path, e)


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'
