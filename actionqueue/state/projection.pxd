# Declarations that compile projection.py into a native module (Cython "augmenting .pxd"):
# the projection's fields are C fields of an extension type the reducer (reducer.pxd)
# derives from. projection.py stays plain Python and is the whole source.
from actionqueue.state.records cimport _Run, _Task


cdef class Projection:
    cdef public unsigned long long _latest_sequence
    cdef public dict _tasks, _runs, _runs_by_task
    cdef public object _engine_paused, _engine_paused_at, _engine_resumed_at
    cdef public dict _dependencies, _budgets, _subscriptions, _actors, _tenants, _roles, _grants
    cdef public list _ledger
    cdef public object _cold, _lock

    cpdef _cold_run(self, run_id)
