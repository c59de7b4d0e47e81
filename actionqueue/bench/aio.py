"""The asyncio section: 1,000 coroutines appending durably through :mod:`actionqueue.aio`
with GROUP (the event loop batches the fsyncs) against fsync-per-append (the synchronous
:class:`~actionqueue.WalWriter` with FSYNC, one thread), measured in the same run.

Reported: appends/s of both and their ratio (goal >= 20x), appends per fsync, and the p99
latency of an append (from the call to its return, durable) in units of this run's
median fsync time (goal <= 3), on the standard loop and on uvloop when it is installed.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .harness import Report, sample

#: Coroutines appending at once (the issue's goal is stated for 1,000).
COROUTINES = 1000
#: The paced run offers this share of the closed-loop rate measured just before it.
PACED_LOAD = 0.25
PACED_SEED = 20261207


class _TimedFsync:
    """Counts ``os.fsync`` calls and keeps their durations (the writer's file seam calls
    ``os.fsync`` at call time, from any thread)."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._orig = os.fsync

    def __enter__(self) -> _TimedFsync:
        orig, times = self._orig, self.times

        def timed(fd: Any) -> None:
            t0 = time.perf_counter()
            orig(fd)
            times.append(time.perf_counter() - t0)

        os.fsync = timed
        return self

    def __exit__(self, *exc: object) -> None:
        os.fsync = self._orig


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


async def _coroutines(data_dir: Path, per_coroutine: int, latencies: list[float]) -> float:
    """``COROUTINES`` coroutines, each appending ``per_coroutine`` events one after the
    other; returns the wall time of the appends (open and close not timed)."""
    import actionqueue as aq

    async with aq.aio.WalWriter(data_dir, durability="group") as writer:
        body = aq.EnginePaused(0)
        clock = time.perf_counter

        async def one() -> None:
            for _ in range(per_coroutine):
                t0 = clock()
                await writer.append_next(body)
                latencies.append(clock() - t0)

        t0 = clock()
        await asyncio.gather(*(one() for _ in range(COROUTINES)))
        return clock() - t0


async def _paced(data_dir: Path, per_coroutine: int, rate: float, latencies: list[float]) -> None:
    """``COROUTINES`` coroutines appending ``per_coroutine`` events each at random
    (exponential) intervals, ``rate`` appends/s in all: the latency of an append under a
    load the writer keeps up with, rather than behind 999 others (random seed ``PACED_SEED``)."""
    import actionqueue as aq

    rng = random.Random(PACED_SEED)
    mean_gap = COROUTINES / rate
    async with aq.aio.WalWriter(data_dir, durability="group") as writer:
        body = aq.EnginePaused(0)
        clock = time.perf_counter

        async def one(gaps: list[float]) -> None:
            for gap in gaps:
                await asyncio.sleep(gap)
                t0 = clock()
                await writer.append_next(body)
                latencies.append(clock() - t0)

        plans = [[rng.expovariate(1 / mean_gap) for _ in range(per_coroutine)] for _ in range(COROUTINES)]
        await asyncio.gather(*(one(gaps) for gaps in plans))


def _loops() -> list[tuple[str, Callable[[], asyncio.AbstractEventLoop]]]:
    loops: list[tuple[str, Callable[[], asyncio.AbstractEventLoop]]] = [("asyncio", asyncio.new_event_loop)]
    try:
        import uvloop
    except ImportError:
        return loops
    return [*loops, ("uvloop", uvloop.new_event_loop)]


def _paced_row(rep: Report, name: str, new_loop: Callable[[], asyncio.AbstractEventLoop],
               fresh: Callable[[], Path], per: int, rate: float, fsync_s: float, fsyncs: _TimedFsync) -> None:
    """The p99 latency of an append at ``rate`` appends/s offered (random intervals)."""
    p99s, p50s, per_fsync, own_fsyncs = [], [], [], []
    for _ in range(rep.config.repeat):
        d, latencies = fresh(), list[float]()
        fsyncs.times.clear()
        loop = new_loop()
        try:
            loop.run_until_complete(_paced(d, per, rate, latencies))
        finally:
            loop.close()
        p99s.append(_p99(latencies))
        p50s.append(statistics.median(latencies))
        per_fsync.append(COROUTINES * per / max(len(fsyncs.times), 1))
        own_fsyncs.extend(fsyncs.times)
        shutil.rmtree(d)
    p99, p50 = statistics.median(p99s), statistics.median(p50s)
    # the fsyncs of these runs are slower than the baseline's (the loop writes while one
    # runs): the latency in both units
    own = statistics.median(own_fsyncs) if own_fsyncs else fsync_s
    rep.extra.setdefault("aio_paced", {})[name] = {"rate": rate, "p99_latency_s": p99, "p99_in_fsyncs": p99 / fsync_s,
                                                   "p50_latency_s": p50, "own_fsync_median_s": own,
                                                   "p99_in_own_fsyncs": p99 / own,
                                                   "appends_per_fsync": statistics.median(per_fsync)}
    rep.say(f"  {'':50} paced at {rate:,.0f} appends/s ({PACED_LOAD:.0%} of that rate, random gaps):"
            f" p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms = {p99 / fsync_s:.1f} fsyncs"
            f" ({p99 / own:.1f} of this run's, median {own * 1e3:.2f} ms),"
            f" {statistics.median(per_fsync):,.1f} appends per fsync")


