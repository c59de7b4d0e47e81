"""Backend selection. (The whole suite's second leg on the pure-Python implementation,
``ACTIONQUEUE_PUREPYTHON=1 python3 -m pytest -n auto tests``, is run by ``.ci/run`` and by its
own GitHub job, as msgpack-python runs its own.)"""

from __future__ import annotations


import pytest

import actionqueue as aq
from actionqueue import _backend


def test_native_backend_is_used_unless_pure_python_is_asked_for() -> None:
    if _backend.FORCED_PURE:
        assert aq.backend == "python"
        assert type(aq.RunId.new()).__module__ == "actionqueue.model._ids_py"
    else:
        # A source checkout without a native build must fail here, not pass on the twin.
        assert aq.backend == "cython", _backend.UNAVAILABLE_REASON
        assert aq.encode is aq._codec_impl.encode
        from actionqueue.codec import _codec

        assert _codec.CYTHON_MODULE == 1
        assert type(aq.RunId.new()).__module__ == "actionqueue.model._ids"


def test_compiled_python_modules_run_their_source_under_pure_python() -> None:
    """reducer.py is compiled with reducer.pxd in a native build; the pure-Python backend
    runs the .py itself, so the suite's second leg tests the source as written."""
    from actionqueue.state import reducer

    assert _backend.compiled(reducer) == (not _backend.FORCED_PURE)
    assert type(reducer.ReplayReducer()._runs) is dict
