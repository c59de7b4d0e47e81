"""The log: files <-> records.

``format`` (constants), ``files`` (the file-system seam and the one atomic write),
``catalog`` (which files make up the log, proven complete), ``checkpoint``, ``validate``
(the record classifier's verdicts), ``writer``, ``reader``, ``scan``, ``verify`` and
``repair``. Data flows down: this package knows records and files, not what events mean.
"""

from __future__ import annotations

from ..errors import (
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
from .catalog import Catalog, Layout, Manifest, Seal, Segment, detect_layout, segment_name
from .checkpoint import Checkpoint
from .files import OS, Files, atomic_write
from .format import CHECKPOINT_NAME, DEFAULT_MAX_PAYLOAD, DEFAULT_SEGMENT_BYTES, LOCK_NAME, MANIFEST_NAME, RUST_WAL_NAME
from .reader import WalReader
from .repair import Cut, RepairPlan, RepairResult, repair_log
from .scan import ScanColumns, SegmentScanner, kind_mask, scan
from .validate import ValidationReport, first_sequence, validate_buffer, validate_file
from .verify import VerifyReport, verify
from .writer import Durability, PendingWrite, RepairPolicy, WalWriter

__all__ = [
    "Catalog", "Layout", "Manifest", "Seal", "Segment", "detect_layout", "segment_name",
    "Checkpoint", "OS", "Files", "atomic_write",
    "CHECKPOINT_NAME", "DEFAULT_MAX_PAYLOAD", "DEFAULT_SEGMENT_BYTES", "LOCK_NAME", "MANIFEST_NAME", "RUST_WAL_NAME",
    "WalReader", "Cut", "RepairPlan", "RepairResult", "repair_log",
    "ScanColumns", "SegmentScanner", "kind_mask", "scan",
    "ValidationReport", "first_sequence", "validate_buffer", "validate_file",
    "VerifyReport", "verify", "Durability", "PendingWrite", "RepairPolicy", "WalWriter",
    "MidLogCorruption", "PayloadTooLarge", "SegmentError", "SegmentMissing", "SequenceViolation", "TornTail",
    "WalCorruption", "WalLocked", "WalWriterError", "WriterClosed", "WriterPoisoned",
]
