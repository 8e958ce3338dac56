"""The config reference: every key of the typed config tree with its type, default and the comment above it
(dataclasses), or its description (pydantic models)."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from typing import Any

FIELD = re.compile(r"^\s+(\w+)\s*:\s*[^=]+?(?:=.*?)?(?:#\s*(?P<trailing>.*))?$")


def config_reference() -> str:
    """Markdown: the top-level keys, then one table per section, in the tree's order."""
    from odist.config import OdistConfig

    root = OdistConfig()
    top, sections = [], []
    for name, value, kind, doc in _fields(root):
        if _is_section(value):
            sections.append(_section(name, value))
        else:
            top.append(_row(name, kind, value, doc))
    head = ("## Top level\n\n" + _doc(type(root)) + "\n\n" + _table(top) + "\n")
    return head + "\n".join(sections)


def _section(name: str, section: Any) -> str:
    rows = [_row(f"{name}.{key}", kind, value, doc) for key, value, kind, doc in _fields(section)]
    return f"## `{name}`\n\n{_doc(type(section))}\n\n{_table(rows)}\n"


def _is_section(value: Any) -> bool:
    return dataclasses.is_dataclass(value) or hasattr(type(value), "model_fields")


def _fields(instance: Any) -> list[tuple[str, Any, str, str]]:
    """(name, default, type, meaning) of each field of a dataclass or a pydantic model, in order."""
    comments = _comments(type(instance))
    if hasattr(type(instance), "model_fields"):  # a pydantic model: its own descriptions first
        return [(name, getattr(instance, name), _type_text(field.annotation),
                 field.description or comments.get(name, ""))
                for name, field in type(instance).model_fields.items()]
    return [(f.name, getattr(instance, f.name), str(f.type), comments.get(f.name, ""))
            for f in dataclasses.fields(instance)]


def _type_text(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) if isinstance(annotation, type) else str(annotation).replace(
        "typing.", "")


def _comments(cls: type) -> dict[str, str]:
    """Each field's comment: the ``#`` lines right above it, or the one at the end of its line."""
    found: dict[str, str] = {}
    pending: list[str] = []
    for line in inspect.getsource(cls).splitlines()[1:]:
        stripped = line.strip()
        if stripped.startswith("#"):
            pending.append(stripped.lstrip("#").strip())
            continue
        match = FIELD.match(line)
        if match and not stripped.startswith(("def ", "@", '"')):
            text = " ".join(pending) or (match.group("trailing") or "")
            found.setdefault(match.group(1), text)
        pending = []
    return found


def _doc(cls: type) -> str:
    return " ".join(inspect.cleandoc(cls.__doc__ or "").split())


def _row(key: str, kind: str, value: Any, doc: str) -> str:
    cells = [f"`{key}`", f"`{kind}`", f"`{_default(value)}`", doc.replace("|", "\\|")]
    return "| " + " | ".join(cells) + " |"


def _default(value: Any) -> str:
    if isinstance(value, tuple):
        value = list(value)
    try:
        return json.dumps(value).replace("|", "\\|")
    except TypeError:
        return str(value)


def _table(rows: list[str]) -> str:
    return "| key | type | default | meaning |\n|---|---|---|---|\n" + "\n".join(rows)
