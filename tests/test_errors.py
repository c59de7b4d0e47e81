"""Errors: record framing, hostile lengths, batch offsets, encode errors, the hierarchy."""

from __future__ import annotations

import pickle
import resource
import time
import tracemalloc
import uuid

import pytest

import actionqueue as aq
from aq_testlib import HEADER, error_signature, frame, load_backend, varint

RUN = aq.RunId("11111111-2222-4222-8333-333344444444")
ATTEMPT = aq.AttemptId("a1b2c3d4-e5f6-4708-990a-1b2c3d4e5f60")
TASK = aq.TaskId("d540e4bf-1168-4e83-ad43-ac544466d511")
ACTOR = aq.ActorId("682001e2-dffd-4cc1-af00-9587c6f3e0fa")
TENANT = aq.TenantId("99707d23-f96c-4127-ba5e-1fd6996f9234")

GOOD = aq.WalEvent(5, aq.AttemptStarted(RUN, ATTEMPT, 1_700_000_000))
GOOD_PAYLOAD = bytes.fromhex(
    "0503101111111122224222833333334444444410a1b2c3d4e5f64708990a1b2c3d4e5f6080e2cfaa06"
)
GOOD_RECORD = frame(GOOD_PAYLOAD)


def test_reference_record(codec) -> None:
    assert codec.encode(GOOD) == GOOD_RECORD
    assert codec.decode(GOOD_RECORD) == GOOD


# --------------------------------------------------------------------------------------
# Framing, in Rust's check order: size, version, length, CRC, payload
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", range(13))
def test_buffer_shorter_than_13_bytes(codec, n: int) -> None:
    with pytest.raises(aq.InvalidLength) as info:
        codec.decode(GOOD_RECORD[:n])
    err = info.value
    assert err.kind == "InvalidLength"
    assert err.reason == f"Buffer too short: {n} bytes (minimum 13 required)"
    assert str(err).startswith(f"invalid length: Buffer too short: {n} bytes (minimum 13 required)")
    assert (err.offset, err.record_offset) == (0, 0)


def test_short_buffer_is_checked_before_version(codec) -> None:
    with pytest.raises(aq.InvalidLength):
        codec.decode(HEADER.pack(4, 0, 0))


@pytest.mark.parametrize("version", [0, 4, 6, 0x05000000, 0xFFFFFFFF])
def test_unsupported_version(codec, version: int) -> None:
    record = HEADER.pack(version, len(GOOD_PAYLOAD), 0) + GOOD_PAYLOAD
    with pytest.raises(aq.UnsupportedVersion) as info:
        codec.decode(record)
    err = info.value
    assert err.kind == "UnsupportedVersion" and err.version == version
    assert err.reason == f"Unsupported WAL version: {version}. Current version: 5"
    assert str(err).startswith(f"unsupported version: Unsupported WAL version: {version}. Current version: 5")
    assert (err.offset, err.record_offset) == (0, 0)


@pytest.mark.parametrize("version", [4, 6])
def test_version_is_checked_before_length(codec, version: int) -> None:
    with pytest.raises(aq.UnsupportedVersion):
        codec.decode(HEADER.pack(version, 0xFFFFFFFF, 0) + b"\x00")


@pytest.mark.parametrize("missing", [1, 2, len(GOOD_PAYLOAD) - 1])
def test_length_beyond_buffer(codec, missing: int) -> None:
    with pytest.raises(aq.InvalidLength) as info:
        codec.decode(GOOD_RECORD[:-missing])
    assert (info.value.offset, info.value.record_offset) == (4, 0)
    assert str(len(GOOD_PAYLOAD)) in info.value.reason


def test_bytes_after_the_record_are_ignored(codec) -> None:
    assert codec.decode(GOOD_RECORD + b"\x05\x00garbage") == GOOD
    assert codec.decode(GOOD_RECORD + GOOD_RECORD) == GOOD


