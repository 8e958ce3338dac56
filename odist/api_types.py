"""Type checks of the public API's arguments (``odist.distill``, ``run``, ``live``, ``report``, ``plan``).

A value of the wrong type is one ``ConfigError`` naming the argument, what it holds and what it takes, never
an ``AttributeError`` from deep inside, a folder named ``None`` or ``"no"`` taken as true.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from odist.errors import ConfigError


def refuse(name: str, value: Any, expected: str) -> ConfigError:
    """The error for argument ``name`` holding ``value`` where ``expected`` belongs."""
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return ConfigError(f"{name} must be {expected}, not {shown} ({type(value).__name__})")


def location(name: str, value: Any, what: str = "a path or URI") -> str:
    """``value`` as a path or URI string (a ``PathLike`` is converted); None and other types are refused."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value:
        raise refuse(name, value, what)
    return value


def text(name: str, value: Any, what: str = "a string") -> str | None:
    """``value`` when it is a string or None."""
    if value is not None and not isinstance(value, str):
        raise refuse(name, value, f"{what} or None")
    return value


def texts(name: str, value: Any) -> list[str]:
    """``value`` as a list of strings (a sequence of them; a single string is refused, not split into letters)."""
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise refuse(name, value, "a list of strings")
    return list(value)


def flag(name: str, value: Any) -> bool:
    """``value`` when it is True or False (``"no"``, 0 and None are refused)."""
    if not isinstance(value, bool):
        raise refuse(name, value, "True or False")
    return value


def whole(name: str, value: Any, *, optional: bool = True) -> int | None:
    """``value`` when it is an int (or None when ``optional``); bools and floats are refused."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise refuse(name, value, "a whole number" + (" or None" if optional else ""))
    return value


def number(name: str, value: Any, *, optional: bool = True) -> float | None:
    """``value`` as a finite float (or None when ``optional``); bools, strings and inf/nan are refused."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise refuse(name, value, "a finite number" + (" or None" if optional else ""))
    return float(value)


def duration(name: str, value: Any) -> float | None:
    """``value`` as a positive, finite number of seconds, or None (no limit)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise refuse(name, value, "a number of seconds or None")
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{name} {value:g} is not a positive number of seconds",
                          "pass a duration > 0, or leave it out to run until stopped")
    return float(value)