def run(rep: Report) -> None:
    """Measure fsync-per-append, then the coroutines on each loop; ratios and goals."""
    import actionqueue as aq

    cfg = rep.config
    repeat = cfg.repeat
    per = 1 if cfg.quick else 5
    n_fsync = min(cfg.fsync_events, 500)
    root = rep.scratch() / "aio"
    root.mkdir(exist_ok=True)
    made = [0]

    def fresh() -> Path:
        made[0] += 1
        d = root / f"d{made[0]}"
        d.mkdir()
        return d

    rep.header(f"asyncio appends ({COROUTINES:,} coroutines x {per}; fresh data dir per sample, open/close not timed)")
    with _TimedFsync() as fsyncs:
        def fsync_setup() -> tuple[Any, ...]:
            writer = aq.WalWriter(fresh(), durability="fsync")
            writer.append_next(aq.EnginePaused(0))  # creates the segment (not timed)
            fsyncs.times.clear()
            return (writer,)

        def fsync_appends(writer: Any) -> None:
            body = aq.EnginePaused(0)
            for _ in range(n_fsync):
                writer.append_next(body)

        fsync_times: list[float] = []

        def fsync_done(state: tuple[Any, ...], _result: Any) -> None:
            fsync_times.extend(fsyncs.times)
            state[0].close()
            shutil.rmtree(state[0].data_dir)

        rep.row("aio", f"sync WalWriter FSYNC append x{n_fsync:,} (1 thread)", n_fsync,
                *sample(fsync_appends, repeat, fsync_setup, fsync_done), key="aio.fsync")
        fsync_s = statistics.median(fsync_times)
        rep.say(f"  {'':50} median fsync {fsync_s * 1e3:.2f} ms (p99 {_p99(fsync_times) * 1e3:.2f} ms)")
        rep.extra["aio"] = {"fsync_median_s": fsync_s, "coroutines": COROUTINES, "appends_per_coroutine": per}

        for name, new_loop in _loops():
            times, p99s, per_fsync = [], [], []
            for _ in range(repeat):
                d = fresh()
                latencies: list[float] = []
                fsyncs.times.clear()
                loop = new_loop()
                try:
                    times.append(loop.run_until_complete(_coroutines(d, per, latencies)))
                finally:
                    loop.close()
                per_fsync.append(COROUTINES * per / max(len(fsyncs.times), 1))
                p99s.append(_p99(latencies))
                shutil.rmtree(d)
            total = COROUTINES * per
            r = rep.row("aio", f"aio GROUP append_next, {COROUTINES:,} coroutines ({name})", total,
                        statistics.median(times), times, key=f"aio.group.{name}")
            r["appends_per_fsync"] = statistics.median(per_fsync)
            r["p99_latency_s"] = statistics.median(p99s)
            r["p99_in_fsyncs"] = r["p99_latency_s"] / fsync_s
            # closed loop: each append waits behind the other 999 coroutines' CPU time, so its
            # latency is at least COROUTINES / rate (Little's law), whatever the batching
            r["littles_law_floor_in_fsyncs"] = COROUTINES * statistics.median(times) / total / fsync_s
            rep.say(f"  {'':50} {r['appends_per_fsync']:,.0f} appends per fsync (incl. open/close),"
                    f" p99 latency {r['p99_latency_s'] * 1e3:.1f} ms = {r['p99_in_fsyncs']:.1f} fsyncs"
                    f" (Little's law floor {r['littles_law_floor_in_fsyncs']:.1f})")
            _paced_row(rep, name, new_loop, fresh, per, PACED_LOAD * total / statistics.median(times), fsync_s, fsyncs)

    rep.say("\n## ratios and goals (same run)")
    for name, _ in _loops():
        ratio = rep.ratio(f"aio GROUP {COROUTINES:,} coroutines ({name}) / FSYNC per append (appends/s)",
                          rep.eps(f"aio.group.{name}") / rep.eps("aio.fsync"))
        row = rep.get(f"aio.group.{name}")
        assert row is not None
        rep.goal(f"aio GROUP ({name}) >= 20x FSYNC per append", ratio >= 20, f"{ratio:.1f}x")
        rep.goal(f"aio GROUP ({name}) p99 latency <= 3 fsyncs, all 1,000 flat out", row["p99_in_fsyncs"] <= 3,
                 f"{row['p99_in_fsyncs']:.2f} fsyncs ({row['p99_latency_s'] * 1e3:.1f} ms;"
                 f" Little's law floor {row['littles_law_floor_in_fsyncs']:.1f})")
        paced = rep.extra["aio_paced"][name]
        rep.goal(f"aio GROUP ({name}) p99 latency <= 3 fsyncs, paced at {PACED_LOAD:.0%} load", paced["p99_in_fsyncs"] <= 3,
                 f"{paced['p99_in_fsyncs']:.2f} fsyncs ({paced['p99_latency_s'] * 1e3:.2f} ms)")
