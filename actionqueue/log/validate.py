"""Checking a log file record by record, and classifying the first problem.

Every read path classifies records the same way (``_wal_common``). A damaged or
incomplete *last* record is a torn tail: :attr:`~.writer.RepairPolicy.TRUNCATE_PARTIAL`
cuts it off. Damage followed by valid records is never cut implicitly (decisions.md #6):
it is reported as :class:`~actionqueue.errors.MidLogCorruption` under every policy, and
only an explicit repair cuts there, keeping a backup of what it removed.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ._walk_common import reason_name
from ..errors import MidLogCorruption, SegmentError, TornTail, WalCorruption
from ._walker import walker
from .files import OS, Files, open_regular, read_fd
from .format import DEFAULT_MAX_PAYLOAD, VERSION

if TYPE_CHECKING:
    from .checkpoint import Checkpoint

__all__ = ["ValidationReport", "validate_buffer", "validate_file", "validate_fd", "first_sequence", "is_log_file"]


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


def first_sequence(buf, max_payload: int = DEFAULT_MAX_PAYLOAD) -> int | None:
    """The sequence of the first record of ``buf`` if it is valid, else None."""
    events = walker.walk(buf, 0, None, max_payload, True, 1)[5]
    return events[0].sequence if events else None


def validate_buffer(
    buf, path=None, *, prev_sequence: int | None = None, max_payload: int = DEFAULT_MAX_PAYLOAD,
    _checked: "Checkpoint | None" = None,
) -> ValidationReport:
    """Check every record of ``buf`` (the content of one log file) and classify the
    first problem as a torn tail or mid-log corruption.

    ``_checked``: a checkpoint whose digest matches the start of ``buf``; the records it
    covers are counted, not walked again."""
    start, before = 0, 0
    if _checked is not None:
        start, before, prev_sequence = _checked.length, _checked.records, _checked.last_sequence
    end, count, last, reason, detail, _ = walker.walk(buf, start, prev_sequence, max_payload)
    count += before
    first: int | None
    if _checked is not None:
        first = _checked.first_sequence
    else:
        first = first_sequence(buf, max_payload) if count else None
    corruption = _classify(buf, path, end, reason, detail, count, max_payload) if reason else None
    return ValidationReport(None if path is None else Path(path), count, first, last, end, len(buf), corruption)


def _classify(buf, path, end: int, reason: int, detail, count: int, max_payload: int) -> WalCorruption:
    name = reason_name(reason)
    if name == "sequence_not_increasing":
        return MidLogCorruption(path, end, name, detail, count)
    # Is anything valid left after the bad record? Then it is not a torn tail: an
    # incomplete record can also be a length field damaged in the middle.
    nxt = walker.find_valid_record(buf, end + 1, max_payload)
    if nxt >= 0:
        after = walker.walk(buf, nxt, None, max_payload)[1]
        return MidLogCorruption(path, end, name, detail, count, nxt, after)
    return TornTail(path, end, name, detail, count, len(buf))


def validate_fd(
    fd: int, path: Path, max_payload: int, prev_sequence: int | None = None,
    checkpoint: "Checkpoint | None" = None, fs: Files = OS,
) -> ValidationReport:
    """Validate an open file through a read-only map (no copy of the file in memory).

    Only for files nobody truncates meanwhile: the writer holds the lock while it does this.
    With a ``checkpoint`` of this file that still matches it, only the records after it
    are checked.
    """
    size = fs.fsize(fd)
    if size == 0:
        return validate_buffer(b"", path, prev_sequence=prev_sequence, max_payload=max_payload)
    with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as mapped:
        checked = (
            checkpoint if checkpoint is not None and checkpoint.matches(mapped, prev_sequence, max_payload) else None
        )
        return validate_buffer(mapped, path, prev_sequence=prev_sequence, max_payload=max_payload, _checked=checked)


def validate_file(path, *, max_payload: int = DEFAULT_MAX_PAYLOAD, fs: Files = OS) -> ValidationReport:
    """Check every record of the log file at ``path``."""
    path = Path(path)
    fd = open_regular(path, fs)  # never a FIFO or device (a SegmentError)
    try:
        data = read_fd(fs, fd)
    finally:
        fs.close(fd)
    return validate_buffer(data, path, max_payload=max_payload)


def is_log_file(path, fs: Files = OS) -> bool:
    """Whether the file at ``path`` can be a log file at all: it is empty, or it begins
    with the version field of a WAL v5 record header (whole or cut short). This tells a
    log, however damaged, from a file of another kind; validation judges its records. A
    FIFO, device or socket is none (and is not read)."""
    try:
        fd = open_regular(path, fs)
    except SegmentError:
        return False
    try:
        head = fs.pread(fd, 4, 0)
    finally:
        fs.close(fd)
    return VERSION.to_bytes(4, "little").startswith(head)
