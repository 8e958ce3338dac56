"""MkDocs hook: pages generated from the code and the benchmark results, so they never drift from them.

- ``<!-- cli-reference -->`` becomes every command's ``--help``, from ``odist.cli.build_parser``;
- ``<!-- config-reference -->`` becomes every config key with its type, default and comment, from the config
  dataclasses;
- a fenced ``results`` block becomes a table of a ``bench/results/*.json`` file (``results_tables.py``), and
  every such file must be shown by one;
- ``bench/results/*.png`` are published under ``benchmarks/results/``.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from mkdocs.structure.files import File, Files

HOOKS = Path(__file__).resolve().parent
ROOT = HOOKS.parents[1]
sys.path[:0] = [str(HOOKS), str(ROOT)]

from cli_reference import cli_reference  # noqa: E402
from config_reference import config_reference  # noqa: E402
from results_tables import RESULTS, files_named, replace_results_blocks  # noqa: E402

log = logging.getLogger("mkdocs.plugins.odist_docs")
MARKERS = {"<!-- cli-reference -->": cli_reference, "<!-- config-reference -->": config_reference}
SHOWN: set[str] = set()  # the results files the pages' tables read, for the check after the build


def on_files(files: Files, config) -> Files:
    """Publish the benchmark figures beside the benchmark pages."""
    for image in sorted(RESULTS.glob("*.png")):
        files.append(File.generated(config, f"benchmarks/results/{image.name}", abs_src_path=str(image)))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Expand the generated sections of one page; a bad ``results`` block is a warning (an error with --strict)."""
    for marker, generate in MARKERS.items():
        if marker in markdown:
            markdown = markdown.replace(marker, generate())
    SHOWN.update(files_named(markdown))
    return replace_results_blocks(markdown, page.file.src_uri, log.warning)


def on_pre_build(config) -> None:
    SHOWN.clear()


def on_post_build(config) -> None:
    """Every benchmark result is shown on some page: a result without a table is a warning."""
    for name in sorted({path.name for path in RESULTS.glob("*.json")} - SHOWN):
        log.warning(f"bench/results/{name} is shown by no results block (add one to a page in docs/benchmarks/)")
