"""The event model: validation, coercion, immutability, identity, repr, pickling, match."""

from __future__ import annotations

import copy
import dataclasses
import os
import pickle
import uuid

import pytest

import actionqueue as aq

U1 = "00112233-4455-6677-8899-aabbccddeeff"
RUN = aq.RunId("11111111-2222-4222-8333-333344444444")
TASK = aq.TaskId("d540e4bf-1168-4e83-ad43-ac544466d511")
ATTEMPT = aq.AttemptId("a1b2c3d4-e5f6-4708-990a-1b2c3d4e5f60")
ACTOR = aq.ActorId("682001e2-dffd-4cc1-af00-9587c6f3e0fa")
TENANT = aq.TenantId("99707d23-f96c-4127-ba5e-1fd6996f9234")

ID_TYPES = [aq.TaskId, aq.RunId, aq.AttemptId, aq.ActorId, aq.TenantId, aq.LedgerEntryId, aq.SubscriptionId]


def test_backend_selected() -> None:
    """A missing native build must not pass silently (see conftest's codec fixture)."""
    expected = "python" if os.environ.get("ACTIONQUEUE_PUREPYTHON") else "cython"
    assert aq.backend == expected
    module = __import__(f"actionqueue.codec.{'_codec_py' if expected == 'python' else '_codec'}", fromlist=["x"])
    assert aq.encode is module.encode and aq.decode_batch is module.decode_batch


# --------------------------------------------------------------------------------------
# Construction-time validation (wire-format.md §4)
# --------------------------------------------------------------------------------------
def run_instance(**overrides) -> aq.RunInstance:
    fields = dict(
        id=RUN, task_id=TASK, state=aq.RunState.SCHEDULED, current_attempt_id=None, attempt_count=0,
        created_at=100, scheduled_at=100, effective_priority=0, last_state_change_at=100,
    )  # fmt: skip
    fields.update(overrides)
    return aq.RunInstance(**fields)


VALIDATION_RULES = {
    # TaskConstraints, in Rust's check order
    "max_attempts_0": (lambda: aq.TaskConstraints(max_attempts=0), "max_attempts"),
    "timeout_secs_0": (lambda: aq.TaskConstraints(timeout_secs=0), "timeout_secs"),
    "concurrency_key_empty": (lambda: aq.TaskConstraints(concurrency_key=""), "concurrency key"),
    "required_capabilities_empty": (lambda: aq.TaskConstraints(required_capabilities=[]), "must not be empty"),
    "required_capabilities_empty_entry": (
        lambda: aq.TaskConstraints(required_capabilities=["a", ""]),
        "contains an empty string",
    ),
    # RunPolicy
    "repeat_count_0": (lambda: aq.RepeatPolicy(0, 60), "count"),
    "repeat_interval_0": (lambda: aq.RepeatPolicy(1, 0), "interval_secs"),
    "cron_bad_expression": (lambda: aq.CronPolicy("not a cron"), "cron"),
    "cron_5_fields": (lambda: aq.CronPolicy("* * * * *"), "fields"),
    "cron_max_0": (lambda: aq.CronPolicy("0 * * * * * *", 0), "max_occurrences"),
    # TaskSpec
    "task_spec_nil_id": (lambda: aq.TaskSpec(aq.TaskId.nil()), "task identifier"),
    # RunInstance, in Rust's check order
    "run_nil_id": (lambda: run_instance(id=aq.RunId.nil()), "run_id must not be nil"),
    "run_nil_task_id": (lambda: run_instance(task_id=aq.TaskId.nil()), "task_id must not be nil"),
    "run_attempt_outside_running": (
        lambda: run_instance(state=aq.RunState.LEASED, current_attempt_id=ATTEMPT),
        "only valid in Running",
    ),
    "run_ready_scheduled_after_created": (
        lambda: run_instance(state=aq.RunState.READY, created_at=100, scheduled_at=101),
        "scheduled_at",
    ),
    # custom() constructors (decode accepts the empty name: vector ok_role_custom_empty)
    "role_custom_empty": (lambda: aq.Role.custom(""), "empty"),
    "capability_custom_empty": (lambda: aq.Capability.custom(""), "empty"),
}


