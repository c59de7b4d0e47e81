"""The batcher: at most one fsync in flight per writer, shared by every append made
while it runs (private to :mod:`actionqueue.aio`).

A coroutine writes its record synchronously (under the writer's lock, on the loop), then
registers here with the record's sequence and awaits. If no fsync is in flight one starts,
in this writer's worker thread (:meth:`WalWriter.sync_written
<actionqueue.log.writer.WalWriter.sync_written>`, which notes how far the log goes before
fsyncing). When it completes, every waiter whose sequence it covered is resolved, and if
more were written meanwhile the next one starts: the event loop is the batcher.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ..errors import WriterClosed, WriterPoisoned
from ..log.writer import Durability, WalWriter as SyncWalWriter

log = logging.getLogger("actionqueue.aio")

__all__ = ["Flusher", "Settled"]

#: Told after every fsync round: ``(sequence, None)`` when the log is durable up to
#: ``sequence``, ``(sequence written, error)`` when the fsync failed.
Settled = Callable[[int, "BaseException | None"], None]


def poisoned(error: BaseException) -> WriterPoisoned:
    """The error a waiter gets when the fsync covering its record failed (a new one per
    waiter, caused by the fsync's error)."""
    exc = WriterPoisoned(f"the fsync covering this append failed: {error}")
    exc.__cause__ = error
    return exc


class Flusher:
    """Schedules the fsyncs of one writer for the coroutines of one event loop.

    ``writer`` is opened with :attr:`Durability.NONE` (it never fsyncs by itself);
    ``durability`` is what the coroutines asked for: GROUP (shared fsyncs), FSYNC (an
    fsync of its own for each append, one at a time) or NONE (no waiting).
    ``durable`` is the last sequence known durable when the flusher starts.
    """

    def __init__(self, writer: SyncWalWriter, durability: Durability, durable: int) -> None:
        self.writer = writer
        self.durability = durability
        #: the last sequence an fsync that succeeded covered
        self.durable = durable
        #: callbacks told of every round (the async authority's ``settle``)
        self.listeners: list[Settled] = []
        self.error: BaseException | None = None
        self.closed = False
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._task: asyncio.Task[None] | None = None
        self._closing: asyncio.Future[None] | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="actionqueue-aio-fsync")

    # -- waiting -------------------------------------------------------------------------
    async def wait(self, sequence: int, *, force: bool = False) -> None:
        """Return once an fsync covering ``sequence`` (already written) has succeeded;
        at once with NONE durability unless ``force``. Raises :class:`WriterPoisoned`
        when that fsync failed (or an earlier one did).

        Registration happens before the first suspension, so waiters are registered in
        the order their records were written. Cancelling the awaiting coroutine leaves its
        record to the next fsync (:attr:`durable` tells when it is durable)."""
        if self.error is not None:
            raise poisoned(self.error)
        if self.durability is Durability.NONE and not force:
            return
        if sequence <= self.durable and self.durability is not Durability.FSYNC:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((sequence, future))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        await future

    async def _run(self) -> None:
        """fsync rounds while anything waits; one at a time."""
        loop = asyncio.get_running_loop()
        try:
            while self.error is None and self._waiters:
                try:
                    covered = await loop.run_in_executor(self._executor, self.writer.sync_written)
                except asyncio.CancelledError:
                    raise  # the loop is going away; the fsync itself still runs
                except BaseException as exc:  # noqa: BLE001 - every waiter gets it
                    self._fail(exc)
                    return
                self._succeed(covered)
        finally:
            self._task = None

    def _succeed(self, covered: int) -> None:
        self.durable = max(self.durable, covered)
        waiters = self._waiters
        # FSYNC: an fsync of its own for each append (the oldest waiter); GROUP: every
        # waiter it covered
        while waiters and waiters[0][0] <= covered:
            future = waiters.popleft()[1]
            if not future.done():  # a cancelled waiter's record is durable all the same
                future.set_result(None)
            if self.durability is Durability.FSYNC:
                break
        self._tell(covered, None)

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
            log.error("fsync of %s failed (%s): every waiter gets WriterPoisoned", self.writer.path, error)
        while self._waiters:
            future = self._waiters.popleft()[1]
            if not future.done():
                future.set_exception(poisoned(error))
        self._tell(self.writer.current_sequence, error)

    def _tell(self, sequence: int, error: BaseException | None) -> None:
        for listener in self.listeners:
            try:
                listener(sequence, error)
            except Exception:  # noqa: BLE001 - a listener must not strand the waiters
                log.exception("a durability listener failed")

    # -- closing -------------------------------------------------------------------------
    async def close(self, final: Callable[[], None]) -> None:
        """Stop taking waiters, let the fsync rounds in flight finish, then run ``final``
        (the writer's or the store's close, whose fsync covers everything written) in the
        worker thread and resolve whoever still waits by its outcome. Idempotent; a
        cancelled caller does not stop it."""
        self.closed = True
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close(final))
        await asyncio.shield(self._closing)

    async def _close(self, final: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        try:
            if self._task is not None:
                await asyncio.shield(self._task)
            covered = self.writer.current_sequence
            try:
                await loop.run_in_executor(self._executor, final)
            except BaseException as exc:
                self._fail(exc)
                raise
            if self.error is not None:
                self._fail(self.error)
            else:
                self._succeed(covered)
        finally:
            self._executor.shutdown(wait=False)

    def check_open(self) -> None:
        """Raise :class:`WriterClosed` once :meth:`close` was called."""
        if self.closed:
            raise WriterClosed("WAL writer is closed")
