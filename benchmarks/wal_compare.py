"""WAL benchmark in one process: scanner, reading back, appends, against the Rust figures.

Run:  python benchmarks/wal_compare.py [--tasks N] [--repeat R] [--json] [--dir PATH]
      (the same as ``actionqueue bench --section wal``)

The measurements live in :mod:`actionqueue.bench.wal` (see its docstring for what is timed
and how); this script parses the options and prints the table (and JSON).
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # no idle BLAS threads beside the appenders

from actionqueue.bench import BenchConfig
from actionqueue.bench.harness import run_script, script_arguments
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
    ap.add_argument("--fsync-events", type=int, default=2000, help="appends in the FSYNC measurement (Rust: 2,000)")
    ap.add_argument("--group-appends", type=int, default=8000, help="appends per GROUP sample, shared by the threads")
    ap.add_argument("--append-events", type=int, default=200_000, help="events in the NONE measurements (Rust: 200,000)")
    ap.add_argument("--dir", default=None, help="where the temp data dirs go (default: the system temp dir)")
    script_arguments(ap)
    args = ap.parse_args(argv)

    cfg = BenchConfig(tasks=args.tasks, seed=args.seed, repeat=args.repeat, fsync_events=args.fsync_events,
                      group_appends=args.group_appends, append_events=args.append_events, dir=args.dir,
                      no_cache=args.no_cache)
    return run_script(_wal_bench.run, args, cfg, unit="GB", json_extra={"rust": RUST})


if __name__ == "__main__":
    sys.exit(main())