@pytest.mark.parametrize("flip", [0x00000001, 0x80000000, 0xFFFFFFFF])
def test_crc_mismatch(codec, flip: int) -> None:
    actual = codec.crc32(GOOD_PAYLOAD)
    expected = actual ^ flip
    with pytest.raises(aq.CrcMismatch) as info:
        codec.decode(frame(GOOD_PAYLOAD, crc=expected))
    err = info.value
    assert err.kind == "CrcMismatch"
    assert (err.expected, err.actual) == (expected, actual)
    assert str(err).startswith(f"CRC-32 mismatch: expected 0x{expected:08x}, actual 0x{actual:08x}")
    assert (err.offset, err.record_offset) == (8, 0)


def test_payload_bit_flip_is_a_crc_mismatch(codec) -> None:
    damaged = bytearray(GOOD_RECORD)
    damaged[20] ^= 0x10
    with pytest.raises(aq.CrcMismatch):
        codec.decode(bytes(damaged))


def test_zero_length_payload(codec) -> None:
    # A bare header (length 0) is 12 bytes: too short, as in Rust.
    with pytest.raises(aq.InvalidLength):
        codec.decode(HEADER.pack(5, 0, 0))
    # With one more byte the frame is complete, the empty payload's CRC (0) matches, and
    # postcard runs out of input at once.
    with pytest.raises(aq.PayloadDecodeError) as info:
        codec.decode(HEADER.pack(5, 0, 0) + b"\x00")
    assert info.value.kind == "Decode"
    assert info.value.reason.startswith("Hit the end of buffer, expected more data")
    assert (info.value.offset, info.value.record_offset) == (12, 0)
    with pytest.raises(aq.PayloadDecodeError):
        codec.decode_payload(b"")


def test_payload_error_offsets(codec) -> None:
    # RunStateChanged with previous_state = 9 (no such RunState) at payload byte 19.
    payload = bytes([5, 2, 16]) + RUN.bytes + bytes([9, 1, 0])
    with pytest.raises(aq.PayloadDecodeError) as info:
        codec.decode(frame(payload))
    assert info.value.reason.startswith("Serde Deserialization Error")
    assert (info.value.offset, info.value.record_offset) == (12 + 19, 0)
    with pytest.raises(aq.PayloadDecodeError) as info:
        codec.decode_payload(payload)
    assert (info.value.offset, info.value.record_offset) == (19, None)


# --------------------------------------------------------------------------------------
# Hostile lengths: fail fast, allocate nothing big
# --------------------------------------------------------------------------------------
HUGE = [2**63, 2**64 - 1, 2**32]

HOSTILE_PAYLOADS = {
    # DependencyDeclared.depends_on: Vec<TaskId> count
    "vec_count": lambda n: bytes([1, 13, 16]) + TASK.bytes + varint(n) + b"\x00" * 8,
    # LeaseAcquired.owner: str length
    "str_len": lambda n: bytes([1, 7, 16]) + RUN.bytes + varint(n) + b"abc",
    # LedgerEntryAppended.payload: Vec<u8> length
    "bytes_len": lambda n: bytes([1, 30, 16]) + TASK.bytes + bytes([16]) + TENANT.bytes
    + b"\x01k\x00" + varint(n) + b"\x01\x02",
    # ActorRegistered.capabilities: Vec<String> count followed by empty strings
    "vec_of_str_count": lambda n: bytes([1, 23, 16]) + ACTOR.bytes + b"\x02id" + varint(n) + b"\x00" * 8,
    # a uuid's byte length
    "uuid_len": lambda n: bytes([1, 15]) + varint(n) + RUN.bytes,
}


class _MemoryGuard:
    """Peak traced allocation and RSS growth of a block of code."""

    def __enter__(self):
        self.rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        tracemalloc.start()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.elapsed = time.perf_counter() - self.t0
        self.peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        self.rss_growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - self.rss_before
        return False


