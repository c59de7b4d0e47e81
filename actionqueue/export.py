"""A data dir's log as Arrow tables, Parquet, Arrow IPC or JSON lines, for DuckDB, Polars,
pandas and the rest of the Arrow world.

>>> import actionqueue.export as ax
>>> table = ax.to_arrow("data")                  # a pyarrow.Table, one row per event
>>> ax.write_parquet("data", "events.parquet")   # streamed in record batches

The schema (:func:`schema`; column names and types are stable):

============== =================================== =======================================
column         Arrow type                          what
============== =================================== =======================================
``sequence``   uint64, not null                    the record's sequence number
``kind``       dictionary<int8, string>, not null  the event kind's name (``RunCreated``)
``time``       uint64, not null                    the event's ``timestamp`` (a
                                                   ``RunCreated``: the run's
                                                   ``created_at``), Unix seconds as stored
``task_id``    string                              the task the event names (null if none)
``run_id``     string                              the run the event names (null if none)
``attempt_id`` string                              the attempt the event names (null if none)
``fields``     string                              the event's fields as JSON
============== =================================== =======================================

Ids are the canonical lowercase hyphenated UUID text (as in the JSON and ``str(id)``), so
DuckDB, Polars and pandas compare and join them as they are (DuckDB: ``task_id::UUID``).
They are the ids the event itself carries: its own ``task_id``/``run_id``/``attempt_id``
fields, a ``TaskCreated``'s task spec ``id`` and a ``RunCreated``'s run ``id`` and
``task_id``; other ids (actors, tenants, subscriptions, dependencies) are in ``fields``.
A ``RunStateChanged`` names only its run (join on ``run_id`` to a ``RunCreated`` for the
task). ``fields`` is the JSON object of the event's fields, exactly as Rust's serde_json
writes them (:mod:`actionqueue.model.json`), e.g. ``{"run_id":"...","previous_state":
"Scheduled","new_state":"Ready","timestamp":1700000000}``; read it with DuckDB's
``fields->>'new_state'`` or Polars' ``str.json_path_match``. ``fields=False`` leaves the
column out, ``ids=False`` the three id columns (both off: the scan's columns alone, with
no pass over the payloads).

How it is made: the log is scanned file by file (:func:`~actionqueue.log.scan.iter_scan`:
every record framed, CRC-checked and structurally validated; a damaged log raises the
scan's :class:`~actionqueue.errors.WalCorruption`, ``TornTail`` for a torn tail, and
nothing is exported); ``sequence``, ``kind`` and ``time`` are the scan's numpy columns
handed to Arrow without a copy; ids and JSON come from one native pass over the payloads
(``_sjson.events_json``: no event objects; the pure-Python build decodes events instead).
Batches hold at most ``batch_events`` events and ~32 MiB of payload, so memory stays
bounded by one file's columns plus one batch (a Rust single-file log is read whole, as
every reader does).

``pyarrow`` is the ``arrow`` extra; without it the Arrow and Parquet functions raise
:class:`~actionqueue.errors.MissingExtra`. :func:`write_jsonl` needs nothing: its lines
are ``actionqueue dump``'s, the serde_json shape of each ``WalEvent``.
"""

from __future__ import annotations

import os
import secrets
from concurrent.futures import Future, ThreadPoolExecutor
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import model as _model
from .errors import OutputError
from ._backend import NATIVE
from ._extras import require_pyarrow
from .log._walker import walker as _walker
from .log.format import SNAPSHOTS_DIR, WAL_DIR
from .log.scan import ScanColumns, arrow_kind, iter_scan
from .model.json import dumps, to_builtins

__all__ = [
    "ID_COLUMNS", "DEFAULT_BATCH_EVENTS", "schema", "record_batches", "to_arrow",
    "write_parquet", "write_arrow", "write_jsonl", "events_json", "check_output",
]

