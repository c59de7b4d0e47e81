"""Unit tests of the replay reducer: the reducer-level behaviours of the upstream Rust tests
(shared/spec/acceptance-map.md, mostly ``wal_replay.rs`` and ``recovery/reducer.rs``), the
state machine, outcome normalisation, errors, the read API and our deliberate differences."""

from __future__ import annotations

import copy
import pickle

import pytest
from reducer_testlib import Events, R, S, deep_state, history_is_snapshot_valid, replay

import actionqueue as aq
from actionqueue.state import rules as _transitions
from actionqueue.errors import (
    CorruptedData,
    DuplicateEvent,
    EngineControlCausality,
    InvalidTransition,
    LeaseCausality,
    ReducerError,
    TaskCausality,
)
from actionqueue.snapshot.shape import projection_to_snapshot_builtins
from actionqueue.state.records import AttemptHistoryEntry, LeaseMetadata, RunStateHistoryEntry, capability_key
from actionqueue.state.reducer import ReplayReducer
from actionqueue.state.rules import normalize_attempt_outcome

D = aq.BudgetDimension


def running_run(h: Events, owner="worker-1", expiry=5000):
    """Events: a task and a run taken to Running with a lease; returns (events, task, run)."""
    task, run = aq.TaskId.new(), aq.RunId.new()
    events = [h.task(task), h.run(task, run), *h.to_running(run, owner, expiry)]
    return events, task, run


def rejects(r: ReplayReducer, event: aq.WalEvent, error: type) -> ReducerError:
    """Apply ``event`` expecting ``error``; check that nothing changed."""
    before = deep_state(r)
    with pytest.raises(error) as info:
        r.apply(event)
    assert deep_state(r) == before
    assert info.value.sequence == event.sequence
    return info.value


# =========================================================================================
# State machine (one table, _transitions.py)
# =========================================================================================
SPEC_PAIRS = {  # reducer.md section 2, copied from the spec to pin the table
    ("Scheduled", "Ready"), ("Scheduled", "Canceled"), ("Ready", "Leased"), ("Ready", "Canceled"),
    ("Leased", "Running"), ("Leased", "Ready"), ("Leased", "Canceled"), ("Running", "RetryWait"),
    ("Running", "Suspended"), ("Running", "Completed"), ("Running", "Failed"), ("Running", "Canceled"),
    ("RetryWait", "Ready"), ("RetryWait", "Failed"), ("RetryWait", "Canceled"), ("Suspended", "Ready"),
    ("Suspended", "Canceled"),
}


def test_transition_table_is_the_spec() -> None:
    assert {(a.value, b.value) for a, b in _transitions.TRANSITIONS} == SPEC_PAIRS
    for a in S:
        for b in S:
            assert _transitions.is_valid_transition(a, b) == ((a.value, b.value) in SPEC_PAIRS)
        targets = _transitions.valid_transitions(a)
        assert list(targets) == [b for b in S if (a.value, b.value) in SPEC_PAIRS]  # enum order
    assert _transitions.TERMINAL_STATES == {S.COMPLETED, S.FAILED, S.CANCELED}
    assert all(_transitions.is_terminal(s) == s.is_terminal for s in S)


@pytest.mark.parametrize("prev", list(S))
@pytest.mark.parametrize("new", list(S))
def test_run_state_changed_follows_table(prev, new) -> None:
    """Drive a run to ``prev`` along valid steps, then try ``prev -> new``."""
    paths = {
        S.SCHEDULED: [], S.READY: [S.READY], S.LEASED: [S.READY, S.LEASED],
        S.RUNNING: [S.READY, S.LEASED, S.RUNNING], S.RETRY_WAIT: [S.READY, S.LEASED, S.RUNNING, S.RETRY_WAIT],
        S.SUSPENDED: [S.READY, S.LEASED, S.RUNNING, S.SUSPENDED], S.COMPLETED: [S.READY, S.LEASED, S.RUNNING, S.COMPLETED],
        S.FAILED: [S.READY, S.LEASED, S.RUNNING, S.FAILED], S.CANCELED: [S.CANCELED],
    }
    h = Events()
    task, run = aq.TaskId.new(), aq.RunId.new()
    events = [h.task(task), h.run(task, run)]
    cur = S.SCHEDULED
    for step in paths[prev]:
        events.append(h.change(run, cur, step))
        cur = step
    r = replay(events)
    event = h.change(run, prev, new)
    if _transitions.is_valid_transition(prev, new):
        r.apply(event)
        assert r.get_run_state(run) is new
        assert r.get_run_history(run)[-1] == (prev, new, event.event.timestamp)
        assert r.get_run_instance(run).last_state_change_at == event.event.timestamp
    else:
        rejects(r, event, InvalidTransition)


# =========================================================================================
# wal_replay.rs
# =========================================================================================
def test_replay_empty() -> None:
    r = ReplayReducer()
    assert (r.latest_sequence, r.task_count, r.run_count) == (0, 0, 0)
    assert not r.is_engine_paused and r.engine_paused_at is None and r.engine_resumed_at is None
    assert list(r.tasks()) == [] and list(r.run_instances()) == [] and r.ledger_entries() == ()


def test_engine_pause_resume_is_deterministic() -> None:
    h = Events()
    r = replay([h.pause(ts=1000), h.resume_engine(ts=2000)])
    assert not r.is_engine_paused
    assert (r.engine_paused_at, r.engine_resumed_at, r.latest_sequence) == (1000, 2000, 2)
    r.apply(h.pause(ts=3000))
    assert r.is_engine_paused and r.engine_paused_at == 3000 and r.engine_resumed_at is None


