"""Recovery: a data dir back to a validated projection and a writer at the end of its log.

:func:`open` loads the snapshot if it is valid (a damaged or inconsistent one is reported
in the :class:`RecoveryReport` and ignored, as in Rust), replays every WAL event with a
sequence above the snapshot's (decisions.md #13: gaps or not; Rust looks for exactly
snapshot + 1 and silently skips the rest when it is missing), and reopens the writer at
the end. :func:`replay_to` rebuilds the state as it was at a past sequence.
"""

from __future__ import annotations

import logging
import os
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Mapping
from typing import Any, Literal

from ._bulk import gc_paused
from .errors import RecoveryError, RepairRefused
from .errors import ReducerError
from .state.reducer import ReplayReducer
from .errors import ImageError
from .snapshot import image_path
from .snapshot.newest import read_snapshot
from .errors import TornTail
from .log.catalog import Catalog, Layout, LayoutName, require_data_dir
from .log.files import OS, Files
from .log.format import DEFAULT_MAX_PAYLOAD, SNAPSHOTS_DIR, WAL_DIR
from .log.reader import WalReader
from .log.repair import Cut, RepairPlan, repair_log
from .log.writer import Durability, DurabilityName, RepairPolicy, RepairPolicyName, WalWriter
from .metrics import store_metrics

log = logging.getLogger("actionqueue.recovery")

__all__ = ["RecoveryError", "RecoveryReport", "Store", "open", "replay_to", "repair", "require_log_start"]


@dataclass(frozen=True)
class RecoveryReport:
    """What recovery found and did."""

    snapshot_loaded: bool
    snapshot_sequence: int
    snapshot_error: str | None
    #: ``"image"`` (read lazily from ``snapshot.image``), ``"json"`` (``snapshot.bin``) or None
    snapshot_source: str | None
    wal_events_applied: int
    latest_sequence: int
    repaired: TornTail | None
    duration_s: float


class Store:
    """A recovered data dir: the projection (:attr:`reducer`), the writer positioned at
    the end of the log (:attr:`writer`) and what recovery did (:attr:`report`).

    Use as a context manager; leaving it closes the writer.
    """

    def __init__(self, data_dir: Path, reducer: ReplayReducer, writer: WalWriter, report: RecoveryReport,
                 snapshot_every: int | None = None, retain: str | None = None, archive=None):
        from .snapshot.background import Snapshotter

        self.data_dir = data_dir
        self.reducer = reducer
        self.writer = writer
        self.report = report
        #: background snapshots (every ``snapshot_every`` durable events, and on request):
        #: see :class:`~actionqueue.snapshot.background.Snapshotter`; ``.status`` reports
        self.snapshots = Snapshotter(data_dir, writer, snapshot_every,
                                     report.snapshot_sequence if report.snapshot_loaded else 0, retain, archive)
        #: the authorities made with ``MutationAuthority.from_store`` (their commands count
        #: in :meth:`metrics`)
        self._authorities: weakref.WeakSet[Any] = weakref.WeakSet()

    def close(self) -> None:
        """Let a background snapshot in flight finish, then close the writer."""
        try:
            self.snapshots.close()
        finally:
            self.writer.close()

    def metrics(self) -> dict[str, Any]:
        """Counters and timings of the store (the writer's, the snapshots', recovery's, the
        commands of its authorities): a new dict, safe to read from any thread while others
        append; the keys are listed in :mod:`actionqueue.metrics`."""
        return store_metrics(self)

    def snapshot(self, timestamp: int | None = None) -> Mapping[str, Any]:
        """Snapshot the projection into the data dir (``snapshot.bin`` and its image);
        ``timestamp`` defaults to now. Returns the snapshot. The one way to take a snapshot
        on request, with or without a :class:`~actionqueue.MutationAuthority` running
        commands meanwhile (an authority made with ``from_store`` does the same in its
        ``snapshot``): see :meth:`~actionqueue.snapshot.background.Snapshotter.take_live`.
        The log is synced first, so the snapshot never covers an event it could still lose;
        commands wait at most for a small projection's build."""
        return self.snapshots.take_live(self.reducer, timestamp)

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Store {self.data_dir} sequence={self.reducer.latest_sequence}>"


