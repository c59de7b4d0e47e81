"""The segmented log layout: ``wal/`` holds segment files named by their first sequence.

``wal/00000000000000000001.seg`` holds records from sequence 1 on, back to back, in the
same framing as the Rust single-file log (each segment is a valid Rust WAL file by
itself). When the active segment reaches the rotation size it is *sealed*: fsynced, and a
small ``.seal`` file written next to it (atomically: temp file, fsync, rename, fsync of
the directory) that records its sequence range, record count, length and an xxh3-128
digest, so that :func:`verify_sealed` can check a sealed segment without decoding it.
Only the newest segment is ever written to; sealed segments are immutable, so they are
the only files a reader maps into memory.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import xxhash

__all__ = ["SEGMENT_SUFFIX", "SEAL_SUFFIX", "Segment", "Seal", "segment_name", "list_segments", "write_seal"]

SEGMENT_SUFFIX = ".seg"
SEAL_SUFFIX = ".seal"
_NAME = re.compile(r"^(\d{20})\.seg$")
#: Default size at which the active segment is sealed and a new one begun.
DEFAULT_SEGMENT_BYTES = 64 << 20


def segment_name(first_sequence: int) -> str:
    """The file name of the segment whose first record has ``first_sequence``."""
    return f"{first_sequence:020d}{SEGMENT_SUFFIX}"


@dataclass(frozen=True)
class Seal:
    """What a sealed segment holds, as written when it was sealed."""

    first_sequence: int
    last_sequence: int
    records: int
    length: int
    xxh3_128: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": "actionqueue-seal-1",
                "first_sequence": self.first_sequence,
                "last_sequence": self.last_sequence,
                "records": self.records,
                "length": self.length,
                "xxh3_128": self.xxh3_128,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> "Seal":
        obj = json.loads(text)
        if obj.get("format") != "actionqueue-seal-1":
            raise ValueError(f"unknown seal format {obj.get('format')!r}")
        return cls(
            int(obj["first_sequence"]),
            int(obj["last_sequence"]),
            int(obj["records"]),
            int(obj["length"]),
            str(obj["xxh3_128"]),
        )


@dataclass(frozen=True)
class Segment:
    """A segment file of a data dir's log."""

    path: Path
    first_sequence: int

    @property
    def seal_path(self) -> Path:
        return self.path.with_name(self.path.stem + SEAL_SUFFIX)

    def read_seal(self) -> Seal | None:
        """The segment's seal, or None while it is the active (unsealed) segment."""
        try:
            return Seal.from_json(self.seal_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None


def list_segments(wal_dir: Path) -> list[Segment]:
    """The segments of ``wal_dir`` in sequence order."""
    found = []
    try:
        names = os.listdir(wal_dir)
    except FileNotFoundError:
        return []
    for name in names:
        match = _NAME.match(name)
        if match:
            found.append(Segment(wal_dir / name, int(match.group(1))))
    found.sort(key=lambda s: s.first_sequence)
    return found


def digest_file(path: Path, length: int | None = None) -> str:
    """xxh3-128 of the first ``length`` bytes of ``path`` (all of it by default)."""
    h = xxhash.xxh3_128()
    remaining = length
    with open(path, "rb", buffering=0) as f:
        while remaining is None or remaining > 0:
            chunk = f.read(1 << 20 if remaining is None else min(1 << 20, remaining))
            if not chunk:
                break
            h.update(chunk)
            if remaining is not None:
                remaining -= len(chunk)
    return h.hexdigest()


def write_seal(segment: Segment, seal: Seal, fsync_dir) -> None:
    """Write ``segment``'s seal atomically: temp file, fsync, rename, fsync of the dir."""
    tmp = segment.seal_path.with_name(segment.seal_path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, seal.to_json().encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, segment.seal_path)
    fsync_dir(segment.path.parent)
