"""``actionqueue dump DIR``: the events of a log as JSON lines (Rust serde shape) or a table."""

from __future__ import annotations

import argparse
import enum
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import model as _model
from ._common import (
    SEQUENCE,
    UNIX_TIME,
    data_dir,
    event_time,
    fmt_time,
    iter_events,
    parse_id,
    parse_kinds,
    usage_error,
)

NAME = "dump"
HELP = "print the events of a data dir's log (JSON lines or a table), with filters"
DESCRIPTION = """\
Print every event of a data dir's log (or of one log file), oldest first.

JSON lines are exactly what the Rust original's serde_json writes for a WalEvent:
  {"sequence":1,"event":{"RunStateChanged":{"run_id":"...","previous_state":"Scheduled",...}}}

Filters combine (an event is printed when it passes all of them). --task selects the
task's own events and those of its runs (runs are tied to the task by their RunCreated);
--since/--until compare the event's timestamp (RunCreated: created_at) in Unix seconds.
Reading streams the log (constant memory); a damaged record stops the dump with exit 1
after the events before it were printed.

examples:
  actionqueue dump data | head
  actionqueue dump data --kind RunStateChanged --kind LeaseExpired --format table
  actionqueue dump data --run 0f8fad5b-d9cb-469f-a165-70867728950e
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``dump``."""
    p.add_argument("dir", metavar="DIR", help="data dir (or a single log file)")
    p.add_argument("--format", choices=("json", "table"), default="json", help="output format (default json lines)")
    p.add_argument("--kind", action="append", metavar="KIND",
                   help="only events of this kind (class name, e.g. RunStateChanged); repeatable or comma-separated")
    p.add_argument("--task", metavar="ID", help="only events of this task and its runs")
    p.add_argument("--run", metavar="ID", help="only events of this run")
    p.add_argument("--from-seq", type=SEQUENCE, metavar="N", help="only sequences >= N")
    p.add_argument("--to-seq", type=SEQUENCE, metavar="N", help="only sequences <= N (stops reading there)")
    p.add_argument("--since", type=UNIX_TIME, metavar="T", help="only events at or after Unix time T (seconds)")
    p.add_argument("--until", type=UNIX_TIME, metavar="T", help="only events at or before Unix time T (seconds)")


def _run_id_of(event: Any) -> Any:
    rid = getattr(event, "run_id", None)
    if rid is None and type(event) is _model.RunCreated:
        rid = event.run_instance.id
    return rid


def _task_ids_of(event: Any) -> tuple:
    t = type(event)
    if t is _model.TaskCreated:
        return (event.task_spec.id,)
    if t is _model.RunCreated:
        return (event.run_instance.task_id,)
    if t is _model.DependencyDeclared:
        return (event.task_id, *event.depends_on)
    tid = getattr(event, "task_id", None)
    return () if tid is None else (tid,)


def filtered(source: Path, args: argparse.Namespace) -> Iterator[_model.WalEvent]:
    """The events of ``source`` that pass the filters in ``args`` (streamed)."""
    kinds = parse_kinds(args.kind)
    task = parse_id(_model.TaskId, args.task, "task") if args.task else None
    run = parse_id(_model.RunId, args.run, "run") if args.run else None
    lo, hi = args.from_seq, args.to_seq
    if lo is not None and hi is not None and lo > hi:
        raise usage_error(f"--from-seq {lo} is above --to-seq {hi}")
    if args.since is not None and args.until is not None and args.since > args.until:
        raise usage_error(f"--since {args.since} is after --until {args.until}")
    return _select(source, kinds, task, run, lo, hi, args.since, args.until)


def _select(source: Path, kinds: Any, task: Any, run: Any, lo: int | None, hi: int | None,
            since: int | None, until: int | None) -> Iterator[_model.WalEvent]:
    task_runs: set = set()
    # --task needs the RunCreated events before --from-seq to know the task's runs
    start = None if task is not None else lo
    for we in iter_events(source, start, desc="dumping"):
        seq = we.sequence
        if hi is not None and seq > hi:
            break
        ev = we.event
        if task is not None:
            rid = _run_id_of(ev)
            if type(ev) is _model.RunCreated and ev.run_instance.task_id == task:
                task_runs.add(rid)
            if task not in _task_ids_of(ev) and (rid is None or rid not in task_runs):
                continue
        if lo is not None and seq < lo:
            continue
        if kinds is not None and type(ev) not in kinds:
            continue
        if run is not None and _run_id_of(ev) != run:
            continue
        if since is not None or until is not None:
            ts = event_time(ev)
            if (since is not None and ts < since) or (until is not None and ts > until):
                continue
        yield we


# --------------------------------------------------------------------------------------
# table
# --------------------------------------------------------------------------------------
def _short(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, enum.Enum):
        return str(getattr(value, "value", value.name))
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} B>"
    if isinstance(value, tuple):
        return "[" + ",".join(_short(v) for v in value) + "]"
    if isinstance(value, _model.TaskSpec):
        policy = type(value.run_policy).__name__.replace("Policy", "").lower()
        return f"{value.id} policy={policy} priority={value.metadata.priority}"
    if isinstance(value, _model.RunInstance):
        return f"{value.id} task={value.task_id} state={value.state.value} scheduled={value.scheduled_at}"
    if hasattr(value, "uuid"):  # identifiers: the canonical UUID string
        return str(value)
    if hasattr(value, "to_json") and not isinstance(value, (int, str)):
        return value.to_json()
    return str(value)


def describe(event: Any) -> str:
    """The fields of an event but its timestamp, as ``name=value`` pairs."""
    parts = []
    for name in type(event).__dataclass_fields__:
        if name == "timestamp":
            continue
        parts.append(f"{name}={_short(getattr(event, name))}")
    return " ".join(parts)


def run(args: argparse.Namespace) -> int:
    """Print the selected events; exit 0, or 1 when the log is damaged."""
    source = data_dir(args.dir, allow_file=True)
    out = sys.stdout
    write = out.write
    if args.format == "json":
        for we in filtered(source, args):
            write(we.to_json())
            write("\n")
    else:
        write(f"{'SEQ':>10}  {'TIME (UTC)':19}  {'KIND':21}  DETAILS\n")
        for we in filtered(source, args):
            ev = we.event
            write(f"{we.sequence:>10}  {fmt_time(event_time(ev)):19}  {type(ev).__name__:21}  {describe(ev)}\n")
    out.flush()
    return 0
