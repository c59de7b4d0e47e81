"""The log's layouts (:class:`Layout`) and its own metadata files and their formats: a
segment's ``.seal`` (:class:`Seal`), a segment as the catalog knows it (:class:`Segment`)
and ``wal/MANIFEST`` (:class:`Manifest`). Which of them exist and what they prove is the catalog's
(:mod:`.catalog`); this module only reads and writes them.
"""

from __future__ import annotations

import enum
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import xxhash

from ..errors import SegmentError
from . import files as _files
from .files import OS, Files
from .format import (
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    SEAL_FORMAT,
    SEAL_FORMATS_READ,
    SEAL_SUFFIX,
)

__all__ = ["Layout", "LayoutName", "Seal", "Segment", "Manifest", "write_seal"]


class Layout(enum.Enum):
    """How a data dir's log is laid out in ``wal/``."""

    #: The Rust original's: one file, ``wal/actionqueue.wal``, never rotated.
    RUST = "rust"
    #: Ours (the default for new dirs): segment files named by first sequence, rotated
    #: at a size and sealed with a digest.
    SEGMENTED = "segmented"


#: The string spellings the ``layout`` options take beside the enum.
LayoutName = Literal["rust", "segmented"]


def _digest(body: dict) -> str:
    return xxhash.xxh3_128_hexdigest(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())


#: sequences are u64; segment names have 20 digits
_SEQUENCE_MAX = (1 << 64) - 1


def _int(obj: dict, key: str) -> int:
    return _u64(obj[key], key)


def _opt_int(obj: dict, key: str) -> int | None:
    value = obj[key]
    return None if value is None else _u64(value, key)


def _u64(value, what: str) -> int:
    if type(value) is not int or not 0 <= value <= _SEQUENCE_MAX:
        raise ValueError(f"{what} is not a sequence (an integer in 0..2**64-1): {value!r}")
    return value


# --------------------------------------------------------------------------------------
# Seals
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Seal:
    """What a sealed segment holds, as written when it was sealed. ``prev_sequence`` is
    the last sequence of the segment before it (None in format-1 seals)."""

    first_sequence: int
    last_sequence: int
    records: int
    length: int
    xxh3_128: str
    prev_sequence: int | None = None

    def to_bytes(self) -> bytes:
        body = {
            "format": SEAL_FORMAT,
            "first_sequence": self.first_sequence,
            "last_sequence": self.last_sequence,
            "records": self.records,
            "length": self.length,
            "xxh3_128": self.xxh3_128,
            "prev_sequence": self.prev_sequence,
        }
        return json.dumps(body, separators=(",", ":")).encode("ascii")

    @classmethod
    def from_bytes(cls, data: bytes, path: Path | None = None) -> "Seal":
        """Parse a seal; anything that is not a whole, consistent seal raises
        :class:`~actionqueue.errors.SegmentError` (``seal_invalid``)."""
        try:
            obj = json.loads(data.decode("ascii"))
            if not isinstance(obj, dict) or obj.get("format") not in SEAL_FORMATS_READ:
                raise ValueError(f"not a seal (format {obj.get('format') if isinstance(obj, dict) else obj!r})")
            digest = obj["xxh3_128"]
            if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{32}", digest):
                raise ValueError(f"bad digest {digest!r}")
            seal = cls(
                _int(obj, "first_sequence"), _int(obj, "last_sequence"), _int(obj, "records"),
                _int(obj, "length"), digest,
                _opt_int(obj, "prev_sequence") if obj["format"] == SEAL_FORMAT else None,
            )  # fmt: skip
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError) as exc:
            raise SegmentError(path, 0, "seal_invalid", f"the seal does not parse: {exc}") from None
        if seal.records < 1 or seal.first_sequence > seal.last_sequence or seal.length < 13 * seal.records:
            raise SegmentError(path, 0, "seal_invalid", f"the seal is inconsistent: {seal}")
        return seal


