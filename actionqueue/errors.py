"""Exception hierarchy of actionqueue.

Every error the package raises on purpose derives from :class:`ActionQueueError`.
The decoding errors mirror the Rust ``DecodeError`` variants one to one; their
``kind`` attribute carries the Rust variant name so that reports from the two
implementations can be compared mechanically.
"""

from __future__ import annotations

__all__ = [
    "ReducerError",
    "InvalidTransition",
    "DuplicateEvent",
    "CorruptedData",
    "LeaseCausality",
    "TaskCausality",
    "EngineControlCausality",
    "MutationError",
    "CommandRejected",
    "NotFound",
    "AlreadyExists",
    "Conflict",
    "InvalidCommand",
    "ReplayWouldReject",
    "DerivationRejected",
    "AuthorityPoisoned",
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
    "UnknownFile",
    "NotADataDir",
    "MissingExtra",
    "OutputError",
    "Terminated",
    "WalWriterError",
    "SequenceViolation",
    "PayloadTooLarge",
    "WriterClosed",
    "WriterPoisoned",
    "WalLocked",
    "RepairRefused",
    "RecoveryError",
]

import enum
from pathlib import Path
from typing import Any, ClassVar


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
    "file_unknown": "UnknownFile",
    "not_a_file": "NotAFile",
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


class UnknownFile(SegmentError):
    """``wal/`` holds files that are no part of a log, nor a temporary file a writer of one
    leaves (:func:`actionqueue.log.catalog.check_wal_names` is the rule). They are never
    ignored: the directory is not a data dir, or something else wrote into its log's
    folder, and nothing reads, writes or repairs it until they are moved out.

    Attributes:
        names: the unknown names, sorted (:attr:`path` is the first one's path).
        in_log: whether ``wal/`` holds a log besides them (False: it is no data dir's
            ``wal/`` at all).
    """

    def __init__(self, wal_dir, names, in_log: bool):
        self.names = tuple(sorted(names))
        self.in_log = in_log
        rest = self.names[1:]
        nor = f", nor {'is' if len(rest) == 1 else 'are'} {', '.join(rest[:3])}{', ...' if len(rest) > 3 else ''}"
        detail = "not a file of an actionqueue log" + (nor if rest else "")
        super().__init__(Path(wal_dir) / self.names[0], 0, "file_unknown", detail)

    def __str__(self) -> str:
        assert self.path is not None
        return f"{self.path}: {self.detail}; move {'them' if len(self.names) > 1 else 'it'} out of {self.path.parent}"


class NotADataDir(ActionQueueError):
    """A directory that is not a data dir (no ``wal/`` or ``snapshots/`` inside) and not
    empty either: a writer starts a data dir only in an empty directory, never among
    other files.

    Attributes:
        path: the directory. detail: what it holds instead.
    """

    def __init__(self, path, detail: str):
        self.path = Path(path)
        self.detail = detail
        super().__init__(f"{path} is not an actionqueue data dir: {detail}")

    def __reduce__(self):
        return (type(self), (self.path, self.detail))


class MissingExtra(ActionQueueError, ImportError):
    """A feature needs an optional dependency that is not installed (``pyarrow`` for the
    Arrow and Parquet export, ``prometheus_client`` for the Prometheus collector). The message is one line with the install command.

    Attributes:
        module: the module that is missing. extra: the package extra that installs it.
    """

    def __init__(self, module: str, extra: str, purpose: str):
        self.module = module
        self.extra = extra
        self.purpose = purpose
        super().__init__(f"{purpose} needs {module}, which is not installed: pip install 'actionqueue[{extra}]'",
                         name=module)

    def __reduce__(self):
        return (type(self), (self.module, self.extra, self.purpose))


