"""The event model: every type a WAL v5 record can carry, as immutable Python values.

This module is the single description of the wire schema. Each struct-like class is a
frozen, slotted dataclass whose annotations say how every field is encoded
(``U64``, ``U32``, ``I32``, ``U8`` are ``int`` to a type checker and name the postcard
integer encoding to the codecs). Both codec backends and the JSON mapping are built
from these annotations by :mod:`actionqueue._schema`; nothing else lists fields.

Rust enums with data are a base class plus one class per variant, in variant order
(``RunPolicy`` -> ``OncePolicy``/``RepeatPolicy``/``CronPolicy``; ``EventFilter``;
``Event`` -> the 31 event classes). Unit-only enums are :class:`enum.Enum` subclasses
whose values are the serde names. ``Role`` and ``Capability`` (unit variants plus one
``Custom(String)``) are small value classes.
"""

from __future__ import annotations

import enum
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Callable, ClassVar, Optional, TypeVar

if sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:  # 3.10: type checkers read the branch above; at run time the marker does nothing

    def dataclass_transform(**_: Any) -> Callable[[Any], Any]:
        return lambda decorated: decorated

from . import _backend, _schema
from .errors import ValidationError

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

# --------------------------------------------------------------------------------------
# Wire integer kinds. To a type checker these are plain ``int``.
# --------------------------------------------------------------------------------------
U8 = Annotated[int, "u8"]
U32 = Annotated[int, "u32"]
U64 = Annotated[int, "u64"]
I32 = Annotated[int, "i32"]

_U32_MAX = 0xFFFFFFFF
_U64_MAX = 0xFFFFFFFFFFFFFFFF



from ._serde import Serde as _Serde


class _Value(_Serde):
    """Base of the struct-like model classes (frozen, slotted dataclasses).

    Construction coerces and checks every field against its wire type (installed by
    :mod:`actionqueue._schema` as ``__aq_coerce__``), then runs the class's ``_validate``
    (the invariants Rust enforces on construction and on decode).
    """

    __slots__ = ()

    def __post_init__(self) -> None:
        type(self).__aq_coerce__(self)  # type: ignore[attr-defined]


_V = TypeVar("_V", bound="_Value")


# dataclass_transform: type checkers see each decorated class's constructor and frozenness.
@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def _value(cls: type[_V]) -> type[_V]:
    assert issubclass(cls, _Value), cls
    return _schema.install(dataclass(frozen=True, slots=True)(cls))


# --------------------------------------------------------------------------------------
# Identifiers: 16 raw bytes, one class per Rust newtype over uuid::Uuid.
# --------------------------------------------------------------------------------------
if TYPE_CHECKING or _backend.NATIVE:  # type checkers see one set of id types
    from ._ids import (
        ActorId,
        AttemptId,
        IdBase as _Id,  # noqa: F401 - the base the schema and JSON code test against
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
        IdBase as _Id,  # noqa: F401 - the base the schema and JSON code test against
        LedgerEntryId,
        RunId,
        SubscriptionId,
        TaskId,
        TenantId,
    )


# --------------------------------------------------------------------------------------
# Unit enums: members named in Python style, values are the serde (Rust) names, and the
# declaration order is the postcard variant index.
# --------------------------------------------------------------------------------------
class _WireEnum(_Serde, enum.Enum):
    # Members are singletons compared by identity; hash them by identity too (in C), not
    # through Enum's Python-level hash of the name: they key the reducer's hot lookups.
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self.name}"

    @property
    def index(self) -> int:
        """Postcard variant index of this member."""
        return type(self)._index_of[self]  # type: ignore[attr-defined]


def _index_members(cls):
    cls._index_of = {m: i for i, m in enumerate(cls)}
    return cls


