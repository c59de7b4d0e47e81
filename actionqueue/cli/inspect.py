"""``actionqueue inspect DIR --run ID | --task ID``: one run or task as the projection holds it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .. import model as _model
from ..errors import RecoveryError
from ..state.reducer import ReplayReducer
from ._common import (
    EXIT_PROBLEM,
    SEQUENCE,
    Replayed,
    data_dir,
    fmt_time,
    parse_id,
    replay_readonly,
    table,
    usage_error,
)

NAME = "inspect"
HELP = "show a run (state, history, attempts, lease) or a task (spec, runs, budgets)"
DESCRIPTION = """\
Show one run or task as the projection holds it, rebuilt read-only (the snapshot if
valid, then the log after it; no writer lock, so it works next to a running writer and
never changes the data dir). --at SEQ shows the state as it was at that sequence.

Exit 0; 1 when the log ends in a torn tail (the state before it is shown, with a note);
2 for an id the data dir does not hold.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``inspect``."""
    p.add_argument("dir", metavar="DIR", help="data dir")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", metavar="ID", help="a run id")
    which.add_argument("--task", metavar="ID", help="a task id")
    p.add_argument("--at", type=SEQUENCE, metavar="SEQ",
                   help="the state as of this sequence, up to the log's last (default: the latest)")
    p.add_argument("--json", action="store_true", help="print one JSON object (the snapshot's JSON shapes)")


def run_info(reducer: ReplayReducer, run_id: _model.RunId) -> dict[str, Any] | None:
    """A run's instance, state history, attempts and lease as JSON builtins (None if unknown)."""
    inst = reducer.get_run_instance(run_id)
    if inst is None:
        return None
    history = reducer.get_run_history(run_id)
    attempts = reducer.get_attempt_history(run_id)
    lease = reducer.get_lease_metadata(run_id)
    return {
        "run_instance": inst.to_builtins(),
        "state_history": None if history is None else [h.to_builtins() for h in history],
        "attempts": None if attempts is None else [a.to_builtins() for a in attempts],
        "lease": None if lease is None else lease.to_builtins(),
    }


def task_info(reducer: ReplayReducer, task_id: _model.TaskId) -> dict[str, Any] | None:
    """A task's record, its runs (state), dependencies, budgets and subscriptions (None if unknown)."""
    rec = reducer.get_task_record(task_id)
    if rec is None:
        return None
    deps = reducer.dependency_declarations().get(task_id, frozenset())
    return {
        "task": rec.to_builtins(),
        "runs": [{"id": str(r.id), "state": r.state.value, "attempt_count": r.attempt_count,
                  "scheduled_at": r.scheduled_at, "last_state_change_at": r.last_state_change_at}
                 for r in reducer.runs_for_task(task_id)],
        "depends_on": sorted(str(d) for d in deps),
        "budgets": [b.to_builtins() for b in reducer.budgets() if b.task_id == task_id],
        "subscriptions": [s.to_builtins() for s in reducer.subscriptions() if s.task_id == task_id],
    }


def _render_run(info: dict[str, Any], out: Any) -> None:
    ri = info["run_instance"]
    w = out.write
    w(f"run             {ri['id']}\n")
    w(f"task            {ri['task_id']}\n")
    w(f"state           {ri['state']}\n")
    w(f"attempts        {ri['attempt_count']} (current: {ri['current_attempt_id'] or '-'})\n")
    w(f"created         {fmt_time(ri['created_at'])} UTC ({ri['created_at']})\n")
    w(f"scheduled       {fmt_time(ri['scheduled_at'])} UTC ({ri['scheduled_at']})\n")
    w(f"last change     {fmt_time(ri['last_state_change_at'])} UTC ({ri['last_state_change_at']})\n")
    w(f"priority        {ri['effective_priority']}\n")
    lease = info["lease"]
    if lease is None:
        w("lease           none\n")
    else:
        w(f"lease           owner {lease['owner']}, expires {fmt_time(lease['expiry'])} UTC ({lease['expiry']}), "
          f"acquired {lease['acquired_at']}, last heartbeat {lease['updated_at']}\n")
    if info["state_history"] is None:
        w("\nhistory         trimmed\n")
    else:
        rows = [[fmt_time(h["timestamp"]), str(h["from"] or "-"), h["to"]] for h in info["state_history"]]
        w("\nstate history\n" + table(rows, ["time (UTC)", "from", "to"]) + "\n")
    if info["attempts"]:
        rows = [[a["attempt_id"], fmt_time(a["started_at"]), fmt_time(a["finished_at"]), a["result"] or "-",
                 a["error"] or ""] for a in info["attempts"]]
        w("\nattempts\n" + table(rows, ["attempt", "started (UTC)", "finished (UTC)", "result", "error"]) + "\n")
    elif info["attempts"] is not None:
        w("\nattempts        none\n")


