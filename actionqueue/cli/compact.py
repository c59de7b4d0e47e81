"""``actionqueue compact DIR``: remove (or archive) the log segments the snapshot covers."""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..log.archive import LocalArchive
from ..log.retention import compact, covered_segments
from ..log.writer import WalWriter
from ..snapshot import load_snapshot
from ._common import data_dir, fmt_bytes, usage_error

NAME = "compact"
HELP = "remove (or archive) the log segments the data dir's snapshot covers"
DESCRIPTION = """\
Check the data dir's snapshot (it must load and validate: it is what replaces the removed
events), then remove every sealed log segment wholly at or below its sequence, through the
log's MANIFEST, so that recovery knows the log now starts after it. With --archive, each
segment and its seal are first copied into that directory (synced), to restore from. Opens
the writer: no other writer may have the data dir open. Take a snapshot first
('actionqueue snapshot DIR') to compact up to the end of the log.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``compact``."""
    p.add_argument("dir", metavar="DIR", help="data dir")
    p.add_argument("--archive", metavar="PATH", help="copy the segments into this directory before removing them")
    p.add_argument("--dry-run", action="store_true", help="say what would be removed, change nothing")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    """Compact; print what was removed."""
    directory = data_dir(args.dir)
    if args.archive and os.path.exists(args.archive) and not os.path.isdir(args.archive):
        raise usage_error(f"--archive {args.archive}: is a file; expected a directory (created if missing)")
    snapshot = load_snapshot(directory)
    if snapshot is None:  # not a problem in the data: a step to take first
        raise usage_error(f"{directory} has no snapshot: nothing may be removed (run 'actionqueue snapshot' first)")
    through = int(snapshot["metadata"]["wal_sequence"])
    archive = LocalArchive(args.archive) if args.archive else None
    with WalWriter(directory) as writer:
        segments = covered_segments(writer, through)
        size = sum(s.path.stat().st_size for s in segments)
        removed = [s.path for s in segments] if args.dry_run else compact(writer, through, archive)
        base = writer.base_sequence
    info = {"snapshot_sequence": through, "segments": [str(p) for p in removed], "bytes": size,
            "archive": args.archive, "dry_run": args.dry_run, "log_starts_after": base}  # fmt: skip
    if args.json:
        json.dump(info, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    verb = "would remove" if args.dry_run else ("archived and removed" if archive else "removed")
    print(f"{directory}: snapshot at {through}; {verb} {len(removed)} segments ({fmt_bytes(size)})"
          + (f"; the log now starts after {base}" if not args.dry_run else ""))
    return 0
