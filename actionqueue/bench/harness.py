"""Timing and reporting shared by every benchmark section.

:func:`sample` times a callable (median of samples, the GC collected before and off inside
each); :class:`Report` prints rows as they are measured and keeps them (plus ratios, goals
and anything else a section records) for ``--json`` and plots. A section is a function
``section(rep: Report) -> None``; it reads its parameters from ``rep.config``
(:class:`BenchConfig`), the reference workload from :meth:`Report.workload` and makes its
temporary data dirs under :meth:`Report.scratch`.
"""

from __future__ import annotations

import gc
import math
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO


def sample(fn: Callable[..., Any], repeat: int, setup: Callable[[], tuple] | None = None,
           teardown: Callable[[tuple, Any], None] | None = None) -> tuple[float, list[float]]:
    """Median (and all samples) of ``fn(*setup())`` wall time; gc collected before, off inside.

    ``setup`` and ``teardown(state, result)`` run outside the clock."""
    times = []
    for _ in range(repeat):
        state = setup() if setup else ()
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter()
            r = fn(*state)
            t1 = time.perf_counter()
        finally:
            gc.enable()
        if teardown:
            teardown(state, r)
        del r, state
        times.append(t1 - t0)
    return statistics.median(times), times


@dataclass
class BenchConfig:
    """Parameters of a benchmark run (the defaults are the full reference run; :meth:`quick`
    is a small one). Attribute names match the options of the ``benchmarks/*.py`` scripts."""

    tasks: int = 32_258  # workload.REFERENCE_TASKS
    seed: int = 20_240_601  # workload.DEFAULT_SEED
    repeat: int = 5
    #: events for the slow codecs (pure-Python twin, pickle)
    subset: int = 50_000
    #: events per kind in the per-kind section
    kind_n: int = 100_000
    no_kinds: bool = False
    no_cache: bool = False
    #: appends in the FSYNC measurement (Rust: 2,000)
    fsync_events: int = 2000
    #: appends per GROUP sample, shared by the threads
    group_appends: int = 8000
    #: events in the NONE append measurements (Rust: 200,000)
    append_events: int = 200_000
    #: where temporary data dirs go (None: the system temp dir)
    dir: str | None = None
    #: size of the ~1 KiB-record segment (the full size is cached between runs)
    kib_bytes: int = 1 << 30
    #: bytes per pass of the big memory copy (x4 passes) and of the big CRC-32 (x8)
    copy_bytes: int = 256 << 20
    crc_bytes: int = 64 << 20
    quick: bool = False

    @classmethod
    def quick_config(cls, **overrides: Any) -> BenchConfig:
        """A small workload (~15k events, 3 samples, MiB-sized buffers): seconds, not minutes."""
        base: dict[str, Any] = dict(tasks=500, repeat=3, subset=5000, kind_n=5000, fsync_events=200,
                                    group_appends=600, append_events=10_000, kib_bytes=16 << 20,
                                    copy_bytes=32 << 20, crc_bytes=16 << 20, quick=True)
        base.update({k: v for k, v in overrides.items() if v is not None})
        tasks = int(base["tasks"])
        if tasks < 500:  # a tiny workload: fewer fsyncs too (each costs ~0.1-5 ms)
            base["fsync_events"] = min(200, max(20, 4 * tasks))
            base["group_appends"] = min(600, max(48, 8 * tasks))
            base["kib_bytes"] = 4 << 20
            base["copy_bytes"] = 8 << 20
            base["crc_bytes"] = 4 << 20
        return cls(**base)


