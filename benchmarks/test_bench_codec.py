"""pytest-benchmark benchmarks of the native codec on a slice of the reference workload.

Run:  python -m pytest benchmarks/ --benchmark-only            (well under a minute)
      python -m pytest benchmarks/ --benchmark-only --benchmark-group-by=group

The slice is the first ``BENCH_TASKS`` tasks of ``workload.reference_events`` (31 events
per task; 3,226 tasks = 100,006 events, 5.4 MB framed), cached on disk like the full
workload. ``extra_info["events"]`` holds the event count, so events/s = events / mean.
For the side-by-side comparison with msgspec, pickle, the pure-Python twin and the Rust
figures, run ``benchmarks/compare.py``.
"""

from __future__ import annotations

import os
import struct
import zlib

import pytest

pytest.importorskip("pytest_benchmark")

import actionqueue as aq  # noqa: E402

import workload  # noqa: E402

from conftest import BENCH_TASKS, ROUNDS  # noqa: E402


@pytest.fixture(scope="module")
def records(wal):
    out, off = [], 0
    unpack = struct.Struct("<III").unpack_from
    while off < len(wal):
        _, n, _ = unpack(wal, off)
        out.append(wal[off:off + 12 + n])
        off += 12 + n
    return out


def _run(benchmark, fn, n, group):
    benchmark.group = group
    benchmark.extra_info["events"] = n
    benchmark.extra_info["backend"] = aq.backend
    return benchmark.pedantic(fn, rounds=ROUNDS, iterations=1, warmup_rounds=1)


def test_workload_slice(wal, events):
    assert len(events) == BENCH_TASKS * workload.EVENTS_PER_TASK
    assert len(wal) == workload.expected_framed_size(BENCH_TASKS)


def test_encode_batch(benchmark, events, wal):
    out = _run(benchmark, lambda: aq.encode_batch(events), len(events), "encode")
    assert out == wal


def test_encode_per_event(benchmark, events, records):
    enc = aq.encode
    out = _run(benchmark, lambda: [enc(e) for e in events], len(events), "encode")
    assert out[:100] == records[:100] and out[-1] == records[-1]


def test_decode_batch(benchmark, events, wal):
    out = _run(benchmark, lambda: aq.decode_batch(wal), len(events), "decode")
    assert len(out) == len(events) and out[:100] == events[:100] and out[-1] == events[-1]


def test_decode_per_record(benchmark, events, records):
    dec = aq.decode
    out = _run(benchmark, lambda: [dec(r) for r in records], len(events), "decode")
    assert out[:100] == events[:100] and out[-1] == events[-1]


@pytest.fixture(scope="module")
def big_buffer() -> bytes:
    return os.urandom(64 * 2**20)


@pytest.mark.parametrize("impl", ["aq", "zlib"])
def test_crc32_64mib(benchmark, big_buffer, impl):
    fn = aq.crc32 if impl == "aq" else zlib.crc32
    benchmark.group = "crc32 64 MiB"
    benchmark.extra_info["bytes"] = len(big_buffer)
    got = benchmark.pedantic(fn, args=(big_buffer,), rounds=ROUNDS, iterations=1, warmup_rounds=1)
    assert got == zlib.crc32(big_buffer)


@pytest.mark.parametrize("impl", ["aq", "zlib"])
def test_crc32_per_record(benchmark, records, impl):
    fn = aq.crc32 if impl == "aq" else zlib.crc32
    payloads = [r[12:] for r in records]
    out = _run(benchmark, lambda: [fn(p) for p in payloads], len(payloads), "crc32 per record payload")
    assert out[:1000] == [zlib.crc32(p) for p in payloads[:1000]]
