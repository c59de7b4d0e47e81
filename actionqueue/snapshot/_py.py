"""Snapshots: the projection as framed JSON (schema v8), written atomically, loaded, validated
and hydrated back into a :class:`~actionqueue.state.reducer.ReplayReducer`.

File format (``shared/spec/snapshot-and-recovery.md`` sections 2-3), identical to Rust's:
``u32 LE frame version (4)``, ``u32 LE length``, ``u32 LE CRC-32 of the JSON``, then the JSON
exactly as ``serde_json::to_vec`` writes it. Bytes after the frame are ignored on load.

* :func:`build_snapshot` - the projection as the snapshot's JSON builtins, lists sorted the way
  the golden vectors sort them (Rust's order is HashMap order, i.e. arbitrary), then validated.
* :func:`encode_snapshot` / :func:`write_snapshot` - framing, and the atomic write protocol
  (``snapshot.bin.tmp``, fsync, rename, fsync of the directory).
* :func:`load_snapshot` - the loader's checks in Rust's order, with typed errors.
* :func:`validate_snapshot` - Rust's ``validate_snapshot``, relaxed where it refuses states our
  reducer accepts (decisions.md #11; the relaxed checks are listed in its docstring).
* :func:`reducer_from_snapshot` - hydration through the reducer's own ``apply`` (runs built
  directly once validated).

Differences from Rust (all deliberate):

* Validation is relaxed as listed in :func:`validate_snapshot`, so every projection our reducer
  accepts can be written and loaded back. Every snapshot Rust writes passes ours.
* The parse-time rule "Ready requires scheduled_at <= created_at" of ``RunInstance`` is not
  applied to snapshot runs (same reason: vector ``replay/invalid/s06``).
* Hydration loses nothing that the snapshot holds, and no extra JSON fields are written:
  ``effective_priority`` and ``last_state_change_at`` are taken from ``run_instance`` (Rust
  creates a fresh instance and loses both), an actor's ``last_heartbeat_at`` is restored with a
  synthetic ``ActorHeartbeat`` (Rust drops it), and the active attempt is the run's
  ``current_attempt_id`` (Rust: the last attempt when it is unfinished; identical for every
  state a reducer produces). What no snapshot holds stays lost, as in Rust: the time of each
  dependency declaration (``declared_at`` is the snapshot time) and ``TaskRecord.updated_at``
  (never set by any event anyway).
* A run trimmed by :meth:`ReplayReducer.trim_terminal_history` (terminal, empty state and
  attempt history) is accepted and hydrated as a trimmed run.
"""

from __future__ import annotations

import json
import logging
import os
import time
import struct
import zlib
from pathlib import Path
from typing import Any

from .. import model as m
from .._bulk import gc_paused
from ..errors import ImageError
from ._image_py import encode_image, image_path, read_image
from ..model.json import dumps as _json_dumps
from ..model.json import from_builtins as _from_builtins
from ..model import (
    AttemptId,
    AttemptResultKind,
    RunInstance,
    RunState,
)
from ..state.rules import is_valid_transition
from ..errors import (
    ActionQueueError,
    IncompatibleVersion,
    SnapshotBootstrapError,
    SnapshotCrcMismatch,
    SnapshotDecodeError,
    SnapshotError,
    SnapshotIoError,
    SnapshotMappingError,
)
from ..log.files import OS, Files, atomic_write
from ..errors import ReducerError
from ..state.records import _RUN_INSTANCE_SETTERS, AttemptHistoryEntry, LeaseMetadata, _attempt_records, _new_object
from ..state.records import _Run as _RunRecord
from ..state.records import _Task as _TaskRecord
from ..state.reducer import ReplayReducer
from ..state.rules import ATTEMPT_LINEAGE_STATES, LEASE_FORBIDDEN_STATES
from .shape import SNAPSHOT_SCHEMA_VERSION, SNAPSHOT_VERSION, projection_to_snapshot_builtins

__all__ = [
    "MAX_SNAPSHOT_BYTES",
    "SNAPSHOT_SCHEMA_VERSION",
    "SNAPSHOT_VERSION",
    "IncompatibleVersion",
    "SnapshotBootstrapError",
    "SnapshotCrcMismatch",
    "SnapshotDecodeError",
    "SnapshotError",
    "SnapshotIoError",
    "SnapshotMappingError",
    "build_snapshot",
    "encode_snapshot",
    "load_snapshot",
    "parse_snapshot_bytes",
    "reducer_from_image",
    "reducer_from_snapshot",
    "snapshot_path",
    "take_snapshot",
    "validate_snapshot",
    "write_snapshot",
]

#: The loader refuses a length field above this before reading the payload (as Rust).
MAX_SNAPSHOT_BYTES = 256 * 1024 * 1024

_HEADER = struct.Struct("<III")
log = logging.getLogger("actionqueue.snapshot")
_U32_MAX = 0xFFFFFFFF
_U64_MAX = 0xFFFFFFFFFFFFFFFF
_I32_MIN, _I32_MAX = -(2**31), 2**31 - 1


# =========================================================================================
# Build, encode, write
# =========================================================================================
def snapshot_path(data_dir: str | os.PathLike) -> Path:
    """``<data_dir>/snapshots/snapshot.bin``."""
    return Path(data_dir) / "snapshots" / "snapshot.bin"


