"""The replay reducer against the golden vectors recorded from the Rust crates.

* ``replay/valid/*``: every history replays; the projection, in the snapshot's JSON shape,
  equals ``snapshot.json`` field by field (and as compact JSON, byte for byte).
* ``replay/invalid/cases.json``: where Rust's reducer rejects, ours rejects the same event
  with the same error (kind, sub-kind, Display, Debug) and changes nothing; where Rust's
  reducer accepts, ours accepts.
* The histories Rust accepts but cannot snapshot (i05, s01-s06): one test each saying why
  ours can (decisions.md #11).
"""

from __future__ import annotations

import json

import pytest
from aq_testlib import VECTORS_MISSING
from reducer_testlib import (
    INVALID_DIR,
    VALID_DIR,
    S,
    deep_state,
    history_is_snapshot_valid,
    invalid_case,
    invalid_cases,
    load_jsonl_events,
    load_wal_events,
    valid_names,
)

import actionqueue as aq
from actionqueue.errors import ReducerError
from actionqueue.snapshot.shape import projection_to_snapshot_builtins
from actionqueue.state.reducer import ReplayReducer

pytestmark = pytest.mark.vectors

# =========================================================================================
# Valid histories
# =========================================================================================
SECTIONS = [
    "version", "timestamp", "metadata", "tasks", "runs", "engine", "dependency_declarations",
    "budgets", "subscriptions", "actors", "tenants", "role_assignments", "capability_grants",
    "ledger_entries",
]


@pytest.mark.parametrize("name", valid_names())
def test_valid_history_matches_rust_snapshot(name: str) -> None:
    d = VALID_DIR / name
    events = load_wal_events(d / "events.wal")
    assert [e.to_builtins() for e in events] == [e.to_builtins() for e in load_jsonl_events(d / "events.jsonl")]
    summary = json.loads((d / "summary.json").read_text(encoding="utf-8"))
    expected_text = (d / "snapshot.json").read_text(encoding="utf-8")
    expected = json.loads(expected_text)

    r = ReplayReducer()
    assert r.apply_all(events) == summary["applied"] == len(events)
    assert r.latest_sequence == summary["wal_sequence"]
    assert r.task_count == summary["task_count"]
    assert r.run_count == summary["run_count"]

    got = projection_to_snapshot_builtins(r, summary["snapshot_timestamp"])
    assert list(got) == SECTIONS == list(expected)
    for section in SECTIONS:
        if isinstance(expected[section], list):
            assert len(got[section]) == len(expected[section]), section
            for i, (g, e) in enumerate(zip(got[section], expected[section])):
                assert g == e, f"{section}[{i}]"
        else:
            assert got[section] == expected[section], section
    # Same keys in the same order, same values: the compact JSON is byte-identical.
    assert json.dumps(got, ensure_ascii=False, separators=(",", ":")) == expected_text


