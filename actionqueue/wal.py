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

import dataclasses
import enum
import json
import logging
import mmap
import os
import _thread
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import xxhash

from . import _backend, _model, segments
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
    "Layout",
    "detect_layout",
    "log_files",
    "SegmentError",
    "WalWriter",
    "WalReader",
    "VerifyReport",
    "verify",
    "RepairResult",
    "repair",
    "RUST_WAL_NAME",
]

#: The file name of the Rust original's log inside ``<data_dir>/wal/``.
RUST_WAL_NAME = "actionqueue.wal"
#: The lock file a writer holds (an OS advisory lock) in ``<data_dir>/wal/``.
LOCK_NAME = "LOCK"

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

    def _shift(self, delta: int) -> None:
        """Move the offsets by ``delta`` (found in a slice that starts ``delta`` into the file)."""
        self.offset += delta


def _rebuild_corruption(cls, state):
    obj = cls.__new__(cls)
    obj.__dict__.update(state)
    Exception.__init__(obj, str(obj))
    return obj


class TornTail(WalCorruption):
    """The last record is incomplete or damaged and nothing valid follows it: the shape a
    crash in the middle of an append leaves. ``TRUNCATE_PARTIAL`` repairs it.

    Attributes:
        file_length: the length of the file (the torn bytes run from ``offset`` to it).
    """

    def __init__(self, path, offset: int, reason: str, detail: str | None = None,
                 records_before: int = 0, file_length: int = 0):
        self.file_length = file_length
        super().__init__(path, offset, reason, detail, records_before)

    @property
    def bytes_to_cut(self) -> int:
        return self.file_length - self.offset

    def _shift(self, delta: int) -> None:
        super()._shift(delta)
        self.file_length += delta


class MidLogCorruption(WalCorruption):
    """A bad record followed by valid ones, or a sequence that does not increase.

    Never repaired implicitly: cutting here would delete valid records.

    Attributes:
        next_valid_offset: where the next valid record starts (None for a sequence error).
        valid_records_after: how many valid records follow, walking from there.
    """

    def __init__(self, path, offset: int, reason: str, detail: str | None = None,
                 records_before: int = 0, next_valid_offset: int | None = None, valid_records_after: int = 0):
        self.next_valid_offset = next_valid_offset
        self.valid_records_after = valid_records_after
        super().__init__(path, offset, reason, detail, records_before)

    def _shift(self, delta: int) -> None:
        super()._shift(delta)
        if self.next_valid_offset is not None:
            self.next_valid_offset += delta

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
    buf, path=None, *, prev_sequence: int | None = None, max_payload: int = DEFAULT_MAX_PAYLOAD,
    _checked: Checkpoint | None = None,
) -> ValidationReport:
    """Check every record of ``buf`` (the content of one log file) and classify the
    first problem as a torn tail or mid-log corruption.

    ``_checked``: a checkpoint whose digest matches the start of ``buf``; the records it
    covers are counted, not walked again."""
    start, before = 0, 0
    if _checked is not None:
        start, before, prev_sequence = _checked.length, _checked.records, _checked.last_sequence
    end, count, last, reason, detail, _ = _walker.walk(buf, start, prev_sequence, max_payload)
    count += before
    size = len(buf)
    if _checked is not None:
        first = _checked.first_sequence
    else:
        first = _first_sequence(buf, max_payload) if count else None
    corruption: WalCorruption | None = None
    if reason:
        name = REASON_NAMES[reason]
        nxt = -1
        if name != "sequence_not_increasing":
            # Is anything valid left after the bad record? Then it is not a torn tail:
            # an incomplete record can also be a length field damaged in the middle.
            nxt = _walker.find_valid_record(buf, end + 1, max_payload)
        if name == "sequence_not_increasing":
            corruption = MidLogCorruption(path, end, name, detail, count)
        elif nxt >= 0:
            after = _walker.walk(buf, nxt, None, max_payload)[1]
            corruption = MidLogCorruption(path, end, name, detail, count, nxt, after)
        else:
            corruption = TornTail(path, end, name, detail, count, size)
    return ValidationReport(
        None if path is None else Path(path), count, first, last, end, size, corruption
    )


