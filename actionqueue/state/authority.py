"""The mutation authority: the one way to change state that replay will always accept.

:class:`MutationAuthority` ports ``StorageMutationAuthority`` of the Rust crate
``actionqueue-storage`` (spec ``reducer.md`` section 6). Every command runs one pipeline,
under one lock:

1. **validate** against the projection: the checks Rust's authority runs, in Rust's order,
   raising :class:`CommandRejected` with Rust's error name as ``kind``; then the reducer's
   own rules (:meth:`ReplayReducer.check <actionqueue.ReplayReducer.check>`) as the final
   gate, so nothing replay would reject is ever written (:class:`ReplayWouldReject`);
2. **sequence** = the projection's latest + 1 (no gaps, as in Rust);
3. **append** through the :class:`~actionqueue.WalWriter` (``FSYNC``: written and
   fsynced; ``GROUP`` and ``NONE``: written);
4. **apply** the same event to the projection;
5. with ``GROUP``, **wait**, outside the lock, for the shared fsync that covers the write,
   so that commands from many threads share fsyncs; the command returns (is acknowledged)
   only after it. Should that fsync fail, the command raises, and the authority is
   poisoned: its projection already holds the event.

A rejected command writes nothing and changes nothing. If the append fails, nothing is
applied and the writer's error propagates (:class:`~actionqueue.WalWriterError` and its
subclasses); if the record may have reached the log anyway (a failed fsync poisons the
writer after the write) the authority is poisoned too, since its projection no longer
covers the log. An apply failure after a successful append cannot happen (the event passed
``check``); if it does, it is a bug: the authority is poisoned and refuses every later
command with :class:`AuthorityPoisoned` (reopen the data dir: recovery replays the log).

Differences from Rust's authority, on purpose (``shared/spec/decisions.md`` #12):

* **It never writes what replay rejects.** Rust's authority accepts three commands its
  reducer then rejects, making the log unreplayable (spec 6.5). Ours rejects them:
  leaving Running, or suspending, while an attempt is active (``AttemptInProgress``);
  resuming the engine at a timestamp before the pause (``ResumeBeforePause``). It also
  rejects a fourth path of the same kind: starting an attempt with an id the run already
  used (``AttemptIdReused``). Rust's reducer accepts that start, but the attempt can then
  never finish (the reducer finishes the *first* entry with the id, already finished, and
  reports ``CorruptedData``), so every later command on the run but a cancel fails.
* **cancel_run** exists (Rust has the ``RunCanceled`` event but no command).
* **The preconditions Rust asserts only in debug builds are enforced**
  (``InvalidArgument``): a non-empty lease owner, budget limits and amounts above zero,
  ``threshold_pct <= 100``, non-empty custom filter keys, role and capability names; and
  the value invariants Rust's registration types enforce by panicking (actor identity,
  capabilities, department of 1..=128 bytes, heartbeat interval > 0, tenant name, ledger
  key). A created run must be fresh: no attempts counted (``RunCreateRequiresFreshRun``),
  since a snapshot of a run whose attempt count differs from its attempt history is
  refused.
* An ``AttemptFinish`` outcome must be a shape Rust's ``AttemptOutcome`` constructors
  accept (``SuccessWithError``, ``NonSuccessWithoutError``, ``NonSuccessWithOutput``)
  instead of being normalised by the reducer.
* Run derivation (:meth:`MutationAuthority.derive_runs`, Rust's engine ``derive_runs``)
  appends all the runs of one derivation as one write: all or nothing.

Thread safety: every command holds :attr:`MutationAuthority.lock` from validation to
apply. Readers on other threads that need a consistent projection hold it too. With
``GROUP`` durability the lock is held while a command waits for its fsync, so commands of
one authority do not share fsyncs with each other (they still share with other appenders).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from .. import model as m
from ..model import (
    ActorId,
    AttemptId,
    AttemptResultKind,
    BudgetDimension,
    Capability,
    CronPolicy,
    Event,
    EventFilter,
    LedgerEntryId,
    OncePolicy,
    RepeatPolicy,
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
from ..model.cron import cron_occurrences_after
from .rules import is_valid_transition
from ..errors import (  # the authority's errors live with every other error type
    AlreadyExists,
    AuthorityPoisoned,
    CommandRejected,
    Conflict,
    DerivationRejected,
    InvalidCommand,
    MutationError,
    NotFound,
    ReplayWouldReject,
)
from .reducer import ReducerError, ReplayReducer

if TYPE_CHECKING:  # pragma: no cover
    from ..recovery import Store
    from ..wal import PendingWrite, WalWriter

# Its errors (CommandRejected and the rest) are in actionqueue.errors; imported above so
# that the old import path keeps working, and not listed here: one home, one list.
__all__ = [
    "MutationAuthority",
    "MutationOutcome",
    "CRON_WINDOW_SIZE",
]

_U64_MAX = 0xFFFFFFFFFFFFFFFF

#: Runs a Cron task gets on its first derivation (Rust's ``CRON_WINDOW_SIZE``).
CRON_WINDOW_SIZE = 5


_NOT_FOUND = {"UnknownTask", "UnknownRun", "AttemptStartUnknownRun", "AttemptFinishUnknownRun",
              "LeaseUnknownRun", "UnknownSubscription"}  # fmt: skip
_ALREADY_EXISTS = {"TaskAlreadyExists", "RunAlreadyExists", "SubscriptionAlreadyExists"}
_INVALID = {"EmptyDependencyList", "SuccessWithError", "NonSuccessWithoutError", "NonSuccessWithOutput",
            "InvalidArgument", "RunCreateRequiresFreshRun", "UnsupportedEvent"}  # fmt: skip


def _reject(kind: str, command: str, reason: str, **fields: Any) -> CommandRejected:
    if kind in _NOT_FOUND:
        cls: type[CommandRejected] = NotFound
    elif kind in _ALREADY_EXISTS:
        cls = AlreadyExists
    elif kind in _INVALID:
        cls = InvalidCommand
    else:
        cls = Conflict
    return cls(kind, command, reason, **fields)


# =========================================================================================
# Outcome
# =========================================================================================
_EvT = TypeVar("_EvT", bound=Event)


@dataclass(frozen=True, slots=True)
class MutationOutcome(Generic[_EvT]):
    """What a command wrote: its sequence and the event (Rust ``MutationOutcome``; the
    event says more than Rust's ``AppliedMutation`` summary). Generic in the event's type:
    ``derive_runs`` gives ``MutationOutcome[RunCreated]``, so ``out.event.run_instance``
    type-checks."""

    sequence: int
    event: _EvT

    @property
    def wal_event(self) -> WalEvent:
        """The record as written."""
        return WalEvent(self.sequence, self.event)


# =========================================================================================
# Validation: one function per event kind, Rust's checks in Rust's order (spec 6.3)
# =========================================================================================
_RUNNING = RunState.RUNNING
_SUSPENDED = RunState.SUSPENDED
_CANCELED = RunState.CANCELED
_SUCCESS = AttemptResultKind.SUCCESS
_SUSPENDED_RESULT = AttemptResultKind.SUSPENDED

_Validator = Callable[[ReplayReducer, Any, str], None]


def _require(ok: bool, command: str, reason: str) -> None:
    if not ok:
        raise _reject("InvalidArgument", command, reason)


def _check_filter(f: EventFilter, command: str) -> None:
    if isinstance(f, m.BudgetThresholdFilter):
        _require(f.threshold_pct <= 100, command, f"threshold_pct {f.threshold_pct} is above 100")
    elif isinstance(f, m.CustomFilter):
        _require(f.key != "", command, "the custom filter key is empty")


def _check_named(value: Role | Capability, what: str, command: str) -> None:
    _require(not (value.is_custom and value.name == ""), command, f"the custom {what} name is empty")


def _v_task_created(r: ReplayReducer, ev: m.TaskCreated, c: str) -> None:
    tid = ev.task_spec.id
    if r.task_exists(tid):
        raise _reject("TaskAlreadyExists", c, f"task {tid} already exists", task_id=tid)


def _v_run_created(r: ReplayReducer, ev: m.RunCreated, c: str) -> None:
    inst = ev.run_instance
    if not r.task_exists(inst.task_id):
        raise _reject("UnknownTask", c, f"task {inst.task_id} of run {inst.id} is unknown", task_id=inst.task_id)
    if r.run_exists(inst.id):
        raise _reject("RunAlreadyExists", c, f"run {inst.id} already exists", run_id=inst.id)
    if inst.state is not RunState.SCHEDULED:
        raise _reject(
            "RunCreateRequiresScheduled", c, f"run {inst.id} is {inst.state.value}, not Scheduled",
            run_id=inst.id, state=inst.state,
        )  # fmt: skip
    if inst.attempt_count != 0:
        raise _reject(
            "RunCreateRequiresFreshRun", c, f"run {inst.id} counts {inst.attempt_count} attempts, not 0",
            run_id=inst.id, attempt_count=inst.attempt_count,
        )  # fmt: skip


def _run_state(r: ReplayReducer, run_id: RunId, c: str, unknown_kind: str = "UnknownRun") -> RunState:
    state = r.get_run_state(run_id)
    if state is None:
        raise _reject(unknown_kind, c, f"run {run_id} is unknown", run_id=run_id)
    return state


def _v_run_state_changed(r: ReplayReducer, ev: m.RunStateChanged, c: str) -> None:
    run_id, prev, new = ev.run_id, ev.previous_state, ev.new_state
    state = _run_state(r, run_id, c)
    if state is not prev:
        raise _reject(
            "PreviousStateMismatch", c, f"run {run_id} is {state.value}, the command says {prev.value}",
            run_id=run_id, expected=prev, actual=state,
        )  # fmt: skip
    if not is_valid_transition(prev, new):
        raise _reject(
            "InvalidTransition", c, f"{prev.value} -> {new.value} is not a run transition",
            run_id=run_id, from_state=prev, to_state=new,
        )  # fmt: skip
    _check_attempt_blocks(r, run_id, prev, new, c)


def _check_attempt_blocks(r: ReplayReducer, run_id: RunId, prev: RunState, new: RunState, c: str) -> None:
    """Ours (spec 6.5): an active attempt blocks entering Running and leaving it except to
    Canceled, as the reducer rules."""
    active = r.active_attempt_id(run_id)
    if active is not None and (new is _RUNNING or (prev is _RUNNING and new is not _CANCELED)):
        raise _reject(
            "AttemptInProgress", c,
            f"run {run_id} cannot go {prev.value} -> {new.value} while attempt {active} is active "
            "(finish it first, or cancel the run)",
            run_id=run_id, attempt_id=active,
        )  # fmt: skip


def _v_attempt_started(r: ReplayReducer, ev: m.AttemptStarted, c: str) -> None:
    run_id = ev.run_id
    state = _run_state(r, run_id, c, "AttemptStartUnknownRun")
    if state is not _RUNNING:
        raise _reject(
            "AttemptStartRequiresRunning", c, f"run {run_id} is {state.value}", run_id=run_id, state=state
        )
    active = r.active_attempt_id(run_id)
    if active is not None:
        raise _reject(
            "AttemptStartAlreadyActive", c, f"attempt {active} of run {run_id} is active",
            run_id=run_id, active_attempt_id=active,
        )  # fmt: skip
    history = r.get_attempt_history(run_id) or ()
    if any(a.attempt_id == ev.attempt_id for a in history):
        raise _reject(
            "AttemptIdReused", c, f"run {run_id} already had an attempt {ev.attempt_id}",
            run_id=run_id, attempt_id=ev.attempt_id,
        )  # fmt: skip


def _v_attempt_finished(r: ReplayReducer, ev: m.AttemptFinished, c: str) -> None:
    # The outcome is built by Rust's validated AttemptOutcome constructors first.
    result, error, output = ev.result, ev.error, ev.output
    if result is _SUCCESS or result is _SUSPENDED_RESULT:
        if error is not None:
            raise _reject("SuccessWithError", c, f"a {result.value} outcome carries an error", result=result)
    else:
        if error is None:
            raise _reject("NonSuccessWithoutError", c, f"a {result.value} outcome needs an error", result=result)
        if output is not None:
            raise _reject("NonSuccessWithOutput", c, f"a {result.value} outcome cannot carry output", result=result)
    run_id = ev.run_id
    state = _run_state(r, run_id, c, "AttemptFinishUnknownRun")
    if state is not _RUNNING:
        raise _reject(
            "AttemptFinishRequiresRunning", c, f"run {run_id} is {state.value}", run_id=run_id, state=state
        )
    active = r.active_attempt_id(run_id)
    if active is None:
        raise _reject("AttemptFinishMissingActive", c, f"run {run_id} has no active attempt", run_id=run_id)
    if active != ev.attempt_id:
        raise _reject(
            "AttemptFinishAttemptMismatch", c, f"the active attempt of run {run_id} is {active}, not {ev.attempt_id}",
            run_id=run_id, expected_attempt_id=active, provided_attempt_id=ev.attempt_id,
        )  # fmt: skip


def _v_task_canceled(r: ReplayReducer, ev: m.TaskCanceled, c: str) -> None:
    if not r.task_exists(ev.task_id):
        raise _reject("UnknownTask", c, f"task {ev.task_id} is unknown", task_id=ev.task_id)
    if r.is_task_canceled(ev.task_id):
        raise _reject(
            "TaskAlreadyCanceled", c, f"task {ev.task_id} was canceled at {r.task_canceled_at(ev.task_id)}",
            task_id=ev.task_id,
        )  # fmt: skip


def _v_run_canceled(r: ReplayReducer, ev: m.RunCanceled, c: str) -> None:
    state = _run_state(r, ev.run_id, c)
    if not is_valid_transition(state, _CANCELED):
        raise _reject(
            "InvalidTransition", c, f"run {ev.run_id} is {state.value}: terminal runs cannot be canceled",
            run_id=ev.run_id, from_state=state, to_state=_CANCELED,
        )  # fmt: skip


_LEASE_STATES = {
    "Acquire": (RunState.READY, RunState.LEASED),
    "Heartbeat": (RunState.LEASED, RunState.RUNNING),
    "Expire": (RunState.READY, RunState.LEASED, RunState.RUNNING),
    "Release": (RunState.READY, RunState.LEASED, RunState.RUNNING),
}


def _v_lease(event: str) -> _Validator:
    allowed = _LEASE_STATES[event]

    def validate(r: ReplayReducer, ev: Any, c: str) -> None:
        _require(ev.owner != "", c, "the lease owner is empty")
        run_id = ev.run_id
        state = _run_state(r, run_id, c, "LeaseUnknownRun")
        if state not in allowed:
            raise _reject(
                "LeaseInvalidRunState", c, f"lease {event.lower()} for run {run_id} in state {state.value}",
                run_id=run_id, event=event, state=state,
            )  # fmt: skip
        lease = r.get_lease(run_id)
        if event == "Acquire":
            if lease is not None:
                raise _reject(
                    "LeaseAlreadyActive", c, f"run {run_id} is leased by {lease[0]!r}", run_id=run_id, event=event
                )
            return
        if lease is None:
            raise _reject("LeaseMissingActive", c, f"run {run_id} has no active lease", run_id=run_id, event=event)
        owner, expiry = lease
        if ev.owner != owner:
            raise _reject(
                "LeaseOwnerMismatch", c, f"run {run_id} is leased by {owner!r}, not {ev.owner!r}",
                run_id=run_id, event=event, expected_owner=owner, actual_owner=ev.owner,
            )  # fmt: skip
        if event == "Heartbeat":
            if ev.expiry < expiry:
                raise _reject(
                    "LeaseHeartbeatExpiryRegression", c, f"expiry {ev.expiry} is before the current {expiry}",
                    run_id=run_id, previous_expiry=expiry, proposed_expiry=ev.expiry,
                )  # fmt: skip
        elif ev.expiry != expiry:
            raise _reject(
                "LeaseExpiryMismatch", c, f"the lease of run {run_id} expires at {expiry}, not {ev.expiry}",
                run_id=run_id, event=event, expected_expiry=expiry, provided_expiry=ev.expiry,
            )  # fmt: skip

    return validate


def _v_engine_paused(r: ReplayReducer, ev: m.EnginePaused, c: str) -> None:
    if r.is_engine_paused:
        raise _reject("EngineAlreadyPaused", c, f"the engine is paused since {r.engine_paused_at}")


def _v_engine_resumed(r: ReplayReducer, ev: m.EngineResumed, c: str) -> None:
    if not r.is_engine_paused:
        raise _reject("EngineNotPaused", c, "the engine is not paused")
    paused_at = r.engine_paused_at
    if paused_at is not None and ev.timestamp < paused_at:
        raise _reject(
            "ResumeBeforePause", c, f"resume at {ev.timestamp} precedes the pause at {paused_at}",
            paused_at=paused_at, resumed_at=ev.timestamp,
        )  # fmt: skip


def _v_dependency_declared(r: ReplayReducer, ev: m.DependencyDeclared, c: str) -> None:
    if not ev.depends_on:
        raise _reject("EmptyDependencyList", c, f"task {ev.task_id} declares no prerequisites", task_id=ev.task_id)
    for tid in (ev.task_id, *ev.depends_on):
        if not r.task_exists(tid):
            raise _reject("UnknownTask", c, f"task {tid} is unknown", task_id=tid)


def _v_run_suspended(r: ReplayReducer, ev: m.RunSuspended, c: str) -> None:
    state = _run_state(r, ev.run_id, c)
    if state is not _RUNNING:
        raise _reject("RunSuspendRequiresRunning", c, f"run {ev.run_id} is {state.value}", run_id=ev.run_id, state=state)
    _check_attempt_blocks(r, ev.run_id, _RUNNING, _SUSPENDED, c)


def _v_run_resumed(r: ReplayReducer, ev: m.RunResumed, c: str) -> None:
    state = _run_state(r, ev.run_id, c)
    if state is not _SUSPENDED:
        raise _reject("RunResumeRequiresSuspended", c, f"run {ev.run_id} is {state.value}", run_id=ev.run_id, state=state)


def _v_budget(field: str) -> _Validator:
    def validate(r: ReplayReducer, ev: Any, c: str) -> None:
        _require(getattr(ev, field) > 0, c, f"{field} must be above 0")
        if not r.task_exists(ev.task_id):
            raise _reject("UnknownTask", c, f"task {ev.task_id} is unknown", task_id=ev.task_id)
        if field == "new_limit" and not r.budget_allocation_exists(ev.task_id, ev.dimension):
            raise _reject(
                "BudgetNotAllocated", c, f"task {ev.task_id} has no {ev.dimension.value} budget",
                task_id=ev.task_id, dimension=ev.dimension,
            )  # fmt: skip

    return validate


def _v_subscription_created(r: ReplayReducer, ev: m.SubscriptionCreated, c: str) -> None:
    _check_filter(ev.filter, c)
    if not r.task_exists(ev.task_id):
        raise _reject("UnknownTask", c, f"task {ev.task_id} is unknown", task_id=ev.task_id)
    if r.subscription_exists(ev.subscription_id):
        raise _reject(
            "SubscriptionAlreadyExists", c, f"subscription {ev.subscription_id} already exists",
            subscription_id=ev.subscription_id,
        )  # fmt: skip


def _v_subscription_canceled(r: ReplayReducer, ev: m.SubscriptionCanceled, c: str) -> None:
    sid = ev.subscription_id
    if not r.subscription_exists(sid):
        raise _reject("UnknownSubscription", c, f"subscription {sid} is unknown", subscription_id=sid)
    if r.is_subscription_canceled(sid):
        raise _reject("SubscriptionAlreadyCanceled", c, f"subscription {sid} is canceled", subscription_id=sid)


def _v_actor_registered(r: ReplayReducer, ev: m.ActorRegistered, c: str) -> None:
    _require(ev.identity != "", c, "the actor identity is empty")
    _require(len(ev.capabilities) > 0 and "" not in ev.capabilities, c,
             "actor capabilities must be a non-empty list of non-empty names")  # fmt: skip
    if ev.department is not None:
        size = len(ev.department.encode("utf-8"))
        _require(1 <= size <= 128, c, f"the department id is {size} bytes (must be 1..=128)")
    _require(ev.heartbeat_interval_secs > 0, c, "heartbeat_interval_secs must be above 0")


def _v_tenant_created(r: ReplayReducer, ev: m.TenantCreated, c: str) -> None:
    _require(ev.name != "", c, "the tenant name is empty")


def _v_role_assigned(r: ReplayReducer, ev: m.RoleAssigned, c: str) -> None:
    _check_named(ev.role, "role", c)


def _v_capability(r: ReplayReducer, ev: Any, c: str) -> None:
    _check_named(ev.capability, "capability", c)


def _v_ledger_entry_appended(r: ReplayReducer, ev: m.LedgerEntryAppended, c: str) -> None:
    _require(ev.ledger_key != "", c, "the ledger key is empty")


def _v_sequence_only(r: ReplayReducer, ev: Any, c: str) -> None:
    """Rust checks only the sequence (subscription trigger, actor heartbeat and
    deregistration)."""


def _v_unsupported(r: ReplayReducer, ev: Any, c: str) -> None:
    raise _reject(
        "UnsupportedEvent", c,
        f"no command writes {type(ev).__name__} (reserved for snapshot bootstrap, as in Rust)",
    )  # fmt: skip


#: event class -> (command name, validator)
_COMMANDS: dict[type, tuple[str, _Validator]] = {
    m.TaskCreated: ("create_task", _v_task_created),
    m.RunCreated: ("create_run", _v_run_created),
    m.RunStateChanged: ("transition_run", _v_run_state_changed),
    m.AttemptStarted: ("start_attempt", _v_attempt_started),
    m.AttemptFinished: ("finish_attempt", _v_attempt_finished),
    m.TaskCanceled: ("cancel_task", _v_task_canceled),
    m.RunCanceled: ("cancel_run", _v_run_canceled),
    m.LeaseAcquired: ("acquire_lease", _v_lease("Acquire")),
    m.LeaseHeartbeat: ("heartbeat_lease", _v_lease("Heartbeat")),
    m.LeaseExpired: ("expire_lease", _v_lease("Expire")),
    m.LeaseReleased: ("release_lease", _v_lease("Release")),
    m.EnginePaused: ("pause_engine", _v_engine_paused),
    m.EngineResumed: ("resume_engine", _v_engine_resumed),
    m.DependencyDeclared: ("declare_dependencies", _v_dependency_declared),
    m.RunSuspended: ("suspend_run", _v_run_suspended),
    m.RunResumed: ("resume_run", _v_run_resumed),
    m.BudgetAllocated: ("allocate_budget", _v_budget("limit")),
    m.BudgetConsumed: ("consume_budget", _v_budget("amount")),
    m.BudgetExhausted: ("submit", _v_unsupported),
    m.BudgetReplenished: ("replenish_budget", _v_budget("new_limit")),
    m.SubscriptionCreated: ("create_subscription", _v_subscription_created),
    m.SubscriptionTriggered: ("trigger_subscription", _v_sequence_only),
    m.SubscriptionCanceled: ("cancel_subscription", _v_subscription_canceled),
    m.ActorRegistered: ("register_actor", _v_actor_registered),
    m.ActorDeregistered: ("deregister_actor", _v_sequence_only),
    m.ActorHeartbeat: ("heartbeat_actor", _v_sequence_only),
    m.TenantCreated: ("create_tenant", _v_tenant_created),
    m.RoleAssigned: ("assign_role", _v_role_assigned),
    m.CapabilityGranted: ("grant_capability", _v_capability),
    m.CapabilityRevoked: ("revoke_capability", _v_capability),
    m.LedgerEntryAppended: ("append_ledger_entry", _v_ledger_entry_appended),
}
assert set(_COMMANDS) == set(m.EVENT_TYPES)


# =========================================================================================
# The authority
# =========================================================================================
def _default_clock() -> int:
    return int(time.time())


class MutationAuthority:
    """Validated, durable, sequenced commands against a projection and its log.

    >>> with aq.open("data") as store:                          # doctest: +SKIP
    ...     authority = MutationAuthority.from_store(store)
    ...     authority.create_task(aq.TaskSpec(aq.TaskId.new()))
    ...     runs = authority.derive_runs(task_id)

    Args:
        reducer: the projection; it must hold exactly the log the writer appends to
            (``reducer.latest_sequence == writer.current_sequence``), as recovery leaves it.
        writer: the log's writer. Only the authority should append to it from now on.
        clock: returns the current time as integer seconds; used for every ``timestamp``
            not given explicitly. Default ``int(time.time())``.

    Every command method returns a :class:`MutationOutcome` (``derive_runs`` a list of
    them), raises :class:`CommandRejected` (its subclasses say which category) when the
    command is invalid for the current state, and otherwise has appended and applied
    exactly one event.
    """

    _COMMANDS: ClassVar[dict[type, tuple[str, _Validator]]] = _COMMANDS

    def __init__(self, reducer: ReplayReducer, writer: WalWriter, *, clock: Callable[[], int] | None = None):
        self._reducer = reducer
        self._writer = writer
        self._clock = clock or _default_clock
        self._lock = threading.Lock()
        self._snapshot_lock = threading.Lock()  # one snapshot written at a time
        self._poisoned: BaseException | None = None
        self._snapshots: Any = None  # the store's background snapshots, told of durable sequences

    @classmethod
    def from_store(cls, store: Store, *, clock: Callable[[], int] | None = None) -> MutationAuthority:
        """The authority over a recovered data dir (:func:`actionqueue.open`); it feeds the
        store's background snapshots (``snapshot_every``)."""
        authority = cls(store.reducer, store.writer, clock=clock)
        authority._snapshots = store.snapshots
        return authority

    # -- state ---------------------------------------------------------------------------
    @property
    def reducer(self) -> ReplayReducer:
        """The projection (read it under :attr:`lock` when other threads submit)."""
        return self._reducer

    @property
    def writer(self) -> WalWriter:
        return self._writer

    @property
    def lock(self) -> threading.Lock:
        """Held by every command from validation to apply."""
        return self._lock

    @property
    def latest_sequence(self) -> int:
        return self._reducer.latest_sequence

    #: Projections up to this many tasks and runs are snapshotted in this process, under
    #: :attr:`lock` (milliseconds); larger ones by a child process, while commands go on.
    INLINE_SNAPSHOT_RECORDS = 20_000

    def snapshot(self, timestamp: int | None = None) -> Any:
        """Snapshot the projection into the writer's data dir (``snapshot.bin`` and its
        image, atomically); ``timestamp`` defaults to the clock. Returns the snapshot.

        Commands do not wait for it: the log is synced and the sequence taken under
        :attr:`lock`; a small projection is then built there too (milliseconds) and
        written after the lock is released, a large one is built from the files by a child process (the store's background snapshots,
        :mod:`actionqueue.snapshot.background`) while commands go on. The snapshot never
        covers an event the log could still lose, and a poisoned authority or writer
        raises instead of writing one.
        """
        from .. import snapshot as snapshot_module
        from .._backend import NATIVE
        from .._bulk import gc_paused
        from .reducer import projection_to_snapshot_builtins
        from ..snapshot.background import Snapshotter

        with self._snapshot_lock:
            with self._lock:
                self._check_poisoned()
                self._writer.sync()
                through = self._writer.current_sequence
                stamp = self._now(timestamp)
                r = self._reducer
                snap = None
                if r.task_count + r.run_count <= self.INLINE_SNAPSHOT_RECORDS:
                    with gc_paused():  # validated here (native) or by the write (pure)
                        snap = snapshot_module.build_snapshot(r, stamp) if NATIVE else \
                            projection_to_snapshot_builtins(r, stamp)
            if snap is not None:
                snapshot_module.write_snapshot(self._writer.data_dir, snap, fs=self._writer.fs)
                return snap
            snapshots = self._snapshots or Snapshotter(self._writer.data_dir, self._writer)
            try:
                snapshots.take(through, stamp)
            finally:
                if snapshots is not self._snapshots:
                    snapshots.close()
            return snapshot_module.read_written(self._writer.data_dir)

    @property
    def poisoned(self) -> BaseException | None:
        """Why the authority refuses commands, or None."""
        return self._poisoned

    def _now(self, timestamp: int | None) -> int:
        return self._clock() if timestamp is None else timestamp

    # -- the pipeline --------------------------------------------------------------------
    def submit(self, event: _EvT) -> MutationOutcome[_EvT]:
        """Validate, sequence, append and apply one event body (any command's event).

        The named command methods build their event and run this same pipeline; use it
        directly to submit events built elsewhere (the event's own timestamp is kept).
        ``BudgetExhausted`` has no command (``UnsupportedEvent``).
        """
        if not isinstance(event, Event):
            raise TypeError(f"submit takes an event body (TaskCreated, ...), not {type(event).__name__}")
        return self._submit([event])[0]

    def _do(self, build: Callable[[int], _EvT], timestamp: int | None) -> MutationOutcome[_EvT]:
        """Build the event with its timestamp and submit it, under the lock: the clock is
        read there, so clock-stamped events get timestamps in sequence order."""
        with self._lock:
            outcomes, pending = self._submit_locked([build(self._now(timestamp))])
        self._durable(pending)
        return outcomes[0]

    def _check_poisoned(self) -> None:
        if self._poisoned is not None:
            raise AuthorityPoisoned(
                f"the mutation authority is poisoned: {self._poisoned}; reopen the data dir"
            ) from self._poisoned

    def _submit(self, events: Sequence[_EvT]) -> list[MutationOutcome[_EvT]]:
        with self._lock:
            outcomes, pending = self._submit_locked(events)
        self._durable(pending)
        return outcomes

    def _durable(self, pending: PendingWrite) -> None:
        """Wait, outside the lock, until the command's write is durable (group commit:
        commands from several threads share one fsync). If that fsync fails the command is
        not acknowledged, and the authority is poisoned: its projection holds the event."""
        try:
            pending.wait()
        except BaseException as exc:
            self._poisoned = exc
            raise
        if self._snapshots is not None:
            self._snapshots.note(self._writer.current_sequence)

    def _submit_locked(self, events: Sequence[_EvT]) -> tuple[list[MutationOutcome[_EvT]], PendingWrite]:
        """The pipeline, for events written as one write (the lock is held): validated,
        sequenced, written and applied; durable once the returned write's ``wait`` does.
        Writing and applying under the lock keeps the projection in the log's order; the
        wait is left to the caller, outside the lock."""
        self._check_poisoned()
        r = self._reducer
        latest = r.latest_sequence
        first = events[0]
        command = self._COMMANDS[type(first)][0]
        if latest + len(events) > _U64_MAX:
            raise _reject("SequenceOverflow", command, "the next sequence would overflow u64")
        writer_at = self._writer.current_sequence
        if writer_at != latest:
            raise _reject(
                "NonMonotonicSequence", command,
                f"the log ends at sequence {writer_at} but the projection at {latest} "
                "(was the writer used directly?)",
                expected=writer_at + 1, provided=latest + 1,
            )  # fmt: skip
        records = []
        for i, event in enumerate(events):
            name, validate = self._COMMANDS[type(event)]
            validate(r, event, name)
            record = WalEvent(latest + 1 + i, event)
            try:
                r.check(record)
            except ReducerError as exc:
                raise ReplayWouldReject(
                    "ReplayWouldReject", name, f"replay would reject it: {exc}", reducer_error=exc
                ) from exc
            records.append(record)
        try:
            pending = self._writer.write(records)
        except BaseException as exc:
            if self._writer.current_sequence > latest:
                # the record is in the log (e.g. its fsync failed): the projection no
                # longer covers the log
                self._poisoned = exc
            raise
        for record in records:
            try:
                r.apply(record)
            except BaseException as exc:  # a bug: check() accepted it
                self._poisoned = exc
                raise AuthorityPoisoned(
                    f"applying sequence {record.sequence} failed after it was appended: {exc}"
                ) from exc
        return [MutationOutcome(latest + 1 + i, event) for i, event in enumerate(events)], pending

    # -- tasks and runs ------------------------------------------------------------------
    def create_task(self, spec: TaskSpec, *, timestamp: int | None = None) -> MutationOutcome[m.TaskCreated]:
        """Create a task (``TaskCreated``). Rejects: ``TaskAlreadyExists``."""
        return self._do(lambda ts: m.TaskCreated(spec, ts), timestamp)

    def create_run(self, run: RunInstance) -> MutationOutcome[m.RunCreated]:
        """Create a run as given (``RunCreated``; Rust's ``RunCreate``). Rejects:
        ``UnknownTask``, ``RunAlreadyExists``, ``RunCreateRequiresScheduled``,
        ``RunCreateRequiresFreshRun``. :meth:`derive_runs` builds runs from the policy."""
        return self.submit(m.RunCreated(run))

    def derive_runs(
        self,
        task_id: TaskId,
        *,
        schedule_origin: int | None = None,
        timestamp: int | None = None,
    ) -> list[MutationOutcome[m.RunCreated]]:
        """Create the runs the task's run policy calls for that do not exist yet (Rust's
        engine ``derive_runs``, with ``already_derived`` = the task's runs in the projection).

        * Once: one run, scheduled at ``timestamp``; none if the task has a run.
        * Repeat(count, interval): runs ``already_derived .. count-1``, run *i* scheduled at
          ``schedule_origin + i * interval``.
        * Cron: on the first derivation only, the next ``min(5, max_occurrences)``
          occurrences at or after ``schedule_origin`` (UTC); later windows are the
          dispatcher's business, as in Rust.

        Every run is created Scheduled at ``timestamp`` (default: the clock), with priority 0.
        ``schedule_origin`` defaults to the task's creation time. All the runs are appended
        as one write (all or nothing). Returns one outcome per run (possibly none).
        Rejects: ``UnknownTask``; :class:`DerivationRejected` (``ArithmeticOverflow``:
        more runs than the policy allows already exist, or a time beyond u64).
        """
        command = "derive_runs"
        with self._lock:  # derive and append under one hold: two derivations never overlap
            self._check_poisoned()
            record = self._reducer.get_task_record(task_id)
            if record is None:
                raise _reject("UnknownTask", command, f"task {task_id} is unknown", task_id=task_id)
            already = len(self._reducer.run_ids_for_task(task_id))
            now = self._now(timestamp)
            origin = record.created_at if schedule_origin is None else schedule_origin
            times = _derive_schedule(record.task_spec.run_policy, already, origin, now, command)
            if not times:
                return []
            events = [m.RunCreated(RunInstance(RunId.new(), task_id, RunState.SCHEDULED, None, 0, now, at, 0, now))
                      for at in times]  # fmt: skip
            outcomes, pending = self._submit_locked(events)
        self._durable(pending)
        return outcomes

    def transition_run(
        self, run_id: RunId, previous_state: RunState, new_state: RunState, *, timestamp: int | None = None
    ) -> MutationOutcome[m.RunStateChanged]:
        """Move a run along the state machine (``RunStateChanged``). Rejects: ``UnknownRun``,
        ``PreviousStateMismatch``, ``InvalidTransition``, ``AttemptInProgress`` (leaving
        Running other than to Canceled while an attempt is active)."""
        return self._do(lambda ts: m.RunStateChanged(run_id, previous_state, new_state, ts), timestamp)

    def start_attempt(
        self, run_id: RunId, attempt_id: AttemptId | None = None, *, timestamp: int | None = None
    ) -> MutationOutcome[m.AttemptStarted]:
        """Start an attempt of a Running run (``AttemptStarted``; a new id by default).
        Rejects: ``AttemptStartUnknownRun``, ``AttemptStartRequiresRunning``,
        ``AttemptStartAlreadyActive``, ``AttemptIdReused``."""
        return self._do(lambda ts: m.AttemptStarted(run_id, attempt_id or AttemptId.new(), ts), timestamp)

    def finish_attempt(
        self,
        run_id: RunId,
        attempt_id: AttemptId,
        result: AttemptResultKind,
        *,
        error: str | None = None,
        output: bytes | None = None,
        timestamp: int | None = None,
    ) -> MutationOutcome[m.AttemptFinished]:
        """Finish the active attempt (``AttemptFinished``); the run stays Running.
        Success/Suspended take no error; Failure/Timeout need an error and take no output.
        Rejects: ``SuccessWithError``, ``NonSuccessWithoutError``, ``NonSuccessWithOutput``,
        ``AttemptFinishUnknownRun``, ``AttemptFinishRequiresRunning``,
        ``AttemptFinishMissingActive``, ``AttemptFinishAttemptMismatch``."""
        return self._do(lambda ts: m.AttemptFinished(run_id, attempt_id, result, error, output, ts), timestamp)

    def cancel_task(self, task_id: TaskId, *, timestamp: int | None = None) -> MutationOutcome[m.TaskCanceled]:
        """Mark a task canceled (``TaskCanceled``; its runs are not touched). Rejects:
        ``UnknownTask``, ``TaskAlreadyCanceled``."""
        return self._do(lambda ts: m.TaskCanceled(task_id, ts), timestamp)

    def cancel_run(self, run_id: RunId, *, timestamp: int | None = None) -> MutationOutcome[m.RunCanceled]:
        """Cancel a run from any non-terminal state (``RunCanceled``; drops an active
        attempt and the lease). Not in Rust's authority. Rejects: ``UnknownRun``,
        ``InvalidTransition`` (already terminal)."""
        return self._do(lambda ts: m.RunCanceled(run_id, ts), timestamp)

    # -- leases --------------------------------------------------------------------------
    def acquire_lease(self, run_id: RunId, owner: str, expiry: int, *, timestamp: int | None = None) -> MutationOutcome[m.LeaseAcquired]:
        """Lease a Ready or Leased run (``LeaseAcquired``). Rejects: ``InvalidArgument``
        (empty owner), ``LeaseUnknownRun``, ``LeaseInvalidRunState``, ``LeaseAlreadyActive``."""
        return self._do(lambda ts: m.LeaseAcquired(run_id, owner, expiry, ts), timestamp)

    def heartbeat_lease(self, run_id: RunId, owner: str, expiry: int, *, timestamp: int | None = None) -> MutationOutcome[m.LeaseHeartbeat]:
        """Extend the lease of a Leased or Running run (``LeaseHeartbeat``). Rejects:
        ``LeaseUnknownRun``, ``LeaseInvalidRunState``, ``LeaseMissingActive``,
        ``LeaseOwnerMismatch``, ``LeaseHeartbeatExpiryRegression``."""
        return self._do(lambda ts: m.LeaseHeartbeat(run_id, owner, expiry, ts), timestamp)

    def release_lease(self, run_id: RunId, owner: str, expiry: int, *, timestamp: int | None = None) -> MutationOutcome[m.LeaseReleased]:
        """Release the lease (``LeaseReleased``; a Leased run goes back to Ready). Rejects:
        ``LeaseUnknownRun``, ``LeaseInvalidRunState``, ``LeaseMissingActive``,
        ``LeaseOwnerMismatch``, ``LeaseExpiryMismatch``."""
        return self._do(lambda ts: m.LeaseReleased(run_id, owner, expiry, ts), timestamp)

    def expire_lease(self, run_id: RunId, owner: str, expiry: int, *, timestamp: int | None = None) -> MutationOutcome[m.LeaseExpired]:
        """Expire the lease (``LeaseExpired``); same rules as :meth:`release_lease`."""
        return self._do(lambda ts: m.LeaseExpired(run_id, owner, expiry, ts), timestamp)

    # -- engine, dependencies, suspension ------------------------------------------------
    def pause_engine(self, *, timestamp: int | None = None) -> MutationOutcome[m.EnginePaused]:
        """Pause the engine (``EnginePaused``). Rejects: ``EngineAlreadyPaused``."""
        return self._do(lambda ts: m.EnginePaused(ts), timestamp)

    def resume_engine(self, *, timestamp: int | None = None) -> MutationOutcome[m.EngineResumed]:
        """Resume the engine (``EngineResumed``). Rejects: ``EngineNotPaused``,
        ``ResumeBeforePause``."""
        return self._do(lambda ts: m.EngineResumed(ts), timestamp)

    def declare_dependencies(
        self, task_id: TaskId, depends_on: Iterable[TaskId], *, timestamp: int | None = None
    ) -> MutationOutcome[m.DependencyDeclared]:
        """Declare prerequisites of a task (``DependencyDeclared``; order kept, declarations
        accumulate). Rejects: ``EmptyDependencyList``, ``UnknownTask`` (the task, then each
        prerequisite in order)."""
        return self._do(lambda ts: m.DependencyDeclared(task_id, tuple(depends_on), ts), timestamp)

    def suspend_run(self, run_id: RunId, reason: str | None = None, *, timestamp: int | None = None) -> MutationOutcome[m.RunSuspended]:
        """Suspend a Running run (``RunSuspended``). Rejects: ``UnknownRun``,
        ``RunSuspendRequiresRunning``, ``AttemptInProgress``."""
        return self._do(lambda ts: m.RunSuspended(run_id, reason, ts), timestamp)

    def resume_run(self, run_id: RunId, *, timestamp: int | None = None) -> MutationOutcome[m.RunResumed]:
        """Resume a Suspended run to Ready (``RunResumed``). Rejects: ``UnknownRun``,
        ``RunResumeRequiresSuspended``."""
        return self._do(lambda ts: m.RunResumed(run_id, ts), timestamp)

    # -- budgets -------------------------------------------------------------------------
    def allocate_budget(
        self, task_id: TaskId, dimension: BudgetDimension, limit: int, *, timestamp: int | None = None
    ) -> MutationOutcome[m.BudgetAllocated]:
        """Allocate (or reset) a task's budget in one dimension (``BudgetAllocated``).
        Rejects: ``InvalidArgument`` (limit 0), ``UnknownTask``."""
        return self._do(lambda ts: m.BudgetAllocated(task_id, dimension, limit, ts), timestamp)

    def consume_budget(
        self, task_id: TaskId, dimension: BudgetDimension, amount: int, *, timestamp: int | None = None
    ) -> MutationOutcome[m.BudgetConsumed]:
        """Record consumption (``BudgetConsumed``; without an allocation replay ignores it,
        as in Rust). Rejects: ``InvalidArgument`` (amount 0), ``UnknownTask``."""
        return self._do(lambda ts: m.BudgetConsumed(task_id, dimension, amount, ts), timestamp)

    def replenish_budget(
        self, task_id: TaskId, dimension: BudgetDimension, new_limit: int, *, timestamp: int | None = None
    ) -> MutationOutcome[m.BudgetReplenished]:
        """Set a new limit and zero the consumption (``BudgetReplenished``). Rejects:
        ``InvalidArgument`` (limit 0), ``UnknownTask``, ``BudgetNotAllocated``."""
        return self._do(lambda ts: m.BudgetReplenished(task_id, dimension, new_limit, ts), timestamp)

    # -- subscriptions -------------------------------------------------------------------
    def create_subscription(
        self, subscription_id: SubscriptionId, task_id: TaskId, filter: EventFilter, *, timestamp: int | None = None
    ) -> MutationOutcome[m.SubscriptionCreated]:
        """Subscribe a task to events (``SubscriptionCreated``). Rejects:
        ``InvalidArgument`` (threshold above 100, empty custom key), ``UnknownTask``,
        ``SubscriptionAlreadyExists``."""
        return self._do(lambda ts: m.SubscriptionCreated(subscription_id, task_id, filter, ts), timestamp)

    def trigger_subscription(self, subscription_id: SubscriptionId, *, timestamp: int | None = None) -> MutationOutcome[m.SubscriptionTriggered]:
        """Record that a subscription fired (``SubscriptionTriggered``; Rust checks nothing
        else, and replay ignores an unknown id)."""
        return self._do(lambda ts: m.SubscriptionTriggered(subscription_id, ts), timestamp)

    def cancel_subscription(self, subscription_id: SubscriptionId, *, timestamp: int | None = None) -> MutationOutcome[m.SubscriptionCanceled]:
        """Cancel a subscription (``SubscriptionCanceled``). Rejects: ``UnknownSubscription``,
        ``SubscriptionAlreadyCanceled``."""
        return self._do(lambda ts: m.SubscriptionCanceled(subscription_id, ts), timestamp)

    # -- actors, tenants, roles, capabilities, ledger --------------------------------------
    def register_actor(
        self,
        actor_id: ActorId,
        identity: str,
        capabilities: Iterable[str],
        heartbeat_interval_secs: int,
        *,
        department: str | None = None,
        tenant_id: TenantId | None = None,
        timestamp: int | None = None,
    ) -> MutationOutcome[m.ActorRegistered]:
        """Register (or re-register) an actor (``ActorRegistered``). Rejects
        ``InvalidArgument`` for what Rust's ``ActorRegistration`` refuses: empty identity,
        no or empty capabilities, a department outside 1..=128 bytes, interval 0."""
        caps = tuple(capabilities)
        return self._do(
            lambda ts: m.ActorRegistered(actor_id, identity, caps, department, heartbeat_interval_secs, tenant_id, ts),
            timestamp,
        )

    def heartbeat_actor(self, actor_id: ActorId, *, timestamp: int | None = None) -> MutationOutcome[m.ActorHeartbeat]:
        """Record an actor heartbeat (``ActorHeartbeat``; no other check, as in Rust)."""
        return self._do(lambda ts: m.ActorHeartbeat(actor_id, ts), timestamp)

    def deregister_actor(self, actor_id: ActorId, *, timestamp: int | None = None) -> MutationOutcome[m.ActorDeregistered]:
        """Deregister an actor (``ActorDeregistered``; no other check, as in Rust)."""
        return self._do(lambda ts: m.ActorDeregistered(actor_id, ts), timestamp)

    def create_tenant(self, tenant_id: TenantId, name: str, *, timestamp: int | None = None) -> MutationOutcome[m.TenantCreated]:
        """Create (or rename) a tenant (``TenantCreated``). Rejects ``InvalidArgument``
        (empty name)."""
        return self._do(lambda ts: m.TenantCreated(tenant_id, name, ts), timestamp)

    def assign_role(
        self, actor_id: ActorId, role: Role, tenant_id: TenantId, *, timestamp: int | None = None
    ) -> MutationOutcome[m.RoleAssigned]:
        """Set an actor's role in a tenant (``RoleAssigned``). Rejects ``InvalidArgument``
        (empty custom role)."""
        return self._do(lambda ts: m.RoleAssigned(actor_id, role, tenant_id, ts), timestamp)

    def grant_capability(
        self, actor_id: ActorId, capability: Capability, tenant_id: TenantId, *, timestamp: int | None = None
    ) -> MutationOutcome[m.CapabilityGranted]:
        """Grant a capability (``CapabilityGranted``; a re-grant clears a revocation).
        Rejects ``InvalidArgument`` (empty custom capability)."""
        return self._do(lambda ts: m.CapabilityGranted(actor_id, capability, tenant_id, ts), timestamp)

    def revoke_capability(
        self, actor_id: ActorId, capability: Capability, tenant_id: TenantId, *, timestamp: int | None = None
    ) -> MutationOutcome[m.CapabilityRevoked]:
        """Revoke a capability (``CapabilityRevoked``; replay ignores one never granted, as
        in Rust). Rejects ``InvalidArgument`` (empty custom capability)."""
        return self._do(lambda ts: m.CapabilityRevoked(actor_id, capability, tenant_id, ts), timestamp)

    def append_ledger_entry(
        self,
        entry_id: LedgerEntryId,
        tenant_id: TenantId,
        ledger_key: str,
        payload: bytes,
        *,
        actor_id: ActorId | None = None,
        timestamp: int | None = None,
    ) -> MutationOutcome[m.LedgerEntryAppended]:
        """Append to the ledger (``LedgerEntryAppended``; append-only, ids not deduplicated).
        Rejects ``InvalidArgument`` (empty ledger key)."""
        return self._do(
            lambda ts: m.LedgerEntryAppended(entry_id, tenant_id, ledger_key, actor_id, payload, ts), timestamp
        )

    def __repr__(self) -> str:
        state = f" poisoned={self._poisoned!r}" if self._poisoned is not None else ""
        return f"<MutationAuthority sequence={self._reducer.latest_sequence}{state}>"


def _derive_schedule(policy: Any, already: int, origin: int, now: int, command: str) -> list[int]:
    """The ``scheduled_at`` of each run to create (Rust's ``validate_derivation`` then the
    policy's derivation)."""
    if isinstance(policy, OncePolicy):
        if already > 1:
            raise DerivationRejected(
                "ArithmeticOverflow", command, f"invalid state: already_derived ({already}) > max (1)",
                policy="Once",
            )  # fmt: skip
        return [] if already >= 1 else [now]
    if isinstance(policy, RepeatPolicy):
        count, interval = policy.count, policy.interval_secs
        if already > count:
            raise DerivationRejected(
                "ArithmeticOverflow", command, f"invalid state: already_derived ({already}) > count ({count})",
                policy="Repeat",
            )  # fmt: skip
        if (count - 1) * interval > _U64_MAX or origin + (count - 1) * interval > _U64_MAX:
            raise DerivationRejected(
                "ArithmeticOverflow", command,
                f"schedule_origin {origin} + {count - 1} * {interval} overflows u64", policy="Repeat",
            )  # fmt: skip
        return [origin + i * interval for i in range(already, count)]
    if isinstance(policy, CronPolicy):
        if already > 0:
            return []
        window = CRON_WINDOW_SIZE if policy.max_occurrences is None else min(CRON_WINDOW_SIZE, policy.max_occurrences)
        return cron_occurrences_after(policy.expression, max(origin - 1, 0), window)
    raise DerivationRejected("InvalidPolicy", command, f"unknown run policy {policy!r}")  # pragma: no cover
