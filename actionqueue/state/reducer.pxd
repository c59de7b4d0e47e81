# Declarations that compile reducer.py into a native module (Cython "augmenting .pxd"):
# the records become extension types with C fields and the hot handlers C methods with
# typed locals. reducer.py stays plain Python and is the whole source: without a
# compiler (or with ACTIONQUEUE_PUREPYTHON=1) it runs as it is.
cimport cython


cdef class _Run:
    cdef public object base, state, attempt_id, attempt_count, changed_at
    cdef public object history, attempts
    cdef public object lease_owner, lease_expiry, lease_acquired_at, lease_updated_at


cdef class _Attempt:
    cdef public object attempt_id, started_at, finished_at, result, error, output


cdef class _Task:
    cdef public object spec, created_at, canceled_at


cdef class ReplayReducer:
    cdef public unsigned long long _latest_sequence
    cdef public dict _tasks, _runs, _runs_by_task
    cdef public object _engine_paused, _engine_paused_at, _engine_resumed_at
    cdef public dict _dependencies, _budgets, _subscriptions, _actors, _tenants, _roles, _grants
    cdef public list _ledger
    cdef public object _cold

    @cython.locals(seq=cython.ulonglong)
    cpdef apply(self, event)

    cpdef Py_ssize_t apply_all(self, events) except -1

    @cython.locals(history=list)
    cpdef _transition(self, _Run rec, prev, new, ts, bint commit=*)

    cpdef _cold_run(self, run_id)

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
