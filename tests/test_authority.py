"""The mutation authority: validated commands, appended durably, then applied.

* Every command's happy path: the projection changes as the command says, and the log on
  disk holds exactly the records the outcomes report, with gapless sequences.
* Every rejection raises a typed :class:`CommandRejected` with Rust's error name as
  ``kind`` and leaves the WAL bytes and the projection exactly as they were.
* The three hazards of spec 6.5 (Rust's authority writes records its reducer rejects) are
  rejected here, and the reducer's ``check`` alone (the final gate) would catch them too.
* Random command sequences, accepted or rejected: replaying the WAL from disk into a fresh
  reducer gives the authority's projection (nothing replay rejects was ever written).
* A closed, failing or poisoned writer, and an apply failure, give typed errors and apply
  nothing; concurrent commands with group commit give a gapless log that replays.
"""

from __future__ import annotations

import itertools
import os
import pickle
import tempfile
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from aq_testlib import budget
from reducer_testlib import deep_state

import actionqueue as aq
from actionqueue.model.cron import cron_occurrences_after
from actionqueue.state.rules import valid_transitions
from actionqueue.errors import (
    AlreadyExists,
    AuthorityPoisoned,
    CommandRejected,
    Conflict,
    DerivationRejected,
    InvalidCommand,
    NotFound,
    ReplayWouldReject,
)
from actionqueue.state.authority import MutationAuthority
from actionqueue.state.records import LeaseMetadata
from actionqueue.state.reducer import ReplayReducer

S = aq.RunState
R = aq.AttemptResultKind
TOKEN = aq.BudgetDimension.TOKEN
COST = aq.BudgetDimension.COST_CENTS


# =========================================================================================
# Helpers
# =========================================================================================
def counter_clock(start: int = 1000):
    ticks = itertools.count(start)
    return lambda: next(ticks)


def open_authority(data_dir: Path, durability: str = "none", **kw) -> MutationAuthority:
    store = aq.open(data_dir, durability=durability, **kw)
    return MutationAuthority.from_store(store, clock=counter_clock())


def wal_bytes(data_dir: Path) -> dict[str, bytes]:
    """Every file of the log (name -> content), the lock file and a closed writer's
    checkpoint aside."""
    return {
        p.name: p.read_bytes()
        for p in sorted((Path(data_dir) / "wal").iterdir())
        if p.name not in ("LOCK", aq.wal.CHECKPOINT_NAME)
    }


def disk_events(data_dir: Path) -> list[aq.WalEvent]:
    return list(aq.WalReader(data_dir))


def replayed(data_dir: Path) -> ReplayReducer:
    """A fresh reducer fed the log read back from disk."""
    r = ReplayReducer()
    for event in aq.WalReader(data_dir):
        r.apply(event)
    return r


@pytest.fixture
def auth(tmp_path):
    a = open_authority(tmp_path)
    yield a
    a.writer.close()


class World:
    """A projection with something in every state, built through the authority."""

    def __init__(self, a: MutationAuthority):
        self.a = a
        self.task = aq.TaskId.new()
        self.other = aq.TaskId.new()
        self.canceled_task = aq.TaskId.new()
        for t in (self.task, self.other, self.canceled_task):
            a.create_task(aq.TaskSpec(t))
        a.cancel_task(self.canceled_task)

        def run() -> aq.RunId:
            rid = aq.RunId.new()
            a.create_run(aq.RunInstance(rid, self.task, S.SCHEDULED, None, 0, 1000, 1000, 0, 1000))
            return rid

        self.scheduled = run()
        self.ready = run()
        a.transition_run(self.ready, S.SCHEDULED, S.READY)
        self.leased = run()  # Leased, lease held by w1 until 5000
        a.transition_run(self.leased, S.SCHEDULED, S.READY)
        a.acquire_lease(self.leased, "w1", 5000)
        a.transition_run(self.leased, S.READY, S.LEASED)
        self.leased_no_lease = run()
        a.transition_run(self.leased_no_lease, S.SCHEDULED, S.READY)
        a.transition_run(self.leased_no_lease, S.READY, S.LEASED)
        self.running = run()  # Running with an active attempt, lease w1 until 5000
        self.to_running(self.running)
        self.attempt = aq.AttemptId.new()
        a.start_attempt(self.running, self.attempt)
        self.idle = run()  # Running, attempt `finished_attempt` finished, none active
        self.to_running(self.idle)
        self.finished_attempt = aq.AttemptId.new()
        a.start_attempt(self.idle, self.finished_attempt)
        a.finish_attempt(self.idle, self.finished_attempt, R.SUCCESS)
        self.suspended = run()
        self.to_running(self.suspended)
        a.suspend_run(self.suspended, "waiting")
        self.completed = run()
        self.to_running(self.completed)
        a.transition_run(self.completed, S.RUNNING, S.COMPLETED)
        a.allocate_budget(self.task, TOKEN, 100)
        self.sub = aq.SubscriptionId.new()
        a.create_subscription(self.sub, self.task, aq.TaskCompletedFilter(self.task))
        self.canceled_sub = aq.SubscriptionId.new()
        a.create_subscription(self.canceled_sub, self.task, aq.CustomFilter("k"))
        a.cancel_subscription(self.canceled_sub)

    def to_running(self, rid: aq.RunId) -> None:
        a = self.a
        a.transition_run(rid, S.SCHEDULED, S.READY)
        a.acquire_lease(rid, "w1", 5000)
        a.transition_run(rid, S.READY, S.LEASED)
        a.transition_run(rid, S.LEASED, S.RUNNING)


@pytest.fixture
def world(auth):
    return World(auth)


def assert_rejected(a: MutationAuthority, kind: str, call, cls: type = CommandRejected) -> CommandRejected:
    """``call()`` raises a CommandRejected of ``kind`` and changes neither the log nor the
    projection."""
    data_dir = a.writer.data_dir
    before_bytes = wal_bytes(data_dir)
    before_state = deep_state(a.reducer)
    before_seq = (a.latest_sequence, a.writer.current_sequence)
    with pytest.raises(CommandRejected) as info:
        call()
    err = info.value
    assert err.kind == kind, str(err)
    assert isinstance(err, cls)
    assert wal_bytes(data_dir) == before_bytes
    assert deep_state(a.reducer) == before_state
    assert (a.latest_sequence, a.writer.current_sequence) == before_seq
    assert a.poisoned is None
    return err


