"""Timing and reporting shared by the benchmark scripts: now :mod:`actionqueue.bench.harness`
(installed with the package); this module re-exports it for the scripts and old imports."""

from actionqueue.bench.harness import BenchConfig, Report, sample  # noqa: F401