@pytest.mark.parametrize("n", HUGE, ids=["2**63", "2**64-1", "2**32"])
@pytest.mark.parametrize("where", sorted(HOSTILE_PAYLOADS))
def test_huge_length_varint_fails_fast_without_allocating(codec, where: str, n: int) -> None:
    payload = HOSTILE_PAYLOADS[where](n)
    assert len(payload) < 100
    record = frame(payload)  # valid CRC: the payload parser has to deal with it
    with _MemoryGuard() as guard:
        for _ in range(20):
            with pytest.raises(aq.PayloadDecodeError) as info:
                codec.decode(record)
            with pytest.raises(aq.PayloadDecodeError):
                codec.decode_payload(payload)
            with pytest.raises(aq.PayloadDecodeError):
                codec.decode_batch(record)
    assert info.value.kind == "Decode"
    assert guard.elapsed < 1.0
    assert guard.peak < 256 * 1024, f"peak traced allocation {guard.peak} bytes"
    assert guard.rss_growth_kib < 64 * 1024


def test_4gb_length_in_a_20_byte_record(codec) -> None:
    record = HEADER.pack(5, 0xFFFFFFFF, 0) + b"\x01\x0b\x00" + b"\x00" * 5
    assert len(record) == 20
    with _MemoryGuard() as guard:
        for _ in range(100):
            with pytest.raises(aq.InvalidLength) as info:
                codec.decode(record)
            with pytest.raises(aq.InvalidLength) as batch_info:
                codec.decode_batch(record)
    assert (info.value.offset, info.value.record_offset) == (4, 0)
    assert (batch_info.value.offset, batch_info.value.record_offset) == (4, 0)
    assert guard.elapsed < 1.0
    assert guard.peak < 64 * 1024
    assert guard.rss_growth_kib < 64 * 1024


def test_many_empty_strings_stay_bounded_by_the_input(codec) -> None:
    # count 2**63 followed by 50_000 empty strings: decoding stops at the end of the input.
    payload = bytes([1, 23, 16]) + ACTOR.bytes + b"\x02id" + varint(2**63) + b"\x00" * 50_000
    with pytest.raises(aq.PayloadDecodeError) as info:
        codec.decode(frame(payload))
    assert info.value.reason.startswith("Hit the end of buffer")
    assert info.value.offset == 12 + len(payload)


# --------------------------------------------------------------------------------------
# decode_batch: where the bad record is
# --------------------------------------------------------------------------------------
def _batch_with_bad_second(bad: bytes) -> tuple[bytes, int]:
    first = frame(bytes([1, 11, 1]))  # EnginePaused
    third = frame(bytes([3, 12, 3]))  # EngineResumed
    return first + bad + third, len(first)


BAD_RECORDS = {
    "crc": (frame(GOOD_PAYLOAD, crc=0xDEADBEEF), aq.CrcMismatch, 8),
    "version": (HEADER.pack(4, len(GOOD_PAYLOAD), 0) + GOOD_PAYLOAD, aq.UnsupportedVersion, 0),
    "payload": (frame(bytes([5, 2, 16]) + RUN.bytes + bytes([9, 1, 0])), aq.PayloadDecodeError, 12 + 19),
    "zero_length": (HEADER.pack(5, 0, 0), aq.InvalidLength, 0),
    "truncated_payload": (frame(GOOD_PAYLOAD)[:-1] + b"", aq.InvalidLength, None),
}


@pytest.mark.parametrize("what", sorted(BAD_RECORDS))
def test_decode_batch_points_at_the_bad_record(codec, what: str) -> None:
    bad, exc_type, rel_offset = BAD_RECORDS[what]
    if what == "truncated_payload":
        buf = frame(bytes([1, 11, 1])) + bad  # the last record is cut short
        at = len(frame(bytes([1, 11, 1])))
    else:
        buf, at = _batch_with_bad_second(bad)
    with pytest.raises(exc_type) as info:
        codec.decode_batch(buf)
    assert info.value.record_offset == at
    if rel_offset is not None:
        assert info.value.offset == at + rel_offset
    assert f"record at byte {at}" in str(info.value)


@pytest.mark.parametrize("tail", range(1, 12))
def test_decode_batch_partial_trailing_header(codec, tail: int) -> None:
    buf = GOOD_RECORD + GOOD_RECORD[:tail]
    with pytest.raises(aq.InvalidLength) as info:
        codec.decode_batch(buf)
    assert (info.value.offset, info.value.record_offset) == (len(GOOD_RECORD), len(GOOD_RECORD))
    assert f"{tail} bytes" in info.value.reason


