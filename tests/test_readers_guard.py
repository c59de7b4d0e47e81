"""Every reader of the log (scan, iter_scan, SegmentScanner, WalReader and the CLI
commands on them) decides the same way as verify and the writer about: a file cut below
the CHECKPOINT of its last clean close, a log file that is not a regular file, and an
incomplete record at the very end of the active file while a writer holds the lock."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_testlib import engine_events, one_error_line, run_cli, subprocess_env
from wal_testlib import make_event

import actionqueue as aq
from actionqueue.log.validate import is_log_file
from actionqueue.scan import SegmentScanner, iter_scan


def _closed_log(d: Path, layout: str = "segmented", n: int = 30) -> Path:
    """A cleanly closed log (so with a CHECKPOINT of its active file); its active file."""
    d.mkdir(exist_ok=True)
    with aq.WalWriter(d, layout=layout, segment_bytes=200) as w:
        w.append_many(engine_events(1, n))  # events that replay (inspect)
        path = w.path
    assert (d / "wal" / "CHECKPOINT").exists() and path is not None
    return path


def _every_reader_refuses(d: Path, path: Path, exc_type, match: str) -> None:
    with pytest.raises(exc_type, match=match):
        aq.scan(d)
    with pytest.raises(exc_type, match=match):
        list(aq.WalReader(d))
    with pytest.raises(exc_type, match=match):
        for _ in iter_scan(d):
            pass
    with pytest.raises(exc_type, match=match):
        with SegmentScanner(path) as scanner:
            scanner.columns()


# -- 1. a file cut below its CHECKPOINT --------------------------------------------------
@pytest.mark.parametrize("layout", ["segmented", "rust"])
@pytest.mark.parametrize("cut", ["empty", "record-boundary"])
def test_a_file_cut_below_its_checkpoint_is_refused_by_every_reader(tmp_path, capsys, layout, cut) -> None:
    d = tmp_path / "d"
    path = _closed_log(d, layout)
    if cut == "empty":
        os.truncate(path, 0)
    else:
        with SegmentScanner(path) as scanner:
            cols = scanner.columns()
        os.truncate(path, int(cols.offset[len(cols) // 2]))
    _every_reader_refuses(d, path, aq.SegmentError, "records were lost")
    assert isinstance(aq.verify(d).problem, aq.SegmentError)
    for argv in (["dump", d], ["export", d, tmp_path / "out.jsonl"], ["stats", d, "--no-replay"]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 1, (argv, err)
        assert "records were lost" in one_error_line(err)
    assert not (tmp_path / "out.jsonl").exists()


def test_a_grown_file_and_a_torn_tail_beyond_the_checkpoint_still_read(tmp_path) -> None:
    d = tmp_path / "d"
    path = _closed_log(d)
    with aq.WalWriter(d) as w:  # a later writer appends past the checkpoint (no close yet)
        w.append(make_event(31))
        w.append(make_event(32))
        size = w.size
        # the checkpoint of the first close is stale but still names the file: a grown
        # file is not a cut one
        assert [e.sequence for e in aq.WalReader(d)][-1] == 32
        assert int(aq.scan(d).sequence[-1]) == 32
    with open(path, "ab") as f:
        f.write(b"\x05\x00")  # a torn tail after the checkpointed length
    assert path.stat().st_size == size + 2
    with pytest.raises(aq.TornTail):
        aq.scan(d)
    with pytest.raises(aq.TornTail):
        list(aq.WalReader(d))


# -- 2. log files that are not regular files ---------------------------------------------
def _replace_with(path: Path, what: str) -> None:
    path.unlink()
    if what == "fifo":
        os.mkfifo(path)
    else:
        os.symlink("/dev/zero", path)


@pytest.mark.parametrize("layout", ["segmented", "rust"])
@pytest.mark.parametrize("what", ["fifo", "dev-zero"])
def test_a_log_file_that_is_not_a_regular_file_is_refused(tmp_path, layout, what) -> None:
    d = tmp_path / "d"
    path = _closed_log(d, layout)
    (d / "wal" / "CHECKPOINT").unlink()
    _replace_with(path, what)
    _every_reader_refuses(d, path, aq.SegmentError, "not a regular file")
    with pytest.raises(aq.SegmentError, match="not a regular file"):
        aq.WalWriter(d, layout=layout).close()
    assert isinstance(aq.verify(d).problem, aq.SegmentError)
    with pytest.raises(aq.SegmentError, match="not a regular file"):
        aq.validate_file(path)
    with pytest.raises(aq.SegmentError, match="not a regular file"):
        aq.repair(d)
    assert not is_log_file(path)


_CLI_CHILD = """
import json, sys
from actionqueue.cli import main
print(json.dumps([main(argv) for argv in json.loads(sys.argv[1])]))
"""


@pytest.mark.parametrize("what", ["fifo", "dev-zero"])
def test_the_cli_refuses_a_log_file_that_is_not_a_regular_file_in_one_line(tmp_path, what) -> None:
    d = tmp_path / "d"
    path = _closed_log(d)
    (d / "wal" / "CHECKPOINT").unlink()
    _replace_with(path, what)
    commands = [["dump", str(d)], ["stats", str(d), "--no-replay"], ["export", str(d), str(tmp_path / "o.jsonl")],
                ["inspect", str(d), "--task", "00000000-0000-0000-0000-000000000001"]]
    # in a child with a timeout (one interpreter for all four): before the fix, these
    # read /dev/zero without end or blocked on the FIFO
    proc = subprocess.run([sys.executable, "-c", _CLI_CHILD, json.dumps(commands)], capture_output=True, text=True,
                          timeout=60, env=subprocess_env())
    assert json.loads(proc.stdout) == [1, 1, 1, 1], proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 4 and "Traceback" not in proc.stderr, proc.stderr
    assert all("not a regular file" in line for line in lines), proc.stderr


# -- 3. an append in flight under a live writer ------------------------------------------
def test_an_incomplete_last_record_under_a_live_writer_is_an_append_in_flight(tmp_path, capsys) -> None:
    d = tmp_path / "d"
    d.mkdir()
    w = aq.WalWriter(d, segment_bytes=2000)
    try:
        for s in range(1, 31):
            w.append(make_event(s))
        last = w.path.read_bytes()[aq.scan(d).offset[-1]:]
        partial = last[:-3]  # a whole header, a payload cut short
        with open(w.path, "ab") as f:  # the first bytes of the writer's next record
            f.write(partial)
        assert int(aq.scan(d).sequence[-1]) == 30
        assert [e.sequence for e in aq.WalReader(d)][-1] == 30
        assert sum(len(c) for _, c in iter_scan(d)) == 30
        code, out, err = run_cli(capsys, "dump", d)
        assert code == 0, err
        assert len(out.splitlines()) == 30
        code, _, err = run_cli(capsys, "export", d, tmp_path / "o.jsonl")
        assert code == 0, err
        assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 30
        code, _, err = run_cli(capsys, "stats", d, "--no-replay")
        assert code == 0, err
        report = aq.verify(d)  # verify follows the same rule
        assert report.clean and (report.records, report.last_sequence) == (30, 30), report.problem
        code, _, err = run_cli(capsys, "verify", d)
        assert code == 0, err
    finally:
        w.close()
    # no writer: the same bytes are a torn tail
    assert isinstance(aq.verify(d).problem, aq.TornTail)
    with pytest.raises(aq.TornTail):
        aq.scan(d)
    with pytest.raises(aq.TornTail):
        list(aq.WalReader(d))
    code, _, err = run_cli(capsys, "dump", d)
    assert code == 1 and "torn tail" in one_error_line(err)


@pytest.mark.parametrize("damage", ["crc", "length"])
def test_damage_not_at_the_very_end_is_reported_under_a_live_writer(tmp_path, damage) -> None:
    d = tmp_path / "d"
    d.mkdir()
    with aq.WalWriter(d, segment_bytes=100_000) as w:
        for s in range(1, 31):
            w.append(make_event(s))
        with SegmentScanner(w.path) as scanner:
            record = int(scanner.columns().offset[10])
        with open(w.path, "r+b") as f:
            if damage == "crc":  # a payload byte of record 11 flipped
                f.seek(record + 20)
                byte = f.read(1)
                f.seek(record + 20)
                f.write(bytes([byte[0] ^ 0xFF]))
            else:  # its length field runs past the end of the file: "incomplete", but
                f.seek(record + 4)  # valid records follow, so no append in flight
                f.write((w.size * 2).to_bytes(4, "little"))
        with pytest.raises(aq.MidLogCorruption):
            aq.scan(d)
        with pytest.raises(aq.MidLogCorruption):
            list(aq.WalReader(d))
