"""Side-by-side codec benchmark on the Rust reference workload, in one process.

Run:  python benchmarks/compare.py [--tasks N] [--repeat R] [--subset N] [--json]

Everything is measured in this one process on the same events (the reference workload of
``benchmarks/workload.py``: 999,998 events, 54,059,988 framed bytes), so the ratios are
meaningful even on a noisy machine; absolute figures drift from run to run, which is why
a plain memory copy is measured too.

What is timed (median of --repeat samples; ``gc.collect()`` before and gc disabled
inside each sample; the result is freed after the clock stops):

* encode: our native codec ``aq.encode_batch(events)`` (one buffer of framed records,
  what Rust's benchmark does) and per event ``[aq.encode(e) for e in events]``; the
  pure-Python twin (``actionqueue._codec_py``); msgspec msgpack with equivalent
  ``Struct``s (array_like, tagged union by int kind, typed) as one msgpack array and per
  event; pickle protocol 5 of the same ``aq`` objects, as one list and per event.
* decode: ``aq.decode_batch(buf)`` (version, length and CRC-32 checked, postcard into
  validated Python objects) and per record ``[aq.decode(r) for r in records]``; the
  same for the twin, msgspec (typed decode into the Structs) and pickle.
* copies: ``numpy.copyto`` of the encoded WAL and of a 256 MiB buffer (the Rust memcpy
  measurement), and ``bytes(bytearray(buf))``; they show how fast this machine is today.
* CRC-32: ``aq.crc32`` against ``zlib.crc32`` on 64 MiB and on every record payload of
  the workload (per-call cost).
* per kind: encode/decode ns per event of each event kind, ours against msgspec.

The slow codecs (pure-Python twin, pickle) run on the first --subset events of the same
workload; our codec is timed on that subset as well, and their ratios use the subset
figures. Rates are events per second; MB/s counts each codec's own output bytes
(MB = 10^6 B, GB = 10^9 B).
"""

from __future__ import annotations

import argparse
import enum
import gc
import json
import os
import pickle
import platform
import struct
import sys
import time
import zlib
from typing import Optional, Union

import msgspec
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import actionqueue as aq  # noqa: E402
from actionqueue import _codec_py  # noqa: E402

import workload  # noqa: E402

try:
    from actionqueue import _codec as _codec_native
except ImportError:  # pragma: no cover
    _codec_native = None

# Rust ActionQueue 0.1.2 figures on the project's standard machine (rust-reference-bench.md)
RUST = {
    "encode_eps": 3.82e6,
    "decode_eps": 6.17e6,
    "crc_gbps": 7.70,
    "memcpy_gbps": 10.4,
}

# --------------------------------------------------------------------------------------
# msgspec equivalents of the event kinds in the workload (and the nested types they use)
# --------------------------------------------------------------------------------------


class MRunState(enum.IntEnum):
    SCHEDULED = 0
    READY = 1
    LEASED = 2
    RUNNING = 3
    RETRY_WAIT = 4
    SUSPENDED = 5
    COMPLETED = 6
    FAILED = 7
    CANCELED = 8


class MAttemptResultKind(enum.IntEnum):
    SUCCESS = 0
    FAILURE = 1
    TIMEOUT = 2
    SUSPENDED = 3


class MHoldPolicy(enum.IntEnum):
    HOLD_DURING_RETRY = 0
    RELEASE_ON_RETRY = 1


class MSafetyLevel(enum.IntEnum):
    PURE = 0
    IDEMPOTENT = 1
    TRANSACTIONAL = 2


class _S(msgspec.Struct, array_like=True, frozen=True):
    pass


class MTaskPayload(_S):
    data: bytes  # "bytes" in aq; renamed so the annotation resolves to the builtin
    content_type: Optional[str]


class MOncePolicy(_S, tag=0):
    pass


class MRepeatPolicy(_S, tag=1):
    count: int
    interval_secs: int


class MCronPolicy(_S, tag=2):
    expression: str
    max_occurrences: Optional[int]


class MTaskConstraints(_S):
    max_attempts: int
    timeout_secs: Optional[int]
    concurrency_key: Optional[str]
    concurrency_key_hold_policy: MHoldPolicy
    safety_level: MSafetyLevel
    required_capabilities: Optional[tuple[str, ...]]


