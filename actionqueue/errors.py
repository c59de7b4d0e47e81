"""Exception hierarchy of actionqueue.

Every error the package raises on purpose derives from :class:`ActionQueueError`.
The decoding errors mirror the Rust ``DecodeError`` variants one to one; their
``kind`` attribute carries the Rust variant name so that reports from the two
implementations can be compared mechanically.
"""

from __future__ import annotations

__all__ = [
    "ArchiveError",
    "SnapshotError",
    "SnapshotIoError",
    "SnapshotDecodeError",
    "IncompatibleVersion",
    "SnapshotCrcMismatch",
    "SnapshotMappingError",
    "SnapshotBootstrapError",
    "ImageError",
    "ActionQueueError",
    "ValidationError",
    "EncodeError",
    "DecodeError",
    "UnsupportedVersion",
    "InvalidLength",
    "CrcMismatch",
    "PayloadDecodeError",
    "WalCorruption",
    "TornTail",
    "MidLogCorruption",
    "SegmentError",
    "SegmentMissing",
    "WalWriterError",
    "SequenceViolation",
    "PayloadTooLarge",
    "WriterClosed",
    "WriterPoisoned",
    "WalLocked",
    "RepairRefused",
    "RecoveryError",
]

from pathlib import Path


class ActionQueueError(Exception):
    """Base class of every error raised by actionqueue."""


class ValidationError(ActionQueueError, ValueError):
    """A value breaks an invariant the Rust types enforce (nil task id, ``max_attempts == 0``...).

    Raised by constructors. When the same rule fails while decoding bytes, the decoder
    raises :class:`PayloadDecodeError` instead (as Rust reports a deserialization error).
    """


class EncodeError(ActionQueueError, ValueError):
    """An event cannot be encoded: a field holds the wrong type or an out-of-range integer."""


class DecodeError(ActionQueueError, ValueError):
    """Bytes that are not a valid WAL v5 record.

    Attributes:
        kind: the Rust ``DecodeError`` variant: ``"UnsupportedVersion"``, ``"InvalidLength"``,
            ``"CrcMismatch"`` or ``"Decode"``.
        reason: a human-readable explanation.
        offset: byte offset of the problem, relative to the start of the buffer given to the
            decoder (for payload errors, the offset inside that buffer where decoding failed),
            or ``None`` when not applicable.
        record_offset: for batch decoding, the offset of the start of the bad record.
    """

    kind = "Decode"

    def __init__(self, reason: str, offset: int | None = None, record_offset: int | None = None):
        super().__init__(reason, offset, record_offset)
        self.reason = reason
        self.offset = offset
        self.record_offset = record_offset

    def __str__(self) -> str:
        where = []
        if self.record_offset is not None:
            where.append(f"record at byte {self.record_offset}")
        if self.offset is not None:
            where.append(f"byte {self.offset}")
        suffix = f" ({', '.join(where)})" if where else ""
        return f"{self._prefix()}{self.reason}{suffix}"

    def _prefix(self) -> str:
        return "decode error: "


class UnsupportedVersion(DecodeError):
    """The record header names a WAL version other than 5."""

    kind = "UnsupportedVersion"

    def __init__(self, version: int, offset: int | None = None, record_offset: int | None = None):
        super().__init__(
            f"Unsupported WAL version: {version}. Current version: 5", offset, record_offset
        )
        self.version = version
        self.args = (version, offset, record_offset)

    def _prefix(self) -> str:
        return "unsupported version: "


class InvalidLength(DecodeError):
    """The buffer is too short for a record, or the header's length exceeds the buffer."""

    kind = "InvalidLength"

    def _prefix(self) -> str:
        return "invalid length: "


