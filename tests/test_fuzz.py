"""Bounded-time differential fuzzing of the two codec backends.

Mutations of real records (golden vectors plus a few of our own) are decoded by the
native and the pure-Python codec. For every input both must either return equal events
or raise the same DecodeError subclass with the same ``reason``, ``offset`` and
``record_offset``; any other exception fails the test. Most mutations rewrite the header
(length and CRC recomputed) so that the payload parser, not the CRC check, sees them.

The long-running libFuzzer target is fuzz/differential_fuzzer.py (atheris); the last test
here runs it for a few seconds when atheris is installed.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import actionqueue as aq
from aq_testlib import (
    PROJECT_ROOT,
    budget,
    VECTORS_DIR,
    error_signature,
    frame,
    load_backend,
    varint,
)



FUZZ_SETTINGS = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


# --------------------------------------------------------------------------------------
# Seeds
# --------------------------------------------------------------------------------------
def _own_seeds() -> list[bytes]:
    py = load_backend("python")
    task = aq.TaskId("d540e4bf-1168-4e83-ad43-ac544466d511")
    run = aq.RunId("11111111-2222-4222-8333-333344444444")
    actor = aq.ActorId("682001e2-dffd-4cc1-af00-9587c6f3e0fa")
    tenant = aq.TenantId("99707d23-f96c-4127-ba5e-1fd6996f9234")
    spec = aq.TaskSpec(
        task,
        payload=aq.TaskPayload(b"\x00\x01\xff", "application/json"),
        run_policy=aq.CronPolicy("0 0 9 * * MON *", None),
        constraints=aq.TaskConstraints(3, 30, "key", "ReleaseOnRetry", "Transactional", ["gpu", "x"]),
        metadata=aq.TaskMetadata(["a", "\u2028"], -(2**31), "d"),
        parent_task_id=task,
        tenant_id=tenant,
    )
    events = [
        aq.TaskCreated(spec, 2**64 - 1),
        aq.TaskCreated(aq.TaskSpec(task, run_policy=aq.RepeatPolicy(2**32 - 1, 2**63)), 0),
        aq.RunCreated(aq.RunInstance(run, task, "Running", aq.AttemptId(bytes(range(16))), 7, 5, 6, 2**31 - 1, 9)),
        aq.AttemptFinished(run, aq.AttemptId(bytes(16)), "Failure", "boom", b"out", 1),
        aq.SubscriptionCreated(aq.SubscriptionId(bytes(16)), task, aq.BudgetThresholdFilter(task, "TimeSecs", 90), 1),
        aq.ActorRegistered(actor, "id\U0001f600", ["a", "b"], "dept", 30, tenant, 2),
        aq.CapabilityGranted(actor, aq.Capability.custom("cap"), tenant, 3),
        aq.LedgerEntryAppended(aq.LedgerEntryId(bytes(16)), tenant, "key", actor, bytes(range(40)), 4),
        aq.DependencyDeclared(task, [task, aq.TaskId(bytes(16))], 5),
    ]
    return [py.encode(aq.WalEvent(i * 300, e)) for i, e in enumerate(events)]


def _golden_seeds() -> list[bytes]:
    records = VECTORS_DIR / "events" / "records"
    edge = VECTORS_DIR / "events" / "decode_edge"
    files = sorted(records.glob("*.bin")) + sorted(edge.glob("*.bin")) if VECTORS_DIR.is_dir() else []
    return [f.read_bytes() for f in files]


SEEDS = _golden_seeds() + _own_seeds()
INTERESTING = [0x00, 0x01, 0x02, 0x0F, 0x10, 0x11, 0x1E, 0x1F, 0x7F, 0x80, 0x81, 0xC3, 0xFE, 0xFF]


# --------------------------------------------------------------------------------------
# The differential check
# --------------------------------------------------------------------------------------
def _run(backend, fn_name: str, data: bytes) -> tuple:
    try:
        value = getattr(backend, fn_name)(data)
    except aq.DecodeError as exc:
        return ("err", error_signature(exc))
    except Exception as exc:  # any other exception type is a failure
        raise AssertionError(
            f"{backend.__name__}.{fn_name} raised {type(exc).__name__}: {exc} for {data.hex()}"
        ) from exc
    if isinstance(value, list):
        return ("ok", [v.to_builtins() for v in value], value)
    return ("ok", value.to_builtins(), [value])


def native_wal():
    """The native walker, or skip (it needs the native ids: not under the pure backend)."""
    from actionqueue import _backend

    if _backend.FORCED_PURE or not _backend.NATIVE:
        pytest.skip("the native walker needs the native backend")
    from actionqueue.log import _walk as _wal

    return _wal


def _walk_verdicts(data: bytes) -> list[tuple]:
    """How each walker judges ``SEEDS[0] + data``: native without collecting (records
    judged by the structural skim where it can), native collecting (every record decoded),
    and the pure-Python twin."""
    from actionqueue.log import _walk_py as _wal_py

    _wal = native_wal()
    buf = SEEDS[0] + data
    return [
        _wal.walk(buf)[:5],
        _wal.walk(buf, collect=True)[:5],
        _wal.walk(buf, collect=True, collect_from=2**64 - 1)[:5],
        _wal_py.walk(buf)[:5],
    ]


def check_differential(both, data: bytes) -> None:
    cy, py = both
    verdicts = _walk_verdicts(data)
    assert all(v == verdicts[-1] for v in verdicts), f"walkers differ: {verdicts} for {data.hex()}"
    calls = [("decode", data), ("decode_payload", data[12:]), ("decode_batch", SEEDS[0] + data)]
    for fn_name, arg in calls:
        a, b = _run(cy, fn_name, arg), _run(py, fn_name, arg)
        if a[:2] != b[:2]:
            raise AssertionError(f"{fn_name} differs:\n cython {a[:2]}\n python {b[:2]}\n input {arg.hex()}")
        if a[0] == "ok":
            for event in a[2]:
                record = cy.encode(event)
                assert py.encode(event) == record
                assert cy.decode(record) == event and py.decode(record) == event
                # the decoded value satisfies every constructor invariant
                assert aq.WalEvent.from_builtins(event.to_builtins()) == event


# --------------------------------------------------------------------------------------
# Mutations
# --------------------------------------------------------------------------------------
@st.composite
def _mutate_bytes(draw, buf: bytearray) -> bytearray:
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "replace", "interesting", "truncate", "insert", "delete", "dup"]))
        n = len(buf)
        if op == "truncate":
            del buf[draw(st.integers(0, n)) :]
            continue
        if op == "insert":
            pos = draw(st.integers(0, n))
            chunk = draw(st.one_of(st.binary(min_size=1, max_size=8), st.sampled_from(INTERESTING).map(lambda b: bytes([b]))))
            buf[pos:pos] = chunk
            continue
        if n == 0:
            continue
        pos = draw(st.integers(0, n - 1))
        if op == "flip":
            buf[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "replace":
            buf[pos] = draw(st.integers(0, 255))
        elif op == "interesting":
            buf[pos] = draw(st.sampled_from(INTERESTING))
        elif op == "delete":
            del buf[pos : pos + draw(st.integers(1, 8))]
        elif op == "dup":
            end = min(n, pos + draw(st.integers(1, 24)))
            buf[pos:pos] = buf[pos:end]
    return buf


@st.composite
def mutated_records(draw) -> bytes:
    seed = draw(st.sampled_from(SEEDS))
    mode = draw(st.sampled_from(["payload", "payload", "payload", "length", "frame"]))
    if mode == "payload":
        # mutate the payload, then write a correct header: the payload parser sees it all
        return frame(bytes(draw(_mutate_bytes(bytearray(seed[12:])))))
    if mode == "length":
        # edit the length field; the CRC is recomputed over the bytes the new length covers
        payload = seed[12:]
        length = draw(
            st.one_of(
                st.integers(0, len(payload) + 4),
                st.sampled_from([0, 1, 2, len(payload) - 1, len(payload) + 1, 2**31, 2**32 - 1]),
            )
        )
        length = max(0, min(length, 2**32 - 1))
        covered = payload[:length]
        return frame(covered, length=length) + payload[length:]
    return bytes(draw(_mutate_bytes(bytearray(seed))))  # raw: mostly framing errors


@settings(max_examples=budget(700), **FUZZ_SETTINGS)
@given(data=mutated_records())
def test_mutated_records_differential(both_codecs, data: bytes) -> None:
    check_differential(both_codecs, data)


@st.composite
def structured_noise(draw) -> bytes:
    """A plausible start (sequence varint, variant index) followed by random bytes."""
    head = varint(draw(st.sampled_from([0, 1, 127, 128, 2**32, 2**64 - 1])))
    head += bytes([draw(st.integers(0, 32))])
    return frame(head + draw(st.binary(max_size=120)))


@settings(max_examples=budget(500), **FUZZ_SETTINGS)
@given(data=st.one_of(st.binary(max_size=200), st.binary(max_size=200).map(frame), structured_noise()))
def test_random_bytes_differential(both_codecs, data: bytes) -> None:
    check_differential(both_codecs, data)


def test_seeds_decode(both_codecs) -> None:
    assert len(SEEDS) >= 9
    for seed in SEEDS:
        check_differential(both_codecs, seed)


# --------------------------------------------------------------------------------------
# atheris (libFuzzer) run, when atheris is installed
# --------------------------------------------------------------------------------------
FUZZER = PROJECT_ROOT / "fuzz" / "differential_fuzzer.py"


@pytest.mark.slow
def test_atheris_differential_fuzzer_runs(tmp_path: Path) -> None:
    if importlib.util.find_spec("atheris") is None:
        pytest.skip("atheris is not installed (pip install atheris, or the 'fuzz' extra)")
    load_backend("cython")  # skips under ACTIONQUEUE_PUREPYTHON without a native build, else fails
    corpus = tmp_path / "corpus"  # libFuzzer writes new inputs into the first corpus dir
    corpus.mkdir()
    for i, seed in enumerate(SEEDS):
        (corpus / f"seed{i:03d}").write_bytes(seed)
    env = dict(os.environ)
    env.pop("ACTIONQUEUE_PUREPYTHON", None)
    proc = subprocess.run(
        [
            sys.executable,
            str(FUZZER),
            str(corpus),
            "-max_total_time=4",
            "-timeout=20",
            "-rss_limit_mb=2048",
            f"-artifact_prefix={tmp_path}/",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    crashes = [p.name for p in tmp_path.iterdir() if p.name.startswith(("crash-", "timeout-", "oom-"))]
    assert proc.returncode == 0 and not crashes, (
        f"fuzzer exit {proc.returncode}, artifacts {crashes}\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    )
    assert "Done" in proc.stderr or "done" in proc.stderr.lower()
    shutil.rmtree(corpus, ignore_errors=True)


# --------------------------------------------------------------------------------------
# The structural skim hands text and model rules to the decoder
# --------------------------------------------------------------------------------------
def _lease_record(owner: bytes, sequence: int = 1) -> bytes:
    run = aq.RunId("11111111-2222-4222-8333-333344444444")
    good = aq.encode(aq.WalEvent(sequence, aq.LeaseAcquired(run, "x" * len(owner), 100, 50)))
    payload = good[12:]
    at = payload.index(b"x" * len(owner))
    return frame(payload[:at] + owner + payload[at + len(owner) :])


@pytest.mark.parametrize(
    ("owner", "ok"),
    [(b"worker", True), ("w\u00f6rker".encode(), True), (b"w\xffrker", False), (b"\xc3", False)],
)
def test_walk_judges_text_like_the_decoder(owner: bytes, ok: bool) -> None:
    _wal = native_wal()

    buf = _lease_record(b"plain") + _lease_record(owner, 2)
    for verdict in (_wal.walk(buf), _wal.walk(buf, collect=True), _wal.walk(buf, collect=True, collect_from=3)):
        assert verdict[1] == (2 if ok else 1)
        assert (verdict[3] == 0) == ok


def test_walk_applies_model_rules_it_cannot_skim() -> None:
    """A RunInstance breaking a model rule (Scheduled with a current attempt) is well formed
    postcard; the skim must defer to the decoder, which rejects it."""
    _wal = native_wal()

    run = aq.RunInstance(
        aq.RunId("11111111-2222-4222-8333-333344444444"), aq.TaskId("d540e4bf-1168-4e83-ad43-ac544466d511"),
        aq.RunState.SCHEDULED, None, 0, 10, 10, 0, 10,
    )
    good = aq.encode(aq.WalEvent(1, aq.RunCreated(run)))[12:]
    # current_attempt_id: None (0x00) -> Some(uuid): the constructor forbids it for Scheduled
    at = good.index(bytes(run.task_id.bytes)) + 16 + 1  # after task id and the state index
    bad = frame(good[:at] + b"\x01\x10" + bytes(range(16)) + good[at + 1 :])
    with pytest.raises(aq.DecodeError):
        aq.decode(bad)
    for verdict in (_wal.walk(bad), _wal.walk(bad, collect=True, collect_from=5)):
        assert verdict[1] == 0 and verdict[3] != 0


def _forced(value, **changes):
    """``value`` with ``changes`` applied without the constructor's checks (frozen slots
    written directly), to encode records that break a model rule."""
    import copy

    out = copy.copy(value)
    for name, v in changes.items():
        object.__setattr__(out, name, v)
    return out


_TASK = aq.TaskId("d540e4bf-1168-4e83-ad43-ac544466d511")
_RUN = aq.RunInstance(
    aq.RunId("11111111-2222-4222-8333-333344444444"), _TASK, aq.RunState.SCHEDULED, None, 0, 10, 10, 0, 10,
)
_ATTEMPT = aq.AttemptId("682001e2-dffd-4cc1-af00-9587c6f3e0fa")
_NIL = aq.TaskId("00000000-0000-0000-0000-000000000000")
_SPEC = aq.TaskSpec(
    _TASK,
    run_policy=aq.RepeatPolicy(count=3, interval_secs=60),
    constraints=aq.TaskConstraints(max_attempts=3, timeout_secs=30, concurrency_key="k", required_capabilities=("gpu",)),
)


def _model_rule_cases():
    run = lambda **kw: aq.RunCreated(_forced(_RUN, **kw))  # noqa: E731
    spec = lambda **kw: aq.TaskCreated(_forced(_SPEC, **kw), 5)  # noqa: E731
    cons = lambda **kw: spec(constraints=_forced(_SPEC.constraints, **kw))  # noqa: E731
    rep = lambda **kw: spec(run_policy=_forced(_SPEC.run_policy, **kw))  # noqa: E731
    return {
        "run ok": run(),
        "run ready ok": run(state=aq.RunState.READY, scheduled_at=5),
        "run ready scheduled later": run(state=aq.RunState.READY, scheduled_at=50),
        "run nil id": run(id=aq.RunId(_NIL.bytes)),
        "run nil task": run(task_id=_NIL),
        "run attempt outside Running": run(current_attempt_id=_ATTEMPT),
        "run attempt in Running": run(state=aq.RunState.RUNNING, current_attempt_id=_ATTEMPT, attempt_count=1),
        "spec ok": spec(),
        "spec nil id": spec(id=_NIL),
        "max_attempts 0": cons(max_attempts=0),
        "timeout 0": cons(timeout_secs=0),
        "empty concurrency key": cons(concurrency_key=""),
        "no capabilities": cons(required_capabilities=()),
        "empty capability": cons(required_capabilities=("gpu", "")),
        "repeat count 0": rep(count=0),
        "repeat interval 0": rep(interval_secs=0),
        "bad cron": spec(run_policy=_forced(aq.CronPolicy("0 * * * * * *"), expression="nope")),
    }


@pytest.mark.parametrize("name", list(_model_rule_cases()))
def test_walk_judges_model_rules_like_the_decoder(name: str) -> None:
    """Each rule of the model checked by the structural pre-check, or handed to the decoder:
    every walker accepts exactly what decoding accepts."""
    from actionqueue.codec import _codec_py

    _wal = native_wal()

    record = _codec_py.encode(aq.WalEvent(1, _model_rule_cases()[name]))
    try:
        aq.decode(record)
    except aq.DecodeError:
        ok = False
    else:
        ok = True
    assert ok == name.endswith("ok") or "in Running" in name
    verdicts = [_wal.walk(record)[:4], _wal.walk(record, collect=True)[:4], _wal.walk(record, collect=True, collect_from=9)[:4]]
    assert all((v[1] == 1) == ok and (v[3] == 0) == ok for v in verdicts), verdicts


def test_trusted_walk_steps_over_a_validated_prefix() -> None:
    """On a buffer already checked, ``trusted`` walks give what a full walk gives, for any
    ``collect_from``; below it nothing is checked again (damage there goes unseen, which
    is why only a writer's own open-time check may vouch for a buffer)."""
    _wal = native_wal()

    buf = b"".join(SEEDS[:1]) + b"".join(
        aq.encode(aq.WalEvent(s, aq.EnginePaused(s) if s % 2 else aq.EngineResumed(s))) for s in range(2, 40)
    )
    full = _wal.walk(buf, collect=True)
    assert full[3] == 0
    for since in (0, 1, 2, 17, 39, 40, 10**6):
        a = _wal.walk(buf, collect=True, collect_from=since, trusted=True)
        b = _wal.walk(buf, collect=True, collect_from=since)
        assert a[:5] == b[:5]
        assert [e.sequence for e in a[5]] == [e.sequence for e in b[5]] == [e.sequence for e in full[5] if e.sequence >= since]
    damaged = bytearray(buf)
    damaged[len(SEEDS[0]) + 14] ^= 0x40  # a payload byte of the second record: CRC mismatch
    assert _wal.walk(bytes(damaged), collect=True, collect_from=30)[3] != 0
    assert _wal.walk(bytes(damaged), collect=True, collect_from=30, trusted=True)[3] == 0
