"""Metrics: the counters and timings of a store, a writer and a mutation authority, as a
plain snapshot dict, and an optional Prometheus collector.

``store.metrics()``, ``writer.metrics()`` and ``authority.metrics()`` return a new
``dict`` each call. The raw numbers live on the objects that own them and are only read
here: the writer counts its writes (one ``int`` increment per write, where it already
updates its position), its fsyncs (one clock read before and after each) and derives
bytes and records from the position it keeps anyway; the authority counts its commands;
the snapshotter and the recovery report already hold the rest. Nothing is computed, locked
or timed per append for the metrics; the work is done when they are read.

Keys (stable names, units in the names; *counter*: only grows while the object lives):

=============================  ==============================================================
``appends_total``              counter: writes (``append``, ``append_next``, ``append_many``,
                               ``write``, a command) since this writer opened
``events_total``               counter: records those writes held
``bytes_written_total``        counter: bytes written to the log (equal to its files' growth)
``fsyncs_total``               counter: fsyncs of the log's files that succeeded (per append
                               with FSYNC, one per group with GROUP, ``sync``, rotation, close)
``appends_per_fsync``          mean: ``appends_total / fsyncs_total`` (0.0 before any fsync)
``fsync_seconds``              histogram: ``{"buckets": [(le, count), ...], "sum": s, "count": n}``,
                               Prometheus-style cumulative: each count is of fsyncs that took
                               at most ``le`` seconds; the last ``le`` is ``inf`` (its count
                               is ``count``); bounds :data:`FSYNC_SECONDS_BUCKETS`
``fsync_seconds_max``          the longest fsync (0.0 before any)
``last_sequence``              the sequence of the last record in the log
``segments``                   files of the log (segments, or 1 for the Rust single file)
``log_bytes``                  their total size
``poisoned``                   bool: the writer (or the authority) refuses every call
``poison_reason``              why, as ``"Type: message"``, or None
=============================  ==============================================================

A store (and an authority with a snapshotter, e.g. made by ``from_store``) adds:

=================================  ==========================================================
``snapshots_total``                counter: snapshots this process took (on request or in
                                   the background)
``snapshots_failed_total``         counter: background snapshots that failed
``snapshot_sequence``              the sequence the newest snapshot covers (0: none)
``snapshot_age_seconds``           seconds since the newest snapshot was written (that of
                                   ``snapshot.bin`` when this process took none), or None
``last_snapshot_duration_seconds`` wall time of the last snapshot this process took, or None
``events_since_snapshot``          ``last_sequence - snapshot_sequence``
=================================  ==========================================================

A store adds ``recovery_seconds`` (its :class:`~actionqueue.RecoveryReport`'s
``duration_s``); an authority adds ``commands_total`` (commands run to a verdict: written,
or rejected) and ``commands_rejected_total`` (:class:`~actionqueue.CommandRejected`), and
so does a store, summed over the authorities made from it with ``from_store``.

**Threads.** Reading is safe from any thread while others append, and takes no lock: the
numbers are plain attributes read one after another, so one dict may mix values from
just before and just after a concurrent write (``appends_total`` one behind
``bytes_written_total``, a histogram's ``sum`` one fsync behind its buckets). Each
counter on its own never goes back; the bytes and records the writer folds into its
totals when it rotates to a new segment are read consistently (a generation number,
retried).

:class:`PrometheusCollector` exposes the same numbers to ``prometheus_client`` (an
optional extra: ``pip install 'actionqueue[prometheus]'``) at scrape time.
"""

from __future__ import annotations

import bisect
import os
import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._extras import require

if TYPE_CHECKING:  # pragma: no cover
    from .log.files import Files
    from .log.writer import WalWriter
    from .recovery import Store
    from .state.authority import MutationAuthority

__all__ = [
    "FSYNC_SECONDS_BUCKETS",
    "FsyncTimer",
    "PrometheusCollector",
    "authority_metrics",
    "store_metrics",
    "writer_metrics",
]

#: Upper bounds (seconds) of the fsync latency histogram: fixed, log-spaced (1, 2.5, 5 per
#: decade) from 10 microseconds to 10 seconds; slower fsyncs count in the ``inf`` bucket only.
FSYNC_SECONDS_BUCKETS: tuple[float, ...] = tuple(float(f"{m}e{e}") for e in range(-5, 1) for m in (1, 2.5, 5)) + (10.0,)

_perf_counter = time.perf_counter
_bisect_left = bisect.bisect_left


