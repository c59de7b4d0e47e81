"""Metrics (actionqueue.metrics): the snapshot dicts of a writer, an authority and a store
are exact after known work, stay consistent while another thread reads them, report a
poisoned writer; the Prometheus collector exports them (scraped and parsed back); a
missing prometheus_client is one typed error with the install hint."""

from __future__ import annotations

import errno
import linecache
import os
import sys
import threading
import time
import weakref
from pathlib import Path

import pytest

import actionqueue as aq
from actionqueue import metrics as M
from actionqueue.log.files import Files

EV = aq.EnginePaused(1_700_000_000)


def wal_size(data_dir: Path) -> int:
    """Bytes in the log's record files, from the file system."""
    wal = data_dir / "wal"
    return sum(os.stat(p).st_size for p in wal.iterdir() if p.suffix == ".seg" or p.name == "actionqueue.wal")


def seg_count(data_dir: Path) -> int:
    return sum(1 for p in (data_dir / "wal").iterdir() if p.suffix == ".seg")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


def test_buckets_are_fixed_and_log_spaced() -> None:
    b = M.FSYNC_SECONDS_BUCKETS
    assert b[0] == 1e-05 and b[-1] == 10.0 and len(b) == 19
    assert all(2 <= hi / lo <= 2.5 for lo, hi in zip(b, b[1:]))


def test_fsync_appends_count_exactly_and_bytes_match_the_files(data_dir: Path) -> None:
    with aq.WalWriter(data_dir, durability="fsync") as w:  # an existing log: its bytes are not counted
        w.append_many(aq.WalEvent(s, EV) for s in range(1, 6))
    before = wal_size(data_dir)
    n = 20
    with aq.WalWriter(data_dir, durability="fsync") as w:
        fresh = w.metrics()
        assert (fresh["appends_total"], fresh["events_total"], fresh["bytes_written_total"]) == (0, 0, 0)
        assert fresh["fsyncs_total"] == 0 and fresh["appends_per_fsync"] == 0.0 and fresh["fsync_seconds_max"] == 0.0
        for _ in range(n):
            w.append_next(EV)
        m = w.metrics()
        assert m["appends_total"] == n and m["events_total"] == n
        assert m["fsyncs_total"] == n and m["appends_per_fsync"] == 1.0
        assert m["bytes_written_total"] == wal_size(data_dir) - before > 0
        assert m["last_sequence"] == 5 + n
        assert m["segments"] == 1 and m["log_bytes"] == wal_size(data_dir)
        assert m["poisoned"] is False and m["poison_reason"] is None
        h = m["fsync_seconds"]
        counts = [c for _, c in h["buckets"]]
        assert h["count"] == n == counts[-1] and counts == sorted(counts)
        assert [le for le, _ in h["buckets"]] == [*M.FSYNC_SECONDS_BUCKETS, float("inf")]
        assert 0 < m["fsync_seconds_max"] <= h["sum"]
        w.sync()
        assert w.metrics()["fsyncs_total"] == n + 1
    assert w.metrics()["fsyncs_total"] == n + 2, "the final fsync of close() counts; a closed writer still reads"


def test_batches_count_once_and_none_durability_does_not_fsync(data_dir: Path) -> None:
    with aq.WalWriter(data_dir, durability="none", layout="rust") as w:
        w.append_many(aq.WalEvent(s, EV) for s in range(1, 11))
        w.write([aq.WalEvent(11, EV), aq.WalEvent(12, EV)]).wait()
        w.append(aq.WalEvent(20, EV))
        m = w.metrics()
        assert (m["appends_total"], m["events_total"], m["fsyncs_total"]) == (3, 13, 0)
        assert m["bytes_written_total"] == wal_size(data_dir) and m["segments"] == 1
        with pytest.raises(aq.SequenceViolation):
            w.append(aq.WalEvent(20, EV))
        assert w.metrics()["appends_total"] == 3, "a refused append writes and counts nothing"


def test_rotation_keeps_the_totals(data_dir: Path) -> None:
    """Bytes and records written to segments rotated away from still count; every seal
    is an fsync; segments and log_bytes describe the files."""
    with aq.WalWriter(data_dir, durability="none", segment_bytes=300) as w:
        for _ in range(60):
            w.append_next(EV)
        m = w.metrics()
        files = seg_count(data_dir)
        assert files > 3
        assert m["events_total"] == m["appends_total"] == 60
        assert m["bytes_written_total"] == wal_size(data_dir) == m["log_bytes"]
        assert m["segments"] == files and m["fsyncs_total"] == files - 1


