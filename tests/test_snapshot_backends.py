"""The native snapshot codec against its pure-Python twin (``snapshot/_py.py``).

* For every golden history and random lifecycles: the same file bytes from both writers
  (and Rust's, through the golden ``snapshot.bin``), the same index from the writer and
  the reader, the same JSON object and projection after loading.
* Differential fuzzing: mutated snapshot payloads are either accepted by both readers with
  the same content, or refused by both with the same error class and Rust variant.
* The hand-written parts of the reader: JSON grammar edge cases, duplicate keys, serde's
  defaults, field order, limits.
"""

from __future__ import annotations

import json
import random
import struct
import zlib

import pytest
from aq_testlib import budget
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reducer_testlib import VALID_DIR, load_wal_events, replay, valid_names
from test_reducer_properties import simulations

import actionqueue as aq
from actionqueue._backend import NATIVE
from actionqueue.errors import SnapshotDecodeError, SnapshotError, SnapshotMappingError
from actionqueue.snapshot.shape import projection_to_snapshot_builtins
from actionqueue.snapshot import _py

pytestmark = pytest.mark.skipif(not NATIVE, reason="the native snapshot codec is not built")

if NATIVE:
    from actionqueue.snapshot import _sjson, fast


def _state(r: aq.ReplayReducer) -> dict:
    return projection_to_snapshot_builtins(r, 7)


def _frame(payload: bytes) -> bytes:
    return struct.pack("<III", 4, len(payload), zlib.crc32(payload)) + payload


def _both(data: bytes):
    """``(native outcome, pure outcome)``: the loaded JSON object, or the error."""
    out = []
    for load in (lambda: dict(fast.from_file_bytes(data)), lambda: _py._validated(_py.parse_snapshot_bytes(data[12:])) and _py.parse_snapshot_bytes(data[12:])):
        try:
            out.append(load())
        except SnapshotError as exc:
            out.append(exc)
    return out


def _same_outcome(native, pure) -> None:
    if isinstance(pure, Exception) or isinstance(native, Exception):
        assert type(native) is type(pure), (native, pure)
        assert (native.kind, native.detail_kind) == (pure.kind, pure.detail_kind), (native, pure)
    else:
        assert native == pure


# =========================================================================================
# Same bytes, same index, same projection
# =========================================================================================
@pytest.mark.vectors
@pytest.mark.parametrize("name", valid_names())
def test_golden_histories_write_rusts_bytes_on_both_backends(name: str) -> None:
    d = VALID_DIR / name
    r = replay(load_wal_events(d / "events.wal"))
    ts = json.loads((d / "summary.json").read_text())["snapshot_timestamp"]
    native = fast.build_snapshot(r, ts)
    assert native.data == (d / "snapshot.bin").read_bytes() == _py.encode_snapshot(_py.build_snapshot(r, ts))
    for file in ("snapshot.bin", "snapshot_rust_order.bin"):
        data = (d / file).read_bytes()
        loaded = fast.from_file_bytes(data)
        assert dict(loaded) == _py.parse_snapshot_bytes(data[12:])
        assert _state(fast.reducer_from_snapshot(loaded)) == _state(r)


def _assert_same_spans(a, b) -> None:
    for name in ("task_ids", "task_start", "task_end", "run_ids", "run_task", "run_start", "run_end"):
        assert (getattr(a, name) == getattr(b, name)).all(), name
    assert a.top == b.top


@settings(max_examples=budget(30), deadline=None)
@given(sim=simulations(max_steps=60), ts=st.integers(0, 2**64 - 1))
def test_random_projections_agree(sim, ts) -> None:
    r = aq.ReplayReducer()
    r.apply_all(sim.events)
    native = fast.build_snapshot(r, ts)
    pure = _py.build_snapshot(r, ts)
    assert native.data == _py.encode_snapshot(pure)
    assert native == pure
    loaded = fast.from_file_bytes(native.data)
    _assert_same_spans(native.spans, loaded.spans)  # the writer's index is the reader's
    assert _state(fast.reducer_from_snapshot(loaded)) == _state(r) == _state(_py.reducer_from_snapshot(pure))
    # a dict goes through the same checks and comes out the same
    assert fast.encode_snapshot(pure) == native.data