#: The id columns, in order.
ID_COLUMNS = ("task_id", "run_id", "attempt_id")
#: Events per record batch (and per Parquet row group) unless told otherwise.
DEFAULT_BATCH_EVENTS = 1 << 17
#: Payload bytes per batch at most (the JSON of a batch stays far below 2 GiB).
BATCH_PAYLOAD_BYTES = 32 << 20
#: Schema version, in the schema's metadata (``actionqueue.export.schema``).
SCHEMA_VERSION = "1"

# what events_json writes per record (the values of _sjson's JSON_BODY / JSON_LINES / JSON_NONE)
BODY, LINES, NONE = 0, 1, 2

OnBatch = Callable[[int], None]

if TYPE_CHECKING or NATIVE:  # type checkers see the native stubs
    from .snapshot import _sjson

    assert _sjson.EXPORT_ID_COLUMNS == ID_COLUMNS


def schema(*, fields: bool = True, ids: bool = True) -> Any:
    """The ``pyarrow.Schema`` of an export (see the module's table)."""
    pa = require_pyarrow()
    cols = [
        pa.field("sequence", pa.uint64(), nullable=False),
        pa.field("kind", pa.dictionary(pa.int8(), pa.string()), nullable=False),
        pa.field("time", pa.uint64(), nullable=False),
    ]
    if ids:
        cols += [pa.field(name, pa.string()) for name in ID_COLUMNS]
    if fields:
        cols.append(pa.field("fields", pa.string()))
    return pa.schema(cols, metadata={"actionqueue.export.schema": SCHEMA_VERSION})


# --------------------------------------------------------------------------------------
# the records' ids and JSON, in bulk
# --------------------------------------------------------------------------------------
def _ids_of(event: Any) -> tuple[Any, Any, Any]:
    """The (task, run, attempt) ids an event carries (the native pass tags the same)."""
    t = type(event)
    if t is _model.TaskCreated:
        return event.task_spec.id, None, None
    if t is _model.RunCreated:
        return event.run_instance.task_id, event.run_instance.id, None
    return getattr(event, "task_id", None), getattr(event, "run_id", None), getattr(event, "attempt_id", None)


def _ends(lengths: list[int]) -> np.ndarray:
    ends = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=ends[1:])
    return ends


def events_json_py(buf: Any, offsets: np.ndarray, mode: int = BODY) -> tuple[bytes, np.ndarray, list, np.ndarray]:
    """The pure-Python twin of ``_sjson.events_json`` (the same results): decodes each
    record and renders it with :mod:`actionqueue.model.json`."""
    events = _walker.decode_at(buf, offsets.tolist())
    texts: list[bytes] = []
    id_texts: list[list[bytes]] = [[], [], []]
    id_lengths: list[list[int]] = [[], [], []]
    for we in events:
        if mode == LINES:
            texts.append(dumps(to_builtins(we)).encode() + b"\n")
        elif mode == BODY:
            texts.append(dumps(to_builtins(we.event)[type(we.event).__name__]).encode())
        for j, value in enumerate(_ids_of(we.event)):
            text = b"" if value is None else str(value).encode()
            id_texts[j].append(text)
            id_lengths[j].append(len(text))
    ends = _ends([len(t) for t in texts]) if mode != NONE else np.zeros(len(events) + 1, np.int64)
    id_ends = np.stack([_ends(n) for n in id_lengths]).astype(np.int32) if events else np.zeros((3, 1), np.int32)
    return b"".join(texts), ends, [np.frombuffer(b"".join(t), np.uint8) for t in id_texts], id_ends


def events_json(buf: Any, offsets: np.ndarray, mode: int = BODY) -> tuple[bytes, np.ndarray, list, np.ndarray]:
    """The JSON (``mode`` 0: the events' fields; 1: JSON lines of the whole ``WalEvent``;
    2: none) and the ids of the records at ``offsets`` in ``buf``, as Arrow's string
    layout: ``(text, ends, id_text, id_ends)`` (see ``_sjson.events_json``)."""
    if NATIVE:
        return _sjson.events_json(buf, np.ascontiguousarray(offsets, np.uint64), mode)
    return events_json_py(buf, offsets, mode)


