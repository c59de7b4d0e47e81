"""Explicit repair: remove damaged bytes from a data dir's log, keeping every valid record,
and say what that costs.

A torn tail is cut off; damage in the middle is cut out between the bad record and the
next valid one. Before anything changes, what goes is saved in ``wal/repair-backup/``.
Every rewrite goes to a new file that is renamed into place (never a file cut in place: a
reader may have the old one mapped), a segment whose first records were cut takes the
name of its new first sequence, and the MANIFEST and seals are rewritten to match.

Whether the repaired log still replays is not the log's to judge (the rules are the
reducer's): the caller passes ``check``, which sees the repaired log's events and raises
to refuse (see :func:`actionqueue.repair`, which replays them through the reducer).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from ..errors import MidLogCorruption, TornTail
from ._walker import walker
from .catalog import Catalog, Layout, Seal, Segment, list_wal, require_data_dir, segment_name, wal_dir_of, write_seal
from .checkpoint import Checkpoint
from .files import OS, Files, atomic_write, open_regular, read_fd
from .format import BACKUP_DIR, DEFAULT_MAX_PAYLOAD, LOCK_NAME
from .validate import validate_buffer

import xxhash

log = logging.getLogger("actionqueue.wal")

__all__ = ["RepairResult", "RepairPlan", "Cut", "repair_log"]


@dataclass(frozen=True)
class Cut:
    """A damaged range cut out of the log: the valid records around it are
    ``after_sequence`` and ``before_sequence`` (None at an end)."""

    path: Path
    offset: int
    length: int
    after_sequence: int | None
    before_sequence: int | None


@dataclass(frozen=True)
class RepairResult:
    """What :func:`repair_log` did (or, with ``dry_run``, would do) to one file.

    ``cuts`` are ``(offset, length)`` ranges of the original file that were removed;
    ``backup`` the folder holding their bytes (None for a dry run or when nothing was
    cut); ``new_path`` the file's new name when its first record changed (None when it
    kept its name; the file itself for a segment removed whole, see ``removed``)."""

    path: Path
    cuts: tuple[tuple[int, int], ...]
    backup: Path | None
    records_kept: int
    new_path: Path | None = None
    removed: bool = False

    @property
    def bytes_cut(self) -> int:
        return sum(length for _, length in self.cuts)


class RepairPlan(list):
    """The :class:`RepairResult` of each file changed, plus what the caller's check said
    about the repaired log (``replay``: None when nothing was checked)."""

    replay: str | None = None
    truncated_at: int | None = None  # the sequence after which truncate_at_damage cut
    #: the active file is shorter than at its last clean close (records lost outside any
    #: cut); repair accepts that loss by removing the CHECKPOINT that shows it
    lost_since_clean_close: bool = False


@dataclass
class _FilePlan:
    segment: Segment
    data: bytes
    cuts: list[tuple[int, int]] = field(default_factory=list)
    kept: bytes = b""
    records: int = 0
    first: int | None = None
    last: int | None = None


def _plan_cuts(data: bytes, path: Path, prev: int | None, max_payload: int) -> list[tuple[int, int]]:
    """The byte ranges to remove so that only valid records remain, never a valid one."""
    cuts: list[tuple[int, int]] = []
    pos = 0
    while True:
        report = validate_buffer(memoryview(data)[pos:], path, prev_sequence=prev, max_payload=max_payload)
        if report.last_sequence is not None:
            prev = report.last_sequence
        corruption = report.corruption
        if corruption is None:
            return cuts
        if isinstance(corruption, TornTail):
            cuts.append((pos + corruption.offset, len(data) - pos - corruption.offset))
            return cuts
        assert isinstance(corruption, MidLogCorruption)
        if corruption.next_valid_offset is None:  # a valid record out of sequence order
            corruption._shift(pos)
            raise corruption
        cuts.append((pos + corruption.offset, corruption.next_valid_offset - corruption.offset))
        pos += corruption.next_valid_offset


def _apply_cuts(data: bytes, cuts: list[tuple[int, int]]) -> bytes:
    out = bytearray()
    pos = 0
    for offset, length in cuts:
        out += data[pos:offset]
        pos = offset + length
    out += data[pos:]
    return bytes(out)


def _plan(catalog: Catalog, max_payload: int, truncate_at_damage: bool, fs: Files) -> tuple[list[_FilePlan], list[Cut]]:
    plans: list[_FilePlan] = []
    cuts: list[Cut] = []
    prev: int | None = None
    truncating = False
    for segment in catalog.segments:
        fd = open_regular(segment.path, fs)  # never a FIFO or device (a SegmentError)
        try:
            data = read_fd(fs, fd)
        finally:
            fs.close(fd)
        plan = _FilePlan(segment, data)
        if truncating:
            plan.cuts = [(0, len(data))] if data else []
        else:
            plan.cuts = _plan_cuts(data, segment.path, prev, max_payload)
            if truncate_at_damage and plan.cuts and plan.cuts[0][0] + plan.cuts[0][1] < len(data):
                plan.cuts = [(plan.cuts[0][0], len(data) - plan.cuts[0][0])]
                truncating = True
        plan.kept = _apply_cuts(data, plan.cuts)
        report = validate_buffer(plan.kept, segment.path, prev_sequence=prev, max_payload=max_payload)
        assert report.corruption is None, "a repaired file holds only valid records"
        plan.records, plan.first, plan.last = report.records, report.first_sequence, report.last_sequence
        cuts += _cuts_of(plan, prev)
        prev = plan.last if plan.last is not None else prev
        plans.append(plan)
    return plans, cuts


def _cuts_of(plan: _FilePlan, prev: int | None) -> list[Cut]:
    """The cuts of one file with the sequences of the valid records around each."""
    out = []
    for offset, length in plan.cuts:
        before = _first_seq_at(plan.data, offset + length)
        after = _last_seq_before(plan.data, offset, prev)
        out.append(Cut(plan.segment.path, offset, length, after, before))
    return out


def _first_seq_at(data: bytes, offset: int) -> int | None:
    events = walker.walk(data, offset, None, DEFAULT_MAX_PAYLOAD, True, 1)[5] if offset < len(data) else []
    return events[0].sequence if events else None


def _last_seq_before(data: bytes, offset: int, prev: int | None) -> int | None:
    last = walker.walk(memoryview(data)[:offset], 0, None, DEFAULT_MAX_PAYLOAD)[2]
    return last if last is not None else prev


def _events(plans: list[_FilePlan], max_payload: int) -> Iterator[list]:
    for plan in plans:
        if plan.kept:
            events = walker.walk(plan.kept, 0, None, max_payload, True)[5]
            if events:
                yield events


def repair_log(
    data_dir,
    *,
    dry_run: bool = False,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    truncate_at_damage: bool = False,
    check: Callable[[Callable[[], Iterator[list]], list[Cut]], str | None] | None = None,
    fs: Files = OS,
) -> RepairPlan:
    """Repair the log of ``data_dir`` (see the module docstring); returns the plan, done
    (or, with ``dry_run``, to do). ``check(events, cuts)`` is called before anything
    changes; ``events()`` gives the repaired log's events (in lists), as often as asked; it raises to refuse the repair, or
    returns a note for :attr:`RepairPlan.replay`. ``truncate_at_damage``: cut the log at
    its first mid-log damage instead, everything after it (kept in the backup).
    A record whose sequence does not increase is valid data out of order: not repaired,
    the :class:`~actionqueue.errors.MidLogCorruption` is raised. Takes the writer's lock.
    """
    require_data_dir(data_dir, fs)
    if list_wal(data_dir, fs) is None:
        return RepairPlan()  # no log, nothing to repair (and no wal/ made for the lock)
    wal_dir = wal_dir_of(data_dir)
    handles = fs.lock(wal_dir, LOCK_NAME)
    try:
        catalog = Catalog.load(data_dir, fs, lenient=True)
        plans, cuts = _plan(catalog, max_payload, truncate_at_damage, fs)
        result = RepairPlan()
        changed = [p for p in plans if p.cuts]
        if truncate_at_damage and cuts:
            result.truncated_at = cuts[0].after_sequence
        if changed and check is not None:
            result.replay = check(lambda: _events(plans, max_payload), cuts)
        for plan in changed:
            result.append(_result(plan, wal_dir, dry_run))
        cut_by_hand = _cut_since_clean_close(catalog, fs)
        if cut_by_hand is not None:
            result.append(RepairResult(cut_by_hand, (), None, 0))
            result.lost_since_clean_close = True
        if not dry_run and (changed or catalog.unexpected):
            _apply(catalog, plans, wal_dir, fs)
        elif not dry_run and cut_by_hand is not None:
            Checkpoint.remove(wal_dir, fs)  # the loss is accepted: opening works again
            fs.fsync_dir(wal_dir)
        return result
    finally:
        fs.unlock(handles)


def _new_path(plan: _FilePlan) -> Path | None:
    seg = plan.segment
    if seg.first_sequence is None or plan.first == seg.first_sequence:
        return None
    if plan.first is None:
        return seg.path  # removed whole
    return seg.path.with_name(segment_name(plan.first))


def _result(plan: _FilePlan, wal_dir: Path, dry_run: bool) -> RepairResult:
    new = _new_path(plan)
    removed = plan.segment.first_sequence is not None and plan.first is None
    return RepairResult(plan.segment.path, tuple(plan.cuts), None if dry_run else wal_dir / BACKUP_DIR,
                        plan.records, None if removed else new, removed)  # fmt: skip


def _apply(catalog: Catalog, plans: list[_FilePlan], wal_dir: Path, fs: Files) -> None:
    """Back up, write the new files, switch the MANIFEST, then remove the old names."""
    backup = wal_dir / BACKUP_DIR
    if not fs.exists(backup):
        fs.mkdir(backup)
        fs.fsync_dir(wal_dir)
    for plan in plans:
        for offset, length in plan.cuts:
            atomic_write(backup / f"{plan.segment.path.name}.{offset}.cut", plan.data[offset: offset + length], fs)
    Checkpoint.remove(wal_dir, fs)  # it describes bytes that change
    kept: list[Segment] = []
    obsolete: list[Path] = []
    prev = catalog.base_sequence
    for plan in plans:
        seg = plan.segment
        if seg.first_sequence is None:  # the Rust single file
            if plan.cuts:
                atomic_write(seg.path, plan.kept, fs)
            continue
        if plan.first is None:  # nothing valid left: the segment goes
            obsolete += [seg.path, seg.seal_path]
            continue
        path = _new_path(plan) or seg.path
        if plan.cuts:
            atomic_write(path, plan.kept, fs, sync_dir=False)
        seal = None
        if seg.seal is not None:
            seal = Seal(plan.first, plan.last or 0, plan.records, len(plan.kept),
                        xxhash.xxh3_128_hexdigest(plan.kept), prev)  # fmt: skip
            if plan.cuts or seal != seg.seal:
                write_seal(Segment(path, plan.first), seal, fs)
        if path != seg.path:
            obsolete += [seg.path, seg.seal_path]
        kept.append(Segment(path, plan.first, seal, prev))
        prev = plan.last if plan.last is not None else prev
    if catalog.layout is Layout.SEGMENTED:
        fs.fsync_dir(wal_dir)
        catalog.manifest_for(kept).write(wal_dir, fs)
    live = {s.path for s in kept} | {s.seal_path for s in kept}
    for path in obsolete:
        if path not in live:
            _unlink(fs, path)
    for path in catalog.unexpected:  # unknown files: kept in the backup, not deleted
        for victim in (path, Segment(path, 0).seal_path):
            if victim not in live and fs.exists(victim):
                fs.replace(victim, backup / f"{victim.name}.unlisted")
    fs.fsync_dir(wal_dir)
    for plan in plans:
        if plan.cuts:
            log.warning("repaired %s: cut %d byte range(s), %d bytes, backup in %s",
                        plan.segment.path, len(plan.cuts), sum(n for _, n in plan.cuts), backup)
    Catalog.load(wal_dir.parent, fs)  # the result proves itself (or this raises)


def _cut_since_clean_close(catalog: Catalog, fs: Files) -> Path | None:
    """The newest file, when it is shorter than the CHECKPOINT of its clean close says."""
    if not catalog.segments or catalog.segments[-1].seal is not None:
        return None
    path = catalog.segments[-1].path
    checkpoint = Checkpoint.read(catalog.wal_dir, path, fs)
    return path if checkpoint is not None and checkpoint.shorter_than(fs.size(path)) else None


def _unlink(fs: Files, path: Path) -> None:
    try:
        fs.unlink(path)
    except FileNotFoundError:
        pass
