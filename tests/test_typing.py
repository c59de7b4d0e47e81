"""The package's types, checked by the type checkers users run.

* the package passes mypy with the configuration in pyproject.toml;
* ``typing/pass_*.py`` (the README's whole API, as a user writes it) passes
  ``mypy --strict`` and pyright with no error;
* each line of ``typing/fail_*.py`` marked ``# E: <code>`` gets that error from mypy and
  an error from pyright, and no other line gets one (so the checks can fail both ways);
* the ``.pyi`` stubs of the native modules match them (``mypy.stubtest``);
* ``__all__`` lists are static and complete.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import actionqueue as aq
from actionqueue import _backend, errors
from actionqueue import model as _model

ROOT = Path(__file__).resolve().parent.parent
TYPING = Path(__file__).resolve().parent / "typing"
#: where the package under test lives: mypy needs it in MYPYPATH unless it is installed in
#: site-packages (an in-place build or an editable install is invisible to mypy otherwise;
#: an installed one mypy finds itself, and it refuses a site-packages directory in MYPYPATH)
PACKAGE_PARENT = Path(aq.__file__).resolve().parent.parent
MYPYPATH = {} if PACKAGE_PARENT.name in ("site-packages", "dist-packages") else {"MYPYPATH": str(PACKAGE_PARENT)}
#: Runs mypy, pyright or stubtest over the package (seconds each): in the slow leg that
#: .ci/run and CI run after the default suite (python3 -m pytest -n auto -m slow tests).
SLOW_TOOL = pytest.mark.slow

NATIVE_STUBBED = ("actionqueue.model._ids", "actionqueue.codec._codec", "actionqueue.log._walk", "actionqueue.snapshot._sjson")

mypy_api = pytest.importorskip("mypy.api", reason="mypy is in the test extras")


def _mypy(*args: str, cache: Path) -> tuple[str, int]:
    env_before = os.environ.pop("MYPYPATH", None)
    os.environ.update(MYPYPATH)
    try:
        out, err, status = mypy_api.run(["--cache-dir", str(cache), "--no-error-summary", "--show-error-codes", *args])
    finally:
        if env_before is None:
            os.environ.pop("MYPYPATH", None)
        else:
            os.environ["MYPYPATH"] = env_before
    return out + err, status


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mypy-cache")


def _user_check(path: Path, cache: Path) -> str:
    out, _ = _mypy("--strict", "--follow-imports=silent", "--config-file", os.devnull, str(path), cache=cache)
    return out


def _marked(path: Path) -> dict[int, str]:
    return {
        i: m.group(1)
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if (m := re.search(r"# E: ([a-z-]+)\s*$", line))
    }


def _mypy_errors(out: str, path: Path) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for m in re.finditer(rf"{re.escape(path.name)}:(\d+): error: .*\[([a-z-]+)\]", out):
        found.setdefault(int(m.group(1)), set()).add(m.group(2))
    return found


@SLOW_TOOL
def test_package_passes_mypy(cache: Path) -> None:
    out, status = _mypy("--config-file", str(ROOT / "pyproject.toml"), str(ROOT / "actionqueue"), cache=cache)
    assert status == 0, out


@SLOW_TOOL
@pytest.mark.parametrize("path", sorted(TYPING.glob("pass_*.py")), ids=lambda p: p.name)
def test_user_code_passes_mypy_strict(path: Path, cache: Path) -> None:
    out = _user_check(path, cache)
    assert _mypy_errors(out, path) == {}, out


@SLOW_TOOL
@pytest.mark.parametrize("path", sorted(TYPING.glob("fail_*.py")), ids=lambda p: p.name)
def test_mistakes_are_caught_by_mypy(path: Path, cache: Path) -> None:
    expected = _marked(path)
    assert expected, f"{path.name} marks no line"
    found = _mypy_errors(_user_check(path, cache), path)
    assert set(found) == set(expected), (sorted(found), sorted(expected))
    for line, code in expected.items():
        assert code in found[line], (line, code, found[line])


def _pyright() -> list[str]:
    exe = shutil.which("pyright")
    if exe is None or shutil.which("node") is None:
        pytest.skip("pyright (test extras) and node are needed")
    return [exe, "--pythonpath", sys.executable]


def _pyright_error_lines(path: Path) -> set[int]:
    env = {**os.environ, "PYTHONPATH": str(PACKAGE_PARENT)}
    run = subprocess.run([*_pyright(), str(path)], capture_output=True, text=True, timeout=300, env=env, cwd=TYPING)
    lines = {int(m.group(1)) for m in re.finditer(rf"{re.escape(path.name)}:(\d+):\d+ - error", run.stdout)}
    assert run.returncode in (0, 1), run.stdout + run.stderr  # 1: errors found; other: pyright failed
    return lines


@SLOW_TOOL
def test_package_passes_pyright() -> None:
    run = subprocess.run([*_pyright(), "actionqueue"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 errors" in run.stdout, run.stdout


@SLOW_TOOL
def test_user_code_and_mistakes_under_pyright() -> None:
    for path in sorted(TYPING.glob("pass_*.py")):
        assert _pyright_error_lines(path) == set(), path.name
    for path in sorted(TYPING.glob("fail_*.py")):
        assert _pyright_error_lines(path) == set(_marked(path)), path.name


@SLOW_TOOL
@pytest.mark.skipif(not _backend.NATIVE, reason="the stubs describe the native modules")
def test_native_stubs_match_the_modules(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "--mypy-config-file", str(ROOT / "pyproject.toml"),
         "--ignore-disjoint-bases", "--allowlist", str(TYPING / "stubtest-allowlist.txt"), *NATIVE_STUBBED],
        capture_output=True, text=True, timeout=600, cwd=PACKAGE_PARENT if MYPYPATH else tmp_path,
        env={**{k: v for k, v in os.environ.items() if k != "MYPYPATH"}, **MYPYPATH},
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr


def test_all_is_static_and_complete() -> None:
    source = (Path(aq.__file__)).read_text()
    assert "__all__ +=" not in source and "*_model.__all__" not in source
    assert "__all__ +=" not in Path(_model.__file__).read_text()
    missing = [name for name in aq.__all__ if not hasattr(aq, name)]
    assert not missing
    assert len(set(aq.__all__)) == len(aq.__all__)
    assert {cls.__name__ for cls in _model.EVENT_TYPES} <= set(_model.__all__)
    assert set(_model.__all__) <= set(aq.__all__)


def test_every_error_type_is_exported() -> None:
    for name in errors.__all__:
        assert getattr(aq, name, None) is getattr(errors, name), name
        assert name in aq.__all__, name
