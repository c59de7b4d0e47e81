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

The record itself is encoded and written (to the page cache, under the writer's lock)
synchronously, before the appending coroutine first suspends; that is what makes
cancellation safe: a cancelled append has either written its whole record (durable with
the next fsync: ``writer.durable_sequence`` says when) or nothing. A failed fsync poisons
the writer for every waiter and every later call (:class:`~actionqueue.errors.WriterPoisoned`),
as in the threaded API; the errors are the synchronous API's throughout. Closing with
appends pending waits for the final fsync and resolves them all.

The seam underneath: the synchronous writer is opened with ``Durability.NONE`` and
:meth:`WalWriter.sync_written <actionqueue.log.writer.WalWriter.sync_written>` runs in the
worker thread; the synchronous authority runs with ``defer_durability=True`` and is told
of every fsync through its ``settle``. Known cost on the loop: when a segment fills up
(every 64 MiB by default), the append that rotates it seals the old one (an fsync and a
few metadata writes) on the loop. Works under uvloop.
"""

from __future__ import annotations

from .reader import WalReader
from .store import MutationAuthority, Store, open
from .writer import WalWriter

__all__ = ["MutationAuthority", "Store", "WalReader", "WalWriter", "open"]
