"""A file system that remembers what was made durable, and at a simulated power cut
builds the states a real disk can leave (LevelDB ``FaultInjectionTestEnv``, SQLite
``test6.c``, TigerBeetle ``testing/storage.zig``).

It sits on real files under ``root`` (so reads, maps and locks are the OS's), and keeps a
model beside them:

* per file (by an id of its own, never the inode number, which the OS reuses): the bytes
  its last ``fsync`` made durable;
* per directory: the entries its last directory ``fsync`` made durable, and the ordered
  list of entry operations since (create, rename, unlink, mkdir).

``cut_at=n`` cuts the power just before the n-th mutating operation: the model is frozen
there, that operation and every later one raise :class:`PowerCut` (an ``OSError``, as a
dying disk gives). :meth:`SimFiles.crash_state` then writes one possible post-crash state
into a fresh directory: each directory keeps its durable entries plus a prefix of its
pending operations (metadata is journalled in order), each file its durable bytes plus an
unsynced extension torn at a 512-byte sector boundary (or, after a truncate or rewrite,
the old durable bytes or the new ones).
"""

from __future__ import annotations

import errno
import os
import random
import threading
from dataclasses import dataclass, field
from pathlib import Path

from actionqueue.log.files import Files

SECTOR = 512


class PowerCut(OSError):
    """The power is gone: no operation reaches the disk any more."""

    def __init__(self) -> None:
        super().__init__(errno.EIO, "simulated power cut")


@dataclass
class _Dir:
    durable: dict[str, tuple[str, object]] = field(default_factory=dict)  # name -> ("file", id) | ("dir", key)
    current: dict[str, tuple[str, object]] = field(default_factory=dict)
    pending: list[tuple] = field(default_factory=list)


@dataclass
class Frozen:
    """The model at the cut."""

    dirs: dict[str, _Dir]
    durable: dict[int, bytes]
    current: dict[int, bytes]
    root: str


