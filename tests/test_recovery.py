"""Recovery: snapshot + WAL tail gives the projection a full replay gives."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import actionqueue as aq
from actionqueue import recovery
from actionqueue._backend import NATIVE
from actionqueue.snapshot.shape import projection_to_snapshot_builtins

from test_reducer_properties import simulations


def state(reducer) -> dict:
    return projection_to_snapshot_builtins(reducer, 0)


def assert_same_reads(r, full) -> None:
    """Per-id reads of ``r`` equal ``full``'s, asked in an order that takes records out of a
    snapshot image one at a time (counts first, scans last)."""
    assert (r.task_count, r.run_count, r.latest_sequence) == (full.task_count, full.run_count, full.latest_sequence)
    for tid in full.task_ids():
        assert r.task_exists(tid)
        assert r.run_ids_for_task(tid) == full.run_ids_for_task(tid)
        assert r.get_task_record(tid) == full.get_task_record(tid)
    for rid in full.run_ids():
        assert r.run_exists(rid)
        assert r.get_run_instance(rid) == full.get_run_instance(rid)
        assert r.get_run_history(rid) == full.get_run_history(rid)
        assert r.get_attempt_history(rid) == full.get_attempt_history(rid)
        assert r.get_lease_metadata(rid) == full.get_lease_metadata(rid)
    assert (r.task_count, r.run_count) == (full.task_count, full.run_count)
    assert sorted(r.run_ids()) == sorted(full.run_ids())
    assert sorted(r.task_ids()) == sorted(full.task_ids())


def write_log(data_dir, events, **kw) -> None:
    with aq.WalWriter(data_dir, durability="none", **kw) as writer:
        writer.append_many(events)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sim=simulations(max_steps=60), data=st.data())
def test_snapshot_plus_tail_equals_full_replay(tmp_path_factory, sim, data) -> None:
    events = sim.events
    data_dir = tmp_path_factory.mktemp("dir")
    write_log(data_dir, events, segment_bytes=data.draw(st.sampled_from([512, 1 << 20])))
    full = aq.ReplayReducer()
    full.apply_all(events)
    cut = data.draw(st.integers(0, len(events)))
    prefix = aq.ReplayReducer()
    prefix.apply_all(events[:cut])
    image = data.draw(st.booleans(), label="image")
    aq.write_snapshot(data_dir, aq.build_snapshot(prefix, 1_800_000_000), image=image)
    with recovery.open(data_dir) as store:
        assert store.report.snapshot_source == ("image" if image else "json")
        assert_same_reads(store.reducer, full)  # before anything forces the image to be read whole
        assert state(store.reducer) == state(full)
        assert store.report.snapshot_loaded
        assert store.report.snapshot_sequence == prefix.latest_sequence
        assert store.report.wal_events_applied == len(events) - cut
        assert store.writer.current_sequence == (events[-1].sequence if events else 0)
    # time travel to the snapshot point, with and without the snapshot
    if cut:
        at = events[cut - 1].sequence
        assert state(recovery.replay_to(data_dir, at)) == state(prefix)
        assert state(recovery.replay_to(data_dir, at, use_snapshot=False)) == state(prefix)


def test_a_damaged_snapshot_is_reported_and_ignored(tmp_path) -> None:
    events = [aq.WalEvent(i, aq.EnginePaused(i) if i % 2 else aq.EngineResumed(i)) for i in range(1, 11)]
    write_log(tmp_path, events)
    r = aq.ReplayReducer()
    r.apply_all(events[:5])
    path = aq.write_snapshot(tmp_path, aq.build_snapshot(r, 100), image=False)
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0x20
    path.write_bytes(bytes(raw))
    with recovery.open(tmp_path) as store:
        assert not store.report.snapshot_loaded and "Crc" in store.report.snapshot_error
        assert store.report.snapshot_source is None
        assert store.report.wal_events_applied == 10 and store.reducer.latest_sequence == 10


@pytest.mark.parametrize("damage", ["flip", "truncate", "other_snapshot", "garbage", "empty"])
def test_a_damaged_or_foreign_image_falls_back_to_the_json(tmp_path, damage) -> None:
    from actionqueue.snapshot import image_path

    events = [aq.WalEvent(i, aq.EnginePaused(i) if i % 2 else aq.EngineResumed(i)) for i in range(1, 11)]
    write_log(tmp_path, events)
    r = aq.ReplayReducer()
    r.apply_all(events[:5])
    aq.write_snapshot(tmp_path, aq.build_snapshot(r, 100))
    img = image_path(tmp_path)
    raw = bytearray(img.read_bytes())
    if damage == "flip":
        raw[len(raw) // 2] ^= 0x01
    elif damage == "truncate":
        del raw[-7:]
    elif damage == "other_snapshot":  # a snapshot.bin written later, without an image
        r.apply_all(events[5:7])
        aq.write_snapshot(tmp_path, aq.build_snapshot(r, 200), image=False)
    elif damage == "garbage":
        raw = bytearray(b"AQSIMAGE" + bytes(100))
    else:
        raw = bytearray()
    if damage != "other_snapshot":
        img.write_bytes(bytes(raw))
    with recovery.open(tmp_path) as store:
        assert store.report.snapshot_loaded and store.report.snapshot_source == "json"
        assert store.reducer.latest_sequence == 10
        full = aq.ReplayReducer()
        full.apply_all(events)
        assert state(store.reducer) == state(full)


@pytest.mark.skipif(NATIVE, reason="format-1 images (pure backend) hold a copy of every record")
def test_the_image_serves_a_snapshot_whose_json_is_damaged(tmp_path) -> None:
    """The image holds the same content as the snapshot it was made from: a damaged
    snapshot.bin body (header intact) does not cost the snapshot; ``verify`` reports it."""
    events = [aq.WalEvent(i, aq.EnginePaused(i) if i % 2 else aq.EngineResumed(i)) for i in range(1, 11)]
    write_log(tmp_path, events)
    r = aq.ReplayReducer()
    r.apply_all(events[:5])
    path = aq.write_snapshot(tmp_path, aq.build_snapshot(r, 100))
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0x20
    path.write_bytes(bytes(raw))
    with recovery.open(tmp_path) as store:
        assert store.report.snapshot_source == "image" and store.report.snapshot_sequence == 5
        assert store.reducer.latest_sequence == 10
    with pytest.raises(aq.snapshot.SnapshotCrcMismatch):
        aq.load_snapshot(tmp_path)


@pytest.mark.skipif(not NATIVE, reason="format-2 images (native backend) index snapshot.bin")
def test_an_image_never_serves_a_damaged_snapshot_bin(tmp_path) -> None:
    """A format-2 image is only an index into snapshot.bin: a damaged snapshot.bin body
    (header intact) fails its CRC-32 under the image too, and recovery replays the log."""
    events = [aq.WalEvent(i, aq.EnginePaused(i) if i % 2 else aq.EngineResumed(i)) for i in range(1, 11)]
    write_log(tmp_path, events)
    r = aq.ReplayReducer()
    r.apply_all(events[:5])
    path = aq.write_snapshot(tmp_path, aq.build_snapshot(r, 100))
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0x20
    path.write_bytes(bytes(raw))
    assert aq.snapshot.reducer_from_image(tmp_path) is None
    with recovery.open(tmp_path) as store:
        assert not store.report.snapshot_loaded and "Crc" in store.report.snapshot_error
        assert store.reducer.latest_sequence == 10 and store.report.wal_events_applied == 10
    with pytest.raises(aq.snapshot.SnapshotCrcMismatch):
        aq.load_snapshot(tmp_path)


def _forge_image(data_dir, change) -> None:
    """Rewrite the data dir's format-2 image with ``change(spans)`` applied, its digest
    recomputed (a forged file, or a bug in the writer)."""
    from actionqueue.snapshot import image as img

    path = img.image_path(data_dir)
    frame = struct.unpack_from("<III", aq.snapshot.snapshot_path(data_dir).read_bytes())
    header, spans = img.read_image(path, frame)
    spans.run_ids = spans.run_ids.copy()
    change(spans)
    path.write_bytes(img.encode_image(spans, header, frame))


def _swap_first_two_run_ids(spans) -> None:
    spans.run_ids[[0, 1]] = spans.run_ids[[1, 0]]


def test_gap_after_the_snapshot_is_replayed_not_skipped(tmp_path) -> None:
    """decisions.md #13: Rust seeks exactly snapshot+1 and would skip everything here."""
    events = [aq.WalEvent(s, aq.EnginePaused(s) if k % 2 == 0 else aq.EngineResumed(s)) for k, s in enumerate([1, 2, 3, 10, 11])]
    write_log(tmp_path, events)
    r = aq.ReplayReducer()
    r.apply_all(events[:3])
    aq.write_snapshot(tmp_path, aq.build_snapshot(r, 100))
    with recovery.open(tmp_path) as store:
        assert store.report.wal_events_applied == 2 and store.reducer.latest_sequence == 11


