"""``actionqueue demo``: the main job end to end on a small workload (a few seconds).

The summary's numbers must add up: the workload wrote exactly the planned events, recovery
replayed the events after the snapshot plus everything the crash child acknowledged, cut
only the torn record, agrees with a full replay, and the dir verifies clean. Counts depend
only on the seed and the number of tasks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import actionqueue as aq
from actionqueue.cli import main
from actionqueue.cli._demo_workload import expected_events, plan_tasks

PROJECT = Path(__file__).resolve().parents[1]
SMALL = ["--tasks", "12", "--workers", "3", "--crash-commands", "60"]


@pytest.fixture(autouse=True)
def _no_progress(monkeypatch):
    monkeypatch.setenv("ACTIONQUEUE_NO_PROGRESS", "1")


def run_demo(capsys, *args: str) -> tuple[int, dict]:
    code = main(["demo", *SMALL, "--json", *args])
    out = capsys.readouterr().out
    return code, json.loads(out)


def counts(result: dict) -> list:
    """Everything in a result that must not depend on timing."""
    r = result["recovery"]
    return [
        [(p["phase"], p["events"]) for p in result["phases"]],
        r["events_replayed"], r["latest_sequence"], r["child_acked_events"], r["snapshot_sequence"],
        result["projection"]["tasks"], result["projection"]["runs"], result["verify"]["records"],
    ]  # fmt: skip  (the states the child's runs were killed in depend on the interleaving)


def test_demo_numbers_are_consistent(tmp_path, capsys) -> None:
    d = tmp_path / "data"
    code, res = run_demo(capsys, str(d), "--seed", "7")
    assert code == 0, res["checks"]
    assert all(res["checks"].values()), res["checks"]
    phases = {p["phase"].split(" (")[0]: p for p in res["phases"]}
    workload = phases["workload"]["events"]
    after = phases["commands after the snapshot"]["events"]
    child = phases["crash child"]["events"]
    rec = res["recovery"]

    # the workload wrote what the plan says: setup (tenant, 3 actors x 3, ledger) + tasks
    plans = plan_tasks(7, 12)
    assert workload == 2 + 3 * 3 + expected_events(plans)
    assert rec["snapshot_sequence"] == phases["snapshot"]["events"] == workload
    assert rec["snapshot_source"] == "image"
    # replay after recovery = events written after the snapshot + the child's acknowledged appends
    assert rec["events_replayed"] == after + child == after + rec["child_acked_events"]
    assert rec["latest_sequence"] == workload + after + child
    assert child > 0 and rec["child_acked_commands"] > 60
    # the torn record: half of it was written, all of it cut
    torn = rec["torn_tail"]
    assert torn is not None and torn["bytes_cut"] == rec["child_torn_bytes_written"]
    assert 0 < torn["bytes_cut"] < rec["child_torn_record_bytes"]
    assert torn["reason"] in ("incomplete_header", "incomplete_payload")
    assert phases["replay of the whole log"]["events"] == rec["latest_sequence"]
    assert res["verify"]["clean"] and res["verify"]["records"] == rec["latest_sequence"]
    # runs that ended in the workload phase are all terminal in the snapshot's part
    assert sum(res["projection"]["runs_by_state"].values()) == res["projection"]["runs"]

    # the data dir was kept (it was given) and reopens to the same place
    assert res["kept"]
    with aq.open(d) as store:
        assert store.reducer.latest_sequence == rec["latest_sequence"]
        assert store.report.repaired is None
    assert aq.verify(d).clean


def test_demo_counts_depend_only_on_the_seed(capsys) -> None:
    code1, a = run_demo(capsys, "--seed", "3")
    code2, b = run_demo(capsys, "--seed", "3")
    assert code1 == code2 == 0
    assert counts(a) == counts(b)
    assert not Path(a["data_dir"]).exists() and not a["kept"]  # the temporary dir is removed


def test_demo_table_keep_and_errors(tmp_path, capsys) -> None:
    code = main(["demo", *SMALL, "--keep"])
    out = capsys.readouterr().out
    assert code == 0
    assert "recovery found:" in out and "torn tail" in out and "FAIL" not in out
    kept = Path(out.rstrip().rsplit("data dir ", 1)[1])
    try:
        assert kept.is_dir() and aq.verify(kept).clean
    finally:
        import shutil

        shutil.rmtree(kept, ignore_errors=True)

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("")
    assert main(["demo", str(busy)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["demo", "--tasks", "0"]) == 2


def test_demo_as_a_command_quiet_when_piped(tmp_path) -> None:
    """The console entry as a subprocess: no progress output when stderr is not a terminal."""
    env = {k: v for k, v in os.environ.items() if k != "ACTIONQUEUE_NO_PROGRESS"}
    proc = subprocess.run(
        [sys.executable, "-m", "actionqueue", "demo", "--tasks", "4", "--crash-commands", "20", str(tmp_path / "d")],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "checks:" in proc.stdout
