"""Side-by-side codec benchmark on the Rust reference workload, in one process.

Run:  actionqueue bench --section codec   (or python benchmarks/compare.py [--tasks N] [--repeat R] ...)

Everything is measured in this one process on the same events (the reference workload of
``benchmarks/workload.py``: 999,998 events, 54,059,988 framed bytes), so the ratios are
meaningful even on a noisy machine; absolute figures drift from run to run, which is why
a plain memory copy is measured too.

What is timed (median of --repeat samples; ``gc.collect()`` before and gc disabled
inside each sample; the result is freed after the clock stops):

* encode: our native codec ``aq.encode_batch(events)`` (one buffer of framed records,
  what Rust's benchmark does) and per event ``[aq.encode(e) for e in events]``; the
  pure-Python twin (``actionqueue.codec._codec_py``); msgspec msgpack with equivalent
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

import gc
import os
import pickle
import platform
import struct
import zlib
from types import ModuleType
from typing import Any

import numpy as np

import actionqueue as aq
from actionqueue.codec import _codec_py

from . import workload
from .harness import Report, sample

# Rust ActionQueue 0.1.2 rebuilt and run beside our bench on this machine kind
# (rust-reference-bench.md, "Same machine kind, 2026-12-02")
RUST = {
    "encode_eps": 5.7e6,
    "decode_eps": 8.1e6,
    "crc_gbps": 8.2,
    "memcpy_gbps": 10.6,
}


def _msgspec_model() -> ModuleType | None:
    """The msgspec twins of the event types, or None when msgspec is not installed."""
    try:
        from . import _msgspec_model
    except ImportError:
        return None
    return _msgspec_model


def msgspec_version() -> str | None:
    """msgspec's version, or None when it is not installed."""
    mm = _msgspec_model()
    return None if mm is None else mm.msgspec.__version__


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
    """Encode and decode: ours, msgspec (when installed), pickle-5 and the pure-Python twin.

    Decode is timed first, while only the encoded inputs (and the small subset) are
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
    mm = _msgspec_model()
    # the msgspec side, bound only when msgspec is installed (every use checks ``mm``)
    menc: Any = None
    mdec: Any = None
    mdec_list: Any = None
    ms: Any = None
    mblob: Any = None
    mper: Any = None
    m_per_bytes = 0
    if mm is None:
        rep.skip("msgspec rows: msgspec is not installed (pip install msgspec)")
    else:
        menc = mm.msgspec.msgpack.Encoder()
        mdec = mm.msgspec.msgpack.Decoder(mm.MWalEvent)
        mdec_list = mm.msgspec.msgpack.Decoder(list[mm.MWalEvent])

    # correctness checks (a benchmark of a wrong codec is worthless)
    events = aq.decode_batch(buf)
    sub = events[:ns]
    checks = {}
    checks["encode_batch(decode_batch(buf)) == buf"] = aq.encode_batch(events) == buf
    checks["per-event encode == batch"] = all(aq.encode(e) == r for e, r in zip(events[::97], records[::97]))
    checks["per-record decode == batch"] = all(aq.decode(r) == e for e, r in zip(events[::97], records[::97]))
    checks["pure-Python twin encodes the same bytes"] = _codec_py.encode_batch(sub) == sub_buf
    checks["pure-Python twin decodes the same events"] = _codec_py.decode_batch(sub_buf) == sub
    if mm is not None:
        ms = mm.to_msgspec(events)
        mblob = menc.encode(ms)
        checks["msgspec round trip"] = mdec_list.decode(mblob) == ms
    checks["pickle round trip"] = pickle.loads(pickle.dumps(sub[:2000], 5)) == sub[:2000]
    rep.extra["checks"] = checks
    bad = [k for k, v in checks.items() if not v]
    rep.say("checks: " + ("all ok" if not bad else "FAILED: " + "; ".join(bad)))
    if mm is not None:
        mper = [menc.encode(o) for o in ms]
        m_per_bytes = sum(map(len, mper))
    pblob = pickle.dumps(sub, 5)
    pper = [pickle.dumps(e, 5) for e in sub]
    p_per_bytes = sum(map(len, pper))
    pblob_n = len(pblob)
    msize = f"msgspec {len(mblob) / n:.2f} B/event (array and per event alike); " if mm is not None else ""
    rep.say(f"sizes: WAL {nb / n:.2f} B/event; {msize}"
            f"pickle-5 {len(pblob) / ns:.1f} B/event as a list, {p_per_bytes / ns:.1f} per event")
    del events
    if mm is not None:
        del ms
    gc.collect()

    # ---------------- decode ----------------
    rep.header(f"decode ({n:,} events; ours = CRC-checked into validated objects; slow codecs on the first {ns:,})")
    dec_b, dec_1 = aq.decode_batch, aq.decode
    rep.row("decode", "ours aq.decode_batch (native)", n, *sample(lambda: dec_b(buf), R), nb, key="dec.ours.batch")
    rep.row("decode", "ours [aq.decode(r) for r] (native, per record)", n, *sample(lambda: [dec_1(r) for r in records], R), nb, key="dec.ours.per")
    if mm is not None:
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
    del pper, pblob
    if mm is not None:
        del mper

    # ---------------- encode ----------------
    events = aq.decode_batch(buf)
    ms = mm.to_msgspec(events) if mm is not None else [None] * len(events)
    gc.collect()
    rep.header(f"encode ({n:,} events; slow codecs on the first {ns:,})")
    enc_b, enc_1 = aq.encode_batch, aq.encode
    rep.row("encode", "ours aq.encode_batch (native)", n, *sample(lambda: enc_b(events), R), nb, key="enc.ours.batch")
    rep.row("encode", "ours [aq.encode(e) for e] (native, per event)", n, *sample(lambda: [enc_1(e) for e in events], R), nb, key="enc.ours.per")
    if mm is not None:
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
            nan = float("nan")
            d = {
                "count": count, "bytes_per_record": len(kb) / k,
                "enc_ours_ns": sample(lambda: enc_b(evs), rk)[0] / k * 1e9,
                "enc_msgspec_ns": nan,
                "dec_ours_ns": sample(lambda: dec_b(kb), rk)[0] / k * 1e9,
                "dec_msgspec_ns": nan,
            }
            if mm is not None:
                kblob = menc.encode(mevs)
                d["enc_msgspec_ns"] = sample(lambda: menc.encode(mevs), rk)[0] / k * 1e9
                d["dec_msgspec_ns"] = sample(lambda: mdec_list.decode(kblob), rk)[0] / k * 1e9
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
    """Memory copies (how fast this machine is today) and CRC-32 against zlib."""
    R = args.repeat
    rep.header("memory copies (this machine today; Rust run: memcpy 10.4 GB/s)")
    src = np.frombuffer(buf, dtype=np.uint8)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault the pages in
    rep.row("copy", f"numpy copyto of the encoded WAL ({len(buf) / 1e6:.0f} MB)", 0, *sample(lambda: np.copyto(dst, src), R), len(buf), key="copy.wal")
    big = getattr(args, "copy_bytes", 256 << 20)
    a = np.ones(big, dtype=np.uint8)
    b = np.empty_like(a)
    np.copyto(b, a)
    passes = 4
    rep.row("copy", f"numpy copyto {big >> 20} MiB x4 (as Rust's memcpy)", 0, *sample(lambda: [np.copyto(b, a) for _ in range(passes)], R), big * passes,
            key="copy.256")
    del a, b
    rep.row("copy", "bytes(bytearray(wal)) (alloc + 2 copies)", 0, *sample(lambda: bytes(bytearray(buf)), R), len(buf), key="copy.bytes",
            note="buffer size counted once")

    rep.header("CRC-32 (ISO-HDLC)")
    size = getattr(args, "crc_bytes", 64 << 20)
    data = np.random.default_rng(7).integers(0, 256, size=size, dtype=np.uint8).tobytes()
    assert aq.crc32(data) == zlib.crc32(data)
    crc_aq, crc_z = aq.crc32, zlib.crc32
    passes = 8
    rep.row("crc", f"aq.crc32 {size >> 20} MiB x{passes} ({getattr(aq._codec_impl, 'CRC32_IMPL', '?')})", 0,
            *sample(lambda: [crc_aq(data) for _ in range(passes)], R), size * passes, key="crc.aq.big")
    rep.row("crc", f"zlib.crc32 {size >> 20} MiB x{passes} (zlib {zlib.ZLIB_RUNTIME_VERSION})", 0,
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
    """Ratios within the run, the comparison with the Rust figures, PASS/MISS goals."""
    g = rep.get
    eps = rep.eps
    ratios = {}

    def ratio(label, a, b):
        v = rep.ratio(label, eps(a) / eps(b), 58)
        if v == v:
            ratios[label] = v
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
    rep.say("\n## against the Rust original (rebuilt and run on this machine kind)")
    rep.say(f"  encode  ours {enc / 1e6:6.2f} M ev/s   Rust {RUST['encode_eps'] / 1e6:.2f}   ours/Rust {enc / RUST['encode_eps']:.2f}"
            f"   goal >= {RUST['encode_eps'] / 2e6:.2f} (half)")
    rep.say(f"  decode  ours {dec / 1e6:6.2f} M ev/s   Rust {RUST['decode_eps'] / 1e6:.2f}   ours/Rust {dec / RUST['decode_eps']:.2f}"
            f"   goal >= {RUST['decode_eps'] / 2e6:.2f} (half)")
    crc_big = g("crc.aq.big")["mb_per_s"] / 1e3 if g("crc.aq.big") else float("nan")
    rep.say(f"  CRC-32  ours {crc_big:6.2f} GB/s       Rust {RUST['crc_gbps']:.2f}   ours/Rust {crc_big / RUST['crc_gbps']:.2f}")
    rep.say(f"  memcpy  here {memcpy:6.2f} GB/s       Rust run {RUST['memcpy_gbps']:.1f}   machine factor {machine:.2f}"
            " (below 1: this run had a slower machine than the Rust run)")
    for label, v in (("ours/rust encode", enc / RUST["encode_eps"]), ("ours/rust decode", dec / RUST["decode_eps"]),
                     ("machine memcpy factor", machine)):
        if v == v:
            ratios[label] = rep.ratios[label] = v

    goals = {}

    def goal(label, ok, detail):
        rep.goal(label, ok, detail, 46)
        goals[label] = rep.goals[label]

    rep.say("\n## goals")
    for form in ("batch", "per"):
        for op in ("enc", "dec"):
            a, b = eps(f"{op}.ours.{form}"), eps(f"{op}.msgspec.{form}")
            if b != b:  # msgspec not measured
                continue
            goal(f"{'encode' if op == 'enc' else 'decode'} ({'batch' if form == 'batch' else 'per-event'}) >= msgspec",
                 a >= b, f"{a / 1e6:.2f} vs {b / 1e6:.2f} M ev/s ({a / b:.2f}x)")
    goal("encode >= half of Rust (5.7/2 M ev/s)", enc >= RUST["encode_eps"] / 2, f"{enc / 1e6:.2f} vs {RUST['encode_eps'] / 2e6:.2f} M ev/s")
    goal("decode >= half of Rust (8.1/2 M ev/s)", dec >= RUST["decode_eps"] / 2, f"{dec / 1e6:.2f} vs {RUST['decode_eps'] / 2e6:.2f} M ev/s")
    for kind, label in (("big", "big buffer"), ("small", "per record")):
        a, b = g(f"crc.aq.{kind}"), g(f"crc.zlib.{kind}")
        if a and b:
            goal(f"CRC-32 {label} >= zlib.crc32", a["median_s"] <= b["median_s"],
                 f"{a['mb_per_s'] / 1e3:.2f} vs {b['mb_per_s'] / 1e3:.2f} GB/s ({b['median_s'] / a['median_s']:.2f}x)")
    rep.extra.setdefault("codec", {})["ratios"] = ratios
    rep.extra["codec"]["goals"] = goals


def describe_run(rep: Report) -> None:
    """The header lines of a codec run: versions, workload size check, load average."""
    cfg = rep.config
    if aq.backend != "cython":
        rep.say(f"WARNING: actionqueue backend is {aq.backend!r}, not the native codec")
    rep.say(f"# actionqueue codec  python {platform.python_version()} {platform.machine()}  cpus={os.cpu_count()}"
            f"  backend {aq.backend} (CRC {getattr(aq._codec_impl, 'CRC32_IMPL', '?')})  msgspec {msgspec_version() or 'not installed'}"
            f"  numpy {np.__version__}  zlib {zlib.ZLIB_RUNTIME_VERSION}")
    buf = rep.workload()
    ok, msg = workload.check_size(buf, cfg.tasks)
    rep.say(f"workload: {cfg.tasks * workload.EVENTS_PER_TASK:,} events, {cfg.tasks:,} tasks, seed {cfg.seed}")
    rep.say(f"workload: {msg}{'' if ok else '  <-- SIZE CHECK FAILED'}")
    rep.extra["workload"] = {"events": cfg.tasks * workload.EVENTS_PER_TASK, "tasks": cfg.tasks, "seed": cfg.seed,
                             "framed_bytes": len(buf), "expected_bytes": workload.expected_framed_size(cfg.tasks),
                             "size_ok": ok, "rust_bytes": workload.REFERENCE_FRAMED_BYTES}


def run(rep: Report) -> None:
    """The codec section: encode/decode against msgspec, pickle and the pure-Python twin,
    memory copies, CRC-32, then ratios, the Rust comparison and goals."""
    rep.unit = "MB"
    describe_run(rep)
    buf = rep.workload()
    codec_sections(rep, buf, rep.config)
    gc.collect()
    copy_crc_sections(rep, buf, split_records(buf), rep.config)
    summary(rep)