def _prepare(data_dir: Path, fs: Files) -> None:
    """Check the data dir (before anything is written into it), then create its folders."""
    require_data_dir(data_dir, fs, new=True)
    created = False
    for sub in (WAL_DIR, SNAPSHOTS_DIR):
        if not fs.exists(data_dir / sub):
            fs.mkdir(data_dir / sub)
            created = True
    if created:
        fs.fsync_dir(data_dir)


def require_log_start(data_dir: Path, base_sequence: int, snapshot_sequence: int, snapshot_error: str | None) -> None:
    """Raise :class:`RecoveryError` unless the state can be rebuilt from the start: the log
    holds every event above ``base_sequence`` only (earlier segments were removed, on
    purpose or not), so a usable snapshot must reach at least that far."""
    if snapshot_sequence >= base_sequence:
        return
    why = f" (the snapshot is unusable: {snapshot_error})" if snapshot_error else (
        f" (the snapshot is at {snapshot_sequence})" if snapshot_sequence else " (there is no snapshot)")
    raise RecoveryError(
        f"the log of {data_dir} starts after sequence {base_sequence}: events 1..{base_sequence} are in no "
        f"usable snapshot{why}; restore the snapshot or the removed segments"
    )


def _replay_tail(
    reducer: ReplayReducer, data_dir: Path, after: int, until: int | None = None, writer: WalWriter | None = None
) -> int:
    """Apply the log's events above ``after`` (up to ``until``); return how many. The file
    ``writer`` checked on opening is not checked again below ``after``."""
    applied = 0
    with gc_paused():
        for batch in WalReader(data_dir, from_sequence=after + 1, validated=writer).batches():
            done = until is not None and batch[-1].sequence > until
            if done:
                batch = [e for e in batch if e.sequence <= until]
            try:
                reducer.apply_all(batch)
            except ReducerError as exc:
                raise RecoveryError(
                    f"the log of {data_dir} does not replay at sequence {exc.sequence}: {exc}"
                ) from exc
            applied += len(batch)
            if done:
                break
    return applied


