"""Shared pieces of the command line: errors with exit codes, data dir checks, id parsing,
progress bars, read-only replay and small formatting helpers."""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from .. import model as _model
from ..errors import ReducerError, Terminated, UnknownFile
from ..log.catalog import Catalog, require_data_dir
from ..log.format import SNAPSHOTS_DIR, WAL_DIR
from ..log.validate import is_log_file
from ..recovery import require_log_start
from ..snapshot.newest import read_snapshot
from ..state.reducer import ReplayReducer
from ..snapshot import snapshot_path
from ..wal import RUST_WAL_NAME, TornTail, WalCorruption, WalReader, log_files

#: Exit code when everything is clean.
EXIT_OK = 0
#: Exit code for problems found in the data (corruption, a log that does not replay, ...).
EXIT_PROBLEM = 1
#: Exit code for usage and input errors (bad arguments or values, a path that is not a
#: data dir, an unknown id, a data dir another writer holds, a missing optional extra).
EXIT_USAGE = 2
#: Exit code of a command stopped by SIGTERM (128 + 15, as a shell reports it).
EXIT_TERMINATED = 143


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """For the block, SIGTERM raises :class:`~actionqueue.errors.Terminated` (in the main
    thread) instead of killing the process at once, so that cleanup (``finally``, context
    managers: a temporary file removed) runs as on Ctrl-C. Outside the main thread, or
    where signals cannot be set, the block runs unchanged."""
    def raise_terminated(signum: int, frame: Any) -> None:
        raise Terminated(f"signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, raise_terminated)
    except (ValueError, AttributeError):  # not the main thread; no SIGTERM (Windows)
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class CliError(Exception):
    """An error the user can act on: printed as one line, no traceback.

    ``code`` is the exit status (:data:`EXIT_PROBLEM` or :data:`EXIT_USAGE`).
    """

    def __init__(self, message: str, code: int = EXIT_PROBLEM):
        super().__init__(message)
        self.code = code


def usage_error(message: str) -> CliError:
    """A :class:`CliError` with the usage exit code (2)."""
    return CliError(message, EXIT_USAGE)


# --------------------------------------------------------------------------------------
# data dirs
# --------------------------------------------------------------------------------------
def data_dir(path: str | os.PathLike, *, allow_file: bool = False) -> Path:
    """Check that ``path`` is an actionqueue data dir: a directory with ``wal/`` or
    ``snapshots/`` inside whose ``wal/`` holds only files of a log (the catalog's rule);
    with ``allow_file``, a single log file too. Every command says the same for each kind
    of wrong path, as a usage :class:`CliError` (exit 2); a data dir whose ``wal/`` holds
    a foreign file beside its log raises :class:`~actionqueue.errors.UnknownFile` (a
    problem found in the data: exit 1)."""
    p = Path(path)
    expected = "expected a data dir (a directory with wal/ inside)" + (" or a log file" if allow_file else "")
    if not p.exists():
        raise usage_error(f"{p}: no such file or directory")
    if p.is_file():
        if allow_file and is_log_file(p):
            return p
        raise usage_error(f"{p}: is a file{', not a WAL v5 log' if allow_file else ''}; {expected}")
    if not p.is_dir():
        raise usage_error(f"{p}: not a directory; {expected}")
    if not (p / WAL_DIR).is_dir() and not (p / SNAPSHOTS_DIR).is_dir():
        raise usage_error(f"{p}: not an actionqueue data dir (no wal/ or snapshots/ inside)")
    try:
        require_data_dir(p)
    except UnknownFile as exc:
        if exc.in_log:
            raise
        raise usage_error(not_a_data_dir(exc)) from None
    return p


def not_a_data_dir(exc: UnknownFile) -> str:
    """The line for a directory whose ``wal/`` holds foreign files and no log."""
    assert exc.path is not None
    wal = exc.path.parent
    names = ", ".join(exc.names[:3]) + (", ..." if len(exc.names) > 3 else "")
    return f"{wal.parent}: not an actionqueue data dir ({wal} holds {names}: no file of a log)"


#: The largest sequence or timestamp: both are u64 in the log.
U64_MAX = (1 << 64) - 1


def int_in(lo: int, hi: int | None, what: str) -> Callable[[str], int]:
    """An argparse ``type``: an integer in ``lo..hi`` (no upper bound for None). Anything
    else is a one-line usage error naming the option (exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, not {text!r}") from None
        if value < lo or (hi is not None and value > hi):
            bound = f"from {lo} to {hi}" if hi is not None else f"at least {lo}"
            raise argparse.ArgumentTypeError(f"{value} is out of range: {what} is {bound}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


#: ``type=`` of options that take a sequence, a Unix time, or a count of things.
SEQUENCE = int_in(0, U64_MAX, "a sequence")
UNIX_TIME = int_in(0, U64_MAX, "a Unix time in seconds")
COUNT = int_in(1, None, "a count")


def parse_id(cls: type, text: str, what: str) -> Any:
    """``cls(text)`` for an identifier type, or a usage error naming ``what``."""
    try:
        return cls(text.strip())
    except (ValueError, TypeError):
        raise usage_error(f"bad {what} id {text!r}: expected a UUID like 0f8fad5b-d9cb-469f-a165-70867728950e") from None


#: Event classes by name (``RunStateChanged``), and by lower-case name for lenient matching.
EVENT_CLASSES: dict[str, type] = {cls.__name__: cls for cls in _model.EVENT_TYPES}
_EVENT_CLASSES_LOWER = {name.lower(): cls for name, cls in EVENT_CLASSES.items()}


def parse_kinds(names: Iterable[str] | None) -> tuple[type, ...] | None:
    """Event classes from names (case-insensitive, comma-separated allowed); None for none."""
    if not names:
        return None
    out: list[type] = []
    for item in names:
        for name in item.split(","):
            name = name.strip()
            if not name:
                continue
            cls = _EVENT_CLASSES_LOWER.get(name.lower())
            if cls is None:
                raise usage_error(f"unknown event kind {name!r}; known kinds: {', '.join(EVENT_CLASSES)}")
            out.append(cls)
    return tuple(out) or None


# --------------------------------------------------------------------------------------
# progress
# --------------------------------------------------------------------------------------
class _NoProgress:
    """Stands in for a tqdm bar when no bar is shown."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def progress_enabled(stream: TextIO | None = None) -> bool:
    """True when a progress bar should be drawn: stderr is a terminal, tqdm is installed and
    ``ACTIONQUEUE_NO_PROGRESS`` is not set."""
    if os.environ.get("ACTIONQUEUE_NO_PROGRESS"):
        return False
    stream = stream if stream is not None else sys.stderr
    if stream is None:  # no stderr at all (pythonw, a closed fd 2)
        return False
    try:
        if not stream.isatty():
            return False
    except (AttributeError, ValueError):
        return False
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


def progress(total: int | None = None, desc: str = "", unit: str = "it", *, unit_scale: bool = False) -> Any:
    """A tqdm progress bar on stderr when it is a terminal, else a silent stand-in.

    The bar disappears when closed (``leave=False``) so it never mixes with the output."""
    if not progress_enabled():
        return _NoProgress()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit_scale, leave=False, file=sys.stderr,
                dynamic_ncols=True, mininterval=0.2)