def build_snapshot(reducer: ReplayReducer, timestamp: int) -> dict[str, Any]:
    """The projection as a schema-v8 snapshot (JSON builtins) taken at ``timestamp``.

    Content as Rust's ``build_snapshot_from_projection``; lists sorted as the golden vectors
    sort them (see :func:`~actionqueue.snapshot.shape.projection_to_snapshot_builtins`). Validated
    with :func:`validate_snapshot` (raises :class:`SnapshotMappingError`), as in Rust.
    """
    with gc_paused():
        snapshot = projection_to_snapshot_builtins(reducer, timestamp)
        validate_snapshot(snapshot)
    return snapshot


def encode_snapshot(snapshot: dict[str, Any]) -> bytes:
    """The snapshot file bytes: header (frame version = ``snapshot["version"]``, length,
    CRC-32) then the compact JSON as serde_json writes it. No validation."""
    payload = _json_dumps(snapshot).encode("utf-8")
    if len(payload) > _U32_MAX:
        raise SnapshotError(f"snapshot JSON is {len(payload)} bytes, above the u32 length field")
    version = snapshot.get("version", SNAPSHOT_VERSION)
    return _HEADER.pack(version, len(payload), zlib.crc32(payload)) + payload


def write_snapshot(data_dir: str | os.PathLike, snapshot: dict[str, Any], *, image: bool = True,
                   fs: Files = OS) -> Path:
    """Validate, then atomically replace ``<data_dir>/snapshots/snapshot.bin``.

    Writes ``snapshot.bin.tmp`` (created or truncated; ``snapshots/`` created if missing),
    fsyncs it, renames it over ``snapshot.bin`` and fsyncs the directory. On any failure the
    temporary file is removed and the previous snapshot stays intact. Returns the path.

    With ``image`` (the default) the snapshot's image (``snapshot.image``, see
    :mod:`actionqueue._image`) is written the same way next to it, so that recovery can
    skip parsing the JSON. It is only a faster path to the same content: if writing it
    fails, the stale one is removed (it would not match anyway), a warning is logged and
    the snapshot stands.
    """
    with gc_paused():
        validate_snapshot(snapshot)
        return _write_validated(data_dir, snapshot, image, fs)


def _write_validated(data_dir: str | os.PathLike, snapshot: dict[str, Any], image: bool, fs: Files = OS) -> Path:
    with gc_paused():
        data = encode_snapshot(snapshot)
        target = snapshot_path(data_dir)
        directory = target.parent
        if not fs.exists(directory):
            fs.mkdir(directory)
            fs.fsync_dir(directory.parent)
        # The old image goes first (durably): an image is used only when the frame of
        # snapshot.bin matches the one it names, and a crash between the renames must not
        # leave the old one beside a new snapshot.bin that happens to share its frame.
        stale = image_path(data_dir)
        if fs.exists(stale):
            fs.unlink(stale)
            fs.fsync_dir(directory)
        atomic_write(target, data, fs, sync_dir=False)
        if image:
            _write_image_file(data_dir, snapshot, _HEADER.unpack_from(data), fs)
    fs.fsync_dir(directory)
    return target


def take_snapshot(
    data_dir: str | os.PathLike,
    reducer: ReplayReducer,
    timestamp: int | None = None,
    *,
    image: bool = True,
    writer: Any = None,
) -> dict[str, Any]:
    """Snapshot ``reducer`` into ``data_dir``: :func:`build_snapshot` then
    :func:`write_snapshot` (with its image), validated once. ``timestamp`` defaults to now
    (Unix seconds). Returns the snapshot written.

    The sync and the build hold the reducer's lock (commands wait for them; the write
    comes after). Pass the data dir's open ``writer`` when the reducer may hold events
    written but not yet fsynced (group commit, ``NONE``): it is synced first, so that the
    snapshot never gets ahead of the durable log (a poisoned writer raises and nothing is
    written). A store or an authority takes its snapshots through
    :meth:`~actionqueue.snapshot.background.Snapshotter.take_live`, which calls this."""
    if timestamp is None:
        timestamp = int(time.time())
    if not isinstance(reducer, ReplayReducer):
        raise TypeError(f"take_snapshot takes a ReplayReducer, not {type(reducer).__name__}")
    with reducer._lock:  # the sync covers all the build sees
        if writer is not None:
            writer.sync()
        snapshot = build_snapshot(reducer, timestamp)
    _write_validated(data_dir, snapshot, image, OS if writer is None else writer.fs)
    return snapshot


def _write_image_file(data_dir: str | os.PathLike, snapshot: dict[str, Any], frame: tuple[int, int, int],
                      fs: Files = OS) -> bool:
    """Atomically (re)place the snapshot's image; on failure remove any stale one and log
    a warning (an image is a cache: the snapshot stands without it). True when written."""
    try:
        atomic_write(image_path(data_dir), encode_image(snapshot, frame), fs, sync_dir=False)
        return True
    except Exception as exc:  # noqa: BLE001 - a cache: the snapshot itself is written
        log.warning("could not write the snapshot image of %s: %s", data_dir, exc)
        try:
            fs.unlink(image_path(data_dir))
        except OSError:
            pass
        return False


def write_image(data_dir: str | os.PathLike, snapshot: dict[str, Any], frame: tuple[int, int, int],
                fs: Files = OS) -> bool:
    """Write the image of the valid ``snapshot`` already in ``snapshots/snapshot.bin`` with
    file frame ``frame`` (version, length, CRC-32), e.g. one Rust wrote, so that the next
    recovery reads it lazily. Durable on return (the directory is fsynced). Returns whether
    it was written (a failure is logged, never raised)."""
    ok = _write_image_file(data_dir, snapshot, frame, fs)
    if ok:
        fs.fsync_dir(image_path(data_dir).parent)
    return ok


