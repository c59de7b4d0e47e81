"""The mutation authority: the one way to change state that replay will always accept.

:class:`MutationAuthority` ports ``StorageMutationAuthority`` of the Rust crate
``actionqueue-storage`` (spec ``reducer.md`` section 6). Every command runs one pipeline,
under one lock:

1. **validate** against the projection: the checks Rust's authority runs, in Rust's order,
   raising :class:`CommandRejected` with Rust's error name as ``kind``; then the reducer's
   own rules (:meth:`ReplayReducer.check <actionqueue.ReplayReducer.check>`) as the final
   gate, so nothing replay would reject is ever written (:class:`ReplayWouldReject`);
2. **sequence** = the projection's latest + 1 (no gaps, as in Rust);
3. **append** through the :class:`~actionqueue.WalWriter` (``FSYNC``: written and
   fsynced; ``GROUP`` and ``NONE``: written);
4. **apply** the same event to the projection;
5. with ``GROUP``, **wait**, outside the lock, for the shared fsync that covers the write,
   so that commands from many threads share fsyncs; the command returns (is acknowledged)
   only after it. Should that fsync fail, the command raises, and the authority is
   poisoned: its projection already holds the event.

A rejected command writes nothing and changes nothing. If the append fails, nothing is
applied and the writer's error propagates (:class:`~actionqueue.WalWriterError` and its
subclasses); if the record may have reached the log anyway (a failed fsync poisons the
writer after the write) the authority is poisoned too, since its projection no longer
covers the log. An apply failure after a successful append cannot happen (the event passed
``check``); if it does, it is a bug: the authority is poisoned and refuses every later
command with :class:`AuthorityPoisoned` (reopen the data dir: recovery replays the log).

Differences from Rust's authority, on purpose (``shared/spec/decisions.md`` #12):

* **It never writes what replay rejects.** Rust's authority accepts three commands its
  reducer then rejects, making the log unreplayable (spec 6.5). Ours rejects them:
  leaving Running, or suspending, while an attempt is active (``AttemptInProgress``);
  resuming the engine at a timestamp before the pause (``ResumeBeforePause``). It also
  rejects a fourth path of the same kind: starting an attempt with an id the run already
  used (``AttemptIdReused``). Rust's reducer accepts that start, but the attempt can then
  never finish (the reducer finishes the *first* entry with the id, already finished, and
  reports ``CorruptedData``), so every later command on the run but a cancel fails.
* **cancel_run** exists (Rust has the ``RunCanceled`` event but no command).
* **The preconditions Rust asserts only in debug builds are enforced**
  (``InvalidArgument``): a non-empty lease owner, budget limits and amounts above zero,
  ``threshold_pct <= 100``, non-empty custom filter keys, role and capability names; and
  the value invariants Rust's registration types enforce by panicking (actor identity,
  capabilities, department of 1..=128 bytes, heartbeat interval > 0, tenant name, ledger
  key). A created run must be fresh: no attempts counted (``RunCreateRequiresFreshRun``),
  since a snapshot of a run whose attempt count differs from its attempt history is
  refused.
* An ``AttemptFinish`` outcome must be a shape Rust's ``AttemptOutcome`` constructors
  accept (``SuccessWithError``, ``NonSuccessWithoutError``, ``NonSuccessWithOutput``)
  instead of being normalised by the reducer.
* Run derivation (:meth:`MutationAuthority.derive_runs`, Rust's engine ``derive_runs``)
  appends all the runs of one derivation as one write: all or nothing.

Thread safety: every command holds :attr:`MutationAuthority.lock` from validation to
apply; with ``GROUP`` durability it waits for its fsync after releasing it, so commands
from many threads share fsyncs. Each read of the projection (``authority.reducer``'s read
API) is safe from any thread at any time and sees whole events (the projection's own lock,
see :mod:`actionqueue.state.projection`); hold :attr:`lock` only to read several things
that must agree with each other.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from .. import model as m
from ..errors import AuthorityPoisoned, CommandRejected, ReducerError, ReplayWouldReject
from ..metrics import authority_metrics
from ..model import (
    ActorId,
    AttemptId,
    AttemptResultKind,
    BudgetDimension,
    Capability,
    Event,
    EventFilter,
    LedgerEntryId,
    Role,
    RunId,
    RunInstance,
    RunState,
    SubscriptionId,
    TaskId,
    TaskSpec,
    TenantId,
    WalEvent,
)
from .reducer import ReplayReducer
from .validators import COMMANDS, CRON_WINDOW_SIZE, Validator, derive_schedule, reject

if TYPE_CHECKING:  # pragma: no cover
    from ..recovery import Store
    from ..wal import PendingWrite, WalWriter

__all__ = [
    "MutationAuthority",
    "MutationOutcome",
    "CRON_WINDOW_SIZE",
]

_U64_MAX = 0xFFFFFFFFFFFFFFFF


# =========================================================================================
# Outcome
# =========================================================================================
_EvT = TypeVar("_EvT", bound=Event)


@dataclass(frozen=True, slots=True)
class MutationOutcome(Generic[_EvT]):
    """What a command wrote: its sequence and the event (Rust ``MutationOutcome``; the
    event says more than Rust's ``AppliedMutation`` summary). Generic in the event's type:
    ``derive_runs`` gives ``MutationOutcome[RunCreated]``, so ``out.event.run_instance``
    type-checks."""

    sequence: int
    event: _EvT

    @property
    def wal_event(self) -> WalEvent:
        """The record as written."""
        return WalEvent(self.sequence, self.event)




# =========================================================================================
# The authority
# =========================================================================================
def _default_clock() -> int:
    return int(time.time())


class MutationAuthority:
    """Validated, durable, sequenced commands against a projection and its log.

    >>> with aq.open("data") as store:                          # doctest: +SKIP
    ...     authority = MutationAuthority.from_store(store)
    ...     authority.create_task(aq.TaskSpec(aq.TaskId.new()))
    ...     runs = authority.derive_runs(task_id)

    Args:
        reducer: the projection; it must hold exactly the log the writer appends to
            (``reducer.latest_sequence == writer.current_sequence``), as recovery leaves it.
        writer: the log's writer. Only the authority should append to it from now on.
        clock: returns the current time as integer seconds; used for every ``timestamp``
            not given explicitly. Default ``int(time.time())``.
        defer_durability: commands return once written and applied, without waiting for
            their fsync (and are not acknowledged yet): the caller makes the log durable
            itself and reports it with :meth:`settle`. For :mod:`actionqueue.aio`, whose
            event loop batches the fsyncs; leave it False otherwise.

    Every command method returns a :class:`MutationOutcome` (``derive_runs`` a list of
    them), raises :class:`CommandRejected` (its subclasses say which category) when the
    command is invalid for the current state, and otherwise has appended and applied
    exactly one event.
    """

    _COMMANDS: ClassVar[dict[type, tuple[str, Validator]]] = COMMANDS

    def __init__(self, reducer: ReplayReducer, writer: WalWriter, *, clock: Callable[[], int] | None = None,
                 defer_durability: bool = False):
        self._reducer = reducer
        self._defer_durability = defer_durability
        self._writer = writer
        self._clock = clock or _default_clock
        self._lock = threading.Lock()
        self._poisoned: BaseException | None = None
        self._accepted = self._rejected = 0  # commands written, and rejected (metrics)
        # the store's snapshotter (told of durable sequences, takes snapshots on request),
        # or this authority's own once it takes one
        self._snapshots: Any = None

    @classmethod
    def from_store(cls, store: Store, *, clock: Callable[[], int] | None = None,
                   defer_durability: bool = False) -> MutationAuthority:
        """The authority over a recovered data dir (:func:`actionqueue.open`); it feeds the
        store's background snapshots (``snapshot_every``)."""
        authority = cls(store.reducer, store.writer, clock=clock, defer_durability=defer_durability)
        authority._snapshots = store.snapshots
        store._authorities.add(authority)
        return authority

    # -- state ---------------------------------------------------------------------------
    @property
    def reducer(self) -> ReplayReducer:
        """The projection: each read is safe while other threads submit commands (hold
        :attr:`lock` across several reads that must agree)."""
        return self._reducer

    @property
    def writer(self) -> WalWriter:
        return self._writer

    @property
    def lock(self) -> threading.Lock:
        """Held by every command from validation to apply."""
        return self._lock

    @property
    def latest_sequence(self) -> int:
        return self._reducer.latest_sequence

    def snapshot(self, timestamp: int | None = None) -> Any:
        """Snapshot the projection into the writer's data dir (``snapshot.bin`` and its
        image, atomically); ``timestamp`` defaults to the clock. Returns the snapshot.

        The same as :meth:`Store.snapshot <actionqueue.Store.snapshot>`, through the store's
        snapshotter (:meth:`~actionqueue.snapshot.background.Snapshotter.take_live`), or
        this authority's own when it was made without a store: commands wait at most for a
        small projection's build, never for a write or for a large projection (built by a
        child process). A poisoned authority or writer raises instead of writing one.
        """
        self._check_poisoned()
        return self._snapshotter().take_live(self._reducer, self._now(timestamp))

    def _snapshotter(self) -> Any:
        if self._snapshots is None:
            from ..snapshot.background import Snapshotter

            with self._lock:
                if self._snapshots is None:
                    self._snapshots = Snapshotter(self._writer.data_dir, self._writer)
        return self._snapshots

    def metrics(self) -> dict[str, Any]:
        """The writer's counters, the commands' and the snapshots' (:mod:`actionqueue.metrics`)."""
        return authority_metrics(self)

    @property
    def poisoned(self) -> BaseException | None:
        """Why the authority refuses commands, or None."""
        return self._poisoned

    def _now(self, timestamp: int | None) -> int:
        return self._clock() if timestamp is None else timestamp

    # -- the pipeline --------------------------------------------------------------------
    def submit(self, event: _EvT) -> MutationOutcome[_EvT]:
        """Validate, sequence, append and apply one event body (any command's event).

        The named command methods build their event and run this same pipeline; use it
        directly to submit events built elsewhere (the event's own timestamp is kept).
        ``BudgetExhausted`` has no command (``UnsupportedEvent``).
        """
        if not isinstance(event, Event):
            raise TypeError(f"submit takes an event body (TaskCreated, ...), not {type(event).__name__}")
        return self._submit([event])[0]

    def _do(self, build: Callable[[int], _EvT], timestamp: int | None) -> MutationOutcome[_EvT]:
        """Build the event with its timestamp and submit it, under the lock: the clock is
        read there, so clock-stamped events get timestamps in sequence order."""
        with self._lock:
            outcomes, pending = self._submit_locked([build(self._now(timestamp))])
        self._durable(pending)
        return outcomes[0]

    def _check_poisoned(self) -> None:
        if self._poisoned is not None:
            raise AuthorityPoisoned(
                f"the mutation authority is poisoned: {self._poisoned}; reopen the data dir"
            ) from self._poisoned

    def _submit(self, events: Sequence[_EvT]) -> list[MutationOutcome[_EvT]]:
        with self._lock:
            outcomes, pending = self._submit_locked(events)
        self._durable(pending)
        return outcomes

    def _durable(self, pending: PendingWrite) -> None:
        """Wait, outside the lock, until the command's write is durable (group commit:
        commands from several threads share one fsync). If that fsync fails the command is
        not acknowledged, and the authority is poisoned: its projection holds the event."""
        if self._defer_durability:
            return  # the caller waits, and settles
        try:
            pending.wait()
        except BaseException as exc:
            self._poisoned = exc
            raise
        self.settle(self._writer.current_sequence)

    def settle(self, sequence: int, error: BaseException | None = None) -> None:
        """Report that the log is durable up to ``sequence`` (background snapshots count
        durable events), or, with ``error``, that the fsync covering commands failed: the
        authority is then poisoned (its projection holds events the log may have lost) and
        refuses every later command with :class:`AuthorityPoisoned`. Called after every
        command's wait; by the caller itself with ``defer_durability``."""
        if error is not None:
            if self._poisoned is None:
                self._poisoned = error
            return
        if self._snapshots is not None:
            self._snapshots.note(sequence)

    def _submit_locked(self, events: Sequence[_EvT]) -> tuple[list[MutationOutcome[_EvT]], PendingWrite]:
        """:meth:`_pipeline`, counted (written or rejected) for the metrics."""
        try:
            done = self._pipeline(events)
        except CommandRejected:
            self._rejected += 1
            raise
        self._accepted += 1
        return done

    def _pipeline(self, events: Sequence[_EvT]) -> tuple[list[MutationOutcome[_EvT]], PendingWrite]:
        """The pipeline, for events written as one write (the lock is held): validated,
        sequenced, written and applied; durable once the returned write's ``wait`` does.
        Writing and applying under the lock keeps the projection in the log's order; the
        wait is left to the caller, outside the lock."""
        self._check_poisoned()
        r = self._reducer
        latest = r.latest_sequence
        first = events[0]
        command = self._COMMANDS[type(first)][0]
        if latest + len(events) > _U64_MAX:
            raise reject("SequenceOverflow", command, "the next sequence would overflow u64")
        writer_at = self._writer.current_sequence
        if writer_at != latest:
            raise reject(
                "NonMonotonicSequence", command,
                f"the log ends at sequence {writer_at} but the projection at {latest} "
                "(was the writer used directly?)",
                expected=writer_at + 1, provided=latest + 1,
            )  # fmt: skip
        records = []
        for i, event in enumerate(events):
            name, validate = self._COMMANDS[type(event)]
            validate(r, event, name)
            record = WalEvent(latest + 1 + i, event)
            try:
                r.check(record)
            except ReducerError as exc:
                raise ReplayWouldReject(
                    "ReplayWouldReject", name, f"replay would reject it: {exc}", reducer_error=exc
                ) from exc
            records.append(record)
        try:
            pending = self._writer.write(records)
        except BaseException as exc:
            if self._writer.current_sequence > latest:
                # the record is in the log (e.g. its fsync failed): the projection no
                # longer covers the log
                self._poisoned = exc
            raise
        for record in records:
            try:
                r.apply(record)
            except BaseException as exc:  # a bug: check() accepted it
                self._poisoned = exc
                raise AuthorityPoisoned(
                    f"applying sequence {record.sequence} failed after it was appended: {exc}"
                ) from exc
        return [MutationOutcome(latest + 1 + i, event) for i, event in enumerate(events)], pending

    # -- tasks and runs ------------------------------------------------------------------
    def create_task(self, spec: TaskSpec, *, timestamp: int | None = None) -> MutationOutcome[m.TaskCreated]:
        """Create a task (``TaskCreated``). Rejects: ``TaskAlreadyExists``."""
        return self._do(lambda ts: m.TaskCreated(spec, ts), timestamp)

    def create_run(self, run: RunInstance) -> MutationOutcome[m.RunCreated]:
        """Create a run as given (``RunCreated``; Rust's ``RunCreate``). Rejects:
        ``UnknownTask``, ``RunAlreadyExists``, ``RunCreateRequiresScheduled``,
        ``RunCreateRequiresFreshRun``. :meth:`derive_runs` builds runs from the policy."""
        return self.submit(m.RunCreated(run))

    def derive_runs(
        self,
        task_id: TaskId,
        *,
        schedule_origin: int | None = None,
        timestamp: int | None = None,
    ) -> list[MutationOutcome[m.RunCreated]]:
        """Create the runs the task's run policy calls for that do not exist yet (Rust's
        engine ``derive_runs``, with ``already_derived`` = the task's runs in the projection).

        * Once: one run, scheduled at ``timestamp``; none if the task has a run.
        * Repeat(count, interval): runs ``already_derived .. count-1``, run *i* scheduled at
          ``schedule_origin + i * interval``.
        * Cron: on the first derivation only, the next ``min(5, max_occurrences)``
          occurrences at or after ``schedule_origin`` (UTC); later windows are the
          dispatcher's business, as in Rust.

        Every run is created Scheduled at ``timestamp`` (default: the clock), with priority 0.
        ``schedule_origin`` defaults to the task's creation time. All the runs are appended
        as one write (all or nothing). Returns one outcome per run (possibly none).
        Rejects: ``UnknownTask``; :class:`DerivationRejected` (``ArithmeticOverflow``:
        more runs than the policy allows already exist, or a time beyond u64).
        """
        command = "derive_runs"
        with self._lock:  # derive and append under one hold: two derivations never overlap
            self._check_poisoned()
            try:
                record = self._reducer.get_task_record(task_id)
                if record is None:
                    raise reject("UnknownTask", command, f"task {task_id} is unknown", task_id=task_id)
                already = len(self._reducer.run_ids_for_task(task_id))
                now = self._now(timestamp)
                origin = record.created_at if schedule_origin is None else schedule_origin
                times = derive_schedule(record.task_spec.run_policy, already, origin, now, command)
            except CommandRejected:
                self._rejected += 1
                raise
            if not times:
                self._accepted += 1  # nothing to derive: done, with nothing to write
                return []
            events = [m.RunCreated(RunInstance(RunId.new(), task_id, RunState.SCHEDULED, None, 0, now, at, 0, now))
                      for at in times]  # fmt: skip
            outcomes, pending = self._submit_locked(events)
        self._durable(pending)
        return outcomes

    def transition_run(
        self, run_id: RunId, previous_state: RunState, new_state: RunState, *, timestamp: int | None = None
    ) -> MutationOutcome[m.RunStateChanged]:
        """Move a run along the state machine (``RunStateChanged``). Rejects: ``UnknownRun``,
        ``PreviousStateMismatch``, ``InvalidTransition``, ``AttemptInProgress`` (leaving
        Running other than to Canceled while an attempt is active)."""
        return self._do(lambda ts: m.RunStateChanged(run_id, previous_state, new_state, ts), timestamp)

    def start_attempt(
        self, run_id: RunId, attempt_id: AttemptId | None = None, *, timestamp: int | None = None
    ) -> MutationOutcome[m.AttemptStarted]:
        """Start an attempt of a Running run (``AttemptStarted``; a new id by default).
        Rejects: ``AttemptStartUnknownRun``, ``AttemptStartRequiresRunning``,
        ``AttemptStartAlreadyActive``, ``AttemptIdReused``."""
        return self._do(lambda ts: m.AttemptStarted(run_id, attempt_id or AttemptId.new(), ts), timestamp)

    def finish_attempt(
        self,
        run_id: RunId,
        attempt_id: AttemptId,
        result: AttemptResultKind,
        *,
        error: str | None = None,
        output: bytes | None = None,
        timestamp: int | None = None,
    ) -> MutationOutcome[m.AttemptFinished]:
        """Finish the active attempt (``AttemptFinished``); the run stays Running.
        Success/Suspended take no error; Failure/Timeout need an error and take no output.
        Rejects: ``SuccessWithError``, ``NonSuccessWithoutError``, ``NonSuccessWithOutput``,
        ``AttemptFinishUnknownRun``, ``AttemptFinishRequiresRunning``,
        ``AttemptFinishMissingActive``, ``AttemptFinishAttemptMismatch``."""
        return self._do(lambda ts: m.AttemptFinished(run_id, attempt_id, result, error, output, ts), timestamp)

    def cancel_task(self, task_id: TaskId, *, timestamp: int | None = None) -> MutationOutcome[m.TaskCanceled]:
        """Mark a task canceled (``TaskCanceled``; its runs are not touched). Rejects:
        ``UnknownTask``, ``TaskAlreadyCanceled``."""
        return self._do(lambda ts: m.TaskCanceled(task_id, ts), timestamp)

    def cancel_run(self, run_id: RunId, *, timestamp: int | None = None) -> MutationOutcome[m.RunCanceled]:
        """Cancel a run from any non-terminal state (``RunCanceled``; drops an active
        attempt and the lease). Not in Rust's authority. Rejects: ``UnknownRun``,
        ``InvalidTransition`` (already terminal)."""
        return self._do(lambda ts: m.RunCanceled(run_id, ts), timestamp)

    # -- leases --------------------------------------------------------------------------
    def acquire_lease(self, run_id: RunId, owner: str, expiry: int, *, timestamp: int | None = None) -> MutationOutcome[m.LeaseAcquired]:
        """Lease a Ready or Leased run (``LeaseAcquired``). Rejects: ``InvalidArgument``
        (empty owner), ``LeaseUnknownRun``, ``LeaseInvalidRunState``, ``LeaseAlreadyActive``."""
        return self._do(lambda ts: m.LeaseAcquired(run_id, owner, expiry, ts), timestamp)

    def heartbeat_lease(self, run_id: RunId, owner: str, expiry: int, *, timestamp: int | None = None) -> MutationOutcome[m.LeaseHeartbeat]:
        """Extend the lease of a Leased or Running run (``LeaseHeartbeat``). Rejects:
        ``LeaseUnknownRun``, ``LeaseInvalidRunState``, ``LeaseMissingActive``,
        ``LeaseOwnerMismatch``, ``LeaseHeartbeatExpiryRegression``."""
        return self._do(lambda ts: m.LeaseHeartbeat(run_id, owner, expiry, ts), timestamp)

    def release_lease(self, run_id: RunId, owner: str, expiry: int, *, timestamp: int | None = None) -> MutationOutcome[m.LeaseReleased]:
        """Release the lease (``LeaseReleased``; a Leased run goes back to Ready). Rejects:
        ``LeaseUnknownRun``, ``LeaseInvalidRunState``, ``LeaseMissingActive``,
        ``LeaseOwnerMismatch``, ``LeaseExpiryMismatch``."""
        return self._do(lambda ts: m.LeaseReleased(run_id, owner, expiry, ts), timestamp)

    def expire_lease(self, run_id: RunId, owner: str, expiry: int, *, timestamp: int | None = None) -> MutationOutcome[m.LeaseExpired]:
        """Expire the lease (``LeaseExpired``); same rules as :meth:`release_lease`."""
        return self._do(lambda ts: m.LeaseExpired(run_id, owner, expiry, ts), timestamp)

    # -- engine, dependencies, suspension ------------------------------------------------
    def pause_engine(self, *, timestamp: int | None = None) -> MutationOutcome[m.EnginePaused]:
        """Pause the engine (``EnginePaused``). Rejects: ``EngineAlreadyPaused``."""
        return self._do(lambda ts: m.EnginePaused(ts), timestamp)

    def resume_engine(self, *, timestamp: int | None = None) -> MutationOutcome[m.EngineResumed]:
        """Resume the engine (``EngineResumed``). Rejects: ``EngineNotPaused``,
        ``ResumeBeforePause``."""
        return self._do(lambda ts: m.EngineResumed(ts), timestamp)

    def declare_dependencies(
        self, task_id: TaskId, depends_on: Iterable[TaskId], *, timestamp: int | None = None
    ) -> MutationOutcome[m.DependencyDeclared]:
        """Declare prerequisites of a task (``DependencyDeclared``; order kept, declarations
        accumulate). Rejects: ``EmptyDependencyList``, ``UnknownTask`` (the task, then each
        prerequisite in order)."""
        return self._do(lambda ts: m.DependencyDeclared(task_id, tuple(depends_on), ts), timestamp)

    def suspend_run(self, run_id: RunId, reason: str | None = None, *, timestamp: int | None = None) -> MutationOutcome[m.RunSuspended]:
        """Suspend a Running run (``RunSuspended``). Rejects: ``UnknownRun``,
        ``RunSuspendRequiresRunning``, ``AttemptInProgress``."""
        return self._do(lambda ts: m.RunSuspended(run_id, reason, ts), timestamp)

    def resume_run(self, run_id: RunId, *, timestamp: int | None = None) -> MutationOutcome[m.RunResumed]:
        """Resume a Suspended run to Ready (``RunResumed``). Rejects: ``UnknownRun``,
        ``RunResumeRequiresSuspended``."""
        return self._do(lambda ts: m.RunResumed(run_id, ts), timestamp)

    # -- budgets -------------------------------------------------------------------------
    def allocate_budget(
        self, task_id: TaskId, dimension: BudgetDimension, limit: int, *, timestamp: int | None = None
    ) -> MutationOutcome[m.BudgetAllocated]:
        """Allocate (or reset) a task's budget in one dimension (``BudgetAllocated``).
        Rejects: ``InvalidArgument`` (limit 0), ``UnknownTask``."""
        return self._do(lambda ts: m.BudgetAllocated(task_id, dimension, limit, ts), timestamp)

    def consume_budget(
        self, task_id: TaskId, dimension: BudgetDimension, amount: int, *, timestamp: int | None = None
    ) -> MutationOutcome[m.BudgetConsumed]:
        """Record consumption (``BudgetConsumed``; without an allocation replay ignores it,
        as in Rust). Rejects: ``InvalidArgument`` (amount 0), ``UnknownTask``."""
        return self._do(lambda ts: m.BudgetConsumed(task_id, dimension, amount, ts), timestamp)

    def replenish_budget(
        self, task_id: TaskId, dimension: BudgetDimension, new_limit: int, *, timestamp: int | None = None
    ) -> MutationOutcome[m.BudgetReplenished]:
        """Set a new limit and zero the consumption (``BudgetReplenished``). Rejects:
        ``InvalidArgument`` (limit 0), ``UnknownTask``, ``BudgetNotAllocated``."""
        return self._do(lambda ts: m.BudgetReplenished(task_id, dimension, new_limit, ts), timestamp)

    # -- subscriptions -------------------------------------------------------------------
    def create_subscription(
        self, subscription_id: SubscriptionId, task_id: TaskId, filter: EventFilter, *, timestamp: int | None = None
    ) -> MutationOutcome[m.SubscriptionCreated]:
        """Subscribe a task to events (``SubscriptionCreated``). Rejects:
        ``InvalidArgument`` (threshold above 100, empty custom key), ``UnknownTask``,
        ``SubscriptionAlreadyExists``."""
        return self._do(lambda ts: m.SubscriptionCreated(subscription_id, task_id, filter, ts), timestamp)

    def trigger_subscription(self, subscription_id: SubscriptionId, *, timestamp: int | None = None) -> MutationOutcome[m.SubscriptionTriggered]:
        """Record that a subscription fired (``SubscriptionTriggered``; Rust checks nothing
        else, and replay ignores an unknown id)."""
        return self._do(lambda ts: m.SubscriptionTriggered(subscription_id, ts), timestamp)

    def cancel_subscription(self, subscription_id: SubscriptionId, *, timestamp: int | None = None) -> MutationOutcome[m.SubscriptionCanceled]:
        """Cancel a subscription (``SubscriptionCanceled``). Rejects: ``UnknownSubscription``,
        ``SubscriptionAlreadyCanceled``."""
        return self._do(lambda ts: m.SubscriptionCanceled(subscription_id, ts), timestamp)

    # -- actors, tenants, roles, capabilities, ledger --------------------------------------
    def register_actor(
        self,
        actor_id: ActorId,
        identity: str,
        capabilities: Iterable[str],
        heartbeat_interval_secs: int,
        *,
        department: str | None = None,
        tenant_id: TenantId | None = None,
        timestamp: int | None = None,
    ) -> MutationOutcome[m.ActorRegistered]:
        """Register (or re-register) an actor (``ActorRegistered``). Rejects
        ``InvalidArgument`` for what Rust's ``ActorRegistration`` refuses: empty identity,
        no or empty capabilities, a department outside 1..=128 bytes, interval 0."""
        caps = tuple(capabilities)
        return self._do(
            lambda ts: m.ActorRegistered(actor_id, identity, caps, department, heartbeat_interval_secs, tenant_id, ts),
            timestamp,
        )

    def heartbeat_actor(self, actor_id: ActorId, *, timestamp: int | None = None) -> MutationOutcome[m.ActorHeartbeat]:
        """Record an actor heartbeat (``ActorHeartbeat``; no other check, as in Rust)."""
        return self._do(lambda ts: m.ActorHeartbeat(actor_id, ts), timestamp)

    def deregister_actor(self, actor_id: ActorId, *, timestamp: int | None = None) -> MutationOutcome[m.ActorDeregistered]:
        """Deregister an actor (``ActorDeregistered``; no other check, as in Rust)."""
        return self._do(lambda ts: m.ActorDeregistered(actor_id, ts), timestamp)

    def create_tenant(self, tenant_id: TenantId, name: str, *, timestamp: int | None = None) -> MutationOutcome[m.TenantCreated]:
        """Create (or rename) a tenant (``TenantCreated``). Rejects ``InvalidArgument``
        (empty name)."""
        return self._do(lambda ts: m.TenantCreated(tenant_id, name, ts), timestamp)

    def assign_role(
        self, actor_id: ActorId, role: Role, tenant_id: TenantId, *, timestamp: int | None = None
    ) -> MutationOutcome[m.RoleAssigned]:
        """Set an actor's role in a tenant (``RoleAssigned``). Rejects ``InvalidArgument``
        (empty custom role)."""
        return self._do(lambda ts: m.RoleAssigned(actor_id, role, tenant_id, ts), timestamp)

    def grant_capability(
        self, actor_id: ActorId, capability: Capability, tenant_id: TenantId, *, timestamp: int | None = None
    ) -> MutationOutcome[m.CapabilityGranted]:
        """Grant a capability (``CapabilityGranted``; a re-grant clears a revocation).
        Rejects ``InvalidArgument`` (empty custom capability)."""
        return self._do(lambda ts: m.CapabilityGranted(actor_id, capability, tenant_id, ts), timestamp)

    def revoke_capability(
        self, actor_id: ActorId, capability: Capability, tenant_id: TenantId, *, timestamp: int | None = None
    ) -> MutationOutcome[m.CapabilityRevoked]:
        """Revoke a capability (``CapabilityRevoked``; replay ignores one never granted, as
        in Rust). Rejects ``InvalidArgument`` (empty custom capability)."""
        return self._do(lambda ts: m.CapabilityRevoked(actor_id, capability, tenant_id, ts), timestamp)

    def append_ledger_entry(
        self,
        entry_id: LedgerEntryId,
        tenant_id: TenantId,
        ledger_key: str,
        payload: bytes,
        *,
        actor_id: ActorId | None = None,
        timestamp: int | None = None,
    ) -> MutationOutcome[m.LedgerEntryAppended]:
        """Append to the ledger (``LedgerEntryAppended``; append-only, ids not deduplicated).
        Rejects ``InvalidArgument`` (empty ledger key)."""
        return self._do(
            lambda ts: m.LedgerEntryAppended(entry_id, tenant_id, ledger_key, actor_id, payload, ts), timestamp
        )

    def __repr__(self) -> str:
        state = f" poisoned={self._poisoned!r}" if self._poisoned is not None else ""
        return f"<MutationAuthority sequence={self._reducer.latest_sequence}{state}>"