class OutputError(ActionQueueError, OSError):
    """Writing an output file failed (``export``'s OUT: no space left, a read-only file
    system, no permission): the fault is the output, not the data. An :class:`OSError`
    with the original ``errno`` and ``strerror``; ``filename`` is the output file (not
    its temporary file). The CLI exits 2 with one line."""

    def __init__(self, errno: int | None, strerror: str | None, filename: str):
        OSError.__init__(self, errno, strerror, filename)

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror or 'write failed'}"

    def __reduce__(self):
        return (type(self), (self.errno, self.strerror, self.filename))


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as an exception (the CLI turns SIGTERM into this while a command
    writes a temporary file, so that its cleanup runs as on Ctrl-C). A
    :class:`KeyboardInterrupt`, so that code which unwinds on Ctrl-C unwinds on it too;
    the CLI exits 143 (128 + SIGTERM)."""


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


# ---- replay: the reducer's errors (Rust ``ReplayReducerError``) ---------------------------
def _rust_debug_str(s: str) -> str:
    """A string as Rust's ``{:?}`` writes it (quotes; escapes for quotes, backslash, controls)."""
    out = ['"']
    for ch in s:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\0":
            out.append("\\0")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _rust_debug_value(value: Any, optional: bool = False) -> str:
    # Told apart by shape, not by class: the model imports this module, never the reverse.
    if optional:
        return "None" if value is None else f"Some({_rust_debug_value(value)})"
    if isinstance(value, str):
        return _rust_debug_str(value)
    if isinstance(value, enum.Enum):  # RunState: Debug is the variant name, its value
        return str(value.value)
    if isinstance(getattr(value, "bytes", None), bytes) and hasattr(value, "uuid"):  # an id newtype
        return f"{type(value).__name__}({value})"
    return str(value)


def _restore_error(cls: type, args: tuple, kwargs: dict) -> ReducerError:
    return cls(*args, **kwargs)