def test_decode_batch_does_not_ignore_trailing_bytes(codec) -> None:
    # decode() ignores what follows the record; decode_batch() reads it as the next record.
    assert codec.decode(GOOD_RECORD + b"\x00" * 20) == GOOD
    with pytest.raises(aq.DecodeError) as info:
        codec.decode_batch(GOOD_RECORD + b"\x00" * 20)
    assert info.value.record_offset == len(GOOD_RECORD)


# --------------------------------------------------------------------------------------
# Both backends report the same error, byte for byte
# --------------------------------------------------------------------------------------
PARITY_INPUTS = {
    **{f"short_{n}": GOOD_RECORD[:n] for n in (0, 5, 12)},
    "version_6": HEADER.pack(6, 3, 0) + b"\x01\x0b\x01",
    "length_past_end": GOOD_RECORD[:-1],
    "length_4gb": HEADER.pack(5, 0xFFFFFFFF, 0) + b"\x00" * 8,
    "crc": frame(GOOD_PAYLOAD, crc=1),
    "empty_payload": HEADER.pack(5, 0, 0) + b"\x00",
    "bad_variant": frame(bytes([1, 31])),
    "bad_option_tag": frame(bytes([1, 14, 16]) + RUN.bytes + b"\x02"),
    "bad_utf8": frame(bytes([1, 7, 16]) + RUN.bytes + b"\x02\xc3\x28\x00\x00"),
    "bad_utf8_long": frame(bytes([1, 7, 16]) + RUN.bytes + varint(200) + b"\xff" * 200 + b"\x00\x00"),
    "varint_11_bytes": frame(b"\xff" * 10 + b"\x01\x0b\x00"),
    "uuid_15": frame(bytes([1, 15, 15]) + RUN.bytes[:15] + b"\x00"),
    "nil_task": frame(bytes([1, 0, 16]) + bytes(16) + b"\x00\x00\x00\x01" + b"\x00" * 10),
    "huge_vec": frame(HOSTILE_PAYLOADS["vec_count"](2**63)),
    "huge_str": frame(HOSTILE_PAYLOADS["str_len"](2**64 - 1)),
    **{f"cut_{n}": frame(GOOD_PAYLOAD[:n]) for n in (1, 2, 3, 10, 20, 37)},
}


@pytest.mark.parametrize("name", sorted(PARITY_INPUTS))
def test_backends_report_identical_errors(both_codecs, name: str) -> None:
    cy, py = both_codecs
    data = PARITY_INPUTS[name]
    for fn in ("decode", "decode_batch", "decode_payload"):
        arg = data[12:] if fn == "decode_payload" else data
        outcomes = []
        for backend in (cy, py):
            try:
                getattr(backend, fn)(arg)
            except aq.DecodeError as exc:
                outcomes.append(error_signature(exc))
            else:
                outcomes.append(("ok",))
        assert outcomes[0] == outcomes[1], f"{fn}: cython {outcomes[0]} != python {outcomes[1]}"


def test_backends_report_identical_offsets_for_bad_utf8_in_long_custom_name(both_codecs) -> None:
    """A Role::Custom name of >= 128 bytes has a 2-byte length varint before its UTF-8."""
    cy, py = both_codecs
    event = aq.WalEvent(1, aq.RoleAssigned(ACTOR, aq.Role.custom("x" * 200), TENANT, 5))
    payload = bytearray(py.encode_payload(event))
    payload[payload.index(b"x" * 200)] = 0xFF
    sigs = []
    for backend in (cy, py):
        with pytest.raises(aq.PayloadDecodeError) as info:
            backend.decode_payload(bytes(payload))
        sigs.append((info.value.reason, info.value.offset))
    assert sigs[0] == sigs[1]


# --------------------------------------------------------------------------------------
# Buffer types
# --------------------------------------------------------------------------------------
def test_accepts_any_contiguous_buffer(codec) -> None:
    for buf in (bytearray(GOOD_RECORD), memoryview(GOOD_RECORD), memoryview(b"xx" + GOOD_RECORD)[2:]):
        assert codec.decode(buf) == GOOD
        assert codec.decode_batch(buf) == [GOOD]
    assert codec.decode_payload(memoryview(GOOD_PAYLOAD)) == GOOD


