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
:func:`~actionqueue.state.rules.normalize_attempt_outcome`).

The rules a run follows (transitions, attempts, leases, outcome shapes) are asked of
:mod:`.rules`, which the mutation authority and snapshot validation ask too. The state the
events fold into, its read API and its lock are :class:`~.projection.Projection`'s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from .. import model as m
from ..errors import (  # the reducer's errors live with every other error type
    CorruptedData,
    DuplicateEvent,
    EngineControlCausality,
    InvalidTransition,
    LeaseCausality,
    ReducerError,
    TaskCausality,
)
from ..model import RunId, RunState, WalEvent
from .projection import Projection
from .records import (
    CapabilityGrantRecord,
    LedgerEntryRecord,
    RoleAssignmentRecord,
    TenantRecord,
    _Actor,
    _Attempt,
    _Budget,
    _Run,
    _Subscription,
    _Task,
    capability_key,
)
from .rules import ALLOWED_BY_STATE as _ALLOWED
from .rules import BLOCKED_BY_ACTIVE_ATTEMPT as _BLOCKED
from .rules import LEASE_EVENT_STATES as _LEASE_STATES
from .rules import TERMINAL_STATES as _TERMINAL
from .rules import normalize_attempt_outcome, outcome_shape_error

__all__ = ["ReplayReducer"]

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

_ACQUIRE_STATES = _LEASE_STATES["Acquire"]
_HEARTBEAT_STATES = _LEASE_STATES["Heartbeat"]


def _lease_error(kind: str, run_id: RunId, event: str, **fields: Any) -> LeaseCausality:
    return LeaseCausality(kind, run_id=run_id, event=event, **fields)


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")


# =========================================================================================
# The reducer
# =========================================================================================
class ReplayReducer(Projection):
    """Folds WAL events, in sequence order, into the projection.

    >>> r = ReplayReducer()
    >>> for event in events:          # doctest: +SKIP
    ...     r.apply(event)

    :meth:`apply` either applies an event completely or raises a :class:`ReducerError` and
    leaves the projection exactly as it was (including :attr:`latest_sequence`, so the same
    sequence number may be used again). Reads (the :class:`~.projection.Projection` API) are
    safe from other threads while events are applied.
    """

    __slots__ = ()

    # -------------------------------------------------------------------------------------
    # Applying events
    # -------------------------------------------------------------------------------------
    def apply(self, event: WalEvent) -> None:
        """Apply one event, or raise :class:`ReducerError` and change nothing.

        The sequence must be above :attr:`latest_sequence` (gaps allowed; 0 never accepted);
        otherwise :class:`InvalidTransition`, as in Rust.
        """
        with self._lock:
            self._apply(event)

    def _apply(self, event: WalEvent) -> None:
        """:meth:`apply` with the lock already held."""
        seq = event.sequence
        if seq <= self._latest_sequence:
            raise InvalidTransition(
                f"not above the latest applied sequence {self._latest_sequence}", sequence=seq
            )
        ev: Any = event.event  # dispatched on its exact class below
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
        with self._lock:
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
        before it stay applied (as Rust's replay driver does). Holds the lock for the whole
        batch: readers on other threads wait for it (feed a live projection in batches).
        """
        n = 0
        with self._lock:
            for event in events:
                self._apply(event)  # compiled: a direct C call
                n += 1
        return n

    # ---- shared run transition ----------------------------------------------------------
    def _transition(self, rec: _Run, prev: RunState, new: RunState, ts: int, commit: bool = True) -> None:
        """Move ``rec`` from ``prev`` to ``new`` at ``ts``: every check, then every change.

        Rust's ``apply_run_state_changed`` plus ``RunInstance::transition_to``: the run must
        be in ``prev``; ``prev -> new`` must be one of the allowed transitions, and not one an
        active attempt blocks (:mod:`.rules`; Canceled drops the attempt). Terminal states
        clear the lease.
        """
        if rec.state is not prev:
            raise InvalidTransition(
                f"run {rec.base.id} is {rec.state.value}, the event says {prev.value} -> {new.value}"
            )
        if new not in _ALLOWED[prev]:
            raise InvalidTransition(f"run {rec.base.id}: {prev.value} -> {new.value} is not a valid transition")
        if rec.attempt_id is not None and new in _BLOCKED[prev]:
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
        result, error, output = ev.result, ev.error, ev.output
        if outcome_shape_error(result, error, output) is not None:  # a shape Rust replaces
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
        if state not in _ACQUIRE_STATES:
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
        if state not in _HEARTBEAT_STATES:
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
        if state not in _LEASE_STATES[what]:
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


# One handler per event kind, indexed by ``Event.kind`` (``_on_<snake_case kind name>``).
# Plain functions called with the reducer, not bound methods kept on the instance: those
# would make every reducer a reference cycle, freed only by the cyclic GC.
_HANDLERS: tuple = tuple(getattr(ReplayReducer, "_on_" + _snake(cls.__name__)) for cls in m.EVENT_TYPES)
#: Per kind, the handler to call with ``commit=False`` for :meth:`ReplayReducer.check`, or
#: ``None`` for kinds the reducer never rejects (only the sequence rule applies to them).
_CHECKS: tuple = tuple(
    h if "commit" in h.__code__.co_varnames[: h.__code__.co_argcount] else None for h in _HANDLERS
)
