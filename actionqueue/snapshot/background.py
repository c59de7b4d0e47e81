"""Snapshots taken in the background, by a child process, at most one at a time.

A :class:`Snapshotter` belongs to a store (``aq.open(..., snapshot_every=N)``). The command
path only tells it the sequence it has made durable (:meth:`Snapshotter.note`, a few
integer comparisons); once ``every`` events have accumulated since the last snapshot, its
thread starts ``python -m actionqueue.snapshot.worker`` for that sequence and waits for it
(the wait holds no lock and no interpreter lock). The child reads the files, not this
process's memory (see :mod:`.worker`), so commands keep their latency while a snapshot of
any size is built and written.

Failures are logged and kept on the snapshotter (:attr:`Snapshotter.status`), never raised
into a command; a failed or killed child leaves at most a ``snapshot.bin.tmp``, which the
next snapshot replaces (the last good ``snapshot.bin`` is never touched by a failure).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import snapshot as _snapshot
from ..errors import SnapshotError

__all__ = ["SnapshotInfo", "SnapshotStatus", "Snapshotter"]

log = logging.getLogger("actionqueue.snapshot")

#: A child that runs longer than this is killed and its snapshot counted as failed.
WORKER_TIMEOUT_S = 3600.0
#: The child's niceness above this process's (POSIX): on a busy machine the commands win.
WORKER_NICE = 10
#: How long :meth:`Snapshotter.close` waits for a snapshot in flight before killing it.
CLOSE_WAIT_S = 120.0


@dataclass(frozen=True)
class SnapshotInfo:
    """A snapshot the background writer took."""

    sequence: int
    bytes: int
    seconds: float  # wall time of the child, start to exit
    finished_at: float  # time.time() when it was durable
    detail: dict[str, Any]


@dataclass(frozen=True)
class SnapshotStatus:
    """What the background snapshots have done so far."""

    every: int | None
    in_flight: int | None  # the sequence being snapshotted, or None
    last: SnapshotInfo | None
    last_error: str | None
    taken: int
    failed: int


def _package_root() -> str:
    return str(Path(__file__).resolve().parents[2])


class Snapshotter:
    """Background snapshots of ``data_dir`` (whose log ``writer`` appends), every ``every``
    durable events when ``every`` is set, and on request."""

    def __init__(self, data_dir: str | os.PathLike, writer: Any, every: int | None = None,
                 last_sequence: int = 0, retain: str | None = None, archive: Any = None) -> None:
        from ..log.retention import POLICIES

        if every is not None and (type(every) is not int or every < 1):
            raise ValueError(f"snapshot_every must be a positive int or None, not {every!r}")
        if retain is not None and retain not in POLICIES:
            raise ValueError(f"retain must be one of {POLICIES} or None, not {retain!r}")
        if (retain == "archive") != (archive is not None):
            raise ValueError("retain='archive' takes an archive (and an archive takes retain='archive')")
        self.data_dir = Path(data_dir)
        self.every = every
        #: after each snapshot, the segments it covers leave the log ("delete"), into
        #: ``archive`` ("archive"); None keeps them
        self.retain = retain
        self.archive = archive
        self.retention_error: str | None = None
        self.removed_segments = 0
        self._writer = writer
        self._cond = threading.Condition()
        self._base = last_sequence  # sequence of the newest snapshot (or of the last request)
        self._wanted: tuple[int, int | None] | None = None
        self._running: int | None = None
        self._last: SnapshotInfo | None = None
        self._last_error: str | None = None
        self._taken = 0
        self._failed = 0
        self._done = 0  # completed runs (success or failure), for waiters
        self._last_error_seq: int | None = None
        self._closed = False
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None

    # -- the command path ----------------------------------------------------------------
    def note(self, sequence: int) -> None:
        """``sequence`` is durable: start a snapshot when ``every`` events have gathered
        since the last one and none is in flight. Cheap; never raises."""
        every = self.every
        if every is None or sequence - self._base < every or self._running is not None or self._wanted:
            return
        with self._cond:
            if self._running is None and not self._wanted and sequence - self._base >= every and not self._closed:
                self._base = sequence
                self._request(sequence, None)

    # -- on request ----------------------------------------------------------------------
    #: Projections of up to this many tasks and runs are snapshotted by :meth:`take_live`
    #: in this process (milliseconds); larger ones by the child process, while commands go on.
    INLINE_RECORDS = 20_000

    def take_live(self, reducer: Any, timestamp: int | None = None) -> Any:
        """Snapshot ``reducer``, the live projection of this data dir, and return the
        snapshot: the one way a snapshot is taken on request (``Store.snapshot`` and
        ``MutationAuthority.snapshot`` both come here).

        The log is synced first, under the projection's lock, so the snapshot never covers
        an event the log could still lose (a poisoned writer raises and writes nothing).
        A small projection is built under that lock (commands wait milliseconds) and
        written after it; a large one is built from the files by the child process
        (:meth:`take`) while commands go on. One snapshot at a time: this waits for one in
        flight, and background snapshots wait for it. Retention applies as after every
        snapshot."""
        stamp = int(time.time()) if timestamp is None else timestamp
        through: int | None = None  # set when a child process builds it
        with reducer._lock:
            if reducer.task_count + reducer.run_count > self.INLINE_RECORDS:
                self._writer.sync()
                through = reducer.latest_sequence
        if through is not None:
            self.take(through, stamp)
            return _snapshot.read_written(self.data_dir)
        with self._cond:
            if self._closed:
                raise SnapshotError("the snapshotter is closed")
            while self._running is not None or self._wanted:  # one at a time
                self._cond.wait()
            self._running = reducer.latest_sequence
        started = time.perf_counter()
        try:
            snap = _snapshot.take_snapshot(self.data_dir, reducer, stamp, writer=self._writer)
        finally:
            with self._cond:
                self._running = None
                self._cond.notify_all()
        sequence = snap["metadata"]["wal_sequence"]
        if self.retain is not None:
            self._retain(sequence)
        size = os.path.getsize(_snapshot.snapshot_path(self.data_dir))
        info = SnapshotInfo(sequence, size, time.perf_counter() - started, time.time(), {"inline": True})
        with self._cond:
            self._last, self._taken, self._done = info, self._taken + 1, self._done + 1
            self._base = max(self._base, sequence)
            self._cond.notify_all()
        return snap

    def take(self, through: int | None = None, timestamp: int | None = None,
             timeout: float | None = WORKER_TIMEOUT_S) -> SnapshotInfo:
        """Snapshot through ``through`` (default: everything appended, synced first) and
        wait for it; raises :class:`SnapshotError` when it fails."""
        if through is None:
            self._writer.sync()
            through = int(self._writer.current_sequence)  # the writer is duck-typed here
        with self._cond:
            if self._closed:
                raise SnapshotError("the snapshotter is closed")
            while self._running is not None or self._wanted:  # one at a time
                self._cond.wait()
            done = self._done
            self._request(through, timestamp)
            if not self._cond.wait_for(lambda: self._done > done, timeout):
                raise SnapshotError(f"the snapshot through {through} did not finish in {timeout} s")
            last = self._last
            if last is None or last.sequence != through or self._last_error_seq == through:
                raise SnapshotError(f"the snapshot through {through} failed: {self._last_error}")
            return last

    def _request(self, through: int, timestamp: int | None) -> None:
        self._wanted = (through, timestamp)
        self._last_error_seq = None
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=f"snapshots {self.data_dir}", daemon=True)
            self._thread.start()
        self._cond.notify_all()

    @property
    def status(self) -> SnapshotStatus:
        return SnapshotStatus(self.every, self._running, self._last, self._last_error, self._taken, self._failed)

    # -- the thread ------------------------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._wanted is not None or self._closed)
                if self._wanted is None:
                    return
                through, timestamp = self._wanted
                self._wanted = None
                self._running = through
            try:
                info = self._run(through, int(time.time()) if timestamp is None else timestamp)
                error = None
            except Exception as exc:  # noqa: BLE001 - reported on the status and logged
                info, error = None, f"{type(exc).__name__}: {exc}"
                log.error("background snapshot of %s through %d failed: %s", self.data_dir, through, error)
            if info is not None and self.retain is not None:
                self._retain(info.sequence)  # before the next snapshot may start
            with self._cond:
                self._running = None
                self._done += 1
                if info is not None:
                    self._last, self._taken = info, self._taken + 1
                    self._base = max(self._base, info.sequence)
                else:
                    self._last_error, self._failed, self._last_error_seq = error, self._failed + 1, through
                self._cond.notify_all()

    def _retain(self, through: int) -> None:
        """Retention after the snapshot at ``through`` (durable: the child synced it)."""
        from ..log.retention import compact

        try:
            self.removed_segments += len(compact(self._writer, through, self.archive))
            self.retention_error = None
        except Exception as exc:  # noqa: BLE001 - reported on the snapshotter and logged
            self.retention_error = f"{type(exc).__name__}: {exc}"
            log.error("retention after the snapshot of %s at %d failed: %s", self.data_dir, through,
                      self.retention_error)

    def _run(self, through: int, timestamp: int) -> SnapshotInfo:
        self._writer.sync()  # never snapshot beyond the durable log (NONE durability)
        # the child runs at a lower CPU priority than the commands it must not slow down
        code = ("import os, sys; hasattr(os, 'nice') and os.nice(WORKER_NICE); sys.path.insert(0, sys.argv.pop(1)); "
                "from actionqueue.snapshot.worker import main; sys.exit(main())").replace("WORKER_NICE", str(WORKER_NICE))
        cmd = [sys.executable, "-c", code, _package_root(), str(self.data_dir), str(through), str(timestamp)]
        started = time.perf_counter()
        with self._cond:
            self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = self._proc.communicate(timeout=WORKER_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.communicate()
            raise SnapshotError(f"the snapshot worker ran longer than {WORKER_TIMEOUT_S} s") from None
        finally:
            proc, self._proc = self._proc, None
        lines = out.strip().splitlines()
        try:
            result = json.loads(lines[-1])
        except (IndexError, ValueError):
            raise SnapshotError(f"the snapshot worker exited {proc.returncode}: {err.strip()[-500:]}") from None
        if not result.get("ok"):
            raise SnapshotError(f"{result.get('type')}: {result.get('error')}")
        return SnapshotInfo(through, result.get("bytes", 0), time.perf_counter() - started, time.time(), result)

    def close(self, timeout: float = CLOSE_WAIT_S) -> None:
        """Let the snapshot in flight (or requested) finish, killing it after ``timeout``
        s (the last good snapshot stays), then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            proc = self._proc
            if thread.is_alive() and proc is not None:
                log.warning("killing the snapshot worker of %s after %.0f s", self.data_dir, timeout)
                proc.kill()
                thread.join()
