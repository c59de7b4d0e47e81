"""The worker workload ``actionqueue demo`` plays (and its crash child replays a piece of).

A :class:`Workload` drives a :class:`~actionqueue.MutationAuthority` the way a small task
queue deployment would: a scheduler creates tasks (Once and Repeat policies, some with a
token budget, a subscription or a dependency), derives their runs and makes them Ready;
worker threads lease runs, start attempts, heartbeat their leases, consume budget, fail
and retry (Running -> RetryWait -> Ready), back off (release while Leased), get suspended
and resumed, and complete or fail for good; a completed task fires its subscription.

What happens to each run is planned up front from the seed (:class:`RunPlan`), so the
number of events is fixed by ``(seed, tasks)`` however the threads interleave; only the
order of the records (and the random run ids derivation assigns) differ between runs.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import model as m
from ..state.authority import MutationAuthority, MutationOutcome

__all__ = ["Workload", "TaskPlan", "RunPlan", "Stop", "plan_tasks", "expected_events", "monotonic_clock", "MAX_ATTEMPTS"]

S = m.RunState
R = m.AttemptResultKind
TOKEN = m.BudgetDimension.TOKEN

#: Every task allows this many attempts per run (``TaskConstraints.max_attempts``).
MAX_ATTEMPTS = 3
#: Seconds a lease lasts before it must be heartbeated.
LEASE_SECS = 30
#: Tokens a budgeted task may spend.
TOKEN_LIMIT = 100_000


def _id(cls: type, rng: random.Random) -> Any:
    """A random identifier drawn from ``rng`` (so a seed gives the same ids)."""
    return cls(rng.getrandbits(128).to_bytes(16, "big") or b"\x01" * 16)


@dataclass
class RunPlan:
    """What will happen to one run: failed attempts before it succeeds (``MAX_ATTEMPTS``
    or more: it fails for good), whether its first lease is given back (``bounce``),
    whether its first attempt ends suspended, and what its completion records."""

    failures: int
    bounce: bool
    suspend: bool
    heartbeat_actor: bool
    ledger: bool
    tokens: int


@dataclass
class TaskPlan:
    """One task: its spec and extras, and the plans of its runs (in derivation order)."""

    index: int
    spec: m.TaskSpec
    budget: bool
    subscription: m.SubscriptionId | None
    depends_on: m.TaskId | None
    runs: list[RunPlan]


def plan_tasks(seed: int, count: int, first_index: int = 0, tenant: m.TenantId | None = None) -> list[TaskPlan]:
    """The tasks of a workload: ``count`` plans, task *i* drawn from ``Random((seed, i))``
    alone, so any prefix of a plan is the same for every ``count``."""
    plans: list[TaskPlan] = []
    for i in range(first_index, first_index + count):
        rng = random.Random(f"{seed}:{i}")
        task_id = _id(m.TaskId, rng)
        policy: m.RunPolicy
        if rng.random() < 0.6:
            policy, nruns = m.RunPolicy.ONCE, 1
        else:
            nruns = rng.randint(2, 4)
            policy = m.RunPolicy.repeat(nruns, 60)
        kind = rng.choice(("email", "thumbnail", "report", "webhook", "invoice"))
        spec = m.TaskSpec(
            task_id,
            payload=m.TaskPayload(f'{{"job":"{kind}","n":{i}}}'.encode(), "application/json"),
            run_policy=policy,
            constraints=m.TaskConstraints(max_attempts=MAX_ATTEMPTS, timeout_secs=LEASE_SECS),
            metadata=m.TaskMetadata(tags=(kind,), priority=rng.randint(0, 9), description=f"{kind} job {i}"),
            tenant_id=tenant,
        )
        budget = rng.random() < 0.35
        subscription = _id(m.SubscriptionId, rng) if rng.random() < 0.25 else None
        depends_on = plans[-1].spec.id if plans and rng.random() < 0.1 else None
        runs = []
        for _ in range(nruns):
            x = rng.random()
            failures = 0 if x < 0.72 else 1 if x < 0.88 else 2 if x < 0.96 else MAX_ATTEMPTS
            runs.append(RunPlan(
                failures=failures,
                bounce=rng.random() < 0.08,
                suspend=rng.random() < 0.04,
                heartbeat_actor=rng.random() < 0.1,
                ledger=rng.random() < 0.05,
                tokens=rng.randint(100, 2000),
            ))  # fmt: skip
        plans.append(TaskPlan(i, spec, budget, subscription, depends_on, runs))
    return plans


def _run_events(task: TaskPlan, p: RunPlan) -> int:
    """Events one run's plan writes, from RunCreated to its last step."""
    n = 2  # RunCreated, Scheduled -> Ready
    if p.bounce:
        n += 3  # acquire, Ready -> Leased, release (Leased -> Ready)
    attempt = 5 + (1 if task.budget else 0)  # acquire, ->Leased, ->Running, start, heartbeat, [consume]
    if p.suspend:
        n += attempt + 4  # finish (Suspended), release, suspend, resume
    fails = min(p.failures, MAX_ATTEMPTS)
    for k in range(1, fails + 1):
        n += attempt + 2 + (1 if k == MAX_ATTEMPTS else 2)  # finish, release, ->Failed | ->RetryWait, ->Ready
    if p.failures < MAX_ATTEMPTS:
        n += attempt + 2  # finish (Success), -> Completed
    return n + p.heartbeat_actor + p.ledger


