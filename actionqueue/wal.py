"""The write-ahead log: durable appends, validation and repair of torn tails, reading back.

Policy lives here; the record walking is native (``_wal.pyx``) or its pure-Python twin.
A data dir holds the log under ``wal/``; this module reads and writes the layout of the
Rust original (one file, ``wal/actionqueue.wal``) and the segmented layout (see
:mod:`actionqueue.segments`).

Every read path classifies records the same way (``_wal_common``). A damaged or
incomplete *last* record is a torn tail: :attr:`RepairPolicy.TRUNCATE_PARTIAL` cuts it
off. Damage followed by valid records is never cut implicitly (decisions.md #6): it is
reported as :class:`MidLogCorruption` under every policy, and only :func:`repair` with
``allow_mid_log=True`` cuts there, keeping a backup of what it removed.
"""

from __future__ import annotations

import enum
import logging
import mmap
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from . import _backend
from ._wal_common import DEFAULT_MAX_PAYLOAD, R_INCOMPLETE_HEADER, R_INCOMPLETE_PAYLOAD, REASON_NAMES
from .errors import ActionQueueError

if _backend.NATIVE:
    from . import _codec as _codec_impl
    from . import _wal as _walker
else:
    from . import _codec_py as _codec_impl  # type: ignore[no-redef]
    from . import _wal_py as _walker  # type: ignore[no-redef]

try:  # POSIX advisory locks; Windows falls back to msvcrt below
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("actionqueue.wal")

__all__ = [
    "RepairPolicy",
    "Durability",
    "WalCorruption",
    "TornTail",
    "MidLogCorruption",
    "WalWriterError",
    "SequenceViolation",
    "WriterClosed",
    "WriterPoisoned",
    "WalLocked",
    "ValidationReport",
    "validate_buffer",
    "validate_file",
    "WalWriter",
    "WalReader",
    "RUST_WAL_NAME",
]

#: The file name of the Rust original's log inside ``<data_dir>/wal/``.
RUST_WAL_NAME = "actionqueue.wal"

# The Rust names of the corruption reasons (WalCorruptionReasonCode).
_RUST_KINDS = {
    "incomplete_header": "IncompleteHeader",
    "incomplete_payload": "IncompletePayload",
    "unsupported_version": "UnsupportedVersion",
    "decode_failure": "DecodeFailure",
    "crc_mismatch": "CrcMismatch",
    "sequence_not_increasing": "SequenceNotIncreasing",
}


class RepairPolicy(enum.Enum):
    """What opening a writer does about a torn tail."""

    #: Refuse to open (the default, as in Rust).
    STRICT = "strict"
    #: Cut a torn tail (an incomplete or damaged last record) off, then open.
    TRUNCATE_PARTIAL = "truncate_partial"


class Durability(enum.Enum):
    """When an append returns, relative to its bytes reaching stable storage."""

    #: fsync after every append (the Rust authority's ``Immediate`` behaviour).
    FSYNC = "fsync"
    #: group commit: concurrent appends wait together for one fsync; each returns only
    #: after an fsync that covers its bytes has succeeded.
    GROUP = "group"
    #: no fsync (the OS writes back when it likes). A crash of the machine may lose any
    #: number of appends that had returned. Call :meth:`WalWriter.sync` to make them durable.
    NONE = "none"


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------
class WalCorruption(ActionQueueError):
    """A record the log cannot accept.

    Attributes:
        path: the file.
        offset: byte offset of the start of the bad record.
        reason: the Rust reason name (``incomplete_header``, ``incomplete_payload``,
            ``unsupported_version``, ``decode_failure``, ``crc_mismatch``) or ours,
            ``sequence_not_increasing``.
        detail: more about a decode failure or a sequence problem, or None.
        records_before: how many valid records precede it.
    """

    def __init__(self, path, offset: int, reason: str, detail: str | None = None, records_before: int = 0):
        self.path = None if path is None else Path(path)
        self.offset = offset
        self.reason = reason
        self.detail = detail
        self.records_before = records_before
        super().__init__(str(self))

    @property
    def kind(self) -> str:
        """The Rust ``WalCorruptionReasonCode`` variant name of :attr:`reason`."""
        return _RUST_KINDS[self.reason]

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path is not None else ""
        more = f": {self.detail}" if self.detail else ""
        return f"{where}WAL corruption at offset {self.offset} ({self.reason}){more}"

    def __reduce__(self):
        return (_rebuild_corruption, (type(self), dict(self.__dict__)))


def _rebuild_corruption(cls, state):
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    Exception.__init__(obj, str(obj))
    return obj