@_index_members
class RunState(_WireEnum):
    """State of a run in the run state machine."""

    SCHEDULED = "Scheduled"
    READY = "Ready"
    LEASED = "Leased"
    RUNNING = "Running"
    RETRY_WAIT = "RetryWait"
    SUSPENDED = "Suspended"
    COMPLETED = "Completed"
    FAILED = "Failed"
    CANCELED = "Canceled"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_STATES


_TERMINAL_STATES = frozenset({RunState.COMPLETED, RunState.FAILED, RunState.CANCELED})


@_index_members
class AttemptResultKind(_WireEnum):
    """Outcome of a finished attempt."""

    SUCCESS = "Success"
    FAILURE = "Failure"
    TIMEOUT = "Timeout"
    SUSPENDED = "Suspended"


@_index_members
class BudgetDimension(_WireEnum):
    """What a budget counts."""

    TOKEN = "Token"
    COST_CENTS = "CostCents"
    TIME_SECS = "TimeSecs"


@_index_members
class ConcurrencyKeyHoldPolicy(_WireEnum):
    """Whether a run keeps its concurrency key while waiting to retry."""

    HOLD_DURING_RETRY = "HoldDuringRetry"
    RELEASE_ON_RETRY = "ReleaseOnRetry"


@_index_members
class SafetyLevel(_WireEnum):
    """Side-effect class of a task."""

    PURE = "Pure"
    IDEMPOTENT = "Idempotent"
    TRANSACTIONAL = "Transactional"


# --------------------------------------------------------------------------------------
# Role / Capability: unit variants plus Custom(String).
# --------------------------------------------------------------------------------------
class _NamedVariant(_Serde):
    """A Rust enum of unit variants plus a final ``Custom(String)`` variant.

    ``index`` is the postcard variant index; ``name`` is the Rust variant name for the
    unit variants and the custom name for ``Custom``.
    """

    __slots__ = ("index", "name")
    _UNIT_NAMES: ClassVar[tuple[str, ...]] = ()
    _units: ClassVar[tuple[Any, ...]] = ()
    index: int
    name: str

    def __init__(self, index: int, name: str):
        n = len(self._UNIT_NAMES)
        if not isinstance(index, int) or not 0 <= index <= n:
            raise ValidationError(f"{type(self).__name__} variant index must be 0..{n}")
        if not isinstance(name, str):
            raise TypeError(f"{type(self).__name__} name must be str")
        if index < n and name != self._UNIT_NAMES[index]:
            raise ValidationError(f"{type(self).__name__} variant {index} is {self._UNIT_NAMES[index]}")
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "name", name)

    @classmethod
    def custom(cls, name: str):
        """The ``Custom(name)`` variant; the name must not be empty (as in Rust's ``custom()``)."""
        if not isinstance(name, str):
            raise TypeError(f"custom {cls.__name__.lower()} name must be str")
        if not name:
            raise ValidationError(f"custom {cls.__name__.lower()} name must not be empty")
        return cls(len(cls._UNIT_NAMES), name)

    @classmethod
    def from_name(cls, name: str):
        """The unit variant called ``name`` (its Rust name, e.g. ``"Operator"``)."""
        try:
            return cls._units[cls._UNIT_NAMES.index(name)]
        except ValueError:
            raise ValidationError(f"unknown {cls.__name__}: {name!r}") from None

    @property
    def is_custom(self) -> bool:
        return self.index == len(self._UNIT_NAMES)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return self.index == other.index and self.name == other.name  # type: ignore[attr-defined]
        return NotImplemented

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.index, self.name))

    def __repr__(self) -> str:
        if self.is_custom:
            return f"{type(self).__name__}.custom({self.name!r})"
        return f"{type(self).__name__}.{_upper_snake(self.name)}"

    def __reduce__(self):
        return (type(self), (self.index, self.name))


def _upper_snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.upper())
    return "".join(out)


def _named_units(cls):
    cls._units = tuple(cls(i, n) for i, n in enumerate(cls._UNIT_NAMES))
    for unit in cls._units:
        setattr(cls, _upper_snake(unit.name), unit)
    return cls


