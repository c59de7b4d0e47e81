"""The projection's read API is safe from other threads while the authority applies
commands: no read raises, no insert is lost (also while a reader thaws the records a
snapshot left in its bytes), and a read never sees half of an event.

Each test runs real threads against real data dirs; the rounds are bounded in count and
time. Run on both backends (the pure-Python leg interleaves between bytecodes, the native
one between C calls that release nothing but at the lock)."""

from __future__ import annotations

import threading
import time

import actionqueue as aq

S = aq.RunState
ROUNDS_S = 3.0  # wall-clock budget of each racing loop


def _race(writer, readers, seconds: float = ROUNDS_S) -> list[BaseException]:
    """Run ``writer()`` once and each ``reader()`` in a loop until the writer is done (or
    ``seconds`` pass); return every exception raised on any thread."""
    errors: list[BaseException] = []
    done = threading.Event()

    def guarded(fn, loop: bool) -> None:
        try:
            deadline = time.monotonic() + seconds
            while True:
                fn()
                if not loop or done.is_set() or time.monotonic() > deadline:
                    return
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            if not loop:
                done.set()

    threads = [threading.Thread(target=guarded, args=(writer, False))]
    threads += [threading.Thread(target=guarded, args=(r, True)) for r in readers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return errors


def _task(authority: aq.MutationAuthority, ts: int) -> aq.TaskId:
    tid = aq.TaskId.new()
    authority.create_task(aq.TaskSpec(tid, run_policy=aq.RunPolicy.repeat(2, 1)), timestamp=ts)
    return tid


def test_scans_and_lookups_while_commands_apply(tmp_path) -> None:
    """Readers scan every task and run and look single runs up while a writer creates
    tasks, derives runs and moves them along: nothing raises, every scan is a superset of
    the one before it, and every run read is one a replay could have produced."""
    with aq.open(tmp_path, durability="none") as store:
        a = aq.MutationAuthority.from_store(store)
        r = store.reducer
        created: list[aq.TaskId] = []

        def writer() -> None:
            for i in range(300):
                tid = _task(a, 1_700_000_000 + i)
                created.append(tid)
                for out in a.derive_runs(tid):
                    run = out.event.run_instance.id
                    a.transition_run(run, S.SCHEDULED, S.READY)
                    a.acquire_lease(run, "w", 2_000_000_000)
                    a.transition_run(run, S.READY, S.LEASED)

        seen_tasks: list[int] = [0]

        def scan() -> None:
            ids = list(r.task_ids())
            assert len(ids) >= seen_tasks[0]
            seen_tasks[0] = len(ids)
            assert len(set(ids)) == len(ids)
            for inst in r.run_instances():
                assert inst.state in (S.SCHEDULED, S.READY, S.LEASED)

        def lookup() -> None:
            for tid in list(created[-5:]):
                for run in r.runs_for_task(tid):
                    history = r.get_run_history(run.id)
                    assert history is not None and history[0].to is S.SCHEDULED
                    lease = r.get_lease(run.id)
                    if lease is not None:
                        assert r.get_run_state(run.id) in (S.READY, S.LEASED)

        errors = _race(writer, [scan, lookup])
        assert not errors, errors[:3]
        assert r.task_count == 300 == len(set(r.task_ids()))
        assert all(r.task_exists(t) for t in created)


def _snapshotted_dir(path, tasks: int) -> None:
    with aq.open(path, durability="none") as store:
        a = aq.MutationAuthority.from_store(store)
        for i in range(tasks):
            for out in a.derive_runs(_task(a, 1_700_000_000 + i)):
                a.transition_run(out.event.run_instance.id, S.SCHEDULED, S.READY)
        store.snapshot(timestamp=1_700_100_000)


def test_no_insert_is_lost_while_a_reader_thaws_a_snapshot(tmp_path) -> None:
    """A recovered projection keeps the snapshot's records in its bytes; the first scan
    moves them all into memory. Commands that insert tasks and runs meanwhile must all
    land (they were lost when the thaw replaced the dicts under the writer)."""
    _snapshotted_dir(tmp_path, 400)
    for _round in range(4):
        with aq.open(tmp_path, durability="none") as store:
            a = aq.MutationAuthority.from_store(store)
            r = store.reducer
            before = r.task_count
            created: list[aq.TaskId] = []
            runs: list[aq.RunId] = []
            go = threading.Barrier(2)

            def writer() -> None:
                go.wait()
                for i in range(60):
                    tid = _task(a, 1_800_000_000 + i)
                    created.append(tid)
                    runs.extend(o.event.run_instance.id for o in a.derive_runs(tid))

            first = [True]

            def reader() -> None:
                if first[0]:  # the first scan (the thaw) starts with the writer's inserts
                    first[0] = False
                    go.wait(timeout=10)
                list(r.task_ids())
                list(r.run_instances())

            errors = _race(writer, [reader])
            assert not errors, errors[:3]
            assert r.task_count == before + 60 == len(list(r.task_ids()))
            assert all(r.task_exists(t) for t in created)
            assert all(r.get_run_state(run) is S.SCHEDULED for run in runs)
            assert len(list(r.run_ids())) == r.run_count


def test_a_read_never_sees_half_an_event(tmp_path) -> None:
    """A run read as Running always has its attempt counted, and a run read with an
    active attempt is always Running: the reducer's two-field changes are seen whole."""
    with aq.open(tmp_path, durability="none") as store:
        a = aq.MutationAuthority.from_store(store)
        r = store.reducer
        tid = _task(a, 1_700_000_000)
        run = a.derive_runs(tid)[0].event.run_instance.id
        a.transition_run(run, S.SCHEDULED, S.READY)

        def writer() -> None:
            for i in range(150):
                a.acquire_lease(run, "w", 2_000_000_000 + i)
                a.transition_run(run, S.READY, S.LEASED)
                a.transition_run(run, S.LEASED, S.RUNNING)
                attempt = a.start_attempt(run).event.attempt_id
                a.finish_attempt(run, attempt, aq.AttemptResultKind.FAILURE, error="x")
                a.transition_run(run, S.RUNNING, S.RETRY_WAIT)
                a.transition_run(run, S.RETRY_WAIT, S.READY)
                a.release_lease(run, "w", 2_000_000_000 + i)

        def reader() -> None:
            inst = r.get_run_instance(run)
            assert inst is not None
            if inst.current_attempt_id is not None:
                assert inst.state is S.RUNNING and inst.attempt_count >= 1
            attempts = r.get_attempt_history(run)
            assert attempts is not None and sum(x.finished_at is None for x in attempts) <= 1

        errors = _race(writer, [reader, reader])
        assert not errors, errors[:3]
        assert len(r.get_attempt_history(run) or ()) == 150
