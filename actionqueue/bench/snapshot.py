"""The snapshot section: build, write and load of the 1M-event reference projection beside
Rust's figures, an incremental snapshot, and command latency while a snapshot is taken.

* build: :func:`actionqueue.build_snapshot` of a fully replayed reducer (native: the JSON
  written straight from the records, validated on them);
* write: :func:`actionqueue.write_snapshot` of it (``snapshot.bin`` + index image, each
  fsynced and renamed, directory fsynced);
* load: ``snapshot.bin`` (byte-identical to the file Rust writes for this projection) into
  a usable reducer: read, CRC-32, one validating pass, tasks decoded, runs left in the
  bytes until used (:func:`actionqueue.load_snapshot` + :func:`actionqueue.reducer_from_snapshot`);
* again: build + write from a reducer recovered through the image plus 10,000 events (what
  a periodic snapshot costs: unchanged records are copied);
* commands: GROUP-durability commands one at a time, p50/p99 latency, alone and while a
  background snapshot of the whole projection is built and written by the child process.
"""

from __future__ import annotations

import gc
import os
import shutil
import statistics
import threading
import time
from pathlib import Path

import numpy as np

import actionqueue as aq

from .harness import Report, sample

#: Rust rebuilt and run beside ours on this machine kind (shared/anchors/rust-reference-bench.md,
#: last section): seconds, and the memcpy of that sitting (GB/s).
RUST = {"build": 0.09, "write": 0.24, "load": 0.31, "rec_snap_nowal": 0.46, "memcpy_gbs": 10.6}
#: Goals of issue 10.
BUILD_WRITE_GOAL_S = RUST["build"] + RUST["write"]
LOAD_GOAL_S = RUST["rec_snap_nowal"]
LATENCY_GOAL = 2.0  # p99 during a snapshot / p99 without
TAIL = 10_000


def _replayed(events: list) -> aq.ReplayReducer:
    r = aq.ReplayReducer()
    gc.disable()
    try:
        r.apply_all(events)
    finally:
        gc.enable()
    return r


def _data_dir(root: Path, name: str, wal: bytes) -> Path:
    d = root / name
    (d / "wal").mkdir(parents=True, exist_ok=True)
    (d / "wal" / "actionqueue.wal").write_bytes(wal)
    return d