def test_a_lazily_hydrated_reducer_snapshots_to_the_same_bytes(tmp_path) -> None:
    """Building from a reducer whose runs are still in a snapshot's bytes thaws them and
    writes what a fully replayed reducer writes."""
    events = load_wal_events(VALID_DIR / "v08_random_mixed" / "events.wal") if VALID_DIR.is_dir() else None
    if events is None:
        pytest.skip("vectors missing")
    r = replay(events)
    aq.write_snapshot(tmp_path, aq.build_snapshot(r, 5))
    cold = aq.snapshot.reducer_from_image(tmp_path)
    assert cold is not None and cold._cold is not None
    assert aq.build_snapshot(cold, 9).data == aq.build_snapshot(r, 9).data


# =========================================================================================
# Differential fuzzing of the readers
# =========================================================================================
_SEED = random.randrange(1 << 30)


def _sample_payload() -> bytes:
    if not VALID_DIR.is_dir():
        pytest.skip("vectors missing")
    return (VALID_DIR / "v08_random_mixed" / "snapshot.bin").read_bytes()[12:]


_TOKENS = [b'"', b"{", b"}", b"[", b"]", b",", b":", b"0", b"-1", b"1e3", b"1.5", b"null", b"true",
           b'"x"', b'"Ready"', b'\\n', b" ", b"18446744073709551616", b'"id"', b'"run_instance"']  # fmt: skip


def _mutate(rng: random.Random, payload: bytes) -> bytes:
    data = bytearray(payload)
    for _ in range(rng.randint(1, 3)):
        at = rng.randrange(len(data))
        op = rng.randrange(4)
        if op == 0:
            data[at] = rng.randrange(32, 127)
        elif op == 1:
            del data[at : at + rng.randint(1, 8)]
        elif op == 2:
            data[at:at] = rng.choice(_TOKENS)
        else:  # repeat a slice: duplicated keys and entries
            n = rng.randint(1, 40)
            data[at:at] = data[at : at + n]
    return bytes(data)


@pytest.mark.parametrize("rounds", [400, pytest.param(4000, marks=pytest.mark.slow)])
def test_mutated_payloads_get_the_same_verdict_from_both_readers(rounds: int) -> None:
    print(f"seed {_SEED}")
    rng = random.Random(_SEED)
    payload = _sample_payload()
    accepted = 0
    for _ in range(rounds):
        data = _frame(_mutate(rng, payload))
        native, pure = _both(data)
        _same_outcome(native, pure)
        accepted += not isinstance(native, Exception)
    assert accepted > 0  # some mutations (spaces, digits) keep the file valid


@pytest.mark.parametrize(
    "edit, error",
    [
        (lambda s: s.replace('"version":4', '"version":4,"version":4', 1), SnapshotDecodeError),
        (lambda s: s.replace('"state":"', '"state":"Ready","state":"', 1), SnapshotDecodeError),
        (lambda s: s.replace('"created_at":', '"created_at":1.0,"x":', 1), SnapshotDecodeError),
        (lambda s: s.replace('"attempt_count":', '"attempt_count":-1,"y":', 1), SnapshotDecodeError),
        (lambda s: s.replace('"effective_priority":', '"effective_priority":2147483648,"z":', 1), SnapshotDecodeError),
        (lambda s: s.replace('"timestamp":', '"timestamp":18446744073709551616,"w":', 1), SnapshotDecodeError),
        (lambda s: s.replace('"tags":[', '"tags":[1,', 1), SnapshotDecodeError),
        (lambda s: s.replace('"max_attempts":', '"max_attempts":0,"q":', 1), SnapshotDecodeError),
        (lambda s: s + " x", SnapshotDecodeError),
        (lambda s: "[" * 200 + s, SnapshotDecodeError),
        (lambda s: s.replace('"run_count":', '"run_count":99,"r":', 1), SnapshotMappingError),
    ],
)  # fmt: skip
def test_readers_refuse_the_same_documents(edit, error) -> None:
    text = edit(_sample_payload().decode())
    native, pure = _both(_frame(text.encode()))
    assert isinstance(native, error)
    _same_outcome(native, pure)


