"""WAL benchmark in one process: scanner, reading back, appends, against the Rust figures.

Run:  actionqueue bench --section wal   (or python benchmarks/wal_compare.py [--tasks N] [--repeat R] ...)

What is timed (median of --repeat samples; ``gc.collect()`` before and gc disabled inside
each sample; results are freed after the clock stops; temp data dirs live under --dir,
default the system temp dir, and are removed at the end):

* scanner, reference workload (``workload.py``: 999,998 events, 54,059,988 bytes):
  ``actionqueue.log._walk.scan_columns`` over the WAL bytes in memory, and
  ``SegmentScanner(path).columns()`` (open + mmap + scan + close) over a *sealed* segment
  holding the workload, written through ``WalWriter`` (page cache warm). Every record's
  framing, CRC-32, payload structure and sequence order are checked. Beside them: the
  framing+CRC walk alone (``_wal.scan_frames``), ``aq.crc32``/``zlib.crc32`` and a numpy
  copy of the same bytes, and ``verify()`` (seal check: xxh3-128 of the sealed segment).
* scanner, ~1 KiB records: a 1 GiB segment of ``LedgerEntryAppended`` events with
  1000-byte payloads (generated once through ``WalWriter`` and cached next to the
  workload cache, see ``workload.cache_dir()``); the same rows, so the scanner's GB/s can
  be read against what a memory copy and a CRC-32 reach on this machine today.
* reading back as objects: ``list(WalReader(data_dir))`` over the reference data dir
  (page cache warm) against Rust's ``WalFsReader``, and ``aq.decode_batch`` of the same
  bytes (no I/O) for reference.
* appends, each sample into a fresh data dir (opening and closing are not timed):
  ``Durability.FSYNC`` one ``append`` at a time (first 2,000 workload events, as Rust's
  measurement v); ``Durability.GROUP`` from 1, 4 and 16 threads (see below);
  ``Durability.NONE`` per-event ``append`` and ``append_many`` of the first 200,000
  events (Rust v-b: unflushed append, one ``write`` per event).

Group commit from threads: each thread calls ``WalWriter.append_next(event)``, which
assigns the next sequence and writes under the writer's lock and waits for the shared
fsync outside it. ``os.fsync`` is wrapped by a counter during the append section to show
how many appends each fsync covered.

Rates are events (or appends) per second; GB = 10^9 B.
"""

from __future__ import annotations

import gc
import os
import platform
import shutil
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np

import actionqueue as aq
from actionqueue import _backend, segments
from actionqueue.scan import SegmentScanner
from actionqueue.wal import (
    Durability,
    Layout,
    WalReader,
    WalWriter,
    verify,
)

from . import workload
from .harness import Report, sample

if _backend.NATIVE:
    from actionqueue.log import _walk as _wal
else:  # ACTIONQUEUE_PUREPYTHON=1: the same rows, measured on the pure-Python walker
    from actionqueue.log import _walk_py as _wal  # type: ignore[no-redef]

# Rust ActionQueue 0.1.2 rebuilt and run beside our bench on this machine kind
# (rust-reference-bench.md, "Same machine kind, 2026-12-02")
RUST = {
    "tail_validation_eps": 7.7e6,  # ii-b validate_tail_strict over the in-memory buffer
    "reader_eps": 1.40e6,  # iii WalFsReader::read_next, page cache warm
    "fsync_append_aps": 4780.0,  # v append + sync_all per event
    "append_aps": 1.55e6,  # v-b append without flush
    "crc_gbps": 7.70,
    "memcpy_gbps": 10.4,
}

#: Bump when the 1 KiB generator changes what it writes (invalidates the cached dir).
KIB_VERSION = 1
KIB_TARGET = 1 << 30
KIB_PAYLOAD = 1000
KIB_TEMPLATES = 256
KIB_CHUNK = 65_536


# --------------------------------------------------------------------------------------
# data dirs
# --------------------------------------------------------------------------------------
def sealed_segment(data_dir: Path) -> Path:
    """The first segment of a data dir, which must be sealed."""
    segs = segments.list_segments(data_dir / "wal")
    if not segs or segs[0].read_seal() is None:
        raise RuntimeError(f"{data_dir}: no sealed first segment")
    return segs[0].path


