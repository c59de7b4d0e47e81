"""``actionqueue bench``: the side-by-side benchmarks (see :mod:`actionqueue.bench`)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from typing import Any

from ._common import COUNT, progress, usage_error

NAME = "bench"
HELP = "run the side-by-side benchmarks and print events/s and ratios (--quick, --json, --plot)"
DESCRIPTION = """\
Run the benchmarks in one process on the reference workload of the Rust original
(999,998 events from 32,258 task lifecycles; ~5 minutes on 2 vCPUs, and a 1 GiB file of
~1 KiB records built once in the cache) or, with --quick, on ~15,500 events (seconds).
Each row is the median of --repeat samples; ratios are within this run. Peers that are
not installed (msgspec) are skipped with a note.

sections (--section, repeatable; default all):
{sections}

--json prints one JSON object on stdout (the table goes to stderr); --plot FILE.png
draws events/s and ratios (needs matplotlib: pip install 'actionqueue[plot]').
The workload is cached in $ACTIONQUEUE_BENCH_CACHE (default ~/.cache/actionqueue-bench).
"""


def _describe() -> str:
    from ..bench import SECTIONS

    return DESCRIPTION.format(sections="\n".join(f"  {s.name:10} {s.help}" for s in SECTIONS))


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``bench``."""
    p.description = _describe()
    p.add_argument("--quick", action="store_true", help="a small workload (~15k events, 3 samples): seconds")
    p.add_argument("--section", action="append", metavar="NAME", help="run only this section (repeatable)")
    p.add_argument("--list", action="store_true", help="list the sections and exit")
    p.add_argument("--tasks", type=COUNT, metavar="N", help="workload size in tasks (31 events each)")
    p.add_argument("--repeat", type=COUNT, metavar="R", help="samples per measurement (the median is reported)")
    p.add_argument("--dir", metavar="PATH", help="where temporary data dirs go (default: the system temp dir)")
    p.add_argument("--no-cache", action="store_true", help="regenerate the workload instead of using the disk cache")
    p.add_argument("--json", action="store_true", help="print JSON on stdout (the human table goes to stderr)")
    p.add_argument("--plot", metavar="FILE.png", help="draw events/s and ratios into an image (needs matplotlib)")


def _check_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401  # pyright: ignore[reportMissingImports] - optional extra
    except ImportError:
        raise usage_error("--plot needs the 'plot' extra (matplotlib): pip install 'actionqueue[plot]'") from None


def plot(result: dict[str, Any], path: str) -> None:
    """Draw the rows' events/s (log scale, by section) and the ratios into ``path``."""
    import matplotlib  # pyright: ignore[reportMissingImports] - the optional 'plot' extra

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pyright: ignore[reportMissingImports]

    rows = [r for r in result["rows"] if r.get("events_per_s")]
    ratios = result.get("ratios", {})
    n_rows, n_ratios = max(len(rows), 1), max(len(ratios), 1)
    fig, axes = plt.subplots(2, 1, figsize=(11, 0.26 * (n_rows + n_ratios) + 3),
                             gridspec_kw={"height_ratios": [n_rows + 1, n_ratios + 1]})
    ax = axes[0]
    sections = sorted({r.get("bench") or r["section"] for r in rows})
    colors = {s: plt.cm.tab10(i % 10) for i, s in enumerate(sections)}
    labels = [f"{r.get('bench') or ''}: {r['name']}" for r in rows]
    ax.barh(range(len(rows)), [r["events_per_s"] for r in rows],
            color=[colors[r.get("bench") or r["section"]] for r in rows])
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("events (or appends, or calls) per second, median; log scale")
    cfg = result.get("config", {})
    ax.set_title(f"actionqueue bench: {cfg.get('tasks', '?')} tasks, median of {cfg.get('repeat', '?')}, "
                 f"backend {result.get('backend')}, python {result.get('python')}", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    ax = axes[1]
    items = list(ratios.items())
    ax.barh(range(len(items)), [v for _, v in items], color=["tab:green" if v >= 1 else "tab:red" for _, v in items])
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(items)), [k for k, _ in items], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("ratio (above 1: ours is faster / the goal is met)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    """Run the selected sections; print the table (and JSON / a plot)."""
    from .. import backend
    from ..bench import SECTIONS, BenchConfig, Report, run_sections, section_names

    if args.list:
        for s in SECTIONS:
            print(f"{s.name:10} {s.help}")
        return 0
    if args.section:
        unknown = sorted(set(args.section) - set(section_names()))
        if unknown:
            raise usage_error(f"unknown section(s) {', '.join(unknown)}; known: {', '.join(section_names())}")
    if args.plot:
        _check_matplotlib()
        if not args.plot.lower().endswith((".png", ".svg", ".pdf")):
            raise usage_error(f"--plot {args.plot}: give a .png (or .svg/.pdf) file name")
    overrides = {"tasks": args.tasks, "repeat": args.repeat, "dir": args.dir, "no_cache": args.no_cache or None}
    if args.quick:
        cfg = BenchConfig.quick_config(**overrides)
    else:
        cfg = BenchConfig(**{k: v for k, v in overrides.items() if v is not None})
    if cfg.dir is not None and not os.path.isdir(cfg.dir):
        raise usage_error(f"--dir {cfg.dir}: {'is a file' if os.path.exists(cfg.dir) else 'no such directory'}; "
                          "expected a directory")
    out = sys.stderr if args.json else sys.stdout
    rep = Report(out, config=cfg)
    names = args.section or section_names()
    bar = progress(len(names), "bench", "section")
    if hasattr(bar, "write"):
        rep.bar = bar
    t0 = time.perf_counter()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    rep.say(f"# actionqueue bench  {'quick' if cfg.quick else 'full'}: {cfg.tasks:,} tasks, median of {cfg.repeat};"
            f" load average {load[0]:.2f}")
    if load[0] > 0.5:
        rep.say("WARNING: the machine is busy (load average > 0.5); expect noisy figures")

    def moved(section: Any) -> None:
        bar.set_postfix_str(section.name)

    done: list[str] = []
    try:
        for name in names:
            done += run_sections(rep, [name], moved)
            bar.update(1)
    finally:
        bar.close()
        rep.bar = None
        rep.close()
    total = time.perf_counter() - t0
    rep.say(f"\n# total {total:.0f} s")
    result = {
        "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(), "backend": backend,
        "config": vars(cfg), "sections": done, "total_s": total, "loadavg_start": load, **rep.to_json(),
    }
    if args.plot:
        plot(result, args.plot)
        rep.say(f"plot written to {args.plot}")
    if args.json:
        json.dump(result, sys.stdout, indent=1, default=str)
        sys.stdout.write("\n")
    return 0
