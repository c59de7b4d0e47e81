from libc.stdint cimport uint8_t, uint64_t


cdef object decode_payload_at(const uint8_t *p, Py_ssize_t n, Py_ssize_t base, Py_ssize_t record_offset)
cdef int scan_payload(const uint8_t *p, Py_ssize_t n, uint64_t *sequence, int *kind, uint64_t *time) noexcept
cdef int check_payload(const uint8_t *p, Py_ssize_t n, uint64_t *sequence) noexcept
cdef int payload_sequence(const uint8_t *p, Py_ssize_t n, uint64_t *sequence) noexcept nogil
