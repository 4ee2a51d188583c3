"""Ctrl-C and SIGTERM close the window the way its close button does.

Qt's event loop runs in C++: Python only runs its signal handlers when control comes back to the
interpreter, and its default SIGINT handler then raises KeyboardInterrupt in whatever slot happens
to run (a traceback, the window keeps going); SIGTERM kills the process without finishing the
recording. :class:`CloseOnSignals` replaces both handlers with one that posts ``window.close`` to
the event loop (the session then closes in the background and any recording is finished), and a
no-op timer hands control back to the interpreter often enough for the handler to run.
"""

from __future__ import annotations

import logging
import signal
from types import FrameType
from typing import Any

from PyQt6 import QtCore, QtWidgets

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)
WAKE_MS = 200
"""How often the interpreter gets control while Qt waits (how late a Ctrl-C can be noticed)."""


class CloseOnSignals:
    """While installed, SIGINT and SIGTERM close ``window`` (see the module docstring).

    A context manager: the previous handlers come back on exit. Only the main thread may install
    signal handlers; elsewhere this does nothing.
    """

    def __init__(self, window: QtWidgets.QWidget) -> None:
        self.window = window
        self._previous: dict[int, Any] = {}
        self._timer: QtCore.QTimer | None = None
        self.received: int | None = None
        """The last signal that closed the window (None: none came)."""

    def __enter__(self) -> CloseOnSignals:
        try:
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self.handle)
        except ValueError:  # not the main thread: leave Python's handlers alone
            self._restore()
            return self
        self._timer = QtCore.QTimer()
        self._timer.timeout.connect(lambda: None)
        self._timer.start(WAKE_MS)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer.deleteLater()
            self._timer = None
        self._restore()

    def _restore(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()

    def handle(self, signum: int, frame: FrameType | None = None) -> None:
        """The signal handler: ask the event loop to close the window (again if it is closing:
        harmless, the window closes once its session has)."""
        self.received = signum
        log.warning("%s: closing the window (the session and any recording close first)", signal.Signals(signum).name)
        QtCore.QTimer.singleShot(0, self.window.close)
