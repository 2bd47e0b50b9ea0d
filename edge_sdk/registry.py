"""A small name → object registry; backends, conversion targets and sources register themselves in one."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from edge_sdk.errors import BadInputError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named plug-ins of one kind. Modules in ``package`` are imported on first use, so a new plug-in
    registers itself by existing: no list elsewhere needs editing."""

    def __init__(self, kind: str, package: str) -> None:
        self.kind = kind
        self._package = package
        self._items: dict[str, T] = {}
        self._discovered = False

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator (or plain call) that files ``obj`` under ``name``."""

        def add(obj: T) -> T:
            self._items[name] = obj
            return obj

        return add

    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        pkg = importlib.import_module(self._package)
        for info in pkgutil.iter_modules(pkg.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{self._package}.{info.name}")

    def names(self) -> list[str]:
        """Registered names, in registration order."""
        self._discover()
        return list(self._items)

    def get(self, name: str) -> T:
        """The plug-in called ``name``; an unknown name is a BadInputError listing the known ones."""
        self._discover()
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(self._items) or "none"
            raise BadInputError(f"unknown {self.kind} '{name}'; known: {known}") from None

    def __iter__(self) -> Iterator[tuple[str, T]]:
        self._discover()
        return iter(list(self._items.items()))
