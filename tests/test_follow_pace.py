"""A follower keeps pace with a writer appending as fast as it can, across segment
rotations, and reads a backlog without sleeping between reads."""

from __future__ import annotations

import threading
import time

import actionqueue as aq
from actionqueue.wal import WalReader


def _events(n: int, start: int = 1) -> list[aq.WalEvent]:
    return [aq.WalEvent(s, aq.EnginePaused(s) if s % 2 else aq.EngineResumed(s)) for s in range(start, start + n)]


def test_a_follower_keeps_pace_with_a_fast_writer(tmp_path) -> None:
    n, batch = 40_000, 500
    got: list[int] = []
    stop = threading.Event()
    caught_up = threading.Event()

    def follow() -> None:
        for event in WalReader(tmp_path).follow(poll_interval=0.05, stop=stop):
            got.append(event.sequence)
            if event.sequence == n:
                caught_up.set()

    with aq.WalWriter(tmp_path, durability="none", segment_bytes=256 << 10) as w:
        w.append_many(_events(1))
        t = threading.Thread(target=follow)
        t.start()
        for start in range(2, n + 1, batch):
            w.append_many(_events(min(batch, n + 1 - start), start))
        finished = time.monotonic()
    try:
        # a follower that slept after every read would be seconds behind by now
        assert caught_up.wait(10), f"{n - len(got)} events behind"
        lag = time.monotonic() - finished
    finally:
        stop.set()
        t.join()
    assert got == list(range(1, n + 1))
    assert lag < 10


def test_a_backlog_is_read_without_sleeping(tmp_path) -> None:
    """A backlog spread over dozens of sealed segments is read through without a poll
    interval per segment (a guard: a sleep after each file would take a minute here)."""
    n = 50_000
    with aq.WalWriter(tmp_path, durability="none", segment_bytes=128 << 10) as w:
        w.append_many(_events(n))
    stop = threading.Event()
    started = time.monotonic()
    count = 0
    for event in WalReader(tmp_path).follow(poll_interval=1.0, stop=stop):
        count += 1
        if event.sequence == n:
            break
    # dozens of segments: one poll interval each would take a minute
    assert count == n and time.monotonic() - started < 20


def test_a_follower_in_the_same_process_is_woken_by_the_write(tmp_path) -> None:
    """Its poll interval is an upper bound: a write in this process wakes it at once."""
    seen = threading.Event()
    stop = threading.Event()

    def follow() -> None:
        for event in WalReader(tmp_path).follow(poll_interval=30.0, stop=stop):
            if event.sequence == 2:
                seen.set()

    with aq.WalWriter(tmp_path, durability="none") as w:
        w.append_many(_events(1))
        t = threading.Thread(target=follow)
        t.start()
        time.sleep(0.3)  # the follower has read event 1 and sleeps
        written = time.monotonic()
        w.append_many(_events(1, 2))
        try:
            assert seen.wait(5), "not woken"
            assert time.monotonic() - written < 5
        finally:
            stop.set()
            t.join(5)
    assert not t.is_alive()  # stop is still honoured within STOP_CHECK_S
