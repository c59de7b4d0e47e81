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

No operation of this package truncates or rewrites a sealed segment in place (repair
writes a new file and renames it over the old one, so a mapping keeps the old, whole
file). Another program that truncates a file this process has mapped kills it with
SIGBUS, as it would a process using LMDB or SQLite's memory-mapped I/O: do not edit or
truncate the files of a live data dir; copy them first.
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from .. import model as _model
from .._extras import require_pyarrow
from ._walk_common import reason_name
from ..errors import SegmentError, SegmentMissing, TornTail, WalCorruption
from ._walker import walker as _walker
from .catalog import Catalog, Segment, append_in_flight, open_log_file, parse_segment_name
from .files import OS, Files, read_fd
from .format import DEFAULT_MAX_PAYLOAD, SEGMENT_SUFFIX
from .validate import first_sequence, validate_buffer

__all__ = ["ScanColumns", "SegmentScanner", "scan", "iter_scan", "kind_mask", "KIND_NAMES"]


#: The event kinds' names, by kind index (the ``kind`` column's dictionary in Arrow).
KIND_NAMES: tuple[str, ...] = tuple(cls.__name__ for cls in _model.EVENT_TYPES)


def arrow_kind(kind: np.ndarray) -> Any:
    """The ``kind`` column (uint8 indices) as an Arrow dictionary array of the kinds'
    names, ``dictionary<values=string, indices=int8>``, without copying the indices."""
    pa = require_pyarrow()
    return pa.DictionaryArray.from_arrays(pa.array(kind.view(np.int8)), pa.array(KIND_NAMES, pa.string()))


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

    def to_arrow(self) -> Any:
        """The columns as a ``pyarrow.Table`` (needs the ``arrow`` extra), without copying
        them: ``offset`` uint64, ``length`` uint32, ``sequence`` uint64, ``kind``
        dictionary<int8, string> (the kind's name), ``time`` uint64 (Unix seconds) and
        ``file`` uint32 (an index into :attr:`files`)."""
        pa = require_pyarrow()
        return pa.table({
            "offset": pa.array(self.offset), "length": pa.array(self.length), "sequence": pa.array(self.sequence),
            "kind": arrow_kind(self.kind), "time": pa.array(self.time), "file": pa.array(self.file),
        })

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


def _map_readonly(fd: int, size: int) -> mmap.mmap:
    """Map a whole (immutable) file for reading, asking the kernel to fault it in up
    front and read ahead, since a scan touches every page once, in order."""
    populate = getattr(mmap, "MAP_POPULATE", 0)
    if populate and hasattr(mmap, "MAP_SHARED"):
        mapped = mmap.mmap(fd, size, flags=mmap.MAP_SHARED | populate, prot=mmap.PROT_READ)
    else:  # pragma: no cover - not Linux
        mapped = mmap.mmap(fd, size, access=mmap.ACCESS_READ)
    if hasattr(mapped, "madvise") and hasattr(mmap, "MADV_SEQUENTIAL"):
        mapped.madvise(mmap.MADV_SEQUENTIAL)
    return mapped


class SegmentScanner:
    """Scan one log file: a segment, or a Rust ``actionqueue.wal``."""

    def __init__(self, path, *, max_payload: int = DEFAULT_MAX_PAYLOAD):
        self.path = Path(path)
        self.max_payload = max_payload
        self._map: mmap.mmap | None = None
        self._buf: mmap.mmap | bytes
        #: the sequences of the first and last records the latest :meth:`columns` call walked
        self.first_sequence: int | None = None
        self.last_sequence: int | None = None
        self.sealed = self.path.suffix == SEGMENT_SUFFIX and Segment(self.path, 0).seal_path.exists()
        # a regular file, not cut below its checkpoint; read no further than its size now
        fd, size = open_log_file(self.path, sealed=self.sealed)
        try:
            if self.sealed and size > 0:
                self._map = _map_readonly(fd, size)
                self._buf = self._map
            else:
                self._buf = read_fd(OS, fd, 0, size)
        finally:
            OS.close(fd)

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
        :class:`~actionqueue.wal.MidLogCorruption` (``strict``), or ends the scan there;
        an incomplete record at the very end of an unsealed file while a writer holds the
        data dir's lock is an append in flight, not a torn tail: the scan ends before it
        (:func:`~.catalog.append_in_flight`).
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
            corruption = self._corruption(end, reason, prev_sequence)
            # an incomplete last record of the active file under a live writer is an
            # append in flight: the columns end before it
            if self.sealed or not append_in_flight(self.path, corruption):
                raise corruption
        self.last_sequence = last
        self.first_sequence = None
        if last is not None and last != prev_sequence:
            self.first_sequence = first_sequence(self._buf, self.max_payload)
        return ScanColumns(offset, length, sequence, kind, time, np.zeros(len(offset), np.uint32), (self.path,))

    def _corruption(self, end: int, reason: int, prev_sequence: int | None) -> WalCorruption:
        report = validate_buffer(self._buf, self.path, prev_sequence=prev_sequence, max_payload=self.max_payload)
        if report.corruption is not None:
            return report.corruption
        # the scan's structural check found what the full check did not: report it as is
        return TornTail(self.path, end, reason_name(reason))  # pragma: no cover

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


