"""Timing and reporting shared by the side-by-side benchmark scripts."""

from __future__ import annotations

import gc
import statistics
import time


def sample(fn, repeat, setup=None, teardown=None):
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


class Report:
    """Rows of measurements, printed as they come and kept for ``--json``.

    ``unit`` is the throughput column: ``"MB"`` (10^6 B/s) or ``"GB"`` (10^9 B/s); every
    row records both ``mb_per_s`` and ``gb_per_s``."""

    def __init__(self, out, unit: str = "MB"):
        self.out = out
        self.unit = unit
        self.rows = []
        self.extra = {}

    def say(self, text=""):
        print(text, file=self.out, flush=True)

    def row(self, section, name, n, med, times, nbytes=None, *, key=None, note=""):
        r = {
            "key": key, "section": section, "name": name, "n": n, "median_s": med, "samples_s": times,
            "events_per_s": n / med if n else None, "ns_per_event": med / n * 1e9 if n else None,
            "bytes": nbytes, "mb_per_s": nbytes / med / 1e6 if nbytes else None,
            "gb_per_s": nbytes / med / 1e9 if nbytes else None, "note": note,
        }
        self.rows.append(r)
        eps = f"{r['events_per_s'] / 1e6:8.3f}" if n else f"{'':8}"
        rate = r["mb_per_s"] if self.unit == "MB" else r["gb_per_s"]
        tput = (f"{rate:8.1f}" if self.unit == "MB" else f"{rate:8.2f}") if nbytes else f"{'-':>8}"
        nse = f"{r['ns_per_event']:9.0f}" if n else f"{'':9}"
        count = f"{n:>9,}" if n else f"{'':9}"
        self.say(f"  {name:52} {count} {eps} {tput} {nse}  {med * 1e3:9.1f} {min(times) * 1e3:9.1f}  {note}".rstrip())
        return r

    def header(self, title):
        self.say(f"\n## {title}")
        self.say(f"  {'':52} {'events':>9} {'M ev/s':>8} {self.unit + '/s':>8} {'ns/ev':>9}  {'median ms':>9} {'best ms':>9}")

    def get(self, key):
        for r in self.rows:
            if r["key"] == key:
                return r
        return None
