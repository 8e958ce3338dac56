"""Reading config data: files, ``key=value`` overrides and typed construction of the config dataclasses.

``odist.config`` builds its tree with these; every problem is a ``ConfigError`` naming the key.
"""

from __future__ import annotations

import dataclasses
import json
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


def read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist", "pass an existing YAML or JSON file to --config")
    text = path.read_text()
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
    return loaded


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
        return json.loads(text)
    except json.JSONDecodeError:
        return text


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
            if isinstance(value, bool):
                raise TypeError
            return float(value)
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
            if isinstance(value, bool):
                raise TypeError
            return None if value is None or value in ("none", "null") else float(value)
        if text.startswith("tuple[int"):
            return tuple(int(v) for v in _as_list(value))
        if text.startswith("tuple[str"):
            return tuple(str(v) for v in _as_list(value))
        if text.startswith("dict[str, list[str]]"):
            if not isinstance(value, Mapping):
                raise TypeError
            return {str(k): [str(x) for x in _as_list(v)] for k, v in value.items()}
    except (TypeError, ValueError):
        pass
    else:
        return value
    shown = _READABLE.get(hint, text)  # "a number", never "<class 'float'>"
    raise ConfigError(f"invalid config value for {key}: {value!r}", f"expected {shown}")


_READABLE = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v]
    if not isinstance(value, list | tuple):
        raise TypeError
    return list(value)
