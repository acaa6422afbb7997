"""Name -> builder registries for backbones, heads and losses (one mechanism for all three)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from facecli.errors import unknown_choice

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of entries filled with the `register` decorator."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self._resolvers: list[Callable[[str], T | None]] = []

    def register(self, name: str, entry: T | None = None) -> Any:
        """Register `entry` under `name`; used bare as a decorator it registers the decorated object."""

        def add(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = obj
            return obj

        return add(entry) if entry is not None else add

    def add_resolver(self, resolver: Callable[[str], T | None]) -> None:
        """Resolve names outside the fixed table (for example the `timm/<name>` prefix)."""
        self._resolvers.append(resolver)

    def get(self, name: str) -> T:
        """The entry for `name`; an unknown name raises FaceCliError with the closest suggestion."""
        if name in self._entries:
            return self._entries[name]
        for resolver in self._resolvers:
            found = resolver(name)
            if found is not None:
                return found
        raise unknown_choice(self.kind, name, self._entries)

    def names(self) -> list[str]:
        """Registered names in registration order."""
        return list(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries


BACKBONES: Registry[Any] = Registry("backbone")
HEADS: Registry[Any] = Registry("head")
LOSSES: Registry[Any] = Registry("loss")
