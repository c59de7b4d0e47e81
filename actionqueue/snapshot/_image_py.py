"""Snapshot images, format 1 (the pure-Python backend's): a snapshot laid out so that
recovery need not read all of it. The native backend writes format 2 (:mod:`.image`).

Rust's snapshot file (``snapshots/snapshot.bin``) is one JSON document: to use any of it,
all of it must be parsed, validated and turned into objects (seconds for a million-event
history). Next to it we write ``snapshots/snapshot.image``: the same snapshot, with each
task and each run stored as its own JSON text, indexed by id. Recovery reads the image's
small parts (everything but tasks and runs) eagerly and leaves tasks and runs where they
are; the reducer takes each one out of the image the first time anything asks for it (see
``ReplayReducer._cold_run``). Nothing is lost or changed: a record is parsed and checked by
the same code as the JSON snapshot (``snapshot._parse_run`` and friends) when it is taken.

The image is only a faster path to ``snapshot.bin``'s content. It names the frame of the
``snapshot.bin`` it was made from (version, length, CRC-32); recovery uses it only when that
matches the current ``snapshot.bin`` header and its own xxh3-128 digest holds, and otherwise
falls back to ``snapshot.bin``. Rust ignores the file.

Layout (little-endian)::

    header   magic "AQSIMAGE", u32 image version, u32 snapshot frame version,
             u32 snapshot JSON length, u32 snapshot JSON CRC-32, u64 wal_sequence,
             u64 body length, 16 bytes xxh3-128 of the body
    body     u64 length + JSON: the snapshot with empty "tasks" and "runs" (counts 0)
             task table, orphan table, run table, each:
                u64 n; n x 16 id bytes (sorted); (n + 1) x u64 record offsets; records
    task record    {"task": <the snapshot's task entry>, "runs": [run ids of the task]}
    orphan record  {"task": null, "runs": [...]}: runs of a task the projection lacks
    run record     the snapshot's run entry
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import threading
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from ..model import RunId, TaskId
from ..errors import ImageError

IMAGE_NAME = "snapshot.image"
IMAGE_VERSION = 1
_MAGIC = b"AQSIMAGE"
_HEADER = struct.Struct("<8sIIIIQQ16s")
_U64 = struct.Struct("<Q")
_ID_PAIR = struct.Struct(">QQ")


def image_path(data_dir: str | os.PathLike) -> Path:
    """``<data_dir>/snapshots/snapshot.image``."""
    return Path(data_dir) / "snapshots" / IMAGE_NAME


# -----------------------------------------------------------------------------------------
# Writing
# -----------------------------------------------------------------------------------------
def _table(entries: list[tuple[bytes, bytes]]) -> bytes:
    """``(16 id bytes, record)`` pairs -> a table, sorted by id bytes."""
    entries.sort(key=lambda e: e[0])
    offsets = np.zeros(len(entries) + 1, dtype="<u8")
    np.cumsum([len(r) for _, r in entries], out=offsets[1:])
    return b"".join(
        [_U64.pack(len(entries)), b"".join(i for i, _ in entries), offsets.tobytes(), *(r for _, r in entries)]
    )


def encode_image(snapshot: dict[str, Any], frame: tuple[int, int, int]) -> bytes:
    """The image of a validated ``snapshot`` whose file frame is ``(version, length, crc)``."""
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    # keyed by id bytes: the same id may be spelled differently in tasks and runs
    runs_of: dict[bytes, list[str]] = {}
    run_entries = []
    for run in snapshot["runs"]:
        inst = run["run_instance"]
        runs_of.setdefault(TaskId(inst["task_id"]).bytes, []).append(inst["id"])
        run_entries.append((RunId(inst["id"]).bytes, dumps(run).encode()))
    task_entries = []
    for task in snapshot["tasks"]:
        raw = TaskId(task["task_spec"]["id"]).bytes
        task_entries.append((raw, dumps({"task": task, "runs": runs_of.pop(raw, [])}).encode()))
    orphan_entries = [  # runs of tasks the projection does not have (replay/invalid/i05)
        (raw, dumps({"task": None, "runs": runs}).encode()) for raw, runs in runs_of.items()
    ]
    rest = dict(snapshot)
    rest["tasks"] = []
    rest["runs"] = []
    rest["metadata"] = {**snapshot["metadata"], "task_count": 0, "run_count": 0}
    rest_json = dumps(rest).encode()
    body = b"".join(
        [_U64.pack(len(rest_json)), rest_json, _table(task_entries), _table(orphan_entries), _table(run_entries)]
    )
    version, length, crc = frame
    header = _HEADER.pack(
        _MAGIC, IMAGE_VERSION, version, length, crc, snapshot["metadata"]["wal_sequence"], len(body),
        xxhash.xxh3_128_digest(body),
    )  # fmt: skip
    return header + body


# -----------------------------------------------------------------------------------------
# Reading
# -----------------------------------------------------------------------------------------
class _Table:
    """Sorted ids with their records; each record can be taken once."""

    __slots__ = ("body", "hi", "lo", "offsets", "base", "taken", "runs_taken")

    def __init__(self, body: bytes, pos: int) -> None:
        if pos + 8 > len(body):
            raise ImageError("truncated table")
        (n,) = _U64.unpack_from(body, pos)
        ids_at = pos + 8
        offsets_at = ids_at + 16 * n
        self.base = offsets_at + 8 * (n + 1)
        if n > len(body) or self.base > len(body):
            raise ImageError("truncated table")
        pairs = np.frombuffer(body, dtype=">u8", count=2 * n, offset=ids_at).reshape(n, 2)
        self.hi = pairs[:, 0].astype(np.uint64)
        self.lo = pairs[:, 1].astype(np.uint64)
        self.offsets = np.frombuffer(body, dtype="<u8", count=n + 1, offset=offsets_at)
        if n and (int(self.offsets[-1]) + self.base > len(body) or np.any(np.diff(self.offsets.astype(np.int64)) < 0)):
            raise ImageError("record offsets out of range")
        self.body = body
        self.taken = np.zeros(n, dtype=bool)  # record handed over
        self.runs_taken = np.zeros(n, dtype=bool)  # (task tables) its run id list handed over

    @property
    def end(self) -> int:
        return self.base + (int(self.offsets[-1]) if len(self.offsets) else 0)

    def find(self, raw: bytes) -> int:
        """Index of the id (16 bytes), or -1."""
        hi, lo = _ID_PAIR.unpack(raw)
        # a numpy scalar: a Python int above 2**63 would make numpy compare as floats,
        # converting the whole column on every call
        i = int(self.hi.searchsorted(np.uint64(hi)))
        n = len(self.hi)
        while i < n and int(self.hi[i]) == hi:
            if int(self.lo[i]) == lo:
                return i
            i += 1
        return -1

    def record(self, i: int) -> Any:
        start = self.base + int(self.offsets[i])
        end = self.base + int(self.offsets[i + 1])
        try:
            return json.loads(self.body[start:end])
        except ValueError as exc:
            raise ImageError(f"record {i} is not JSON: {exc}") from None

    def id_bytes(self, i: int) -> bytes:
        return _ID_PAIR.pack(int(self.hi[i]), int(self.lo[i]))


class ColdProjection:
    """The tasks and runs of a snapshot image that the reducer has not asked for yet.

    Each ``take_*`` hands a record over once (the reducer keeps it from then on) and
    ``None`` for ids it does not hold or already handed over.
    """

    def __init__(self, body: bytes, pos: int) -> None:
        #: held by the reducer around a take and the insert that follows it (reads of a
        #: recovered reducer take records: concurrent readers must not race there)
        self.lock = threading.Lock()
        self._tasks = _Table(body, pos)
        self._orphans = _Table(body, self._tasks.end)
        self._runs = _Table(body, self._orphans.end)
        self.tasks_left = len(self._tasks.hi)
        self.runs_left = len(self._runs.hi)

    # -- single records ----------------------------------------------------------------
    def has_run(self, run_id: RunId) -> bool:
        i = self._runs.find(run_id.bytes)
        return i >= 0 and not self._runs.taken[i]

    def has_task(self, task_id: TaskId) -> bool:
        i = self._tasks.find(task_id.bytes)
        return i >= 0 and not self._tasks.taken[i]

    def take_run(self, run_id: RunId) -> Any:
        i = self._runs.find(run_id.bytes)
        if i < 0 or self._runs.taken[i]:
            return None
        return self._take_run_at(i)

    def _run_at(self, i: int) -> Any:
        """The reducer's record of run ``i`` (nothing marked)."""
        from ._py import SnapshotError, _parse_run, _validate_run, run_record

        try:
            parsed = _parse_run(self._runs.record(i), f"image.runs[{i}]")
            _validate_run(parsed)
        except SnapshotError as exc:
            raise ImageError(f"run record {i} of the snapshot image is invalid: {exc}") from exc
        if parsed.id.bytes != self._runs.id_bytes(i):
            raise ImageError(f"run record {i} is filed under another id")
        return run_record(parsed)

    def _take_run_at(self, i: int) -> Any:
        rec = self._run_at(i)
        self._runs.taken[i] = True
        self.runs_left -= 1
        return rec

    def take_task(self, task_id: TaskId) -> Any:
        i = self._tasks.find(task_id.bytes)
        if i < 0 or self._tasks.taken[i]:
            return None
        return self._take_task_at(i)

    def _task_at(self, i: int) -> Any:
        """The reducer's record of task ``i`` (nothing marked)."""
        from ..state.reducer import _Task
        from ._py import SnapshotError, parse_task_entry

        try:
            created, canceled_at = parse_task_entry(self._tasks.record(i)["task"], f"image.tasks[{i}]")
        except (SnapshotError, KeyError, TypeError) as exc:
            raise ImageError(f"task record {i} of the snapshot image is invalid: {exc}") from exc
        if created.task_spec.id.bytes != self._tasks.id_bytes(i):
            raise ImageError(f"task record {i} is filed under another id")
        task = _Task(created.task_spec, created.timestamp)
        task.canceled_at = canceled_at  # type: ignore[assignment]  # reducer.py's records are untyped
        return task

    def _take_task_at(self, i: int) -> Any:
        task = self._task_at(i)
        self._tasks.taken[i] = True
        self.tasks_left -= 1
        return task

    def take_runs_of_task(self, task_id: TaskId) -> list[RunId] | None:
        raw = task_id.bytes
        for table in (self._tasks, self._orphans):
            i = table.find(raw)
            if i >= 0:
                return self._runs_of_at(table, i)
        return None

    @staticmethod
    def _run_ids_at(table: _Table, i: int) -> list[RunId] | None:
        try:
            return [RunId(r) for r in table.record(i)["runs"]] or None
        except (KeyError, TypeError, ValueError) as exc:
            raise ImageError(f"task record {i} of the snapshot image is invalid: {exc}") from exc

    @classmethod
    def _runs_of_at(cls, table: _Table, i: int) -> list[RunId] | None:
        if table.runs_taken[i]:
            return None
        ids = cls._run_ids_at(table, i)
        table.runs_taken[i] = True
        return ids

    # -- everything ----------------------------------------------------------------------
    def thaw_all(self, tasks: dict, runs: dict, runs_by_task: dict) -> tuple[dict, dict, dict]:
        """New dicts for the reducer with every record still here added: the image's
        records first, in id order (as a JSON snapshot hydrates them), then the others.

        Changes nothing (neither the dicts given nor this image's marks): if a record is
        bad, the error is raised and everything stays as it was."""
        new_tasks: dict = {}
        t = self._tasks
        for i in range(len(t.hi)):
            tid = TaskId(t.id_bytes(i))
            new_tasks[tid] = tasks[tid] if t.taken[i] else self._task_at(i)
        for tid, task in tasks.items():
            new_tasks.setdefault(tid, task)
        new_by_task: dict = {}
        for table in (self._tasks, self._orphans):
            for i in range(len(table.hi)):
                tid = TaskId(table.id_bytes(i))
                ids = runs_by_task.get(tid) if table.runs_taken[i] else self._run_ids_at(table, i)
                if ids is not None:
                    new_by_task[tid] = ids
        for tid, ids in runs_by_task.items():
            new_by_task.setdefault(tid, ids)
        new_runs: dict = {}
        r = self._runs
        for i in range(len(r.hi)):
            rid = RunId(r.id_bytes(i))
            new_runs[rid] = runs[rid] if r.taken[i] else self._run_at(i)
        for rid, rec in runs.items():
            new_runs.setdefault(rid, rec)
        return new_tasks, new_runs, new_by_task


