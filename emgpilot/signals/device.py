"""What a device is: anything with ``start``/``read``/``stop`` that yields typed messages.

Live drivers, the synthetic arm and the replay of a recording all satisfy :class:`Device`, so
the session runner, the GUI and the tests drive them the same way. A device paces itself like
hardware (``read`` returns when data is due); at ``speed`` ``max`` it returns data at once.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from emgpilot.signals.streams import Message, StreamInfo


class DeviceError(RuntimeError):
    """A device cannot be opened or has failed for good (not a transient loss)."""


@runtime_checkable
class Device(Protocol):
    name: str

    def streams(self) -> list[StreamInfo]:
        """Every stream the device emits, sensor and event streams alike."""
        ...

    def info(self) -> dict[str, Any]:
        """Facts for the recording's metadata (model, firmware, port, seed...)."""
        ...

    def start(self) -> None: ...

    def read(self, timeout: float | None = None) -> list[Message]:
        """Messages that became available; ``[]`` if none arrived within ``timeout`` seconds."""
        ...

    @property
    def finished(self) -> bool:
        """True once a finite source (recording, timed synthetic run) has nothing more."""
        ...

    def stop(self) -> None: ...


def parse_speed(text: str) -> float:
    """``"1"``, ``"10"``, ``"2.5"`` or ``"max"`` (infinite) as a replay/synthetic speed factor."""
    if text == "max":
        return float("inf")
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"speed must be a positive number or 'max', not {text!r}") from None
    if not value > 0:
        raise ValueError(f"speed must be a positive number or 'max', not {text!r}")
    return value
