"""Every numeric option of every command is range-checked before anything runs: a
negative or out-of-range value is one line on stderr and exit 2."""

from __future__ import annotations

import pytest
from cli_testlib import engine_dir, no_progress, one_error_line, run_cli  # noqa: F401 - fixtures are used by name

from actionqueue.cli import build_parser
from actionqueue.log.catalog import Catalog

U64_MAX = (1 << 64) - 1
TASK = "00000000-0000-4000-8000-000000000001"

#: (argv before the option, option, the lowest valid value, the highest or None)
NUMERIC = [
    (["dump", "{d}"], "--from-seq", 0, U64_MAX),
    (["dump", "{d}"], "--to-seq", 0, U64_MAX),
    (["dump", "{d}"], "--since", 0, U64_MAX),
    (["dump", "{d}"], "--until", 0, U64_MAX),
    (["export", "{d}", "{d}.jsonl"], "--from-seq", 0, U64_MAX),
    (["export", "{d}", "{d}.jsonl"], "--to-seq", 0, U64_MAX),
    (["inspect", "{d}", "--task", TASK], "--at", 0, U64_MAX),
    (["snapshot", "{d}"], "--timestamp", 0, U64_MAX),
    (["demo"], "--tasks", 1, None),
    (["demo"], "--workers", 1, None),
    (["demo"], "--seed", 0, U64_MAX),
    (["demo"], "--crash-commands", 1, None),
    (["bench", "--quick"], "--tasks", 1, None),
    (["bench", "--quick"], "--repeat", 1, None),
]


def test_every_numeric_option_is_listed_here():
    """A numeric option added to a command must be added to NUMERIC (and get a range)."""
    import argparse

    found = set()
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in sub.choices.items():
        for action in parser._actions:
            if action.type in (int, float) or getattr(action.type, "__qualname__", "").startswith("int_in."):
                found.add((name, action.option_strings[-1]))
    assert found == {(argv[0], option) for argv, option, _, _ in NUMERIC}


def _bad_values(lo: int, hi: int | None) -> list[str]:
    return [str(lo - 1), "-1", "1.5", "ten", "0x10"] + ([str(hi + 1)] if hi is not None else [])


@pytest.mark.parametrize("argv, option, lo, hi", NUMERIC, ids=lambda v: v if isinstance(v, str) else None)
def test_out_of_range_values_are_one_line_and_exit_2(capsys, engine_dir, argv, option, lo, hi):
    before = sorted(p.name for p in (engine_dir / "wal").iterdir())
    for value in _bad_values(lo, hi):
        for spelling in ([option, value], [f"{option}={value}"]):
            code, out, err = run_cli(capsys, *[a.format(d=engine_dir) for a in argv], *spelling)
            line = one_error_line(err)
            assert code == 2 and out == "", (spelling, err)
            assert line.startswith(f"actionqueue {argv[0]}: error: argument {option}: "), line
            assert "out of range" in line or "expected" in line
    assert sorted(p.name for p in (engine_dir / "wal").iterdir()) == before


def test_inspect_at_beyond_the_log(capsys, engine_dir):
    code, _, err = run_cli(capsys, "inspect", engine_dir, "--task", TASK, "--at", 301)
    assert code == 2 and "--at 301 is beyond the log's last sequence 300" in one_error_line(err)
    code, _, err = run_cli(capsys, "inspect", engine_dir, "--task", TASK, "--at", 300)
    assert code == 2 and "no task" in one_error_line(err)  # a valid --at; the task is unknown


def test_inspect_at_before_a_compacted_range(capsys, engine_dir):
    assert run_cli(capsys, "snapshot", engine_dir, "--timestamp", 1_700_000_999)[0] == 0
    assert run_cli(capsys, "compact", engine_dir)[0] == 0
    base = Catalog.load(engine_dir).base_sequence
    assert 0 < base < 300
    for at in (1, base, 299):
        code, _, err = run_cli(capsys, "inspect", engine_dir, "--task", TASK, "--at", at)
        assert code == 2 and f"--at {at} is before the earliest state" in one_error_line(err)
        assert "sequence 300, its snapshot's" in err
    code, _, err = run_cli(capsys, "inspect", engine_dir, "--task", TASK, "--at", 300)
    assert code == 2 and "no task" in one_error_line(err)


def test_reversed_ranges(capsys, engine_dir):
    code, _, err = run_cli(capsys, "dump", engine_dir, "--since", 9, "--until", 3)
    assert code == 2 and "--since 9 is after --until 3" in one_error_line(err)
    code, _, err = run_cli(capsys, "dump", engine_dir, "--from-seq", 9, "--to-seq", 3)
    assert code == 2 and "--from-seq 9 is above --to-seq 3" in one_error_line(err)


def test_the_bounds_themselves_are_accepted(capsys, engine_dir):
    code, out, _ = run_cli(capsys, "dump", engine_dir, "--from-seq", 0, "--to-seq", U64_MAX, "--since", 0,
                           "--until", U64_MAX)
    assert code == 0 and len(out.splitlines()) == 300
    code, out, _ = run_cli(capsys, "dump", engine_dir, "--from-seq", U64_MAX)
    assert code == 0 and out == ""