class MTaskMetadata(_S):
    tags: tuple[str, ...]
    priority: int
    description: Optional[str]


class MTaskSpec(_S):
    id: bytes
    payload: MTaskPayload
    run_policy: Union[MOncePolicy, MRepeatPolicy, MCronPolicy]
    constraints: MTaskConstraints
    metadata: MTaskMetadata
    parent_task_id: Optional[bytes]
    tenant_id: Optional[bytes]


class MRunInstance(_S):
    id: bytes
    task_id: bytes
    state: MRunState
    current_attempt_id: Optional[bytes]
    attempt_count: int
    created_at: int
    scheduled_at: int
    effective_priority: int
    last_state_change_at: int


class MTaskCreated(_S, tag=0):
    task_spec: MTaskSpec
    timestamp: int


class MRunCreated(_S, tag=1):
    run_instance: MRunInstance


class MRunStateChanged(_S, tag=2):
    run_id: bytes
    previous_state: MRunState
    new_state: MRunState
    timestamp: int


class MAttemptStarted(_S, tag=3):
    run_id: bytes
    attempt_id: bytes
    timestamp: int


class MAttemptFinished(_S, tag=4):
    run_id: bytes
    attempt_id: bytes
    result: MAttemptResultKind
    error: Optional[str]
    output: Optional[bytes]
    timestamp: int


class MLeaseAcquired(_S, tag=7):
    run_id: bytes
    owner: str
    expiry: int
    timestamp: int


class MLeaseHeartbeat(_S, tag=8):
    run_id: bytes
    owner: str
    expiry: int
    timestamp: int


class MLeaseReleased(_S, tag=10):
    run_id: bytes
    owner: str
    expiry: int
    timestamp: int


MEvent = Union[
    MTaskCreated, MRunCreated, MRunStateChanged, MAttemptStarted, MAttemptFinished,
    MLeaseAcquired, MLeaseHeartbeat, MLeaseReleased,
]


class MWalEvent(_S):
    sequence: int
    event: MEvent


def _opt_id(x):
    return None if x is None else x.bytes


def _m_policy(p):
    if isinstance(p, aq.RepeatPolicy):
        return MRepeatPolicy(p.count, p.interval_secs)
    if isinstance(p, aq.CronPolicy):
        return MCronPolicy(p.expression, p.max_occurrences)
    return MOncePolicy()


def _m_task_created(e):
    s = e.task_spec
    c = s.constraints
    md = s.metadata
    return MTaskCreated(
        MTaskSpec(
            s.id.bytes,
            MTaskPayload(s.payload.bytes, s.payload.content_type),
            _m_policy(s.run_policy),
            MTaskConstraints(
                c.max_attempts, c.timeout_secs, c.concurrency_key,
                MHoldPolicy(c.concurrency_key_hold_policy.index), MSafetyLevel(c.safety_level.index),
                c.required_capabilities,
            ),
            MTaskMetadata(md.tags, md.priority, md.description),
            _opt_id(s.parent_task_id),
            _opt_id(s.tenant_id),
        ),
        e.timestamp,
    )


def _m_run_created(e):
    r = e.run_instance
    return MRunCreated(MRunInstance(
        r.id.bytes, r.task_id.bytes, MRunState(r.state.index), _opt_id(r.current_attempt_id),
        r.attempt_count, r.created_at, r.scheduled_at, r.effective_priority, r.last_state_change_at,
    ))


_TO_MSGSPEC = {
    aq.TaskCreated: _m_task_created,
    aq.RunCreated: _m_run_created,
    aq.RunStateChanged: lambda e: MRunStateChanged(
        e.run_id.bytes, MRunState(e.previous_state.index), MRunState(e.new_state.index), e.timestamp),
    aq.AttemptStarted: lambda e: MAttemptStarted(e.run_id.bytes, e.attempt_id.bytes, e.timestamp),
    aq.AttemptFinished: lambda e: MAttemptFinished(
        e.run_id.bytes, e.attempt_id.bytes, MAttemptResultKind(e.result.index), e.error, e.output, e.timestamp),
    aq.LeaseAcquired: lambda e: MLeaseAcquired(e.run_id.bytes, e.owner, e.expiry, e.timestamp),
    aq.LeaseHeartbeat: lambda e: MLeaseHeartbeat(e.run_id.bytes, e.owner, e.expiry, e.timestamp),
    aq.LeaseReleased: lambda e: MLeaseReleased(e.run_id.bytes, e.owner, e.expiry, e.timestamp),
}