def _non_buffer_params():
    values = {
        "None": None,
        "str": "05000000",
        "int": 20,
        "list": [5, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1, 11, 1],
    }
    for backend in ("cython", "python"):
        for name, value in values.items():
            marks = []
            yield pytest.param(backend, value, id=f"{backend}-{name}", marks=marks)


@pytest.mark.parametrize(("backend", "value"), list(_non_buffer_params()))
def test_non_buffer_input_is_a_type_error(backend: str, value) -> None:
    codec = load_backend(backend)
    for fn in (codec.decode, codec.decode_batch, codec.decode_payload):
        with pytest.raises(TypeError):
            fn(value)


# --------------------------------------------------------------------------------------
# EncodeError: values that bypassed construction-time checks, and non-events
# --------------------------------------------------------------------------------------
def _bypass(event: aq.Event, **fields) -> aq.WalEvent:
    """A WalEvent whose event has fields forced past the constructor (object.__setattr__)."""
    for name, value in fields.items():
        object.__setattr__(event, name, value)
    return aq.WalEvent(7, event)


def _paused() -> aq.Event:
    return aq.EnginePaused(1)


def _lease() -> aq.Event:
    return aq.LeaseAcquired(RUN, "owner", 10, 20)


def _run_created() -> aq.Event:
    return aq.RunCreated(aq.RunInstance(RUN, TASK, aq.RunState.SCHEDULED, None, 0, 1, 1, 0, 1))


def _nested(mutate) -> aq.WalEvent:
    event = _run_created()
    mutate(event.run_instance)
    return aq.WalEvent(1, event)


def _set(obj, **fields):
    for name, value in fields.items():
        object.__setattr__(obj, name, value)


def _unset_slot() -> aq.WalEvent:
    return aq.WalEvent(1, object.__new__(aq.EnginePaused))


