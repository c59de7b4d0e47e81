"""``actionqueue verify DIR``: check every record, every sealed segment's digest and the
snapshot, without changing anything."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import RecoveryError, UnknownFile
from ..snapshot import SnapshotError, load_snapshot
from ..wal import TornTail, WalCorruption, verify
from ._common import (
    CliError,
    data_dir,
    describe_corruption,
    replay_readonly,
    snapshot_file,
)

NAME = "verify"
HELP = "check every record, sealed-segment digest and the snapshot; exit 1 on the first problem"
DESCRIPTION = """\
Check a data dir without changing it: sealed segments against their seal (length and
xxh3-128 digest; --decode-sealed decodes them record by record as well), the active
segment or a Rust single-file log record by record (framing, CRC-32, payload, increasing
sequences), and the snapshot (frame, CRC-32, JSON, schema checks, and that its sequence is
not beyond the log's). --replay also replays the log through the reducer, from the log's
first record (from the snapshot with --from-snapshot, or when the log starts after one),
and names the first event replay rejects.

Exit 0 when everything is clean; 1 with the first problem's file, offset and kind.
A torn tail (a crash in the middle of an append) is repaired by 'actionqueue repair'.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``verify``."""
    p.add_argument("dir", metavar="DIR", help="data dir")
    p.add_argument("--decode-sealed", action="store_true", help="also decode sealed segments record by record")
    p.add_argument("--replay", action="store_true", help="also replay the log through the reducer (read-only)")
    p.add_argument("--from-snapshot", action="store_true",
                   help="with --replay: start from the snapshot instead of the log's first record")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing when clean")


def _problem(file: Path | str | None, offset: int | None, kind: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"file": None if file is None else str(file), "offset": offset, "kind": kind, "message": message, **extra}


def check(directory: Path, *, decode_sealed: bool = False, replay: bool = False,
          from_snapshot: bool = False) -> dict[str, Any]:
    """Run every check; the result holds ``files`` checked, ``records``,
    ``last_sequence``, ``snapshot`` and the first ``problem`` (None when clean)."""
    # (no progress bar here: wal.verify() has no progress hook; the replay below has one)
    report = verify(directory, decode_sealed=decode_sealed)
    result: dict[str, Any] = {
        "data_dir": str(directory),
        "files": [{"file": str(p), "result": what} for p, what in report.files],
        "records": report.records,
        "last_sequence": report.last_sequence,
        "base_sequence": report.base_sequence,
        "snapshot": None,
        "problem": None,
    }
    if report.problem is not None:
        c = report.problem
        result["problem"] = _problem(c.path, c.offset, c.kind, describe_corruption(c), reason=c.reason,
                                     torn_tail=isinstance(c, TornTail))
        return result
    snap_path = snapshot_file(directory)
    try:
        snap = load_snapshot(directory)
    except SnapshotError as exc:
        result["problem"] = _problem(snap_path, 0, exc.kind, f"{snap_path}: {type(exc).__name__} ({exc.kind}): {exc}")
        return result
    if snap is not None:
        seq = int(snap["metadata"]["wal_sequence"])
        result["snapshot"] = {"file": str(snap_path), "sequence": seq, "timestamp": int(snap["timestamp"])}
        last = report.last_sequence
        if last is not None and seq > last:
            result["problem"] = _problem(snap_path, 0, "SnapshotBeyondLog",
                                         f"{snap_path}: snapshot at sequence {seq} is beyond the log's last {last}")
            return result
    base = report.base_sequence
    snap_seq = result["snapshot"]["sequence"] if result["snapshot"] else None
    if base and (snap_seq is None or snap_seq < base):
        have = f"the snapshot is at {snap_seq}" if snap_seq is not None else "there is no snapshot"
        result["problem"] = _problem(None, None, "LogStartUncovered",
                                     f"{directory}: the log starts after sequence {base} and {have}: "
                                     f"events 1..{base} are not recoverable")
        return result
    if replay:
        try:
            rep = replay_readonly(directory, use_snapshot=from_snapshot)
        except WalCorruption as exc:  # pragma: no cover - verify() found it already
            result["problem"] = _problem(exc.path, exc.offset, exc.kind, describe_corruption(exc))
            return result
        except (CliError, RecoveryError) as exc:
            result["problem"] = _problem(None, None, "ReplayError", str(exc))
            return result
        result["replay"] = {"events_applied": rep.events_applied, "from_snapshot_sequence": rep.snapshot_sequence,
                            "latest_sequence": rep.reducer.latest_sequence, "tasks": rep.reducer.task_count,
                            "runs": rep.reducer.run_count}
    return result


def run(args: argparse.Namespace) -> int:
    """Print what was checked; exit 0 clean, 1 with the first problem."""
    try:
        directory = data_dir(args.dir)
    except UnknownFile:  # a data dir with a foreign file in wal/: the check reports it below
        directory = Path(args.dir)
    result = check(directory, decode_sealed=args.decode_sealed, replay=args.replay,
                   from_snapshot=args.from_snapshot)
    problem = result["problem"]
    out = sys.stdout
    if args.json:
        json.dump(result, out, indent=1)
        out.write("\n")
        return 1 if problem else 0
    if not args.quiet or problem:
        for f in result["files"]:
            out.write(f"ok    {f['file']}  ({f['result']})\n")
        if result["snapshot"]:
            s = result["snapshot"]
            out.write(f"ok    {s['file']}  (snapshot at sequence {s['sequence']})\n")
    out.flush()
    if problem:
        torn = problem.get("torn_tail")
        hint = "; a torn tail: 'actionqueue repair DIR' cuts it off (keeping a backup)" if torn else ""
        print(f"actionqueue verify: PROBLEM: {problem['message']}{hint}", file=sys.stderr)
        return 1
    if not args.quiet:
        last = result["last_sequence"]
        extra = ""
        if "replay" in result:
            r = result["replay"]
            extra = f"; replayed {r['events_applied']:,} events ({r['tasks']} tasks, {r['runs']} runs)"
        out.write(f"clean: {result['records']:,} records, last sequence {last if last is not None else '-'}{extra}\n")
    return 0
