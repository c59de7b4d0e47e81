"""The writer: durable appends to a data dir's log, with rotation, seals and group commit."""

from __future__ import annotations

import logging
import mmap
import os
import threading
from pathlib import Path
from typing import Any, Iterable

import xxhash

from ..errors import (
    SegmentError,
    SequenceViolation,
    TornTail,
    WalCorruption,
    WalWriterError,
    WriterClosed,
    WriterPoisoned,
)
from ..metrics import FsyncTimer, writer_metrics
from . import notify
from ._group import PendingWrite, _Gate, _GroupCommit
from .catalog import (
    Catalog,
    check_regular,
    Layout,
    LayoutName,
    Manifest,
    Seal,
    Segment,
    require_data_dir,
    segment_name,
    wal_dir_of,
    write_seal,
)
from .checkpoint import Checkpoint, write_on_close
from .files import OS, Files, write_all
from .format import (
    DEFAULT_MAX_PAYLOAD,
    DEFAULT_SEGMENT_BYTES,
    HEADER_LEN,
    LOCK_NAME,
    RUST_WAL_NAME,
)
from .options import Durability, DurabilityName, RepairPolicy, RepairPolicyName
from .records import encode_events, encode_next
from .validate import validate_fd

log = logging.getLogger("actionqueue.wal")

__all__ = ["RepairPolicy", "RepairPolicyName", "Durability", "DurabilityName", "WalWriter", "PendingWrite"]

_CREATE = os.O_RDWR | os.O_CREAT
_CREATE_NEW = os.O_RDWR | os.O_CREAT | os.O_EXCL