# =========================================================================================
# Happy paths
# =========================================================================================
def test_every_command_applies_and_writes_exactly_its_record(tmp_path) -> None:
    a = open_authority(tmp_path)
    outcomes = []

    def do(outcome):
        outcomes.append(outcome)
        assert outcome.sequence == len(outcomes) == a.latest_sequence == a.writer.current_sequence
        return outcome

    r = a.reducer
    t, t2 = aq.TaskId.new(), aq.TaskId.new()
    spec = aq.TaskSpec(t, metadata=aq.TaskMetadata(priority=3))
    do(a.create_task(spec, timestamp=500))
    assert r.get_task(t) == spec and r.get_task_record(t).created_at == 500
    do(a.create_task(aq.TaskSpec(t2)))
    assert r.get_task_record(t2).created_at == 1000  # the injected clock

    run = do(a.derive_runs(t, timestamp=600)[0]).event.run_instance
    assert (run.task_id, run.state, run.created_at, run.scheduled_at, run.attempt_count) == (t, S.SCHEDULED, 600, 600, 0)
    rid = run.id
    assert r.get_run_instance(rid) == run
    run2 = aq.RunInstance(aq.RunId.new(), t2, S.SCHEDULED, None, 0, 700, 800, 0, 700)
    do(a.create_run(run2))
    assert r.runs_for_task(t2) == [run2]

    do(a.transition_run(rid, S.SCHEDULED, S.READY, timestamp=610))
    do(a.acquire_lease(rid, "w1", 5000, timestamp=611))
    assert r.get_lease_metadata(rid) == LeaseMetadata("w1", 5000, 611, 611)
    do(a.transition_run(rid, S.READY, S.LEASED))
    do(a.heartbeat_lease(rid, "w1", 6000, timestamp=612))
    assert r.get_lease(rid) == ("w1", 6000) and r.get_lease_metadata(rid).updated_at == 612
    do(a.transition_run(rid, S.LEASED, S.RUNNING))
    att = aq.AttemptId.new()
    do(a.start_attempt(rid, att, timestamp=620))
    assert r.active_attempt_id(rid) == att
    do(a.finish_attempt(rid, att, R.SUCCESS, output=b"ok", timestamp=621))
    entry = r.get_attempt_history(rid)[0]
    assert (entry.attempt_id, entry.finished_at, entry.result, entry.error, entry.output) == (att, 621, R.SUCCESS, None, b"ok")
    assert r.get_run_state(rid) is S.RUNNING and r.active_attempt_id(rid) is None
    fresh = do(a.start_attempt(rid)).event.attempt_id  # a new id by default
    do(a.finish_attempt(rid, fresh, R.FAILURE, error="boom"))
    assert r.get_attempt_history(rid)[1].error == "boom"
    do(a.suspend_run(rid, "needs approval", timestamp=630))
    assert r.get_run_state(rid) is S.SUSPENDED
    do(a.resume_run(rid, timestamp=631))
    assert r.get_run_state(rid) is S.READY
    do(a.release_lease(rid, "w1", 6000))
    assert r.get_lease(rid) is None
    do(a.acquire_lease(rid, "w2", 7000))
    do(a.expire_lease(rid, "w2", 7000))
    assert r.get_lease(rid) is None
    do(a.cancel_run(rid, timestamp=640))
    assert r.get_run_state(rid) is S.CANCELED
    assert r.get_run_history(rid)[-1] == (S.READY, S.CANCELED, 640)

    do(a.cancel_task(t2, timestamp=650))
    assert r.task_canceled_at(t2) == 650
    do(a.pause_engine(timestamp=660))
    assert r.is_engine_paused and r.engine_paused_at == 660
    do(a.resume_engine(timestamp=660))  # equal to the pause time is fine
    assert not r.is_engine_paused and r.engine_resumed_at == 660
    do(a.declare_dependencies(t, [t2]))
    assert r.dependency_declarations() == {t: frozenset({t2})}

    do(a.allocate_budget(t, TOKEN, 100, timestamp=670))
    do(a.consume_budget(t, TOKEN, 100))
    assert r.is_budget_exhausted(t, TOKEN)
    do(a.replenish_budget(t, TOKEN, 300))
    b = r.get_budget(t, TOKEN)
    assert (b.limit, b.consumed, b.exhausted, b.allocated_at) == (300, 0, False, 670)

    sid = aq.SubscriptionId.new()
    filt = aq.BudgetThresholdFilter(t, TOKEN, 100)
    do(a.create_subscription(sid, t, filt, timestamp=680))
    do(a.trigger_subscription(sid, timestamp=681))
    do(a.cancel_subscription(sid, timestamp=682))
    s = r.get_subscription(sid)
    assert (s.filter, s.created_at, s.triggered_at, s.canceled_at) == (filt, 680, 681, 682)

    actor, tenant = aq.ActorId.new(), aq.TenantId.new()
    do(a.create_tenant(tenant, "Acme", timestamp=690))
    assert r.get_tenant(tenant).name == "Acme"
    do(a.register_actor(actor, "bot", ["gpu", "cpu"], 30, department="ml", tenant_id=tenant, timestamp=691))
    do(a.heartbeat_actor(actor, timestamp=692))
    rec = r.get_actor(actor)
    assert (rec.identity, rec.capabilities, rec.department, rec.tenant_id, rec.last_heartbeat_at) == (
        "bot", ("gpu", "cpu"), "ml", tenant, 692)
    do(a.assign_role(actor, aq.Role.OPERATOR, tenant))
    assert r.get_role_assignment(actor, tenant).role == aq.Role.OPERATOR
    do(a.grant_capability(actor, aq.Capability.custom("deploy"), tenant))
    assert r.actor_has_capability(actor, "Custom:deploy", tenant)
    do(a.revoke_capability(actor, aq.Capability.custom("deploy"), tenant))
    assert not r.actor_has_capability(actor, "Custom:deploy", tenant)
    entry_id = aq.LedgerEntryId.new()
    do(a.append_ledger_entry(entry_id, tenant, "ledger/a", b"\x00\x01", actor_id=actor, timestamp=693))
    assert r.ledger_entries()[0].entry_id == entry_id and r.ledger_entries()[0].timestamp == 693
    do(a.deregister_actor(actor))
    assert not r.is_actor_active(actor)
    do(a.submit(aq.EnginePaused(700)))  # the generic entry point

    covered = {type(o.event) for o in outcomes}
    assert covered == set(aq.EVENT_TYPES) - {aq.BudgetExhausted}  # every command's event
    a.writer.close()
    # the log holds exactly the outcomes, 1..n, and replays to the same projection
    assert disk_events(tmp_path) == [o.wal_event for o in outcomes]
    assert deep_state(replayed(tmp_path)) == deep_state(a.reducer)
    with aq.open(tmp_path) as store:
        assert deep_state(store.reducer) == deep_state(a.reducer)
    aq.build_snapshot(a.reducer, 1)  # and it can be snapshotted


