# cython: language_level=3
"""Native record walking over WAL buffers (files come in through mmap or bytes).

``_wal`` knows files and records: it walks the framing and classifies every record
(``_wal_common`` gives the order); decoding a payload is ``_codec``'s job, called here
through its C entry point. Policy (what to do about a bad record) lives in ``wal.py``.
"""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy

import numpy as np

from ..codec._codec cimport check_payload, decode_payload_at, payload_sequence, scan_payload
from ._walk_common import DEFAULT_MAX_PAYLOAD
from ..errors import DecodeError

cdef extern from "aq_crc32.h":
    uint32_t aq_crc32_update(uint32_t crc, const unsigned char *buf, size_t len) nogil

cdef extern from "aq_frame.h":
    uint32_t AQ_WAL_VERSION
    Py_ssize_t AQ_HEADER_LEN
    uint32_t aq_load_u32le(const unsigned char *p) nogil

# reason codes: the same numbers as _wal_common
DEF R_OK = 0
DEF R_INCOMPLETE_HEADER = 1
DEF R_INCOMPLETE_PAYLOAD = 2
DEF R_UNSUPPORTED_VERSION = 3
DEF R_DECODE_FAILURE = 4
DEF R_CRC_MISMATCH = 5
DEF R_SEQUENCE_NOT_INCREASING = 6


cdef inline int _classify_frame(const uint8_t *p, Py_ssize_t avail, uint64_t max_payload,
                                uint32_t *length) noexcept nogil:
    """Steps 1-5 of the classifier (framing and CRC); the payload is not decoded."""
    if avail < AQ_HEADER_LEN:
        return R_INCOMPLETE_HEADER
    length[0] = aq_load_u32le(p + 4)
    if <uint64_t>length[0] > <uint64_t>(avail - AQ_HEADER_LEN):
        return R_INCOMPLETE_PAYLOAD
    if aq_load_u32le(p) != AQ_WAL_VERSION:
        return R_UNSUPPORTED_VERSION
    if length[0] == 0 or <uint64_t>length[0] > max_payload:
        return R_DECODE_FAILURE
    if aq_crc32_update(0, p + AQ_HEADER_LEN, length[0]) != aq_load_u32le(p + 8):
        return R_CRC_MISMATCH
    return R_OK


cdef class _View:
    cdef Py_buffer view
    cdef const uint8_t *data
    cdef Py_ssize_t size

    def __cinit__(self, object obj):
        PyObject_GetBuffer(obj, &self.view, PyBUF_SIMPLE)
        self.data = <const uint8_t *>self.view.buf
        self.size = self.view.len

    def __dealloc__(self):
        PyBuffer_Release(&self.view)


cdef Py_ssize_t _skip_trusted(const uint8_t *data, Py_ssize_t size, Py_ssize_t *pos, Py_ssize_t max_records,
                              uint64_t below, bint *has_prev, uint64_t *last) noexcept nogil:
    """Step over records of an already checked buffer by their length fields while their
    sequence is below ``below`` (and increasing); stops at anything else, where every
    check applies again. Returns how many records it stepped over."""
    cdef Py_ssize_t count = 0
    cdef uint32_t length
    cdef uint64_t seq
    while size - pos[0] >= AQ_HEADER_LEN and count != max_records:
        length = aq_load_u32le(data + pos[0] + 4)
        if (<uint64_t>length > <uint64_t>(size - pos[0] - AQ_HEADER_LEN)
                or payload_sequence(data + pos[0] + AQ_HEADER_LEN, length, &seq) < 0
                or seq >= below or (has_prev[0] and seq <= last[0])):
            break
        last[0] = seq
        has_prev[0] = True
        count += 1
        pos[0] += AQ_HEADER_LEN + length
    return count