def test_snapshot_beyond_the_log_is_refused(tmp_path) -> None:
    events = [aq.WalEvent(i, aq.EnginePaused(i) if i % 2 else aq.EngineResumed(i)) for i in range(1, 11)]
    write_log(tmp_path, events[:4])
    r = aq.ReplayReducer()
    r.apply_all(events)
    aq.write_snapshot(tmp_path, aq.build_snapshot(r, 100))
    with pytest.raises(recovery.RecoveryError):
        recovery.open(tmp_path)


def test_torn_tail_is_repaired_before_recovery_when_asked(tmp_path) -> None:
    events = [aq.WalEvent(i, aq.EnginePaused(i) if i % 2 else aq.EngineResumed(i)) for i in range(1, 6)]
    write_log(tmp_path, events, layout="rust")
    path = tmp_path / "wal" / "actionqueue.wal"
    path.write_bytes(path.read_bytes() + b"\x05\x00\x00")
    with pytest.raises(aq.TornTail):
        recovery.open(tmp_path)
    with recovery.open(tmp_path, repair_policy=aq.RepairPolicy.TRUNCATE_PARTIAL) as store:
        assert store.report.repaired is not None and store.reducer.latest_sequence == 5
        store.writer.append(aq.WalEvent(6, aq.EngineResumed(6)))