def test_derive_once_repeat_cron(auth) -> None:
    a = auth
    once, rep, cron, capped = (aq.TaskId.new() for _ in range(4))
    a.create_task(aq.TaskSpec(once), timestamp=100)
    outs = a.derive_runs(once, timestamp=150)
    assert [(o.event.run_instance.scheduled_at, o.event.run_instance.created_at) for o in outs] == [(150, 150)]
    assert a.derive_runs(once) == []  # Once: never a second run

    # Repeat(4, 60) from origin 900; two runs exist already: runs 2 and 3 are derived
    a.create_task(aq.TaskSpec(rep, run_policy=aq.RunPolicy.repeat(4, 60)), timestamp=900)
    for _ in range(2):
        a.create_run(aq.RunInstance(aq.RunId.new(), rep, S.SCHEDULED, None, 0, 900, 900, 0, 900))
    before = a.latest_sequence
    outs = a.derive_runs(rep, timestamp=1500)
    assert [o.event.run_instance.scheduled_at for o in outs] == [1020, 1080]
    assert [o.sequence for o in outs] == [before + 1, before + 2]
    assert {o.event.run_instance.created_at for o in outs} == {1500}
    assert a.derive_runs(rep) == []
    # an explicit origin
    rep2 = aq.TaskId.new()
    a.create_task(aq.TaskSpec(rep2, run_policy=aq.RunPolicy.repeat(3, 10)))
    assert [o.event.run_instance.scheduled_at for o in a.derive_runs(rep2, schedule_origin=5)] == [5, 15, 25]

    # Cron: the first window of 5, starting at the origin itself when it matches
    a.create_task(aq.TaskSpec(cron, run_policy=aq.RunPolicy.cron("*/20 * * * * * *")), timestamp=1000)
    assert [o.event.run_instance.scheduled_at for o in a.derive_runs(cron)] == [1000, 1020, 1040, 1060, 1080]
    assert a.derive_runs(cron) == []  # later windows are the dispatcher's
    # Mondays at noon UTC after 2023-11-14 22:13:20, capped by max_occurrences
    a.create_task(aq.TaskSpec(capped, run_policy=aq.RunPolicy.cron("0 0 12 * * Mon *", 3)), timestamp=1_700_000_000)
    assert [o.event.run_instance.scheduled_at for o in a.derive_runs(capped)] == [
        1_700_481_600, 1_700_481_600 + 7 * 86400, 1_700_481_600 + 14 * 86400]


def test_cron_occurrences_by_hand() -> None:
    occ = cron_occurrences_after
    # 2024-02-29 00:00:00 UTC = 1709164800; "0 0 0 29 2 * *" fires only on leap days
    assert occ("0 0 0 29 2 * *", 1709164800 - 1, 2) == [1709164800, 1709164800 + (366 + 365 * 3) * 86400]
    assert occ("@daily", 86400 * 10 + 5, 2) == [86400 * 11, 86400 * 12]
    # 1970-01-04 was a Sunday (day of week 1)
    assert occ("0 0 0 * * 1 *", 0, 1) == [3 * 86400] == occ("@weekly", 0, 1)
    assert occ("0 30 9 * * * 1970", 86400 * 364, 5) == [86400 * 364 + 9 * 3600 + 1800]  # the year ends
    assert occ("1-3 0 0 1 JAN *", 0, 4) == [1, 2, 3, 365 * 86400 + 1]  # six fields, a month name


def test_derivation_is_one_write(tmp_path) -> None:
    a = open_authority(tmp_path)
    t = aq.TaskId.new()
    a.create_task(aq.TaskSpec(t, run_policy=aq.RunPolicy.repeat(5, 1)))
    before = wal_bytes(tmp_path)
    a.writer.close()
    with pytest.raises(aq.WriterClosed):
        a.derive_runs(t)
    assert wal_bytes(tmp_path) == before and a.reducer.run_count == 0 and a.poisoned is None


# =========================================================================================
# Rejections: typed, and nothing written or changed
# =========================================================================================
def _instance(task, *, state=S.SCHEDULED, attempts=0, rid=None):
    return aq.RunInstance(rid or aq.RunId.new(), task, state, None, attempts, 1000, 1000, 0, 1000)


NEW_RUN = aq.RunId.new()
NEW_TASK = aq.TaskId.new()

