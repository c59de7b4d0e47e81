"""Arrow / Parquet / JSON-lines export (actionqueue.export, ``actionqueue export``): DuckDB and
Polars read what it writes and agree with ``actionqueue stats``; the schema is stable; the
native JSON pass equals model/json.py; damaged logs, empty logs, both layouts; the CLI's
exit codes and the missing-pyarrow path."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from aq_testlib import wal_events
from cli_testlib import active_segment, need_vectors, nl, one_error_line, run_cli, rust_dir, seg_dir, subprocess_env, v08_events  # noqa: F401
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import actionqueue as aq
import actionqueue.export as ax
from actionqueue.model.json import dumps, from_builtins, to_builtins

pa = pytest.importorskip("pyarrow")
duckdb = pytest.importorskip("duckdb")
pl = pytest.importorskip("polars")

SCHEMA = [
    ("sequence", "uint64", False),
    ("kind", "dictionary<values=string, indices=int8, ordered=0>", False),
    ("time", "uint64", False),
    ("task_id", "string", True),
    ("run_id", "string", True),
    ("attempt_id", "string", True),
    ("fields", "string", True),
]



def _run_states(rows) -> dict[str, int]:
    """Runs per state at the end of the log, folded from the exported rows alone
    (run_id, kind, fields, in sequence order) by the run state machine's events."""
    state: dict[str, str] = {}
    for run, kind, fields in rows:
        f = json.loads(fields)
        if kind == "RunCreated":
            state[run] = f["run_instance"]["state"]
        elif kind == "RunStateChanged":
            state[run] = f["new_state"]
        elif kind == "RunCanceled":
            state[run] = "Canceled"
        elif kind == "RunSuspended":
            state[run] = "Suspended"
        elif kind == "RunResumed":
            state[run] = "Ready"
        elif kind in ("LeaseExpired", "LeaseReleased") and state.get(run) == "Leased":
            state[run] = "Ready"
    counts: dict[str, int] = {}
    for s in state.values():
        counts[s] = counts.get(s, 0) + 1
    return counts


def _stats(capsys, d: Path) -> dict:
    code, out, _ = run_cli(capsys, "stats", "--json", d)
    assert code == 0
    return json.loads(out)


def _agrees_with_stats(capsys, d: Path, src) -> None:
    """DuckDB reading ``src`` (a file name or a pyarrow.Table) finds stats' numbers."""
    s = _stats(capsys, d)
    con = duckdb.connect()
    if not isinstance(src, str):
        con.register("exported", src)
        src = "exported"
    kinds = dict(con.sql(f"SELECT kind::VARCHAR, count(*) FROM {src} GROUP BY 1").fetchall())
    assert kinds == s["kinds"]
    rows = con.sql(f"SELECT run_id, kind::VARCHAR, fields FROM {src} WHERE run_id IS NOT NULL ORDER BY sequence")
    states = _run_states(rows.fetchall())
    assert states == {k: v for k, v in s["projection"]["runs_by_state"].items() if v}


def test_schema_is_stable():
    sch = ax.schema()
    assert [(f.name, str(f.type), f.nullable) for f in sch] == SCHEMA
    assert sch.metadata == {b"actionqueue.export.schema": b"1"}
    assert ax.schema(fields=False, ids=False).names == ["sequence", "kind", "time"]
    assert ax.schema(fields=False).names == ["sequence", "kind", "time", "task_id", "run_id", "attempt_id"]


