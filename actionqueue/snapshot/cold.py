"""Tasks and runs left in a snapshot's bytes until the reducer asks for them.

A :class:`SpanProjection` serves the reducer's cold lookups (``ReplayReducer._cold``) from
a validated :class:`~.document.Snapshot`: each task and run is parsed from its span the
first time it is used and handed over once. Runs are read by the native parser
(``_sjson.thaw_run``) and built by the one record builder (``_py.record_of``); tasks by
the model's typed parse.
"""

from __future__ import annotations

import bisect
from typing import Any, cast

import numpy as np

from .. import model as m
from .._bulk import gc_paused
from ..codec._codec import decode_batch
from ..errors import DecodeError, ImageError, SnapshotDecodeError, SnapshotError, ValidationError
from ..model import RunId, TaskId
from . import _sjson
from ._py import record_of

__all__ = ["SpanProjection", "decode_tasks"]


def _keys(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(order, hi, lo)``: the row order that sorts 16-byte ids, and the sorted halves."""
    pairs = ids.view(">u8").reshape(len(ids), 2).astype(np.uint64)
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    return order, pairs[order, 0], pairs[order, 1]


class _Index:
    """Ids (rows in payload order) searchable by value."""

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = ids
        self.order, self.hi, self.lo = _keys(ids)

    def find(self, raw: bytes) -> int:
        """The payload-order row of the id, or -1."""
        hi, lo = int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:], "big")
        i = int(self.hi.searchsorted(np.uint64(hi)))
        while i < len(self.hi) and int(self.hi[i]) == hi:
            if int(self.lo[i]) == lo:
                return int(self.order[i])
            i += 1
        return -1


class SpanProjection:
    """The cold part of a reducer hydrated from ``snapshot``: its runs, and its tasks too
    when ``tasks`` (otherwise the reducer already holds every task)."""

    def __init__(self, snapshot: Any, tasks: bool) -> None:
        self._snapshot = snapshot  # keeps the bytes alive
        self._payload = np.frombuffer(snapshot.payload, dtype=np.uint8)
        s = snapshot.spans
        self._runs = _Index(s.run_ids)
        self._run_taken = np.zeros(len(s.run_ids), dtype=bool)
        self._run_start, self._run_end = s.run_start, s.run_end
        self._run_task = s.run_task
        self._by_task: dict[bytes, list[int]] | None = None
        self._by_task_taken: set[bytes] = set()
        ntasks = len(s.task_ids) if tasks else 0
        self._tasks = _Index(s.task_ids[:ntasks])
        self._task_taken = np.zeros(ntasks, dtype=bool)
        self._task_start, self._task_end = s.task_start, s.task_end
        self.tasks_left = ntasks
        self.runs_left = len(s.run_ids)

    def cold_records(self, reducer: Any) -> tuple[Any, Any]:
        """``(tasks, runs)`` still here, in id order, for the writer to copy as they are
        (``_sjson._Cold``; tasks None when the reducer holds them all). A record whose text
        is not our writer's (a hand-made or reformatted file) is handed to ``reducer``
        first, to be encoded anew. Hold the reducer's lock from this call until the copy is done."""
        s = self._snapshot.spans
        for i in np.flatnonzero((s.run_canon == 0) & ~self._run_taken).tolist():
            reducer._runs[RunId(bytes(self._runs.ids[i]))] = self._run_at(i)
            self._run_taken[i] = True
            self.runs_left -= 1
        if len(self._task_taken):
            for i in np.flatnonzero((s.task_canon[: len(self._task_taken)] == 0) & ~self._task_taken).tolist():
                reducer._tasks[TaskId(bytes(self._tasks.ids[i]))] = self._task_at(i)
                self._task_taken[i] = True
                self.tasks_left -= 1
        runs = self._runs.order[~self._run_taken[self._runs.order]].astype(np.int64)
        cold_runs = _sjson._Cold(self._payload, s.run_ids, s.run_start, s.run_end, runs, s.run_task)
        if not len(self._task_taken):
            return None, cold_runs
        tasks = self._tasks.order[~self._task_taken[self._tasks.order]].astype(np.int64)
        return _sjson._Cold(self._payload, s.task_ids, s.task_start, s.task_end, tasks), cold_runs

    # -- single records ----------------------------------------------------------------
    def has_run(self, run_id: RunId) -> bool:
        i = self._runs.find(run_id.bytes)
        return i >= 0 and not self._run_taken[i]

    def has_task(self, task_id: TaskId) -> bool:
        i = self._tasks.find(task_id.bytes)
        return i >= 0 and not self._task_taken[i]

    def take_run(self, run_id: RunId) -> Any:
        i = self._runs.find(run_id.bytes)
        if i < 0 or self._run_taken[i]:
            return None
        rec = self._run_at(i)
        self._run_taken[i] = True
        self.runs_left -= 1
        return rec

    def _run_at(self, i: int) -> Any:
        try:
            parts = _sjson.thaw_run(self._payload, int(self._run_start[i]), int(self._run_end[i]))
        except SnapshotError as exc:  # validated when written: a bug or a forged file
            raise ImageError(f"run record {i} of the snapshot is invalid: {exc}") from exc
        if parts[0].bytes != bytes(self._runs.ids[i]):
            raise ImageError(f"run record {i} of the snapshot is filed under another id")
        return record_of(*parts)

    def take_task(self, task_id: TaskId) -> Any:
        i = self._tasks.find(task_id.bytes)
        if i < 0 or self._task_taken[i]:
            return None
        task = self._task_at(i)
        self._task_taken[i] = True
        self.tasks_left -= 1
        return task

    def _task_at(self, i: int) -> Any:
        from ..state.records import _Task

        start, end = int(self._task_start[i]), int(self._task_end[i])
        try:
            ((created, canceled_at),) = decode_tasks(*_sjson.scan_task(self._payload, start, end))
        except (SnapshotError, ValueError) as exc:  # validated when written: a bug or a forged file
            raise ImageError(f"task record {i} of the snapshot is invalid: {exc}") from exc
        if created.task_spec.id.bytes != bytes(self._tasks.ids[i]):
            raise ImageError(f"task record {i} of the snapshot is filed under another id")
        task = _Task(created.task_spec, created.timestamp)
        task.canceled_at = canceled_at
        return task

    def take_runs_of_task(self, task_id: TaskId) -> list[RunId] | None:
        raw = task_id.bytes
        if raw in self._by_task_taken:
            return None
        rows = self._groups().get(raw)
        if rows is None:
            return None
        self._by_task_taken.add(raw)
        return [RunId(bytes(self._runs.ids[i])) for i in rows]

    def _groups(self) -> dict[bytes, list[int]]:
        """Run rows per task id, in payload order (as a JSON hydration appends them)."""
        if self._by_task is None:
            groups: dict[bytes, list[int]] = {}
            keys = self._run_task.view("S16").ravel()
            for i, k in enumerate(keys.tolist()):
                groups.setdefault(k.ljust(16, b"\0"), []).append(i)
            self._by_task = groups
        return self._by_task

    # -- everything ----------------------------------------------------------------------
    def thaw_all(self, tasks: dict, runs: dict, runs_by_task: dict) -> tuple[dict, dict, dict]:
        """New dicts for the reducer with every record still here added (payload order
        first, then the others). Changes nothing if a record is bad."""
        with gc_paused():  # a burst of records: no use tracing the heap while it grows
            return self._thaw_all(tasks, runs, runs_by_task)

    def _thaw_all(self, tasks: dict, runs: dict, runs_by_task: dict) -> tuple[dict, dict, dict]:
        new_tasks: dict = {}
        for i in range(len(self._task_taken)):
            tid = TaskId(bytes(self._tasks.ids[i]))
            new_tasks[tid] = tasks[tid] if self._task_taken[i] else self._task_at(i)
        for tid, task in tasks.items():
            new_tasks.setdefault(tid, task)
        new_by_task: dict = {}
        for raw, rows in self._groups().items():
            tid = TaskId(raw)
            ids = runs_by_task.get(tid) if raw in self._by_task_taken else [RunId(bytes(self._runs.ids[i])) for i in rows]
            if ids is not None:
                new_by_task[tid] = ids
        for tid, ids in runs_by_task.items():
            new_by_task.setdefault(tid, ids)
        new_runs: dict = {}
        ids = self._runs.ids
        for i in range(len(self._run_taken)):
            rid = RunId(bytes(ids[i]))
            new_runs[rid] = runs[rid] if self._run_taken[i] else self._run_at(i)
        for rid, rec in runs.items():
            new_runs.setdefault(rid, rec)
        return new_tasks, new_runs, new_by_task


def decode_tasks(records: bytes, tasks: list) -> list[tuple[m.TaskCreated, int | None]]:
    """``(TaskCreated, canceled_at)`` of each task entry :func:`_sjson.scan` found: its
    spec, transcoded to a framed ``TaskCreated`` record, decoded by the codec (the one home
    of the model's validation) in one batch."""
    try:
        events = decode_batch(records)
    except (DecodeError, ValidationError) as exc:
        at = getattr(exc, "record_offset", None)
        i = bisect.bisect_right([t[0] for t in tasks], at) - 1 if at is not None else -1
        where = f"tasks[{i}].task_spec" if i >= 0 else "a task_spec"
        raise SnapshotDecodeError(f"Failed to decode snapshot: {where}: {exc}") from exc
    assert len(events) == len(tasks)
    return [(cast(m.TaskCreated, e.event), t[3]) for e, t in zip(events, tasks)]