def _render_task(info: dict[str, Any], out: Any) -> None:
    t = info["task"]
    spec = t["task_spec"]
    w = out.write
    policy = spec["run_policy"]
    w(f"task            {spec['id']}\n")
    w(f"created         {fmt_time(t['created_at'])} UTC ({t['created_at']})\n")
    w(f"canceled        {'-' if t['canceled_at'] is None else fmt_time(t['canceled_at']) + ' UTC'}\n")
    w(f"run policy      {json.dumps(policy)}\n")
    w(f"constraints     {json.dumps(spec['constraints'])}\n")
    w(f"metadata        {json.dumps(spec['metadata'])}\n")
    payload = spec["payload"]
    w(f"payload         {len(payload['bytes'])} bytes, content type {payload.get('content_type') or '-'}\n")
    w(f"parent          {spec.get('parent_task_id') or '-'}\n")
    w(f"tenant          {spec.get('tenant_id') or '-'}\n")
    w(f"depends on      {', '.join(info['depends_on']) or '-'}\n")
    if info["runs"]:
        rows = [[r["id"], r["state"], str(r["attempt_count"]), fmt_time(r["scheduled_at"]), fmt_time(r["last_state_change_at"])]
                for r in info["runs"]]
        w("\nruns\n" + table(rows, ["run", "state", "attempts", "scheduled (UTC)", "last change (UTC)"]) + "\n")
    else:
        w("\nruns            none\n")
    for b in info["budgets"]:
        w(f"budget          {json.dumps(b)}\n")
    for s in info["subscriptions"]:
        w(f"subscription    {json.dumps(s)}\n")


def replay_at(directory: Path, at: int | None) -> Replayed:
    """The read-only replay up to ``at``; a usage error when the data dir holds no state
    at that sequence: beyond the log's last one, or before the earliest it can rebuild
    (its log starts after a compacted range that only a newer snapshot covers)."""
    try:
        rep = replay_readonly(directory, at)
    except RecoveryError:
        if at is None:
            raise
        earliest = replay_readonly(directory).snapshot_sequence  # raises when no state can be rebuilt
        raise usage_error(f"--at {at} is before the earliest state {directory} holds: sequence {earliest}, its "
                          "snapshot's (the events before it were compacted out of the log)") from None
    last = rep.reducer.latest_sequence
    if at is not None and rep.reached_end and at > last:
        raise usage_error(f"--at {at} is beyond the log's last sequence {last}")
    return rep


def run(args: argparse.Namespace) -> int:
    """Print the run or task; exit 2 when it is not in the data dir (an input error), 1
    when the log ends in a torn tail (the state before it is shown)."""
    directory = data_dir(args.dir)
    rid = parse_id(_model.RunId, args.run, "run") if args.run else None
    tid = parse_id(_model.TaskId, args.task, "task") if args.task else None
    rep = replay_at(directory, args.at)
    reducer = rep.reducer
    at = f" at sequence {reducer.latest_sequence}"
    if rid is not None:
        info = run_info(reducer, rid)
        if info is None:
            raise usage_error(f"no run {rid} in {directory}{at}")
        render = _render_run
    else:
        assert tid is not None
        info = task_info(reducer, tid)
        if info is None:
            raise usage_error(f"no task {tid} in {directory}{at}")
        render = _render_task
    info["as_of_sequence"] = reducer.latest_sequence
    if rep.torn_tail is not None:
        info["note"] = f"the log ends in a torn tail at {rep.torn_tail.path} offset {rep.torn_tail.offset} (ignored)"
    status = EXIT_PROBLEM if rep.torn_tail is not None else 0  # shown, but a problem found in the data
    if args.json:
        json.dump(info, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return status
    render(info, sys.stdout)
    sys.stdout.write(f"\n(as of sequence {info['as_of_sequence']})\n")
    if "note" in info:
        sys.stdout.write(f"note: {info['note']}\n")
    return status
