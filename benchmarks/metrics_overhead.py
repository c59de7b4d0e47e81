"""What the metrics cost on the append path: append throughput of two copies of the
package (this checkout and another, e.g. one without metrics) measured alternately, in
child processes of one run, and the ratio of their medians.

    python benchmarks/metrics_overhead.py OTHER_PACKAGE_PARENT [--rounds 7] [--events 100000]

Each round runs one child per copy (the order alternates: A B, B A, ...); a child times
``append_next`` of small events and ``append_many`` in batches of 1,000, with durability
NONE (no fsync: the path the metrics could slow most), after a warm-up, and reports the
best of ``--reps`` repetitions. Rates are per second of the child's CPU time (user +
system: the writes' system calls count), not wall time: on a shared machine other
processes' load moves wall-time rates by tens of percent, CPU time by a few. The children write
no bytecode (neither checkout is modified). A ratio above 1 means this checkout is faster.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, tempfile, time
import actionqueue as aq
n, reps = int(sys.argv[1]), int(sys.argv[2])
ev = aq.EnginePaused(1_700_000_000)

def next_rate(d, count):
    with aq.WalWriter(d, durability="none") as w:
        started = time.process_time()
        for _ in range(count):
            w.append_next(ev)
        return count / (time.process_time() - started)

def many_rate(d, count):
    with aq.WalWriter(d, durability="none") as w:
        batches = [[aq.WalEvent(s, ev) for s in range(b, b + 1000)] for b in range(1, count + 1, 1000)]
        started = time.process_time()
        for batch in batches:
            w.append_many(batch)
        return count / (time.process_time() - started)

out = {"file": aq.__file__}
for name, fn in (("append_next", next_rate), ("append_many", many_rate)):
    with tempfile.TemporaryDirectory() as warm:
        fn(warm, n // 10)
    rates = []
    for _ in range(reps):
        with tempfile.TemporaryDirectory() as d:
            rates.append(fn(d, n))
    out[name] = max(rates)  # the best of the repetitions
print(json.dumps(out))
"""


def run(parent: Path, events: int, reps: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(parent), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([sys.executable, "-c", CHILD, str(events), str(reps)], env=env, capture_output=True, text=True,
                          check=True, cwd="/")  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("other", type=Path, help="the directory holding the other copy's actionqueue package")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--reps", type=int, default=3, help="repetitions per child (its best counts)")
    args = parser.parse_args()
    copies = {"this": HERE, "other": args.other.resolve()}
    results: dict[str, list[dict]] = {"this": [], "other": []}
    for i in range(args.rounds):
        order = ["this", "other"] if i % 2 == 0 else ["other", "this"]
        for name in order:
            results[name].append(run(copies[name], args.events, args.reps))
    for name in copies:
        print(f"{name}: {results[name][0]['file']}")
    for key in ("append_next", "append_many"):
        med = {name: statistics.median(r[key] for r in results[name]) for name in copies}
        runs = {name: " ".join(f"{r[key] / 1e6:.2f}" for r in results[name]) for name in copies}
        print(f"{key:12s} this {med['this'] / 1e6:.3f} M ev/s [{runs['this']}]  "
              f"other {med['other'] / 1e6:.3f} M ev/s [{runs['other']}]  ratio {med['this'] / med['other']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
