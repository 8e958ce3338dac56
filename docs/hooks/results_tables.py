"""Tables of benchmark results, read from ``bench/results/*.json`` when the docs are built.

A page asks for one with a fenced block::

    ```results
    file: frame_cost.json          # under bench/results/; or a list of files, or files mapped to a label
                                   # (the rows' "source" field), their rows one after the other
    rows: teachers                 # dotted path to a list of rows (a dict of dicts: one row per key, as "key";
                                   # another dict: one row; "." the file's top level as one row);
                                   # a list of paths: their rows one after the other
    where: {policy: default}       # optional: keep rows whose fields equal these
    columns:                       # header: a field name, or a format string over the row's fields
      model: model
      GFLOP/frame: "{gflops:.1f}"
      mIoU: "{miou:.3f} ± {miou_std:.3f}"
    ```

A cell whose fields are missing or null reads ``n/a``; booleans read yes/no and lists of numbers ``0,1,2``.
Below the table, a line names the files and the machine they were measured on.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
BLOCK = re.compile(r"^```results\n(.*?)^```\n", re.S | re.M)


class ResultsError(ValueError):
    """A ``results`` block that names a missing file, rows or field."""


def replace_results_blocks(markdown: str, page: str, warn: Callable[[str], None]) -> str:
    """Every ``results`` block of a page replaced by its table (or, when it is wrong, a warning and a note)."""
    def expand(match: re.Match) -> str:
        try:
            return results_table(yaml.safe_load(match.group(1))) + "\n"
        except (ResultsError, OSError, yaml.YAMLError) as error:
            warn(f"{page}: results block: {error}")
            return f"*results table unavailable: {error}*\n"
    return BLOCK.sub(expand, markdown)


def files_named(markdown: str) -> set[str]:
    """The results files a page's blocks read (blocks that do not parse name none)."""
    names: set[str] = set()
    for match in BLOCK.finditer(markdown):
        try:
            names.update(name for name, _ in _files(yaml.safe_load(match.group(1))["file"]))
        except (ResultsError, yaml.YAMLError, KeyError, TypeError):
            continue
    return names


def results_table(spec: dict[str, Any], results: Path = RESULTS) -> str:
    """One Markdown table and its source line, from a block's spec."""
    if not isinstance(spec, dict) or not {"file", "rows", "columns"} <= spec.keys():
        raise ResultsError("needs file, rows and columns")
    files = _files(spec["file"])
    paths = spec["rows"] if isinstance(spec["rows"], list) else [spec["rows"]]
    rows, payloads = [], []
    for name, label in files:
        payload = json.loads((results / name).read_text())
        payloads.append(payload)
        rows += [{**row, "source": label} for path in paths for row in _rows(payload, path, name)
                 if all(row.get(k) == v for k, v in (spec.get("where") or {}).items())]
    if not rows:
        raise ResultsError(f"no rows at {spec['rows']!r} of {spec['file']} match {spec.get('where')}")
    columns = spec["columns"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(template, row) for template in columns.values()) + " |" for row in rows]
    return "\n".join(lines) + "\n\n" + _source([name for name, _ in files], payloads[0])


def _files(value: Any) -> list[tuple[str, str]]:
    """``file``: one name, a list of names, or names mapped to a label (the rows' ``source`` field)."""
    if isinstance(value, str):
        return [(value, value)]
    if isinstance(value, list):
        return [(name, name) for name in value]
    if isinstance(value, dict):
        return [(name, str(label)) for name, label in value.items()]
    raise ResultsError("file must be a name, a list of names or a mapping of names to labels")


def _rows(payload: Any, path: str, name: str) -> list[dict[str, Any]]:
    value = payload
    for key in ([] if path == "." else path.split(".")):
        if not isinstance(value, dict) or key not in value:
            raise ResultsError(f"{name} has no {path!r}")
        value = value[key]
    if isinstance(value, dict):
        value = ([{"key": key, **row} for key, row in value.items()]
                 if value and all(isinstance(row, dict) for row in value.values()) else [value])
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        raise ResultsError(f"{path!r} of {name} is not a list of rows")
    return value


def _cell(template: str, row: dict[str, Any]) -> str:
    if "{" not in template:
        template = "{" + template + "}"
    fields = [field.split(".")[0].split("[")[0] for _, field, _, _ in string.Formatter().parse(template) if field]
    if any(row.get(field) is None for field in fields):
        return "n/a"
    try:
        return _plain(template.format(**{k: _number(v) for k, v in row.items()}))
    except KeyError:  # a key inside a field that this row lacks (a class it never saw)
        return "n/a"
    except TypeError as error:
        if "NoneType" in str(error):  # a null inside a field (a class the teacher never labelled)
            return "n/a"
        raise ResultsError(f"cannot format {template!r}: {error!r}") from error
    except (ValueError, IndexError) as error:
        raise ResultsError(f"cannot format {template!r}: {error!r}") from error


class _Float(float):
    """A float that prints with a sensible number of digits when no format is given."""

    def __str__(self) -> str:
        if self.is_integer() and abs(self) < 1e6:
            return f"{self:.0f}"
        return f"{self:.3f}" if abs(self) < 10 else f"{self:.1f}" if abs(self) < 1000 else f"{self:,.0f}"

    def __format__(self, spec: str) -> str:
        return str(self) if not spec else float.__format__(self, spec)


class _Mapping(dict):
    """A dict field: its entries read as cells do (``{f[key]}``); on its own, ``key:value`` pairs (``1:27 8:3``)."""

    def __format__(self, spec: str) -> str:
        return " ".join(f"{key}:{value}" for key, value in self.items())


def _number(value: Any) -> Any:
    """A field as a cell shows it: floats with sensible digits, yes/no, lists joined by commas."""
    if isinstance(value, dict):
        return _Mapping({key: _number(item) for key, item in value.items()})
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return _Float(value)
    if isinstance(value, list) and not any(isinstance(item, (dict, list)) for item in value):
        return ",".join(str(item) for item in value)
    return value


def _plain(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _source(names: list[str], payload: dict[str, Any]) -> str:
    env = payload.get("environment") or {}
    facts = [f"torch {env['torch_version']}" if env.get("torch_version") else "",
             f"{env['cpu_count']} CPUs" if env.get("cpu_count") else "",
             env.get("cuda_device_name", ""),
             "jemalloc preloaded" if env.get("jemalloc_preloaded") else ""]
    measured = ", ".join(fact for fact in facts if fact)
    where = ", ".join(f"`bench/results/{name}`" for name in names)
    return f"<small>From {where}" + (f" ({measured})" if measured else "") + ".</small>\n"