def test_parquet_and_arrow_agree_with_stats_segmented(capsys, tmp_path, seg_dir):
    pq_out, ipc_out = tmp_path / "e.parquet", tmp_path / "e.arrow"
    assert ax.write_parquet(seg_dir, pq_out, batch_events=97) == 600  # several batches, across segments
    assert ax.write_arrow(seg_dir, ipc_out, batch_events=97) == 600
    _agrees_with_stats(capsys, seg_dir, f"'{pq_out}'")
    _agrees_with_stats(capsys, seg_dir, pa.ipc.open_file(ipc_out).read_all())
    # Polars reads both, with the same rows
    df_pq, df_ipc = pl.read_parquet(pq_out), pl.read_ipc(ipc_out)
    assert df_pq.equals(df_ipc)
    assert df_pq["sequence"].to_list() == list(range(1, 601))
    counts = dict(df_pq.group_by("kind").len().iter_rows())
    assert {str(k): v for k, v in counts.items()} == _stats(capsys, seg_dir)["kinds"]


def test_rust_layout_and_in_memory_table(capsys, rust_dir, v08_events):
    table = ax.to_arrow(rust_dir)
    assert table.schema == ax.schema()
    _agrees_with_stats(capsys, rust_dir, table)
    rows = table.to_pylist()
    for row, we in zip(rows, v08_events):
        ev = we.event
        assert row["sequence"] == we.sequence and row["kind"] == type(ev).__name__
        assert json.loads(row["fields"]) == to_builtins(ev)[type(ev).__name__]
        assert row["time"] == getattr(ev, "timestamp", None) or row["time"] == ev.run_instance.created_at
        assert row["fields"] == dumps(to_builtins(ev)[type(ev).__name__])
        task, run, attempt = ax._ids_of(ev)
        assert (row["task_id"], row["run_id"], row["attempt_id"]) == tuple(
            None if x is None else str(x) for x in (task, run, attempt))
    assert sum(r["run_id"] is not None for r in rows) > 100 and sum(r["attempt_id"] is not None for r in rows) > 10


def test_columns_only_is_the_scan(rust_dir):
    cols = aq.scan(rust_dir)
    table = ax.to_arrow(rust_dir, fields=False, ids=False)
    assert table.column("sequence").to_numpy().tolist() == cols.sequence.tolist()
    assert table.column("kind").to_pylist() == cols.kind_names().tolist()
    t2 = cols.to_arrow()
    assert t2.column_names == ["offset", "length", "sequence", "kind", "time", "file"]
    assert t2.column("offset").to_numpy().tolist() == cols.offset.tolist()
    assert t2.column("kind").to_pylist() == cols.kind_names().tolist()


def test_selection(rust_dir):
    t = ax.to_arrow(rust_dir, kinds=["RunStateChanged"], min_sequence=100, max_sequence=300)
    seq = t.column("sequence").to_pylist()
    assert seq and min(seq) >= 100 and max(seq) <= 300 and set(t.column("kind").to_pylist()) == {"RunStateChanged"}


def test_empty_log(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    with aq.WalWriter(d):
        pass
    t = ax.to_arrow(d)
    assert t.num_rows == 0 and t.schema == ax.schema()
    assert ax.write_parquet(d, tmp_path / "e.parquet") == 0
    assert duckdb.sql(f"SELECT count(*) FROM '{tmp_path / 'e.parquet'}'").fetchall() == [(0,)]
    assert ax.write_jsonl(d, tmp_path / "e.jsonl") == 0 and (tmp_path / "e.jsonl").read_bytes() == b""


def test_jsonl_round_trip(tmp_path, seg_dir, v08_events):
    out = tmp_path / "e.jsonl"
    assert ax.write_jsonl(seg_dir, out, batch_events=50) == 600
    lines = nl(out.read_text(encoding="utf-8"))
    assert lines == [dumps(to_builtins(we)) for we in v08_events]
    assert [from_builtins(aq.WalEvent, json.loads(x)) for x in lines] == v08_events


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(wal_events(), min_size=1, max_size=8))
def test_native_json_equals_the_model(events):
    buf = b"".join(aq.encode(we) for we in events)
    offsets = np.cumsum([0] + [len(aq.encode(we)) for we in events[:-1]]).astype(np.uint64)
    for mode in (ax.BODY, ax.LINES, ax.NONE):
        text, ends, id_text, id_ends = ax.events_json(buf, offsets, mode)
        py = ax.events_json_py(buf, offsets, mode)
        assert text == py[0] and ends.tolist() == py[1].tolist() and id_ends.tolist() == py[3].tolist()
        assert [bytes(t) for t in id_text] == [bytes(t) for t in py[2]]
    text, ends = ax.events_json(buf, offsets, ax.LINES)[:2]
    assert text.decode() == "".join(dumps(to_builtins(we)) + "\n" for we in events)


