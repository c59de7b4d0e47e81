# cython: annotation_typing=False
"""The projection: the state the replay reducer folds events into, and its read API.

:class:`Projection` holds tasks, runs (with their state and attempt history), leases, engine
pause state, dependency declarations, budgets, subscriptions, actors, tenants, role
assignments, capability grants and the ledger, as plain dicts of the small records of
:mod:`.records`, and hands out immutable values built on request. Tasks and runs of a
snapshot may stay in its bytes (``_cold``, see :mod:`actionqueue.snapshot.cold`) until they
are first read.

Thread safety: every read takes the projection's lock (a re-entrant lock), and so does every
change (:meth:`ReplayReducer.apply <actionqueue.state.reducer.ReplayReducer.apply>` per
event, ``apply_all`` once per call, a snapshot build for its duration). Any thread may read
while another applies: a read sees the projection between two events, never inside one.
Scans over every task or run (``task_ids()``, ``run_instances()``, ...) copy what they return
under the lock, so iterating them never races a writer; on a large projection they hold the
lock for as long as the copy takes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

from ..model import (
    ActorId,
    AttemptId,
    BudgetDimension,
    Capability,
    RunId,
    RunInstance,
    RunState,
    SubscriptionId,
    TaskId,
    TaskSpec,
    TenantId,
)
from .records import (
    ActorRecord,
    AttemptHistoryEntry,
    BudgetRecord,
    CapabilityGrantRecord,
    LeaseMetadata,
    LedgerEntryRecord,
    RoleAssignmentRecord,
    RunStateHistoryEntry,
    SubscriptionRecord,
    TaskRecord,
    TenantRecord,
    _Actor,
    _attempt_records,
    _attempt_view,
    _actor_view,
    _Budget,
    _budget_view,
    _put_lease,
    _Run,
    _run_instance_view,
    _Subscription,
    _subscription_view,
    _Task,
    _task_view,
    capability_key,
)
from .rules import TERMINAL_STATES as _TERMINAL

__all__ = ["Projection"]


class Projection:
    """The state a :class:`~actionqueue.state.reducer.ReplayReducer` folds events into, and
    every way to read it (safe from any thread, see the module's docstring)."""

    __slots__ = (
        "_latest_sequence",
        "_tasks",
        "_runs",
        "_runs_by_task",
        "_engine_paused",
        "_engine_paused_at",
        "_engine_resumed_at",
        "_dependencies",
        "_budgets",
        "_subscriptions",
        "_actors",
        "_tenants",
        "_roles",
        "_grants",
        "_ledger",
        "_cold",
        "_lock",
    )

    def __init__(self) -> None:
        self._latest_sequence = 0
        self._tasks: dict[TaskId, _Task] = {}
        self._runs: dict[RunId, _Run] = {}
        self._runs_by_task: dict[TaskId, list[RunId]] = {}
        self._engine_paused = False
        self._engine_paused_at: int | None = None
        self._engine_resumed_at: int | None = None
        self._dependencies: dict[TaskId, set[TaskId]] = {}
        self._budgets: dict[tuple[TaskId, BudgetDimension], _Budget] = {}
        self._subscriptions: dict[SubscriptionId, _Subscription] = {}
        self._actors: dict[ActorId, _Actor] = {}
        self._tenants: dict[TenantId, TenantRecord] = {}
        self._roles: dict[tuple[ActorId, TenantId], RoleAssignmentRecord] = {}
        self._grants: dict[tuple[ActorId, str, TenantId], CapabilityGrantRecord] = {}
        self._ledger: list[LedgerEntryRecord] = []
        # Held by every read below and by every change (ReplayReducer.apply, apply_all,
        # snapshot builds): readers on other threads see whole events, never half of one.
        self._lock = threading.RLock()
        # Tasks and runs not yet read from a snapshot (see actionqueue.snapshot.cold): looked
        # up on a miss of the dicts above, moved into them on first use.
        self._cold: Any = None

    # ---- tasks and runs still in a snapshot image -------------------------------------
    # Called with the lock held (by apply or a read), so a take and the insert after it
    # are one step for every other thread.
    def _take_cold(self, hot: dict, key: Any, take: Any) -> Any:
        value = take(key)
        if value is not None:
            hot[key] = value
        return value

    def _cold_run(self, run_id: RunId) -> _Run | None:
        """The run from the snapshot image (moved into the projection), or None."""
        cold = self._cold
        return None if cold is None else self._take_cold(self._runs, run_id, cold.take_run)

    def _cold_task(self, task_id: TaskId) -> _Task | None:
        cold = self._cold
        return None if cold is None else self._take_cold(self._tasks, task_id, cold.take_task)

    def _cold_runs_of_task(self, task_id: TaskId) -> list[RunId] | None:
        cold = self._cold
        return None if cold is None else self._take_cold(self._runs_by_task, task_id, cold.take_runs_of_task)

    def _run_rec(self, run_id: RunId) -> _Run | None:
        rec = self._runs.get(run_id)
        return self._cold_run(run_id) if rec is None and self._cold is not None else rec

    def _task_rec(self, task_id: TaskId) -> _Task | None:
        t = self._tasks.get(task_id)
        return self._cold_task(task_id) if t is None and self._cold is not None else t

    def _thaw_all(self) -> None:
        """Move every task and run still in the snapshot image into the projection, in
        the image's order (followed by those created since). Called with the lock held."""
        cold = self._cold
        if cold is None:
            return
        # all or nothing: a bad record raises here and leaves everything as it was
        tasks, runs, by_task = cold.thaw_all(self._tasks, self._runs, self._runs_by_task)
        self._tasks, self._runs, self._runs_by_task = tasks, runs, by_task
        self._cold = None

    def _hot(self) -> Projection:
        """``self`` with everything in memory (for scans over all tasks or runs)."""
        if self._cold is not None:
            self._thaw_all()
        return self

    # -------------------------------------------------------------------------------------
    # Read API: sequence, counts, engine
    # -------------------------------------------------------------------------------------
    @property
    def latest_sequence(self) -> int:
        """Sequence of the last applied event (0 before any)."""
        return self._latest_sequence

    @property
    def task_count(self) -> int:
        """Number of tasks."""
        with self._lock:
            return len(self._tasks) + (0 if self._cold is None else self._cold.tasks_left)

    @property
    def run_count(self) -> int:
        """Number of runs (run instances)."""
        with self._lock:
            return len(self._runs) + (0 if self._cold is None else self._cold.runs_left)

    @property
    def is_engine_paused(self) -> bool:
        """True between an ``EnginePaused`` and the next ``EngineResumed``."""
        return self._engine_paused

    @property
    def engine_paused_at(self) -> int | None:
        """Timestamp of the latest pause (kept after a resume)."""
        return self._engine_paused_at

    @property
    def engine_resumed_at(self) -> int | None:
        """Timestamp of the latest resume (cleared by the next pause)."""
        return self._engine_resumed_at

    # -------------------------------------------------------------------------------------
    # Read API: tasks
    # -------------------------------------------------------------------------------------
    def task_exists(self, task_id: TaskId) -> bool:
        with self._lock:
            return self._task_rec(task_id) is not None

    def get_task(self, task_id: TaskId) -> TaskSpec | None:
        """The task's spec, or None."""
        with self._lock:
            t = self._task_rec(task_id)
            return None if t is None else t.spec

    def get_task_record(self, task_id: TaskId) -> TaskRecord | None:
        """The task with its created/updated/canceled times, or None."""
        with self._lock:
            t = self._task_rec(task_id)
            return None if t is None else _task_view(t)

    def is_task_canceled(self, task_id: TaskId) -> bool:
        with self._lock:
            t = self._task_rec(task_id)
            return t is not None and t.canceled_at is not None

    def task_canceled_at(self, task_id: TaskId) -> int | None:
        with self._lock:
            t = self._task_rec(task_id)
            return None if t is None else t.canceled_at

    def task_ids(self) -> Iterator[TaskId]:
        """Task ids in creation order."""
        with self._lock:
            self._hot()
            return iter(list(self._tasks))

    def tasks(self) -> Iterator[TaskSpec]:
        """Every task's spec, in creation order."""
        with self._lock:
            self._hot()
            return iter([t.spec for t in self._tasks.values()])

    def task_records(self) -> Iterator[TaskRecord]:
        """Every task record, in creation order."""
        with self._lock:
            self._hot()
            return iter([_task_view(t) for t in self._tasks.values()])

    def parent_child_mappings(self) -> list[tuple[TaskId, TaskId]]:
        """``(child, parent)`` for every task whose spec names a ``parent_task_id``."""
        with self._lock:
            self._hot()
            return [
                (tid, t.spec.parent_task_id) for tid, t in self._tasks.items() if t.spec.parent_task_id is not None
            ]

    def dependency_declarations(self) -> dict[TaskId, frozenset[TaskId]]:
        """Task -> every prerequisite ever declared for it (declarations accumulate)."""
        with self._lock:
            return {tid: frozenset(deps) for tid, deps in self._dependencies.items()}

    # -------------------------------------------------------------------------------------
    # Read API: runs
    # -------------------------------------------------------------------------------------
    def run_exists(self, run_id: RunId) -> bool:
        with self._lock:
            return self._run_rec(run_id) is not None

    def get_run_state(self, run_id: RunId) -> RunState | None:
        """The run's current state, or None for an unknown run."""
        with self._lock:
            rec = self._run_rec(run_id)
            return None if rec is None else rec.state

    def get_run_instance(self, run_id: RunId) -> RunInstance | None:
        """The run as a (new, immutable) RunInstance, or None."""
        with self._lock:
            rec = self._run_rec(run_id)
            return None if rec is None else _run_instance_view(rec)

    def active_attempt_id(self, run_id: RunId) -> AttemptId | None:
        """The run's active (started, unfinished) attempt, or None."""
        with self._lock:
            rec = self._run_rec(run_id)
            return None if rec is None else rec.attempt_id

    def get_run_history(self, run_id: RunId) -> tuple[RunStateHistoryEntry, ...] | None:
        """The run's state history (first entry ``None -> Scheduled``), or None for an unknown
        run or one whose history was trimmed."""
        with self._lock:
            rec = self._run_rec(run_id)
            if rec is None or rec.history is None:
                return None
            make = RunStateHistoryEntry._make
            return tuple([make(entry) for entry in rec.history])

    def get_attempt_history(self, run_id: RunId) -> tuple[AttemptHistoryEntry, ...] | None:
        """The run's attempts in start order, or None (unknown run, or trimmed)."""
        with self._lock:
            rec = self._run_rec(run_id)
            if rec is None or rec.attempts is None:
                return None
            return tuple([_attempt_view(a) for a in rec.attempts])

    def get_lease(self, run_id: RunId) -> tuple[str, int] | None:
        """The run's active lease as ``(owner, expiry)``, or None."""
        with self._lock:
            rec = self._run_rec(run_id)
            if rec is None or rec.lease_owner is None:
                return None
            return (rec.lease_owner, rec.lease_expiry)

    #: An alias of :meth:`get_lease`, on purpose: the name earlier releases documented.
    active_lease = get_lease

    def get_lease_metadata(self, run_id: RunId) -> LeaseMetadata | None:
        """The run's active lease with its acquisition and last-heartbeat times, or None."""
        with self._lock:
            rec = self._run_rec(run_id)
            if rec is None or rec.lease_owner is None:
                return None
            return LeaseMetadata(rec.lease_owner, rec.lease_expiry, rec.lease_acquired_at, rec.lease_updated_at)

    def run_ids(self) -> Iterator[RunId]:
        """Run ids in creation order."""
        with self._lock:
            self._hot()
            return iter(list(self._runs))

    def run_instances(self) -> Iterator[RunInstance]:
        """Every run, in creation order."""
        with self._lock:
            self._hot()
            return iter([_run_instance_view(rec) for rec in self._runs.values()])

    def run_ids_for_task(self, task_id: TaskId) -> list[RunId]:
        """The task's run ids, sorted by id (UUID byte order), as Rust sorts them."""
        with self._lock:
            self._hot()
            return sorted(self._runs_by_task.get(task_id, ()))

    def runs_for_task(self, task_id: TaskId) -> list[RunInstance]:
        """The task's runs in creation order."""
        with self._lock:
            self._hot()
            runs = self._runs
            return [_run_instance_view(runs[rid]) for rid in self._runs_by_task.get(task_id, ())]

    def runs_in_state(self, state: RunState) -> list[RunInstance]:
        """Every run currently in ``state``, in creation order (a scan)."""
        with self._lock:
            self._hot()
            return [_run_instance_view(rec) for rec in self._runs.values() if rec.state is state]

    # -------------------------------------------------------------------------------------
    # Read API: budgets, subscriptions
    # -------------------------------------------------------------------------------------
    def budgets(self) -> Iterator[BudgetRecord]:
        with self._lock:
            return iter([_budget_view(b) for b in self._budgets.values()])

    def get_budget(self, task_id: TaskId, dimension: BudgetDimension) -> BudgetRecord | None:
        with self._lock:
            b = self._budgets.get((task_id, dimension))
            return None if b is None else _budget_view(b)

    def is_budget_exhausted(self, task_id: TaskId, dimension: BudgetDimension) -> bool:
        with self._lock:
            b = self._budgets.get((task_id, dimension))
            return b is not None and b.exhausted

    def budget_allocation_exists(self, task_id: TaskId, dimension: BudgetDimension) -> bool:
        with self._lock:
            return (task_id, dimension) in self._budgets

    def subscriptions(self) -> Iterator[SubscriptionRecord]:
        with self._lock:
            return iter([_subscription_view(s) for s in self._subscriptions.values()])

    def get_subscription(self, subscription_id: SubscriptionId) -> SubscriptionRecord | None:
        with self._lock:
            s = self._subscriptions.get(subscription_id)
            return None if s is None else _subscription_view(s)

    def subscription_exists(self, subscription_id: SubscriptionId) -> bool:
        with self._lock:
            return subscription_id in self._subscriptions

    def is_subscription_canceled(self, subscription_id: SubscriptionId) -> bool:
        with self._lock:
            s = self._subscriptions.get(subscription_id)
            return s is not None and s.canceled_at is not None

    # -------------------------------------------------------------------------------------
    # Read API: actors, tenants, roles, capabilities, ledger
    # -------------------------------------------------------------------------------------
    def actors(self) -> Iterator[ActorRecord]:
        with self._lock:
            return iter([_actor_view(a) for a in self._actors.values()])

    def get_actor(self, actor_id: ActorId) -> ActorRecord | None:
        with self._lock:
            a = self._actors.get(actor_id)
            return None if a is None else _actor_view(a)

    def is_actor_active(self, actor_id: ActorId) -> bool:
        """Registered and not deregistered."""
        with self._lock:
            a = self._actors.get(actor_id)
            return a is not None and a.deregistered_at is None

    def tenants(self) -> Iterator[TenantRecord]:
        with self._lock:
            return iter(list(self._tenants.values()))

    def get_tenant(self, tenant_id: TenantId) -> TenantRecord | None:
        with self._lock:
            return self._tenants.get(tenant_id)

    def tenant_exists(self, tenant_id: TenantId) -> bool:
        with self._lock:
            return tenant_id in self._tenants

    def role_assignments(self) -> Iterator[RoleAssignmentRecord]:
        with self._lock:
            return iter(list(self._roles.values()))

    def get_role_assignment(self, actor_id: ActorId, tenant_id: TenantId) -> RoleAssignmentRecord | None:
        with self._lock:
            return self._roles.get((actor_id, tenant_id))

    def capability_grants(self) -> Iterator[CapabilityGrantRecord]:
        with self._lock:
            return iter(list(self._grants.values()))

    def get_capability_grant(
        self, actor_id: ActorId, capability: Capability | str, tenant_id: TenantId
    ) -> CapabilityGrantRecord | None:
        """The grant (revoked or not); ``capability`` is a Capability or its key string."""
        with self._lock:
            key = capability if isinstance(capability, str) else capability_key(capability)
            return self._grants.get((actor_id, key, tenant_id))

    def actor_has_capability(
        self, actor_id: ActorId, capability: Capability | str, tenant_id: TenantId
    ) -> bool:
        """True when the capability is granted and not revoked. ``capability`` is a
        Capability or its key (``"CanSubmit"``, ``"Custom:<name>"``)."""
        with self._lock:
            grant = self.get_capability_grant(actor_id, capability, tenant_id)
            return grant is not None and grant.revoked_at is None

    def ledger_entries(self) -> tuple[LedgerEntryRecord, ...]:
        """Every ledger entry in append order."""
        with self._lock:
            return tuple(self._ledger)

    # -------------------------------------------------------------------------------------
    # Maintenance and snapshot bootstrap (trusted input only: no validation)
    # -------------------------------------------------------------------------------------
    def trim_terminal_history(self) -> None:
        """Drop state history, attempt history and lease metadata of Completed, Failed and
        Canceled runs (their state and instance stay). Afterwards their histories read as
        None and a snapshot of them has empty histories."""
        with self._lock:
            self._hot()
            for rec in self._runs.values():
                if rec.state in _TERMINAL:
                    rec.history = None
                    rec.attempts = None
                    rec.lease_owner = None

    def set_run_history(self, run_id: RunId, history: Iterable[RunStateHistoryEntry | tuple]) -> None:
        """Bootstrap only: replace a run's state history."""
        with self._lock:
            self._bootstrap_run(run_id).history = [(e[0], e[1], e[2]) for e in history]

    def set_attempt_history(self, run_id: RunId, attempts: Iterable[AttemptHistoryEntry]) -> None:
        """Bootstrap only: replace a run's attempt history."""
        with self._lock:
            self._bootstrap_run(run_id).attempts = _attempt_records(attempts)

    def set_attempt_lineage_for_bootstrap(
        self, run_id: RunId, attempt_count: int, active_attempt_id: AttemptId | None
    ) -> None:
        """Bootstrap only: set a run's attempt counter and active attempt."""
        with self._lock:
            rec = self._bootstrap_run(run_id)
            rec.attempt_count = attempt_count
            rec.attempt_id = active_attempt_id

    def set_lease_for_bootstrap(self, run_id: RunId, metadata: LeaseMetadata) -> None:
        """Bootstrap only: set a run's active lease and its metadata."""
        with self._lock:
            _put_lease(self._bootstrap_run(run_id), metadata)

    def _bootstrap_run(self, run_id: RunId) -> _Run:
        rec = self._run_rec(run_id)
        if rec is None:
            raise KeyError(f"bootstrap of unknown run {run_id}")
        return rec

    def set_latest_sequence_for_bootstrap(self, sequence: int) -> None:
        """Bootstrap only: set :attr:`latest_sequence` (the snapshot's WAL sequence)."""
        self._latest_sequence = sequence

    def __repr__(self) -> str:
        with self._lock:
            return (
                f"<{type(self).__name__} latest_sequence={self._latest_sequence} tasks={self.task_count} "
                f"runs={self.run_count}>"
            )
