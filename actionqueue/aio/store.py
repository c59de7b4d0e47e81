"""The asyncio store: :func:`open` (recovery in a worker thread) and the async
:class:`MutationAuthority`, whose commands are the synchronous authority's, forwarded."""

from __future__ import annotations

import asyncio
import functools
import os
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator, Mapping
from pathlib import Path
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from .. import recovery
from ..errors import AuthorityPoisoned
from ..log.writer import Durability, DurabilityName
from ..state.authority import MutationAuthority as SyncMutationAuthority
from ..state.reducer import ReplayReducer
from .writer import WalWriter, in_thread

__all__ = ["MutationAuthority", "Store", "open"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


class _Forward(Generic[_P, _R]):
    """An async command of :class:`MutationAuthority`: runs the synchronous authority's
    command of the same name (validate, sequence, write, apply: on the loop, before the
    first suspension), then awaits the fsync covering what it wrote."""

    def __init__(self, command: Callable[Concatenate[SyncMutationAuthority, _P], _R]) -> None:
        self.command = command

        async def forwarded(owner: MutationAuthority, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            return await owner._run(command, *args, **kwargs)

        functools.update_wrapper(forwarded, command)
        forwarded.__doc__ = (f"Async :meth:`actionqueue.MutationAuthority.{command.__name__}`: the same arguments, "
                             "checks, errors and result, returned once durable.\n\n" + (command.__doc__ or ""))
        self._forwarded = forwarded

    @overload
    def __get__(self, owner: None, cls: type) -> _Forward[_P, _R]: ...

    @overload
    def __get__(self, owner: MutationAuthority, cls: type) -> Callable[_P, Awaitable[_R]]: ...

    def __get__(self, owner: MutationAuthority | None, cls: type) -> Any:
        return self if owner is None else types.MethodType(self._forwarded, owner)


_S = SyncMutationAuthority


class MutationAuthority:
    """:class:`actionqueue.MutationAuthority` for coroutines: ``await
    authority.create_task(spec)`` and every other command, with the same arguments,
    checks, typed errors and results.

    A command is validated, sequenced, written and applied synchronously when called
    (a rejected one raises before anything is written, as in the synchronous API); it
    returns once an fsync covering its record has succeeded, shared with every command and
    append made meanwhile. If that fsync fails the command raises
    :class:`~actionqueue.errors.WriterPoisoned` and the authority is poisoned (its
    projection holds the event): every later command raises :class:`AuthorityPoisoned`.
    A command cancelled while it waits stays applied; it is durable once
    ``writer.durable_sequence`` reaches its sequence. Get one from :attr:`Store.authority`,
    or build one over a recovered projection and an open async writer of the same log.
    """

    def __init__(self, reducer: ReplayReducer, writer: WalWriter, *, clock: Callable[[], int] | None = None,
                 _sync: SyncMutationAuthority | None = None) -> None:
        self._writer = writer
        self._sync = _sync or SyncMutationAuthority(reducer, writer.sync_writer, clock=clock, defer_durability=True)
        writer._live().listeners.append(self._sync.settle)

    @property
    def sync_authority(self) -> SyncMutationAuthority:
        """The synchronous authority underneath (it never waits for fsyncs: do not run
        commands through it)."""
        return self._sync

    @property
    def reducer(self) -> ReplayReducer:
        """The projection (each read is safe at any time)."""
        return self._sync.reducer

    @property
    def writer(self) -> WalWriter:
        """The async writer the commands append through."""
        return self._writer

    @property
    def latest_sequence(self) -> int:
        """The projection's last sequence (applied; durable once
        ``writer.durable_sequence`` reaches it)."""
        return self._sync.latest_sequence

    @property
    def poisoned(self) -> BaseException | None:
        """Why the authority refuses commands, or None."""
        return self._sync.poisoned

    def metrics(self) -> dict[str, Any]:
        """:meth:`actionqueue.MutationAuthority.metrics` of the authority underneath."""
        return self._sync.metrics()

    async def _run(self, command: Callable[..., _R], *args: Any, **kwargs: Any) -> _R:
        writer, flusher = self._writer._writing()
        flusher.write_buffer()  # appends buffered on this writer go first, in their order
        result = command(self._sync, *args, **kwargs)
        await flusher.wait(self._sync.latest_sequence)
        return result

    async def snapshot(self, timestamp: int | None = None) -> Any:
        """:meth:`actionqueue.MutationAuthority.snapshot`, in a worker thread."""
        if self._sync.poisoned is not None:
            raise AuthorityPoisoned(f"the mutation authority is poisoned: {self._sync.poisoned}; reopen the data dir")
        return await asyncio.to_thread(self._sync.snapshot, timestamp)

    # -- the commands: one line each, checked against state.validators.COMMANDS ----------
    submit = _Forward(_S.submit)
    create_task = _Forward(_S.create_task)
    create_run = _Forward(_S.create_run)
    derive_runs = _Forward(_S.derive_runs)
    transition_run = _Forward(_S.transition_run)
    start_attempt = _Forward(_S.start_attempt)
    finish_attempt = _Forward(_S.finish_attempt)
    cancel_task = _Forward(_S.cancel_task)
    cancel_run = _Forward(_S.cancel_run)
    acquire_lease = _Forward(_S.acquire_lease)
    heartbeat_lease = _Forward(_S.heartbeat_lease)
    release_lease = _Forward(_S.release_lease)
    expire_lease = _Forward(_S.expire_lease)
    pause_engine = _Forward(_S.pause_engine)
    resume_engine = _Forward(_S.resume_engine)
    declare_dependencies = _Forward(_S.declare_dependencies)
    suspend_run = _Forward(_S.suspend_run)
    resume_run = _Forward(_S.resume_run)
    allocate_budget = _Forward(_S.allocate_budget)
    consume_budget = _Forward(_S.consume_budget)
    replenish_budget = _Forward(_S.replenish_budget)
    create_subscription = _Forward(_S.create_subscription)
    trigger_subscription = _Forward(_S.trigger_subscription)
    cancel_subscription = _Forward(_S.cancel_subscription)
    register_actor = _Forward(_S.register_actor)
    heartbeat_actor = _Forward(_S.heartbeat_actor)
    deregister_actor = _Forward(_S.deregister_actor)
    create_tenant = _Forward(_S.create_tenant)
    assign_role = _Forward(_S.assign_role)
    grant_capability = _Forward(_S.grant_capability)
    revoke_capability = _Forward(_S.revoke_capability)
    append_ledger_entry = _Forward(_S.append_ledger_entry)

    def __repr__(self) -> str:
        return f"<aio.MutationAuthority sequence={self.latest_sequence} durable={self._writer.durable_sequence}>"


def command_names() -> set[str]:
    """The names of the commands :class:`MutationAuthority` forwards."""
    return {name for name, value in vars(MutationAuthority).items() if isinstance(value, _Forward)}


class Store:
    """A data dir recovered for coroutines (:func:`open`): the projection
    (:attr:`reducer`), the async writer at the end of its log (:attr:`writer`), the async
    :attr:`authority` over both, what recovery did (:attr:`report`) and the synchronous
    :class:`actionqueue.Store` underneath (:attr:`sync_store`)."""

    def __init__(self, store: recovery.Store, durability: Durability, durable: int,
                 clock: Callable[[], int] | None = None) -> None:
        self.sync_store = store
        self.data_dir: Path = store.data_dir
        self.reducer: ReplayReducer = store.reducer
        self.report: recovery.RecoveryReport = store.report
        self.writer = WalWriter.over(store.writer, durability, durable, store.close)
        sync = SyncMutationAuthority.from_store(store, clock=clock, defer_durability=True)
        self.authority = MutationAuthority(store.reducer, self.writer, _sync=sync)

    async def snapshot(self, timestamp: int | None = None) -> Mapping[str, Any]:
        """:meth:`actionqueue.Store.snapshot`, in a worker thread."""
        return await asyncio.to_thread(self.sync_store.snapshot, timestamp)

    def metrics(self) -> dict[str, Any]:
        """:meth:`actionqueue.Store.metrics`: the log's, the snapshots' and the commands'
        counters (a :class:`~actionqueue.metrics.PrometheusCollector` takes this store)."""
        return self.sync_store.metrics()

    async def close(self) -> None:
        """Close: commands and appends from now on raise :class:`WriterClosed`; those
        waiting are resolved by the final fsync (the synchronous store's close, which
        also lets a background snapshot finish)."""
        await self.writer.close()

    aclose = close

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<aio.Store {self.data_dir} sequence={self.reducer.latest_sequence}>"


class _Opening:
    """What :func:`open` returns: await it for the store, or use it as ``async with``."""

    def __init__(self, opening: Coroutine[Any, Any, Store]) -> None:
        self._opening = opening
        self._store: Store | None = None

    def __await__(self) -> Generator[Any, None, Store]:
        return self._opening.__await__()

    async def __aenter__(self) -> Store:
        self._store = await self._opening
        return self._store

    async def __aexit__(self, *exc_info: object) -> None:
        if self._store is not None:
            await self._store.close()


def open(  # noqa: A001 - the counterpart of actionqueue.open
    data_dir: str | os.PathLike[str],
    *,
    durability: Durability | DurabilityName = Durability.GROUP,
    clock: Callable[[], int] | None = None,
    **options: Any,
) -> _Opening:
    """Recover ``data_dir`` for coroutines: ``async with aq.aio.open(data_dir) as store``
    (or ``store = await aq.aio.open(data_dir)``, then ``await store.close()``).

    Recovery is :func:`actionqueue.open`'s, with its options (``repair_policy``,
    ``snapshot_every``, ``retain``, ...), run in a worker thread; the log's writer is
    opened without fsyncs of its own (the async writer schedules them) and ``durability``
    (``"group"`` by default, ``"fsync"`` or ``"none"``) applies to every command and
    append made through the store. ``clock`` is the authority's."""
    mode = Durability(durability)

    def recover() -> tuple[recovery.Store, int]:
        store = recovery.open(data_dir, durability=Durability.NONE, **options)
        try:
            return store, store.writer.sync_written()
        except BaseException:
            store.close()
            raise

    async def opening() -> Store:
        store, durable = await in_thread(recover, lambda opened: opened[0].close())
        return Store(store, mode, durable, clock)

    return _Opening(opening())
