"""Exhaustive damage sweeps of a WAL file (reliability.md techniques 1-3 and 7).

* Truncation: a log of 20 varied records (sequence gaps included) cut at *every* byte
  offset; and, over the last records, the cut-off part replaced by zeros (a preallocated
  tail) or by garbage (a torn sector) instead of removed.
* Bit flips: every bit of a 4-record log flipped, one at a time.

Every outcome must be one of: a clean open; a torn tail that TRUNCATE_PARTIAL repairs to
exactly the end of the last whole record before the damage (and appends after the
repair survive the next open); or a typed WalCorruption (STRICT; MidLogCorruption under
every policy when valid records follow the damage, decisions.md #6, which must leave
the file untouched). Never a crash, a hang, or an event that differs from the one
written: what the reader yields is compared with the original events' prefix. The
native and pure-Python walkers must agree on every damaged buffer.
"""

from __future__ import annotations

import faulthandler
import random
from pathlib import Path

import pytest
from wal_testlib import HAS_LAYOUT, make_event

import actionqueue as aq
from actionqueue import wal
from actionqueue.log import _walk_py as _wal_py

try:
    from actionqueue.log import _walk as _wal_native
except ImportError:  # pragma: no cover - pure-Python install
    _wal_native = None

STRICT = wal.RepairPolicy.STRICT
TRUNCATE = wal.RepairPolicy.TRUNCATE_PARTIAL
# single-file layouts: the sweep damages the one file the writer appends to
SWEEP_LAYOUTS = [pytest.param({"layout": "rust"}, id="rust"), pytest.param({"layout": "segmented"}, id="segmented")] \
    if HAS_LAYOUT else [pytest.param({}, id="default")]


