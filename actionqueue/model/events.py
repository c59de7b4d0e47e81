"""The 31 event kinds (Rust's ``WalEventType`` variants, in variant order) and ``WalEvent``,
the content of one WAL record: a sequence number and an event."""

from __future__ import annotations

import sys
from dataclasses import field
from typing import Any, Callable, ClassVar, Optional, TypeVar

if sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:  # 3.10: type checkers read the branch above; at run time the marker does nothing

    def dataclass_transform(**_: Any) -> Callable[[Any], Any]:
        return lambda decorated: decorated

from ._base import U64, _Value
from .ids import ActorId, AttemptId, LedgerEntryId, RunId, SubscriptionId, TaskId, TenantId
from .types import (
    AttemptResultKind,
    BudgetDimension,
    Capability,
    EventFilter,
    Role,
    RunInstance,
    RunState,
    TaskSpec,
    _value,
)

__all__ = [
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


class Event(_Value):
    """Base class of the 31 event kinds. ``kind`` is the postcard variant index."""

    __slots__ = ()
    kind: ClassVar[int]

    @property
    def kind_name(self) -> str:
        """The Rust variant name, e.g. ``"RunStateChanged"``."""
        return type(self).__name__


_EVENT_TYPES: list[type[Event]] = []


_E = TypeVar("_E", bound="Event")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def _event(cls: type[_E]) -> type[_E]:
    cls = _value(cls)
    cls.kind = len(_EVENT_TYPES)
    _EVENT_TYPES.append(cls)
    return cls


@_event
class TaskCreated(Event):
    """A task was created with ``task_spec`` (variant 0)."""

    task_spec: TaskSpec
    timestamp: U64


@_event
class RunCreated(Event):
    """A run was created, in state Scheduled (variant 1)."""

    run_instance: RunInstance


@_event
class RunStateChanged(Event):
    """A run moved from ``previous_state`` to ``new_state`` along the run state machine."""

    run_id: RunId
    previous_state: RunState
    new_state: RunState
    timestamp: U64


@_event
class AttemptStarted(Event):
    """An attempt of a Running run started."""

    run_id: RunId
    attempt_id: AttemptId
    timestamp: U64


@_event
class AttemptFinished(Event):
    """The active attempt ended with ``result`` (an ``error`` for Failure/Timeout, an optional ``output``)."""

    run_id: RunId
    attempt_id: AttemptId
    result: AttemptResultKind
    error: Optional[str]
    output: Optional[bytes]
    timestamp: U64


@_event
class TaskCanceled(Event):
    """A task was marked canceled (its runs are not touched)."""

    task_id: TaskId
    timestamp: U64


@_event
class RunCanceled(Event):
    """A run was canceled from a non-terminal state."""

    run_id: RunId
    timestamp: U64


@_event
class LeaseAcquired(Event):
    """``owner`` leased the run until ``expiry`` (Unix seconds)."""

    run_id: RunId
    owner: str
    expiry: U64
    timestamp: U64


@_event
class LeaseHeartbeat(Event):
    """The lease holder extended the lease to ``expiry``."""

    run_id: RunId
    owner: str
    expiry: U64
    timestamp: U64


@_event
class LeaseExpired(Event):
    """The lease ran out (a Leased run goes back to Ready)."""

    run_id: RunId
    owner: str
    expiry: U64
    timestamp: U64


@_event
class LeaseReleased(Event):
    """The lease holder gave the lease back (a Leased run goes back to Ready)."""

    run_id: RunId
    owner: str
    expiry: U64
    timestamp: U64


@_event
class EnginePaused(Event):
    """The engine was paused: no new work is dispatched."""

    timestamp: U64


@_event
class EngineResumed(Event):
    """The engine was resumed after a pause."""

    timestamp: U64


@_event
class DependencyDeclared(Event):
    """``task_id`` depends on the tasks ``depends_on`` (declarations accumulate)."""

    task_id: TaskId
    depends_on: tuple[TaskId, ...]
    timestamp: U64


@_event
class RunSuspended(Event):
    """A Running run was suspended, with an optional ``reason``."""

    run_id: RunId
    reason: Optional[str]
    timestamp: U64


@_event
class RunResumed(Event):
    """A Suspended run was resumed (to Ready)."""

    run_id: RunId
    timestamp: U64


@_event
class BudgetAllocated(Event):
    """A task's budget in ``dimension`` was set to ``limit``."""

    task_id: TaskId
    dimension: BudgetDimension
    limit: U64
    timestamp: U64


@_event
class BudgetConsumed(Event):
    """``amount`` of a task's budget in ``dimension`` was used."""

    task_id: TaskId
    dimension: BudgetDimension
    amount: U64
    timestamp: U64


@_event
class BudgetExhausted(Event):
    """A task's budget in ``dimension`` ran out."""

    task_id: TaskId
    dimension: BudgetDimension
    timestamp: U64


@_event
class BudgetReplenished(Event):
    """A task's budget in ``dimension`` got ``new_limit`` and its consumption was reset."""

    task_id: TaskId
    dimension: BudgetDimension
    new_limit: U64
    timestamp: U64


@_event
class SubscriptionCreated(Event):
    """A task subscribed to the events ``filter`` selects."""

    subscription_id: SubscriptionId
    task_id: TaskId
    filter: EventFilter
    timestamp: U64


@_event
class SubscriptionTriggered(Event):
    """A subscription fired."""

    subscription_id: SubscriptionId
    timestamp: U64


@_event
class SubscriptionCanceled(Event):
    """A subscription was canceled."""

    subscription_id: SubscriptionId
    timestamp: U64


@_event
class ActorRegistered(Event):
    """An actor (a worker, a service) registered, with its identity and capabilities."""

    actor_id: ActorId
    identity: str
    capabilities: tuple[str, ...]
    department: Optional[str]
    heartbeat_interval_secs: U64
    tenant_id: Optional[TenantId]
    timestamp: U64


@_event
class ActorDeregistered(Event):
    """An actor deregistered."""

    actor_id: ActorId
    timestamp: U64


@_event
class ActorHeartbeat(Event):
    """An actor reported that it is alive."""

    actor_id: ActorId
    timestamp: U64


@_event
class TenantCreated(Event):
    """A tenant was created (or renamed)."""

    tenant_id: TenantId
    name: str
    timestamp: U64


@_event
class RoleAssigned(Event):
    """An actor got ``role`` in a tenant."""

    actor_id: ActorId
    role: Role
    tenant_id: TenantId
    timestamp: U64


@_event
class CapabilityGranted(Event):
    """An actor was granted ``capability`` in a tenant."""

    actor_id: ActorId
    capability: Capability
    tenant_id: TenantId
    timestamp: U64


@_event
class CapabilityRevoked(Event):
    """An actor's ``capability`` in a tenant was revoked."""

    actor_id: ActorId
    capability: Capability
    tenant_id: TenantId
    timestamp: U64


@_event
class LedgerEntryAppended(Event):
    """An entry was appended to a tenant's ledger under ``ledger_key``."""

    entry_id: LedgerEntryId
    tenant_id: TenantId
    ledger_key: str
    actor_id: Optional[ActorId]
    payload: bytes
    timestamp: U64


#: The 31 event classes, in postcard variant order (``EVENT_TYPES[e.kind] is type(e)``).
EVENT_TYPES: tuple[type[Event], ...] = tuple(_EVENT_TYPES)
Event._variants = EVENT_TYPES
assert len(EVENT_TYPES) == 31


@_value
class WalEvent(_Value):
    """One WAL record's content: a sequence number and the event."""

    sequence: U64
    event: Event

    @classmethod
    def of(cls, sequence: int, event: Event) -> WalEvent:
        """``WalEvent(sequence, event)`` for writers that number events they are handed
        (``append_next``): the event was checked when it was made, so only the two fields'
        types are checked here, not the event's fields again (a fifth of the cost). Anything
        unusual (an int subclass, a sequence out of range, not an event) takes the full
        constructor and its errors."""
        if type(sequence) is int and 0 <= sequence <= _U64_MAX and isinstance(event, Event):
            obj = _new(cls)
            _set_sequence(obj, sequence)
            _set_event(obj, event)
            return obj
        return cls(sequence, event)

    @property
    def kind(self) -> int:
        return self.event.kind


# WalEvent.of: a new record object with its two slots set directly (checked by ``of``)
_new = object.__new__
_set_sequence = WalEvent.__dict__["sequence"].__set__
_set_event = WalEvent.__dict__["event"].__set__
_U64_MAX = (1 << 64) - 1
