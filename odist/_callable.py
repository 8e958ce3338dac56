"""Packages that are also calls: ``odist.distill(...)`` runs a stream and ``odist.distill.pipeline`` is a module.

The public API's verbs (``distill``, ``live``, ``report``, ``plan``) share their names with the packages that
implement them; ``make_callable`` lets such a package be called as its entry function, so both spellings work
and imports of its modules stay as they are.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any


def make_callable(package: str, entry: Callable[..., Any]) -> None:
    """Calling the module ``package`` calls ``entry`` (which may import lazily); the module is unchanged else."""

    class CallablePackage(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return entry(*args, **kwargs)

    CallablePackage.__call__.__doc__ = entry.__doc__
    sys.modules[package].__class__ = CallablePackage