class WalWriter:
    """Appends events to the log of a data dir, durably.

    ``WalWriter(data_dir)`` opens (or creates) the log under ``<data_dir>/wal/``, takes an
    exclusive lock on it, proves the set of its files complete (:class:`~.catalog.Catalog`),
    validates the file it will append to, and positions itself at the end. An existing log
    keeps its layout (Rust's single file or segments); a new one gets ``layout`` (segments
    by default, rotated at ``segment_bytes``).

    Sequences must increase strictly (gaps are allowed); a violation raises
    :class:`SequenceViolation` and writes nothing, and so does an event whose payload is
    above ``max_payload`` (:class:`PayloadTooLarge`: no reader would accept it). A failed
    write is undone by truncating back to the previous length; if that fails too, or an
    fsync fails (never retried: the kernel may have dropped the dirty pages), the writer is
    poisoned and refuses every later call with :class:`WriterPoisoned`. Use it as a
    context manager: leaving the block syncs and closes it. ``fs`` is the file-system seam
    (:mod:`.files`), the OS's by default.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        repair_policy: RepairPolicy | RepairPolicyName = RepairPolicy.STRICT,
        durability: Durability | DurabilityName = Durability.FSYNC,
        layout: Layout | LayoutName = Layout.SEGMENTED,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        fs: Files = OS,
    ):
        self.data_dir = Path(data_dir)
        self.repair_policy = RepairPolicy(repair_policy)
        self.durability = Durability(durability)
        if not 0 < max_payload <= DEFAULT_MAX_PAYLOAD:
            # the cap is not stored in the log: a record above the readers' default (Rust's
            # too) would be taken for damage by every other reader, and cut by a repair
            raise ValueError(f"max_payload must be in 1..{DEFAULT_MAX_PAYLOAD} (what every reader accepts), "
                             f"not {max_payload}")
        if segment_bytes <= 0:
            raise ValueError(f"segment_bytes must be positive, not {segment_bytes}")
        self.max_payload = max_payload
        self.segment_bytes = segment_bytes
        self.fs = fs
        require_data_dir(self.data_dir, fs, new=True)  # before anything is written into it
        self.wal_dir = wal_dir_of(self.data_dir)
        self._group = self.durability is Durability.GROUP
        self._fsync_each = self.durability is Durability.FSYNC
        self.repaired: TornTail | None = None
        self._write_lock = threading.Lock()
        self._fsync_lock = threading.Lock()  # held while a file descriptor is being fsynced
        self._group_commit: _GroupCommit | None = None
        self._closed = False
        self._poisoned: BaseException | None = None
        self._fd = -1
        self._locks: list[int] = []
        self.path: Path | None = None
        self._active_first: int | None = None
        self._active_prev: int | None = None  # the sequence before the active file
        self._sequence = 0
        self._size = 0  # bytes in the active file
        self._active_records = 0
        self._hasher = xxhash.xxh3_128()  # of the active file's bytes, for its seal
        # metrics (actionqueue.metrics): writes; bytes and records of the files rotated away
        # from (less what the first held at opening), under generations (odd while they move)
        self._appends = self._rotations = 0
        self._fsyncs = FsyncTimer()
        self._wake_key = notify.key_of(self.wal_dir)  # followers in this process wake on writes
        try:
            if not fs.exists(self.wal_dir):
                fs.mkdir(self.wal_dir)
                fs.fsync_dir(self.data_dir)
            self._locks = fs.lock(self.wal_dir, LOCK_NAME)
            self._catalog = Catalog.load(self.data_dir, fs)
            for path in self._catalog.leftovers:  # of atomic writes a crash cut short (all made under this lock)
                fs.unlink(path)  # (not synced: should a crash bring one back, the next writer removes it)
            self.layout = self._catalog.layout or Layout(layout)
            self._segmented = self.layout is Layout.SEGMENTED
            if self.layout is Layout.RUST:
                self._open_rust()
            else:
                self._open_segments()
            self._folded = (-self._size, -self._active_records)
            if self._group:
                self._group_commit = _GroupCommit(self)
        except BaseException:
            self._release()
            raise

    # -- opening ----------------------------------------------------------------------
    def _open_rust(self) -> None:
        self._open_file(self.wal_dir / RUST_WAL_NAME, None, None)
        if self._catalog.manifest is None:
            Manifest(Layout.RUST).write(self.wal_dir, self.fs)

    def _open_file(self, path: Path, prev_sequence: int | None, first_sequence: int | None) -> None:
        """Open ``path`` for appending after validating it (repairing a torn tail if allowed)."""
        fs = self.fs
        created = not fs.exists(path)
        fd = fs.open(path, _CREATE)  # O_RDWR: a FIFO does not block it
        check_regular(fs, fd, path)  # never append to (or read) a device, FIFO or socket
        try:
            if created:
                fs.fsync_dir(path.parent)
            checkpoint = Checkpoint.read(self.wal_dir, path, fs)
            if checkpoint is not None:
                checkpoint.refuse_if_cut(path, fs.fsize(fd))
            report = validate_fd(fd, path, self.max_payload, prev_sequence, checkpoint, fs)
            if report.corruption is not None:
                self._repair_tail(fd, path, report.corruption)
            if first_sequence is not None and report.first_sequence not in (None, first_sequence):
                raise SegmentError(path, 0, "name_mismatch",
                                   f"segment named for sequence {first_sequence} starts at {report.first_sequence}")
            if report.end_offset:
                with mmap.mmap(fd, report.end_offset, access=mmap.ACCESS_READ) as mapped:
                    self._hasher.update(mapped)
        except BaseException:
            fs.close(fd)
            raise
        self._fd, self.path = fd, path
        self._active_prev, self._active_first = prev_sequence, first_sequence
        self._size, self._active_records = report.end_offset, report.records
        if report.last_sequence is not None:
            self._sequence = report.last_sequence
        fs.lseek(fd, self._size, os.SEEK_SET)

    def _repair_tail(self, fd: int, path: Path, corruption: WalCorruption) -> None:
        if not (isinstance(corruption, TornTail) and self.repair_policy is RepairPolicy.TRUNCATE_PARTIAL):
            raise corruption
        log.warning("repairing %s: cutting a torn tail of %d bytes at offset %d (%s)",
                    path, corruption.bytes_to_cut, corruption.offset, corruption.reason)
        # the active file is never mapped by a reader (only sealed ones are), so it may
        # be cut in place
        self.fs.ftruncate(fd, corruption.offset)
        self.fs.fsync(fd)
        self.repaired = corruption

    def _open_segments(self) -> None:
        catalog = self._catalog
        for segment in catalog.segments:
            if segment.seal is not None and self.fs.size(segment.path) != segment.seal.length:
                size = self.fs.size(segment.path)
                raise SegmentError(segment.path, min(size, segment.seal.length),
                                   "incomplete_payload" if size < segment.seal.length else "seal_mismatch",
                                   f"sealed segment is {size} bytes, its seal says {segment.seal.length}")
        self._sequence = catalog.last_sealed_sequence or catalog.base_sequence
        active = catalog.active
        if active is not None:
            # the sequence before it (None for nothing: a first record can be anything above 0)
            prev = catalog.last_sealed_sequence if catalog.last_sealed_sequence is not None else active.prev
            self._open_file(active.path, prev or None, active.first_sequence)
        if catalog.manifest_stale:
            self._settle_catalog()

    def _settle_catalog(self) -> None:
        """Write the MANIFEST the catalog found stale (a log from before MANIFESTs, a
        segment a crash left unlisted) and delete the strays of an interrupted removal."""
        self._catalog.manifest_for(base=self._catalog.base_sequence).write(self.wal_dir, self.fs)
        for stray in self._catalog.strays:
            for victim in (stray, Segment(stray, 0).seal_path):
                try:
                    self.fs.unlink(victim)
                except FileNotFoundError:
                    pass
        self.fs.fsync_dir(self.wal_dir)
        self._catalog = Catalog.load(self.data_dir, self.fs)

    # -- state ------------------------------------------------------------------------
    @property
    def current_sequence(self) -> int:
        """The sequence of the last record in the log (0 for an empty log)."""
        return self._sequence

    @property
    def base_sequence(self) -> int:
        """The last sequence the log does not hold (0: it holds everything from the start;
        raised by :meth:`remove_segments_before`)."""
        return self._catalog.base_sequence

    @property
    def size(self) -> int:
        """Bytes in the file being appended to."""
        return self._size

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def poisoned(self) -> BaseException | None:
        """The failure that poisoned the writer (every later call raises), or None."""
        return self._poisoned

    def segments(self) -> list[Segment]:
        """The segment files, oldest first (empty for the Rust layout)."""
        if self.layout is not Layout.SEGMENTED:
            return []
        return list(Catalog.load(self.data_dir, self.fs).segments)

    def metrics(self) -> dict[str, Any]:
        """Counters and timings (appends, bytes, fsyncs and their latency, poisoning): a new
        dict, safe to read from any thread; keys in :mod:`actionqueue.metrics`."""
        return writer_metrics(self)

    def _check_open(self) -> None:
        if self._closed:
            raise WriterClosed("WAL writer is closed")
        if self._poisoned is not None:
            raise WriterPoisoned(f"WAL writer is poisoned by an earlier failure: {self._poisoned}")

    # -- appending --------------------------------------------------------------------
    def append(self, event) -> None:
        """Append one event; returns once it is as durable as :attr:`durability` says."""
        with self._write_lock:
            self._check_open()
            data, seq = encode_events((event,), self._sequence, self.max_payload)
            gate = self._write_locked(data, seq, seq, 1)
        if gate is not None:
            gate.wait()

    def append_next(self, event) -> int:
        """Append an event (a ``TaskCreated``, ``RunStateChanged``, ...) under the next
        sequence, assigned by the writer, and return that sequence.

        With group commit this is how concurrent producers append: the sequence is taken
        and written under the writer's lock, and the wait for the fsync happens outside it,
        so threads share fsyncs instead of racing for sequence numbers.
        """
        with self._write_lock:
            self._check_open()
            seq = self._sequence + 1
            data = encode_next(seq, event, self.max_payload)
            gate = self._write_locked(data, seq, seq, 1)
        if gate is not None:
            gate.wait()
        return seq

    def append_many(self, events: Iterable) -> None:
        """Append events in order as one write; all or nothing."""
        self.write(events).wait()

    def write(self, events: Iterable) -> PendingWrite:
        """Write events in order as one write (all or nothing), as :meth:`append_many`,
        but return before waiting for durability: :meth:`PendingWrite.wait` on the result
        returns once the events are as durable as :attr:`durability` says (at once for
        FSYNC, which fsyncs before returning, and for NONE).

        For callers that must hold a lock of their own while they write (to keep writing
        and applying in one order) but not while an fsync runs, so that their writes share
        group commits: write under the lock, wait outside it. Until ``wait`` returns the
        events are not acknowledged; if their fsync fails, ``wait`` raises and the writer
        is poisoned.
        """
        events = list(events)
        if not events:
            return PendingWrite(None)
        with self._write_lock:
            self._check_open()
            data, last = encode_events(events, self._sequence, self.max_payload)
            gate = self._write_locked(data, events[0].sequence, last, len(events))
        return PendingWrite(gate)

    def write_encoded(self, data: bytes, first: int, last: int, count: int) -> PendingWrite:
        """Write ``count`` records that :mod:`actionqueue.codec` encoded (``encode`` or
        ``encode_batch`` output, sequences ``first`` .. ``last`` ascending, their payloads
        within :func:`~actionqueue.log.records.check_payloads`) as one write, as :meth:`write` does with events.
        For a caller that encodes each event as it comes and writes many at once
        (:mod:`actionqueue.aio` writes what its coroutines appended in one loop pass): the
        caller vouches for the bytes; the sequences must continue the log."""
        if count < 1 or len(data) < count * HEADER_LEN or not first <= last:
            raise ValueError(f"write_encoded: {count} records, {len(data)} bytes, sequences {first}..{last}")
        with self._write_lock:
            self._check_open()
            if first <= self._sequence:
                raise SequenceViolation(self._sequence + 1, first)
            return PendingWrite(self._write_locked(data, first, last, count))

    def _write_locked(self, data: bytes, first: int, last: int, count: int) -> "_Gate | None":
        """Write encoded records (write lock held). With group commit, return the gate to
        wait at (outside the lock) until an fsync covering them has succeeded."""
        if self._segmented:
            if self._fd < 0 or (self._active_records and self._size + len(data) > self.segment_bytes):
                self._rotate(first)
            elif self._size == 0 and self._active_first != first:
                # an empty segment (its first write failed, or a crash tore it and a
                # repair emptied it) gives way to one named for the sequence that starts it
                self._replace_empty_active(first)
        start = self._size
        try:
            written = self.fs.write(self._fd, data)
            if written != len(data):  # a short write: continue where it stopped
                write_all(self.fs, self._fd, memoryview(data)[written:])
        except BaseException as exc:
            # also KeyboardInterrupt & co. between two partial writes, or right after the
            # write: never leave a fragment, nor a record the state does not count
            self._undo_write(start, exc)
            if isinstance(exc, OSError):
                raise WalWriterError(f"write to {self.path} failed: {exc}") from exc
            raise
        self._hasher.update(data)
        self._size = start + len(data)
        self._sequence = last
        self._active_records += count
        self._appends += 1
        notify.wake(self._wake_key)
        if self._fsync_each:
            self._fsync_or_poison()
        elif self._group_commit is not None:
            return self._group_commit.gate_for_written()
        return None

    def _replace_empty_active(self, first_sequence: int) -> None:
        """Drop the empty active segment from the catalog and the folder, then start one
        for ``first_sequence``. Unlisting first: a crash leaves an empty newest file the
        next writer adopts and drops the same way."""
        old = self.path
        assert old is not None and self._size == 0
        try:
            remaining = [s for s in self._catalog.segments if s.path != old]
            self._catalog.manifest_for(remaining).write(self.wal_dir, self.fs)
            self.fs.close(self._fd)
            self._fd = -1
            self.fs.unlink(old)
            self.fs.fsync_dir(self.wal_dir)
        except OSError as exc:
            self._poisoned = exc
            raise WriterPoisoned(f"replacing the empty segment {old} failed: {exc}") from exc
        self._catalog = Catalog.load(self.data_dir, self.fs)
        self._rotate(first_sequence)

    def _rotate(self, first_sequence: int) -> None:
        """Seal the active segment (if any) and start one for ``first_sequence``.

        Called with the write lock held; waits for a group-commit fsync in progress and
        keeps the next one out while the file descriptor changes. The seal's fsync makes
        the old segment durable; group-commit waiters are released by the next fsync.
        The new file is created (and its name made durable) before the MANIFEST lists it,
        so a crash between the two leaves an empty file the catalog adopts.
        """
        fs = self.fs
        self._fsync_lock.acquire()
        try:
            sealed = self._seal_active() if self._fd >= 0 else None
            path = self.wal_dir / segment_name(first_sequence)
            fd = fs.open(path, _CREATE_NEW)
            self._rotations += 1
            self._folded = (self._folded[0] + self._size, self._folded[1] + self._active_records)
            self._fd, self.path, self._size, self._active_records = fd, path, 0, 0
            self._rotations += 1
            self._hasher = xxhash.xxh3_128()
            self._active_first = first_sequence
            self._active_prev = self._sequence or None  # the last sequence before it
            fs.fsync_dir(self.wal_dir)
            kept = [s for s in self._catalog.segments if s.path != (sealed.path if sealed else None)]
            kept += [sealed] if sealed is not None else []
            kept.append(Segment(path, first_sequence, None, self._sequence))
            base = self._catalog.base_sequence if self._catalog.segments else self._sequence
            catalog = Catalog(self.wal_dir, Layout.SEGMENTED, tuple(kept), base, None)
            catalog.manifest_for().write(self.wal_dir, fs)
            self._catalog = Catalog(self.wal_dir, Layout.SEGMENTED, tuple(kept), base, catalog.manifest_for())
        except BaseException as exc:
            self._poisoned = exc
            log.error("cannot rotate the log in %s (%s): writer poisoned", self.wal_dir, exc)
            if isinstance(exc, (OSError, WalCorruption)):
                raise WriterPoisoned(f"rotating the log in {self.wal_dir} failed: {exc}") from exc
            raise
        finally:
            self._fsync_lock.release()

    def _seal_active(self) -> Segment:
        """fsync the active segment, seal it from what the writer knows of it (no re-read:
        the digest was kept as it was written), close it; the sealed segment."""
        fs, path = self.fs, self.path
        assert path is not None and self._active_first is not None
        self._fsyncs.fsync(fs, self._fd)
        # both sides of the disk: the file is exactly what this writer wrote
        assert fs.fsize(self._fd) == self._size, f"{path} is not the {self._size} bytes written"
        seal = Seal(self._active_first, self._sequence, self._active_records, self._size,
                    self._hasher.hexdigest(), self._active_prev or 0)  # fmt: skip
        fs.close(self._fd)
        self._fd = -1
        segment = Segment(path, seal.first_sequence, seal, self._active_prev or 0)
        write_seal(segment, seal, fs)
        return segment

    def _undo_write(self, start: int, exc: BaseException) -> None:
        try:
            self.fs.ftruncate(self._fd, start)
            self.fs.lseek(self._fd, start, os.SEEK_SET)
        except OSError as undo_exc:
            self._poisoned = undo_exc
            log.error("cannot undo a failed write to %s (%s): writer poisoned", self.path, undo_exc)

    def _fsync_or_poison(self, fd: int | None = None) -> None:
        try:
            self._fsyncs.fsync(self.fs, self._fd if fd is None else fd)
        except BaseException as exc:  # an interrupted fsync proves nothing either
            self._poisoned = exc
            log.error("fsync of %s failed (%s): writer poisoned", self.path, exc)
            if isinstance(exc, OSError):
                raise WriterPoisoned(f"fsync of {self.path} failed: {exc}") from exc
            raise

    def sync_written(self) -> int:
        """fsync everything written so far and return the last sequence that fsync made
        durable; the seam for a caller that schedules fsyncs itself (:mod:`actionqueue.aio`
        runs it in a worker thread on a writer opened with :attr:`Durability.NONE`).

        Unlike :meth:`sync`, the write lock is held only to note how far the log goes
        (the file and the last sequence written), not during the fsync: writes go on
        meanwhile and are left for the next call. A failure poisons the writer, as every
        failed fsync does (:class:`WriterPoisoned`)."""
        with self._write_lock:
            self._check_open()
            fd, covered = self._fd, self._sequence
            # taken before the write lock is let go: a rotation (which closes the file)
            # or close() waits for this fsync
            self._fsync_lock.acquire()
        try:
            if fd >= 0:
                self._fsync_or_poison(fd)
        finally:
            self._fsync_lock.release()
        return covered

    def sync(self) -> None:
        """Make everything appended so far durable (fsync)."""
        with self._write_lock:
            self._check_open()
            if self._fd >= 0:
                with self._fsync_lock:
                    self._fsync_or_poison()

    #: An alias of :meth:`sync`, on purpose: the file-object spelling, so a writer can
    #: stand where code expects ``flush()``.
    flush = sync

    # -- segments ---------------------------------------------------------------------
    def remove_segments_before(self, sequence: int) -> list[Path]:
        """Delete the sealed segments whose every record is below ``sequence`` (for example
        the sequence of a snapshot that covers them). Never touches the active segment.

        The MANIFEST is rewritten first, with the log now starting after the last removed
        sequence (:attr:`base_sequence`): from then on recovery requires a snapshot at or
        beyond it. Returns the removed files."""
        with self._write_lock:
            self._check_open()
            catalog = Catalog.load(self.data_dir, self.fs)
            gone = []
            for segment in catalog.segments:
                if segment.seal is None or segment.path == self.path or segment.seal.last_sequence >= sequence:
                    break
                gone.append(segment)
            if not gone:
                return []
            kept = catalog.segments[len(gone):]
            base = gone[-1].seal.last_sequence  # type: ignore[union-attr]
            catalog.manifest_for(kept, base).write(self.wal_dir, self.fs)
            for segment in gone:
                self.fs.unlink(segment.path)
                self.fs.unlink(segment.seal_path)
            self.fs.fsync_dir(self.wal_dir)
            self._catalog = Catalog.load(self.data_dir, self.fs)
        return [s.path for s in gone]

    # -- closing ----------------------------------------------------------------------
    def _release(self) -> None:
        if self._fd >= 0:
            self.fs.close(self._fd)
            self._fd = -1
        self.fs.unlock(self._locks)

    def close(self) -> None:
        """Sync and close. Closing twice is allowed; any other call after it raises
        :class:`WriterClosed`. A failed final fsync raises :class:`WriterPoisoned`."""
        with self._write_lock:  # from here on appends see a closed writer
            if self._closed:
                return
            self._closed = True
            group, self._group_commit = self._group_commit, None
        if group is not None:
            group.stop()  # its last round runs while the descriptor is still open
        error: BaseException | None = None
        with self._write_lock, self._fsync_lock:
            try:
                if self._poisoned is None and self._fd >= 0:
                    try:
                        self._fsyncs.fsync(self.fs, self._fd)
                    except BaseException as exc:  # noqa: BLE001 - re-raised below
                        self._poisoned = error = exc
                    else:
                        self._write_checkpoint()
            finally:
                self._release()
                if group is not None:  # whoever still waits: durable now, or not
                    group.gate.open(self._poisoned)
        if error is not None:
            if isinstance(error, OSError):
                raise WriterPoisoned(f"fsync of {self.path} on close failed: {error}") from error
            raise error

    def _write_checkpoint(self) -> None:
        """On a clean close (synced, lock still held): :func:`.checkpoint.write_on_close`."""
        write_on_close(self)

    def _advance_to(self, sequence: int) -> None:
        """Recovery: the log is empty but a snapshot covers up to ``sequence``: the next
        appended sequence must be above it (and the log will start after it)."""
        with self._write_lock:
            self._sequence = max(self._sequence, sequence)

    def __del__(self) -> None:
        # Like Rust's Drop: a writer that was never closed syncs and releases its lock.
        if not getattr(self, "_closed", True):
            try:
                self.close()
            except Exception as exc:  # noqa: BLE001 - nothing to raise to at collection time
                log.error("WAL writer %s collected without close(); its final sync failed: %s",
                          getattr(self, "path", None), exc)

    def __enter__(self) -> "WalWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "poisoned" if self._poisoned else "open"
        return (
            f"<WalWriter {self.wal_dir} {self.layout.value} {state} sequence={self._sequence} "
            f"durability={self.durability.value}>"
        )