# =========================================================================================
# Load
# =========================================================================================
def _read_frame_field(f: Any, what: str, first: bool) -> int | None:
    raw = f.read(4)
    if len(raw) == 4:
        return struct.unpack("<I", raw)[0]
    if not raw and first:
        return None
    if not raw:
        raise SnapshotDecodeError(f"truncated snapshot: EOF after {what}")
    raise SnapshotDecodeError(f"truncated snapshot {what} frame: {len(raw)} of 4 bytes")


def load_snapshot(
    path_or_data_dir: str | os.PathLike, *, expected_version: int = SNAPSHOT_VERSION
) -> dict[str, Any] | None:
    """Load and validate a snapshot file; ``None`` when there is none.

    ``path_or_data_dir`` is the snapshot file or a data directory (then
    ``snapshots/snapshot.bin`` inside it). Checks, in Rust's order: missing file -> None;
    empty file -> None; 1-3 bytes -> :class:`SnapshotDecodeError`; frame version ->
    :class:`IncompatibleVersion`; truncated length / CRC fields -> :class:`SnapshotDecodeError`;
    length above :data:`MAX_SNAPSHOT_BYTES` -> :class:`SnapshotDecodeError` (nothing read);
    short payload -> :class:`SnapshotIoError`; CRC -> :class:`SnapshotCrcMismatch`; JSON ->
    :class:`SnapshotDecodeError`; :func:`validate_snapshot` -> :class:`SnapshotMappingError`.
    Returns the JSON object, top-level defaults filled in.
    """
    snapshot, _parsed, _frame = _load_parsed(path_or_data_dir, expected_version)
    return snapshot


def _load_parsed(
    path_or_data_dir: str | os.PathLike, expected_version: int = SNAPSHOT_VERSION
) -> tuple[dict[str, Any] | None, _Parsed | None, tuple[int, int, int] | None]:
    """:func:`load_snapshot` returning ``(snapshot, its validated parse, its frame)``."""
    read = read_file(path_or_data_dir, expected_version)
    if read is None:
        return None, None, None
    data, frame = read
    with gc_paused():
        snapshot = parse_snapshot_bytes(data[_HEADER.size:])
        return snapshot, _validated(snapshot), frame


def read_file(
    path_or_data_dir: str | os.PathLike, expected_version: int = SNAPSHOT_VERSION, crc32: Any = zlib.crc32
) -> tuple[bytes, tuple[int, int, int]] | None:
    """``(header + payload, frame)`` of a snapshot file, or None when there is none; the
    frame checks of :func:`load_snapshot` in Rust's order, up to and including the CRC."""
    path = Path(path_or_data_dir)
    if path.is_dir():
        path = snapshot_path(path)
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by the `with f:` below
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SnapshotIoError(f"failed to open snapshot {path}: {exc}") from exc
    with f:
        try:
            version = _read_frame_field(f, "version", True)
            if version is None:
                return None
            if version != expected_version:
                raise IncompatibleVersion(expected_version, version)
            length = _read_frame_field(f, "version frame (length)", False)
            crc = _read_frame_field(f, "length frame (crc)", False)
            assert length is not None and crc is not None
            if length > MAX_SNAPSHOT_BYTES:
                raise SnapshotDecodeError(
                    f"snapshot length {length} exceeds the maximum of {MAX_SNAPSHOT_BYTES} bytes"
                )
            f.seek(0)
            data = f.read(_HEADER.size + length)  # one bytes object: the frame, then the payload
            got = len(data) - _HEADER.size
        except OSError as exc:
            raise SnapshotIoError(f"failed to read snapshot {path}: {exc}") from exc
    if got != length:
        raise SnapshotIoError(f"failed to fill whole buffer: payload has {got} of {length} bytes")
    with memoryview(data) as view:
        actual = crc32(view[_HEADER.size:])
    if actual != crc:
        raise SnapshotCrcMismatch(crc, actual)
    return data, (version, length, crc)


def reducer_from_image(
    data_dir: str | os.PathLike, *, expected_version: int = SNAPSHOT_VERSION
) -> ReplayReducer | None:
    """The reducer of the data dir's snapshot, read from its image (tasks and runs left in
    the image until first used), or ``None`` when there is no usable image: no snapshot,
    no image, an image of another snapshot or a damaged one. Then use :func:`load_snapshot`.
    """
    try:
        with open(snapshot_path(data_dir), "rb") as f:
            head = f.read(_HEADER.size)
    except OSError:
        return None
    if len(head) != _HEADER.size:
        return None
    frame = _HEADER.unpack(head)
    if frame[0] != expected_version:
        return None
    try:
        rest, cold = read_image(image_path(data_dir), frame, _IMAGE_RECORDS)
        reducer = reducer_from_snapshot(rest)
    except (ImageError, SnapshotError) as exc:
        log.info("not using the snapshot image of %s: %s", data_dir, exc)
        return None
    reducer._cold = cold
    return reducer


def _image_run(obj: Any, where: str) -> tuple[bytes, _RunRecord]:
    """A run of an image: parsed and checked as a snapshot's, with its id's bytes."""
    parsed = _parse_run(obj, where)
    _validate_run(parsed)
    return parsed.id.bytes, run_record(parsed)


def _image_task(obj: Any, where: str) -> tuple[bytes, Any]:
    """A task of an image: parsed as a snapshot's, with its id's bytes."""
    created, canceled_at = parse_task_entry(obj, where)
    task = _TaskRecord(created.task_spec, created.timestamp)
    task.canceled_at = canceled_at
    return created.task_spec.id.bytes, task


