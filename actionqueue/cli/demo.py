"""``actionqueue demo [DIR]``: the main job, a worker workload end to end.

Plays a small task queue deployment on a fresh data dir (a temporary one unless DIR is
given) through the public API, crashes it, recovers it and checks that nothing
acknowledged was lost; prints a table of what each phase did.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .. import model as m
from ..state.authority import MutationAuthority
from ..recovery import open as recover
from ..recovery import replay_to
from ..snapshot import load_snapshot
from ..wal import RepairPolicy, TornTail, verify
from ._common import (COUNT, U64_MAX, CliError, fmt_bytes, int_in, log_bytes, progress, progress_enabled, table,
                      usage_error)
from ._demo_workload import Workload, expected_events, monotonic_clock, plan_tasks

NAME = "demo"
HELP = "run a worker workload end to end: commands, snapshot, crash, recovery, verify"
DESCRIPTION = """\
The main job: a small task queue deployment played end to end on a fresh data dir
(a temporary one, removed afterwards unless --keep; or DIR, which must be empty or new).

  1. workload   a scheduler creates --tasks tasks (Once and Repeat policies; some with a
                token budget, a subscription or a dependency), derives their runs and
                makes them Ready; --workers threads lease them, start attempts, heartbeat,
                consume budget, fail and retry (RetryWait -> Ready), give leases back,
                get suspended and resumed, and complete; every command goes through
                actionqueue.MutationAuthority with group commit (durability "group")
  2. snapshot   MutationAuthority.snapshot (snapshot.bin, schema v8, and its image)
  3. more       a few commands after the snapshot (pause/resume, actor heartbeats)
  4. crash      a child process recovers the dir and appends more of the workload; in the
                middle of one write (half of the record on disk) it is killed (SIGKILL;
                TerminateProcess on Windows)
  5. recovery   actionqueue.open(DIR, repair_policy=TRUNCATE_PARTIAL): the snapshot, the
                log after it, the torn record cut
  6. replay     the whole log again without the snapshot, for comparison
  7. verify     actionqueue.verify and the snapshot

and checks: every acknowledged event survived, the unacknowledged torn record was cut,
recovery from the snapshot equals a full replay, the log verifies clean. Exit status 0
when every check passes, 1 otherwise. The numbers of events depend only on --seed and
--tasks (the thread interleaving changes the order, not the counts).
"""

#: Worker commands the crash child completes before its write is torn.
CRASH_COMMANDS = 400
#: Worker threads of the crash child.
CRASH_WORKERS = 2
#: ``type=`` of --seed.
SEED = int_in(0, U64_MAX, "a seed")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``demo``."""
    p.add_argument("dir", metavar="DIR", nargs="?", help="data dir to create (empty or new; default: a temporary dir)")
    p.add_argument("--tasks", type=COUNT, default=600, metavar="N", help="tasks the workload creates (default 600)")
    p.add_argument("--workers", type=COUNT, default=4, metavar="N", help="worker threads (default 4)")
    p.add_argument("--seed", type=SEED, default=1, help="seed of the workload's plan (default 1)")
    p.add_argument("--crash-commands", type=COUNT, default=CRASH_COMMANDS, metavar="N",
                   help=f"worker commands the crash child completes before its torn write (default {CRASH_COMMANDS})")
    p.add_argument("--crash-durability", choices=("group", "none"), default="group",
                   help="durability of the crash child's writer (default group)")
    p.add_argument("--keep", action="store_true", help="keep the temporary data dir (its path is printed)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")


def _note(text: str) -> None:
    if progress_enabled():
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


def _prepare_dir(path: str | None) -> tuple[Path, bool]:
    """The data dir and whether it is a temporary one."""
    if path is None:
        return Path(tempfile.mkdtemp(prefix="actionqueue-demo-")), True
    d = Path(path)
    if d.exists():
        if not d.is_dir():
            raise usage_error(f"{d}: is a file; expected an empty or new directory (the demo writes a fresh data dir)")
        if any(d.iterdir()):
            raise usage_error(f"{d}: not empty; the demo writes a fresh data dir (give a new path)")
    else:
        d.mkdir(parents=True)
    return d, False


def _phase(name: str, events: int, nbytes: int, seconds: float, **extra: Any) -> dict[str, Any]:
    return {"phase": name, "events": events, "bytes": nbytes, "seconds": seconds,
            "events_per_s": events / seconds if seconds > 0 and events else None, **extra}  # fmt: skip