def test_torn_tail_exports_nothing(capsys, tmp_path, seg_dir):
    seg = active_segment(seg_dir)
    with open(seg, "r+b") as f:
        f.truncate(seg.stat().st_size - 5)
    with pytest.raises(aq.TornTail):
        ax.to_arrow(seg_dir)
    out = tmp_path / "e.parquet"
    with pytest.raises(aq.TornTail):
        ax.write_parquet(seg_dir, out)
    assert not out.exists() and list(tmp_path.glob(".e.parquet.*")) == []
    code, _, err = run_cli(capsys, "export", seg_dir, out)
    assert code == 1 and "torn tail" in one_error_line(err) and not out.exists()


def test_cli_formats_and_exit_codes(capsys, tmp_path, rust_dir):
    for name in ("e.parquet", "e.arrow", "e.jsonl"):
        code, out, err = run_cli(capsys, "export", rust_dir, tmp_path / name)
        assert code == 0 and "exported 600 events" in out and err == ""
    assert pl.read_parquet(tmp_path / "e.parquet").height == 600
    assert duckdb.sql(f"SELECT count(*) FROM read_json_auto('{tmp_path / 'e.jsonl'}')").fetchall() == [(600,)]
    before = (tmp_path / "e.parquet").read_bytes()
    code, _, err = run_cli(capsys, "export", rust_dir, tmp_path / "e.parquet")
    assert code == 2 and "--force" in one_error_line(err) and (tmp_path / "e.parquet").read_bytes() == before
    code, _, err = run_cli(capsys, "export", rust_dir, "--format", "arrow", "--no-fields", "--force", tmp_path / "e.parquet")
    assert code == 0 and pa.ipc.open_file(tmp_path / "e.parquet").schema.names[-1] == "attempt_id"
    for argv, text in [
        ((rust_dir, tmp_path / "e.txt"), "--format"),
        ((tmp_path / "nowhere", tmp_path / "x.parquet"), "no such file"),
        ((rust_dir, tmp_path / "no" / "x.parquet"), "no such directory"),
        ((rust_dir, tmp_path / "x.parquet", "--kind", "Nope"), "unknown event kind"),
    ]:
        code, _, err = run_cli(capsys, "export", *argv)
        assert code == 2 and text in one_error_line(err)