@pytest.mark.parametrize("rule", sorted(VALIDATION_RULES))
def test_validation_rule(rule: str) -> None:
    build, message = VALIDATION_RULES[rule]
    with pytest.raises(aq.ValidationError, match=message):
        build()


@pytest.mark.parametrize("state", [s for s in aq.RunState if s is not aq.RunState.RUNNING])
def test_attempt_id_only_while_running(state: aq.RunState) -> None:
    with pytest.raises(aq.ValidationError):
        run_instance(state=state, current_attempt_id=ATTEMPT)
    assert run_instance(state=state).current_attempt_id is None


def test_valid_boundaries() -> None:
    assert run_instance(state=aq.RunState.RUNNING, current_attempt_id=ATTEMPT).current_attempt_id == ATTEMPT
    assert run_instance(state=aq.RunState.READY, created_at=100, scheduled_at=100).state is aq.RunState.READY
    # only Ready constrains scheduled_at
    assert run_instance(state=aq.RunState.SCHEDULED, created_at=1, scheduled_at=2).scheduled_at == 2
    # nil ids are fine everywhere else
    assert aq.TaskCanceled(aq.TaskId.nil(), 0).task_id.is_nil
    assert aq.TaskSpec(TASK, parent_task_id=aq.TaskId.nil()).parent_task_id.is_nil
    c = aq.TaskConstraints(max_attempts=1, timeout_secs=1, concurrency_key="k", required_capabilities=["x"])
    assert c.required_capabilities == ("x",)
    assert aq.RepeatPolicy(1, 1) == aq.RunPolicy.repeat(1, 1)
    assert aq.CronPolicy("0 * * * * * *", 1) == aq.RunPolicy.cron("0 * * * * * *", 1)
    assert aq.RunPolicy.once() is aq.RunPolicy.ONCE == aq.OncePolicy()
    # not validated (as in Rust): empty strings, threshold above 100, empty depends_on
    assert aq.LeaseAcquired(RUN, "", 0, 0).owner == ""
    assert aq.BudgetThresholdFilter(TASK, "Token", 255).threshold_pct == 255
    assert aq.DependencyDeclared(TASK, [], 0).depends_on == ()
    assert aq.Role(3, "").name == "" and aq.Capability(5, "").is_custom


@pytest.mark.parametrize(
    ("build", "exc"),
    [
        (lambda: aq.EnginePaused(-1), aq.ValidationError),
        (lambda: aq.EnginePaused(2**64), aq.ValidationError),
        (lambda: aq.WalEvent(-1, aq.EnginePaused(0)), aq.ValidationError),
        (lambda: aq.TaskMetadata(priority=2**31), aq.ValidationError),
        (lambda: aq.TaskMetadata(priority=-(2**31) - 1), aq.ValidationError),
        (lambda: aq.TaskConstraints(max_attempts=2**32), aq.ValidationError),
        (lambda: aq.BudgetThresholdFilter(TASK, "Token", 256), aq.ValidationError),
        (lambda: aq.EnginePaused(1.0), TypeError),
        (lambda: aq.EnginePaused("1"), TypeError),
        (lambda: aq.EnginePaused(True), TypeError),
        (lambda: aq.EnginePaused(None), TypeError),
        (lambda: aq.LeaseAcquired(RUN, b"owner", 0, 0), TypeError),
        (lambda: aq.LeaseAcquired(TASK, "owner", 0, 0), TypeError),  # a TaskId is not a RunId
        (lambda: aq.LeaseAcquired(12, "owner", 0, 0), TypeError),
        (lambda: aq.LeaseAcquired("not-a-uuid", "owner", 0, 0), aq.ValidationError),
        (lambda: aq.LeaseAcquired(b"short", "owner", 0, 0), aq.ValidationError),
        (lambda: aq.RunStateChanged(RUN, "Nope", "Ready", 0), aq.ValidationError),
        (lambda: aq.RunStateChanged(RUN, aq.BudgetDimension.TOKEN, "Ready", 0), TypeError),
        (lambda: aq.RoleAssigned(ACTOR, "Nope", TENANT, 0), aq.ValidationError),
        (lambda: aq.DependencyDeclared(TASK, "abc", 0), TypeError),
        (lambda: aq.DependencyDeclared(TASK, None, 0), TypeError),
        (lambda: aq.WalEvent(1, aq.TaskMetadata()), TypeError),
        (lambda: aq.TaskCreated(aq.TaskMetadata(), 0), TypeError),
        (lambda: aq.SubscriptionCreated(aq.SubscriptionId.nil(), TASK, aq.RunPolicy.ONCE, 0), TypeError),
    ],
)
def test_construction_rejects_bad_values(build, exc) -> None:
    with pytest.raises(exc):
        build()


