"""Name -> builder registries, so interchangeable parts are looked up instead of if-chained."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from odist.errors import ConfigError

T = TypeVar("T")


class _Deferred:
    """A builder whose module is imported on first use: ``module`` registers the real builder under the name."""

    def __init__(self, module: str) -> None:
        self.module = module

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{self.module} did not register its builder")


class Registry(Generic[T]):
    """A named family of builders (teachers, sources, ...); users may register their own."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._builders: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator that registers ``builder`` under ``name`` (replacing a ``register_deferred`` entry)."""

        def decorate(builder: Callable[..., T]) -> Callable[..., T]:
            if name in self._builders and not isinstance(self._builders[name], _Deferred):
                raise ValueError(f"{self.family} {name!r} is already registered")
            self._builders[name] = builder
            return builder

        return decorate

    def register_deferred(self, name: str, module: str) -> None:
        """Name a builder that ``module`` registers when imported, which ``get`` does on first use
        (so a heavy dependency, torchvision for Mask R-CNN, is imported only by those who build it)."""
        self._builders.setdefault(name, _Deferred(module))

    def get(self, name: str) -> Callable[..., T]:
        """The builder registered as ``name``, or a ConfigError listing the known names."""
        try:
            builder = self._builders[name]
        except KeyError:
            known = ", ".join(sorted(self._builders)) or "none"
            raise ConfigError(f"unknown {self.family} {name!r}", f"choose one of: {known}") from None
        if isinstance(builder, _Deferred):
            importlib.import_module(builder.module)
            builder = self._builders[name]
        return builder

    def names(self) -> list[str]:
        return sorted(self._builders)
