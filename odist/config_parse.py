"""Reading config data: files, ``key=value`` overrides and typed construction of the config dataclasses.

``odist.config`` builds its tree with these; every problem is a ``ConfigError`` naming the key.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, get_type_hints

from odist.errors import ConfigError


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> None:
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} is not key=value", "write e.g. --set distill.max_updates=4")
        set_dotted(data, key.strip(), parse_scalar(value.strip()), origin=f"override {item!r}")


MAX_FILE_BYTES = 1 << 20  # a config file is a few hundred bytes; anything past 1 MiB is not one
MAX_NODES = 10_000  # values, lists and mappings in a config, counting every reuse of a YAML alias
MAX_DEPTH = 16  # the deepest real key, teacher.class_groups.NAME[i], is 4 levels down


def read_file(path: Path) -> dict[str, Any]:
    """The mapping in a YAML/JSON config file; its size bounded before anything is built from it."""
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist", "pass an existing YAML or JSON file to --config")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ConfigError(f"config file {path} is {size} bytes, more than a config holds ({MAX_FILE_BYTES})",
                          "pass a YAML or JSON config file")
    text = read_text(path, "config file", "save it as UTF-8 YAML or JSON")
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            loaded = yaml.safe_load(text) or {}
        else:
            loaded = json.loads(text)
    except Exception as exc:
        raise ConfigError(f"config file {path} cannot be parsed: {parse_problem(exc)}",
                          "fix its YAML/JSON syntax") from None
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must hold a mapping", "write sections like 'distill: {max_updates: 4}'")
    check_bounded(loaded, f"config file {path}")
    return loaded


def read_text(path: Path, what: str, fix: str) -> str:
    """``path`` decoded as UTF-8 (a byte-order mark is skipped); a ``ConfigError`` naming ``what`` and the first
    byte that is not UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read: {exc.strerror or exc}",
                          "check the path and its permissions") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {path} is not UTF-8 text (byte {exc.start})", fix) from None


def check_bounded(value: Any, where: str) -> None:
    """A ``ConfigError`` when ``value`` holds more than ``MAX_NODES`` nodes or nests deeper than ``MAX_DEPTH``.

    YAML aliases make a small file a huge tree (each reuse counts again); the walk stops at the bound, so
    checking costs at most ``MAX_NODES`` steps whatever the tree would expand to.
    """
    seen = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > MAX_NODES:
            raise ConfigError(f"{where} holds more than {MAX_NODES} values (YAML aliases count each time they "
                              "are used)", "write the config out without nested aliases")
        if depth > MAX_DEPTH:
            raise ConfigError(f"{where} nests deeper than {MAX_DEPTH} levels", "write sections like "
                              "'distill: {max_updates: 4}'")
        if isinstance(node, Mapping):
            stack.extend((child, depth + 1) for child in node.values())
        elif isinstance(node, list | tuple):
            stack.extend((child, depth + 1) for child in node)


def parse_problem(exc: Exception) -> str:
    """A YAML or JSON parser error as one line: what is wrong and where (not the parser's multi-line dump)."""
    problem = getattr(exc, "problem", None) or getattr(exc, "msg", None) \
        or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    if isinstance(getattr(exc, "lineno", None), int) and isinstance(getattr(exc, "colno", None), int):
        return f"{problem} at line {exc.lineno}, column {exc.colno}"
    return problem


def parse_scalar(text: str) -> Any:
    """Parse an override value as JSON (numbers, lists, true/false/null), else keep it a string."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    except RecursionError:
        raise ConfigError(f"config value {text[:20]}... nests deeper than {MAX_DEPTH} levels",
                          "pass a number, a string or a flat list") from None
    check_bounded(value, f"config value {text[:20]}")
    return value


def set_dotted(data: dict[str, Any], key: str, value: Any, origin: str) -> None:
    parts = [p for p in key.split(".") if p]
    if not parts:
        raise ConfigError(f"{origin} names no config key", "write section.key=value")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{origin}: {part!r} is not a section", "check the key path")
        node = child
    node[parts[-1]] = value


def build(cls: type, data: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"config section {prefix.rstrip('.') or '<root>'} must be a mapping")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown config key {prefix}{unknown[0]}", f"known keys here: {', '.join(sorted(names))}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        hint = hints[name]
        key = prefix + name
        if dataclasses.is_dataclass(hint):
            kwargs[name] = build(hint, value, key + ".")
        else:
            kwargs[name] = _coerce(value, hint, key)
    return cls(**kwargs)


def _coerce(value: Any, hint: Any, key: str) -> Any:
    text = str(hint)
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
                return value.lower() in ("true", "1", "yes")
            raise TypeError
        if hint is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            return int(value)
        if hint is float:
            return _finite(value)
        if hint is str:
            if not isinstance(value, str):
                raise TypeError
            return value
        if text.startswith("str | None"):
            return None if value is None else str(value)
        if text.startswith("int | None"):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            return None if value is None or value in ("none", "null") else int(value)
        if text.startswith("float | None"):
            return None if value is None or value in ("none", "null") else _finite(value)
        if text.startswith("tuple[int"):
            return tuple(int(v) for v in _as_list(value))
        if text.startswith("tuple[str"):
            return tuple(_name(v) for v in _as_list(value))
        if text.startswith("dict[str, list[str]]"):
            if not isinstance(value, Mapping):
                raise TypeError
            return {_name(k): [_name(x) for x in _as_list(v)] for k, v in value.items()}
    except (TypeError, ValueError, OverflowError):
        pass
    else:
        return value
    shown = _READABLE.get(hint, text)  # "a number", never "<class 'float'>"
    if (hint is float or text.startswith("float")) and _non_finite(value):
        shown = "a finite number"
    if text.startswith("dict[str, list[str]]"):
        shown = "a mapping of names to lists of names, e.g. {vehicle: [car, bus]}"
    raise ConfigError(f"invalid config value for {key}: {_short(value)}", f"expected {shown}")


_READABLE = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters."""
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _finite(value: Any) -> float:
    """``value`` as a finite float (``inf``, ``nan`` and ``1e999`` are refused); TypeError/ValueError else."""
    if isinstance(value, bool):
        raise TypeError
    number = float(value)
    if not math.isfinite(number):
        raise ValueError
    return number


def _non_finite(value: Any) -> bool:
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _name(value: Any) -> str:
    """A name in a list of names: text or a number, never a nested list or mapping."""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise TypeError
    return str(value)


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v]
    if not isinstance(value, list | tuple):
        raise TypeError
    return list(value)