# --------------------------------------------------------------------------------------
# batches
# --------------------------------------------------------------------------------------
def _slices(cols: ScanColumns, batch_events: int) -> Iterator[slice]:
    """Row ranges of at most ``batch_events`` events and ~BATCH_PAYLOAD_BYTES of payload."""
    n = len(cols)
    if n == 0:
        return
    # the running payload size marks where each range must end
    csum = np.cumsum(cols.length, dtype=np.uint64)
    start = 0
    while start < n:
        base = int(csum[start - 1]) if start else 0
        by_bytes = int(np.searchsorted(csum, base + BATCH_PAYLOAD_BYTES, side="right"))
        stop = min(n, start + batch_events, max(by_bytes, start + 1))
        yield slice(start, stop)
        start = stop


def _chunks(data_dir: Any, kinds: Iterable | None, min_sequence: int | None, max_sequence: int | None,
            batch_events: int) -> Iterator[tuple[Any, ScanColumns, slice]]:
    """(the file's bytes, its columns, a row range) per batch, file after file."""
    if batch_events < 1:
        raise ValueError(f"batch_events must be at least 1, not {batch_events}")
    for scanner, cols in iter_scan(data_dir, kinds, min_sequence, max_sequence):
        for rows in _slices(cols, batch_events):
            yield scanner._buf, cols, rows


def _strings(pa: Any, n: int, ends: np.ndarray, data: Any, nullable: bool) -> Any:
    """An Arrow string array from its offsets and bytes (no copy); with ``nullable``,
    empty strings are nulls."""
    validity, null_count = None, 0
    if nullable:
        present = ends[1:] != ends[:-1]
        null_count = n - int(np.count_nonzero(present))
        if null_count:
            validity = pa.py_buffer(np.packbits(present, bitorder="little"))
    if ends[-1] > 0x7FFFFFFF:  # pragma: no cover - batches are bounded far below
        raise OverflowError("a batch's text exceeds 2 GiB")
    return pa.StringArray.from_buffers(n, pa.py_buffer(ends.astype(np.int32)), pa.py_buffer(data), validity,
                                       null_count)


def _batch(pa: Any, sch: Any, buf: Any, cols: ScanColumns, rows: slice, fields: bool, ids: bool) -> Any:
    seq, kind, time = cols.sequence[rows], cols.kind[rows], cols.time[rows]
    arrays = [pa.array(seq), arrow_kind(kind), pa.array(time)]
    n = len(seq)
    if ids or fields:
        text, ends, id_text, id_ends = events_json(buf, cols.offset[rows], BODY if fields else NONE)
        if ids:
            arrays += [_strings(pa, n, id_ends[j], id_text[j], True) for j in range(len(ID_COLUMNS))]
        if fields:
            arrays.append(_strings(pa, n, ends, text, False))
    return pa.RecordBatch.from_arrays(arrays, schema=sch)


def record_batches(data_dir: Any, *, fields: bool = True, ids: bool = True, kinds: Iterable | None = None,
                   min_sequence: int | None = None, max_sequence: int | None = None,
                   batch_events: int = DEFAULT_BATCH_EVENTS) -> Iterator[Any]:
    """The log of ``data_dir`` as ``pyarrow.RecordBatch``es of :func:`schema`, oldest
    first, streamed (at most ``batch_events`` events each). ``kinds``, ``min_sequence``
    and ``max_sequence`` select records as :func:`~actionqueue.scan` does. A damaged log
    raises :class:`~actionqueue.errors.WalCorruption` (``TornTail``, ...) when the scan
    reaches the damaged file, before any of its batches."""
    pa = require_pyarrow()
    sch = schema(fields=fields, ids=ids)
    for buf, cols, rows in _chunks(data_dir, kinds, min_sequence, max_sequence, batch_events):
        yield _batch(pa, sch, buf, cols, rows, fields, ids)


