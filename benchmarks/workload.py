"""The reference workload of the Rust ActionQueue benchmark: now
:mod:`actionqueue.bench.workload` (installed with the package); this script re-exports it.

Run ``python benchmarks/workload.py [--tasks N] [--no-cache]`` to build the workload and
check its size.
"""

import sys

from actionqueue.bench.workload import *
from actionqueue.bench.workload import _uuid4, main  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
