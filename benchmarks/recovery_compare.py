"""Replay and recovery side by side with the Rust figures: see :mod:`actionqueue.bench.recovery`.

Run:  python benchmarks/recovery_compare.py [--quick] [--json]   (same as
``actionqueue bench --section recovery``)
"""

import sys

from actionqueue.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--section", "recovery", *sys.argv[1:]]))