class SimFiles(Files):
    """See the module docstring. ``cut_at`` None: never cut (count the steps)."""

    def __init__(self, root: Path, cut_at: int | None = None) -> None:
        self.root = str(Path(root).resolve())
        self.cut_at = cut_at
        self.steps = 0
        self.frozen: Frozen | None = None
        self._lock = threading.RLock()
        self._next_id = 0
        self._dirs: dict[str, _Dir] = {}
        self._fds: dict[int, int] = {}  # fd -> file id
        self._paths: dict[str, int] = {}  # current path -> file id
        self._durable: dict[int, bytes] = {}
        self._scan_existing(self.root)

    # -- the model ----------------------------------------------------------------------
    def _scan_existing(self, path: str) -> None:
        d = self._dirs.setdefault(path, _Dir())
        for name in sorted(os.listdir(path)):
            full = os.path.join(path, name)
            if os.path.isdir(full):
                d.durable[name] = d.current[name] = ("dir", full)
                self._scan_existing(full)
            else:
                fid = self._new_id()
                self._paths[full] = fid
                with open(full, "rb") as f:
                    self._durable[fid] = f.read()
                d.durable[name] = d.current[name] = ("file", fid)

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _split(self, path) -> tuple[_Dir | None, str, str]:
        full = os.path.abspath(os.fspath(path))
        parent, name = os.path.split(full)
        return self._dirs.get(parent), name, full

    def _step(self) -> None:
        """Count a mutating operation; at the cut, freeze the model and fail from then on."""
        if self.frozen is not None:
            raise PowerCut()
        self.steps += 1
        if self.cut_at is not None and self.steps >= self.cut_at:
            self.frozen = self._freeze()
            raise PowerCut()

    def _freeze(self) -> Frozen:
        current: dict[int, bytes] = {}
        for path, fid in self._paths.items():
            try:
                with open(path, "rb") as f:
                    current[fid] = f.read()
            except OSError:
                pass
        dirs = {k: _Dir(dict(d.durable), dict(d.current), list(d.pending)) for k, d in self._dirs.items()}
        return Frozen(dirs, dict(self._durable), current, self.root)

    def _entry_op(self, d: _Dir | None, op: tuple) -> None:
        if d is not None:
            d.pending.append(op)

    # -- Files --------------------------------------------------------------------------
    def open(self, path, flags: int, mode: int = 0o644) -> int:
        with self._lock:
            d, name, full = self._split(path)
            creating = bool(flags & os.O_CREAT) and not os.path.exists(full)
            if creating or flags & os.O_TRUNC:
                self._step()
            fd = os.open(full, flags, mode)
            if creating:
                fid = self._new_id()
                self._paths[full] = fid
                self._durable[fid] = b""
                if d is not None:
                    d.current[name] = ("file", fid)
                    self._entry_op(d, ("set", name, ("file", fid)))
            fid = self._paths.get(full)
            if fid is not None:
                self._fds[fd] = fid
            return fd

    def close(self, fd: int) -> None:
        with self._lock:
            self._fds.pop(fd, None)
        os.close(fd)

    def write(self, fd: int, data) -> int:
        with self._lock:
            self._step()
        return os.write(fd, data)

    def fsync(self, fd: int) -> None:
        with self._lock:
            self._step()
            fid = self._fds.get(fd)
            if fid is not None:
                self._durable[fid] = self._read_current(fd, fid)

    def _read_current(self, fd: int, fid: int) -> bytes:
        try:
            size = os.fstat(fd).st_size
            return os.pread(fd, size, 0) if size else b""
        except OSError:  # opened write-only: read it by its name
            path = next(p for p, i in self._paths.items() if i == fid)
            with open(path, "rb") as f:
                return f.read()

    def ftruncate(self, fd: int, length: int) -> None:
        with self._lock:
            self._step()
        os.ftruncate(fd, length)

    def replace(self, src, dst) -> None:
        with self._lock:
            self._step()
            sd, sname, sfull = self._split(src)
            dd, dname, dfull = self._split(dst)
            os.replace(sfull, dfull)
            fid = self._paths.pop(sfull, None)
            if fid is not None:
                self._paths[dfull] = fid
            entry = sd.current.pop(sname, None) if sd is not None else None
            if sd is dd:
                self._entry_op(sd, ("move", sname, dname))
            else:  # across directories: gone here, new there
                self._entry_op(sd, ("del", sname))
                if entry is not None:
                    self._entry_op(dd, ("set", dname, entry))
            if dd is not None and entry is not None:
                dd.current[dname] = entry

    def unlink(self, path) -> None:
        with self._lock:
            self._step()
            d, name, full = self._split(path)
            os.unlink(full)
            self._paths.pop(full, None)
            if d is not None:
                d.current.pop(name, None)
                self._entry_op(d, ("del", name))

    def mkdir(self, path) -> None:
        with self._lock:
            self._step()
            d, name, full = self._split(path)
            os.mkdir(full)
            self._dirs[full] = _Dir()
            if d is not None:
                d.current[name] = ("dir", full)
                self._entry_op(d, ("set", name, ("dir", full)))

    def fsync_dir(self, path) -> None:
        with self._lock:
            self._step()
            d = self._dirs.get(os.path.abspath(os.fspath(path)))
            if d is not None:
                d.durable = _apply(d.durable, d.pending)
                d.pending = []

    # -- after the cut ------------------------------------------------------------------
    def crash_state(self, target: Path, rng: random.Random, mode: str = "random") -> list[str]:
        """Write one post-crash state of the frozen model into ``target`` (which must not
        exist). ``mode``: ``"durable"`` (nothing unsynced survives), ``"all"`` (everything
        written survives, as after SIGKILL), or ``"random"``. Returns what it chose."""
        assert self.frozen is not None, "the power was never cut"
        notes: list[str] = []
        self._build(self.frozen, self.frozen.root, Path(target), rng, mode, notes)
        return notes

    def _build(self, fz: Frozen, key: str, target: Path, rng: random.Random, mode: str, notes: list[str]) -> None:
        target.mkdir()
        d = fz.dirs[key]
        k = {"durable": 0, "all": len(d.pending)}.get(mode, rng.randint(0, len(d.pending)))
        if d.pending:
            notes.append(f"{os.path.relpath(key, fz.root)}: {k}/{len(d.pending)} entry ops")
        for name, (kind, ref) in sorted(_apply(d.durable, d.pending[:k]).items()):
            if kind == "dir":
                self._build(fz, str(ref), target / name, rng, mode, notes)
            else:
                data = _content(fz.durable.get(ref, b""), fz.current.get(ref), rng, mode)  # type: ignore[arg-type]
                (target / name).write_bytes(data)


def _apply(entries: dict, ops: list[tuple]) -> dict:
    out = dict(entries)
    for op in ops:
        if op[0] == "set":
            out[op[1]] = op[2]
        elif op[0] == "del":
            out.pop(op[1], None)
        elif op[0] == "move" and op[1] in out:
            out[op[2]] = out.pop(op[1])
    return out


def _content(durable: bytes, current: bytes | None, rng: random.Random, mode: str) -> bytes:
    """What a file holds after the crash: its durable bytes, plus (unless ``durable``) an
    unsynced extension torn at a sector boundary."""
    if current is None or mode == "durable":
        return durable
    if mode == "all":
        return current
    if current.startswith(durable):
        cuts = [n for n in range(len(durable), len(current)) if n % SECTOR == 0 and n > len(durable)]
        choice = rng.choice([len(durable)] + cuts + [len(current)])
        return current[:choice]
    return durable if rng.random() < 0.5 else current
