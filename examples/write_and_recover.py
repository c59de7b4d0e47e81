"""Write a log, snapshot it, tear its last record as a crash would, and recover.

Run: python examples/write_and_recover.py [DATA_DIR]

1. ``WalWriter`` appends events with group commit (``append``, ``append_many``,
   ``append_next``);
2. ``actionqueue.open`` recovers the projection and ``write_snapshot`` saves it;
3. a few more events, then half a record is appended by hand: what a crash in the middle
   of a write leaves behind;
4. ``actionqueue.open(..., repair_policy=TRUNCATE_PARTIAL)`` loads the snapshot, replays
   the log after it, cuts the torn record, and says so in ``store.report``;
5. ``replay_to`` shows the state at a past sequence; ``verify`` checks the whole dir.

With no DATA_DIR a temporary directory is used (and removed).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import actionqueue as aq

S = aq.RunState
NOW = 1_700_000_000


def lifecycle(seq: int, n: int) -> list[aq.WalEvent]:
    """A task, one run, one successful attempt: 9 events from sequence ``seq``."""
    task, run, attempt = aq.TaskId.new(), aq.RunId.new(), aq.AttemptId.new()
    t = NOW + n
    events = [
        aq.TaskCreated(aq.TaskSpec(task, payload=aq.TaskPayload(b"job %d" % n)), t),
        aq.RunCreated(aq.RunInstance(run, task, S.SCHEDULED, None, 0, t, t, 0, t)),
        aq.RunStateChanged(run, S.SCHEDULED, S.READY, t),
        aq.LeaseAcquired(run, "worker-1", t + 30, t),
        aq.RunStateChanged(run, S.READY, S.LEASED, t),
        aq.RunStateChanged(run, S.LEASED, S.RUNNING, t),
        aq.AttemptStarted(run, attempt, t),
        aq.AttemptFinished(run, attempt, aq.AttemptResultKind.SUCCESS, None, b"done", t + 1),
        aq.RunStateChanged(run, S.RUNNING, S.COMPLETED, t + 1),  # ends the lease
    ]
    return [aq.WalEvent(seq + i, e) for i, e in enumerate(events)]


def main(data_dir: Path) -> None:
    # 1. write: one event, a batch (one write, all or nothing), writer-assigned sequences
    with aq.WalWriter(data_dir, durability=aq.Durability.GROUP) as wal:
        first = lifecycle(1, 0)
        wal.append(first[0])
        wal.append_many(first[1:])
        for n in range(1, 100):
            wal.append_many(lifecycle(wal.current_sequence + 1, n))
        paused = wal.append_next(aq.EnginePaused(NOW + 200))
        wal.append_next(aq.EngineResumed(NOW + 201))
    print(f"wrote          {paused + 1} events")

    # 2. recover and snapshot the projection
    with aq.open(data_dir) as store:
        r = store.reducer
        print(f"recovered      {r.task_count} tasks, {r.run_count} runs at sequence {r.latest_sequence}")
        path = aq.write_snapshot(data_dir, aq.build_snapshot(r, NOW + 300))
        print(f"snapshot       {path.name} at sequence {r.latest_sequence}")
        # 3. more events after the snapshot ...
        for n in range(100, 110):
            store.writer.append_many(lifecycle(store.writer.current_sequence + 1, n))
        last_good = store.writer.current_sequence
        active = store.writer.path

    # ... and a crash in the middle of the next write: half a record reaches the disk
    record = aq.encode(lifecycle(last_good + 1, 999)[0])
    with open(active, "ab") as f:
        f.write(record[: len(record) // 2])
    print(f"crash          {len(record) // 2} of {len(record)} bytes of record {last_good + 1} written")

    # 4. recovery: snapshot + the log after it; the torn record is cut
    with aq.open(data_dir, repair_policy=aq.RepairPolicy.TRUNCATE_PARTIAL) as store:
        rep = store.report
        assert rep.latest_sequence == last_good and rep.repaired is not None
        print(f"recovery       snapshot ({rep.snapshot_source}) at {rep.snapshot_sequence}, "
              f"{rep.wal_events_applied} events replayed, latest {rep.latest_sequence}")
        print(f"torn tail      {rep.repaired.bytes_to_cut} bytes cut at offset {rep.repaired.offset} "
              f"({rep.repaired.reason})")
        completed = store.reducer.runs_in_state(S.COMPLETED)
        print(f"projection     {len(completed)} runs completed")

    # 5. time travel and a full check
    past = aq.replay_to(data_dir, 9 * 50)  # after the first 50 lifecycles
    print(f"at sequence {past.latest_sequence}: {past.task_count} tasks")
    report = aq.verify(data_dir)
    assert report.clean
    print(f"verify         clean, {report.records} records")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        target = Path(sys.argv[1])
        target.mkdir(parents=True, exist_ok=True)
        main(target)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