def _validate_fd(
    fd: int, path: Path, max_payload: int, prev_sequence: int | None = None, checkpoint: Checkpoint | None = None
) -> ValidationReport:
    """Validate an open file through a read-only map (no copy of the file in memory).

    Only for files nobody truncates meanwhile: the writer holds the lock while it does this.
    With a ``checkpoint`` of this file whose digest still matches its first bytes, only
    the records after it are checked.
    """
    size = os.fstat(fd).st_size
    if size == 0:
        return validate_buffer(b"", path, prev_sequence=prev_sequence, max_payload=max_payload)
    with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as mapped:
        checked = (
            checkpoint if checkpoint is not None and checkpoint.matches(mapped, prev_sequence, max_payload) else None
        )
        return validate_buffer(mapped, path, prev_sequence=prev_sequence, max_payload=max_payload, _checked=checked)


CHECKPOINT_NAME = "CHECKPOINT"


@dataclass(frozen=True)
class Checkpoint:
    """What a writer that closed cleanly knew about its file: the first ``length`` bytes
    (``records`` records, sequences ``first_sequence``..``last_sequence``, all checked
    when it opened or written by it) and their xxh3-128 digest.

    The next writer checks the digest (a few ms for the reference log) instead of walking
    those records again, and walks only what came after. Any change to those bytes
    (damage, a cut, another program) changes the digest and the whole file is checked.
    ``verify`` and ``repair`` never use it. Written as ``wal/CHECKPOINT`` (JSON).
    """

    file: str
    length: int
    records: int
    first_sequence: int | None
    last_sequence: int | None
    prev_sequence: int | None  # the sequence before the file (segments), as checked
    max_payload: int  # the payload cap the records were checked against
    xxh3_128: str

    def matches(self, mapped, prev_sequence: int | None, max_payload: int) -> bool:
        if (self.length <= 0 or self.length > len(mapped) or prev_sequence != self.prev_sequence
                or self.max_payload > max_payload):
            return False
        with memoryview(mapped) as view:
            return xxhash.xxh3_128_hexdigest(view[: self.length]) == self.xxh3_128

    @classmethod
    def read(cls, wal_dir: Path, file: Path) -> Checkpoint | None:
        """The checkpoint of ``file``, or None (none, another file's, or unreadable)."""
        try:
            obj = json.loads((wal_dir / CHECKPOINT_NAME).read_bytes())
            ckpt = cls(
                str(obj["file"]), int(obj["length"]), int(obj["records"]),
                None if obj["first_sequence"] is None else int(obj["first_sequence"]),
                None if obj["last_sequence"] is None else int(obj["last_sequence"]),
                None if obj["prev_sequence"] is None else int(obj["prev_sequence"]),
                int(obj["max_payload"]), str(obj["xxh3_128"]),
            )  # fmt: skip
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return ckpt if ckpt.file == file.name else None

    def write(self, wal_dir: Path) -> None:
        """Atomically (temp file, fsync, rename, fsync of the directory)."""
        _atomic_write(wal_dir / CHECKPOINT_NAME, json.dumps(dataclasses.asdict(self), sort_keys=True).encode())


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
class Layout(enum.Enum):
    """How a data dir's log is laid out in ``wal/``."""

    #: The Rust original's: one file, ``wal/actionqueue.wal``, never rotated.
    RUST = "rust"
    #: Ours (the default for new dirs): segment files named by first sequence, rotated
    #: at a size and sealed with a digest.
    SEGMENTED = "segmented"


def detect_layout(data_dir) -> Layout | None:
    """The layout of an existing log, or None when ``wal/`` holds no log yet."""
    wal_dir = Path(data_dir) / "wal"
    has_rust = (wal_dir / RUST_WAL_NAME).exists()
    has_segments = bool(segments.list_segments(wal_dir))
    if has_rust and has_segments:
        raise ActionQueueError(f"{wal_dir} holds both {RUST_WAL_NAME} and segment files")
    if has_rust:
        return Layout.RUST
    return Layout.SEGMENTED if has_segments else None


class SegmentError(WalCorruption):
    """A segment that does not fit the rest of the log (unsealed in the middle, a seal
    that disagrees with its file, a sequence range that overlaps its neighbours)."""


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
                    os.fsync(fd)
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