class FsyncTimer:
    """The fsyncs of one writer's log files: how many, how long (a histogram over
    :data:`FSYNC_SECONDS_BUCKETS`), the longest.

    The writer's fsyncs of its log files run one at a time (under its write lock or its
    fsync lock), so :meth:`fsync` updates the numbers without a lock of its own. Only
    fsyncs that succeed are counted (a failed one poisons the writer: ``poisoned``)."""

    __slots__ = ("counts", "sum", "max")

    def __init__(self) -> None:
        #: fsyncs per bucket (not cumulative); the last one is above every bound
        self.counts = [0] * (len(FSYNC_SECONDS_BUCKETS) + 1)
        self.sum = 0.0
        self.max = 0.0

    def fsync(self, fs: Files, fd: int) -> None:
        """``fs.fsync(fd)``, timed: two clock reads and a bucket search per fsync."""
        started = _perf_counter()
        fs.fsync(fd)
        self.observe(_perf_counter() - started)

    def observe(self, seconds: float) -> None:
        """Count one fsync that took ``seconds``."""
        self.counts[_bisect_left(FSYNC_SECONDS_BUCKETS, seconds)] += 1
        self.sum += seconds
        if seconds > self.max:
            self.max = seconds

    @property
    def count(self) -> int:
        """fsyncs counted."""
        return sum(self.counts)

    def histogram(self) -> dict[str, Any]:
        """``{"buckets": [(le, cumulative count), ..., (inf, count)], "sum": s, "count": n}``."""
        counts = list(self.counts)  # one copy: the buckets agree with each other and the count
        buckets, running = [], 0
        for bound, n in zip((*FSYNC_SECONDS_BUCKETS, float("inf")), counts):
            running += n
            buckets.append((bound, running))
        return {"buckets": buckets, "sum": self.sum, "count": running}


def _reason(error: BaseException | None) -> str | None:
    return None if error is None else f"{type(error).__name__}: {error}"


def _totals(writer: WalWriter) -> tuple[int, int]:
    """``(bytes, records)`` written since the writer opened: the totals it folded in at
    each rotation plus the active file's, read between two equal even generations (a
    rotation runs between an odd and the next even one). Should a rotation stay cut short
    (an interrupt inside it) the numbers are taken as read after about 0.1 s of retries."""
    folded_bytes = folded_records = size = records = 0
    for attempt in range(100):
        generation = writer._rotations
        folded_bytes, folded_records = writer._folded
        size, records = writer._size, writer._active_records
        if generation == writer._rotations and not generation & 1:
            break
        _pause(0.0 if attempt < 10 else 0.001)  # let the rotating thread finish
    return folded_bytes + size, folded_records + records


_pause = time.sleep  # (a test's hook)


def writer_metrics(writer: WalWriter) -> dict[str, Any]:
    """The writer's keys (see the module's table); :meth:`WalWriter.metrics`."""
    timer = writer._fsyncs
    histogram = timer.histogram()
    appends = writer._appends
    bytes_written, events = _totals(writer)
    fsyncs = histogram["count"]
    sealed = [s.seal.length for s in writer._catalog.segments if s.seal is not None and s.path != writer.path]
    files = len(sealed) + (writer.path is not None)
    return {
        "appends_total": appends,
        "events_total": events,
        "bytes_written_total": bytes_written,
        "fsyncs_total": fsyncs,
        "appends_per_fsync": appends / fsyncs if fsyncs else 0.0,
        "fsync_seconds": histogram,
        "fsync_seconds_max": timer.max,
        "last_sequence": writer._sequence,
        "segments": files,
        "log_bytes": sum(sealed) + writer._size,
        "poisoned": writer._poisoned is not None,
        "poison_reason": _reason(writer._poisoned),
    }


def _snapshot_metrics(snapshots: Any, last_sequence: int, loaded_sequence: int) -> dict[str, Any]:
    """The snapshot keys from a :class:`~actionqueue.snapshot.background.Snapshotter` (its
    status, no lock) and the sequence of the snapshot recovery loaded (0: none)."""
    status = snapshots.status
    last = status.last
    sequence = max(last.sequence if last is not None else 0, loaded_sequence)
    if last is not None:
        age: float | None = max(0.0, time.time() - last.finished_at)
    else:
        try:
            age = max(0.0, time.time() - os.stat(os.path.join(snapshots.data_dir, "snapshots", "snapshot.bin")).st_mtime)
        except OSError:
            age = None
    return {
        "snapshots_total": status.taken,
        "snapshots_failed_total": status.failed,
        "snapshot_sequence": sequence,
        "snapshot_age_seconds": age,
        "last_snapshot_duration_seconds": last.seconds if last is not None else None,
        "events_since_snapshot": max(0, last_sequence - sequence),
    }