BAD_EVENTS = {
    "u64_negative": lambda: _bypass(_paused(), timestamp=-1),
    "u64_too_big": lambda: _bypass(_paused(), timestamp=2**64),
    "u64_float": lambda: _bypass(_paused(), timestamp=1.0),
    "u64_str": lambda: _bypass(_paused(), timestamp="1"),
    "u64_none": lambda: _bypass(_paused(), timestamp=None),
    "u32_too_big": lambda: _nested(lambda ri: _set(ri, attempt_count=2**32)),
    "i32_too_big": lambda: _nested(lambda ri: _set(ri, effective_priority=2**31)),
    "i32_too_small": lambda: _nested(lambda ri: _set(ri, effective_priority=-(2**31) - 1)),
    "i32_huge": lambda: _nested(lambda ri: _set(ri, effective_priority=-(2**70))),
    "u8_too_big": lambda: _bypass(aq.SubscriptionCreated(aq.SubscriptionId(bytes(16)), TASK, _u8_filter(256), 1)),
    "u8_negative": lambda: _bypass(aq.SubscriptionCreated(aq.SubscriptionId(bytes(16)), TASK, _u8_filter(-1), 1)),
    "str_bytes": lambda: _bypass(_lease(), owner=b"owner"),
    "str_none": lambda: _bypass(_lease(), owner=None),
    "str_lone_surrogate": lambda: aq.WalEvent(1, aq.LeaseAcquired(RUN, "a\ud800b", 1, 2)),
    "str_lone_low_surrogate_in_option": lambda: aq.WalEvent(1, aq.RunSuspended(RUN, "\udfff", 2)),
    "str_lone_surrogate_in_vec": lambda: aq.WalEvent(
        1, aq.ActorRegistered(ACTOR, "id", ["ok", "\ud83d"], None, 1, None, 2)
    ),
    "str_lone_surrogate_in_custom_role": lambda: aq.WalEvent(
        1, aq.RoleAssigned(ACTOR, aq.Role.custom("\ud800"), TENANT, 2)
    ),
    "bytes_str": lambda: _bypass(
        aq.LedgerEntryAppended(aq.LedgerEntryId(bytes(16)), TENANT, "k", None, b"", 1), payload="abc"
    ),
    "bytes_list": lambda: _bypass(
        aq.LedgerEntryAppended(aq.LedgerEntryId(bytes(16)), TENANT, "k", None, b"", 1), payload=[1, 2]
    ),
    "id_wrong_class": lambda: _bypass(_lease(), run_id=aq.TaskId(RUN.bytes)),
    "id_uuid": lambda: _bypass(_lease(), run_id=uuid.UUID(str(RUN))),
    "id_str": lambda: _bypass(_lease(), run_id=str(RUN)),
    "opt_id_wrong_class": lambda: _nested(lambda ri: _set(ri, current_attempt_id=RUN)),
    "enum_str": lambda: _bypass(aq.RunStateChanged(RUN, "Ready", "Leased", 1), new_state="Leased"),
    "enum_wrong_enum": lambda: _bypass(
        aq.BudgetExhausted(TASK, "Token", 1), dimension=aq.RunState.READY
    ),
    "named_str": lambda: _bypass(aq.RoleAssigned(ACTOR, aq.Role.OPERATOR, TENANT, 1), role="Operator"),
    "named_wrong_class": lambda: _bypass(
        aq.RoleAssigned(ACTOR, aq.Role.OPERATOR, TENANT, 1), role=aq.Capability.CAN_SUBMIT
    ),
    "vec_set": lambda: _bypass(aq.DependencyDeclared(TASK, [TASK], 1), depends_on={TASK}),
    "vec_str": lambda: _bypass(aq.DependencyDeclared(TASK, [TASK], 1), depends_on="abc"),
    "vec_bad_item": lambda: _bypass(aq.DependencyDeclared(TASK, [TASK], 1), depends_on=(TASK, str(TASK))),
    "struct_wrong_class": lambda: _bypass(_run_created(), run_instance=aq.TaskMetadata()),
    "union_wrong_class": lambda: _bypass(
        aq.SubscriptionCreated(aq.SubscriptionId(bytes(16)), TASK, aq.CustomFilter("k"), 1),
        filter=aq.OncePolicy(),
    ),
    "unset_slot": _unset_slot,
    "event_not_an_event": lambda: _wal(aq.TaskMetadata()),
    "event_none": lambda: _wal(None),
    "sequence_negative": lambda: _wal(_paused(), sequence=-5),
}


def _u8_filter(value: int) -> aq.BudgetThresholdFilter:
    flt = aq.BudgetThresholdFilter(TASK, "Token", 50)
    object.__setattr__(flt, "threshold_pct", value)
    return flt


def _wal(event, sequence: int = 1) -> aq.WalEvent:
    wal = aq.WalEvent(1, _paused())
    object.__setattr__(wal, "event", event)
    object.__setattr__(wal, "sequence", sequence)
    return wal


@pytest.mark.parametrize("what", sorted(BAD_EVENTS))
def test_encode_error(codec, what: str) -> None:
    event = BAD_EVENTS[what]()
    for fn in (codec.encode, codec.encode_payload, lambda e: codec.encode_batch([GOOD, e])):
        with pytest.raises(aq.EncodeError):
            fn(event)
    # the codec is still usable afterwards
    assert codec.encode(GOOD) == GOOD_RECORD


def test_vec_field_set_to_a_list_still_encodes(codec) -> None:
    event = aq.DependencyDeclared(TASK, [TASK], 1)
    listed = _bypass(aq.DependencyDeclared(TASK, [TASK], 1), depends_on=[TASK])
    assert codec.encode(listed) == codec.encode(aq.WalEvent(7, event))


@pytest.mark.parametrize(
    "value",
    [None, 1, "event", b"\x05\x00\x00\x00", GOOD.event, aq.TaskMetadata(), [GOOD], (GOOD,)],
    ids=["None", "int", "str", "bytes", "bare_event", "other_value", "list", "tuple"],
)
def test_encode_non_wal_event(codec, value) -> None:
    with pytest.raises(aq.EncodeError):
        codec.encode(value)
    with pytest.raises(aq.EncodeError):
        codec.encode_payload(value)
    with pytest.raises(aq.EncodeError):
        codec.encode_batch([GOOD, value])


