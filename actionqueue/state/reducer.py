# cython: annotation_typing=False
"""The replay reducer: folds WAL events into the projection the rest of the system reads.

:class:`ReplayReducer` ports ``ReplayReducer`` of the Rust crate ``actionqueue-storage``:
the same 31 event kinds, the same acceptance rules, the same rejections (as typed
exceptions, :class:`ReducerError` and its subclasses), and the same projection: tasks, runs
with their state and attempt history, leases, engine pause state, dependency declarations,
budgets, subscriptions, actors, tenants, role assignments, capability grants and the ledger.

Differences from Rust, on purpose (``shared/spec/decisions.md`` #10-#11):

* **Closing a lease on a Leased run is a recorded transition.** ``LeaseExpired`` and
  ``LeaseReleased`` on a run in ``Leased`` move it to ``Ready`` in both implementations. Rust
  writes no history entry (and leaves ``last_state_change_at`` alone), after which its
  snapshot builder refuses the projection (vector ``replay/invalid/s05``). Here the step is a
  normal transition: a ``Leased -> Ready`` history entry at the event's timestamp, and
  ``last_state_change_at`` set to it.
* **A rejected event changes nothing.** Rust checks almost everything before mutating, but a
  few ``CorruptedData`` paths (e.g. ``AttemptFinished`` for an attempt id whose first history
  entry is already finished) fail after the active attempt was cleared. Every check here runs
  before the first mutation.

Everything else, including Rust's quirks, is kept: the first event may not have sequence 0,
sequence gaps are fine, a re-used or lower sequence is ``InvalidTransition`` (not
``DuplicateEvent``), a run's task need not exist, events for unknown budgets, subscriptions,
actors and grants are ignored, and ``AttemptFinished`` outcomes are normalised (see
:func:`normalize_attempt_outcome`).

Internally the projection is plain dicts keyed by identifier objects holding small mutable
slotted records; the read API hands out immutable values (:class:`~actionqueue.RunInstance`
and the frozen ``*Record`` / ``*Entry`` classes below), built on request.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from .. import model as m
from ..model._base import _WireEnum
from ..model.json import dumps as _json_dumps
from ..model import (
    ActorId,
    AttemptId,
    AttemptResultKind,
    BudgetDimension,
    Capability,
    EventFilter,
    LedgerEntryId,
    Role,
    RunId,
    RunInstance,
    RunState,
    SubscriptionId,
    TaskId,
    TaskSpec,
    TenantId,
    WalEvent,
)
from .rules import ALLOWED_BY_STATE as _ALLOWED
from .rules import TERMINAL_STATES as _TERMINAL
from ..errors import (  # the reducer's errors live with every other error type
    LEASE_EVENT_TEXT,
    CorruptedData,
    DuplicateEvent,
    EngineControlCausality,
    InvalidTransition,
    LeaseCausality,
    ReducerError,
    TaskCausality,
)

__all__ = [
    "ReplayReducer",
    # errors
    "ReducerError",
    "InvalidTransition",
    "DuplicateEvent",
    "CorruptedData",
    "LeaseCausality",
    "TaskCausality",
    "EngineControlCausality",
    # read-API values
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
    # helpers
    "capability_key",
    "normalize_attempt_outcome",
    "projection_to_snapshot_builtins",
    "snapshot_sections",
]

_U32_MAX = 0xFFFFFFFF
_U64_MAX = 0xFFFFFFFFFFFFFFFF

_SCHEDULED = RunState.SCHEDULED
_READY = RunState.READY
_LEASED = RunState.LEASED
_RUNNING = RunState.RUNNING
_CANCELED = RunState.CANCELED

_RunStateChanged = m.RunStateChanged
_LeaseAcquired = m.LeaseAcquired
_LeaseHeartbeat = m.LeaseHeartbeat
_LeaseReleased = m.LeaseReleased
_AttemptStarted = m.AttemptStarted
_AttemptFinished = m.AttemptFinished
_RunCreated = m.RunCreated

_SUCCESS = AttemptResultKind.SUCCESS
_FAILURE = AttemptResultKind.FAILURE
_SUSPENDED_RESULT = AttemptResultKind.SUSPENDED


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


_record = dataclass(frozen=True, slots=True)


@_record
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


@_record
class AttemptHistoryEntry(_Record):
    """One attempt of a run; ``finished_at``/``result``/``error``/``output`` stay ``None``
    until it finishes (outcome normalised, see :func:`normalize_attempt_outcome`)."""

    attempt_id: AttemptId
    started_at: int
    finished_at: int | None = None
    result: AttemptResultKind | None = None
    error: str | None = None
    output: bytes | None = None


@_record
class LeaseMetadata(_Record):
    """The active lease of a run: owner, expiry, when acquired and last heartbeat."""

    owner: str
    expiry: int
    acquired_at: int
    updated_at: int


@_record
class BudgetRecord(_Record):
    """A budget of a task in one dimension. ``exhausted`` is set by consumption reaching the
    limit (or a ``BudgetExhausted`` event) and cleared only by replenishment."""

    task_id: TaskId
    dimension: BudgetDimension
    limit: int
    consumed: int
    allocated_at: int
    exhausted: bool


@_record
class SubscriptionRecord(_Record):
    """An event subscription of a task."""

    subscription_id: SubscriptionId
    task_id: TaskId
    filter: EventFilter
    created_at: int
    triggered_at: int | None = None
    canceled_at: int | None = None


@_record
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


@_record
class TenantRecord(_Record):
    """A tenant."""

    tenant_id: TenantId
    name: str
    created_at: int


@_record
class RoleAssignmentRecord(_Record):
    """The role of an actor in a tenant (one per actor and tenant; the latest wins)."""

    actor_id: ActorId
    role: Role
    tenant_id: TenantId
    assigned_at: int


@_record
class CapabilityGrantRecord(_Record):
    """A capability granted to an actor in a tenant; ``revoked_at`` set once revoked."""

    actor_id: ActorId
    capability: Capability
    tenant_id: TenantId
    granted_at: int
    revoked_at: int | None = None


@_record
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


def normalize_attempt_outcome(
    result: AttemptResultKind, error: str | None, output: bytes | None
) -> tuple[AttemptResultKind, str | None, bytes | None]:
    """The outcome an ``AttemptFinished`` event lands as in attempt history.

    A shape Rust's ``AttemptOutcome::from_raw_parts`` accepts is kept verbatim (an empty
    output stays ``b""``). The others are replaced, never rejected: Success or Suspended with
    an error lose the error *and* the output; Failure or Timeout lose any output and get
    ``"unknown failure"`` / ``"unknown timeout"`` when they carry no error.
    """
    if result is _SUCCESS or result is _SUSPENDED_RESULT:
        if error is not None:
            return result, None, None
    elif error is None or output is not None:
        if error is None:
            error = "unknown failure" if result is _FAILURE else "unknown timeout"
        return result, error, None
    return result, error, output


# =========================================================================================
# Internal mutable records
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
        self.state = _SCHEDULED
        self.attempt_id = base.current_attempt_id
        self.attempt_count = base.attempt_count
        self.changed_at = base.last_state_change_at
        self.history = [(None, _SCHEDULED, base.created_at)]
        self.attempts = []
        self.lease_owner = None


class _Attempt:
    __slots__ = ("attempt_id", "started_at", "finished_at", "result", "error", "output")

    def __init__(self, attempt_id: AttemptId, started_at: int):
        self.attempt_id = attempt_id
        self.started_at = started_at
        self.finished_at = None
        self.result = None
        self.error = None
        self.output = None


class _Task:
    __slots__ = ("spec", "created_at", "canceled_at")

    def __init__(self, spec: TaskSpec, created_at: int):
        self.spec = spec
        self.created_at = created_at
        self.canceled_at = None


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
        self.triggered_at = None
        self.canceled_at = None


class _Actor:
    __slots__ = ("event", "last_heartbeat_at", "deregistered_at")

    def __init__(self, event: m.ActorRegistered):
        self.event = event  # the ActorRegistered event: every registration field + registered_at
        self.last_heartbeat_at = None
        self.deregistered_at = None


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


_RUN_INSTANCE_SETTERS = tuple(RunInstance.__dict__[name].__set__ for name, _ in RunInstance.__aq_fields__)  # type: ignore[attr-defined]
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


def _lease_error(kind: str, run_id: RunId, event: str, **fields: Any) -> LeaseCausality:
    return LeaseCausality(kind, run_id=run_id, event=event, **fields)


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


# =========================================================================================
# The reducer
# =========================================================================================
class ReplayReducer:
    """Folds WAL events, in sequence order, into the projection.

    >>> r = ReplayReducer()
    >>> for event in events:          # doctest: +SKIP
    ...     r.apply(event)

    :meth:`apply` either applies an event completely or raises a :class:`ReducerError` and
    leaves the projection exactly as it was (including :attr:`latest_sequence`, so the same
    sequence number may be used again).
    """

    __slots__ = (
        "_latest_sequence",
        "_tasks",
        "_runs",
        "_runs_by_task",
        "_engine_paused",
        "_engine_paused_at",
        "_engine_resumed_at",
        "_dependencies",
        "_budgets",
        "_subscriptions",
        "_actors",
        "_tenants",
        "_roles",
        "_grants",
        "_ledger",
        "_cold",
    )

    def __init__(self) -> None:
        self._latest_sequence = 0
        self._tasks: dict[TaskId, _Task] = {}
        self._runs: dict[RunId, _Run] = {}
        self._runs_by_task: dict[TaskId, list[RunId]] = {}
        self._engine_paused = False
        self._engine_paused_at: int | None = None
        self._engine_resumed_at: int | None = None
        self._dependencies: dict[TaskId, set[TaskId]] = {}
        self._budgets: dict[tuple[TaskId, BudgetDimension], _Budget] = {}
        self._subscriptions: dict[SubscriptionId, _Subscription] = {}
        self._actors: dict[ActorId, _Actor] = {}
        self._tenants: dict[TenantId, TenantRecord] = {}
        self._roles: dict[tuple[ActorId, TenantId], RoleAssignmentRecord] = {}
        self._grants: dict[tuple[ActorId, str, TenantId], CapabilityGrantRecord] = {}
        self._ledger: list[LedgerEntryRecord] = []
        # Tasks and runs not yet read from a snapshot (see actionqueue.snapshot.cold): looked
        # up on a miss of the dicts above, moved into them on first use.
        self._cold: Any = None

    # -------------------------------------------------------------------------------------
    # Applying events
    # -------------------------------------------------------------------------------------
    def apply(self, event: WalEvent) -> None:
        """Apply one event, or raise :class:`ReducerError` and change nothing.

        The sequence must be above :attr:`latest_sequence` (gaps allowed; 0 never accepted);
        otherwise :class:`InvalidTransition`, as in Rust.
        """
        seq = event.sequence
        if seq <= self._latest_sequence:
            raise InvalidTransition(
                f"not above the latest applied sequence {self._latest_sequence}", sequence=seq
            )
        ev = event.event
        cls = type(ev)
        try:
            # the kinds of a run's life directly (compiled: C calls), the rest by table
            if cls is _RunStateChanged:
                self._on_run_state_changed(ev, True)
            elif cls is _LeaseAcquired:
                self._on_lease_acquired(ev, True)
            elif cls is _LeaseHeartbeat:
                self._on_lease_heartbeat(ev, True)
            elif cls is _AttemptStarted:
                self._on_attempt_started(ev, True)
            elif cls is _AttemptFinished:
                self._on_attempt_finished(ev, True)
            elif cls is _LeaseReleased:
                self._close_lease(ev, "Release", True)
            elif cls is _RunCreated:
                self._on_run_created(ev, True)
            else:
                _HANDLERS[ev.kind](self, ev)
        except ReducerError as exc:
            exc.sequence = seq
            raise
        self._latest_sequence = seq

    def check(self, event: WalEvent) -> None:
        """Raise the :class:`ReducerError` that :meth:`apply` would raise for ``event``;
        return ``None`` when it would be accepted. Never changes the projection.

        Runs the same rules as :meth:`apply` (each handler stops before its first change), so
        an event that passes is one that replay accepts: the mutation authority relies on it.
        """
        seq = event.sequence
        if seq <= self._latest_sequence:
            raise InvalidTransition(
                f"not above the latest applied sequence {self._latest_sequence}", sequence=seq
            )
        check = _CHECKS[event.event.kind]
        if check is not None:
            try:
                check(self, event.event, False)
            except ReducerError as exc:
                exc.sequence = seq
                raise

    def apply_all(self, events: Iterable[WalEvent]) -> int:
        """Apply events in order; return how many were applied.

        Stops at the first rejected event by raising its :class:`ReducerError`; the events
        before it stay applied (as Rust's replay driver does).
        """
        n = 0
        for event in events:
            self.apply(event)  # compiled: a direct C call
            n += 1
        return n

    # ---- tasks and runs still in a snapshot image -------------------------------------
    # A take and the insert after it happen under the image's lock, and the dict is looked
    # at again under it (by name: a thaw may have replaced it): reads take records, and
    # concurrent readers are allowed.
    def _take_cold(self, name: str, key: Any, take: Any) -> Any:
        cold = self._cold
        if cold is None:
            return None
        with cold.lock:
            hot = getattr(self, name)
            value = hot.get(key)
            if value is None and self._cold is cold:
                value = take(key)
                if value is not None:
                    hot[key] = value
        return value

    def _cold_run(self, run_id: RunId) -> _Run | None:
        """The run from the snapshot image (moved into the projection), or None."""
        cold = self._cold
        return None if cold is None else self._take_cold("_runs", run_id, cold.take_run)

    def _cold_task(self, task_id: TaskId) -> _Task | None:
        cold = self._cold
        return None if cold is None else self._take_cold("_tasks", task_id, cold.take_task)

    def _cold_runs_of_task(self, task_id: TaskId) -> list[RunId] | None:
        cold = self._cold
        return None if cold is None else self._take_cold("_runs_by_task", task_id, cold.take_runs_of_task)

    def _run_rec(self, run_id: RunId) -> _Run | None:
        rec = self._runs.get(run_id)
        return self._cold_run(run_id) if rec is None and self._cold is not None else rec

    def _task_rec(self, task_id: TaskId) -> _Task | None:
        t = self._tasks.get(task_id)
        return self._cold_task(task_id) if t is None and self._cold is not None else t

    def _thaw_all(self) -> None:
        """Move every task and run still in the snapshot image into the projection, in
        the image's order (followed by those created since)."""
        cold = self._cold
        if cold is None:
            return
        with cold.lock:
            if self._cold is not cold:
                return
            # all or nothing: a bad record raises here and leaves everything as it was
            tasks, runs, by_task = cold.thaw_all(self._tasks, self._runs, self._runs_by_task)
            self._tasks, self._runs, self._runs_by_task = tasks, runs, by_task
            self._cold = None

    def _hot(self) -> ReplayReducer:
        """``self`` with everything in memory (for scans over all tasks or runs)."""
        if self._cold is not None:
            self._thaw_all()
        return self

    # ---- shared run transition ----------------------------------------------------------
    def _transition(self, rec: _Run, prev: RunState, new: RunState, ts: int, commit: bool = True) -> None:
        """Move ``rec`` from ``prev`` to ``new`` at ``ts``: every check, then every change.

        Rust's ``apply_run_state_changed`` plus ``RunInstance::transition_to``: the run must
        be in ``prev``; ``prev -> new`` must be one of the allowed transitions; an active
        attempt blocks entering Running and leaving Running other than to Canceled (which
        drops it). Terminal states clear the lease.
        """
        if rec.state is not prev:
            raise InvalidTransition(
                f"run {rec.base.id} is {rec.state.value}, the event says {prev.value} -> {new.value}"
            )
        if new not in _ALLOWED[prev]:
            raise InvalidTransition(f"run {rec.base.id}: {prev.value} -> {new.value} is not a valid transition")
        if rec.attempt_id is not None and (new is _RUNNING or (prev is _RUNNING and new is not _CANCELED)):
            raise InvalidTransition(
                f"run {rec.base.id}: {prev.value} -> {new.value} while attempt {rec.attempt_id} is active"
            )
        history = rec.history
        if history is None:
            raise CorruptedData(f"run {rec.base.id} has no state history (trimmed)")
        if not commit:
            return
        rec.state = new
        if new is not _RUNNING:
            rec.attempt_id = None
        rec.changed_at = ts
        history.append((prev, new, ts))
        if new in _TERMINAL:
            rec.lease_owner = None

    def _run_or_invalid(self, run_id: RunId, what: str) -> _Run:
        rec = self._runs.get(run_id)
        if rec is None:
            rec = self._cold_run(run_id)
        if rec is None:
            raise InvalidTransition(f"{what} for unknown run {run_id}")
        return rec

    # ---- 0..6: tasks, runs, attempts ------------------------------------------------------
    def _on_task_created(self, ev: m.TaskCreated, commit: bool = True) -> None:
        spec = ev.task_spec
        tasks = self._tasks
        if spec.id in tasks or (self._cold is not None and self._cold.has_task(spec.id)):
            raise DuplicateEvent(f"task {spec.id} already exists")
        if not commit:
            return
        tasks[spec.id] = _Task(spec, ev.timestamp)

    def _on_run_created(self, ev: m.RunCreated, commit: bool = True) -> None:
        inst = ev.run_instance
        run_id = inst.id
        runs = self._runs
        if run_id in runs or (self._cold is not None and self._cold.has_run(run_id)):
            raise DuplicateEvent(f"run {run_id} already exists")
        if inst.state is not _SCHEDULED:
            raise InvalidTransition(f"run {run_id} is created in state {inst.state.value}, not Scheduled")
        if not commit:
            return
        runs[run_id] = _Run(inst)
        ids = self._runs_by_task.get(inst.task_id)
        if ids is None:
            ids = self._cold_runs_of_task(inst.task_id)
        if ids is None:
            self._runs_by_task[inst.task_id] = [run_id]
        else:
            ids.append(run_id)

    def _on_run_state_changed(self, ev: m.RunStateChanged, commit: bool = True) -> None:
        rec = self._runs.get(ev.run_id)
        if rec is None:
            rec = self._cold_run(ev.run_id)
        if rec is None:
            raise InvalidTransition(f"RunStateChanged for unknown run {ev.run_id}")
        self._transition(rec, ev.previous_state, ev.new_state, ev.timestamp, commit)

    def _on_attempt_started(self, ev: m.AttemptStarted, commit: bool = True) -> None:
        rec = self._runs.get(ev.run_id)
        if rec is None:
            rec = self._cold_run(ev.run_id)
        if rec is None:
            raise InvalidTransition(f"AttemptStarted for unknown run {ev.run_id}")
        if rec.state is not _RUNNING:
            raise InvalidTransition(f"AttemptStarted for run {ev.run_id} in state {rec.state.value}")
        if rec.attempt_id is not None:
            raise InvalidTransition(f"AttemptStarted for run {ev.run_id} while attempt {rec.attempt_id} is active")
        count = rec.attempt_count
        if count >= _U32_MAX:
            raise CorruptedData(f"attempt count of run {ev.run_id} would overflow u32")
        attempts = rec.attempts
        if attempts is None:
            raise CorruptedData(f"run {ev.run_id} has no attempt history (trimmed)")
        if not commit:
            return
        rec.attempt_count = count + 1
        rec.attempt_id = ev.attempt_id
        attempts.append(_Attempt(ev.attempt_id, ev.timestamp))

    def _on_attempt_finished(self, ev: m.AttemptFinished, commit: bool = True) -> None:
        rec = self._runs.get(ev.run_id)
        if rec is None:
            rec = self._cold_run(ev.run_id)
        if rec is None:
            raise InvalidTransition(f"AttemptFinished for unknown run {ev.run_id}")
        if rec.state is not _RUNNING:
            raise InvalidTransition(f"AttemptFinished for run {ev.run_id} in state {rec.state.value}")
        attempt_id = ev.attempt_id
        active = rec.attempt_id
        if active is None or active != attempt_id:
            raise InvalidTransition(
                f"AttemptFinished for attempt {attempt_id} of run {ev.run_id}, active attempt is {active}"
            )
        attempts = rec.attempts
        if attempts is None:
            raise CorruptedData(f"run {ev.run_id} has no attempt history (trimmed)")
        # Rust updates the FIRST history entry with this id (attempt ids may repeat).
        for entry in attempts:
            if entry.attempt_id == attempt_id:
                break
        else:
            raise CorruptedData(f"attempt {attempt_id} of run {ev.run_id} is missing from its history")
        if entry.finished_at is not None:
            raise CorruptedData(f"attempt {attempt_id} of run {ev.run_id} already finished")
        if not commit:
            return
        result = ev.result
        error = ev.error
        output = ev.output
        if result is _SUCCESS or result is _SUSPENDED_RESULT:
            if error is not None:
                error = output = None
        elif error is None or output is not None:
            result, error, output = normalize_attempt_outcome(result, error, output)
        rec.attempt_id = None
        entry.finished_at = ev.timestamp
        entry.result = result
        entry.error = error
        entry.output = output

    def _on_task_canceled(self, ev: m.TaskCanceled, commit: bool = True) -> None:
        task = self._tasks.get(ev.task_id)
        if task is None:
            task = self._cold_task(ev.task_id)
        if task is None:
            raise TaskCausality("UnknownTask", task_id=ev.task_id)
        if task.canceled_at is not None:
            raise TaskCausality(
                "AlreadyCanceled",
                task_id=ev.task_id,
                first_canceled_at=task.canceled_at,
                duplicate_canceled_at=ev.timestamp,
            )
        if not commit:
            return
        task.canceled_at = ev.timestamp

    def _on_run_canceled(self, ev: m.RunCanceled, commit: bool = True) -> None:
        rec = self._runs.get(ev.run_id)
        if rec is None:
            rec = self._cold_run(ev.run_id)
        if rec is None:
            raise InvalidTransition(f"RunCanceled for unknown run {ev.run_id}")
        self._transition(rec, rec.state, _CANCELED, ev.timestamp, commit)

    # ---- 7..10: leases -----------------------------------------------------------------
    def _on_lease_acquired(self, ev: m.LeaseAcquired, commit: bool = True) -> None:
        run_id = ev.run_id
        rec = self._runs.get(run_id)
        if rec is None:
            rec = self._cold_run(run_id)
        if rec is None:
            raise _lease_error("UnknownRun", run_id, "Acquire")
        state = rec.state
        if state is not _READY and state is not _LEASED:
            raise _lease_error("InvalidRunState", run_id, "Acquire", state=state)
        if rec.lease_owner is not None:
            raise LeaseCausality("LeaseAlreadyActive", run_id=run_id)
        if not commit:
            return
        rec.lease_owner = ev.owner
        rec.lease_expiry = ev.expiry
        rec.lease_acquired_at = rec.lease_updated_at = ev.timestamp

    def _on_lease_heartbeat(self, ev: m.LeaseHeartbeat, commit: bool = True) -> None:
        run_id = ev.run_id
        rec = self._runs.get(run_id)
        if rec is None:
            rec = self._cold_run(run_id)
        if rec is None:
            raise _lease_error("UnknownRun", run_id, "Heartbeat")
        state = rec.state
        if state is not _LEASED and state is not _RUNNING:
            raise _lease_error("InvalidRunState", run_id, "Heartbeat", state=state)
        owner = rec.lease_owner
        if owner is None:
            raise _lease_error("MissingActiveLease", run_id, "Heartbeat")
        if ev.owner != owner:
            raise _lease_error("OwnerMismatch", run_id, "Heartbeat", expected_owner=owner, actual_owner=ev.owner)
        if ev.expiry < rec.lease_expiry:
            raise LeaseCausality(
                "NonMonotonicHeartbeatExpiry",
                run_id=run_id,
                previous_expiry=rec.lease_expiry,
                proposed_expiry=ev.expiry,
            )
        if not commit:
            return
        rec.lease_expiry = ev.expiry
        rec.lease_updated_at = ev.timestamp

    def _close_lease(self, ev: m.LeaseExpired | m.LeaseReleased, what: str, commit: bool) -> None:
        run_id = ev.run_id
        rec = self._runs.get(run_id)
        if rec is None:
            rec = self._cold_run(run_id)
        if rec is None:
            raise _lease_error("UnknownRun", run_id, what)
        state = rec.state
        if state is not _READY and state is not _LEASED and state is not _RUNNING:
            raise _lease_error("InvalidRunState", run_id, what, state=state)
        owner = rec.lease_owner
        if owner is None:
            raise _lease_error("MissingActiveLease", run_id, what)
        if ev.owner != owner:
            raise _lease_error("OwnerMismatch", run_id, what, expected_owner=owner, actual_owner=ev.owner)
        if ev.expiry != rec.lease_expiry:
            raise _lease_error(
                "ExpiryMismatch", run_id, what, expected_expiry=rec.lease_expiry, actual_expiry=ev.expiry
            )
        if not commit:
            return
        if state is _LEASED:
            # Leased -> Ready is always valid and a Leased run has no active attempt, so
            # this cannot fail; unlike Rust it is recorded (decisions.md #11).
            self._transition(rec, _LEASED, _READY, ev.timestamp)
        rec.lease_owner = None

    def _on_lease_expired(self, ev: m.LeaseExpired, commit: bool = True) -> None:
        self._close_lease(ev, "Expire", commit)

    def _on_lease_released(self, ev: m.LeaseReleased, commit: bool = True) -> None:
        self._close_lease(ev, "Release", commit)

    # ---- 11, 12: engine ----------------------------------------------------------------
    def _on_engine_paused(self, ev: m.EnginePaused, commit: bool = True) -> None:
        if self._engine_paused:
            raise EngineControlCausality(
                "AlreadyPaused", first_paused_at=self._engine_paused_at, duplicate_paused_at=ev.timestamp
            )
        if not commit:
            return
        self._engine_paused = True
        self._engine_paused_at = ev.timestamp
        self._engine_resumed_at = None

    def _on_engine_resumed(self, ev: m.EngineResumed, commit: bool = True) -> None:
        if not self._engine_paused:
            raise EngineControlCausality("NotPaused", attempted_resumed_at=ev.timestamp)
        paused_at = self._engine_paused_at
        if paused_at is not None and ev.timestamp < paused_at:
            raise EngineControlCausality("ResumeBeforePause", paused_at=paused_at, resumed_at=ev.timestamp)
        if not commit:
            return
        self._engine_paused = False
        self._engine_resumed_at = ev.timestamp

    # ---- 13..15 ------------------------------------------------------------------------
    def _on_dependency_declared(self, ev: m.DependencyDeclared) -> None:
        deps = self._dependencies.get(ev.task_id)
        if deps is None:
            self._dependencies[ev.task_id] = set(ev.depends_on)
        else:
            deps.update(ev.depends_on)

    def _on_run_suspended(self, ev: m.RunSuspended, commit: bool = True) -> None:
        rec = self._run_or_invalid(ev.run_id, "RunSuspended")
        self._transition(rec, _RUNNING, RunState.SUSPENDED, ev.timestamp, commit)

    def _on_run_resumed(self, ev: m.RunResumed, commit: bool = True) -> None:
        rec = self._run_or_invalid(ev.run_id, "RunResumed")
        self._transition(rec, RunState.SUSPENDED, _READY, ev.timestamp, commit)

    # ---- 16..19: budgets ---------------------------------------------------------------
    def _on_budget_allocated(self, ev: m.BudgetAllocated) -> None:
        self._budgets[(ev.task_id, ev.dimension)] = _Budget(ev.task_id, ev.dimension, ev.limit, ev.timestamp)

    def _on_budget_consumed(self, ev: m.BudgetConsumed) -> None:
        b = self._budgets.get((ev.task_id, ev.dimension))
        if b is not None:
            consumed = b.consumed + ev.amount
            b.consumed = min(consumed, _U64_MAX)
            if b.consumed >= b.limit:
                b.exhausted = True

    def _on_budget_exhausted(self, ev: m.BudgetExhausted) -> None:
        b = self._budgets.get((ev.task_id, ev.dimension))
        if b is not None:
            b.exhausted = True

    def _on_budget_replenished(self, ev: m.BudgetReplenished) -> None:
        b = self._budgets.get((ev.task_id, ev.dimension))
        if b is not None:
            b.limit = ev.new_limit
            b.consumed = 0
            b.exhausted = False

    # ---- 20..22: subscriptions ---------------------------------------------------------
    def _on_subscription_created(self, ev: m.SubscriptionCreated) -> None:
        self._subscriptions[ev.subscription_id] = _Subscription(
            ev.subscription_id, ev.task_id, ev.filter, ev.timestamp
        )

    def _on_subscription_triggered(self, ev: m.SubscriptionTriggered) -> None:
        s = self._subscriptions.get(ev.subscription_id)
        if s is not None:
            s.triggered_at = ev.timestamp

    def _on_subscription_canceled(self, ev: m.SubscriptionCanceled) -> None:
        s = self._subscriptions.get(ev.subscription_id)
        if s is not None:
            s.canceled_at = ev.timestamp

    # ---- 23..30: platform --------------------------------------------------------------
    def _on_actor_registered(self, ev: m.ActorRegistered) -> None:
        self._actors[ev.actor_id] = _Actor(ev)

    def _on_actor_deregistered(self, ev: m.ActorDeregistered) -> None:
        a = self._actors.get(ev.actor_id)
        if a is not None:
            a.deregistered_at = ev.timestamp

    def _on_actor_heartbeat(self, ev: m.ActorHeartbeat) -> None:
        a = self._actors.get(ev.actor_id)
        if a is not None:
            a.last_heartbeat_at = ev.timestamp

    def _on_tenant_created(self, ev: m.TenantCreated) -> None:
        self._tenants[ev.tenant_id] = TenantRecord(ev.tenant_id, ev.name, ev.timestamp)

    def _on_role_assigned(self, ev: m.RoleAssigned) -> None:
        self._roles[(ev.actor_id, ev.tenant_id)] = RoleAssignmentRecord(
            ev.actor_id, ev.role, ev.tenant_id, ev.timestamp
        )

    def _on_capability_granted(self, ev: m.CapabilityGranted) -> None:
        self._grants[(ev.actor_id, capability_key(ev.capability), ev.tenant_id)] = CapabilityGrantRecord(
            ev.actor_id, ev.capability, ev.tenant_id, ev.timestamp
        )

    def _on_capability_revoked(self, ev: m.CapabilityRevoked) -> None:
        key = (ev.actor_id, capability_key(ev.capability), ev.tenant_id)
        grant = self._grants.get(key)
        if grant is not None:
            self._grants[key] = dataclasses.replace(grant, revoked_at=ev.timestamp)

    def _on_ledger_entry_appended(self, ev: m.LedgerEntryAppended) -> None:
        self._ledger.append(
            LedgerEntryRecord(ev.entry_id, ev.tenant_id, ev.ledger_key, ev.actor_id, ev.payload, ev.timestamp)
        )

    # -------------------------------------------------------------------------------------
    # Read API: sequence, counts, engine
    # -------------------------------------------------------------------------------------
    @property
    def latest_sequence(self) -> int:
        """Sequence of the last applied event (0 before any)."""
        return self._latest_sequence

    @property
    def task_count(self) -> int:
        """Number of tasks."""
        return len(self._tasks) + (0 if self._cold is None else self._cold.tasks_left)

    @property
    def run_count(self) -> int:
        """Number of runs (run instances)."""
        return len(self._runs) + (0 if self._cold is None else self._cold.runs_left)

    @property
    def is_engine_paused(self) -> bool:
        """True between an ``EnginePaused`` and the next ``EngineResumed``."""
        return self._engine_paused

    @property
    def engine_paused_at(self) -> int | None:
        """Timestamp of the latest pause (kept after a resume)."""
        return self._engine_paused_at

    @property
    def engine_resumed_at(self) -> int | None:
        """Timestamp of the latest resume (cleared by the next pause)."""
        return self._engine_resumed_at

    # -------------------------------------------------------------------------------------
    # Read API: tasks
    # -------------------------------------------------------------------------------------
    def task_exists(self, task_id: TaskId) -> bool:
        return self._task_rec(task_id) is not None

    def get_task(self, task_id: TaskId) -> TaskSpec | None:
        """The task's spec, or None."""
        t = self._task_rec(task_id)
        return None if t is None else t.spec

    def get_task_record(self, task_id: TaskId) -> TaskRecord | None:
        """The task with its created/updated/canceled times, or None."""
        t = self._task_rec(task_id)
        return None if t is None else _task_view(t)

    def is_task_canceled(self, task_id: TaskId) -> bool:
        t = self._task_rec(task_id)
        return t is not None and t.canceled_at is not None

    def task_canceled_at(self, task_id: TaskId) -> int | None:
        t = self._task_rec(task_id)
        return None if t is None else t.canceled_at

    def task_ids(self) -> Iterator[TaskId]:
        """Task ids in creation order."""
        self._hot()
        return iter(list(self._tasks))

    def tasks(self) -> Iterator[TaskSpec]:
        """Every task's spec, in creation order."""
        self._hot()
        return iter([t.spec for t in self._tasks.values()])

    def task_records(self) -> Iterator[TaskRecord]:
        """Every task record, in creation order."""
        self._hot()
        return iter([_task_view(t) for t in self._tasks.values()])

    def parent_child_mappings(self) -> list[tuple[TaskId, TaskId]]:
        """``(child, parent)`` for every task whose spec names a ``parent_task_id``."""
        self._hot()
        return [
            (tid, t.spec.parent_task_id) for tid, t in self._tasks.items() if t.spec.parent_task_id is not None
        ]

    def dependency_declarations(self) -> dict[TaskId, frozenset[TaskId]]:
        """Task -> every prerequisite ever declared for it (declarations accumulate)."""
        return {tid: frozenset(deps) for tid, deps in self._dependencies.items()}

    # -------------------------------------------------------------------------------------
    # Read API: runs
    # -------------------------------------------------------------------------------------
    def run_exists(self, run_id: RunId) -> bool:
        return self._run_rec(run_id) is not None

    def get_run_state(self, run_id: RunId) -> RunState | None:
        """The run's current state, or None for an unknown run."""
        rec = self._run_rec(run_id)
        return None if rec is None else rec.state

    def get_run_instance(self, run_id: RunId) -> RunInstance | None:
        """The run as a (new, immutable) RunInstance, or None."""
        rec = self._run_rec(run_id)
        return None if rec is None else _run_instance_view(rec)

    def active_attempt_id(self, run_id: RunId) -> AttemptId | None:
        """The run's active (started, unfinished) attempt, or None."""
        rec = self._run_rec(run_id)
        return None if rec is None else rec.attempt_id

    def get_run_history(self, run_id: RunId) -> tuple[RunStateHistoryEntry, ...] | None:
        """The run's state history (first entry ``None -> Scheduled``), or None for an unknown
        run or one whose history was trimmed."""
        rec = self._run_rec(run_id)
        if rec is None or rec.history is None:
            return None
        make = RunStateHistoryEntry._make
        return tuple([make(entry) for entry in rec.history])

    def get_attempt_history(self, run_id: RunId) -> tuple[AttemptHistoryEntry, ...] | None:
        """The run's attempts in start order, or None (unknown run, or trimmed)."""
        rec = self._run_rec(run_id)
        if rec is None or rec.attempts is None:
            return None
        return tuple([_attempt_view(a) for a in rec.attempts])

    def get_lease(self, run_id: RunId) -> tuple[str, int] | None:
        """The run's active lease as ``(owner, expiry)``, or None."""
        rec = self._run_rec(run_id)
        if rec is None or rec.lease_owner is None:
            return None
        return (rec.lease_owner, rec.lease_expiry)

    #: An alias of :meth:`get_lease`, on purpose: the name earlier releases documented.
    active_lease = get_lease

    def get_lease_metadata(self, run_id: RunId) -> LeaseMetadata | None:
        """The run's active lease with its acquisition and last-heartbeat times, or None."""
        rec = self._run_rec(run_id)
        if rec is None or rec.lease_owner is None:
            return None
        return LeaseMetadata(rec.lease_owner, rec.lease_expiry, rec.lease_acquired_at, rec.lease_updated_at)

    def run_ids(self) -> Iterator[RunId]:
        """Run ids in creation order."""
        self._hot()
        return iter(list(self._runs))

    def run_instances(self) -> Iterator[RunInstance]:
        """Every run, in creation order."""
        self._hot()
        return iter([_run_instance_view(rec) for rec in self._runs.values()])

    def run_ids_for_task(self, task_id: TaskId) -> list[RunId]:
        """The task's run ids, sorted by id (UUID byte order), as Rust sorts them."""
        self._hot()
        return sorted(self._runs_by_task.get(task_id, ()))

    def runs_for_task(self, task_id: TaskId) -> list[RunInstance]:
        """The task's runs in creation order."""
        self._hot()
        runs = self._runs
        return [_run_instance_view(runs[rid]) for rid in self._runs_by_task.get(task_id, ())]

    def runs_in_state(self, state: RunState) -> list[RunInstance]:
        """Every run currently in ``state``, in creation order (a scan)."""
        self._hot()
        return [_run_instance_view(rec) for rec in self._runs.values() if rec.state is state]

    # -------------------------------------------------------------------------------------
    # Read API: budgets, subscriptions
    # -------------------------------------------------------------------------------------
    def budgets(self) -> Iterator[BudgetRecord]:
        return iter([_budget_view(b) for b in self._budgets.values()])

    def get_budget(self, task_id: TaskId, dimension: BudgetDimension) -> BudgetRecord | None:
        b = self._budgets.get((task_id, dimension))
        return None if b is None else _budget_view(b)

    def is_budget_exhausted(self, task_id: TaskId, dimension: BudgetDimension) -> bool:
        b = self._budgets.get((task_id, dimension))
        return b is not None and b.exhausted

    def budget_allocation_exists(self, task_id: TaskId, dimension: BudgetDimension) -> bool:
        return (task_id, dimension) in self._budgets

    def subscriptions(self) -> Iterator[SubscriptionRecord]:
        return iter([_subscription_view(s) for s in self._subscriptions.values()])

    def get_subscription(self, subscription_id: SubscriptionId) -> SubscriptionRecord | None:
        s = self._subscriptions.get(subscription_id)
        return None if s is None else _subscription_view(s)

    def subscription_exists(self, subscription_id: SubscriptionId) -> bool:
        return subscription_id in self._subscriptions

    def is_subscription_canceled(self, subscription_id: SubscriptionId) -> bool:
        s = self._subscriptions.get(subscription_id)
        return s is not None and s.canceled_at is not None

    # -------------------------------------------------------------------------------------
    # Read API: actors, tenants, roles, capabilities, ledger
    # -------------------------------------------------------------------------------------
    def actors(self) -> Iterator[ActorRecord]:
        return iter([_actor_view(a) for a in self._actors.values()])

    def get_actor(self, actor_id: ActorId) -> ActorRecord | None:
        a = self._actors.get(actor_id)
        return None if a is None else _actor_view(a)

    def is_actor_active(self, actor_id: ActorId) -> bool:
        """Registered and not deregistered."""
        a = self._actors.get(actor_id)
        return a is not None and a.deregistered_at is None

    def tenants(self) -> Iterator[TenantRecord]:
        return iter(list(self._tenants.values()))

    def get_tenant(self, tenant_id: TenantId) -> TenantRecord | None:
        return self._tenants.get(tenant_id)

    def tenant_exists(self, tenant_id: TenantId) -> bool:
        return tenant_id in self._tenants

    def role_assignments(self) -> Iterator[RoleAssignmentRecord]:
        return iter(list(self._roles.values()))

    def get_role_assignment(self, actor_id: ActorId, tenant_id: TenantId) -> RoleAssignmentRecord | None:
        return self._roles.get((actor_id, tenant_id))

    def capability_grants(self) -> Iterator[CapabilityGrantRecord]:
        return iter(list(self._grants.values()))

    def get_capability_grant(
        self, actor_id: ActorId, capability: Capability | str, tenant_id: TenantId
    ) -> CapabilityGrantRecord | None:
        """The grant (revoked or not); ``capability`` is a Capability or its key string."""
        key = capability if isinstance(capability, str) else capability_key(capability)
        return self._grants.get((actor_id, key, tenant_id))

    def actor_has_capability(
        self, actor_id: ActorId, capability: Capability | str, tenant_id: TenantId
    ) -> bool:
        """True when the capability is granted and not revoked. ``capability`` is a
        Capability or its key (``"CanSubmit"``, ``"Custom:<name>"``)."""
        grant = self.get_capability_grant(actor_id, capability, tenant_id)
        return grant is not None and grant.revoked_at is None

    def ledger_entries(self) -> tuple[LedgerEntryRecord, ...]:
        """Every ledger entry in append order."""
        return tuple(self._ledger)

    # -------------------------------------------------------------------------------------
    # Maintenance and snapshot bootstrap (trusted input only: no validation)
    # -------------------------------------------------------------------------------------
    def trim_terminal_history(self) -> None:
        """Drop state history, attempt history and lease metadata of Completed, Failed and
        Canceled runs (their state and instance stay). Afterwards their histories read as
        None and a snapshot of them has empty histories."""
        self._hot()
        for rec in self._runs.values():
            if rec.state in _TERMINAL:
                rec.history = None
                rec.attempts = None
                rec.lease_owner = None

    def set_run_history(self, run_id: RunId, history: Iterable[RunStateHistoryEntry | tuple]) -> None:
        """Bootstrap only: replace a run's state history."""
        self._run_rec(run_id).history = [tuple(e) for e in history]

    def set_attempt_history(self, run_id: RunId, attempts: Iterable[AttemptHistoryEntry]) -> None:
        """Bootstrap only: replace a run's attempt history."""
        self._run_rec(run_id).attempts = _attempt_records(attempts)

    def set_attempt_lineage_for_bootstrap(
        self, run_id: RunId, attempt_count: int, active_attempt_id: AttemptId | None
    ) -> None:
        """Bootstrap only: set a run's attempt counter and active attempt."""
        rec = self._run_rec(run_id)
        rec.attempt_count = attempt_count
        rec.attempt_id = active_attempt_id

    def set_lease_for_bootstrap(self, run_id: RunId, metadata: LeaseMetadata) -> None:
        """Bootstrap only: set a run's active lease and its metadata."""
        _put_lease(self._run_rec(run_id), metadata)

    def set_latest_sequence_for_bootstrap(self, sequence: int) -> None:
        """Bootstrap only: set :attr:`latest_sequence` (the snapshot's WAL sequence)."""
        self._latest_sequence = sequence

    def __repr__(self) -> str:
        return (
            f"<ReplayReducer latest_sequence={self._latest_sequence} tasks={self.task_count} "
            f"runs={self.run_count}>"
        )


# One handler per event kind, indexed by ``Event.kind`` (``_on_<snake_case kind name>``).
# Plain functions called with the reducer, not bound methods kept on the instance: those
# would make every reducer a reference cycle, freed only by the cyclic GC.
_HANDLERS: tuple = tuple(getattr(ReplayReducer, "_on_" + _snake(cls.__name__)) for cls in m.EVENT_TYPES)
#: Per kind, the handler to call with ``commit=False`` for :meth:`ReplayReducer.check`, or
#: ``None`` for kinds the reducer never rejects (only the sequence rule applies to them).
_CHECKS: tuple = tuple(
    h if "commit" in h.__code__.co_varnames[: h.__code__.co_argcount] else None for h in _HANDLERS
)


# =========================================================================================
# The projection in the snapshot's JSON shape
# =========================================================================================
SNAPSHOT_VERSION = 4
SNAPSHOT_SCHEMA_VERSION = 8


def projection_to_snapshot_builtins(reducer: ReplayReducer, timestamp: int) -> dict[str, Any]:
    """The projection as the JSON object of a schema-v8 snapshot taken at ``timestamp``.

    Same content as Rust's ``build_snapshot_from_projection`` (no validation here), with
    every list sorted as the golden vectors sort them (``shared/vectors/README.md``): tasks
    by id, runs by id, dependency declarations by task id, budgets by (task id, dimension
    index), subscriptions, actors and tenants by id, role assignments by (actor, tenant),
    capability grants by (actor, tenant, JSON of the capability); ledger entries keep append
    order. Derived fields:

    * ``metadata.wal_sequence`` = latest sequence; ``task_count`` / ``run_count`` = counts;
    * ``dependency_declarations[].declared_at`` = ``timestamp`` (the reducer does not keep
      declaration times, neither does Rust); ``depends_on`` de-duplicated, sorted by id;
    * ``runs[].lease`` = the lease metadata, ``null`` without an active lease;
    * ``runs[].state_history`` / ``attempts`` = ``[]`` for trimmed runs (as Rust);
    * ``tasks[].updated_at`` is always ``null``.
    """
    r = reducer._hot()
    runs = []
    for run_id in sorted(r._runs):
        rec = r._runs[run_id]
        history = rec.history or ()
        attempts = rec.attempts or ()
        runs.append(
            {
                "run_instance": _run_instance_view(rec).to_builtins(),
                "state_history": [RunStateHistoryEntry._make(e).to_builtins() for e in history],
                "attempts": [_attempt_view(a).to_builtins() for a in attempts],
                "lease": None if rec.lease_owner is None else r.get_lease_metadata(run_id).to_builtins(),  # type: ignore[union-attr]
            }
        )
    return {
        "version": SNAPSHOT_VERSION,
        "timestamp": timestamp,
        "metadata": {
            "schema_version": SNAPSHOT_SCHEMA_VERSION,
            "wal_sequence": r.latest_sequence,
            "task_count": r.task_count,
            "run_count": r.run_count,
        },
        "tasks": [_task_view(r._tasks[tid]).to_builtins() for tid in sorted(r._tasks)],
        "runs": runs,
        **snapshot_sections(r, timestamp),
    }


def snapshot_sections(r: ReplayReducer, timestamp: int) -> dict[str, Any]:
    """The snapshot's sections after ``runs`` (engine, dependency declarations, budgets,
    subscriptions, actors, tenants, role assignments, capability grants, ledger entries),
    in file order, as JSON builtins (sorted as :func:`projection_to_snapshot_builtins`
    says). Shared by both snapshot writers."""
    return {
        "engine": {
            "paused": r.is_engine_paused,
            "paused_at": r.engine_paused_at,
            "resumed_at": r.engine_resumed_at,
        },
        "dependency_declarations": [
            {
                "task_id": str(tid),
                "depends_on": [str(d) for d in sorted(r._dependencies[tid])],
                "declared_at": timestamp,
            }
            for tid in sorted(r._dependencies)
        ],
        "budgets": [
            b.to_builtins() for b in sorted(r.budgets(), key=lambda b: (b.task_id, b.dimension.index))
        ],
        "subscriptions": [s.to_builtins() for s in sorted(r.subscriptions(), key=lambda s: s.subscription_id)],
        "actors": [a.to_builtins() for a in sorted(r.actors(), key=lambda a: a.actor_id)],
        "tenants": [t.to_builtins() for t in sorted(r.tenants(), key=lambda t: t.tenant_id)],
        "role_assignments": [
            a.to_builtins() for a in sorted(r.role_assignments(), key=lambda a: (a.actor_id, a.tenant_id))
        ],
        "capability_grants": [
            g.to_builtins()
            for g in sorted(
                r.capability_grants(),
                key=lambda g: (g.actor_id, g.tenant_id, _json_dumps(g.capability.to_builtins())),
            )
        ],
        "ledger_entries": [e.to_builtins() for e in r.ledger_entries()],
    }
