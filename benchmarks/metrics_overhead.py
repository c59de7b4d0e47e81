"""What the metrics cost on the append path: append throughput of two copies of the
package (this checkout and another, e.g. one without metrics), measured in alternation.

    python benchmarks/metrics_overhead.py OTHER_PACKAGE_PARENT [--slices 200] [--events 5000]

One child process per copy stays alive for the whole run, each with a writer open on a
scratch data dir (durability NONE: no fsync, the path the metrics could slow most). The
parent asks them in turn (A B, B A, ...) for one slice: ``--events`` ``append_next`` calls
of a small event, or as many events through ``append_many`` in batches of 1,000. Slices
are short (milliseconds), so both copies meet the same load of a shared machine. A slice's
rate is per second of the child's CPU time (user + system: the writes' system calls
count), which leaves other processes' load out. Printed: the medians of the slice rates
and the median of the per-pair ratios (this / other; above 1 means this copy is faster).
The children write no bytecode (neither checkout is modified).
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
ev = aq.EnginePaused(1_700_000_000)
scratch = tempfile.TemporaryDirectory()
w = aq.WalWriter(scratch.name, durability="none")
clock = time.process_time
print(json.dumps({"file": aq.__file__}), flush=True)
for line in sys.stdin:
    kind, n = line.split()
    n = int(n)
    if kind == "append_next":
        started = clock()
        for _ in range(n):
            w.append_next(ev)
        spent = clock() - started
    else:
        first = w.current_sequence + 1
        batches = [[aq.WalEvent(s, ev) for s in range(b, b + 1000)] for b in range(first, first + n, 1000)]
        started = clock()
        for batch in batches:
            w.append_many(batch)
        spent = clock() - started
    print(json.dumps(n / spent if spent > 0 else 0.0), flush=True)
w.close()
scratch.cleanup()
"""

KINDS = ("append_next", "append_many")


class Child:
    def __init__(self, parent: Path) -> None:
        env = dict(os.environ, PYTHONPATH=str(parent), PYTHONDONTWRITEBYTECODE="1")
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD], env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd="/")  # fmt: skip
        self.file = json.loads(self.ask(None))["file"]

    def ask(self, command: str | None) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if command is not None:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        return self.proc.stdout.readline()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("other", type=Path, help="the directory holding the other copy's actionqueue package")
    parser.add_argument("--slices", type=int, default=200, help="slices per copy and kind")
    parser.add_argument("--events", type=int, default=5000, help="events per slice (a multiple of 1,000)")
    args = parser.parse_args()
    children = {"this": Child(HERE), "other": Child(args.other.resolve())}
    rates: dict[tuple[str, str], list[float]] = {(c, k): [] for c in children for k in KINDS}
    try:
        for kind in KINDS:
            for name in children:  # warm-up
                children[name].ask(f"{kind} {args.events}")
            for i in range(args.slices):
                for name in (("this", "other") if i % 2 == 0 else ("other", "this")):
                    rates[name, kind].append(float(children[name].ask(f"{kind} {args.events}")))
    finally:
        for child in children.values():
            child.close()
    for name, child in children.items():
        print(f"{name}: {child.file}")
    for kind in KINDS:
        this, other = rates["this", kind], rates["other", kind]
        paired = statistics.median(a / b for a, b in zip(this, other))
        print(f"{kind:12s} this {statistics.median(this) / 1e6:.3f} M ev/s, other {statistics.median(other) / 1e6:.3f} "
              f"M ev/s (medians of {len(this)} slices each); median ratio of pairs {paired:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
