# cython: language_level=3
"""Native record walking over WAL buffers (files come in through mmap or bytes).

``_wal`` knows files and records; it never decodes events (that is ``_codec``'s job).
"""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport uint8_t, uint32_t, uint64_t

import numpy as np

cdef extern from "aq_crc32.h":
    uint32_t aq_crc32_update(uint32_t crc, const unsigned char *buf, size_t len) nogil
    void aq_crc32_init()

cdef extern from "aq_frame.h":
    uint32_t AQ_WAL_VERSION
    Py_ssize_t AQ_HEADER_LEN
    uint32_t aq_load_u32le(const unsigned char *p) nogil

aq_crc32_init()


def scan_frames(buf, bint check_crc=True):
    """Walk the consecutive records of ``buf`` without decoding their payloads.

    Returns ``(offsets, lengths, end)``: numpy ``uint64`` record offsets, ``uint32``
    payload lengths, and the offset where the walk stopped. The walk stops at the first
    record that is incomplete, has another version, has an empty payload, or (with
    ``check_crc``) fails its CRC; ``end == len(buf)`` means every byte was a good record.
    """
    cdef Py_buffer view
    PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
    cdef const uint8_t *data = <const uint8_t *>view.buf
    cdef Py_ssize_t size = view.len
    cdef Py_ssize_t pos = 0, count = 0, cap = 1024
    cdef uint32_t length
    offsets = np.empty(cap, dtype=np.uint64)
    lengths = np.empty(cap, dtype=np.uint32)
    cdef uint64_t[::1] off_v = offsets
    cdef uint32_t[::1] len_v = lengths
    try:
        with nogil:
            while size - pos >= AQ_HEADER_LEN:
                if aq_load_u32le(data + pos) != AQ_WAL_VERSION:
                    break
                length = aq_load_u32le(data + pos + 4)
                if length == 0 or <uint64_t>length > <uint64_t>(size - pos - AQ_HEADER_LEN):
                    break
                if check_crc and aq_crc32_update(0, data + pos + AQ_HEADER_LEN, length) != aq_load_u32le(data + pos + 8):
                    break
                if count == cap:
                    with gil:
                        cap *= 2
                        offsets = np.resize(offsets, cap)
                        lengths = np.resize(lengths, cap)
                        off_v = offsets
                        len_v = lengths
                off_v[count] = pos
                len_v[count] = length
                count += 1
                pos += AQ_HEADER_LEN + length
    finally:
        PyBuffer_Release(&view)
    return offsets[:count].copy(), lengths[:count].copy(), pos