_IMAGE_RECORDS = (_image_run, _image_task)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise SnapshotDecodeError(f"Failed to decode snapshot: duplicate field `{k}`")
            seen.add(k)
    return out


def _no_constants(name: str) -> Any:
    raise SnapshotDecodeError(f"Failed to decode snapshot: invalid number {name}")


_TOP_DEFAULTS: tuple[tuple[str, Any], ...] = (
    ("engine", lambda: {"paused": False, "paused_at": None, "resumed_at": None}),
    ("dependency_declarations", list),
    ("budgets", list),
    ("subscriptions", list),
    ("actors", list),
    ("tenants", list),
    ("role_assignments", list),
    ("capability_grants", list),
    ("ledger_entries", list),
)


def parse_snapshot_bytes(payload: bytes) -> dict[str, Any]:
    """The snapshot JSON object from its bytes (strict JSON: no NaN, no duplicate keys);
    missing top-level sections get their serde defaults. Shape and types are checked by
    :func:`validate_snapshot`. Raises :class:`SnapshotDecodeError`."""
    try:
        obj = json.loads(
            payload.decode("utf-8"), object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constants
        )
    except SnapshotDecodeError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise SnapshotDecodeError(f"Failed to decode snapshot: {exc}") from exc
    if type(obj) is not dict:
        raise SnapshotDecodeError("Failed to decode snapshot: expected a JSON object")
    for key, default in _TOP_DEFAULTS:
        if key not in obj:
            obj[key] = default()
    return obj


# =========================================================================================
# Typed parse of the JSON (serde's checks)
# =========================================================================================
_MISSING = object()


def _bad(where: str, what: str, got: Any = _MISSING) -> SnapshotDecodeError:
    tail = "" if got is _MISSING else f", got {got!r:.60}"
    return SnapshotDecodeError(f"Failed to decode snapshot: {where}: expected {what}{tail}")


def _field(obj: Any, key: str, where: str, *, optional: bool = False, default: Any = _MISSING) -> Any:
    if type(obj) is not dict:
        raise _bad(where, "an object", obj)
    if key in obj:
        return obj[key]
    if optional:
        return None
    if default is not _MISSING:
        return default
    raise SnapshotDecodeError(f"Failed to decode snapshot: {where}: missing field `{key}`")


def _int(v: Any, where: str, lo: int = 0, hi: int = _U64_MAX) -> int:
    if type(v) is not int or not lo <= v <= hi:
        raise _bad(where, f"an integer in {lo}..={hi}", v)
    return v


def _opt_int(v: Any, where: str) -> int | None:
    return None if v is None else _int(v, where)


def _bool(v: Any, where: str) -> bool:
    if type(v) is not bool:
        raise _bad(where, "a boolean", v)
    return v


def _list(v: Any, where: str) -> list:
    if type(v) is not list:
        raise _bad(where, "an array", v)
    return v


def _typed(cls: type, v: Any, where: str) -> Any:
    try:
        return _from_builtins(cls, v)
    except (ActionQueueError, ValueError, TypeError, KeyError, OverflowError) as exc:
        raise SnapshotDecodeError(f"Failed to decode snapshot: {where}: {exc}") from exc


def _event(name: str, body: dict[str, Any], where: str) -> Any:
    return _typed(m.Event, {name: body}, where)


class _Run:
    __slots__ = (
        "attempt_count",
        "attempts",
        "created_at",
        "current_attempt_id",
        "effective_priority",
        "history",
        "id",
        "last_state_change_at",
        "lease",
        "scheduled_at",
        "state",
        "task_id",
    )  # fmt: skip

    attempt_count: Any
    attempts: Any
    created_at: Any
    current_attempt_id: Any
    effective_priority: Any
    history: Any
    id: Any
    last_state_change_at: Any
    lease: Any
    scheduled_at: Any
    state: Any
    task_id: Any


class _Parsed:
    __slots__ = (
        "actors",
        "budgets",
        "dependencies",
        "engine",
        "grants",
        "ledger",
        "roles",
        "run_count",
        "runs",
        "schema_version",
        "subscriptions",
        "task_count",
        "tasks",
        "tenants",
        "wal_sequence",
    )  # fmt: skip

    actors: Any
    budgets: Any
    dependencies: Any
    engine: Any
    grants: Any
    ledger: Any
    roles: Any
    run_count: Any
    runs: Any
    schema_version: Any
    subscriptions: Any
    task_count: Any
    tasks: Any
    tenants: Any
    wal_sequence: Any


