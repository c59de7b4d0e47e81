"""The model's value types: unit enums, roles and capabilities, task specs, run
instances, event filters.

Each struct-like class is a frozen, slotted dataclass whose annotations say how every field
is encoded (``U64``, ``U32``, ``I32``, ``U8`` are ``int`` to a type checker and name the
postcard integer encoding to the codecs). Both codec backends and the JSON mapping are
built from these annotations by :mod:`.schema`; nothing else lists fields.

Rust enums with data are a base class plus one class per variant, in variant order
(``RunPolicy`` -> ``OncePolicy``/``RepeatPolicy``/``CronPolicy``; ``EventFilter``). Unit-only
enums are :class:`enum.Enum` subclasses whose values are the serde names. ``Role`` and
``Capability`` (unit variants plus one ``Custom(String)``) are small value classes.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Optional, TypeVar

if sys.version_info >= (3, 11):
    from typing import dataclass_transform
else:  # 3.10: type checkers read the branch above; at run time the marker does nothing

    def dataclass_transform(**_: Any) -> Callable[[Any], Any]:
        return lambda decorated: decorated

from ..errors import ValidationError
from . import schema as _schema
from ._base import I32, U8, U32, U64, _index_members, _named_units, _NamedVariant, _Value, _WireEnum
from .cron import validate_cron_expression
from .ids import AttemptId, RunId, TaskId, TenantId

__all__ = [
    "RunState", "AttemptResultKind", "BudgetDimension", "ConcurrencyKeyHoldPolicy", "SafetyLevel",
    "Role", "Capability",
    "TaskPayload", "RunPolicy", "OncePolicy", "RepeatPolicy", "CronPolicy",
    "TaskConstraints", "TaskMetadata", "TaskSpec", "RunInstance",
    "EventFilter", "TaskCompletedFilter", "RunStateChangedFilter", "BudgetThresholdFilter",
    "CustomFilter",
]

_V = TypeVar("_V", bound="_Value")


# dataclass_transform: type checkers see each decorated class's constructor and frozenness.
@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def _value(cls: type[_V]) -> type[_V]:
    assert issubclass(cls, _Value), cls
    return _schema.install(dataclass(frozen=True, slots=True)(cls))


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


EventFilter._variants = (TaskCompletedFilter, RunStateChangedFilter, BudgetThresholdFilter, CustomFilter)
RunPolicy._variants = (OncePolicy, RepeatPolicy, CronPolicy)
