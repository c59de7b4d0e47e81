"""Mistakes a type checker must catch. Each line marked ``# E: <mypy error code>`` must get
that error from mypy --strict, and an error from pyright; no other line may get one."""

from __future__ import annotations

from pathlib import Path

import actionqueue as aq


def ids(task: aq.TaskId, run: aq.RunId) -> None:
    aq.RunCanceled(task, 1)  # E: arg-type
    aq.TaskCanceled(run, 1)  # E: arg-type
    aq.LeaseAcquired(run, "w", 2, 1)
    bad: aq.RunId = aq.TaskId.new()  # E: assignment
    print(bad)


def options(data: Path) -> None:
    aq.open(data, durability="sometimes")  # E: arg-type
    aq.open(data, repair_policy="lenient")  # E: arg-type
    aq.open(data, retain="forever")  # E: arg-type
    aq.WalWriter(data, durability="always")  # E: arg-type
    aq.WalWriter(data, aq.RepairPolicy.STRICT)  # E: call-arg


def events(run: aq.RunId) -> None:
    aq.RunStateChanged(run, aq.RunState.READY, aq.RunState.LEASED, "late")  # E: arg-type
    aq.WalEvent("1", aq.EnginePaused(1))  # E: arg-type
    aq.EnginePaused()  # E: call-arg
    aq.TaskSpec(aq.TaskId.new(), run_policy="once")  # E: arg-type
    e = aq.EnginePaused(1)
    e.timestamp = 2  # E: misc


def outcomes(authority: aq.MutationAuthority, task: aq.TaskId) -> None:
    out = authority.create_task(aq.TaskSpec(task))
    out.event.run_instance  # E: attr-defined
    for o in authority.derive_runs(task):
        o.event.run_instance.id.is_nil
        o.event.task_spec  # E: attr-defined
