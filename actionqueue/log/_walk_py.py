"""Pure-Python record walker (twin of ``_wal.pyx``); see ``_wal_common`` for the order."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from ..codec import _codec_py
from ..codec._codec_common import HEADER, HEADER_LEN, VERSION
from ._walk_common import (
    DEFAULT_MAX_PAYLOAD,
    R_CRC_MISMATCH,
    R_DECODE_FAILURE,
    R_INCOMPLETE_HEADER,
    R_INCOMPLETE_PAYLOAD,
    R_OK,
    R_SEQUENCE_NOT_INCREASING,
    R_UNSUPPORTED_VERSION,
)
from ..errors import DecodeError


def _classify_frame(data: memoryview, pos: int, max_payload: int) -> tuple[int, int]:
    avail = len(data) - pos
    if avail < HEADER_LEN:
        return R_INCOMPLETE_HEADER, 0
    version, length, crc = HEADER.unpack_from(data, pos)
    if length > avail - HEADER_LEN:
        return R_INCOMPLETE_PAYLOAD, length
    if version != VERSION:
        return R_UNSUPPORTED_VERSION, length
    if length == 0 or length > max_payload:
        return R_DECODE_FAILURE, length
    if zlib.crc32(data[pos + HEADER_LEN : pos + HEADER_LEN + length]) & 0xFFFFFFFF != crc:
        return R_CRC_MISMATCH, length
    return R_OK, length


def walk(
    buf: Any,
    start: int = 0,
    prev_sequence: int | None = None,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
    collect: bool = False,
    max_records: int = -1,
    collect_from: int = 0,
    trusted: bool = False,
) -> tuple:
    """See ``_wal.walk`` (every record is checked and decoded here, trusted or not)."""
    with memoryview(buf) as view:
        data = view.cast("B") if view.format != "B" else view
        if not 0 <= start <= len(data):
            raise ValueError("start is outside the buffer")
        pos, count, last = start, 0, prev_sequence
        reason, detail = R_OK, None
        events: list | None = [] if collect else None
        while pos < len(data) and count != max_records:
            reason, length = _classify_frame(data, pos, max_payload)
            if reason != R_OK:
                break
            payload = bytes(data[pos + HEADER_LEN : pos + HEADER_LEN + length])
            try:
                event = _codec_py.decode_payload(payload)
            except DecodeError as exc:
                exc.offset = None if exc.offset is None else exc.offset + pos + HEADER_LEN
                exc.record_offset = pos
                reason, detail = R_DECODE_FAILURE, str(exc)
                break
            if last is not None and event.sequence <= last:
                reason, detail = R_SEQUENCE_NOT_INCREASING, f"sequence {event.sequence} does not follow {last}"
                break
            last = event.sequence
            if events is not None and event.sequence >= collect_from:
                events.append(event)
            count += 1
            pos += HEADER_LEN + length
        return pos, count, last, reason, detail, events


def skip_below(buf: Any, start: int, prev_sequence: int | None, sequence: int) -> tuple:
    """See ``_wal.skip_below`` (here each record is checked and decoded on the way)."""
    pos, count, last = start, 0, prev_sequence
    while True:
        end, n, seq, reason, _, events = walk(buf, pos, last, DEFAULT_MAX_PAYLOAD, True, 1)
        if not n or reason or events[0].sequence >= sequence:
            return pos, count, last
        pos, count, last = end, count + 1, seq


def find_valid_record(buf: Any, start: int, max_payload: int = DEFAULT_MAX_PAYLOAD) -> int:
    """See ``_wal.find_valid_record``."""
    with memoryview(buf) as view:
        data = view.cast("B") if view.format != "B" else view
        raw = data.tobytes()
        pos = raw.find(b"\x05\x00\x00\x00", start)
        while 0 <= pos < len(raw) - HEADER_LEN:
            reason, length = _classify_frame(data, pos, max_payload)
            if reason == R_OK:
                try:
                    _codec_py.decode_payload(raw[pos + HEADER_LEN : pos + HEADER_LEN + length])
                    return pos
                except DecodeError:
                    pass
            pos = raw.find(b"\x05\x00\x00\x00", pos + 1)
        return -1


def scan_frames(buf: Any, check_crc: bool = True) -> tuple:
    """See ``_wal.scan_frames``."""
    with memoryview(buf) as view:
        data = view.cast("B") if view.format != "B" else view
        offsets, lengths, pos = [], [], 0
        while pos < len(data):
            if check_crc:
                reason, length = _classify_frame(data, pos, 0xFFFFFFFF)
                if reason != R_OK:
                    break
            else:
                if len(data) - pos < HEADER_LEN:
                    break
                version, length, _ = HEADER.unpack_from(data, pos)
                if version != VERSION or length == 0 or length > len(data) - pos - HEADER_LEN:
                    break
            offsets.append(pos)
            lengths.append(length)
            pos += HEADER_LEN + length
        return np.array(offsets, dtype=np.uint64), np.array(lengths, dtype=np.uint32), pos



def _event_time(event) -> int:
    inner = event.event
    if hasattr(inner, "timestamp"):
        return inner.timestamp
    return inner.run_instance.created_at  # RunCreated


def scan_columns(
    buf: Any,
    start: int = 0,
    prev_sequence: int | None = None,
    kinds: int = 0xFFFFFFFFFFFFFFFF,
    min_sequence: int = 0,
    max_sequence: int = 0xFFFFFFFFFFFFFFFF,
    max_payload: int = DEFAULT_MAX_PAYLOAD,
) -> tuple:
    """See ``_wal.scan_columns``.

    This twin decodes every record fully (it is :func:`walk` with ``collect``), so a
    record is accepted or rejected exactly when a decode accepts or rejects it; the
    native scan, which judges most records on their bytes, gives the same verdicts.
    """
    with memoryview(buf) as view:
        data = view.cast("B") if view.format != "B" else view
        end, _, last, reason, _, events = walk(data, start, prev_sequence, max_payload, True)
        offsets, lengths = [], []
        pos = start
        for event in events:
            length = HEADER.unpack_from(data, pos)[1]
            offsets.append(pos)
            lengths.append(length)
            pos += HEADER_LEN + length
    rows = [
        (o, n, e.sequence, e.kind, _event_time(e))
        for o, n, e in zip(offsets, lengths, events)
        if (kinds >> e.kind) & 1 and min_sequence <= e.sequence <= max_sequence
    ]
    dtypes = (np.uint64, np.uint32, np.uint64, np.uint8, np.uint64)
    columns = tuple(np.array([r[i] for r in rows], dtype=t) for i, t in enumerate(dtypes))
    return columns, end, reason, last


def decode_at(buf: Any, offsets) -> list:
    """See ``_wal.decode_at``."""
    with memoryview(buf) as view:
        data = view.cast("B") if view.format != "B" else view
        out = []
        for off in offsets:
            off = int(off)
            if off < 0 or len(data) - off < HEADER_LEN:
                raise ValueError(f"no record at offset {off}")
            length = HEADER.unpack_from(data, off)[1]
            if length > len(data) - off - HEADER_LEN:
                raise ValueError(f"no complete record at offset {off}")
            try:
                out.append(_codec_py.decode_payload(bytes(data[off + HEADER_LEN : off + HEADER_LEN + length])))
            except DecodeError as exc:
                exc.offset = None if exc.offset is None else exc.offset + off + HEADER_LEN
                exc.record_offset = off
                raise
        return out
