"""Fault injection into the WAL writer (reliability.md techniques 4 and 5).

OS calls are failed through ``OsFaults`` (monkeypatched ``os.write``/``fsync``/
``ftruncate`` for files under the test's data dir), so the writer meets the errors a
full or failing disk gives: immediate failures, short writes followed by ENOSPC, a
failed undo, a failed fsync (which must poison and never be retried, decisions.md #9),
in group commit too. ``PowerLoss`` keeps what each file held at its last fsync and
drops the rest at a random fsync; everything acknowledged before it must survive.
Also: sequence rules, encode errors, closed writers, the writer lock.
"""

from __future__ import annotations

import errno
import itertools
import os
import random
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from wal_testlib import (
    LAYOUT_IDS,
    LAYOUT_KW,
    OsFaults,
    PowerLoss,
    SeqAllocator,
    can_map_fds,
    events,
    intact,
    log_bytes,
    log_files,
    make_event,
    os_error,
    read_all,
    record_ends,
    run_threads,
    short_write_then,
    tagged_event,
)

import actionqueue as aq
from actionqueue import wal

HAS_APPEND_NEXT = hasattr(wal.WalWriter, "append_next")
# how concurrent producers append: their own sequences (retrying when overtaken), or
# append_next (the writer assigns them under its lock)
APIS = ["append", "append_next"] if HAS_APPEND_NEXT else ["append"]
STRICT = wal.RepairPolicy.STRICT


def NEXT_CALL(w):
    """An ``append_next`` call to add to a list of calls that must all fail the same way."""
    return [lambda: w.append_next(aq.EnginePaused(1))] if HAS_APPEND_NEXT else []


TRUNCATE = wal.RepairPolicy.TRUNCATE_PARTIAL
FSYNC, GROUP, NONE = wal.Durability.FSYNC, wal.Durability.GROUP, wal.Durability.NONE


