"""The write-ahead log's public names, kept importable from ``actionqueue.wal``.

The code lives in :mod:`actionqueue.log` (one module per concern: the catalog of files,
the file-system seam, the writer, the reader, validation, verify, repair); the errors in
:mod:`actionqueue.errors`. This module only re-exports them.
"""

from __future__ import annotations

from .errors import (
    MidLogCorruption,
    PayloadTooLarge,
    SegmentError,
    SegmentMissing,
    SequenceViolation,
    TornTail,
    WalCorruption,
    WalLocked,
    WalWriterError,
    WriterClosed,
    WriterPoisoned,
)
from .log._walker import codec as _codec_impl, walker as _walker
from .log.catalog import Layout, detect_layout
from .log.checkpoint import Checkpoint
from .log.files import OS as _OS
from .log.format import CHECKPOINT_NAME, LOCK_NAME, MANIFEST_NAME, RUST_WAL_NAME
from .log.reader import WalReader
from .log.repair import RepairPlan, RepairResult
from .log.validate import ValidationReport, validate_buffer, validate_file
from .log.verify import VerifyReport, verify
from .log.writer import Durability, PendingWrite, RepairPolicy, WalWriter

__all__ = [
    "RepairPolicy", "Durability", "WalCorruption", "TornTail", "MidLogCorruption", "WalWriterError",
    "SequenceViolation", "PayloadTooLarge", "WriterClosed", "WriterPoisoned", "WalLocked", "ValidationReport",
    "validate_buffer", "validate_file", "Layout", "detect_layout", "log_files", "SegmentError", "SegmentMissing",
    "WalWriter", "WalReader", "PendingWrite", "VerifyReport", "verify", "RepairResult", "RepairPlan", "repair",
    "Checkpoint", "RUST_WAL_NAME", "LOCK_NAME", "CHECKPOINT_NAME", "MANIFEST_NAME",
]


def log_files(data_dir, fs=_OS) -> list:
    """The files of a data dir's log, oldest first (proven complete by the catalog)."""
    from .log.catalog import Catalog

    return Catalog.load(data_dir, fs).files


def fsync_dir(path) -> None:
    """fsync a directory (the OS seam's)."""
    _OS.fsync_dir(path)


def repair(data_dir, **kwargs) -> RepairPlan:
    """:func:`actionqueue.repair` (the log's repair, with the replay check of the state
    layer above it)."""
    from .recovery import repair as _repair

    return _repair(data_dir, **kwargs)