def test_duplicate_engine_pause_rejected() -> None:
    h = Events()
    r = replay([h.pause(ts=1000)])
    e = rejects(r, h.pause(ts=1001), EngineControlCausality)
    assert e.detail_kind == "AlreadyPaused" and (e.first_paused_at, e.duplicate_paused_at) == (1000, 1001)


def test_engine_resume_without_pause_rejected() -> None:
    e = rejects(ReplayReducer(), Events().resume_engine(ts=7), EngineControlCausality)
    assert e.detail_kind == "NotPaused" and e.attempted_resumed_at == 7


def test_engine_resume_before_pause_rejected() -> None:
    h = Events()
    r = replay([h.pause(ts=50)])
    e = rejects(r, h.resume_engine(ts=49), EngineControlCausality)
    assert e.detail_kind == "ResumeBeforePause" and (e.paused_at, e.resumed_at) == (50, 49)
    r.apply(h.resume_engine(ts=50))  # equal is fine


def test_single_task_created() -> None:
    h = Events()
    task = aq.TaskId.new()
    ev = h.task(task)
    r = replay([ev])
    assert r.task_count == 1 and r.latest_sequence == 1
    assert r.get_task(task) == ev.event.task_spec
    rec = r.get_task_record(task)
    assert (rec.created_at, rec.updated_at, rec.canceled_at) == (ev.event.timestamp, None, None)


def test_multiple_events_in_order_and_instance_follows() -> None:
    h = Events()
    events, _task, run = running_run(h)
    r = replay(events)
    inst = r.get_run_instance(run)
    assert inst.state is S.RUNNING and r.get_run_state(run) is S.RUNNING
    assert [e.to for e in r.get_run_history(run)] == [S.SCHEDULED, S.READY, S.LEASED, S.RUNNING]
    assert r.get_run_history(run)[0] == (None, S.SCHEDULED, inst.created_at)
    assert r.latest_sequence == len(events)


def test_illegal_state_change_rejected() -> None:
    h = Events()
    task, run = aq.TaskId.new(), aq.RunId.new()
    r = replay([h.task(task), h.run(task, run)])
    rejects(r, h.change(run, S.SCHEDULED, S.RUNNING), InvalidTransition)
    # d02_t_n5: "Ready -> Scheduled" from Scheduled: previous state mismatch
    rejects(r, h.change(run, S.READY, S.SCHEDULED), InvalidTransition)
    rejects(r, h.change(aq.RunId.new(), S.SCHEDULED, S.READY), InvalidTransition)


def test_sequence_order_enforced() -> None:
    h = Events()
    r = replay([h.task(seq=5)])
    e = rejects(r, h.task(seq=5), InvalidTransition)  # a re-used sequence is InvalidTransition
    assert e.rust_display == "Invalid state transition during replay"
    rejects(r, h.task(seq=3), InvalidTransition)
    rejects(ReplayReducer(), Events().task(seq=0), InvalidTransition)  # 0 never accepted


def test_sequence_gaps_are_allowed() -> None:
    h = Events()
    r = replay([h.task(seq=1), h.task(seq=5), h.task(seq=10)])
    assert r.latest_sequence == 10 and r.task_count == 3


def test_duplicate_task_and_run_rejected() -> None:
    h = Events()
    task, run = aq.TaskId.new(), aq.RunId.new()
    r = replay([h.task(task), h.run(task, run)])
    rejects(r, h.task(task), DuplicateEvent)
    rejects(r, h.run(task, run), DuplicateEvent)


def test_deterministic_replay() -> None:
    h = Events()
    events, task, run = running_run(h)
    events += [h.start(run), h.pause(), h.depend(task, aq.TaskId.new())]
    assert deep_state(replay(events)) == deep_state(replay(events))


def test_terminal_state_reported_terminal() -> None:
    h = Events()
    events, _task, run = running_run(h)
    r = replay(events + [h.change(run, S.RUNNING, S.COMPLETED)])
    assert r.get_run_state(run).is_terminal
    assert r.runs_in_state(S.COMPLETED)[0].id == run


def test_run_created_must_be_scheduled() -> None:
    h = Events()
    task = aq.TaskId.new()
    r = replay([h.task(task)])
    rejects(r, h.run(task, state=S.READY, scheduled_at=0), InvalidTransition)


def test_run_created_keeps_instance_verbatim_and_needs_no_task() -> None:
    h = Events()
    ev = h.run(aq.TaskId.new(), attempt_count=3, priority=-7)
    r = replay([ev])
    assert r.get_run_instance(ev.event.run_instance.id) == ev.event.run_instance
    assert r.get_attempt_history(ev.event.run_instance.id) == ()


def test_apply_is_atomic_after_semantic_error() -> None:
    h = Events()
    task, run = aq.TaskId.new(), aq.RunId.new()
    r = replay([h.task(task), h.run(task, run), h.change(run, S.SCHEDULED, S.READY)])
    rejects(r, h.start(run, seq=4), InvalidTransition)
    assert r.latest_sequence == 3
    r.apply(h.change(run, S.READY, S.LEASED, seq=4))  # sequence 4 is still usable
    assert r.latest_sequence == 4