def test_readers_accept_what_serde_accepts() -> None:
    """Whitespace anywhere, escaped keys, unknown fields, any field order, ``-0``,
    serde defaults: the same content as the compact form."""
    payload = _sample_payload()
    obj = json.loads(payload)
    reordered = {k: obj[k] for k in reversed(list(obj))}
    for run in reordered["runs"]:
        run["future_field"] = {"a": [1, {"b": None}]}
        run["run_instance"] = dict(reversed(list(run["run_instance"].items())))
        del run["run_instance"]["last_state_change_at"]
    for task in reordered["tasks"]:
        task["task_spec"] = dict(reversed(list(task["task_spec"].items())))
        del task["task_spec"]["tenant_id"]
    text = json.dumps(reordered, indent=2).replace('"timestamp": 0', '"timestamp": -0').replace('"runs"', '"\\u0072uns"')
    native, pure = _both(_frame(text.encode()))
    assert not isinstance(native, Exception), native
    _same_outcome(native, pure)


def test_the_scan_index_points_at_each_record() -> None:
    payload = _sample_payload()
    head, spans, tasks, err = _sjson.scan(payload)
    obj = json.loads(payload)
    assert err is None and head["run_count"] == len(obj["runs"]) == len(spans.run_ids)
    for i, run in enumerate(obj["runs"]):
        a, b = int(spans.run_start[i]), int(spans.run_end[i])
        assert json.loads(payload[a:b]) == run
        assert bytes(spans.run_ids[i]) == aq.RunId(run["run_instance"]["id"]).bytes
    for i, task in enumerate(obj["tasks"]):
        a, b = int(spans.task_start[i]), int(spans.task_end[i])
        assert json.loads(payload[a:b]) == task
    for key, (a, b) in spans.top.items():
        assert json.loads(payload[a:b]) == obj[key]


def test_unknown_fields_are_limited() -> None:
    obj = json.loads(_sample_payload())
    obj["runs"][0].update({f"k{i}": i for i in range(65)})
    with pytest.raises(SnapshotDecodeError, match="unknown fields"):
        fast.from_file_bytes(_frame(json.dumps(obj).encode()))


def test_lone_surrogates_are_refused_as_serde_refuses_them() -> None:
    """serde_json refuses a lone surrogate escape; Python's json would take it."""
    text = _sample_payload().decode().replace('"tags":[', '"tags":["\\ud800",', 1)
    with pytest.raises(SnapshotDecodeError, match="surrogate"):
        fast.from_file_bytes(_frame(text.encode()))


@pytest.mark.parametrize("edit", [
    lambda s: s[:-1] + "]",  # the top-level object closed by ']'
    lambda s: s.replace('"tags":["', '"tags":["x"}, "', 1),
    lambda s: s.replace('"lease":null}', '"lease":null]', 1),
    lambda s: s.replace('"state_history":[', '"zz":[1},"state_history":[', 1),
])  # fmt: skip
def test_a_bracket_of_the_wrong_kind_is_refused(edit) -> None:
    """Found by review: an object closed by ']' (or an array by '}') must not pass."""
    native, pure = _both(_frame(edit(_sample_payload().decode()).encode()))
    assert isinstance(native, SnapshotDecodeError), native
    _same_outcome(native, pure)


def test_booleans_are_not_bytes() -> None:
    """Found by review: bytes(True) is b'\\x01'; serde refuses a boolean as a byte."""
    text = _sample_payload().decode().replace('"bytes":[', '"bytes":[true,', 1)
    assert '"bytes":[true,' in text
    native, pure = _both(_frame(text.encode()))
    assert isinstance(native, SnapshotDecodeError) and isinstance(pure, SnapshotDecodeError)


