"""The file-system seam: every file operation of the log and the snapshots goes through a
:class:`Files` object, the operating system's (:data:`OS`) unless another is passed.

Why a seam: SIGKILL keeps the page cache, so killing a writer proves nothing about power
loss. A test implementation of this interface (``tests/powerloss_fs.py``) remembers per
file and per directory entry what was made durable and, at a simulated power cut, builds
the states a real disk can leave (as LevelDB's ``FaultInjectionTestEnv`` and SQLite's
``test6.c`` do). It also lets the fault tests run where ``/proc`` does not exist.

The methods are the small set the log needs, named after the POSIX calls they make. They
look the ``os`` function up at call time, so a test that monkeypatches ``os.write`` or
``os.fsync`` still reaches every write. :func:`atomic_write` is the one way a file that
must survive a crash is (re)placed; :func:`write_all` the one way bytes are written in
full (a short write is continued, never renamed into place).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Union

from ..errors import SegmentError, WalLocked
from .format import METADATA_BYTES_MAX, TMP_SUFFIX

try:  # POSIX advisory locks; Windows falls back to msvcrt below
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["Files", "OS", "atomic_write", "write_all", "read_fd", "read_small", "open_regular", "check_regular",
           "not_a_regular_file"]

PathLike = Union[str, "os.PathLike[str]"]
_BINARY = getattr(os, "O_BINARY", 0)


class Files:
    """The operating system's files (the default seam). Subclass to inject faults."""

    # -- descriptors --------------------------------------------------------------------
    def open(self, path: PathLike, flags: int, mode: int = 0o644) -> int:
        """``os.open`` (binary on Windows)."""
        return os.open(path, flags | _BINARY, mode)

    def close(self, fd: int) -> None:
        os.close(fd)

    def write(self, fd: int, data) -> int:
        """One ``os.write``: may write fewer bytes than given (see :func:`write_all`)."""
        return os.write(fd, data)

    def pread(self, fd: int, size: int, offset: int) -> bytes:
        """Up to ``size`` bytes at ``offset`` (fewer at the end of the file)."""
        if hasattr(os, "pread"):
            return os.pread(fd, size, offset)
        os.lseek(fd, offset, os.SEEK_SET)  # pragma: no cover - Windows
        return os.read(fd, size)  # pragma: no cover

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def ftruncate(self, fd: int, length: int) -> None:
        os.ftruncate(fd, length)

    def lseek(self, fd: int, pos: int, how: int = os.SEEK_SET) -> int:
        return os.lseek(fd, pos, how)

    def fsize(self, fd: int) -> int:
        return os.fstat(fd).st_size

    def is_regular(self, fd: int) -> bool:
        """Whether ``fd`` is a regular file (not a device, FIFO, socket or directory)."""
        return stat.S_ISREG(os.fstat(fd).st_mode)

    # -- names --------------------------------------------------------------------------
    def replace(self, src: PathLike, dst: PathLike) -> None:
        os.replace(src, dst)

    def unlink(self, path: PathLike) -> None:
        os.unlink(path)

    def listdir(self, path: PathLike) -> list[str]:
        return os.listdir(path)

    def mkdir(self, path: PathLike) -> None:
        os.mkdir(path)

    def exists(self, path: PathLike) -> bool:
        return os.path.exists(path)

    def size(self, path: PathLike) -> int:
        return os.stat(path).st_size

    def fsync_dir(self, path: PathLike) -> None:
        """fsync a directory, so that entries created, renamed or removed in it are durable."""
        if os.name == "nt":  # pragma: no cover - directories cannot be opened on Windows
            return
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- locking ------------------------------------------------------------------------
    def lock(self, directory: PathLike, lock_name: str) -> list[int]:
        """Take the exclusive lock of ``directory`` for this process; return its handles.

        Locks the folder itself (it cannot be deleted while it holds files, and deleting
        the lock *file* then proves nothing), and the lock file inside it, for writers
        that only know the file; then checks that the file locked is still the one under
        that name. Raises :class:`~actionqueue.errors.WalLocked` when another holds it.
        """
        handles: list[int] = []
        try:
            if fcntl is not None and os.name != "nt":
                handles.append(os.open(directory, os.O_RDONLY))
                _flock(handles[-1], directory)
            path = os.path.join(directory, lock_name)
            handles.append(os.open(path, os.O_RDWR | os.O_CREAT | _BINARY, 0o644))
            _flock(handles[-1], directory)
            if os.fstat(handles[-1]).st_ino != os.stat(path).st_ino:
                raise WalLocked(f"{path} was replaced while being locked")
        except BaseException:
            self.unlock(handles)
            raise
        return handles

    def held_by_a_writer(self, directory: PathLike, lock_name: str) -> bool:
        """Whether a writer (of this process or another) holds the lock of ``directory``
        now. A probe for readers: a shared lock on the lock file, taken without waiting and
        dropped at once (a writer starting in that instant is refused with WalLocked, as
        it would be by any writer); a missing lock file means no writer."""
        if fcntl is None or os.name == "nt":  # pragma: no cover - Windows: never taken for live
            return False
        try:
            fd = os.open(os.path.join(directory, lock_name), os.O_RDONLY | _BINARY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:  # pragma: no cover - a file system without flock: cannot tell
            return False
        finally:
            os.close(fd)  # drops the probe's lock
        return False

    def unlock(self, handles: list[int]) -> None:
        while handles:
            os.close(handles.pop())


def _flock(fd: int, directory: PathLike) -> None:
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WalLocked(f"{directory} is locked by another writer") from None
    else:  # pragma: no cover - Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # pyright: ignore[reportAttributeAccessIssue] - Windows only
        except OSError:
            raise WalLocked(f"{directory} is locked by another writer") from None


def _kind_of_file(path: PathLike) -> str:
    try:
        mode = os.stat(path).st_mode
    except OSError:  # pragma: no cover - gone meanwhile
        return "not a regular file"
    kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a character device" if stat.S_ISCHR(mode)
            else "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a directory" if stat.S_ISDIR(mode) else "of an unknown type")
    via = f" (a symbolic link to {os.readlink(path)})" if os.path.islink(path) else ""
    return f"is {kind}{via}"


