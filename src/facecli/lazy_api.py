"""A package's public names imported on first use (PEP 562), so that importing it does not load PyTorch."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module


def lazy_api(package: str, api: dict[str, str]) -> Callable[[str], object]:
    """A module `__getattr__` that imports each name of `api` (name -> module) when first asked for."""

    def __getattr__(name: str) -> object:
        if name in api:
            return getattr(import_module(api[name]), name)
        raise AttributeError(f"module '{package}' has no attribute '{name}'")

    return __getattr__
