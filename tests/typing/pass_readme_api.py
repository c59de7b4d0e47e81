"""The README's whole public API, as a user writes it: must type-check with no error under
mypy --strict and pyright (tests/test_typing.py runs both). Not run as a test: the blocks
themselves are run by the README test."""

from __future__ import annotations

from pathlib import Path

import actionqueue as aq
from actionqueue.scan import scan


def codec() -> None:
    run = aq.RunId.new()
    event = aq.WalEvent(1, aq.RunStateChanged(run, aq.RunState.SCHEDULED, aq.RunState.READY, 1_700_000_000))
    record: bytes = aq.encode(event)
    assert aq.decode(record) == event
    text: str = event.to_json()
    events: list[aq.WalEvent] = aq.decode_batch(aq.encode_batch([event] * 3))
    print(text, events, aq.encode_payload(event), aq.decode_payload(aq.encode_payload(event)))
    match event.event:
        case aq.RunStateChanged(run_id, prev, new, ts):
            reveal = (run_id.uuid, prev.is_terminal, new.value, ts + 1)
            print(reveal)
        case _:
            pass


def commands(data: Path) -> None:
    S = aq.RunState
    with aq.open(data, durability="group") as store:
        authority = aq.MutationAuthority.from_store(store)
        task = aq.TaskId.new()
        authority.create_task(aq.TaskSpec(task, run_policy=aq.RunPolicy.repeat(3, 60)))
        authority.allocate_budget(task, aq.BudgetDimension.TOKEN, 10_000)
        runs: list[aq.RunId] = [out.event.run_instance.id for out in authority.derive_runs(task)]
        run = runs[0]
        authority.transition_run(run, S.SCHEDULED, S.READY)
        authority.acquire_lease(run, "worker-1", expiry=2_000_000_000)
        authority.transition_run(run, S.READY, S.LEASED)
        authority.transition_run(run, S.LEASED, S.RUNNING)
        attempt: aq.AttemptId = authority.start_attempt(run).event.attempt_id
        authority.consume_budget(task, aq.BudgetDimension.TOKEN, 1_200)
        authority.finish_attempt(run, attempt, aq.AttemptResultKind.SUCCESS, output=b"ok")
        authority.transition_run(run, S.RUNNING, S.COMPLETED)
        try:
            authority.transition_run(run, S.COMPLETED, S.READY)
        except aq.CommandRejected as exc:
            kind: str = exc.kind
            print(kind)
        r = store.reducer
        state: aq.RunState | None = r.get_run_state(run)
        print(state, r.get_attempt_history(run), r.get_budget(task, aq.BudgetDimension.TOKEN))
        budget = r.get_budget(task, aq.BudgetDimension.TOKEN)
        print(budget.consumed if budget is not None else 0)
        authority.snapshot(timestamp=1_700_000_100)
        store.snapshot()
    with aq.open(data, snapshot_every=10_000, retain="delete", durability=aq.Durability.GROUP) as store:
        print(store.snapshots.status)


def log(path: Path, event: aq.WalEvent) -> None:
    with aq.WalWriter(path, durability=aq.Durability.GROUP) as wal:
        wal.append(event)
        wal.append_many(aq.WalEvent(seq, aq.EnginePaused(1_700_000_000 + seq)) for seq in range(2, 100))
        seq: int = wal.append_next(aq.EngineResumed(1_700_000_200))
        print(seq)
    for e in aq.WalReader(path, from_sequence=50):
        sequence: int = e.sequence
        print(sequence, e.event.kind_name)
    cols = scan(path, kinds=[aq.EnginePaused])
    print(len(cols), cols.sequence[:3], cols.time.max(), cols.kind_names()[:1])


def replay(data: Path) -> None:
    past: aq.ReplayReducer = aq.replay_to(data, 5)
    r = aq.ReplayReducer()
    r.apply_all(list(aq.WalReader(data)))
    print(past.latest_sequence, r.latest_sequence)
    with aq.open(data, repair_policy=aq.RepairPolicy.TRUNCATE_PARTIAL) as store:
        print(store.report)
    with aq.open(data, repair_policy="truncate_partial") as store:
        print(store.report)
    print(aq.verify(data).problem)
    print(aq.repair(data, dry_run=True))
    with aq.open(data, repair_policy="truncate_partial") as store:
        print(store.report.repaired, store.report.snapshot_source)
    assert aq.verify(data).clean


def log_by_sequence(path: Path) -> None:
    with aq.WalWriter(path, durability="group") as wal:
        seq = wal.append_next(aq.EnginePaused(1_700_000_000))
        wal.append(aq.WalEvent(seq + 1, aq.EngineResumed(1_700_000_001)))
        wal.append_many(aq.WalEvent(s, aq.EnginePaused(1_700_000_000 + s)) for s in range(seq + 2, seq + 100))