def _parse_run(obj: Any, where: str) -> _Run:
    inst = _field(obj, "run_instance", where)
    w = where + ".run_instance"
    r = _Run()
    # The fixed parts through the model's own parser, as a Scheduled run without attempt (so
    # that Ready with scheduled_at > created_at parses: replay/invalid/s06).
    if type(inst) is not dict:
        raise _bad(w, "an object", inst)
    base = _typed(RunInstance, {**inst, "state": "Scheduled", "current_attempt_id": None}, w)
    r.id, r.task_id = base.id, base.task_id
    r.created_at, r.scheduled_at = base.created_at, base.scheduled_at
    r.effective_priority, r.last_state_change_at = base.effective_priority, base.last_state_change_at
    r.attempt_count = base.attempt_count
    r.state = _typed(RunState, _field(inst, "state", w), w + ".state")
    cur = _field(inst, "current_attempt_id", w, optional=True)
    r.current_attempt_id = None if cur is None else _typed(AttemptId, cur, w + ".current_attempt_id")
    if r.current_attempt_id is not None and r.state is not RunState.RUNNING:
        raise SnapshotDecodeError(
            f"Failed to decode snapshot: {w}: active attempt_id is only valid in Running state"
        )
    r.history = []
    for i, e in enumerate(_list(_field(obj, "state_history", where), where + ".state_history")):
        we = f"{where}.state_history[{i}]"
        frm = _field(e, "from", we, optional=True)
        r.history.append(
            (
                None if frm is None else _typed(RunState, frm, we + ".from"),
                _typed(RunState, _field(e, "to", we), we + ".to"),
                _int(_field(e, "timestamp", we), we + ".timestamp"),
            )
        )
    r.attempts = []
    for i, a in enumerate(_list(_field(obj, "attempts", where), where + ".attempts")):
        wa = f"{where}.attempts[{i}]"
        result = _field(a, "result", wa, optional=True)
        error = _field(a, "error", wa, optional=True)
        output = _field(a, "output", wa, optional=True)
        if error is not None and type(error) is not str:
            raise _bad(wa + ".error", "a string", error)
        if output is not None:
            if type(output) is not list or any(type(b) is not int or not 0 <= b <= 255 for b in output):
                raise _bad(wa + ".output", "an array of bytes", output)
            output = bytes(output)
        r.attempts.append(
            AttemptHistoryEntry(
                _typed(AttemptId, _field(a, "attempt_id", wa), wa + ".attempt_id"),
                _int(_field(a, "started_at", wa), wa + ".started_at"),
                _opt_int(_field(a, "finished_at", wa, optional=True), wa + ".finished_at"),
                None if result is None else _typed(AttemptResultKind, result, wa + ".result"),
                error,
                output,
            )
        )
    lease = _field(obj, "lease", where, optional=True)
    if lease is None:
        r.lease = None
    else:
        wl = where + ".lease"
        owner = _field(lease, "owner", wl)
        if type(owner) is not str:
            raise _bad(wl + ".owner", "a string", owner)
        r.lease = LeaseMetadata(
            owner,
            _int(_field(lease, "expiry", wl), wl + ".expiry"),
            _int(_field(lease, "acquired_at", wl), wl + ".acquired_at"),
            _int(_field(lease, "updated_at", wl), wl + ".updated_at"),
        )
    return r


def parse_task_entry(t: Any, where: str) -> tuple[m.TaskCreated, int | None]:
    """A snapshot task entry as ``(TaskCreated, canceled_at)``."""
    created = _event(
        "TaskCreated", {"task_spec": _field(t, "task_spec", where), "timestamp": _field(t, "created_at", where)}, where
    )
    _opt_int(_field(t, "updated_at", where, optional=True), where + ".updated_at")
    return created, _opt_int(_field(t, "canceled_at", where, optional=True), where + ".canceled_at")


def _parse(snapshot: Any) -> _Parsed:
    """serde's view of the snapshot: every field present (or defaulted) with its type."""
    if type(snapshot) is not dict:
        raise _bad("snapshot", "an object", snapshot)
    p = _Parsed()
    _int(_field(snapshot, "version", "snapshot"), "version", hi=_U32_MAX)
    _int(_field(snapshot, "timestamp", "snapshot"), "timestamp")
    meta = _field(snapshot, "metadata", "snapshot")
    p.schema_version = _int(_field(meta, "schema_version", "metadata"), "metadata.schema_version", hi=_U32_MAX)
    p.wal_sequence = _int(_field(meta, "wal_sequence", "metadata"), "metadata.wal_sequence")
    p.task_count = _int(_field(meta, "task_count", "metadata"), "metadata.task_count")
    p.run_count = _int(_field(meta, "run_count", "metadata"), "metadata.run_count")

    p.tasks = [parse_task_entry(t, f"tasks[{i}]") for i, t in enumerate(_list(_field(snapshot, "tasks", "snapshot"), "tasks"))]

    p.runs = [_parse_run(r, f"runs[{i}]") for i, r in enumerate(_list(_field(snapshot, "runs", "snapshot"), "runs"))]

    eng = _field(snapshot, "engine", "snapshot", default={"paused": False})
    p.engine = (
        _bool(_field(eng, "paused", "engine"), "engine.paused"),
        _opt_int(_field(eng, "paused_at", "engine", optional=True), "engine.paused_at"),
        _opt_int(_field(eng, "resumed_at", "engine", optional=True), "engine.resumed_at"),
    )

    def section(name: str) -> list:
        return _list(_field(snapshot, name, "snapshot", default=[]), name)

    p.dependencies = []
    for i, d in enumerate(section("dependency_declarations")):
        w = f"dependency_declarations[{i}]"
        body = {"task_id": _field(d, "task_id", w), "depends_on": _field(d, "depends_on", w),
                "timestamp": _field(d, "declared_at", w)}  # fmt: skip
        p.dependencies.append(_event("DependencyDeclared", body, w))
    p.budgets = []
    for i, b in enumerate(section("budgets")):
        w = f"budgets[{i}]"
        body = {"task_id": _field(b, "task_id", w), "dimension": _field(b, "dimension", w),
                "limit": _field(b, "limit", w), "timestamp": _field(b, "allocated_at", w)}  # fmt: skip
        p.budgets.append(
            (
                _event("BudgetAllocated", body, w),
                _int(_field(b, "consumed", w), w + ".consumed"),
                _bool(_field(b, "exhausted", w), w + ".exhausted"),
            )
        )
    p.subscriptions = []
    for i, s in enumerate(section("subscriptions")):
        w = f"subscriptions[{i}]"
        body = {"subscription_id": _field(s, "subscription_id", w), "task_id": _field(s, "task_id", w),
                "filter": _field(s, "filter", w), "timestamp": _field(s, "created_at", w)}  # fmt: skip
        p.subscriptions.append(
            (
                _event("SubscriptionCreated", body, w),
                _opt_int(_field(s, "triggered_at", w, optional=True), w + ".triggered_at"),
                _opt_int(_field(s, "canceled_at", w, optional=True), w + ".canceled_at"),
            )
        )
    p.actors = []
    for i, a in enumerate(section("actors")):
        w = f"actors[{i}]"
        body = {k: _field(a, k, w, optional=k in ("department", "tenant_id"))
                for k in ("actor_id", "identity", "capabilities", "department", "heartbeat_interval_secs", "tenant_id")}  # fmt: skip
        body["timestamp"] = _field(a, "registered_at", w)
        p.actors.append(
            (
                _event("ActorRegistered", body, w),
                _opt_int(_field(a, "last_heartbeat_at", w, optional=True), w + ".last_heartbeat_at"),
                _opt_int(_field(a, "deregistered_at", w, optional=True), w + ".deregistered_at"),
            )
        )
    p.tenants = []
    for i, t in enumerate(section("tenants")):
        w = f"tenants[{i}]"
        body = {"tenant_id": _field(t, "tenant_id", w), "name": _field(t, "name", w), "timestamp": _field(t, "created_at", w)}
        p.tenants.append(_event("TenantCreated", body, w))
    p.roles = []
    for i, r in enumerate(section("role_assignments")):
        w = f"role_assignments[{i}]"
        body = {"actor_id": _field(r, "actor_id", w), "role": _field(r, "role", w),
                "tenant_id": _field(r, "tenant_id", w), "timestamp": _field(r, "assigned_at", w)}  # fmt: skip
        p.roles.append(_event("RoleAssigned", body, w))
    p.grants = []
    for i, g in enumerate(section("capability_grants")):
        w = f"capability_grants[{i}]"
        body = {"actor_id": _field(g, "actor_id", w), "capability": _field(g, "capability", w),
                "tenant_id": _field(g, "tenant_id", w), "timestamp": _field(g, "granted_at", w)}  # fmt: skip
        p.grants.append(
            (_event("CapabilityGranted", body, w), _opt_int(_field(g, "revoked_at", w, optional=True), w + ".revoked_at"))
        )
    p.ledger = []
    for i, e in enumerate(section("ledger_entries")):
        w = f"ledger_entries[{i}]"
        body = {k: _field(e, k, w, optional=k == "actor_id")
                for k in ("entry_id", "tenant_id", "ledger_key", "actor_id", "payload", "timestamp")}  # fmt: skip
        p.ledger.append(_event("LedgerEntryAppended", body, w))
    return p


