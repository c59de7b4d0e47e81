"""pytest configuration of the actionqueue suite.

Fixtures:
    codec        each codec test runs twice, against the native module (``cython``) and the
                 pure-Python twin (``python``). A missing native build fails loudly unless
                 ACTIONQUEUE_PUREPYTHON is set, in which case the cython runs are skipped.
    both_codecs  (cython, python) for differential tests.
    vectors      the golden-vector directory (ACTIONQUEUE_VECTORS, default tests/vectors);
                 tests skip with a reason when it is absent, except under CI (the CI
                 environment variable set): there an absent or incomplete copy stops the
                 run at startup with one error.
    (autouse)    fails any test whose stderr shows "Exception ignored" (an exception
                 swallowed in a destructor or callback, e.g. in the Cython codec).

Hypothesis profiles: "ci" (bounded, used when CI is set), "dev" (default), "thorough".
Choose one with HYPOTHESIS_PROFILE=<name>. Tests that pin max_examples keep their budget
in every profile; ACTIONQUEUE_FUZZ_SCALE multiplies the fuzz budgets.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aq_testlib import VECTORS_DIR, VECTORS_MISSING, load_backend, vectors_missing_files  # noqa: E402

settings.register_profile(
    "ci",
    max_examples=50,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=50, deadline=None)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


#: The fast subset, ``pytest -m fast``: these modules minus their slow tests. It is what the
#: wheel builds run against each installed wheel (pyproject.toml, [tool.cibuildwheel]
#: test-command): every layer once (ids, model, codec on both backends, WAL segments,
#: scanner, reducer, snapshots, recovery, authority, CLI demo, examples, docstrings), in
#: well under a minute, with the golden vectors these modules read, and what the checkout
#: and the built modules promise (test_repository.py: vectors present, license, no debug info).
FAST_MODULES = frozenset({
    "test_backends.py", "test_ids.py", "test_model.py", "test_errors.py", "test_cron.py", "test_roundtrip.py",
    "test_wal_segments.py", "test_scan.py", "test_reducer.py", "test_snapshot.py", "test_recovery.py",
    "test_authority.py", "test_demo.py", "test_examples.py", "test_docstrings.py", "test_native_missing.py",
    "test_repository.py",
})  # fmt: skip


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in FAST_MODULES and item.get_closest_marker("slow") is None:
            item.add_marker(pytest.mark.fast)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: long-running test (excluded by -m 'not slow')")
    config.addinivalue_line("markers", "fast: the fast subset the wheel builds run (see FAST_MODULES)")
    config.addinivalue_line("markers", "vectors: needs the golden vectors directory")
    # pytest routes unraisable exceptions (the "Exception ignored in ..." of a __dealloc__ or
    # a callback) to a warning instead of stderr; make that warning an error too.
    config.addinivalue_line("filterwarnings", "error::pytest.PytestUnraisableExceptionWarning")
    # In CI the golden vectors are part of the checkout (and of the sdist): a missing or
    # incomplete copy is a packaging error, not a reason for the vector tests to skip quietly.
    if os.environ.get("CI"):
        missing = vectors_missing_files()
        if missing:
            state = "not found" if not VECTORS_DIR.is_dir() else f"incomplete (absent: {', '.join(missing)})"
            raise pytest.UsageError(
                f"CI is set and the golden vectors at {VECTORS_DIR} are {state}; they live in "
                "tests/vectors of the repository and the sdist (ACTIONQUEUE_VECTORS overrides the path)"
            )


# --------------------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="session", params=["cython", "python"])
def codec(request: pytest.FixtureRequest):
    """One codec backend module (encode, decode, encode_payload, ..., crc32)."""
    return load_backend(request.param)


@pytest.fixture(scope="session")
def both_codecs():
    """(native, pure-Python) codec modules, for differential tests."""
    return load_backend("cython"), load_backend("python")


# --------------------------------------------------------------------------------------
# Golden vectors
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def vectors() -> Path:
    """The golden-vector directory; skips the test when it is absent."""
    if not VECTORS_DIR.is_dir():
        pytest.skip(VECTORS_MISSING)
    return VECTORS_DIR


def _skip_param(argname: str):
    return [pytest.param(None, id=f"no-{argname}", marks=pytest.mark.skip(reason=VECTORS_MISSING))]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise over golden-vector files/cases when a test asks for them.

    record_file      events/records/*.bin
    edge_case        the entries of events/decode_edge/cases.json
    nonroundtrip_case the entries of events/nonroundtrip/cases.json
    """
    names = metafunc.fixturenames
    if "record_file" in names:
        files = sorted((VECTORS_DIR / "events" / "records").glob("*.bin"))
        if files:
            metafunc.parametrize("record_file", files, ids=[f.stem for f in files])
        else:
            metafunc.parametrize("record_file", _skip_param("record_file"))
    for argname, rel in (
        ("edge_case", "events/decode_edge/cases.json"),
        ("nonroundtrip_case", "events/nonroundtrip/cases.json"),
    ):
        if argname in names:
            path = VECTORS_DIR / rel
            if path.is_file():
                cases = json.loads(path.read_text(encoding="utf-8"))
                ids = [c.get("file", c.get("name", str(i))).removesuffix(".bin") for i, c in enumerate(cases)]
                metafunc.parametrize(argname, cases, ids=ids)
            else:
                metafunc.parametrize(argname, _skip_param(argname))


# --------------------------------------------------------------------------------------
# "Exception ignored" guard (the fastavro trick)
# --------------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _fail_on_ignored_exceptions(request: pytest.FixtureRequest):
    """Fail a test whose stderr contains "Exception ignored".

    Uses capfd (sees C-level writes to fd 2) unless the test itself asked for capsys or
    capfd; then it shares that fixture. pytest has already recorded the call-phase output
    for its report when this teardown reads the capture, so nothing is lost.
    """
    names = request.fixturenames
    if "capsys" in names or "capsysbinary" in names:
        cap = request.getfixturevalue("capsysbinary" if "capsysbinary" in names else "capsys")
    elif "capfdbinary" in names:
        cap = request.getfixturevalue("capfdbinary")
    else:
        cap = request.getfixturevalue("capfd")
    yield
    err = cap.readouterr().err
    if isinstance(err, bytes):
        err = err.decode("utf-8", "replace")
    if "Exception ignored" in err:
        pytest.fail(f"an exception was ignored during the test:\n{err}", pytrace=False)


# --------------------------------------------------------------------------------------
# Event loops of the asyncio tests (pytest-asyncio's hook; overriding the event_loop_policy
# fixture is deprecated since pytest-asyncio 1.0)
# --------------------------------------------------------------------------------------
def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item):
    """Each asyncio test of ``test_aio.py`` runs on the standard loop and on uvloop (when
    it is installed); other modules keep pytest-asyncio's default."""
    if item.path.name != "test_aio.py":
        return None
    import asyncio

    factories = {"asyncio": asyncio.new_event_loop}
    try:
        import uvloop
    except ImportError:
        return factories
    factories["uvloop"] = uvloop.new_event_loop
    return factories
