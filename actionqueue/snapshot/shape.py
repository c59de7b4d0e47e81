"""The projection in the snapshot's JSON shape (schema v8): the builtins writer shared by the
pure-Python snapshot codec and the native writer's small sections."""

from __future__ import annotations

from typing import Any

from ..model.json import dumps as _json_dumps
from ..state.records import RunStateHistoryEntry, _attempt_view, _run_instance_view, _task_view
from ..state.projection import Projection
from ..state.reducer import ReplayReducer

__all__ = ["SNAPSHOT_VERSION", "SNAPSHOT_SCHEMA_VERSION", "projection_to_snapshot_builtins", "snapshot_sections"]

SNAPSHOT_VERSION = 4
SNAPSHOT_SCHEMA_VERSION = 8


def projection_to_snapshot_builtins(reducer: ReplayReducer, timestamp: int) -> dict[str, Any]:
    """The projection as the JSON object of a schema-v8 snapshot taken at ``timestamp``.

    Same content as Rust's ``build_snapshot_from_projection`` (no validation here), with
    every list sorted as the golden vectors sort them (``shared/vectors/README.md``): tasks
    by id, runs by id, dependency declarations by task id, budgets by (task id, dimension
    index), subscriptions, actors and tenants by id, role assignments by (actor, tenant),
    capability grants by (actor, tenant, JSON of the capability); ledger entries keep append
    order. Derived fields:

    * ``metadata.wal_sequence`` = latest sequence; ``task_count`` / ``run_count`` = counts;
    * ``dependency_declarations[].declared_at`` = ``timestamp`` (the reducer does not keep
      declaration times, neither does Rust); ``depends_on`` de-duplicated, sorted by id;
    * ``runs[].lease`` = the lease metadata, ``null`` without an active lease;
    * ``runs[].state_history`` / ``attempts`` = ``[]`` for trimmed runs (as Rust);
    * ``tasks[].updated_at`` is always ``null``.
    """
    with reducer._lock:  # the projection holds still while it is read out
        return _builtins(reducer._hot(), timestamp)


def _builtins(r: Projection, timestamp: int) -> dict[str, Any]:
    runs = []
    for run_id in sorted(r._runs):
        rec = r._runs[run_id]
        history = rec.history or ()
        attempts = rec.attempts or ()
        runs.append(
            {
                "run_instance": _run_instance_view(rec).to_builtins(),
                "state_history": [RunStateHistoryEntry._make(e).to_builtins() for e in history],
                "attempts": [_attempt_view(a).to_builtins() for a in attempts],
                "lease": None if rec.lease_owner is None else r.get_lease_metadata(run_id).to_builtins(),  # type: ignore[union-attr]
            }
        )
    return {
        "version": SNAPSHOT_VERSION,
        "timestamp": timestamp,
        "metadata": {
            "schema_version": SNAPSHOT_SCHEMA_VERSION,
            "wal_sequence": r.latest_sequence,
            "task_count": r.task_count,
            "run_count": r.run_count,
        },
        "tasks": [_task_view(r._tasks[tid]).to_builtins() for tid in sorted(r._tasks)],
        "runs": runs,
        **snapshot_sections(r, timestamp),
    }


def snapshot_sections(r: Projection, timestamp: int) -> dict[str, Any]:
    """The snapshot's sections after ``runs`` (engine, dependency declarations, budgets,
    subscriptions, actors, tenants, role assignments, capability grants, ledger entries),
    in file order, as JSON builtins (sorted as :func:`projection_to_snapshot_builtins`
    says). Shared by both snapshot writers."""
    return {
        "engine": {
            "paused": r.is_engine_paused,
            "paused_at": r.engine_paused_at,
            "resumed_at": r.engine_resumed_at,
        },
        "dependency_declarations": [
            {
                "task_id": str(tid),
                "depends_on": [str(d) for d in sorted(r._dependencies[tid])],
                "declared_at": timestamp,
            }
            for tid in sorted(r._dependencies)
        ],
        "budgets": [
            b.to_builtins() for b in sorted(r.budgets(), key=lambda b: (b.task_id, b.dimension.index))
        ],
        "subscriptions": [s.to_builtins() for s in sorted(r.subscriptions(), key=lambda s: s.subscription_id)],
        "actors": [a.to_builtins() for a in sorted(r.actors(), key=lambda a: a.actor_id)],
        "tenants": [t.to_builtins() for t in sorted(r.tenants(), key=lambda t: t.tenant_id)],
        "role_assignments": [
            a.to_builtins() for a in sorted(r.role_assignments(), key=lambda a: (a.actor_id, a.tenant_id))
        ],
        "capability_grants": [
            g.to_builtins()
            for g in sorted(
                r.capability_grants(),
                key=lambda g: (g.actor_id, g.tenant_id, _json_dumps(g.capability.to_builtins())),
            )
        ],
        "ledger_entries": [e.to_builtins() for e in r.ledger_entries()],
    }
