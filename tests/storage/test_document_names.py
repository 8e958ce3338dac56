"""The run's document names are spelled in ``odist.storage.documents`` only: a check over odist's source."""

import ast
import re
from pathlib import Path

import odist
from odist.storage import documents

PACKAGE = Path(odist.__file__).parent
HOME = PACKAGE / "storage" / "documents.py"
NAMES = (*documents.RUN_DOCUMENTS, *documents.STREAM_DOCUMENTS)
SPELLED = re.compile(r"(?<![\w.])(" + "|".join(re.escape(name) for name in NAMES) + r")(?!\w)")


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that stand alone as statements: docstrings, which may name a document."""
    return {id(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}


def spelled_names(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    """``file:line: 'name'`` for every string literal in ``path`` (docstrings aside) that spells a document name."""
    tree = ast.parse(path.read_text(), str(path))
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            found += [f"{path.relative_to(root)}:{node.lineno}: {match!r}"
                      for match in SPELLED.findall(node.value)]
    return found


def test_no_module_but_documents_spells_a_document_name():
    found = [line for path in sorted(PACKAGE.rglob("*.py")) if path != HOME for line in spelled_names(path)]
    assert not found, ("document names spelled outside odist/storage/documents.py (import its constant, and read "
                       "or write the document through odist.storage.documents or StreamArea):\n" + "\n".join(found))


def test_the_check_finds_a_name_in_code_and_an_f_string_but_not_in_a_docstring(tmp_path):
    module = tmp_path / "probe.py"
    module.write_text('"""Writes run.json."""\nKEY = "summary.json"\n'
                      'key = f"{KEY}/failed.json"\nother = "odist.json"\n')
    assert spelled_names(module, tmp_path) == ["probe.py:2: 'summary.json'", "probe.py:3: 'failed.json'"]
