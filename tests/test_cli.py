"""The ``actionqueue`` command line: in-process through ``main([...])`` and a few real
subprocesses (``python -m actionqueue``), on data dirs built in tmp_path from the golden
vectors (a Rust single-file log) and through ``WalWriter`` (segments), clean and damaged."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from aq_testlib import PACKAGE_PARENT
from cli_testlib import (  # noqa: F401 - fixtures are used by name
    PROJECT,
    RUN,
    TASK,
    V08,
    active_segment,
    need_vectors,
    nl,
    no_progress,
    one_error_line,
    run_cli,
    rust_dir,
    seg_dir,
    subprocess_env,
    v08_events,
)

import actionqueue as aq
from actionqueue.cli import COMMANDS, main


# --------------------------------------------------------------------------------------
# the parser
# --------------------------------------------------------------------------------------
def test_version(capsys):
    code, out, _ = run_cli(capsys, "--version")
    assert code == 0 and aq.__version__ in out


def test_no_command_is_usage(capsys):
    code, _, err = run_cli(capsys)
    assert code == 2 and "usage" in err


def test_bad_option_is_usage(capsys):
    code, _, err = run_cli(capsys, "dump", "somewhere", "--no-such-option")
    line = one_error_line(err)
    assert code == 2 and "unrecognized arguments: --no-such-option" in line and "'actionqueue dump --help'" in line


def test_every_command_has_help(capsys):
    for name in COMMANDS:
        assert main([name, "--help"]) == 0
        assert name in capsys.readouterr().out


# --------------------------------------------------------------------------------------
# dump
# --------------------------------------------------------------------------------------
def test_dump_json_is_the_serde_shape(capsys, rust_dir):
    code, out, err = run_cli(capsys, "dump", rust_dir)
    assert code == 0 and err == ""
    assert nl(out) == nl((V08 / "events.jsonl").read_text(encoding="utf-8"))


def test_dump_a_single_file(capsys):
    need_vectors()
    code, out, _ = run_cli(capsys, "dump", V08 / "events.wal", "--to-seq", 3)
    assert code == 0 and [json.loads(x)["sequence"] for x in nl(out)] == [1, 2, 3]


def test_dump_segments_equal_rust_file(capsys, rust_dir, seg_dir):
    _, a, _ = run_cli(capsys, "dump", rust_dir)
    _, b, _ = run_cli(capsys, "dump", seg_dir)
    assert a == b


def test_dump_filters(capsys, rust_dir, v08_events):
    code, out, _ = run_cli(capsys, "dump", rust_dir, "--kind", "RunStateChanged", "--kind", "leaseexpired")
    rows = [json.loads(x) for x in nl(out)]
    assert code == 0 and {next(iter(r["event"])) for r in rows} == {"RunStateChanged", "LeaseExpired"}
    assert len(rows) == sum(type(e.event).__name__ in ("RunStateChanged", "LeaseExpired") for e in v08_events)

    _, out, _ = run_cli(capsys, "dump", rust_dir, "--from-seq", 10, "--to-seq", 19)
    assert [json.loads(x)["sequence"] for x in nl(out)] == list(range(10, 20))

    _, out, _ = run_cli(capsys, "dump", rust_dir, "--run", RUN)
    rows = [json.loads(x) for x in nl(out)]
    assert rows and all(RUN in json.dumps(r) for r in rows)
    assert "RunCreated" in rows[0]["event"]

    _, out, _ = run_cli(capsys, "dump", rust_dir, "--task", TASK, "--from-seq", 5)
    seqs = [json.loads(x)["sequence"] for x in nl(out)]
    assert seqs and min(seqs) >= 5
    assert 5 in seqs  # RunStateChanged of a run of TASK (its RunCreated is at 4, before --from-seq)

    _, out, _ = run_cli(capsys, "dump", rust_dir, "--since", 1_700_000_100, "--until", 1_700_000_200)
    rows = [aq.WalEvent.from_json(x) for x in nl(out)]
    assert rows
    for we in rows:
        ev = we.event
        ts = ev.timestamp if hasattr(ev, "timestamp") else ev.run_instance.created_at
        assert 1_700_000_100 <= ts <= 1_700_000_200


def test_dump_table(capsys, rust_dir):
    code, out, _ = run_cli(capsys, "dump", rust_dir, "--format", "table", "--to-seq", 12)
    lines = nl(out)
    assert code == 0 and len(lines) == 13
    assert lines[0].split()[:2] == ["SEQ", "TIME"]
    assert "RunStateChanged" in lines[5] and "previous_state=Scheduled" in lines[5] and "2023-11-14" in lines[5]


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["dump", "{missing}"], "no such file or directory"),
        (["dump", "{empty}"], "not an actionqueue data dir"),
        (["dump", "{rust}", "--run", "not-a-uuid"], "bad run id"),
        (["dump", "{rust}", "--task", "42"], "bad task id"),
        (["dump", "{rust}", "--kind", "NoSuchKind"], "unknown event kind"),
        (["dump", "{rust}", "--from-seq", "9", "--to-seq", "3"], "above --to-seq"),
        (["stats", "{missing}"], "no such file"),
        (["verify", "{file}"], "is a file"),
        (["inspect", "{rust}", "--run", "xyz"], "bad run id"),
    ],
)
def test_user_errors_are_one_line_exit_2(capsys, tmp_path, rust_dir, argv, needle):
    empty = tmp_path / "empty"
    empty.mkdir()
    paths = {"missing": tmp_path / "nope", "empty": empty, "rust": rust_dir, "file": V08 / "events.wal"}
    code, out, err = run_cli(capsys, *[a.format(**paths) for a in argv])
    assert code == 2
    assert needle in one_error_line(err)
    assert out == ""


def test_dump_stops_at_damage_with_exit_1(capsys, rust_dir):
    log = rust_dir / "wal" / "actionqueue.wal"
    data = bytearray(log.read_bytes())
    data[len(data) // 2] ^= 0xFF  # mid-log damage: valid records follow
    log.write_bytes(bytes(data))
    code, out, err = run_cli(capsys, "dump", rust_dir)
    assert code == 1
    assert 0 < len(nl(out)) < 600
    line = one_error_line(err)
    assert "actionqueue.wal" in line and "offset" in line


# --------------------------------------------------------------------------------------
# stats
# --------------------------------------------------------------------------------------
def test_stats_json(capsys, seg_dir, v08_events):
    code, out, _ = run_cli(capsys, "stats", seg_dir, "--json")
    s = json.loads(out)
    assert code == 0 and s["problem"] is None
    assert s["events"] == 600 and s["latest_sequence"] == 600 and s["layout"] == "segmented"
    assert sum(s["kinds"].values()) == 600 and s["kinds"]["RunStateChanged"] == 187
    assert len(s["files"]) >= 3 and s["files"][0]["sealed"] and not s["files"][-1]["sealed"]
    assert sum(f["records"] for f in s["files"]) == 600
    assert s["bytes"] == sum(p.stat().st_size for p in (seg_dir / "wal").glob("*.seg"))
    proj = s["projection"]
    assert proj["tasks"] == 26 and proj["runs"] == 42 and sum(proj["runs_by_state"].values()) == 42
    assert proj["runs_by_state"]["Canceled"] == 15
    assert s["snapshot"] is None


def test_stats_text(capsys, rust_dir):
    code, out, _ = run_cli(capsys, "stats", rust_dir)
    assert code == 0
    assert "latest sequence 600" in out and "RunStateChanged" in out and "Canceled" in out and "rust" in out


def test_stats_with_snapshot_and_torn_tail(capsys, seg_dir):
    assert run_cli(capsys, "snapshot", seg_dir, "--timestamp", 1_700_005_000)[0] == 0
    seg = active_segment(seg_dir)
    seg.write_bytes(seg.read_bytes()[:-3])
    code, out, _ = run_cli(capsys, "stats", seg_dir, "--json")
    s = json.loads(out)
    assert code == 1 and "torn tail" in s["problem"]
    assert s["events"] == 599
    assert s["snapshot"]["sequence"] == 600 and s["snapshot"]["timestamp"] == 1_700_005_000


# --------------------------------------------------------------------------------------
# verify and repair
# --------------------------------------------------------------------------------------
def test_verify_clean(capsys, seg_dir, rust_dir):
    for d in (seg_dir, rust_dir):
        code, out, err = run_cli(capsys, "verify", d)
        assert code == 0 and err == ""
        assert "clean: 600 records, last sequence 600" in out
    code, out, _ = run_cli(capsys, "verify", seg_dir, "--json", "--decode-sealed", "--replay")
    r = json.loads(out)
    assert code == 0 and r["problem"] is None and r["replay"]["events_applied"] == 600


def test_torn_tail_verify_repair_verify(capsys, seg_dir):
    seg = active_segment(seg_dir)
    good = seg.stat().st_size
    seg.write_bytes(seg.read_bytes()[:-5])
    torn_at = seg.read_bytes()  # what is left
    code, out, err = run_cli(capsys, "verify", seg_dir)
    assert code == 1
    assert seg.name in err and "offset" in err and "IncompletePayload" in err and "torn tail" in err

    code, out, err = run_cli(capsys, "verify", seg_dir, "--json")
    problem = json.loads(out)["problem"]
    assert code == 1 and problem["file"] == str(seg) and problem["kind"] == "IncompletePayload" and problem["torn_tail"]

    # stdin is not a terminal under pytest: no repair without --yes
    code, out, err = run_cli(capsys, "repair", seg_dir)
    assert code == 2 and "--yes" in one_error_line(err)
    assert "cut offset" in out and seg.read_bytes() == torn_at

    code, out, _ = run_cli(capsys, "repair", seg_dir, "--dry-run")
    assert code == 1 and "cut offset" in out and seg.read_bytes() == torn_at  # damage found, left as it is

    code, out, _ = run_cli(capsys, "repair", seg_dir, "--yes")
    assert code == 0 and "repaired" in out
    assert list((seg_dir / "wal" / "repair-backup").iterdir())
    assert seg.stat().st_size < good

    code, out, _ = run_cli(capsys, "verify", seg_dir)
    assert code == 0 and "clean: 599 records" in out
    code, out, _ = run_cli(capsys, "repair", seg_dir, "--yes")
    assert code == 0 and "nothing to repair" in out


def test_repair_asks_on_a_terminal(capsys, monkeypatch, seg_dir):
    seg = active_segment(seg_dir)
    seg.write_bytes(seg.read_bytes()[:-5])
    damaged = seg.read_bytes()
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr("builtins.input", lambda prompt="": "n")
    code, _, err = run_cli(capsys, "repair", seg_dir)
    assert code == 1 and "not repaired" in err and seg.read_bytes() == damaged
    monkeypatch.setattr("builtins.input", lambda prompt="": "yes")
    code, out, _ = run_cli(capsys, "repair", seg_dir)
    assert code == 0 and "repaired" in out and len(seg.read_bytes()) < len(damaged)


def test_verify_sealed_segment_digest(capsys, seg_dir):
    first = sorted((seg_dir / "wal").glob("*.seg"))[0]
    data = bytearray(first.read_bytes())
    data[100] ^= 0x01
    first.write_bytes(bytes(data))
    code, _, err = run_cli(capsys, "verify", seg_dir)
    assert code == 1 and first.name in err and "digest" in err


def test_verify_mid_log_damage(capsys, rust_dir):
    log = rust_dir / "wal" / "actionqueue.wal"
    data = bytearray(log.read_bytes())
    data[len(data) // 2] ^= 0xFF
    log.write_bytes(bytes(data))
    code, _, err = run_cli(capsys, "verify", rust_dir)
    assert code == 1 and "actionqueue.wal" in err and "mid-log" in err


def test_verify_damaged_snapshot(capsys, seg_dir):
    assert run_cli(capsys, "snapshot", seg_dir)[0] == 0
    snap = seg_dir / "snapshots" / "snapshot.bin"
    data = bytearray(snap.read_bytes())
    data[40] ^= 0x20
    snap.write_bytes(bytes(data))
    code, _, err = run_cli(capsys, "verify", seg_dir)
    assert code == 1 and "snapshot.bin" in err and "CrcMismatch" in err


# --------------------------------------------------------------------------------------
# snapshot
# --------------------------------------------------------------------------------------
def test_snapshot_writes_a_loadable_snapshot(capsys, rust_dir):
    code, out, _ = run_cli(capsys, "snapshot", rust_dir, "--json", "--timestamp", 1_700_002_810)
    info = json.loads(out)
    assert code == 0 and info["sequence"] == 600 and info["tasks"] == 26 and info["runs"] == 42
    loaded = aq.load_snapshot(rust_dir)
    assert loaded["metadata"]["wal_sequence"] == 600 and loaded["timestamp"] == 1_700_002_810
    # the Rust vector's snapshot of the same history, taken at the same time
    assert (rust_dir / "snapshots" / "snapshot.bin").read_bytes() == (V08 / "snapshot.bin").read_bytes()
    code, out, _ = run_cli(capsys, "snapshot", rust_dir)
    assert code == 0 and "previous snapshot at 600" in out and "sequence 600" in out


def test_snapshot_refuses_a_torn_tail(capsys, seg_dir):
    seg = active_segment(seg_dir)
    seg.write_bytes(seg.read_bytes()[:-5])
    code, _, err = run_cli(capsys, "snapshot", seg_dir)
    assert code == 1 and "torn tail" in one_error_line(err) and "repair" in err


def test_snapshot_refuses_while_a_writer_is_open(capsys, seg_dir):
    with aq.WalWriter(seg_dir):
        code, _, err = run_cli(capsys, "snapshot", seg_dir)
    assert code == 2 and "open for writing" in one_error_line(err)  # not a problem in the data


# --------------------------------------------------------------------------------------
# inspect
# --------------------------------------------------------------------------------------
def test_inspect_run(capsys, rust_dir):
    code, out, _ = run_cli(capsys, "inspect", rust_dir, "--run", RUN)
    assert code == 0
    assert "state           Canceled" in out and "Suspended" in out and "attempts" in out and TASK in out

    code, out, _ = run_cli(capsys, "inspect", rust_dir, "--run", RUN, "--json", "--at", 8)
    info = json.loads(out)
    assert code == 0 and info["as_of_sequence"] == 8
    assert info["run_instance"]["state"] == "Running"
    assert [h["to"] for h in info["state_history"]] == ["Scheduled", "Ready", "Leased", "Running"]
    assert info["lease"]["owner"] == "worker-3"


def test_inspect_task(capsys, rust_dir):
    code, out, _ = run_cli(capsys, "inspect", rust_dir, "--task", TASK, "--json")
    info = json.loads(out)
    assert code == 0 and info["task"]["task_spec"]["id"] == TASK
    assert RUN in [r["id"] for r in info["runs"]] and info["budgets"] and info["subscriptions"]
    code, out, _ = run_cli(capsys, "inspect", rust_dir, "--task", TASK)
    assert code == 0 and "runs" in out and RUN in out


def test_inspect_is_read_only_next_to_a_writer(capsys, seg_dir):
    def files():
        return sorted((p.name, p.stat().st_size) for p in (seg_dir / "wal").iterdir() if p.name != "CHECKPOINT")

    before = files()
    with aq.WalWriter(seg_dir):  # holds the lock: inspect must not need it
        code, out, _ = run_cli(capsys, "inspect", seg_dir, "--run", RUN)
        assert files() == before
    assert code == 0 and "Canceled" in out
    assert files() == before


def test_inspect_unknown_ids(capsys, rust_dir):
    code, _, err = run_cli(capsys, "inspect", rust_dir, "--run", "00000000-0000-4000-8000-000000000001")
    assert code == 2 and "no run" in one_error_line(err)  # an input error
    code, _, err = run_cli(capsys, "inspect", rust_dir, "--task", "00000000-0000-4000-8000-000000000001")
    assert code == 2 and "no task" in one_error_line(err)
    code, _, err = run_cli(capsys, "inspect", rust_dir)
    assert code == 2


# --------------------------------------------------------------------------------------
# real processes
# --------------------------------------------------------------------------------------
def test_python_m_actionqueue(rust_dir):
    r = subprocess.run([sys.executable, "-m", "actionqueue", "--version"], capture_output=True, text=True, check=False,
                       env=subprocess_env(), timeout=60)
    assert r.returncode == 0 and aq.__version__ in r.stdout
    r = subprocess.run([sys.executable, "-m", "actionqueue", "verify", str(rust_dir / "missing")],
                       capture_output=True, text=True, env=subprocess_env(), timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert one_error_line(r.stderr).startswith("actionqueue verify: error:")


#: ``python -m actionqueue`` as an editable install runs it (``pip install -e``): setuptools'
#: finder comes after the search of sys.path, whose first entry is the current directory.
EDITABLE_RUN = """
import runpy, sys
from importlib.machinery import PathFinder
from importlib.util import spec_from_file_location

