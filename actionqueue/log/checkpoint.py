"""``wal/CHECKPOINT``: what a writer that closed cleanly had checked, so that the next one
need not walk those records again.

Metadata is checked, never trusted: every field is covered by the file's own digest (a
CHECKPOINT whose digest does not match is ignored and the log checked in full), and a
matching one is still held against the bytes it describes: the xxh3-128 of the first
``length`` bytes, the first record's sequence, and the last record (at ``last_offset``),
which must end exactly at ``length`` with ``last_sequence``. ``verify`` and ``repair``
never use it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import mmap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import xxhash

from ..errors import SegmentError
from . import files as _files
from ._walker import walker
from .files import OS, Files
from .format import CHECKPOINT_FORMAT, CHECKPOINT_NAME, HEADER_LEN
from .validate import first_sequence

if TYPE_CHECKING:  # pragma: no cover
    from .writer import WalWriter

log = logging.getLogger("actionqueue.log")

__all__ = ["Checkpoint", "write_on_close", "refuse_if_cut"]


def _body_digest(body: dict) -> str:
    return xxhash.xxh3_128_hexdigest(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())


@dataclass(frozen=True)
class Checkpoint:
    """The first ``length`` bytes of ``file`` (``records`` records, sequences
    ``first_sequence``..``last_sequence``, the last one at ``last_offset``), all checked,
    the sequence before the file ``prev_sequence``, against payload cap ``max_payload``;
    ``xxh3_128`` is their digest."""

    file: str
    length: int
    records: int
    first_sequence: int
    last_sequence: int
    last_offset: int
    prev_sequence: int | None
    max_payload: int
    xxh3_128: str

    def matches(self, mapped, prev_sequence: int | None, max_payload: int) -> bool:
        """Whether this checkpoint still describes the start of ``mapped`` (the file)."""
        if (self.length > len(mapped) or prev_sequence != self.prev_sequence or self.max_payload > max_payload):
            return False
        with memoryview(mapped) as view:
            if xxhash.xxh3_128_hexdigest(view[: self.length]) != self.xxh3_128:
                return False
        # What it says of those bytes, held against them: the first record decoded, and
        # every record stepped over by its length field (native: a few ms for 64 MiB)
        first = walker.walk(mapped, 0, None, max_payload, True, 1)[5]
        end, count, last = walker.skip_below(mapped, 0, prev_sequence, self.last_sequence + 1)
        return (
            bool(first) and first[0].sequence == self.first_sequence
            and (end, count, last) == (self.length, self.records, self.last_sequence)
        )

    def shorter_than(self, size: int) -> bool:
        """Whether a file of ``size`` bytes lost bytes this checkpoint saw checked."""
        return size < self.length

    def refuse_if_cut(self, path: Path, size: int) -> None:
        """A file shorter than what its clean close recorded lost records it had
        acknowledged (a torn tail only ever lies beyond the checkpoint): a SegmentError,
        whatever the repair policy (an explicit repair accepts the loss)."""
        if self.shorter_than(size):
            raise SegmentError(path, size, "incomplete_payload",
                               f"the file is {size} bytes but held {self.length} ({self.records} records, up to "
                               f"sequence {self.last_sequence}) when its writer closed: records were lost")

    @classmethod
    def read(cls, wal_dir: Path, file: Path, fs: Files = OS) -> "Checkpoint | None":
        """The checkpoint of ``file``, or None (none, another file's, or not whole)."""
        try:
            obj = json.loads(_files.read_small(wal_dir / CHECKPOINT_NAME, fs))
            digest = obj.pop("digest")
            if obj.pop("format") != CHECKPOINT_FORMAT or digest != _body_digest(obj):
                raise ValueError("its digest does not match its fields")
            ckpt = cls(**obj)
            for name in ("length", "records", "first_sequence", "last_sequence", "last_offset", "max_payload"):
                value = getattr(ckpt, name)
                if type(value) is not int or value < 0:
                    raise ValueError(f"{name} is {value!r}")
            if ckpt.records < 1 or ckpt.last_offset + HEADER_LEN >= ckpt.length:
                raise ValueError("its fields are inconsistent")
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
            log.info("ignoring %s (%s): the log is checked in full", wal_dir / CHECKPOINT_NAME, exc)
            return None
        return ckpt if ckpt.file == file.name else None

    def write(self, wal_dir: Path, fs: Files = OS) -> None:
        """Atomically, through the one atomic-write helper."""
        body = dataclasses.asdict(self)
        body["digest"] = _body_digest(body)
        body["format"] = CHECKPOINT_FORMAT
        _files.atomic_write(wal_dir / CHECKPOINT_NAME, json.dumps(body, sort_keys=True).encode(), fs)

    @staticmethod
    def remove(wal_dir: Path, fs: Files = OS) -> None:
        try:
            fs.unlink(wal_dir / CHECKPOINT_NAME)
        except FileNotFoundError:
            pass


def refuse_if_cut(wal_dir: Path, path: Path, size: int, fs: Files = OS) -> None:
    """The one rule every reader, ``verify`` and the writer apply to an unsealed file (the
    active segment, a Rust single file) of ``size`` bytes: the CHECKPOINT of its last
    clean close, if it names this file, is the only evidence of what it held, and a file
    shorter than that lost records (:meth:`Checkpoint.refuse_if_cut`). A file grown past
    it, or one without a checkpoint, passes."""
    checkpoint = Checkpoint.read(wal_dir, path, fs)
    if checkpoint is not None:
        checkpoint.refuse_if_cut(path, size)


def write_on_close(writer: WalWriter) -> None:
    """On a writer's clean close (synced, its lock still held): record its active file's
    checked content (:class:`Checkpoint`) so that the next writer need not walk it again.
    A failure only costs that: it is logged, and the stale checkpoint removed."""
    try:
        if writer.path is None or writer._size == 0:
            Checkpoint.remove(writer.wal_dir, writer.fs)
            return
        with mmap.mmap(writer._fd, writer._size, access=mmap.ACCESS_READ) as mapped:
            first = first_sequence(mapped, writer.max_payload)
            assert first is not None, "the writer's file starts with a valid record"
            # the last record is the first at or above the last sequence (stepped to by
            # length fields: these are the writer's own checked bytes)
            last_offset = walker.skip_below(mapped, 0, None, writer._sequence)[0]
        Checkpoint(
            writer.path.name, writer._size, writer._active_records, first, writer._sequence, last_offset,
            writer._active_prev, writer.max_payload, writer._hasher.hexdigest(),
        ).write(writer.wal_dir, writer.fs)  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - an optimisation: the log is intact
        log.warning("could not write the checkpoint of %s: %s", writer.path, exc)
        try:
            Checkpoint.remove(writer.wal_dir, writer.fs)
        except OSError:
            pass