# =========================================================================================
# validate_snapshot
# =========================================================================================


def _is_trimmed(r: _Run) -> bool:
    return r.state.is_terminal and not r.history and not r.attempts and r.current_attempt_id is None


def validate_snapshot(snapshot: dict[str, Any]) -> None:
    """Rust's ``validate_snapshot`` (spec section 5), checks in Rust's order, relaxed where Rust
    refuses a state our reducer accepts (decisions.md #11). Shape/type problems raise
    :class:`SnapshotDecodeError`; rule violations :class:`SnapshotMappingError` with the Rust
    variant name as ``kind``.

    Relaxed (not checked here), with the history that needs it:

    * ``InvalidTaskCanceledAtCausality`` (canceled_at < created_at) -
      ``replay/invalid/s04_task_canceled_before_created``.
    * ``InvalidReadyScheduleCausality`` (Ready with scheduled_at > created_at), and the same
      parse-time rule of ``RunInstance`` - ``s06_ready_future_scheduled``.
    * ``RunReferencesUnknownTask`` - ``i05_run_for_unknown_task``.
    * ``DependencyDeclarationUnknownTask`` / ``DependencyReferencesUnknownTask`` -
      ``s01_dependency_unknown_task`` (the reducer keeps declarations for any ids).
    * ``BudgetReferencesUnknownTask`` - ``s02_budget_unknown_task``.
    * ``SubscriptionReferencesUnknownTask`` - ``s03_subscription_unknown_task``.
    * ``InvalidLeasePresence`` is narrowed: a lease is allowed in RetryWait and Suspended too
      (the reducer keeps the lease when a Running run moves there; only terminal states clear
      it). Still refused in Scheduled and terminal states, which the reducer never produces.
    * ``InvalidActiveAttemptHistory`` is narrowed: the reducer accepts an ``AttemptStarted``
      re-using an earlier (finished) attempt id, so the active id may appear more than once;
      required is that it appears and its *last* entry is unfinished.
    * A terminal run with empty state and attempt histories and no active attempt (trimmed
      by ``trim_terminal_history``) skips the history and attempt-count checks.

    Every snapshot Rust's builder accepts also passes here (each relaxation only removes or
    narrows a refusal).
    """
    _validated(snapshot)


def _validated(snapshot: dict[str, Any]) -> _Parsed:
    """:func:`validate_snapshot`, returning the typed form it parsed (for hydration)."""
    p = _parse(snapshot)
    check_head(p, len(p.tasks), len(p.runs))
    check_tasks(p)
    run_ids: set = set()
    for r in p.runs:
        _validate_run(r)
        if r.id in run_ids:
            raise SnapshotMappingError("DuplicateRunId", run_id=r.id)
        run_ids.add(r.id)
    check_sections(p)
    return p


