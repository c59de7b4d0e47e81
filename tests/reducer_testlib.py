"""Helpers shared by the reducer tests: an event builder, a deep state capture, loaders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aq_testlib import VECTORS_DIR, VECTORS_MISSING

import actionqueue as aq
from actionqueue.snapshot.shape import projection_to_snapshot_builtins
from actionqueue.state.reducer import ReplayReducer

#: Golden histories: ``valid/<name>/`` (with Rust's snapshot) and ``invalid/cases.json``.
VALID_DIR = VECTORS_DIR / "replay" / "valid"
INVALID_DIR = VECTORS_DIR / "replay" / "invalid"


def valid_names() -> list:
    """The names of the valid golden histories (one skipped param when vectors are missing)."""
    if not VALID_DIR.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=VECTORS_MISSING))]
    return sorted(p.name for p in VALID_DIR.iterdir() if p.is_dir())


def invalid_cases() -> list:
    """The cases of ``invalid/cases.json`` as params (one skipped param when missing)."""
    path = INVALID_DIR / "cases.json"
    if not path.is_file():
        return [pytest.param(None, marks=pytest.mark.skip(reason=VECTORS_MISSING))]
    cases = json.loads(path.read_text(encoding="utf-8"))
    return [pytest.param(c, id=c["name"]) for c in cases]


def invalid_case(name: str) -> dict:
    """One case of ``invalid/cases.json`` by name."""
    for c in json.loads((INVALID_DIR / "cases.json").read_text(encoding="utf-8")):
        if c["name"] == name:
            return c
    raise KeyError(name)

S = aq.RunState
R = aq.AttemptResultKind


class Events:
    """Builds WalEvents with increasing sequences (1, 2, ...) and timestamps (1000, 1001, ...).

    ``seq`` / ``ts`` may be given per event; the counters continue from there.
    """

    def __init__(self, seq: int = 1, ts: int = 1000):
        self.seq = seq
        self.ts = ts

    def _wrap(self, event_cls: type, seq: int | None = None, **fields: Any) -> aq.WalEvent:
        if seq is None:
            seq = self.seq
        self.seq = seq + 1
        if "timestamp" in event_cls.__dataclass_fields__ and fields.get("timestamp") is None:
            fields["timestamp"] = self.tick()
        return aq.WalEvent(seq, event_cls(**fields))

    def tick(self) -> int:
        self.ts += 1
        return self.ts

    # tasks and runs
    def task(self, task_id=None, *, parent=None, tenant=None, seq=None, ts=None) -> aq.WalEvent:
        spec = aq.TaskSpec(task_id or aq.TaskId.new(), parent_task_id=parent, tenant_id=tenant)
        return self._wrap(aq.TaskCreated, seq, task_spec=spec, timestamp=ts)

    def run(self, task_id, run_id=None, *, state=S.SCHEDULED, created_at=None, scheduled_at=None,
            attempt_count=0, priority=0, seq=None) -> aq.WalEvent:
        created = self.tick() if created_at is None else created_at
        inst = aq.RunInstance(
            run_id or aq.RunId.new(), task_id, state, None, attempt_count, created,
            created if scheduled_at is None else scheduled_at, priority, created,
        )
        return self._wrap(aq.RunCreated, seq, run_instance=inst)

    def change(self, run_id, prev, new, *, seq=None, ts=None) -> aq.WalEvent:
        return self._wrap(aq.RunStateChanged, seq, run_id=run_id, previous_state=prev, new_state=new, timestamp=ts)

    def start(self, run_id, attempt_id=None, *, seq=None, ts=None) -> aq.WalEvent:
        return self._wrap(aq.AttemptStarted, seq, run_id=run_id, attempt_id=attempt_id or aq.AttemptId.new(), timestamp=ts)

    def finish(self, run_id, attempt_id, result=R.SUCCESS, error=None, output=None, *, seq=None, ts=None) -> aq.WalEvent:
        return self._wrap(aq.AttemptFinished, seq, run_id=run_id, attempt_id=attempt_id, result=result,
                          error=error, output=output, timestamp=ts)

    def cancel_task(self, task_id, *, seq=None, ts=None) -> aq.WalEvent:
        return self._wrap(aq.TaskCanceled, seq, task_id=task_id, timestamp=ts)

    def cancel_run(self, run_id, *, seq=None, ts=None) -> aq.WalEvent:
        return self._wrap(aq.RunCanceled, seq, run_id=run_id, timestamp=ts)

    # leases
    def acquire(self, run_id, owner="worker-1", expiry=5000, *, seq=None, ts=None) -> aq.WalEvent:
        return self._wrap(aq.LeaseAcquired, seq, run_id=run_id, owner=owner, expiry=expiry, timestamp=ts)

    def heartbeat(self, run_id, owner="worker-1", expiry=6000, *, seq=None, ts=None) -> aq.WalEvent:
        return self._wrap(aq.LeaseHeartbeat, seq, run_id=run_id, owner=owner, expiry=expiry, timestamp=ts)

    def expire(self, run_id, owner="worker-1", expiry=5000, *, seq=None, ts=None) -> aq.WalEvent:
        return self._wrap(aq.LeaseExpired, seq, run_id=run_id, owner=owner, expiry=expiry, timestamp=ts)

    def release(self, run_id, owner="worker-1", expiry=5000, *, seq=None, ts=None) -> aq.WalEvent:
        return self._wrap(aq.LeaseReleased, seq, run_id=run_id, owner=owner, expiry=expiry, timestamp=ts)

    # engine
    def pause(self, *, seq=None, ts=None) -> aq.WalEvent:
        return self._wrap(aq.EnginePaused, seq, timestamp=ts)

    def resume_engine(self, *, seq=None, ts=None) -> aq.WalEvent:
        return self._wrap(aq.EngineResumed, seq, timestamp=ts)

    # workflow
    def depend(self, task_id, *prereqs, seq=None) -> aq.WalEvent:
        return self._wrap(aq.DependencyDeclared, seq, task_id=task_id, depends_on=prereqs)

    def suspend(self, run_id, reason=None, *, seq=None, ts=None) -> aq.WalEvent:
        return self._wrap(aq.RunSuspended, seq, run_id=run_id, reason=reason, timestamp=ts)

    def resume_run(self, run_id, *, seq=None, ts=None) -> aq.WalEvent:
        return self._wrap(aq.RunResumed, seq, run_id=run_id, timestamp=ts)

    # budgets
    def allocate(self, task_id, dim=aq.BudgetDimension.TOKEN, limit=100, *, seq=None) -> aq.WalEvent:
        return self._wrap(aq.BudgetAllocated, seq, task_id=task_id, dimension=dim, limit=limit)

    def consume(self, task_id, dim=aq.BudgetDimension.TOKEN, amount=10, *, seq=None) -> aq.WalEvent:
        return self._wrap(aq.BudgetConsumed, seq, task_id=task_id, dimension=dim, amount=amount)

    def exhaust(self, task_id, dim=aq.BudgetDimension.TOKEN, *, seq=None) -> aq.WalEvent:
        return self._wrap(aq.BudgetExhausted, seq, task_id=task_id, dimension=dim)

    def replenish(self, task_id, dim=aq.BudgetDimension.TOKEN, new_limit=200, *, seq=None) -> aq.WalEvent:
        return self._wrap(aq.BudgetReplenished, seq, task_id=task_id, dimension=dim, new_limit=new_limit)

    # subscriptions
    def subscribe(self, sub_id, task_id, filt=None, *, seq=None) -> aq.WalEvent:
        return self._wrap(aq.SubscriptionCreated, seq, subscription_id=sub_id, task_id=task_id,
                          filter=filt or aq.TaskCompletedFilter(task_id))

    def trigger(self, sub_id, *, seq=None) -> aq.WalEvent:
        return self._wrap(aq.SubscriptionTriggered, seq, subscription_id=sub_id)

    def unsubscribe(self, sub_id, *, seq=None) -> aq.WalEvent:
        return self._wrap(aq.SubscriptionCanceled, seq, subscription_id=sub_id)

    # platform
    def register(self, actor_id, identity="actor", capabilities=("gpu",), department=None, interval=30,
                 tenant=None, *, seq=None) -> aq.WalEvent:
        return self._wrap(aq.ActorRegistered, seq, actor_id=actor_id, identity=identity,
                          capabilities=capabilities, department=department,
                          heartbeat_interval_secs=interval, tenant_id=tenant)

    def deregister(self, actor_id, *, seq=None) -> aq.WalEvent:
        return self._wrap(aq.ActorDeregistered, seq, actor_id=actor_id)

    def actor_heartbeat(self, actor_id, *, seq=None) -> aq.WalEvent:
        return self._wrap(aq.ActorHeartbeat, seq, actor_id=actor_id)

    def tenant(self, tenant_id, name="Acme", *, seq=None) -> aq.WalEvent:
        return self._wrap(aq.TenantCreated, seq, tenant_id=tenant_id, name=name)

    def role(self, actor_id, role, tenant_id, *, seq=None) -> aq.WalEvent:
        return self._wrap(aq.RoleAssigned, seq, actor_id=actor_id, role=role, tenant_id=tenant_id)

    def grant(self, actor_id, capability, tenant_id, *, seq=None) -> aq.WalEvent:
        return self._wrap(aq.CapabilityGranted, seq, actor_id=actor_id, capability=capability, tenant_id=tenant_id)

    def revoke(self, actor_id, capability, tenant_id, *, seq=None) -> aq.WalEvent:
        return self._wrap(aq.CapabilityRevoked, seq, actor_id=actor_id, capability=capability, tenant_id=tenant_id)

    def ledger(self, tenant_id, key="ledger/0", payload=b"", actor_id=None, entry_id=None, *, seq=None) -> aq.WalEvent:
        return self._wrap(aq.LedgerEntryAppended, seq, entry_id=entry_id or aq.LedgerEntryId.new(),
                          tenant_id=tenant_id, ledger_key=key, actor_id=actor_id, payload=payload)

    # a run taken to Running with a lease, as the scheduler does it
    def to_running(self, run_id, owner="worker-1", expiry=5000) -> list[aq.WalEvent]:
        return [
            self.change(run_id, S.SCHEDULED, S.READY),
            self.change(run_id, S.READY, S.LEASED),
            self.acquire(run_id, owner, expiry),
            self.change(run_id, S.LEASED, S.RUNNING),
        ]


def replay(events) -> ReplayReducer:
    r = ReplayReducer()
    r.apply_all(events)
    return r


def deep_state(r: ReplayReducer) -> Any:
    """Everything observable about a reducer, as comparable builtins."""
    snap = projection_to_snapshot_builtins(r, 0)
    tasks = list(r.task_ids())
    extra = {
        "latest_sequence": r.latest_sequence,
        "run_order": [str(x) for x in r.run_ids()],
        "task_order": [str(x) for x in tasks],
        "runs_by_task": {
            str(t): [str(ri.id) for ri in r.runs_for_task(t)]
            for t in {ri.task_id for ri in r.run_instances()}
        },
        "active_attempts": {str(x): str(r.active_attempt_id(x)) for x in r.run_ids()},
        "actors": [a.to_builtins() for a in r.actors()],
    }
    return json.loads(json.dumps({"snapshot": snap, "extra": extra}, sort_keys=True))


def load_wal_events(path: Path) -> list[aq.WalEvent]:
    return aq.decode_batch(path.read_bytes())


def load_jsonl_events(path: Path) -> list[aq.WalEvent]:
    # split on "\n" only: str.splitlines() also splits inside strings holding U+2028 etc.
    return [aq.WalEvent.from_json(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def history_is_snapshot_valid(r: ReplayReducer, run_id) -> str | None:
    """The history/lineage checks Rust's ``validate_snapshot`` runs for one run (spec
    snapshot-and-recovery.md section 5); returns the failing check's name or None."""
    from actionqueue.state.rules import is_valid_transition

    inst = r.get_run_instance(run_id)
    history = r.get_run_history(run_id) or ()
    attempts = r.get_attempt_history(run_id) or ()
    if not history or tuple(history[0]) != (None, S.SCHEDULED, inst.created_at):
        return "MissingInitialRunStateHistory"
    prev = history[0].to
    for entry in history[1:]:
        if entry.from_state is None or entry.from_state != prev or not is_valid_transition(entry.from_state, entry.to):
            return "InvalidRunStateHistoryTransition"
        prev = entry.to
    if prev != inst.state:
        return "InvalidRunStateHistoryTransition"
    if len(attempts) != inst.attempt_count:
        return "InvalidAttemptHistoryCount"
    if inst.current_attempt_id is not None:
        if inst.state not in (S.RUNNING, S.CANCELED):
            return "InvalidAttemptLineageState"
        matching = [a for a in attempts if a.attempt_id == inst.current_attempt_id]
        if len(matching) != 1 or matching[0].finished_at is not None:
            return "InvalidActiveAttemptHistory"
    if r.get_lease(run_id) is not None and inst.state not in (S.READY, S.LEASED, S.RUNNING):
        return "InvalidLeasePresence"
    return None
