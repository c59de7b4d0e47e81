"""A source install whose native modules failed to build (or were built only in part)
still works, on the pure-Python implementation, and says so in one line at import.

The package is copied without its compiled modules into a scratch directory and imported
from there in a fresh interpreter."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import actionqueue as aq

PACKAGE = Path(aq.__file__).resolve().parent
NATIVE_SUFFIXES = (".so", ".pyd")

PROBE = """
from pathlib import Path
import actionqueue as aq
import actionqueue.scan
print(aq.backend, aq._backend.UNAVAILABLE_REASON)
assert aq.__file__.startswith(str(Path.cwd().parent)), aq.__file__  # the copy, not the install
e = aq.WalEvent(1, aq.EnginePaused(1_700_000_000))
assert aq.decode(aq.encode(e)) == e
Path("d").mkdir()
with aq.open("d") as store:
    aq.MutationAuthority.from_store(store).create_task(aq.TaskSpec(aq.TaskId.new()))
assert aq.verify("d").clean and len(aq.scan.scan("d")) == 1
print("ok")
"""


def copy_package(dest: Path, keep: tuple[str, ...] = ()) -> None:
    """The package without its compiled modules (but those whose name starts with ``keep``)."""

    def ignore(directory: str, names: list[str]) -> list[str]:
        return [n for n in names if n == "__pycache__"
                or (n.endswith(NATIVE_SUFFIXES) and not n.startswith(keep))]  # fmt: skip

    shutil.copytree(PACKAGE, dest / "actionqueue", ignore=ignore)


def python_in(root: Path, **extra: str) -> tuple[list[str], dict[str, str]]:
    """An interpreter command and environment that import ``actionqueue`` from ``root``:
    ``-S`` so that no .pth file (an editable install's finder) takes precedence, with the
    site-packages directories (numpy, xxhash) after ``root`` on the path."""
    site_dirs = [p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and os.path.isdir(p)]
    env = {k: v for k, v in os.environ.items() if k not in ("ACTIONQUEUE_PUREPYTHON", "PYTHONWARNINGS")}
    env["PYTHONPATH"] = os.pathsep.join([str(root), *site_dirs])
    env.update(extra)
    return [sys.executable, "-S"], env


def run_probe(root: Path) -> subprocess.CompletedProcess:
    work = root / "work"
    work.mkdir()
    cmd, env = python_in(root)
    return subprocess.run([*cmd, "-c", PROBE], cwd=work, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("keep", [(), ("_ids",)], ids=["none-built", "half-built"])
def test_missing_native_modules_fall_back_with_one_line(tmp_path, keep) -> None:
    copy_package(tmp_path, keep)
    proc = run_probe(tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.split("\n")
    assert out[0].startswith("python not built: ") and out[0].endswith("actionqueue.codec._codec, actionqueue.log._walk, actionqueue.snapshot._sjson")
    assert ("actionqueue.model._ids" in out[0]) == (keep == ())
    assert out[-2] == "ok"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr  # one line: no source excerpt, no repeat
    line = lines[0]
    assert "NativeModulesUnavailable" in line and "pure-Python" in line and "ACTIONQUEUE_PUREPYTHON=1" in line


def test_native_modules_that_do_not_load_fall_back_with_one_line(tmp_path) -> None:
    """Built for this interpreter but unloadable (here: the identifiers' library replaced by
    junk): the first native import sends the whole package to the twins, in one line."""
    copy_package(tmp_path, keep=("_ids", "_codec", "_walk", "_sjson"))
    (ids_so,) = [p for p in (tmp_path / "actionqueue" / "model").glob("_ids.*") if p.name.endswith(NATIVE_SUFFIXES)]
    ids_so.write_bytes(b"not a shared library")
    proc = run_probe(tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.split("\n")
    assert out[0].startswith("python ") and "_ids" in out[0] and out[-2] == "ok"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "NativeModulesUnavailable" in lines[0], proc.stderr


def test_no_warning_when_pure_python_is_chosen(tmp_path) -> None:
    copy_package(tmp_path)
    cmd, env = python_in(tmp_path, ACTIONQUEUE_PUREPYTHON="1")
    proc = subprocess.run([*cmd, "-c", "import actionqueue as aq; print(aq.backend)"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.strip() == "python" and proc.stderr == ""


def test_native_install_is_silent() -> None:
    if aq._backend.FORCED_PURE:
        pytest.skip("running on the pure-Python implementation")
    assert aq.backend == "cython" and aq._backend.UNAVAILABLE_REASON is None
    assert aq._backend.NATIVE_MODULES == ("model._ids", "codec._codec", "log._walk", "snapshot._sjson")