@_named_units
class Role(_NamedVariant):
    """An actor's role within a tenant: ``Role.OPERATOR``, ``Role.AUDITOR``,
    ``Role.GATEKEEPER`` or ``Role.custom(name)``."""

    __slots__ = ()
    _UNIT_NAMES = ("Operator", "Auditor", "Gatekeeper")
    OPERATOR: ClassVar["Role"]
    AUDITOR: ClassVar["Role"]
    GATEKEEPER: ClassVar["Role"]


@_named_units
class Capability(_NamedVariant):
    """A capability granted to an actor: ``Capability.CAN_SUBMIT`` ... or ``Capability.custom(name)``."""

    __slots__ = ()
    _UNIT_NAMES = ("CanSubmit", "CanExecute", "CanReview", "CanApprove", "CanCancel")
    CAN_SUBMIT: ClassVar["Capability"]
    CAN_EXECUTE: ClassVar["Capability"]
    CAN_REVIEW: ClassVar["Capability"]
    CAN_APPROVE: ClassVar["Capability"]
    CAN_CANCEL: ClassVar["Capability"]


# --------------------------------------------------------------------------------------
# Task specification
# --------------------------------------------------------------------------------------
@_value
class TaskPayload(_Value):
    """The opaque bytes a task carries, with an optional MIME content type."""

    bytes: bytes = b""
    content_type: Optional[str] = None



class RunPolicy(_Value):
    """How often a task runs: :class:`OncePolicy`, :class:`RepeatPolicy` or :class:`CronPolicy`."""

    __slots__ = ()
    ONCE: ClassVar["OncePolicy"]

    @staticmethod
    def once() -> "OncePolicy":
        return RunPolicy.ONCE

    @staticmethod
    def repeat(count: int, interval_secs: int) -> "RepeatPolicy":
        return RepeatPolicy(count, interval_secs)

    @staticmethod
    def cron(expression: str, max_occurrences: Optional[int] = None) -> "CronPolicy":
        return CronPolicy(expression, max_occurrences)


@_value
class OncePolicy(RunPolicy):
    """Run the task exactly once (``RunPolicy::Once``)."""


RunPolicy.ONCE = OncePolicy()


@_value
class RepeatPolicy(RunPolicy):
    """Run the task ``count`` times, ``interval_secs`` apart (``RunPolicy::Repeat``)."""

    count: U32
    interval_secs: U64


    def _validate(self) -> None:
        if self.count == 0:
            raise ValidationError("invalid repeat count: 0 (must be >= 1)")
        if self.interval_secs == 0:
            raise ValidationError("invalid repeat interval_secs: 0 (must be >= 1)")


@_value
class CronPolicy(RunPolicy):
    """Run the task on a cron schedule (``RunPolicy::Cron``, 7-field cron 0.12 syntax)."""

    expression: str
    max_occurrences: Optional[U32] = None


    def _validate(self) -> None:
        from ._cron import validate_cron_expression

        try:
            validate_cron_expression(self.expression)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        if self.max_occurrences == 0:
            raise ValidationError("cron max_occurrences must not be zero")


@_value
class TaskConstraints(_Value):
    """Execution constraints of a task."""

    max_attempts: U32 = 1
    timeout_secs: Optional[U64] = None
    concurrency_key: Optional[str] = None
    concurrency_key_hold_policy: ConcurrencyKeyHoldPolicy = ConcurrencyKeyHoldPolicy.HOLD_DURING_RETRY
    safety_level: SafetyLevel = SafetyLevel.PURE
    required_capabilities: Optional[tuple[str, ...]] = None


    def _validate(self) -> None:
        if self.max_attempts == 0:
            raise ValidationError("invalid max_attempts value: 0 (must be >= 1)")
        if self.timeout_secs == 0:
            raise ValidationError("timeout_secs must not be zero")
        if self.concurrency_key == "":
            raise ValidationError("concurrency key must not be an empty string")
        caps = self.required_capabilities
        if caps is not None:
            if not caps:
                raise ValidationError("required capabilities list must not be empty")
            if "" in caps:
                raise ValidationError("required_capabilities contains an empty string")


