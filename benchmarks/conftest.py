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