def test_an_invalid_history_is_a_recovery_error(tmp_path) -> None:
    write_log(tmp_path, [aq.WalEvent(1, aq.EngineResumed(1))])  # resume without pause
    with pytest.raises(recovery.RecoveryError):
        recovery.open(tmp_path)


def test_snapshot_over_an_empty_log_sets_the_next_sequence(tmp_path) -> None:
    """Rust accepts a snapshot ahead of an empty log; appends must then continue above it,
    or the next recovery would find the snapshot beyond the log."""
    events = [aq.WalEvent(i, aq.EnginePaused(i) if i % 2 else aq.EngineResumed(i)) for i in range(1, 6)]
    r = aq.ReplayReducer()
    r.apply_all(events)
    (tmp_path / "snapshots").mkdir()
    aq.write_snapshot(tmp_path, aq.build_snapshot(r, 100))
    with recovery.open(tmp_path) as store:
        assert store.reducer.latest_sequence == 5
        assert store.writer.append_next(aq.EngineResumed(6)) == 6
    with recovery.open(tmp_path) as store:
        assert store.reducer.latest_sequence == 6 and store.report.wal_events_applied == 1


def test_replay_to_ignores_a_torn_tail(tmp_path) -> None:
    events = [aq.WalEvent(i, aq.EnginePaused(i) if i % 2 else aq.EngineResumed(i)) for i in range(1, 6)]
    write_log(tmp_path, events, layout="rust")
    path = tmp_path / "wal" / "actionqueue.wal"
    path.write_bytes(path.read_bytes() + b"\x05\x00\x00")
    assert recovery.replay_to(tmp_path, 10).latest_sequence == 5


