"""Deferred imports: TensorFlow loads on first use, not on ``import hubtransfer``.

Importing TensorFlow takes seconds and prints start-up lines on stderr; the
command line's quick commands (``--version``, ``backbones``) and its one-line
errors should not pay for that.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

__all__ = ["tensorflow"]


class _LazyModule:
    """A stand-in that imports the named module on first attribute access."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attribute: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attribute)


if TYPE_CHECKING:
    import tensorflow
else:
    tensorflow = _LazyModule("tensorflow")
