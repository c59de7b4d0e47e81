"""Crash tests of the WAL writer: real processes, real kills, real kernel errors.

* SIGKILL loop (RocksDB ``db_crashtest.py`` blackbox style, reliability.md technique 6):
  a worker appends with fsync (or group commit from several threads) and reports every
  acknowledged sequence on a pipe; the parent kills it at a random moment, reopens with
  TRUNCATE_PARTIAL and checks that every acknowledged event is present and intact, that
  nothing follows that the worker did not write, and that appends continue from the
  right sequence (the "post-repair appends survive the next recovery" check of etcd's
  repair tests: each round appends after the repair and the next round re-reads it).
  Workers are forked from one server process (``crash_child.py``) so a round costs a
  fork, not an interpreter start. The seed is printed; set WAL_CRASH_SEED to replay the
  parent's choices (kill timing still depends on scheduling).
* Full disk: ``RLIMIT_FSIZE`` in a child (SIGXFSZ ignored) gives real short writes and
  EFBIG from the kernel; a small tmpfs (when it can be mounted) gives real ENOSPC.
"""

from __future__ import annotations

import errno
import functools
import itertools
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from wal_testlib import LAYOUTS, intact, log_files, make_event, read_all, tagged_event

import actionqueue as aq
from actionqueue import wal

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform != "linux", reason="needs Linux fork/kill")

CHILD = Path(__file__).resolve().parent / "crash_child.py"
SEED = int(os.environ.get("WAL_CRASH_SEED", random.randrange(1 << 30)))
KW = dict(LAYOUTS)