# --------------------------------------------------------------------------------------
# Coercions
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", ID_TYPES, ids=lambda c: c.__name__)
def test_id_conversions(cls: type) -> None:
    u = uuid.UUID(U1)
    forms = [u, U1, U1.upper(), "{" + U1 + "}", U1.replace("-", ""), u.bytes, bytearray(u.bytes), memoryview(u.bytes)]
    ids = [cls(form) for form in forms]
    assert all(i == ids[0] for i in ids)
    i = ids[0]
    assert cls(i) == i
    assert i.bytes == u.bytes and i.uuid == u and str(i) == U1
    assert uuid.UUID(str(i)) == u
    assert cls(str(i)) == i and cls(i.uuid) == i and cls(i.bytes) == i
    new = cls.new()
    assert new.uuid.version == 4 and new.uuid.variant == uuid.RFC_4122
    assert cls.new() != new
    assert cls.nil().is_nil and cls.nil().bytes == bytes(16) and not new.is_nil
    assert str(cls.nil()) == "00000000-0000-0000-0000-000000000000"


def test_field_coercions() -> None:
    event = aq.RunStateChanged(str(RUN), "Scheduled", "Ready", 5)
    assert type(event.run_id) is aq.RunId and event.run_id == RUN
    assert event.previous_state is aq.RunState.SCHEDULED and event.new_state is aq.RunState.READY
    assert aq.RunStateChanged(RUN.uuid, "Scheduled", "Ready", 5) == event
    assert aq.RunStateChanged(RUN.bytes, aq.RunState.SCHEDULED, aq.RunState.READY, 5) == event

    deps = aq.DependencyDeclared(str(TASK), [str(TASK), TASK.uuid, TASK.bytes], 1)
    assert deps.depends_on == (TASK, TASK, TASK) and type(deps.depends_on) is tuple
    assert aq.DependencyDeclared(TASK, (t for t in [TASK]), 1).depends_on == (TASK,)

    meta = aq.TaskMetadata(tags=["a", "b"])
    assert meta.tags == ("a", "b") and type(meta.tags) is tuple
    payload = aq.TaskPayload(bytearray(b"hi"), "text/plain")
    assert type(payload.bytes) is bytes and payload.bytes == b"hi"
    assert aq.TaskPayload(memoryview(b"hi")).bytes == b"hi"

    assert aq.RoleAssigned(ACTOR, "Operator", TENANT, 0).role == aq.Role.OPERATOR
    assert aq.CapabilityGranted(ACTOR, "CanCancel", TENANT, 0).capability == aq.Capability.CAN_CANCEL
    assert aq.BudgetExhausted(TASK, "CostCents", 0).dimension is aq.BudgetDimension.COST_CENTS
    ri = run_instance(state="Running", current_attempt_id=str(ATTEMPT))
    assert ri.state is aq.RunState.RUNNING and ri.current_attempt_id == ATTEMPT

    class MyInt(int):
        pass

    class MyStr(str):
        pass

    ts = aq.EnginePaused(MyInt(5)).timestamp
    assert type(ts) is int and ts == 5
    owner = aq.LeaseAcquired(RUN, MyStr("o"), 0, 0).owner
    assert type(owner) is str and owner == "o"


