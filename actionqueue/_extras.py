"""Optional dependencies (package extras), imported on first use: a missing one raises
:class:`~actionqueue.errors.MissingExtra`, one line with the install command."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingExtra

__all__ = ["require", "require_pyarrow"]


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingExtra` naming ``extra`` for ``purpose``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(module, extra, purpose) from None


def require_pyarrow(purpose: str = "the Arrow export") -> ModuleType:
    """``pyarrow``, the ``arrow`` extra."""
    return require("pyarrow", "arrow", purpose)
