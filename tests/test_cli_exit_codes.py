"""One exit-status rule for every command: 0 clean, 1 a problem found in the data, 2 a
usage or input error; every error one line on stderr; a closed output pipe ends the
command quietly with 0. Stated in ``actionqueue --help`` and in the README."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest
from cli_testlib import (  # noqa: F401 - fixtures are used by name
    PROJECT,
    RUN,
    active_segment,
    engine_dir,
    engine_events,
    no_progress,
    one_error_line,
    run_cli,
    seg_dir,
    subprocess_env,
    v08_events,
)

import actionqueue as aq
from actionqueue.cli import EXIT_RULE, main

UNKNOWN = "00000000-0000-4000-8000-000000000001"


def test_the_rule_is_in_help_and_readme(capsys):
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0 and EXIT_RULE.split("\n")[0] in out
    flat = " ".join(out.split())
    assert "0 clean; 1 a problem found in the data" in flat and "2 a usage or input error" in flat
    readme = (PROJECT / "README.md").read_text()
    section = readme[readme.index("## Command line"):readme.index("## Compatibility with Rust")]
    assert "| 0 | clean |" in section and "| 1 | a problem found in the data" in section
    assert "| 2 | a usage or input error" in section and "head`) ends the command quietly with 0" in section


# --------------------------------------------------------------------------------------
# 2: usage and input errors
# --------------------------------------------------------------------------------------
def test_an_unknown_id_is_an_input_error(capsys, engine_dir):
    for which in ("--run", "--task"):
        code, out, err = run_cli(capsys, "inspect", engine_dir, which, UNKNOWN)
        assert code == 2 and out == "" and f"no {which[2:]} {UNKNOWN}" in one_error_line(err)


def test_a_missing_optional_extra_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    code, _, err = run_cli(capsys, "bench", "--quick", "--plot", "x.png")
    assert code == 2 and "needs the 'plot' extra" in one_error_line(err)


@pytest.mark.parametrize("argv", [["snapshot"], ["compact"], ["repair", "--yes"]])
def test_a_data_dir_open_for_writing_is_a_usage_error(capsys, engine_dir, argv):
    aq.write_snapshot(engine_dir, aq.build_snapshot(aq.replay_to(engine_dir, 300), 1_700_000_000))
    with aq.WalWriter(engine_dir):
        code, _, err = run_cli(capsys, argv[0], engine_dir, *argv[1:])
    assert code == 2 and "open for writing" in one_error_line(err)


def test_compact_without_a_snapshot_is_a_step_to_take_first(capsys, engine_dir, tmp_path):
    code, _, err = run_cli(capsys, "compact", engine_dir)
    assert code == 2 and "run 'actionqueue snapshot' first" in one_error_line(err)
    afile = tmp_path / "afile"
    afile.write_text("x")
    code, _, err = run_cli(capsys, "compact", engine_dir, "--archive", afile)
    assert code == 2 and f"--archive {afile}: is a file" in one_error_line(err)


def test_argparse_errors_are_one_line(capsys):
    code, _, err = run_cli(capsys, "inspect", "somewhere")
    line = one_error_line(err)
    assert code == 2 and line.startswith("actionqueue inspect: error: one of the arguments --run --task is required")


@pytest.mark.parametrize("exc, code", [
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "x/wal/00000000000000000001.seg"), 2),
    (PermissionError(errno.EACCES, "Permission denied", "x/wal"), 2),
    (OSError(errno.EIO, "Input/output error", "x/wal/00000000000000000001.seg"), 1),
    (OSError(errno.ENOSPC, "No space left on device"), 1),
])
def test_os_errors_are_one_line(capsys, monkeypatch, engine_dir, exc, code):
    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr("actionqueue.cli.verify.check", fail)
    got, _, err = run_cli(capsys, "verify", engine_dir)
    assert got == code and one_error_line(err).startswith("actionqueue verify: error: ")


def test_a_bug_keeps_its_traceback(monkeypatch, engine_dir):
    monkeypatch.setattr("actionqueue.cli.verify.check", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        main(["verify", str(engine_dir)])


# --------------------------------------------------------------------------------------
# 1: problems found in the data
# --------------------------------------------------------------------------------------
def test_a_repair_dry_run_that_finds_damage_exits_1(capsys, engine_dir):
    code, out, _ = run_cli(capsys, "repair", engine_dir, "--dry-run")
    assert code == 0 and "nothing to repair" in out
    seg = active_segment(engine_dir)
    seg.write_bytes(seg.read_bytes()[:-3])
    code, out, _ = run_cli(capsys, "repair", engine_dir, "--dry-run")
    assert code == 1 and "cut offset" in out
    assert run_cli(capsys, "repair", engine_dir, "--yes")[0] == 0
    assert run_cli(capsys, "repair", engine_dir, "--dry-run")[0] == 0


def test_stats_with_an_unusable_snapshot_exits_1(capsys, engine_dir):
    aq.write_snapshot(engine_dir, aq.build_snapshot(aq.replay_to(engine_dir, 300), 1_700_000_000))
    assert run_cli(capsys, "stats", engine_dir)[0] == 0
    snap = engine_dir / "snapshots" / "snapshot.bin"
    data = bytearray(snap.read_bytes())
    data[40] ^= 0x20
    snap.write_bytes(bytes(data))
    (engine_dir / "snapshots" / "snapshot.image").unlink()
    code, out, _ = run_cli(capsys, "stats", engine_dir)
    assert code == 1 and "UNUSABLE" in out


def test_inspect_of_a_log_with_a_torn_tail_exits_1(capsys, seg_dir):
    seg = active_segment(seg_dir)
    seg.write_bytes(seg.read_bytes()[:-5])
    code, out, _ = run_cli(capsys, "inspect", seg_dir, "--run", RUN)
    assert code == 1 and "state           " in out and "note: the log ends in a torn tail" in out


def test_verify_reports_its_problem_in_one_line(capsys, engine_dir):
    seg = active_segment(engine_dir)
    seg.write_bytes(seg.read_bytes()[:-3])
    code, _, err = run_cli(capsys, "verify", engine_dir)
    line = one_error_line(err)
    assert code == 1 and "PROBLEM" in line and "'actionqueue repair DIR' cuts it off" in line


# --------------------------------------------------------------------------------------
# 0: a closed output pipe
# --------------------------------------------------------------------------------------
@pytest.fixture
def big_dir(tmp_path) -> Path:
    """A data dir whose dump (~6 MB of JSON) is far more than a pipe holds."""
    d = tmp_path / "big"
    d.mkdir()
    with aq.WalWriter(d, durability="none") as w:
        w.append_many(engine_events(1, 100_000))
    return d


@pytest.mark.parametrize("argv", [["dump"], ["dump", "--format", "table"]])
def test_a_closed_pipe_stops_quietly_with_0(big_dir, argv):
    cmd = (f"set -o pipefail; {sys.executable} -m actionqueue {argv[0]} {big_dir} {' '.join(argv[1:])}"
           " | head -n 1 > /dev/null; echo status=${PIPESTATUS[0]}")
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=False, env=subprocess_env(),
                       timeout=120)
    assert r.stdout.strip() == "status=0"
    assert r.stderr == ""  # no traceback, no "Exception ignored"


def test_a_closed_pipe_in_process(capsys, monkeypatch, engine_dir):
    class Closed:
        def write(self, text):
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", Closed())
    assert main(["dump", str(engine_dir)]) == 0
    monkeypatch.undo()
    assert capsys.readouterr().err == ""