class Editable:
    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname == "actionqueue":
            return spec_from_file_location(fullname, {root!r} + "/actionqueue/__init__.py")
        if fullname.startswith("actionqueue.") and fullname.count(".") == 1:
            return PathFinder.find_spec(fullname, [{root!r} + "/actionqueue"])
        return None

sys.meta_path.insert(sys.meta_path.index(PathFinder) + 1, Editable)
sys.argv[1:] = {argv!r}
runpy.run_module("actionqueue", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("argv", [["--version"], ["dump", "--help"]])
def test_python_m_actionqueue_from_the_parent_of_a_clone(tmp_path, argv):
    """The clone's folder, named like the package, is a namespace package there: it must
    not stand in for the package."""
    clone = tmp_path / "actionqueue"
    clone.mkdir()
    (clone / "README.md").write_text("a clone's root: no __init__.py")
    env = {k: v for k, v in subprocess_env().items() if k != "PYTHONPATH"}
    code = EDITABLE_RUN.format(root=str(PACKAGE_PARENT), argv=argv)  # the package under test
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=tmp_path,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "" and (aq.__version__ in r.stdout if argv == ["--version"] else "--from-seq" in r.stdout)


def test_broken_pipe_is_quiet(rust_dir, v08_events):
    # ~100 KB of JSON into `head -n 1`: the writer sees a closed pipe
    cmd = f"{sys.executable} -m actionqueue dump {rust_dir} | head -n 1"
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=False, env=subprocess_env(), timeout=60)
    assert r.returncode == 0
    assert nl(r.stdout) == [v08_events[0].to_json()]
    assert r.stderr == ""


