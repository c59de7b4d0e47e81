# cython: annotation_typing=False
"""The projection's records: the immutable values the read API hands out, and the small
mutable records the reducer keeps (``_Run``, ``_Attempt``, ``_Task`` are C extension types
when built, declared in ``records.pxd``), with the functions that turn one into the other.

The read-API values are frozen: a reader holds a value, never a record the reducer may be
changing. ``to_builtins()`` gives each value's object in the snapshot JSON (schema v8).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from .. import model as m
from ..model import (
    ActorId,
    AttemptId,
    AttemptResultKind,
    BudgetDimension,
    Capability,
    EventFilter,
    LedgerEntryId,
    Role,
    RunInstance,
    RunState,
    SubscriptionId,
    TaskId,
    TaskSpec,
    TenantId,
)
from ..model._base import _WireEnum

__all__ = [
    "TaskRecord",
    "RunStateHistoryEntry",
    "AttemptHistoryEntry",
    "LeaseMetadata",
    "BudgetRecord",
    "SubscriptionRecord",
    "ActorRecord",
    "TenantRecord",
    "RoleAssignmentRecord",
    "CapabilityGrantRecord",
    "LedgerEntryRecord",
    "capability_key",
]

_SCHEDULED = RunState.SCHEDULED


# =========================================================================================
# Read-API values (immutable)
# =========================================================================================
def _builtin(value: Any) -> Any:
    """A record field in the snapshot's JSON shape."""
    if value is None or type(value) in (int, str, bool):
        return value
    if isinstance(value, (bytes, bytearray)):
        return list(value)
    if isinstance(value, _WireEnum):
        return value.value
    if isinstance(value, tuple):
        return [_builtin(v) for v in value]
    return value.to_builtins()  # ids, Role, Capability, EventFilter, TaskSpec


