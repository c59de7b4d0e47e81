"""The snapshot functions on the native backend: one pass writes the JSON straight from
the reducer's records, one validating pass reads it, and both leave the index of tasks
and runs (:class:`~._sjson.Spans`) that the image stores and the reducer thaws from.

Same files, checks and errors as the pure-Python backend (:mod:`._py`); the suite runs
both and compares their bytes.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from .. import model as m
from .._bulk import gc_paused
from ..errors import (
    ImageError,
    SnapshotBootstrapError,
    SnapshotDecodeError,
    SnapshotError,
    SnapshotMappingError,
)
from ..log.files import OS, Files, atomic_write
from ..errors import ReducerError
from ..state.reducer import ReplayReducer
from .shape import SNAPSHOT_SCHEMA_VERSION, SNAPSHOT_VERSION, snapshot_sections
from . import _py, _sjson
from . import image as _image
from .cold import SpanProjection, decode_tasks
from .document import Snapshot

__all__ = [
    "build_snapshot",
    "encode_snapshot",
    "load_snapshot",
    "load_hydrated",
    "read_written",
    "reducer_from_image",
    "reducer_from_snapshot",
    "take_snapshot",
    "validate_snapshot",
    "write_image",
    "write_snapshot",
]

log = logging.getLogger("actionqueue.snapshot")


# =========================================================================================
# Build
# =========================================================================================
def build_snapshot(reducer: ReplayReducer, timestamp: int) -> Snapshot:
    """The projection as a schema-v8 :class:`Snapshot` taken at ``timestamp``, validated
    (Rust's rules; raises :class:`SnapshotMappingError`), its JSON byte-identical to
    Rust's for the same projection (lists sorted as the golden vectors sort them)."""
    if not isinstance(reducer, ReplayReducer):
        raise TypeError(f"build_snapshot takes a ReplayReducer, not {type(reducer).__name__}")
    r = reducer
    with gc_paused(), r._lock:  # the projection holds still while it is written out
        cold = r._cold if isinstance(r._cold, SpanProjection) else None
        if cold is None:
            r._hot()
        small = snapshot_sections(r, timestamp)
        # records still in the bytes of the snapshot the reducer came from are copied as
        # they are: a snapshot costs what changed since then, plus a copy of the rest
        parts = cold.cold_records(r) if cold is not None and r._cold is cold else (None, None)
        data, spans, run_error = _sjson.encode_projection(r, timestamp, SNAPSHOT_VERSION, SNAPSHOT_SCHEMA_VERSION,
                                                          small, *parts)  # fmt: skip
        if run_error is not None:
            raise run_error
        header = {"version": SNAPSHOT_VERSION, "timestamp": timestamp, "schema_version": SNAPSHOT_SCHEMA_VERSION,
                  "wal_sequence": r.latest_sequence, "task_count": len(spans.task_ids),
                  "run_count": len(spans.run_ids)}  # fmt: skip
        p = _py._parse(_small_document(header, small))
        _py.check_sections(p)
    return Snapshot(data, spans, header, None)


def _small_document(header: dict[str, int], small: dict[str, Any]) -> dict[str, Any]:
    """The snapshot's JSON object without its tasks and runs (counts as declared)."""
    meta = {k: header[k] for k in ("schema_version", "wal_sequence", "task_count", "run_count")}
    return {"version": header["version"], "timestamp": header["timestamp"], "metadata": meta,
            "tasks": [], "runs": [], **small}  # fmt: skip


def encode_snapshot(snapshot: Any) -> bytes:
    """The snapshot file bytes: header (frame version = ``snapshot["version"]``, length,
    CRC-32) then the compact JSON as serde_json writes it. No validation."""
    if isinstance(snapshot, Snapshot):
        return bytes(snapshot.data)
    if not isinstance(snapshot, dict):
        raise TypeError(f"a snapshot is a dict or a Snapshot, not {type(snapshot).__name__}")
    return _sjson.encode_builtins(snapshot, snapshot.get("version", SNAPSHOT_VERSION))


def _as_snapshot(snapshot: Any) -> Snapshot:
    """A validated :class:`Snapshot` of a Snapshot or of the snapshot's JSON object."""
    if isinstance(snapshot, Snapshot):
        return snapshot
    if type(snapshot) is not dict:
        raise SnapshotDecodeError(f"Failed to decode snapshot: snapshot: expected an object, got {snapshot!r:.60}")
    version = snapshot.get("version", SNAPSHOT_VERSION)
    try:
        data = _sjson.encode_builtins(snapshot, version if type(version) is int and 0 <= version <= 0xFFFFFFFF else 0)
    except (TypeError, OverflowError, ValueError, UnicodeError) as exc:
        raise SnapshotDecodeError(f"Failed to decode snapshot: {exc}") from exc
    return from_file_bytes(data)


def validate_snapshot(snapshot: Any) -> None:
    """Rust's ``validate_snapshot`` (see :func:`actionqueue.snapshot._py.validate_snapshot`
    for the rules and their relaxations): shape and types raise
    :class:`SnapshotDecodeError`, rule violations :class:`SnapshotMappingError`."""
    with gc_paused():
        _as_snapshot(snapshot)


# =========================================================================================
# Read and validate
# =========================================================================================
def from_file_bytes(data: Any) -> Snapshot:
    """Validate the snapshot file ``data`` (frame already checked): one native pass over
    the JSON, then the model's parse of the task specs and the small sections, then the
    rules in Rust's order."""
    version, length, _crc = _py._HEADER.unpack_from(data)
    with memoryview(data) as view:
        payload = view[_py._HEADER.size : _py._HEADER.size + length]
        head, spans, tasks, run_error = _sjson.scan(payload)
        small = {key: _section(payload[a:b], key) for key, (a, b) in spans.top.items()}
        p = _py._parse(_small_document(head, small))
        p.tasks = decode_tasks(*tasks)
    _py.check_head(p, len(p.tasks), len(spans.run_ids))
    _py.check_tasks(p)
    _check_runs(spans, run_error)
    _py.check_sections(p)
    p.runs = None
    return Snapshot(data, spans, head, p)


def _section(raw: memoryview, key: str) -> Any:
    try:
        return json.loads(bytes(raw), object_pairs_hook=_py._no_duplicate_keys, parse_constant=_py._no_constants)
    except SnapshotDecodeError:
        raise
    except (ValueError, RecursionError) as exc:
        raise SnapshotDecodeError(f"Failed to decode snapshot: {key}: {exc}") from exc


def _check_runs(spans: Any, run_error: tuple[int, SnapshotMappingError] | None) -> None:
    """The first run, in payload order, that breaks a rule or repeats an earlier run's id."""
    import numpy as np

    ids = spans.run_ids
    dup_at = len(ids)
    if len(ids) > 1:
        keys = ids.view(">u8").reshape(len(ids), 2)
        order = np.lexsort((np.arange(len(ids)), keys[:, 1], keys[:, 0]))
        s = keys[order]
        same = np.all(s[1:] == s[:-1], axis=1)
        if same.any():
            dup_at = int(order[1:][same].min())
    if run_error is not None and run_error[0] <= dup_at:
        raise run_error[1]
    if dup_at < len(ids):
        raise SnapshotMappingError("DuplicateRunId", run_id=m.RunId(bytes(ids[dup_at])))


def load_snapshot(path_or_data_dir: str | os.PathLike, *, expected_version: int = SNAPSHOT_VERSION) -> Snapshot | None:
    """Load and validate a snapshot file; ``None`` when there is none. Checks in Rust's
    order (see :func:`actionqueue.snapshot._py.load_snapshot`)."""
    read = _py.read_file(path_or_data_dir, expected_version, _sjson.crc32)
    if read is None:
        return None
    with gc_paused():
        return from_file_bytes(read[0])


# =========================================================================================
# Write
# =========================================================================================
def write_snapshot(data_dir: str | os.PathLike, snapshot: Any, *, image: bool = True, fs: Files = OS) -> Path:
    """Validate, then atomically replace ``<data_dir>/snapshots/snapshot.bin`` (and, with
    ``image``, its image). See :func:`actionqueue.snapshot._py.write_snapshot`."""
    with gc_paused():
        snap = _as_snapshot(snapshot)
    return _write(data_dir, snap, image, fs)


def _write(data_dir: str | os.PathLike, snap: Snapshot, image: bool, fs: Files) -> Path:
    target = _py.snapshot_path(data_dir)
    directory = target.parent
    if not fs.exists(directory):
        fs.mkdir(directory)
        fs.fsync_dir(directory.parent)
    # The old image goes first (durably): an image is used only when the frame of
    # snapshot.bin matches the one it names, and a crash between the renames must not
    # leave the old one beside a new snapshot.bin that happens to share its frame.
    stale = _image.image_path(data_dir)
    if fs.exists(stale):
        fs.unlink(stale)
        fs.fsync_dir(directory)
    atomic_write(target, snap.data, fs, sync_dir=False)
    if image:
        _write_image_file(data_dir, snap, fs)
    fs.fsync_dir(directory)
    return target


def _write_image_file(data_dir: str | os.PathLike, snap: Snapshot, fs: Files) -> bool:
    """Atomically (re)place the snapshot's image; on failure remove any stale one and log
    a warning (an image is a cache: the snapshot stands without it). True when written."""
    try:
        _image.write_image_file(data_dir, _image.encode_image(snap.spans, snap.header, snap.frame), fs)
        return True
    except Exception as exc:  # noqa: BLE001 - a cache: the snapshot itself is written
        log.warning("could not write the snapshot image of %s: %s", data_dir, exc)
        try:
            fs.unlink(_image.image_path(data_dir))
        except OSError:
            pass
        return False


def write_image(data_dir: str | os.PathLike, snapshot: Any, frame: Any = None, fs: Files = OS) -> bool:
    """Write the image of the valid ``snapshot`` already in ``snapshots/snapshot.bin``
    (e.g. one Rust wrote), durably. Returns whether it was written (failures are logged)."""
    snap = _as_snapshot(snapshot)
    ok = _write_image_file(data_dir, snap, fs)
    if ok:
        fs.fsync_dir(_image.image_path(data_dir).parent)
    return ok


def take_snapshot(
    data_dir: str | os.PathLike,
    reducer: ReplayReducer,
    timestamp: int | None = None,
    *,
    image: bool = True,
    writer: Any = None,
) -> Snapshot:
    """Snapshot ``reducer`` into ``data_dir``: :func:`build_snapshot` then the write
    (with its image). See :func:`actionqueue.snapshot._py.take_snapshot`."""
    if timestamp is None:
        timestamp = int(time.time())
    if not isinstance(reducer, ReplayReducer):
        raise TypeError(f"take_snapshot takes a ReplayReducer, not {type(reducer).__name__}")
    with reducer._lock:  # the sync covers all the build sees
        if writer is not None:
            writer.sync()
        snap = build_snapshot(reducer, timestamp)
    _write(data_dir, snap, image, OS if writer is None else writer.fs)
    return snap


# =========================================================================================
# Hydrate
# =========================================================================================
def reducer_from_snapshot(snapshot: Any) -> ReplayReducer:
    """A reducer holding the snapshot's projection, ready for the WAL events after
    ``metadata.wal_sequence`` (see :func:`actionqueue.snapshot._py.reducer_from_snapshot`).
    Runs stay in the snapshot's bytes until first used."""
    with gc_paused():
        snap = _as_snapshot(snapshot)
        if snap.parsed is None:  # built here, not read: parse what hydration applies
            snap = from_file_bytes(snap.data)
        return _hydrate(snap)


def _hydrate(snap: Snapshot) -> ReplayReducer:
    p = snap.parsed
    try:
        reducer = _py._hydrate(p)
    except ReducerError as exc:
        raise SnapshotBootstrapError(f"snapshot bootstrap: {exc}") from exc
    reducer._cold = SpanProjection(snap, tasks=p.tasks is None)
    return reducer


def reducer_from_image(data_dir: str | os.PathLike, *, expected_version: int = SNAPSHOT_VERSION) -> ReplayReducer | None:
    """The reducer of the data dir's snapshot through its image (tasks and runs left in
    ``snapshot.bin`` until first used), or ``None`` when there is no usable image."""
    snap = _from_image(data_dir, expected_version)
    if snap is None:
        return None
    try:
        return _hydrate(snap)
    except SnapshotError as exc:
        log.info("not using the snapshot image of %s: %s", data_dir, exc)
        return None


def _from_image(data_dir: str | os.PathLike, expected_version: int) -> Snapshot | None:
    path = _py.snapshot_path(data_dir)
    try:
        data = _image.map_file(path)
    except OSError:
        return None
    if len(data) < _py._HEADER.size:
        return None
    frame = _py._HEADER.unpack_from(data)
    version, length, crc = frame
    if version != expected_version or len(data) < _py._HEADER.size + length:
        return None
    try:
        header, spans = _image.read_image(_image.image_path(data_dir), frame)
        with memoryview(data) as view:
            payload = view[_py._HEADER.size : _py._HEADER.size + length]
            if _sjson.crc32(payload) != crc:
                raise ImageError("snapshot.bin does not match its CRC-32")
            small = {key: _section(payload[a:b], key) for key, (a, b) in spans.top.items()}
        p = _py._parse(_small_document(header, small))
    except (ImageError, SnapshotError) as exc:
        log.info("not using the snapshot image of %s: %s", data_dir, exc)
        return None
    p.tasks = None
    p.runs = None
    return Snapshot(data, spans, header, p)


def read_written(data_dir: str | os.PathLike) -> Snapshot | None:
    """The data dir's snapshot as just written (through its image when it has one: no
    parse), or None."""
    snap = _from_image(data_dir, SNAPSHOT_VERSION)
    return snap if snap is not None else load_snapshot(data_dir)


def load_hydrated(data_dir: str | os.PathLike, fs: Files = OS, image: bool = False
                  ) -> tuple[ReplayReducer, int] | None:
    """Recovery's read of ``snapshot.bin`` (no usable image): ``(reducer, sequence)`` or
    None when there is no snapshot; with ``image``, its image is written for next
    time. Raises :class:`SnapshotError` for a damaged or invalid one."""
    snap = load_snapshot(data_dir)
    if snap is None:
        return None
    reducer = _hydrate(snap)
    if image:
        ok = _write_image_file(data_dir, snap, fs)
        if ok:
            fs.fsync_dir(_image.image_path(data_dir).parent)
    return reducer, snap.wal_sequence