def test_enum_indices_are_variant_order() -> None:
    orders = {
        aq.RunState: ["Scheduled", "Ready", "Leased", "Running", "RetryWait", "Suspended", "Completed", "Failed", "Canceled"],
        aq.AttemptResultKind: ["Success", "Failure", "Timeout", "Suspended"],
        aq.BudgetDimension: ["Token", "CostCents", "TimeSecs"],
        aq.ConcurrencyKeyHoldPolicy: ["HoldDuringRetry", "ReleaseOnRetry"],
        aq.SafetyLevel: ["Pure", "Idempotent", "Transactional"],
    }  # fmt: skip
    for cls, names in orders.items():
        assert [m.value for m in cls] == names
        assert [m.index for m in cls] == list(range(len(names)))
    assert [r.name for r in (aq.Role.OPERATOR, aq.Role.AUDITOR, aq.Role.GATEKEEPER)] == ["Operator", "Auditor", "Gatekeeper"]
    assert [aq.Role.OPERATOR.index, aq.Role.GATEKEEPER.index, aq.Role.custom("x").index] == [0, 2, 3]
    caps = [aq.Capability.CAN_SUBMIT, aq.Capability.CAN_EXECUTE, aq.Capability.CAN_REVIEW,
            aq.Capability.CAN_APPROVE, aq.Capability.CAN_CANCEL, aq.Capability.custom("x")]  # fmt: skip
    assert [c.index for c in caps] == list(range(6))
    assert aq.Role.custom("x").is_custom and not aq.Role.OPERATOR.is_custom


def test_run_state_is_terminal() -> None:
    terminal = {s for s in aq.RunState if s.is_terminal}
    assert terminal == {aq.RunState.COMPLETED, aq.RunState.FAILED, aq.RunState.CANCELED}


def test_defaults() -> None:
    spec = aq.TaskSpec(TASK)
    assert spec.payload == aq.TaskPayload(b"", None)
    assert spec.run_policy == aq.RunPolicy.ONCE
    assert spec.constraints == aq.TaskConstraints(1, None, None, "HoldDuringRetry", "Pure", None)
    assert spec.metadata == aq.TaskMetadata((), 0, None)
    assert spec.parent_task_id is None and spec.tenant_id is None


# --------------------------------------------------------------------------------------
# Immutability, equality, hashing, ordering
# --------------------------------------------------------------------------------------
def _sample_values():
    spec = aq.TaskSpec(TASK, metadata=aq.TaskMetadata(tags=["t"]))
    return [
        aq.WalEvent(1, aq.TaskCreated(spec, 2)),
        aq.TaskCreated(spec, 2),
        spec,
        spec.metadata,
        spec.constraints,
        aq.RepeatPolicy(1, 2),
        aq.CronPolicy("@daily"),
        run_instance(),
        aq.CustomFilter("k"),
    ]


@pytest.mark.parametrize("value", _sample_values(), ids=lambda v: type(v).__name__)
def test_values_are_immutable(value) -> None:
    name = dataclasses.fields(value)[0].name
    with pytest.raises(AttributeError):
        setattr(value, name, getattr(value, name))
    with pytest.raises(AttributeError):
        delattr(value, name)
    # No new attributes either. CPython < 3.12 raises TypeError here instead of an
    # AttributeError (frozen+slots dataclasses call super() with the pre-slots class).
    with pytest.raises((AttributeError, TypeError)):
        value.extra = 1
    assert not hasattr(value, "__dict__")


def test_ids_are_immutable() -> None:
    with pytest.raises(AttributeError):
        RUN._bytes = bytes(16)
    with pytest.raises(AttributeError):
        del RUN._bytes
    with pytest.raises(AttributeError):
        RUN.other = 1
    with pytest.raises(AttributeError):
        RUN.bytes = bytes(16)  # read-only property


def test_role_and_capability_reject_setattr() -> None:
    role = aq.Role.custom("x")
    with pytest.raises(AttributeError):
        role.name = "y"
    with pytest.raises(AttributeError):
        aq.Capability.CAN_SUBMIT.index = 3
    assert role.name == "x" and aq.Capability.CAN_SUBMIT.index == 0


def test_role_and_capability_reject_delattr() -> None:
    role = aq.Role.custom("x")
    with pytest.raises(AttributeError):
        del role.name
    assert role.name == "x"


def test_id_equality_hash_ordering() -> None:
    a, b = aq.TaskId(bytes(15) + b"\x01"), aq.TaskId(bytes(15) + b"\x02")
    assert a == aq.TaskId(a.bytes) and hash(a) == hash(aq.TaskId(a.bytes))
    assert a != b and a < b and a <= b and b > a and b >= a and not a > b
    assert {a, aq.TaskId(a.bytes), b} == {a, b}
    # different id types never compare equal, and do not order against each other
    assert aq.TaskId(a.bytes) != aq.RunId(a.bytes)
    assert a != a.bytes and a != str(a) and a != a.uuid
    with pytest.raises(TypeError):
        _ = a < aq.RunId(b.bytes)
    with pytest.raises(TypeError):
        _ = a < b.bytes
    ids = [aq.TaskId.new() for _ in range(50)]
    assert sorted(ids) == sorted(ids, key=str) == sorted(ids, key=lambda i: i.uuid)


