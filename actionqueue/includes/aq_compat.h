/* Small portability shims over the CPython C API. */
#ifndef AQ_COMPAT_H
#define AQ_COMPAT_H

#include <Python.h>

/* hash(bytes(data[:n])): the same value the pure-Python identifiers use. */
static inline Py_hash_t aq_hash_bytes(const void *data, Py_ssize_t n) {
#if PY_VERSION_HEX >= 0x030E0000
    return Py_HashBuffer(data, n);
#else
    return _Py_HashBytes(data, n);
#endif
}

#endif
