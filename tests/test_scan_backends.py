"""The four record judges agree: native and pure-Python ``scan_columns`` and ``walk``.

``scan_columns`` (what ``actionqueue.scan()`` and the ``stats`` CLI read through) must
accept and reject exactly the records that a full decode accepts and rejects, with the
same reason code, on both backends. The native scan judges a record from its bytes (a
skim that also checks the rules the decoder enforces: UTF-8 text, nil identifiers where
the model forbids them, the model's value rules); the pure-Python one decodes it.

Records here are built from the schema with every string and identifier recognisable in
their bytes, then damaged in place: invalid (and valid non-ASCII) UTF-8 in each string
of each event kind, a nil id in each id field, values that break a model rule, and
random byte mutations of valid payloads (CRC recomputed so that the payload is judged).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import actionqueue as aq
from actionqueue.codec import _codec_py
from actionqueue.log import _walk_common as _wal_common
from actionqueue.log import _walk_py as _wal_py
from aq_testlib import VECTORS_DIR, budget, frame, wal_events

WALKERS = [("python", _wal_py)]
try:
    from actionqueue.log import _walk as _wal
except ImportError:  # pure-Python run (ACTIONQUEUE_PUREPYTHON=1): the twin is judged alone
    _wal = None
else:
    WALKERS.insert(0, ("cython", _wal))

R_OK = _wal_common.R_OK
R_DECODE = _wal_common.R_DECODE_FAILURE

#: (class, field) of the identifiers the model forbids to be nil
FORBIDDEN_NIL = {("TaskSpec", "id"), ("RunInstance", "id"), ("RunInstance", "task_id")}

#: 4-byte replacements for the first 4 bytes of a string: CPython's strict decoder
#: (and Rust's from_utf8) rejects these ...
INVALID_UTF8 = [
    b"\xffaaa",  # never in UTF-8
    b"\xfeaaa",
    b"\x80aaa",  # a lone continuation byte
    b"a\xbfaa",
    b"\xc0\x80aa",  # overlong NUL
    b"\xc1\xbfaa",  # overlong 2-byte
    b"\xe0\x80\x80a",  # overlong 3-byte
    b"\xe0\x9f\xbfa",
    b"\xf0\x80\x80\x80",  # overlong 4-byte
    b"\xf0\x8f\xbf\xbf",
    b"\xed\xa0\x80a",  # UTF-16 surrogates
    b"\xed\xbf\xbfa",
    b"\xf4\x90\x80\x80",  # above U+10FFFF
    b"\xf5\x80\x80\x80",
    b"\xf8\x88\x80\x80",  # 5-byte form
    b"aa\xc3a",  # truncated 2-byte, then ASCII
    b"a\xe2\x82a",  # truncated 3-byte
    b"a\xf0\x9f\x98",  # truncated 4-byte at the end of the string
    b"aaa\xc3",  # lead byte as the string's last byte
    b"\xc3\xc3aa",  # lead byte followed by a lead byte
    b"\xe2\x28\xa1a",
]
#: ... and accepts these.
VALID_NON_ASCII = [
    b"\xc3\xa9aa",  # U+00E9
    b"\xc2\x80aa",  # U+0080, the first 2-byte
    b"\xdf\xbfaa",  # U+07FF
    b"\xe0\xa0\x80a",  # U+0800, the first 3-byte
    b"\xe2\x82\xaca",  # U+20AC
    b"\xed\x9f\xbfa",  # U+D7FF, just below the surrogates
    b"\xee\x80\x80a",  # U+E000, just above
    b"\xef\xbf\xbfa",  # U+FFFF
    b"\xf0\x90\x80\x80",  # U+10000, the first 4-byte
    b"\xf0\x9f\x98\x80",  # U+1F600
    b"\xf4\x8f\xbf\xbf",  # U+10FFFF, the last
    b"\x00\x7f\x01a",  # ASCII controls
]


# --------------------------------------------------------------------------------------
# Records with recognisable strings and identifiers
# --------------------------------------------------------------------------------------
class _Builder:
    """Builds valid values from the schema. Every string is ``Q<nnn>`` (or a valid cron
    expression) and every identifier is ``a5 * 8 + <n>``, so their bytes can be found
    in the payload; ``marks`` lists ``(kind, bytes, (class, field))`` for each."""

    def __init__(self, variant: int):
        self.variant = variant
        self.n = 0
        self.marks: list[tuple[str, bytes, tuple[str, str]]] = []

    def text(self, where) -> str:
        self.n += 1
        s = f"Q{self.n:03d}"
        self.marks.append(("str", s.encode(), where))
        return s

    def value(self, spec: tuple, where: tuple[str, str]):
        kind = spec[0]
        if kind in ("u8", "u32", "u64", "i32"):
            return 1
        if kind == "str":
            return self.text(where)
        if kind == "bytes":
            return b"\x01\x02"
        if kind == "id":
            self.n += 1
            raw = b"\xa5" * 8 + self.n.to_bytes(8, "big")
            self.marks.append(("id", raw, where))
            return spec[1](raw)
        if kind == "enum":
            if spec[1] is aq.RunState:
                return aq.RunState.RUNNING  # the state that allows an attempt id
            members = list(spec[1])
            return members[self.variant % len(members)]
        if kind == "named":
            return spec[1](len(spec[1]._UNIT_NAMES), self.text(where))
        if kind == "opt":
            return self.value(spec[1], where)
        if kind == "vec":
            return (self.value(spec[1], where),)
        if kind == "struct":
            return self.struct(spec[1])
        if kind == "union":
            variants = spec[1]._variants
            return self.struct(variants[self.variant % len(variants)])
        raise AssertionError(spec)

    def struct(self, cls: type):
        if cls is aq.CronPolicy:
            self.marks.append(("str", b"@daily", ("CronPolicy", "expression")))
            return aq.CronPolicy("@daily", 1)
        return cls(**{name: self.value(spec, (cls.__name__, name)) for name, spec in cls.__aq_fields__})


def _samples() -> list[tuple[str, bytes, list]]:
    """``(name, payload, marks)``: every event kind, once per union variant it can hold."""
    out, seen = [], set()
    for cls in aq.EVENT_TYPES:
        for variant in range(4):
            b = _Builder(variant)
            payload = _codec_py.encode_payload(aq.WalEvent(2, b.struct(cls)))
            if payload not in seen:
                seen.add(payload)
                for _, raw, _ in b.marks:
                    assert payload.count(raw) == 1, (cls, raw)
                out.append((f"{cls.__name__}#{variant}", payload, b.marks))
    return out


SAMPLES = _samples()
SAMPLE_KINDS = sorted({name.split("#")[0] for name, _, _ in SAMPLES})
FIRST = _codec_py.encode(aq.WalEvent(1, aq.EnginePaused(10)))
LAST = _codec_py.encode(aq.WalEvent(3, aq.EngineResumed(30)))


def _between(payload: bytes) -> bytes:
    """The record of ``payload`` (sequence 2) between two good records (1 and 3)."""
    return FIRST + frame(payload) + LAST


# --------------------------------------------------------------------------------------
# The four judges
# --------------------------------------------------------------------------------------
def verdicts(buf: bytes) -> dict[str, tuple]:
    """What each judge says about ``buf``: ``(end, reason, last_sequence)`` plus the
    rows (scans) or the count and failure detail (walks)."""
    out = {}
    for name, walker in WALKERS:
        cols, end, reason, last = walker.scan_columns(buf)
        out[f"{name}.scan_columns"] = (end, reason, last, tuple(tuple(c.tolist()) for c in cols))
        for collect in (False, True):
            end, count, last, reason, detail, _ = walker.walk(buf, collect=collect)
            out[f"{name}.walk(collect={collect})"] = (end, reason, last, count, detail)
    return out


def agreed(buf: bytes) -> tuple[int, int, int | None]:
    """The common ``(end, reason, last_sequence)`` of the four judges (fails if they differ)."""
    v = verdicts(buf)
    heads = {k: r[:3] for k, r in v.items()}
    if len(set(heads.values())) != 1:
        raise AssertionError(f"(end, reason, last) differ: {heads}")
    scans = {k: r[3] for k, r in v.items() if k.endswith("scan_columns")}
    if len(set(scans.values())) != 1:
        raise AssertionError(f"rows differ: {scans}")
    counts = {k: r[3] for k, r in v.items() if ".walk" in k}
    if set(counts.values()) != {len(next(iter(scans.values()))[0])}:
        raise AssertionError(f"counts differ from the rows: {counts}, {scans}")
    details = {k: r[4] for k, r in v.items() if ".walk" in k}
    if len(set(details.values())) != 1:
        raise AssertionError(f"details differ: {details}")
    return next(iter(heads.values()))


def _expect(buf: bytes, ok: bool, what: str) -> str | None:
    """None when the judges agree and accept (``ok``) or reject as a decode failure."""
    try:
        got = agreed(buf)
    except AssertionError as exc:
        return f"{what}: judges disagree: {exc}"
    want = (len(buf), R_OK, 3) if ok else (len(FIRST), R_DECODE, 1)
    if got != want:
        return f"{what}: expected {want}, got {got}"
    return None


def _check_all(problems: list) -> None:
    problems = [p for p in problems if p is not None]
    assert not problems, f"{len(problems)} disagreements, e.g.:\n" + "\n".join(problems[:10])


def _set(obj, **fields):
    for name, value in fields.items():
        object.__setattr__(obj, name, value)
    return obj


# --------------------------------------------------------------------------------------
# Deterministic cases
# --------------------------------------------------------------------------------------
def test_samples_cover_every_event_kind_and_are_accepted() -> None:
    assert len(SAMPLE_KINDS) == len(aq.EVENT_TYPES)
    assert sum(kind == "str" for _, _, marks in SAMPLES for kind, _, _ in marks) >= 35
    _check_all([_expect(_between(p), True, name) for name, p, _ in SAMPLES])


@pytest.mark.parametrize("kind", SAMPLE_KINDS)
def test_utf8_in_every_string_is_judged_alike(kind: str) -> None:
    problems = []
    for name, payload, marks in SAMPLES:
        if name.split("#")[0] != kind:
            continue
        for mark_kind, raw, where in marks:
            if mark_kind != "str":
                continue
            for bad in INVALID_UTF8:
                damaged = payload.replace(raw, bad + raw[len(bad) :])
                problems.append(_expect(_between(damaged), False, f"{name} {where} {bad!r}"))
            for good in VALID_NON_ASCII:
                damaged = payload.replace(raw, good + raw[len(good) :])
                if where == ("CronPolicy", "expression"):  # no longer a cron expression
                    problems.append(_expect(_between(damaged), False, f"{name} {where} {good!r}"))
                else:
                    problems.append(_expect(_between(damaged), True, f"{name} {where} {good!r}"))
    _check_all(problems)


@pytest.mark.parametrize("kind", SAMPLE_KINDS)
def test_nil_ids_are_judged_alike(kind: str) -> None:
    problems = []
    for name, payload, marks in SAMPLES:
        if name.split("#")[0] != kind:
            continue
        for mark_kind, raw, where in marks:
            if mark_kind == "id":
                damaged = payload.replace(raw, bytes(16))
                problems.append(_expect(_between(damaged), where not in FORBIDDEN_NIL, f"{name} nil {where}"))
    _check_all(problems)


def test_nil_ids_the_model_forbids_are_rejected_in_every_position() -> None:
    seen = {where for _, _, marks in SAMPLES for kind, _, where in marks if kind == "id"}
    assert FORBIDDEN_NIL <= seen


TASK = aq.TaskId(b"\xa5" * 16)
RUN = aq.RunId(b"\xa6" * 16)
ATTEMPT = aq.AttemptId(b"\xa7" * 16)


def _task_created(**spec_fields) -> aq.WalEvent:
    spec = aq.TaskSpec(TASK)
    for name, value in spec_fields.items():
        object.__setattr__(spec, name, value)
    return aq.WalEvent(2, aq.TaskCreated(spec, 5))


def _constraints(**fields) -> aq.WalEvent:
    return _task_created(constraints=_set(aq.TaskConstraints(), **fields))


def _run(state=aq.RunState.SCHEDULED, attempt=None, created=5, scheduled=5) -> aq.WalEvent:
    run = aq.RunInstance(RUN, TASK, aq.RunState.RUNNING, ATTEMPT, 1, 5, 5, 0, 5)
    _set(run, state=state, current_attempt_id=attempt, created_at=created, scheduled_at=scheduled)
    return aq.WalEvent(2, aq.RunCreated(run))


#: events that break a rule of the model (built past the constructors' checks)
RULE_BREAKERS = {
    "repeat_count_0": lambda: _task_created(run_policy=_set(aq.RepeatPolicy(1, 1), count=0)),
    "repeat_interval_0": lambda: _task_created(run_policy=_set(aq.RepeatPolicy(1, 1), interval_secs=0)),
    "cron_not_an_expression": lambda: _task_created(run_policy=_set(aq.CronPolicy("@daily"), expression="Q001")),
    "cron_empty": lambda: _task_created(run_policy=_set(aq.CronPolicy("@daily"), expression="")),
    "cron_max_occurrences_0": lambda: _task_created(run_policy=_set(aq.CronPolicy("@daily"), max_occurrences=0)),
    "max_attempts_0": lambda: _constraints(max_attempts=0),
    "timeout_0": lambda: _constraints(timeout_secs=0),
    "concurrency_key_empty": lambda: _constraints(concurrency_key=""),
    "capabilities_empty": lambda: _constraints(required_capabilities=()),
    "capability_empty": lambda: _constraints(required_capabilities=("",)),
    "capability_empty_second": lambda: _constraints(required_capabilities=("gpu", "")),
    "capability_empty_of_many": lambda: _constraints(required_capabilities=("a", "b", "c", "", "d")),
    "task_id_nil": lambda: _task_created(id=aq.TaskId(bytes(16))),
    "run_id_nil": lambda: _set(_run(), event=aq.RunCreated(_set(_run().event.run_instance, id=aq.RunId(bytes(16))))),
    "run_task_id_nil": lambda: _set(_run(), event=aq.RunCreated(_set(_run().event.run_instance, task_id=aq.TaskId(bytes(16))))),
    **{
        f"attempt_while_{state.name.lower()}": (lambda state=state: _run(state, ATTEMPT))
        for state in aq.RunState
        if state is not aq.RunState.RUNNING
    },
    "ready_scheduled_after_created": lambda: _run(aq.RunState.READY, None, 5, 6),
    "ready_scheduled_far_after_created": lambda: _run(aq.RunState.READY, None, 1, 2**64 - 1),
    "ready_scheduled_after_created_long_varints": lambda: _run(aq.RunState.READY, None, 2**40, 2**40 + 1),
}

#: edge values on the right side of the same rules
RULE_KEEPERS = {
    "repeat_1_1": lambda: _task_created(run_policy=aq.RepeatPolicy(1, 1)),
    "repeat_max": lambda: _task_created(run_policy=aq.RepeatPolicy(2**32 - 1, 2**64 - 1)),
    "cron": lambda: _task_created(run_policy=aq.CronPolicy("0 0 9 * * MON *", 3)),
    "cron_no_max": lambda: _task_created(run_policy=aq.CronPolicy("@hourly")),
    "constraints_all_set": lambda: _constraints(
        max_attempts=2**32 - 1, timeout_secs=1, concurrency_key="k", required_capabilities=("a", "\u00e9", "c")
    ),
    "capability_one": lambda: _constraints(required_capabilities=("x",)),
    "custom_role_empty": lambda: aq.WalEvent(2, aq.RoleAssigned(aq.ActorId(b"\xa8" * 16), aq.Role(len(aq.Role._UNIT_NAMES), ""), aq.TenantId(b"\xa9" * 16), 5)),
    "nil_ids_elsewhere": lambda: aq.WalEvent(2, aq.AttemptStarted(aq.RunId(bytes(16)), aq.AttemptId(bytes(16)), 5)),
    "nil_parent_task": lambda: _task_created(parent_task_id=aq.TaskId(bytes(16)), tenant_id=aq.TenantId(bytes(16))),
    "nil_attempt_while_running": lambda: _run(aq.RunState.RUNNING, aq.AttemptId(bytes(16))),
    "running_without_attempt": lambda: _run(aq.RunState.RUNNING, None),
    "ready_scheduled_equal": lambda: _run(aq.RunState.READY, None, 5, 5),
    "ready_scheduled_before": lambda: _run(aq.RunState.READY, None, 2**64 - 1, 0),
    "ready_long_varints": lambda: _run(aq.RunState.READY, None, 2**40 + 1, 2**40),
    **{
        f"scheduled_after_created_while_{state.name.lower()}": (lambda state=state: _run(state, None, 5, 6))
        for state in aq.RunState
        if state is not aq.RunState.READY
    },
}


@pytest.mark.parametrize("what", sorted(RULE_BREAKERS))
def test_model_rules_are_judged_alike(what: str) -> None:
    payload = _codec_py.encode_payload(RULE_BREAKERS[what]())
    with pytest.raises(aq.DecodeError):
        _codec_py.decode_payload(payload)
    _check_all([_expect(_between(payload), False, what)])


@pytest.mark.parametrize("what", sorted(RULE_KEEPERS))
def test_values_that_keep_the_rules_are_accepted_alike(what: str) -> None:
    payload = _codec_py.encode_payload(RULE_KEEPERS[what]())
    _check_all([_expect(_between(payload), True, what)])


def test_a_rejected_record_at_the_start_and_alone() -> None:
    payload = SAMPLES[0][1]
    for raw_kind, raw, where in SAMPLES[0][2]:
        if raw_kind == "str":
            bad = frame(payload.replace(raw, b"\xff" + raw[1:]))
            assert agreed(bad) == (0, R_DECODE, None)
            assert agreed(bad + LAST) == (0, R_DECODE, None)
            break
    else:
        pytest.fail("no string in the first sample")


# --------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------
SEEDS = [payload for _, payload, _ in SAMPLES] + [
    _codec_py.encode_payload(make()) for make in (*RULE_KEEPERS.values(), *RULE_BREAKERS.values())
]
_ALL_VARIANTS = VECTORS_DIR / "events" / "all_variants.wal"
if _ALL_VARIANTS.is_file():  # the golden vectors, when they are checked out
    _data = _ALL_VARIANTS.read_bytes()
    _pos = 0
    while _pos < len(_data):
        _n = int.from_bytes(_data[_pos + 4 : _pos + 8], "little")
        SEEDS.append(_data[_pos + 12 : _pos + 12 + _n])
        _pos += 12 + _n

MARKED = [(payload, raw) for _, payload, marks in SAMPLES for kind, raw, _ in marks if kind == "str"]


@st.composite
def damaged_payloads(draw) -> bytes:
    """A valid payload with a few bytes rewritten, a string's bytes replaced by random
    ones, or cut short."""
    how = draw(st.sampled_from(["bytes", "string", "string", "truncate"]))
    if how == "string":
        payload, raw = draw(st.sampled_from(MARKED))
        utf8_ish = st.sampled_from([0x00, 0x41, 0x7F, 0x80, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF])
        new = bytes(draw(st.lists(st.one_of(st.integers(0, 255), utf8_ish), min_size=len(raw), max_size=len(raw))))
        return payload.replace(raw, new)
    payload = bytearray(draw(st.sampled_from(SEEDS)))
    if how == "truncate":
        return bytes(payload[: draw(st.integers(1, len(payload)))])
    for _ in range(draw(st.integers(1, 4))):
        payload[draw(st.integers(0, len(payload) - 1))] = draw(st.integers(0, 255))
    return bytes(payload)


@settings(max_examples=budget(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=damaged_payloads())
def test_damaged_payloads_are_judged_alike(payload: bytes) -> None:
    """Whatever the bytes, the four judges agree (accept or reject with the same code),
    and their verdict is the decoder's."""
    end, reason, last = agreed(_between(payload))
    try:
        event = _codec_py.decode_payload(payload)
    except aq.DecodeError:
        assert (end, reason, last) == (len(FIRST), R_DECODE, 1)
    else:
        if event.sequence == 2:
            assert (reason, last) == (R_OK, 3)
        else:  # the mutation hit the sequence: the order decides
            assert reason in (R_OK, _wal_common.R_SEQUENCE_NOT_INCREASING)
    assert agreed(frame(payload))[1] in (R_OK, R_DECODE)


