"""Every public class and function (the names in ``actionqueue.__all__`` and in the
``__all__`` of the public modules) says what it is:
a docstring of its own, not one inherited or generated (a dataclass's signature line)."""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

import actionqueue as aq


#: Public modules whose ``__all__`` is checked besides the package's own.
MODULES = ["actionqueue", "actionqueue.scan", "actionqueue.wal", "actionqueue.segments", "actionqueue.state.reducer",
           "actionqueue.snapshot", "actionqueue.recovery", "actionqueue.state.authority", "actionqueue.errors",
           "actionqueue.metrics"]  # fmt: skip


def _public_callables() -> list[str]:
    out = []
    for mod in MODULES:
        module = importlib.import_module(mod)
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or callable(obj):
                out.append(f"{mod}:{name}")
    return out


def own_doc(obj) -> str | None:
    """The docstring ``obj`` itself defines (None when it only inherits or has none)."""
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__")
        # dataclasses generate "Name(field: type, ...)" when the class has no docstring
        if doc and re.fullmatch(re.escape(obj.__name__) + r"\(.*\)", doc.strip(), re.S):
            return None
        return doc
    return getattr(obj, "__doc__", None)


def test_all_names_exist() -> None:
    missing = [name for name in aq.__all__ if not hasattr(aq, name)]
    assert not missing


@pytest.mark.parametrize("target", _public_callables())
def test_public_name_has_a_docstring(target: str) -> None:
    mod, name = target.split(":")
    doc = own_doc(getattr(importlib.import_module(mod), name))
    assert doc and doc.strip(), f"{mod}.{name} has no docstring of its own"
