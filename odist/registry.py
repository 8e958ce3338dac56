"""Name -> builder registries, so interchangeable parts are looked up instead of if-chained."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from odist.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named family of builders (teachers, sources, ...); users may register their own."""

    def __init__(self, family: str) -> None:
        self.family = family
        self._builders: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator that registers ``builder`` under ``name``."""

        def decorate(builder: Callable[..., T]) -> Callable[..., T]:
            if name in self._builders:
                raise ValueError(f"{self.family} {name!r} is already registered")
            self._builders[name] = builder
            return builder

        return decorate

    def get(self, name: str) -> Callable[..., T]:
        """The builder registered as ``name``, or a ConfigError listing the known names."""
        try:
            return self._builders[name]
        except KeyError:
            known = ", ".join(sorted(self._builders)) or "none"
            raise ConfigError(f"unknown {self.family} {name!r}", f"choose one of: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._builders)