def test_run_canceled_sets_canceled_with_history() -> None:
    h = Events()
    events, _task, run = running_run(h)
    attempt = aq.AttemptId.new()
    events.append(h.start(run, attempt))
    ev = h.cancel_run(run)
    r = replay(events + [ev])
    assert r.get_run_state(run) is S.CANCELED
    assert r.get_run_history(run)[-1] == (S.RUNNING, S.CANCELED, ev.event.timestamp)
    inst = r.get_run_instance(run)
    assert inst.current_attempt_id is None and inst.attempt_count == 1
    assert r.get_attempt_history(run)[0].finished_at is None  # the dropped attempt stays open
    assert r.get_lease(run) is None and r.get_lease_metadata(run) is None
    rejects(r, h.cancel_run(run), InvalidTransition)
    rejects(r, h.cancel_run(aq.RunId.new()), InvalidTransition)


def test_task_canceled_projection() -> None:
    h = Events()
    events, task, run = running_run(h)
    ev = h.cancel_task(task, ts=4242)
    r = replay(events + [ev])
    assert r.is_task_canceled(task) and r.task_canceled_at(task) == 4242
    assert r.get_task_record(task).canceled_at == 4242
    assert r.get_run_state(run) is S.RUNNING  # runs are not touched
    e = rejects(r, h.cancel_task(task, ts=4243), TaskCausality)
    assert (e.detail_kind, e.task_id, e.first_canceled_at, e.duplicate_canceled_at) == ("AlreadyCanceled", task, 4242, 4243)
    unknown = aq.TaskId.new()
    e = rejects(r, h.cancel_task(unknown), TaskCausality)
    assert (e.detail_kind, e.task_id) == ("UnknownTask", unknown)


def test_attempt_lifecycle_ordering_and_ownership() -> None:
    h = Events()
    task, run = aq.TaskId.new(), aq.RunId.new()
    r = replay([h.task(task), h.run(task, run)])
    rejects(r, h.start(run), InvalidTransition)  # not Running
    for e in h.to_running(run):
        r.apply(e)
    a1, a2 = aq.AttemptId.new(), aq.AttemptId.new()
    rejects(r, h.finish(run, a1), InvalidTransition)  # nothing active
    r.apply(h.start(run, a1))
    rejects(r, h.start(run, a2), InvalidTransition)  # already active
    rejects(r, h.finish(run, a2), InvalidTransition)  # not the active one
    rejects(r, h.change(run, S.RUNNING, S.COMPLETED), InvalidTransition)  # open attempt
    rejects(r, h.suspend(run), InvalidTransition)  # open attempt
    r.apply(h.finish(run, a1))
    assert r.get_run_state(run) is S.RUNNING  # finishing does not move the run
    rejects(r, h.finish(run, a1), InvalidTransition)
    r.apply(h.start(run, a2))
    assert r.get_run_instance(run).attempt_count == 2
    rejects(r, h.start(aq.RunId.new()), InvalidTransition)
    rejects(r, h.finish(aq.RunId.new(), a2), InvalidTransition)


def test_lease_acquired_while_ready_then_leased() -> None:
    h = Events()
    task, run = aq.TaskId.new(), aq.RunId.new()
    r = replay([h.task(task), h.run(task, run), h.change(run, S.SCHEDULED, S.READY), h.acquire(run)])
    assert r.get_run_state(run) is S.READY and r.get_lease(run) == ("worker-1", 5000)
    r.apply(h.change(run, S.READY, S.LEASED))
    assert r.get_lease(run) == ("worker-1", 5000)


def test_lease_heartbeat_raises_expiry() -> None:
    h = Events()
    events, _, run = running_run(h, expiry=5000)
    acquired_ts = events[-2].event.timestamp
    hb = h.heartbeat(run, expiry=7000)
    r = replay(events + [hb])
    assert r.get_lease(run) == ("worker-1", 7000)
    assert r.get_lease_metadata(run) == LeaseMetadata("worker-1", 7000, acquired_ts, hb.event.timestamp)
    r.apply(h.heartbeat(run, expiry=7000))  # equal expiry is fine


@pytest.mark.parametrize("close", ["expire", "release"])
def test_lease_close_on_leased_run_returns_it_to_ready_with_history(close) -> None:
    """Rust: Leased -> Ready without history. Ours: a recorded transition (decisions #11)."""
    h = Events()
    task, run = aq.TaskId.new(), aq.RunId.new()
    events = [h.task(task), h.run(task, run), h.change(run, S.SCHEDULED, S.READY),
              h.change(run, S.READY, S.LEASED), h.acquire(run)]
    ev = getattr(h, close)(run)
    r = replay(events + [ev])
    assert r.get_run_state(run) is S.READY
    assert r.get_lease(run) is None and r.get_lease_metadata(run) is None
    assert r.get_run_history(run)[-1] == (S.LEASED, S.READY, ev.event.timestamp)
    assert r.get_run_instance(run).last_state_change_at == ev.event.timestamp
    assert history_is_snapshot_valid(r, run) is None


@pytest.mark.parametrize("close", ["expire", "release"])
def test_lease_close_on_ready_or_running_keeps_state(close) -> None:
    h = Events()
    events, _, run = running_run(h)
    r = replay(events)
    history = r.get_run_history(run)
    r.apply(getattr(h, close)(run))
    assert r.get_run_state(run) is S.RUNNING and r.get_lease(run) is None
    assert r.get_run_history(run) == history


