"""Scanning logs into numpy columns, without building an event object per record.

>>> with SegmentScanner(path) as scanner:
...     cols = scanner.columns(kinds=[aq.RunStateChanged], min_sequence=1000)
...     late = cols.offset[cols.time > cutoff]
...     events = scanner.events(late)        # decode only what was selected

Each record is checked as it is walked (framing, CRC-32, the payload's structure,
increasing sequences); semantic rules of the model (nil ids, ...) are checked only by
decoding. Sealed segments are immutable and are mapped into memory; a file a writer may
still append to or truncate (the active segment, a Rust single-file log) is read into
memory instead, because a mapped file that shrinks kills the process with SIGBUS.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from . import _backend, _model, segments
from ._wal_common import DEFAULT_MAX_PAYLOAD, REASON_NAMES
from .wal import Layout, TornTail, WalCorruption, detect_layout, validate_buffer

if _backend.NATIVE:
    from . import _wal as _walker
else:
    from . import _wal_py as _walker  # type: ignore[no-redef]

__all__ = ["ScanColumns", "SegmentScanner", "scan", "kind_mask"]


def kind_mask(kinds: Iterable | None) -> int:
    """A bit mask of event kinds from event classes, their names or their indices."""
    if kinds is None:
        return 0xFFFFFFFFFFFFFFFF
    mask = 0
    by_name = {cls.__name__: cls.kind for cls in _model.EVENT_TYPES}
    for k in kinds:
        if isinstance(k, type) and issubclass(k, _model.Event):
            mask |= 1 << k.kind
        elif isinstance(k, str):
            if k not in by_name:
                raise ValueError(f"unknown event kind {k!r}")
            mask |= 1 << by_name[k]
        elif isinstance(k, int) and 0 <= k < len(_model.EVENT_TYPES):
            mask |= 1 << k
        else:
            raise ValueError(f"not an event kind: {k!r}")
    return mask


@dataclass(frozen=True)
class ScanColumns:
    """One row per selected record: where it is, its sequence, kind and time.

    ``offset`` (uint64) and ``length`` (uint32, payload bytes) locate the record in its
    file; ``file`` (uint32) indexes :attr:`files` when the scan covered several files.
    """

    offset: np.ndarray
    length: np.ndarray
    sequence: np.ndarray
    kind: np.ndarray
    time: np.ndarray
    file: np.ndarray
    files: tuple[Path, ...]

    def __len__(self) -> int:
        return len(self.offset)

    def kind_names(self) -> np.ndarray:
        """The event kind of each row as its name."""
        names = np.array([cls.__name__ for cls in _model.EVENT_TYPES], dtype=object)
        return names[self.kind]

    def to_dict(self) -> dict[str, np.ndarray]:
        """The columns by name (for pandas/polars: ``pd.DataFrame(cols.to_dict())``)."""
        return {
            "offset": self.offset,
            "length": self.length,
            "sequence": self.sequence,
            "kind": self.kind,
            "time": self.time,
            "file": self.file,
        }


def _map_readonly(fd: int) -> mmap.mmap:
    """Map a whole (immutable) file for reading, asking the kernel to fault it in up
    front and read ahead, since a scan touches every page once, in order."""
    populate = getattr(mmap, "MAP_POPULATE", 0)
    if populate and hasattr(mmap, "MAP_SHARED"):
        mapped = mmap.mmap(fd, 0, flags=mmap.MAP_SHARED | populate, prot=mmap.PROT_READ)
    else:  # pragma: no cover - not Linux
        mapped = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    if hasattr(mapped, "madvise") and hasattr(mmap, "MADV_SEQUENTIAL"):
        mapped.madvise(mmap.MADV_SEQUENTIAL)
    return mapped


class SegmentScanner:
    """Scan one log file: a segment, or a Rust ``actionqueue.wal``."""

    def __init__(self, path, *, max_payload: int = DEFAULT_MAX_PAYLOAD):
        self.path = Path(path)
        self.max_payload = max_payload
        self._map: mmap.mmap | None = None
        #: the sequence of the last record the latest :meth:`columns` call walked
        self.last_sequence: int | None = None
        seal_path = self.path.with_name(self.path.stem + segments.SEAL_SUFFIX)
        self.sealed = self.path.suffix == segments.SEGMENT_SUFFIX and seal_path.exists()
        if self.sealed and self.path.stat().st_size > 0:
            with open(self.path, "rb") as f:
                self._map = _map_readonly(f.fileno())
            self._buf = self._map
        else:
            with open(self.path, "rb") as f:
                self._buf = f.read()

    def columns(
        self,
        kinds: Iterable | None = None,
        min_sequence: int | None = None,
        max_sequence: int | None = None,
        *,
        prev_sequence: int | None = None,
        strict: bool = True,
    ) -> ScanColumns:
        """The rows of the records selected by kind and sequence range.

        A bad record raises :class:`~actionqueue.wal.TornTail` or
        :class:`~actionqueue.wal.MidLogCorruption` (``strict``), or ends the scan there.
        """
        (offset, length, sequence, kind, time), end, reason, last = _walker.scan_columns(
            self._buf,
            0,
            prev_sequence,
            kind_mask(kinds),
            0 if min_sequence is None else min_sequence,
            0xFFFFFFFFFFFFFFFF if max_sequence is None else max_sequence,
            self.max_payload,
        )
        if reason and strict:
            raise self._corruption(end, reason, prev_sequence)
        self.last_sequence = last
        return ScanColumns(offset, length, sequence, kind, time, np.zeros(len(offset), np.uint32), (self.path,))

    def _corruption(self, end: int, reason: int, prev_sequence: int | None) -> WalCorruption:
        report = validate_buffer(self._buf, self.path, prev_sequence=prev_sequence, max_payload=self.max_payload)
        if report.corruption is not None:
            return report.corruption
        # the scan's structural check found what the full check did not: report it as is
        return TornTail(self.path, end, REASON_NAMES[reason])  # pragma: no cover

    def events(self, offsets: Iterable[int]) -> list:
        """Decode the records at ``offsets`` (fully checked) into events."""
        return _walker.decode_at(self._buf, offsets)

    def close(self) -> None:
        self._buf = b""
        if self._map is not None:
            self._map.close()
            self._map = None

    def __enter__(self) -> "SegmentScanner":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def scan(
    data_dir,
    kinds: Iterable | None = None,
    min_sequence: int | None = None,
    max_sequence: int | None = None,
    *,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
) -> ScanColumns:
    """Scan a data dir's whole log (every segment, or the Rust file) into columns."""
    data_dir = Path(data_dir)
    layout = detect_layout(data_dir)
    wal_dir = data_dir / "wal"
    if layout is None:
        files: list[Path] = []
    elif layout is Layout.RUST:
        files = [wal_dir / "actionqueue.wal"]
    else:
        found = segments.list_segments(wal_dir)
        files = []
        for i, segment in enumerate(found):
            nxt = found[i + 1].first_sequence if i + 1 < len(found) else None
            if min_sequence is not None and nxt is not None and nxt <= min_sequence:
                continue
            if max_sequence is not None and segment.first_sequence > max_sequence:
                break
            files.append(segment.path)
    parts = []
    prev = None
    for index, path in enumerate(files):
        with SegmentScanner(path, max_payload=max_payload) as scanner:
            cols = scanner.columns(kinds, min_sequence, max_sequence, prev_sequence=prev)
            prev = scanner.last_sequence  # sequences must keep increasing into the next file
        parts.append((cols, index))
    if not parts:
        empty = (np.empty(0, np.uint64), np.empty(0, np.uint32), np.empty(0, np.uint64), np.empty(0, np.uint8), np.empty(0, np.uint64))
        return ScanColumns(*empty, np.empty(0, np.uint32), ())
    cat = [np.concatenate([getattr(c, name) for c, _ in parts]) for name in ("offset", "length", "sequence", "kind", "time")]
    file_col = np.concatenate([np.full(len(c), i, np.uint32) for c, i in parts])
    return ScanColumns(*cat, file_col, tuple(files))

