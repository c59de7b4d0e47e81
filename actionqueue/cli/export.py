"""``actionqueue export DIR OUT``: the log as Parquet, Arrow IPC or JSON lines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..errors import MissingExtra
from ._common import SEQUENCE, data_dir, sigterm_raises, fmt_bytes, parse_kinds, progress, usage_error

NAME = "export"
HELP = "write the log as Parquet, Arrow IPC or JSON lines (for DuckDB, Polars, pandas)"
DESCRIPTION = """\
Write every event of a data dir's log to OUT, oldest first, as Parquet (--format parquet),
an Arrow IPC file (--format arrow; Feather v2) or JSON lines (--format jsonl, the lines of
'actionqueue dump'). Without --format the suffix of OUT decides (.parquet, .arrow /
.feather / .ipc, .jsonl / .ndjson).

Parquet and Arrow rows: sequence (uint64), kind (dictionary string), time (uint64 Unix
seconds), task_id, run_id, attempt_id (UUID strings or null) and fields (the event's
fields as JSON; --no-fields leaves it out). Parquet and Arrow need the 'arrow' extra
(pip install 'actionqueue[arrow]'); jsonl needs nothing.

OUT is written through a temporary file renamed into place: it is never left half
written. An existing OUT is refused unless --force. Every record is checked as it is read;
a damaged log (a torn tail included) exports nothing and exits 1: see 'actionqueue verify'
and 'actionqueue repair'. A failure writing OUT (no space, a read-only file system, no
permission) exits 2; SIGTERM or Ctrl-C removes the temporary file (exit 143 or 130).

examples:
  actionqueue export data events.parquet
  duckdb -c "SELECT kind, count(*) FROM 'events.parquet' GROUP BY kind"
  actionqueue export data --format arrow --kind RunStateChanged --no-fields out.arrow
"""

#: --format values, and the suffixes that imply them
FORMATS = {"parquet": (".parquet", ".pq"), "arrow": (".arrow", ".feather", ".ipc"), "jsonl": (".jsonl", ".ndjson")}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``export``."""
    p.add_argument("dir", metavar="DIR", help="data dir")
    p.add_argument("out", metavar="OUT", help="the file to write")
    p.add_argument("--format", choices=tuple(FORMATS), help="output format (default: from OUT's suffix)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--no-fields", action="store_true", help="parquet/arrow: leave out the fields (JSON) column")
    p.add_argument("--kind", action="append", metavar="KIND",
                   help="only events of this kind (e.g. RunStateChanged); repeatable or comma-separated")
    p.add_argument("--from-seq", type=SEQUENCE, metavar="N", help="only sequences >= N")
    p.add_argument("--to-seq", type=SEQUENCE, metavar="N", help="only sequences <= N")
    p.add_argument("--compression", default="zstd", choices=("zstd", "snappy", "lz4", "gzip", "none"),
                   help="parquet compression (default zstd)")


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return str(args.format)
    suffix = Path(args.out).suffix.lower()
    for name, suffixes in FORMATS.items():
        if suffix in suffixes:
            return name
    raise usage_error(f"{args.out}: cannot tell the format from the suffix {suffix or '(none)'!r}; "
                      "give --format parquet, arrow or jsonl")


def run(args: argparse.Namespace) -> int:
    """Export the log; exit 0, 1 when the log is damaged, 2 for a usage error."""
    from .. import export

    directory = data_dir(args.dir)
    fmt = _format(args)
    out = Path(args.out)
    try:
        export.check_output(directory, out)
    except ValueError as exc:
        raise usage_error(str(exc)) from None
    if out.is_dir():
        raise usage_error(f"{out}: is a directory; expected a file name")
    if out.exists() and not out.is_file():
        raise usage_error(f"{out}: is not a regular file (a device, pipe or socket); export writes a new file "
                          "and renames it into place")
    if out.exists() and not args.force:
        raise usage_error(f"{out}: exists; give --force to replace it")
    if not out.parent.is_dir():
        raise usage_error(f"{out.parent}: no such directory")
    if args.from_seq is not None and args.to_seq is not None and args.from_seq > args.to_seq:
        raise usage_error(f"--from-seq {args.from_seq} is above --to-seq {args.to_seq}")
    select = {"kinds": parse_kinds(args.kind), "min_sequence": args.from_seq, "max_sequence": args.to_seq}
    bar = progress(None, "exporting", "ev", unit_scale=True)
    # SIGTERM raises Terminated (exit 143) so that OUT's temporary file is removed as on
    # Ctrl-C; a failure writing OUT is an OutputError (exit 2: the output, not the data)
    try:
        with sigterm_raises():
            n = _export(export, directory, out, fmt, args, select, bar)
    except MissingExtra as exc:
        raise usage_error(f"--format {fmt}: {exc}") from None
    finally:
        bar.close()
    sys.stdout.write(f"exported {n:,} events to {out} ({fmt}, {fmt_bytes(out.stat().st_size)})\n")
    return 0


def _export(export: Any, directory: Path, out: Path, fmt: str, args: argparse.Namespace, select: dict[str, Any],
            bar: Any) -> int:
    if fmt == "jsonl":
        return int(export.write_jsonl(directory, out, overwrite=True, on_batch=bar.update, **select))
    if fmt == "parquet":
        return int(export.write_parquet(directory, out, overwrite=True, on_batch=bar.update,
                                        fields=not args.no_fields, compression=args.compression, **select))
    return int(export.write_arrow(directory, out, overwrite=True, on_batch=bar.update, fields=not args.no_fields,
                                  **select))