def skip_below(buf, Py_ssize_t start, prev_sequence, sequence):
    """``(offset, count, last_sequence)``: where the first record with a sequence of at
    least ``sequence`` starts in ``buf`` (already checked by its writer: records are
    stepped over by their length fields), how many were stepped over, and the sequence
    of the last of them (``prev_sequence`` when none)."""
    cdef _View v = _View(buf)
    cdef Py_ssize_t pos = start, count
    cdef bint has_prev = prev_sequence is not None
    cdef uint64_t last = prev_sequence if has_prev else 0
    cdef uint64_t below = sequence
    if start < 0 or start > v.size:
        raise ValueError("start is outside the buffer")
    with nogil:
        count = _skip_trusted(v.data, v.size, &pos, -1, below, &has_prev, &last)
    return pos, count, (last if has_prev else None)


def walk(buf, Py_ssize_t start=0, prev_sequence=None, max_payload=DEFAULT_MAX_PAYLOAD,
         bint collect=False, Py_ssize_t max_records=-1, collect_from=0, bint trusted=False):
    """Walk and fully check the records of ``buf`` from ``start``.

    Every record is classified (framing, CRC, payload decode, increasing sequence)
    until the end of the buffer, the first bad record, or ``max_records`` good ones.

    ``prev_sequence`` is the sequence of the record before ``start`` (None at the start
    of a log): every record's sequence must be above its predecessor's.

    Returns ``(end, count, last_sequence, reason, detail, events)``: ``end`` is where
    the walk stopped (the start of the bad record when ``reason`` is not 0),
    ``count`` the good records walked, ``last_sequence`` the sequence of the last good
    one (``prev_sequence`` when there is none), ``reason`` a code of ``_wal_common``
    (0: no bad record),
    ``detail`` a message for a decode failure, and ``events`` the decoded events when
    ``collect`` is true (else None): those with a sequence of at least ``collect_from``.

    Records that are not collected are judged without building objects when their
    bytes settle it (see ``_codec.check_payload``); the others are decoded. The
    verdict is the decoder's either way.

    ``trusted``: the caller has already validated this buffer (a writer's open-time check,
    under its lock): the records below ``collect_from`` at the start are stepped over by
    their length fields without being checked again.
    """
    cdef _View v = _View(buf)
    cdef Py_ssize_t pos = start, count = 0
    cdef uint32_t length
    cdef int reason = R_OK
    cdef uint64_t cap = max_payload
    cdef bint has_prev = prev_sequence is not None
    cdef uint64_t last = prev_sequence if has_prev else 0
    cdef uint64_t seq
    cdef uint64_t wanted = collect_from
    cdef int judged
    detail = None
    events = [] if collect else None
    if start < 0 or start > v.size:
        raise ValueError("start is outside the buffer")
    if trusted:
        count = _skip_trusted(v.data, v.size, &pos, max_records, wanted, &has_prev, &last)
    while pos < v.size and count != max_records:
        reason = _classify_frame(v.data + pos, v.size - pos, cap, &length)
        if reason != R_OK:
            break
        if collect and (payload_sequence(v.data + pos + AQ_HEADER_LEN, length, &seq) < 0 or seq >= wanted):
            judged = 1  # to be decoded, which checks it: no skim first
        else:
            judged = check_payload(v.data + pos + AQ_HEADER_LEN, length, &seq)
        if judged != 0 or (collect and seq >= wanted):
            try:
                event = decode_payload_at(v.data + pos + AQ_HEADER_LEN, length, pos + AQ_HEADER_LEN, pos)
            except DecodeError as exc:
                reason = R_DECODE_FAILURE
                detail = str(exc)
                break
            seq = event.sequence
            if not (collect and seq >= wanted):
                event = None
        else:
            event = None
        if has_prev and seq <= last:
            reason = R_SEQUENCE_NOT_INCREASING
            detail = f"sequence {seq} does not follow {last}"
            break
        last = seq
        has_prev = True
        if event is not None:
            events.append(event)
        count += 1
        pos += AQ_HEADER_LEN + length
    return pos, count, (last if has_prev else None), reason, detail, events