def test_a_json_only_snapshot_gets_its_image_on_first_open(tmp_path) -> None:
    """A snapshot without an image (Rust wrote it, or an older version of ours) is read
    from its JSON once; recovery then writes the image, and the next open uses it."""
    from actionqueue.snapshot import image_path

    events = [aq.WalEvent(i, aq.EnginePaused(i) if i % 2 else aq.EngineResumed(i)) for i in range(1, 11)]
    write_log(tmp_path, events)
    r = aq.ReplayReducer()
    r.apply_all(events[:6])
    aq.write_snapshot(tmp_path, aq.build_snapshot(r, 100), image=False)
    assert not image_path(tmp_path).exists()
    with recovery.open(tmp_path) as store:
        assert store.report.snapshot_source == "json"
        first = state(store.reducer)
    assert image_path(tmp_path).exists()
    with recovery.open(tmp_path) as store:
        assert store.report.snapshot_source == "image"
        assert state(store.reducer) == first
    # replay_to is read-only: it never writes an image
    image_path(tmp_path).unlink()
    assert state(recovery.replay_to(tmp_path, 10)) == first
    assert not image_path(tmp_path).exists()


def test_image_finds_ids_that_differ_only_in_low_bits(tmp_path) -> None:
    """Ids above 2**63 that a float64 cannot tell apart (same top 53 bits) are still found
    one by one in a snapshot image (its index compares them as u64)."""
    task = aq.TaskId.new()
    run_ids = [aq.RunId((0xF000_0000_0000_0000 + k).to_bytes(8, "big") + k.to_bytes(8, "big")) for k in range(40)]
    events = [aq.WalEvent(1, aq.TaskCreated(aq.TaskSpec(task), 10))]
    for k, rid in enumerate(run_ids):
        events.append(aq.WalEvent(k + 2, aq.RunCreated(aq.RunInstance(rid, task, aq.RunState.SCHEDULED, None, 0, 10, 10, 0, 10))))
    write_log(tmp_path, events)
    full = aq.ReplayReducer()
    full.apply_all(events)
    aq.write_snapshot(tmp_path, aq.build_snapshot(full, 100))
    with recovery.open(tmp_path) as store:
        assert store.report.snapshot_source == "image"
        for rid in reversed(run_ids):
            assert store.reducer.get_run_instance(rid) == full.get_run_instance(rid)
        assert store.reducer.run_ids_for_task(task) == sorted(run_ids)


# --------------------------------------------------------------------------------------
# Regressions from a review of the image path
# --------------------------------------------------------------------------------------
def _recovered_with_runs(tmp_path, n: int):
    S = aq.RunState
    with aq.open(tmp_path, durability="none") as store:
        a = aq.MutationAuthority.from_store(store)
        t = aq.TaskId.new()
        a.create_task(aq.TaskSpec(t, run_policy=aq.RunPolicy.repeat(n, 1)), timestamp=1)
        runs = [o.event.run_instance.id for o in a.derive_runs(t, timestamp=2)]
        store.snapshot(timestamp=3)
    store = aq.open(tmp_path, durability="none")
    assert store.report.snapshot_source == "image"
    return store, t, runs, S