class _Record:
    """Base of the frozen read-API records: ``to_builtins()`` gives the snapshot JSON shape."""

    __slots__ = ()

    def to_builtins(self) -> dict[str, Any]:
        """This record as the matching object of the snapshot JSON (schema v8)."""
        return {f.name: _builtin(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]




@dataclass(frozen=True, slots=True)
class TaskRecord(_Record):
    """A task as the projection holds it. ``updated_at`` is never set by any event."""

    task_spec: TaskSpec
    created_at: int
    updated_at: int | None = None
    canceled_at: int | None = None


class RunStateHistoryEntry(NamedTuple):
    """One step of a run's state history, ``(from_state, to, timestamp)``; the first entry
    is ``(None, Scheduled, created_at)``. A tuple: unpacks and compares like one."""

    from_state: RunState | None
    to: RunState
    timestamp: int

    def to_builtins(self) -> dict[str, Any]:
        """The snapshot JSON shape (the key of ``from_state`` is ``"from"``)."""
        f = self.from_state
        return {"from": None if f is None else f.value, "to": self.to.value, "timestamp": self.timestamp}


@dataclass(frozen=True, slots=True)
class AttemptHistoryEntry(_Record):
    """One attempt of a run; ``finished_at``/``result``/``error``/``output`` stay ``None``
    until it finishes (outcome normalised, see :func:`~actionqueue.state.rules.normalize_attempt_outcome`)."""

    attempt_id: AttemptId
    started_at: int
    finished_at: int | None = None
    result: AttemptResultKind | None = None
    error: str | None = None
    output: bytes | None = None


@dataclass(frozen=True, slots=True)
class LeaseMetadata(_Record):
    """The active lease of a run: owner, expiry, when acquired and last heartbeat."""

    owner: str
    expiry: int
    acquired_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class BudgetRecord(_Record):
    """A budget of a task in one dimension. ``exhausted`` is set by consumption reaching the
    limit (or a ``BudgetExhausted`` event) and cleared only by replenishment."""

    task_id: TaskId
    dimension: BudgetDimension
    limit: int
    consumed: int
    allocated_at: int
    exhausted: bool


@dataclass(frozen=True, slots=True)
class SubscriptionRecord(_Record):
    """An event subscription of a task."""

    subscription_id: SubscriptionId
    task_id: TaskId
    filter: EventFilter
    created_at: int
    triggered_at: int | None = None
    canceled_at: int | None = None


@dataclass(frozen=True, slots=True)
class ActorRecord(_Record):
    """A registered actor (remote worker)."""

    actor_id: ActorId
    identity: str
    capabilities: tuple[str, ...]
    department: str | None
    heartbeat_interval_secs: int
    tenant_id: TenantId | None
    registered_at: int
    last_heartbeat_at: int | None = None
    deregistered_at: int | None = None


@dataclass(frozen=True, slots=True)
class TenantRecord(_Record):
    """A tenant."""

    tenant_id: TenantId
    name: str
    created_at: int


@dataclass(frozen=True, slots=True)
class RoleAssignmentRecord(_Record):
    """The role of an actor in a tenant (one per actor and tenant; the latest wins)."""

    actor_id: ActorId
    role: Role
    tenant_id: TenantId
    assigned_at: int


@dataclass(frozen=True, slots=True)
class CapabilityGrantRecord(_Record):
    """A capability granted to an actor in a tenant; ``revoked_at`` set once revoked."""

    actor_id: ActorId
    capability: Capability
    tenant_id: TenantId
    granted_at: int
    revoked_at: int | None = None


@dataclass(frozen=True, slots=True)
class LedgerEntryRecord(_Record):
    """One appended ledger entry (append-only; duplicate ids are kept)."""

    entry_id: LedgerEntryId
    tenant_id: TenantId
    ledger_key: str
    actor_id: ActorId | None
    payload: bytes
    timestamp: int


def capability_key(capability: Capability) -> str:
    """The key a grant is stored under: the unit variant name (``"CanSubmit"``) or
    ``"Custom:<name>"``."""
    return "Custom:" + capability.name if capability.is_custom else capability.name


# =========================================================================================
# The reducer's mutable records
# =========================================================================================
class _Run:
    """A run: the immutable parts stay in ``base`` (the RunInstance of RunCreated)."""

    __slots__ = (
        "base",  # RunInstance as created: id, task_id, created_at, scheduled_at, effective_priority
        "state",
        "attempt_id",  # active attempt or None
        "attempt_count",
        "changed_at",  # last_state_change_at
        "history",  # list of (from_state | None, to_state, timestamp); None once trimmed
        "attempts",  # list of _Attempt; None once trimmed
        "lease_owner",  # None when no active lease; the next three are then meaningless
        "lease_expiry",
        "lease_acquired_at",
        "lease_updated_at",
    )

    def __init__(self, base: RunInstance):
        self.base = base
        self.state: RunState = _SCHEDULED
        self.attempt_id: AttemptId | None = base.current_attempt_id
        self.attempt_count: int = base.attempt_count
        self.changed_at: int = base.last_state_change_at
        self.history: list[tuple[RunState | None, RunState, int]] | None = [(None, _SCHEDULED, base.created_at)]
        self.attempts: list[_Attempt] | None = []
        self.lease_owner: str | None = None
        self.lease_expiry: int = 0  # with lease_owner None, this and the next two mean nothing
        self.lease_acquired_at: int = 0
        self.lease_updated_at: int = 0


class _Attempt:
    __slots__ = ("attempt_id", "started_at", "finished_at", "result", "error", "output")

    def __init__(self, attempt_id: AttemptId, started_at: int):
        self.attempt_id = attempt_id
        self.started_at = started_at
        self.finished_at: int | None = None
        self.result: AttemptResultKind | None = None
        self.error: str | None = None
        self.output: bytes | None = None


class _Task:
    __slots__ = ("spec", "created_at", "canceled_at")

    def __init__(self, spec: TaskSpec, created_at: int):
        self.spec = spec
        self.created_at = created_at
        self.canceled_at: int | None = None


class _Budget:
    __slots__ = ("task_id", "dimension", "limit", "consumed", "allocated_at", "exhausted")

    def __init__(self, task_id: TaskId, dimension: BudgetDimension, limit: int, allocated_at: int):
        self.task_id = task_id
        self.dimension = dimension
        self.limit = limit
        self.consumed = 0
        self.allocated_at = allocated_at
        self.exhausted = False


class _Subscription:
    __slots__ = ("subscription_id", "task_id", "filter", "created_at", "triggered_at", "canceled_at")

    def __init__(self, subscription_id: SubscriptionId, task_id: TaskId, filter: EventFilter, created_at: int):
        self.subscription_id = subscription_id
        self.task_id = task_id
        self.filter = filter
        self.created_at = created_at
        self.triggered_at: int | None = None
        self.canceled_at: int | None = None


class _Actor:
    __slots__ = ("event", "last_heartbeat_at", "deregistered_at")

    def __init__(self, event: m.ActorRegistered):
        self.event = event  # the ActorRegistered event: every registration field + registered_at
        self.last_heartbeat_at: int | None = None
        self.deregistered_at: int | None = None


def _attempt_records(entries: Iterable[AttemptHistoryEntry]) -> list[_Attempt]:
    """Attempt records from history entries (snapshot bootstrap)."""
    out = []
    for e in entries:
        a = _Attempt(e.attempt_id, e.started_at)
        a.finished_at, a.result, a.error, a.output = e.finished_at, e.result, e.error, e.output
        out.append(a)
    return out


def _put_lease(rec: _Run, metadata: LeaseMetadata) -> None:
    """Give ``rec`` the active lease ``metadata`` describes (snapshot bootstrap)."""
    rec.lease_owner = metadata.owner
    rec.lease_expiry = metadata.expiry
    rec.lease_acquired_at = metadata.acquired_at
    rec.lease_updated_at = metadata.updated_at


_RUN_INSTANCE_SETTERS = tuple(RunInstance.__dict__[name].__set__ for name, _ in RunInstance.__aq_fields__)
_new_object = object.__new__


def _run_instance_view(rec: _Run) -> RunInstance:
    """The run as a RunInstance value.

    Built without constructor validation: the reducer accepts states the constructor refuses
    (e.g. Ready with ``scheduled_at > created_at``, vector ``replay/invalid/s06``), exactly as
    Rust's ``transition_to`` does not re-check what its constructor checks.
    """
    base = rec.base
    obj = _new_object(RunInstance)
    values = (
        base.id,
        base.task_id,
        rec.state,
        rec.attempt_id,
        rec.attempt_count,
        base.created_at,
        base.scheduled_at,
        base.effective_priority,
        rec.changed_at,
    )
    for set_slot, value in zip(_RUN_INSTANCE_SETTERS, values):
        set_slot(obj, value)
    return obj


def _attempt_view(a: _Attempt) -> AttemptHistoryEntry:
    return AttemptHistoryEntry(a.attempt_id, a.started_at, a.finished_at, a.result, a.error, a.output)


def _task_view(t: _Task) -> TaskRecord:
    return TaskRecord(t.spec, t.created_at, None, t.canceled_at)


def _budget_view(b: _Budget) -> BudgetRecord:
    return BudgetRecord(b.task_id, b.dimension, b.limit, b.consumed, b.allocated_at, b.exhausted)


def _subscription_view(s: _Subscription) -> SubscriptionRecord:
    return SubscriptionRecord(s.subscription_id, s.task_id, s.filter, s.created_at, s.triggered_at, s.canceled_at)


def _actor_view(a: _Actor) -> ActorRecord:
    e = a.event
    return ActorRecord(
        e.actor_id,
        e.identity,
        e.capabilities,
        e.department,
        e.heartbeat_interval_secs,
        e.tenant_id,
        e.timestamp,
        a.last_heartbeat_at,
        a.deregistered_at,
    )