def open(  # noqa: A001 - the natural name: actionqueue.recovery.open(data_dir)
    data_dir: str | os.PathLike[str],
    *,
    repair_policy: RepairPolicy | RepairPolicyName = RepairPolicy.STRICT,
    durability: Durability | DurabilityName = Durability.FSYNC,
    layout: Layout | LayoutName = Layout.SEGMENTED,
    use_snapshot: bool = True,
    snapshot_every: int | None = None,
    retain: Literal["delete", "archive"] | None = None,
    archive=None,
    fs: Files = OS,
    **writer_options,
) -> Store:
    """Recover ``data_dir``: snapshot (if valid) + the WAL after it, and a writer at the end.

    ``data_dir`` is an existing data dir, or an empty directory to start one in (its
    ``wal/`` and ``snapshots/`` are created). Anything else is refused before a file is
    written: a missing path (:class:`FileNotFoundError`), a file
    (:class:`NotADirectoryError`), a directory holding other files
    (:class:`~actionqueue.errors.NotADataDir`), a ``wal/`` holding files that are no part of
    a log (:class:`~actionqueue.errors.UnknownFile`).

    ``snapshot_every``: take a snapshot in the background (a child process; commands never
    wait for it) each time that many events have become durable through the store's
    mutation authority (:attr:`Store.snapshots` reports). Rust's default is 10,000.
    ``retain``: after each of those snapshots, the log's sealed segments it covers are
    removed (``"delete"``) or moved into ``archive`` (``"archive"``; a
    :class:`~actionqueue.log.archive.LocalArchive` or any
    :class:`~actionqueue.log.archive.Archive`, or a directory path), through the log's
    catalog: the disk a long-running log uses stays bounded.

    The writer is opened first, with ``repair_policy`` (so a torn tail is cut, or refused,
    before anything is read). A snapshot whose sequence is above the log's last one is
    refused (:class:`RecoveryError`) unless the log is empty, as in Rust.
    """
    started = time.perf_counter()
    data_dir = Path(data_dir)
    _prepare(data_dir, fs)
    writer = WalWriter(data_dir, repair_policy=repair_policy, durability=durability, layout=layout, fs=fs, **writer_options)
    try:
        try:
            reducer, snap_seq, snap_error, source, loaded, applied = _recover(data_dir, writer, use_snapshot)
        except ImageError as exc:
            # a record of the image failed its checks when the tail replay first used it
            # (its digest held: a forged file or a bug): drop the image, use snapshot.bin
            log.warning("%s: the snapshot image is unusable (%s); removing it, reading snapshot.bin", data_dir, exc)
            if fs.exists(image_path(data_dir)):
                fs.unlink(image_path(data_dir))
            reducer, snap_seq, snap_error, source, loaded, applied = _recover(data_dir, writer, use_snapshot)
    except BaseException:
        writer.close()
        raise
    report = RecoveryReport(
        snapshot_loaded=loaded,
        snapshot_sequence=snap_seq,
        snapshot_error=snap_error,
        snapshot_source=source,
        wal_events_applied=applied,
        latest_sequence=reducer.latest_sequence,
        repaired=writer.repaired,
        duration_s=time.perf_counter() - started,
    )
    log.info("recovered %s: snapshot at %d, %d WAL events replayed", data_dir, snap_seq, applied)
    if isinstance(archive, (str, os.PathLike)):
        from .log.archive import LocalArchive

        archive = LocalArchive(archive)
    if archive is not None and retain is None:
        retain = "archive"
    try:
        return Store(data_dir, reducer, writer, report, snapshot_every, retain, archive)
    except BaseException:
        writer.close()
        raise


def _recover(data_dir: Path, writer: WalWriter, use_snapshot: bool) -> tuple:
    """``(reducer, snapshot sequence, snapshot error, source, loaded, events applied)``."""
    reducer, snap_seq, snap_error, source = (
        read_snapshot(data_dir, None, write_image=True, fs=writer.fs) if use_snapshot else (None, 0, None, None)
    )
    loaded = reducer is not None
    require_log_start(data_dir, writer.base_sequence, snap_seq if loaded else 0, snap_error)
    wal_last = writer.current_sequence
    if loaded and snap_seq > wal_last:
        if wal_last != 0:
            raise RecoveryError(
                f"the snapshot of {data_dir} is at sequence {snap_seq}, beyond the log's last {wal_last}"
            )
        log.warning("%s: the log is empty; events before the snapshot's %d are not recoverable", data_dir, snap_seq)
        writer._advance_to(snap_seq)  # appends continue above the snapshot
    if reducer is None:
        reducer = ReplayReducer()
    applied = _replay_tail(reducer, data_dir, snap_seq, writer=writer)
    return reducer, snap_seq, snap_error, source, loaded, applied


def replay_to(data_dir, sequence: int, *, use_snapshot: bool = True) -> ReplayReducer:
    """The projection as it was after the last event with a sequence <= ``sequence``.

    Read-only (no writer, no repair); uses the snapshot when it is not newer than
    ``sequence`` (and, without an image, when parsing its JSON is not slower than
    replaying the whole log: :func:`~actionqueue.snapshot.newest.json_snapshot_costs_more_than_replay`). Handy for
    debugging: what did the state look like back then?
    """
    data_dir = Path(data_dir)
    reducer, snap_seq, _, _ = (
        read_snapshot(data_dir, sequence, read_only=True) if use_snapshot else (None, 0, None, None)
    )
    require_log_start(data_dir, Catalog.load(data_dir).base_sequence, snap_seq if reducer is not None else 0, None)
    if reducer is None:
        reducer = ReplayReducer()
    try:
        _replay_tail(reducer, data_dir, snap_seq, sequence)
    except TornTail:
        pass  # an unfinished last record was never acknowledged: the state before it stands
    return reducer



