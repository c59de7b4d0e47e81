from libc.stdint cimport uint8_t


cdef class IdBase:
    cdef uint8_t raw[16]
