"""Helpers of the WAL crash, fault-injection and sweep tests.

* ``make_event(seq, salt)``: a deterministic event per sequence number (varied kinds and
  sizes), so a test (or the parent of a crash child) can tell an intact record from a
  damaged or foreign one without keeping the events it wrote.
* ``LAYOUTS``: writer keyword sets covering the log layouts the package offers (the
  Rust single file, segments, segments small enough to rotate every few records).
* ``OsFaults``: patches ``os.write``/``pwrite``/``writev``/``fsync``/``fdatasync``/
  ``ftruncate`` for file descriptors of files under one directory: counts calls and
  fails chosen ones (one-shot or persistent, short writes, errno of choice).
* ``PowerLoss``: remembers every file's content as of its last successful fsync and, on
  ``crash()``, rewrites the files to that content plus a random part of what was not yet
  synced, optionally followed by zeros or garbage (SQLite ``test6.c`` / LevelDB
  ``FaultInjectionEnv`` style). Seeded, reproducible from one integer.
* ``record_ends(path)``: the end offset and sequence of every whole record of a log file,
  from the framing alone (independent of the package's walker).
"""

from __future__ import annotations

import collections
import errno as errno_mod
import os
import random
import stat
import struct
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import actionqueue as aq
from actionqueue import wal

HEADER = struct.Struct("<III")

# --------------------------------------------------------------------------------------
# Layouts
# --------------------------------------------------------------------------------------
HAS_LAYOUT = hasattr(wal, "Layout")


def _layouts() -> list[tuple[str, dict]]:
    if not HAS_LAYOUT:
        return [("default", {})]
    return [
        ("rust", {"layout": "rust"}),
        ("segmented", {"layout": "segmented"}),
        # rotates every few records: exercises sealing and the segment boundary
        ("seg-small", {"layout": "segmented", "segment_bytes": 4096}),
    ]


LAYOUTS = _layouts()
LAYOUT_IDS = [name for name, _ in LAYOUTS]
LAYOUT_KW = [kw for _, kw in LAYOUTS]


# --------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------
S = aq.RunState


BIG_SHARE = {0: 0.0, 1: 0.06, 2: 0.5}


def make_event(seq: int, salt: int = 0, big: int = 0) -> aq.WalEvent:
    """The event the tests write at ``seq``: a function of (seq, salt, big) only.

    Sizes vary from a ~15-byte record to tens of KiB; with ``big`` = 1 (2), 6% (50%) of
    the records are 0.2-1.5 MiB, so that a kill or a cut lands in the header, in the
    payload, or between records, and a kill often lands inside a write(2).
    """
    rng = random.Random(seq * 1_000_003 + salt)
    roll = rng.random()
    ts = 1_700_000_000 + seq
    run_id = aq.RunId(uuid.UUID(int=rng.getrandbits(128)))
    if roll < BIG_SHARE[int(big)]:
        event = _task_created(rng, ts, rng.randrange(200_000, 1_500_000))
    elif roll < 0.25:
        event = aq.EnginePaused(ts) if rng.random() < 0.5 else aq.EngineResumed(ts)
    elif roll < 0.45:
        event = aq.RunStateChanged(run_id, S.READY, S.LEASED, ts)
    elif roll < 0.80:
        owner = "w" * rng.randrange(0, 300)
        event = aq.LeaseAcquired(run_id, owner, ts + 30, ts)
    elif roll < 0.95:
        event = aq.AttemptFinished(run_id, aq.AttemptId(uuid.UUID(int=rng.getrandbits(128))),
                                   aq.AttemptResultKind.SUCCESS, None, rng.randbytes(rng.randrange(0, 2000)), ts)
    else:
        event = _task_created(rng, ts, rng.randrange(2_000, 40_000))
    return aq.WalEvent(seq, event)


def _task_created(rng: random.Random, ts: int, size: int) -> aq.TaskCreated:
    spec = aq.TaskSpec(
        id=aq.TaskId(uuid.UUID(int=rng.getrandbits(128))),
        payload=aq.TaskPayload(_filler(rng.getrandbits(64), size), "application/octet-stream"),
        run_policy=aq.OncePolicy(),
        constraints=aq.TaskConstraints(max_attempts=3, timeout_secs=60),
        metadata=aq.TaskMetadata(tags=("crash",), priority=seq_priority(ts)),
    )
    return aq.TaskCreated(spec, ts)