def _latencies(authority: aq.MutationAuthority, seconds: float, stop: threading.Event | None = None) -> list[float]:
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (stop is not None and stop.is_set()):
        t0 = time.perf_counter()
        authority.create_task(aq.TaskSpec(aq.TaskId.new()))
        out.append(time.perf_counter() - t0)
    return out


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def run(rep: Report) -> None:
    """The snapshot section."""
    R = rep.config.repeat
    wal = rep.workload()
    events = aq.decode_batch(wal)
    n = len(events)
    root = rep.scratch()

    rep.header(f"snapshot of the {n:,}-event projection")
    src = np.frombuffer(wal, dtype=np.uint8)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    copy_s, copy_t = sample(lambda: np.copyto(dst, src), R)
    rep.row("snapshot", "numpy copy of the WAL bytes (memory speed)", 0, copy_s, copy_t, len(wal), key="snapshot.copy")
    del dst
    memcpy_gbs = len(wal) / copy_s / 1e9
    full = _replayed(events)
    build_s, build_t = sample(lambda: aq.build_snapshot(full, 1_700_000_000), R)
    rep.row("snapshot", "build_snapshot (validated, JSON + index)", n, build_s, build_t, key="snapshot.build")
    snap = aq.build_snapshot(full, 1_700_000_000)
    size = len(snap.data) if hasattr(snap, "data") else len(aq.snapshot.encode_snapshot(snap))
    target = root / "snap"
    target.mkdir()
    write_s, write_t = sample(lambda: aq.write_snapshot(target, snap), R)
    rep.row("snapshot", "write_snapshot (snapshot.bin + image, fsynced)", n, write_s, write_t, size,
            key="snapshot.write")
    load_s, load_t = sample(lambda: aq.reducer_from_snapshot(aq.load_snapshot(target)), R)
    rep.row("snapshot", "load snapshot.bin into a usable reducer", n, load_s, load_t, size, key="snapshot.load")
    del snap

    # a periodic snapshot: recovered through the image, TAIL more events (half of a workload
    # that is not larger), again
    tail = TAIL if n > TAIL else n // 2
    head = _replayed(events[: n - tail])
    head_snap = aq.build_snapshot(head, 1_700_000_000)
    del head

    def recovered() -> tuple:
        aq.write_snapshot(target, head_snap)  # each sample starts from the older snapshot
        r = aq.snapshot.reducer_from_image(target)
        assert r is not None, "no usable image in the snapshot just written"
        r.apply_all(events[n - tail :])
        return (r,)

    again_s, again_t = sample(lambda r: aq.write_snapshot(target, aq.build_snapshot(r, 1_700_000_001)), R,
                              setup=recovered)  # fmt: skip
    rep.row("snapshot", f"again after {tail:,} events (build + write, from the image)", n, again_s, again_t, size,
            key="snapshot.again")

    _commands(rep, root, wal, events)
    shutil.rmtree(target, ignore_errors=True)
    if n >= 900_000:
        retention(rep, events)
    else:
        # a small workload: the same shape in miniature (5 snapshots, each a child process)
        retention(rep, events, total=5 * SMALL_EVERY, every=SMALL_EVERY, segment_bytes=64 << 10)

    if n < 900_000:
        rep.skip(f"the comparison with Rust's 1M-event figures (this workload has {n:,} events)")
        return
    scale = RUST["memcpy_gbs"] / memcpy_gbs  # how much slower this machine's memory is than Rust's sitting
    rep.say(f"\n  memcpy this run {memcpy_gbs:.1f} GB/s; Rust's sitting {RUST['memcpy_gbs']} GB/s")
    bw = build_s + write_s
    rep.ratio("build + write: Rust / ours (same machine kind)", (RUST["build"] + RUST["write"]) / bw)
    rep.ratio("load of snapshot.bin: Rust / ours", RUST["rec_snap_nowal"] / load_s)
    rep.goal("build + write <= Rust's 0.33 s", bw <= BUILD_WRITE_GOAL_S,
             f"{bw:.3f} s ({bw / scale:.3f} s at Rust's memcpy)")
    rep.goal("load of snapshot.bin <= Rust's 0.46 s", load_s <= LOAD_GOAL_S,
             f"{load_s:.3f} s ({load_s / scale:.3f} s at Rust's memcpy)")
    rep.goal("a periodic snapshot (10k events later) <= 0.33 s", again_s <= BUILD_WRITE_GOAL_S, f"{again_s:.3f} s")


def _commands(rep: Report, root: Path, wal: bytes, events: list) -> None:
    """Command latency alone and during a background snapshot of the whole projection."""
    d = _data_dir(root, "commands", wal)
    head = _replayed(events[: len(events) - TAIL])
    aq.write_snapshot(d, aq.build_snapshot(head, 1_700_000_000))
    del head
    seconds = max(1.0, rep.config.repeat * 0.6)
    with aq.open(d, durability="group") as store:
        a = aq.MutationAuthority.from_store(store)
        _latencies(a, 0.3)  # warm up
        alone = _latencies(a, seconds)
        done = threading.Event()
        info: list = []

        def background() -> None:
            try:
                info.append(store.snapshots.take())
            finally:
                done.set()

        t = threading.Thread(target=background)
        t.start()
        during = _latencies(a, 3600, done)
        t.join()
    took = info[0].seconds if info else float("nan")
    rep.say(f"  commands alone:  {len(alone):6} p50 {_p(alone, 50) * 1e3:7.3f} ms  p99 {_p(alone, 99) * 1e3:7.3f} ms")
    rep.say(f"  during snapshot: {len(during):6} p50 {_p(during, 50) * 1e3:7.3f} ms  p99 {_p(during, 99) * 1e3:7.3f} ms"
            f"  (snapshot took {took:.2f} s in the child)")
    rep.row("snapshot", "command p99, GROUP, alone", 0, _p(alone, 99), alone[:1], key="snapshot.cmd_alone")
    rep.row("snapshot", "command p99, GROUP, during a snapshot", 0, _p(during, 99), during[:1], key="snapshot.cmd_during")
    ratio = _p(during, 99) / _p(alone, 99)
    rep.ratio("command p99 during a snapshot / alone", ratio)
    rep.row("snapshot", "background snapshot in the child (load, fold, build, write)", 0, took, [took],
            key="snapshot.child")
    rep.goal("command p99 during a snapshot <= 2x alone", ratio <= LATENCY_GOAL, f"{ratio:.2f}x")
    os.sync()