def _snapshot_bytes(directory: Path) -> int:
    snaps = directory / "snapshots"
    return sum(f.stat().st_size for f in snaps.iterdir() if f.is_file()) if snaps.is_dir() else 0


def _runs_by_state(reducer: Any) -> dict[str, int]:
    return {s.value: len(reducer.runs_in_state(s)) for s in m.RunState if reducer.runs_in_state(s)}


# --------------------------------------------------------------------------------------
# the crash child
# --------------------------------------------------------------------------------------
def _child_env() -> dict[str, str]:
    """The environment of the child: ours, with this package importable."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("ACTIONQUEUE_NO_PROGRESS", None)
    return env


def crash_child(directory: Path, *, seed: int, first_index: int, commands: int, durability: str) -> dict[str, Any]:
    """Run the crash child (``actionqueue.cli._demo_child``) until its write is torn, kill
    it, and return what it acknowledged."""
    tasks = commands // 5 + 2  # more work than ``commands`` worker commands can finish
    argv = [sys.executable, "-m", "actionqueue.cli._demo_child", str(directory), durability,
            str(CRASH_WORKERS), str(tasks), str(seed), str(first_index), str(commands)]  # fmt: skip
    with tempfile.TemporaryFile() as errfile:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errfile, env=_child_env())
        timer = threading.Timer(120, proc.kill)  # never wait forever for a stuck child
        timer.daemon = True
        timer.start()
        ready_at = None
        killed_at = started  # set when the child is killed, right after its torn write
        start_seq = None
        acked_events = acked_commands = 0
        last_acked = 0
        torn: tuple[int, int] | None = None
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                parts = raw.decode(errors="replace").split()
                if not parts:
                    continue
                if parts[0] == "ready":
                    ready_at, start_seq = time.perf_counter(), int(parts[1])
                elif parts[0] == "ack":
                    first, n = int(parts[1]), int(parts[2])
                    acked_events += n
                    acked_commands += 1
                    last_acked = max(last_acked, first + n - 1)
                elif parts[0] == "torn":
                    torn = (int(parts[1]), int(parts[2]))
                    proc.kill()  # SIGKILL on POSIX, TerminateProcess on Windows
                    killed_at = time.perf_counter()
                    break
        finally:
            timer.cancel()
            if proc.poll() is None and torn is None:
                proc.kill()
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if torn is None:
            errfile.seek(0)
            err = errfile.read().decode(errors="replace").strip().splitlines()
            tail = err[-1] if err else f"exit status {proc.returncode}"
            raise CliError(f"the crash child ended before its torn write: {tail}")
    return {
        "start_sequence": start_seq,
        "acked_events": acked_events,
        "acked_commands": acked_commands,
        "last_acked_sequence": last_acked,
        "torn_bytes_written": torn[0],
        "torn_record_bytes": torn[1],
        "seconds": killed_at - (ready_at or started),
        "total_seconds": killed_at - started,
        "returncode": proc.returncode,
    }


# --------------------------------------------------------------------------------------
# the demo
# --------------------------------------------------------------------------------------
def play(directory: Path, *, tasks: int, workers: int, seed: int, crash_commands: int = CRASH_COMMANDS,
         crash_durability: str = "group") -> dict[str, Any]:
    """Run every phase on ``directory`` (an empty dir) and return the results: ``phases``
    (the table's rows), ``recovery``, ``verify``, ``projection`` and ``checks``."""
    phases: list[dict[str, Any]] = []
    checks: dict[str, bool] = {}
    clock = monotonic_clock()

    # 1. the workload -----------------------------------------------------------------
    started = time.perf_counter()
    store = recover(directory, durability="group")
    try:
        authority = MutationAuthority.from_store(store, clock=clock)
        bar = progress(None, "workload", "ev")
        workload = Workload(authority, workers=workers, clock=clock, on_outcome=lambda outs: bar.update(len(outs)))
        try:
            workload.setup(seed)
            plans = plan_tasks(seed, tasks, tenant=workload.tenant)
            expected = workload.events + expected_events(plans)
            if hasattr(bar, "total"):
                bar.total = expected
            _note(f"workload: {tasks} tasks, {sum(len(t.runs) for t in plans)} runs, {workers} workers, "
                  f"{expected:,} events (group commit)")  # fmt: skip
            workload.run_tasks(plans)
        finally:
            bar.close()
        seconds = time.perf_counter() - started
        written = workload.events
        checks["workload wrote the planned events, gapless"] = written == expected == authority.latest_sequence
        phases.append(_phase(f"workload ({workers} workers, group commit)", written, log_bytes(directory), seconds))

        # 2. snapshot ---------------------------------------------------------------------
        _note("snapshot")
        t0 = time.perf_counter()
        snapshot = authority.snapshot(clock())  # reads under the lock, writes after it
        snapshot_sequence = int(snapshot["metadata"]["wal_sequence"])
        phases.append(_phase("snapshot (build + write)", snapshot_sequence, _snapshot_bytes(directory),
                             time.perf_counter() - t0))  # fmt: skip

        # 3. a few commands after the snapshot ---------------------------------------------
        t0 = time.perf_counter()
        size0, before = log_bytes(directory), workload.events
        workload.cmd(authority.pause_engine)
        for actor in workload.actors:
            workload.cmd(authority.heartbeat_actor, actor)
        workload.cmd(authority.resume_engine)
        after_snapshot = workload.events - before
        phases.append(_phase("commands after the snapshot", after_snapshot, log_bytes(directory) - size0,
                             time.perf_counter() - t0))  # fmt: skip
        pre_crash_sequence = authority.latest_sequence
    finally:
        store.close()

    # 4. the crash ------------------------------------------------------------------------
    _note(f"crash: a child process appends ({crash_durability}) and is killed in the middle of a write")
    size0 = log_bytes(directory)
    child = crash_child(directory, seed=seed, first_index=tasks, commands=crash_commands, durability=crash_durability)
    checks["the child started at the log's end"] = child["start_sequence"] == pre_crash_sequence
    phases.append(_phase(f"crash child ({CRASH_WORKERS} workers, {crash_durability}), killed mid-write",
                         child["acked_events"], log_bytes(directory) - size0, child["seconds"]))  # fmt: skip

    # 5. recovery ---------------------------------------------------------------------------
    _note("recovery")
    t0 = time.perf_counter()
    with recover(directory, repair_policy=RepairPolicy.TRUNCATE_PARTIAL, durability="group") as store:
        seconds = time.perf_counter() - t0
        report = store.report
        recovered_states = _runs_by_state(store.reducer)
        tasks_recovered, runs_recovered = store.reducer.task_count, store.reducer.run_count
    torn = report.repaired
    cut = torn.bytes_to_cut if isinstance(torn, TornTail) else 0
    phases.append(_phase("recovery (snapshot + log tail, torn tail cut)", report.wal_events_applied, cut, seconds))
    expected_latest = pre_crash_sequence + child["acked_events"]
    recovery = {
        "snapshot_loaded": report.snapshot_loaded,
        "snapshot_source": report.snapshot_source,
        "snapshot_sequence": report.snapshot_sequence,
        "snapshot_error": report.snapshot_error,
        "events_replayed": report.wal_events_applied,
        "events_after_snapshot": after_snapshot,
        "child_acked_events": child["acked_events"],
        "child_acked_commands": child["acked_commands"],
        "latest_sequence": report.latest_sequence,
        "torn_tail": None if torn is None else {
            "file": str(torn.path), "offset": torn.offset, "bytes_cut": cut, "reason": torn.reason, "kind": torn.kind,
        },
        "child_torn_bytes_written": child["torn_bytes_written"],
        "child_torn_record_bytes": child["torn_record_bytes"],
        "seconds": seconds,
    }  # fmt: skip
    checks["recovery used the snapshot"] = report.snapshot_loaded and report.snapshot_sequence == snapshot_sequence
    checks["replayed = events after the snapshot + the child's acknowledged events"] = (
        report.wal_events_applied == after_snapshot + child["acked_events"]
    )
    checks["nothing acknowledged was lost, nothing unacknowledged kept"] = (
        report.latest_sequence == expected_latest == child["last_acked_sequence"]
    )
    checks["the torn record (and only it) was cut"] = cut == child["torn_bytes_written"] > 0

    # 6. full replay, no snapshot --------------------------------------------------------------
    _note("replay without the snapshot")
    t0 = time.perf_counter()
    full = replay_to(directory, report.latest_sequence, use_snapshot=False)
    seconds = time.perf_counter() - t0
    phases.append(_phase("replay of the whole log (no snapshot)", full.latest_sequence, log_bytes(directory), seconds))
    checks["recovery from the snapshot = replay of the whole log"] = (
        full.latest_sequence == report.latest_sequence
        and _runs_by_state(full) == recovered_states
        and (full.task_count, full.run_count) == (tasks_recovered, runs_recovered)
    )

    # 7. verify ---------------------------------------------------------------------------------
    _note("verify")
    t0 = time.perf_counter()
    v = verify(directory)
    snap_ok = load_snapshot(directory) is not None
    seconds = time.perf_counter() - t0
    phases.append(_phase("verify (every record, seals, snapshot)", v.records, log_bytes(directory), seconds))
    checks["verify: clean, every event present"] = v.clean and v.records == report.latest_sequence and snap_ok
    return {
        "data_dir": str(directory),
        "seed": seed,
        "tasks": tasks,
        "workers": workers,
        "phases": phases,
        "recovery": recovery,
        "verify": {"clean": v.clean, "records": v.records, "last_sequence": v.last_sequence,
                   "files": len(v.files), "problem": None if v.problem is None else str(v.problem),
                   "snapshot_ok": snap_ok},  # fmt: skip
        "projection": {"tasks": tasks_recovered, "runs": runs_recovered, "runs_by_state": recovered_states},
        "checks": checks,
        "total_seconds": time.perf_counter() - started,
    }


def render(result: dict[str, Any]) -> str:
    """The summary for people: the phase table, what recovery found, the checks."""
    rows = []
    for p in result["phases"]:
        eps = p["events_per_s"]
        rows.append([p["phase"], f"{p['events']:,}", fmt_bytes(p["bytes"]), f"{p['seconds']:.3f}",
                     "-" if eps is None else f"{eps:,.0f}"])  # fmt: skip
    out = [table(rows, ["phase", "events", "bytes", "seconds", "events/s"], align="<>>>>"), ""]
    r = result["recovery"]
    src = {"image": "snapshot.image", "json": "snapshot.bin (JSON)"}.get(r["snapshot_source"], "no snapshot")
    out.append("recovery found:")
    out.append(f"  snapshot        {src} at sequence {r['snapshot_sequence']:,}")
    out.append(f"  log replayed    {r['events_replayed']:,} events = {r['events_after_snapshot']:,} after the snapshot"
               f" + {r['child_acked_events']:,} acknowledged by the child ({r['child_acked_commands']:,} commands)")
    t = r["torn_tail"]
    if t is None:
        out.append("  torn tail       none")
    else:
        out.append(f"  torn tail       {t['bytes_cut']} bytes cut at offset {t['offset']:,} of {Path(t['file']).name}"
                   f" ({t['kind']}: the child wrote {r['child_torn_bytes_written']} of a "
                   f"{r['child_torn_record_bytes']}-byte record, never acknowledged)")
    out.append(f"  latest sequence {r['latest_sequence']:,}")
    proj = result["projection"]
    states = ", ".join(f"{n:,} {s}" for s, n in proj["runs_by_state"].items())
    out.append(f"  projection      {proj['tasks']:,} tasks, {proj['runs']:,} runs ({states})")
    v = result["verify"]
    out.append(f"  verify          {'clean' if v['clean'] else v['problem']}: {v['records']:,} records in "
               f"{v['files']} file(s), snapshot {'ok' if v['snapshot_ok'] else 'missing'}")
    out.append("")
    out.append("checks:")
    for name, ok in result["checks"].items():
        out.append(f"  {'ok  ' if ok else 'FAIL'}  {name}")
    out.append("")
    out.append(f"{result['total_seconds']:.1f} s in all; data dir {result['data_dir']}")
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    """Play the demo, print the summary; exit 1 when a check failed."""
    directory, temporary = _prepare_dir(args.dir)
    try:
        result = play(directory, tasks=args.tasks, workers=args.workers, seed=args.seed,
                      crash_commands=args.crash_commands, crash_durability=args.crash_durability)  # fmt: skip
        result["kept"] = not temporary or args.keep
        if args.json:
            json.dump(result, sys.stdout, indent=1)
            sys.stdout.write("\n")
        else:
            text = render(result)
            if temporary and not args.keep:
                text += " (removed)"
            sys.stdout.write(text + "\n")
        sys.stdout.flush()
        failed = [name for name, ok in result["checks"].items() if not ok]
        if failed:
            raise CliError(f"{len(failed)} check(s) failed: {'; '.join(failed)}")
        return 0
    finally:
        if temporary and not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