def check_head(p: _Parsed, ntasks: int, nruns: int) -> None:
    """The first rules, in Rust's order: schema version, then the two counts."""
    if p.schema_version != SNAPSHOT_SCHEMA_VERSION:
        raise SnapshotMappingError(
            "UnsupportedSchemaVersion", expected=SNAPSHOT_SCHEMA_VERSION, found=p.schema_version
        )
    if p.task_count != ntasks:
        raise SnapshotMappingError("TaskCountMismatch", declared=p.task_count, actual=ntasks)
    if p.run_count != nruns:
        raise SnapshotMappingError("RunCountMismatch", declared=p.run_count, actual=nruns)


def check_tasks(p: _Parsed) -> None:
    """No task id twice."""
    task_ids: set = set()
    for created, _canceled_at in p.tasks:
        tid = created.task_spec.id
        if tid in task_ids:
            raise SnapshotMappingError("DuplicateTaskId", task_id=tid)
        task_ids.add(tid)


def check_sections(p: _Parsed) -> None:
    """The rules after the runs', in Rust's order: engine causality, then duplicates among
    dependency declarations, budgets and subscriptions."""
    paused, paused_at, resumed_at = p.engine
    if paused and paused_at is None:
        raise SnapshotMappingError("InvalidEnginePausedCausality")
    if (paused and resumed_at is not None) or (paused_at is None and resumed_at is not None) or (
        not paused and paused_at is not None and resumed_at is None
    ):
        raise SnapshotMappingError("InvalidEngineResumedCausality", paused_at=paused_at, resumed_at=resumed_at)
    if not paused and resumed_at is not None and paused_at is not None and resumed_at < paused_at:
        raise SnapshotMappingError("InvalidEnginePauseResumeOrdering", paused_at=paused_at, resumed_at=resumed_at)
    declared: set = set()
    for d in p.dependencies:
        if d.task_id in declared:
            raise SnapshotMappingError("DuplicateDependencyDeclaration", task_id=d.task_id)
        declared.add(d.task_id)
    budget_keys: set = set()
    for b, _consumed, _exhausted in p.budgets:
        key = (b.task_id, b.dimension)
        if key in budget_keys:
            raise SnapshotMappingError("DuplicateBudgetAllocation", task_id=b.task_id, dimension=b.dimension.value)
        budget_keys.add(key)
    sub_ids: set = set()
    for s, _t, _c in p.subscriptions:
        if s.subscription_id in sub_ids:
            raise SnapshotMappingError("DuplicateSubscriptionId", subscription_id=s.subscription_id)
        sub_ids.add(s.subscription_id)


def _validate_run(r: _Run) -> None:
    rid = r.id
    if rid.is_nil:
        raise SnapshotMappingError("InvalidRunId", run_id=rid)
    if r.task_id.is_nil:
        raise SnapshotMappingError("InvalidTaskId", run_id=rid)
    active = r.current_attempt_id
    if active is not None and r.state not in ATTEMPT_LINEAGE_STATES:
        raise SnapshotMappingError("InvalidAttemptLineageState", run_id=rid, state=r.state.value)
    if active is not None and r.attempt_count == 0:
        raise SnapshotMappingError("InvalidAttemptLineageCount", run_id=rid)
    if not _is_trimmed(r):
        h = r.history
        if not h or h[0] != (None, RunState.SCHEDULED, r.created_at):
            raise SnapshotMappingError("MissingInitialRunStateHistory", run_id=rid)
        prev = h[0][1]
        for frm, to, _ts in h[1:]:
            if frm is None or frm is not prev or not is_valid_transition(frm, to):
                raise SnapshotMappingError(
                    "InvalidRunStateHistoryTransition", run_id=rid,
                    **{"from": None if frm is None else frm.value, "to": to.value},
                )  # fmt: skip
            prev = to
        if prev is not r.state:
            raise SnapshotMappingError(
                "InvalidRunStateHistoryTransition", run_id=rid, **{"from": prev.value, "to": r.state.value}
            )
        if len(r.attempts) != r.attempt_count:
            raise SnapshotMappingError(
                "InvalidAttemptHistoryCount", run_id=rid, attempt_count=r.attempt_count, history=len(r.attempts)
            )
    if active is not None:
        matching = [a for a in r.attempts if a.attempt_id == active]
        if not matching or matching[-1].finished_at is not None:
            raise SnapshotMappingError("InvalidActiveAttemptHistory", run_id=rid, attempt_id=active)
    if r.lease is not None and r.state in LEASE_FORBIDDEN_STATES:
        raise SnapshotMappingError("InvalidLeasePresence", run_id=rid, state=r.state.value)


# =========================================================================================
# Hydration
# =========================================================================================
def run_record(r: _Run) -> _RunRecord:
    """The reducer's record of a snapshot run that passed :func:`_validate_run`."""
    return record_of(r.id, r.task_id, r.state, r.current_attempt_id, r.attempt_count, r.created_at,
                     r.scheduled_at, r.effective_priority, r.last_state_change_at, r.history,
                     _attempt_records(r.attempts),
                     None if r.lease is None else (r.lease.owner, r.lease.expiry, r.lease.acquired_at, r.lease.updated_at))


