"""pytest configuration for the benchmarks (only loaded when benchmarks/ is collected;
``python -m pytest tests`` never sees this directory)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def pytest_configure(config):
    # Time with the cyclic GC off, as compare.py does (1 M short-lived objects per round
    # would otherwise trigger collections in the middle of a timed call).
    if hasattr(config.option, "benchmark_disable_gc"):
        config.option.benchmark_disable_gc = True


import pytest  # noqa: E402

#: Tasks of the reference workload the pytest-benchmark files use (31 events each).
BENCH_TASKS = int(os.environ.get("AQ_BENCH_TASKS", "3226"))
#: Rounds per pytest-benchmark measurement.
ROUNDS = int(os.environ.get("AQ_BENCH_ROUNDS", "7"))


@pytest.fixture(scope="session")
def wal() -> bytes:
    """The first ``BENCH_TASKS`` tasks of the reference workload, framed."""
    import workload

    return workload.reference_buffer(BENCH_TASKS)


@pytest.fixture(scope="session")
def events(wal):
    """Those events, decoded."""
    import actionqueue as aq

    return aq.decode_batch(wal)
