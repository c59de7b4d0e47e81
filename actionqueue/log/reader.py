"""Reading the log back: :class:`WalReader` (a pass, or ``follow()`` as ``tail -f``).

Readers walk the catalog by sequence and never skip: the set of files is proven complete
when it is listed (a listing that raced with a rotation is redone), each file must start
with the sequence its name says and continue the one before it, and a segment that
disappears under a reader (a removal that overtook it) is an error naming what it lost.
"""

from __future__ import annotations

import mmap
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from ._walk_common import R_INCOMPLETE_HEADER, R_INCOMPLETE_PAYLOAD
from ..errors import MidLogCorruption, SegmentError, SegmentMissing
from ._walker import walker
from . import notify
from .catalog import Catalog, Segment, append_in_flight, check_regular, open_log_file
from .files import OS, Files, read_fd
from .format import DEFAULT_MAX_PAYLOAD
from .validate import first_sequence, validate_buffer

if TYPE_CHECKING:
    from ..model import WalEvent
    from .writer import WalWriter

__all__ = ["WalReader"]


class WalReader:
    """Iterates the events of a data dir's log (or of one log file), checking every record.

    Reads with ``pread`` in chunks (constant memory, never an mmap of a file a writer may
    truncate), across segments. ``from_sequence`` skips events below it, and whole sealed
    segments below it without reading them. A bad record raises the same
    :class:`~actionqueue.errors.TornTail` / :class:`~actionqueue.errors.MidLogCorruption`
    a writer would report, after the events before it were yielded; a missing segment
    raises :class:`~actionqueue.errors.SegmentMissing`.
    """

    CHUNK = 4 << 20

    def __init__(
        self,
        source,
        from_sequence: int | None = None,
        *,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
        validated: "WalWriter | None" = None,
        fs: Files = OS,
    ):
        """``validated``: an open writer of this data dir. Its file was checked when it
        opened (under its lock), so the records of that file below ``from_sequence`` are
        stepped over, not checked again (recovery uses this to check the log once)."""
        self.source = Path(source)
        self.from_sequence = from_sequence
        self.max_payload = max_payload
        self.fs = fs
        self._trusted = None if validated is None or validated.closed else validated.path

    def _segments(self) -> list[Segment]:
        if not self.source.is_dir():
            return [Segment(self.source, None)]
        return Catalog.load(self.source, self.fs).from_sequence(self.from_sequence)

    def __iter__(self) -> Iterator[WalEvent]:
        for batch in self.batches():
            yield from batch

    def batches(self) -> Iterator[list]:
        """The events, in lists of a read chunk's worth (at least one event each): the
        fastest way to consume a log (no per-event generator step)."""
        prev = None
        for segment in self._segments():
            try:
                # a regular file, not cut below its checkpoint; read up to its size now
                fd, size = open_log_file(segment.path, sealed=segment.seal is not None, fs=self.fs)
            except FileNotFoundError:
                raise self._vanished(segment, prev) from None
            with os.fdopen(fd, "rb", buffering=0) as f:
                if segment.seal is not None:
                    _check_sealed_size(segment, size)
                start = prev
                for batch, prev in self._batches(f, size, segment, prev):
                    if batch:
                        yield batch
                if segment.seal is not None and prev != segment.seal.last_sequence and not (
                        start is None and self.from_sequence and prev is None):
                    raise SegmentError(segment.path, 0, "seal_mismatch",
                                       f"the segment ends at sequence {prev}, its seal says {segment.seal.last_sequence}")

    def _vanished(self, segment: Segment, prev: int | None) -> SegmentMissing:
        """The error for a segment listed a moment ago and gone now (removed by retention
        while this reader was behind it, or deleted)."""
        first = segment.first_sequence if segment.first_sequence is not None else (prev or 0) + 1
        try:
            nxt = Catalog.load(self.source, self.fs).from_sequence(first)
            last = nxt[0].first_sequence - 1 if nxt and nxt[0].first_sequence else None
        except SegmentError:
            last = None
        return SegmentMissing(segment.path, first, last, "it was removed while this reader was reading the log")

    def follow(self, poll_interval: float = 0.1, stop: "threading.Event | None" = None) -> Iterator[WalEvent]:
        """Yield every event, then keep yielding new ones as another process appends them
        (``tail -f``), until ``stop`` is set (checked between polls). It sleeps
        ``poll_interval`` only after a poll that found nothing new: it keeps pace with a
        writer, reads a backlog at reader speed, and sees a new event at most one
        interval after it was written.

        An incomplete or damaged record at the end is taken as a write in progress (or a
        torn tail a future writer will cut): the follower waits there. Damage followed by
        valid records raises :class:`MidLogCorruption`. Follows rotation into new segments,
        in catalog order; a segment removed before the follower read it through raises
        :class:`SegmentMissing`.
        """
        key = notify.key_of(self.source / "wal" if self.source.is_dir() else self.source.parent)
        woken = notify.register(key)
        try:
            yield from self._follow(poll_interval, stop, woken)
        finally:
            notify.unregister(key, woken)

    def _follow(self, poll_interval: float, stop: "threading.Event | None", woken: "threading.Event") -> Iterator:
        prev: int | None = None
        current: Segment | None = None
        pos = 0
        while stop is None or not stop.is_set():
            progressed = False
            if current is None:
                found = self._segments()
                current = found[0] if found else None
            if current is not None:
                data = self._read_from(current.path, pos)
                if data is None:  # removed under us: did we lose anything?
                    current, pos = self._after_removed(current, prev), 0
                    continue
                end, _, last, reason, _, events = walker.walk(data, 0, prev, self.max_payload, True)
                for event in events:
                    prev = event.sequence
                    if self.from_sequence is None or event.sequence >= self.from_sequence:
                        yield event
                pos += end
                progressed = end > 0
                if reason:
                    self._raise_if_mid_log(data[end:], current.path, prev, pos)
                elif end == len(data) and self.source.is_dir():
                    catalog = Catalog.load(self.source, self.fs)
                    nxt = catalog.successor(current.path)
                    if nxt is not None and self._read_from(current.path, pos) == b"":
                        done = next(s for s in catalog.segments if s.path == current.path)
                        if done.seal is not None:
                            _check_sealed_size(done, pos)
                        # the current file is complete and a newer one exists: it was sealed
                        current, pos = nxt, 0
                        continue
            # wait only when there was nothing new: a follower behind the writer reads on
            # at reader speed, and one that has caught up polls every poll_interval
            if not progressed and _wait(stop, poll_interval, woken):
                return

    def _after_removed(self, gone: Segment, prev: int | None) -> Segment:
        """Where to go on after ``gone`` was removed: its successor, if the successor
        starts right after what this follower read; otherwise the range is lost."""
        for segment in Catalog.load(self.source, self.fs).segments:
            if segment.first_sequence is not None and gone.first_sequence is not None \
                    and segment.first_sequence > gone.first_sequence:
                if segment.prev is not None and segment.prev == prev:
                    return segment
                last = segment.first_sequence - 1
                raise SegmentMissing(gone.path, (prev or gone.first_sequence - 1) + 1, last,
                                     "it was removed before this follower read it through")
        raise SegmentMissing(gone.path, (prev or 0) + 1, None, "it was removed while being followed")

    def _raise_if_mid_log(self, rest: bytes, path: Path, prev: int | None, pos: int) -> None:
        report = validate_buffer(rest, path, prev_sequence=prev, max_payload=self.max_payload)
        if isinstance(report.corruption, MidLogCorruption):
            report.corruption._shift(pos)
            raise report.corruption

    def _read_from(self, path: Path, pos: int) -> bytes | None:
        """The bytes of ``path`` from ``pos`` to its size now (None when it is gone)."""
        try:
            fd = self.fs.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            return None
        check_regular(self.fs, fd, path)
        try:
            return read_fd(self.fs, fd, pos)
        finally:
            self.fs.close(fd)

    def _skip_checked(self, f, size: int, prev: int | None) -> tuple[int, int, int | None]:
        """``(offset, records, last sequence)`` below ``from_sequence`` in the first ``size``
        bytes of a file its open writer has checked (mapped: the writer's lock keeps it
        from being cut meanwhile)."""
        if size == 0:
            return 0, 0, prev
        with mmap.mmap(f.fileno(), size, access=mmap.ACCESS_READ) as mapped:
            return walker.skip_below(mapped, 0, prev, self.from_sequence or 0)

    def _batches(self, f, size: int, segment: Segment, prev: int | None) -> Iterator[tuple[list, int | None]]:
        """``(events, last sequence walked)`` per chunk of the first ``size`` bytes of one
        file: every record is checked, only those at or above ``from_sequence`` are
        decoded into ``events``. An incomplete record at the very end of the unsealed file
        while a writer holds the lock is an append in flight: the file ends before it."""
        path, first = segment.path, segment.first_sequence
        buf = b""
        base = 0  # file offset of buf[0]
        count = 0
        eof = False
        trusted = path == self._trusted
        if trusted and self.from_sequence:
            # the writer checked this file under its lock: step over the records below
            # from_sequence by their length fields, without reading them through
            base, count, prev = self._skip_checked(f, size, prev)
            f.seek(base)
        while True:
            if not eof:
                chunk = f.read(min(self.CHUNK, size - f.tell()))
                if chunk:
                    buf = buf + chunk if buf else chunk
                else:
                    eof = True
            if count == 0 and first is not None:
                _check_name(buf, path, first, self.max_payload)
            end, n, last, reason, detail, events = walker.walk(
                buf, 0, prev, self.max_payload, True, -1, self.from_sequence or 0, trusted
            )
            if n:
                yield events, last
            count += n
            prev = last
            if reason and not (not eof and reason in (R_INCOMPLETE_HEADER, R_INCOMPLETE_PAYLOAD)):
                # a real problem (not a record cut by the chunk boundary): classify it
                # against the whole rest of the file
                rest = buf[end:] + f.read(max(0, size - f.tell()))
                report = validate_buffer(rest, path, prev_sequence=prev, max_payload=self.max_payload)
                corruption = report.corruption
                assert corruption is not None
                corruption._shift(base + end)
                corruption.records_before = count
                if segment.seal is None and append_in_flight(path, corruption, self.fs):
                    return
                raise corruption
            buf = buf[end:]
            base += end
            if eof and (not buf or not reason):
                return


def _check_sealed_size(segment: Segment, size: int) -> None:
    """A sealed segment is exactly as long as its seal says (cut or grown: damage)."""
    assert segment.seal is not None
    if size != segment.seal.length:
        raise SegmentError(segment.path, min(size, segment.seal.length),
                           "incomplete_payload" if size < segment.seal.length else "seal_mismatch",
                           f"the sealed segment is {size} bytes, its seal says {segment.seal.length}")


def _check_name(buf, path: Path, first: int, max_payload: int) -> None:
    head = first_sequence(buf, max_payload)
    if head is not None and head != first:
        raise SegmentError(path, 0, "name_mismatch", f"segment named for sequence {first} starts at {head}")


#: How often a follower woken only by writes still looks at ``stop``.
STOP_CHECK_S = 0.05


def _wait(stop: "threading.Event | None", poll_interval: float, woken: "threading.Event") -> bool:
    """Sleep one poll, or less when a writer in this process writes; True when ``stop``
    was set."""
    deadline = time.monotonic() + poll_interval
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        if woken.wait(min(left, STOP_CHECK_S) if stop is not None else left):
            break
        if stop is not None and stop.is_set():
            return True
    woken.clear()
    return stop is not None and stop.is_set()
