"""``actionqueue snapshot DIR``: recover a data dir and write a fresh snapshot of it."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ..recovery import open as recover
from ..snapshot import snapshot_path
from ._common import UNIX_TIME, data_dir, fmt_bytes, progress

NAME = "snapshot"
HELP = "recover the data dir and write a snapshot of its projection"
DESCRIPTION = """\
Recover a data dir (the current snapshot if valid, then the log after it; this opens the
writer, so no other writer may have the data dir open, and a torn tail is refused: run
'actionqueue repair' first), then atomically write snapshots/snapshot.bin (schema v8, the
Rust framing) and print what was written.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``snapshot``."""
    p.add_argument("dir", metavar="DIR", help="data dir")
    p.add_argument("--timestamp", type=UNIX_TIME, metavar="T",
                   help="the snapshot's timestamp (Unix seconds; default now)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    """Recover, build, write; print the snapshot's sequence, counts and size."""
    directory = data_dir(args.dir)
    ts = int(time.time()) if args.timestamp is None else args.timestamp
    bar = progress(None, "recovering", "step")
    try:
        with recover(directory) as store:
            report = store.report
            snap = store.snapshot(ts)  # the log synced first; validated once
            path = snapshot_path(directory)
    finally:
        bar.close()
    meta = snap["metadata"]
    info: dict[str, Any] = {
        "file": str(path),
        "bytes": path.stat().st_size,
        "sequence": int(meta["wal_sequence"]),
        "timestamp": ts,
        "tasks": int(meta["task_count"]),
        "runs": int(meta["run_count"]),
        "previous_snapshot_sequence": report.snapshot_sequence if report.snapshot_loaded else None,
        "previous_snapshot_error": report.snapshot_error,
        "events_replayed": report.wal_events_applied,
        "recovery_s": report.duration_s,
    }
    if args.json:
        json.dump(info, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    prev = (f"previous snapshot at {info['previous_snapshot_sequence']}" if info["previous_snapshot_sequence"] is not None
            else "no previous snapshot")
    if info["previous_snapshot_error"]:
        prev = f"previous snapshot unusable ({info['previous_snapshot_error']})"
    sys.stdout.write(
        f"wrote {path} ({fmt_bytes(int(info['bytes']))}): sequence {info['sequence']}, {info['tasks']:,} tasks, "
        f"{info['runs']:,} runs, timestamp {ts}\n"
        f"recovered in {report.duration_s:.2f} s: {prev}, {info['events_replayed']:,} log events replayed\n"
    )
    return 0
