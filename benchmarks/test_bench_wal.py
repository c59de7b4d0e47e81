"""pytest-benchmark benchmarks of the WAL: the scanner, reading back, and appends without fsync.

Run:  python -m pytest benchmarks/test_bench_wal.py --benchmark-only      (~15 s)

The data is the first ``BENCH_TASKS`` tasks of the reference workload (100,006 events,
5.4 MB framed; see ``test_bench_codec.py``), written once per module into a sealed
segment through ``WalWriter``. ``extra_info["events"]`` holds the event count, so
events/s = events / mean. Appends go into a fresh data dir per round (created and
opened in the round's setup, closed and removed afterwards; neither is timed). For the
one-process comparison with memory speed and the Rust figures, including fsync and
group commit, run ``benchmarks/wal_compare.py``.
"""

from __future__ import annotations

import itertools
import os
import shutil

import pytest

pytest.importorskip("pytest_benchmark")

from wal_compare import sealed_segment, write_sealed

import actionqueue as aq
from actionqueue.log import _walk as _wal
from actionqueue.scan import SegmentScanner
from actionqueue.wal import Durability, WalReader, WalWriter

from conftest import ROUNDS  # noqa: E402
#: events in the per-event append benchmark (each round opens a new writer)
APPEND_ONE_N = int(os.environ.get("AQ_BENCH_APPEND_N", "20000"))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, events):
    """The slice as a sealed segment, plus a one-record active segment."""
    d = tmp_path_factory.mktemp("walbench") / "data"
    last = events[-1]
    write_sealed(d, [events], aq.WalEvent(last.sequence + 1, last.event))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _run(benchmark, fn, n, group, **kw):
    benchmark.group = group
    benchmark.extra_info["events"] = n
    benchmark.extra_info["backend"] = aq.backend
    return benchmark.pedantic(fn, rounds=ROUNDS, iterations=1, warmup_rounds=1, **kw)


def test_scan_columns_in_memory(benchmark, wal, events):
    cols, end, reason, last = _run(benchmark, lambda: _wal.scan_columns(wal), len(events), "wal scan")
    assert (end, reason, last, len(cols[0])) == (len(wal), 0, events[-1].sequence, len(events))


def test_segment_scanner_sealed(benchmark, data_dir, events):
    path = sealed_segment(data_dir)

    def scan():
        with SegmentScanner(path) as scanner:
            return scanner.columns()

    cols = _run(benchmark, scan, len(events), "wal scan")
    assert len(cols) == len(events) and cols.sequence[-1] == events[-1].sequence


def test_scan_frames_crc_only(benchmark, wal, events):
    offsets, _, end = _run(benchmark, lambda: _wal.scan_frames(wal), len(events), "wal scan")
    assert end == len(wal) and len(offsets) == len(events)


def test_wal_reader(benchmark, data_dir, events):
    out = _run(benchmark, lambda: list(WalReader(data_dir)), len(events) + 1, "wal read")
    assert out[:len(events)] == events


def test_decode_batch_reference(benchmark, wal, events):
    out = _run(benchmark, lambda: aq.decode_batch(wal), len(events), "wal read")
    assert len(out) == len(events)


class _Fresh:
    """A new data dir and a Durability.NONE writer per round (the round's setup)."""

    def __init__(self, root):
        self.root = root
        self.writers = []
        self.count = itertools.count()

    def __call__(self):
        d = self.root / f"append-{next(self.count)}"
        d.mkdir()
        w = WalWriter(d, durability=Durability.NONE)
        self.writers.append(w)
        return (w,), {}

    def close(self):
        for w in self.writers:
            w.close()
            shutil.rmtree(w.data_dir, ignore_errors=True)


@pytest.fixture
def fresh(tmp_path):
    f = _Fresh(tmp_path)
    yield f
    f.close()


def test_append_none_per_event(benchmark, events, fresh):
    head = events[:APPEND_ONE_N]

    def append_each(w):
        app = w.append
        for e in head:
            app(e)

    _run(benchmark, append_each, len(head), "wal append (Durability.NONE)", setup=fresh)
    assert all(w.current_sequence == head[-1].sequence for w in fresh.writers)


def test_append_many_none(benchmark, events, fresh):
    _run(benchmark, lambda w: w.append_many(events), len(events), "wal append (Durability.NONE)", setup=fresh)
    assert all(w.current_sequence == events[-1].sequence for w in fresh.writers)