def find_valid_record(buf, Py_ssize_t start, max_payload=DEFAULT_MAX_PAYLOAD):
    """The offset of the first complete, CRC-valid, decodable record at or after ``start``
    (any byte position, not only record boundaries), or -1 when there is none."""
    cdef _View v = _View(buf)
    cdef Py_ssize_t pos
    cdef uint32_t length
    cdef uint64_t cap = max_payload
    for pos in range(start, v.size - AQ_HEADER_LEN):
        if aq_load_u32le(v.data + pos) != AQ_WAL_VERSION:
            continue
        if _classify_frame(v.data + pos, v.size - pos, cap, &length) != R_OK:
            continue
        try:
            decode_payload_at(v.data + pos + AQ_HEADER_LEN, length, 0, pos)
        except DecodeError:
            continue
        return pos
    return -1


def scan_frames(buf, bint check_crc=True):
    """Walk the consecutive records of ``buf`` without decoding their payloads.

    Returns ``(offsets, lengths, end)``: numpy ``uint64`` record offsets, ``uint32``
    payload lengths, and the offset where the walk stopped. The walk stops at the first
    record that is incomplete, has another version, has an empty payload, or (with
    ``check_crc``) fails its CRC; ``end == len(buf)`` means every byte was a good record.
    """
    cdef _View v = _View(buf)
    cdef Py_ssize_t pos = 0, count = 0, cap = 1024
    cdef uint32_t length
    cdef int reason
    offsets = np.empty(cap, dtype=np.uint64)
    lengths = np.empty(cap, dtype=np.uint32)
    cdef uint64_t[::1] off_v = offsets
    cdef uint32_t[::1] len_v = lengths
    while pos < v.size:
        reason = _classify_frame(v.data + pos, v.size - pos, <uint64_t>-1, &length) if check_crc else R_OK
        if not check_crc:
            if v.size - pos < AQ_HEADER_LEN:
                break
            length = aq_load_u32le(v.data + pos + 4)
            if (aq_load_u32le(v.data + pos) != AQ_WAL_VERSION or length == 0
                    or <uint64_t>length > <uint64_t>(v.size - pos - AQ_HEADER_LEN)):
                break
        elif reason != R_OK:
            break
        if count == cap:
            cap *= 2
            offsets = np.resize(offsets, cap)
            lengths = np.resize(lengths, cap)
            off_v = offsets
            len_v = lengths
        off_v[count] = pos
        len_v[count] = length
        count += 1
        pos += AQ_HEADER_LEN + length
    return offsets[:count].copy(), lengths[:count].copy(), pos


cdef class _Columns:
    """Growable column buffers for a scan."""
    cdef public object offset, length, sequence, kind, time
    cdef uint64_t[::1] off_v
    cdef uint32_t[::1] len_v
    cdef uint64_t[::1] seq_v
    cdef uint8_t[::1] kind_v
    cdef uint64_t[::1] time_v
    cdef Py_ssize_t cap

    def __cinit__(self, Py_ssize_t cap):
        self.cap = max(cap, 64)
        self._alloc(self.cap)

    cdef _alloc(self, Py_ssize_t cap):
        self.offset = np.empty(cap, dtype=np.uint64)
        self.length = np.empty(cap, dtype=np.uint32)
        self.sequence = np.empty(cap, dtype=np.uint64)
        self.kind = np.empty(cap, dtype=np.uint8)
        self.time = np.empty(cap, dtype=np.uint64)
        self.off_v = self.offset
        self.len_v = self.length
        self.seq_v = self.sequence
        self.kind_v = self.kind
        self.time_v = self.time

    cdef grow(self, Py_ssize_t used):
        old = (self.offset, self.length, self.sequence, self.kind, self.time)
        self.cap *= 2
        self._alloc(self.cap)
        for new, prev in zip((self.offset, self.length, self.sequence, self.kind, self.time), old):
            new[:used] = prev[:used]

    cdef tuple finish(self, Py_ssize_t used):
        arrays = (self.offset, self.length, self.sequence, self.kind, self.time)
        if used * 2 < self.cap:  # mostly empty: give the memory back
            return tuple(a[:used].copy() for a in arrays)
        return tuple(a[:used] for a in arrays)