def not_a_regular_file(path: PathLike) -> SegmentError:
    """The error for a log file that is a device, FIFO, socket or directory (or a link to
    one): never read (a FIFO blocks, ``/dev/zero`` never ends)."""
    return SegmentError(path, 0, "not_a_file",
                        f"the log file {_kind_of_file(path)}, not a regular file: nothing reads it")


def check_regular(fs: "Files", fd: int, path: PathLike) -> None:
    """Raise :func:`not_a_regular_file` (closing ``fd``) unless ``fd`` is a regular file."""
    if not fs.is_regular(fd):
        fs.close(fd)
        raise not_a_regular_file(path)


def open_regular(path: PathLike, fs: "Files", flags: int = os.O_RDONLY) -> int:
    """Open a file of the log: without blocking (a FIFO would block a plain open for
    reading until a writer comes), and only a regular file (:func:`check_regular`)."""
    fd = fs.open(path, flags | getattr(os, "O_NONBLOCK", 0))
    check_regular(fs, fd, path)
    return fd


#: The operating system's files.
OS = Files()


def write_all(fs: Files, fd: int, data) -> None:
    """Write all of ``data`` at the descriptor's position: a short write is continued
    where it stopped; an error is raised with the position after the bytes that made it."""
    view = memoryview(data)
    while view:
        n = fs.write(fd, view)
        if n <= 0:  # pragma: no cover - os.write raises instead
            raise OSError(f"write returned {n}")
        view = view[n:]


#: :func:`atomic_write` syncs a large file every this many bytes.
SYNC_STEP_BYTES = 8 << 20


def atomic_write(path: PathLike, data, fs: Files = OS, *, sync_dir: bool = True) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves the old content or the new,
    never a mix: write ``<path>.tmp`` in full, fsync it, rename it over ``path``, fsync the
    directory (unless ``sync_dir`` is False: the caller syncs it after more renames).

    Never rewrites ``path`` in place, so a reader that has the old file mapped keeps a
    whole file. On failure the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    try:
        fd = fs.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            with memoryview(data) as view:
                # a large file goes out in synced steps: one fsync of 100 MB would hold the
                # disk (and the journal every log fsync waits on) for its whole length
                for at in range(0, max(len(view), 1), SYNC_STEP_BYTES):
                    write_all(fs, fd, view[at : at + SYNC_STEP_BYTES])
                    if at + SYNC_STEP_BYTES < len(view):
                        fs.fsync(fd)
            fs.fsync(fd)
            assert fs.fsize(fd) == len(data), "the temporary file is not what was written"
        finally:
            fs.close(fd)
        fs.replace(tmp, path)
    except BaseException:
        try:
            fs.unlink(tmp)
        except OSError:
            pass
        raise
    if sync_dir:
        fs.fsync_dir(path.parent)


def read_fd(fs: Files, fd: int, offset: int = 0, size: int | None = None) -> bytes:
    """``size`` bytes (all to the end by default) from ``offset``, in as many reads as it
    takes; fewer only when the file ends first."""
    if size is None:
        size = max(0, fs.fsize(fd) - offset)
    parts = []
    while size > 0:
        chunk = fs.pread(fd, min(size, 1 << 30), offset)
        if not chunk:
            break
        parts.append(chunk)
        offset += len(chunk)
        size -= len(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def read_small(path: PathLike, fs: Files = OS, limit: int = METADATA_BYTES_MAX) -> bytes:
    """The whole of a small metadata file (a seal, MANIFEST, CHECKPOINT), refusing one above
    ``limit`` bytes with ``ValueError`` (damage: never read a huge file into memory)."""
    fd = fs.open(path, os.O_RDONLY)
    try:
        size = fs.fsize(fd)
        if size > limit:
            raise ValueError(f"{path} is {size} bytes, above the {limit}-byte limit of a metadata file")
        data = read_fd(fs, fd, 0, size)
        assert len(data) <= size
        return data
    finally:
        fs.close(fd)