@pytest.mark.parametrize("name", valid_names())
def test_valid_history_read_api_agrees_with_snapshot(name: str) -> None:
    """The typed read API says what the snapshot says (spot checks per record kind)."""
    d = VALID_DIR / name
    r = ReplayReducer()
    r.apply_all(load_wal_events(d / "events.wal"))
    snap = json.loads((d / "snapshot.json").read_text(encoding="utf-8"))
    for t in snap["tasks"]:
        tid = aq.TaskId(t["task_spec"]["id"])
        assert r.get_task_record(tid).to_builtins() == t
        assert r.is_task_canceled(tid) == (t["canceled_at"] is not None)
    for run in snap["runs"]:
        rid = aq.RunId(run["run_instance"]["id"])
        inst = r.get_run_instance(rid)
        assert inst.to_builtins() == run["run_instance"]
        assert r.get_run_state(rid).value == run["run_instance"]["state"]
        assert [h.to_builtins() for h in r.get_run_history(rid)] == run["state_history"]
        assert [a.to_builtins() for a in r.get_attempt_history(rid)] == run["attempts"]
        lease = run["lease"]
        assert r.get_lease(rid) == (None if lease is None else (lease["owner"], lease["expiry"]))
        meta = r.get_lease_metadata(rid)
        assert (None if meta is None else meta.to_builtins()) == lease
        assert rid in r.run_ids_for_task(inst.task_id)
        assert history_is_snapshot_valid(r, rid) is None
    for dep in snap["dependency_declarations"]:
        got = r.dependency_declarations()[aq.TaskId(dep["task_id"])]
        assert sorted(str(x) for x in got) == dep["depends_on"]
    for b in snap["budgets"]:
        tid, dim = aq.TaskId(b["task_id"]), aq.BudgetDimension(b["dimension"])
        assert r.get_budget(tid, dim).to_builtins() == b
        assert r.is_budget_exhausted(tid, dim) == b["exhausted"]
    for s in snap["subscriptions"]:
        sid = aq.SubscriptionId(s["subscription_id"])
        assert r.get_subscription(sid).to_builtins() == s
        assert r.is_subscription_canceled(sid) == (s["canceled_at"] is not None)
    for a in snap["actors"]:
        aid = aq.ActorId(a["actor_id"])
        assert r.get_actor(aid).to_builtins() == a
        assert r.is_actor_active(aid) == (a["deregistered_at"] is None)
    for t in snap["tenants"]:
        assert r.get_tenant(aq.TenantId(t["tenant_id"])).to_builtins() == t
    for ra in snap["role_assignments"]:
        got = r.get_role_assignment(aq.ActorId(ra["actor_id"]), aq.TenantId(ra["tenant_id"]))
        assert got.to_builtins() == ra
    for g in snap["capability_grants"]:
        cap = aq.Capability.from_builtins(g["capability"])
        actor, tenant = aq.ActorId(g["actor_id"]), aq.TenantId(g["tenant_id"])
        assert r.get_capability_grant(actor, cap, tenant).to_builtins() == g
        assert r.actor_has_capability(actor, cap, tenant) == (g["revoked_at"] is None)
    assert [e.to_builtins() for e in r.ledger_entries()] == snap["ledger_entries"]
    engine = snap["engine"]
    assert (r.is_engine_paused, r.engine_paused_at, r.engine_resumed_at) == (
        engine["paused"], engine["paused_at"], engine["resumed_at"]
    )


def test_v07_parent_child_mappings() -> None:
    d = VALID_DIR / "v07_policies_parent_tenant"
    if not d.is_dir():
        pytest.skip(VECTORS_MISSING)
    r = ReplayReducer()
    r.apply_all(load_wal_events(d / "events.wal"))
    snap = json.loads((d / "snapshot.json").read_text(encoding="utf-8"))
    expected = sorted(
        (t["task_spec"]["id"], t["task_spec"]["parent_task_id"])
        for t in snap["tasks"]
        if t["task_spec"]["parent_task_id"] is not None
    )
    assert expected, "v07 has a child task"
    assert sorted((str(c), str(p)) for c, p in r.parent_child_mappings()) == expected


# =========================================================================================
# Invalid histories
# =========================================================================================
@pytest.mark.parametrize("case", invalid_cases())
def test_invalid_case_matches_rust_reducer(case: dict) -> None:
    wal_events = load_wal_events(INVALID_DIR / case["wal"])
    assert [e.to_builtins() for e in wal_events] == [
        e.to_builtins() for e in load_jsonl_events(INVALID_DIR / case["wal"].replace(".wal", ".events.jsonl"))
    ]
    assert len(wal_events) == case["events"]
    expected = case["reducer_apply"]
    r = ReplayReducer()
    for index, event in enumerate(wal_events):
        before = deep_state(r)
        try:
            r.check(event)
        except ReducerError as exc:
            checked: ReducerError | None = exc
        else:
            checked = None
        assert deep_state(r) == before, "check() changed the projection"
        try:
            r.apply(event)
        except ReducerError as exc:
            assert checked is not None, f"check() passed event {index} that apply() rejects: {exc}"
            assert (type(checked), checked.rust_display, checked.sequence) == (type(exc), exc.rust_display, exc.sequence)
            assert not expected["ok"], f"Rust accepts event {index}; ours says {exc}"
            assert index == expected["failed_event_index"]
            assert index == expected["events_applied_before_failure"]
            assert exc.sequence == expected["failed_event_sequence"] == event.sequence
            assert exc.kind == expected["error_kind"] == type(exc).__name__
            assert exc.detail_kind == expected["error_detail_kind"]
            assert exc.rust_display == expected["error_display"]
            assert exc.rust_debug == expected["error_debug"]
            assert str(exc).startswith(expected["error_display"])
            assert f"Reducer error: {exc.rust_display}" == case["replay_driver"]["error_display"]
            assert deep_state(r) == before, "a rejected event changed the projection"
            return
        assert checked is None, f"check() rejects event {index} that apply() accepts: {checked}"
    assert expected["ok"], f"Rust rejects event {expected.get('failed_event_index')}; ours accepted all"
    assert expected["applied"] == len(wal_events) == case["replay_driver"]["applied"]
    assert r.latest_sequence == wal_events[-1].sequence


