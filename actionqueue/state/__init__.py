"""Events -> projection: the run rules (:mod:`.rules`), the replay reducer
(:mod:`.reducer`, its read-API values in :mod:`.records`) and the mutation authority
(:mod:`.authority`, its command validators in :mod:`.validators`).

Nothing is imported here: ``reducer.py`` is compiled when built and, with
``ACTIONQUEUE_PUREPYTHON``, loaded from its source before this package's other modules
(``actionqueue._backend._run_sources``).
"""
