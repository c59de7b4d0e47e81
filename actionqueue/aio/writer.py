"""The asyncio writer: :class:`WalWriter`, appends that return once durable, with the
fsyncs shared by every coroutine appending meanwhile (see :mod:`actionqueue.aio`)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..errors import WriterClosed
from ..log.catalog import Layout, LayoutName
from ..log.files import OS, Files
from ..log.format import DEFAULT_MAX_PAYLOAD, DEFAULT_SEGMENT_BYTES
from ..log.records import encode_events, encode_next
from ..log.writer import Durability, DurabilityName, RepairPolicy, RepairPolicyName
from ..log.writer import WalWriter as SyncWalWriter
from ..model import Event, WalEvent
from ._flush import Flusher

__all__ = ["WalWriter", "in_thread"]


async def in_thread(open_: Callable[[], Any], close: Callable[[Any], None]) -> Any:
    """``open_()`` in a worker thread (opening validates files: no blocking of the loop).
    Should the caller be cancelled meanwhile, what it opened is closed once it is open."""
    future = asyncio.get_running_loop().run_in_executor(None, open_)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        future.add_done_callback(lambda f: None if f.cancelled() or f.exception() else close(f.result()))
        raise


class WalWriter:
    """Appends events to a data dir's log from coroutines; each append returns once an
    fsync covering its record has succeeded.

    ``async with aq.aio.WalWriter(data_dir, durability="group") as writer`` opens the log
    in a worker thread (as :class:`actionqueue.WalWriter` does: lock, catalog, tail check;
    the other options are that class's) and closes it on leaving. ``durability``:

    * ``"group"`` (default): appends made while an fsync is in flight share the next one;
    * ``"fsync"``: one fsync per append (in the worker thread, one at a time);
    * ``"none"``: no fsync (:meth:`sync` makes everything durable).

    Each record is encoded and checked when the append is called, before its first
    suspension, and taken; the records of one loop pass are written as one write right
    before the fsync that covers them (with ``"none"``, at once). A cancelled append's
    record is written all the same, whole, and durable with that fsync
    (:attr:`durable_sequence` says when). The errors are :class:`actionqueue.WalWriter`'s:
    :class:`SequenceViolation`, :class:`PayloadTooLarge` and ``TypeError`` at the call
    (nothing taken), :class:`WalWriterError` for the appends of a write that failed
    (nothing of them written, the writer still usable), :class:`WriterPoisoned` for every
    waiter of a failed fsync and for every later call, :class:`WriterClosed` after
    :meth:`close`. One event loop per writer.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        durability: Durability | DurabilityName = Durability.GROUP,
        repair_policy: RepairPolicy | RepairPolicyName = RepairPolicy.STRICT,
        layout: Layout | LayoutName = Layout.SEGMENTED,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        fs: Files = OS,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.durability = Durability(durability)
        self._options: dict[str, Any] = dict(repair_policy=repair_policy, layout=layout, segment_bytes=segment_bytes,
                                             max_payload=max_payload, fs=fs)
        self._sync: SyncWalWriter | None = None
        self._flusher: Flusher | None = None
        self._final: Callable[[], None] = lambda: None

    @classmethod
    def over(cls, writer: SyncWalWriter, durability: Durability | DurabilityName, durable: int,
             final: Callable[[], None]) -> WalWriter:
        """An async writer over an open :class:`actionqueue.WalWriter` opened with
        ``Durability.NONE`` (the async layer schedules its fsyncs), whose log is durable up
        to ``durable``; ``final`` closes it (run in the worker thread). For
        :func:`actionqueue.aio.open`, which gets its writer from recovery."""
        self = cls(writer.data_dir, durability=durability)
        self._attach(writer, durable, final)
        return self

    def _attach(self, writer: SyncWalWriter, durable: int, final: Callable[[], None]) -> None:
        if writer.durability is not Durability.NONE:
            raise ValueError("the async writer schedules the fsyncs: open the inner writer with Durability.NONE")
        self._sync, self._final = writer, final
        self._flusher = Flusher(writer, self.durability, durable)

    async def open(self) -> WalWriter:
        """Open the log (in a worker thread, which also fsyncs what an earlier writer left
        unsynced, so that :attr:`durable_sequence` starts true); returns the writer."""
        if self._flusher is not None:
            return self
        data_dir, options = self.data_dir, self._options

        def opening() -> tuple[SyncWalWriter, int]:
            writer = SyncWalWriter(data_dir, durability=Durability.NONE, **options)
            try:
                return writer, writer.sync_written()
            except BaseException:
                writer.close()
                raise

        writer, durable = await in_thread(opening, lambda opened: opened[0].close())
        self._attach(writer, durable, writer.close)
        return self

    # -- state ---------------------------------------------------------------------------
    @property
    def sync_writer(self) -> SyncWalWriter:
        """The :class:`actionqueue.WalWriter` underneath (read its state; append through
        this object, or its records are durable only with the next fsync)."""
        if self._sync is None:
            raise WriterClosed("the async WAL writer is not open: use `async with` or `await writer.open()`")
        return self._sync

    @property
    def current_sequence(self) -> int:
        """The sequence of the last record appended (durable or not yet; written, or
        buffered for the write of this loop pass)."""
        self.sync_writer  # noqa: B018 - raises WriterClosed when not open
        return self._live().last_sequence

    @property
    def durable_sequence(self) -> int:
        """The last sequence an fsync that succeeded covers: every record up to it is
        durable, including those of appends that were cancelled while waiting."""
        return self._live().durable

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._flusher is not None and self._flusher.closed

    def metrics(self) -> dict[str, Any]:
        """The writer's counters and timings (:meth:`actionqueue.WalWriter.metrics`; the
        fsyncs this object schedules are counted there)."""
        return self.sync_writer.metrics()

    def _live(self) -> Flusher:
        if self._flusher is None:
            raise WriterClosed("the async WAL writer is not open: use `async with` or `await writer.open()`")
        return self._flusher

    def _writing(self) -> tuple[SyncWalWriter, Flusher]:
        flusher = self._live()
        flusher.check_open()
        assert self._sync is not None
        return self._sync, flusher

    # -- appending -----------------------------------------------------------------------
    # Each append encodes and checks its record before its first suspension (its errors
    # are its own, and nothing is taken), then hands the bytes to the flusher, which
    # writes everything a loop pass appended as one write before the fsync that covers it.
    async def append(self, event: WalEvent) -> None:
        """Append one event (its sequence above the last); returns once durable."""
        writer, flusher = self._writing()
        data, sequence = encode_events((event,), flusher.last_sequence, writer.max_payload)
        future = flusher.take(data, sequence, sequence, 1)
        if future is not None:
            await future

    async def append_next(self, event: Event) -> int:
        """Append an event body under the next sequence, assigned by the writer; returns
        that sequence once the record is durable."""
        writer, flusher = self._writing()
        sequence = flusher.last_sequence + 1
        data = encode_next(sequence, event, writer.max_payload)
        future = flusher.take(data, sequence, sequence, 1)
        if future is not None:
            await future
        return sequence

    async def append_many(self, events: Iterable[WalEvent]) -> None:
        """Append events in order as one write (all or nothing); returns once durable."""
        writer, flusher = self._writing()
        batch = list(events)
        if not batch:
            return
        data, last = encode_events(batch, flusher.last_sequence, writer.max_payload)
        future = flusher.take(data, batch[0].sequence, last, len(batch))
        if future is not None:
            await future

    async def sync(self) -> None:
        """Make everything appended so far durable (with any durability, NONE too)."""
        _writer, flusher = self._writing()
        await flusher.wait(flusher.last_sequence, force=True)

    # -- closing -------------------------------------------------------------------------
    async def close(self) -> None:
        """Close: appends from now on raise :class:`WriterClosed`; the fsync in flight and
        a final one (the inner writer's close) run, and every append still waiting is
        resolved by them (:class:`WriterPoisoned` if that fsync failed, which ``close``
        raises too). Closing twice is allowed; a writer never opened closes at once."""
        if self._flusher is not None:
            await self._flusher.close(self._final)

    aclose = close

    async def __aenter__(self) -> WalWriter:
        return await self.open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        if self._flusher is None:
            return f"<aio.WalWriter {self.data_dir} not open>"
        state = "closed" if self._flusher.closed else "poisoned" if self._flusher.error else "open"
        return (f"<aio.WalWriter {self.data_dir} {state} durability={self.durability.value} "
                f"durable_sequence={self._flusher.durable}>")