@settings(max_examples=budget(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=wal_events())
def test_valid_events_are_accepted_alike(event: aq.WalEvent) -> None:
    """Random valid events (any text, any ids the model allows) pass all four judges with
    the same rows."""
    record = _codec_py.encode(event)
    assert agreed(record) == (len(record), R_OK, event.sequence)


_OWNER_TEMPLATES: dict[int, tuple[bytes, bytes]] = {}


def _owner_record(text: bytes) -> bytes:
    """A LeaseAcquired record whose owner string is the raw bytes ``text``."""
    parts = _OWNER_TEMPLATES.get(len(text))
    if parts is None:
        placeholder = "\x01" * len(text)
        event = aq.WalEvent(2, aq.LeaseAcquired(aq.RunId(b"\xa5" * 16), placeholder, 9, 8))
        payload = _codec_py.encode_payload(event)
        assert payload.count(placeholder.encode()) == 1
        parts = _OWNER_TEMPLATES[len(text)] = tuple(payload.split(placeholder.encode()))
    return frame(parts[0] + text + parts[1])


def _utf8_cases():
    """Short byte sequences around every boundary of UTF-8's well-formedness table."""
    for a in range(256):
        yield bytes([a])
        for b in range(256):
            yield bytes([a, b])
    for a in range(0xE0, 0x100):
        for b in range(256):
            for c in (0x7F, 0x80, 0xBF, 0xC0):
                yield bytes([a, b, c])
    for a in range(0xF0, 0x100):
        for b in range(256):
            for c, d in ((0x80, 0x80), (0xBF, 0xBF), (0x80, 0x7F), (0xC0, 0x80), (0x80, 0xC0)):
                yield bytes([a, b, c, d])


@pytest.mark.skipif(_wal is None, reason="the native walker is not built")
@pytest.mark.parametrize("prefix", [0, 7, 13], ids=lambda n: f"after{n}")
def test_native_utf8_check_is_the_decoder_s(prefix: int) -> None:
    """The native skim's UTF-8 check accepts exactly what Python's strict decoder accepts
    (every 1- and 2-byte sequence, the 3- and 4-byte ones around each boundary), at
    several positions relative to the 8-byte steps of its ASCII fast path."""
    wrong = []
    for seq in _utf8_cases():
        if prefix == 13 and len(seq) > 2:
            continue  # the longer forms at two alignments are enough
        text = b"a" * prefix + seq + b"b" * 3
        try:
            text.decode("utf-8")
            want = R_OK
        except UnicodeDecodeError:
            want = R_DECODE
        if _wal.scan_columns(_owner_record(text))[2] != want:
            wrong.append(seq)
    assert not wrong, [w.hex() for w in wrong[:20]]
