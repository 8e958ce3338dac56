"""The import contracts in pyproject.toml hold, and a violation of them fails ``lint-imports``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter")
ROOT = Path(__file__).resolve().parents[1]


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the package under ``root``, with ``root``'s pyproject.toml."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    command = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
               "sys.exit(lint_imports_command())"]
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.integration
def test_the_layers_hold_and_a_core_module_importing_ray_breaks_them(tmp_path):
    kept = lint_imports(ROOT)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "0 broken" in kept.stdout

    shutil.copytree(ROOT / "odist", tmp_path / "odist", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "odist" / "distill" / "shortcut.py").write_text(
        '"""A distill module reaching into the fleet: what the contracts forbid."""\n\n'
        "import ray  # noqa: F401\n\nfrom odist.fleet.driver import run_fleet  # noqa: F401\n")
    (tmp_path / "odist" / "pretrain" / "shortcut.py").write_text(
        '"""A pretrain module reading the fleet\'s summary: inputs are not a fleet concern."""\n\n'
        "from odist.fleet.summary import FleetSummary  # noqa: F401\n")
    broken = lint_imports(tmp_path)
    assert broken.returncode != 0
    assert "odist.distill.shortcut -> odist.fleet.driver" in broken.stdout
    assert "odist.distill.shortcut -> ray" in broken.stdout
    assert "The single-stream core imports no Ray and nothing above it BROKEN" in broken.stdout
    assert "odist.pretrain.shortcut -> odist.fleet.summary" in broken.stdout
