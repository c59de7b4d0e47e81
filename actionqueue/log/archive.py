"""Where retention moves the log's old segments: a small interface, one implementation per
kind of store (the shape of Litestream's replica client: list ranges, put, get, delete).

:class:`LocalArchive` keeps them in a directory. An object-storage archive implements the
same four methods; ``tests/test_archive.py`` is the conformance suite every archive passes.
An archived segment is its file and its seal, put under the segment's own name; a put is
complete (written, synced, renamed) before retention removes anything from the log.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from ..errors import ArchiveError
from .files import OS, Files, atomic_write, read_small

__all__ = ["Archive", "ArchiveError", "ArchivedSegment", "LocalArchive"]


@dataclass(frozen=True, order=True)
class ArchivedSegment:
    """One segment in an archive: its sequences and its name (the segment file's)."""

    first_sequence: int
    last_sequence: int
    name: str


@runtime_checkable
class Archive(Protocol):
    """Storage for segments retention removes from a log."""

    def ranges(self) -> list[ArchivedSegment]:
        """Every archived segment, in sequence order."""
        ...

    def put(self, name: str, first_sequence: int, last_sequence: int, segment: Path, seal: Path) -> None:
        """Store a sealed segment and its seal, durably, before it leaves the log."""
        ...

    def get(self, name: str, directory: Path) -> tuple[Path, Path]:
        """Copy segment ``name`` and its seal into ``directory``; their paths."""
        ...

    def delete(self, name: str) -> None:
        """Forget segment ``name`` (nothing when it is not there)."""
        ...


_SEAL_SUFFIX = ".seal"
_RANGE_SUFFIX = ".range"


class LocalArchive:
    """An archive in a local directory: ``NAME``, ``NAME.seal`` and ``NAME.range`` (the
    sequences, written last: a put without it is incomplete and ignored)."""

    def __init__(self, directory: str | os.PathLike, fs: Files = OS) -> None:
        self.directory = Path(directory)
        self.fs = fs

    def __repr__(self) -> str:
        return f"LocalArchive({str(self.directory)!r})"

    def ranges(self) -> list[ArchivedSegment]:
        if not self.directory.is_dir():
            return []
        out = []
        for entry in sorted(self.directory.iterdir()):
            if entry.name.endswith(_RANGE_SUFFIX):
                try:
                    first, last = (int(x) for x in read_small(entry, self.fs, 64).split())
                except (OSError, ValueError) as exc:
                    raise ArchiveError(f"{entry}: not a segment range: {exc}") from None
                out.append(ArchivedSegment(first, last, entry.name[: -len(_RANGE_SUFFIX)]))
        return sorted(out)

    def put(self, name: str, first_sequence: int, last_sequence: int, segment: Path, seal: Path) -> None:
        _check_name(name)
        try:
            if not self.fs.exists(self.directory):
                self.directory.mkdir(parents=True, exist_ok=True)
            for src, dst in ((segment, name), (seal, name + _SEAL_SUFFIX)):
                atomic_write(self.directory / dst, Path(src).read_bytes(), self.fs, sync_dir=False)
            atomic_write(self.directory / (name + _RANGE_SUFFIX), f"{first_sequence} {last_sequence}\n".encode(),
                         self.fs, sync_dir=True)  # fmt: skip
        except OSError as exc:
            raise ArchiveError(f"could not archive {name} in {self.directory}: {exc}") from exc

    def get(self, name: str, directory: Path) -> tuple[Path, Path]:
        _check_name(name)
        out = []
        for part in (name, name + _SEAL_SUFFIX):
            src = self.directory / part
            if not src.exists():
                raise ArchiveError(f"{name} is not in {self.directory}")
            dst = Path(directory) / part
            shutil.copyfile(src, dst)
            out.append(dst)
        return out[0], out[1]

    def delete(self, name: str) -> None:
        _check_name(name)
        for part in (name + _RANGE_SUFFIX, name, name + _SEAL_SUFFIX):  # the range first: then it is gone
            try:
                self.fs.unlink(self.directory / part)
            except FileNotFoundError:
                pass
        self.fs.fsync_dir(self.directory)


def _check_name(name: str) -> None:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ArchiveError(f"not a segment name: {name!r}")