def scan_columns(buf, Py_ssize_t start=0, prev_sequence=None, uint64_t kinds=0xFFFFFFFFFFFFFFFF,
                 uint64_t min_sequence=0, uint64_t max_sequence=0xFFFFFFFFFFFFFFFF,
                 max_payload=DEFAULT_MAX_PAYLOAD):
    """Walk the records of ``buf`` from ``start`` into numpy columns, without building events.

    Every record is checked as :func:`walk` checks it (framing, CRC-32, the payload as
    the decoder judges it, increasing sequences): a record is accepted or rejected
    here exactly when a decode accepts or rejects it, with the same reason code, and
    the pure-Python twin (which decodes every record) agrees. The payload is judged on
    its bytes (``_codec.scan_payload``: structure, UTF-8 of every string, nil ids where
    the model forbids them, the model's value rules); the rare record holding a value
    that may break a rule, or one only Python can check (a ``CronPolicy`` expression),
    is decoded to settle it. The records whose kind is in the bit mask ``kinds`` and
    whose sequence lies in ``[min_sequence, max_sequence]`` are emitted. Returns
    ``((offset, length, sequence, kind, time), end, reason, last_sequence)``: ``end`` is
    where the walk stopped, ``reason`` a ``_wal_common`` code (0: every byte was a good
    record) and ``last_sequence`` the sequence of the last good record walked (selected
    or not; ``prev_sequence`` when there is none).
    ``time`` is the event's ``timestamp`` (a run's ``created_at`` for ``RunCreated``).
    """
    cdef _View v = _View(buf)
    cdef Py_ssize_t pos = start, used = 0
    cdef uint32_t length
    cdef int reason = R_OK, kind, judged
    cdef uint64_t cap = max_payload, seq, time
    cdef bint has_prev = prev_sequence is not None
    cdef uint64_t last = prev_sequence if has_prev else 0
    cdef _Columns cols = _Columns((v.size - start) // 48 + 1)
    if start < 0 or start > v.size:
        raise ValueError("start is outside the buffer")
    while pos < v.size:
        reason = _classify_frame(v.data + pos, v.size - pos, cap, &length)
        if reason != R_OK:
            break
        judged = scan_payload(v.data + pos + AQ_HEADER_LEN, length, &seq, &kind, &time)
        if judged != 0:
            if judged < 0:
                reason = R_DECODE_FAILURE
                break
            try:  # only a decode can tell (the event itself is not needed)
                decode_payload_at(v.data + pos + AQ_HEADER_LEN, length, pos + AQ_HEADER_LEN, pos)
            except DecodeError:
                reason = R_DECODE_FAILURE
                break
        if has_prev and seq <= last:
            reason = R_SEQUENCE_NOT_INCREASING
            break
        last = seq
        has_prev = True
        if (kinds >> kind) & 1 and min_sequence <= seq <= max_sequence:
            if used == cols.cap:
                cols.grow(used)
            cols.off_v[used] = pos
            cols.len_v[used] = length
            cols.seq_v[used] = seq
            cols.kind_v[used] = <uint8_t>kind
            cols.time_v[used] = time
            used += 1
        pos += AQ_HEADER_LEN + length
    return cols.finish(used), pos, reason, (last if has_prev else None)


def decode_at(buf, offsets):
    """Decode the records that start at ``offsets`` (e.g. selected from a scan)."""
    cdef _View v = _View(buf)
    cdef uint32_t length
    cdef Py_ssize_t off
    out = []
    for o in offsets:
        off = o
        if off < 0 or v.size - off < AQ_HEADER_LEN:
            raise ValueError(f"no record at offset {off}")
        length = aq_load_u32le(v.data + off + 4)
        if <uint64_t>length > <uint64_t>(v.size - off - AQ_HEADER_LEN):
            raise ValueError(f"no complete record at offset {off}")
        out.append(decode_payload_at(v.data + off + AQ_HEADER_LEN, length, off + AQ_HEADER_LEN, off))
    return out