REJECTIONS = {
    # create / runs
    "TaskAlreadyExists": lambda w: w.a.create_task(aq.TaskSpec(w.task)),
    "UnknownTask/create_run": lambda w: w.a.create_run(_instance(NEW_TASK)),
    "RunAlreadyExists": lambda w: w.a.create_run(_instance(w.task, rid=w.ready)),
    "RunCreateRequiresScheduled": lambda w: w.a.create_run(_instance(w.task, state=S.READY)),
    "RunCreateRequiresFreshRun": lambda w: w.a.create_run(_instance(w.task, attempts=2)),
    "UnknownTask/derive_runs": lambda w: w.a.derive_runs(NEW_TASK),
    "UnknownRun/transition": lambda w: w.a.transition_run(NEW_RUN, S.SCHEDULED, S.READY),
    "PreviousStateMismatch": lambda w: w.a.transition_run(w.ready, S.SCHEDULED, S.READY),
    "InvalidTransition/skip": lambda w: w.a.transition_run(w.scheduled, S.SCHEDULED, S.RUNNING),
    "InvalidTransition/terminal": lambda w: w.a.transition_run(w.completed, S.COMPLETED, S.READY),
    "InvalidTransition/self": lambda w: w.a.transition_run(w.ready, S.READY, S.READY),
    "AttemptInProgress/completed": lambda w: w.a.transition_run(w.running, S.RUNNING, S.COMPLETED),
    "AttemptInProgress/retry": lambda w: w.a.transition_run(w.running, S.RUNNING, S.RETRY_WAIT),
    "AttemptInProgress/failed": lambda w: w.a.transition_run(w.running, S.RUNNING, S.FAILED),
    "AttemptInProgress/suspended": lambda w: w.a.transition_run(w.running, S.RUNNING, S.SUSPENDED),
    # attempts
    "AttemptStartUnknownRun": lambda w: w.a.start_attempt(NEW_RUN),
    "AttemptStartRequiresRunning": lambda w: w.a.start_attempt(w.leased),
    "AttemptStartAlreadyActive": lambda w: w.a.start_attempt(w.running),
    "AttemptIdReused": lambda w: w.a.start_attempt(w.idle, w.finished_attempt),
    "SuccessWithError": lambda w: w.a.finish_attempt(w.running, w.attempt, R.SUCCESS, error="x"),
    "SuccessWithError/suspended": lambda w: w.a.finish_attempt(w.running, w.attempt, R.SUSPENDED, error="x"),
    "NonSuccessWithoutError": lambda w: w.a.finish_attempt(w.running, w.attempt, R.TIMEOUT),
    "NonSuccessWithOutput": lambda w: w.a.finish_attempt(w.running, w.attempt, R.FAILURE, error="x", output=b""),
    "AttemptFinishUnknownRun": lambda w: w.a.finish_attempt(NEW_RUN, w.attempt, R.SUCCESS),
    "AttemptFinishRequiresRunning": lambda w: w.a.finish_attempt(w.suspended, w.attempt, R.SUCCESS),
    "AttemptFinishMissingActive": lambda w: w.a.finish_attempt(w.idle, w.finished_attempt, R.SUCCESS),
    "AttemptFinishAttemptMismatch": lambda w: w.a.finish_attempt(w.running, aq.AttemptId.new(), R.SUCCESS),
    # leases
    "InvalidArgument/owner": lambda w: w.a.acquire_lease(w.ready, "", 10),
    "LeaseUnknownRun/acquire": lambda w: w.a.acquire_lease(NEW_RUN, "w1", 10),
    "LeaseUnknownRun/heartbeat": lambda w: w.a.heartbeat_lease(NEW_RUN, "w1", 10),
    "LeaseUnknownRun/release": lambda w: w.a.release_lease(NEW_RUN, "w1", 10),
    "LeaseUnknownRun/expire": lambda w: w.a.expire_lease(NEW_RUN, "w1", 10),
    "LeaseInvalidRunState/acquire": lambda w: w.a.acquire_lease(w.running, "w1", 10),
    "LeaseInvalidRunState/heartbeat": lambda w: w.a.heartbeat_lease(w.ready, "w1", 10),
    "LeaseInvalidRunState/release": lambda w: w.a.release_lease(w.scheduled, "w1", 10),
    "LeaseInvalidRunState/expire": lambda w: w.a.expire_lease(w.completed, "w1", 5000),
    "LeaseAlreadyActive": lambda w: w.a.acquire_lease(w.leased, "w2", 10),
    "LeaseMissingActive/heartbeat": lambda w: w.a.heartbeat_lease(w.leased_no_lease, "w1", 10),
    "LeaseMissingActive/release": lambda w: w.a.release_lease(w.ready, "w1", 10),
    "LeaseOwnerMismatch/heartbeat": lambda w: w.a.heartbeat_lease(w.leased, "w2", 6000),
    "LeaseOwnerMismatch/release": lambda w: w.a.release_lease(w.leased, "w2", 5000),
    "LeaseOwnerMismatch/expire": lambda w: w.a.expire_lease(w.running, "w2", 5000),
    "LeaseHeartbeatExpiryRegression": lambda w: w.a.heartbeat_lease(w.leased, "w1", 4999),
    "LeaseExpiryMismatch/release": lambda w: w.a.release_lease(w.leased, "w1", 5001),
    "LeaseExpiryMismatch/expire": lambda w: w.a.expire_lease(w.leased, "w1", 4999),
    # engine
    "EngineNotPaused": lambda w: w.a.resume_engine(),
    # tasks, runs
    "UnknownTask/cancel": lambda w: w.a.cancel_task(NEW_TASK),
    "TaskAlreadyCanceled": lambda w: w.a.cancel_task(w.canceled_task),
    "UnknownRun/cancel_run": lambda w: w.a.cancel_run(NEW_RUN),
    "InvalidTransition/cancel_run": lambda w: w.a.cancel_run(w.completed),
    # dependencies
    "EmptyDependencyList": lambda w: w.a.declare_dependencies(w.task, []),
    "UnknownTask/dependent": lambda w: w.a.declare_dependencies(NEW_TASK, [w.task]),
    "UnknownTask/prerequisite": lambda w: w.a.declare_dependencies(w.task, [w.other, NEW_TASK]),
    # suspension
    "UnknownRun/suspend": lambda w: w.a.suspend_run(NEW_RUN),
    "RunSuspendRequiresRunning": lambda w: w.a.suspend_run(w.ready),
    "AttemptInProgress/suspend_run": lambda w: w.a.suspend_run(w.running),
    "UnknownRun/resume": lambda w: w.a.resume_run(NEW_RUN),
    "RunResumeRequiresSuspended": lambda w: w.a.resume_run(w.running),
    # budgets
    "UnknownTask/allocate": lambda w: w.a.allocate_budget(NEW_TASK, TOKEN, 10),
    "InvalidArgument/limit": lambda w: w.a.allocate_budget(w.task, TOKEN, 0),
    "UnknownTask/consume": lambda w: w.a.consume_budget(NEW_TASK, TOKEN, 10),
    "InvalidArgument/amount": lambda w: w.a.consume_budget(w.task, TOKEN, 0),
    "UnknownTask/replenish": lambda w: w.a.replenish_budget(NEW_TASK, TOKEN, 10),
    "BudgetNotAllocated": lambda w: w.a.replenish_budget(w.task, COST, 10),
    "InvalidArgument/new_limit": lambda w: w.a.replenish_budget(w.task, TOKEN, 0),
    # subscriptions
    "UnknownTask/subscribe": lambda w: w.a.create_subscription(aq.SubscriptionId.new(), NEW_TASK, aq.CustomFilter("k")),
    "SubscriptionAlreadyExists": lambda w: w.a.create_subscription(w.sub, w.task, aq.CustomFilter("k")),
    "InvalidArgument/threshold": lambda w: w.a.create_subscription(
        aq.SubscriptionId.new(), w.task, aq.BudgetThresholdFilter(w.task, TOKEN, 101)),
    "InvalidArgument/custom_key": lambda w: w.a.create_subscription(aq.SubscriptionId.new(), w.task, aq.CustomFilter("")),
    "UnknownSubscription": lambda w: w.a.cancel_subscription(aq.SubscriptionId.new()),
    "SubscriptionAlreadyCanceled": lambda w: w.a.cancel_subscription(w.canceled_sub),
    # platform
    "InvalidArgument/identity": lambda w: w.a.register_actor(aq.ActorId.new(), "", ["x"], 30),
    "InvalidArgument/no_capabilities": lambda w: w.a.register_actor(aq.ActorId.new(), "a", [], 30),
    "InvalidArgument/empty_capability": lambda w: w.a.register_actor(aq.ActorId.new(), "a", ["x", ""], 30),
    "InvalidArgument/department": lambda w: w.a.register_actor(aq.ActorId.new(), "a", ["x"], 30, department="d" * 129),
    "InvalidArgument/empty_department": lambda w: w.a.register_actor(aq.ActorId.new(), "a", ["x"], 30, department=""),
    "InvalidArgument/interval": lambda w: w.a.register_actor(aq.ActorId.new(), "a", ["x"], 0),
    "InvalidArgument/tenant_name": lambda w: w.a.create_tenant(aq.TenantId.new(), ""),
    "InvalidArgument/role": lambda w: w.a.assign_role(aq.ActorId.new(), aq.Role(3, ""), aq.TenantId.new()),
    "InvalidArgument/grant": lambda w: w.a.grant_capability(aq.ActorId.new(), aq.Capability(5, ""), aq.TenantId.new()),
    "InvalidArgument/revoke": lambda w: w.a.revoke_capability(aq.ActorId.new(), aq.Capability(5, ""), aq.TenantId.new()),
    "InvalidArgument/ledger_key": lambda w: w.a.append_ledger_entry(aq.LedgerEntryId.new(), aq.TenantId.new(), "", b""),
    "UnsupportedEvent": lambda w: w.a.submit(aq.BudgetExhausted(w.task, TOKEN, 1)),
}