class TornTail(WalCorruption):
    """The last record is incomplete or damaged and nothing valid follows it: the shape a
    crash in the middle of an append leaves. ``TRUNCATE_PARTIAL`` repairs it."""

    @property
    def bytes_to_cut(self) -> int:
        return self.file_length - self.offset

    file_length: int = 0


class MidLogCorruption(WalCorruption):
    """A bad record followed by valid ones, or a sequence that does not increase.

    Never repaired implicitly: cutting here would delete valid records.

    Attributes:
        next_valid_offset: where the next valid record starts (None for a sequence error).
        valid_records_after: how many valid records follow, walking from there.
    """

    next_valid_offset: int | None = None
    valid_records_after: int = 0

    def __str__(self) -> str:
        base = super().__str__()
        if self.next_valid_offset is not None:
            return (
                f"{base}; {self.valid_records_after} valid record(s) follow from offset "
                f"{self.next_valid_offset}: refusing to cut them (see actionqueue.wal.repair)"
            )
        return base


class WalWriterError(ActionQueueError):
    """An append or a flush failed."""


class SequenceViolation(WalWriterError, ValueError):
    """An event's sequence is not above the last one in the log. Nothing was written."""

    def __init__(self, expected: int, provided: int):
        super().__init__(f"Sequence violation: expected at least {expected}, got {provided}")
        self.expected = expected
        self.provided = provided

    def __reduce__(self):
        return (type(self), (self.expected, self.provided))


class WriterClosed(WalWriterError):
    """The writer was closed."""


class WriterPoisoned(WalWriterError):
    """An earlier I/O failure left the writer unable to vouch for the file; it refuses
    everything until reopened (which validates the file again)."""


class WalLocked(WalWriterError):
    """Another writer, in this or another process, holds the data dir's log."""


# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ValidationReport:
    """What a full check of a log file found.

    ``end_offset`` is the end of the last valid record; ``corruption`` is None for a
    clean file, else a :class:`TornTail` or :class:`MidLogCorruption`.
    """

    path: Path | None
    records: int
    first_sequence: int | None
    last_sequence: int | None
    end_offset: int
    file_length: int
    corruption: WalCorruption | None

    @property
    def clean(self) -> bool:
        return self.corruption is None


def _first_sequence(buf, max_payload: int) -> int | None:
    end, count, last, reason, _, events = _walker.walk(buf, 0, None, max_payload, True, 1)
    return events[0].sequence if events else None


def validate_buffer(
    buf, path=None, *, prev_sequence: int | None = None, max_payload: int = DEFAULT_MAX_PAYLOAD
) -> ValidationReport:
    """Check every record of ``buf`` (the content of one log file) and classify the
    first problem as a torn tail or mid-log corruption."""
    end, count, last, reason, detail, _ = _walker.walk(buf, 0, prev_sequence, max_payload)
    size = len(buf)
    first = _first_sequence(buf, max_payload) if count else None
    corruption: WalCorruption | None = None
    if reason:
        name = REASON_NAMES[reason]
        nxt = -1
        if reason not in (R_INCOMPLETE_HEADER, R_INCOMPLETE_PAYLOAD) and name != "sequence_not_increasing":
            nxt = _walker.find_valid_record(buf, end + 1, max_payload)
        if name == "sequence_not_increasing":
            corruption = MidLogCorruption(path, end, name, detail, count)
        elif nxt >= 0:
            corruption = MidLogCorruption(path, end, name, detail, count)
            corruption.next_valid_offset = nxt
            corruption.valid_records_after = _walker.walk(buf, nxt, None, max_payload)[1]
        else:
            corruption = TornTail(path, end, name, detail, count)
            corruption.file_length = size
    return ValidationReport(
        None if path is None else Path(path), count, first, last, end, size, corruption
    )


def _validate_fd(fd: int, path: Path, max_payload: int) -> ValidationReport:
    """Validate an open file through a read-only map (no copy of the file in memory).

    Only for files nobody truncates meanwhile: the writer holds the lock while it does this.
    """
    size = os.fstat(fd).st_size
    if size == 0:
        return validate_buffer(b"", path, max_payload=max_payload)
    with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as mapped:
        return validate_buffer(mapped, path, max_payload=max_payload)


def validate_file(path, *, max_payload: int = DEFAULT_MAX_PAYLOAD) -> ValidationReport:
    """Check every record of the log file at ``path``."""
    path = Path(path)
    with open(path, "rb") as f:
        data = f.read()
    return validate_buffer(data, path, max_payload=max_payload)