#: The retention run: events in all, and a snapshot every this many.
RETENTION_EVENTS = 5_000_000
RETENTION_EVERY = 100_000
#: ... and on a small (``--quick``) workload.
SMALL_EVERY = 2_000


def _dir_bytes(d: Path) -> int:
    return sum(p.stat().st_size for p in d.rglob("*") if p.is_file())


def retention(rep: Report, events: list, total: int = RETENTION_EVENTS, every: int = RETENTION_EVERY,
              segment_bytes: int = 8 << 20) -> None:
    """A long-running log: the reference history, then engine pause/resume events up to
    ``total``, with a background snapshot every ``every`` events and ``retain="delete"``.
    The data dir's size is sampled after each snapshot: it stays bounded by the snapshot,
    one interval of log and a segment, while the log written grows without bound."""
    d = rep.scratch() / "retention"
    d.mkdir()
    sizes = []
    started = time.perf_counter()
    with aq.open(d, durability="none", snapshot_every=every, retain="delete", segment_bytes=segment_bytes) as store:
        w, snaps = store.writer, store.snapshots
        seq = 0
        source = iter(events)
        while seq < total:
            batch = []
            for _ in range(min(10_000, every, total - seq)):
                seq += 1
                e = next(source, None)
                batch.append(aq.WalEvent(seq, e.event) if e is not None else
                             aq.WalEvent(seq, aq.EnginePaused(seq) if seq % 2 else aq.EngineResumed(seq)))
            w.append_many(batch)
            snaps.note(seq)
            if seq % every == 0:
                _wait_idle(snaps)
                sizes.append(_dir_bytes(d))
        _wait_idle(snaps)
        status = snaps.status
    elapsed = time.perf_counter() - started
    log_bytes = total * (len(rep.workload()) / max(1, len(events)))
    rep.say(f"\n  retention: {total:,} events, a snapshot every {every:,}: {status.taken} snapshots, "
            f"{status.failed} failed, {snaps.removed_segments} segments removed, {elapsed:.0f} s")
    rep.say(f"  data dir: max {max(sizes) / 1e6:.1f} MB, last {sizes[-1] / 1e6:.1f} MB "
            f"(the log written: ~{log_bytes / 1e6:.0f} MB)")
    rep.row("snapshot", f"retention: data dir max over {total:,} events", 0, elapsed, [elapsed], max(sizes),
            key="snapshot.retention")
    # the fixed bound: the snapshot and its image, two segments, two intervals of log
    snap_bytes = _dir_bytes(d / "snapshots")
    bound = snap_bytes + 2 * segment_bytes + 2 * every * log_bytes / total
    rep.goal("the data dir stays under snapshot + 2 segments + 2 intervals", max(sizes) <= bound and status.failed == 0,
             f"max {max(sizes) / 1e6:.1f} MB <= {bound / 1e6:.1f} MB; the log written ~{log_bytes / 1e6:.0f} MB")


def _wait_idle(snaps) -> None:
    while snaps.status.in_flight is not None or snaps._wanted:
        time.sleep(0.02)
