"""Property tests: random valid events of every kind survive every encoding.

Strategies are generated from the model's wire schema (``__aq_fields__``, see
aq_testlib.for_spec), so every field of every event kind is covered, with edge integers
(0, 127, 128, 2**32-1, 2**64-1, i32 limits) and awkward strings (control characters,
U+2028, emoji, 128+ byte lengths).
"""

from __future__ import annotations

import json
import uuid
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import actionqueue as aq
from aq_testlib import (
    FIELD_OVERRIDES,
    I32_MAX,
    I32_MIN,
    U32_MAX,
    U64_MAX,
    for_class,
    for_spec,
    frame,
    varint,
    wal_events,
)

EVENT_KINDS = pytest.mark.parametrize("kind", aq.EVENT_TYPES, ids=[k.__name__ for k in aq.EVENT_TYPES])


# --------------------------------------------------------------------------------------
# The strategies themselves
# --------------------------------------------------------------------------------------
def _struct_classes() -> set[type]:
    seen: set[type] = set()

    def walk(spec: tuple) -> None:
        kind = spec[0]
        if kind in ("opt", "vec"):
            walk(spec[1])
        elif kind == "struct":
            visit(spec[1])
        elif kind == "union":
            for v in spec[1]._variants:
                visit(v)

    def visit(cls: type) -> None:
        if cls in seen:
            return
        seen.add(cls)
        for _, spec in cls.__aq_fields__:
            walk(spec)

    visit(aq.WalEvent)
    for cls in aq.EVENT_TYPES:
        visit(cls)
    return seen


def test_strategy_overrides_name_real_fields() -> None:
    """A renamed field must not silently drop its validity-honouring strategy."""
    for cls, name in FIELD_OVERRIDES:
        assert name in dict(cls.__aq_fields__), f"{cls.__name__}.{name} is not a wire field"


def test_every_struct_with_validation_has_overrides() -> None:
    classes = _struct_classes()
    validated = {c for c in classes if "_validate" in c.__dict__}
    assert validated == {aq.TaskConstraints, aq.RepeatPolicy, aq.CronPolicy, aq.TaskSpec, aq.RunInstance}
    assert {cls for cls, _ in FIELD_OVERRIDES} <= validated
    for cls in classes:  # every spec of every reachable field has a strategy
        for _, spec in cls.__aq_fields__:
            for_spec(spec)


def test_event_types_in_variant_order() -> None:
    names = [
        "TaskCreated", "RunCreated", "RunStateChanged", "AttemptStarted", "AttemptFinished",
        "TaskCanceled", "RunCanceled", "LeaseAcquired", "LeaseHeartbeat", "LeaseExpired",
        "LeaseReleased", "EnginePaused", "EngineResumed", "DependencyDeclared", "RunSuspended",
        "RunResumed", "BudgetAllocated", "BudgetConsumed", "BudgetExhausted", "BudgetReplenished",
        "SubscriptionCreated", "SubscriptionTriggered", "SubscriptionCanceled", "ActorRegistered",
        "ActorDeregistered", "ActorHeartbeat", "TenantCreated", "RoleAssigned", "CapabilityGranted",
        "CapabilityRevoked", "LedgerEntryAppended",
    ]  # fmt: skip
    assert [cls.__name__ for cls in aq.EVENT_TYPES] == names
    assert [cls.kind for cls in aq.EVENT_TYPES] == list(range(31))
    for cls in aq.EVENT_TYPES:
        assert getattr(aq, cls.__name__) is cls


# --------------------------------------------------------------------------------------
# Binary round trips, per event kind and backend
# --------------------------------------------------------------------------------------
@EVENT_KINDS
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_roundtrip(codec, kind: type, data: st.DataObject) -> None:
    event = data.draw(wal_events(kind), label="event")
    record = codec.encode(event)
    payload = codec.encode_payload(event)
    assert record[12:] == payload
    assert record[:12] == frame(payload)[:12]  # version 5, length, zlib CRC-32
    assert payload[0 : len(varint(event.sequence))] == varint(event.sequence)
    assert payload[len(varint(event.sequence))] == kind.kind

    decoded = codec.decode(record)
    assert decoded == event
    assert type(decoded.event) is kind
    assert hash(decoded) == hash(event)
    assert decoded.to_builtins() == event.to_builtins()
    assert codec.decode_payload(payload) == event
    assert codec.encode(decoded) == record  # deterministic
    # Lenient framing: bytes after the record, and inside the payload after the event.
    assert codec.decode(record + b"\xff\x00garbage") == event
    assert codec.decode(frame(payload + b"\x01\x02\x03")) == event
    assert codec.decode_payload(payload + b"\x00") == event


