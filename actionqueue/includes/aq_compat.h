/* Small portability shims over the CPython C API and the compilers. */
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

/* A hint to load the cache line at p (no-op where the compiler has no builtin). */
static inline void aq_prefetch(const void *p) {
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(p, 0, 3);
#else
    (void)p;
#endif
}

#endif
