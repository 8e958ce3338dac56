"""Every page's examples run word for word in a fresh folder and print what the page shows (``doc_pages``).

Pages are sorted by what their examples cost on a 2-core CPU. ``QUICK`` pages run in the normal suite (CI).
``SLOW`` pages (minutes of distillation each, a Ray cluster: about an hour together) would take CI past its
budget, so they run on demand: ``ODIST_DOCS_SLOW=1 pytest tests/docs -k slow_page`` (``-k 'slow_page and
pretrain'`` for one). A new page with examples must be put in one of the two.
"""

from __future__ import annotations

import os

import pytest
from doc_pages import DOCS, check_page, steps

# Seconds on a 2-core CPU, measured when each page's output was captured.
QUICK = {
    "commands/plan.md": 20,
    "commands/ls.md": 80,
    "storage.md": 50,
    "python.md": 190,
    "commands/live.md": 80,
    "commands/synth.md": 15,
}
SLOW = {
    "getting-started.md": 480,
    "commands/distill.md": 200,
    "commands/pretrain.md": 420,
    "commands/export.md": 150,
    "commands/render.md": 240,
    "commands/run.md": 420,
    "commands/report.md": 420,
    "cluster.md": 100,
}
# What of the checkout a page's reader works in (the cluster page runs from the checkout's root).
CHECKOUT = {"cluster.md": ("cluster", "ray_jobs", ".gitignore")}


def pages_with_examples() -> list[str]:
    return sorted(str(page.relative_to(DOCS)) for page in DOCS.rglob("*.md")
                  if any(not step.skip for step in steps(page.read_text())))


def test_every_page_with_examples_is_run_somewhere():
    assert set(pages_with_examples()) <= set(QUICK) | set(SLOW), set(pages_with_examples()) - set(QUICK) - set(SLOW)
    assert not set(QUICK) & set(SLOW)


@pytest.mark.integration
@pytest.mark.parametrize("page", sorted(QUICK))
def test_quick_page_prints_what_it_shows(page, tmp_path):
    problems = check_page(page, tmp_path)
    assert not problems, "\n\n".join(problems)


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.skipif(not os.environ.get("ODIST_DOCS_SLOW"), reason="minutes per page: set ODIST_DOCS_SLOW=1 to run")
@pytest.mark.parametrize("page", sorted(SLOW))
def test_slow_page_prints_what_it_shows(page, tmp_path):
    problems = check_page(page, tmp_path, checkout=CHECKOUT.get(page, ()))
    assert not problems, "\n\n".join(problems)


def test_the_python_page_shows_every_public_call():
    import odist

    code = "".join(step.code for step in steps((DOCS / "python.md").read_text()) if step.kind == "python")
    public = [name for name in odist.__all__ if name[0].islower() and not name.startswith("_")]
    assert public and all(f"odist.{name}(" in code for name in public), public