class ForkServer:
    """The parent side of ``crash_child.py server``."""

    def __init__(self):
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), "server"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0
        )
        self.fd = self.proc.stdout.fileno()
        self.buf = b""

    def send(self, line: str) -> None:
        self.proc.stdin.write((line + "\n").encode())

    def readline(self, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise TimeoutError(f"no line from the crash server within {timeout}s (have {self.buf[-200:]!r})")
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise EOFError(f"crash server exited ({self.proc.poll()}); last output {self.buf[-500:]!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def close(self) -> None:
        try:
            self.send("quit")
            self.proc.stdin.close()
            self.proc.wait(10)
        except Exception:  # noqa: BLE001
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def server():
    srv = ForkServer()
    yield srv
    srv.close()


class Round:
    def __init__(self):
        self.pid = None
        self.ready = None
        self.acks: list[int] = []
        self.errors: list[str] = []
        self.status = None

    def feed(self, line: str) -> None:
        word, _, rest = line.partition(" ")
        if word == "pid":
            self.pid = int(rest)
        elif word == "ready":
            self.ready = int(rest)
        elif word == "ack":
            self.acks.extend(int(s) for s in rest.split())
        elif word == "exit":
            self.status = int(rest.split()[1])
        else:
            self.errors.append(line)


def crash_round(server: ForkServer, data_dir: Path, durability: str, threads: int, salt: int, big: int,
                api: str, kw: dict, rng: random.Random, max_delay: float) -> Round:
    server.send(f"run {data_dir} {durability} {threads} {salt} {int(big)} {api} {json.dumps(kw)}")
    r = Round()
    early = rng.random() < 0.1  # sometimes kill during open / repair
    while r.pid is None or (r.ready is None and not early and not r.errors):
        r.feed(server.readline())
    time.sleep(rng.uniform(0, 0.003) if early else rng.uniform(0, max_delay))
    os.kill(r.pid, signal.SIGKILL)
    server.send("reap")
    while r.status is None:
        r.feed(server.readline())
    return r


class DirState:
    """What the parent knows about one data dir across rounds."""

    def __init__(self, path: Path, salt: int, big: int, api: str):
        self.path = path
        self.salt = salt
        self.big = big
        self.api = api
        self.acked: set[int] = set()
        self.expected_ready: int | None = None
        self.rounds = 0
        self.expected = functools.lru_cache(maxsize=None)(lambda s: make_event(s, salt, big))

    def intact(self, e) -> bool:
        return intact(e, self.salt, self.big) if self.api == "next" else e == self.expected(e.sequence)


def verify_and_extend(st: DirState, kw: dict, contiguous: bool, where: str) -> bool:
    """Reopen with TRUNCATE_PARTIAL, check the log, append one event; True if it repaired."""
    with wal.WalWriter(st.path, repair_policy=wal.RepairPolicy.TRUNCATE_PARTIAL, durability=wal.Durability.FSYNC, **kw) as w:
        got = read_all(st.path)
        seqs = [e.sequence for e in got]
        assert all(a < b for a, b in itertools.pairwise(seqs)), f"{where}: sequences not increasing"
        if contiguous:
            assert seqs == list(range(1, len(seqs) + 1)), f"{where}: a hole in {seqs[:3]}..{seqs[-3:]}"
        wrong = [e.sequence for e in got if not st.intact(e)]
        assert not wrong, f"{where}: events differ from what was written at {wrong[:5]}"
        missing = sorted(st.acked - set(seqs))
        assert not missing, f"{where}: acknowledged events lost: {missing[:10]} (log ends at {seqs[-1:]})"
        assert w.current_sequence == (seqs[-1] if seqs else 0), where
        if seqs:
            with pytest.raises(wal.SequenceViolation):
                w.append(st.expected(seqs[-1]))
        nxt = w.current_sequence + 1
        if st.api == "next":
            assert w.append_next(tagged_event(f"parent.{nxt}")) == nxt
        else:
            w.append(st.expected(nxt))
        st.acked.add(nxt)
        assert w.current_sequence == nxt
        st.expected_ready = nxt
        repaired = w.repaired is not None
    assert wal.validate_file(log_files(st.path)[-1]).clean, where
    return repaired


def crash_loop(server, tmp_path, *, rounds: int, durability: str, threads: int, kw: dict, big: int,
               max_delay: float, seed: int, dir_bytes: int = 8 << 20, api: str = "append") -> dict:
    rng = random.Random(seed)
    stats = {"rounds": 0, "repaired": 0, "acks": 0, "early": 0, "dirs": 0}
    st = None
    for i in range(rounds):
        if st is None or st.rounds >= 60 or sum(p.stat().st_size for p in log_files(st.path)) > dir_bytes:
            if st is not None:
                shutil.rmtree(st.path)
            stats["dirs"] += 1
            d = tmp_path / f"d{i}"
            d.mkdir()
            st = DirState(d, salt=rng.randrange(1 << 20), big=big, api=api)
        where = f"seed {seed} round {i} dir {st.path.name}"
        r = crash_round(server, st.path, durability, threads, st.salt, st.big, api, kw, rng, max_delay)
        assert not r.errors, f"{where}: worker failed: {r.errors}"
        assert os.WIFSIGNALED(r.status) and os.WTERMSIG(r.status) == signal.SIGKILL, f"{where}: status {r.status}"
        if r.ready is None:
            stats["early"] += 1
        elif st.expected_ready is not None:
            assert r.ready == st.expected_ready, f"{where}: worker reopened at {r.ready}, not {st.expected_ready}"
        if threads <= 1 and r.acks:
            assert r.acks == list(range(r.acks[0], r.acks[-1] + 1))
        st.acked.update(r.acks)
        stats["acks"] += len(r.acks)
        stats["repaired"] += verify_and_extend(st, kw, contiguous=threads <= 1 or api == "next", where=where)
        st.rounds += 1
        stats["rounds"] += 1
    print(f"crash loop seed={seed}: {stats}")
    return stats


FSYNC_LAYOUTS = [name for name in ("rust", "segmented", "seg-small", "default") if name in KW]


@pytest.mark.parametrize("kills", [120, pytest.param(600, marks=pytest.mark.slow)])
@pytest.mark.parametrize("layout", FSYNC_LAYOUTS)
def test_sigkill_fsync_appends(server, tmp_path, layout, kills) -> None:
    """``kills`` in all (40 or 200 per layout) of a single-threaded fsync appender writing
    records of 15 B .. 1.5 MiB (so kills land inside write(2) and tear records)."""
    rounds = kills // len(FSYNC_LAYOUTS)
    stats = crash_loop(server, tmp_path, rounds=rounds, durability="fsync", threads=1, kw=KW[layout],
                       big=1, max_delay=0.025, seed=SEED)
    assert stats["acks"] > rounds  # the kills did not all land before the first append
    assert stats["rounds"] == rounds


GROUP_LAYOUTS = [name for name in ("segmented", "seg-small", "default") if name in KW]


APIS = ["append", "next"] if hasattr(wal.WalWriter, "append_next") else ["append"]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("threads", [4])
@pytest.mark.parametrize("layout", GROUP_LAYOUTS)
def test_sigkill_group_commit(server, tmp_path, layout, threads, api) -> None:
    """Group commit from several threads of the worker, each choosing sequences (gaps from
    overtaken ones are allowed) or taking them from ``append_next`` (no gaps): lost
    acknowledgements are never allowed."""
    rounds = 120 // len(GROUP_LAYOUTS) // len(APIS) + 10
    stats = crash_loop(server, tmp_path, rounds=rounds, durability="group", threads=threads, kw=KW[layout],
                       big=0, max_delay=0.02, seed=SEED + 1, api=api)
    assert stats["acks"] > rounds


@pytest.mark.parametrize("durability", [pytest.param("fsync", marks=pytest.mark.slow), "none"])
def test_sigkill_tears_records(server, tmp_path, durability) -> None:
    """The loops above are only worth something if kills do tear records: with half the
    records 0.2-1.5 MiB, some kills land inside write(2) and the next open must repair.
    A process kill (not a power loss) must not lose a returned append even without fsync."""
    kw = KW.get("segmented", KW.get("default", {}))
    rounds = {"fsync": 100, "none": 60}[durability]  # tears in ~8% / ~20% of the rounds
    stats = crash_loop(server, tmp_path, rounds=rounds, durability=durability, threads=1, kw=kw, big=2,
                       max_delay=0.03, seed=SEED + 2, dir_bytes=32 << 20)
    assert stats["repaired"] > 0, stats


# --------------------------------------------------------------------------------------
# Full disk
# --------------------------------------------------------------------------------------
def record_size(event) -> int:
    return len(aq.encode(event))


@pytest.mark.parametrize("layout", [n for n in ("rust", "segmented", "default") if n in KW])
def test_file_size_limit_efbig(tmp_path, layout) -> None:
    """RLIMIT_FSIZE: the kernel writes up to the limit (a short write) and then fails with
    EFBIG. The writer must raise, undo the partial record, stay usable, and lose nothing
    acknowledged."""
    salt = 7
    # the limit falls 50 bytes into a record of >= 300 bytes, after at least 10 records
    sizes = [record_size(make_event(s, salt)) for s in range(1, 400)]
    k = next(i for i in range(10, len(sizes)) if sizes[i] >= 300)
    full = sum(sizes[:k])
    limit = full + 50
    out = subprocess.run(
        [sys.executable, str(CHILD), "fsize", str(tmp_path), str(limit), str(salt), json.dumps(KW[layout])],
        check=False, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    acks = [tuple(map(int, l.split()[1:])) for l in lines if l.startswith("ack ")]
    fails = [l.split()[1:] for l in lines if l.startswith("fail ")]
    states = [tuple(map(int, l.split()[1:])) for l in lines if l.startswith("state ")]
    assert [seq for seq, tiny in acks if not tiny] == list(range(1, k + 1)), lines
    assert fails[0] == ["WalWriterError", str(errno.EFBIG)], lines
    assert fails[1] == ["WalWriterError", str(errno.EFBIG)], lines
    # after each failure the file is back at its previous length, the writer agrees
    assert states[0] == (full, full, k) and states[1] == (full, full, k), lines
    tiny = [seq for seq, t in acks if t]
    assert tiny == list(range(k + 1, k + 1 + len(tiny)))
    tiny_bytes = sum(record_size(aq.WalEvent(s, aq.EnginePaused(s))) for s in tiny)
    assert tiny, "a small event that fits must still be appended after a failure"
    assert states[2][0] == states[2][1] == full + tiny_bytes <= limit, lines
    # nothing acknowledged is lost, nothing else is there
    expected = [make_event(s, salt) for s in range(1, k + 1)] + [aq.WalEvent(s, aq.EnginePaused(s)) for s in tiny]
    with wal.WalWriter(tmp_path, repair_policy=wal.RepairPolicy.STRICT, **KW[layout]) as w:
        assert w.repaired is None and w.current_sequence == expected[-1].sequence
        assert read_all(tmp_path) == expected


@pytest.fixture
def small_tmpfs(tmp_path):
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)],
                         check=False, capture_output=True, text=True, timeout=10)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], check=False, capture_output=True, timeout=10).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], check=False, capture_output=True, timeout=10)