@EVENT_KINDS
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_backends_agree(both_codecs, kind: type, data: st.DataObject) -> None:
    cy, py = both_codecs
    event = data.draw(wal_events(kind), label="event")
    record = cy.encode(event)
    assert py.encode(event) == record
    assert cy.decode(record) == py.decode(record) == event


@EVENT_KINDS
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_json_roundtrip(kind: type, data: st.DataObject) -> None:
    event = data.draw(wal_events(kind), label="event")
    text = event.to_json()
    assert aq.WalEvent.from_json(text) == event
    assert json.loads(text) == event.to_builtins()
    assert aq.WalEvent.from_builtins(event.to_builtins()) == event
    # compact, serde-style: no whitespace between tokens, sequence first
    assert text.startswith(f'{{"sequence":{event.sequence},"event":{{"{kind.__name__}":')
    inner = event.event
    assert kind.from_json(inner.to_json()) == inner
    assert aq.Event.from_json(inner.to_json()) == inner


@settings(max_examples=25, deadline=None)
@given(events=st.lists(wal_events(), max_size=8))
def test_batch_roundtrip(codec, events: list) -> None:
    buf = codec.encode_batch(events)
    assert buf == b"".join(codec.encode(e) for e in events)
    assert codec.encode_batch(iter(events)) == buf
    assert codec.decode_batch(buf) == events
    assert codec.decode_batch(memoryview(buf)) == events


def test_empty_batch(codec) -> None:
    assert codec.encode_batch([]) == b""
    assert codec.decode_batch(b"") == []


# --------------------------------------------------------------------------------------
# Nested values on their own (JSON shape of the non-event types)
# --------------------------------------------------------------------------------------
NESTED = [
    aq.TaskSpec, aq.TaskPayload, aq.TaskConstraints, aq.TaskMetadata, aq.RunInstance,
    aq.RepeatPolicy, aq.CronPolicy,
]  # fmt: skip


@pytest.mark.parametrize("cls", NESTED, ids=[c.__name__ for c in NESTED])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_nested_json_roundtrip(cls: type, data: st.DataObject) -> None:
    value = data.draw(for_class(cls))
    assert cls.from_json(value.to_json()) == value
    assert json.loads(value.to_json()) == value.to_builtins()


@settings(max_examples=25, deadline=None)
@given(policy=for_spec(("union", aq.RunPolicy)), flt=for_spec(("union", aq.EventFilter)))
def test_union_json_roundtrip(policy, flt) -> None:
    # Inside a TaskSpec a policy is the tagged RunPolicy enum ("Once", {"Repeat": {...}}) ...
    spec = aq.TaskSpec(aq.TaskId.new(), run_policy=policy)
    assert aq.TaskSpec.from_builtins(spec.to_builtins()) == spec
    # ... while RepeatPolicy / CronPolicy alone are Rust structs of their own (untagged).
    assert type(policy).from_builtins(policy.to_builtins()) == policy
    assert aq.EventFilter.from_builtins(flt.to_builtins()) == flt
    assert type(flt).from_builtins(flt.to_builtins()) == flt


def test_cron_none_is_omitted_in_json_only() -> None:
    spec = aq.TaskSpec(aq.TaskId.new(), run_policy=aq.CronPolicy("0 * * * * * *"))
    assert spec.to_builtins()["run_policy"] == {"Cron": {"expression": "0 * * * * * *"}}
    with_max = aq.TaskSpec(spec.id, run_policy=aq.CronPolicy("0 * * * * * *", 3))
    assert with_max.to_builtins()["run_policy"] == {"Cron": {"expression": "0 * * * * * *", "max_occurrences": 3}}
    assert aq.OncePolicy().to_builtins() == "Once"
    assert aq.RepeatPolicy(2, 60).to_builtins() == {"count": 2, "interval_secs": 60}


