"""The batcher: the writes and fsyncs of one writer, shared by every coroutine appending
meanwhile (private to :mod:`actionqueue.aio`).

A coroutine encodes its record synchronously (errors are its own: a wrong type, a
sequence out of order, a payload above the cap), hands the bytes here (:meth:`submit`)
and awaits (:meth:`wait`). With GROUP or FSYNC durability the bytes wait in a buffer for
the next fsync round: a round writes everything submitted so far as one ``write(2)``
(:meth:`WalWriter.write_encoded <actionqueue.log.writer.WalWriter.write_encoded>`), then
fsyncs it in this writer's worker thread (:meth:`WalWriter.sync_written
<actionqueue.log.writer.WalWriter.sync_written>`); when the fsync completes every waiter it
covered is resolved, and if more was submitted meanwhile the next round starts. At most
one round is in flight: the event loop is the batcher, and a loop pass of appends costs
one write and one fsync. With NONE durability :meth:`submit` writes at once.

A record handed to :meth:`submit` is written by the next round whatever becomes of its
coroutine: a cancelled append is durable once :attr:`Flusher.durable` reaches it (or was
never written, if the process dies first; it was never acknowledged either).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from ..errors import WalWriterError, WriterClosed, WriterPoisoned
from ..log.writer import Durability, WalWriter as SyncWalWriter

log = logging.getLogger("actionqueue.aio")

__all__ = ["Flusher", "Settled"]

#: Told after every fsync round: ``(sequence, None)`` when the log is durable up to
#: ``sequence``, ``(sequence written, error)`` when the fsync failed.
Settled = Callable[[int, "BaseException | None"], None]

#: Bytes buffered before a round is due regardless (a loop pass appending more than this
#: writes early, so one write never holds an unbounded buffer).
MAX_BUFFERED_BYTES = 8 << 20


def poisoned(error: BaseException) -> WriterPoisoned:
    """The error a waiter gets when the fsync covering its record failed (a new one per
    waiter, caused by the fsync's error)."""
    exc = WriterPoisoned(f"the fsync covering this append failed: {error}")
    exc.__cause__ = error
    return exc


def unwritten(error: BaseException) -> BaseException:
    """The error a waiter gets when the write of its record failed (nothing of it was
    written, as when a synchronous append's write fails)."""
    if isinstance(error, WalWriterError):
        exc = WalWriterError(str(error))
        exc.__cause__ = error.__cause__ or error
        return exc
    return poisoned(error) if isinstance(error, WriterPoisoned) else error


class Flusher:
    """Schedules the writes and fsyncs of one writer for the coroutines of one loop.

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
        self._buffer: list[bytes] = []
        self._buffered = [0, 0, 0, 0]  # first, last, records, bytes of the buffer
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop of the first waiter (one per writer)
        self._closing: asyncio.Future[None] | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="actionqueue-aio-fsync")

    # -- submitting ----------------------------------------------------------------------
    @property
    def last_sequence(self) -> int:
        """The last sequence submitted: buffered, or written (by this flusher or by an
        authority's command through the same writer)."""
        return self._buffered[1] if self._buffer else self.writer.current_sequence

    def submit(self, data: bytes, first: int, last: int, count: int) -> None:
        """Take ``count`` encoded records (sequences ``first``..``last``, continuing
        :attr:`last_sequence`): written by the next round, or now with NONE durability."""
        if self.durability is Durability.NONE:
            self.writer.write_encoded(data, first, last, count)
            return
        b = self._buffered
        if not self._buffer:
            b[0] = first
        self._buffer.append(data)
        b[1] = last
        b[2] += count
        b[3] += len(data)
        if b[3] >= MAX_BUFFERED_BYTES:
            self.write_buffer()

    def write_buffer(self) -> None:
        """Write what is buffered as one write; should it fail (nothing is written), the
        coroutines waiting for those records get the error, and the sequences are free
        again. Never raises: the errors go to the waiters."""
        if not self._buffer:
            return
        first, last, count, _size = self._buffered
        data = self._buffer[0] if len(self._buffer) == 1 else b"".join(self._buffer)
        self._buffer.clear()
        self._buffered[:] = [0, 0, 0, 0]
        try:
            self.writer.write_encoded(data, first, last, count)
        except BaseException as exc:  # noqa: BLE001 - each waiter of these records gets it
            if self.writer.poisoned is not None:  # the undo failed too: nothing is sure
                self._fail(exc)
                return
            waiters = self._waiters
            while waiters and waiters[-1][0] >= first:
                future = waiters.pop()[1]
                if not future.done():
                    future.set_exception(unwritten(exc))

    def take(self, data: bytes, first: int, last: int, count: int) -> asyncio.Future[None] | None:
        """:meth:`submit`, and register for the fsync covering ``last``: the future to
        await (None when there is nothing to wait for, with NONE durability). The appends'
        path, one call and no coroutine of its own; :meth:`wait` says what it raises."""
        if self.error is not None:
            raise poisoned(self.error)
        if self.durability is Durability.NONE:
            self.submit(data, first, last, count)
            return None
        # registered first: should the buffer threshold make submit write at once and
        # that write fail, this record's waiter is among those failed
        future = self._register(last)
        self.submit(data, first, last, count)
        return future

    def _register(self, sequence: int) -> asyncio.Future[None]:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._waiters.append((sequence, future))
        if self._task is None:
            self._task = loop.create_task(self._run())
        return future

    # -- waiting -------------------------------------------------------------------------
    async def wait(self, sequence: int, *, force: bool = False) -> None:
        """Return once an fsync covering ``sequence`` (submitted) has succeeded; at once
        with NONE durability unless ``force``. Raises the write's error if its write
        failed, :class:`WriterPoisoned` when its fsync failed (or an earlier one did).

        Registration happens before the first suspension, so waiters are registered in
        the order of their sequences. Cancelling the awaiting coroutine leaves its record
        to the next round (:attr:`durable` tells when it is durable)."""
        if self.error is not None:
            raise poisoned(self.error)
        if self.durability is Durability.NONE and not force:
            return
        if sequence <= self.durable and self.durability is not Durability.FSYNC:
            return
        await self._register(sequence)

    async def _run(self) -> None:
        """Rounds (write what is buffered, fsync) while anything waits; one at a time."""
        loop = asyncio.get_running_loop()
        try:
            while self.error is None and self._waiters:
                self.write_buffer()
                if not self._waiters:
                    break  # the write failed, and its waiters were all there was
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

    def _succeed(self, covered: int, *, final: bool = False) -> None:
        self.durable = max(self.durable, covered)
        waiters = self._waiters
        # FSYNC: an fsync of its own for each append (the oldest waiter; at close, the
        # last fsync is everyone's); GROUP: every waiter it covered
        one_each = self.durability is Durability.FSYNC and not final
        while waiters and waiters[0][0] <= covered:
            future = waiters.popleft()[1]
            if not future.done():  # a cancelled waiter's record is durable all the same
                future.set_result(None)
            if one_each:
                break
        self._tell(covered, None)

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            self.error = error
            log.error("fsync of %s failed (%s): every waiter gets WriterPoisoned", self.writer.path, error)
        self._buffer.clear()  # never written: their waiters fail below
        self._buffered[:] = [0, 0, 0, 0]
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
        """Stop taking records, let the round in flight finish, write what is buffered,
        then run ``final`` (the writer's or the store's close, whose fsync covers
        everything written) in the worker thread and resolve whoever still waits by its
        outcome. Idempotent; a cancelled caller does not stop it. A closing cut short by
        its loop ending (``asyncio.run`` cancels every task left) is started over by the
        next call, from any loop: ``final`` is idempotent."""
        self.closed = True
        if self._closing is None or self._closing.cancelled():
            self._closing = asyncio.ensure_future(self._close(final))
        await asyncio.shield(self._closing)

    async def _close(self, final: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        try:
            if self._task is not None:
                await asyncio.shield(self._task)
            if self.error is None:
                self.write_buffer()
            covered = self.writer.current_sequence
            try:
                await loop.run_in_executor(self._executor, final)
                if self.error is None and self.writer.poisoned is not None:
                    # a final of a closing cut short failed: this one found the writer closed
                    raise poisoned(self.writer.poisoned)
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                self._fail(exc)
                raise
            if self.error is not None:
                self._fail(self.error)
            else:
                self._succeed(covered, final=True)
        except asyncio.CancelledError:
            raise  # cut short: the worker thread stays for the closing that starts over
        except BaseException:
            self._executor.shutdown(wait=False)
            raise
        self._executor.shutdown(wait=False)

    def check_open(self) -> None:
        """Raise :class:`WriterClosed` once :meth:`close` was called, and RuntimeError
        when called from an event loop other than the one whose coroutines wait on this
        writer (before anything is taken: a record handed over from another loop would be
        written by this loop's next round while its append failed on the foreign future)."""
        if self.closed:
            raise WriterClosed("WAL writer is closed")
        if self._loop is not None and asyncio.get_running_loop() is not self._loop:
            raise RuntimeError("this async writer is used from another event loop (one event loop per writer)")