def _role_with_index(index) -> aq.WalEvent:
    role = aq.Role.custom("q")
    object.__setattr__(role, "index", index)
    return aq.WalEvent(1, aq.RoleAssigned(ACTOR, role, TENANT, 1))


def _id_with_bytes(raw) -> aq.WalEvent:
    run = aq.RunId(RUN.bytes)
    if not hasattr(type(run), "_raw"):
        pytest.skip("native identifiers hold exactly 16 bytes inline: nothing to corrupt")
    object.__setattr__(run, "_raw", raw)
    return _bypass(_lease(), run_id=run)


BYPASSED_INTERNALS = {
    "role_index_past_custom": lambda: _role_with_index(7),
    "role_index_negative": lambda: _role_with_index(-1),
    "role_index_str": lambda: _role_with_index("x"),
    "id_15_bytes": lambda: _id_with_bytes(b"x" * 15),
    "id_str_bytes": lambda: _id_with_bytes("0123456789abcdef"),
}

@pytest.mark.parametrize("what", sorted(BYPASSED_INTERNALS))
@pytest.mark.parametrize("backend", ["cython", "python"])
def test_encode_error_for_corrupted_ids_and_roles(backend: str, what: str) -> None:
    codec = load_backend(backend)
    with pytest.raises(aq.EncodeError):
        codec.encode(BYPASSED_INTERNALS[what]())


# --------------------------------------------------------------------------------------
# Exception hierarchy and pickling
# --------------------------------------------------------------------------------------
def test_hierarchy() -> None:
    decode_errors = [aq.UnsupportedVersion, aq.InvalidLength, aq.CrcMismatch, aq.PayloadDecodeError]
    for cls in [aq.DecodeError, aq.EncodeError, aq.ValidationError, *decode_errors]:
        assert issubclass(cls, aq.ActionQueueError)
        assert issubclass(cls, ValueError)
    for cls in decode_errors:
        assert issubclass(cls, aq.DecodeError)
    assert not issubclass(aq.EncodeError, aq.DecodeError)
    assert not issubclass(aq.ValidationError, aq.DecodeError)
    assert {cls.kind for cls in decode_errors} == {"UnsupportedVersion", "InvalidLength", "CrcMismatch", "Decode"}
    assert aq.DecodeError.kind == "Decode"
    assert issubclass(aq.ActionQueueError, Exception)


def _raised(codec) -> list[aq.DecodeError]:
    out = []
    for data in (b"", HEADER.pack(6, 1, 0) + b"\x00", GOOD_RECORD[:-1], frame(GOOD_PAYLOAD, crc=7),
                 frame(bytes([1, 31]))):  # fmt: skip
        with pytest.raises(aq.DecodeError) as info:
            codec.decode(data)
        out.append(info.value)
    with pytest.raises(aq.DecodeError) as info:
        codec.decode_payload(b"\x01")
    out.append(info.value)
    return out


def test_decode_errors_pickle(codec) -> None:
    errors = _raised(codec)
    assert {type(e) for e in errors} == {
        aq.InvalidLength, aq.UnsupportedVersion, aq.CrcMismatch, aq.PayloadDecodeError,
    }  # fmt: skip
    for err in errors:
        for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
            copy = pickle.loads(pickle.dumps(err, protocol))
            assert type(copy) is type(err)
            assert error_signature(copy) == error_signature(err)
            assert copy.args == err.args
            assert repr(copy) == repr(err)


def test_other_errors_pickle() -> None:
    for err in (aq.EncodeError("cannot encode"), aq.ValidationError("bad"), aq.DecodeError("x", 3, 1)):
        copy = pickle.loads(pickle.dumps(err))
        assert type(copy) is type(err) and str(copy) == str(err) and copy.args == err.args
    with pytest.raises(aq.ValidationError) as info:
        aq.TaskConstraints(max_attempts=0)
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is aq.ValidationError and str(copy) == str(info.value)


def test_errors_are_catchable_as_value_error(codec) -> None:
    with pytest.raises(ValueError):
        codec.decode(b"")
    with pytest.raises(ValueError):
        codec.encode(None)