# =========================================================================================
# Accepted by Rust's reducer, refused by Rust's snapshot builder: ours can snapshot them
# =========================================================================================
def _accepted(name: str) -> tuple[ReplayReducer, dict, dict]:
    if not INVALID_DIR.is_dir():
        pytest.skip(VECTORS_MISSING)
    case = invalid_case(name)
    assert case["reducer_apply"]["ok"] and not case["snapshot_build"]["ok"]
    r = ReplayReducer()
    r.apply_all(load_wal_events(INVALID_DIR / case["wal"]))
    snap = projection_to_snapshot_builtins(r, 1_800_000_000)
    return r, snap, case


def test_i05_run_for_unknown_task_is_snapshotable() -> None:
    """i05: Rust refuses the snapshot (RunReferencesUnknownTask) although its reducer took
    the run. Ours takes the run too (a run's task need not exist at replay, decisions #10),
    and the snapshot simply records the run with the task id it names: nothing in the
    projection is inconsistent with itself, so there is nothing to refuse."""
    r, snap, case = _accepted("i05_run_for_unknown_task")
    assert "RunReferencesUnknownTask" in case["snapshot_build"]["error_debug"]
    (run,) = snap["runs"]
    assert run["run_instance"]["task_id"] not in {t["task_spec"]["id"] for t in snap["tasks"]}
    assert history_is_snapshot_valid(r, aq.RunId(run["run_instance"]["id"])) is None


def test_s01_dependency_on_unknown_task_is_snapshotable() -> None:
    """s01: DependencyDeclared naming a prerequisite that was never created. Rust's reducer
    only warns, then its snapshot builder refuses (DependencyReferencesUnknownTask). Ours
    keeps the declaration as declared and writes it to the snapshot as such: the
    declaration is a fact of the log, not an inconsistency of the projection."""
    _r, snap, case = _accepted("s01_dependency_unknown_task")
    assert "DependencyReferencesUnknownTask" in case["snapshot_build"]["error_debug"]
    (decl,) = snap["dependency_declarations"]
    assert decl["depends_on"] and decl["depends_on"][0] not in {t["task_spec"]["id"] for t in snap["tasks"]}


def test_s02_budget_for_unknown_task_is_snapshotable() -> None:
    """s02: BudgetAllocated for a task never created (Rust: BudgetReferencesUnknownTask at
    snapshot time). Ours records the budget under the id the event names and snapshots it."""
    _r, snap, case = _accepted("s02_budget_unknown_task")
    assert "BudgetReferencesUnknownTask" in case["snapshot_build"]["error_debug"]
    (budget,) = snap["budgets"]
    assert budget["task_id"] not in {t["task_spec"]["id"] for t in snap["tasks"]}


def test_s03_subscription_for_unknown_task_is_snapshotable() -> None:
    """s03: SubscriptionCreated for an unknown task (Rust: SubscriptionReferencesUnknownTask
    at snapshot time). Ours snapshots the subscription as recorded."""
    _r, snap, case = _accepted("s03_subscription_unknown_task")
    assert "SubscriptionReferencesUnknownTask" in case["snapshot_build"]["error_debug"]
    (sub,) = snap["subscriptions"]
    assert sub["task_id"] not in {t["task_spec"]["id"] for t in snap["tasks"]}