@pytest.mark.parametrize("layout", [n for n in ("rust", "segmented", "seg-small", "default") if n in KW])
def test_full_tmpfs_enospc(small_tmpfs, layout) -> None:
    """A real ENOSPC: append until the 512 KiB tmpfs is full, check the failure left only
    whole records, free space, and check the writer carries on (or, if the failure
    poisoned it, that a reopen does) with every acknowledged event."""
    data = small_tmpfs / "data"
    data.mkdir()
    filler = small_tmpfs / "filler"
    filler.write_bytes(b"\0" * (400 << 10))
    salt = 11
    acked = []
    w = wal.WalWriter(data, repair_policy=wal.RepairPolicy.STRICT, durability=wal.Durability.FSYNC, **KW[layout])
    failure = None
    for seq in range(1, 100_000):
        try:
            w.append(make_event(seq, salt))
        except wal.WalWriterError as exc:
            failure = exc
            break
        acked.append(seq)
    assert failure is not None and acked
    cause = failure.__cause__
    assert isinstance(cause, OSError) and cause.errno == errno.ENOSPC, repr(failure)
    files = log_files(data)
    if not isinstance(failure, wal.WriterPoisoned):
        # undone: the active file holds whole records only, as long as the writer says
        assert os.stat(w.path).st_size == w.size
        assert w.current_sequence == acked[-1]
        for f in files:
            assert wal.validate_file(f).clean
    filler.unlink()
    if isinstance(failure, wal.WriterPoisoned):
        with pytest.raises(wal.WriterPoisoned):
            w.append(make_event(acked[-1] + 1, salt))
        w.close()
        w = wal.WalWriter(data, repair_policy=wal.RepairPolicy.TRUNCATE_PARTIAL, durability=wal.Durability.FSYNC, **KW[layout])
        assert w.current_sequence >= acked[-1]
    nxt = w.current_sequence + 1
    w.append(make_event(nxt, salt))  # usable again once there is space
    acked.append(nxt)
    w.close()
    got = read_all(data)
    assert all(e == make_event(e.sequence, salt) for e in got)
    if isinstance(failure, wal.WriterPoisoned):  # the unacknowledged append may be there
        assert set(acked) <= {e.sequence for e in got}
    else:
        assert [e.sequence for e in got] == acked
    print(f"tmpfs full after {len(acked) - 1} appends: {failure!r}")