def write_sealed(data_dir: Path, chunks, extra_event) -> None:
    """Write ``chunks`` (lists of events) into one segment of a new data dir, then seal it
    through the public API: reopen with a 1-byte rotation size and append ``extra_event``
    (a writer seals the active segment when the next append would exceed ``segment_bytes``)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with WalWriter(data_dir, durability=Durability.NONE, layout=Layout.SEGMENTED, segment_bytes=1 << 62) as w:
        for chunk in chunks:
            w.append_many(chunk)
    with WalWriter(data_dir, durability=Durability.NONE, segment_bytes=1) as w:
        w.append(extra_event)


def build_reference_dir(root: Path, buf: bytes) -> Path:
    """The reference workload as a sealed segment (+ a one-record active segment)."""
    d = root / "reference"
    events = aq.decode_batch(buf)
    last = events[-1]
    write_sealed(d, [events], aq.WalEvent(last.sequence + 1, last.event))
    del events
    return d


def _kib_events(rng):
    """The 1 KiB record templates: LedgerEntryAppended with 1000-byte random payloads."""
    out = []
    for i in range(KIB_TEMPLATES):
        out.append(aq.LedgerEntryAppended(
            aq.LedgerEntryId(workload._uuid4(rng)), aq.TenantId(workload._uuid4(rng)), f"ledger-{i:03d}",
            aq.ActorId(workload._uuid4(rng)) if i % 2 else None, rng.randbytes(KIB_PAYLOAD),
            workload.BASE_TS + i,
        ))
    return out


def kib_dir(say, target: int = KIB_TARGET, root: Path | None = None) -> tuple[Path, int]:
    """The data dir of ~1 KiB records (``target`` bytes; 1 GiB by default, built once,
    ~10-20 s, and cached next to the workload cache unless ``root`` is given). Returns the
    dir and the number of records in its sealed segment."""
    import random

    root = workload.cache_dir() if root is None else root
    d = root / f"wal-1k-v{KIB_VERSION}-{target >> 20}MiB"
    try:
        seal = segments.Segment(sealed_segment(d), 1).read_seal()
        if seal is not None and seal.length >= target and sealed_segment(d).stat().st_size == seal.length:
            return d, seal.records
    except (RuntimeError, OSError, ValueError):
        pass
    say(f"building the {target >> 20} MiB WAL of ~1 KiB records in {d} (once) ...")
    t0 = time.perf_counter()
    rng = random.Random(workload.DEFAULT_SEED + 1)
    templates = _kib_events(rng)
    rec = len(aq.encode(aq.WalEvent(1_000_000, templates[0])))
    n = -(-target // rec)  # sequences stay 3-byte varints up to 2^21
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=d.name + ".tmp"))
    try:
        def chunks():
            WalEvent = aq.WalEvent
            for start in range(1, n + 1, KIB_CHUNK):
                stop = min(n + 1, start + KIB_CHUNK)
                yield [WalEvent(s, templates[s % KIB_TEMPLATES]) for s in range(start, stop)]

        write_sealed(tmp, chunks(), aq.WalEvent(n + 1, templates[0]))
        if d.exists():  # a stale or broken copy (an older generator): replace it
            shutil.rmtree(d)
        os.replace(tmp, d)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"  built in {time.perf_counter() - t0:.1f} s")
    return d, n


# --------------------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------------------
def scanner_rows(rep, tag, data, seg_path, n, R, *, with_copy=True):
    """Scanner and memory-speed rows over ``data`` (the bytes of ``seg_path``)."""
    size = len(data)
    cols = _wal.scan_columns(data)
    assert cols[2] == 0 and cols[1] == size and len(cols[0][0]) == n, (cols[1:], size, n)
    del cols
    rep.row("scan", "_walk.scan_columns(bytes) in memory", n, *sample(lambda: _wal.scan_columns(data), R), size, key=f"scan.{tag}.mem")

    def seg_scan():
        with SegmentScanner(seg_path) as s:
            assert s.sealed
            return s.columns()

    assert len(seg_scan()) == n
    rep.row("scan", "SegmentScanner(sealed seg).columns() (mmap)", n, *sample(seg_scan, R), size, key=f"scan.{tag}.seg")
    rep.row("scan", "_walk.scan_frames(bytes) (framing + CRC only)", n, *sample(lambda: _wal.scan_frames(data), R), size,
            key=f"scan.{tag}.frames")
    rep.row("mem", "aq.crc32(bytes)", n, *sample(lambda: aq.crc32(data), R), size, key=f"crc.{tag}.aq")
    rep.row("mem", "zlib.crc32(bytes)", n, *sample(lambda: zlib.crc32(data), R), size, key=f"crc.{tag}.zlib")
    if with_copy:
        src = np.frombuffer(data, dtype=np.uint8)
        dst = np.empty_like(src)
        np.copyto(dst, src)  # fault the destination in
        rep.row("mem", "numpy copyto into a preallocated buffer", n, *sample(lambda: np.copyto(dst, src), R), size,
                key=f"copy.{tag}")
        del src, dst


def scanner_sections(rep, buf, ref_dir, args):
    R = args.repeat
    n = _wal.scan_frames(buf)[0].size
    seg = sealed_segment(ref_dir)
    assert seg.read_bytes() == buf
    rep.header(f"scanner, {rep.workload_label} ({n:,} events, {len(buf) / 1e6:.1f} MB; CRC-32 checked)")
    scanner_rows(rep, "ref", buf, seg, n, R)
    rep.row("scan", "verify(data dir) (seal: xxh3-128, no decode)", n, *sample(lambda: verify(ref_dir), R), len(buf),
            key="verify.ref")

    target = getattr(args, "kib_bytes", KIB_TARGET)
    d, kn = kib_dir(rep.say, target, None if target >= KIB_TARGET else rep.scratch())
    kseg = sealed_segment(d)
    t0 = time.perf_counter()
    with open(kseg, "rb") as f:
        data = f.read()
    rep.say(f"\n({len(data) >> 20} MiB segment read into memory in {time.perf_counter() - t0:.2f} s: {kseg})")
    rep.header(f"scanner, ~1 KiB records ({kn:,} x {len(data) / kn:.0f} B = {len(data) / 2**30:.2f} GiB; CRC-32 checked)")
    scanner_rows(rep, "kib", data, kseg, kn, R)
    rep.extra["kib"] = {"dir": str(d), "records": kn, "bytes": len(data)}
    del data
    gc.collect()


def read_section(rep, buf, ref_dir, args):
    R = args.repeat
    n = args.tasks * workload.EVENTS_PER_TASK
    rep.header("reading back as event objects (page cache warm)")
    got = list(WalReader(ref_dir))
    assert len(got) == n + 1 and got[:n] == aq.decode_batch(buf), "WalReader disagrees with decode_batch"
    del got
    rep.row("read", "list(WalReader(data_dir)) (sealed + 1-record segment)", n + 1, *sample(lambda: list(WalReader(ref_dir)), R),
            len(buf), key="read.walreader")
    seg = sealed_segment(ref_dir)
    rep.row("read", "list(WalReader(segment file))", n, *sample(lambda: list(WalReader(seg)), R), len(buf), key="read.walreader.file")
    rep.row("read", "aq.decode_batch(bytes) (no I/O)", n, *sample(lambda: aq.decode_batch(buf), R), len(buf), key="read.decode_batch")


class FsyncCounter:
    """Counts os.fsync calls (the writer calls os.fsync through the os module)."""

    def __init__(self):
        self.count = 0
        self._orig = os.fsync

    def __enter__(self):
        orig = self._orig

        def counted(fd):
            self.count += 1
            return orig(fd)

        os.fsync = counted
        return self

    def __exit__(self, *exc):
        os.fsync = self._orig


def append_section(rep, buf, root, args):
    R = args.repeat
    cols = _wal.scan_columns(buf)[0]
    n_many = min(args.append_events, len(cols[0]))
    n_fsync = min(args.fsync_events, n_many)
    end = int(cols[0][n_many]) if n_many < len(cols[0]) else len(buf)
    events = aq.decode_batch(buf[:end])
    del cols
    counter = [0]

    def fresh(durability):
        counter[0] += 1
        d = root / f"append-{counter[0]}"
        d.mkdir()
        return (WalWriter(d, durability=durability),)

    def done(state, _result):
        w = state[0]
        w.close()
        shutil.rmtree(w.data_dir)

    rep.header("appends (each sample into a fresh data dir; open/close not timed)")
    with FsyncCounter() as fc:
        head = events[:n_fsync]

        def one_by_one(w, evs=head, stats=None):
            app = w.append
            c0 = fc.count
            for e in evs:
                app(e)
            if stats is not None:
                stats["fsyncs"] += fc.count - c0

        st = {"fsyncs": 0}
        r = rep.row("append", f"FSYNC append x{n_fsync:,} (1 thread)", n_fsync,
                    *sample(lambda w: one_by_one(w, head, st), R, lambda: fresh(Durability.FSYNC), done), key="append.fsync")
        r["fsyncs_per_sample"] = st["fsyncs"] / R
        rep.say(f"  {'':50} {st['fsyncs'] / R:9,.0f} fsyncs/sample (the first append also creates the segment: +1 dir fsync)")

        for threads in (1, 4, 16):
            total = args.group_appends
            st = {"fsyncs": 0}

            def run(w, threads=threads, total=total, st=st):
                c0 = fc.count
                group_commit(w, events, total, threads, st)
                st["fsyncs"] += fc.count - c0

            r = rep.row("append", f"GROUP append x{total:,} from {threads} thread{'s' if threads > 1 else ''}", total,
                        *sample(run, R, lambda: fresh(Durability.GROUP), done), key=f"append.group.{threads}",
                        note="incl. thread start/join")
            r["fsyncs_per_sample"] = st["fsyncs"] / R
            r["appends_per_fsync"] = total * R / max(st["fsyncs"], 1)
            rep.say(f"  {'':50} {st['fsyncs'] / R:9,.0f} fsyncs/sample = {r['appends_per_fsync']:.1f} appends per fsync")

        rep.row("append", f"NONE append x{n_many:,} (per event)", n_many,
                *sample(lambda w: one_by_one(w, events), R, lambda: fresh(Durability.NONE), done), end, key="append.none.per")
        rep.row("append", f"NONE append_many({n_many:,})", n_many,
                *sample(lambda w: w.append_many(events), R, lambda: fresh(Durability.NONE), done), end, key="append.none.many")
        batches = [events[i:i + 1000] for i in range(0, n_many, 1000)]

        def many_batches(w):
            app = w.append_many
            for b in batches:
                app(b)

        rep.row("append", f"NONE append_many x{len(batches)} batches of 1,000", n_many,
                *sample(many_batches, R, lambda: fresh(Durability.NONE), done), end, key="append.none.batch1000")
    rep.row("append", f"aq.encode_batch({n_many:,}) (encode floor)", n_many, *sample(lambda: aq.encode_batch(events), R), end,
            key="append.encode_floor")


def group_commit(writer, events, total, threads, stats):
    """``total`` appends from ``threads`` threads with Durability.GROUP.

    Each thread hands its event body to ``WalWriter.append_next``, which assigns the
    sequence under the writer's lock and waits for the shared fsync outside it.
    """
    lock = threading.Lock()
    state = {"i": 0}
    go = threading.Event()
    nev = len(events)
    errors = []
    append_next = writer.append_next

    def worker():
        go.wait()
        try:
            while True:
                with lock:
                    i = state["i"]
                    if i >= total:
                        return
                    state["i"] = i + 1
                append_next(events[i % nev].event)
        except BaseException as exc:  # noqa: BLE001 - re-raised by the main thread
            errors.append(exc)

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    go.set()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]
    assert writer.current_sequence >= total


# --------------------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------------------
def summary(rep):
    """Ratios within the run and against the Rust figures, PASS/MISS goals (rows that were
    not measured are left out)."""
    eps = rep.eps
    gbs = rep.gbs
    ratios = {}

    def ratio(label, v):
        v = rep.ratio(label, v)
        if v == v:
            ratios[label] = v

    rep.say("\n## ratios (same run)")
    ratio("scan_columns in memory / Rust tail validation (events/s)", eps("scan.ref.mem") / RUST["tail_validation_eps"])
    ratio("SegmentScanner / Rust tail validation (events/s)", eps("scan.ref.seg") / RUST["tail_validation_eps"])
    ratio("scan_columns / decode_batch, reference (events/s)", eps("scan.ref.mem") / eps("read.decode_batch"))
    for tag, what in (("ref", "reference"), ("kib", "1 KiB records")):
        ratio(f"scan_columns GB/s / memcpy GB/s, {what}", gbs(f"scan.{tag}.mem") / gbs(f"copy.{tag}"))
        ratio(f"SegmentScanner GB/s / memcpy GB/s, {what}", gbs(f"scan.{tag}.seg") / gbs(f"copy.{tag}"))
        ratio(f"scan_columns GB/s / aq.crc32 GB/s, {what}", gbs(f"scan.{tag}.mem") / gbs(f"crc.{tag}.aq"))
    ratio("WalReader / Rust WalFsReader (events/s)", eps("read.walreader") / RUST["reader_eps"])
    ratio("WalReader / decode_batch (events/s)", eps("read.walreader") / eps("read.decode_batch"))
    ratio("FSYNC append / Rust append+sync_all", eps("append.fsync") / RUST["fsync_append_aps"])
    for t in (1, 4, 16):
        ratio(f"GROUP {t} thread(s) / FSYNC append (appends/s)", eps(f"append.group.{t}") / eps("append.fsync"))
    ratio("NONE append (per event) / Rust unflushed append", eps("append.none.per") / RUST["append_aps"])
    ratio("NONE append_many / Rust unflushed append", eps("append.none.many") / RUST["append_aps"])
    memcpy = gbs("copy.kib")
    ratio("machine factor: memcpy here (the ~1 KiB records' segment) / Rust run's 10.4 GB/s",
          memcpy / RUST["memcpy_gbps"])

    goals = {}

    def goal(label, ok, detail, *rows):
        if any(rep.get(k) is None for k in rows):
            return
        rep.goal(label, ok, detail)
        goals[label] = rep.goals[label]

    rep.say("\n## goals")
    target = 3 * RUST["tail_validation_eps"]
    for key, what in (("scan.ref.mem", "scan_columns"), ("scan.ref.seg", "SegmentScanner")):
        v = eps(key)
        goal(f"{what} >= 3x Rust tail validation", v >= target, f"{v / 1e6:.2f} vs {target / 1e6:.2f} M ev/s", key)
    for key, what in (("scan.kib.mem", "scan_columns"), ("scan.kib.seg", "SegmentScanner")):
        v, m = gbs(key), gbs("copy.kib")
        goal(f"{what} 1 KiB records >= 0.5x memcpy", v >= 0.5 * m, f"{v:.2f} vs {0.5 * m:.2f} GB/s (memcpy {m:.2f})", key, "copy.kib")
    v = eps("read.walreader")
    goal("WalReader >= 2x Rust WalFsReader", v >= 2 * RUST["reader_eps"], f"{v / 1e6:.2f} vs {2 * RUST['reader_eps'] / 1e6:.2f} M ev/s",
         "read.walreader")
    v, f = eps("append.group.16"), eps("append.fsync")
    goal("GROUP 16 threads >= 10x FSYNC per append", v >= 10 * f, f"{v:,.0f} vs {10 * f:,.0f} appends/s ({v / f:.1f}x)",
         "append.group.16", "append.fsync")
    v = eps("append.none.many")
    goal("NONE append_many >= Rust unflushed append", v >= RUST["append_aps"], f"{v / 1e3:,.0f}k vs {RUST['append_aps'] / 1e3:,.0f}k ev/s",
         "append.none.many")
    rep.extra.setdefault("wal", {})["ratios"] = ratios
    rep.extra["wal"]["goals"] = goals


def run(rep: Report) -> None:
    """The WAL section: scanner (reference workload and ~1 KiB records), reading back as
    objects, appends by durability mode, then ratios and goals. Temporary data dirs live in
    the report's scratch dir."""
    rep.unit = "GB"
    cfg = rep.config
    if aq.backend != "cython":
        rep.say(f"WARNING: actionqueue backend is {aq.backend!r}, not the native codec")
    rep.say(f"# actionqueue WAL  python {platform.python_version()} {platform.machine()}  cpus={os.cpu_count()}"
            f"  backend {aq.backend}  numpy {np.__version__}  zlib {zlib.ZLIB_RUNTIME_VERSION}")
    buf = rep.workload()
    ok, msg = workload.check_size(buf, cfg.tasks)
    rep.say(f"workload: {cfg.tasks * workload.EVENTS_PER_TASK:,} events, {cfg.tasks:,} tasks; {msg}")
    root = rep.scratch() / "wal"
    root.mkdir(exist_ok=True)
    try:
        t0 = time.perf_counter()
        ref_dir = build_reference_dir(root, buf)
        gc.collect()
        rep.say(f"the {cfg.tasks * workload.EVENTS_PER_TASK:,}-event data dir written and sealed through WalWriter in "
                f"{time.perf_counter() - t0:.1f} s")
        scanner_sections(rep, buf, ref_dir, cfg)
        read_section(rep, buf, ref_dir, cfg)
        gc.collect()
        append_section(rep, buf, root, cfg)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    summary(rep)
