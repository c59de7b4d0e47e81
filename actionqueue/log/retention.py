"""Retention: the log's segments that a durable snapshot covers leave the log, through the
catalog (the MANIFEST's base records the cut, so continuity checks keep working and
recovery knows the events below it are in the snapshot), after an archive holds them when
one is given.

Only sealed segments wholly at or below the snapshot's sequence go; the active segment and
anything the snapshot plus the tail needs always stay.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .archive import Archive

__all__ = ["POLICIES", "compact", "covered_segments"]

log = logging.getLogger("actionqueue.retention")

#: ``retain=`` values: remove covered segments, or move them to an archive.
POLICIES = ("delete", "archive")


def covered_segments(writer: Any, through: int) -> list:
    """The sealed segments of the writer's log wholly at or below ``through``, oldest first
    (never the active one)."""
    out = []
    for segment in writer.segments():
        if segment.seal is None or segment.path == writer.path or segment.seal.last_sequence > through:
            break
        out.append(segment)
    return out


def compact(writer: Any, through: int, archive: Archive | None = None) -> list[Path]:
    """Remove the segments a durable snapshot at ``through`` covers (archived first when
    ``archive`` is given); the removed files. Segments sealed meanwhile stay."""
    segments = covered_segments(writer, through)
    if not segments:
        return []
    if archive is not None:
        for segment in segments:
            first = segment.first_sequence if segment.first_sequence is not None else (segment.prev or 0) + 1
            archive.put(segment.path.name, first, segment.seal.last_sequence, segment.path, segment.seal_path)
    bound = segments[-1].seal.last_sequence
    removed = writer.remove_segments_before(bound + 1)
    log.info("retention: removed %d segments through sequence %d%s", len(removed), bound,
             f" (archived in {archive})" if archive is not None else "")
    return removed
