"""Which implementation backs the package: native (Cython) modules or the pure-Python twins.

Decided once, at import: ``ACTIONQUEUE_PUREPYTHON=1`` selects the pure-Python twins;
otherwise the native modules are used when they are built.
"""

from __future__ import annotations

import os

#: Set when the user asked for the pure-Python implementation.
FORCED_PURE = bool(os.environ.get("ACTIONQUEUE_PUREPYTHON"))

#: Why the native modules are not used (None when they are).
UNAVAILABLE_REASON: str | None = None

if FORCED_PURE:
    NATIVE = False
    UNAVAILABLE_REASON = "ACTIONQUEUE_PUREPYTHON is set"
else:
    try:
        from . import _ids  # noqa: F401 - probe: the native modules are built together
    except ImportError as exc:  # pragma: no cover - depends on the install
        NATIVE = False
        UNAVAILABLE_REASON = str(exc)
    else:
        NATIVE = True
