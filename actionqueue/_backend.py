"""Which implementation backs the package: native (Cython) modules or the pure-Python twins.

Decided once, at import: ``ACTIONQUEUE_PUREPYTHON=1`` selects the pure-Python twins;
otherwise the native modules are used when all of them are built. When they are not (a
source install without a C compiler, a build that failed), the package still works on the
pure-Python twins and :func:`warn_unavailable` says so in one line, once, at import.
"""

from __future__ import annotations

import os
import warnings

#: The native modules; they are built together and used together, or not at all.
NATIVE_MODULES = ("model._ids", "codec._codec", "log._walk", "snapshot._sjson")

#: Set when the user asked for the pure-Python implementation.
FORCED_PURE = bool(os.environ.get("ACTIONQUEUE_PUREPYTHON"))

#: Why the native modules are not used (None when they are).
UNAVAILABLE_REASON: str | None = None

if FORCED_PURE:
    NATIVE = False
    UNAVAILABLE_REASON = "ACTIONQUEUE_PUREPYTHON is set"
else:
    import importlib.machinery

    def _built(name: str) -> bool:
        """Whether the extension ``name`` (dotted, below the package) is on disk: looked
        for, not imported (importing _codec here would import the model before this
        module has decided, and a subpackage would import its own __init__)."""
        *package, module = name.split(".")
        directory = os.path.join(os.path.dirname(os.path.abspath(__file__)), *package)
        return any(os.path.exists(os.path.join(directory, module + suffix))
                   for suffix in importlib.machinery.EXTENSION_SUFFIXES)

    # all or none: a half-built install runs pure Python
    _missing = [n for n in NATIVE_MODULES if not _built(n)]
    if _missing:  # pragma: no cover - depends on the install
        NATIVE = False
        UNAVAILABLE_REASON = "not built: " + ", ".join(f"{__package__}.{n}" for n in _missing)
    else:
        # Built for this interpreter (the suffixes carry its ABI). Whether they load is
        # seen when the first of them is imported (actionqueue.model.ids, before any other
        # module reads NATIVE), which calls fall_back() if it does not.
        NATIVE = True


def fall_back(reason: str) -> None:
    """The native modules are built but do not load (``reason``): run the pure-Python
    twins. Called only by the first native import, before anything else has chosen."""
    global NATIVE, UNAVAILABLE_REASON
    NATIVE = False
    UNAVAILABLE_REASON = reason


class NativeModulesUnavailable(RuntimeWarning):
    """Warned once at import when the native modules are missing and the pure-Python
    implementation runs instead (filter it, or set ``ACTIONQUEUE_PUREPYTHON=1``)."""


def unavailable_message() -> str:
    """The one-line warning for an install whose native modules are not available."""
    return (
        f"actionqueue: native modules not available ({UNAVAILABLE_REASON}); running the pure-Python "
        "implementation, several times slower. Install a wheel, or rebuild with a C compiler "
        "(pip install --force-reinstall --no-binary actionqueue actionqueue); "
        "set ACTIONQUEUE_PUREPYTHON=1 to choose pure Python and silence this."
    )


def warn_unavailable() -> None:
    """Emit :class:`NativeModulesUnavailable` (one line, no source excerpt) when the
    native modules were expected but are missing; nothing otherwise."""
    if NATIVE or FORCED_PURE:
        return
    warnings.warn_explicit(
        unavailable_message(),
        NativeModulesUnavailable,
        filename=os.path.join(os.path.dirname(os.path.abspath(__file__)), "__init__.py"),
        lineno=0,  # no source line is printed under the message
        module=__package__,
        registry=_WARNED,
    )


_WARNED: dict = {}


#: Modules that are plain Python compiled into native modules when built (the .py is their
#: only source): with the pure-Python backend, the .py is what runs. In import order.
COMPILED_PY_MODULES = ("actionqueue.state.rules", "actionqueue.state.records", "actionqueue.state.projection", "actionqueue.state.reducer")


def _run_sources() -> None:
    """Under ``ACTIONQUEUE_PUREPYTHON``, import :data:`COMPILED_PY_MODULES` from their .py
    files even when a compiled build sits next to them (the suite runs both)."""
    import importlib.machinery
    import importlib.util
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    for name in COMPILED_PY_MODULES:
        if name in sys.modules:
            continue
        path = os.path.join(here, *name.split(".")[1:]) + ".py"
        if not os.path.exists(path):  # pragma: no cover - an install without sources
            continue
        loader = importlib.machinery.SourceFileLoader(name, path)
        spec = importlib.util.spec_from_file_location(name, path, loader=loader)
        assert spec is not None, path  # a source file with a loader always has a spec
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise


def compiled(module) -> bool:
    """Whether ``module`` (one of :data:`COMPILED_PY_MODULES`) runs as a native build."""
    return not str(getattr(module, "__file__", "")).endswith(".py")
