"""Side-by-side codec benchmark on the Rust reference workload, in one process.

Run:  python benchmarks/compare.py [--tasks N] [--repeat R] [--subset N] [--json]
      (the same as ``actionqueue bench --section codec``)

The measurements live in :mod:`actionqueue.bench.codec` (see its docstring for what is
timed and how); this script parses the options and prints the table (and JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import actionqueue as aq
from actionqueue.bench import BenchConfig, Report, workload
from actionqueue.bench import codec as _codec
from actionqueue.bench.codec import (  # noqa: F401
    RUST,
    codec_sections,
    copy_crc_sections,
    split_records,
    summary,
)


def main(argv=None):
    ap = argparse.ArgumentParser(description=_codec.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=workload.REFERENCE_TASKS, help="tasks (31 events each); default the full 32,258")
    ap.add_argument("--seed", type=int, default=workload.DEFAULT_SEED)
    ap.add_argument("--repeat", type=int, default=5, help="samples per measurement (median reported)")
    ap.add_argument("--subset", type=int, default=50_000, help="events for the slow codecs (pure-Python twin, pickle)")
    ap.add_argument("--kind-n", type=int, default=100_000, help="events per kind in the per-kind section")
    ap.add_argument("--no-kinds", action="store_true", help="skip the per-kind section")
    ap.add_argument("--no-cache", action="store_true", help="regenerate the workload instead of using the disk cache")
    ap.add_argument("--json", action="store_true", help="print JSON on stdout (the human table goes to stderr)")
    args = ap.parse_args(argv)

    cfg = BenchConfig(tasks=args.tasks, seed=args.seed, repeat=args.repeat, subset=args.subset, kind_n=args.kind_n,
                      no_kinds=args.no_kinds, no_cache=args.no_cache)
    t_start = time.perf_counter()
    rep = Report(sys.stderr if args.json else sys.stdout, config=cfg)
    load = os.getloadavg()
    rep.say(f"timing: median of {args.repeat}, gc disabled inside samples; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if load[0] > 0.5:
        rep.say("WARNING: the machine is busy (load average > 0.5); other processes share the CPUs, expect noisy figures")
    rep.extra["loadavg_start"] = load
    try:
        _codec.run(rep)
    finally:
        rep.close()
    total = time.perf_counter() - t_start
    rep.extra["loadavg_end"] = os.getloadavg()
    rep.say(f"\n# total {total:.0f} s; load average now {rep.extra['loadavg_end'][0]:.2f}")
    if args.json:
        out = {
            "python": platform.python_version(), "backend": aq.backend, "msgspec": _codec.msgspec_version(),
            "repeat": args.repeat, "subset": args.subset, "rust": RUST, "total_s": total, **rep.to_json(),
        }
        json.dump(out, sys.stdout, indent=1)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
