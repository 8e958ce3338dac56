"""The README stays short and points into the docs site, whose pages hold the manual (tests/docs)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_readme_is_short():
    assert len(README.splitlines()) < 250


def test_the_readme_links_resolve():
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    assert links
    missing = [link for link in links if "://" not in link and not (ROOT / link).exists()]
    assert not missing, missing


def test_the_readme_keeps_the_two_set_up_commands():
    assert 'pip install -e . && odist synth runs/archive' in README
    assert 'pip install -e ".[dev]" && pytest -q' in README