@_value
class TaskMetadata(_Value):
    """Descriptive metadata of a task."""

    tags: tuple[str, ...] = ()
    priority: I32 = 0
    description: Optional[str] = None



_DEFAULT_CONSTRAINTS = TaskConstraints()
_DEFAULT_METADATA = TaskMetadata()


@_value
class TaskSpec(_Value):
    """A task as submitted: identity, payload, run policy, constraints and metadata."""

    id: TaskId
    payload: TaskPayload = field(default_factory=TaskPayload)
    run_policy: RunPolicy = RunPolicy.ONCE
    constraints: TaskConstraints = _DEFAULT_CONSTRAINTS
    metadata: TaskMetadata = _DEFAULT_METADATA
    parent_task_id: Optional[TaskId] = None
    tenant_id: Optional[TenantId] = None


    def _validate(self) -> None:
        if self.id.is_nil:
            raise ValidationError(f"invalid task identifier for task admission: {self.id}")
        # Rust validates policy and constraints again here; our nested values were
        # validated when they were built or decoded, so this adds nothing.


# --------------------------------------------------------------------------------------
# Run instance
# --------------------------------------------------------------------------------------
@_value
class RunInstance(_Value):
    """A run of a task as the scheduler created it."""

    id: RunId
    task_id: TaskId
    state: RunState
    current_attempt_id: Optional[AttemptId]
    attempt_count: U32
    created_at: U64
    scheduled_at: U64
    effective_priority: I32
    last_state_change_at: U64


    def _validate(self) -> None:
        if self.id.is_nil:
            raise ValidationError("run_id must not be nil")
        if self.task_id.is_nil:
            raise ValidationError("task_id must not be nil")
        if self.state is not RunState.RUNNING and self.current_attempt_id is not None:
            raise ValidationError("active attempt_id is only valid in Running state")
        if self.state is RunState.READY and self.scheduled_at > self.created_at:
            raise ValidationError(
                f"Ready state requires scheduled_at ({self.scheduled_at}) <= created_at ({self.created_at})"
            )


# --------------------------------------------------------------------------------------
# Subscription filters
# --------------------------------------------------------------------------------------
class EventFilter(_Value):
    """What a subscription waits for (base of the four filter variants)."""

    __slots__ = ()


@_value
class TaskCompletedFilter(EventFilter):
    """Fires when the task completes (``EventFilter::TaskCompleted``)."""

    task_id: TaskId



@_value
class RunStateChangedFilter(EventFilter):
    """Fires when a run of the task reaches ``state`` (``EventFilter::RunStateChanged``)."""

    task_id: TaskId
    state: RunState



@_value
class BudgetThresholdFilter(EventFilter):
    """Fires when a budget dimension crosses ``threshold_pct`` (``EventFilter::BudgetThreshold``)."""

    task_id: TaskId
    dimension: BudgetDimension
    threshold_pct: U8



@_value
class CustomFilter(EventFilter):
    """Fires on a custom application event ``key`` (``EventFilter::Custom``)."""

    key: str


EventFilter._variants = (TaskCompletedFilter, RunStateChangedFilter, BudgetThresholdFilter, CustomFilter)  # type: ignore[attr-defined]
RunPolicy._variants = (OncePolicy, RepeatPolicy, CronPolicy)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------
# Events (WalEventType variants, in variant order)
# --------------------------------------------------------------------------------------
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
Event._variants = EVENT_TYPES  # type: ignore[attr-defined]
assert len(EVENT_TYPES) == 31


@_value
class WalEvent(_Value):
    """One WAL record's content: a sequence number and the event."""

    sequence: U64
    event: Event


    @property
    def kind(self) -> int:
        return self.event.kind