def test_event_equality_and_hash() -> None:
    e1 = aq.LeaseAcquired(RUN, "owner", 10, 20)
    e2 = aq.LeaseAcquired(str(RUN), "owner", 10, 20)
    assert e1 == e2 and hash(e1) == hash(e2)
    assert e1 != aq.LeaseHeartbeat(RUN, "owner", 10, 20)  # same fields, other kind
    assert e1 != aq.LeaseAcquired(RUN, "owner", 10, 21)
    assert aq.WalEvent(1, e1) != aq.WalEvent(2, e1)
    assert len({aq.WalEvent(1, e1), aq.WalEvent(1, e2)}) == 1
    assert aq.Role.custom("x") == aq.Role(3, "x") and hash(aq.Role.custom("x")) == hash(aq.Role(3, "x"))
    assert aq.Role.custom("Operator") != aq.Role.OPERATOR
    assert aq.Role.OPERATOR != aq.Capability.CAN_SUBMIT


# --------------------------------------------------------------------------------------
# repr, kind, pickling, copying, match
# --------------------------------------------------------------------------------------
def test_reprs_are_readable() -> None:
    assert repr(RUN) == "RunId('11111111-2222-4222-8333-333344444444')"
    assert eval(repr(RUN), {"RunId": aq.RunId}) == RUN
    assert repr(aq.RunState.READY) == "RunState.READY"
    assert repr(aq.Role.OPERATOR) == "Role.OPERATOR"
    assert repr(aq.Capability.CAN_SUBMIT) == "Capability.CAN_SUBMIT"
    assert repr(aq.Role.custom("ops")) == "Role.custom('ops')"
    text = repr(aq.WalEvent(3, aq.RunStateChanged(RUN, "Scheduled", "Ready", 9)))
    assert text == (
        "WalEvent(sequence=3, event=RunStateChanged(run_id=RunId('11111111-2222-4222-8333-333344444444'), "
        "previous_state=RunState.SCHEDULED, new_state=RunState.READY, timestamp=9))"
    )
    namespace = {name: getattr(aq, name) for name in aq.__all__}
    event = aq.WalEvent(3, aq.RoleAssigned(ACTOR, aq.Role.custom("o'p"), TENANT, 9))
    assert eval(repr(event), namespace) == event


def test_kind_and_kind_name() -> None:
    event = aq.WalEvent(1, aq.LedgerEntryAppended(aq.LedgerEntryId.nil(), TENANT, "k", None, b"", 0))
    assert event.kind == event.event.kind == aq.LedgerEntryAppended.kind == 30
    assert event.event.kind_name == "LedgerEntryAppended"
    assert all(isinstance(cls.kind, int) for cls in aq.EVENT_TYPES)
    assert all(issubclass(cls, aq.Event) for cls in aq.EVENT_TYPES)


def test_values_pickle_and_copy() -> None:
    values = _sample_values() + [RUN, aq.RunState.READY, aq.Role.custom("x"), aq.Capability.CAN_CANCEL]
    for value in values:
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            restored = pickle.loads(pickle.dumps(value, protocol))
            assert restored == value and type(restored) is type(value)
        assert copy.copy(value) == value and copy.deepcopy(value) == value
    assert pickle.loads(pickle.dumps(aq.RunState.READY)) is aq.RunState.READY


def test_decoded_events_pickle(codec, vectors) -> None:
    events = codec.decode_batch((vectors / "events" / "all_variants.wal").read_bytes())
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        restored = pickle.loads(pickle.dumps(events, protocol))
        assert restored == events
        assert [type(e.event) for e in restored] == [type(e.event) for e in events]
        assert codec.encode_batch(restored) == codec.encode_batch(events)
    assert copy.deepcopy(events) == events


