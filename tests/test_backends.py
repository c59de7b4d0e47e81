"""Backend selection, and the whole suite once more on the pure-Python implementation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


@pytest.mark.slow
@pytest.mark.skipif(_backend.FORCED_PURE, reason="already running on the pure-Python implementation")
def test_suite_passes_on_the_pure_python_implementation() -> None:
    """msgpack-python's second CI leg (``MSGPACK_PUREPYTHON=1 pytest``), run from the suite."""
    tests = Path(__file__).parent
    env = dict(os.environ, ACTIONQUEUE_PUREPYTHON="1")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-m", "not slow", "-p", "no:cacheprovider", str(tests)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    tail = "\n".join(proc.stdout.splitlines()[-15:])
    assert proc.returncode == 0, f"pure-Python run failed:\n{tail}\n{proc.stderr[-2000:]}"
    assert " passed" in tail