class ReducerError(ActionQueueError):
    """The reducer rejected an event (Rust ``ReplayReducerError``); the projection is unchanged.

    Attributes:
        kind: the Rust variant name (``"InvalidTransition"``, ``"DuplicateEvent"``,
            ``"CorruptedData"``, ``"LeaseCausality"``, ``"TaskCausality"``,
            ``"EngineControlCausality"``), as on every error.
        sequence: the sequence number of the rejected event (set by
            :meth:`ReplayReducer.apply`; ``None`` when the error was built elsewhere).
        reason: what exactly was wrong, for the variants whose Rust text says nothing
            specific (``None`` for the causality errors, whose text is already specific).
        rust_display: Rust's ``Display`` text of the error, byte for byte.
        rust_debug: Rust's ``Debug`` text of the error.
        detail_kind: the sub-error variant of the causality errors (``"UnknownRun"``...),
            ``None`` for the others.

    ``str(error)`` is ``rust_display`` followed by the reason and the sequence.
    """

    kind: ClassVar[str] = ""
    _RUST_DISPLAY: ClassVar[str] = ""
    detail_kind: str | None = None

    def __init__(self, reason: str | None = None, *, sequence: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.sequence = sequence

    @property
    def rust_display(self) -> str:
        return self._RUST_DISPLAY

    @property
    def rust_debug(self) -> str:
        return self.kind

    def __str__(self) -> str:
        text = self.rust_display
        notes = []
        if self.sequence is not None:
            notes.append(f"sequence {self.sequence}")
        if self.reason:
            notes.append(self.reason)
        return f"{text} ({': '.join(notes)})" if notes else text

    def __reduce__(self):
        return (_restore_error, (type(self), (self.reason,), {"sequence": self.sequence}))


class InvalidTransition(ReducerError):
    """Rust ``InvalidTransition``: an illegal run transition, an event for an unknown run, an
    attempt event that does not fit the run, or a sequence not above the latest one."""

    kind = "InvalidTransition"
    _RUST_DISPLAY = "Invalid state transition during replay"


class DuplicateEvent(ReducerError):
    """Rust ``DuplicateEvent``: ``TaskCreated`` / ``RunCreated`` for an id that already exists."""

    kind = "DuplicateEvent"
    _RUST_DISPLAY = "Duplicate event detected"


class CorruptedData(ReducerError):
    """Rust ``CorruptedData``: the event contradicts the projection's own bookkeeping (attempt
    history without the attempt, attempt counter overflow)."""

    kind = "CorruptedData"
    _RUST_DISPLAY = "Corrupted event data"


class _CausalityError(ReducerError):
    """A causality error with a typed sub-variant (``detail_kind``) and its fields as attributes."""

    #: sub-variant -> its fields, in Rust declaration order.
    _VARIANTS: ClassVar[dict[str, tuple[str, ...]]] = {}
    _OPTIONAL_FIELDS: ClassVar[frozenset[str]] = frozenset()
    _PREFIX: ClassVar[str] = ""

    def __init__(self, detail_kind: str, *, sequence: int | None = None, **fields: Any):
        names = self._VARIANTS.get(detail_kind)
        if names is None:
            raise ValueError(f"unknown {type(self).__name__} kind {detail_kind!r}")
        if set(fields) != set(names):
            raise TypeError(f"{type(self).__name__}({detail_kind}) takes the fields {names}, got {tuple(fields)}")
        super().__init__(None, sequence=sequence)
        self.detail_kind = detail_kind
        for name in self._all_fields():
            setattr(self, name, fields.get(name))
        self.fields = {name: fields[name] for name in names}
        self.args = (self.details,)

    @classmethod
    def _all_fields(cls) -> list[str]:
        seen: dict[str, None] = {}
        for names in cls._VARIANTS.values():
            seen.update(dict.fromkeys(names))
        return list(seen)

    @property
    def details(self) -> str:
        """The Display text of the Rust sub-error (the part after the prefix)."""
        raise NotImplementedError

    @property
    def rust_display(self) -> str:
        return f"{self._PREFIX}: {self.details}"

    #: fields that are unit enums, written unquoted in Debug output
    _UNIT_FIELDS: ClassVar[frozenset[str]] = frozenset()

    @property
    def rust_debug(self) -> str:
        parts = ", ".join(
            f"{name}: {value if name in self._UNIT_FIELDS else _rust_debug_value(value, name in self._OPTIONAL_FIELDS)}"
            for name, value in self.fields.items()
        )
        return f"{self.kind}({self.detail_kind} {{ {parts} }})"

    def __reduce__(self):
        return (_restore_error, (type(self), (self.detail_kind,), {"sequence": self.sequence, **self.fields}))


#: Lease event kinds of :class:`LeaseCausality` (``.event``), with their Rust Display text.
LEASE_EVENT_TEXT = {
    "Acquire": "lease acquire",
    "Heartbeat": "lease heartbeat",
    "Expire": "lease expire",
    "Release": "lease release",
}


class LeaseCausality(_CausalityError):
    """Rust ``LeaseCausality(LeaseCausalityError)``.

    ``detail_kind`` is the ``LeaseCausalityError`` variant; the fields are attributes (``run_id``,
    ``event`` = ``"Acquire"``/``"Heartbeat"``/``"Expire"``/``"Release"``, ``state``,
    ``expected_owner``/``actual_owner``, ``expected_expiry``/``actual_expiry``,
    ``previous_expiry``/``proposed_expiry``); those a variant lacks are ``None``.
    """

    kind = "LeaseCausality"
    _PREFIX = "Lease causality violation during replay"
    _UNIT_FIELDS = frozenset({"event"})  # the lease event kind is a unit enum
    _VARIANTS = {
        "UnknownRun": ("run_id", "event"),
        "InvalidRunState": ("run_id", "event", "state"),
        "MissingActiveLease": ("run_id", "event"),
        "LeaseAlreadyActive": ("run_id",),
        "OwnerMismatch": ("run_id", "event", "expected_owner", "actual_owner"),
        "ExpiryMismatch": ("run_id", "event", "expected_expiry", "actual_expiry"),
        "NonMonotonicHeartbeatExpiry": ("run_id", "previous_expiry", "proposed_expiry"),
    }

    def __init__(self, detail_kind: str, *, sequence: int | None = None, **fields: Any):
        event = fields.get("event")
        if event is not None and event not in LEASE_EVENT_TEXT:
            raise ValueError(f"unknown lease event {event!r}")
        super().__init__(detail_kind, sequence=sequence, **fields)

    @property
    def details(self) -> str:
        kind = self.detail_kind
        run = self.run_id  # type: ignore[attr-defined]
        what = LEASE_EVENT_TEXT.get(self.event, "")  # type: ignore[attr-defined]
        if kind == "UnknownRun":
            return f"{what} rejected: unknown run {run}"
        if kind == "InvalidRunState":
            return f"{what} rejected for run {run}: invalid state {self.state.value}"  # type: ignore[attr-defined]
        if kind == "MissingActiveLease":
            return f"{what} rejected for run {run}: missing active lease"
        if kind == "LeaseAlreadyActive":
            return f"lease acquire rejected for run {run}: lease already active"
        if kind == "OwnerMismatch":
            return (
                f"{what} rejected for run {run}: owner mismatch "
                f"expected={self.expected_owner} actual={self.actual_owner}"  # type: ignore[attr-defined]
            )
        if kind == "ExpiryMismatch":
            return (
                f"{what} rejected for run {run}: expiry mismatch "
                f"expected={self.expected_expiry} actual={self.actual_expiry}"  # type: ignore[attr-defined]
            )
        return (
            f"lease heartbeat rejected for run {run}: expiry regression "
            f"previous={self.previous_expiry} proposed={self.proposed_expiry}"  # type: ignore[attr-defined]
        )


class TaskCausality(_CausalityError):
    """Rust ``TaskCausality(TaskCausalityError)``: ``detail_kind`` is ``"UnknownTask"`` (``task_id``)
    or ``"AlreadyCanceled"`` (``task_id``, ``first_canceled_at``, ``duplicate_canceled_at``)."""

    kind = "TaskCausality"
    _PREFIX = "Task causality violation during replay"
    _VARIANTS = {
        "UnknownTask": ("task_id",),
        "AlreadyCanceled": ("task_id", "first_canceled_at", "duplicate_canceled_at"),
    }

    @property
    def details(self) -> str:
        if self.detail_kind == "UnknownTask":
            return f"task canceled rejected: unknown task {self.task_id}"  # type: ignore[attr-defined]
        return (
            f"task canceled rejected for task {self.task_id}: already canceled at "  # type: ignore[attr-defined]
            f"{self.first_canceled_at}, duplicate timestamp {self.duplicate_canceled_at}"  # type: ignore[attr-defined]
        )


class EngineControlCausality(_CausalityError):
    """Rust ``EngineControlCausality(EngineControlCausalityError)``: ``detail_kind`` is
    ``"AlreadyPaused"`` (``first_paused_at`` (may be None), ``duplicate_paused_at``),
    ``"NotPaused"`` (``attempted_resumed_at``) or ``"ResumeBeforePause"`` (``paused_at``,
    ``resumed_at``)."""

    kind = "EngineControlCausality"
    _PREFIX = "Engine control causality violation during replay"
    _VARIANTS = {
        "AlreadyPaused": ("first_paused_at", "duplicate_paused_at"),
        "NotPaused": ("attempted_resumed_at",),
        "ResumeBeforePause": ("paused_at", "resumed_at"),
    }
    _OPTIONAL_FIELDS = frozenset({"first_paused_at"})

    @property
    def details(self) -> str:
        kind = self.detail_kind
        if kind == "AlreadyPaused":
            first = self.first_paused_at  # type: ignore[attr-defined]
            dup = self.duplicate_paused_at  # type: ignore[attr-defined]
            if first is None:
                return f"engine pause rejected: already paused, duplicate timestamp {dup}"
            return f"engine pause rejected: already paused at {first}, duplicate timestamp {dup}"
        if kind == "NotPaused":
            return (
                "engine resume rejected: engine not paused at timestamp "
                f"{self.attempted_resumed_at}"  # type: ignore[attr-defined]
            )
        return (
            f"engine resume rejected: resumed_at {self.resumed_at} precedes paused_at "  # type: ignore[attr-defined]
            f"{self.paused_at}"  # type: ignore[attr-defined]
        )


# ---- commands: the mutation authority's errors --------------------------------------
class MutationError(ActionQueueError):
    """Base of the errors the mutation authority raises itself."""


class CommandRejected(MutationError):
    """A command failed validation; nothing was written and nothing changed.

    Attributes:
        kind: the rule that failed, a stable name: Rust's ``MutationValidationError``
            variant where Rust has the rule (``"UnknownRun"``, ``"LeaseOwnerMismatch"``...),
            otherwise ours (``"AttemptInProgress"``, ``"InvalidArgument"``...).
        command: the command's name (``"transition_run"``...).
        fields: the values that explain the rejection (``run_id``, ``expected``...), also
            available as attributes.
    """

    kind: str

    def __init__(self, kind: str, command: str, reason: str, **fields: Any):
        super().__init__(kind, command, reason)
        self.kind = kind
        self.command = command
        self.reason = reason
        self.fields = fields
        for name, value in fields.items():
            setattr(self, name, value)

    def __str__(self) -> str:
        return f"{self.command} rejected ({self.kind}): {self.reason}"

    def __reduce__(self):
        return (_rebuild_rejection, (type(self), self.kind, self.command, self.reason, self.fields))


def _rebuild_rejection(cls: type, kind: str, command: str, reason: str, fields: dict) -> CommandRejected:
    return cls(kind, command, reason, **fields)


class NotFound(CommandRejected):
    """The command names a task, run or subscription the projection does not hold."""


class AlreadyExists(CommandRejected):
    """The command creates a task, run or subscription whose id is taken."""


class Conflict(CommandRejected):
    """The command does not fit the current state (run state, lease, attempt, engine,
    cancellation, sequence)."""


class InvalidCommand(CommandRejected):
    """The command's own values are invalid, whatever the state."""


class ReplayWouldReject(CommandRejected):
    """The final gate: the reducer would reject the event, so it is not written.

    ``reducer_error`` is the :class:`~actionqueue.ReducerError` replay would raise (also
    the ``__cause__``). The authority's own checks normally catch these first.
    """

    def __init__(self, kind: str, command: str, reason: str, **fields: Any):
        super().__init__(kind, command, reason, **fields)
        self.reducer_error = fields.get("reducer_error")


class DerivationRejected(CommandRejected):
    """Run derivation is impossible (Rust ``DerivationError``: ``kind`` is
    ``"ArithmeticOverflow"`` or ``"InvalidPolicy"``)."""


class AuthorityPoisoned(MutationError):
    """The authority's projection may no longer match the log (an apply failed after a
    durable append, or an append failed after its record reached the log). Every command
    is refused; reopen the data dir (recovery replays the log)."""


# ---- snapshots ----------------------------------------------------------------------
class SnapshotError(ActionQueueError):
    """Base of every snapshot error. ``kind`` is the Rust ``SnapshotLoaderError`` variant
    the error corresponds to; ``detail_kind`` the ``SnapshotMappingError`` variant of a
    :class:`SnapshotMappingError` (``None`` on the others)."""

    kind: ClassVar[str] = "IoError"
    detail_kind: str | None = None


class SnapshotIoError(SnapshotError):
    """The file could not be opened or read, or the payload is shorter than its length field
    (Rust reports that as ``IoError`` from ``read_exact``)."""

    kind = "IoError"


class SnapshotDecodeError(SnapshotError):
    """A truncated header, a length above :data:`MAX_SNAPSHOT_BYTES`, JSON that does not parse,
    or JSON that does not have the schema's shape and types (Rust ``DecodeError``)."""

    kind = "DecodeError"


class IncompatibleVersion(SnapshotError):
    """The frame version is not the expected one (Rust ``IncompatibleVersion``)."""

    kind = "IncompatibleVersion"

    def __init__(self, expected: int, found: int) -> None:
        super().__init__(f"incompatible snapshot version: expected {expected}, found {found}")
        self.expected = expected
        self.found = found


class SnapshotCrcMismatch(SnapshotError):
    """The payload's CRC-32 differs from the header's (Rust ``CrcMismatch``)."""

    kind = "CrcMismatch"

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"snapshot CRC-32 mismatch: expected 0x{expected:08x}, actual 0x{actual:08x}")
        self.expected = expected  # stored in the header
        self.actual = actual  # computed from the payload


class SnapshotMappingError(SnapshotError):
    """The snapshot breaks a consistency rule of :func:`validate_snapshot`.

    ``kind`` is ``"MappingError"``; ``detail_kind`` the Rust ``SnapshotMappingError``
    variant name (``"TaskCountMismatch"``, ``"InvalidRunStateHistoryTransition"``...);
    ``fields`` holds its fields.
    """

    kind = "MappingError"

    def __init__(self, detail_kind: str, **fields: object) -> None:
        detail = ", ".join(f"{k}={v}" for k, v in fields.items())
        super().__init__(f"{detail_kind}({detail})" if detail else detail_kind)
        self.detail_kind = detail_kind
        self.fields = fields


class SnapshotBootstrapError(SnapshotError):
    """Hydrating a reducer from a snapshot failed (Rust ``RecoveryBootstrapError::SnapshotBootstrap``)."""

    kind = "SnapshotBootstrap"


class ImageError(ActionQueueError, ValueError):
    """A snapshot image does not belong to its snapshot or is damaged. At load, recovery
    falls back to ``snapshot.bin``; a record found bad later (a forged file or a bug)
    raises this when it is first used."""


class ArchiveError(ActionQueueError):
    """A segment archive (retention's) could not store, list or return a segment."""
