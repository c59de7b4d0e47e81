"""actionqueue: a fast, durable event log for task queues.

The storage layer of the Rust project ActionQueue rebuilt for Python and wire-compatible
with it: WAL v5 records (postcard payloads, CRC-32 framing), typed immutable events, and
a native (Cython) codec with a pure-Python twin.

Backend selection: the native codec is used when it is built; ``ACTIONQUEUE_PUREPYTHON=1``
forces the pure-Python one. ``actionqueue.backend`` says which one loaded.
"""

from __future__ import annotations

import logging as _logging
from typing import TYPE_CHECKING

from . import _backend

if _backend.FORCED_PURE:
    _backend._run_sources()
from .model import *  # noqa: F403 - the event model is the public API
from .errors import (  # every error type a user can catch
    ActionQueueError,
    AlreadyExists,
    ArchiveError,
    AuthorityPoisoned,
    CommandRejected,
    Conflict,
    CorruptedData,
    CrcMismatch,
    DecodeError,
    DerivationRejected,
    DuplicateEvent,
    EncodeError,
    EngineControlCausality,
    ImageError,
    IncompatibleVersion,
    InvalidCommand,
    InvalidLength,
    InvalidTransition,
    LeaseCausality,
    MidLogCorruption,
    MissingExtra,
    MutationError,
    NotADataDir,
    NotFound,
    OutputError,
    PayloadDecodeError,
    PayloadTooLarge,
    RecoveryError,
    ReducerError,
    RepairRefused,
    ReplayWouldReject,
    SegmentError,
    SegmentMissing,
    SequenceViolation,
    SnapshotBootstrapError,
    SnapshotCrcMismatch,
    SnapshotDecodeError,
    SnapshotError,
    SnapshotIoError,
    SnapshotMappingError,
    Terminated,
    TaskCausality,
    TornTail,
    UnknownFile,
    UnsupportedVersion,
    ValidationError,
    WalCorruption,
    WalLocked,
    WalWriterError,
    WriterClosed,
    WriterPoisoned,
)

if TYPE_CHECKING or _backend.NATIVE:  # type checkers see the native stubs
    from .codec import _codec as _codec_impl

    backend = "cython"
else:
    from .codec import _codec_py as _codec_impl  # type: ignore[no-redef]

    backend = "python"
    _backend.warn_unavailable()  # one line, unless ACTIONQUEUE_PUREPYTHON chose this

#: Encode one event as a framed WAL v5 record (header + postcard payload).
encode = _codec_impl.encode
#: Decode one framed record (version, length and CRC-32 checked).
decode = _codec_impl.decode
#: Encode one event as an unframed postcard payload.
encode_payload = _codec_impl.encode_payload
#: Decode one unframed postcard payload.
decode_payload = _codec_impl.decode_payload
#: Encode many events into one buffer of consecutive framed records.
encode_batch = _codec_impl.encode_batch
#: Decode a buffer of consecutive framed records into a list of events.
decode_batch = _codec_impl.decode_batch
#: CRC-32 (ISO-HDLC, the zlib CRC) as used in record headers.
crc32 = _codec_impl.crc32

from .wal import (  # noqa: E402 - needs the codec chosen above
    Durability,
    Layout,
    RepairPolicy,
    WalReader,
    WalWriter,
    validate_file,
    verify,
)

from .state.reducer import (  # noqa: E402
    ReplayReducer,
)

from .snapshot import (  # noqa: E402
    build_snapshot,
    take_snapshot,
    load_snapshot,
    reducer_from_snapshot,
    write_snapshot,
)

from . import scan  # noqa: E402 - a module that is also the function: aq.scan(dir) and aq.scan.scan(dir)
from .log.scan import SegmentScanner  # noqa: E402
from .recovery import RecoveryReport, Store, repair, replay_to  # noqa: E402
from .state.authority import (  # noqa: E402
    MutationAuthority,
    MutationOutcome,
)
from .recovery import open  # noqa: E402,A004 - actionqueue.open(data_dir) recovers a data dir

