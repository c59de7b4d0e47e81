"""Group commit: concurrent appends wait together for one fsync.

Private to :mod:`.writer`; the flusher thread takes the writer's locks by the names
``_write_lock`` and ``_fsync_lock`` and fsyncs through its file seam.
"""

from __future__ import annotations

import _thread
import logging
import threading
import weakref
from typing import TYPE_CHECKING

from ..errors import WriterClosed, WriterPoisoned

if TYPE_CHECKING:
    from .writer import WalWriter

log = logging.getLogger("actionqueue.wal")

__all__ = ["PendingWrite"]


class _Gate:
    """Where group-commit appenders wait for the fsync that covers their bytes."""

    __slots__ = ("_lock", "error", "opened")

    def __init__(self) -> None:
        self._lock = _thread.allocate_lock()
        self._lock.acquire()
        self.error: BaseException | None = None
        self.opened = False

    def open(self, error: BaseException | None) -> None:
        if self.opened:  # e.g. the flusher and close() both settling the last gate
            return
        self.opened = True
        self.error = error
        self._lock.release()

    def wait(self) -> None:
        self._lock.acquire()
        self._lock.release()
        if self.error is not None:
            raise WriterPoisoned(f"the fsync covering this append failed: {self.error}") from self.error


class _GroupCommit:
    """Group commit with one flusher thread.

    An appender writes under the writer's lock, takes the current gate, signals the
    flusher and waits at the gate. The flusher swaps in a new gate under the writer's lock
    (so the old gate covers exactly the bytes written before the swap), fsyncs, and opens
    the old gate: every appender behind it wakes once, with no lock to fight over, which
    is what lets many threads share one fsync. The flusher holds only a weak reference to
    the writer, so an abandoned writer is still collected (and closed).
    """

    def __init__(self, writer: "WalWriter") -> None:
        self.gate = _Gate()
        self.pending = threading.Event()
        self.stopping = False
        self.thread = threading.Thread(
            target=_GroupCommit._run, args=(weakref.ref(writer), self), name="actionqueue-wal-flusher", daemon=True
        )
        self.thread.start()

    def gate_for_written(self) -> _Gate:
        """Called under the writer's lock right after a write."""
        self.pending.set()
        return self.gate

    def stop(self) -> None:
        self.stopping = True
        self.pending.set()
        if self.thread is not threading.current_thread():
            self.thread.join()

    @staticmethod
    def _run(ref, state: "_GroupCommit") -> None:
        while True:
            state.pending.wait()
            state.pending.clear()
            writer = ref()
            if writer is None:
                state.gate.open(WriterClosed("WAL writer was garbage-collected"))
                return
            with writer._write_lock:
                gate, state.gate = state.gate, _Gate()
                fd = writer._fd
                writer._fsync_lock.acquire()
            error: BaseException | None = writer._poisoned
            try:
                if error is None and fd >= 0:
                    writer._fsyncs.fsync(writer.fs, fd)
            except BaseException as exc:  # noqa: BLE001 - also interrupts: never strand waiters
                error = exc
                writer._poisoned = exc
                log.error("fsync of %s failed (%s): writer poisoned", writer.path, exc)
            finally:
                writer._fsync_lock.release()
                gate.open(error)
            del writer
            if state.stopping:
                return  # close() fsyncs once more and opens the last gate


class PendingWrite:
    """Events written by :meth:`WalWriter.write`, durable once :meth:`wait` returns."""

    __slots__ = ("_gate",)

    def __init__(self, gate: _Gate | None) -> None:
        self._gate = gate

    def wait(self) -> None:
        """Block until an fsync covering the events has succeeded (returns at once when
        there is nothing to wait for); raises the fsync's error if it failed."""
        if self._gate is not None:
            self._gate.wait()
