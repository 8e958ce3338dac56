"""The README's Python section runs as written and prints what it shows."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
EXAMPLE = re.compile(r"```python\n(.*?)```\n\n```text\n(.*?)```", re.S)


def python_examples() -> list[tuple[str, str]]:
    """(code, shown output) of every example in the README's "Python" section, in order."""
    text = README.read_text()
    section = text[text.index("\n## Python\n"):]
    section = section[:section.index("\n## ", 1)]
    return EXAMPLE.findall(section)


def test_the_python_section_shows_every_public_call():
    import odist

    code = "".join(block for block, _ in python_examples())
    public = [name for name in odist.__all__ if name[0].islower() and not name.startswith("_")]
    assert public and all(f"odist.{name}(" in code for name in public), public


@pytest.mark.integration
def test_the_python_examples_print_what_the_readme_shows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for code, shown in python_examples():
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(code, "README.md", "exec"), namespace)
        lines = printed.getvalue().splitlines()
        for line in shown.splitlines():  # in order; Ray may add its own log lines in between
            assert line in lines, f"{line!r} not printed by:\n{code}\nprinted:\n{printed.getvalue()}"
            lines = lines[lines.index(line) + 1:]
