"""What a checkout (and the sdist made from it) promises a newcomer: the golden vectors
live in tests/vectors and CI refuses to run without them, the license is declared and
shipped, and the native modules carry no debug info.

The sdist's contents are checked by ``.ci/sdist-check`` (check-manifest, then the
sdist's own tests in a fresh venv).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from aq_testlib import VECTORS_DIR, VECTORS_REQUIRED, vectors_missing_files

import actionqueue as aq

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
NATIVE_MODULES = [
    "actionqueue.model._ids",
    "actionqueue.codec._codec",
    "actionqueue.log._walk",
    "actionqueue.snapshot._sjson",
    "actionqueue.state.reducer",
]


# --------------------------------------------------------------------------------------
# Golden vectors
# --------------------------------------------------------------------------------------
def _pytest(tmp_path: Path, env_update: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run pytest on this suite in a child, against the package this process imported."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "ACTIONQUEUE_VECTORS", "PYTEST_ADDOPTS")}
    env.update(env_update)
    package_parent = str(Path(aq.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


#: One golden-vector test, run by the children below.
VECTOR_TEST = [str(TESTS / "test_model.py"), "-k", "test_decoded_events_pickle"]


def test_vectors_default_to_the_copy_in_the_repository() -> None:
    if os.environ.get("ACTIONQUEUE_VECTORS"):
        pytest.skip("ACTIONQUEUE_VECTORS points the suite elsewhere")
    assert VECTORS_DIR == TESTS / "vectors"
    assert vectors_missing_files(TESTS / "vectors") == []
    assert (TESTS / "vectors" / "README.md").is_file()


@pytest.mark.slow  # a child pytest run
def test_ci_stops_at_startup_without_the_vectors(tmp_path: Path) -> None:
    proc = _pytest(tmp_path, {"CI": "true", "ACTIONQUEUE_VECTORS": str(tmp_path / "absent")}, *VECTOR_TEST)
    out = proc.stdout + proc.stderr
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, out
    assert f"golden vectors at {tmp_path / 'absent'} are not found" in out
    assert out.count("golden vectors") == 1, out  # one error, no per-test skips or failures
    assert "passed" not in out and "skipped" not in out


@pytest.mark.slow  # a child pytest run
def test_ci_stops_at_startup_with_an_incomplete_copy(tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    for rel in VECTORS_REQUIRED[:-1]:  # all but replay/invalid/cases.json
        (partial / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(TESTS / "vectors" / rel, partial / rel)
    proc = _pytest(tmp_path, {"CI": "1", "ACTIONQUEUE_VECTORS": str(partial)}, *VECTOR_TEST)
    out = proc.stdout + proc.stderr
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, out
    assert f"incomplete (absent: {VECTORS_REQUIRED[-1]})" in out


@pytest.mark.slow  # a child pytest run
def test_without_ci_missing_vectors_skip(tmp_path: Path) -> None:
    proc = _pytest(tmp_path, {"ACTIONQUEUE_VECTORS": str(tmp_path / "absent")}, "-rs", *VECTOR_TEST)
    out = proc.stdout + proc.stderr
    assert proc.returncode == pytest.ExitCode.OK, out
    assert re.search(r"\b2 skipped\b", out) and "golden vectors not found" in out, out


@pytest.mark.slow  # a child pytest run
def test_ci_runs_with_the_vectors(tmp_path: Path) -> None:
    """The same child passes under CI with the repository's copy (the check is not a false alarm)."""
    proc = _pytest(tmp_path, {"CI": "true", "ACTIONQUEUE_VECTORS": str(TESTS / "vectors")}, "-rs", *VECTOR_TEST)
    out = proc.stdout + proc.stderr
    assert proc.returncode == pytest.ExitCode.OK, out
    # both codecs' cases pass (the pure-Python leg skips the native one, for that reason only)
    assert re.search(r"\b[12] passed\b", out) and "golden vectors" not in out, out


# --------------------------------------------------------------------------------------
# License
# --------------------------------------------------------------------------------------
def test_mit_license_is_declared_and_shipped() -> None:
    license_text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert license_text.startswith("MIT License\n")
    assert "Copyright (c) 2026 actionqueue developers" in license_text
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in license_text
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    project = pyproject.split("[project]", 1)[1].split("\n[", 1)[0]
    assert re.search(r'^license = "MIT"$', project, re.M)
    assert re.search(r'^license-files = \["LICENSE"\]$', project, re.M)  # into the sdist and the wheels


# --------------------------------------------------------------------------------------
# Native modules: release builds carry no debug info
# --------------------------------------------------------------------------------------
def elf_section_names(path: Path) -> list[str] | None:
    """The section names of an ELF file (None when ``path`` is not ELF)."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF":
        return None
    is64, e = data[4] == 2, "<" if data[5] == 1 else ">"
    if is64:
        (shoff,) = struct.unpack_from(e + "Q", data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", data, 0x3A)
        header = struct.Struct(e + "IIQQQQ")  # name, type, flags, addr, offset, size
    else:
        (shoff,) = struct.unpack_from(e + "I", data, 0x20)
        shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", data, 0x2E)
        header = struct.Struct(e + "IIIIII")
    sections = [header.unpack_from(data, shoff + i * shentsize) for i in range(shnum)]
    str_offset, str_size = sections[shstrndx][4:6]
    strtab = data[str_offset : str_offset + str_size]
    return [strtab[s[0] : strtab.index(b"\0", s[0])].decode("ascii") for s in sections]


def test_elf_section_names_reads_this_interpreter() -> None:
    """The reader the next test relies on, on a file that certainly has sections."""
    names = elf_section_names(Path(sys.executable).resolve())
    if names is None:
        pytest.skip("the interpreter is not an ELF file")
    assert ".text" in names and ".dynsym" in names


def test_native_modules_carry_no_debug_info() -> None:
    """setup.py builds with -g0 (GCC/Clang): Python's own CFLAGS often say -g, which put
    megabytes of DWARF into every module and every wheel."""
    checked = 0
    for name in NATIVE_MODULES:
        spec = importlib.util.find_spec(name)
        origin = Path(spec.origin) if spec is not None and spec.origin else None
        if origin is None or origin.suffix == ".py":
            continue  # a pure-Python install
        names = elf_section_names(origin)
        if names is None:
            continue  # Mach-O keeps DWARF outside the module; MSVC builds have no /Zi
        debug = [n for n in names if n.startswith((".debug_", ".zdebug_"))]
        assert not debug, f"{origin.name} carries debug info {debug}: rebuild it (pip install -e .)"
        checked += 1
    if not checked:
        pytest.skip("no native ELF module to check")