def test_attempt_started_crash_before_finish() -> None:
    h = Events()
    events, _, run = running_run(h)
    attempt = aq.AttemptId.new()
    r = replay(events + [h.start(run, attempt)])
    inst = r.get_run_instance(run)
    assert (inst.state, inst.current_attempt_id, inst.attempt_count) == (S.RUNNING, attempt, 1)
    assert r.active_attempt_id(run) == attempt
    (entry,) = r.get_attempt_history(run)
    assert entry == AttemptHistoryEntry(attempt, events[-1].event.timestamp + 1)


def test_completion_with_active_lease_clears_lease() -> None:
    h = Events()
    events, _, run = running_run(h)
    a = aq.AttemptId.new()
    r = replay(events + [h.start(run, a), h.finish(run, a, output=b"ok"), h.change(run, S.RUNNING, S.COMPLETED)])
    assert r.get_lease(run) is None and r.get_lease_metadata(run) is None
    assert r.get_attempt_history(run)[0].output == b"ok"


@pytest.mark.parametrize("terminal", [S.COMPLETED, S.FAILED, S.CANCELED])
def test_terminal_transition_clears_lease_projection(terminal) -> None:
    h = Events()
    events, _, run = running_run(h)
    r = replay(events)
    assert r.get_lease(run) is not None
    r.apply(h.change(run, S.RUNNING, terminal))
    assert r.get_lease(run) is None and r.get_lease_metadata(run) is None
    e = rejects(r, h.heartbeat(run), LeaseCausality)
    assert (e.detail_kind, e.state) == ("InvalidRunState", terminal)


def test_non_terminal_transitions_keep_the_lease() -> None:
    """As in Rust: only terminal states clear the lease (RetryWait keeps it)."""
    h = Events()
    events, _, run = running_run(h)
    r = replay(events + [h.change(run, S.RUNNING, S.RETRY_WAIT)])
    assert r.get_lease(run) == ("worker-1", 5000)


def test_timeout_result_and_error_kept() -> None:
    h = Events()
    events, _, run = running_run(h)
    a = aq.AttemptId.new()
    r = replay(events + [h.start(run, a), h.finish(run, a, R.TIMEOUT, "deadline exceeded")])
    entry = r.get_attempt_history(run)[0]
    assert (entry.result, entry.error, entry.output) == (R.TIMEOUT, "deadline exceeded", None)


def test_lease_expired_between_attempts() -> None:
    h = Events()
    events, _, run = running_run(h, owner="worker-1", expiry=5000)
    a1, a2 = aq.AttemptId.new(), aq.AttemptId.new()
    events += [
        h.start(run, a1), h.finish(run, a1, R.FAILURE, "boom"), h.change(run, S.RUNNING, S.RETRY_WAIT),
        h.expire(run, "worker-1", 5000), h.change(run, S.RETRY_WAIT, S.READY), h.change(run, S.READY, S.LEASED),
        h.acquire(run, "worker-2", 7000), h.change(run, S.LEASED, S.RUNNING), h.start(run, a2),
    ]
    # expire in RetryWait is not allowed (state must be Ready/Leased/Running)
    with pytest.raises(LeaseCausality) as info:
        replay(events)
    assert (info.value.detail_kind, info.value.event, info.value.state) == ("InvalidRunState", "Expire", S.RETRY_WAIT)
    # the valid order: the lease expires while the run is still Running
    h = Events()
    events, _, run = running_run(h, owner="worker-1", expiry=5000)
    events += [
        h.start(run, a1), h.finish(run, a1, R.FAILURE, "boom"), h.expire(run, "worker-1", 5000),
        h.change(run, S.RUNNING, S.RETRY_WAIT), h.change(run, S.RETRY_WAIT, S.READY),
        h.change(run, S.READY, S.LEASED), h.acquire(run, "worker-2", 7000), h.change(run, S.LEASED, S.RUNNING),
        h.start(run, a2),
    ]
    r = replay(events)
    assert r.get_lease(run) == ("worker-2", 7000)
    assert [a.attempt_id for a in r.get_attempt_history(run)] == [a1, a2]
    assert r.get_run_instance(run).attempt_count == 2 and r.active_attempt_id(run) == a2


def test_valid_lease_lifecycle() -> None:
    h = Events()
    events, _, run = running_run(h, expiry=100)
    r = replay(events + [h.heartbeat(run, expiry=200), h.heartbeat(run, expiry=300), h.release(run, expiry=300)])
    assert r.get_lease(run) is None and r.get_run_state(run) is S.RUNNING


def test_lease_causality_errors() -> None:
    h = Events()
    events, _, run = running_run(h, owner="owner-a", expiry=100)
    r = replay(events)
    unknown = aq.RunId.new()
    for make, what in ((h.acquire, "Acquire"), (h.heartbeat, "Heartbeat"), (h.expire, "Expire"), (h.release, "Release")):
        e = rejects(r, make(unknown), LeaseCausality)
        assert (e.detail_kind, e.run_id, e.event) == ("UnknownRun", unknown, what)
    e = rejects(r, h.acquire(run), LeaseCausality)
    assert (e.detail_kind, e.state) == ("InvalidRunState", S.RUNNING)
    e = rejects(r, h.heartbeat(run, "owner-b", 200), LeaseCausality)
    assert (e.detail_kind, e.expected_owner, e.actual_owner) == ("OwnerMismatch", "owner-a", "owner-b")
    e = rejects(r, h.heartbeat(run, "owner-a", 99), LeaseCausality)
    assert (e.detail_kind, e.previous_expiry, e.proposed_expiry) == ("NonMonotonicHeartbeatExpiry", 100, 99)
    e = rejects(r, h.release(run, "owner-a", 101), LeaseCausality)
    assert (e.detail_kind, e.event, e.expected_expiry, e.actual_expiry) == ("ExpiryMismatch", "Release", 100, 101)
    e = rejects(r, h.expire(run, "owner-b", 100), LeaseCausality)
    assert (e.detail_kind, e.event) == ("OwnerMismatch", "Expire")
    r.apply(h.release(run, "owner-a", 100))
    for make, what in ((h.heartbeat, "Heartbeat"), (h.expire, "Expire"), (h.release, "Release")):
        e = rejects(r, make(run, "owner-a", 100), LeaseCausality)
        assert (e.detail_kind, e.event) == ("MissingActiveLease", what)


