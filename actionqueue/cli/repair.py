"""``actionqueue repair DIR``: cut damaged bytes out of a log, keeping every valid record
and a backup of what is removed."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..recovery import repair
from ._common import EXIT_PROBLEM, CliError, data_dir, fmt_bytes, usage_error

NAME = "repair"
HELP = "show what a repair would cut, ask (or --yes), back it up, then cut it"
DESCRIPTION = """\
Remove damaged bytes from a data dir's log, keeping every valid record: a torn tail (the
incomplete or damaged last record a crash leaves) is cut off; damage followed by valid
records is cut out up to the next valid record. What would be cut is shown first; on a
terminal you are asked to confirm, otherwise --yes is required. The removed bytes are
saved in wal/repair-backup/ before any file is rewritten (atomically). A record whose
sequence does not increase is valid data out of order: it is reported, never cut.

Before anything changes the repaired log is replayed through the reducer: a cut that
leaves a log that no longer replays from its start is refused, unless a usable snapshot
covers the cut; --truncate-at-damage cuts the log at the first damage instead (all that
follows goes to the backup). A segment whose first records are cut takes the name of its
new first sequence. Do not run it while a writer has the data dir open (it takes the
writer's lock).

Exit 0 when the log is clean afterwards (nothing to repair, or repaired); 1 when damage
stays (--dry-run, a repair declined or refused); 2 for a usage error.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``repair``."""
    p.add_argument("dir", metavar="DIR", help="data dir")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask; cut what the dry run shows")
    p.add_argument("-n", "--dry-run", action="store_true", help="only show what would be cut")
    p.add_argument("--truncate-at-damage", action="store_true",
                   help="cut the log at its first damage, everything after it (kept in the backup)")


def _show(results: Any, out: Any) -> None:
    for r in results:
        fate = "removed whole" if r.removed else f"{r.records_kept:,} valid records kept"
        renamed = f", renamed {r.new_path.name}" if r.new_path is not None else ""
        out.write(f"{r.path}: {len(r.cuts)} cut(s), {fmt_bytes(r.bytes_cut)}; {fate}{renamed}\n")
        for offset, length in r.cuts:
            out.write(f"  cut offset {offset}, {length} bytes\n")
    if getattr(results, "replay", None):
        out.write(f"afterwards the log {results.replay}\n")


def _confirm(question: str) -> bool:
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


def run(args: argparse.Namespace) -> int:
    """Repair the data dir (after confirmation); exit 0 when it is clean afterwards (or
    was), 1 when damage stays (a dry run, or a repair declined)."""
    directory = data_dir(args.dir)
    out = sys.stdout
    plan = repair(directory, dry_run=True, truncate_at_damage=args.truncate_at_damage)
    if not plan:
        out.write(f"{directory}: nothing to repair\n")
        return 0
    total = sum(r.bytes_cut for r in plan)
    out.write("would cut:\n" if not args.dry_run else "a repair would cut:\n")
    _show(plan, out)
    out.flush()
    if args.dry_run:
        return EXIT_PROBLEM  # damage found (and left as it is)
    if not args.yes:
        if not sys.stdin.isatty():
            raise usage_error("refusing to repair without --yes: standard input is not a terminal")
        if not _confirm(f"Cut {fmt_bytes(total)} from {len(plan)} file(s)? A backup goes to wal/repair-backup/."):
            raise CliError("not repaired")
    done = repair(directory, truncate_at_damage=args.truncate_at_damage)
    for r in done:
        out.write(f"repaired {r.path}: cut {fmt_bytes(r.bytes_cut)}, backup in {r.backup}\n")
    if [(r.path, r.cuts) for r in done] != [(r.path, r.cuts) for r in plan]:
        out.write("note: the log changed between the dry run and the repair; the cuts above are what was done\n")
    return 0