CATEGORY = {
    "UnknownTask": NotFound, "UnknownRun": NotFound, "AttemptStartUnknownRun": NotFound,
    "AttemptFinishUnknownRun": NotFound, "LeaseUnknownRun": NotFound, "UnknownSubscription": NotFound,
    "TaskAlreadyExists": AlreadyExists, "RunAlreadyExists": AlreadyExists, "SubscriptionAlreadyExists": AlreadyExists,
    "InvalidArgument": InvalidCommand, "EmptyDependencyList": InvalidCommand, "SuccessWithError": InvalidCommand,
    "NonSuccessWithoutError": InvalidCommand, "NonSuccessWithOutput": InvalidCommand,
    "RunCreateRequiresFreshRun": InvalidCommand, "UnsupportedEvent": InvalidCommand,
}


@pytest.mark.parametrize("case", sorted(REJECTIONS))
def test_rejection_is_typed_and_writes_nothing(world, case) -> None:
    kind = case.split("/")[0]
    err = assert_rejected(world.a, kind, lambda: REJECTIONS[case](world), CATEGORY.get(kind, Conflict))
    assert err.kind in str(err) and err.command in str(err)


def test_rejection_fields(world) -> None:
    a, w = world.a, world
    err = assert_rejected(a, "UnknownTask", lambda: a.declare_dependencies(w.task, [w.other, NEW_TASK]))
    assert err.task_id == NEW_TASK  # the prerequisite is named
    err = assert_rejected(a, "PreviousStateMismatch", lambda: a.transition_run(w.ready, S.LEASED, S.RUNNING))
    assert (err.run_id, err.expected, err.actual) == (w.ready, S.LEASED, S.READY)
    err = assert_rejected(a, "LeaseOwnerMismatch", lambda: a.release_lease(w.leased, "w9", 5000))
    assert (err.event, err.expected_owner, err.actual_owner) == ("Release", "w1", "w9")
    err = assert_rejected(a, "AttemptFinishAttemptMismatch", lambda: a.finish_attempt(w.running, w.finished_attempt, R.SUCCESS))
    assert (err.expected_attempt_id, err.provided_attempt_id) == (w.attempt, w.finished_attempt)
    # Rust's order: the unknown task is reported before the (also) missing allocation
    assert_rejected(a, "UnknownTask", lambda: a.replenish_budget(NEW_TASK, COST, 1))
    # errors survive pickling (for process pools)
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is type(err) and again.kind == err.kind and again.fields == err.fields


def test_engine_rejections(auth) -> None:
    a = auth
    a.pause_engine(timestamp=100)
    assert_rejected(a, "EngineAlreadyPaused", lambda: a.pause_engine(timestamp=200))
    assert_rejected(a, "ResumeBeforePause", lambda: a.resume_engine(timestamp=99))
    a.resume_engine(timestamp=100)
    assert_rejected(a, "EngineNotPaused", lambda: a.resume_engine(timestamp=300))


def test_derivation_rejections(auth) -> None:
    a = auth
    once = aq.TaskId.new()
    a.create_task(aq.TaskSpec(once))
    for _ in range(2):
        a.create_run(_instance(once))
    err = assert_rejected(a, "ArithmeticOverflow", lambda: a.derive_runs(once), DerivationRejected)
    assert "already_derived (2) > max (1)" in str(err)
    rep = aq.TaskId.new()
    a.create_task(aq.TaskSpec(rep, run_policy=aq.RunPolicy.repeat(3, 2**63)))
    assert_rejected(a, "ArithmeticOverflow", lambda: a.derive_runs(rep, schedule_origin=0), DerivationRejected)
    rep1 = aq.TaskId.new()
    a.create_task(aq.TaskSpec(rep1, run_policy=aq.RunPolicy.repeat(1, 10)))
    for _ in range(2):
        a.create_run(_instance(rep1))
    assert_rejected(a, "ArithmeticOverflow", lambda: a.derive_runs(rep1), DerivationRejected)


def test_validation_errors_of_values_write_nothing(world) -> None:
    """A value the event model refuses never reaches the log either."""
    before = wal_bytes(world.a.writer.data_dir)
    with pytest.raises(aq.ValidationError):
        world.a.create_task(aq.TaskSpec(aq.TaskId.nil()))
    with pytest.raises((aq.EncodeError, TypeError, ValueError)):
        world.a.acquire_lease(world.ready, "w1", -1)
    assert wal_bytes(world.a.writer.data_dir) == before


# =========================================================================================
# The hazards of spec 6.5, and the final gate
# =========================================================================================
class RustLikeAuthority(MutationAuthority):
    """Rust's validation for the hazardous commands (spec 6.3 only: no active-attempt or
    resume-time checks), to show what the reducer's final gate catches on its own."""

    _COMMANDS = {
        **MutationAuthority._COMMANDS,
        aq.RunStateChanged: ("transition_run", lambda r, ev, c: None),
        aq.RunSuspended: ("suspend_run", lambda r, ev, c: None),
        aq.EngineResumed: ("resume_engine", lambda r, ev, c: None),
        aq.AttemptStarted: ("start_attempt", lambda r, ev, c: None),
        aq.AttemptFinished: ("finish_attempt", lambda r, ev, c: None),
    }


HAZARDS = {
    # leaving Running with an open attempt (Rust's authority accepts, its reducer rejects)
    "leave_running_with_attempt": ("AttemptInProgress", lambda w: w.a.transition_run(w.running, S.RUNNING, S.COMPLETED)),
    # suspending with an open attempt
    "suspend_with_attempt": ("AttemptInProgress", lambda w: w.a.suspend_run(w.running)),
    # resuming at a time before the pause
    "resume_before_pause": ("ResumeBeforePause", lambda w: w.a.resume_engine(timestamp=w.paused_at - 1)),
}


@pytest.mark.parametrize("hazard", sorted(HAZARDS))
def test_rust_hazards_are_rejected(world, hazard) -> None:
    w = world
    w.paused_at = w.a.pause_engine(timestamp=5000).event.timestamp
    kind, call = HAZARDS[hazard]
    # the event Rust's authority would write is one replay rejects: the hazard is real
    probe = RustLikeAuthority(w.a.reducer, w.a.writer)
    err = assert_rejected(w.a, "ReplayWouldReject", lambda: call(_Rebind(w, probe)), ReplayWouldReject)
    assert isinstance(err.reducer_error, aq.ReducerError) and err.__cause__ is err.reducer_error
    # ours rejects it with its own check, before the gate
    assert_rejected(w.a, kind, lambda: call(w), Conflict)
    # and the log still replays (the hazard is that it would not)
    assert deep_state(replayed(w.a.writer.data_dir)) == deep_state(w.a.reducer)