def test_lease_acquire_twice_and_in_scheduled() -> None:
    h = Events()
    task, run = aq.TaskId.new(), aq.RunId.new()
    r = replay([h.task(task), h.run(task, run)])
    e = rejects(r, h.acquire(run), LeaseCausality)
    assert (e.detail_kind, e.event, e.state) == ("InvalidRunState", "Acquire", S.SCHEDULED)
    assert r.latest_sequence == 2
    r.apply(h.change(run, S.SCHEDULED, S.READY))
    r.apply(h.acquire(run))
    e = rejects(r, h.acquire(run, "someone-else"), LeaseCausality)
    assert e.detail_kind == "LeaseAlreadyActive" and e.event is None


def test_completed_run_stays_completed_on_replay() -> None:
    h = Events()
    events, _task, run = running_run(h)
    a = aq.AttemptId.new()
    events += [h.start(run, a), h.finish(run, a), h.change(run, S.RUNNING, S.COMPLETED)]
    for _ in range(2):
        r = replay(events)
        assert r.get_run_state(run) is S.COMPLETED and r.get_run_instance(run).attempt_count == 1


def test_repeat_runs_are_all_kept() -> None:
    h = Events()
    task = aq.TaskId.new()
    runs = [aq.RunId.new() for _ in range(3)]
    r = replay([h.task(task)] + [h.run(task, x) for x in runs])
    assert r.run_count == 3
    assert [ri.id for ri in r.runs_for_task(task)] == runs  # creation order
    assert r.run_ids_for_task(task) == sorted(runs)  # sorted like Rust
    assert r.run_ids_for_task(aq.TaskId.new()) == [] and r.runs_for_task(aq.TaskId.new()) == []


def test_dependency_declarations_accumulate_as_a_set() -> None:
    h = Events()
    a, b, c, d = (aq.TaskId.new() for _ in range(4))
    r = replay([h.task(a), h.task(b), h.depend(a, b, c), h.depend(a, c, b), h.depend(a, d), h.depend(b)])
    assert r.dependency_declarations() == {a: frozenset({b, c, d}), b: frozenset()}


def test_attempt_output_survives() -> None:
    h = Events()
    events, _, run = running_run(h)
    a = aq.AttemptId.new()
    r = replay(events + [h.start(run, a), h.finish(run, a, R.SUCCESS, None, b"\x00\xffdata")])
    assert r.get_attempt_history(run)[0].output == b"\x00\xffdata"


def test_run_suspended_and_resumed() -> None:
    h = Events()
    events, _, run = running_run(h)
    a = aq.AttemptId.new()
    events += [h.start(run, a), h.finish(run, a, R.SUSPENDED)]
    r = replay(events)
    assert r.get_run_state(run) is S.RUNNING  # a Suspended result does not suspend the run
    r.apply(h.suspend(run, "waiting for approval"))
    assert r.get_run_state(run) is S.SUSPENDED
    assert r.get_run_history(run)[-1][:2] == (S.RUNNING, S.SUSPENDED)
    rejects(r, h.suspend(run), InvalidTransition)
    r.apply(h.resume_run(run))
    assert r.get_run_state(run) is S.READY
    rejects(r, h.resume_run(run), InvalidTransition)
    rejects(r, h.suspend(aq.RunId.new()), InvalidTransition)
    rejects(r, h.resume_run(aq.RunId.new()), InvalidTransition)


def test_budgets() -> None:
    h = Events()
    task = aq.TaskId.new()
    created = h.task(task)
    alloc = h.allocate(task, D.TOKEN, 1000)
    r = replay([created, alloc, h.consume(task, D.TOKEN, 300)])
    b = r.get_budget(task, D.TOKEN)
    assert (b.limit, b.consumed, b.exhausted, b.allocated_at) == (1000, 300, False, alloc.event.timestamp)
    assert r.budget_allocation_exists(task, D.TOKEN) and not r.budget_allocation_exists(task, D.COST_CENTS)
    r.apply(h.consume(task, D.TOKEN, 700))
    assert r.is_budget_exhausted(task, D.TOKEN)
    r.apply(h.replenish(task, D.TOKEN, 2000))
    b = r.get_budget(task, D.TOKEN)
    assert (b.limit, b.consumed, b.exhausted, b.allocated_at) == (2000, 0, False, alloc.event.timestamp)
    r.apply(h.consume(task, D.TOKEN, 2**64 - 1))
    r.apply(h.consume(task, D.TOKEN, 5))
    assert r.get_budget(task, D.TOKEN).consumed == 2**64 - 1  # saturating
    r.apply(h.replenish(task, D.TOKEN, 10))
    r.apply(h.exhaust(task, D.TOKEN))  # BudgetExhausted sets the flag below the limit
    assert r.is_budget_exhausted(task, D.TOKEN) and r.get_budget(task, D.TOKEN).consumed == 0
    r.apply(h.allocate(task, D.TOKEN, 0))  # re-allocation overwrites, limit 0 accepted
    assert r.get_budget(task, D.TOKEN).limit == 0 and not r.is_budget_exhausted(task, D.TOKEN)
    before = deep_state(r)
    other = aq.TaskId.new()
    for e in (h.consume(other), h.exhaust(other), h.replenish(other), h.consume(task, D.TIME_SECS)):
        r.apply(e)  # unknown (task, dimension): ignored
    after = deep_state(r)
    assert after["snapshot"]["budgets"] == before["snapshot"]["budgets"]


