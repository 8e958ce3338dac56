"""The docs site builds with --strict, and its generated pages come from the code and the results."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from doc_pages import DOCS, ROOT, environment

sys.path.insert(0, str(DOCS / "hooks"))
from cli_reference import cli_reference
from config_reference import config_reference
from results_tables import ResultsError, files_named, replace_results_blocks, results_table


def test_the_cli_reference_has_every_command_and_flag():
    from odist.cli import build_parser

    text = cli_reference()
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    for name, parser in commands.items():
        assert f"## `odist {name}`" in text
        for action in parser._actions:
            assert all(flag in text for flag in action.option_strings), (name, action.option_strings)


def test_the_config_reference_has_every_key_with_its_default_and_comment():
    from odist.config import OdistConfig

    text = config_reference()
    config = OdistConfig()
    assert "| `distill.max_updates` | `int` | `8` |" in text
    assert f"| `storage.lease_ttl_s` | `float` | `{json.dumps(config.storage.lease_ttl_s)}` |" in text
    row = next(line for line in text.splitlines() if line.startswith("| `distill.cut_ladder`"))
    assert "How a cut moves the ladder" in row  # the comment above the field in odist/config.py
    assert len(re.findall(r"^\| `", text, re.M)) >= 80


def test_a_results_block_becomes_a_table_of_the_json_rows(tmp_path):
    (tmp_path / "b.json").write_text(json.dumps({
        "environment": {"torch_version": "2.14.1", "cpu_count": 2, "jemalloc_preloaded": True},
        "runs": [{"name": "a", "miou": 0.7512, "std": 0.01, "ms": 1234.5}, {"name": "b", "miou": None, "ms": 9.0}]}))
    spec = {"file": "b.json", "rows": "runs", "columns": {"run": "name", "mIoU": "{miou:.2f} ± {std:.2f}",
                                                          "ms": "ms"}}
    table = results_table(spec, tmp_path).splitlines()
    assert table[:4] == ["| run | mIoU | ms |", "|---|---|---|", "| a | 0.75 ± 0.01 | 1,234 |", "| b | n/a | 9 |"]
    assert "bench/results/b.json" in table[-1] and "torch 2.14.1, 2 CPUs, jemalloc preloaded" in table[-1]
    assert len(results_table({**spec, "where": {"name": "b"}}, tmp_path).splitlines()) == 5
    with pytest.raises(ResultsError, match="has no 'rows'"):
        results_table({**spec, "rows": "rows"}, tmp_path)


def test_a_wrong_results_block_is_a_warning_naming_the_page():
    warnings = []
    out = replace_results_blocks("```results\nfile: nope.json\nrows: runs\ncolumns: {a: a}\n```\n", "x.md",
                                 warnings.append)
    assert len(warnings) == 1 and warnings[0].startswith("x.md: results block:") and "unavailable" in out


@pytest.mark.integration
def test_mkdocs_build_strict_passes(tmp_path):
    pytest.importorskip("mkdocs")
    env = {**environment(tmp_path), "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "reference" / "cli" / "index.html").exists()
    assert os.path.getsize(tmp_path / "benchmarks" / "frame-cost" / "index.html") > 0


def test_the_files_a_page_shows_are_named_by_its_blocks():
    page = ("```results\nfile: {a.json: x, b.json: y}\nrows: r\ncolumns: {c: c}\n```\n\n"
            "```results\nfile: c.json\nrows: r\ncolumns: {c: c}\n```\n\n```python\nfile = 'd.json'\n```\n")
    assert files_named(page) == {"a.json", "b.json", "c.json"}


def test_the_config_reference_reads_pydantic_sections_too():
    pydantic = pytest.importorskip("pydantic")
    import config_reference

    class Section(pydantic.BaseModel):
        """A section."""

        retries: int = pydantic.Field(2, description="attempts after the first")
        # the comment above
        address: str | None = None

    rows = config_reference._fields(Section())
    assert [(name, default, meaning) for name, default, _, meaning in rows] == [
        ("retries", 2, "attempts after the first"), ("address", None, "the comment above")]
    assert config_reference._is_section(Section()) and rows[0][2] == "int"