def _members(authorities: Any) -> list[Any]:
    """The members of a store's ``WeakSet`` of authorities. ``from_store`` in another
    thread may add one while this thread iterates the set, which raises RuntimeError
    (the set changed size): read it again (an add is rare and quick)."""
    for _ in range(1000):
        try:
            return list(authorities)
        except RuntimeError:
            continue
    return list(authorities)


def _command_counts(authorities: Any) -> dict[str, Any]:
    accepted = rejected = 0
    poison: BaseException | None = None
    for authority in _members(authorities):
        accepted += authority._accepted
        rejected += authority._rejected
        poison = poison or authority._poisoned
    return {"commands_total": accepted + rejected, "commands_rejected_total": rejected, "_poison": poison}


def _merge_poison(out: dict[str, Any], poison: BaseException | None) -> dict[str, Any]:
    if poison is not None and not out["poisoned"]:
        out["poisoned"], out["poison_reason"] = True, _reason(poison)
    return out


def authority_metrics(authority: MutationAuthority) -> dict[str, Any]:
    """The writer's keys, the commands' and (with a snapshotter) the snapshots';
    :meth:`MutationAuthority.metrics <actionqueue.MutationAuthority.metrics>`."""
    out = writer_metrics(authority._writer)
    commands = _command_counts([authority])
    poison = commands.pop("_poison")
    out.update(commands)
    if authority._snapshots is not None:
        out.update(_snapshot_metrics(authority._snapshots, out["last_sequence"], 0))
    return _merge_poison(out, poison)


def store_metrics(store: Store) -> dict[str, Any]:
    """Every key: the writer's, the snapshots', ``recovery_seconds`` and the commands of
    the authorities made from the store; :meth:`Store.metrics <actionqueue.Store.metrics>`."""
    out = writer_metrics(store.writer)
    report = store.report
    out.update(_snapshot_metrics(store.snapshots, out["last_sequence"],
                                 report.snapshot_sequence if report.snapshot_loaded else 0))
    out["recovery_seconds"] = report.duration_s
    commands = _command_counts(store._authorities)
    poison = commands.pop("_poison")
    out.update(commands)
    return _merge_poison(out, poison)


# -- Prometheus ------------------------------------------------------------------------
#: key -> (kind, help) of what the collector exports, as ``actionqueue_<key>``.
_EXPORTED: dict[str, tuple[str, str]] = {
    "appends_total": ("counter", "Writes to the log (appends, batches, commands)."),
    "events_total": ("counter", "Records written to the log."),
    "bytes_written_total": ("counter", "Bytes written to the log."),
    "fsyncs_total": ("counter", "Successful fsyncs of the log's files."),
    "appends_per_fsync": ("gauge", "Mean writes per fsync (appends_total / fsyncs_total)."),
    "fsync_seconds": ("histogram", "Duration of the log's fsyncs."),
    "fsync_seconds_max": ("gauge", "Longest fsync of the log since it opened."),
    "last_sequence": ("gauge", "Sequence of the last record in the log."),
    "segments": ("gauge", "Files of the log."),
    "log_bytes": ("gauge", "Total size of the log's files."),
    "poisoned": ("gauge", "1 when the writer or the authority refuses every call, else 0 (why: actionqueue_poison_info)."),
    "snapshots_total": ("counter", "Snapshots taken by this process."),
    "snapshots_failed_total": ("counter", "Background snapshots that failed."),
    "snapshot_sequence": ("gauge", "Sequence the newest snapshot covers."),
    "snapshot_age_seconds": ("gauge", "Seconds since the newest snapshot was written."),
    "last_snapshot_duration_seconds": ("gauge", "Wall time of the last snapshot this process took."),
    "events_since_snapshot": ("gauge", "Events in the log after the newest snapshot."),
    "recovery_seconds": ("gauge", "Time the store's recovery (open) took."),
    "commands_total": ("counter", "Commands run to a verdict by the mutation authority."),
    "commands_rejected_total": ("counter", "Commands the mutation authority rejected."),
}


_POISON_INFO_DOC = "Why the writer or the authority is poisoned (label: reason); only while it is."


def _prometheus() -> Any:
    require("prometheus_client", "prometheus", "the Prometheus collector")
    return require("prometheus_client.core", "prometheus", "the Prometheus collector")