# --------------------------------------------------------------------------------------
# File helpers
# --------------------------------------------------------------------------------------
def fsync_dir(path: Path) -> None:
    """fsync a directory so that entries created, renamed or removed in it are durable."""
    if os.name == "nt":  # pragma: no cover - directories cannot be opened on Windows
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock(fd: int, path: Path) -> None:
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WalLocked(f"{path} is locked by another writer") from None
    else:  # pragma: no cover - Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            raise WalLocked(f"{path} is locked by another writer") from None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def truncate_file(path: Path, length: int) -> None:
    """Cut ``path`` to ``length`` bytes and make that durable."""
    fd = os.open(path, os.O_RDWR)
    try:
        os.ftruncate(fd, length)
        os.fsync(fd)
    finally:
        os.close(fd)


# --------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------
class WalWriter:
    """Appends events to the log of a data dir, durably.

    ``WalWriter(data_dir)`` opens (or creates) ``<data_dir>/wal/actionqueue.wal``, takes
    an exclusive lock on it, validates every record, and positions itself at the end.
    Sequences must increase strictly (gaps are allowed); a violation raises
    :class:`SequenceViolation` and writes nothing.

    A failed write is undone by truncating the file back to its previous length; if that
    fails too, or an fsync fails (never retried: the kernel may have dropped the dirty
    pages), the writer is poisoned and refuses every later call with
    :class:`WriterPoisoned`. Use it as a context manager: leaving the block syncs and
    closes it.
    """

    def __init__(
        self,
        data_dir,
        repair_policy: RepairPolicy = RepairPolicy.STRICT,
        durability: Durability | str = Durability.FSYNC,
        *,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
    ):
        self.data_dir = Path(data_dir)
        self.repair_policy = RepairPolicy(repair_policy)
        self.durability = Durability(durability)
        self.max_payload = max_payload
        wal_dir = self.data_dir / "wal"
        if not self.data_dir.is_dir():
            raise FileNotFoundError(f"data dir {self.data_dir} does not exist")
        if not wal_dir.exists():
            wal_dir.mkdir()
            fsync_dir(self.data_dir)
        self.path = wal_dir / RUST_WAL_NAME
        created = not self.path.exists()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
        try:
            if created:
                fsync_dir(wal_dir)
            _lock(self._fd, self.path)
            self._open_existing()
        except BaseException:
            os.close(self._fd)
            raise
        self._write_lock = threading.Lock()
        self._sync_cond = threading.Condition()
        self._syncing = False
        self._durable = self._size
        self._closed = False
        self._poisoned: BaseException | None = None
        self.repaired: TornTail | None = self._repaired

    def _open_existing(self) -> None:
        report = _validate_fd(self._fd, self.path, self.max_payload)
        self._repaired = None
        if report.corruption is not None:
            corruption = report.corruption
            if isinstance(corruption, TornTail) and self.repair_policy is RepairPolicy.TRUNCATE_PARTIAL:
                log.warning(
                    "repairing %s: cutting a torn tail of %d bytes at offset %d (%s)",
                    self.path, corruption.bytes_to_cut, corruption.offset, corruption.reason,
                )
                os.ftruncate(self._fd, corruption.offset)
                os.fsync(self._fd)
                self._repaired = corruption
            else:
                raise corruption
        self._size = report.end_offset
        self._sequence = report.last_sequence or 0
        self._records = report.records
        os.lseek(self._fd, self._size, os.SEEK_SET)

    # -- state ------------------------------------------------------------------------
    @property
    def current_sequence(self) -> int:
        """The sequence of the last record in the log (0 for an empty log)."""
        return self._sequence

    @property
    def size(self) -> int:
        """Bytes in the log file."""
        return self._size

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise WriterClosed("WAL writer is closed")
        if self._poisoned is not None:
            raise WriterPoisoned(f"WAL writer is poisoned by an earlier failure: {self._poisoned}")

    # -- appending --------------------------------------------------------------------
    def append(self, event) -> None:
        """Append one event; returns once it is as durable as :attr:`durability` says."""
        self.append_many((event,))

    def append_many(self, events: Iterable) -> None:
        """Append events in order as one write; all or nothing."""
        events = list(events)
        if not events:
            return
        with self._write_lock:
            self._check_open()
            prev = self._sequence
            for event in events:
                seq = getattr(event, "sequence", None)
                if not isinstance(seq, int):
                    raise TypeError(f"append takes WalEvent objects, not {type(event).__name__}")
                if seq <= prev:
                    raise SequenceViolation(prev + 1, seq)
                prev = seq
            data = _codec_impl.encode_batch(events)
            start = self._size
            try:
                _write_all(self._fd, data)
            except OSError as exc:
                self._undo_write(start, exc)
                raise WalWriterError(f"write to {self.path} failed: {exc}") from exc
            self._size = start + len(data)
            self._sequence = prev
            self._records += len(events)
            end = self._size
            if self.durability is Durability.FSYNC:
                self._fsync_or_poison()
                self._durable = end
        if self.durability is Durability.GROUP:
            self._wait_durable(end)

    def _undo_write(self, start: int, exc: BaseException) -> None:
        try:
            os.ftruncate(self._fd, start)
            os.lseek(self._fd, start, os.SEEK_SET)
        except OSError as undo_exc:
            self._poisoned = undo_exc
            log.error("cannot undo a failed write to %s (%s): writer poisoned", self.path, undo_exc)

    def _fsync_or_poison(self) -> None:
        try:
            os.fsync(self._fd)
        except OSError as exc:
            self._poisoned = exc
            log.error("fsync of %s failed (%s): writer poisoned", self.path, exc)
            raise WriterPoisoned(f"fsync of {self.path} failed: {exc}") from exc

    def _wait_durable(self, end: int) -> None:
        """Group commit: return once an fsync that started after ``end`` was written succeeded."""
        with self._sync_cond:
            while self._durable < end:
                if self._poisoned is not None:
                    raise WriterPoisoned(f"WAL writer is poisoned by an earlier failure: {self._poisoned}")
                if self._syncing:
                    self._sync_cond.wait()
                    continue
                self._syncing = True
                target = self._size  # everything written so far; the fsync covers it
                self._sync_cond.release()
                try:
                    os.fsync(self._fd)
                    failed = None
                except OSError as exc:
                    failed = exc
                finally:
                    self._sync_cond.acquire()
                    self._syncing = False
                if failed is not None:
                    self._poisoned = failed
                    self._sync_cond.notify_all()
                    log.error("fsync of %s failed (%s): writer poisoned", self.path, failed)
                    raise WriterPoisoned(f"fsync of {self.path} failed: {failed}") from failed
                self._durable = max(self._durable, target)
                self._sync_cond.notify_all()

    def sync(self) -> None:
        """Make everything appended so far durable (fsync)."""
        with self._write_lock:
            self._check_open()
            self._fsync_or_poison()
            end = self._size
        with self._sync_cond:
            self._durable = max(self._durable, end)
            self._sync_cond.notify_all()

    flush = sync

    def close(self) -> None:
        """Sync and close. Closing twice is allowed; any other call after it raises."""
        if self._closed:
            return
        try:
            if self._poisoned is None:
                with self._write_lock:
                    os.fsync(self._fd)
        finally:
            self._closed = True
            os.close(self._fd)

    def __enter__(self) -> "WalWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "poisoned" if self._poisoned else "open"
        return f"<WalWriter {self.path} {state} sequence={self._sequence} durability={self.durability.value}>"


