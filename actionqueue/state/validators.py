"""The mutation authority's command validators: Rust's checks, in Rust's order (spec 6.3).

One function per event kind, each raising :class:`~actionqueue.errors.CommandRejected` (the
subclass says the category) with Rust's error name as ``kind``; :data:`COMMANDS` maps each
event class to its command name and validator. The run rules they share with the reducer
and snapshot validation are asked of :mod:`.rules`; the authority runs the reducer's own
``check`` after them as the final gate. Also here: the run schedule a derivation creates
(:func:`derive_schedule`, Rust's ``validate_derivation`` and the policies' derivations).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import model as m
from ..errors import AlreadyExists, CommandRejected, Conflict, DerivationRejected, InvalidCommand, NotFound
from ..model import (
    Capability,
    CronPolicy,
    EventFilter,
    OncePolicy,
    RepeatPolicy,
    Role,
    RunId,
    RunState,
)
from ..model.cron import cron_occurrences_after
from .reducer import ReplayReducer
from .rules import LEASE_EVENT_STATES, attempt_blocks, is_valid_transition, outcome_shape_error

__all__ = ["COMMANDS", "CRON_WINDOW_SIZE", "derive_schedule", "reject"]

_U64_MAX = 0xFFFFFFFFFFFFFFFF

#: Runs a Cron task gets on its first derivation (Rust's ``CRON_WINDOW_SIZE``).
CRON_WINDOW_SIZE = 5

_NOT_FOUND = {"UnknownTask", "UnknownRun", "AttemptStartUnknownRun", "AttemptFinishUnknownRun",
              "LeaseUnknownRun", "UnknownSubscription"}  # fmt: skip
_ALREADY_EXISTS = {"TaskAlreadyExists", "RunAlreadyExists", "SubscriptionAlreadyExists"}
_INVALID = {"EmptyDependencyList", "SuccessWithError", "NonSuccessWithoutError", "NonSuccessWithOutput",
            "InvalidArgument", "RunCreateRequiresFreshRun", "UnsupportedEvent"}  # fmt: skip


def reject(kind: str, command: str, reason: str, **fields: Any) -> CommandRejected:
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
# Validation: one function per event kind, Rust's checks in Rust's order (spec 6.3)
# =========================================================================================
_RUNNING = RunState.RUNNING
_SUSPENDED = RunState.SUSPENDED
_CANCELED = RunState.CANCELED

_SHAPE_TEXT = {
    "SuccessWithError": "carries an error",
    "NonSuccessWithoutError": "needs an error",
    "NonSuccessWithOutput": "cannot carry output",
}

#: A command's validator: ``(projection, event, command name)``, raises or returns None.
Validator = Callable[[ReplayReducer, Any, str], None]


def _require(ok: bool, command: str, reason: str) -> None:
    if not ok:
        raise reject("InvalidArgument", command, reason)


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
        raise reject("TaskAlreadyExists", c, f"task {tid} already exists", task_id=tid)


def _v_run_created(r: ReplayReducer, ev: m.RunCreated, c: str) -> None:
    inst = ev.run_instance
    if not r.task_exists(inst.task_id):
        raise reject("UnknownTask", c, f"task {inst.task_id} of run {inst.id} is unknown", task_id=inst.task_id)
    if r.run_exists(inst.id):
        raise reject("RunAlreadyExists", c, f"run {inst.id} already exists", run_id=inst.id)
    if inst.state is not RunState.SCHEDULED:
        raise reject(
            "RunCreateRequiresScheduled", c, f"run {inst.id} is {inst.state.value}, not Scheduled",
            run_id=inst.id, state=inst.state,
        )  # fmt: skip
    if inst.attempt_count != 0:
        raise reject(
            "RunCreateRequiresFreshRun", c, f"run {inst.id} counts {inst.attempt_count} attempts, not 0",
            run_id=inst.id, attempt_count=inst.attempt_count,
        )  # fmt: skip


def _run_state(r: ReplayReducer, run_id: RunId, c: str, unknown_kind: str = "UnknownRun") -> RunState:
    state = r.get_run_state(run_id)
    if state is None:
        raise reject(unknown_kind, c, f"run {run_id} is unknown", run_id=run_id)
    return state


def _v_run_state_changed(r: ReplayReducer, ev: m.RunStateChanged, c: str) -> None:
    run_id, prev, new = ev.run_id, ev.previous_state, ev.new_state
    state = _run_state(r, run_id, c)
    if state is not prev:
        raise reject(
            "PreviousStateMismatch", c, f"run {run_id} is {state.value}, the command says {prev.value}",
            run_id=run_id, expected=prev, actual=state,
        )  # fmt: skip
    if not is_valid_transition(prev, new):
        raise reject(
            "InvalidTransition", c, f"{prev.value} -> {new.value} is not a run transition",
            run_id=run_id, from_state=prev, to_state=new,
        )  # fmt: skip
    _check_attempt_blocks(r, run_id, prev, new, c)


def _check_attempt_blocks(r: ReplayReducer, run_id: RunId, prev: RunState, new: RunState, c: str) -> None:
    """Ours (spec 6.5): an active attempt blocks entering Running and leaving it except to
    Canceled, as the reducer rules."""
    active = r.active_attempt_id(run_id)
    if active is not None and attempt_blocks(prev, new):
        raise reject(
            "AttemptInProgress", c,
            f"run {run_id} cannot go {prev.value} -> {new.value} while attempt {active} is active "
            "(finish it first, or cancel the run)",
            run_id=run_id, attempt_id=active,
        )  # fmt: skip


def _v_attempt_started(r: ReplayReducer, ev: m.AttemptStarted, c: str) -> None:
    run_id = ev.run_id
    state = _run_state(r, run_id, c, "AttemptStartUnknownRun")
    if state is not _RUNNING:
        raise reject(
            "AttemptStartRequiresRunning", c, f"run {run_id} is {state.value}", run_id=run_id, state=state
        )
    active = r.active_attempt_id(run_id)
    if active is not None:
        raise reject(
            "AttemptStartAlreadyActive", c, f"attempt {active} of run {run_id} is active",
            run_id=run_id, active_attempt_id=active,
        )  # fmt: skip
    history = r.get_attempt_history(run_id) or ()
    if any(a.attempt_id == ev.attempt_id for a in history):
        raise reject(
            "AttemptIdReused", c, f"run {run_id} already had an attempt {ev.attempt_id}",
            run_id=run_id, attempt_id=ev.attempt_id,
        )  # fmt: skip


def _v_attempt_finished(r: ReplayReducer, ev: m.AttemptFinished, c: str) -> None:
    # The outcome is built by Rust's validated AttemptOutcome constructors first.
    result = ev.result
    shape = outcome_shape_error(result, ev.error, ev.output)
    if shape is not None:
        raise reject(shape, c, f"a {result.value} outcome {_SHAPE_TEXT[shape]}", result=result)
    run_id = ev.run_id
    state = _run_state(r, run_id, c, "AttemptFinishUnknownRun")
    if state is not _RUNNING:
        raise reject(
            "AttemptFinishRequiresRunning", c, f"run {run_id} is {state.value}", run_id=run_id, state=state
        )
    active = r.active_attempt_id(run_id)
    if active is None:
        raise reject("AttemptFinishMissingActive", c, f"run {run_id} has no active attempt", run_id=run_id)
    if active != ev.attempt_id:
        raise reject(
            "AttemptFinishAttemptMismatch", c, f"the active attempt of run {run_id} is {active}, not {ev.attempt_id}",
            run_id=run_id, expected_attempt_id=active, provided_attempt_id=ev.attempt_id,
        )  # fmt: skip


def _v_task_canceled(r: ReplayReducer, ev: m.TaskCanceled, c: str) -> None:
    if not r.task_exists(ev.task_id):
        raise reject("UnknownTask", c, f"task {ev.task_id} is unknown", task_id=ev.task_id)
    if r.is_task_canceled(ev.task_id):
        raise reject(
            "TaskAlreadyCanceled", c, f"task {ev.task_id} was canceled at {r.task_canceled_at(ev.task_id)}",
            task_id=ev.task_id,
        )  # fmt: skip


def _v_run_canceled(r: ReplayReducer, ev: m.RunCanceled, c: str) -> None:
    state = _run_state(r, ev.run_id, c)
    if not is_valid_transition(state, _CANCELED):
        raise reject(
            "InvalidTransition", c, f"run {ev.run_id} is {state.value}: terminal runs cannot be canceled",
            run_id=ev.run_id, from_state=state, to_state=_CANCELED,
        )  # fmt: skip


def _v_lease(event: str) -> Validator:
    allowed = LEASE_EVENT_STATES[event]

    def validate(r: ReplayReducer, ev: Any, c: str) -> None:
        _require(ev.owner != "", c, "the lease owner is empty")
        run_id = ev.run_id
        state = _run_state(r, run_id, c, "LeaseUnknownRun")
        if state not in allowed:
            raise reject(
                "LeaseInvalidRunState", c, f"lease {event.lower()} for run {run_id} in state {state.value}",
                run_id=run_id, event=event, state=state,
            )  # fmt: skip
        lease = r.get_lease(run_id)
        if event == "Acquire":
            if lease is not None:
                raise reject(
                    "LeaseAlreadyActive", c, f"run {run_id} is leased by {lease[0]!r}", run_id=run_id, event=event
                )
            return
        if lease is None:
            raise reject("LeaseMissingActive", c, f"run {run_id} has no active lease", run_id=run_id, event=event)
        owner, expiry = lease
        if ev.owner != owner:
            raise reject(
                "LeaseOwnerMismatch", c, f"run {run_id} is leased by {owner!r}, not {ev.owner!r}",
                run_id=run_id, event=event, expected_owner=owner, actual_owner=ev.owner,
            )  # fmt: skip
        if event == "Heartbeat":
            if ev.expiry < expiry:
                raise reject(
                    "LeaseHeartbeatExpiryRegression", c, f"expiry {ev.expiry} is before the current {expiry}",
                    run_id=run_id, previous_expiry=expiry, proposed_expiry=ev.expiry,
                )  # fmt: skip
        elif ev.expiry != expiry:
            raise reject(
                "LeaseExpiryMismatch", c, f"the lease of run {run_id} expires at {expiry}, not {ev.expiry}",
                run_id=run_id, event=event, expected_expiry=expiry, provided_expiry=ev.expiry,
            )  # fmt: skip

    return validate


def _v_engine_paused(r: ReplayReducer, ev: m.EnginePaused, c: str) -> None:
    if r.is_engine_paused:
        raise reject("EngineAlreadyPaused", c, f"the engine is paused since {r.engine_paused_at}")


def _v_engine_resumed(r: ReplayReducer, ev: m.EngineResumed, c: str) -> None:
    if not r.is_engine_paused:
        raise reject("EngineNotPaused", c, "the engine is not paused")
    paused_at = r.engine_paused_at
    if paused_at is not None and ev.timestamp < paused_at:
        raise reject(
            "ResumeBeforePause", c, f"resume at {ev.timestamp} precedes the pause at {paused_at}",
            paused_at=paused_at, resumed_at=ev.timestamp,
        )  # fmt: skip


def _v_dependency_declared(r: ReplayReducer, ev: m.DependencyDeclared, c: str) -> None:
    if not ev.depends_on:
        raise reject("EmptyDependencyList", c, f"task {ev.task_id} declares no prerequisites", task_id=ev.task_id)
    for tid in (ev.task_id, *ev.depends_on):
        if not r.task_exists(tid):
            raise reject("UnknownTask", c, f"task {tid} is unknown", task_id=tid)


def _v_run_suspended(r: ReplayReducer, ev: m.RunSuspended, c: str) -> None:
    state = _run_state(r, ev.run_id, c)
    if state is not _RUNNING:
        raise reject("RunSuspendRequiresRunning", c, f"run {ev.run_id} is {state.value}", run_id=ev.run_id, state=state)
    _check_attempt_blocks(r, ev.run_id, _RUNNING, _SUSPENDED, c)


def _v_run_resumed(r: ReplayReducer, ev: m.RunResumed, c: str) -> None:
    state = _run_state(r, ev.run_id, c)
    if state is not _SUSPENDED:
        raise reject("RunResumeRequiresSuspended", c, f"run {ev.run_id} is {state.value}", run_id=ev.run_id, state=state)


def _v_budget(field: str) -> Validator:
    def validate(r: ReplayReducer, ev: Any, c: str) -> None:
        _require(getattr(ev, field) > 0, c, f"{field} must be above 0")
        if not r.task_exists(ev.task_id):
            raise reject("UnknownTask", c, f"task {ev.task_id} is unknown", task_id=ev.task_id)
        if field == "new_limit" and not r.budget_allocation_exists(ev.task_id, ev.dimension):
            raise reject(
                "BudgetNotAllocated", c, f"task {ev.task_id} has no {ev.dimension.value} budget",
                task_id=ev.task_id, dimension=ev.dimension,
            )  # fmt: skip

    return validate


def _v_subscription_created(r: ReplayReducer, ev: m.SubscriptionCreated, c: str) -> None:
    _check_filter(ev.filter, c)
    if not r.task_exists(ev.task_id):
        raise reject("UnknownTask", c, f"task {ev.task_id} is unknown", task_id=ev.task_id)
    if r.subscription_exists(ev.subscription_id):
        raise reject(
            "SubscriptionAlreadyExists", c, f"subscription {ev.subscription_id} already exists",
            subscription_id=ev.subscription_id,
        )  # fmt: skip


def _v_subscription_canceled(r: ReplayReducer, ev: m.SubscriptionCanceled, c: str) -> None:
    sid = ev.subscription_id
    if not r.subscription_exists(sid):
        raise reject("UnknownSubscription", c, f"subscription {sid} is unknown", subscription_id=sid)
    if r.is_subscription_canceled(sid):
        raise reject("SubscriptionAlreadyCanceled", c, f"subscription {sid} is canceled", subscription_id=sid)


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
    raise reject(
        "UnsupportedEvent", c,
        f"no command writes {type(ev).__name__} (reserved for snapshot bootstrap, as in Rust)",
    )  # fmt: skip


#: event class -> (command name, validator)
COMMANDS: dict[type, tuple[str, Validator]] = {
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
assert set(COMMANDS) == set(m.EVENT_TYPES)


# =========================================================================================
# Run derivation
# =========================================================================================
def derive_schedule(policy: Any, already: int, origin: int, now: int, command: str) -> list[int]:
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