def log_bytes(path: Path) -> int:
    """Total size of the log files of a data dir (or of one log file)."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for f in log_files(path):
        try:
            total += f.stat().st_size
        except FileNotFoundError:
            pass
    return total


def iter_events(source: Path, from_sequence: int | None = None, *, desc: str = "reading") -> Iterator[_model.WalEvent]:
    """The events of a data dir (or a log file), every record checked, with a progress bar
    (in events; the total is estimated from the log size) on a terminal."""
    bar = progress(None, desc, "ev", unit_scale=True)
    try:
        n = 0
        for event in WalReader(source, from_sequence=from_sequence):
            yield event
            n += 1
            if n == 4096:
                bar.update(n)
                n = 0
        bar.update(n)
    finally:
        bar.close()


# --------------------------------------------------------------------------------------
# read-only replay
# --------------------------------------------------------------------------------------
@dataclass
class Replayed:
    """A projection rebuilt without the writer's lock, and what was found on the way."""

    reducer: ReplayReducer
    snapshot_sequence: int
    snapshot_error: str | None
    events_applied: int
    torn_tail: TornTail | None
    #: the log ended before ``until`` (always, without one): the state is its latest
    reached_end: bool = True


def replay_readonly(directory: Path, until: int | None = None, *, use_snapshot: bool = True) -> Replayed:
    """Rebuild the projection of ``directory`` (snapshot if valid and not newer than
    ``until``, then the log after it) without opening a writer, so it works next to a
    running writer and never changes the data dir.

    A torn tail ends the replay (the state before it stands, as in recovery) and is
    reported in :attr:`Replayed.torn_tail`; mid-log damage raises
    :class:`~actionqueue.wal.WalCorruption`; a log that does not replay raises
    :class:`CliError`. (``actionqueue.replay_to`` does the same without progress or the
    report; this keeps a progress bar and tells the caller what it skipped.)
    """
    reducer, snap_seq, snap_error, _source = (
        read_snapshot(directory, until, read_only=True) if use_snapshot else (None, 0, None, None)
    )
    base = Catalog.load(directory).base_sequence if directory.is_dir() else 0
    if reducer is None and base and not use_snapshot:  # the log alone cannot say: try the snapshot
        reducer, snap_seq, snap_error, _source = read_snapshot(directory, until, read_only=False)
    require_log_start(directory, base, snap_seq if reducer is not None else 0, snap_error)
    if reducer is None:
        reducer = ReplayReducer()
    applied = 0
    torn: TornTail | None = None
    reached_end = True
    try:
        for event in iter_events(directory, snap_seq + 1, desc="replaying"):
            if until is not None and event.sequence > until:
                reached_end = False
                break
            try:
                reducer.apply(event)
            except ReducerError as exc:
                origin = f"the snapshot at {snap_seq}" if snap_seq else "its first record"
                raise CliError(f"{directory}: the log does not replay from {origin}: sequence "
                               f"{event.sequence} ({type(event.event).__name__}) is rejected: {exc}") from None
            applied += 1
    except TornTail as exc:
        torn = exc
    return Replayed(reducer, snap_seq, snap_error, applied, torn, reached_end)