def test_subscriptions() -> None:
    h = Events()
    task, sub = aq.TaskId.new(), aq.SubscriptionId.new()
    events = [h.task(task)]
    created = h.subscribe(sub, task)
    trig = h.trigger(sub)
    r = replay(events + [created, trig])
    s = r.get_subscription(sub)
    assert (s.created_at, s.triggered_at, s.canceled_at) == (created.event.timestamp, trig.event.timestamp, None)
    assert r.subscription_exists(sub) and not r.is_subscription_canceled(sub)
    c1 = h.unsubscribe(sub)
    c2 = h.unsubscribe(sub)  # double cancel allowed, overwrites
    t2 = h.trigger(sub)  # trigger after cancel allowed
    for e in (c1, c2, t2):
        r.apply(e)
    s = r.get_subscription(sub)
    assert (s.canceled_at, s.triggered_at) == (c2.event.timestamp, t2.event.timestamp)
    assert r.is_subscription_canceled(sub)
    again = h.subscribe(sub, task, aq.CustomFilter("k"))  # re-create overwrites
    r.apply(again)
    s = r.get_subscription(sub)
    assert (s.filter, s.triggered_at, s.canceled_at) == (aq.CustomFilter("k"), None, None)
    r.apply(h.trigger(aq.SubscriptionId.new()))
    r.apply(h.unsubscribe(aq.SubscriptionId.new()))
    assert len(list(r.subscriptions())) == 1


def test_actors_tenants_roles_grants_ledger() -> None:
    h = Events()
    actor, tenant, tenant2 = aq.ActorId.new(), aq.TenantId.new(), aq.TenantId.new()
    events = [h.tenant(tenant, "Acme")]
    reg = h.register(actor, "a1", ("gpu", "review"), "eng", 15, tenant)
    r = replay(events + [reg, h.actor_heartbeat(actor)])
    a = r.get_actor(actor)
    assert (a.identity, a.capabilities, a.department, a.heartbeat_interval_secs, a.tenant_id) == (
        "a1", ("gpu", "review"), "eng", 15, tenant)
    assert a.registered_at == reg.event.timestamp and a.last_heartbeat_at is not None
    assert r.is_actor_active(actor)
    r.apply(h.deregister(actor))
    hb = h.actor_heartbeat(actor)
    r.apply(hb)  # heartbeat after deregistration still updates
    a = r.get_actor(actor)
    assert not r.is_actor_active(actor) and a.last_heartbeat_at == hb.event.timestamp
    r.apply(h.register(actor, "a1-again"))  # re-registration overwrites
    a = r.get_actor(actor)
    assert (a.identity, a.last_heartbeat_at, a.deregistered_at) == ("a1-again", None, None)
    r.apply(h.deregister(aq.ActorId.new()))
    r.apply(h.actor_heartbeat(aq.ActorId.new()))
    assert len(list(r.actors())) == 1

    assert r.tenant_exists(tenant) and r.get_tenant(tenant).name == "Acme"
    r.apply(h.tenant(tenant, "Acme 2"))
    assert r.get_tenant(tenant).name == "Acme 2" and len(list(r.tenants())) == 1

    r.apply(h.role(actor, aq.Role.OPERATOR, tenant))
    r.apply(h.role(actor, aq.Role.custom("release-manager"), tenant2))
    r.apply(h.role(actor, aq.Role.AUDITOR, tenant))  # one role per actor and tenant
    assert r.get_role_assignment(actor, tenant).role == aq.Role.AUDITOR
    assert r.get_role_assignment(actor, tenant2).role == aq.Role.custom("release-manager")
    assert len(list(r.role_assignments())) == 2

    cap, custom = aq.Capability.CAN_APPROVE, aq.Capability.custom("deploy")
    g1 = h.grant(actor, cap, tenant)
    r.apply(g1)
    r.apply(h.grant(actor, custom, tenant))
    assert r.actor_has_capability(actor, cap, tenant) and r.actor_has_capability(actor, "CanApprove", tenant)
    assert r.actor_has_capability(actor, "Custom:deploy", tenant)
    assert not r.actor_has_capability(actor, cap, tenant2)
    rv = h.revoke(actor, cap, tenant)
    r.apply(rv)
    assert not r.actor_has_capability(actor, cap, tenant)
    grant = r.get_capability_grant(actor, cap, tenant)
    assert (grant.granted_at, grant.revoked_at) == (g1.event.timestamp, rv.event.timestamp)
    regrant = h.grant(actor, cap, tenant)
    r.apply(regrant)  # re-grant clears the revocation
    grant = r.get_capability_grant(actor, cap, tenant)
    assert (grant.granted_at, grant.revoked_at) == (regrant.event.timestamp, None)
    r.apply(h.revoke(actor, aq.Capability.CAN_CANCEL, tenant))  # unknown grant: ignored
    assert len(list(r.capability_grants())) == 2

    eid = aq.LedgerEntryId.new()
    entries = [h.ledger(tenant, "k", b"", None, eid), h.ledger(tenant, "k", bytes(range(256)) + b"x" * 44, actor, eid)]
    for e in entries:
        r.apply(e)
    got = r.ledger_entries()
    assert [x.entry_id for x in got] == [eid, eid]  # duplicates kept, in order
    assert got[1].payload == bytes(range(256)) + b"x" * 44 and got[1].actor_id == actor


