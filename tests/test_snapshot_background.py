"""Background snapshots: a child process folds the log from the last snapshot and writes
the next one, at most one at a time, while commands go on; failures are reported on the
store, never raised into a command."""

from __future__ import annotations

import threading
import time

import pytest

import actionqueue as aq
from actionqueue.errors import SnapshotError
from actionqueue.snapshot.background import Snapshotter


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def _tasks(authority: aq.MutationAuthority, n: int) -> list[aq.TaskId]:
    ids = [aq.TaskId.new() for _ in range(n)]
    for i, tid in enumerate(ids):
        authority.create_task(aq.TaskSpec(tid), timestamp=1_700_000_000 + i)
    return ids


def test_every_n_events_a_snapshot_is_taken_in_the_background(tmp_path) -> None:
    with aq.open(tmp_path, snapshot_every=40, durability="group") as store:
        a = aq.MutationAuthority.from_store(store)
        _tasks(a, 100)
        _wait_for(lambda: store.snapshots.status.taken >= 1 and store.snapshots.status.in_flight is None)
        status = store.snapshots.status
        assert status.failed == 0 and status.last_error is None
        assert 40 <= status.last.sequence <= 100
        snap = aq.load_snapshot(tmp_path)
        assert snap["metadata"]["wal_sequence"] == status.last.sequence
        assert snap["metadata"]["task_count"] == status.last.sequence  # one event per task
    with aq.open(tmp_path) as store:
        assert store.report.snapshot_loaded and store.report.snapshot_source == "image"
        assert store.reducer.task_count == 100


def test_authority_snapshot_of_a_large_projection_goes_through_the_child(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(Snapshotter, "INLINE_RECORDS", 0)
    with aq.open(tmp_path, durability="group") as store:
        a = aq.MutationAuthority.from_store(store)
        _tasks(a, 30)
        done = []
        stop = threading.Event()

        def commands() -> None:  # commands keep going while the child works
            while not stop.is_set():
                a.create_task(aq.TaskSpec(aq.TaskId.new()), timestamp=1_800_000_000)
                done.append(1)

        t = threading.Thread(target=commands)
        t.start()
        try:
            snap = a.snapshot(timestamp=123)
        finally:
            stop.set()
            t.join()
        assert snap["timestamp"] == 123 and snap["metadata"]["wal_sequence"] >= 30
        assert store.snapshots.status.taken == 1
        assert done  # at least one command completed meanwhile
        total = store.reducer.task_count
    with aq.open(tmp_path) as store:
        assert store.report.snapshot_sequence == snap["metadata"]["wal_sequence"]
        assert store.reducer.task_count == total


def test_a_failed_background_snapshot_is_reported_not_raised(tmp_path) -> None:
    with aq.open(tmp_path, durability="fsync") as store:
        a = aq.MutationAuthority.from_store(store)
        _tasks(a, 3)
        bogus = Snapshotter(tmp_path / "no-such-dir", store.writer, every=1)
        bogus.note(5)  # the command path: never raises
        _wait_for(lambda: bogus.status.failed == 1)
        assert bogus.status.last_error and bogus.status.taken == 0
        with pytest.raises(SnapshotError):
            bogus.take(3)
        bogus.close()
        assert not (tmp_path / "snapshots" / "snapshot.bin").exists()


def test_a_snapshot_builds_on_the_previous_one(tmp_path) -> None:
    """The child starts from the newest snapshot and folds only what came after it."""
    with aq.open(tmp_path) as store:
        a = aq.MutationAuthority.from_store(store)
        _tasks(a, 20)
        first = store.snapshots.take()
        _tasks(a, 5)
        second = store.snapshots.take()
    assert first.sequence == 20 and first.detail["events_folded"] == 20
    assert second.sequence == 25 and second.detail["events_folded"] == 5
    assert second.detail["source"] == "image"


def test_close_waits_for_the_snapshot_in_flight(tmp_path) -> None:
    store = aq.open(tmp_path, snapshot_every=10)
    a = aq.MutationAuthority.from_store(store)
    _tasks(a, 10)
    store.close()  # the snapshot started by the 10th event finishes first
    assert store.snapshots.status.taken == 1
    assert aq.load_snapshot(tmp_path)["metadata"]["wal_sequence"] == 10


def test_snapshot_every_must_be_positive(tmp_path) -> None:
    with pytest.raises(ValueError, match="snapshot_every"):
        aq.open(tmp_path, snapshot_every=0)
