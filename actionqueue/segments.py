"""The segmented layout's names, kept importable from ``actionqueue.segments``.

The code lives in :mod:`actionqueue.log.catalog` (the only code that names, lists and
orders the log's files) and :mod:`actionqueue.log.format` (the constants).
"""

from __future__ import annotations

from pathlib import Path

import xxhash

from .log.catalog import Catalog, Seal, Segment, segment_name, write_seal
from .log.format import DEFAULT_SEGMENT_BYTES, SEAL_SUFFIX, SEGMENT_SUFFIX

__all__ = ["SEGMENT_SUFFIX", "SEAL_SUFFIX", "DEFAULT_SEGMENT_BYTES", "Segment", "Seal", "segment_name",
           "list_segments", "write_seal", "digest_file"]


def list_segments(wal_dir) -> list[Segment]:
    """The segments of the log in ``wal_dir``, in sequence order, proven complete."""
    return list(Catalog.load(Path(wal_dir).parent).segments) if Path(wal_dir).is_dir() else []


def digest_file(path, length: int | None = None) -> str:
    """xxh3-128 of the first ``length`` bytes of ``path`` (all of it by default)."""
    h = xxhash.xxh3_128()
    with open(path, "rb", buffering=0) as f:
        remaining = length
        while remaining is None or remaining > 0:
            chunk = f.read(1 << 20 if remaining is None else min(1 << 20, remaining))
            if not chunk:
                break
            h.update(chunk)
            if remaining is not None:
                remaining -= len(chunk)
    return h.hexdigest()