def test_capability_key() -> None:
    assert [capability_key(c) for c in aq.Capability._units] == [
        "CanSubmit", "CanExecute", "CanReview", "CanApprove", "CanCancel"]
    assert capability_key(aq.Capability.custom("x:y")) == "Custom:x:y"


def test_parent_child_mappings() -> None:
    h = Events()
    parent, child, orphan = aq.TaskId.new(), aq.TaskId.new(), aq.TaskId.new()
    r = replay([h.task(parent), h.task(child, parent=parent), h.task(orphan, parent=aq.TaskId.new())])
    mappings = r.parent_child_mappings()
    assert (child, parent) in mappings and len(mappings) == 2


def test_trim_terminal_history() -> None:
    h = Events()
    events, task, done = running_run(h)
    live = aq.RunId.new()
    events += [h.change(done, S.RUNNING, S.COMPLETED), h.run(task, live)]
    r = replay(events)
    r.trim_terminal_history()
    assert r.get_run_history(done) is None and r.get_attempt_history(done) is None
    assert r.get_run_state(done) is S.COMPLETED and r.get_run_instance(done) is not None
    assert r.get_run_history(live) is not None and r.get_attempt_history(live) == ()
    snap = projection_to_snapshot_builtins(r, 0)
    trimmed = next(x for x in snap["runs"] if x["run_instance"]["id"] == str(done))
    assert trimmed["state_history"] == [] and trimmed["attempts"] == []


# =========================================================================================
# AttemptFinished outcome normalisation (vectors replay/valid/v06)
# =========================================================================================
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ((R.SUCCESS, None, None), (R.SUCCESS, None, None)),
        ((R.SUCCESS, None, b""), (R.SUCCESS, None, b"")),  # valid: kept verbatim
        ((R.SUCCESS, None, b"out"), (R.SUCCESS, None, b"out")),
        ((R.SUCCESS, "warn", b"out"), (R.SUCCESS, None, None)),  # error drops error and output
        ((R.SUSPENDED, None, b"s"), (R.SUSPENDED, None, b"s")),
        ((R.SUSPENDED, "why", b"s"), (R.SUSPENDED, None, None)),
        ((R.FAILURE, "boom", None), (R.FAILURE, "boom", None)),
        ((R.FAILURE, None, None), (R.FAILURE, "unknown failure", None)),
        ((R.FAILURE, "boom", b"x"), (R.FAILURE, "boom", None)),
        ((R.FAILURE, None, b"x"), (R.FAILURE, "unknown failure", None)),
        ((R.TIMEOUT, "late", None), (R.TIMEOUT, "late", None)),
        ((R.TIMEOUT, None, None), (R.TIMEOUT, "unknown timeout", None)),
        ((R.TIMEOUT, "", b""), (R.TIMEOUT, "", None)),
    ],
)
def test_attempt_outcome_normalization(raw, expected) -> None:
    assert normalize_attempt_outcome(*raw) == expected
    h = Events()
    events, _, run = running_run(h)
    a = aq.AttemptId.new()
    events.append(h.start(run, a))
    fin = h.finish(run, a, *raw)
    r = replay(events + [fin])
    entry = r.get_attempt_history(run)[0]
    assert (entry.result, entry.error, entry.output) == expected
    assert entry.finished_at == fin.event.timestamp


def test_reused_attempt_id_is_corrupted_data_and_atomic() -> None:
    """Rust finishes the FIRST history entry with the id; if that one is finished already it
    is CorruptedData, raised after the active attempt was cleared. Ours: same error, nothing
    changed."""
    h = Events()
    events, _, run = running_run(h)
    a = aq.AttemptId.new()
    events += [h.start(run, a), h.finish(run, a, R.FAILURE, "x"), h.change(run, S.RUNNING, S.RETRY_WAIT),
               h.change(run, S.RETRY_WAIT, S.READY), h.change(run, S.READY, S.LEASED),
               h.change(run, S.LEASED, S.RUNNING), h.start(run, a)]
    r = replay(events)
    assert r.active_attempt_id(run) == a and r.get_run_instance(run).attempt_count == 2
    e = rejects(r, h.finish(run, a), CorruptedData)
    assert e.rust_display == "Corrupted event data"
    assert r.active_attempt_id(run) == a


def test_attempt_count_overflow_is_corrupted_data() -> None:
    h = Events()
    task, run = aq.TaskId.new(), aq.RunId.new()
    events = [h.task(task), h.run(task, run, attempt_count=2**32 - 1)] + h.to_running(run)
    r = replay(events)
    rejects(r, h.start(run), CorruptedData)