def record_of(run_id: Any, task_id: Any, state: RunState, attempt_id: Any, attempt_count: int, created_at: int,
              scheduled_at: int, effective_priority: int, last_state_change_at: int, history: list,
              attempts: list, lease: tuple | None) -> _RunRecord:
    """The reducer's record of a validated snapshot run, from its parts (both readers).

    The same record a replay of its history builds: the instance as created (Scheduled,
    no attempt), then state, timestamps, attempt lineage and histories, and the lease as
    the snapshot has them. A trimmed run keeps empty histories.
    """
    base = _new_object(RunInstance)
    for set_slot, value in zip(
        _RUN_INSTANCE_SETTERS,
        (run_id, task_id, RunState.SCHEDULED, None, 0, created_at, scheduled_at, effective_priority,
         last_state_change_at),
    ):  # fmt: skip
        set_slot(base, value)
    rec = _RunRecord(base)
    rec.state = state
    # replayed transitions stamp the last one's time; a trimmed run's all happen at
    # last_state_change_at; a run never moved keeps its instance's
    rec.changed_at = history[-1][2] if len(history) > 1 else last_state_change_at
    rec.history = history
    rec.attempt_count = attempt_count
    rec.attempt_id = attempt_id if state is RunState.RUNNING else None
    rec.attempts = attempts
    if lease is not None:
        # reducer.py's _Run names the last three in __slots__ only
        rec.lease_owner, rec.lease_expiry, rec.lease_acquired_at, rec.lease_updated_at = lease
    return rec


def reducer_from_snapshot(snapshot: dict[str, Any]) -> ReplayReducer:
    """A reducer holding the snapshot's projection (spec section 6), ready for the WAL events
    after ``metadata.wal_sequence``.

    Validates first (:func:`validate_snapshot`). Synthetic events with sequences 1, 2, ... go
    through :meth:`ReplayReducer.apply`, in Rust's order (tasks and cancellations, dependency
    declarations, engine pause/resume, budgets, subscriptions, actors, tenants, roles,
    capability grants, ledger); runs, whose every rule :func:`validate_snapshot` has checked,
    are built directly (:func:`run_record`); then ``latest_sequence`` = ``metadata.wal_sequence``. Unlike Rust the
    run keeps ``effective_priority`` and ``last_state_change_at`` and actors keep
    ``last_heartbeat_at`` (see the module docstring). A reducer rejection raises
    :class:`SnapshotBootstrapError`.
    """
    with gc_paused():
        return _hydrate(_validated(snapshot))  # one parse serves the checks and the hydration


def _hydrate(p: _Parsed) -> ReplayReducer:
    """:func:`reducer_from_snapshot` of an already validated parse."""
    reducer = ReplayReducer()
    seq = 0

    def apply(event: Any) -> None:
        nonlocal seq
        seq += 1
        try:
            reducer.apply(m.WalEvent(seq, event))
        except ReducerError as exc:
            raise SnapshotBootstrapError(f"snapshot bootstrap: {exc}") from exc

    for created, canceled_at in p.tasks or ():  # None: left in an image
        apply(created)
        if canceled_at is not None:
            apply(m.TaskCanceled(created.task_spec.id, canceled_at))
    for d in p.dependencies:
        apply(d)
    _paused, paused_at, resumed_at = p.engine
    if paused_at is not None:
        apply(m.EnginePaused(paused_at))
        if resumed_at is not None:
            apply(m.EngineResumed(resumed_at))
    runs, by_task = reducer._runs, reducer._runs_by_task
    for r in p.runs or ():  # None: left in an image
        runs[r.id] = run_record(r)
        ids = by_task.get(r.task_id)
        if ids is None:
            by_task[r.task_id] = [r.id]
        else:
            ids.append(r.id)
    for allocated, consumed, exhausted in p.budgets:
        apply(allocated)
        if consumed > 0:
            apply(m.BudgetConsumed(allocated.task_id, allocated.dimension, consumed, allocated.timestamp))
        # consumption may have exhausted it already; otherwise (consumed below the limit,
        # or nothing consumed of a zero limit) the explicit event did
        if exhausted and not reducer.is_budget_exhausted(allocated.task_id, allocated.dimension):
            apply(m.BudgetExhausted(allocated.task_id, allocated.dimension, allocated.timestamp))
    for created, triggered_at, canceled_at in p.subscriptions:
        apply(created)
        if triggered_at is not None:
            apply(m.SubscriptionTriggered(created.subscription_id, triggered_at))
        if canceled_at is not None:
            apply(m.SubscriptionCanceled(created.subscription_id, canceled_at))
    for registered, last_heartbeat_at, deregistered_at in p.actors:
        apply(registered)
        if last_heartbeat_at is not None:
            apply(m.ActorHeartbeat(registered.actor_id, last_heartbeat_at))
        if deregistered_at is not None:
            apply(m.ActorDeregistered(registered.actor_id, deregistered_at))
    for t in p.tenants:
        apply(t)
    for ra in p.roles:
        apply(ra)
    for granted, revoked_at in p.grants:
        apply(granted)
        if revoked_at is not None:
            apply(m.CapabilityRevoked(granted.actor_id, granted.capability, granted.tenant_id, revoked_at))
    for e in p.ledger:
        apply(e)
    reducer.set_latest_sequence_for_bootstrap(p.wal_sequence)
    return reducer



def load_hydrated(data_dir: str | os.PathLike, fs: Files = OS, image: bool = False
                  ) -> tuple[ReplayReducer, int] | None:
    """Recovery's read of ``snapshot.bin``: ``(reducer, sequence)`` or None when there is no
    snapshot, parsed and validated once; with ``image``, its image is written for
    next time. Raises :class:`SnapshotError` for a damaged or invalid one."""
    snapshot, parsed, frame = _load_parsed(data_dir)
    if snapshot is None:
        return None
    assert parsed is not None and frame is not None
    reducer = _hydrate(parsed)
    if image:
        write_image(data_dir, snapshot, frame, fs)
    return reducer, parsed.wal_sequence


def read_written(data_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The data dir's snapshot as just written, or None."""
    return load_snapshot(data_dir)