def test_match_statement() -> None:
    def describe(wal: aq.WalEvent) -> str:
        match wal:
            case aq.WalEvent(seq, aq.RunStateChanged(run_id, prev, aq.RunState.READY, ts)):
                return f"{seq}: {run_id} {prev.value}->Ready at {ts}"
            case aq.WalEvent(event=aq.EnginePaused(timestamp=ts)):
                return f"paused at {ts}"
            case aq.WalEvent(event=aq.RoleAssigned(role=aq.Role(index=3, name=name))):
                return f"custom role {name}"
            case aq.WalEvent(event=aq.TaskCreated(task_spec=aq.TaskSpec(run_policy=aq.RepeatPolicy(count=n)))):
                return f"repeat x{n}"
            case aq.WalEvent(event=aq.Event(kind=k)):
                return f"kind {k}"
        return "no match"

    assert describe(aq.WalEvent(3, aq.RunStateChanged(RUN, "Leased", "Ready", 9))) == f"3: {RUN} Leased->Ready at 9"
    assert describe(aq.WalEvent(1, aq.EnginePaused(7))) == "paused at 7"
    assert describe(aq.WalEvent(1, aq.RoleAssigned(ACTOR, aq.Role.custom("x"), TENANT, 0))) == "custom role x"
    spec = aq.TaskSpec(TASK, run_policy=aq.RepeatPolicy(4, 60))
    assert describe(aq.WalEvent(1, aq.TaskCreated(spec, 0))) == "repeat x4"
    assert describe(aq.WalEvent(1, aq.EngineResumed(0))) == "kind 12"


def test_decoded_values_behave_like_constructed_ones(codec, vectors) -> None:
    """The decoders build objects without __init__; they must still hash, compare, repr."""
    for path in sorted((vectors / "events" / "records").glob("*.bin")):
        decoded = codec.decode(path.read_bytes())
        rebuilt = aq.WalEvent.from_builtins(decoded.to_builtins())  # runs every constructor
        assert rebuilt == decoded and hash(rebuilt) == hash(decoded) and repr(rebuilt) == repr(decoded)
        with pytest.raises(AttributeError):
            decoded.sequence = 0


def test_custom_empty_name_refused_by_constructor_but_decoded(codec) -> None:
    """Role/Capability.custom("") raise, as Rust's custom() does, but Rust's decoder accepts
    Custom("") (golden vector decode_edge/ok_role_custom_empty), and so do we."""
    with pytest.raises(aq.ValidationError):
        aq.Role.custom("")
    with pytest.raises(aq.ValidationError):
        aq.Capability.custom("")
    role_payload = bytes([1, 27, 16]) + ACTOR.bytes + b"\x03\x00" + bytes([16]) + TENANT.bytes + b"\x00"
    role = codec.decode_payload(role_payload).event.role
    assert role.is_custom and role.name == "" and role == aq.Role(3, "")
    cap_payload = bytes([1, 28, 16]) + ACTOR.bytes + b"\x05\x00" + bytes([16]) + TENANT.bytes + b"\x00"
    cap = codec.decode_payload(cap_payload).event.capability
    assert cap.is_custom and cap.name == "" and cap == aq.Capability(5, "")
    assert codec.encode_payload(aq.WalEvent(1, aq.RoleAssigned(ACTOR, role, TENANT, 0))) == role_payload
    event = aq.WalEvent(1, aq.RoleAssigned(ACTOR, role, TENANT, 0))
    assert event.to_builtins()["event"]["RoleAssigned"]["role"] == {"Custom": ""}
    assert aq.WalEvent.from_builtins(event.to_builtins()) == event


LEAF_VALUES = [
    (aq.TaskId(TASK.bytes), str(TASK)),
    (aq.RunState.RETRY_WAIT, "RetryWait"),
    (aq.BudgetDimension.COST_CENTS, "CostCents"),
    (aq.Role.GATEKEEPER, "Gatekeeper"),
    (aq.Role.custom("ops"), {"Custom": "ops"}),
    (aq.Capability.CAN_APPROVE, "CanApprove"),
]


@pytest.mark.parametrize(
    ("value", "shape"), LEAF_VALUES, ids=["TaskId", "RunState", "BudgetDimension", "Role", "Role-custom", "Capability"]
)
def test_leaf_values_have_json_methods(value, shape) -> None:
    cls = type(value)
    assert value.to_builtins() == shape
    assert cls.from_builtins(shape) == value
    assert cls.from_json(value.to_json()) == value
