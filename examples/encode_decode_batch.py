"""Encode and decode a realistic batch of WAL events and print the figures.

Run: python examples/encode_decode_batch.py [N_TASKS]

Builds task lifecycles like a worker would record them (task created, a run scheduled,
leased, started, finished, released, completed), encodes them into WAL v5 records with
the native codec, decodes them back, checks the round trip and prints the rates.
"""

from __future__ import annotations

import sys
import time

import actionqueue as aq


def lifecycle(task_no: int, seq: int, now: int) -> list[aq.WalEvent]:
    """One task and one successful run: 11 events, as in the reference workload."""
    task_id = aq.TaskId.new()
    run_id = aq.RunId.new()
    attempt_id = aq.AttemptId.new()
    owner = f"worker-{task_no % 8}"
    spec = aq.TaskSpec(
        id=task_id,
        payload=aq.TaskPayload(b'{"job": %d}' % task_no, "application/json"),
        run_policy=aq.RepeatPolicy(count=3, interval_secs=60),
        constraints=aq.TaskConstraints(max_attempts=3, timeout_secs=300),
        metadata=aq.TaskMetadata(tags=("example",), priority=task_no % 10),
    )
    S = aq.RunState
    events: list[aq.Event] = [
        aq.TaskCreated(spec, now),
        aq.RunCreated(aq.RunInstance(run_id, task_id, S.SCHEDULED, None, 0, now, now, 0, now)),
        aq.RunStateChanged(run_id, S.SCHEDULED, S.READY, now + 1),
        aq.RunStateChanged(run_id, S.READY, S.LEASED, now + 2),
        aq.LeaseAcquired(run_id, owner, now + 32, now + 2),
        aq.RunStateChanged(run_id, S.LEASED, S.RUNNING, now + 3),
        aq.AttemptStarted(run_id, attempt_id, now + 3),
        aq.LeaseHeartbeat(run_id, owner, now + 40, now + 8),
        aq.AttemptFinished(run_id, attempt_id, aq.AttemptResultKind.SUCCESS, None, b"ok", now + 9),
        aq.LeaseReleased(run_id, owner, now + 40, now + 9),
        aq.RunStateChanged(run_id, S.RUNNING, S.COMPLETED, now + 9),
    ]
    return [aq.WalEvent(seq + i, e) for i, e in enumerate(events)]


def main(n_tasks: int = 20_000) -> None:
    now = 1_700_000_000
    events: list[aq.WalEvent] = []
    for t in range(n_tasks):
        events.extend(lifecycle(t, len(events) + 1, now + t))

    t0 = time.perf_counter()
    buf = aq.encode_batch(events)
    t1 = time.perf_counter()
    back = aq.decode_batch(buf)
    t2 = time.perf_counter()
    assert back == events, "round trip changed the events"

    n = len(events)
    print(f"backend        {aq.backend} (CRC-32: {aq._codec_impl.CRC32_IMPL})")
    print(f"events         {n:,} ({n_tasks:,} task lifecycles)")
    print(f"encoded        {len(buf):,} bytes, {len(buf) / n:.1f} bytes/record")
    print(f"encode         {n / (t1 - t0) / 1e6:6.2f} M events/s")
    print(f"decode         {n / (t2 - t1) / 1e6:6.2f} M events/s (CRC-checked, into Python objects)")
    print(f"round trip     ok; first event: {back[0].event.kind_name} seq {back[0].sequence}")
    print(f"example JSON   {back[2].to_json()}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
