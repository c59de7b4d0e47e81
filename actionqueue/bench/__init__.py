"""Side-by-side benchmarks: the codec against msgspec, pickle and the pure-Python twin, the
WAL scanner against memory copies, reading back, appends by durability mode; all in one
process on the reference workload of the Rust original (:mod:`actionqueue.bench.workload`).

Run them with ``actionqueue bench`` (``--quick`` for a small workload, ``--json``,
``--plot FILE.png``) or the scripts in ``benchmarks/``.

Sections
--------
A section is a function ``section(rep)`` taking the :class:`~actionqueue.bench.harness.Report`:
it reads its parameters from ``rep.config`` (:class:`~actionqueue.bench.harness.BenchConfig`),
the workload from ``rep.workload()``, makes temporary data dirs under ``rep.scratch()``,
records rows with ``rep.header``/``rep.row`` (timed with
:func:`~actionqueue.bench.harness.sample`) and its conclusions with ``rep.ratio`` and
``rep.goal``. :data:`SECTIONS` lists them, each as ``"module:function"`` so a section's
imports (msgspec, ...) are only loaded when it runs; adding a section is one line there.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .harness import BenchConfig, Report, sample

__all__ = ["SECTIONS", "BenchConfig", "Report", "Section", "run_sections", "sample", "section_names"]


@dataclass(frozen=True)
class Section:
    """A benchmark section: its name (for ``--section``), where its function lives
    (``"package.module:function"``, imported on use) and one line of help."""

    name: str
    target: str
    help: str

    def load(self) -> Callable[[Report], None]:
        """Import and return the section function."""
        module, _, func = self.target.partition(":")
        return getattr(importlib.import_module(module), func)


#: Every section, in the order they run.
SECTIONS: list[Section] = [
    Section("codec", "actionqueue.bench.codec:run", "encode/decode vs msgspec, pickle-5, the pure-Python twin; copies; CRC-32"),
    Section("wal", "actionqueue.bench.wal:run", "scanner vs memory copy, WalReader, appends (FSYNC, GROUP, NONE)"),
    Section("recovery", "actionqueue.bench.recovery:run", "reducer apply, end-to-end replay, recovery with/without a snapshot"),
    Section("snapshot", "actionqueue.bench.snapshot:run", "snapshot build, write, load vs Rust; periodic snapshot; commands during one"),
    Section("export", "actionqueue.bench.export:run", "the log to an Arrow table of columns, Parquet, Arrow IPC, JSON lines"),
    Section("aio", "actionqueue.bench.aio:run", "1,000 coroutines appending through actionqueue.aio (GROUP) vs FSYNC per append"),
]


def section_names() -> list[str]:
    """The names of :data:`SECTIONS`."""
    return [s.name for s in SECTIONS]


def run_sections(rep: Report, names: Iterable[str] | None = None,
                 on_section: Callable[[Section], None] | None = None) -> list[str]:
    """Run the sections named (all by default) in registry order; returns the names run.

    ``on_section`` is called before each one (the CLI moves its progress bar there).
    Each section's wall time is kept in ``rep.extra["section_s"]``."""
    wanted = None if names is None else set(names)
    unknown = (wanted or set()) - set(section_names())
    if unknown:
        raise ValueError(f"unknown benchmark section(s): {', '.join(sorted(unknown))}; known: {', '.join(section_names())}")
    ran = []
    times = rep.extra.setdefault("section_s", {})
    for section in SECTIONS:
        if wanted is not None and section.name not in wanted:
            continue
        if on_section is not None:
            on_section(section)
        fn = section.load()
        rep.section = section.name
        t0 = time.perf_counter()
        fn(rep)
        times[section.name] = time.perf_counter() - t0
        ran.append(section.name)
    rep.section = None
    return ran