class Report:
    """Rows of measurements, printed as they come and kept for ``--json``.

    ``unit`` is the throughput column: ``"MB"`` (10^6 B/s) or ``"GB"`` (10^9 B/s); every
    row records both ``mb_per_s`` and ``gb_per_s``. A section may change ``unit`` for its
    own tables."""

    def __init__(self, out: TextIO | None = None, unit: str = "MB", config: BenchConfig | None = None):
        self.out = out if out is not None else sys.stdout
        self.unit = unit
        self.config = config if config is not None else BenchConfig()
        self.rows: list[dict[str, Any]] = []
        self.extra: dict[str, Any] = {}
        #: label -> value of every ratio a section reported
        self.ratios: dict[str, float] = {}
        #: label -> {"pass": bool, "detail": str}
        self.goals: dict[str, dict[str, Any]] = {}
        #: what was left out and why (a peer that is not installed, ...)
        self.skipped: list[str] = []
        #: state sections share (e.g. a data dir one builds and the next one reads)
        self.shared: dict[str, Any] = {}
        self.section: str | None = None
        self.bar: Any = None  # a tqdm bar to print around, set by the CLI
        self._workload: bytes | None = None
        self._scratch: Path | None = None

    # ---------------------------------------------------------------- output
    def say(self, text: str = "") -> None:
        """Print a line of the human report."""
        if self.bar is not None:
            self.bar.write(text, file=self.out)
            self.out.flush()
        else:
            print(text, file=self.out, flush=True)

    def row(self, section: str, name: str, n: int, med: float, times: list[float], nbytes: int | None = None, *,
            key: str | None = None, note: str = "") -> dict[str, Any]:
        """Record and print one measurement: ``n`` events (0: a byte-only row) in ``med`` s."""
        r: dict[str, Any] = {
            "key": key, "section": section, "name": name, "n": n, "median_s": med, "samples_s": times,
            "events_per_s": n / med if n else None, "ns_per_event": med / n * 1e9 if n else None,
            "bytes": nbytes, "mb_per_s": nbytes / med / 1e6 if nbytes else None,
            "gb_per_s": nbytes / med / 1e9 if nbytes else None, "note": note, "bench": self.section,
        }
        self.rows.append(r)
        eps = f"{r['events_per_s'] / 1e6:8.3f}" if n else f"{'':8}"
        rate = r["mb_per_s"] if self.unit == "MB" else r["gb_per_s"]
        tput = (f"{rate:8.1f}" if self.unit == "MB" else f"{rate:8.2f}") if nbytes else f"{'-':>8}"
        nse = f"{r['ns_per_event']:9.0f}" if n else f"{'':9}"
        count = f"{n:>9,}" if n else f"{'':9}"
        self.say(f"  {name:52} {count} {eps} {tput} {nse}  {med * 1e3:9.1f} {min(times) * 1e3:9.1f}  {note}".rstrip())
        return r

    def header(self, title: str) -> None:
        """Start a table."""
        self.say(f"\n## {title}")
        self.say(f"  {'':52} {'events':>9} {'M ev/s':>8} {self.unit + '/s':>8} {'ns/ev':>9}  {'median ms':>9} {'best ms':>9}")

    def get(self, key: str) -> dict[str, Any] | None:
        """The row recorded under ``key`` (None if it was not measured)."""
        for r in self.rows:
            if r["key"] == key:
                return r
        return None

    def eps(self, key: str) -> float:
        """Events/s of a row; NaN when the row is missing."""
        r = self.get(key)
        return r["events_per_s"] if r and r["events_per_s"] else float("nan")

    def gbs(self, key: str) -> float:
        """GB/s of a row; NaN when the row is missing."""
        r = self.get(key)
        return r["gb_per_s"] if r and r["gb_per_s"] else float("nan")

    def ratio(self, label: str, value: float, width: int = 64) -> float:
        """Record and print a ratio; a NaN (a row that was skipped) is not recorded."""
        if value is None or math.isnan(value):
            return float("nan")
        self.ratios[label] = value
        self.say(f"  {label:{width}} {value:7.2f}x")
        return value

    def goal(self, label: str, ok: bool, detail: str, width: int = 52) -> None:
        """Record and print a PASS/MISS goal."""
        self.goals[label] = {"pass": bool(ok), "detail": detail}
        self.say(f"  {'PASS' if ok else 'MISS'}  {label:{width}} {detail}")

    def skip(self, what: str) -> None:
        """Note something left out of the run (printed, and kept in ``skipped``)."""
        self.skipped.append(what)
        self.say(f"(skipped: {what})")

    # ---------------------------------------------------------------- inputs
    @property
    def workload_label(self) -> str:
        """The workload as labels name it: the reference workload, or the part of it run."""
        from . import workload

        tasks = self.config.tasks
        if tasks == workload.REFERENCE_TASKS:
            return "the reference workload"
        return f"the reference workload cut to {tasks:,} tasks"

    def workload(self) -> bytes:
        """The reference workload buffer for ``config.tasks``/``seed`` (built or read from
        the cache once per report)."""
        if self._workload is None:
            from . import workload

            self._workload = workload.reference_buffer(self.config.tasks, self.config.seed, cache=not self.config.no_cache)
        return self._workload

    def scratch(self) -> Path:
        """A temporary directory for this report (under ``config.dir``), removed by :meth:`close`."""
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="aq-bench-", dir=self.config.dir))
        return self._scratch

    def close(self) -> None:
        """Remove the scratch directory and drop the workload."""
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
        self._workload = None
        self.shared.clear()

    def to_json(self) -> dict[str, Any]:
        """Everything recorded, JSON-ready."""
        return {"rows": self.rows, "ratios": self.ratios, "goals": self.goals, "skipped": self.skipped, **self.extra}



# ------------------------------------------------------------------- the benchmarks/ scripts
def script_arguments(ap: Any) -> None:
    """The options every ``benchmarks/*.py`` script takes (workload, samples, JSON)."""
    base = BenchConfig()
    ap.add_argument("--tasks", type=int, default=base.tasks, help="tasks (31 events each); default the full 32,258")
    ap.add_argument("--seed", type=int, default=base.seed)
    ap.add_argument("--repeat", type=int, default=base.repeat, help="samples per measurement (median reported)")
    ap.add_argument("--no-cache", action="store_true", help="regenerate the workload instead of using the disk cache")
    ap.add_argument("--json", action="store_true", help="print JSON on stdout (the human table goes to stderr)")


def run_script(section: Callable[[Report], None], args: Any, config: BenchConfig, *, unit: str = "MB",
               json_extra: dict[str, Any] | None = None) -> int:
    """Run one section for a ``benchmarks/*.py`` script: the table (on stderr with
    ``--json``), the load average before and after, and the JSON on stdout."""
    import json
    import os
    import platform

    import actionqueue as aq

    t_start = time.perf_counter()
    rep = Report(sys.stderr if args.json else sys.stdout, unit=unit, config=config)
    load = os.getloadavg()
    rep.say(f"timing: median of {args.repeat}, gc disabled inside samples; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if load[0] > 0.5:
        rep.say("WARNING: the machine is busy (load average > 0.5); other processes share the CPUs, expect noisy figures")
    rep.extra["loadavg_start"] = load
    try:
        section(rep)
    finally:
        rep.close()
    total = time.perf_counter() - t_start
    rep.extra["loadavg_end"] = os.getloadavg()
    rep.say(f"\n# total {total:.0f} s; load average now {rep.extra['loadavg_end'][0]:.2f}")
    if args.json:
        out = {"python": platform.python_version(), "backend": aq.backend, "repeat": args.repeat,
               **(json_extra or {}), "total_s": total, **rep.to_json()}
        json.dump(out, sys.stdout, indent=1)
        print()
    return 0
