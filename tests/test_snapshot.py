"""Snapshots: building, framing, atomic writing, loading, validation and hydration.

* ``replay/valid/*``: our snapshot equals ``snapshot.json`` and is byte-identical to
  ``snapshot.bin``; both ``snapshot.bin`` and ``snapshot_rust_order.bin`` load and hydrate to the
  full replay's projection; a snapshot taken after any prefix, hydrated and continued with the
  rest of the WAL, ends in the full replay's projection.
* Loader error cases, in the spec's check order, each with its error kind.
* decisions.md #11: the histories Rust's reducer accepts but its snapshot builder refuses
  (i05, s01-s06) build, write, load and hydrate here; one test per case says why.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Mapping

import pytest
from aq_testlib import VECTORS_MISSING, frame
from reducer_testlib import INVALID_DIR, VALID_DIR, Events, R, S, invalid_case, load_wal_events, replay, valid_names

import actionqueue as aq
from actionqueue.snapshot.shape import projection_to_snapshot_builtins
from actionqueue.state.reducer import ReplayReducer
from actionqueue.snapshot import (
    MAX_SNAPSHOT_BYTES,
    IncompatibleVersion,
    SnapshotCrcMismatch,
    SnapshotDecodeError,
    SnapshotError,
    SnapshotIoError,
    SnapshotMappingError,
    build_snapshot,
    encode_snapshot,
    load_snapshot,
    reducer_from_snapshot,
    validate_snapshot,
    write_snapshot,
)

def _summary(name: str) -> dict:
    return json.loads((VALID_DIR / name / "summary.json").read_text(encoding="utf-8"))


def _snapshot_frame(payload: bytes, **kw) -> bytes:
    """A snapshot file: the WAL record framing with the snapshot's frame version 4."""
    return frame(payload, **{"version": 4, **kw})


def _same_projection(a: ReplayReducer, b: ReplayReducer) -> None:
    assert a.latest_sequence == b.latest_sequence
    assert projection_to_snapshot_builtins(a, 7) == projection_to_snapshot_builtins(b, 7)


# =========================================================================================
# Golden vectors
# =========================================================================================
@pytest.mark.vectors
@pytest.mark.parametrize("name", valid_names())
def test_build_and_encode_match_rust(name: str) -> None:
    d = VALID_DIR / name
    summary = _summary(name)
    r = replay(load_wal_events(d / "events.wal"))
    snap = build_snapshot(r, summary["snapshot_timestamp"])
    assert snap == json.loads((d / "snapshot.json").read_text(encoding="utf-8"))
    data = encode_snapshot(snap)
    # Lists sorted as the vectors README says: byte-identical to Rust's framed file.
    assert data == (d / "snapshot.bin").read_bytes()
    version, length, crc = struct.unpack_from("<III", data)
    assert (version, length, crc) == (
        summary["snapshot_frame_version"], summary["snapshot_payload_len"], summary["snapshot_crc32"]
    )


@pytest.mark.vectors
@pytest.mark.parametrize("name", valid_names())
@pytest.mark.parametrize("file", ["snapshot.bin", "snapshot_rust_order.bin"])
def test_rust_snapshot_loads_and_hydrates_losslessly(name: str, file: str) -> None:
    d = VALID_DIR / name
    full = replay(load_wal_events(d / "events.wal"))
    loaded = load_snapshot(d / file)
    assert loaded is not None
    expected = json.loads((d / "snapshot.json").read_text(encoding="utf-8"))
    if file == "snapshot.bin":
        assert loaded == expected
    else:  # Rust's HashMap order: same content, other order
        assert _json_sorted(loaded) == _json_sorted(expected)
    hydrated = reducer_from_snapshot(loaded)
    # No documented loss remains (effective_priority, last_state_change_at and
    # last_heartbeat_at are restored; declared_at is the snapshot time on both sides).
    _same_projection(hydrated, full)


