"""What a checkout (and the modules built from it) promises a newcomer: the native
modules carry no debug info."""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path

import pytest

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
