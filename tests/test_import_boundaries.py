"""Qt lives only in emgpilot.app; Olympe only in the Olympe backend; both stay lazy."""

from __future__ import annotations

import subprocess
import sys

CHECK = r"""
import importlib, pkgutil, sys
import emgpilot
skip_prefixes = ("emgpilot.app", "emgpilot.drone.olympe_backend")
for mod in pkgutil.walk_packages(emgpilot.__path__, "emgpilot."):
    if mod.name.startswith(skip_prefixes):
        continue
    importlib.import_module(mod.name)
bad = sorted(m for m in sys.modules if m.split(".")[0] in ("PyQt6", "pyqtgraph", "olympe"))
print(",".join(bad))
"""


def test_model_packages_import_without_qt_or_olympe():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"imported outside emgpilot.app: {out.stdout.strip()}"


def test_cli_help_does_not_import_heavy_modules():
    code = (
        "import sys\nfrom emgpilot.app.cli import build_parser\nbuild_parser()\n"
        "print(','.join(m for m in ('torch', 'PyQt6', 'olympe', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""

