"""The catalog: the only code that names, lists, parses and orders the log's files, and
proves that the set it found is the whole log.

A data dir's log lives in ``wal/``, in one of two layouts (:class:`Layout`): the Rust
original's single ``actionqueue.wal``, or ours, segment files named by their first
sequence (``00000000000000000001.seg``), the older ones sealed by a ``.seal`` beside them.

What proves the set complete is ``wal/MANIFEST`` (LevelDB's lesson: recovery fails when a
file the manifest names is missing). It lists every segment with the sequence before it
(``prev``), and is replaced atomically whenever the set changes on purpose: a writer
creates the segment file first and then lists it, so a crash between the two leaves a
newer file the catalog adopts, never a listed file that does not exist; a removal unlists
first and deletes after, so a crash leaves an older file the catalog ignores (and the next
writer deletes). Any other difference between the MANIFEST and the folder is a
:class:`~actionqueue.errors.SegmentMissing` or :class:`~actionqueue.errors.SegmentError`,
after the listing was redone (a listing can race with a rotation: ``os.listdir`` may miss a
file created while it runs). Seals name their predecessor's last sequence too (format 2),
so a MANIFEST that vanished is noticed as well.

The MANIFEST also says where the log starts: the ``prev`` of its first segment is the last
sequence the log does not hold (0 for a log that holds everything). Recovery requires a
snapshot at or beyond it.

Nothing else may be in ``wal/`` (:func:`check_wal_names`): the log's own metadata (seals,
MANIFEST, CHECKPOINT, LOCK, the repair backup folder) and the temporary files of atomic
writes a crash interrupted (ignored, and removed by the next writer, as LevelDB and etcd
do with theirs). Any other file raises :class:`~actionqueue.errors.UnknownFile`: a
directory whose ``wal/`` holds foreign files is not taken for a data dir, and nothing is
written into it (:func:`require_data_dir`).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import (
    ActionQueueError,
    NotADataDir,
    SegmentError,
    SegmentMissing,
    TornTail,
    UnknownFile,
    WalCorruption,
)
from . import files as _files
from .checkpoint import refuse_if_cut
from .files import OS, Files, check_regular, not_a_regular_file, open_regular
from .format import (
    BACKUP_DIR,
    CHECKPOINT_NAME,
    LISTING_ATTEMPTS_MAX,
    LOCK_NAME,
    MANIFEST_NAME,
    RUST_WAL_NAME,
    SEAL_SUFFIX,
    SEGMENT_SUFFIX,
    SNAPSHOTS_DIR,
    TMP_SUFFIX,
    WAL_DIR,
)
from .manifest import Layout, LayoutName, Manifest, Seal, Segment, write_seal

__all__ = [
    "Layout",
    "LayoutName",
    "write_seal",
    "Seal",
    "Segment",
    "Manifest",
    "Catalog",
    "segment_name",
    "parse_segment_name",
    "wal_dir_of",
    "detect_layout",
    "wal_name_kind",
    "check_wal_names",
    "list_wal",
    "require_data_dir",
    "open_log_file",
    "append_in_flight",
    "check_regular",
    "not_a_regular_file",
]

_NAME = re.compile(r"^(\d{20})\.seg$")




def segment_name(first_sequence: int) -> str:
    """The file name of the segment whose first record has ``first_sequence``."""
    assert 0 <= first_sequence < 10**20
    return f"{first_sequence:020d}{SEGMENT_SUFFIX}"


def parse_segment_name(name: str) -> int | None:
    """The first sequence a segment file name says, or None for any other name."""
    match = _NAME.match(name)
    return int(match.group(1)) if match else None


def wal_dir_of(data_dir) -> Path:
    return Path(data_dir) / WAL_DIR


# --------------------------------------------------------------------------------------
# The catalog
# --------------------------------------------------------------------------------------
def _maybe_a_race(exc: SegmentError) -> SegmentError:
    """``exc``, marked as what a listing can see while a writer rotates or removes segments."""
    exc.listing_race = True  # type: ignore[attr-defined]
    return exc


def _may_be_a_race(exc: SegmentError) -> bool:
    return isinstance(exc, SegmentMissing) or getattr(exc, "listing_race", False)


@dataclass(frozen=True)
class Catalog:
    """The files of a data dir's log, proven complete and continuous when loaded.

    ``segments`` are in sequence order, each with its seal; ``base_sequence`` is the last
    sequence the log does not hold; ``strays`` are segment files a removal had unlisted
    but not yet deleted (ignored; a writer deletes them); ``manifest`` is what the MANIFEST
    says (None for a log without one: a Rust dir never opened by our writer, or a log
    written before MANIFESTs), ``manifest_stale`` whether a writer must rewrite it.
    """

    wal_dir: Path
    layout: Layout | None
    segments: tuple[Segment, ...]
    base_sequence: int = 0
    manifest: Manifest | None = None
    manifest_stale: bool = False
    strays: tuple[Path, ...] = field(default=())
    #: segment files the MANIFEST does not list, between listed ones (only with ``lenient``)
    unexpected: tuple[Path, ...] = field(default=())
    #: temporary files of interrupted atomic writes (ignored; a writer removes them)
    leftovers: tuple[Path, ...] = field(default=())

    @classmethod
    def load(cls, data_dir, fs: Files = OS, *, lenient: bool = False) -> "Catalog":
        """List and prove the log of ``data_dir``. A difference between the folder and the
        MANIFEST is first taken as a listing that raced with a rotation or a removal and
        the listing redone (up to :data:`~.format.LISTING_ATTEMPTS_MAX` times, about 0.3 s
        in all); a difference that stays is raised. ``lenient`` (repair): files the
        MANIFEST does not list are returned in :attr:`unexpected` instead."""
        wal_dir = wal_dir_of(data_dir)
        delay = 0.002
        for attempt in range(LISTING_ATTEMPTS_MAX):
            try:
                return cls._load_once(wal_dir, fs, lenient)
            except SegmentError as exc:
                # Only what a listing racing a rotation or a removal can see is listed
                # again; damage (a seal or MANIFEST that does not parse, a foreign file)
                # is raised at once.
                if attempt == LISTING_ATTEMPTS_MAX - 1 or not _may_be_a_race(exc):
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.1)
        raise AssertionError("unreachable")  # pragma: no cover

    @classmethod
    def _load_once(cls, wal_dir: Path, fs: Files, lenient: bool = False) -> "Catalog":
        names = list_wal(wal_dir.parent, fs) or []
        leftovers = check_wal_names(wal_dir, names)
        catalog = cls._from_names(wal_dir, names, fs, lenient)
        return dataclasses.replace(catalog, leftovers=leftovers) if leftovers else catalog

    @classmethod
    def _from_names(cls, wal_dir: Path, names: list[str], fs: Files, lenient: bool) -> "Catalog":
        firsts = sorted(s for s in map(parse_segment_name, names) if s is not None)
        has_rust = RUST_WAL_NAME in names
        manifest = Manifest.read(wal_dir, fs) if MANIFEST_NAME in names or firsts or has_rust else None
        if has_rust and firsts:
            raise ActionQueueError(f"{wal_dir} holds both {RUST_WAL_NAME} and segment files")
        if manifest is not None and manifest.layout is Layout.RUST or has_rust:
            return cls._rust(wal_dir, has_rust, manifest)
        if manifest is None:
            _orphans(wal_dir, names, firsts, has_rust, fs)
            return cls._legacy(wal_dir, firsts, fs)
        return cls._listed(wal_dir, firsts, manifest, fs, lenient)

    @classmethod
    def _rust(cls, wal_dir: Path, present: bool, manifest: Manifest | None) -> "Catalog":
        path = wal_dir / RUST_WAL_NAME
        if manifest is not None and manifest.layout is not Layout.RUST:
            raise SegmentError(path, 0, "segment_unexpected", "the MANIFEST lists segments, not a Rust log")
        if not present:
            raise SegmentMissing(path, 1, None, "the MANIFEST says the log is this one file")
        return cls(wal_dir, Layout.RUST, (Segment(path, None),), 0, manifest, manifest is None)

    @classmethod
    def _legacy(cls, wal_dir: Path, firsts: list[int], fs: Files) -> "Catalog":
        """No MANIFEST: a log from before them, proven by its seals alone (format-1 seals;
        a format-2 seal means a MANIFEST existed and was lost)."""
        segments = cls._with_seals(wal_dir, [(first, None) for first in firsts], fs)
        for segment in segments:
            if segment.seal is not None and segment.seal.prev_sequence is not None:
                raise SegmentError(wal_dir / MANIFEST_NAME, 0, "manifest_invalid",
                                   "the MANIFEST is missing (the seals say the log had one)")
        layout = Layout.SEGMENTED if segments else None
        # with nothing to say otherwise, the log holds nothing below its first file's name
        base = max(0, firsts[0] - 1) if firsts else 0
        return cls(wal_dir, layout, segments, base, None, bool(segments))

    @classmethod
    def _listed(cls, wal_dir: Path, firsts: list[int], manifest: Manifest, fs: Files, lenient: bool) -> "Catalog":
        listed = [first for first, _ in manifest.entries]
        on_disk = set(firsts)
        for i, (first, _) in enumerate(manifest.entries):
            if first not in on_disk:
                last = listed[i + 1] - 1 if i + 1 < len(listed) else None
                raise SegmentMissing(wal_dir / segment_name(first), first, last,
                                     "the MANIFEST lists it; restore it, or repair from a snapshot")
        low = listed[0] if listed else None
        high = listed[-1] if listed else -1
        strays = tuple(wal_dir / segment_name(f) for f in firsts if low is not None and f < low)
        unexpected = [f for f in firsts if f not in listed and (low is not None and low < f < high)]
        if unexpected and not lenient:
            raise _maybe_a_race(SegmentError(
                wal_dir / segment_name(unexpected[0]), 0, "segment_unexpected",
                "a segment file the MANIFEST does not list (left by an interrupted repair? 'actionqueue repair' "
                "settles it)"))
        adopted: list[tuple[int, int | None]] = [(f, None) for f in firsts if f > high]
        plan = list(manifest.entries) + adopted
        segments = cls._with_seals(wal_dir, plan, fs)
        return cls(wal_dir, Layout.SEGMENTED, segments, manifest.base, manifest, bool(adopted or strays), strays,
                   tuple(wal_dir / segment_name(f) for f in unexpected))

    @staticmethod
    def _with_seals(wal_dir: Path, plan: list[tuple[int, int | None]], fs: Files) -> tuple[Segment, ...]:
        """The segments of ``plan`` with their seals, checked to follow one another: every
        one but the newest sealed, each seal after the one before it and naming it."""
        segments: list[Segment] = []
        prev_last: int | None = None
        for i, (first, prev) in enumerate(plan):
            segment = Segment(wal_dir / segment_name(first), first, None, prev)
            seal = segment.read_seal(fs)
            if seal is None and i != len(plan) - 1:
                raise _maybe_a_race(SegmentError(segment.path, 0, "seal_invalid",
                                                 "a segment before the newest one is not sealed"))
            if prev_last is not None and first <= prev_last:
                raise SegmentError(segment.path, 0, "sequence_not_increasing",
                                   f"the segment starts at {first}, after {prev_last}")
            expected_prev = prev_last if prev_last is not None else prev
            if seal is not None and seal.prev_sequence is not None and expected_prev is not None \
                    and seal.prev_sequence != expected_prev:
                raise SegmentError(segment.seal_path, 0, "seal_mismatch",
                                   f"the seal follows sequence {seal.prev_sequence}, the log has {expected_prev}")
            if prev is not None and prev_last is not None and prev != prev_last:
                raise SegmentError(segment.path, 0, "manifest_invalid",
                                   f"the MANIFEST says the segment follows {prev}, the one before ends at {prev_last}")
            segments.append(Segment(segment.path, first, seal, expected_prev))
            prev_last = seal.last_sequence if seal is not None else None
        return tuple(segments)

    # -- what callers ask ---------------------------------------------------------------
    @property
    def files(self) -> list[Path]:
        return [s.path for s in self.segments]

    @property
    def active(self) -> Segment | None:
        """The newest segment when it is not sealed (the one a writer appends to)."""
        return self.segments[-1] if self.segments and self.segments[-1].seal is None else None

    @property
    def last_sealed_sequence(self) -> int | None:
        for segment in reversed(self.segments):
            if segment.seal is not None:
                return segment.seal.last_sequence
        return None

    def from_sequence(self, sequence: int | None) -> list[Segment]:
        """The segments that may hold records at or above ``sequence`` (all for None)."""
        if sequence is not None and 0 < self.base_sequence >= sequence and self.segments:
            raise SegmentMissing(self.segments[0].path, max(sequence, 1), self.base_sequence,
                                 "removed from the log (it starts after them): read from a snapshot")
        if sequence is None or self.layout is not Layout.SEGMENTED:
            return list(self.segments)
        out = []
        for i, segment in enumerate(self.segments):
            nxt = self.segments[i + 1].first_sequence if i + 1 < len(self.segments) else None
            if nxt is not None and nxt <= sequence:
                continue  # every record of this segment is below ``sequence``
            out.append(segment)
        return out

    def successor(self, path: Path) -> Segment | None:
        """The segment after ``path`` (None when it is the newest or not in the catalog)."""
        for i, segment in enumerate(self.segments[:-1]):
            if segment.path == path:
                return self.segments[i + 1]
        return None

    def manifest_for(self, segments: "list[Segment] | tuple[Segment, ...] | None" = None,
                     base: int | None = None) -> Manifest:
        """The MANIFEST that lists ``segments`` (this catalog's by default) above ``base``."""
        if self.layout is Layout.RUST:
            return Manifest(Layout.RUST)
        segments = self.segments if segments is None else segments
        base = self.base_sequence if base is None else base
        entries = []
        prev = base
        for segment in segments:
            assert segment.first_sequence is not None and segment.first_sequence > prev
            entries.append((segment.first_sequence, segment.prev if segment.prev is not None else prev))
            prev = segment.seal.last_sequence if segment.seal is not None else segment.first_sequence
        return Manifest(Layout.SEGMENTED, base, tuple(entries))


def _orphans(wal_dir: Path, names: list[str], firsts: list[int], has_rust: bool, fs: Files) -> None:
    """Without a MANIFEST, what else says a file existed: a seal without its segment, or a
    CHECKPOINT naming a file that is not there."""
    for name in names:
        if name.endswith(SEAL_SUFFIX):
            first = parse_segment_name(name[: -len(SEAL_SUFFIX)] + SEGMENT_SUFFIX)
            if first is not None and first not in firsts:
                raise SegmentMissing(wal_dir / segment_name(first), first, None, "its seal is still there")
    if CHECKPOINT_NAME in names:
        try:
            named = json.loads(_files.read_small(wal_dir / CHECKPOINT_NAME, fs)).get("file")
        except (OSError, ValueError, AttributeError, RecursionError):
            return
        exists = named == RUST_WAL_NAME and has_rust or (
            isinstance(named, str) and parse_segment_name(named) in firsts)
        if isinstance(named, str) and not exists and (named == RUST_WAL_NAME or parse_segment_name(named) is not None):
            first = parse_segment_name(named) or 1
            raise SegmentMissing(wal_dir / named, first, None, "the CHECKPOINT of its last clean close names it")


# --------------------------------------------------------------------------------------
# Opening a log file to read it, and where a live log ends
# --------------------------------------------------------------------------------------
def open_log_file(path: Path, *, sealed: bool, fs: Files = OS) -> tuple[int, int]:
    """Open a file of the log for reading: ``(descriptor, size)``, the size as at open,
    which is all a reader may read (a file a writer appends to grows meanwhile). Every
    reader opens log files here, so all apply the same rules: a file that is not a regular
    file is refused (:func:`not_a_regular_file`; opened without blocking, so a FIFO cannot
    hang the open), and an unsealed file shorter than the CHECKPOINT of its last clean
    close says lost records (:func:`~.checkpoint.refuse_if_cut`), as ``verify`` and the
    writer refuse it. :class:`FileNotFoundError` passes through."""
    fd = open_regular(path, fs)
    try:
        size = fs.fsize(fd)
        if not sealed:
            refuse_if_cut(path.parent, path, size, fs)
    except BaseException:
        fs.close(fd)
        raise
    return fd, size


def append_in_flight(path: Path, corruption: WalCorruption, fs: Files = OS) -> bool:
    """Whether ``corruption``, found at the end of the unsealed file ``path``, is an append
    a live writer has not finished: an incomplete record at the very end of the file (a
    :class:`~actionqueue.errors.TornTail` of ``incomplete_header`` or
    ``incomplete_payload``), while a writer holds the data dir's lock. Readers then stop
    before it; without a writer it is a torn tail. Damage of any other kind, or followed
    by more records, is never taken for one."""
    return (isinstance(corruption, TornTail) and corruption.reason in ("incomplete_header", "incomplete_payload")
            and fs.held_by_a_writer(path.parent, LOCK_NAME))


# --------------------------------------------------------------------------------------
# Which files may be in wal/, and what a data dir is
# --------------------------------------------------------------------------------------
#: The log's files besides its segments, seals and the Rust file (the backup is a folder).
_META_NAMES = frozenset({MANIFEST_NAME, CHECKPOINT_NAME, LOCK_NAME, BACKUP_DIR})
#: Of those, the ones replaced through :func:`~.files.atomic_write` (``<name>.tmp`` first).
_ATOMIC_NAMES = frozenset({MANIFEST_NAME, CHECKPOINT_NAME})


def _is_seal_name(name: str) -> bool:
    return name.endswith(SEAL_SUFFIX) and parse_segment_name(name[: -len(SEAL_SUFFIX)] + SEGMENT_SUFFIX) is not None


def wal_name_kind(name: str) -> Literal["log", "meta", "leftover"] | None:
    """What a name in ``wal/`` is: ``"log"`` (a segment or the Rust file), ``"meta"`` (a
    seal, the MANIFEST, CHECKPOINT or LOCK, the repair backup folder), ``"leftover"`` (the
    temporary file of an atomic write a crash interrupted: of a seal, the MANIFEST, the
    CHECKPOINT, or a log file repair rewrote), or None: no file of a log."""
    if name == RUST_WAL_NAME or parse_segment_name(name) is not None:
        return "log"
    if name in _META_NAMES or _is_seal_name(name):
        return "meta"
    if name.endswith(TMP_SUFFIX):
        base = name[: -len(TMP_SUFFIX)]
        if base in _ATOMIC_NAMES or base == RUST_WAL_NAME or parse_segment_name(base) is not None \
                or _is_seal_name(base):
            return "leftover"
    return None


def check_wal_names(wal_dir: Path, names: Iterable[str]) -> tuple[Path, ...]:
    """The rule of which files may be in ``wal/`` (:func:`wal_name_kind`). Any other name
    raises :class:`~actionqueue.errors.UnknownFile`: never ignored, the catalog does not
    guess what a foreign file holds. Returns the leftovers of interrupted atomic writes,
    which readers ignore and the next writer removes."""
    kinds = {name: wal_name_kind(name) for name in names}
    unknown = [name for name, kind in kinds.items() if kind is None]
    if unknown:
        # evidence of a log: a log file or its metadata (a LOCK or an empty backup folder
        # is left by any writer that opened the directory)
        in_log = any(kind in ("log", "leftover") or kind == "meta" and name not in (LOCK_NAME, BACKUP_DIR)
                     for name, kind in kinds.items())
        raise UnknownFile(wal_dir, unknown, in_log)
    return tuple(wal_dir / name for name, kind in sorted(kinds.items()) if kind == "leftover")


def _not_a_directory(path: Path, what: str) -> NotADirectoryError:
    exc = NotADirectoryError(f"{what} {path} is a file, not a directory")
    exc.errno = errno.ENOTDIR  # an OSError as the system's (without its "[Errno 20]" prefix)
    return exc


def list_wal(data_dir, fs: Files = OS) -> list[str] | None:
    """The names in ``data_dir``'s ``wal/`` (None when it has none). A ``data_dir`` or
    ``wal`` that is a file raises :class:`NotADirectoryError` saying so."""
    wal_dir = wal_dir_of(data_dir)
    try:
        return fs.listdir(wal_dir)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        if os.path.isdir(data_dir):
            raise _not_a_directory(wal_dir, "the log's folder") from None
        raise _not_a_directory(Path(data_dir), "data dir") from None


def require_data_dir(data_dir, fs: Files = OS, *, new: bool = False) -> Path:
    """Check ``data_dir`` before anything is written into it (a writer, recovery and repair
    call this first): it exists (:class:`FileNotFoundError`), it is a directory
    (:class:`NotADirectoryError`), and its ``wal/``, if any, holds only files of a log
    (:class:`~actionqueue.errors.UnknownFile`). ``new``: a data dir may be started here;
    a directory without ``wal/`` or ``snapshots/`` must then be empty
    (:class:`~actionqueue.errors.NotADataDir`): none is started among other files."""
    path = Path(data_dir)
    if not os.path.isdir(path):
        if fs.exists(path):
            raise _not_a_directory(path, "data dir")
        exc = FileNotFoundError(f"data dir {path} does not exist")
        exc.errno = errno.ENOENT
        raise exc
    names = list_wal(path, fs)
    if names is not None:
        check_wal_names(wal_dir_of(path), names)
    elif new and not fs.exists(path / SNAPSHOTS_DIR):
        others = sorted(fs.listdir(path))
        if others:
            shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
            raise NotADataDir(path, f"it holds {shown} and no {WAL_DIR}/ or {SNAPSHOTS_DIR}/ "
                                    "(a data dir is started in an empty directory)")
    return path


def detect_layout(data_dir, fs: Files = OS) -> Layout | None:
    """The layout of an existing log, or None when ``wal/`` holds no log yet."""
    return Catalog.load(data_dir, fs).layout
