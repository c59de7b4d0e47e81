"""Scan a log into numpy columns and answer questions without building event objects.

Run: python examples/scan_to_numpy.py [DATA_DIR]

Writes a log of task lifecycles (or scans DATA_DIR if given), then uses
``actionqueue.scan.scan`` to get one row per record (``sequence``, ``kind``, ``time``,
``offset``, ``length``, ``file``), every record CRC-checked on the way, and answers:
events per kind, state changes per minute, and the records of one kind in a time
window, decoding only those.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

import actionqueue as aq
from actionqueue.scan import SegmentScanner, scan

S = aq.RunState
NOW = 1_700_000_000


def write_log(data_dir: Path, tasks: int = 2_000) -> None:
    events: list[aq.WalEvent] = []
    for n in range(tasks):
        task, run, attempt = aq.TaskId.new(), aq.RunId.new(), aq.AttemptId.new()
        t = NOW + n // 2  # two tasks a second
        ok = n % 10 != 0
        body = [
            aq.TaskCreated(aq.TaskSpec(task), t),
            aq.RunCreated(aq.RunInstance(run, task, S.SCHEDULED, None, 0, t, t, 0, t)),
            aq.RunStateChanged(run, S.SCHEDULED, S.READY, t),
            aq.RunStateChanged(run, S.READY, S.LEASED, t),
            aq.RunStateChanged(run, S.LEASED, S.RUNNING, t),
            aq.AttemptStarted(run, attempt, t),
            aq.AttemptFinished(run, attempt, aq.AttemptResultKind.SUCCESS if ok else aq.AttemptResultKind.FAILURE,
                               None if ok else "boom", None, t + 1),
            aq.RunStateChanged(run, S.RUNNING, S.COMPLETED if ok else S.FAILED, t + 1),
        ]
        base = len(events) + 1
        events.extend(aq.WalEvent(base + i, e) for i, e in enumerate(body))
    with aq.WalWriter(data_dir, durability=aq.Durability.NONE) as wal:
        wal.append_many(events)
        wal.sync()


def main(data_dir: Path) -> None:
    cols = scan(data_dir)  # every record, as columns
    print(f"records        {len(cols):,} in {len(cols.files)} file(s), sequences {cols.sequence.min()}..{cols.sequence.max()}")

    names, counts = np.unique(cols.kind_names(), return_counts=True)
    for name, n in sorted(zip(names, counts), key=lambda x: -x[1])[:5]:
        print(f"  {name:<16} {n:,}")

    # state changes per minute: one kind selected while scanning, then plain numpy
    changes = scan(data_dir, kinds=[aq.RunStateChanged])
    per_minute = np.bincount((changes.time - changes.time.min()) // 60)
    print(f"state changes  {len(changes):,} over {len(per_minute)} minute(s), busiest minute {per_minute.max():,}")

    # a time window of one kind, then decode just those records
    window = scan(data_dir, kinds=["AttemptFinished"])
    sel = window.time < window.time.min() + 60
    failed = 0
    for path_index in np.unique(window.file[sel]):
        with SegmentScanner(window.files[path_index]) as scanner:
            rows = sel & (window.file == path_index)
            for e in scanner.events(window.offset[rows]):
                failed += e.event.result is aq.AttemptResultKind.FAILURE
    print(f"first minute   {int(sel.sum())} attempts finished, {failed} failed (decoded {int(sel.sum())} records)")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            write_log(Path(tmp))
            main(Path(tmp))