def _filler(word: int, size: int) -> bytes:
    """``size`` bytes that depend on ``word``, cheaply (so a crash worker spends its time
    writing, not generating)."""
    unit = word.to_bytes(8, "little")
    return (unit * (size // 8 + 1))[:size]


def seq_priority(ts: int) -> int:
    return ts % 7


def tagged_event(tag: str) -> aq.Event:
    """An event for ``WalWriter.append_next`` (which assigns the sequence): its content is
    a function of ``tag``, which it carries, so a reader can check it without knowing
    which sequence it got."""
    rng = random.Random(tag)
    owner = f"tag:{tag}|" + "t" * (rng.randrange(0, 3000) if rng.random() < 0.2 else rng.randrange(0, 40))
    return aq.LeaseAcquired(aq.RunId(uuid.UUID(int=rng.getrandbits(128))), owner, rng.getrandbits(40), 1_700_000_000)


def intact(e: aq.WalEvent, salt: int = 0, big: int = 0) -> bool:
    """Whether ``e`` is exactly what a test wrote: ``make_event(e.sequence, salt, big)``, or
    a ``tagged_event`` (any sequence)."""
    ev = e.event
    if isinstance(ev, aq.LeaseAcquired) and ev.owner.startswith("tag:"):
        return ev == tagged_event(ev.owner[4:].split("|", 1)[0])
    return e == make_event(e.sequence, salt, big)


def events(first: int, last: int, salt: int = 0, big: int = 0) -> list[aq.WalEvent]:
    return [make_event(s, salt, big) for s in range(first, last + 1)]


def read_all(data_dir) -> list:
    return list(wal.WalReader(data_dir))


def log_bytes(data_dir) -> dict[str, bytes]:
    """Every file under ``<data_dir>/wal`` and its content (to compare before/after)."""
    out = {}
    wal_dir = Path(data_dir) / "wal"
    for p in sorted(wal_dir.iterdir()) if wal_dir.is_dir() else ():
        if p.is_file():
            out[p.name] = p.read_bytes()
    return out


def log_files(data_dir) -> list[Path]:
    """The files holding records, oldest first (public helper if the package has one)."""
    if hasattr(wal, "log_files"):
        return list(wal.log_files(data_dir))
    return [Path(data_dir) / "wal" / wal.RUST_WAL_NAME]


def record_ends(path) -> list[tuple[int, int, int]]:
    """(start, end, sequence) of each whole record of a clean log file, from the framing."""
    data = Path(path).read_bytes()
    out = []
    pos = 0
    while pos + 12 <= len(data):
        _version, length, _crc = HEADER.unpack_from(data, pos)
        end = pos + 12 + length
        if end > len(data):
            break
        out.append((pos, end, aq.decode(data[pos:end]).sequence))
        pos = end
    return out


# --------------------------------------------------------------------------------------
# OS-level fault injection
# --------------------------------------------------------------------------------------
def os_error(err: int) -> OSError:
    return OSError(err, os.strerror(err))


def fd_path(fd: int) -> str | None:
    """The path of an open file descriptor (Linux ``/proc``, macOS ``F_GETPATH``)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        pass
    try:
        import fcntl

        if hasattr(fcntl, "F_GETPATH"):
            return os.path.realpath(fcntl.fcntl(fd, fcntl.F_GETPATH, bytes(1024)).split(b"\0", 1)[0].decode())
    except (ImportError, OSError):
        pass
    return None


def can_map_fds(tmp_dir) -> bool:
    """Whether ``fd_path`` works here (fault injection needs it)."""
    probe = os.path.join(tmp_dir, ".fd-probe")
    fd = os.open(probe, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        return fd_path(fd) == os.path.realpath(probe)
    finally:
        os.close(fd)
        os.unlink(probe)


class _Rule:
    def __init__(self, op, action, nth, times, where):
        self.op, self.action, self.nth, self.times, self.where = op, action, nth, times, where
        self.seen = 0
        self.fired = 0


class OsFaults:
    """Counts and fails OS calls on files under ``root`` (patched through ``monkeypatch``).

    ``on(op, action, nth=1, times=1)``: the ``nth`` matching call of ``op`` from now on (and
    the ``times - 1`` after it; ``times=None`` = every one) runs ``action(real, fd, *args)``
    instead of the real call. ``op`` is ``write`` (covers write/pwrite/writev), ``fsync``
    (fsync/fdatasync) or ``ftruncate``. ``where(path)`` narrows the files (default: regular
    files only, so directory fsyncs are counted separately as ``dir_fsync``).
    """

    OPS: ClassVar[dict[str, str]] = {"write": "write", "pwrite": "write", "writev": "write",
           "fsync": "fsync", "fdatasync": "fsync", "ftruncate": "ftruncate"}

    def __init__(self, monkeypatch, root):
        self.root = os.path.realpath(root)
        self.lock = threading.RLock()
        self.calls: collections.Counter = collections.Counter()
        self.log: list[tuple[str, str]] = []  # (op, path) of every call on our files
        self.rules: list[_Rule] = []
        self.before_fsync: Callable | None = None  # hook(fd, path) before a real fsync
        self.after_fsync: Callable | None = None  # hook(fd, path) after a successful one
        for name, op in self.OPS.items():
            real = getattr(os, name, None)
            if real is not None:
                monkeypatch.setattr(os, name, self._wrap(name, op, real))

    def path_of(self, fd: int) -> str | None:
        p = fd_path(fd)
        return p if p is not None and (p.startswith(self.root + os.sep) or p == self.root) else None

    def on(self, op: str, action: Callable, *, nth: int = 1, times: int | None = 1,
           where: Callable[[str], bool] | None = None) -> _Rule:
        rule = _Rule(op, action, nth, times, where)
        with self.lock:
            self.rules.append(rule)
        return rule

    def fail(self, op: str, err: int = errno_mod.EIO, **kw) -> _Rule:
        def action(real, fd, *args):
            raise os_error(err)
        return self.on(op, action, **kw)

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def count(self, op: str) -> int:
        return self.calls[op]

    def _wrap(self, name: str, op: str, real):
        faults = self

        def wrapper(fd, *args):
            path = faults.path_of(fd)
            if path is None:
                return real(fd, *args)
            try:
                is_dir = stat.S_ISDIR(os.fstat(fd).st_mode)
            except OSError:
                is_dir = False
            kind = "dir_" + op if is_dir else op
            rule = None
            with faults.lock:
                faults.calls[kind] += 1
                faults.log.append((kind, path))
                for r in faults.rules:
                    if r.op != kind or (r.where is not None and not r.where(path)):
                        continue
                    if r.times is not None and r.fired >= r.times:
                        continue
                    r.seen += 1
                    if r.seen >= r.nth:
                        r.fired += 1
                        rule = r
                        break
            if op == "fsync" and not is_dir and faults.before_fsync is not None:
                faults.before_fsync(fd, path)
            if rule is not None:
                return rule.action(real, fd, *args)
            result = real(fd, *args)
            if op == "fsync" and not is_dir and faults.after_fsync is not None:
                faults.after_fsync(fd, path)
            return result

        wrapper.__name__ = name
        return wrapper


def short_write_then(err: int, nbytes: int | Callable[[int], int]):
    """A write action: really write the first ``nbytes`` (or ``nbytes(len)``) bytes and
    return that short count; a second rule should fail the next call with ``err``."""

    def action(real, fd, data, *rest):
        n = nbytes(len(data)) if callable(nbytes) else min(nbytes, len(data))
        return real(fd, bytes(memoryview(data)[:n]), *rest)

    return action


# --------------------------------------------------------------------------------------
# Power loss
# --------------------------------------------------------------------------------------
class PowerLoss:
    """Power is lost just before the ``nth`` fsync of a file (or at ``cut_now()``).

    Installs fsync hooks on ``faults``: the content a file had when an fsync *started* is
    what that fsync makes durable, recorded per inode when the fsync succeeds (and only
    before the cut). ``ack(seqs)`` records acknowledged sequences; ``acked_at_cut`` is
    what had been acknowledged when the power went. ``crash(rng)`` then rewrites the
    files to a state that power loss can leave (content model; directory entries made
    before the cut are taken as durable):

    * files created after the cut vanish, renames made after it are undone;
    * each file keeps its synced content plus a random prefix of what was written before
      the cut but not synced (partial write-back), sometimes followed by zeros
      (preallocated blocks) or random garbage (a torn sector).
    """

    def __init__(self, faults: OsFaults, nth: int | None = None):
        self.faults = faults
        self.nth = nth
        self.synced: dict[int, bytes] = {}
        self.lock = threading.RLock()
        self.local = threading.local()
        self.fsyncs = 0
        self.acked: set[int] = set()
        self.acked_at_cut: set[int] | None = None
        self.at_cut: dict[int, tuple[str, int]] | None = None
        faults.before_fsync = self._before
        faults.after_fsync = self._after

    def _before(self, fd: int, path: str) -> None:
        with self.lock:
            self.fsyncs += 1
            if self.fsyncs == self.nth:
                self.cut_now()
        with open(path, "rb") as f:
            self.local.content = (os.fstat(fd).st_ino, f.read())

    def _after(self, fd: int, path: str) -> None:
        ino, content = self.local.content
        with self.lock:
            if self.at_cut is None:
                self.synced[ino] = content

    def ack(self, seqs) -> None:
        with self.lock:
            self.acked.update(seqs)

    def cut_now(self) -> None:
        with self.lock:
            if self.at_cut is not None:
                return
            self.acked_at_cut = set(self.acked)
            self.at_cut = {}
            for dirpath, _dirs, files in os.walk(self.faults.root):
                for name in files:
                    p = os.path.join(dirpath, name)
                    st = os.stat(p)
                    self.at_cut[st.st_ino] = (p, st.st_size)

    def crash(self, rng: random.Random) -> list[str]:
        """Apply the power loss (call once the writer is closed); returns what it did."""
        assert self.at_cut is not None, "no cut yet"
        notes = []
        for dirpath, _dirs, files in os.walk(self.faults.root):
            for name in files:
                p = os.path.join(dirpath, name)
                st = os.stat(p)
                if st.st_ino not in self.at_cut:
                    os.unlink(p)
                    notes.append(f"{name}: created after the cut, gone")
                    continue
                old_path, size = self.at_cut[st.st_ino]
                data = Path(p).read_bytes()[:size]
                synced = self.synced.get(st.st_ino, b"")
                if data.startswith(synced):
                    extra = data[len(synced):]
                    new = synced + extra[: rng.randrange(0, len(extra) + 1)]
                    if extra and rng.random() < 0.3:
                        n = rng.randrange(1, 600)
                        new += bytes(n) if rng.random() < 0.5 else rng.randbytes(n)
                else:  # cut shorter after its last fsync (and before the power cut)
                    new = synced if rng.random() < 0.5 else data
                notes.append(f"{name}: {st.st_size} -> {len(new)} (synced {len(synced)}, at cut {size})")
                Path(p).write_bytes(new)
                if p != old_path:
                    os.replace(p, old_path)
                    notes.append(f"{name}: renamed back to {os.path.basename(old_path)}")
        return notes


def run_threads(n: int, target: Callable[[int], None], timeout: float = 60.0) -> list[BaseException]:
    """Run ``target(i)`` in ``n`` threads; return the exceptions they raised. Fails if
    a thread is still running after ``timeout`` (a hang)."""
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(i):
        try:
            target(i)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    alive = [t for t in threads if t.is_alive()]
    assert not alive, f"{len(alive)} thread(s) still running after {timeout}s (hang)"
    return errors


class SeqAllocator:
    """Hands out increasing sequences to concurrent appenders.

    The writer decides the order of concurrent appends internally, so a thread whose
    sequence was overtaken gets SequenceViolation (nothing written) and retries with a
    fresh sequence; the lost one becomes a gap (allowed).
    """

    def __init__(self, start: int):
        self.next = start
        self.lock = threading.Lock()
        self.retries = 0

    def take(self) -> int:
        with self.lock:
            seq = self.next
            self.next += 1
            return seq

    def append(self, writer, salt: int = 0, big: int = 0, make: Callable = make_event) -> int:
        while True:
            seq = self.take()
            try:
                writer.append(make(seq, salt, big))
                return seq
            except wal.SequenceViolation:
                with self.lock:
                    self.retries += 1