def test_missing_pyarrow(capsys, monkeypatch, tmp_path, rust_dir):
    for name in [m for m in sys.modules if m == "pyarrow" or m.startswith("pyarrow.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow raises ImportError
    with pytest.raises(aq.MissingExtra, match=r"pip install 'actionqueue\[arrow\]'") as info:
        ax.to_arrow(rust_dir)
    assert isinstance(info.value, ImportError) and info.value.extra == "arrow"
    code, _, err = run_cli(capsys, "export", rust_dir, tmp_path / "e.parquet")
    assert code == 2 and "actionqueue[arrow]" in one_error_line(err) and not (tmp_path / "e.parquet").exists()
    code, out, _ = run_cli(capsys, "export", rust_dir, tmp_path / "e.jsonl")  # jsonl needs no pyarrow
    assert code == 0 and len(nl((tmp_path / "e.jsonl").read_text(encoding="utf-8"))) == 600


@pytest.mark.slow
def test_missing_pyarrow_in_a_process(tmp_path, rust_dir):
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "pyarrow.py").write_text("raise ImportError('blocked for the test')\n")
    env = subprocess_env()
    env["PYTHONPATH"] = f"{blocker}{':'}{env['PYTHONPATH']}"
    r = subprocess.run([sys.executable, "-m", "actionqueue", "export", str(rust_dir), str(tmp_path / "e.arrow")],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "actionqueue[arrow]" in one_error_line(r.stderr)


def test_never_replaces_what_is_not_a_regular_file(capsys, tmp_path, rust_dir):
    # with --force, a device, pipe or socket named as OUT was renamed over (as root,
    # 'export DIR /dev/null --force' turned /dev/null into a regular file)
    import os
    import stat

    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(FileExistsError, match="not a regular file"):
        ax.write_jsonl(rust_dir, fifo, overwrite=True)
    code, _, err = run_cli(capsys, "export", rust_dir, fifo, "--force")
    assert code == 2 and "not a regular file" in one_error_line(err)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and sorted(p.name for p in tmp_path.iterdir()) == ["pipe.jsonl", "rust"]


def test_never_writes_inside_the_data_dirs_own_folders(capsys, tmp_path, rust_dir):
    # OUT in DIR/snapshots/ became the data dir's snapshot (verify then failed); in DIR/wal/
    # the temporary file was a foreign file in the log (exit 1, "move it out of wal/")
    (rust_dir / "snapshots").mkdir()
    for out in (rust_dir / "snapshots" / "snapshot.bin", rust_dir / "wal" / "e.jsonl"):
        with pytest.raises(ValueError, match="inside the data dir"):
            ax.write_jsonl(rust_dir, out)
        code, _, err = run_cli(capsys, "export", rust_dir, out, "--format", "jsonl", "--force")
        assert code == 2 and "inside the data dir" in one_error_line(err) and not out.exists()
    assert sorted(p.name for p in rust_dir.rglob("*")) == ["actionqueue.wal", "snapshots", "wal"]


# -- SIGTERM and a failing output (adversarial review of the readers) ------------------
_SIGTERM_CHILD = """
import os, signal, sys
import actionqueue.export as export
from actionqueue.cli import main
real = export.events_json
def killed(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)  # as 'kill' would, while OUT is being written
    return real(*args, **kwargs)
export.events_json = killed
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_during_export_removes_the_temporary_file(tmp_path, seg_dir):
    out = tmp_path / "out" / "events.jsonl"
    out.parent.mkdir()
    proc = subprocess.run([sys.executable, "-c", _SIGTERM_CHILD, "export", str(seg_dir), str(out)],
                          capture_output=True, text=True, timeout=60, env=subprocess_env())
    assert proc.returncode == 143, proc.stderr
    assert "terminated" in one_error_line(proc.stderr)
    assert os.listdir(out.parent) == []


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "arrow"])
@pytest.mark.parametrize(("err", "op"), [(errno.ENOSPC, "fsync"), (errno.EROFS, "open"), (errno.EACCES, "open")])
def test_a_failure_writing_out_is_an_output_error_exit_2(capsys, monkeypatch, tmp_path, seg_dir, fmt, err, op):
    if fmt != "jsonl":
        pytest.importorskip("pyarrow")
    out = tmp_path / "o" / f"events.{fmt}"
    out.parent.mkdir()
    real_fsync, real_open = os.fsync, os.open

    def fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(out.parent / ".events")):
            raise OSError(err, os.strerror(err))
        return real_fsync(fd)

    def os_open(path, *args, **kwargs):
        if str(path).startswith(str(out.parent / ".events")):
            raise OSError(err, os.strerror(err), str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "fsync" if op == "fsync" else "open", fsync if op == "fsync" else os_open)
    code, _, stderr = run_cli(capsys, "export", seg_dir, out, "--format", fmt)
    assert code == 2, stderr
    line = one_error_line(stderr)
    assert str(out) in line and os.strerror(err) in line
    assert os.listdir(out.parent) == []
    with pytest.raises(aq.OutputError) as info:
        getattr(ax, f"write_{fmt}")(seg_dir, out)
    assert isinstance(info.value, OSError) and info.value.errno == err