_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
#: the labels the collector sets itself (``le``: the histogram's buckets)
_OWN_LABELS = ("data_dir", "reason", "le")


def _data_dir_of(source: Any) -> Any:
    """The data dir of a store or a writer (``data_dir``), or of an authority (its
    writer's); TypeError for anything else."""
    found = getattr(source, "data_dir", None)
    if found is None:
        found = getattr(getattr(source, "writer", None), "data_dir", None)
    if found is None or not callable(getattr(source, "metrics", None)):
        raise TypeError(f"PrometheusCollector takes stores, writers and authorities (metrics() and a data dir), "
                        f"not {type(source).__name__}")
    return found


class PrometheusCollector:
    """A ``prometheus_client`` collector of one or more stores (or writers, or
    authorities: anything with ``metrics()`` and a ``data_dir``, its own or its
    ``writer``'s), read at scrape time.

    >>> from prometheus_client import REGISTRY                   # doctest: +SKIP
    >>> REGISTRY.register(PrometheusCollector(store))

    Every key of the module's table but ``poison_reason`` becomes ``actionqueue_<key>``
    (counters keep their ``_total``; ``poisoned`` is a plain gauge, 0 or 1, one series per
    source whatever the reason), labelled ``data_dir`` plus ``labels`` (valid label
    names other than ``data_dir``, ``reason`` and ``le``; one source per data dir, else
    :class:`ValueError`); keys a source does not have, or whose value is None, are left
    out. While a source is poisoned, ``actionqueue_poison_info{reason="..."} 1`` (an info
    metric, same labels plus ``reason``: ``poison_reason``) says why; it is absent
    otherwise. Register one collector for several stores (a registry refuses two collectors of
    the same names). Raises
    :class:`~actionqueue.errors.MissingExtra` when prometheus_client is missing.
    """

    def __init__(self, *sources: Any, labels: dict[str, str] | None = None) -> None:
        if not sources:
            raise TypeError("PrometheusCollector takes at least one store, writer or authority")
        self._core = _prometheus()
        self._sources = sources
        self._labels = dict(labels or {})
        self._label_names = ["data_dir", *self._labels]
        for name in self._labels:
            if not isinstance(name, str) or not _LABEL_NAME.fullmatch(name) or name.startswith("__"):
                raise ValueError(f"{name!r} is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, no leading __)")
            if name in _OWN_LABELS:
                raise ValueError(f"the label {name!r} is the collector's own ({', '.join(_OWN_LABELS)})")
        self._label_values = [[str(_data_dir_of(source)), *map(str, self._labels.values())] for source in sources]
        if len({tuple(values) for values in self._label_values}) < len(sources):
            raise ValueError("two sources have the same labels (one data dir: a store and its writer, say): "
                             "their series would be duplicates; give each data dir once")

    def _family(self, key: str) -> Any:
        kind, doc = _EXPORTED[key]
        core, name = self._core, f"actionqueue_{key}"
        labels = self._label_names
        if kind == "counter":
            return core.CounterMetricFamily(name, doc, labels=labels)
        if kind == "histogram":
            return core.HistogramMetricFamily(name, doc, labels=labels)
        return core.GaugeMetricFamily(name, doc, labels=labels)

    def _poison_info(self) -> Any:
        """``actionqueue_poison_info{reason=...} 1``: why a source is poisoned, a series of
        its own (present only while poisoned), so that ``actionqueue_poisoned`` keeps one
        identity whatever the reason."""
        return self._core.InfoMetricFamily("actionqueue_poison", _POISON_INFO_DOC, labels=self._label_names)

    def describe(self) -> Iterator[Any]:
        """The families (no samples): lets a registry check names on registration."""
        for key in _EXPORTED:
            yield self._family(key)
        yield self._poison_info()

    def collect(self) -> Iterator[Any]:
        """Read every source's metrics now and yield one family per key."""
        rows = [(source.metrics(), labels) for source, labels in zip(self._sources, self._label_values)]
        for key in _EXPORTED:
            family = self._family(key)
            for values, labels in rows:
                value = values.get(key)
                if value is None:
                    continue
                if key == "fsync_seconds":
                    buckets = [("+Inf" if le == float("inf") else repr(le), n) for le, n in value["buckets"]]
                    family.add_metric(labels, buckets, value["sum"])
                else:
                    family.add_metric(labels, float(value))
            if family.samples:
                yield family
        info = self._poison_info()
        for values, labels in rows:
            if values.get("poisoned"):
                info.add_metric(labels, {"reason": values.get("poison_reason") or ""})
        if info.samples:
            yield info
