"""One way to name code that is imported only when first used: `Lazy("package.module:attribute")`.

The registries hold light specs (no torch) and reach the heavy part of a family or a task type through a `Lazy`: a
family's implementation, a task type's adapter and classical baselines."""

from __future__ import annotations

import importlib
from typing import Any


class Lazy:
    """A reference to `module:attribute`; calling it imports the module (once) and returns the attribute."""

    def __init__(self, target: str) -> None:
        module, _, attribute = target.partition(":")
        if not module or not attribute:
            raise ValueError(f"a lazy reference is 'package.module:attribute', got {target!r}")
        self.module, self.attribute = module, attribute
        self._loaded: Any = None

    def __call__(self) -> Any:
        if self._loaded is None:
            self._loaded = getattr(importlib.import_module(self.module), self.attribute)
        return self._loaded

    def __repr__(self) -> str:
        return f"Lazy({self.module}:{self.attribute})"