def to_arrow(data_dir: Any, *, fields: bool = True, ids: bool = True, kinds: Iterable | None = None,
             min_sequence: int | None = None, max_sequence: int | None = None,
             batch_events: int = DEFAULT_BATCH_EVENTS) -> Any:
    """The log of ``data_dir`` as one ``pyarrow.Table`` of :func:`schema` (the batches of
    :func:`record_batches` as its chunks). ``fields=False, ids=False`` is the scan's
    columns alone, handed over without copies."""
    pa = require_pyarrow()
    batches = record_batches(data_dir, fields=fields, ids=ids, kinds=kinds, min_sequence=min_sequence,
                             max_sequence=max_sequence, batch_events=batch_events)
    return pa.Table.from_batches(list(batches), schema=schema(fields=fields, ids=ids))


# --------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------
def check_output(data_dir: Any, out: Any) -> None:
    """Refuse an output path inside ``data_dir``'s ``wal/`` or ``snapshots/``
    (:class:`ValueError`): the export would become a foreign file in the log, or the data
    dir's snapshot."""
    parent = Path(out).parent.resolve()
    for name in (WAL_DIR, SNAPSHOTS_DIR):
        inner = (Path(data_dir) / name).resolve()
        if parent == inner or inner in parent.parents:
            raise ValueError(f"{out}: inside the data dir's {name}/; write the export elsewhere")


