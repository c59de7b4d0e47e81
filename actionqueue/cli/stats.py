"""``actionqueue stats DIR``: what a data dir holds, in numbers."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import model as _model
from ..state.reducer import ReplayReducer
from ..scan import SegmentScanner
from ..snapshot import SnapshotError, load_snapshot
from ..log.catalog import Catalog
from ..wal import WalCorruption, detect_layout
from ._common import (
    data_dir,
    describe_corruption,
    fmt_age,
    fmt_bytes,
    fmt_time,
    progress,
    replay_readonly,
    snapshot_file,
    table,
)

NAME = "stats"
HELP = "counts per event kind, runs per state, segments, snapshot age, latest sequence"
DESCRIPTION = """\
Summarise a data dir: events per kind (a numpy scan of every record, CRC-checked),
the log's files with their sizes and sequence ranges, the snapshot (sequence, time, age)
and, from a read-only replay (snapshot + the log after it, no writer lock), runs per
state, tasks and the engine's pause state. Exit 1 when the log is damaged (the numbers
then cover what precedes the damage) or the snapshot is unusable.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``stats``."""
    p.add_argument("dir", metavar="DIR", help="data dir")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument("--no-replay", action="store_true", help="skip the replay (no runs per state; faster on big logs)")


def _scan_log(directory: Path) -> dict[str, Any]:
    """Per-file and per-kind numbers from a columnar scan of every file of the log."""
    segs = Catalog.load(directory).segments
    files = [s.path for s in segs]
    total_bytes = sum(f.stat().st_size for f in files)
    counts = np.zeros(len(_model.EVENT_TYPES), dtype=np.int64)
    out_files = []
    first_time = last_time = None
    prev = None
    problem: WalCorruption | None = None
    bar = progress(total_bytes, "scanning", "B", unit_scale=True)
    try:
        for segment in segs:
            path, seal = segment.path, segment.seal
            size = path.stat().st_size
            with SegmentScanner(path) as scanner:
                try:
                    cols = scanner.columns(prev_sequence=prev)
                except WalCorruption as exc:
                    problem = exc
                    cols = scanner.columns(prev_sequence=prev, strict=False)
                last = scanner.last_sequence
            n = len(cols)
            if n:
                counts += np.bincount(cols.kind, minlength=len(counts))[: len(counts)]
                lo, hi = int(cols.time.min()), int(cols.time.max())
                first_time = lo if first_time is None else min(first_time, lo)
                last_time = hi if last_time is None else max(last_time, hi)
            out_files.append({
                "file": str(path.relative_to(directory)) if path.is_relative_to(directory) else str(path),
                "bytes": size,
                "sealed": seal is not None,
                "records": n,
                "first_sequence": int(cols.sequence[0]) if n else None,
                "last_sequence": int(cols.sequence[-1]) if n else None,
            })
            if last is not None:
                prev = last
            bar.update(size)
            if problem is not None:
                break
    finally:
        bar.close()
    return {
        "files": out_files,
        "bytes": total_bytes,
        "events": int(counts.sum()),
        "latest_sequence": prev,
        "first_time": first_time,
        "last_time": last_time,
        "kinds": {cls.__name__: int(c) for cls, c in zip(_model.EVENT_TYPES, counts) if c},
        "problem": problem,
    }


def _snapshot_info(directory: Path, now: float) -> dict[str, Any] | None:
    path = snapshot_file(directory)
    if not path.exists():
        return None
    info: dict[str, Any] = {"file": str(path.relative_to(directory)), "bytes": path.stat().st_size,
                            "written_age_s": now - path.stat().st_mtime}
    try:
        snap = load_snapshot(path)
    except SnapshotError as exc:
        info["error"] = f"{type(exc).__name__} ({exc.kind}): {exc}"
        return info
    if snap is None:
        info["error"] = "empty file"
        return info
    meta = snap["metadata"]
    info.update({
        "sequence": int(meta["wal_sequence"]),
        "timestamp": int(snap["timestamp"]),
        "age_s": now - int(snap["timestamp"]),
        "tasks": int(meta.get("task_count", 0)),
        "runs": int(meta.get("run_count", 0)),
        "error": None,
    })
    return info


def _projection(reducer: ReplayReducer) -> dict[str, Any]:
    by_state = {s.value: 0 for s in _model.RunState}
    for run in reducer.run_instances():
        by_state[run.state.value] += 1
    return {
        "tasks": reducer.task_count,
        "runs": reducer.run_count,
        "runs_by_state": by_state,
        "engine_paused": reducer.is_engine_paused,
        "latest_sequence": reducer.latest_sequence,
    }


def collect(directory: Path, *, replay: bool = True) -> dict[str, Any]:
    """Every number ``stats`` prints, as JSON-ready builtins (``problem`` is a string or None)."""
    now = time.time()
    layout = detect_layout(directory)
    log = _scan_log(directory)
    problem = log.pop("problem")
    result: dict[str, Any] = {
        "data_dir": str(directory),
        "layout": None if layout is None else layout.value,
        **log,
        "snapshot": _snapshot_info(directory, now),
        "projection": None,
        "problem": None if problem is None else describe_corruption(problem),
    }
    if replay:
        try:
            rep = replay_readonly(directory)
        except WalCorruption as exc:
            if result["problem"] is None:
                result["problem"] = describe_corruption(exc)
            return result
        proj = _projection(rep.reducer)
        proj["from_snapshot_sequence"] = rep.snapshot_sequence
        proj["events_replayed"] = rep.events_applied
        result["projection"] = proj
        if result["latest_sequence"] is None or proj["latest_sequence"] > (result["latest_sequence"] or 0):
            result["latest_sequence"] = proj["latest_sequence"] or result["latest_sequence"]
    return result


def render(s: dict[str, Any], out: Any) -> None:
    """The human form of :func:`collect`'s result."""
    w = out.write
    w(f"data dir        {s['data_dir']}  (layout: {s['layout'] or 'no log yet'})\n")
    w(f"latest sequence {s['latest_sequence'] if s['latest_sequence'] is not None else '-'}\n")
    w(f"events          {s['events']:,} in {fmt_bytes(s['bytes'])}"
      f"  ({fmt_time(s['first_time'])} .. {fmt_time(s['last_time'])} UTC)\n")
    snap = s["snapshot"]
    if snap is None:
        w("snapshot        none\n")
    elif snap.get("error"):
        w(f"snapshot        {snap['file']}: UNUSABLE: {snap['error']}\n")
    else:
        w(f"snapshot        {snap['file']}: sequence {snap['sequence']}, taken {fmt_time(snap['timestamp'])} UTC"
          f" ({fmt_age(snap['age_s'])} ago), {fmt_bytes(snap['bytes'])}, {snap['tasks']} tasks, {snap['runs']} runs\n")
    if s["problem"]:
        w(f"PROBLEM         {s['problem']}\n")
    w("\nfiles\n")
    rows = [[f["file"], fmt_bytes(f["bytes"]), "sealed" if f["sealed"] else "active", f"{f['records']:,}",
             "-" if f["first_sequence"] is None else f"{f['first_sequence']}..{f['last_sequence']}"] for f in s["files"]]
    w(table(rows, ["file", "size", "state", "records", "sequences"], align="<>>>>") + "\n")
    w("\nevents per kind\n")
    total = s["events"] or 1
    rows = [[k, f"{v:,}", f"{100 * v / total:.1f}%"] for k, v in sorted(s["kinds"].items(), key=lambda kv: -kv[1])]
    w(table(rows, ["kind", "count", "share"], align="<>>") + "\n")
    proj = s["projection"]
    if proj is not None:
        w(f"\nprojection      {proj['tasks']:,} tasks, {proj['runs']:,} runs, engine "
          f"{'PAUSED' if proj['engine_paused'] else 'running'} (snapshot at {proj['from_snapshot_sequence']}"
          f" + {proj['events_replayed']:,} events replayed)\n")
        rows = [[state, f"{n:,}"] for state, n in proj["runs_by_state"].items()]
        w(table(rows, ["run state", "runs"], align="<>") + "\n")


def run(args: argparse.Namespace) -> int:
    """Print the stats; exit 1 when the log is damaged or the snapshot unusable."""
    directory = data_dir(args.dir)
    s = collect(directory, replay=not args.no_replay)
    if args.json:
        json.dump(s, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        render(s, sys.stdout)
    sys.stdout.flush()
    return 1 if s["problem"] or (s["snapshot"] or {}).get("error") else 0