@pytest.fixture
def data_dir(tmp_path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture(params=LAYOUT_KW, ids=LAYOUT_IDS)
def kw(request) -> dict:
    return request.param


@pytest.fixture
def faults(monkeypatch, data_dir) -> OsFaults:
    if not can_map_fds(data_dir):
        pytest.skip("fault injection needs the path of a file descriptor (/proc or F_GETPATH)")
    return OsFaults(monkeypatch, data_dir)


def tiny(seq: int) -> aq.WalEvent:
    return aq.WalEvent(seq, aq.EnginePaused(seq))


def record_file(data_dir):
    """A ``where`` filter: files that hold records (not seals, temp files or the lock)."""
    return lambda p: Path(p) in set(log_files(data_dir))


def assert_log(data_dir, expected, kw, policy=STRICT):
    """The log holds exactly ``expected``; reopening it needs no repair and appends go on."""
    assert read_all(data_dir) == expected
    with wal.WalWriter(data_dir, repair_policy=policy, **kw) as w:
        assert w.repaired is None
        assert w.current_sequence == (expected[-1].sequence if expected else 0)


# --------------------------------------------------------------------------------------
# Failed writes
# --------------------------------------------------------------------------------------
WRITE_FAILURES = {
    # name: list of (action kind, argument) for consecutive write calls
    "eio": [("fail", errno.EIO)],
    "enospc": [("fail", errno.ENOSPC)],
    "short1-enospc": [("short", 1), ("fail", errno.ENOSPC)],
    "short13-enospc": [("short", 13), ("fail", errno.ENOSPC)],  # header + 1 payload byte
    "half-enospc": [("short", lambda n: n // 2), ("fail", errno.ENOSPC)],
    "half-eio": [("short", lambda n: n // 2), ("fail", errno.EIO)],
    "short-short-efbig": [("short", 5), ("short", 3), ("fail", errno.EFBIG)],
}


def arm_write_failure(faults, data_dir, plan) -> None:
    for kind, arg in plan:
        if kind == "fail":
            faults.fail("write", arg, where=record_file(data_dir))
        else:
            faults.on("write", short_write_then(errno.ENOSPC, arg), where=record_file(data_dir))


@pytest.mark.parametrize("api", ["append", "append_many"] + (["append_next"] if HAS_APPEND_NEXT else []))
@pytest.mark.parametrize("failure", list(WRITE_FAILURES))
def test_failed_write_leaves_previous_length(data_dir, faults, kw, failure, api) -> None:
    acked = events(1, 6, salt=1)
    w = wal.WalWriter(data_dir, repair_policy=STRICT, durability=FSYNC, **kw)
    w.append(acked[0])
    w.append_many(acked[1:])
    path, size = w.path, w.size
    before = log_bytes(data_dir)
    arm_write_failure(faults, data_dir, WRITE_FAILURES[failure])
    new = events(7, 9, salt=1) if api == "append_many" else events(7, 7, salt=1)

    def attempt():
        if api == "append_next":
            assert w.append_next(new[0].event) == 7
        else:
            w.append_many(new) if api == "append_many" else w.append(new[0])

    with pytest.raises(wal.WalWriterError) as info:
        attempt()
    assert not isinstance(info.value, wal.WriterPoisoned), "an undone write must not poison"
    assert isinstance(info.value.__cause__, OSError)
    # back at the previous length, nothing else changed, the writer agrees
    assert os.stat(w.path).st_size == w.size
    if w.path == path:
        assert w.size == size
        assert log_bytes(data_dir) == before
    else:  # the failed append began a new segment: it is empty
        assert w.size == 0
    assert w.current_sequence == 6
    for f in log_files(data_dir):
        assert wal.validate_file(f).clean
    assert read_all(data_dir) == acked
    # still usable: the same sequences go in
    faults.clear()
    attempt()
    w.close()
    assert_log(data_dir, acked + new, kw)


@pytest.mark.parametrize("partial", [0, 7, 30])
def test_failed_undo_poisons(data_dir, faults, kw, partial) -> None:
    """A failed write whose truncate-back also fails leaves bytes the writer cannot vouch
    for: every later call raises WriterPoisoned; a reopen repairs and keeps what was acked."""
    acked = events(1, 5, salt=2)
    w = wal.WalWriter(data_dir, repair_policy=STRICT, durability=FSYNC, **kw)
    w.append_many(acked)
    faults.on("write", short_write_then(errno.ENOSPC, partial), where=record_file(data_dir))
    faults.fail("write", errno.ENOSPC, where=record_file(data_dir))
    faults.fail("ftruncate", errno.EIO, times=None)
    big = aq.WalEvent(6, aq.LeaseAcquired(aq.RunId.nil(), "x" * 200, 1, 2))
    with pytest.raises(wal.WalWriterError):
        w.append(big)
    fsyncs = faults.count("fsync")
    for call in (lambda: w.append(make_event(6, 2)), lambda: w.append(make_event(7, 2)),
                 lambda: w.append_many(events(6, 8, 2)), w.sync, lambda: w.append(make_event(6, 2)),
                 *NEXT_CALL(w)):
        with pytest.raises(wal.WriterPoisoned):
            call()
    assert faults.count("fsync") == fsyncs, "a poisoned writer must not fsync"
    w.close()
    w.close()
    with pytest.raises(wal.WalWriterError):
        w.append(make_event(6, 2))
    faults.clear()
    if partial:
        with pytest.raises(wal.TornTail):
            wal.WalWriter(data_dir, repair_policy=STRICT, **kw)
    with wal.WalWriter(data_dir, repair_policy=TRUNCATE, **kw) as w2:
        assert (w2.repaired is not None) == bool(partial)
        assert w2.current_sequence == 5
        w2.append(make_event(6, 2))
    assert_log(data_dir, acked + [make_event(6, 2)], kw)


# --------------------------------------------------------------------------------------
# Failed fsync
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("durability", [FSYNC, GROUP, NONE], ids=lambda d: d.value)
def test_failed_fsync_poisons_and_is_never_retried(data_dir, faults, kw, durability) -> None:
    acked = events(1, 4, salt=3)
    w = wal.WalWriter(data_dir, repair_policy=STRICT, durability=durability, **kw)
    w.append_many(acked)
    w.sync()
    faults.fail("fsync", errno.EIO)  # the next fsync of a file, whatever it is
    n = faults.count("fsync")
    with pytest.raises(wal.WriterPoisoned):
        w.append(make_event(5, 3))
        w.sync()  # Durability.NONE: the append itself does not fsync
    assert faults.count("fsync") == n + 1
    for call in (lambda: w.append(make_event(6, 3)), lambda: w.append_many(events(6, 7, 3)),
                 w.sync, w.flush, lambda: w.append(make_event(5, 3)), *NEXT_CALL(w)):
        with pytest.raises(wal.WriterPoisoned):
            call()
    w.close()
    assert faults.count("fsync") == n + 1, "a failed fsync must never be retried (fsyncgate)"
    faults.clear()
    # reopening validates and works; the failed append may or may not be there
    with wal.WalWriter(data_dir, repair_policy=TRUNCATE, **kw) as w2:
        got = read_all(data_dir)
        assert got[:4] == acked and got[4:] in ([], [make_event(5, 3)])
        w2.append(make_event(w2.current_sequence + 1, 3))


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("threads", [4, 16])
def test_group_fsync_failure_wakes_every_waiter(data_dir, faults, kw, threads, api) -> None:
    """A group-commit fsync fails while every other appender waits for it: all of them
    get WriterPoisoned (none hangs, none succeeds), and the fsync is not retried."""
    w = wal.WalWriter(data_dir, repair_policy=STRICT, durability=GROUP, **kw)
    w.append(tiny(1))
    entered, release = threading.Event(), threading.Event()

    def blocking_failure(real, fd, *args):
        entered.set()
        release.wait(20)
        raise os_error(errno.EIO)

    writes0 = faults.count("write")
    fsyncs0 = faults.count("fsync")
    faults.on("fsync", blocking_failure, where=record_file(data_dir))
    alloc = SeqAllocator(2)
    results: list = []

    def appender(i):
        try:
            if api == "append_next":
                w.append_next(aq.EnginePaused(1))
            else:
                alloc.append(w, make=lambda seq, *_: tiny(seq))  # small: no rotation meanwhile
            results.append("ok")
        except BaseException as exc:  # noqa: BLE001
            results.append(exc)

    ts = [threading.Thread(target=appender, args=(i,), daemon=True) for i in range(threads)]
    for t in ts:
        t.start()
    assert entered.wait(20)
    deadline = time.monotonic() + 20
    while faults.count("write") < writes0 + threads and time.monotonic() < deadline:
        time.sleep(0.005)  # every appender has written and is waiting for the fsync
    assert faults.count("write") == writes0 + threads
    time.sleep(0.05)
    release.set()
    for t in ts:
        t.join(20)
    assert not any(t.is_alive() for t in ts), "a group-commit waiter hangs after a failed fsync"
    assert len(results) == threads
    assert all(isinstance(r, wal.WriterPoisoned) for r in results), results
    assert faults.count("fsync") == fsyncs0 + 1
    with pytest.raises(wal.WriterPoisoned):
        w.append(tiny(10_000))
    w.close()
    assert faults.count("fsync") == fsyncs0 + 1
    faults.clear()
    with wal.WalWriter(data_dir, repair_policy=TRUNCATE, **kw):
        got = read_all(data_dir)
    assert got[0] == tiny(1) and all(isinstance(e.event, aq.EnginePaused) for e in got)


# --------------------------------------------------------------------------------------
# Fail the Nth call (SQLite I/O-error testing)
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("persistent", [False, True], ids=["once", "persistent"])
@pytest.mark.parametrize("op", ["write", "fsync", "dir_fsync", "write+ftruncate"])
def test_fail_nth_call(tmp_path, monkeypatch, op, persistent) -> None:
    """Fail the Nth call of ``op`` (N = 1, 2, ...) while a writer with small segments opens,
    appends varied records, retries failed appends and closes: whatever happens, a reopen
    (with TRUNCATE_PARTIAL) holds every acknowledged event, intact and in order."""
    kw = dict(zip(LAYOUT_IDS, LAYOUT_KW)).get("seg-small", LAYOUT_KW[0])
    if not can_map_fds(tmp_path):
        pytest.skip("fault injection needs the path of a file descriptor (/proc or F_GETPATH)")
    for nth in range(1, 31):
        d = tmp_path / f"{op}-{nth}"
        d.mkdir()
        with monkeypatch.context() as mp:
            faults = OsFaults(mp, d)
            faults.fail(op.split("+")[0], errno.ENOSPC if op.startswith("write") else errno.EIO, nth=nth,
                        times=None if persistent else 1)
            if op == "write+ftruncate":  # and the undo of the failed write fails too
                faults.fail("ftruncate", errno.EIO, times=None)
            acked = run_with_faults(d, kw)
            fired = faults.rules[0].fired
        with wal.WalWriter(d, repair_policy=TRUNCATE, **kw) as w:
            got = read_all(d)
            seqs = [e.sequence for e in got]
            assert seqs == list(range(1, len(seqs) + 1)), (nth, seqs)
            assert all(e == make_event(e.sequence, 5) for e in got), nth
            assert set(acked) <= set(seqs), (nth, sorted(set(acked) - set(seqs)))
            w.append(make_event(w.current_sequence + 1, 5))
        if not fired:
            break  # N is past the last call: every later N behaves the same


def run_with_faults(d: Path, kw: dict) -> list[int]:
    acked: list[int] = []
    try:
        w = wal.WalWriter(d, repair_policy=TRUNCATE, durability=FSYNC, **kw)
    except (OSError, wal.WalWriterError):
        return acked
    seq = 1
    attempts = 0
    while seq <= 25 and attempts < 60:
        attempts += 1
        try:
            if seq % 4 == 0:
                w.append_many(events(seq, seq + 1, 5))
                acked += [seq, seq + 1]
                seq += 2
            else:
                w.append(make_event(seq, 5))
                acked.append(seq)
                seq += 1
        except wal.WriterPoisoned:
            break
        except wal.WalWriterError:
            continue  # the write was undone: retry the same sequence
    try:
        w.close()
    except wal.WriterPoisoned:  # its final fsync failed: the writer says so, typed
        pass
    return acked


# --------------------------------------------------------------------------------------
# Group commit
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("threads,per_thread", [(4, 60), (16, 20)])
def test_group_commit_covers_every_append(data_dir, faults, kw, threads, per_thread, api) -> None:
    """From many threads: every append is acknowledged, all are in the log in sequence
    order, there are fewer fsyncs than appends, and each append returned only after an
    fsync that started once its bytes were written (file size at the fsync's start >=
    the record's end) had completed."""
    ticks = itertools.count()
    local = threading.local()
    completed: list[tuple[int, int, int]] = []  # (inode, size at start, tick at completion)

    def before(fd, path):
        local.start = (os.fstat(fd).st_ino, os.fstat(fd).st_size)

    def after(fd, path):
        completed.append((*local.start, next(ticks)))

    faults.before_fsync, faults.after_fsync = before, after
    w = wal.WalWriter(data_dir, repair_policy=STRICT, durability=GROUP, **kw)
    alloc = SeqAllocator(1)
    returned: dict[int, int] = {}

    def appender(i):
        for n in range(per_thread):
            if api == "append_next":
                seq = w.append_next(tagged_event(f"{i}.{n}"))
            else:
                seq = alloc.append(w, salt=6)
            returned[seq] = next(ticks)

    errors = run_threads(threads, appender)
    assert not errors, errors
    total = threads * per_thread
    w.close()
    assert len(returned) == total
    got = read_all(data_dir)
    seqs = [e.sequence for e in got]
    assert seqs == sorted(returned), "every acknowledged append is in the log, in sequence order"
    if api == "append_next":
        assert seqs == list(range(1, total + 1))
        assert {e.event.owner.split("|")[0] for e in got} == {f"tag:{i}.{n}" for i in range(threads)
                                                             for n in range(per_thread)}
    assert all(intact(e, 6) for e in got)
    record_inodes = {os.stat(f).st_ino for f in log_files(data_dir)}
    record_fsyncs = sum(1 for ino, _, _ in completed if ino in record_inodes)
    assert record_fsyncs < total, f"{record_fsyncs} fsyncs for {total} appends: no grouping"
    where = {}
    for f in log_files(data_dir):
        ino = os.stat(f).st_ino
        for _start, end, seq in record_ends(f):
            where[seq] = (ino, end)
    for seq, tick in returned.items():
        ino, end = where[seq]
        covered = max((size for i, size, t in completed if i == ino and t < tick), default=-1)
        assert covered >= end, f"append {seq} returned before an fsync covered its bytes [.., {end})"


# --------------------------------------------------------------------------------------
# Power loss
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("durability", [FSYNC, GROUP, NONE], ids=lambda d: d.value)
def test_power_loss_keeps_acknowledged(data_dir, faults, kw, durability, seed) -> None:
    """Power is lost just before a random fsync (or after the last append): whatever the
    files then hold, a reopen with TRUNCATE_PARTIAL has every event acknowledged before
    the cut, intact, in order, and takes appends that survive the next reopen."""
    if kw.get("segment_bytes", 1 << 30) < 1 << 20:
        # rotation replaces the MANIFEST atomically (a new inode renamed over the old):
        # this path-and-inode model cannot restore a replaced file, so it builds states no
        # disk can leave. tests/test_powerloss.py explores rotation with a model that can.
        pytest.skip("rotating layouts: see tests/test_powerloss.py")
    rng = random.Random(seed * 7919 + {"fsync": 1, "group": 2, "none": 3}[durability.value])
    n = rng.randrange(5, 60)
    cut = PowerLoss(faults, nth=rng.randrange(1, n + 8))
    salt = 8
    w = wal.WalWriter(data_dir, repair_policy=TRUNCATE, durability=durability, **kw)
    if durability is GROUP:
        alloc = SeqAllocator(1)
        use_next = HAS_APPEND_NEXT and seed % 2 == 1

        def appender(i):
            for j in range(n // 4 + 1):
                cut.ack([w.append_next(tagged_event(f"{i}.{j}")) if use_next else alloc.append(w, salt)])

        assert not run_threads(4, appender)
    else:
        seq, pending = 1, []
        while seq <= n:
            k = 1 if rng.random() < 0.7 else rng.randrange(2, 5)
            batch = events(seq, seq + k - 1, salt)
            w.append_many(batch)
            seq += k
            if durability is NONE:
                pending += [e.sequence for e in batch]
                if rng.random() < 0.3:
                    w.sync()
                    cut.ack(pending)
                    pending = []
            else:
                cut.ack([e.sequence for e in batch])
    cut.cut_now()  # if the Nth fsync never came: power lost after the last append
    w.close()
    notes = cut.crash(rng)
    with wal.WalWriter(data_dir, repair_policy=TRUNCATE, durability=FSYNC, **kw) as w2:
        got = read_all(data_dir)
        seqs = [e.sequence for e in got]
        assert all(a < b for a, b in itertools.pairwise(seqs))
        assert all(intact(e, salt) for e in got)
        lost = sorted(cut.acked_at_cut - set(seqs))
        assert not lost, f"acknowledged before the power loss, lost: {lost}; {notes}"
        if durability is not GROUP:
            assert seqs == list(range(1, len(seqs) + 1))
        nxt = w2.current_sequence + 1
        w2.append(make_event(nxt, salt))
    assert_log(data_dir, got + [make_event(nxt, salt)], kw)


# --------------------------------------------------------------------------------------
# Closed writers, sequences, encode errors, locks
# --------------------------------------------------------------------------------------
def test_appends_after_close_raise_writer_closed(data_dir, kw) -> None:
    with wal.WalWriter(data_dir, **kw) as w:
        w.append(make_event(1))
    assert w.closed
    for call in (lambda: w.append(make_event(2)), lambda: w.append_many(events(2, 3)), w.sync, *NEXT_CALL(w)):
        with pytest.raises(wal.WriterClosed):
            call()
    w.close()  # closing twice is allowed
    with pytest.raises(RuntimeError), wal.WalWriter(data_dir, **kw) as w2:
        w2.append(make_event(2))
        raise RuntimeError("leaving the block by an exception still closes")
    with pytest.raises(wal.WriterClosed):
        w2.append(make_event(3))
    assert_log(data_dir, events(1, 2), kw)


def test_sequence_rules(data_dir, kw) -> None:
    w = wal.WalWriter(data_dir, **kw)
    with pytest.raises(wal.SequenceViolation):
        w.append(make_event(0))  # 0 is not above the empty log's 0
    for seq in (1, 5, 100):  # gaps are allowed
        w.append(make_event(seq))
    before = log_bytes(data_dir)
    bad_calls = [
        (lambda: w.append(make_event(100)), 101, 100),  # repeat
        (lambda: w.append(make_event(50)), 101, 50),  # decrease
        (lambda: w.append_many([make_event(101), make_event(102), make_event(102), make_event(103)]), 103, 102),
        (lambda: w.append_many([make_event(101), make_event(99)]), 102, 99),
        (lambda: w.append_many([make_event(100), make_event(101)]), 101, 100),
    ]
    for call, expected, provided in bad_calls:
        with pytest.raises(wal.SequenceViolation) as info:
            call()
        assert isinstance(info.value, ValueError)
        assert (info.value.expected, info.value.provided) == (expected, provided)
        assert log_bytes(data_dir) == before, "a sequence violation wrote something"
        assert w.current_sequence == 100
    with pytest.raises(TypeError):
        w.append(aq.EnginePaused(1))  # not a WalEvent
    assert log_bytes(data_dir) == before
    w.append_many([make_event(101), make_event(103)])
    w.close()
    assert [e.sequence for e in read_all(data_dir)] == [1, 5, 100, 101, 103]


@pytest.mark.skipif(not HAS_APPEND_NEXT, reason="no WalWriter.append_next")
def test_append_next_takes_the_next_sequence(data_dir, kw) -> None:
    with wal.WalWriter(data_dir, **kw) as w:
        assert w.append_next(aq.EnginePaused(1)) == 1
        w.append(make_event(5))  # a gap chosen by the caller
        assert w.append_next(aq.EnginePaused(2)) == 6
        assert w.current_sequence == 6
        with pytest.raises(wal.SequenceViolation):
            w.append(make_event(6))
    assert [e.sequence for e in read_all(data_dir)] == [1, 5, 6]
    with wal.WalWriter(data_dir, **kw) as w:  # and after a reopen
        assert w.append_next(aq.EngineResumed(3)) == 7
    assert read_all(data_dir)[-1] == aq.WalEvent(7, aq.EngineResumed(3))


def _bypassed(seq: int, field: str, value) -> aq.WalEvent:
    e = aq.WalEvent(seq, aq.LeaseAcquired(aq.RunId.nil(), "owner", 1, 2))
    object.__setattr__(e.event, field, value)
    return e


@pytest.mark.parametrize("field,value", [("timestamp", -1), ("expiry", 1 << 64), ("owner", 123),
                                         ("owner", "\ud800"), ("run_id", "not an id")])
def test_encode_error_writes_nothing(data_dir, kw, field, value) -> None:
    w = wal.WalWriter(data_dir, **kw)
    w.append(make_event(1))
    before = log_bytes(data_dir)
    with pytest.raises(aq.EncodeError):
        w.append(_bypassed(2, field, value))
    with pytest.raises(aq.EncodeError):
        w.append_many([make_event(2), _bypassed(3, field, value), make_event(4)])
    seq_too_big = make_event(2)
    object.__setattr__(seq_too_big, "sequence", 1 << 64)
    with pytest.raises(aq.EncodeError):
        w.append(seq_too_big)
    if HAS_APPEND_NEXT:
        with pytest.raises(aq.EncodeError):
            w.append_next(_bypassed(0, field, value).event)
    assert log_bytes(data_dir) == before
    assert w.current_sequence == 1
    w.append_many(events(2, 4))  # the sequences were not consumed
    w.close()
    assert_log(data_dir, events(1, 4), kw)


def test_second_writer_same_process_is_locked(data_dir, kw) -> None:
    w = wal.WalWriter(data_dir, **kw)
    w.append(make_event(1))
    for policy in (STRICT, TRUNCATE):
        with pytest.raises(wal.WalLocked):
            wal.WalWriter(data_dir, repair_policy=policy, **kw)
    w.append(make_event(2))  # the refused opener disturbed nothing
    w.close()
    with wal.WalWriter(data_dir, **kw) as w2:  # free again once closed
        w2.append(make_event(3))
    assert_log(data_dir, events(1, 3), kw)


def test_second_writer_other_process_is_locked(data_dir, kw) -> None:
    code = textwrap.dedent(f"""
        import sys
        from actionqueue import wal
        try:
            w = wal.WalWriter(sys.argv[1], repair_policy=wal.RepairPolicy.TRUNCATE_PARTIAL, **{kw!r})
        except wal.WalLocked:
            print("locked")
        else:
            print("opened", w.current_sequence)
            w.close()
    """)
    run = lambda: subprocess.run([sys.executable, "-c", code, str(data_dir)], check=False, capture_output=True,
                                 text=True, timeout=60)
    w = wal.WalWriter(data_dir, **kw)
    w.append(make_event(1))
    out = run()
    assert out.stdout.strip() == "locked", out.stderr
    w.append(make_event(2))
    w.close()
    out = run()
    assert out.stdout.strip() == "opened 2", out.stderr
    assert_log(data_dir, events(1, 2), kw)


# --------------------------------------------------------------------------------------
# Regressions: bugs these tests found (fixed in 91c7ef6)
# --------------------------------------------------------------------------------------
def test_interrupted_write_does_not_corrupt(data_dir, faults, kw) -> None:
    """Regression: a KeyboardInterrupt (a signal handler) between two partial writes of
    one record left the fragment and an unpoisoned writer; the next append landed after
    it and the log no longer opened (MidLogCorruption)."""
    w = wal.WalWriter(data_dir, repair_policy=STRICT, durability=FSYNC, **kw)
    w.append_many(events(1, 3, 9))

    def half_then_interrupt(real, fd, data, *rest):
        real(fd, bytes(memoryview(data)[: len(data) // 2]), *rest)
        raise KeyboardInterrupt

    faults.on("write", half_then_interrupt, where=record_file(data_dir))
    big = aq.WalEvent(4, aq.LeaseAcquired(aq.RunId.nil(), "x" * 500, 1, 2))
    with pytest.raises(KeyboardInterrupt):
        w.append(big)
    try:
        w.append(make_event(4, 9))  # the application carries on (e.g. logs its shutdown)
    except wal.WriterPoisoned:
        pass  # acceptable: the writer refuses to vouch for the file
    w.close()
    report = wal.verify(data_dir) if hasattr(wal, "verify") else wal.validate_file(log_files(data_dir)[-1])
    assert report.clean, report


def test_failed_first_write_of_segment_then_gap(data_dir, faults) -> None:
    """Regression: the first write into a new segment (named for X) failed; the retry with
    a later sequence Y (gaps are allowed) went into the file named for X, and the log no
    longer opened under any policy (SegmentError)."""
    if not hasattr(wal, "Layout"):
        pytest.skip("no segmented layout")
    kw = {"layout": "segmented", "segment_bytes": 40}
    w = wal.WalWriter(data_dir, repair_policy=STRICT, durability=FSYNC, **kw)
    for s in range(1, 3):
        w.append(tiny(s))
    faults.fail("write", errno.ENOSPC, where=record_file(data_dir))
    with pytest.raises(wal.WalWriterError):
        w.append(tiny(3))  # rotates to a segment named for 3, whose write fails
    faults.clear()
    w.append(tiny(4))  # gaps are allowed
    w.close()
    assert [e.sequence for e in read_all(data_dir)] == [1, 2, 4]
    with wal.WalWriter(data_dir, repair_policy=STRICT, **kw) as w2:
        assert w2.current_sequence == 4


def test_group_leader_interrupted_does_not_strand_waiters(data_dir, faults) -> None:
    """Regression: a KeyboardInterrupt out of the group-commit leader's fsync cleared the
    'syncing' flag without waking anyone: the appenders waiting for it slept forever."""
    w = wal.WalWriter(data_dir, repair_policy=STRICT, durability=GROUP)
    w.append(tiny(1))
    entered, release = threading.Event(), threading.Event()
    writes0 = faults.count("write")

    def interrupted(real, fd, *args):
        entered.set()
        release.wait(20)
        raise KeyboardInterrupt

    faults.on("fsync", interrupted, where=record_file(data_dir))
    alloc = SeqAllocator(2)
    results: list = []

    def appender(i):
        try:
            alloc.append(w, make=lambda seq, *_: tiny(seq))
            results.append("ok")
        except BaseException as exc:  # noqa: BLE001
            results.append(exc)

    ts = [threading.Thread(target=appender, args=(i,), daemon=True) for i in range(4)]
    for t in ts:
        t.start()
    assert entered.wait(20)
    deadline = time.monotonic() + 20
    while faults.count("write") < writes0 + 4 and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.05)
    release.set()
    deadline = time.monotonic() + 2
    for t in ts:
        t.join(max(0.0, deadline - time.monotonic()))
    stranded = sum(t.is_alive() for t in ts)
    if stranded:
        w.sync()  # wakes them (sync notifies the waiters), so the test leaves no thread behind
        for t in ts:
            t.join(10)
    w.close()
    assert not stranded, f"{stranded} appender(s) stranded after the leader's fsync was interrupted"


def test_repaired_to_empty_segment_then_gap(data_dir) -> None:
    """Regression: a crash tore the first record of a new segment (named for X); the
    repair left it empty and the next append (Y < X, after a gap) went into the file
    named for X: SegmentError on every later open or read. (The SIGKILL loop with group
    commit and small segments hit this too.)"""
    if not hasattr(wal, "Layout"):
        pytest.skip("no segmented layout")
    kw = {"layout": "segmented", "segment_bytes": 40}
    w = wal.WalWriter(data_dir, repair_policy=STRICT, durability=FSYNC, **kw)
    w.append(tiny(1))
    w.append(tiny(2))
    w.append(tiny(5))  # a gap (e.g. sequence 3 and 4 were overtaken in group commit): rotates
    torn = w.path
    w.close()
    (data_dir / "wal" / wal.CHECKPOINT_NAME).unlink()  # a kill leaves no clean close's checkpoint
    torn.write_bytes(torn.read_bytes()[:5])  # what a kill inside that write leaves
    with wal.WalWriter(data_dir, repair_policy=TRUNCATE, durability=FSYNC, **kw) as w2:
        assert w2.repaired is not None and w2.current_sequence == 2
        w2.append(tiny(3))
    assert [e.sequence for e in read_all(data_dir)] == [1, 2, 3]
    with wal.WalWriter(data_dir, repair_policy=STRICT, **kw) as w3:
        assert w3.current_sequence == 3


def test_close_reports_a_failed_fsync_as_poisoned(data_dir, faults) -> None:
    w = wal.WalWriter(data_dir, repair_policy=STRICT, durability=wal.Durability.NONE)
    w.append_many(events(1, 3, 9))
    faults.on("fsync", lambda real, fd, *rest: (_ for _ in ()).throw(OSError(5, "EIO")))
    with pytest.raises(wal.WriterPoisoned):
        w.close()
    assert w.closed
    with pytest.raises(wal.WriterClosed):
        w.append(events(4, 4, 9)[0])


def test_append_racing_close_is_refused_not_lost(data_dir) -> None:
    """An append that starts while close() runs either completes before it or raises
    WriterClosed: it never returns without a covering fsync."""
    import threading

    for durability in (wal.Durability.GROUP, FSYNC):
        d = data_dir / durability.value
        d.mkdir()
        w = wal.WalWriter(d, repair_policy=STRICT, durability=durability)
        w.append_many(events(1, 3, 9))
        outcomes = []

        def appender() -> None:
            try:
                outcomes.append(w.append_next(aq.EnginePaused(1)))
            except wal.WriterClosed:
                outcomes.append("closed")

        threads = [threading.Thread(target=appender) for _ in range(8)]
        for t in threads:
            t.start()
        w.close()
        for t in threads:
            t.join(10)
        acked = [o for o in outcomes if o != "closed"]
        assert len(outcomes) == 8
        got = [e.sequence for e in wal.WalReader(d)]
        assert got[:3] == [1, 2, 3] and set(acked) <= set(got)
