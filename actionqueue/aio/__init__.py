"""asyncio: durable appends and commands from coroutines, with shared fsyncs.

>>> async with aq.aio.open("data") as store:                     # doctest: +SKIP
...     await store.authority.create_task(aq.TaskSpec(aq.TaskId.new()))
>>> async with aq.aio.WalWriter("data") as writer:               # doctest: +SKIP
...     sequence = await writer.append_next(aq.EnginePaused(0))
>>> async for event in aq.aio.WalReader("data").follow():        # doctest: +SKIP
...     print(event)

Every awaitable that appends returns only once an fsync covering its record has
succeeded. The fsyncs run in a worker thread of the writer, one at a time; the event loop
is the batcher: every append made while one fsync is in flight shares the next one, so a
thousand coroutines appending take a handful of fsyncs, not a thousand.

The record itself is encoded and checked synchronously, before the appending coroutine
first suspends (its errors are its own), and taken: what one loop pass appended is
written as one write right before the fsync that covers it. That is what makes
cancellation safe: a cancelled append's record is written all the same, whole (durable
with that fsync: ``writer.durable_sequence`` says when); a crash before it means the
record was never written and never acknowledged. A failed write (a full disk) fails the
appends it carried with :class:`~actionqueue.errors.WalWriterError`. A failed fsync poisons
the writer for every waiter and every later call (:class:`~actionqueue.errors.WriterPoisoned`),
as in the threaded API; the errors are the synchronous API's throughout. Closing with
appends pending waits for the final fsync and resolves them all.

The seams underneath: the synchronous writer is opened with ``Durability.NONE``; the
records go in through :meth:`WalWriter.write_encoded
<actionqueue.log.writer.WalWriter.write_encoded>` and :meth:`WalWriter.sync_written
<actionqueue.log.writer.WalWriter.sync_written>` runs in the worker thread; the synchronous authority runs with ``defer_durability=True`` and is told
of every fsync through its ``settle``. Known cost on the loop: when a segment fills up
(every 64 MiB by default), the append that rotates it seals the old one (an fsync and a
few metadata writes) on the loop, in the write of that pass. Works under uvloop.
"""

from __future__ import annotations

from .reader import WalReader
from .store import MutationAuthority, Store, open
from .writer import WalWriter

__all__ = ["MutationAuthority", "Store", "WalReader", "WalWriter", "open"]
