"""The identifier types: 16 raw bytes each, one class per Rust newtype over ``uuid::Uuid``.

The native ones (``_ids.pyx``) when built, the pure-Python twins (``_ids_py.py``)
otherwise; both share ``_ids_common.py``. ``IdBase`` is their common base.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import _backend

__all__ = ["IdBase", "TaskId", "RunId", "AttemptId", "ActorId", "TenantId", "LedgerEntryId", "SubscriptionId"]

if not TYPE_CHECKING and _backend.NATIVE:
    # The first native module the package imports: a build that does not load here
    # (another interpreter's, a missing library) sends the whole package to the twins.
    try:
        from . import _ids as _native_probe  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the install
        _backend.fall_back(str(exc))

if TYPE_CHECKING or _backend.NATIVE:  # type checkers see one set of id types
    from ._ids import (
        ActorId,
        AttemptId,
        IdBase,
        LedgerEntryId,
        RunId,
        SubscriptionId,
        TaskId,
        TenantId,
    )
else:
    from ._ids_py import (  # type: ignore[assignment]
        ActorId,
        AttemptId,
        IdBase,
        LedgerEntryId,
        RunId,
        SubscriptionId,
        TaskId,
        TenantId,
    )
