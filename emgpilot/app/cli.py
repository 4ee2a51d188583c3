"""The ``emgpilot`` command line."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from emgpilot import __version__
from emgpilot.app.commands import COMMAND_MODULES


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2, no traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emgpilot",
        description="Fly a drone with your arm. With no command, opens the GUI in demo mode.",
    )
    parser.add_argument("--version", action="version", version=f"emgpilot {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"emgpilot.app.commands.{name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    if not [a for a in argv if not a.startswith("-")] and not {"-h", "--help", "--version"} & set(argv):
        # No command: the demo window, as the README promises.
        argv = [*argv, "gui", "--demo"] if "gui" in COMMAND_MODULES else [*argv, "run", "--headless"]
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except CLIError as e:
        print(f"emgpilot {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into e.g. `head`: not an error of ours. Silence the final flush too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
