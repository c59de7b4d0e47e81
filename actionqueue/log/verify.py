"""``verify``: check a data dir's whole log without changing it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import xxhash

from ..errors import SegmentError, WalCorruption
from .catalog import Catalog, Segment, append_in_flight, open_log_file
from .files import OS, Files, read_fd
from .format import DEFAULT_MAX_PAYLOAD
from .validate import validate_buffer

__all__ = ["VerifyReport", "verify"]


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify` found: per file, its validation (or seal check) result.

    ``base_sequence`` is the last sequence the log does not hold (0 when it holds
    everything from the start); ``problem`` the first problem found, or None."""

    files: tuple[tuple[Path, str], ...]
    records: int
    last_sequence: int | None
    problem: WalCorruption | None
    base_sequence: int = 0

    @property
    def clean(self) -> bool:
        return self.problem is None


def verify(data_dir, *, max_payload: int = DEFAULT_MAX_PAYLOAD, decode_sealed: bool = False,
           fs: Files = OS) -> VerifyReport:
    """Check a data dir's whole log without changing it.

    The set of files is proven complete first (:class:`~.catalog.Catalog`: a missing
    segment is a :class:`~actionqueue.errors.SegmentMissing`). Sealed segments are then
    checked against their seal (length and xxh3-128 digest) without decoding, unless
    ``decode_sealed``; the active segment and a Rust single-file log are fully validated,
    and every file must start with the sequence its name says. Stops at the first
    problem, which names the file and offset.
    """
    try:
        catalog = Catalog.load(data_dir, fs)
    except SegmentError as exc:
        return VerifyReport((), 0, None, exc)
    checked: list[tuple[Path, str]] = []
    records = 0
    prev: int | None = None
    for segment in catalog.segments:
        try:
            what, count, last = _check_segment(segment, prev, max_payload, decode_sealed, fs)
        except WalCorruption as exc:
            return VerifyReport(tuple(checked), records + exc.records_before, prev, exc, catalog.base_sequence)
        checked.append((segment.path, what))
        records += count
        prev = last if last is not None else prev
    return VerifyReport(tuple(checked), records, prev, None, catalog.base_sequence)


def _check_segment(segment: Segment, prev: int | None, max_payload: int, decode_sealed: bool,
                   fs: Files) -> tuple[str, int, int | None]:
    """``(result, records, last sequence)`` of one file, or its problem raised."""
    seal = segment.seal
    # the readers' rules: a regular file, an unsealed one not cut below its checkpoint
    fd, size = open_log_file(segment.path, sealed=seal is not None, fs=fs)
    try:
        if seal is not None and not decode_sealed:
            if size != seal.length:
                raise SegmentError(segment.path, min(size, seal.length), "incomplete_payload" if size < seal.length
                                   else "seal_mismatch", f"length {size}, its seal says {seal.length}")
            if digest_fd(fs, fd, size) != seal.xxh3_128:
                raise SegmentError(segment.path, 0, "crc_mismatch", "xxh3-128 digest differs from its seal")
            return "seal ok", seal.records, seal.last_sequence
        data = read_fd(fs, fd, 0, size)
    finally:
        fs.close(fd)
    report = validate_buffer(data, segment.path, prev_sequence=prev, max_payload=max_payload)
    if report.corruption is not None:
        if seal is None and append_in_flight(segment.path, report.corruption, fs):
            # the readers' rule: a live writer's unfinished record ends the file for now
            return "records ok (an append in flight at the end)", report.records, report.last_sequence
        raise report.corruption
    if segment.first_sequence is not None and report.first_sequence not in (None, segment.first_sequence):
        raise SegmentError(segment.path, 0, "name_mismatch",
                           f"segment named for sequence {segment.first_sequence} starts at {report.first_sequence}")
    if seal is not None and (report.records, report.last_sequence, report.end_offset) != (
            seal.records, seal.last_sequence, seal.length):
        raise SegmentError(segment.path, 0, "seal_mismatch", "the records differ from what the seal says")
    return "records ok", report.records, report.last_sequence


def digest_fd(fs: Files, fd: int, size: int) -> str:
    """xxh3-128 of the first ``size`` bytes, read in 4 MiB chunks (constant memory)."""
    hasher = xxhash.xxh3_128()
    offset = 0
    while offset < size:
        chunk = fs.pread(fd, min(4 << 20, size - offset), offset)
        if not chunk:
            break
        hasher.update(chunk)
        offset += len(chunk)
    return hasher.hexdigest()
