"""WAL benchmark in one process: scanner, reading back, appends, against the Rust figures.

Run:  python benchmarks/wal_compare.py [--tasks N] [--repeat R] [--json] [--dir PATH]
      (the same as ``actionqueue bench --section wal``)

The measurements live in :mod:`actionqueue.bench.wal` (see its docstring for what is timed
and how); this script parses the options and prints the table (and JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # no idle BLAS threads beside the appenders

import actionqueue as aq
from actionqueue.bench import BenchConfig, Report, workload
from actionqueue.bench import wal as _wal_bench
from actionqueue.bench.wal import (  # noqa: F401 - re-exported for benchmarks/test_bench_wal.py
    RUST,
    build_reference_dir,
    group_commit,
    kib_dir,
    sealed_segment,
    summary,
    write_sealed,
)


def main(argv=None):
    ap = argparse.ArgumentParser(description=_wal_bench.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=workload.REFERENCE_TASKS, help="tasks (31 events each); default the full 32,258")
    ap.add_argument("--seed", type=int, default=workload.DEFAULT_SEED)
    ap.add_argument("--repeat", type=int, default=5, help="samples per measurement (median reported)")
    ap.add_argument("--fsync-events", type=int, default=2000, help="appends in the FSYNC measurement (Rust: 2,000)")
    ap.add_argument("--group-appends", type=int, default=8000, help="appends per GROUP sample, shared by the threads")
    ap.add_argument("--append-events", type=int, default=200_000, help="events in the NONE measurements (Rust: 200,000)")
    ap.add_argument("--dir", default=None, help="where the temp data dirs go (default: the system temp dir)")
    ap.add_argument("--no-cache", action="store_true", help="regenerate the reference workload instead of using the disk cache")
    ap.add_argument("--json", action="store_true", help="print JSON on stdout (the human table goes to stderr)")
    args = ap.parse_args(argv)

    cfg = BenchConfig(tasks=args.tasks, seed=args.seed, repeat=args.repeat, fsync_events=args.fsync_events,
                      group_appends=args.group_appends, append_events=args.append_events, dir=args.dir,
                      no_cache=args.no_cache)
    t_start = time.perf_counter()
    rep = Report(sys.stderr if args.json else sys.stdout, unit="GB", config=cfg)
    load = os.getloadavg()
    rep.say(f"timing: median of {args.repeat}, gc disabled inside samples; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if load[0] > 0.5:
        rep.say("WARNING: the machine is busy (load average > 0.5); other processes share the CPUs, expect noisy figures")
    rep.extra["loadavg_start"] = load
    try:
        _wal_bench.run(rep)
    finally:
        rep.close()
    total = time.perf_counter() - t_start
    rep.extra["loadavg_end"] = os.getloadavg()
    rep.say(f"\n# total {total:.0f} s; load average now {rep.extra['loadavg_end'][0]:.2f}")
    if args.json:
        out = {"python": platform.python_version(), "backend": aq.backend, "repeat": args.repeat, "rust": RUST,
               "total_s": total, **rep.to_json()}
        json.dump(out, sys.stdout, indent=1)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