if TYPE_CHECKING:
    from . import aio  # noqa: F401 - imported on first use below (asyncio costs ~50 ms to import)


def __getattr__(name: str) -> object:
    # ``aq.aio``: the asyncio API, imported when first used
    if name == "aio":
        import importlib

        return importlib.import_module(".aio", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

_logging.getLogger("actionqueue").addHandler(_logging.NullHandler())

__version__ = "0.1.0.dev0"

# A static list (type checkers read it); tests/test_typing.py checks it against what the
# package holds.
__all__ = [
    "U8",
    "U32",
    "U64",
    "I32",
    "TaskId",
    "RunId",
    "AttemptId",
    "ActorId",
    "TenantId",
    "LedgerEntryId",
    "SubscriptionId",
    "RunState",
    "AttemptResultKind",
    "BudgetDimension",
    "ConcurrencyKeyHoldPolicy",
    "SafetyLevel",
    "Role",
    "Capability",
    "TaskPayload",
    "RunPolicy",
    "OncePolicy",
    "RepeatPolicy",
    "CronPolicy",
    "TaskConstraints",
    "TaskMetadata",
    "TaskSpec",
    "RunInstance",
    "EventFilter",
    "TaskCompletedFilter",
    "RunStateChangedFilter",
    "BudgetThresholdFilter",
    "CustomFilter",
    "Event",
    "WalEvent",
    "EVENT_TYPES",
    "TaskCreated",
    "RunCreated",
    "RunStateChanged",
    "AttemptStarted",
    "AttemptFinished",
    "TaskCanceled",
    "RunCanceled",
    "LeaseAcquired",
    "LeaseHeartbeat",
    "LeaseExpired",
    "LeaseReleased",
    "EnginePaused",
    "EngineResumed",
    "DependencyDeclared",
    "RunSuspended",
    "RunResumed",
    "BudgetAllocated",
    "BudgetConsumed",
    "BudgetExhausted",
    "BudgetReplenished",
    "SubscriptionCreated",
    "SubscriptionTriggered",
    "SubscriptionCanceled",
    "ActorRegistered",
    "ActorDeregistered",
    "ActorHeartbeat",
    "TenantCreated",
    "RoleAssigned",
    "CapabilityGranted",
    "CapabilityRevoked",
    "LedgerEntryAppended",
    "ActionQueueError",
    "ValidationError",
    "EncodeError",
    "DecodeError",
    "UnsupportedVersion",
    "InvalidLength",
    "CrcMismatch",
    "PayloadDecodeError",
    "encode",
    "decode",
    "encode_payload",
    "decode_payload",
    "encode_batch",
    "decode_batch",
    "crc32",
    "backend",
    "WalWriter",
    "WalReader",
    "RepairPolicy",
    "Durability",
    "Layout",
    "verify",
    "repair",
    "validate_file",
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
    "PayloadTooLarge",
    "RepairRefused",
    "scan",
    "SegmentScanner",
    "WalWriterError",
    "SequenceViolation",
    "WriterClosed",
    "WriterPoisoned",
    "WalLocked",
    "ReplayReducer",
    "ReducerError",
    "InvalidTransition",
    "DuplicateEvent",
    "CorruptedData",
    "LeaseCausality",
    "TaskCausality",
    "EngineControlCausality",
    "SnapshotError",
    "build_snapshot",
    "take_snapshot",
    "write_snapshot",
    "load_snapshot",
    "reducer_from_snapshot",
    "open",
    "replay_to",
    "Store",
    "RecoveryReport",
    "RecoveryError",
    "MutationAuthority",
    "MutationOutcome",
    "aio",
    "MutationError",
    "CommandRejected",
    "ReplayWouldReject",
    "AuthorityPoisoned",
    "NotFound",
    "AlreadyExists",
    "Conflict",
    "InvalidCommand",
    "DerivationRejected",
    "ArchiveError",
    "SnapshotIoError",
    "SnapshotDecodeError",
    "IncompatibleVersion",
    "SnapshotCrcMismatch",
    "SnapshotMappingError",
    "SnapshotBootstrapError",
    "ImageError",
]
