"""Retention: segments a durable snapshot covers leave the log (or go to an archive), the
disk stays bounded, and recovery needs nothing that was removed."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

import actionqueue as aq
from actionqueue.log.archive import LocalArchive
from actionqueue.log.retention import compact, covered_segments


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _wal_bytes(data_dir) -> int:
    return sum(p.stat().st_size for p in (data_dir / "wal").iterdir())


def _commands(a: aq.MutationAuthority, n: int) -> None:
    for i in range(n):
        a.create_task(aq.TaskSpec(aq.TaskId.new()), timestamp=1_700_000_000 + i)


def test_compact_removes_only_what_the_snapshot_covers(tmp_path) -> None:
    with aq.open(tmp_path, segment_bytes=4096) as store:
        a = aq.MutationAuthority.from_store(store)
        _commands(a, 200)
        a.snapshot(timestamp=1)  # at 200
        _commands(a, 100)
        w = store.writer
        covered = covered_segments(w, 200)
        assert covered and all(s.seal.last_sequence <= 200 for s in covered)
        removed = compact(w, 200)
        assert removed == [s.path for s in covered]
        assert w.base_sequence == covered[-1].seal.last_sequence
        assert all(not p.exists() for p in removed)
        assert compact(w, 200) == []  # nothing more
    with aq.open(tmp_path) as store:  # snapshot + the tail: everything is there
        assert store.reducer.task_count == 300 and store.report.snapshot_sequence == 200
    assert aq.verify(tmp_path).clean


def test_without_the_snapshot_the_removed_range_is_named(tmp_path) -> None:
    with aq.open(tmp_path, segment_bytes=4096) as store:
        a = aq.MutationAuthority.from_store(store)
        _commands(a, 200)
        a.snapshot(timestamp=1)
        compact(store.writer, 200)
    (tmp_path / "snapshots" / "snapshot.bin").unlink()
    (tmp_path / "snapshots" / "snapshot.image").unlink()
    with pytest.raises(aq.RecoveryError, match="restore the snapshot or the removed segments"):
        aq.open(tmp_path)


def test_archived_segments_can_be_put_back(tmp_path) -> None:
    data, arch = tmp_path / "data", tmp_path / "archive"
    data.mkdir()
    with aq.open(data, segment_bytes=4096) as store:
        a = aq.MutationAuthority.from_store(store)
        _commands(a, 150)
        a.snapshot(timestamp=1)
        removed = compact(store.writer, 150, LocalArchive(arch))
    archive = LocalArchive(arch)
    assert [r.name for r in archive.ranges()] == [p.name for p in removed]
    events = []
    for r in archive.ranges():  # the archived segments still read as a log, in order
        out = tmp_path / "restore" / r.name
        out.parent.mkdir(exist_ok=True)
        seg, _seal = archive.get(r.name, out.parent)
        events += [e.sequence for e in aq.WalReader(seg)]
        assert events[-1] == r.last_sequence
    assert events == list(range(1, len(events) + 1))


def test_background_snapshots_keep_the_disk_bounded(tmp_path) -> None:
    n, every = 4_000, 1_000
    sizes = []
    with aq.open(tmp_path, segment_bytes=16 << 10, snapshot_every=every, retain="delete", durability="group") as store:
        a = aq.MutationAuthority.from_store(store)
        for k in range(n // every):
            _commands(a, every)
            _wait_for(lambda: store.snapshots.status.in_flight is None and not store.snapshots._wanted)
            sizes.append(_wal_bytes(tmp_path))
        status = store.snapshots.status
        assert status.failed == 0 and store.snapshots.retention_error is None
        assert store.snapshots.removed_segments > 0
    # after each snapshot the log holds the active segment and what came after the
    # snapshot, never the whole history (here ~100 bytes per event: ~600 KB written)
    written = n * 100
    assert max(sizes) <= 2 * (16 << 10) + 4096 < written // 8, sizes
    with aq.open(tmp_path) as store:
        assert store.reducer.task_count == n


def test_archive_takes_retain_archive(tmp_path) -> None:
    with pytest.raises(ValueError, match="retain"):
        aq.open(tmp_path, retain="sometimes")
    with pytest.raises(ValueError, match="archive"):
        aq.open(tmp_path, retain="archive")
    with aq.open(tmp_path, archive=tmp_path / "arch", snapshot_every=5) as store:
        assert store.snapshots.retain == "archive"


def test_compact_cli(tmp_path) -> None:
    with aq.open(tmp_path, segment_bytes=4096) as store:
        _commands(aq.MutationAuthority.from_store(store), 150)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "actionqueue", *args], capture_output=True, text=True, timeout=120)

    proc = cli("compact", str(tmp_path))
    # not a problem in the data but a step to take first: a usage error
    assert proc.returncode == 2 and "no snapshot" in proc.stderr and "Traceback" not in proc.stderr
    assert cli("snapshot", str(tmp_path)).returncode == 0
    proc = cli("compact", str(tmp_path), "--archive", str(tmp_path / "arch"))
    assert proc.returncode == 0 and "archived and removed" in proc.stdout, proc.stderr
    assert LocalArchive(tmp_path / "arch").ranges()
    assert aq.verify(tmp_path).clean