def to_msgspec(events):
    conv = _TO_MSGSPEC
    return [MWalEvent(we.sequence, conv[type(we.event)](we.event)) for we in events]


# --------------------------------------------------------------------------------------
# timing and reporting
# --------------------------------------------------------------------------------------


from harness import Report, sample  # noqa: E402 - shared with the other benchmark script


def split_records(buf):
    """Framed records of a WAL buffer as separate bytes objects."""
    out = []
    off, end = 0, len(buf)
    unpack = struct.Struct("<III").unpack_from
    while off < end:
        _, ln, _ = unpack(buf, off)
        out.append(buf[off:off + 12 + ln])
        off += 12 + ln
    return out


# --------------------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------------------


def codec_sections(rep, buf, args):
    """Decode is timed first, while only the encoded inputs (and the small subset) are
    alive; encode needs the million objects, so they are rebuilt afterwards. A heap holding
    millions of live objects slows decoding down measurably (more for us than for msgspec),
    so measuring decode next to them would understate a WAL recovery."""
    R = args.repeat
    nb = len(buf)
    records = split_records(buf)
    n = len(records)
    ns = min(args.subset, n)
    sub_buf = b"".join(records[:ns])
    sub_records = records[:ns]
    sub_nb = len(sub_buf)
    menc = msgspec.msgpack.Encoder()
    mdec = msgspec.msgpack.Decoder(MWalEvent)
    mdec_list = msgspec.msgpack.Decoder(list[MWalEvent])

    # correctness checks (a benchmark of a wrong codec is worthless)
    events = aq.decode_batch(buf)
    sub = events[:ns]
    checks = {}
    checks["encode_batch(decode_batch(buf)) == buf"] = aq.encode_batch(events) == buf
    checks["per-event encode == batch"] = all(aq.encode(e) == r for e, r in zip(events[::97], records[::97]))
    checks["per-record decode == batch"] = all(aq.decode(r) == e for e, r in zip(events[::97], records[::97]))
    checks["pure-Python twin encodes the same bytes"] = _codec_py.encode_batch(sub) == sub_buf
    checks["pure-Python twin decodes the same events"] = _codec_py.decode_batch(sub_buf) == sub
    ms = to_msgspec(events)
    mblob = menc.encode(ms)
    checks["msgspec round trip"] = mdec_list.decode(mblob) == ms
    checks["pickle round trip"] = pickle.loads(pickle.dumps(sub[:2000], 5)) == sub[:2000]
    rep.extra["checks"] = checks
    bad = [k for k, v in checks.items() if not v]
    rep.say("checks: " + ("all ok" if not bad else "FAILED: " + "; ".join(bad)))
    mper = [menc.encode(o) for o in ms]
    m_per_bytes = sum(map(len, mper))
    pblob = pickle.dumps(sub, 5)
    pper = [pickle.dumps(e, 5) for e in sub]
    p_per_bytes = sum(map(len, pper))
    pblob_n = len(pblob)
    rep.say(f"sizes: WAL {nb / n:.2f} B/event; msgspec {len(mblob) / n:.2f} B/event (array and per event alike); "
            f"pickle-5 {len(pblob) / ns:.1f} B/event as a list, {p_per_bytes / ns:.1f} per event")
    del events, ms
    gc.collect()

    # ---------------- decode ----------------
    rep.header(f"decode ({n:,} events; ours = CRC-checked into validated objects; slow codecs on the first {ns:,})")
    dec_b, dec_1 = aq.decode_batch, aq.decode
    rep.row("decode", "ours aq.decode_batch (native)", n, *sample(lambda: dec_b(buf), R), nb, key="dec.ours.batch")
    rep.row("decode", "ours [aq.decode(r) for r] (native, per record)", n, *sample(lambda: [dec_1(r) for r in records], R), nb, key="dec.ours.per")
    mdec_1 = mdec.decode
    rep.row("decode", "msgspec decode(list[...]) one msgpack array", n, *sample(lambda: mdec_list.decode(mblob), R), len(mblob), key="dec.msgspec.batch")
    rep.row("decode", "msgspec [decode(b) for b] per event", n, *sample(lambda: [mdec_1(b) for b in mper], R), m_per_bytes, key="dec.msgspec.per")
    rep.row("decode", "ours aq.decode_batch, subset", ns, *sample(lambda: dec_b(sub_buf), R), sub_nb, key="dec.ours.batch.sub")
    rep.row("decode", "ours per record, subset", ns, *sample(lambda: [dec_1(r) for r in sub_records], R), sub_nb, key="dec.ours.per.sub")
    pd_b, pd_1 = _codec_py.decode_batch, _codec_py.decode
    rep.row("decode", "pure-Python twin decode_batch, subset", ns, *sample(lambda: pd_b(sub_buf), R), sub_nb, key="dec.py.batch")
    rep.row("decode", "pure-Python twin per record, subset", ns, *sample(lambda: [pd_1(r) for r in sub_records], R), sub_nb, key="dec.py.per")
    rep.row("decode", "pickle-5 loads(list), subset", ns, *sample(lambda: pickle.loads(pblob), R), len(pblob), key="dec.pickle.batch")
    rep.row("decode", "pickle-5 per event, subset", ns, *sample(lambda: [pickle.loads(b) for b in pper], R), p_per_bytes, key="dec.pickle.per")
    del pper, pblob, mper

    # ---------------- encode ----------------
    events = aq.decode_batch(buf)
    ms = to_msgspec(events)
    gc.collect()
    rep.header(f"encode ({n:,} events; slow codecs on the first {ns:,})")
    enc_b, enc_1 = aq.encode_batch, aq.encode
    rep.row("encode", "ours aq.encode_batch (native)", n, *sample(lambda: enc_b(events), R), nb, key="enc.ours.batch")
    rep.row("encode", "ours [aq.encode(e) for e] (native, per event)", n, *sample(lambda: [enc_1(e) for e in events], R), nb, key="enc.ours.per")
    rep.row("encode", "msgspec encode(list) one msgpack array", n, *sample(lambda: menc.encode(ms), R), len(mblob), key="enc.msgspec.batch")
    rep.row("encode", "msgspec [encode(o) for o] per event", n, *sample(lambda: [menc.encode(o) for o in ms], R), m_per_bytes, key="enc.msgspec.per")
    rep.row("encode", "ours aq.encode_batch, subset", ns, *sample(lambda: enc_b(sub), R), sub_nb, key="enc.ours.batch.sub")
    rep.row("encode", "ours per event, subset", ns, *sample(lambda: [enc_1(e) for e in sub], R), sub_nb, key="enc.ours.per.sub")
    pe_b, pe_1 = _codec_py.encode_batch, _codec_py.encode
    rep.row("encode", "pure-Python twin encode_batch, subset", ns, *sample(lambda: pe_b(sub), R), sub_nb, key="enc.py.batch")
    rep.row("encode", "pure-Python twin per event, subset", ns, *sample(lambda: [pe_1(e) for e in sub], R), sub_nb, key="enc.py.per")
    rep.row("encode", "pickle-5 dumps(list), subset", ns, *sample(lambda: pickle.dumps(sub, 5), R), pblob_n, key="enc.pickle.batch")
    rep.row("encode", "pickle-5 per event, subset", ns, *sample(lambda: [pickle.dumps(e, 5) for e in sub], R), p_per_bytes, key="enc.pickle.per")

    # ---------------- per kind ----------------
    if not args.no_kinds:
        rep.say(f"\n## per event kind (batch forms; up to {args.kind_n:,} events of each kind; ns/event)")
        rep.say(f"  {'kind':18} {'count':>9} {'B/rec':>6} {'enc ours':>9} {'enc msgsp':>9} {'dec ours':>9} {'dec msgsp':>9}"
                f"  share of our total time (count x ns)")
        by_kind, counts = {}, {}
        for we, m in zip(events, ms):
            name = type(we.event).__name__
            counts[name] = counts.get(name, 0) + 1
            evs, mevs = by_kind.setdefault(name, ([], []))
            if len(evs) < args.kind_n:
                evs.append(we)
                mevs.append(m)
        del events, ms
        gc.collect()
        kinds = {}
        rk = max(3, R // 2 + 1)
        for name, (evs, mevs) in by_kind.items():
            count = counts[name]
            k = len(evs)
            kb = enc_b(evs)
            kblob = menc.encode(mevs)
            d = {
                "count": count, "bytes_per_record": len(kb) / k,
                "enc_ours_ns": sample(lambda: enc_b(evs), rk)[0] / k * 1e9,
                "enc_msgspec_ns": sample(lambda: menc.encode(mevs), rk)[0] / k * 1e9,
                "dec_ours_ns": sample(lambda: dec_b(kb), rk)[0] / k * 1e9,
                "dec_msgspec_ns": sample(lambda: mdec_list.decode(kblob), rk)[0] / k * 1e9,
            }
            kinds[name] = d
        tot_dec = sum(d["dec_ours_ns"] * d["count"] for d in kinds.values())
        tot_enc = sum(d["enc_ours_ns"] * d["count"] for d in kinds.values())
        for name, d in kinds.items():
            d["dec_share"] = d["dec_ours_ns"] * d["count"] / tot_dec
            d["enc_share"] = d["enc_ours_ns"] * d["count"] / tot_enc
            rep.say(f"  {name:18} {d['count']:>9,} {d['bytes_per_record']:6.1f} {d['enc_ours_ns']:9.0f} {d['enc_msgspec_ns']:9.0f}"
                    f" {d['dec_ours_ns']:9.0f} {d['dec_msgspec_ns']:9.0f}  dec {d['dec_share'] * 100:4.1f}%  enc {d['enc_share'] * 100:4.1f}%")
        rep.extra["kinds"] = kinds


def copy_crc_sections(rep, buf, records, args):
    R = args.repeat
    rep.header("memory copies (this machine today; Rust run: memcpy 10.4 GB/s)")
    src = np.frombuffer(buf, dtype=np.uint8)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault the pages in
    rep.row("copy", f"numpy copyto of the encoded WAL ({len(buf) / 1e6:.0f} MB)", 0, *sample(lambda: np.copyto(dst, src), R), len(buf), key="copy.wal")
    big = 256 * 2**20
    a = np.ones(big, dtype=np.uint8)
    b = np.empty_like(a)
    np.copyto(b, a)
    passes = 4
    rep.row("copy", "numpy copyto 256 MiB x4 (as Rust's memcpy)", 0, *sample(lambda: [np.copyto(b, a) for _ in range(passes)], R), big * passes,
            key="copy.256")
    del a, b
    rep.row("copy", "bytes(bytearray(wal)) (alloc + 2 copies)", 0, *sample(lambda: bytes(bytearray(buf)), R), len(buf), key="copy.bytes",
            note="buffer size counted once")

    rep.header("CRC-32 (ISO-HDLC)")
    size = 64 * 2**20
    data = np.random.default_rng(7).integers(0, 256, size=size, dtype=np.uint8).tobytes()
    assert aq.crc32(data) == zlib.crc32(data)
    crc_aq, crc_z = aq.crc32, zlib.crc32
    passes = 8
    rep.row("crc", f"aq.crc32 64 MiB x{passes} ({getattr(aq._codec_impl, 'CRC32_IMPL', '?')})", 0,
            *sample(lambda: [crc_aq(data) for _ in range(passes)], R), size * passes, key="crc.aq.big")
    rep.row("crc", f"zlib.crc32 64 MiB x{passes} (zlib {zlib.ZLIB_RUNTIME_VERSION})", 0,
            *sample(lambda: [crc_z(data) for _ in range(passes)], R), size * passes, key="crc.zlib.big")
    payloads = [r[12:] for r in records]
    pb = sum(map(len, payloads))
    assert all(crc_aq(p) == crc_z(p) for p in payloads[:1000])
    np_ = len(payloads)
    rep.say(f"  per-call on the {np_:,} record payloads ({pb / np_:.1f} B avg), list comprehension; 'events' = calls")
    rep.row("crc", "[aq.crc32(p) for p in payloads]", np_, *sample(lambda: [crc_aq(p) for p in payloads], R), pb, key="crc.aq.small")
    rep.row("crc", "[zlib.crc32(p) for p in payloads]", np_, *sample(lambda: [crc_z(p) for p in payloads], R), pb, key="crc.zlib.small")
    rep.row("crc", "[len(p) for p in payloads] (loop + call floor)", np_, *sample(lambda: [len(p) for p in payloads], R), pb, key="crc.floor")


def summary(rep):
    g = lambda k: rep.get(k)  # noqa: E731
    eps = lambda k: g(k)["events_per_s"] if g(k) else float("nan")  # noqa: E731
    ratios = {}

    def ratio(label, a, b):
        v = eps(a) / eps(b)
        ratios[label] = v
        rep.say(f"  {label:58} {v:7.2f}x")
        return v

    rep.say("\n## ratios (events/s, same run)")
    ratio("encode batch: ours / msgspec", "enc.ours.batch", "enc.msgspec.batch")
    ratio("encode per-event: ours / msgspec", "enc.ours.per", "enc.msgspec.per")
    ratio("decode batch: ours / msgspec", "dec.ours.batch", "dec.msgspec.batch")
    ratio("decode per-event: ours / msgspec", "dec.ours.per", "dec.msgspec.per")
    ratio("encode batch: ours / pickle-5 (subset)", "enc.ours.batch.sub", "enc.pickle.batch")
    ratio("encode per-event: ours / pickle-5 (subset)", "enc.ours.per.sub", "enc.pickle.per")
    ratio("decode batch: ours / pickle-5 (subset)", "dec.ours.batch.sub", "dec.pickle.batch")
    ratio("decode per-event: ours / pickle-5 (subset)", "dec.ours.per.sub", "dec.pickle.per")
    ratio("encode batch: ours / pure-Python twin (subset)", "enc.ours.batch.sub", "enc.py.batch")
    ratio("decode batch: ours / pure-Python twin (subset)", "dec.ours.batch.sub", "dec.py.batch")
    ratio("encode per-event: ours / pure-Python twin (subset)", "enc.ours.per.sub", "enc.py.per")
    ratio("decode per-event: ours / pure-Python twin (subset)", "dec.ours.per.sub", "dec.py.per")

    enc, dec = eps("enc.ours.batch"), eps("dec.ours.batch")
    memcpy = g("copy.256")["mb_per_s"] / 1e3 if g("copy.256") else float("nan")
    machine = memcpy / RUST["memcpy_gbps"]
    rep.say("\n## against the Rust original (recorded on the project's standard machine)")
    rep.say(f"  encode  ours {enc / 1e6:6.2f} M ev/s   Rust {RUST['encode_eps'] / 1e6:.2f}   ours/Rust {enc / RUST['encode_eps']:.2f}"
            f"   goal >= {RUST['encode_eps'] / 2e6:.2f} (half)")
    rep.say(f"  decode  ours {dec / 1e6:6.2f} M ev/s   Rust {RUST['decode_eps'] / 1e6:.2f}   ours/Rust {dec / RUST['decode_eps']:.2f}"
            f"   goal >= {RUST['decode_eps'] / 2e6:.2f} (half)")
    crc_big = g("crc.aq.big")["mb_per_s"] / 1e3 if g("crc.aq.big") else float("nan")
    rep.say(f"  CRC-32  ours {crc_big:6.2f} GB/s       Rust {RUST['crc_gbps']:.2f}   ours/Rust {crc_big / RUST['crc_gbps']:.2f}")
    rep.say(f"  memcpy  here {memcpy:6.2f} GB/s       Rust run {RUST['memcpy_gbps']:.1f}   machine factor {machine:.2f}"
            " (below 1: this run had a slower machine than the Rust run)")
    ratios["ours/rust encode"] = enc / RUST["encode_eps"]
    ratios["ours/rust decode"] = dec / RUST["decode_eps"]
    ratios["machine memcpy factor"] = machine

    goals = {}

    def goal(label, ok, detail):
        goals[label] = {"pass": bool(ok), "detail": detail}
        rep.say(f"  {'PASS' if ok else 'MISS'}  {label:46} {detail}")

    rep.say("\n## goals")
    for form in ("batch", "per"):
        for op in ("enc", "dec"):
            a, b = eps(f"{op}.ours.{form}"), eps(f"{op}.msgspec.{form}")
            goal(f"{'encode' if op == 'enc' else 'decode'} ({'batch' if form == 'batch' else 'per-event'}) >= msgspec",
                 a >= b, f"{a / 1e6:.2f} vs {b / 1e6:.2f} M ev/s ({a / b:.2f}x)")
    goal("encode >= half of Rust (3.82/2 M ev/s)", enc >= RUST["encode_eps"] / 2, f"{enc / 1e6:.2f} vs {RUST['encode_eps'] / 2e6:.2f} M ev/s")
    goal("decode >= half of Rust (6.17/2 M ev/s)", dec >= RUST["decode_eps"] / 2, f"{dec / 1e6:.2f} vs {RUST['decode_eps'] / 2e6:.2f} M ev/s")
    for kind, label in (("big", "64 MiB"), ("small", "per record")):
        a, b = g(f"crc.aq.{kind}"), g(f"crc.zlib.{kind}")
        if a and b:
            goal(f"CRC-32 {label} >= zlib.crc32", a["median_s"] <= b["median_s"],
                 f"{a['mb_per_s'] / 1e3:.2f} vs {b['mb_per_s'] / 1e3:.2f} GB/s ({b['median_s'] / a['median_s']:.2f}x)")
    rep.extra["ratios"] = ratios
    rep.extra["goals"] = goals


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=workload.REFERENCE_TASKS, help="tasks (31 events each); default the full 32,258")
    ap.add_argument("--seed", type=int, default=workload.DEFAULT_SEED)
    ap.add_argument("--repeat", type=int, default=5, help="samples per measurement (median reported)")
    ap.add_argument("--subset", type=int, default=50_000, help="events for the slow codecs (pure-Python twin, pickle)")
    ap.add_argument("--kind-n", type=int, default=100_000, help="events per kind in the per-kind section")
    ap.add_argument("--no-kinds", action="store_true", help="skip the per-kind section")
    ap.add_argument("--no-cache", action="store_true", help="regenerate the workload instead of using the disk cache")
    ap.add_argument("--json", action="store_true", help="print JSON on stdout (the human table goes to stderr)")
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    rep = Report(sys.stderr if args.json else sys.stdout)
    if aq.backend != "cython":
        rep.say(f"WARNING: actionqueue backend is {aq.backend!r}, not the native codec")
    rep.say(f"# actionqueue compare  python {platform.python_version()} {platform.machine()}  cpus={os.cpu_count()}"
            f"  backend {aq.backend} (CRC {getattr(aq._codec_impl, 'CRC32_IMPL', '?')})  msgspec {msgspec.__version__}"
            f"  numpy {np.__version__}  zlib {zlib.ZLIB_RUNTIME_VERSION}")
    t0 = time.perf_counter()
    buf = workload.reference_buffer(args.tasks, args.seed, cache=not args.no_cache)
    ok, msg = workload.check_size(buf, args.tasks)
    rep.say(f"workload: {args.tasks * workload.EVENTS_PER_TASK:,} events, {args.tasks:,} tasks, seed {args.seed} ({time.perf_counter() - t0:.1f} s to load)")
    rep.say(f"workload: {msg}{'' if ok else '  <-- SIZE CHECK FAILED'}")
    load = os.getloadavg()
    rep.say(f"timing: median of {args.repeat}, gc disabled inside samples; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if load[0] > 0.5:
        rep.say("WARNING: the machine is busy (load average > 0.5); other processes share the CPUs, expect noisy figures")
    rep.extra["loadavg_start"] = load
    rep.extra["workload"] = {"events": args.tasks * workload.EVENTS_PER_TASK, "tasks": args.tasks, "seed": args.seed, "framed_bytes": len(buf),
                             "expected_bytes": workload.expected_framed_size(args.tasks), "size_ok": ok,
                             "rust_bytes": workload.REFERENCE_FRAMED_BYTES}

    codec_sections(rep, buf, args)
    gc.collect()
    copy_crc_sections(rep, buf, split_records(buf), args)
    summary(rep)
    total = time.perf_counter() - t_start
    rep.extra["loadavg_end"] = os.getloadavg()
    rep.say(f"\n# total {total:.0f} s; load average now {rep.extra['loadavg_end'][0]:.2f}")
    if args.json:
        out = {
            "python": platform.python_version(), "backend": aq.backend, "msgspec": msgspec.__version__,
            "repeat": args.repeat, "subset": args.subset, "rust": RUST, "total_s": total,
            "rows": rep.rows, **rep.extra,
        }
        json.dump(out, sys.stdout, indent=1)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
