"""The segmented layout's names, kept importable from ``actionqueue.segments``.

The code lives in :mod:`actionqueue.log.catalog` (the only code that names, lists and
orders the log's files) and :mod:`actionqueue.log.format` (the constants).
"""

from __future__ import annotations

import os
from pathlib import Path

from .log.catalog import Catalog, Seal, Segment, segment_name, write_seal
from .log.files import OS
from .log.format import DEFAULT_SEGMENT_BYTES, SEAL_SUFFIX, SEGMENT_SUFFIX
from .log.verify import digest_fd

__all__ = ["SEGMENT_SUFFIX", "SEAL_SUFFIX", "DEFAULT_SEGMENT_BYTES", "Segment", "Seal", "segment_name",
           "list_segments", "write_seal", "digest_file"]


def list_segments(wal_dir) -> list[Segment]:
    """The segments of the log in ``wal_dir``, in sequence order, proven complete."""
    return list(Catalog.load(Path(wal_dir).parent).segments) if Path(wal_dir).is_dir() else []


def digest_file(path, length: int | None = None) -> str:
    """xxh3-128 of the first ``length`` bytes of ``path`` (all of it by default)."""
    fd = OS.open(path, os.O_RDONLY)
    try:
        return digest_fd(OS, fd, OS.fsize(fd) if length is None else length)
    finally:
        OS.close(fd)
