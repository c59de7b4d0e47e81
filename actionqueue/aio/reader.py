"""The asyncio reader: :class:`WalReader`, a pass over the log or ``follow()`` as
``tail -f``, with the file reads and the polls in a worker thread."""

from __future__ import annotations

import asyncio
import os
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import Any

from ..log.files import OS, Files
from ..log.format import DEFAULT_MAX_PAYLOAD
from ..log.reader import WalReader as SyncWalReader
from ..model import WalEvent

__all__ = ["WalReader"]

#: Events a follower's thread reads ahead of the coroutine consuming them, at most.
FOLLOW_BUFFER = 4096


class _End:
    """What a follower's thread leaves last: how it ended."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class WalReader:
    """Reads a data dir's log from coroutines: ``async for event in reader`` (one pass)
    or ``async for event in reader.follow()`` (every event, then new ones as they are
    appended). The arguments are :class:`actionqueue.WalReader`'s, and so are the checks
    and the errors (raised in the consuming coroutine)."""

    def __init__(self, source: str | os.PathLike[str], from_sequence: int | None = None, *,
                 max_payload: int = DEFAULT_MAX_PAYLOAD, fs: Files = OS) -> None:
        self.reader = SyncWalReader(source, from_sequence, max_payload=max_payload, fs=fs)

    async def __aiter__(self) -> AsyncIterator[WalEvent]:
        """One pass over the log: each read chunk's batch of events is read in a worker
        thread."""
        batches: Iterator[list[WalEvent]] = self.reader.batches()
        while True:
            batch = await asyncio.to_thread(next, batches, None)
            if batch is None:
                return
            for event in batch:
                yield event

    async def follow(self, poll_interval: float = 0.1) -> AsyncIterator[WalEvent]:
        """Yield every event, then new ones as they are appended (by this process or
        another), until the consuming coroutine stops: cancelling it, breaking out of the
        loop or closing the generator ends the follower's thread (within
        ``actionqueue.log.reader.STOP_CHECK_S``) before this returns.

        :meth:`actionqueue.WalReader.follow` runs in a thread of its own and hands the
        events over through a buffer of at most :data:`FOLLOW_BUFFER` (it waits while the
        buffer is full); the loop is never blocked by a read or a poll."""
        loop = asyncio.get_running_loop()
        buffer: deque[Any] = deque()
        ready = asyncio.Event()
        stop, room = threading.Event(), threading.Event()
        ended = threading.Event()  # set by the thread as it ends, before its last wake-up

        def wake() -> None:
            try:
                loop.call_soon_threadsafe(ready.set)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                stop.set()

        def pump() -> None:
            error: BaseException | None = None
            try:
                for event in self.reader.follow(poll_interval, stop):
                    while len(buffer) >= FOLLOW_BUFFER and not stop.is_set():
                        room.clear()
                        if len(buffer) >= FOLLOW_BUFFER:
                            room.wait(0.05)
                    if stop.is_set():
                        break
                    buffer.append(event)
                    if len(buffer) <= 1:
                        wake()
            except BaseException as exc:  # noqa: BLE001 - raised in the consumer
                error = exc
            finally:
                buffer.append(_End(error))
                ended.set()
                wake()

        thread = threading.Thread(target=pump, name="actionqueue-aio-follow", daemon=True)
        thread.start()
        try:
            while True:
                while not buffer:
                    ready.clear()
                    if buffer:
                        break
                    await ready.wait()
                item = buffer.popleft()
                if len(buffer) < FOLLOW_BUFFER // 2:
                    room.set()
                if isinstance(item, _End):
                    if item.error is not None:
                        raise item.error
                    return
                yield item
        finally:
            stop.set()
            room.set()
            while not ended.is_set():  # woken by the thread's last wake-up (no future of
                ready.clear()              # another thread's to outlive a closing loop)
                if ended.is_set():
                    break
                await ready.wait()
            thread.join()  # it has set ``ended``, then woken us, as its last acts