# --------------------------------------------------------------------------------------
# formatting
# --------------------------------------------------------------------------------------
def fmt_time(ts: int | None) -> str:
    """Unix seconds as ``YYYY-MM-DD HH:MM:SS`` (UTC); ``-`` for None; the number itself when
    it is out of the calendar's range."""
    if ts is None:
        return "-"
    try:
        return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return str(ts)


def fmt_bytes(n: int) -> str:
    """A byte count for people: ``1.5 MiB``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def fmt_age(seconds: float) -> str:
    """A duration for people: ``3d 4h``, ``5m 2s``."""
    s = int(abs(seconds))
    sign = "-" if seconds < 0 else ""
    if s < 60:
        return f"{sign}{s}s"
    if s < 3600:
        return f"{sign}{s // 60}m {s % 60}s"
    if s < 86400:
        return f"{sign}{s // 3600}h {s % 3600 // 60}m"
    return f"{sign}{s // 86400}d {s % 86400 // 3600}h"


def table(rows: list[list[str]], header: list[str] | None = None, *, align: str | None = None) -> str:
    """Rows as aligned text columns. ``align`` holds one ``<`` or ``>`` per column."""
    allrows = ([header] if header else []) + rows
    if not allrows:
        return ""
    ncol = max(len(r) for r in allrows)
    widths = [max((len(r[i]) for r in allrows if i < len(r)), default=0) for i in range(ncol)]
    align = align or "<" * ncol
    lines = []
    for r in allrows:
        cells = [f"{c:{align[i]}{widths[i]}}" for i, c in enumerate(r)]
        lines.append("  ".join(cells).rstrip())
    if header:
        lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def event_time(event: Any) -> int:
    """The time of an event: its ``timestamp``, or ``created_at`` for ``RunCreated``."""
    ts = getattr(event, "timestamp", None)
    if ts is None:
        return event.run_instance.created_at
    return ts


def describe_corruption(exc: WalCorruption) -> str:
    """One line: file, offset, Rust kind, and whether it is a torn tail (for a file that
    is no part of a log: which, and what to do)."""
    if isinstance(exc, UnknownFile):
        return str(exc)
    shape = "torn tail" if isinstance(exc, TornTail) else "mid-log damage" if type(exc).__name__ == "MidLogCorruption" else type(exc).__name__
    detail = f": {exc.detail}" if exc.detail else ""
    return f"{exc.path}: offset {exc.offset}: {exc.kind} ({shape}, {exc.reason}){detail}"


def snapshot_file(directory: Path) -> Path:
    """``<dir>/snapshots/snapshot.bin``."""
    return snapshot_path(directory)


def is_rust_layout(directory: Path) -> bool:
    """True when the data dir holds the Rust original's single-file log."""
    return (directory / "wal" / RUST_WAL_NAME).exists()


def write_line(out: TextIO, text: str = "") -> None:
    """``print`` that the BrokenPipe handling of :func:`actionqueue.cli.main` covers."""
    out.write(text + "\n")


Handler = Callable[[Any], int]
