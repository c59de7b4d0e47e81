"""The event model: every type a WAL v5 record can carry, as immutable Python values.

This module is the single description of the wire schema. Each struct-like class is a
frozen, slotted dataclass whose annotations say how every field is encoded
(``U64``, ``U32``, ``I32``, ``U8`` are ``int`` to a type checker and name the postcard
integer encoding to the codecs). Both codec backends and the JSON mapping are built
from these annotations by :mod:`.schema`; nothing else lists fields.

Rust enums with data are a base class plus one class per variant, in variant order
(``RunPolicy`` -> ``OncePolicy``/``RepeatPolicy``/``CronPolicy``; ``EventFilter``;
``Event`` -> the 31 event classes). Unit-only enums are :class:`enum.Enum` subclasses
whose values are the serde names. ``Role`` and ``Capability`` (unit variants plus one
``Custom(String)``) are small value classes.

Laid out as: ``_base`` (the bases, the wire integer kinds), ``ids`` (identifier types,
native or pure), ``schema`` (annotations -> wire specs), ``types`` (enums and nested
values), ``events`` (the 31 kinds, ``WalEvent``), ``json`` (serde_json's shape, bound into
every type's ``to_json`` & co. when this package is imported) and ``cron``.
"""

from __future__ import annotations

from . import json as _json  # noqa: F401 - binds the JSON mapping (types call down, never up)
from ._base import I32, U8, U32, U64
from .events import (
    ActorDeregistered,
    ActorHeartbeat,
    ActorRegistered,
    AttemptFinished,
    AttemptStarted,
    BudgetAllocated,
    BudgetConsumed,
    BudgetExhausted,
    BudgetReplenished,
    CapabilityGranted,
    CapabilityRevoked,
    DependencyDeclared,
    EVENT_TYPES,
    EnginePaused,
    EngineResumed,
    Event,
    LeaseAcquired,
    LeaseExpired,
    LeaseHeartbeat,
    LeaseReleased,
    LedgerEntryAppended,
    RoleAssigned,
    RunCanceled,
    RunCreated,
    RunResumed,
    RunStateChanged,
    RunSuspended,
    SubscriptionCanceled,
    SubscriptionCreated,
    SubscriptionTriggered,
    TaskCanceled,
    TaskCreated,
    TenantCreated,
    WalEvent,
)
from .ids import (
    ActorId,
    AttemptId,
    LedgerEntryId,
    RunId,
    SubscriptionId,
    TaskId,
    TenantId,
)
from .types import (
    AttemptResultKind,
    BudgetDimension,
    BudgetThresholdFilter,
    Capability,
    ConcurrencyKeyHoldPolicy,
    CronPolicy,
    CustomFilter,
    EventFilter,
    OncePolicy,
    RepeatPolicy,
    Role,
    RunInstance,
    RunPolicy,
    RunState,
    RunStateChangedFilter,
    SafetyLevel,
    TaskCompletedFilter,
    TaskConstraints,
    TaskMetadata,
    TaskPayload,
    TaskSpec,
)

__all__ = [
    "U8", "U32", "U64", "I32",
    "TaskId", "RunId", "AttemptId", "ActorId", "TenantId", "LedgerEntryId", "SubscriptionId",
    "RunState", "AttemptResultKind", "BudgetDimension", "ConcurrencyKeyHoldPolicy", "SafetyLevel",
    "Role", "Capability",
    "TaskPayload", "RunPolicy", "OncePolicy", "RepeatPolicy", "CronPolicy",
    "TaskConstraints", "TaskMetadata", "TaskSpec", "RunInstance",
    "EventFilter", "TaskCompletedFilter", "RunStateChangedFilter", "BudgetThresholdFilter",
    "CustomFilter",
    "Event", "WalEvent", "EVENT_TYPES",
    # the 31 event kinds, in variant order (a static list, so type checkers see them;
    # tests/test_typing.py checks it against EVENT_TYPES)
    "TaskCreated",
    "RunCreated",
    "RunStateChanged",
    "AttemptStarted",
    "AttemptFinished",
    "TaskCanceled",
    "RunCanceled",
    "LeaseAcquired",
    "LeaseHeartbeat",
    "LeaseExpired",
    "LeaseReleased",
    "EnginePaused",
    "EngineResumed",
    "DependencyDeclared",
    "RunSuspended",
    "RunResumed",
    "BudgetAllocated",
    "BudgetConsumed",
    "BudgetExhausted",
    "BudgetReplenished",
    "SubscriptionCreated",
    "SubscriptionTriggered",
    "SubscriptionCanceled",
    "ActorRegistered",
    "ActorDeregistered",
    "ActorHeartbeat",
    "TenantCreated",
    "RoleAssigned",
    "CapabilityGranted",
    "CapabilityRevoked",
    "LedgerEntryAppended",
]