def test_concurrent_readers_of_a_recovered_reducer(tmp_path) -> None:
    """Reads take records out of the image; concurrent readers must neither miss a run
    nor count one twice (and a reader racing the authority must not undo its changes)."""
    import sys
    import threading

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        store, _t, runs, S = _recovered_with_runs(tmp_path, 1500)
        r = store.reducer
        misses = []

        def read():
            misses.extend(rid for rid in runs if r.get_run_state(rid) is None)

        threads = [threading.Thread(target=read) for _ in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not misses and r.run_count == len(runs) == len(list(r.run_ids()))
        store.close()
    finally:
        sys.setswitchinterval(old)


def test_a_reader_racing_the_authority_keeps_its_changes(tmp_path) -> None:
    import sys
    import threading

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        store, _t, runs, S = _recovered_with_runs(tmp_path, 1500)
        r = store.reducer
        a = aq.MutationAuthority.from_store(store)
        stop = threading.Event()

        def reader():
            while not stop.is_set():
                for rid in runs:
                    r.get_run_state(rid)

        th = threading.Thread(target=reader)
        th.start()
        try:
            for rid in runs:
                a.transition_run(rid, S.SCHEDULED, S.READY, timestamp=5)
        finally:
            stop.set()
            th.join()
        assert all(r.get_run_state(rid) is S.READY for rid in runs)
        store.close()
    finally:
        sys.setswitchinterval(old)


def test_image_links_runs_to_their_task_by_id_not_by_spelling(tmp_path) -> None:
    """A snapshot may spell a task id differently in its task and in its runs (upper case
    is valid uuid text): the image must still file the runs under their task."""
    S = aq.RunState
    t = aq.TaskId.new()
    r1, r2, r3 = aq.RunId.new(), aq.RunId.new(), aq.RunId.new()

    def rc(rid):
        return aq.RunCreated(aq.RunInstance(rid, t, S.SCHEDULED, None, 0, 10, 10, 0, 10))

    write_log(tmp_path, [aq.WalEvent(1, aq.TaskCreated(aq.TaskSpec(t), 1)), aq.WalEvent(2, rc(r1)), aq.WalEvent(3, rc(r2))])
    red = aq.ReplayReducer()
    red.apply_all(aq.WalReader(tmp_path))
    snap = aq.build_snapshot(red, 100)
    snap["tasks"][0]["task_spec"]["id"] = str(t).upper()
    aq.write_snapshot(tmp_path, snap)
    with aq.WalWriter(tmp_path, durability="none") as w:
        w.append(aq.WalEvent(4, rc(r3)))
    with recovery.open(tmp_path) as store:
        assert store.report.snapshot_source == "image"
        assert store.reducer.run_ids_for_task(t) == sorted([r1, r2, r3])
        assert [x.id for x in store.reducer.runs_for_task(t)] == sorted([r1, r2]) + [r3]


@pytest.mark.skipif(not NATIVE, reason="format-2 images (native backend)")
def test_a_forged_image_index_fails_every_scan_and_loses_nothing(tmp_path) -> None:
    """An index whose digest holds but that files a run under another id raises
    ImageError when the record is first read, every time, and leaves the reducer as it
    was: never a silent loss."""
    S = aq.RunState
    t = aq.TaskId.new()
    runs = sorted(aq.RunId.new() for _ in range(3))
    red = aq.ReplayReducer()
    red.apply(aq.WalEvent(1, aq.TaskCreated(aq.TaskSpec(t), 1)))
    for i, rid in enumerate(runs):
        red.apply(aq.WalEvent(2 + i, aq.RunCreated(aq.RunInstance(rid, t, S.SCHEDULED, None, 0, 5, 5, 0, 5))))
    aq.write_snapshot(tmp_path, aq.build_snapshot(red, 100))
    _forge_image(tmp_path, _swap_first_two_run_ids)
    r = aq.snapshot.reducer_from_image(tmp_path)
    assert (r.run_count, r.task_count) == (3, 1)
    for _ in range(2):
        with pytest.raises(aq.errors.ImageError):
            list(r.run_ids())
        assert (r.run_count, r.task_count) == (3, 1) and r.task_exists(t)
    assert r.get_run_state(runs[2]) is S.SCHEDULED  # the records the index files right still read


@pytest.mark.skipif(not NATIVE, reason="format-2 images (native backend)")
def test_open_falls_back_to_the_json_when_the_image_index_is_forged(tmp_path) -> None:
    """A forged index found when the tail replay first reads a run: open() drops the
    image and recovers from snapshot.bin instead."""
    S = aq.RunState
    t = aq.TaskId.new()
    rids = sorted(aq.RunId.new() for _ in range(2))
    events = [aq.WalEvent(1, aq.TaskCreated(aq.TaskSpec(t), 1))]
    events += [aq.WalEvent(2 + i, aq.RunCreated(aq.RunInstance(r, t, S.SCHEDULED, None, 0, 5, 5, 0, 5)))
               for i, r in enumerate(rids)]  # fmt: skip
    events.append(aq.WalEvent(4, aq.RunStateChanged(rids[0], S.SCHEDULED, S.READY, 6)))
    write_log(tmp_path, events)
    red = aq.ReplayReducer()
    red.apply_all(events[:3])
    aq.write_snapshot(tmp_path, aq.build_snapshot(red, 100))
    _forge_image(tmp_path, _swap_first_two_run_ids)
    with recovery.open(tmp_path) as store:
        assert store.report.snapshot_source == "json" and store.report.wal_events_applied == 1
        assert store.reducer.get_run_state(rids[0]) is S.READY
    with recovery.open(tmp_path) as store:  # the image was rewritten from the JSON
        assert store.report.snapshot_source == "image"
        assert store.reducer.get_run_state(rids[0]) is S.READY


@pytest.mark.skipif(NATIVE, reason="format-1 images (pure backend)")
def test_a_bad_image_record_fails_every_scan_and_loses_nothing(tmp_path) -> None:
    """A record that fails its checks when first read (its digest held: a forged image)
    raises ImageError, every time, and leaves the reducer as it was: never a silent loss."""
    import xxhash

    from actionqueue.snapshot import _image_py as _image

    S = aq.RunState
    t = aq.TaskId.new()
    runs = [aq.RunId.new() for _ in range(3)]
    red = aq.ReplayReducer()
    red.apply(aq.WalEvent(1, aq.TaskCreated(aq.TaskSpec(t), 1)))
    for i, rid in enumerate(runs):
        red.apply(aq.WalEvent(2 + i, aq.RunCreated(aq.RunInstance(rid, t, S.SCHEDULED, None, 0, 5, 5, 0, 5))))
    aq.write_snapshot(tmp_path, aq.build_snapshot(red, 100))
    path = _image.image_path(tmp_path)
    data = bytearray(path.read_bytes())
    at = data.index(b'"attempt_count":0')
    data[at + 16 : at + 17] = b"7"  # that run now breaks a snapshot rule
    fields = list(_image._HEADER.unpack_from(data))
    fields[7] = xxhash.xxh3_128_digest(bytes(data[_image._HEADER.size :]))
    data[: _image._HEADER.size] = _image._HEADER.pack(*fields)
    path.write_bytes(bytes(data))
    r = aq.snapshot.reducer_from_image(tmp_path)
    assert (r.run_count, r.task_count) == (3, 1)
    for _ in range(2):
        with pytest.raises(_image.ImageError):
            list(r.run_ids())
        assert (r.run_count, r.task_count) == (3, 1) and r.task_exists(t)


def test_store_snapshot_syncs_the_log_first(tmp_path, monkeypatch) -> None:
    """With group commit a command is applied before its shared fsync; a snapshot taken
    then must not get ahead of the durable log: Store.snapshot syncs the writer first."""
    import os

    store = aq.open(tmp_path, durability="group")
    a = aq.MutationAuthority.from_store(store)
    a.create_task(aq.TaskSpec(aq.TaskId.new()), timestamp=1)
    synced = []
    real = os.fsync

    def fsync(fd):
        synced.append(fd)
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with a.lock:
        store.snapshot(timestamp=2)
    monkeypatch.undo()
    assert synced and synced[0] == store.writer._fd  # the log, before any snapshot file
    store.writer._poisoned = OSError(5, "EIO")  # a poisoned writer: no snapshot at all
    before = aq.snapshot.snapshot_path(tmp_path).read_bytes()
    with pytest.raises(aq.WriterPoisoned):
        store.snapshot(timestamp=3)
    assert aq.snapshot.snapshot_path(tmp_path).read_bytes() == before
    store.writer._poisoned = None
    store.close()


@pytest.mark.skipif(NATIVE, reason="format-1 images (pure backend)")
def test_open_falls_back_to_the_json_when_an_image_record_is_bad(tmp_path) -> None:
    """An image whose digest holds but whose record fails its checks when the tail replay
    first reads it: open() drops the image and recovers from snapshot.bin instead."""
    import xxhash

    from actionqueue.snapshot import _image_py as _image

    S = aq.RunState
    t, rid = aq.TaskId.new(), aq.RunId.new()
    events = [
        aq.WalEvent(1, aq.TaskCreated(aq.TaskSpec(t), 1)),
        aq.WalEvent(2, aq.RunCreated(aq.RunInstance(rid, t, S.SCHEDULED, None, 0, 5, 5, 0, 5))),
        aq.WalEvent(3, aq.RunStateChanged(rid, S.SCHEDULED, S.READY, 6)),
    ]
    write_log(tmp_path, events)
    red = aq.ReplayReducer()
    red.apply_all(events[:2])
    aq.write_snapshot(tmp_path, aq.build_snapshot(red, 100))
    path = _image.image_path(tmp_path)
    data = bytearray(path.read_bytes())
    at = data.index(b'"attempt_count":0')
    data[at + 16 : at + 17] = b"7"
    fields = list(_image._HEADER.unpack_from(data))
    fields[7] = xxhash.xxh3_128_digest(bytes(data[_image._HEADER.size :]))
    data[: _image._HEADER.size] = _image._HEADER.pack(*fields)
    path.write_bytes(bytes(data))
    with recovery.open(tmp_path) as store:
        assert store.report.snapshot_source == "json" and store.report.wal_events_applied == 1
        assert store.reducer.get_run_state(rid) is S.READY
    with recovery.open(tmp_path) as store:  # the image was rewritten from the JSON
        assert store.report.snapshot_source == "image"
        assert store.reducer.get_run_state(rid) is S.READY


def test_read_only_replays_skip_a_json_snapshot_slower_than_the_log(tmp_path) -> None:
    """Without an image, replay_to (which may not write one) replays a whole log rather
    than parse a snapshot JSON bigger than it; same state either way."""
    from actionqueue.snapshot import image_path
    from actionqueue.snapshot.newest import json_snapshot_costs_more_than_replay

    events = [aq.WalEvent(i, aq.EnginePaused(i) if i % 2 else aq.EngineResumed(i)) for i in range(1, 11)]
    write_log(tmp_path, events)
    full = aq.ReplayReducer()
    full.apply_all(events)
    r = aq.ReplayReducer()
    r.apply_all(events[:6])
    aq.write_snapshot(tmp_path, aq.build_snapshot(r, 100), image=False)
    assert json_snapshot_costs_more_than_replay(tmp_path)  # ~1.3 KB of JSON, ~0.2 KB of log
    assert state(recovery.replay_to(tmp_path, 10)) == state(full)
    assert state(recovery.replay_to(tmp_path, 6)) == state(r)
    aq.write_snapshot(tmp_path, aq.build_snapshot(r, 100))  # with its image: use it
    assert image_path(tmp_path).exists() and not json_snapshot_costs_more_than_replay(tmp_path)
    assert state(recovery.replay_to(tmp_path, 10)) == state(full)


def test_a_log_that_does_not_start_at_one_keeps_its_snapshot(tmp_path) -> None:
    from actionqueue.snapshot.newest import json_snapshot_costs_more_than_replay

    events = [aq.WalEvent(i, aq.EnginePaused(i) if i % 2 else aq.EngineResumed(i)) for i in range(5, 11)]
    write_log(tmp_path, events)
    r = aq.ReplayReducer()
    r.apply_all(events[:2])
    aq.write_snapshot(tmp_path, aq.build_snapshot(r, 100), image=False)
    assert not json_snapshot_costs_more_than_replay(tmp_path)  # events 1-4 are only in the snapshot