def _map(path: Path) -> Any:
    """The file's bytes: a read-only map on POSIX (the image is replaced by rename, never
    rewritten in place, so the mapping stays valid), a copy elsewhere."""
    with open(path, "rb") as f:
        if os.name != "posix":
            return f.read()
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return b""
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
        return mmap.mmap(f.fileno(), size, flags=flags, prot=mmap.PROT_READ)


def read_image(path: Path, frame: tuple[int, int, int]) -> tuple[dict[str, Any], ColdProjection]:
    """``(the snapshot without tasks and runs, the cold tasks and runs)`` of the image at
    ``path`` made from the ``snapshot.bin`` whose frame is ``frame``; :class:`ImageError`
    when it is missing, damaged or made from another snapshot."""
    try:
        data = _map(path)
    except (OSError, ValueError) as exc:
        raise ImageError(f"cannot read {path}: {exc}") from None
    if len(data) < _HEADER.size:
        raise ImageError("truncated header")
    magic, version, snap_version, snap_length, snap_crc, _seq, body_len, digest = _HEADER.unpack_from(data)
    if magic != _MAGIC or version != IMAGE_VERSION:
        raise ImageError("not a snapshot image of this version")
    if (snap_version, snap_length, snap_crc) != tuple(frame):
        raise ImageError("made from another snapshot.bin")
    start = _HEADER.size
    if len(data) - start != body_len:
        raise ImageError(f"body is {len(data) - start} bytes, the header says {body_len}")
    with memoryview(data) as view:
        if xxhash.xxh3_128_digest(view[start:]) != digest:
            raise ImageError("digest mismatch")
    (rest_len,) = _U64.unpack_from(data, start)
    rest_at = start + 8
    if rest_at + rest_len > len(data):
        raise ImageError("truncated")
    try:
        rest = json.loads(data[rest_at : rest_at + rest_len])
    except ValueError as exc:
        raise ImageError(f"not JSON: {exc}") from None
    return rest, ColdProjection(data, rest_at + rest_len)
