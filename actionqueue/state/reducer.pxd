# Declarations that compile reducer.py into a native module (Cython "augmenting .pxd"):
# the reducer is an extension type over the projection's (projection.pxd) and its hot
# handlers are C methods with typed locals over the records' C fields (records.pxd).
# reducer.py stays plain Python and is the whole source: without a compiler (or with
# ACTIONQUEUE_PUREPYTHON=1) it runs as it is.
cimport cython

from actionqueue.state.projection cimport Projection
from actionqueue.state.records cimport _Attempt, _Run, _Task
from actionqueue.state.rules cimport normalize_attempt_outcome, outcome_shape_error

# the run rules the hot handlers read, as typed globals (no module dict lookup per event)
cdef dict _ALLOWED, _BLOCKED, _LEASE_STATES
cdef frozenset _TERMINAL, _ACQUIRE_STATES, _HEARTBEAT_STATES


cdef class ReplayReducer(Projection):
    cpdef apply(self, event)

    @cython.locals(seq=cython.ulonglong)
    cpdef _apply(self, event)

    cpdef Py_ssize_t apply_all(self, events) except -1

    @cython.locals(history=list)
    cpdef _transition(self, _Run rec, prev, new, ts, bint commit=*)

    @cython.locals(rec=_Run)
    cpdef _on_run_created(self, ev, bint commit=*)

    @cython.locals(rec=_Run)
    cpdef _on_run_state_changed(self, ev, bint commit=*)

    @cython.locals(rec=_Run, attempts=list)
    cpdef _on_attempt_started(self, ev, bint commit=*)

    @cython.locals(rec=_Run, attempts=list, entry=_Attempt)
    cpdef _on_attempt_finished(self, ev, bint commit=*)

    @cython.locals(rec=_Run)
    cpdef _on_lease_acquired(self, ev, bint commit=*)

    @cython.locals(rec=_Run)
    cpdef _on_lease_heartbeat(self, ev, bint commit=*)

    @cython.locals(rec=_Run)
    cpdef _close_lease(self, ev, str what, bint commit)

    cpdef _on_lease_expired(self, ev, bint commit=*)

    cpdef _on_lease_released(self, ev, bint commit=*)