# =========================================================================================
# Errors
# =========================================================================================
def test_error_hierarchy_and_texts() -> None:
    for cls, display in [
        (InvalidTransition, "Invalid state transition during replay"),
        (DuplicateEvent, "Duplicate event detected"),
        (CorruptedData, "Corrupted event data"),
    ]:
        e = cls("why", sequence=3)
        assert isinstance(e, ReducerError) and isinstance(e, aq.ActionQueueError)
        assert e.kind == cls.__name__ and e.rust_display == display and e.rust_debug == cls.__name__
        assert e.detail_kind is None and str(e) == f"{display} (sequence 3: why)"
        assert str(cls()) == display
    run = aq.RunId("00112233-4455-6677-8899-aabbccddeeff")
    e = LeaseCausality("OwnerMismatch", run_id=run, event="Heartbeat", expected_owner='a"b', actual_owner="c\n")
    assert e.rust_display == (
        "Lease causality violation during replay: lease heartbeat rejected for run "
        '00112233-4455-6677-8899-aabbccddeeff: owner mismatch expected=a"b actual=c\n'
    )
    assert e.rust_debug == (
        "LeaseCausality(OwnerMismatch { run_id: RunId(00112233-4455-6677-8899-aabbccddeeff), "
        'event: Heartbeat, expected_owner: "a\\"b", actual_owner: "c\\n" })'
    )
    assert e.state is None and e.fields == {"run_id": run, "event": "Heartbeat",
                                           "expected_owner": 'a"b', "actual_owner": "c\n"}
    e = EngineControlCausality("AlreadyPaused", first_paused_at=None, duplicate_paused_at=9)
    assert e.rust_display.endswith("engine pause rejected: already paused, duplicate timestamp 9")
    assert e.rust_debug == "EngineControlCausality(AlreadyPaused { first_paused_at: None, duplicate_paused_at: 9 })"
    with pytest.raises(ValueError):
        LeaseCausality("Nope", run_id=run)
    with pytest.raises(TypeError):
        TaskCausality("UnknownTask")


def test_errors_pickle_and_copy() -> None:
    run = aq.RunId.new()
    for e in [
        InvalidTransition("r", sequence=4),
        LeaseCausality("UnknownRun", run_id=run, event="Acquire", sequence=2),
        TaskCausality("AlreadyCanceled", task_id=aq.TaskId.new(), first_canceled_at=1, duplicate_canceled_at=2),
        EngineControlCausality("NotPaused", attempted_resumed_at=5),
    ]:
        for clone in (pickle.loads(pickle.dumps(e)), copy.copy(e)):
            assert type(clone) is type(e)
            assert (str(clone), clone.rust_debug, clone.sequence) == (str(e), e.rust_debug, e.sequence)


# =========================================================================================
# Read API values are immutable; the reducer's state is not reachable through them
# =========================================================================================
def test_read_api_returns_immutable_values() -> None:
    h = Events()
    events, _task, run = running_run(h)
    a = aq.AttemptId.new()
    r = replay(events + [h.start(run, a)])
    inst = r.get_run_instance(run)
    with pytest.raises(AttributeError):
        inst.state = S.READY  # type: ignore[misc]
    history = r.get_run_history(run)
    assert isinstance(history, tuple) and isinstance(history[0], RunStateHistoryEntry)
    entry = r.get_attempt_history(run)[0]
    with pytest.raises(AttributeError):
        entry.finished_at = 1  # type: ignore[misc]
    r.apply(h.finish(run, a))
    assert entry.finished_at is None and r.get_attempt_history(run)[0].finished_at is not None
    assert inst.state is S.RUNNING and inst.current_attempt_id == a  # old view unchanged
    assert r.get_run_instance(aq.RunId.new()) is None
    assert r.get_run_history(aq.RunId.new()) is None and r.get_attempt_history(aq.RunId.new()) is None
    assert r.get_lease(aq.RunId.new()) is None and r.get_task(aq.TaskId.new()) is None
    assert r.get_run_state(aq.RunId.new()) is None
    assert repr(r).startswith("<ReplayReducer latest_sequence=")


def test_bootstrap_setters() -> None:
    h = Events()
    task, run = aq.TaskId.new(), aq.RunId.new()
    r = replay([h.task(task), h.run(task, run)])
    a = aq.AttemptId.new()
    r.apply(h.change(run, S.SCHEDULED, S.READY))
    r.apply(h.change(run, S.READY, S.LEASED))
    r.apply(h.change(run, S.LEASED, S.RUNNING))
    r.set_attempt_history(run, [AttemptHistoryEntry(a, 12)])
    r.set_attempt_lineage_for_bootstrap(run, 1, a)
    r.set_lease_for_bootstrap(run, LeaseMetadata("worker-1", 1000, 12, 13))
    r.set_latest_sequence_for_bootstrap(100)
    assert r.get_lease(run) == ("worker-1", 1000) and r.get_lease_metadata(run).acquired_at == 12
    assert r.active_attempt_id(run) == a and r.latest_sequence == 100
    r.apply(h.heartbeat(run, "worker-1", 2000, seq=101))
    assert r.get_lease(run) == ("worker-1", 2000)
    r.apply(h.finish(run, a, seq=102))
    assert r.get_attempt_history(run)[0].finished_at is not None
    hist = list(r.get_run_history(run))
    r.set_run_history(run, hist[:1])
    assert r.get_run_history(run) == tuple(hist[:1])
