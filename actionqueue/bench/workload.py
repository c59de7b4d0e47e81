"""The reference workload of the Rust ActionQueue benchmark, generated deterministically.

``/work/shared/anchors/rust-reference-bench.md`` (kept in the project's shared anchors)
describes the event set the Rust original was measured on: 999,998 WAL events made of
32,258 tasks, 54,059,988 bytes of framed WAL. This module rebuilds that set:

* per task, one ``TaskCreated``: a 100-byte random payload, content type
  ``"application/json"``, ``RepeatPolicy(count=3, interval_secs=60)``,
  ``TaskConstraints(max_attempts=3, timeout_secs=300)`` (no concurrency key),
  ``TaskMetadata(tags=("bench",), priority=0..9)``, no description/parent/tenant;
* then 3 runs of 10 events each, in this order: ``RunCreated`` (Scheduled),
  ``RunStateChanged`` Scheduled->Ready, Ready->Leased, ``LeaseAcquired``,
  ``LeaseHeartbeat``, ``RunStateChanged`` Leased->Running, ``AttemptStarted``,
  ``AttemptFinished`` (Success, no error, no output), ``LeaseReleased``,
  ``RunStateChanged`` Running->Completed;
* sequences 1..N in that order.

Timestamps and owners (not stated in the Rust write-up; chosen so the framed size matches
the Rust figure byte for byte, see :func:`expected_framed_size`): timestamps are Unix
seconds (every one a 5-byte varint); task ``t`` is created at ``BASE_TS + 200 * t``, its
run ``k`` is scheduled ``60 * k`` seconds later (the repeat interval), is leased and
started within a second and finishes 1-5 s later; a lease lasts 30 s and the heartbeat
extends it. Run number ``r`` (counted over the whole workload) is owned by
``"worker-{r % 16}"``; workers 10..15 have one more digit, which accounts for the bytes
that remain once everything else is 5-byte timestamps. Timestamps never go backwards in
sequence order, and ids are random version-4 UUIDs drawn from the seeded RNG.

Generating a million events in Python takes a while, so the encoded buffer is cached on
disk (see :func:`cache_dir`) keyed by the parameters; :func:`reference_events` decodes
the cached buffer (so events from a cache hit and a cache miss are the same objects
graph-wise: nothing is shared between events).

Run ``python -m actionqueue.bench.workload [--tasks N] [--no-cache]`` (or
``python benchmarks/workload.py``) to build the workload and check its size.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import actionqueue as aq

#: Bump when the generator changes what it produces (invalidates the cache).
GENERATOR_VERSION = 1

REFERENCE_TASKS = 32_258
EVENTS_PER_TASK = 31  # 1 TaskCreated + 3 runs x 10 events
REFERENCE_EVENTS = REFERENCE_TASKS * EVENTS_PER_TASK  # 999,998
#: Framed size of the Rust reference workload (rust-reference-bench.md).
REFERENCE_FRAMED_BYTES = 54_059_988
DEFAULT_SEED = 20_240_601
BASE_TS = 1_700_000_000  # 2023-11-14, a 5-byte varint like every timestamp below
TASK_SPACING_S = 200  # 3 runs 60 s apart, each done within ~8 s: the next task starts after
N_WORKERS = 16
HEADER_LEN = 12

_S = aq.RunState


def _uuid4(rng: random.Random) -> bytes:
    raw = bytearray(rng.randbytes(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return bytes(raw)


def generate_events(n_tasks: int = REFERENCE_TASKS, seed: int = DEFAULT_SEED) -> list[aq.WalEvent]:
    """Build the workload from scratch (no cache). ``n_tasks * 31`` events."""
    rng = random.Random(seed)
    policy = aq.RepeatPolicy(count=3, interval_secs=60)
    constraints = aq.TaskConstraints(max_attempts=3, timeout_secs=300)
    metadata = [aq.TaskMetadata(tags=("bench",), priority=p) for p in range(10)]
    success = aq.AttemptResultKind.SUCCESS
    owners = [f"worker-{i}" for i in range(N_WORKERS)]
    WalEvent = aq.WalEvent
    out: list[aq.WalEvent] = []
    append = out.append
    seq = 1
    run_no = 0
    for t in range(n_tasks):
        created = BASE_TS + TASK_SPACING_S * t
        task_id = aq.TaskId(_uuid4(rng))
        priority = rng.randrange(10)
        spec = aq.TaskSpec(
            id=task_id,
            payload=aq.TaskPayload(rng.randbytes(100), "application/json"),
            run_policy=policy,
            constraints=constraints,
            metadata=metadata[priority],
        )
        evs: list[aq.Event] = [aq.TaskCreated(spec, created)]
        for k in range(3):
            run_id = aq.RunId(_uuid4(rng))
            attempt_id = aq.AttemptId(_uuid4(rng))
            owner = owners[run_no % N_WORKERS]
            run_no += 1
            sched = created + 60 * k
            start = sched + 1
            done = start + rng.randint(1, 5)
            expiry = sched + 30
            hb_expiry = start + 30
            evs += (
                aq.RunCreated(aq.RunInstance(run_id, task_id, _S.SCHEDULED, None, 0, sched, sched, priority, sched)),
                aq.RunStateChanged(run_id, _S.SCHEDULED, _S.READY, sched),
                aq.RunStateChanged(run_id, _S.READY, _S.LEASED, sched),
                aq.LeaseAcquired(run_id, owner, expiry, sched),
                aq.LeaseHeartbeat(run_id, owner, hb_expiry, start),
                aq.RunStateChanged(run_id, _S.LEASED, _S.RUNNING, start),
                aq.AttemptStarted(run_id, attempt_id, start),
                aq.AttemptFinished(run_id, attempt_id, success, None, None, done),
                aq.LeaseReleased(run_id, owner, hb_expiry, done),
                aq.RunStateChanged(run_id, _S.RUNNING, _S.COMPLETED, done),
            )
        for ev in evs:
            append(WalEvent(seq, ev))
            seq += 1
    return out


# --------------------------------------------------------------------------------------
# expected size (closed form, independent of the codec)
# --------------------------------------------------------------------------------------
def _varint_len(v: int) -> int:
    n = 1
    while v >= 0x80:
        v >>= 7
        n += 1
    return n


def _sum_varint_len(lo: int, hi: int) -> int:
    """Sum of varint lengths of lo..hi inclusive."""
    total, start, width = 0, lo, 1
    while start <= hi:
        limit = (1 << (7 * width)) - 1  # largest value of this width
        if start <= limit:
            end = min(hi, limit)
            total += (end - start + 1) * width
            start = end + 1
        width += 1
    return total


def expected_framed_size(n_tasks: int = REFERENCE_TASKS) -> int:
    """Framed size this generator must produce, computed from the wire layout.

    Per record: 12-byte header + sequence varint + kind byte + fields. With every
    timestamp/expiry a 5-byte varint (ts = 5), the payload bytes after the kind are:
    TaskCreated 17 id + 101 payload + 18 content type + 3 policy + 4 max_attempts/timeout
    + 4 concurrency/hold/safety/caps + 7 tags + 2 priority/description + 2 parent/tenant + ts;
    RunCreated 34 ids + 3 state/attempt/attempt_count + 1 priority + 3 ts;
    RunStateChanged 17 + 2 + ts; Lease* 17 + 1 + len(owner) + 2 ts;
    AttemptStarted 34 + ts; AttemptFinished 34 + 3 + ts.
    """
    ts = 5
    task_created = 1 + 17 + 101 + 18 + 3 + 4 + 4 + 7 + 2 + 2 + ts
    run_fixed = (
        (1 + 34 + 3 + 1 + 3 * ts)  # RunCreated
        + 4 * (1 + 17 + 2 + ts)  # RunStateChanged x4
        + 3 * (1 + 17 + 1 + 2 * ts)  # Lease* x3 without the owner string
        + (1 + 34 + ts)  # AttemptStarted
        + (1 + 34 + 3 + ts)  # AttemptFinished
    )
    n_runs = 3 * n_tasks
    owner_bytes = 3 * sum(len(f"worker-{r % N_WORKERS}") for r in range(n_runs))
    n_events = n_tasks * EVENTS_PER_TASK
    return (
        n_events * HEADER_LEN
        + _sum_varint_len(1, n_events)
        + n_tasks * task_created
        + n_runs * run_fixed
        + owner_bytes
    )


# --------------------------------------------------------------------------------------
# cache
# --------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """``$ACTIONQUEUE_BENCH_CACHE``, else ``$XDG_CACHE_HOME/actionqueue-bench``, else
    ``~/.cache/actionqueue-bench``, else ``$TMPDIR/actionqueue-bench``."""
    env = os.environ.get("ACTIONQUEUE_BENCH_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "actionqueue-bench"
    home = Path.home()
    if home.is_dir() and os.access(home, os.W_OK):
        return home / ".cache" / "actionqueue-bench"
    return Path(tempfile.gettempdir()) / "actionqueue-bench"


def cache_path(n_tasks: int, seed: int) -> Path:
    """The cache file of the workload of ``n_tasks`` tasks made with ``seed``."""
    return cache_dir() / f"workload-v{GENERATOR_VERSION}-tasks{n_tasks}-seed{seed}.wal"


def reference_buffer(n_tasks: int = REFERENCE_TASKS, seed: int = DEFAULT_SEED, *, cache: bool = True) -> bytes:
    """The workload as one buffer of framed WAL v5 records (cached on disk).

    A cache file whose length is not :func:`expected_framed_size` is ignored and rebuilt.
    Record CRCs are checked when the buffer is decoded.
    """
    expected = expected_framed_size(n_tasks)
    path = cache_path(n_tasks, seed)
    if cache and path.is_file():
        data = path.read_bytes()
        if len(data) == expected:
            return data
    buf = aq.encode_batch(generate_events(n_tasks, seed))
    if cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(buf)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except OSError as exc:  # a read-only cache must not break the benchmark
            print(f"workload: could not write cache {path}: {exc}", file=sys.stderr)
    return buf


def reference_events(n_tasks: int = REFERENCE_TASKS, seed: int = DEFAULT_SEED, *, cache: bool = True) -> list[aq.WalEvent]:
    """The reference workload: ``n_tasks * 31`` WalEvents (999,998 for the default).

    Always the decode of :func:`reference_buffer`, so a cache hit and a miss give equal
    events with the same (unshared) object layout.
    """
    return aq.decode_batch(reference_buffer(n_tasks, seed, cache=cache))


def check_size(buf: bytes, n_tasks: int = REFERENCE_TASKS) -> tuple[bool, str]:
    """Compare a workload buffer with the expected size (and, for the full workload, the
    Rust figure). Returns (ok, message)."""
    exp = expected_framed_size(n_tasks)
    n = n_tasks * EVENTS_PER_TASK
    msg = f"framed size {len(buf):,} bytes for {n:,} events ({len(buf) / n:.2f} B/record); expected {exp:,}"
    ok = len(buf) == exp
    if n_tasks == REFERENCE_TASKS:
        ok = ok and len(buf) == REFERENCE_FRAMED_BYTES
        msg += f"; Rust reference {REFERENCE_FRAMED_BYTES:,} -> {'MATCH' if len(buf) == REFERENCE_FRAMED_BYTES else 'MISMATCH'}"
    return ok, msg


def kind_counts(events) -> dict[str, int]:
    """Events per kind name, in first-seen order."""
    return dict(collections.Counter(type(e.event).__name__ for e in events))


def main(argv=None) -> int:
    """``python -m actionqueue.bench.workload``: build the workload, check its size, print its SHA-256."""
    ap = argparse.ArgumentParser(description="Build the reference workload and check its size.")
    ap.add_argument("--tasks", type=int, default=REFERENCE_TASKS)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--no-cache", action="store_true", help="regenerate, and do not write the cache")
    args = ap.parse_args(argv)
    assert expected_framed_size(REFERENCE_TASKS) == REFERENCE_FRAMED_BYTES
    t0 = time.perf_counter()
    buf = reference_buffer(args.tasks, args.seed, cache=not args.no_cache)
    t1 = time.perf_counter()
    events = aq.decode_batch(buf)
    t2 = time.perf_counter()
    ok, msg = check_size(buf, args.tasks)
    print(f"workload: {len(events):,} events from {args.tasks:,} tasks, seed {args.seed}")
    print(f"buffer {t1 - t0:.2f} s (cache {cache_path(args.tasks, args.seed)}), decode {t2 - t1:.2f} s")
    print(msg)
    print("sha256", hashlib.sha256(buf).hexdigest())
    for k, v in kind_counts(events).items():
        print(f"  {k:16} {v:>9,}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
