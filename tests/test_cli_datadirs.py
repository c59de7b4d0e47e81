"""What counts as a data dir, for the library and the command line: a file where a data
dir belongs, a directory whose ``wal/`` holds foreign files, a non-empty directory that is
no data dir, and the temporary files of interrupted atomic writes (a data dir's own: they
never make it unusable)."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
from cli_testlib import no_progress, one_error_line, run_cli  # noqa: F401 - fixtures are used by name

import actionqueue as aq
from actionqueue.log.catalog import Catalog, wal_name_kind


def events(first: int, last: int) -> list[aq.WalEvent]:
    """Events that replay: the engine paused and resumed in turn."""
    return [aq.WalEvent(s, aq.EnginePaused(1_700_000_000 + s) if s % 2 else aq.EngineResumed(1_700_000_000 + s))
            for s in range(first, last + 1)]


def tree(d: Path) -> list[str]:
    """Every path under ``d`` with its size: what a refused call must leave as it was."""
    return sorted(f"{p.relative_to(d)}:{p.stat().st_size if p.is_file() else '-'}" for p in d.rglob("*"))


@pytest.fixture
def afile(tmp_path) -> Path:
    f = tmp_path / "afile"
    f.write_text("hello\n")
    return f


@pytest.fixture
def junk(tmp_path) -> Path:
    """A directory whose wal/ holds one random file and nothing else."""
    d = tmp_path / "junk"
    (d / "wal").mkdir(parents=True)
    (d / "wal" / "random.bin").write_bytes(os.urandom(100))
    return d


@pytest.fixture
def data(tmp_path) -> Path:
    """A data dir with a segmented log (sealed segments, MANIFEST, CHECKPOINT) of 300 events."""
    d = tmp_path / "data"
    d.mkdir()
    with aq.WalWriter(d, durability="none", segment_bytes=1000) as w:
        for first in range(1, 300, 50):
            w.append_many(events(first, first + 49))
    return d


# --------------------------------------------------------------------------------------
# the library
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("entry", [aq.open, aq.WalWriter])
def test_a_file_is_not_a_data_dir(afile, entry):
    with pytest.raises(NotADirectoryError) as info:
        entry(afile)
    assert isinstance(info.value, OSError)
    assert str(info.value) == f"data dir {afile} is a file, not a directory"
    assert afile.read_text() == "hello\n"


def test_readers_say_a_file_is_not_a_data_dir(afile):
    with pytest.raises(NotADirectoryError, match="is a file, not a directory"):
        aq.verify(afile)
    with pytest.raises(NotADirectoryError, match="is a file, not a directory"):
        aq.repair(afile)


@pytest.mark.parametrize("entry", [aq.open, aq.WalWriter, aq.repair])
def test_foreign_files_in_wal_are_refused_before_anything_is_written(junk, entry):
    before = tree(junk)
    with pytest.raises(aq.UnknownFile) as info:
        entry(junk)
    err = info.value
    assert isinstance(err, aq.SegmentError) and err.kind == "UnknownFile"
    assert err.names == ("random.bin",) and not err.in_log and err.path == junk / "wal" / "random.bin"
    assert str(err) == f"{junk / 'wal' / 'random.bin'}: not a file of an actionqueue log; move it out of {junk / 'wal'}"
    assert tree(junk) == before  # no LOCK, no snapshots/


def test_foreign_files_in_wal_are_reported_by_readers(junk):
    report = aq.verify(junk)
    assert isinstance(report.problem, aq.UnknownFile) and not report.clean
    with pytest.raises(aq.UnknownFile):
        list(aq.WalReader(junk))
    with pytest.raises(aq.UnknownFile):
        aq.replay_to(junk, 10)


def test_a_foreign_file_beside_a_log(data):
    (data / "wal" / "notes.txt").write_text("mine")
    (data / "wal" / "00000000000000000001.seg.bak").write_text("mine too")
    with pytest.raises(aq.UnknownFile) as info:
        Catalog.load(data)
    assert info.value.in_log and info.value.names == ("00000000000000000001.seg.bak", "notes.txt")
    assert "nor is notes.txt; move them out of" in str(info.value)
    assert isinstance(aq.verify(data).problem, aq.UnknownFile)
    before = tree(data)
    with pytest.raises(aq.UnknownFile):
        aq.open(data)
    assert tree(data) == before


def test_a_non_empty_directory_is_not_started_as_a_data_dir(tmp_path):
    d = tmp_path / "home"
    d.mkdir()
    (d / "notes.txt").write_text("mine")
    for entry in (aq.open, aq.WalWriter):
        with pytest.raises(aq.NotADataDir, match="holds notes.txt and no wal/ or snapshots/"):
            entry(d)
    assert tree(d) == ["notes.txt:4"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with aq.open(empty) as store:
        assert store.reducer.latest_sequence == 0
    (d / "snapshots").mkdir()  # a data dir's folder: recognised
    aq.open(d).close()


def test_the_errors_pickle(junk, tmp_path):
    with pytest.raises(aq.UnknownFile) as info:
        Catalog.load(junk)
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is aq.UnknownFile and (again.names, again.in_log) == (("random.bin",), False)
    assert str(again) == str(info.value)
    nad = pickle.loads(pickle.dumps(aq.NotADataDir(tmp_path, "it holds x")))
    assert isinstance(nad, aq.NotADataDir) and nad.path == tmp_path and str(nad).endswith("it holds x")


def test_every_file_the_log_writes_is_known(data):
    """The rule is checked against what the code writes: rotation, seals, the MANIFEST, the
    CHECKPOINT, the lock, a repair (its backup, a rewritten file), a Rust-layout log."""
    wal = data / "wal"
    seg = sorted(wal.glob("*.seg"))[-1]
    (wal / "CHECKPOINT").unlink()
    seg.write_bytes(seg.read_bytes()[:-3])  # a torn tail for repair to cut
    aq.repair(data)
    rust = data.parent / "rust"
    rust.mkdir()
    with aq.open(rust, layout="rust") as store:
        store.writer.append_many(events(1, 10))
        store.snapshot(1_700_000_000)
    names = os.listdir(wal) + os.listdir(rust / "wal")
    assert {"MANIFEST", "CHECKPOINT", "LOCK", "repair-backup", "actionqueue.wal"} <= set(names)
    assert any(n.endswith(".seal") for n in names)
    assert [n for n in names if wal_name_kind(n) is None] == []
    for n in names:  # and the temporary file of each one's atomic replacement
        if n not in ("LOCK", "repair-backup"):
            assert wal_name_kind(n + ".tmp") == "leftover", n


def test_leftovers_of_interrupted_atomic_writes_are_ignored_then_removed(data):
    wal = data / "wal"
    seal = sorted(wal.glob("*.seal"))[0]
    leftovers = [wal / "MANIFEST.tmp", wal / "CHECKPOINT.tmp", seal.with_name(seal.name + ".tmp"),
                 wal / "00000000000000000001.seg.tmp"]
    for p in leftovers:
        p.write_bytes(b"half of a write")
    assert aq.verify(data).clean and len(list(aq.WalReader(data))) == 300
    assert Catalog.load(data).leftovers == tuple(sorted(leftovers))
    with aq.open(data) as store:
        assert store.reducer.latest_sequence == 300
    assert not [p for p in leftovers if p.exists()]
    assert not [n for n in os.listdir(wal) if n.endswith(".tmp")]


# --------------------------------------------------------------------------------------
# the command line: the same line from every command, and nothing written
# --------------------------------------------------------------------------------------
UNKNOWN = "00000000-0000-4000-8000-000000000001"
#: every command that takes a data dir, with what else it needs
DIR_COMMANDS = [["dump"], ["stats"], ["verify"], ["repair", "--yes"], ["snapshot"], ["compact"],
                ["inspect", "--run", UNKNOWN]]


def cli(capsys, argv: list[str], path: Path) -> tuple[int, str, str]:
    return run_cli(capsys, argv[0], path, *argv[1:])


@pytest.mark.parametrize("argv", DIR_COMMANDS, ids=lambda a: a[0])
def test_every_command_says_a_file_is_not_a_data_dir(capsys, afile, argv):
    code, out, err = cli(capsys, argv, afile)
    line = one_error_line(err)
    assert code == 2 and out == ""
    assert line.startswith(f"actionqueue {argv[0]}: error: {afile}: is a file")
    assert "expected a data dir (a directory with wal/ inside)" in line
    assert "torn tail" not in line and afile.read_text() == "hello\n"


def test_dump_still_reads_a_log_file(capsys, data):
    seg = sorted((data / "wal").glob("*.seg"))[0]
    code, out, _ = run_cli(capsys, "dump", seg, "--to-seq", 2)
    assert code == 0 and [aq.WalEvent.from_json(x).sequence for x in out.splitlines()] == [1, 2]
    code, _, err = run_cli(capsys, "dump", data / "wal" / "MANIFEST")
    assert code == 2 and "is a file, not a WAL v5 log; expected a data dir" in one_error_line(err)


@pytest.mark.parametrize("argv", DIR_COMMANDS, ids=lambda a: a[0])
def test_every_command_refuses_a_wal_of_foreign_files(capsys, junk, argv):
    before = tree(junk)
    code, out, err = cli(capsys, argv, junk)
    assert code == 2 and out == ""
    assert one_error_line(err).endswith(f"{junk}: not an actionqueue data dir ({junk / 'wal'} holds random.bin: "
                                        "no file of a log)")
    assert tree(junk) == before


@pytest.mark.parametrize("argv", DIR_COMMANDS, ids=lambda a: a[0])
def test_a_foreign_file_beside_a_log_is_a_problem_found(capsys, data, argv):
    (data / "wal" / "notes.txt").write_text("mine")
    before = tree(data)
    code, _, err = cli(capsys, argv, data)
    line = one_error_line(err)
    assert code == 1 and f"{data / 'wal' / 'notes.txt'}: not a file of an actionqueue log; move it out" in line
    assert tree(data) == before


@pytest.mark.parametrize("argv", [["demo", "{f}"], ["bench", "--quick", "--dir", "{f}"]], ids=lambda a: a[0])
def test_a_file_where_a_directory_belongs(capsys, afile, argv):
    code, _, err = run_cli(capsys, *[a.format(f=afile) for a in argv])
    assert code == 2 and f"{afile}: is a file; expected" in one_error_line(err)