def repair(
    data_dir,
    *,
    dry_run: bool = False,
    truncate_at_damage: bool = False,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    fs: Files = OS,
) -> RepairPlan:
    """Remove damaged bytes from a data dir's log, keeping every valid record and a backup
    of what goes (:func:`actionqueue.log.repair.repair_log`), and say what it costs.

    Before anything changes, the repaired log is replayed through the reducer. A repair
    whose cut leaves a log that no longer replays from its start is refused
    (:class:`~actionqueue.errors.RepairRefused`, nothing changed) unless a usable
    snapshot covers every cut range and the log replays from it; or pass
    ``truncate_at_damage`` to cut the log at the first damage instead (everything after
    it goes to the backup). :attr:`RepairPlan.replay` says which held. Must not run
    while a writer is open (it takes the writer's lock)."""
    data_dir = Path(data_dir)

    def check(events, cuts: list[Cut]) -> str:
        return _replay_verdict(data_dir, events, cuts)

    return repair_log(data_dir, dry_run=dry_run, max_payload=max_payload, truncate_at_damage=truncate_at_damage,
                      check=check, fs=fs)


def _replay_from(reducer: ReplayReducer, batches, after: int) -> ReducerError | None:
    with gc_paused():
        for batch in batches:
            try:
                reducer.apply_all([e for e in batch if e.sequence > after] if after else batch)
            except ReducerError as exc:
                return exc
    return None


def _replay_verdict(data_dir: Path, events, cuts: list[Cut]) -> str:
    """How the repaired log (``events()`` gives its batches) replays; raises
    :class:`RepairRefused` when a cut breaks replay and no snapshot covers it."""
    base = Catalog.load(data_dir).base_sequence
    failure = _replay_from(ReplayReducer(), events(), 0) if base == 0 else None
    if base == 0 and failure is None:
        return "replays from its start"
    mid = [c for c in cuts if c.before_sequence is not None]
    first_cut = min((c.after_sequence or 0 for c in mid), default=None)
    if failure is not None and (first_cut is None or (failure.sequence or 0) <= first_cut):
        # it fails before any cut: the repair is not what breaks it
        return f"does not replay from its start, as before the repair: {failure}"
    if not mid:  # torn tails only: what is left is what replayed before
        return f"starts after sequence {base}: replayable from a snapshot only"
    reducer, snap_seq, snap_error, _ = read_snapshot(data_dir)
    covered = reducer is not None and snap_seq >= base and all(
        c.before_sequence is not None and c.before_sequence - 1 <= snap_seq for c in mid)
    if covered and reducer is not None:
        failure = _replay_from(reducer, events(), snap_seq)
        if failure is None:
            return f"replays from the snapshot at sequence {snap_seq} (the cut ranges are below it)"
    where = ", ".join(f"{c.path.name} offset {c.offset} (between sequences {c.after_sequence} and "
                      f"{c.before_sequence})" for c in mid)
    seq = getattr(failure, "sequence", None)
    raise RepairRefused(
        f"{data_dir}: cutting the damage at {where} leaves a log that does not replay"
        + (f": sequence {seq} is rejected ({failure})" if failure else "")
        + (f"; no usable snapshot covers the cut ({snap_error or 'none at or above it'})" if not covered else "")
        + ". Nothing was changed. Restore the files, or truncate the log at the damage "
        "(repair(..., truncate_at_damage=True); the CLI's --truncate-at-damage), keeping the rest in the backup",
        seq,
    )