def iter_scan(
    data_dir,
    kinds: Iterable | None = None,
    min_sequence: int | None = None,
    max_sequence: int | None = None,
    *,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    fs: Files = OS,
) -> Iterator[tuple[SegmentScanner, ScanColumns]]:
    """:func:`scan` one file at a time: yields each file's open scanner (its bytes stay
    readable until the next item) and its columns, after the same checks as :func:`scan`
    (so memory holds one file's columns at a time)."""
    segments: list[Segment] = []
    for segment in Catalog.load(data_dir, fs).from_sequence(min_sequence):
        if max_sequence is not None and segment.first_sequence is not None and segment.first_sequence > max_sequence:
            break
        segments.append(segment)
    files = tuple(s.path for s in segments)
    prev = None
    for index, path in enumerate(files):
        try:
            scanner = SegmentScanner(path, max_payload=max_payload)
        except FileNotFoundError:
            raise SegmentMissing(path, (prev or 0) + 1, None, "it was removed while the log was scanned") from None
        with scanner:
            cols = scanner.columns(kinds, min_sequence, max_sequence, prev_sequence=prev)
            seal = segments[index].seal
            if seal is not None and (len(scanner._buf) != seal.length or scanner.last_sequence != seal.last_sequence):
                raise SegmentError(path, 0, "seal_mismatch",
                                   f"the sealed segment is {len(scanner._buf)} bytes ending at sequence "
                                   f"{scanner.last_sequence}; its seal says {seal.length} bytes, {seal.last_sequence}")
            first = parse_segment_name(path.name)
            if first is not None and scanner.first_sequence not in (None, first):
                raise SegmentError(path, 0, "name_mismatch",
                                   f"segment named for sequence {first} starts at {scanner.first_sequence}")
            prev = scanner.last_sequence  # sequences must keep increasing into the next file
            yield scanner, ScanColumns(cols.offset, cols.length, cols.sequence, cols.kind, cols.time,
                                       np.full(len(cols), index, np.uint32), files)


def scan(
    data_dir,
    kinds: Iterable | None = None,
    min_sequence: int | None = None,
    max_sequence: int | None = None,
    *,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    fs: Files = OS,
) -> ScanColumns:
    """Scan a data dir's whole log (every segment, or the Rust file) into columns. The
    files come from the catalog (proven complete); a segment missing raises
    :class:`~actionqueue.errors.SegmentMissing`, and each file must start where its name
    says and continue the sequences of the one before it."""
    parts = [cols for _, cols in iter_scan(data_dir, kinds, min_sequence, max_sequence, max_payload=max_payload, fs=fs)]
    if not parts:
        empty = (np.empty(0, np.uint64), np.empty(0, np.uint32), np.empty(0, np.uint64), np.empty(0, np.uint8), np.empty(0, np.uint64))
        return ScanColumns(*empty, np.empty(0, np.uint32), ())
    if len(parts) == 1:
        return parts[0]  # one file (the common case): its columns as they are, no copy
    names = ("offset", "length", "sequence", "kind", "time", "file")
    offset, length, sequence, kind, time, file_col = (np.concatenate([getattr(c, name) for c in parts]) for name in names)
    return ScanColumns(offset, length, sequence, kind, time, file_col, parts[0].files)