class CrcMismatch(DecodeError):
    """The payload's CRC-32 differs from the one in the record header."""

    kind = "CrcMismatch"

    def __init__(
        self, expected: int, actual: int, offset: int | None = None, record_offset: int | None = None
    ):
        super().__init__(
            f"expected 0x{expected:08x}, actual 0x{actual:08x}", offset, record_offset
        )
        self.expected = expected
        self.actual = actual
        self.args = (expected, actual, offset, record_offset)

    def _prefix(self) -> str:
        return "CRC-32 mismatch: "


class PayloadDecodeError(DecodeError):
    """The CRC-valid payload is not a valid postcard ``WalEvent`` (Rust ``DecodeError::Decode``)."""

    kind = "Decode"


# --------------------------------------------------------------------------------------
# The log (actionqueue.log)
# --------------------------------------------------------------------------------------
# The Rust names of the corruption reasons (WalCorruptionReasonCode), then ours.
_WAL_KINDS = {
    "incomplete_header": "IncompleteHeader",
    "incomplete_payload": "IncompletePayload",
    "unsupported_version": "UnsupportedVersion",
    "decode_failure": "DecodeFailure",
    "crc_mismatch": "CrcMismatch",
    "sequence_not_increasing": "SequenceNotIncreasing",
    # ours: the files around the records
    "segment_missing": "SegmentMissing",
    "segment_unexpected": "SegmentUnexpected",
    "seal_invalid": "SealInvalid",
    "seal_mismatch": "SealMismatch",
    "manifest_invalid": "ManifestInvalid",
    "name_mismatch": "NameMismatch",
}


class WalCorruption(ActionQueueError):
    """A record (or a file of the log) the log cannot accept.

    Attributes:
        path: the file.
        offset: byte offset of the start of the bad record (0 for a whole-file problem).
        reason: the Rust reason name (``incomplete_header``, ``incomplete_payload``,
            ``unsupported_version``, ``decode_failure``, ``crc_mismatch``) or ours
            (``sequence_not_increasing``; for :class:`SegmentError`, a file-level reason
            such as ``segment_missing`` or ``seal_invalid``).
        detail: more about the problem, or None.
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
        """The Rust ``WalCorruptionReasonCode`` variant name of :attr:`reason` (ours for
        the reasons Rust does not have)."""
        return _WAL_KINDS[self.reason]

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
                f"{self.next_valid_offset}: refusing to cut them (see actionqueue.repair)"
            )
        return base


class SegmentError(WalCorruption):
    """A file of the log that does not fit the rest: a segment unsealed in the middle, a
    seal or MANIFEST that does not parse or disagrees with its file, a segment whose first
    record is not the one its name says, a file the catalog does not know."""


class SegmentMissing(SegmentError):
    """A segment the log had is gone (deleted, or lost) and with it a range of sequences.

    Attributes:
        first_sequence: the first sequence of the missing range.
        last_sequence: its last, or None when everything from ``first_sequence`` on is gone.
    """

    def __init__(self, path, first_sequence: int, last_sequence: int | None, detail: str | None = None):
        self.first_sequence = first_sequence
        self.last_sequence = last_sequence
        span = f"{first_sequence}..{last_sequence}" if last_sequence is not None else f"{first_sequence} on"
        why = f"the log's segment is missing: sequences {span} are gone"
        super().__init__(path, 0, "segment_missing", f"{why}; {detail}" if detail else why)


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


class PayloadTooLarge(WalWriterError, ValueError):
    """An event encodes to a payload above the log's cap (``max_payload``, 256 MiB by
    default): every reader would refuse the record, so nothing is written.

    Attributes:
        sequence: the event's sequence. size: its payload bytes. max_payload: the cap.
    """

    def __init__(self, sequence: int, size: int, max_payload: int):
        super().__init__(
            f"event {sequence} encodes to a {size}-byte payload, above the log's cap of {max_payload} bytes"
        )
        self.sequence = sequence
        self.size = size
        self.max_payload = max_payload

    def __reduce__(self):
        return (type(self), (self.sequence, self.size, self.max_payload))


class WriterClosed(WalWriterError):
    """The writer was closed."""


class WriterPoisoned(WalWriterError):
    """An earlier I/O failure left the writer unable to vouch for the file; it refuses
    everything until reopened (which validates the file again)."""


class WalLocked(WalWriterError):
    """Another writer, in this or another process, holds the data dir's log."""


