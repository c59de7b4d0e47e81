"""Side-by-side codec benchmark on the Rust reference workload, in one process.

Run:  python benchmarks/compare.py [--tasks N] [--repeat R] [--subset N] [--json]
      (the same as ``actionqueue bench --section codec``)

The measurements live in :mod:`actionqueue.bench.codec` (see its docstring for what is
timed and how); this script parses the options and prints the table (and JSON).
"""

from __future__ import annotations

import argparse
import sys

from actionqueue.bench import BenchConfig
from actionqueue.bench.harness import run_script, script_arguments
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
    ap.add_argument("--subset", type=int, default=50_000, help="events for the slow codecs (pure-Python twin, pickle)")
    ap.add_argument("--kind-n", type=int, default=100_000, help="events per kind in the per-kind section")
    ap.add_argument("--no-kinds", action="store_true", help="skip the per-kind section")
    script_arguments(ap)
    args = ap.parse_args(argv)

    cfg = BenchConfig(tasks=args.tasks, seed=args.seed, repeat=args.repeat, subset=args.subset, kind_n=args.kind_n,
                      no_kinds=args.no_kinds, no_cache=args.no_cache)
    return run_script(_codec.run, args, cfg, json_extra={
        "msgspec": _codec.msgspec_version(), "subset": args.subset, "rust": RUST})


if __name__ == "__main__":
    sys.exit(main())
