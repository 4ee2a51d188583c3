"""One module per ``emgpilot`` sub-command.

Each module defines ``register(subparsers)`` that adds its parser and sets ``func`` to a
handler ``(args) -> int``. Heavy imports (torch, Qt, Olympe) belong inside the handler so that
``emgpilot --help`` stays fast.
"""

# Order is the order shown by ``emgpilot --help``.
COMMAND_MODULES: tuple[str, ...] = (
    "run",
    "replay",
    "importcmd",
    "info",
    "evaluate",
    "bench",
    "devices",
    "wearers",
    "calibrate",
    "record",
    "fakedevice",
    "train_wrist",
    "sim",
    "gui",
)
