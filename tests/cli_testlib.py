"""Shared pieces of the command-line tests (``test_cli*.py``): data dirs built from the
golden vectors (a Rust single-file log; tests skip when they are absent) or written here
(segments), running ``main([...])`` in process or ``python -m actionqueue`` as a process,
and checks of what a user sees."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from aq_testlib import PACKAGE_PARENT, VECTORS_DIR, VECTORS_MISSING

import actionqueue as aq
from actionqueue.cli import main

__all__ = ["V08", "RUN", "TASK", "PROJECT", "need_vectors", "no_progress", "rust_dir", "v08_events", "seg_dir",
           "engine_dir", "engine_events", "run_cli", "nl", "one_error_line", "active_segment", "subprocess_env"]

V08 = VECTORS_DIR / "replay" / "valid" / "v08_random_mixed"
RUN = "defed3f2-f783-4255-8e25-b3ff079f3f4a"  # the first run of v08 (task TASK, canceled at the end)
TASK = "efb612e3-b729-42d1-9b0a-3e6f6d8c8223"
PROJECT = Path(__file__).resolve().parents[1]


def need_vectors() -> None:
    if not V08.is_dir():
        pytest.skip(VECTORS_MISSING)


@pytest.fixture(autouse=True)
def no_progress(monkeypatch):
    monkeypatch.setenv("ACTIONQUEUE_NO_PROGRESS", "1")


@pytest.fixture
def rust_dir(tmp_path) -> Path:
    """A Rust-layout data dir holding the v08 history (600 events, sequences 1..600)."""
    need_vectors()
    d = tmp_path / "rust"
    (d / "wal").mkdir(parents=True)
    shutil.copy(V08 / "events.wal", d / "wal" / "actionqueue.wal")
    return d


@pytest.fixture
def v08_events() -> list:
    need_vectors()
    return aq.decode_batch((V08 / "events.wal").read_bytes())


@pytest.fixture
def seg_dir(tmp_path, v08_events) -> Path:
    """The same history written through WalWriter into small (sealed) segments."""
    d = tmp_path / "seg"
    d.mkdir()
    with aq.WalWriter(d, durability=aq.Durability.NONE, segment_bytes=16_000) as w:
        w.append_many(v08_events[:200])
        for e in v08_events[200:]:
            w.append(e)
    return d


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def nl(text: str) -> list[str]:
    """Lines split at newlines only (the JSON holds raw U+2028/U+2029, as serde_json writes)."""
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n") if text else []


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def active_segment(d: Path) -> Path:
    """The newest segment, to be damaged as a crash would: without the checkpoint of a
    clean close (one that covers the damaged bytes is evidence of a loss: refused)."""
    (d / "wal" / "CHECKPOINT").unlink(missing_ok=True)
    return sorted((d / "wal").glob("*.seg"))[-1]


def engine_events(first: int, last: int) -> list[aq.WalEvent]:
    """Events that replay without the vectors: the engine paused and resumed in turn."""
    return [aq.WalEvent(s, aq.EnginePaused(1_700_000_000 + s) if s % 2 else aq.EngineResumed(1_700_000_000 + s))
            for s in range(first, last + 1)]


@pytest.fixture
def engine_dir(tmp_path) -> Path:
    """A segmented data dir of 300 such events (sequences 1..300, a few sealed segments)."""
    d = tmp_path / "engine"
    d.mkdir()
    with aq.WalWriter(d, durability=aq.Durability.NONE, segment_bytes=1000) as w:
        for first in range(1, 300, 50):
            w.append_many(engine_events(first, first + 49))
    return d


def subprocess_env() -> dict[str, str]:
    """The environment of a ``python -m actionqueue`` child: the package under test first
    on the path (not the checkout's sources, which may be unbuilt)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(PACKAGE_PARENT) + os.pathsep + env.get("PYTHONPATH", "")
    return env