def test_s04_task_canceled_before_created_is_snapshotable() -> None:
    """s04: TaskCanceled with a timestamp before the task's creation time (clock skew
    between writers). Rust's reducer accepts it; its snapshot builder refuses
    (InvalidTaskCanceledAtCausality). Ours keeps both timestamps exactly as logged; the
    snapshot reproduces them, and hydrating replays TaskCreated then TaskCanceled, which the
    reducer accepts in that order whatever the timestamps."""
    r, snap, case = _accepted("s04_task_canceled_before_created")
    assert "InvalidTaskCanceledAtCausality" in case["snapshot_build"]["error_debug"]
    (task,) = snap["tasks"]
    assert task["canceled_at"] < task["created_at"]
    replayed = ReplayReducer()
    tid = aq.TaskId(task["task_spec"]["id"])
    replayed.apply(aq.WalEvent(1, aq.TaskCreated(r.get_task(tid), task["created_at"])))
    replayed.apply(aq.WalEvent(2, aq.TaskCanceled(tid, task["canceled_at"])))
    assert replayed.get_task_record(tid) == r.get_task_record(tid)


def test_s05_lease_expired_while_leased_is_snapshotable() -> None:
    """s05: LeaseExpired while the run is Leased. Rust moves the run to Ready without a
    history entry, so its history ends in Leased while the run is Ready and the snapshot is
    refused (InvalidRunStateHistoryTransition Leased -> Ready). Ours records the Leased ->
    Ready step at the event's timestamp (decisions #11): the history is a valid chain that
    ends in the run's state, and every lineage check of Rust's validator passes."""
    r, snap, case = _accepted("s05_lease_expired_while_leased")
    assert "InvalidRunStateHistoryTransition" in case["snapshot_build"]["error_debug"]
    (run,) = snap["runs"]
    rid = aq.RunId(run["run_instance"]["id"])
    events = load_wal_events(INVALID_DIR / case["wal"])
    expired = events[-1].event
    assert isinstance(expired, aq.LeaseExpired)
    assert r.get_run_state(rid) is S.READY
    assert run["state_history"][-1] == {"from": "Leased", "to": "Ready", "timestamp": expired.timestamp}
    assert run["run_instance"]["last_state_change_at"] == expired.timestamp
    assert run["lease"] is None
    assert history_is_snapshot_valid(r, rid) is None


def test_s06_ready_with_future_scheduled_at_is_snapshotable() -> None:
    """s06: a run created with scheduled_at > created_at, then promoted to Ready. Rust's
    reducer accepts the promotion (transition_to does not re-check what the constructor
    checks); its snapshot builder refuses (InvalidReadyScheduleCausality). Ours accepts it,
    exposes the run without re-validating it, and the snapshot records it faithfully: the
    history is a valid chain and the schedule fields are exactly those of the log."""
    r, snap, case = _accepted("s06_ready_future_scheduled")
    assert "InvalidReadyScheduleCausality" in case["snapshot_build"]["error_debug"]
    (run,) = snap["runs"]
    inst = run["run_instance"]
    assert inst["state"] == "Ready" and inst["scheduled_at"] > inst["created_at"]
    rid = aq.RunId(inst["id"])
    assert r.get_run_instance(rid).state is S.READY
    assert history_is_snapshot_valid(r, rid) is None


def test_s07_control_case_snapshots_in_both() -> None:
    if not INVALID_DIR.is_dir():
        pytest.skip(VECTORS_MISSING)
    case = invalid_case("s07_engine_paused_after_bootstrap_ok")
    assert case["snapshot_build"]["ok"]
    r = ReplayReducer()
    r.apply_all(load_wal_events(INVALID_DIR / case["wal"]))
    snap = projection_to_snapshot_builtins(r, 0)
    assert snap["engine"]["paused"] is False and snap["engine"]["resumed_at"] is not None
