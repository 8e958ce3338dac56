"""Running a snippet in a new Python process, to see what importing something pulls in."""

from __future__ import annotations

import subprocess
import sys


def fresh_process(script: str) -> str:
    """What ``script`` prints in a new Python process (nothing imported yet)."""
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          check=True).stdout.strip()
