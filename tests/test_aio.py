"""actionqueue.aio: appends and commands from coroutines, with the fsyncs shared.

Every test runs on the standard event loop and on uvloop (tests/conftest.py). The fsyncs
are counted, held and failed through the writer's file-system seam (``GateFiles``, a
``Files`` whose fsync records the file's size when it is called and completes only when the
test lets it), never timed.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import threading
from pathlib import Path

import pytest
from wal_testlib import read_all, record_ends

import actionqueue as aq
from actionqueue.aio import _flush
from actionqueue.aio.store import command_names
from actionqueue.log.files import Files
from actionqueue.state.validators import COMMANDS

pytestmark = pytest.mark.asyncio


class GateFiles(Files):
    """The OS's files, with the batcher's fsyncs (those of the writer's worker thread)
    recorded, held or failed.

    ``synced`` holds, per completed fsync, the file's size when that fsync
    began (what it is sure to cover); ``hold()`` makes the next fsyncs wait for
    ``release()`` (``entered`` is set when one is waiting); ``fail_from = n`` fails the
    n-th fsync and every later one with EIO. The real fsync is left out: the tests are
    about what waits for what."""

    def __init__(self) -> None:
        self.synced: list[int] = []
        self.calls = 0
        self.fail_from: int | None = None
        self.entered = threading.Event()
        self._open = threading.Event()
        self._open.set()

    def hold(self) -> None:
        self.entered.clear()
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def fsync(self, fd: int) -> None:
        if not threading.current_thread().name.startswith("actionqueue-aio-fsync"):
            return  # opening, a new segment's metadata: not the batcher's
        size = os.fstat(fd).st_size
        self.calls += 1
        call = self.calls
        self.entered.set()
        assert self._open.wait(10), "the test never released the fsync"
        if self.fail_from is not None and call >= self.fail_from:
            raise OSError(errno.EIO, "simulated fsync failure")
        self.synced.append(size)

    writes = 0
    fail_writes = False

    def write(self, fd: int, data: bytes | memoryview) -> int:
        """Counted; fails with ENOSPC (nothing written) while ``fail_writes``."""
        self.writes += 1
        if self.fail_writes:
            raise OSError(errno.ENOSPC, "simulated full disk")
        return super().write(fd, data)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


def _body(i: int) -> aq.Event:
    return aq.TaskCanceled(aq.TaskId(int.to_bytes(i + 1, 16, "big")), i)


async def _wait_entered(fs: GateFiles) -> None:
    assert await asyncio.to_thread(fs.entered.wait, 10), "no fsync started"


async def _settle() -> None:
    """Let every task that is ready run its first step."""
    for _ in range(5):
        await asyncio.sleep(0)


# -- sharing ---------------------------------------------------------------------------
async def test_concurrent_appends_share_fsyncs_and_resume_only_when_covered(data_dir: Path) -> None:
    fs = GateFiles()
    covered: dict[int, int] = {}
    async with aq.aio.WalWriter(data_dir, fs=fs) as writer:
        before = fs.calls

        async def one(i: int) -> None:
            sequence = await writer.append_next(_body(i))
            covered[sequence] = max(fs.synced, default=0)  # what completed fsyncs covered when it resumed

        await asyncio.gather(*(one(i) for i in range(100)))
        fsyncs = fs.calls - before
        path = writer.sync_writer.path
        assert writer.durable_sequence == writer.current_sequence == 100
    assert 1 <= fsyncs <= 10, f"{fsyncs} fsyncs for 100 concurrent appends"
    ends = {seq: end for _start, end, seq in record_ends(path)}
    assert sorted(ends) == sorted(covered) == list(range(1, 101))
    late = [seq for seq in covered if covered[seq] < ends[seq]]
    assert late == [], f"appends resumed before an fsync covered them: {late[:5]}"


async def test_one_loop_pass_of_appends_is_one_write(data_dir: Path) -> None:
    fs = GateFiles()
    async with aq.aio.WalWriter(data_dir, fs=fs) as writer:
        await writer.append_next(_body(0))  # the segment exists from here on
        writes, fsyncs = fs.writes, fs.calls
        assert await asyncio.gather(*(writer.append_next(_body(i)) for i in range(1, 101))) == list(range(2, 102))
        assert fs.writes - writes <= fs.calls - fsyncs <= 3, (fs.writes - writes, fs.calls - fsyncs)
    assert [e.event for e in read_all(data_dir)] == [_body(i) for i in range(101)]


async def test_a_failed_write_fails_its_appends_and_frees_their_sequences(data_dir: Path) -> None:
    fs = GateFiles()
    async with aq.aio.WalWriter(data_dir, fs=fs) as writer:
        assert await writer.append_next(_body(0)) == 1
        fs.hold()
        first = asyncio.create_task(writer.append_next(_body(1)))
        await _wait_entered(fs)  # sequence 2 written, its fsync held
        queued = [asyncio.create_task(writer.append_next(_body(i))) for i in range(2, 6)]
        await _settle()
        assert writer.current_sequence == 6  # 3..6 buffered for the next round's write
        fs.fail_writes = True
        fs.release()
        assert await first == 2
        results = await asyncio.gather(*queued, return_exceptions=True)
        assert all(type(r) is aq.WalWriterError and "full disk" in str(r) for r in results), results
        fs.fail_writes = False
        assert writer.current_sequence == writer.durable_sequence == 2
        assert await writer.append_next(_body(9)) == 3  # not poisoned; no gap
    assert [e.event for e in read_all(data_dir)] == [_body(0), _body(1), _body(9)]


async def test_a_write_the_buffer_threshold_forces_fails_the_append_that_forced_it(
        data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fs = GateFiles()
    async with aq.aio.WalWriter(data_dir, fs=fs) as writer:
        assert await writer.append_next(_body(0)) == 1
        monkeypatch.setattr(_flush, "MAX_BUFFERED_BYTES", 1)  # every append writes at once
        fs.fail_writes = True
        with pytest.raises(aq.WalWriterError):
            await asyncio.wait_for(writer.append_next(_body(1)), 2)
        fs.fail_writes = False
        assert await writer.append_next(_body(2)) == 2
    assert [e.event for e in read_all(data_dir)] == [_body(0), _body(2)]


async def test_an_append_from_another_event_loop_is_refused_and_takes_nothing(data_dir: Path) -> None:
    async with aq.aio.WalWriter(data_dir) as writer:
        assert await writer.append_next(_body(0)) == 1
        with pytest.raises(RuntimeError, match="event loop"):
            await asyncio.to_thread(asyncio.run, writer.append_next(_body(1)))
        assert writer.current_sequence == 1
        assert await writer.append_next(_body(2)) == 2
    assert [e.event for e in read_all(data_dir)] == [_body(0), _body(2)]


async def test_fsync_durability_fsyncs_per_append_and_none_never(data_dir: Path) -> None:
    fs = GateFiles()
    async with aq.aio.WalWriter(data_dir, durability="fsync", fs=fs) as writer:
        before = fs.calls
        await asyncio.gather(*(writer.append_next(_body(i)) for i in range(10)))
        assert fs.calls - before == 10
    fs = GateFiles()
    async with aq.aio.WalWriter(data_dir, durability=aq.Durability.NONE, fs=fs) as writer:
        before = fs.calls
        await writer.append_many([aq.WalEvent(11 + i, _body(i)) for i in range(5)])
        await writer.append(aq.WalEvent(20, _body(20)))
        assert fs.calls == before and writer.durable_sequence == 10
        await writer.sync()
        assert fs.calls == before + 1 and writer.durable_sequence == 20
    assert [e.sequence for e in read_all(data_dir)] == [*range(1, 16), 20]


async def test_sync_errors_are_the_sync_apis(data_dir: Path) -> None:
    async with aq.aio.WalWriter(data_dir) as writer:
        await writer.append(aq.WalEvent(5, _body(0)))
        with pytest.raises(aq.SequenceViolation):
            await writer.append(aq.WalEvent(5, _body(1)))
        with pytest.raises(TypeError):
            await writer.append(_body(1))  # type: ignore[arg-type]
        assert writer.current_sequence == writer.durable_sequence == 5
    with pytest.raises(aq.WriterClosed):
        await writer.append_next(_body(2))
    with pytest.raises(aq.WriterClosed):
        await aq.aio.WalWriter(data_dir).append_next(_body(2))  # never opened
    async with aq.aio.WalWriter(data_dir) as writer:
        with pytest.raises(aq.WalLocked):
            await aq.aio.WalWriter(data_dir).open()


# -- cancellation ------------------------------------------------------------------------
async def test_cancelled_waiters_leave_whole_durable_records(data_dir: Path) -> None:
    fs = GateFiles()
    async with aq.aio.WalWriter(data_dir, fs=fs) as writer:
        fs.hold()
        tasks = [asyncio.create_task(writer.append_next(_body(i))) for i in range(10)]
        await _wait_entered(fs)  # the first fsync is in flight, held
        await _settle()
        assert writer.current_sequence == 10 and writer.durable_sequence == 0  # all written, none durable
        for task in tasks[::2]:
            task.cancel()
        await _settle()
        fs.release()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, asyncio.CancelledError) for r in results[::2])
        assert results[1::2] == [2, 4, 6, 8, 10]
        assert writer.durable_sequence == 10  # the cancelled ones too: the same fsyncs covered them
        assert await writer.append_next(_body(10)) == 11  # still usable
        never = asyncio.create_task(writer.append_next(_body(11)))
        never.cancel()  # before its first step: nothing written
        with pytest.raises(asyncio.CancelledError):
            await never
        assert writer.current_sequence == 11
    events = read_all(data_dir)  # every record checked (framing, CRC)
    assert [e.sequence for e in events] == list(range(1, 12))
    assert [e.event for e in events] == [_body(i) for i in range(11)]


# -- poisoning ---------------------------------------------------------------------------
async def test_a_failed_fsync_poisons_every_waiter_and_later_appends(data_dir: Path) -> None:
    fs = GateFiles()
    async with aq.aio.WalWriter(data_dir, fs=fs) as writer:
        fs.hold()
        tasks = [asyncio.create_task(writer.append_next(_body(i))) for i in range(10)]
        await _wait_entered(fs)
        await _settle()
        fs.fail_from = fs.calls  # the fsync in flight fails
        fs.release()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, aq.WriterPoisoned) for r in results), results
        assert writer.durable_sequence == 0
        with pytest.raises(aq.WriterPoisoned):
            await writer.append_next(_body(10))
        with pytest.raises(aq.WriterPoisoned):
            await writer.sync()
    with pytest.raises(aq.WriterClosed):
        await writer.append_next(_body(11))


# -- shutdown ----------------------------------------------------------------------------
async def test_close_with_appends_pending_resolves_them(data_dir: Path) -> None:
    fs = GateFiles()
    writer = await aq.aio.WalWriter(data_dir, fs=fs).open()
    fs.hold()
    tasks = [asyncio.create_task(writer.append_next(_body(i))) for i in range(10)]
    await _wait_entered(fs)
    await _settle()
    closing = asyncio.create_task(writer.close())
    await _settle()
    assert not closing.done() and writer.closed
    with pytest.raises(aq.WriterClosed):
        await writer.append_next(_body(10))
    fs.release()
    await closing
    assert await asyncio.gather(*tasks) == list(range(1, 11))
    assert writer.durable_sequence == 10
    await writer.close()  # twice is fine
    assert [e.sequence for e in read_all(data_dir)] == list(range(1, 11))


async def test_a_close_cut_short_by_its_loop_ending_can_be_done_again(data_dir: Path) -> None:
    fs = GateFiles()

    async def cut_short() -> aq.aio.WalWriter:
        writer = await aq.aio.WalWriter(data_dir, fs=fs).open()
        fs.hold()
        for i in range(5):
            asyncio.create_task(writer.append_next(_body(i)))
        await _wait_entered(fs)
        closing = asyncio.create_task(writer.close())
        await _settle()
        closing.cancel()  # a timeout on close, and then asyncio.run ends
        fs.release()
        return writer

    writer = await asyncio.to_thread(asyncio.run, cut_short())
    await writer.close()  # closes the log (and lets go of its lock)
    async with aq.aio.WalWriter(data_dir) as again:
        assert again.durable_sequence == 5
    assert [e.sequence for e in read_all(data_dir)] == list(range(1, 6))


async def test_a_failed_final_fsync_raises_from_close(data_dir: Path) -> None:
    fs = GateFiles()
    writer = await aq.aio.WalWriter(data_dir, durability="none", fs=fs).open()
    await writer.append_next(_body(0))
    fs.fail_from = fs.calls + 1
    with pytest.raises(aq.WriterPoisoned):
        await writer.close()
    assert writer.durable_sequence == 0


# -- the store and its authority -----------------------------------------------------------
@pytest.mark.filterwarnings("ignore::pytest.PytestWarning")  # not a coroutine: the module's mark does not apply
def test_every_command_of_the_authority_is_forwarded() -> None:
    assert command_names() == {name for name, _ in COMMANDS.values()} | {"derive_runs"}
    public = {n for n in dir(aq.MutationAuthority) if not n.startswith("_") and callable(getattr(aq.MutationAuthority, n))}
    assert public - command_names() == {"from_store", "settle", "snapshot", "metrics"}


async def test_authority_end_to_end(data_dir: Path) -> None:
    spec = aq.TaskSpec(aq.TaskId.new(), aq.TaskPayload(b"work"))
    async with aq.aio.open(data_dir, durability="group") as store:
        authority = store.authority
        created = await authority.create_task(spec, timestamp=100)
        assert created.sequence == 1 and store.reducer.get_task(spec.id) == spec
        runs = await authority.derive_runs(spec.id, timestamp=101)
        assert [r.sequence for r in runs] == [2] and store.writer.durable_sequence == 2
        with pytest.raises(aq.AlreadyExists) as rejected:
            await authority.create_task(spec)
        assert store.writer.current_sequence == 2  # nothing written
        await asyncio.gather(*(authority.heartbeat_actor(aq.ActorId.new(), timestamp=102) for _ in range(20)))
        assert store.writer.durable_sequence == 22
        m = store.metrics()  # the fsyncs the loop scheduled are the writer's own, counted there
        assert (m["appends_total"], m["events_total"], m["commands_total"], m["commands_rejected_total"]) == (22, 22, 23, 1)
        assert 1 <= m["fsyncs_total"] <= 22 and m["fsync_seconds"]["count"] == m["fsyncs_total"]
        assert store.authority.metrics()["commands_total"] == 23 and store.writer.metrics()["appends_total"] == 22
    with aq.open(data_dir) as sync_store:
        assert sync_store.report.latest_sequence == 22 and sync_store.reducer.get_task(spec.id) == spec
        with pytest.raises(aq.AlreadyExists) as sync_rejected:
            aq.MutationAuthority.from_store(sync_store).create_task(spec)
    assert type(sync_rejected.value) is type(rejected.value) and sync_rejected.value.kind == rejected.value.kind
    with pytest.raises(aq.WriterClosed):
        await store.authority.create_task(aq.TaskSpec(aq.TaskId.new()))


async def test_a_failed_fsync_poisons_the_authority(data_dir: Path) -> None:
    fs = GateFiles()
    store = await aq.aio.open(data_dir, fs=fs)
    fs.fail_from = fs.calls + 1
    with pytest.raises(aq.WriterPoisoned):
        await store.authority.create_task(aq.TaskSpec(aq.TaskId.new()))
    with pytest.raises(aq.AuthorityPoisoned):
        await store.authority.create_task(aq.TaskSpec(aq.TaskId.new()))
    await store.close()


# -- reading -----------------------------------------------------------------------------
def _follower_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "actionqueue-aio-follow"]


async def test_follow_sees_another_tasks_appends_and_stops_when_cancelled(data_dir: Path) -> None:
    seen: list[int] = []
    got_all = asyncio.Event()

    async def follower() -> None:
        async for event in aq.aio.WalReader(data_dir).follow(poll_interval=0.02):
            seen.append(event.sequence)
            if len(seen) == 30:
                got_all.set()

    async with aq.aio.WalWriter(data_dir) as writer:
        await writer.append_many([aq.WalEvent(i + 1, _body(i)) for i in range(10)])  # a backlog
        following = asyncio.create_task(follower())
        for i in range(10, 30):
            await writer.append_next(_body(i))
        await asyncio.wait_for(got_all.wait(), 30)
        assert seen == list(range(1, 31))
        following.cancel()
        with pytest.raises(asyncio.CancelledError):
            await following
        assert _follower_threads() == []  # its thread ended before the cancellation returned
        async with contextlib.aclosing(aq.aio.WalReader(data_dir, from_sequence=29).follow()) as events:
            assert [e.sequence async for e, _ in zip_n(events, 2)] == [29, 30]
        assert _follower_threads() == []
    assert [e.sequence async for e in aq.aio.WalReader(data_dir)] == list(range(1, 31))


async def zip_n(events, n: int):
    """The first ``n`` items of an async iterator, each paired with its index."""
    i = 0
    async for event in events:
        yield event, i
        i += 1
        if i == n:
            return