@pytest.fixture(autouse=True)
def hang_guard():
    """A hang (e.g. a walker looping on a damaged length) aborts with a traceback."""
    faulthandler.dump_traceback_later(240, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


_MANIFESTS: dict = {}  # data dir -> the MANIFEST build_log's writer left


def build_log(data_dir: Path, kw: dict, evs: list) -> tuple[Path, bytes, list[int]]:
    """Write ``evs`` through the writer; return the file, its bytes and record starts."""
    data_dir.mkdir(exist_ok=True)
    with wal.WalWriter(data_dir, **kw) as w:
        w.append(evs[0])
        w.append_many(evs[1:4])
        for e in evs[4:]:
            w.append(e)
        path = w.path
    # the damage below stands for what a crash leaves, and a crash leaves no checkpoint
    # of a clean close (one that covers the bytes cut is evidence of a loss: refused)
    (data_dir / "wal" / wal.CHECKPOINT_NAME).unlink(missing_ok=True)
    manifest = data_dir / "wal" / wal.MANIFEST_NAME
    _MANIFESTS[data_dir] = manifest.read_bytes() if manifest.exists() else None
    data = path.read_bytes()
    starts = [0]
    for e in evs:
        starts.append(starts[-1] + len(aq.encode(e)))
    assert starts[-1] == len(data)
    return path, data, starts


def twenty_events() -> list:
    """20 events of varied kinds and sizes (15 .. ~900 bytes) with sequence gaps, the first
    one too (a segment repaired down to nothing then receives sequence 1)."""
    out = []
    seq = 45
    rng = random.Random(20)
    while len(out) < 20:
        e = make_event(seq, salt=3)
        if len(aq.encode(e)) <= 900:
            out.append(e)
        seq += 1 if rng.random() < 0.8 else rng.randrange(2, 50)
    return out


def same_walk(buf: bytes) -> None:
    """The two walkers agree (end, count, last sequence, reason) and on the resync point."""
    if _wal_native is None:
        return
    a = _wal_native.walk(buf)[:4]
    b = _wal_py.walk(buf)[:4]
    assert a == b, (a, b)
    if a[3]:
        assert _wal_native.find_valid_record(buf, a[0] + 1) == _wal_py.find_valid_record(buf, a[0] + 1)


def read_prefix(data_dir, evs):
    """Read the log: the events before the first problem, and the problem (or None)."""
    got = []
    try:
        for e in wal.WalReader(data_dir):
            got.append(e)  # noqa: PERF402 - keep what was yielded before an exception
    except wal.WalCorruption as exc:
        problem = exc
    else:
        problem = None
    assert got == evs[: len(got)], "the reader yielded an event that differs from the one written"
    return got, problem


def check_damaged(data_dir: Path, path: Path, damaged: bytes, evs: list, starts: list[int], k: int,
                  mid_log: bool, kw: dict, what: str) -> str:
    """The log file ``path`` holds ``damaged``: records before index ``k`` are intact, record
    ``k`` (if any) is the first damaged one; ``mid_log``: valid records follow it."""
    for leftover in path.parent.iterdir():  # a repair may have renamed or added files
        leftover.unlink()
    if _MANIFESTS.get(data_dir) is not None:  # the log's list of files, as the writer left it
        (path.parent / wal.MANIFEST_NAME).write_bytes(_MANIFESTS[data_dir])
    path.write_bytes(damaged)
    same_walk(damaged)
    end = starts[k]
    # the classifier, as validate_file sees it
    report = wal.validate_file(path)
    assert report.records == k and report.end_offset == end, what
    assert report.last_sequence == (evs[k - 1].sequence if k else None), what
    if report.clean:
        assert end == len(damaged), what
        outcome = "clean"
    else:
        c = report.corruption
        assert c.offset == end and c.records_before == k, (what, c)
        if mid_log:
            assert isinstance(c, wal.MidLogCorruption), (what, c)
            outcome = "mid-log"
        else:
            assert isinstance(c, wal.TornTail), (what, c)
            assert c.file_length == len(damaged) and c.bytes_to_cut == len(damaged) - end, what
            outcome = "torn"
    # the reader: the intact prefix, then the same verdict
    got, problem = read_prefix(path.parent.parent, evs)
    assert len(got) == k, what
    assert (problem is None) == report.clean, (what, problem)
    if problem is not None:
        assert type(problem) is type(report.corruption) and problem.offset == end, (what, problem)
    # STRICT refuses anything but a clean file
    if outcome == "clean":
        with wal.WalWriter(data_dir, repair_policy=STRICT, **kw) as w:
            assert w.current_sequence == (evs[k - 1].sequence if k else 0)
        return outcome
    with pytest.raises(type(report.corruption)) as info:
        wal.WalWriter(data_dir, repair_policy=STRICT, **kw)
    assert info.value.offset == end
    assert path.read_bytes() == damaged, f"{what}: a refused open changed the file"
    if outcome == "mid-log":
        with pytest.raises(wal.MidLogCorruption):
            wal.WalWriter(data_dir, repair_policy=TRUNCATE, **kw)
        assert path.read_bytes() == damaged, f"{what}: TRUNCATE_PARTIAL cut valid records"
        return outcome
    # TRUNCATE_PARTIAL repairs to the end of the last whole record, appends go on
    with wal.WalWriter(data_dir, repair_policy=TRUNCATE, durability=wal.Durability.NONE, **kw) as w:
        assert w.repaired is not None and w.repaired.offset == end, what
        assert w.size == end and path.stat().st_size == end, what
        assert w.current_sequence == (evs[k - 1].sequence if k else 0), what
        new = aq.WalEvent(w.current_sequence + 1, aq.EnginePaused(7))
        w.append(new)
    got, problem = read_prefix(data_dir, evs[:k] + [new])
    assert problem is None and got == evs[:k] + [new], what
    with wal.WalWriter(data_dir, repair_policy=STRICT, **kw) as w:
        assert w.repaired is None and w.current_sequence == new.sequence
    return outcome


def _truncate_at(tmp_path, kw, cuts_of) -> tuple[dict[str, int], int]:
    """Cut the log at each offset ``cuts_of(data, starts)`` gives: how many cuts had each
    outcome, and the log's length."""
    evs = twenty_events()
    data_dir = tmp_path / "data"
    path, data, starts = build_log(data_dir, kw, evs)
    outcomes: dict[str, int] = {}
    for cut in cuts_of(data, starts):
        k = max(i for i, s in enumerate(starts) if s <= cut)  # whole records before the cut
        outcome = check_damaged(data_dir, path, data[:cut], evs, starts, k, False, kw, f"cut at {cut}")
        assert outcome == ("clean" if cut in starts else "torn"), cut
        if outcome == "torn":
            reason = wal.validate_buffer(data[:cut]).corruption.reason
            assert reason == ("incomplete_header" if cut - starts[k] < 12 else "incomplete_payload"), cut
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes, len(data)


@pytest.mark.slow
@pytest.mark.parametrize("kw", SWEEP_LAYOUTS)
def test_truncate_at_every_offset(tmp_path, kw) -> None:
    outcomes, size = _truncate_at(tmp_path, kw, lambda data, starts: range(len(data) + 1))
    assert outcomes == {"clean": 21, "torn": size + 1 - 21}


@pytest.mark.parametrize("kw", SWEEP_LAYOUTS)
def test_truncate_at_every_kind_of_offset(tmp_path, kw) -> None:
    """The sweep above cut to the offsets where the verdict can change (the default run):
    at, just before and just after every record start, every header boundary, and a seeded
    sample of payload offsets."""
    seed = 20261207
    print(f"seed {seed}")

    def cuts(data: bytes, starts: list[int]) -> list[int]:
        rng = random.Random(seed)
        edges = {s + d for s in starts for d in (-1, 0, 1, 11, 12, 13)}
        edges |= set(rng.sample(range(len(data) + 1), 60))
        return sorted(c for c in edges if 0 <= c <= len(data))

    outcomes, _size = _truncate_at(tmp_path, kw, cuts)
    assert outcomes["clean"] == 21 and outcomes["torn"] > 100


@pytest.mark.parametrize("fill", ["zeros", "garbage"])
@pytest.mark.parametrize("kw", SWEEP_LAYOUTS)
def test_torn_tail_overwritten(tmp_path, kw, fill) -> None:
    """From every offset in the last three records to the end of the file, the bytes are
    zeros (a preallocated block never written) or garbage (a torn sector): a torn tail,
    repaired to the end of the last whole record (etcd TestRepairWriteTearLast)."""
    evs = twenty_events()
    data_dir = tmp_path / "data"
    path, data, starts = build_log(data_dir, kw, evs)
    rng = random.Random(5)
    for cut in range(starts[-4], len(data)):
        rest = len(data) - cut
        tail = bytes(rest) if fill == "zeros" else rng.randbytes(rest)
        damaged = data[:cut] + tail
        if damaged == data:
            continue
        k = next(i for i in range(len(evs)) if damaged[starts[i]:starts[i + 1]] != data[starts[i]:starts[i + 1]])
        check_damaged(data_dir, path, damaged, evs, starts, k, False, kw, f"{fill} from {cut}")


@pytest.mark.parametrize("every", [pytest.param(1, marks=pytest.mark.slow), 7], ids=["every-byte", "every-7th-byte"])
@pytest.mark.parametrize("kw", SWEEP_LAYOUTS)
def test_flip_every_bit(tmp_path, kw, every) -> None:
    """Every bit of every byte flipped, one at a time (the default run: every bit of every
    7th byte, which still reaches every field of every record)."""
    evs = [
        aq.WalEvent(1, aq.EnginePaused(1_700_000_000)),
        aq.WalEvent(2, aq.LeaseAcquired(aq.RunId.nil(), "worker-1", 1_700_000_030, 1_700_000_000)),
        aq.WalEvent(5, aq.RunStateChanged(aq.RunId.nil(), aq.RunState.READY, aq.RunState.LEASED, 1_700_000_001)),
        aq.WalEvent(6, aq.EngineResumed(1_700_000_002)),
    ]
    data_dir = tmp_path / "data"
    path, data, starts = build_log(data_dir, kw, evs)
    outcomes = {}
    for byte in range(0, len(data), every):
        k = max(i for i, s in enumerate(starts) if s <= byte)
        for bit in range(8):
            damaged = bytearray(data)
            damaged[byte] ^= 1 << bit
            outcome = check_damaged(data_dir, path, bytes(damaged), evs, starts, k, k < len(evs) - 1, kw,
                                    f"flip of bit {bit} of byte {byte} (record {k})")
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    # every flip is detected: none decodes silently into a different event
    assert "clean" not in outcomes
    # a flip in the last record is a torn tail (nothing after it vouches for it)
    assert outcomes["torn"] == 8 * sum(1 for byte in range(0, len(data), every) if byte >= starts[-2])


def test_walkers_agree_on_random_damage() -> None:
    """Differential check on many randomly damaged copies (several bytes changed, cut,
    spliced): the native and pure-Python walkers reach the same verdict."""
    if _wal_native is None:
        pytest.skip("native walker not built")
    evs = twenty_events()
    data = aq.encode_batch(evs)
    rng = random.Random(9)
    for _ in range(3000):
        d = bytearray(data)
        for _ in range(rng.randrange(1, 4)):
            op = rng.random()
            if op < 0.5:
                d[rng.randrange(len(d))] = rng.randrange(256)
            elif op < 0.7:
                del d[rng.randrange(len(d)):]
            else:
                i = rng.randrange(len(d))
                j = rng.randrange(len(d))
                d[i:i] = data[j:j + rng.randrange(1, 40)]
            if not d:
                break
        same_walk(bytes(d))