# --------------------------------------------------------------------------------------
# Exact bytes for edge integers and the worked examples of wire-format.md §5
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (0, "00"), (1, "01"), (127, "7f"), (128, "8001"), (300, "ac02"), (16383, "ff7f"),
        (16384, "808001"), (1_700_000_000, "80e2cfaa06"), (U32_MAX, "ffffffff0f"),
        (2**32, "8080808010"), (U64_MAX, "ffffffffffffffffff01"),
    ],
)  # fmt: skip
def test_u64_varint_bytes(codec, value: int, encoded: str) -> None:
    event = aq.WalEvent(value, aq.EnginePaused(value))
    payload = codec.encode_payload(event)
    assert payload == bytes.fromhex(encoded) + b"\x0b" + bytes.fromhex(encoded)
    assert codec.decode_payload(payload) == event


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, "00"), (-1, "01"), (1, "02"), (-3, "05"), (5, "0a"), (-64, "7f"), (64, "8001"),
     (I32_MIN, "ffffffff0f"), (I32_MAX, "feffffff0f")],
)  # fmt: skip
def test_i32_zigzag_bytes(codec, value: int, encoded: str) -> None:
    spec = aq.TaskSpec(
        aq.TaskId("11111111-2222-3333-4444-555555555555"),
        metadata=aq.TaskMetadata(priority=value),
    )
    event = aq.WalEvent(0, aq.TaskCreated(spec, 0))
    payload = codec.encode_payload(event)
    # ... constraints (01 00 00 00 00 00), tags (00), priority, description (00), parent, tenant, ts
    assert payload.endswith(bytes.fromhex("01000000000000") + bytes.fromhex(encoded) + bytes.fromhex("00000000"))
    assert codec.decode_payload(payload) == event


def test_worked_example_engine_paused(codec) -> None:
    record = bytes.fromhex("05 00 00 00 07 00 00 00 03 3d 34 bb 01 0b 80 e2 cf aa 06")
    event = aq.WalEvent(1, aq.EnginePaused(1_700_000_000))
    assert codec.encode(event) == record
    assert codec.decode(record) == event


def test_worked_example_run_state_changed(codec) -> None:
    record = bytes.fromhex(
        "05 00 00 00 18 00 00 00 55 b4 f8 99 ac 02 02 10 00 11 22 33 44 55 66 77 88 99 aa bb"
        " cc dd ee ff 00 01 e8 07"
    )
    event = aq.WalEvent(
        300,
        aq.RunStateChanged(aq.RunId("00112233-4455-6677-8899-aabbccddeeff"), "Scheduled", "Ready", 1000),
    )
    assert codec.encode(event) == record
    assert codec.decode(record) == event


def test_worked_example_task_created(codec) -> None:
    record = bytes.fromhex(
        "05 00 00 00 33 00 00 00 63 7e 88 73 02 00 10 11 11 11 11 22 22 33 33 44 44 55 55"
        " 55 55 55 55 02 68 69 01 0a 74 65 78 74 2f 70 6c 61 69 6e 00 01 01 1e 00 00 00 00"
        " 01 01 61 05 00 00 00 e8 07"
    )
    spec = aq.TaskSpec(
        aq.TaskId("11111111-2222-3333-4444-555555555555"),
        payload=aq.TaskPayload(b"hi", "text/plain"),
        constraints=aq.TaskConstraints(timeout_secs=30),
        metadata=aq.TaskMetadata(tags=["a"], priority=-3),
    )
    event = aq.WalEvent(2, aq.TaskCreated(spec, 1000))
    assert codec.encode(event) == record
    assert codec.decode(record) == event


# --------------------------------------------------------------------------------------
# CRC-32 (the native one has a PCLMULQDQ path for long inputs: check it against zlib)
# --------------------------------------------------------------------------------------
def test_crc32_check_value(codec) -> None:
    assert codec.crc32(b"123456789") == 0xCBF43926
    assert codec.crc32(b"") == 0
    assert aq.crc32(b"123456789") == 0xCBF43926


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=5000), start=st.integers(0, 15), split=st.integers(0, 5000))
def test_crc32_matches_zlib(codec, data: bytes, start: int, split: int) -> None:
    view = memoryview(data)[min(start, len(data)) :]  # odd alignments
    expected = zlib.crc32(view) & 0xFFFFFFFF
    assert codec.crc32(view) == expected
    assert codec.crc32(bytearray(view)) == expected
    split = min(split, len(view))
    assert codec.crc32(view[split:], codec.crc32(view[:split])) == expected


@pytest.mark.parametrize("size", [0, 1, 15, 16, 63, 64, 65, 127, 128, 1024, 4095, 4096, 65537, 1 << 20])
def test_crc32_sizes(codec, size: int) -> None:
    data = bytes((i * 131 + 7) & 0xFF for i in range(size))
    assert codec.crc32(data) == zlib.crc32(data) & 0xFFFFFFFF


def test_ids_roundtrip_uuid_bytes(codec) -> None:
    u = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
    payload = codec.encode_payload(aq.WalEvent(0, aq.RunResumed(aq.RunId(u), 0)))
    assert payload == b"\x00\x0f\x10" + u.bytes + b"\x00"