@contextmanager
def _replacing(out: Any, overwrite: bool) -> Iterator[str]:
    """A temporary file beside ``out``, renamed over it when the block succeeds (after an
    fsync) and removed when it fails: ``out`` is never a half-written file. An existing
    ``out`` raises :class:`FileExistsError` unless ``overwrite``; one that is not a regular
    file (a directory, a device such as ``/dev/null``, a pipe, a socket) is never replaced."""
    path = Path(out)
    if path.is_dir():
        raise IsADirectoryError(21, "the output is a directory", str(path))
    if path.exists() and not path.is_file():
        raise FileExistsError(17, "the output exists and is not a regular file (a device, pipe or socket)", str(path))
    if path.exists() and not overwrite:
        raise FileExistsError(17, "the output file exists (overwrite it with --force / overwrite=True)", str(path))
    tmp = str(path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    with _writing(path):
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the umask applies, as to any new file
    try:
        yield tmp
        with _writing(path):
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


@contextmanager
def _writing(out: Path) -> Iterator[None]:
    """An :class:`OSError` of the block (which writes the output, never reads the log) as
    an :class:`~actionqueue.errors.OutputError` naming ``out``: the fault is the output."""
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(exc.errno, exc.strerror or str(exc), str(out)) from exc


@contextmanager
def _output_writer(out: Path, make: Callable[[], Any]) -> Iterator[Any]:
    """``make()`` (a pyarrow writer of the temporary file), closed after the block: a
    failure to create, write (see :func:`_write_batches`) or close it (the footer, the
    last buffered bytes) is an :class:`~actionqueue.errors.OutputError`."""
    with _writing(out):
        writer = make()
    try:
        yield writer
    except BaseException:
        try:
            writer.close()
        except Exception:  # noqa: BLE001 - the block's error is the one to report
            pass
        raise
    with _writing(out):
        writer.close()


def _write_batches(writer: Any, batches: Iterator[Any], on_batch: OnBatch | None, out: Path) -> int:
    """Write the batches in order, each in a worker thread while this one builds the next:
    pyarrow encodes and compresses without the interpreter lock, so on two cores the
    JSON and ids of batch k+1 are made while batch k is compressed (one batch in flight
    at a time, so memory holds at most two). A failure of either side propagates after the
    write in flight has finished."""
    n = 0
    with ThreadPoolExecutor(1, thread_name_prefix="actionqueue-export") as pool:
        pending: Future[None] | None = None
        pending_rows = 0
        try:
            for batch in batches:
                if pending is not None:
                    n += _finish(pending, pending_rows, on_batch)
                pending, pending_rows = pool.submit(_write_batch, writer, batch, out), batch.num_rows
        finally:
            if pending is not None:  # also when building a batch failed: let its write end
                pending.exception()
        if pending is not None:
            n += _finish(pending, pending_rows, on_batch)
    return n


def _write_batch(writer: Any, batch: Any, out: Path) -> None:
    with _writing(out):
        writer.write_batch(batch)


def _finish(pending: Future[None], rows: int, on_batch: OnBatch | None) -> int:
    pending.result()  # the write's error, if any
    if on_batch is not None:
        on_batch(rows)
    return rows


def write_parquet(data_dir: Any, out: Any, *, overwrite: bool = False, compression: str = "zstd",
                  on_batch: OnBatch | None = None, **select: Any) -> int:
    """Write the log of ``data_dir`` to the Parquet file ``out`` (one row group per record
    batch; ``compression`` as pyarrow names it: ``zstd``, ``snappy``, ``none``, ...),
    through a temporary file renamed into place. ``select`` takes :func:`record_batches`'
    options; ``on_batch(n)`` is called after each batch. Returns the number of events."""
    require_pyarrow("the Parquet export")
    import pyarrow.parquet as pq

    check_output(data_dir, out)
    batches = record_batches(data_dir, **select)
    sch = schema(fields=select.get("fields", True), ids=select.get("ids", True))
    with _replacing(out, overwrite) as tmp:
        dictionary = [name for name in ("kind",) if name in sch.names]  # ids and JSON: unique values
        # pyarrow takes a list of column names here; its inline annotation says bool
        with _output_writer(Path(out), lambda: pq.ParquetWriter(
                tmp, sch, compression=compression,
                use_dictionary=dictionary)) as writer:  # pyright: ignore[reportArgumentType]
            n = _write_batches(writer, batches, on_batch, Path(out))
    return n


def write_arrow(data_dir: Any, out: Any, *, overwrite: bool = False, on_batch: OnBatch | None = None,
                **select: Any) -> int:
    """Write the log of ``data_dir`` to ``out`` in the Arrow IPC file format (Feather v2:
    ``pyarrow.ipc.open_file``, ``duckdb``'s ``arrow`` extension, ``polars.read_ipc``),
    uncompressed, through a temporary file renamed into place. Options as
    :func:`write_parquet`. Returns the number of events."""
    pa = require_pyarrow()
    check_output(data_dir, out)
    batches = record_batches(data_dir, **select)
    sch = schema(fields=select.get("fields", True), ids=select.get("ids", True))
    with _replacing(out, overwrite) as tmp:
        with _output_writer(Path(out), lambda: pa.OSFile(tmp, "wb")) as sink, \
                _output_writer(Path(out), lambda: pa.ipc.new_file(sink, sch)) as writer:
            n = _write_batches(writer, batches, on_batch, Path(out))
    return n


def write_jsonl(data_dir: Any, out: Any, *, overwrite: bool = False, on_batch: OnBatch | None = None,
                kinds: Iterable | None = None, min_sequence: int | None = None, max_sequence: int | None = None,
                batch_events: int = DEFAULT_BATCH_EVENTS) -> int:
    """Write the log of ``data_dir`` to ``out`` as JSON lines, one ``WalEvent`` per line
    in Rust's serde_json shape (``actionqueue dump``'s lines; read back with
    ``actionqueue.WalEvent.from_json``), through a temporary file renamed into place.
    Needs no pyarrow. Returns the number of events."""
    check_output(data_dir, out)
    n = 0
    with _replacing(out, overwrite) as tmp, _output_writer(Path(out), lambda: open(tmp, "wb")) as f:
        for buf, cols, rows in _chunks(data_dir, kinds, min_sequence, max_sequence, batch_events):
            text = events_json(buf, cols.offset[rows], LINES)[0]
            with _writing(Path(out)):
                f.write(text)
            count = rows.stop - rows.start
            n += count
            if on_batch is not None:
                on_batch(count)
    return n