def test_attempt_id_reuse_would_strand_the_run(world) -> None:
    """The fourth path: a re-used attempt id. Replay accepts the start but can never
    finish that attempt; the gate alone refuses the finish, ours refuses the start."""
    w = world
    probe = RustLikeAuthority(w.a.reducer, w.a.writer)
    probe.start_attempt(w.idle, w.finished_attempt)  # accepted by the reducer...
    assert_rejected(w.a, "ReplayWouldReject",
                    lambda: probe.finish_attempt(w.idle, w.finished_attempt, R.SUCCESS), ReplayWouldReject)
    assert deep_state(replayed(w.a.writer.data_dir)) == deep_state(w.a.reducer)


def test_final_gate_catches_what_the_command_checks_do_not(world) -> None:
    """A state the command checks cannot see (an attempt counter at u32::MAX, possible only
    through bootstrap): the reducer's check refuses, nothing is written."""
    w = world
    w.a.reducer.set_attempt_lineage_for_bootstrap(w.idle, 0xFFFFFFFF, None)
    err = assert_rejected(w.a, "ReplayWouldReject", lambda: w.a.start_attempt(w.idle), ReplayWouldReject)
    assert err.reducer_error.kind == "CorruptedData"


class _Rebind:
    """The world with another authority as ``a``."""

    def __init__(self, world: World, a: MutationAuthority):
        self.__dict__.update(world.__dict__)
        self.a = a


# =========================================================================================
# Random commands: the log always replays to the authority's projection
# =========================================================================================
STATES = list(S)
OWNERS = ["w1", "w2", "w1", "w2", ""]


def rare(draw, n: int) -> bool:
    """True about once in ``n`` draws (hypothesis's simplest value is the common case)."""
    return draw(st.integers(0, n - 1)) == n - 1


def _pick(draw, pool, fresh):
    if pool and not rare(draw, 10):
        return draw(st.sampled_from(pool))
    return fresh()


def random_command(draw, a: MutationAuthority, pools: dict):
    """One command with arguments drawn to be valid often and invalid often."""
    r = a.reducer
    ts = draw(st.one_of(st.none(), st.integers(0, 3000)))
    task = lambda: _pick(draw, pools["tasks"], aq.TaskId.new)  # noqa: E731

    def run(fit=None):
        """A run, usually one the command fits (``fit(run_id)``), sometimes any or none."""
        runs = list(r.run_ids())
        fitting = [x for x in runs if fit(x)] if fit else []
        if fitting and not rare(draw, 5):
            return draw(st.sampled_from(fitting))
        return _pick(draw, runs, aq.RunId.new)

    state_in = lambda *states: lambda x: r.get_run_state(x) in states  # noqa: E731
    sub = lambda: _pick(draw, pools["subs"], aq.SubscriptionId.new)  # noqa: E731
    actor = lambda: _pick(draw, pools["actors"], aq.ActorId.new)  # noqa: E731
    tenant = lambda: _pick(draw, pools["tenants"], aq.TenantId.new)  # noqa: E731
    owner = lambda: draw(st.sampled_from(OWNERS))  # noqa: E731
    expiry = lambda: draw(st.sampled_from([100, 200, 300]))  # noqa: E731

    def transition():
        rid = run(lambda x: not r.get_run_state(x).is_terminal)
        cur = r.get_run_state(rid) or S.SCHEDULED
        prev = cur
        targets = valid_transitions(cur)
        if not rare(draw, 6):  # mostly forward: cancel now and then
            targets = tuple(x for x in targets if x is not S.CANCELED) or targets
        new = draw(st.sampled_from(targets)) if targets and not rare(draw, 5) else draw(st.sampled_from(STATES))
        if rare(draw, 6):
            prev = draw(st.sampled_from(STATES))
        return lambda: a.transition_run(rid, prev, new, timestamp=ts)

    def advance():
        """The next step a scheduler would take for some run (to reach the deep states)."""
        rid = run(lambda x: not r.get_run_state(x).is_terminal)
        cur = r.get_run_state(rid) or S.SCHEDULED
        if cur is S.READY and r.get_lease(rid) is None:
            return lambda: a.acquire_lease(rid, "w1", 300, timestamp=ts)
        if cur is S.RUNNING:
            active = r.active_attempt_id(rid)
            if active is not None:
                result = draw(st.sampled_from([R.SUCCESS, R.FAILURE]))
                error = None if result is R.SUCCESS else "boom"
                return lambda: a.finish_attempt(rid, active, result, error=error, timestamp=ts)
            if not rare(draw, 3):
                return lambda: a.start_attempt(rid, timestamp=ts)
        if cur is S.SUSPENDED:
            return lambda: a.resume_run(rid, timestamp=ts)
        nxt = {S.SCHEDULED: [S.READY], S.READY: [S.LEASED], S.LEASED: [S.RUNNING], S.RETRY_WAIT: [S.READY],
               S.RUNNING: [S.COMPLETED, S.RETRY_WAIT, S.SUSPENDED, S.FAILED]}.get(cur, [S.CANCELED])
        new = draw(st.sampled_from(nxt))
        return lambda: a.transition_run(rid, cur, new, timestamp=ts)

    def new_task():
        tid = task() if rare(draw, 6) else aq.TaskId.new()
        policy = draw(st.sampled_from([aq.RunPolicy.once(), aq.RunPolicy.repeat(2, 30),
                                       aq.RunPolicy.cron("*/30 * * * * * *", 2)]))
        pools["tasks"].append(tid)

        def go():  # a task and, usually, its runs
            out = [a.create_task(aq.TaskSpec(tid, run_policy=policy), timestamp=ts)]
            return out + a.derive_runs(tid, timestamp=ts) if not rare(draw, 4) else out

        return go

    def start():
        rid = run(lambda x: r.get_run_state(x) is S.RUNNING and r.active_attempt_id(x) is None)
        hist = r.get_attempt_history(rid) or ()
        att = draw(st.sampled_from([h.attempt_id for h in hist])) if hist and rare(draw, 4) else None
        return lambda: a.start_attempt(rid, att, timestamp=ts)

    def finish():
        rid = run(lambda x: r.active_attempt_id(x) is not None)
        att = aq.AttemptId.new() if rare(draw, 5) else r.active_attempt_id(rid)
        att = att or aq.AttemptId.new()
        result = draw(st.sampled_from(list(R)))
        error = draw(st.sampled_from([None, "e"]))
        output = draw(st.sampled_from([None, b"o"]))
        return lambda: a.finish_attempt(rid, att, result, error=error, output=output, timestamp=ts)

    def lease(method, cur_expiry_bias):
        def build():
            if method == "acquire_lease":
                rid = run(lambda x: r.get_run_state(x) in (S.READY, S.LEASED) and r.get_lease(x) is None)
            else:
                rid = run(lambda x: r.get_lease(x) is not None)
            held = r.get_lease(rid)
            o, e = (held if held and not rare(draw, 4) else (owner(), expiry()))
            if cur_expiry_bias and draw(st.booleans()):
                e += draw(st.sampled_from([-1, 0, 50]))
            return lambda: getattr(a, method)(rid, o, max(e, 0), timestamp=ts)
        return build

    def new_sub():
        sid = sub() if rare(draw, 5) else aq.SubscriptionId.new()
        pools["subs"].append(sid)
        tid = task()
        return lambda: a.create_subscription(sid, tid, aq.TaskCompletedFilter(tid), timestamp=ts)

    def new_actor():
        aid = actor() if draw(st.booleans()) else aq.ActorId.new()
        pools["actors"].append(aid)
        return lambda: a.register_actor(aid, draw(st.sampled_from(["bot", ""])), ["gpu"], 30, timestamp=ts)

    def new_tenant():
        tid = aq.TenantId.new()
        pools["tenants"].append(tid)
        return lambda: a.create_tenant(tid, "T", timestamp=ts)

    lifecycle = [
        advance, advance, advance, transition, lease("acquire_lease", False), transition, start, finish, transition,
        lease("heartbeat_lease", True), transition, start, finish, transition,
        lease("release_lease", True), lease("expire_lease", True),
        new_task,
        lambda: (lambda t=task(): lambda: a.derive_runs(t, timestamp=ts))(),
        lambda: (lambda t=task(): lambda: a.create_run(_instance(t)))(),
        lambda: (lambda x=run(state_in(S.RUNNING)): lambda: a.suspend_run(x, "r", timestamp=ts))(),
        lambda: (lambda x=run(state_in(S.SUSPENDED)): lambda: a.resume_run(x, timestamp=ts))(),
    ]
    builders = [
        lambda: (lambda t=task(): lambda: a.cancel_task(t, timestamp=ts))(),
        lambda: (lambda x=run(): lambda: a.cancel_run(x, timestamp=ts))(),
        lambda: lambda: a.pause_engine(timestamp=ts),
        lambda: lambda: a.resume_engine(timestamp=ts),
        lambda: (lambda t=task(), d=[task() for _ in range(draw(st.integers(0, 2)))]:
                 lambda: a.declare_dependencies(t, d, timestamp=ts))(),
        lambda: (lambda t=task(), d=draw(st.sampled_from([TOKEN, COST])):
                 lambda: a.allocate_budget(t, d, draw(st.sampled_from([50, 20, 0])), timestamp=ts))(),
        lambda: (lambda t=task(), d=draw(st.sampled_from([TOKEN, COST])):
                 lambda: a.consume_budget(t, d, draw(st.sampled_from([20, 50, 0])), timestamp=ts))(),
        lambda: (lambda t=task(), d=draw(st.sampled_from([TOKEN, COST])):
                 lambda: a.replenish_budget(t, d, draw(st.sampled_from([50, 20, 0])), timestamp=ts))(),
        new_sub,
        lambda: (lambda s=sub(): lambda: a.trigger_subscription(s, timestamp=ts))(),
        lambda: (lambda s=sub(): lambda: a.cancel_subscription(s, timestamp=ts))(),
        new_actor,
        lambda: (lambda x=actor(): lambda: a.heartbeat_actor(x, timestamp=ts))(),
        lambda: (lambda x=actor(): lambda: a.deregister_actor(x, timestamp=ts))(),
        new_tenant,
        lambda: (lambda x=actor(), t=tenant(): lambda: a.assign_role(x, aq.Role.AUDITOR, t, timestamp=ts))(),
        lambda: (lambda x=actor(), t=tenant(): lambda: a.grant_capability(x, aq.Capability.CAN_SUBMIT, t, timestamp=ts))(),
        lambda: (lambda x=actor(), t=tenant(): lambda: a.revoke_capability(x, aq.Capability.CAN_SUBMIT, t, timestamp=ts))(),
        lambda: (lambda t=tenant(): lambda: a.append_ledger_entry(aq.LedgerEntryId.new(), t, "k", b"p", timestamp=ts))(),
    ]
    # run lifecycle commands two times in three, any command otherwise
    return draw(st.sampled_from(builders if rare(draw, 3) else lifecycle))()


