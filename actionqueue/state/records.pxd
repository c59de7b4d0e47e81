# Declarations that compile records.py into a native module (Cython "augmenting .pxd"):
# the reducer's run, attempt and task records become extension types with C fields, read
# and written in C by the reducer (reducer.pxd) and the snapshot codec (snapshot/_sjson.pyx).
# records.py stays plain Python and is the whole source.


cdef class _Run:
    cdef public object base, state, attempt_id, attempt_count, changed_at
    cdef public object history, attempts
    cdef public object lease_owner, lease_expiry, lease_acquired_at, lease_updated_at


cdef class _Attempt:
    cdef public object attempt_id, started_at, finished_at, result, error, output


cdef class _Task:
    cdef public object spec, created_at, canceled_at