# --------------------------------------------------------------------------------------
# Segments
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Segment:
    """A file of the log: a segment (``first_sequence`` from its name) or, with
    ``first_sequence`` None, the Rust single file. ``seal`` is its seal (None while it is
    the active one); ``prev`` the sequence before it as the MANIFEST says (None unknown)."""

    path: Path
    first_sequence: int | None
    seal: Seal | None = None
    prev: int | None = None

    @property
    def seal_path(self) -> Path:
        return self.path.with_name(self.path.stem + SEAL_SUFFIX)

    @property
    def sealed(self) -> bool:
        return self.seal is not None

    def read_seal(self, fs: Files = OS) -> Seal | None:
        """The segment's seal as on disk now, or None when it has none (the active one).
        A seal that does not parse raises :class:`~actionqueue.errors.SegmentError`."""
        if self.first_sequence is None:
            return None
        try:
            data = _files.read_small(self.seal_path, fs)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise SegmentError(self.seal_path, 0, "seal_invalid", f"the seal cannot be read: {exc}") from None
        seal = Seal.from_bytes(data, self.seal_path)
        if seal.first_sequence != self.first_sequence:
            raise SegmentError(self.seal_path, 0, "seal_mismatch",
                               f"the seal starts at {seal.first_sequence}, the file name at {self.first_sequence}")
        return seal


def write_seal(segment: Segment, seal: Seal, fs: Files = OS) -> None:
    """Write ``segment``'s seal atomically (the one atomic-write helper)."""
    assert seal.first_sequence == segment.first_sequence
    _files.atomic_write(segment.seal_path, seal.to_bytes(), fs)


# --------------------------------------------------------------------------------------
# The MANIFEST
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Manifest:
    """The log's own list of its files: ``entries`` are ``(first sequence, prev)`` of each
    segment, oldest first (empty for the Rust layout), and ``base`` the last sequence the
    log does not hold (0: it holds everything; a removal raises it)."""

    layout: Layout
    base: int = 0
    entries: tuple[tuple[int, int], ...] = ()

    def to_bytes(self) -> bytes:
        body = {"format": MANIFEST_FORMAT, "layout": self.layout.value, "base": self.base,
                "segments": [list(e) for e in self.entries]}
        body["xxh3_128"] = _digest(body)
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("ascii")

    @classmethod
    def from_bytes(cls, data: bytes, path: Path) -> "Manifest":
        try:
            obj = json.loads(data.decode("ascii"))
            digest = obj.pop("xxh3_128")
            if digest != _digest(obj):
                raise ValueError("its digest does not match its content")
            if obj["format"] != MANIFEST_FORMAT:
                raise ValueError(f"unknown format {obj['format']!r}")
            entries = tuple((_u64(a, "a first sequence"), _u64(b, "a prev sequence")) for a, b in obj["segments"])
            manifest = cls(Layout(obj["layout"]), _int(obj, "base"), entries)
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError, RecursionError) as exc:
            raise SegmentError(path, 0, "manifest_invalid", f"the MANIFEST does not parse: {exc}") from None
        firsts = [e[0] for e in entries]
        if firsts != sorted(set(firsts)) or any(prev >= first for first, prev in entries) \
                or (entries and entries[0][1] != manifest.base):
            raise SegmentError(path, 0, "manifest_invalid", "the MANIFEST's segments are out of order")
        return manifest

    @classmethod
    def read(cls, wal_dir: Path, fs: Files = OS) -> "Manifest | None":
        path = wal_dir / MANIFEST_NAME
        try:
            data = _files.read_small(path, fs)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise SegmentError(path, 0, "manifest_invalid", f"the MANIFEST cannot be read: {exc}") from None
        return cls.from_bytes(data, path)

    def write(self, wal_dir: Path, fs: Files = OS) -> None:
        _files.atomic_write(wal_dir / MANIFEST_NAME, self.to_bytes(), fs)