@settings(max_examples=budget(15), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data(), steps=st.integers(30, 100))
def test_random_commands_never_write_what_replay_rejects(data, steps) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        a = open_authority(Path(tmp))
        pools: dict = {"tasks": [], "subs": [], "actors": [], "tenants": []}
        accepted: list = []
        try:
            for _ in range(2):  # something to work on from the first step
                tid = aq.TaskId.new()
                pools["tasks"].append(tid)
                accepted.append(a.create_task(aq.TaskSpec(tid, run_policy=aq.RunPolicy.repeat(2, 30))))
                accepted.extend(a.derive_runs(tid))
            for step in range(steps):
                command = random_command(data.draw, a, pools)
                before = (a.latest_sequence, a.writer.size)
                # (the final replay comparison also catches a rejection that changed the
                # projection: nothing was written for it)
                state = deep_state(a.reducer) if step % 8 == 0 else None
                try:
                    result = command()
                except CommandRejected:
                    assert (a.latest_sequence, a.writer.size) == before
                    if state is not None:
                        assert deep_state(a.reducer) == state
                    continue
                accepted.extend(result if isinstance(result, list) else [result])
            assert a.poisoned is None
        finally:
            a.writer.close()
        on_disk = disk_events(Path(tmp))
        assert on_disk == [o.wal_event for o in accepted]
        assert [e.sequence for e in on_disk] == list(range(1, len(on_disk) + 1))  # gapless
        assert deep_state(replayed(Path(tmp))) == deep_state(a.reducer)
        aq.build_snapshot(a.reducer, 1)  # everything written can also be snapshotted


# =========================================================================================
# Writer failures, poisoning, concurrency
# =========================================================================================
def test_closed_writer_gives_typed_error_and_nothing_applied(world) -> None:
    a = world.a
    state = deep_state(a.reducer)
    a.writer.close()
    with pytest.raises(aq.WriterClosed):
        a.cancel_task(world.task)
    assert deep_state(a.reducer) == state and a.poisoned is None
    with pytest.raises(NotFound):  # validation still comes first
        a.cancel_task(NEW_TASK)


def test_failed_write_is_undone_and_the_authority_carries_on(auth, monkeypatch) -> None:
    a = auth
    t = aq.TaskId.new()
    a.create_task(aq.TaskSpec(t))
    before, state = wal_bytes(a.writer.data_dir), deep_state(a.reducer)

    def no_space(fd, data):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as mp:
        mp.setattr(os, "write", no_space)
        with pytest.raises(aq.WalWriterError):
            a.cancel_task(t)
    assert wal_bytes(a.writer.data_dir) == before and deep_state(a.reducer) == state
    assert a.poisoned is None
    a.cancel_task(t)  # the next command works
    assert a.reducer.is_task_canceled(t)