class WalWriter:
    """Appends events to the log of a data dir, durably.

    ``WalWriter(data_dir)`` opens (or creates) the log under ``<data_dir>/wal/``, takes an
    exclusive lock on it, validates the file it will append to, and positions itself at
    the end. An existing log keeps its layout (Rust's single file or segments); a new one
    gets ``layout`` (segments by default, rotated at ``segment_bytes``).

    Sequences must increase strictly (gaps are allowed); a violation raises
    :class:`SequenceViolation` and writes nothing. A failed write is undone by truncating
    back to the previous length; if that fails too, or an fsync fails (never retried:
    the kernel may have dropped the dirty pages), the writer is poisoned and refuses
    every later call with :class:`WriterPoisoned`. Use it as a context manager: leaving
    the block syncs and closes it.
    """

    def __init__(
        self,
        data_dir,
        repair_policy: RepairPolicy = RepairPolicy.STRICT,
        durability: Durability | str = Durability.FSYNC,
        *,
        layout: Layout | str = Layout.SEGMENTED,
        segment_bytes: int = segments.DEFAULT_SEGMENT_BYTES,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
    ):
        self.data_dir = Path(data_dir)
        self.repair_policy = RepairPolicy(repair_policy)
        self.durability = Durability(durability)
        self.max_payload = max_payload
        self.segment_bytes = segment_bytes
        if not self.data_dir.is_dir():
            raise FileNotFoundError(f"data dir {self.data_dir} does not exist")
        self.wal_dir = self.data_dir / "wal"
        if not self.wal_dir.exists():
            self.wal_dir.mkdir()
            fsync_dir(self.data_dir)
        self.layout = detect_layout(self.data_dir) or Layout(layout)
        self._segmented = self.layout is Layout.SEGMENTED
        self._group = self.durability is Durability.GROUP
        self._fsync_each = self.durability is Durability.FSYNC
        self.repaired: TornTail | None = None
        self._write_lock = threading.Lock()
        self._fsync_lock = threading.Lock()  # held while a file descriptor is being fsynced
        self._group_commit: _GroupCommit | None = None
        self._closed = False
        self._poisoned: BaseException | None = None
        self._fd = -1
        self._lock_fd = -1
        self._active_first: int | None = None
        self._active_prev: int | None = None  # the sequence before the active file
        self._sequence = 0
        self._size = 0  # bytes in the active file
        self._active_records = 0
        try:
            self._lock_fd = os.open(self.wal_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
            _lock(self._lock_fd, self.wal_dir)
            if self.layout is Layout.RUST:
                self._open_file(self.wal_dir / RUST_WAL_NAME, None, None)
            else:
                self._open_segments()
            if self._group:
                self._group_commit = _GroupCommit(self)
        except BaseException:
            self._release()
            raise

    # -- opening ----------------------------------------------------------------------
    def _open_file(self, path: Path, prev_sequence: int | None, first_sequence: int | None) -> None:
        """Open ``path`` for appending after validating it (repairing a torn tail if allowed)."""
        created = not path.exists()
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
        try:
            if created:
                fsync_dir(path.parent)
            report = _validate_fd(fd, path, self.max_payload, prev_sequence, Checkpoint.read(self.wal_dir, path))
            if report.corruption is not None:
                corruption = report.corruption
                if isinstance(corruption, TornTail) and self.repair_policy is RepairPolicy.TRUNCATE_PARTIAL:
                    log.warning(
                        "repairing %s: cutting a torn tail of %d bytes at offset %d (%s)",
                        path, corruption.bytes_to_cut, corruption.offset, corruption.reason,
                    )
                    os.ftruncate(fd, corruption.offset)
                    os.fsync(fd)
                    self.repaired = corruption
                else:
                    raise corruption
            if first_sequence is not None and report.first_sequence not in (None, first_sequence):
                raise SegmentError(path, 0, "decode_failure",
                                   f"segment named for sequence {first_sequence} starts at {report.first_sequence}")
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self.path = path
        self._active_prev = prev_sequence
        self._active_first = first_sequence
        self._size = report.end_offset
        self._active_records = report.records
        if report.last_sequence is not None:
            self._sequence = report.last_sequence
        os.lseek(fd, self._size, os.SEEK_SET)

    def _open_segments(self) -> None:
        found = segments.list_segments(self.wal_dir)
        prev_last: int | None = None
        for i, segment in enumerate(found):
            seal = segment.read_seal()
            last = i == len(found) - 1
            if seal is None:
                if not last:
                    raise SegmentError(segment.path, 0, "decode_failure", "a segment before the newest one is not sealed")
                if prev_last is not None and segment.first_sequence <= prev_last:
                    raise SegmentError(segment.path, 0, "sequence_not_increasing",
                                       f"segment starts at {segment.first_sequence}, after {prev_last}")
                self._open_file(segment.path, prev_last, segment.first_sequence)
                return
            if seal.first_sequence != segment.first_sequence or (prev_last is not None and seal.first_sequence <= prev_last):
                raise SegmentError(segment.path, 0, "sequence_not_increasing",
                                   f"seal range {seal.first_sequence}..{seal.last_sequence} does not follow {prev_last}")
            size = segment.path.stat().st_size
            if size != seal.length:
                raise SegmentError(segment.path, min(size, seal.length), "incomplete_payload" if size < seal.length else "decode_failure",
                                   f"sealed segment is {size} bytes, its seal says {seal.length}")
            prev_last = seal.last_sequence
        self._sequence = prev_last or 0
        self.path = None  # no active segment: the next append starts one

    # -- state ------------------------------------------------------------------------
    @property
    def current_sequence(self) -> int:
        """The sequence of the last record in the log (0 for an empty log)."""
        return self._sequence

    @property
    def size(self) -> int:
        """Bytes in the file being appended to."""
        return self._size

    @property
    def closed(self) -> bool:
        return self._closed

    def segments(self) -> list[segments.Segment]:
        """The segment files, oldest first (empty for the Rust layout)."""
        return segments.list_segments(self.wal_dir) if self.layout is Layout.SEGMENTED else []

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
            seq = getattr(event, "sequence", None)
            if not isinstance(seq, int):
                raise TypeError(f"append takes WalEvent objects, not {type(event).__name__}")
            if seq <= self._sequence:
                raise SequenceViolation(self._sequence + 1, seq)
            gate = self._write_locked(_codec_impl.encode(event), seq, seq, 1)
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
            gate = self._write_locked(_codec_impl.encode(_model.WalEvent(seq, event)), seq, seq, 1)
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
            prev = self._sequence
            for event in events:
                seq = getattr(event, "sequence", None)
                if not isinstance(seq, int):
                    raise TypeError(f"append takes WalEvent objects, not {type(event).__name__}")
                if seq <= prev:
                    raise SequenceViolation(prev + 1, seq)
                prev = seq
            gate = self._write_locked(_codec_impl.encode_batch(events), events[0].sequence, prev, len(events))
        return PendingWrite(gate)

    def _write_locked(self, data: bytes, first: int, last: int, count: int) -> "_Gate | None":
        """Write encoded records (write lock held). With group commit, return the gate to
        wait at (outside the lock) until an fsync covering them has succeeded."""
        if self._segmented:
            if self._fd < 0 or (self._active_records and self._size + len(data) > self.segment_bytes):
                self._rotate(first)
            elif self._size == 0 and self._active_first != first:
                # an empty segment (its first write failed, or a crash tore it and a
                # repair emptied it) is renamed for the sequence that really starts it
                self._rename_active(first)
        start = self._size
        before = (self._sequence, self._active_records)
        try:
            written = os.write(self._fd, data)
            if written != len(data):
                _write_all(self._fd, data[written:])
            self._size = start + len(data)
            self._sequence = last
            self._active_records += count
        except BaseException as exc:
            # also KeyboardInterrupt & co. between two partial writes, or right after the
            # write: never leave a fragment, nor a record the state does not count
            self._size = start
            self._sequence, self._active_records = before
            self._undo_write(start, exc)
            if isinstance(exc, OSError):
                raise WalWriterError(f"write to {self.path} failed: {exc}") from exc
            raise
        if self._fsync_each:
            self._fsync_or_poison()
        elif self._group_commit is not None:
            return self._group_commit.gate_for_written()
        return None

    def _rename_active(self, first_sequence: int) -> None:
        target = self.wal_dir / segments.segment_name(first_sequence)
        try:
            os.replace(self.path, target)
            fsync_dir(self.wal_dir)
        except OSError as exc:
            self._poisoned = exc
            raise WriterPoisoned(f"renaming the empty segment {self.path} failed: {exc}") from exc
        self.path = target
        self._active_first = first_sequence

    def _rotate(self, first_sequence: int) -> None:
        """Seal the active segment (if any) and start one for ``first_sequence``.

        Called with the write lock held; waits for a group-commit fsync in progress and
        keeps the next one out while the file descriptor changes. The seal's fsync makes
        the old segment durable; group-commit waiters are released by the next fsync.
        """
        self._fsync_lock.acquire()
        try:
            if self._fd >= 0:
                self._seal_active()
            segment = segments.Segment(self.wal_dir / segments.segment_name(first_sequence), first_sequence)
            fd = os.open(segment.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
            self._fd, self.path, self._size, self._active_records = fd, segment.path, 0, 0
            self._active_first = first_sequence
            self._active_prev = self._sequence or None  # the last sequence of the sealed segments
            fsync_dir(self.wal_dir)
        except BaseException as exc:
            self._poisoned = exc
            log.error("cannot rotate the log in %s (%s): writer poisoned", self.wal_dir, exc)
            if isinstance(exc, (OSError, WalCorruption)):
                raise WriterPoisoned(f"rotating the log in {self.wal_dir} failed: {exc}") from exc
            raise
        finally:
            self._fsync_lock.release()

    def _seal_active(self) -> None:
        os.fsync(self._fd)
        path = self.path
        report = _validate_fd(self._fd, path, self.max_payload, None)
        if not report.clean:  # pragma: no cover - the writer only writes whole records
            raise report.corruption  # type: ignore[misc]
        seal = segments.Seal(
            report.first_sequence or 0,
            report.last_sequence or 0,
            report.records,
            report.end_offset,
            segments.digest_file(path, report.end_offset),
        )
        os.close(self._fd)
        self._fd = -1
        segments.write_seal(segments.Segment(path, seal.first_sequence), seal, fsync_dir)

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
        except BaseException as exc:  # an interrupted fsync proves nothing either
            self._poisoned = exc
            log.error("fsync of %s failed (%s): writer poisoned", self.path, exc)
            if isinstance(exc, OSError):
                raise WriterPoisoned(f"fsync of {self.path} failed: {exc}") from exc
            raise

    def sync(self) -> None:
        """Make everything appended so far durable (fsync)."""
        with self._write_lock:
            self._check_open()
            if self._fd >= 0:
                with self._fsync_lock:
                    self._fsync_or_poison()

    flush = sync

    # -- segments ---------------------------------------------------------------------
    def remove_segments_before(self, sequence: int) -> list[Path]:
        """Delete the sealed segments whose every record is below ``sequence`` (for example
        the sequence of a snapshot that covers them). Never touches the active segment.
        Returns the removed files; the directory is fsynced afterwards."""
        removed = []
        with self._write_lock:
            self._check_open()
            for segment in self.segments():
                seal = segment.read_seal()
                if seal is None or segment.path == self.path or seal.last_sequence >= sequence:
                    break
                segment.path.unlink()
                segment.seal_path.unlink()
                removed.append(segment.path)
            if removed:
                fsync_dir(self.wal_dir)
        return removed

    # -- closing ----------------------------------------------------------------------
    def _release(self) -> None:
        for attr in ("_fd", "_lock_fd"):
            fd = getattr(self, attr)
            if fd >= 0:
                os.close(fd)
                setattr(self, attr, -1)

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
                        os.fsync(self._fd)
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
        """On a clean close (synced, lock still held): record the active file's checked
        content (:class:`Checkpoint`) so that the next writer need not walk it again. A
        failure only costs that: it is logged, and the stale checkpoint removed."""
        try:
            if self.path is None or self._size == 0:
                return
            with mmap.mmap(self._fd, self._size, access=mmap.ACCESS_READ) as mapped:
                digest = xxhash.xxh3_128_hexdigest(mapped)
            first = self._active_first
            if first is None and self._active_records:
                with mmap.mmap(self._fd, self._size, access=mmap.ACCESS_READ) as mapped:
                    first = _first_sequence(mapped, self.max_payload)
            Checkpoint(
                self.path.name, self._size, self._active_records, first,
                self._sequence if self._active_records else None, self._active_prev, self.max_payload, digest,
            ).write(self.wal_dir)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - an optimisation: the log is intact
            log.warning("could not write the checkpoint of %s: %s", self.path, exc)
            try:
                (self.wal_dir / CHECKPOINT_NAME).unlink()
            except OSError:
                pass

    def _advance_to(self, sequence: int) -> None:
        """Recovery: the log is empty but a snapshot covers up to ``sequence``: the next
        appended sequence must be above it."""
        with self._write_lock:
            self._sequence = max(self._sequence, sequence)

    def __del__(self) -> None:
        # Like Rust's Drop: a writer that was never closed syncs and releases its lock.
        if not getattr(self, "_closed", True):
            try:
                self.close()
            except Exception:  # noqa: BLE001 - nothing to report to at collection time
                pass

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


# --------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify` found: per file, its validation (or seal check) result."""

    files: tuple[tuple[Path, str], ...]
    records: int
    last_sequence: int | None
    problem: WalCorruption | None

    @property
    def clean(self) -> bool:
        return self.problem is None


def verify(data_dir, *, max_payload: int = DEFAULT_MAX_PAYLOAD, decode_sealed: bool = False) -> VerifyReport:
    """Check a data dir's whole log without changing it.

    Sealed segments are checked against their seal (length and xxh3-128 digest) without
    decoding, unless ``decode_sealed``; the active segment and a Rust single-file log are
    fully validated. Stops at the first problem, which names the file and offset.
    """
    data_dir = Path(data_dir)
    checked: list[tuple[Path, str]] = []
    records = 0
    prev: int | None = None
    layout = detect_layout(data_dir)
    wal_dir = data_dir / "wal"
    found = [] if layout is None else (
        [segments.Segment(wal_dir / RUST_WAL_NAME, 0)] if layout is Layout.RUST else segments.list_segments(wal_dir)
    )
    for i, segment in enumerate(found):
        seal = segment.read_seal() if layout is Layout.SEGMENTED else None
        if seal is not None and not decode_sealed:
            size = segment.path.stat().st_size
            digest = segments.digest_file(segment.path, seal.length) if size == seal.length else None
            if size != seal.length or digest != seal.xxh3_128:
                what = f"length {size}, seal says {seal.length}" if size != seal.length else "xxh3-128 digest differs from its seal"
                problem = SegmentError(segment.path, 0, "crc_mismatch" if digest else "incomplete_payload", what)
                return VerifyReport(tuple(checked), records, prev, problem)
            if prev is not None and seal.first_sequence <= prev:
                problem = SegmentError(segment.path, 0, "sequence_not_increasing",
                                       f"segment starts at {seal.first_sequence}, after {prev}")
                return VerifyReport(tuple(checked), records, prev, problem)
            checked.append((segment.path, "seal ok"))
            records += seal.records
            prev = seal.last_sequence
            continue
        if layout is Layout.SEGMENTED and seal is None and i != len(found) - 1:
            problem = SegmentError(segment.path, 0, "decode_failure", "a segment before the newest one is not sealed")
            return VerifyReport(tuple(checked), records, prev, problem)
        with open(segment.path, "rb") as f:
            report = validate_buffer(f.read(), segment.path, prev_sequence=prev, max_payload=max_payload)
        records += report.records
        if report.corruption is not None:
            return VerifyReport(tuple(checked), records, report.last_sequence or prev, report.corruption)
        checked.append((segment.path, "records ok"))
        if report.last_sequence is not None:
            prev = report.last_sequence
    return VerifyReport(tuple(checked), records, prev, None)


# --------------------------------------------------------------------------------------
# Explicit repair
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RepairResult:
    """What :func:`repair` did (or, with ``dry_run``, would do) to one file.

    ``cuts`` are ``(offset, length)`` ranges of the original file that were removed;
    ``backup`` holds their bytes (None for a dry run or when nothing was cut).
    """

    path: Path
    cuts: tuple[tuple[int, int], ...]
    backup: Path | None
    records_kept: int

    @property
    def bytes_cut(self) -> int:
        return sum(length for _, length in self.cuts)


def _plan_cuts(data: bytes, path: Path, prev: int | None, max_payload: int) -> tuple[list[tuple[int, int]], int]:
    """The byte ranges to remove so that only valid records remain, never a valid one."""
    cuts: list[tuple[int, int]] = []
    kept = 0
    pos = 0
    while True:
        rest = memoryview(data)[pos:]
        report = validate_buffer(rest, path, prev_sequence=prev, max_payload=max_payload)
        kept += report.records
        if report.last_sequence is not None:
            prev = report.last_sequence
        corruption = report.corruption
        if corruption is None:
            return cuts, kept
        if isinstance(corruption, TornTail):
            cuts.append((pos + corruption.offset, len(data) - pos - corruption.offset))
            return cuts, kept
        if corruption.next_valid_offset is None:  # a valid record out of sequence order
            corruption._shift(pos)
            raise corruption
        cuts.append((pos + corruption.offset, corruption.next_valid_offset - corruption.offset))
        pos += corruption.next_valid_offset


def repair(data_dir, *, dry_run: bool = False, max_payload: int = DEFAULT_MAX_PAYLOAD) -> list[RepairResult]:
    """Remove damaged bytes from a data dir's log, keeping every valid record.

    A torn tail is cut off; damage in the middle is cut out between the bad record and
    the next valid one (the sequence gap this leaves is allowed). What is removed is
    saved first in ``wal/repair-backup/`` (one file per cut, named by file and offset),
    and every rewrite is atomic (temp file, fsync, rename, fsync of the directory). A
    record whose sequence does not increase is valid data out of order: that is not
    repaired, the :class:`MidLogCorruption` is raised. Must not run while a writer is
    open (it takes the writer's lock).
    """
    data_dir = Path(data_dir)
    wal_dir = data_dir / "wal"
    results: list[RepairResult] = []
    lock_fd = os.open(wal_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _lock(lock_fd, wal_dir)
        layout = detect_layout(data_dir)
        found = [] if layout is None else (
            [segments.Segment(wal_dir / RUST_WAL_NAME, 0)] if layout is Layout.RUST else segments.list_segments(wal_dir)
        )
        prev: int | None = None
        for segment in found:
            data = segment.path.read_bytes()
            cuts, kept = _plan_cuts(data, segment.path, prev, max_payload)
            last = validate_buffer(_apply_cuts(data, cuts), segment.path, prev_sequence=prev, max_payload=max_payload)
            if last.last_sequence is not None:
                prev = last.last_sequence
            backup = None
            if cuts and not dry_run:
                backup_dir = wal_dir / "repair-backup"
                backup_dir.mkdir(exist_ok=True)
                for offset, length in cuts:
                    _atomic_write(backup_dir / f"{segment.path.name}.{offset}.cut", data[offset : offset + length])
                backup = backup_dir
                fixed = _apply_cuts(data, cuts)
                _atomic_write(segment.path, fixed)
                seal = segment.read_seal() if layout is Layout.SEGMENTED else None
                if seal is not None:
                    segments.write_seal(segment, segments.Seal(
                        last.first_sequence or 0, last.last_sequence or 0, last.records, len(fixed),
                        segments.digest_file(segment.path),
                    ), fsync_dir)
                log.warning("repaired %s: cut %d byte range(s), %d bytes, backup in %s",
                            segment.path, len(cuts), sum(n for _, n in cuts), backup_dir)
            if cuts:
                results.append(RepairResult(segment.path, tuple(cuts), backup, kept))
    finally:
        os.close(lock_fd)
    return results


def _apply_cuts(data: bytes, cuts: list[tuple[int, int]]) -> bytes:
    out = bytearray()
    pos = 0
    for offset, length in cuts:
        out += data[pos:offset]
        pos = offset + length
    out += data[pos:]
    return bytes(out)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o644)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


# --------------------------------------------------------------------------------------
# Reader
# --------------------------------------------------------------------------------------
def log_files(data_dir) -> list[Path]:
    """The files of a data dir's log, oldest first."""
    wal_dir = Path(data_dir) / "wal"
    layout = detect_layout(data_dir)
    if layout is Layout.RUST:
        return [wal_dir / RUST_WAL_NAME]
    return [s.path for s in segments.list_segments(wal_dir)]


class WalReader:
    """Iterates the events of a data dir's log (or of one log file), checking every record.

    Reads with ``pread`` in chunks (constant memory, never an mmap of a file a writer may
    truncate), across segments. ``from_sequence`` skips events below it, and whole sealed
    segments below it without reading them. A bad record raises the same
    :class:`TornTail` / :class:`MidLogCorruption` a writer would report, after the events
    before it were yielded.
    """

    CHUNK = 4 << 20

    def __init__(
        self,
        source,
        from_sequence: int | None = None,
        *,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        validated: WalWriter | None = None,
    ):
        """``validated``: an open writer of this data dir. Its file was checked when it
        opened (under its lock), so the records of that file below ``from_sequence`` are
        stepped over, not checked again (recovery uses this to check the log once)."""
        source = Path(source)
        self.source = source
        self.from_sequence = from_sequence
        self.max_payload = max_payload
        self._trusted = None if validated is None or validated.closed else validated.path

    def _files(self) -> list[tuple[Path, int | None]]:
        if not self.source.is_dir():
            return [(self.source, None)]
        wal_dir = self.source / "wal"
        if detect_layout(self.source) is Layout.RUST:
            return [(wal_dir / RUST_WAL_NAME, None)]
        found = segments.list_segments(wal_dir)
        files = []
        for i, segment in enumerate(found):
            nxt = found[i + 1].first_sequence if i + 1 < len(found) else None
            if self.from_sequence is not None and nxt is not None and nxt <= self.from_sequence:
                continue  # every record of this segment is below from_sequence
            files.append((segment.path, segment.first_sequence))
        return files

    def __iter__(self) -> Iterator:
        prev = None
        for path, first in self._files():
            with open(path, "rb", buffering=0) as f:
                for batch, prev in self._batches(f, path, prev, first):
                    yield from batch

    def follow(self, poll_interval: float = 0.1, stop: "threading.Event | None" = None) -> Iterator:
        """Yield every event, then keep yielding new ones as another process appends them
        (``tail -f``), until ``stop`` is set (checked between polls).

        An incomplete or damaged record at the end is taken as a write in progress (or a
        torn tail a future writer will cut): the follower waits there. Damage followed by
        valid records raises :class:`MidLogCorruption`. Follows rotation into new segments.
        """
        prev: int | None = None
        path: Path | None = None
        pos = 0
        while stop is None or not stop.is_set():
            files = [p for p, _ in self._files()]
            if path is None:
                if not files:
                    if stop is not None and stop.wait(poll_interval):
                        return
                    if stop is None:
                        time.sleep(poll_interval)
                    continue
                path = files[0]
            try:
                with open(path, "rb", buffering=0) as f:
                    f.seek(pos)
                    data = f.read()
            except FileNotFoundError:  # removed under us (old segment): move on
                data = b""
            end, _, last, reason, _, events = _walker.walk(data, 0, prev, self.max_payload, True)
            for event in events:
                prev = event.sequence
                if self.from_sequence is None or event.sequence >= self.from_sequence:
                    yield event
            pos += end
            if reason:
                report = validate_buffer(data[end:], path, prev_sequence=prev, max_payload=self.max_payload)
                if isinstance(report.corruption, MidLogCorruption):
                    report.corruption._shift(pos)
                    raise report.corruption
            elif path in files and files.index(path) + 1 < len(files) and end == len(data):
                # the current file is complete and a newer one exists: it was sealed
                path = files[files.index(path) + 1]
                pos = 0
                continue
            if stop is not None:
                if stop.wait(poll_interval):
                    return
            else:
                time.sleep(poll_interval)

    def batches(self) -> Iterator[list]:
        """The events, in lists of a read chunk's worth (at least one event each): the
        fastest way to consume a log (no per-event generator step)."""
        prev = None
        for path, first in self._files():
            with open(path, "rb", buffering=0) as f:
                for batch, prev in self._batches(f, path, prev, first):
                    if batch:
                        yield batch

    def _skip_checked(self, f, prev: int | None) -> tuple[int, int, int | None]:
        """``(offset, records, last sequence)`` below ``from_sequence`` in a file its open
        writer has checked (mapped: the writer's lock keeps it from being cut meanwhile)."""
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return 0, 0, prev
        with mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as mapped:
            return _walker.skip_below(mapped, 0, prev, self.from_sequence)

    def _batches(self, f, path: Path, prev: int | None, first: int | None) -> Iterator[tuple[list, int | None]]:
        """``(events, last sequence walked)`` per chunk of one file: every record is checked,
        only those at or above ``from_sequence`` are decoded into ``events``."""
        buf = b""
        base = 0  # file offset of buf[0]
        count = 0
        eof = False
        if path == self._trusted and self.from_sequence:
            # the writer checked this file under its lock: step over the records below
            # from_sequence by their length fields, without reading them through
            base, count, prev = self._skip_checked(f, prev)
            f.seek(base)
        while True:
            if not eof:
                chunk = f.read(self.CHUNK)
                if chunk:
                    buf = buf + chunk if buf else chunk
                else:
                    eof = True
            if count == 0 and first is not None:
                head = _first_sequence(buf, self.max_payload)
                if head is not None and head != first:
                    raise SegmentError(path, 0, "decode_failure",
                                       f"segment named for sequence {first} starts at {head}")
            end, n, last, reason, detail, events = _walker.walk(
                buf, 0, prev, self.max_payload, True, -1, self.from_sequence or 0, path == self._trusted
            )
            if n:
                yield events, last
            count += n
            prev = last
            if reason and not (not eof and reason in (R_INCOMPLETE_HEADER, R_INCOMPLETE_PAYLOAD)):
                # a real problem (not a record cut by the chunk boundary): classify it
                # against the whole rest of the file
                rest = buf[end:] + f.read()
                report = validate_buffer(rest, path, prev_sequence=prev, max_payload=self.max_payload)
                corruption = report.corruption
                assert corruption is not None
                corruption._shift(base + end)
                corruption.records_before = count
                raise corruption
            buf = buf[end:]
            base += end
            if eof and (not buf or not reason):
                return