# --------------------------------------------------------------------------------------
# Decoding enforces every constructor rule (wire-format.md §4), not only those the
# decode_edge vectors probe. The invalid values are forced past the constructors; the
# encoders do not validate, so they write them, and the decoders must refuse them.
# --------------------------------------------------------------------------------------
def _forced(value, **fields):
    for name, v in fields.items():
        object.__setattr__(value, name, v)
    return value


def _task_created(**spec_fields) -> aq.WalEvent:
    return aq.WalEvent(9, aq.TaskCreated(aq.TaskSpec(TASK, **spec_fields), 1))


def _ri(**fields) -> aq.WalEvent:
    base = aq.RunInstance(RUN, TASK, aq.RunState.SCHEDULED, None, 0, 100, 100, 0, 100)
    return aq.WalEvent(9, aq.RunCreated(_forced(base, **fields)))


INVALID_ON_THE_WIRE = {
    "max_attempts_0": lambda: _task_created(constraints=_forced(aq.TaskConstraints(), max_attempts=0)),
    "timeout_secs_0": lambda: _task_created(constraints=_forced(aq.TaskConstraints(), timeout_secs=0)),
    "concurrency_key_empty": lambda: _task_created(constraints=_forced(aq.TaskConstraints(), concurrency_key="")),
    "required_capabilities_empty": lambda: _task_created(
        constraints=_forced(aq.TaskConstraints(), required_capabilities=())
    ),
    "required_capabilities_empty_entry": lambda: _task_created(
        constraints=_forced(aq.TaskConstraints(), required_capabilities=("a", ""))
    ),
    "repeat_count_0": lambda: _task_created(run_policy=_forced(aq.RepeatPolicy(1, 1), count=0)),
    "repeat_interval_0": lambda: _task_created(run_policy=_forced(aq.RepeatPolicy(1, 1), interval_secs=0)),
    "cron_bad_expression": lambda: _task_created(run_policy=_forced(aq.CronPolicy("@daily"), expression="* * *")),
    "cron_empty_expression": lambda: _task_created(run_policy=_forced(aq.CronPolicy("@daily"), expression="")),
    "cron_max_0": lambda: _task_created(run_policy=_forced(aq.CronPolicy("@daily"), max_occurrences=0)),
    "task_spec_nil_id": lambda: aq.WalEvent(9, aq.TaskCreated(_forced(aq.TaskSpec(TASK), id=aq.TaskId.nil()), 1)),
    "run_nil_id": lambda: _ri(id=aq.RunId.nil()),
    "run_nil_task_id": lambda: _ri(task_id=aq.TaskId.nil()),
    **{
        f"run_attempt_in_{state.name.lower()}": (lambda state=state: _ri(state=state, current_attempt_id=ATTEMPT))
        for state in aq.RunState
        if state is not aq.RunState.RUNNING
    },
    "run_ready_scheduled_after_created": lambda: _ri(state=aq.RunState.READY, created_at=100, scheduled_at=101),
}


@pytest.mark.parametrize("rule", sorted(INVALID_ON_THE_WIRE))
def test_decode_enforces_validation_rule(codec, rule: str) -> None:
    record = codec.encode(INVALID_ON_THE_WIRE[rule]())
    with pytest.raises(aq.PayloadDecodeError) as info:
        codec.decode(record)
    assert info.value.kind == "Decode"
    assert info.value.reason.startswith("Serde Deserialization Error")
    with pytest.raises(aq.PayloadDecodeError):
        codec.decode_batch(record + record)
    with pytest.raises(aq.PayloadDecodeError):
        codec.decode_payload(record[12:])


@pytest.mark.parametrize("rule", sorted(INVALID_ON_THE_WIRE))
def test_decode_validation_errors_identical_between_backends(both_codecs, rule: str) -> None:
    cy, py = both_codecs
    record = py.encode(INVALID_ON_THE_WIRE[rule]())
    assert cy.encode(INVALID_ON_THE_WIRE[rule]()) == record
    sigs = []
    for backend in (cy, py):
        with pytest.raises(aq.PayloadDecodeError) as info:
            backend.decode(record)
        sigs.append(error_signature(info.value))
    assert sigs[0] == sigs[1]