def _json_sorted(obj):
    if isinstance(obj, Mapping):  # a dict, or the native backend's Snapshot
        return {k: _json_sorted(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return sorted((_json_sorted(v) for v in obj), key=lambda v: json.dumps(v, sort_keys=True))
    return obj


@pytest.mark.vectors
@pytest.mark.parametrize("name", valid_names())
def test_snapshot_after_every_prefix_then_continue(name: str, tmp_path) -> None:
    events = load_wal_events(VALID_DIR / name / "events.wal")
    full = replay(events)
    step = max(1, len(events) // 60)
    splits = sorted(set(range(0, len(events) + 1, step)) | {len(events)})
    for k in splits:
        r = replay(events[:k])
        snap = build_snapshot(r, 1_700_000_000 + k)
        write_snapshot(tmp_path, snap)
        loaded = load_snapshot(tmp_path)
        assert loaded == snap
        h = reducer_from_snapshot(loaded)
        _same_projection(h, r)
        h.apply_all(events[k:])
        _same_projection(h, full)


def test_write_load_round_trip(tmp_path) -> None:
    e = Events()
    tid, rid = aq.TaskId.new(), aq.RunId.new()
    events = [e.task(tid), e.run(tid, rid, priority=-7), *e.to_running(rid)]
    r = replay(events)
    snap = build_snapshot(r, 123)
    path = write_snapshot(tmp_path, snap)
    assert path == tmp_path / "snapshots" / "snapshot.bin"
    assert not (tmp_path / "snapshots" / "snapshot.bin.tmp").exists()
    assert path.read_bytes() == encode_snapshot(snap)
    assert load_snapshot(tmp_path) == snap == load_snapshot(path)
    h = reducer_from_snapshot(load_snapshot(tmp_path))
    assert h.get_run_instance(rid).effective_priority == -7  # Rust would say 0
    _same_projection(h, r)
    # a second, smaller snapshot replaces the first completely
    empty = build_snapshot(ReplayReducer(), 0)
    write_snapshot(tmp_path, empty)
    assert load_snapshot(tmp_path) == empty


def test_empty_projection_matches_spec_example() -> None:
    data = encode_snapshot(build_snapshot(ReplayReducer(), 0))
    assert data[:12] == bytes.fromhex("04000000520100 00b672f9d1".replace(" ", ""))
    assert len(data) == 12 + 338


def test_actor_heartbeat_survives_hydration() -> None:
    e = Events()
    actor = aq.ActorId.new()
    r = replay([e.register(actor), e.actor_heartbeat(actor)])
    h = reducer_from_snapshot(build_snapshot(r, 5))
    assert h.get_actor(actor).last_heartbeat_at == r.get_actor(actor).last_heartbeat_at is not None


# =========================================================================================
# Loader errors, in check order
# =========================================================================================
def _good_payload() -> bytes:
    e = Events()
    tid = aq.TaskId.new()
    r = replay([e.task(tid), e.run(tid)])
    return encode_snapshot(build_snapshot(r, 9))[12:]


def _load_bytes(tmp_path, data: bytes):
    p = tmp_path / "snapshot.bin"
    p.write_bytes(data)
    return load_snapshot(p)


def test_missing_and_empty_files_give_none(tmp_path) -> None:
    assert load_snapshot(tmp_path) is None
    assert load_snapshot(tmp_path / "nope.bin") is None
    assert _load_bytes(tmp_path, b"") is None


@pytest.mark.parametrize("cut", [1, 2, 3, 4, 5, 7, 8, 9, 11])
def test_truncated_header_is_decode_error(tmp_path, cut: int) -> None:
    with pytest.raises(SnapshotDecodeError) as info:
        _load_bytes(tmp_path, _snapshot_frame(_good_payload())[:cut])
    assert info.value.kind == "DecodeError"


def test_truncated_payload_is_io_error(tmp_path) -> None:
    with pytest.raises(SnapshotIoError) as info:
        _load_bytes(tmp_path, _snapshot_frame(_good_payload())[:-1])
    assert info.value.kind == "IoError"


def test_wrong_version(tmp_path) -> None:
    with pytest.raises(IncompatibleVersion) as info:
        _load_bytes(tmp_path, _snapshot_frame(_good_payload(), version=5))
    assert (info.value.kind, info.value.expected, info.value.found) == ("IncompatibleVersion", 4, 5)
    # version is checked before the rest of the header is read
    with pytest.raises(IncompatibleVersion):
        _load_bytes(tmp_path, struct.pack("<I", 3))


def test_length_above_cap_refused_before_reading(tmp_path) -> None:
    with pytest.raises(SnapshotDecodeError):
        _load_bytes(tmp_path, _snapshot_frame(b"", length=MAX_SNAPSHOT_BYTES + 1))
    with pytest.raises(SnapshotIoError):  # at the cap: read, and short
        _load_bytes(tmp_path, _snapshot_frame(b"", length=MAX_SNAPSHOT_BYTES))


def test_crc_flipped(tmp_path) -> None:
    payload = _good_payload()
    stored = zlib.crc32(payload) ^ 1
    with pytest.raises(SnapshotCrcMismatch) as info:
        _load_bytes(tmp_path, _snapshot_frame(payload, crc=stored))
    assert (info.value.kind, info.value.expected, info.value.actual) == ("CrcMismatch", stored, zlib.crc32(payload))
    flipped = bytearray(_snapshot_frame(payload))
    flipped[20] ^= 0x40
    with pytest.raises(SnapshotCrcMismatch):
        _load_bytes(tmp_path, bytes(flipped))


@pytest.mark.parametrize(
    "payload",
    [b"{", b"not json", b"\xff\xfe", b"[]", b'{"version":4,"version":4}', b"NaN",
     b'{"version":4,"timestamp":1.5}', b'{"version":4}'],
)  # fmt: skip
def test_bad_json_is_decode_error(tmp_path, payload: bytes) -> None:
    with pytest.raises(SnapshotDecodeError) as info:
        _load_bytes(tmp_path, _snapshot_frame(payload))
    assert info.value.kind == "DecodeError"


def test_trailing_bytes_after_frame_are_ignored(tmp_path) -> None:
    payload = _good_payload()
    assert _load_bytes(tmp_path, _snapshot_frame(payload) + b"garbage") == json.loads(payload)


def _mutated(tmp_path, change) -> SnapshotError:
    snap = json.loads(_good_payload())
    change(snap)
    with pytest.raises(SnapshotError) as info:
        _load_bytes(tmp_path, _snapshot_frame(json.dumps(snap).encode()))
    return info.value


def test_schema_version_7(tmp_path) -> None:
    err = _mutated(tmp_path, lambda s: s["metadata"].update(schema_version=7))
    assert isinstance(err, SnapshotMappingError)
    assert (err.kind, err.detail_kind, err.fields) == ("MappingError", "UnsupportedSchemaVersion", {"expected": 8, "found": 7})


@pytest.mark.parametrize(
    "change, kind",
    [
        (lambda s: s["metadata"].update(task_count=2), "TaskCountMismatch"),
        (lambda s: s["metadata"].update(run_count=0), "RunCountMismatch"),
        (lambda s: (s["tasks"].append(s["tasks"][0]), s["metadata"].update(task_count=2)), "DuplicateTaskId"),
        (lambda s: s["runs"][0].update(state_history=[]), "MissingInitialRunStateHistory"),
        (lambda s: s["runs"][0]["run_instance"].update(state="Ready"), "InvalidRunStateHistoryTransition"),
        (lambda s: s["runs"][0]["run_instance"].update(attempt_count=1), "InvalidAttemptHistoryCount"),
        (lambda s: s["runs"][0].update(lease={"owner": "w", "expiry": 1, "acquired_at": 1, "updated_at": 1}),
         "InvalidLeasePresence"),
        (lambda s: s["engine"].update(paused=True), "InvalidEnginePausedCausality"),
        (lambda s: s["engine"].update(resumed_at=5), "InvalidEngineResumedCausality"),
        (lambda s: s["engine"].update(paused_at=9, resumed_at=5), "InvalidEnginePauseResumeOrdering"),
        (lambda s: s["budgets"].extend([{"task_id": s["tasks"][0]["task_spec"]["id"], "dimension": "Token",
                                        "limit": 1, "consumed": 0, "allocated_at": 1, "exhausted": False}] * 2),
         "DuplicateBudgetAllocation"),
    ],
)  # fmt: skip
def test_mapping_errors(tmp_path, change, kind: str) -> None:
    err = _mutated(tmp_path, change)
    assert isinstance(err, SnapshotMappingError) and err.detail_kind == kind


def test_count_mismatch_through_validate_directly() -> None:
    snap = json.loads(_good_payload())
    snap["metadata"]["run_count"] = 5
    with pytest.raises(SnapshotMappingError) as info:
        validate_snapshot(snap)
    assert info.value.fields == {"declared": 5, "actual": 1}
    with pytest.raises(SnapshotMappingError):
        write_snapshot("/nonexistent-dir-never-created", snap)


# =========================================================================================
# decisions.md #11: accepted by Rust's reducer, refused by Rust's snapshot validation
# =========================================================================================
def _case_round_trip(name: str, tmp_path) -> tuple[dict, dict]:
    if not INVALID_DIR.is_dir():
        pytest.skip(VECTORS_MISSING)
    case = invalid_case(name)
    assert case["reducer_apply"]["ok"] and not case["snapshot_build"]["ok"]
    r = replay(load_wal_events(INVALID_DIR / case["wal"]))
    snap = build_snapshot(r, 1_800_000_000)
    write_snapshot(tmp_path, snap)
    loaded = load_snapshot(tmp_path)
    assert loaded == snap
    _same_projection(reducer_from_snapshot(loaded), r)
    return snap, case


def test_i05_run_for_unknown_task(tmp_path) -> None:
    """Relaxed: RunReferencesUnknownTask. The reducer accepts a run whose task was never
    created (decisions #10), so the snapshot must carry it."""
    snap, case = _case_round_trip("i05_run_for_unknown_task", tmp_path)
    assert case["snapshot_build"]["error_debug"].startswith("RunReferencesUnknownTask")
    assert snap["runs"][0]["run_instance"]["task_id"] not in {t["task_spec"]["id"] for t in snap["tasks"]}


def test_s01_dependency_unknown_task(tmp_path) -> None:
    """Relaxed: DependencyReferencesUnknownTask / DependencyDeclarationUnknownTask. The
    reducer keeps declarations naming any ids."""
    _snap, case = _case_round_trip("s01_dependency_unknown_task", tmp_path)
    assert case["snapshot_build"]["error_debug"].startswith("DependencyReferencesUnknownTask")


def test_s02_budget_unknown_task(tmp_path) -> None:
    """Relaxed: BudgetReferencesUnknownTask. The reducer records budgets of any task id."""
    _snap, case = _case_round_trip("s02_budget_unknown_task", tmp_path)
    assert case["snapshot_build"]["error_debug"].startswith("BudgetReferencesUnknownTask")


def test_s03_subscription_unknown_task(tmp_path) -> None:
    """Relaxed: SubscriptionReferencesUnknownTask. The reducer records subscriptions of any
    task id."""
    _snap, case = _case_round_trip("s03_subscription_unknown_task", tmp_path)
    assert case["snapshot_build"]["error_debug"].startswith("SubscriptionReferencesUnknownTask")


def test_s04_task_canceled_before_created(tmp_path) -> None:
    """Relaxed: InvalidTaskCanceledAtCausality. The reducer accepts a cancellation stamped
    before the creation (clock skew); hydration replays both in log order."""
    snap, case = _case_round_trip("s04_task_canceled_before_created", tmp_path)
    assert case["snapshot_build"]["error_debug"].startswith("InvalidTaskCanceledAtCausality")
    assert snap["tasks"][0]["canceled_at"] < snap["tasks"][0]["created_at"]


def test_s05_lease_expired_while_leased(tmp_path) -> None:
    """Nothing relaxed: our reducer records the Leased -> Ready step (decisions #11), so the
    history chain is valid under Rust's own rules."""
    snap, case = _case_round_trip("s05_lease_expired_while_leased", tmp_path)
    assert case["snapshot_build"]["error_debug"].startswith("InvalidRunStateHistoryTransition")
    assert snap["runs"][0]["state_history"][-1]["to"] == "Ready"


def test_s06_ready_future_scheduled(tmp_path) -> None:
    """Relaxed: InvalidReadyScheduleCausality, and RunInstance's parse-time rule for Ready.
    The reducer promotes a run scheduled in the future to Ready."""
    snap, case = _case_round_trip("s06_ready_future_scheduled", tmp_path)
    assert case["snapshot_build"]["error_debug"].startswith("InvalidReadyScheduleCausality")
    inst = snap["runs"][0]["run_instance"]
    assert inst["state"] == "Ready" and inst["scheduled_at"] > inst["created_at"]


# =========================================================================================
# Other reducer-accepted states Rust's validator refuses (no vector; synthetic histories)
# =========================================================================================
@pytest.mark.parametrize("target", [S.RETRY_WAIT, S.SUSPENDED])
def test_lease_kept_in_retry_wait_or_suspended(tmp_path, target) -> None:
    """Relaxed InvalidLeasePresence: the lease survives Running -> RetryWait / Suspended."""
    e = Events()
    tid, rid = aq.TaskId.new(), aq.RunId.new()
    att = aq.AttemptId.new()
    result = R.FAILURE if target is S.RETRY_WAIT else R.SUSPENDED
    events = [e.task(tid), e.run(tid, rid), *e.to_running(rid), e.start(rid, att),
              e.finish(rid, att, result, error="boom" if result is R.FAILURE else None)]  # fmt: skip
    events.append(e.change(rid, S.RUNNING, target) if target is S.RETRY_WAIT else e.suspend(rid))
    r = replay(events)
    assert r.get_lease(rid) is not None and r.get_run_state(rid) is target
    write_snapshot(tmp_path, build_snapshot(r, 1))
    h = reducer_from_snapshot(load_snapshot(tmp_path))
    _same_projection(h, r)
    more = [e.change(rid, target, S.READY), e.release(rid)]
    r.apply_all(more)
    h.apply_all(more)
    _same_projection(h, r)


def test_reused_attempt_id(tmp_path) -> None:
    """Narrowed InvalidActiveAttemptHistory: the reducer accepts AttemptStarted re-using a
    finished attempt's id, leaving two entries with that id."""
    e = Events()
    tid, rid, att = aq.TaskId.new(), aq.RunId.new(), aq.AttemptId.new()
    events = [e.task(tid), e.run(tid, rid), *e.to_running(rid), e.start(rid, att), e.finish(rid, att),
              e.start(rid, att)]  # fmt: skip
    r = replay(events)
    write_snapshot(tmp_path, build_snapshot(r, 1))
    h = reducer_from_snapshot(load_snapshot(tmp_path))
    assert h.active_attempt_id(rid) == att
    _same_projection(h, r)


@pytest.mark.parametrize("final", ["complete", "cancel"])
def test_trimmed_terminal_runs(tmp_path, final: str) -> None:
    e = Events()
    tid, rid, att = aq.TaskId.new(), aq.RunId.new(), aq.AttemptId.new()
    events = [e.task(tid), e.run(tid, rid), *e.to_running(rid), e.start(rid, att)]
    if final == "complete":
        events += [e.finish(rid, att), e.change(rid, S.RUNNING, S.COMPLETED)]
    else:
        events.append(e.cancel_run(rid))
    r = replay(events)
    r.trim_terminal_history()
    write_snapshot(tmp_path, build_snapshot(r, 1))
    _same_projection(reducer_from_snapshot(load_snapshot(tmp_path)), r)


def test_take_snapshot_writes_what_build_and_write_do(tmp_path) -> None:
    from actionqueue.snapshot import snapshot_path, take_snapshot

    events = [aq.WalEvent(i, aq.EnginePaused(i) if i % 2 else aq.EngineResumed(i)) for i in range(1, 8)]
    with aq.open(tmp_path) as store:
        store.writer.append_many(events)
        store.reducer.apply_all(events)
        taken = store.snapshot(timestamp=123)
    assert taken == aq.build_snapshot(store.reducer, 123)
    other = tmp_path / "other"
    other.mkdir()
    aq.write_snapshot(other, taken)
    assert snapshot_path(tmp_path).read_bytes() == snapshot_path(other).read_bytes()
    assert take_snapshot(other, store.reducer, 123) == taken
    with aq.open(tmp_path) as store2:
        assert store2.report.snapshot_source == "image" and store2.report.snapshot_sequence == 7


def test_an_exhausted_budget_with_nothing_consumed_survives_hydration() -> None:
    """A zero-limit budget marked exhausted with nothing consumed (found by the recovery
    property): hydration must not infer the flag from consumption alone."""
    t = aq.TaskId.new()
    dim = aq.BudgetDimension.TOKEN
    r = replay([aq.WalEvent(1, aq.TaskCreated(aq.TaskSpec(t), 1)),
                aq.WalEvent(2, aq.BudgetAllocated(t, dim, 0, 4)),
                aq.WalEvent(3, aq.BudgetExhausted(t, dim, 5))])  # fmt: skip
    assert r.is_budget_exhausted(t, dim)
    snap = build_snapshot(r, 9)
    assert reducer_from_snapshot(snap).is_budget_exhausted(t, dim)
    _same_projection(reducer_from_snapshot(load_snapshot_from(snap)), r)


def load_snapshot_from(snap):
    return json.loads(encode_snapshot(snap)[12:])