def expected_events(plans: list[TaskPlan]) -> int:
    """The number of events :meth:`Workload.run_tasks` writes for ``plans``."""
    n = 0
    for t in plans:
        n += 1 + t.budget + (t.subscription is not None) + (t.depends_on is not None)
        n += (t.subscription is not None)  # triggered when the task's last run ends
        n += sum(_run_events(t, p) for p in t.runs)
    return n


@dataclass
class _Job:
    run_id: m.RunId
    task: TaskPlan
    plan: RunPlan
    attempts: int = 0
    bounced: bool = False
    suspended: bool = False


@dataclass
class _TaskState:
    runs_left: int
    lock: threading.Lock = field(default_factory=threading.Lock)


class Stop(Exception):
    """Raised by a gate to stop a workload thread."""


class Workload:
    """Drive ``authority`` with a scheduler (the calling thread) and ``workers`` threads.

    Args:
        authority: where every command goes.
        workers: worker threads (each also a registered actor ``worker-<i>``).
        clock: integer seconds, never going back (the authority's clock).
        on_outcome: called (from the commanding thread) with every command's outcomes.
        gate: called before every command; may block, or raise :class:`Stop`.
    """

    def __init__(
        self,
        authority: MutationAuthority,
        *,
        workers: int,
        clock: Callable[[], int],
        on_outcome: Callable[[list[MutationOutcome]], None] | None = None,
        gate: Callable[[], None] | None = None,
    ):
        self.authority = authority
        self.workers = workers
        self.clock = clock
        self._on_outcome = on_outcome
        self._gate = gate
        self._count_lock = threading.Lock()
        self.events = 0
        self.tenant: m.TenantId | None = None
        self.actors: list[m.ActorId] = []

    # -- commands ----------------------------------------------------------------------
    def cmd(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one authority command (through the gate) and count what it wrote."""
        if self._gate is not None:
            self._gate()
        out = method(*args, **kwargs)
        outs = out if isinstance(out, list) else [out]
        with self._count_lock:
            self.events += len(outs)
        if self._on_outcome is not None:
            self._on_outcome(outs)
        return out

    # -- the deployment ------------------------------------------------------------------
    def setup(self, seed: int) -> None:
        """A tenant and one registered actor per worker, with a role and a capability
        (``2 + 3 * workers`` events)."""
        a = self.authority
        rng = random.Random(f"{seed}:actors")
        self.tenant = _id(m.TenantId, rng)
        self.cmd(a.create_tenant, self.tenant, "demo tenant")
        for i in range(self.workers):
            actor = _id(m.ActorId, rng)
            self.cmd(a.register_actor, actor, f"worker-{i}", ("python", "email", "thumbnail"), 10,
                     department="demo", tenant_id=self.tenant)  # fmt: skip
            self.cmd(a.assign_role, actor, m.Role.OPERATOR, self.tenant)
            self.cmd(a.grant_capability, actor, m.Capability.CAN_EXECUTE, self.tenant)
            self.actors.append(actor)
        self.cmd(a.append_ledger_entry, _id(m.LedgerEntryId, rng), self.tenant, "setup", b"demo started")

    def submit_tasks(self, plans: list[TaskPlan]) -> list[_Job]:
        """Create the tasks with their extras, derive their runs and make them Ready;
        return one job per run."""
        a = self.authority
        jobs: list[_Job] = []
        for t in plans:
            tid = t.spec.id
            self.cmd(a.create_task, t.spec)
            if t.budget:
                self.cmd(a.allocate_budget, tid, TOKEN, TOKEN_LIMIT)
            if t.subscription is not None:
                self.cmd(a.create_subscription, t.subscription, tid, m.TaskCompletedFilter(tid))
            if t.depends_on is not None:
                self.cmd(a.declare_dependencies, tid, [t.depends_on])
            outs = self.cmd(a.derive_runs, tid)
            for out, plan in zip(outs, t.runs, strict=True):
                run_id = out.event.run_instance.id
                self.cmd(a.transition_run, run_id, S.SCHEDULED, S.READY)
                jobs.append(_Job(run_id, t, plan))
        return jobs

    def run_tasks(
        self,
        plans: list[TaskPlan],
        *,
        submitted: list[_Job] | None = None,
        jobs_done: Callable[[int], None] | None = None,
    ) -> None:
        """Submit ``plans`` (this thread is the scheduler) while the workers take the runs
        as they become Ready; return when every run has ended. With ``submitted`` (the
        jobs :meth:`submit_tasks` returned for ``plans``) the workers only work them."""
        if self.tenant is None:
            raise RuntimeError("call setup() before run_tasks()")
        total = sum(len(t.runs) for t in plans)
        q: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        states = {id(t): _TaskState(len(t.runs)) for t in plans}
        done_lock = threading.Lock()
        done = [0]
        errors: list[BaseException] = []

        def finished(job: _Job) -> None:
            with done_lock:
                done[0] += 1
                last = done[0] == total
            if jobs_done is not None:
                jobs_done(1)
            if last:
                for _ in range(self.workers):
                    q.put(None)

        def worker(i: int) -> None:
            try:
                while True:
                    job = q.get()
                    if job is None:
                        return
                    if self._visit(i, job, states[id(job.task)]):
                        finished(job)
                    else:
                        q.put(job)
            except Stop:
                return
            except BaseException as exc:  # noqa: BLE001 - re-raised by the scheduler
                errors.append(exc)
                for _ in range(self.workers):
                    q.put(None)

        threads = [threading.Thread(target=worker, args=(i,), name=f"worker-{i}", daemon=True)
                   for i in range(self.workers)]  # fmt: skip
        for th in threads:
            th.start()
        try:
            if submitted is not None:
                for job in submitted:
                    q.put(job)
            else:
                for t in plans:
                    for job in self.submit_tasks([t]):
                        q.put(job)
                    if errors:
                        break
        except Stop:
            return
        except BaseException:
            for _ in range(self.workers):
                q.put(None)
            raise
        if total == 0:
            for _ in range(self.workers):
                q.put(None)
        for th in threads:
            th.join()
        if errors:
            raise errors[0]

    def _visit(self, i: int, job: _Job, state: _TaskState) -> bool:
        """One lease of ``job``'s run by worker ``i``; True when the run has ended."""
        a, cmd = self.authority, self.cmd
        run, plan, task = job.run_id, job.plan, job.task
        owner = f"worker-{i}"
        expiry = self.clock() + LEASE_SECS
        cmd(a.acquire_lease, run, owner, expiry)
        cmd(a.transition_run, run, S.READY, S.LEASED)
        if plan.bounce and not job.bounced:  # the worker is full after all: give it back
            job.bounced = True
            cmd(a.release_lease, run, owner, expiry)  # Leased -> Ready
            return False
        cmd(a.transition_run, run, S.LEASED, S.RUNNING)
        attempt = cmd(a.start_attempt, run).event.attempt_id
        expiry = max(expiry, self.clock() + LEASE_SECS)
        cmd(a.heartbeat_lease, run, owner, expiry)
        if task.budget:
            cmd(a.consume_budget, task.spec.id, TOKEN, plan.tokens)
        if plan.suspend and not job.suspended:  # waits for a human, then goes round again
            job.suspended = True
            cmd(a.finish_attempt, run, attempt, R.SUSPENDED)
            cmd(a.release_lease, run, owner, expiry)
            cmd(a.suspend_run, run, "waiting for approval")
            cmd(a.resume_run, run)  # Suspended -> Ready
            return False
        job.attempts += 1
        if job.attempts <= plan.failures:
            cmd(a.finish_attempt, run, attempt, R.FAILURE, error=f"{owner}: upstream timed out (attempt {job.attempts})")
            cmd(a.release_lease, run, owner, expiry)
            if job.attempts >= MAX_ATTEMPTS:
                cmd(a.transition_run, run, S.RUNNING, S.FAILED)
            else:
                cmd(a.transition_run, run, S.RUNNING, S.RETRY_WAIT)
                cmd(a.transition_run, run, S.RETRY_WAIT, S.READY)
                return False
        else:
            cmd(a.finish_attempt, run, attempt, R.SUCCESS, output=b'{"ok":true}')
            cmd(a.transition_run, run, S.RUNNING, S.COMPLETED)  # ends the lease
        if plan.heartbeat_actor:
            cmd(a.heartbeat_actor, self.actors[i % len(self.actors)])
        if plan.ledger:
            cmd(a.append_ledger_entry, m.LedgerEntryId.new(), self.tenant, "runs", str(run).encode())
        with state.lock:
            state.runs_left -= 1
            last = state.runs_left == 0
        if last and task.subscription is not None:
            cmd(a.trigger_subscription, task.subscription)
        return True


def monotonic_clock() -> Callable[[], int]:
    """Integer Unix seconds that never go back (wall time at start + monotonic time)."""
    base, t0 = int(time.time()), time.monotonic()
    return lambda: base + int(time.monotonic() - t0)