# --------------------------------------------------------------------------------------
# Reader
# --------------------------------------------------------------------------------------
class WalReader:
    """Iterates the events of a data dir's log (or of one log file), checking every record.

    Reads with ``pread`` in chunks (constant memory, never an mmap of a file a writer may
    truncate). ``from_sequence`` skips events below it. A bad record raises the same
    :class:`TornTail` / :class:`MidLogCorruption` a writer would report, after the
    events before it were yielded.
    """

    CHUNK = 4 << 20

    def __init__(self, source, from_sequence: int | None = None, *, max_payload: int = DEFAULT_MAX_PAYLOAD):
        source = Path(source)
        self.path = source / "wal" / RUST_WAL_NAME if source.is_dir() else source
        self.from_sequence = from_sequence
        self.max_payload = max_payload

    def __iter__(self) -> Iterator:
        with open(self.path, "rb", buffering=0) as f:
            yield from self._events(f)

    def _events(self, f) -> Iterator:
        buf = b""
        base = 0  # file offset of buf[0]
        prev = None
        count = 0
        eof = False
        while True:
            if not eof:
                chunk = f.read(self.CHUNK)
                if chunk:
                    buf = buf + chunk if buf else chunk
                else:
                    eof = True
            end, n, last, reason, detail, events = _walker.walk(buf, 0, prev, self.max_payload, True)
            for event in events:
                if self.from_sequence is None or event.sequence >= self.from_sequence:
                    yield event
            count += n
            prev = last
            if reason and not (not eof and reason in (R_INCOMPLETE_HEADER, R_INCOMPLETE_PAYLOAD)):
                # a real problem (not just a record cut by the chunk boundary): classify
                # it against the whole rest of the file
                rest = buf[end:] + f.read()
                report = validate_buffer(rest, self.path, prev_sequence=prev, max_payload=self.max_payload)
                corruption = report.corruption
                assert corruption is not None
                corruption.offset += base + end
                corruption.records_before = count
                if isinstance(corruption, TornTail):
                    corruption.file_length += base + end
                elif corruption.next_valid_offset is not None:
                    corruption.next_valid_offset += base + end
                raise corruption
            buf = buf[end:]
            base += end
            if eof and not buf:
                return
            if eof and not reason:
                return

