# Declarations that compile rules.py into a native module (Cython "augmenting .pxd"): the
# outcome rules become C functions the reducer calls directly (reducer.pxd cimports them).
# rules.py stays plain Python and is the whole source.

cpdef object outcome_shape_error(object result, object error, object output)

cpdef tuple normalize_attempt_outcome(object result, object error, object output)