def test_counters_never_go_back_while_read_from_another_thread(data_dir: Path) -> None:
    """A reader in a loop while the writer rotates every few records: no counter ever
    decreases (the totals folded at a rotation are read consistently)."""
    stop = threading.Event()
    bad: list[str] = []

    def read(w: aq.WalWriter) -> None:
        last = (0, 0, 0)
        while not stop.is_set():
            m = w.metrics()
            now = (m["appends_total"], m["events_total"], m["bytes_written_total"])
            if any(a < b for a, b in zip(now, last)):
                bad.append(f"{now} after {last}")
            last = now
            time.sleep(0)  # let the writer run (no convoy behind the GIL)

    with aq.WalWriter(data_dir, durability="none", segment_bytes=200) as w:
        reader = threading.Thread(target=read, args=(w,))
        reader.start()
        try:
            for _ in range(200):
                w.append_next(EV)
        finally:
            stop.set()
            reader.join()
        assert w.metrics()["bytes_written_total"] == wal_size(data_dir)
    assert bad == []


def test_a_reader_meeting_a_rotation_waits_for_its_end(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer stopped between moving the active file's numbers into its totals and
    resetting them (as a thread switch can leave it): a reader does not count them twice,
    it waits, and reads once the rotation is over."""
    with aq.WalWriter(data_dir, durability="none") as w:
        for _ in range(3):
            w.append_next(EV)
        expected = w.metrics()
        saved = (w._folded, w._size, w._active_records)
        w._rotations += 1
        w._folded = (w._folded[0] + w._size, w._folded[1] + w._active_records)
        pauses = []

        def rotation_ends(seconds: float) -> None:  # the rotating thread runs while the reader pauses
            pauses.append(seconds)
            w._size = w._active_records = 0
            w._rotations += 1

        monkeypatch.setattr(M, "_pause", rotation_ends)
        got = w.metrics()
        assert pauses == [0.0]
        assert (got["bytes_written_total"], got["events_total"]) == (expected["bytes_written_total"], 3)
        w._folded, w._size, w._active_records = saved


def test_the_writer_marks_its_rotations_for_readers(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped (by a trace hook) where a rotation has folded the active file's numbers into
    its totals but not yet reset them, the writer shows a rotation in progress: a reader
    there pauses instead of taking the numbers as they are (counted twice)."""
    pauses: list[float] = []
    monkeypatch.setattr(M, "_pause", pauses.append)
    code = aq.WalWriter._rotate.__code__
    inside: list[int] = []

    def local(frame, event, arg):  # noqa: ANN001, ANN202 - a trace function
        if event == "line" and "= fd, path, 0, 0" in linecache.getline(code.co_filename, frame.f_lineno):
            before = len(pauses)
            frame.f_locals["self"].metrics()
            inside.append(len(pauses) - before)
        return local

    with aq.WalWriter(data_dir, durability="none", segment_bytes=200) as w:
        old = sys.gettrace()
        sys.settrace(lambda frame, event, arg: local if frame.f_code is code else None)
        try:
            for _ in range(40):
                w.append_next(EV)
        finally:
            sys.settrace(old)
        assert len(inside) == seg_count(data_dir) >= 3
        assert all(n > 0 for n in inside), "a reader inside a rotation did not see it"
        pauses.clear()
        assert w.metrics()["bytes_written_total"] == wal_size(data_dir) and pauses == []


def test_a_rotation_cut_short_does_not_hang_a_reader(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(M, "_pause", lambda seconds: None)
    with aq.WalWriter(data_dir, durability="none") as w:
        w.append_next(EV)
        w._rotations += 1  # as if an interrupt had landed inside a rotation
        assert w.metrics()["events_total"] == 1


@pytest.mark.parametrize("threads", [8])
def test_group_commit_shares_fsyncs(data_dir: Path, threads: int) -> None:
    per_thread = 25
    with aq.WalWriter(data_dir, durability="group") as w:
        def work() -> None:
            for _ in range(per_thread):
                w.append_next(EV)

        ts = [threading.Thread(target=work) for _ in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        m = w.metrics()
    total = threads * per_thread
    assert m["appends_total"] == m["events_total"] == total
    assert 1 <= m["fsyncs_total"] <= total
    assert m["appends_per_fsync"] == total / m["fsyncs_total"] >= 1.0
    assert m["fsync_seconds"]["count"] == m["fsyncs_total"]


class FailingFsync(Files):
    """The OS's files, but fsync of the log's record files fails once ``fail`` is set."""

    def __init__(self) -> None:
        self.fail = False

    def fsync(self, fd: int) -> None:
        if self.fail:
            raise OSError(errno.EIO, "injected fsync failure")
        super().fsync(fd)


def test_a_failed_fsync_shows_as_poisoned(data_dir: Path) -> None:
    fs = FailingFsync()
    w = aq.WalWriter(data_dir, durability="fsync", fs=fs)
    w.append_next(EV)
    assert w.metrics()["poisoned"] is False
    fs.fail = True
    with pytest.raises(aq.WriterPoisoned):
        w.append_next(EV)
    m = w.metrics()
    assert m["poisoned"] is True and "injected fsync failure" in m["poison_reason"]
    assert m["poison_reason"].startswith("OSError: ")
    assert m["fsyncs_total"] == 1, "a failed fsync is not counted as one done"
    assert m["appends_total"] == 2, "the record was written before its fsync failed"
    w.close()  # nothing to sync: the writer refused everything since


def test_store_and_authority_metrics(data_dir: Path) -> None:
    fs = FailingFsync()
    with aq.open(data_dir, fs=fs) as store:
        m = store.metrics()
        assert m["recovery_seconds"] == store.report.duration_s > 0
        assert (m["commands_total"], m["snapshots_total"], m["snapshot_sequence"]) == (0, 0, 0)
        assert m["snapshot_age_seconds"] is None and m["last_snapshot_duration_seconds"] is None
        authority = aq.MutationAuthority.from_store(store)
        tasks = [aq.TaskId.new() for _ in range(4)]
        for task in tasks:
            authority.create_task(aq.TaskSpec(task, run_policy=aq.RunPolicy.repeat(2, 60)))
        authority.derive_runs(tasks[0])  # one write of two events
        for bad in (lambda: authority.create_task(aq.TaskSpec(tasks[0])),   # TaskAlreadyExists
                    lambda: authority.cancel_task(aq.TaskId.new()),         # UnknownTask
                    lambda: authority.derive_runs(aq.TaskId.new())):        # UnknownTask, before the pipeline
            with pytest.raises(aq.CommandRejected):
                bad()
        assert authority.derive_runs(tasks[0]) == []  # done, nothing to write: a command all the same
        m = store.metrics()
        assert (m["commands_total"], m["commands_rejected_total"]) == (9, 3)
        assert (m["appends_total"], m["events_total"], m["fsyncs_total"]) == (5, 6, 5)
        assert m["events_since_snapshot"] == 6 == m["last_sequence"]
        a = authority.metrics()
        assert (a["commands_total"], a["commands_rejected_total"], a["events_since_snapshot"]) == (9, 3, 6)

        store.snapshot()
        m = store.metrics()
        assert m["snapshots_total"] == 1 and m["snapshot_sequence"] == 6 and m["events_since_snapshot"] == 0
        assert m["last_snapshot_duration_seconds"] > 0 and m["snapshot_age_seconds"] >= 0
        authority.create_task(aq.TaskSpec(aq.TaskId.new()))
        assert store.metrics()["events_since_snapshot"] == 1

        fs.fail = True
        with pytest.raises(aq.WriterPoisoned):
            authority.create_task(aq.TaskSpec(aq.TaskId.new()))
        m = store.metrics()
        assert m["poisoned"] is True and "injected fsync failure" in m["poison_reason"]
        assert authority.metrics()["poisoned"] is True
        fs.fail = False
    with aq.open(data_dir, repair_policy="truncate_partial") as store:  # the snapshot is loaded, not taken here
        m = store.metrics()
        assert m["snapshots_total"] == 0 and m["snapshot_sequence"] == 6 and m["snapshot_age_seconds"] >= 0
        assert m["events_since_snapshot"] == store.reducer.latest_sequence - 6
        assert m["commands_total"] == 0 and m["poisoned"] is False and m["recovery_seconds"] > 0


def test_an_authority_without_a_store(data_dir: Path) -> None:
    with aq.WalWriter(data_dir, durability="none") as w:
        authority = aq.MutationAuthority(aq.ReplayReducer(), w)
        authority.create_task(aq.TaskSpec(aq.TaskId.new()))
        m = authority.metrics()
        assert (m["commands_total"], m["appends_total"]) == (1, 1)
        assert "snapshots_total" not in m and "recovery_seconds" not in m


def test_store_metrics_while_another_thread_makes_an_authority(data_dir: Path) -> None:
    """from_store() adding to the store's set of authorities while a scrape iterates it
    made store.metrics() raise 'RuntimeError: Set changed size during iteration'."""
    with aq.open(data_dir, durability="none") as store:
        first = aq.MutationAuthority.from_store(store)
        first.create_task(aq.TaskSpec(aq.TaskId.new()))
        late: list[aq.MutationAuthority] = []

        class Racing(weakref.WeakSet):  # another thread's from_store lands mid-iteration
            def __iter__(self):
                for item in super().__iter__():
                    if not late:
                        late.append(aq.MutationAuthority.from_store(store))
                    yield item

        store._authorities = Racing(store._authorities)
        m = store.metrics()
        late[0].create_task(aq.TaskSpec(aq.TaskId.new()))
        assert m["commands_total"] == 1 and store.metrics()["commands_total"] == 2


# -- Prometheus ------------------------------------------------------------------------
def _scrape(*sources, **kw) -> dict:
    """{(sample name, labels): value} and {family name: type} of a scrape, parsed back."""
    prometheus_client = pytest.importorskip("prometheus_client")
    from prometheus_client.parser import text_string_to_metric_families

    registry = prometheus_client.CollectorRegistry()
    registry.register(M.PrometheusCollector(*sources, **kw))
    text = prometheus_client.generate_latest(registry).decode()
    samples, types = {}, {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return {"samples": samples, "types": types}


def test_prometheus_scrape(tmp_path: Path) -> None:
    dirs = [tmp_path / "a", tmp_path / "b"]
    for d in dirs:
        d.mkdir()
    with aq.open(dirs[0], durability="group") as a, aq.open(dirs[1]) as b:
        authority = aq.MutationAuthority.from_store(a)
        for _ in range(3):
            authority.create_task(aq.TaskSpec(aq.TaskId.new()))
        a.snapshot()
        got = _scrape(a, b, labels={"service": "test"})
        metrics = a.metrics()
    samples, types = got["samples"], got["types"]
    la = (("data_dir", str(dirs[0])), ("service", "test"))
    lb = (("data_dir", str(dirs[1])), ("service", "test"))
    for key in ("appends", "events", "bytes_written", "fsyncs", "commands", "commands_rejected", "snapshots"):
        assert types[f"actionqueue_{key}"] == "counter"
        assert samples[(f"actionqueue_{key}_total", la)] == metrics[f"{key}_total"]
    assert samples[("actionqueue_appends_total", la)] == 3 and samples[("actionqueue_appends_total", lb)] == 0
    for key in ("appends_per_fsync", "events_since_snapshot", "recovery_seconds", "last_sequence", "segments",
                "log_bytes", "snapshot_sequence", "last_snapshot_duration_seconds"):
        assert types[f"actionqueue_{key}"] == "gauge"
        assert samples[(f"actionqueue_{key}", la)] == pytest.approx(metrics[key])
    assert ("actionqueue_snapshot_age_seconds", lb) not in samples, "None values are left out"
    assert samples[("actionqueue_poisoned", la)] == 0  # no reason label: one series, 0 or 1
    assert not any(k[0] == "actionqueue_poison_info" for k in samples), "no info while not poisoned"
    assert types["actionqueue_fsync_seconds"] == "histogram"
    hist = metrics["fsync_seconds"]
    assert samples[("actionqueue_fsync_seconds_count", la)] == hist["count"] == metrics["fsyncs_total"]
    assert samples[("actionqueue_fsync_seconds_sum", la)] == pytest.approx(hist["sum"])
    assert samples[("actionqueue_fsync_seconds_bucket", tuple(sorted((*la, ("le", "+Inf")))))] == hist["count"]
    le_1ms = tuple(sorted((*la, ("le", "0.001"))))
    assert samples[("actionqueue_fsync_seconds_bucket", le_1ms)] == dict(hist["buckets"])[0.001]
    buckets = sorted(k[1] for k in samples if k[0] == "actionqueue_fsync_seconds_bucket" and ("data_dir", str(dirs[0])) in k[1])
    assert len(buckets) == len(M.FSYNC_SECONDS_BUCKETS) + 1


def test_prometheus_an_authority_as_a_source(data_dir: Path) -> None:
    """The collector takes authorities, as documented: scraping one raised AttributeError
    (a MutationAuthority has no data_dir), which fails the whole scrape."""
    with aq.WalWriter(data_dir, durability="none") as w:
        authority = aq.MutationAuthority(aq.ReplayReducer(), w)
        authority.create_task(aq.TaskSpec(aq.TaskId.new()))
        samples = _scrape(authority)["samples"]
    assert samples[("actionqueue_commands_total", (("data_dir", str(data_dir)),))] == 1

def test_prometheus_labels_are_valid_and_series_unique(data_dir: Path) -> None:
    """labels={"data_dir": ...} silently replaced every source's data dir, "reason" and "le"
    clashed with the collector's own labels, names Prometheus rejects passed, and two
    sources of one data dir (a store and its writer) gave duplicate series: all refused."""
    pytest.importorskip("prometheus_client")
    with aq.open(data_dir) as store:
        for bad in ({"data_dir": "x"}, {"reason": "x"}, {"le": "1"}, {"bad-name": "x"}, {"__x": "x"}, {"": "x"}):
            with pytest.raises(ValueError, match="label"):
                M.PrometheusCollector(store, labels=bad)
        with pytest.raises(ValueError, match="same labels"):
            M.PrometheusCollector(store, store.writer)
        assert _scrape(store, labels={"service": "a"})["samples"]

def test_prometheus_registry_sees_the_names_and_poisoning(data_dir: Path) -> None:
    prometheus_client = pytest.importorskip("prometheus_client")
    fs = FailingFsync()
    with aq.WalWriter(data_dir, fs=fs) as w:
        w.append_next(EV)
        registry = prometheus_client.CollectorRegistry(auto_describe=True)
        registry.register(M.PrometheusCollector(w))
        with pytest.raises(ValueError, match="Duplicated"):  # describe() gives the names
            registry.register(M.PrometheusCollector(w))
        assert registry.get_sample_value("actionqueue_poisoned", {"data_dir": str(data_dir)}) == 0
        fs.fail = True
        with pytest.raises(aq.WriterPoisoned):
            w.append_next(EV)
        # the same series turns 1 (its identity does not change with the reason); the
        # reason is a separate info metric, present only while poisoned
        assert registry.get_sample_value("actionqueue_poisoned", {"data_dir": str(data_dir)}) == 1
        assert registry.get_sample_value(
            "actionqueue_poison_info", {"data_dir": str(data_dir), "reason": w.metrics()["poison_reason"]}) == 1
        poisoned = [s for m in registry.collect() for s in m.samples if s.name == "actionqueue_poisoned"]
        assert [s.labels for s in poisoned] == [{"data_dir": str(data_dir)}]
        assert registry.get_sample_value("actionqueue_fsyncs_total", {"data_dir": str(data_dir)}) == 1
        assert registry.get_sample_value("actionqueue_recovery_seconds", {"data_dir": str(data_dir)}) is None
        fs.fail = False
        w._poisoned = None  # let close() sync, to leave the directory tidy


def test_missing_prometheus_client_is_one_typed_error(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in sys.modules if n == "prometheus_client" or n.startswith("prometheus_client.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import prometheus_client fails
    with aq.WalWriter(data_dir) as w:
        with pytest.raises(aq.MissingExtra) as info:
            M.PrometheusCollector(w)
        assert w.metrics()["appends_total"] == 0, "the dicts need no prometheus_client"
    assert isinstance(info.value, ImportError) and isinstance(info.value, aq.ActionQueueError)
    message = str(info.value)
    assert "\n" not in message and "pip install 'actionqueue[prometheus]'" in message


def test_a_collector_needs_a_source() -> None:
    pytest.importorskip("prometheus_client")
    with pytest.raises(TypeError):
        M.PrometheusCollector()


@pytest.mark.slow  # a background snapshot runs a child process (~1 s)
def test_background_snapshots_count(data_dir: Path) -> None:
    with aq.open(data_dir, snapshot_every=5, durability="group") as store:
        authority = aq.MutationAuthority.from_store(store)
        for _ in range(5):
            authority.create_task(aq.TaskSpec(aq.TaskId.new()))
        store.snapshots.close()  # waits for the snapshot in flight
        m = store.metrics()
    assert m["snapshots_total"] == 1 and m["snapshots_failed_total"] == 0
    assert m["snapshot_sequence"] == 5 and m["events_since_snapshot"] == 0
    assert m["last_snapshot_duration_seconds"] > 0
