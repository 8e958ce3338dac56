"""Reading config data: files, ``key=value`` overrides and typed construction of the config dataclasses.

``odist.config`` builds its tree with these; every problem is a ``ConfigError`` naming the key. Values are
checked against each field's type hint by pydantic (imported on the first build, not by ``odist --help``), with a
few config rules on top: a number is never a bool, ``a,b`` is a list, ``none``/``null`` is None where a field is
optional, and infinities and NaN are refused.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Union, get_args, get_origin, get_type_hints

from odist.errors import ConfigError

if TYPE_CHECKING:
    from pydantic import TypeAdapter, ValidationError


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
    """The config dataclass ``cls`` built from plain ``data``: every value validated against its field's type hint;
    a bad value or an unknown key is a ``ConfigError`` naming ``prefix`` + the key."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"config section {prefix.rstrip('.') or '<root>'} must be a mapping")
    hints = _hints(cls)
    unknown = sorted(str(key) for key in set(data) - set(hints))
    if unknown:
        raise ConfigError(f"unknown config key {prefix}{unknown[0]}", f"known keys here: {', '.join(sorted(hints))}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        hint = hints[name]
        key = prefix + name
        if dataclasses.is_dataclass(hint):
            kwargs[name] = build(hint, value, key + ".")
        else:
            kwargs[name] = validate_value(value, hint, key)
    return cls(**kwargs)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """The resolved type hint of each field of the dataclass ``cls``, in field order."""
    resolved = get_type_hints(cls)
    return {f.name: resolved[f.name] for f in dataclasses.fields(cls)}


def validate_value(value: Any, hint: Any, key: str) -> Any:
    """``value`` as the type ``hint`` says (``"8,16"`` or ``[8, 16]`` as ``(8, 16)`` for ``tuple[int, ...]``), or a
    one-line ``ConfigError`` naming ``key`` and what it expects."""
    from pydantic import ValidationError

    try:
        return _adapter(hint).validate_python(value)
    except ValidationError as exc:
        raise ConfigError(f"invalid config value for {key}: {_short(value)}", f"expected {_expected(hint, exc)}",
                          keys=(key,)) from None


@functools.cache
def _adapter(hint: Any) -> TypeAdapter[Any]:
    from pydantic import ConfigDict, TypeAdapter

    return TypeAdapter(_config_type(hint), config=ConfigDict(allow_inf_nan=False))


def _config_type(hint: Any) -> Any:
    """``hint`` with the config's rules added for pydantic: numbers refuse bools, lists may be written ``a,b``, names
    may be numbers, an optional non-text value reads ``none``/``null`` as None. Other hints are pydantic's own."""
    from pydantic import BeforeValidator

    origin, args = get_origin(hint), get_args(hint)
    if hint in (int, float):
        return Annotated[hint, BeforeValidator(_not_bool)]
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return Annotated[tuple[_item_type(args[0]), ...], BeforeValidator(_comma_list)]
    if origin is list and len(args) == 1:
        return Annotated[list[_item_type(args[0])], BeforeValidator(_comma_list)]
    if origin is dict and len(args) == 2:
        return dict[_item_type(args[0]), _config_type(args[1])]
    if origin in (Union, types.UnionType):
        inner = Union[tuple(_config_type(arg) for arg in args)]  # noqa: UP007 (the members are known at run time only)
        return inner if str in args or type(None) not in args else Annotated[inner, BeforeValidator(_null_word)]
    return hint


def _item_type(hint: Any) -> Any:
    """An item of a list or a mapping key: a name (text, or a number taken as text) where ``hint`` is ``str``."""
    from pydantic import BeforeValidator

    return Annotated[str, BeforeValidator(_name)] if hint is str else _config_type(hint)


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a bool is not a number")
    return value


def _name(value: Any) -> Any:
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _comma_list(value: Any) -> Any:
    return [part for part in value.split(",") if part] if isinstance(value, str) else value


def _null_word(value: Any) -> Any:
    return None if isinstance(value, str) and value.strip().lower() in ("none", "null") else value


_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}
_PLURALS = {bool: "true/false values", int: "whole numbers", float: "numbers", str: "names"}
_GROUPS = "a mapping of names to lists of names, e.g. {vehicle: [car, bus]}"


def _expected(hint: Any, exc: ValidationError) -> str:
    """What a value of type ``hint`` looks like, in words (never a Python repr); pydantic's own words, one line,
    for a hint the config does not describe."""
    errors = exc.errors(include_url=False)
    if float in (hint, *get_args(hint)) and any(error["type"] == "finite_number" for error in errors):
        return "a finite number"
    words = _words(hint)
    if words:
        return words
    first = errors[0]
    where = "".join(f"[{part!r}]" for part in first["loc"])
    return " ".join((str(first["msg"]).removeprefix("Input should be ") + (f" at {where}" if where else "")).split())


def _words(hint: Any) -> str | None:
    origin, args = get_origin(hint), get_args(hint)
    if hint in _WORDS:
        return _WORDS[hint]
    if origin in (tuple, list) and args and args[0] in _PLURALS and args[-1] in (args[0], Ellipsis):
        return f"a list of {_PLURALS[args[0]]}"
    if hint == dict[str, list[str]]:
        return _GROUPS
    if origin in (Union, types.UnionType) and len(args) == 2 and type(None) in args:
        words = _words(next(arg for arg in args if arg is not type(None)))
        return None if words is None else f"{words} or null"
    return None


def _short(value: Any, limit: int = 80) -> str:
    """``repr(value)``, cut to ``limit`` characters."""
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."
