"""Replay and recovery benchmark in one process, against the Rust figures.

Run:  actionqueue bench --section recovery   (or python benchmarks/recovery_compare.py)

What is timed (median of ``repeat`` samples, gc collected before and off inside each; the
objects a sample builds are freed after its clock stops), on the reference workload
(999,998 events; a data dir in Rust's layout, ``wal/actionqueue.wal``, page cache warm):

* ``ReplayReducer.apply`` over the decoded events (fresh reducer), against Rust's
  ``ReplayReducer::apply`` (measurement iv on this machine kind, 4.2 M events/s);
* end to end from disk, ``WalReader(dir).batches()`` into a fresh reducer (every record
  framed, CRC-checked and decoded), against Rust's ``ReplayDriver`` (iv-b, 1.02 M/s);
* recovery, ``actionqueue.open(dir)`` up to a writer ready to append, three ways: without a
  snapshot (the whole log replayed), with a recent snapshot read from its image (the
  default: a snapshot taken 1% of the events before the end, so the tail replays ~10k
  events), and with that snapshot read from ``snapshot.bin``'s JSON alone (as for a
  snapshot Rust wrote; the image is deleted before each sample, and that open writes it
  for the next one, which is timed too); closing the store is not timed;
* building and writing that snapshot, once.

Beside them, a numpy copy of the WAL bytes: the machine's memory speed in this run.
"""

from __future__ import annotations

import gc
import os
import time
from pathlib import Path

import numpy as np

import actionqueue as aq
from actionqueue import snapshot as snap
from actionqueue.wal import WalReader

from .harness import Report, sample

#: Rust's recorded rates (shared/anchors/rust-reference-bench.md, iv and iv-b).
RUST = {"apply_eps": 4.2e6, "replay_eps": 1.02e6, "replay_s": 0.98}
#: Goals of issue 4.
REPLAY_GOAL = 1.5  # x Rust's ReplayDriver
SNAPSHOT_GOAL = 10.0  # recovery without a snapshot / with a recent one
#: Share of the log after the "recent" snapshot.
TAIL_SHARE = 0.01


def _data_dir(root: Path, name: str, wal: bytes) -> Path:
    d = root / name
    (d / "wal").mkdir(parents=True, exist_ok=True)
    (d / "wal" / "actionqueue.wal").write_bytes(wal)
    return d


def _replay(data_dir: Path) -> aq.ReplayReducer:
    r = aq.ReplayReducer()
    for batch in WalReader(data_dir).batches():
        r.apply_all(batch)
    return r


def _open(data_dir: Path, use_snapshot: bool) -> aq.Store:
    return aq.open(data_dir, use_snapshot=use_snapshot)


def _close(_state, store) -> None:
    store.close()


def run(rep: Report) -> None:
    """The replay and recovery section."""
    cfg = rep.config
    R = cfg.repeat
    wal = rep.workload()
    events = aq.decode_batch(wal)
    n = len(events)
    root = rep.scratch()

    rep.header("replay: reducer and end to end")
    src = np.frombuffer(wal, dtype=np.uint8)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    rep.row("recovery", "numpy copy of the WAL bytes (memory speed)", 0, *sample(lambda: np.copyto(dst, src), R),
            len(wal), key="recovery.copy")
    del dst
    rep.row("recovery", "ReplayReducer.apply, decoded events", n,
            *sample(lambda: aq.ReplayReducer().apply_all(events), R), key="recovery.apply")
    plain = _data_dir(root, "replay", wal)
    rep.row("recovery", "end to end: WalReader + ReplayReducer", n, *sample(lambda: _replay(plain), R),
            len(wal), key="recovery.replay")

    rep.header(f"recovery: actionqueue.open of the {n:,}-event data dir")
    none_row = rep.row("recovery", "open, no snapshot (replay everything)", n,
                       *sample(lambda: _open(plain, False), R, teardown=_close), key="recovery.none")

    cut = n - max(1, int(n * TAIL_SHARE))
    reducer = aq.ReplayReducer()
    gc.disable()
    try:
        reducer.apply_all(events[:cut])
    finally:
        gc.enable()
    t0 = time.perf_counter()
    snapshot = aq.build_snapshot(reducer, int(time.time()))
    t1 = time.perf_counter()
    with_image = _data_dir(root, "with-image", wal)
    aq.write_snapshot(with_image, snapshot)
    t2 = time.perf_counter()
    json_only = _data_dir(root, "json-only", wal)
    aq.write_snapshot(json_only, snapshot, image=False)
    del reducer, snapshot
    size = os.path.getsize(snap.snapshot_path(with_image))
    rep.row("recovery", f"build_snapshot at sequence {cut:,}", cut, t1 - t0, [t1 - t0], key="recovery.build")
    rep.row("recovery", "write_snapshot (JSON + image, fsynced)", cut, t2 - t1, [t2 - t1], size,
            key="recovery.write")
    tail = n - cut
    image_row = rep.row("recovery", f"open, recent snapshot via its image (+{tail:,} events)", n,
                        *sample(lambda: _open(with_image, True), R, teardown=_close), key="recovery.image",
                        note="n = events covered")
    def no_image():
        snap.image_path(json_only).unlink(missing_ok=True)
        return ()

    json_row = rep.row("recovery", "open, snapshot.bin only (JSON; then writes the image)", n,
                       *sample(lambda: _open(json_only, True), max(1, R // 3), setup=no_image, teardown=_close),
                       key="recovery.json")

    rep.say("")
    apply_eps, replay_eps = rep.eps("recovery.apply"), rep.eps("recovery.replay")
    rep.ratio("apply / Rust ReplayReducer::apply (4.2 M/s)", apply_eps / RUST["apply_eps"])
    replay_x = rep.ratio("end-to-end replay / Rust ReplayDriver (1.02 M/s)", replay_eps / RUST["replay_eps"])
    none_s = none_row["median_s"]
    image_s = image_row["median_s"]
    json_s = json_row["median_s"]
    snap_x = rep.ratio("recovery without snapshot / with recent snapshot (image)", none_s / image_s)
    rep.ratio("recovery without snapshot / with recent snapshot (JSON only)", none_s / json_s)
    rep.goal("end-to-end replay >= 1.5x Rust ReplayDriver", replay_x >= REPLAY_GOAL,
             f"{replay_eps / 1e6:.2f} M ev/s = {replay_x:.2f}x")
    rep.goal("recovery with a recent snapshot >= 10x faster", snap_x >= SNAPSHOT_GOAL,
             f"{none_s:.2f} s -> {image_s * 1e3:.0f} ms = {snap_x:.1f}x")
