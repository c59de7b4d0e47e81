from libc.stdint cimport uint8_t


cdef object decode_payload_at(const uint8_t *p, Py_ssize_t n, Py_ssize_t base, Py_ssize_t record_offset)
