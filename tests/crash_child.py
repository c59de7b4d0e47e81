"""Child processes of the WAL crash tests (run with ``sys.executable``; not a test module).

``python crash_child.py server``
    A fork server: imports actionqueue once, then serves commands read from stdin, one a
    line, so that hundreds of crash rounds do not pay for hundreds of interpreter starts.

    ``run <data_dir> <durability> <threads> <salt> <big> <api> <writer-kwargs-json>``
        forks a worker and prints ``pid <pid>``. The worker opens
        ``WalWriter(data_dir, TRUNCATE_PARTIAL, durability, **kwargs)``, prints
        ``ready <current_sequence>``, then appends ``make_event(seq, salt, big)`` forever
        (single events and ``append_many`` batches; with threads > 1 every thread appends,
        retrying with a fresh sequence when overtaken; with api ``next`` every thread
        calls ``append_next(tagged_event(...))`` instead). After each append *returns* it
        prints ``ack <seq> ...`` with one ``os.write`` (atomic on a pipe).
    ``reap``
        waits for the worker (which the parent has SIGKILLed) and prints
        ``exit <pid> <wait status>``; every line the worker printed precedes it.

    The server never reaps a worker before ``reap``, so the parent can kill the pid
    without racing a pid reuse. A worker exits by itself after 20 s (parent gone).

``python crash_child.py fsize <data_dir> <limit> <salt> <writer-kwargs-json>``
    Appends with fsync under ``RLIMIT_FSIZE = limit`` (SIGXFSZ ignored, so the kernel
    answers a write past the limit with a short write, then EFBIG) until appends fail,
    then tries a few more, and reports each ``ack``, each ``fail <exc type> <errno>`` and
    finally ``state <writer.size> <file size> <current_sequence>``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from wal_testlib import SeqAllocator, make_event, tagged_event

from actionqueue import wal


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


def worker(data_dir: str, durability: str, threads: int, salt: int, big: int, api: str, kw: dict) -> None:
    signal.signal(signal.SIGALRM, lambda *a: os._exit(3))
    signal.alarm(20)
    writer = wal.WalWriter(data_dir, repair_policy=wal.RepairPolicy.TRUNCATE_PARTIAL, durability=durability, **kw)
    say(f"ready {writer.current_sequence}")
    rng = random.Random(os.getpid() ^ int(time.time() * 1e6))
    if threads <= 1:
        seq = writer.current_sequence + 1
        while True:
            n = 1 if rng.random() < 0.7 else rng.randrange(2, 6)
            batch = [make_event(s, salt, big) for s in range(seq, seq + n)]
            if n == 1:
                writer.append(batch[0])
            else:
                writer.append_many(batch)
            say("ack " + " ".join(str(s) for s in range(seq, seq + n)))
            seq += n
    alloc = SeqAllocator(writer.current_sequence + 1)

    def run(i: int) -> None:
        n = 0
        while True:
            if api == "next":
                n += 1
                say(f"ack {writer.append_next(tagged_event(f'{os.getpid()}.{i}.{n}'))}")
            else:
                say(f"ack {alloc.append(writer, salt, big)}")

    for i in range(threads):
        threading.Thread(target=run, args=(i,), daemon=True).start()
    while True:
        time.sleep(1)


def server() -> None:
    pid = None
    for line in sys.stdin:
        cmd = line.split()
        if not cmd:
            continue
        if cmd[0] == "run":
            data_dir, durability, threads, salt, big, api = cmd[1], cmd[2], int(cmd[3]), int(cmd[4]), int(cmd[5]), cmd[6]
            kw = json.loads(" ".join(cmd[7:]))
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    worker(data_dir, durability, threads, salt, big, api, kw)
                except BaseException as exc:  # noqa: BLE001 - reported to the parent
                    say(f"error {type(exc).__name__}: {exc}".replace("\n", " "))
                    code = 1
                finally:
                    os._exit(code)
            say(f"pid {pid}")
        elif cmd[0] == "reap":
            _, status = os.waitpid(pid, 0)
            say(f"exit {pid} {status}")
            pid = None
        elif cmd[0] == "quit":
            break


def fsize(data_dir: str, limit: int, salt: int, kw: dict) -> None:
    """See the module docstring. Phase 0 appends ``make_event(seq, salt)`` until a write
    fails; phase 1 retries one such event (it must fail again) and then appends tiny
    ``EnginePaused(seq)`` events until the file is full to the byte."""
    import resource

    import actionqueue as aq

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    writer = wal.WalWriter(data_dir, repair_policy=wal.RepairPolicy.STRICT, durability=wal.Durability.FSYNC, **kw)
    seq = writer.current_sequence + 1
    phase = 0
    failures = 0
    while failures < 3:
        tiny = phase == 1 and failures != 1
        event = aq.WalEvent(seq, aq.EnginePaused(seq)) if tiny else make_event(seq, salt)
        try:
            writer.append(event)
        except wal.WriterPoisoned as exc:
            say(f"fail WriterPoisoned {getattr(exc.__cause__, 'errno', None)}")
            break
        except wal.WalWriterError as exc:
            failures += 1
            phase = 1
            say(f"fail {type(exc).__name__} {getattr(exc.__cause__, 'errno', None)}")
            say(f"state {writer.size} {os.stat(writer.path).st_size} {writer.current_sequence}")
            continue
        say(f"ack {seq} {int(tiny)}")
        seq += 1
    writer.close()


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server()
    elif sys.argv[1] == "fsize":
        fsize(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), json.loads(sys.argv[5]))
    else:
        raise SystemExit(f"unknown mode {sys.argv[1]!r}")