class RepairRefused(ActionQueueError):
    """A repair would leave a log that no longer replays from its start (and no usable
    snapshot covers the cut): nothing was changed. ``repair(..., truncate_at_damage=True)``
    cuts the log at the damage instead, keeping everything after it in the backup.

    Attributes:
        sequence: the first sequence replay rejects after the cut (or None).
    """

    def __init__(self, message: str, sequence: int | None = None):
        super().__init__(message)
        self.sequence = sequence


class RecoveryError(ActionQueueError):
    """The data dir cannot be recovered: the log does not replay, it does not start where
    it must (an earlier range is in no usable snapshot), or a snapshot claims more than
    the log holds."""


# ---- snapshots ----------------------------------------------------------------------
class SnapshotError(ActionQueueError):
    """Base of every snapshot error. ``loader_kind`` is the Rust ``SnapshotLoaderError``
    variant the error corresponds to; ``kind`` is the same except for
    :class:`SnapshotMappingError`, where it names the ``SnapshotMappingError`` variant."""

    loader_kind = "IoError"

    @property
    def kind(self) -> str:
        return self.loader_kind


class SnapshotIoError(SnapshotError):
    """The file could not be opened or read, or the payload is shorter than its length field
    (Rust reports that as ``IoError`` from ``read_exact``)."""

    loader_kind = "IoError"


class SnapshotDecodeError(SnapshotError):
    """A truncated header, a length above :data:`MAX_SNAPSHOT_BYTES`, JSON that does not parse,
    or JSON that does not have the schema's shape and types (Rust ``DecodeError``)."""

    loader_kind = "DecodeError"


class IncompatibleVersion(SnapshotError):
    """The frame version is not the expected one (Rust ``IncompatibleVersion``)."""

    loader_kind = "IncompatibleVersion"

    def __init__(self, expected: int, found: int) -> None:
        super().__init__(f"incompatible snapshot version: expected {expected}, found {found}")
        self.expected = expected
        self.found = found


class SnapshotCrcMismatch(SnapshotError):
    """The payload's CRC-32 differs from the header's (Rust ``CrcMismatch``)."""

    loader_kind = "CrcMismatch"

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"snapshot CRC-32 mismatch: expected 0x{expected:08x}, actual 0x{actual:08x}")
        self.expected = expected  # stored in the header
        self.actual = actual  # computed from the payload


class SnapshotMappingError(SnapshotError):
    """The snapshot breaks a consistency rule of :func:`validate_snapshot`.

    ``kind`` is the Rust ``SnapshotMappingError`` variant name (``"TaskCountMismatch"``,
    ``"InvalidRunStateHistoryTransition"``...); ``fields`` holds its fields.
    """

    loader_kind = "MappingError"

    def __init__(self, kind: str, **fields: object) -> None:
        detail = ", ".join(f"{k}={v}" for k, v in fields.items())
        super().__init__(f"{kind}({detail})" if detail else kind)
        self._kind = kind
        self.fields = fields

    @property
    def kind(self) -> str:
        return self._kind


class SnapshotBootstrapError(SnapshotError):
    """Hydrating a reducer from a snapshot failed (Rust ``RecoveryBootstrapError::SnapshotBootstrap``)."""

    loader_kind = "SnapshotBootstrap"


class ImageError(ActionQueueError, ValueError):
    """A snapshot image does not belong to its snapshot or is damaged. At load, recovery
    falls back to ``snapshot.bin``; a record found bad later (a forged file or a bug)
    raises this when it is first used."""


class ArchiveError(ActionQueueError):
    """A segment archive (retention's) could not store, list or return a segment."""
