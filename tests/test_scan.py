"""Scanning into numpy columns: same rows as decoding, filters, corruption, both walkers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import actionqueue as aq
from actionqueue import scan, wal
from actionqueue.log import _walk_py as _wal_py

from aq_testlib import VECTORS_DIR

WALKERS = [pytest.param(_wal_py, id="python")]
try:
    from actionqueue.log import _walk as _wal

    WALKERS.append(pytest.param(_wal, id="cython"))
except ImportError:  # pragma: no cover
    pass

ALL_VARIANTS = VECTORS_DIR / "events" / "all_variants.wal"
needs_vectors = pytest.mark.skipif(not ALL_VARIANTS.is_file(), reason="golden vectors not found")


def expected_rows(events, offsets):
    rows = []
    for event, off in zip(events, offsets):
        inner = event.event
        time = inner.timestamp if hasattr(inner, "timestamp") else inner.run_instance.created_at
        rows.append((off, event.sequence, event.kind, time))
    return rows


def record_offsets(buf: bytes) -> list[int]:
    out, pos = [], 0
    while pos < len(buf):
        out.append(pos)
        pos += 12 + int.from_bytes(buf[pos + 4 : pos + 8], "little")
    return out


@needs_vectors
@pytest.mark.parametrize("walker", WALKERS)
def test_columns_match_decoded_events(walker) -> None:
    buf = ALL_VARIANTS.read_bytes()
    events = aq.decode_batch(buf)
    (offset, length, sequence, kind, time), end, reason, last = walker.scan_columns(buf)
    assert (end, reason, last) == (len(buf), 0, events[-1].sequence)
    got = list(zip(offset.tolist(), sequence.tolist(), kind.tolist(), time.tolist()))
    assert got == expected_rows(events, record_offsets(buf))
    assert length.tolist() == [int.from_bytes(buf[o + 4 : o + 8], "little") for o in offset.tolist()]
    assert offset.dtype == np.uint64 and length.dtype == np.uint32 and kind.dtype == np.uint8


@needs_vectors
@pytest.mark.parametrize("walker", WALKERS)
def test_filters_by_kind_and_sequence(walker) -> None:
    buf = ALL_VARIANTS.read_bytes()
    events = aq.decode_batch(buf)
    mask = scan.kind_mask([aq.RunStateChanged, "LeaseAcquired", 0])
    (offset, _, sequence, kind, _), _, _, _ = walker.scan_columns(buf, 0, None, mask, 50, 300)
    want = [e.sequence for e in events if e.kind in (2, 7, 0) and 50 <= e.sequence <= 300]
    assert sequence.tolist() == want and set(kind.tolist()) <= {0, 2, 7}
    assert [e.sequence for e in walker.decode_at(buf, offset)] == want


@pytest.mark.parametrize("walker", WALKERS)
def test_scan_stops_at_the_first_bad_record(walker) -> None:
    events = [aq.WalEvent(i, aq.EnginePaused(i)) for i in range(1, 6)]
    buf = bytearray(aq.encode_batch(events))
    offsets = record_offsets(bytes(buf))
    buf[offsets[3] + 13] ^= 0xFF
    (_, _, sequence, _, _), end, reason, last = walker.scan_columns(bytes(buf))
    assert sequence.tolist() == [1, 2, 3] and end == offsets[3] and reason == 5 and last == 3


def test_scanner_on_a_data_dir_across_segments(tmp_path) -> None:
    events = [aq.WalEvent(i, aq.LeaseHeartbeat(aq.RunId.new(), "w", i + 1, i)) for i in range(1, 400)]
    with aq.WalWriter(tmp_path, segment_bytes=4096) as writer:
        writer.append_many(events[:200])
        for event in events[200:]:
            writer.append(event)
    cols = scan.scan(tmp_path)
    assert cols.sequence.tolist() == list(range(1, 400)) and len(cols.files) == 3
    assert cols.to_dict()["time"].tolist() == list(range(1, 400))
    late = scan.scan(tmp_path, min_sequence=390)
    assert late.sequence.tolist() == list(range(390, 400)) and len(late.files) <= 2
    first_file = cols.files[0]
    with scan.SegmentScanner(first_file) as scanner:
        assert scanner.sealed
        picked = scanner.columns(min_sequence=3, max_sequence=4)
        assert scanner.events(picked.offset) == events[2:4]


def test_scanner_raises_the_writer_s_corruption(tmp_path) -> None:
    with aq.WalWriter(tmp_path, layout="rust") as writer:
        for i in range(1, 10):
            writer.append(aq.WalEvent(i, aq.EnginePaused(i)))
        path = writer.path
    path.write_bytes(path.read_bytes() + b"\x05\x00")
    with scan.SegmentScanner(path) as scanner:
        assert not scanner.sealed  # a file a writer may truncate is read, not mapped
        with pytest.raises(wal.TornTail) as info:
            scanner.columns()
        assert info.value.offset == path.stat().st_size - 2
        assert len(scanner.columns(strict=False)) == 9


def test_kind_mask_rejects_unknown_kinds() -> None:
    assert scan.kind_mask(None) == 0xFFFFFFFFFFFFFFFF
    assert scan.kind_mask([aq.EngineResumed]) == 1 << 12
    with pytest.raises(ValueError):
        scan.kind_mask(["NoSuchEvent"])
    with pytest.raises(ValueError):
        scan.kind_mask([31])


@needs_vectors
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_skim_never_accepts_less_than_decode(data) -> None:
    """Where decoding succeeds, the scan's structural skim reads the same sequence, kind
    and time; where the skim rejects, decoding rejects too."""
    if len(WALKERS) < 2:
        pytest.skip("the native walker is not built")
    from actionqueue.codec import _codec
    from actionqueue.log import _walk as _wal

    buf = ALL_VARIANTS.read_bytes()
    offsets = record_offsets(buf)
    i = data.draw(st.integers(0, len(offsets) - 1))
    start = offsets[i]
    length = int.from_bytes(buf[start + 4 : start + 8], "little")
    payload = bytearray(buf[start + 12 : start + 12 + length])
    for _ in range(data.draw(st.integers(1, 4))):
        j = data.draw(st.integers(0, len(payload) - 1))
        payload[j] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        payload = payload[: data.draw(st.integers(1, len(payload)))]
    record = _frame(bytes(payload))
    try:
        event = _codec.decode(record)
    except aq.DecodeError:
        event = None
    (_, _, sequence, kind, time), _, reason, _ = _wal.scan_columns(record)
    if event is not None:
        assert reason == 0
        assert (sequence.tolist(), kind.tolist(), time.tolist()) == (
            [event.sequence],
            [event.kind],
            [expected_rows([event], [0])[0][3]],
        )
    if reason:
        assert event is None


def _frame(payload: bytes) -> bytes:
    import struct

    return struct.pack("<III", 5, len(payload), aq.crc32(payload)) + payload