def test_piped_output_has_no_progress_bar(rust_dir):
    env = subprocess_env()
    env.pop("ACTIONQUEUE_NO_PROGRESS", None)
    r = subprocess.run([sys.executable, "-m", "actionqueue", "stats", str(rust_dir)], capture_output=True, text=True, check=False,
                       env=env, timeout=60)
    assert r.returncode == 0 and r.stderr == "" and "latest sequence 600" in r.stdout


# --------------------------------------------------------------------------------------
# bench (a tiny workload: the point is the plumbing, not the figures)
# --------------------------------------------------------------------------------------
@pytest.fixture
def bench_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTIONQUEUE_BENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path


def test_bench_list(capsys):
    from actionqueue.bench import section_names

    code, out, _ = run_cli(capsys, "bench", "--list")
    assert code == 0 and [line.split()[0] for line in nl(out)] == section_names()


@pytest.mark.slow  # every bench section end to end (~25 s)
def test_bench_quick_json_and_plot(capsys, bench_cache):
    try:
        import matplotlib  # noqa: F401
        png = bench_cache / "bench.png"
    except ImportError:
        png = None
    plot = ["--plot", png] if png else []
    code, out, err = run_cli(capsys, "bench", "--quick", "--tasks", 8, "--repeat", 1, "--json", "--dir", bench_cache, *plot)
    assert code == 0
    result = json.loads(out)
    from actionqueue.bench import section_names

    assert result["sections"] == section_names() and result["config"]["tasks"] == 8
    keys = {r["key"] for r in result["rows"]}
    assert {"dec.ours.batch", "enc.ours.batch", "scan.ref.mem", "read.walreader", "append.none.many"} <= keys
    assert {"recovery.apply", "recovery.replay", "recovery.none", "recovery.image", "recovery.json"} <= keys
    assert all(r["median_s"] > 0 for r in result["rows"])
    assert "decode batch: ours / pure-Python twin (subset)" in result["ratios"]
    assert "## decode" in err and "## goals" in err  # the table went to stderr
    # the labels describe the workload run (248 events), not the full reference one
    assert "1M-event data dir" not in err and "1 GiB here" not in err and "after 10,000 events" not in err
    assert "open of the 248-event data dir" in err and "the reference workload cut to 8 tasks (248 events" in err
    assert "the 248-event data dir written" in err and "again after 124 events" in err
    assert "this workload has 248 events" in err
    assert not [p for p in bench_cache.iterdir() if p.name.startswith("aq-bench-")]  # scratch removed
    if png:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow  # the codec section without msgspec (~10 s)