def test_escaped_unknown_keys_are_bounded() -> None:
    """Found by review: comparing escaped unknown keys cost a decode per pair (quadratic);
    at most ESCAPED_KEYS_MAX of them per object, each decoded once."""
    obj = json.loads(_sample_payload())
    raw = json.dumps(obj)
    many = ",".join(f'"\\u006b{i}":0' for i in range(_sjson.ESCAPED_KEYS_MAX + 1))
    few = ",".join(f'"\\u006b{i}":0' for i in range(_sjson.ESCAPED_KEYS_MAX))
    with pytest.raises(SnapshotDecodeError, match="escaped"):
        fast.from_file_bytes(_frame(raw.replace('"lease": null', '"lease": null, ' + many, 1).encode()))
    fast.from_file_bytes(_frame(raw.replace('"lease": null', '"lease": null, ' + few, 1).encode()))
    dup = '"\\u006b1":0,"k1":0'
    with pytest.raises(SnapshotDecodeError, match="duplicate"):
        fast.from_file_bytes(_frame(raw.replace('"lease": null', '"lease": null, ' + dup, 1).encode()))


@pytest.mark.parametrize("edit", [
    lambda b: b.replace(b',"last_state_change_at":', b',"x":1,"last_state_change_at":', 1),  # an unknown field
    lambda b: b.replace(b'"lease":null}', b'"lease" : null}', 1),  # whitespace
    lambda b: b.replace(b',"lease":null}', b'}', 1),  # a missing optional field
])  # fmt: skip
def test_a_record_not_in_our_writers_form_is_written_anew(edit, tmp_path) -> None:
    """Found by review: a reducer hydrated from a hand-made file copied its records as
    they were into the next snapshot; now such a record is encoded again, so the next
    snapshot is exactly what a replayed reducer writes."""
    if not VALID_DIR.is_dir():
        pytest.skip("vectors missing")
    d = VALID_DIR / "v08_random_mixed"
    payload = edit((d / "snapshot.bin").read_bytes()[12:])
    assert payload != (d / "snapshot.bin").read_bytes()[12:]
    cold = fast.reducer_from_snapshot(fast.from_file_bytes(_frame(payload)))
    hot = replay(load_wal_events(d / "events.wal"))
    assert fast.build_snapshot(cold, 99).data == fast.build_snapshot(hot, 99).data
    # and through an image of that file
    (tmp_path / "snapshots").mkdir()
    (tmp_path / "snapshots" / "snapshot.bin").write_bytes(_frame(payload))
    aq.snapshot.write_image(tmp_path, fast.from_file_bytes(_frame(payload)))
    via_image = aq.snapshot.reducer_from_image(tmp_path)
    assert via_image is not None
    assert fast.build_snapshot(via_image, 99).data == fast.build_snapshot(hot, 99).data


def test_long_histories_grow_the_readers_arrays() -> None:
    """A run whose state and attempt histories outgrow the reader's first allocation."""
    S = aq.RunState
    t, rid = aq.TaskId.new(), aq.RunId.new()
    events = [aq.TaskCreated(aq.TaskSpec(t), 1), aq.RunCreated(aq.RunInstance(rid, t, S.SCHEDULED, None, 0, 1, 1, 0, 1)),
              aq.RunStateChanged(rid, S.SCHEDULED, S.READY, 2)]  # fmt: skip
    for k in range(60):
        events += [aq.RunStateChanged(rid, S.READY, S.LEASED, 3 + k), aq.RunStateChanged(rid, S.LEASED, S.READY, 3 + k)]
    r = aq.ReplayReducer()
    r.apply_all([aq.WalEvent(i + 1, e) for i, e in enumerate(events)])
    snap = fast.build_snapshot(r, 5)
    assert snap.data == _py.encode_snapshot(_py.build_snapshot(r, 5))
    back = fast.reducer_from_snapshot(fast.from_file_bytes(snap.data))
    assert len(back.get_run_history(rid)) == 122 and _state(back) == _state(r)