@pytest.mark.parametrize("durability", ["fsync", "group"])
def test_failed_fsync_poisons_writer_and_authority(tmp_path, monkeypatch, durability) -> None:
    a = open_authority(tmp_path, durability)
    t = aq.TaskId.new()
    a.create_task(aq.TaskSpec(t))
    state = deep_state(a.reducer)

    def eio(fd):
        raise OSError(5, "Input/output error")

    with monkeypatch.context() as mp:
        mp.setattr(os, "fsync", eio)
        with pytest.raises(aq.WriterPoisoned):
            a.cancel_task(t)
    if durability == "fsync":
        assert deep_state(a.reducer) == state  # not applied: the fsync ran before apply
    else:
        # group commit: written and applied under the lock, then the shared fsync failed
        # outside it; the command was not acknowledged and the projection is poisoned
        assert a.reducer.is_task_canceled(t)
    assert isinstance(a.poisoned, BaseException)
    with pytest.raises(AuthorityPoisoned):
        a.pause_engine()
    with pytest.raises(AuthorityPoisoned):
        a.cancel_task(NEW_TASK)  # refused before any validation
    a.writer.close()
    # the record may be in the file; it passed validation, so the log still replays
    with aq.open(tmp_path, repair_policy=aq.RepairPolicy.TRUNCATE_PARTIAL) as store:
        assert store.reducer.latest_sequence in (1, 2)


def test_apply_failure_after_append_poisons(tmp_path) -> None:
    class FlakyReducer(ReplayReducer):
        fail = False

        def apply(self, event):
            if self.fail:
                raise RuntimeError("bug")
            return super().apply(event)

    reducer = FlakyReducer()
    writer = aq.WalWriter(tmp_path, durability="none")
    a = MutationAuthority(reducer, writer, clock=counter_clock())
    a.pause_engine()
    reducer.fail = True
    with pytest.raises(AuthorityPoisoned) as info:
        a.resume_engine()
    assert isinstance(info.value.__cause__, RuntimeError)
    reducer.fail = False
    with pytest.raises(AuthorityPoisoned):
        a.pause_engine()
    assert writer.current_sequence == 2 and reducer.latest_sequence == 1
    writer.close()
    assert replayed(tmp_path).latest_sequence == 2  # recovery gets the durable record


def test_writer_ahead_of_projection_is_refused(auth) -> None:
    a = auth
    a.writer.append(aq.WalEvent(1, aq.EnginePaused(1)))  # bypassing the authority
    err = assert_rejected(a, "NonMonotonicSequence", lambda: a.pause_engine(timestamp=5), Conflict)
    assert (err.expected, err.provided) == (2, 1)


def test_concurrent_commands_with_group_commit(tmp_path) -> None:
    a = open_authority(tmp_path, "group")
    errors: list[BaseException] = []
    rejected = []
    start = threading.Barrier(8)

    def worker(i: int) -> None:
        try:
            start.wait()
            t = aq.TaskId.new()
            a.create_task(aq.TaskSpec(t, run_policy=aq.RunPolicy.repeat(3, 10)))
            for out in a.derive_runs(t):
                rid = out.event.run_instance.id
                a.transition_run(rid, S.SCHEDULED, S.READY)
                a.acquire_lease(rid, f"w{i}", 100)
                a.transition_run(rid, S.READY, S.LEASED)
                a.transition_run(rid, S.LEASED, S.RUNNING)
                att = a.start_attempt(rid).event.attempt_id
                a.finish_attempt(rid, att, R.SUCCESS)
                a.transition_run(rid, S.RUNNING, S.COMPLETED)
            for _ in range(3):  # racing engine commands: some are rejected, none corrupt
                try:
                    a.pause_engine() if i % 2 else a.resume_engine()
                except Conflict as exc:
                    rejected.append(exc.kind)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    a.writer.close()
    assert not errors, errors
    assert set(rejected) <= {"EngineAlreadyPaused", "EngineNotPaused"}
    events = disk_events(tmp_path)
    assert [e.sequence for e in events] == list(range(1, a.latest_sequence + 1))
    assert len(events) == 8 * (1 + 3 + 3 * 7) + 8 * 3 - len(rejected)  # task, 3 runs, 7 steps each
    assert deep_state(replayed(tmp_path)) == deep_state(a.reducer)
    assert len(a.reducer.runs_in_state(S.COMPLETED)) == 24


def test_exports() -> None:
    assert aq.MutationAuthority is MutationAuthority
    assert aq.CommandRejected is CommandRejected and issubclass(CommandRejected, aq.ActionQueueError)
    assert "MutationAuthority" in aq.__all__


def test_group_commit_commands_share_fsyncs(tmp_path, monkeypatch) -> None:
    """Under GROUP the authority waits for durability outside its lock: commands from
    several threads are covered by shared fsyncs (with a slow disk, far fewer fsyncs than
    commands), every one acknowledged only once durable, and the log replays."""
    import time as _time

    a = open_authority(tmp_path, "group")
    calls = []
    real_fsync = os.fsync

    def slow_fsync(fd):
        calls.append(fd)
        _time.sleep(0.005)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    threads, per = 8, 25

    def work():
        for _ in range(per):
            a.create_task(aq.TaskSpec(aq.TaskId.new()))

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    monkeypatch.undo()
    assert a.reducer.task_count == threads * per
    assert len(calls) < threads * per / 2, f"{len(calls)} fsyncs for {threads * per} commands"
    a.writer.close()
    with aq.open(tmp_path) as store:
        assert deep_state(store.reducer) == deep_state(a.reducer)


def test_authority_snapshot_reads_under_the_lock_and_writes_after(tmp_path, monkeypatch) -> None:
    """MutationAuthority.snapshot: the log synced and the projection copied under the
    projection's lock; writing happens after it is released (a command on another thread
    runs to completion while the snapshot is written)."""
    import importlib

    # the snapshot codec this backend writes with
    writer_module = importlib.import_module("actionqueue.snapshot." + ("fast" if aq.backend == "cython" else "_py"))

    a = open_authority(tmp_path, "group")
    t = aq.TaskId.new()
    a.create_task(aq.TaskSpec(t, run_policy=aq.RunPolicy.repeat(3, 10)))
    a.derive_runs(t)
    held_while_writing = []

    def hooked(real):
        def atomic_write(path, data, *args, **kw):
            if path.name == "snapshot.bin":  # a command, from another thread, mid-write
                command = threading.Thread(target=a.pause_engine)
                command.start()
                command.join(10)
                held_while_writing.append(command.is_alive())
            return real(path, data, *args, **kw)
        return atomic_write

    monkeypatch.setattr(writer_module, "atomic_write", hooked(writer_module.atomic_write))
    snap = a.snapshot(timestamp=1_800_000_000)
    assert held_while_writing == [False]
    assert snap["metadata"]["wal_sequence"] == 4 and snap["metadata"]["run_count"] == 3
    assert a.reducer.latest_sequence == 5 and a.reducer.is_engine_paused
    a.writer.close()
    with aq.open(tmp_path) as store:
        assert store.report.snapshot_sequence == 4 and store.report.wal_events_applied == 1
        # (a snapshot orders runs by id, not by creation: compare the sorted projection)
        assert deep_state(store.reducer)["snapshot"] == deep_state(a.reducer)["snapshot"]