def test_bench_skips_a_missing_peer(capsys, bench_cache, monkeypatch):
    from actionqueue.bench import codec

    monkeypatch.setattr(codec, "_msgspec_model", lambda: None)
    code, out, _ = run_cli(capsys, "bench", "--quick", "--tasks", 4, "--repeat", 1, "--section", "codec")
    assert code == 0
    assert "msgspec is not installed" in out and "msgspec decode" not in out and "ours / pickle-5" in out


def test_bench_plot_without_matplotlib(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    code, _, err = run_cli(capsys, "bench", "--quick", "--plot", "x.png")
    line = one_error_line(err)
    assert code == 2 and "the 'plot' extra" in line and "pip install 'actionqueue[plot]'" in line


def test_bench_unknown_section(capsys):
    code, _, err = run_cli(capsys, "bench", "--section", "nope")
    assert code == 2 and "unknown section" in one_error_line(err)


def test_bench_section_registry_is_one_line_per_section():
    from actionqueue.bench import SECTIONS, BenchConfig, Report, run_sections

    for s in SECTIONS:
        assert callable(s.load())
    calls = []
    extra = type(SECTIONS[0])("probe", f"{__name__}:_probe_section", "a test section")
    SECTIONS.append(extra)
    try:
        globals()["_probe_section"] = lambda rep: calls.append(rep)
        rep = Report(io.StringIO(), config=BenchConfig.quick_config(tasks=2))
        assert run_sections(rep, ["probe"]) == ["probe"] and calls == [rep]
    finally:
        SECTIONS.remove(extra)
        globals().pop("_probe_section", None)
