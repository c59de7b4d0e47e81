"""The process ``actionqueue demo`` kills in the middle of a write (not a public API).

``python -m actionqueue.cli._demo_child DATA_DIR DURABILITY WORKERS TASKS SEED FIRST_INDEX COMMANDS``

Recovers ``DATA_DIR`` (``actionqueue.open``), registers its workers again, submits
``TASKS`` more tasks of the demo workload (tasks ``FIRST_INDEX..``) and lets ``WORKERS``
threads work their runs through a :class:`~actionqueue.MutationAuthority` with
``DURABILITY``. Its protocol on stdout, one line per ``os.write`` (atomic on a pipe):

``ready <latest sequence>``
    recovered, about to append.
``ack <first sequence> <events>``
    a command *returned*: its events are appended as durably as ``DURABILITY`` says.
``torn <bytes written> <record bytes>``
    the command after the first ``COMMANDS`` worker commands is in the middle of its
    write: the disk took the first half of its record, and the process waits there to be
    killed (SIGKILL; TerminateProcess on Windows). Nothing after that is acknowledged.

The slow disk is a wrapper around ``os.write`` that, once armed, passes half of the next
write of a data file through and then blocks: the writer is inside its real write call
(holding its lock and the authority's) when the process dies, which is what a crash in
the middle of an append leaves behind: a torn last record, never acknowledged.
The process exits by itself after 120 s (its parent is gone).
"""

from __future__ import annotations

import os
import sys
import threading

import actionqueue as aq

from ._demo_workload import Workload, monotonic_clock, plan_tasks

_real_write = os.write
_armed = threading.Event()


def say(line: str) -> None:
    """One protocol line, in one write."""
    _real_write(1, (line + "\n").encode())


def _slow_disk_write(fd: int, data) -> int:
    if _armed.is_set() and fd > 2:
        view = memoryview(data)
        record = 12 + int.from_bytes(view[4:8], "little") if len(view) >= 12 else len(view)
        n = _real_write(fd, view[: max(1, record // 2)])
        say(f"torn {n} {record}")
        threading.Event().wait()  # the parent kills us here
    return _real_write(fd, data)


def main(argv: list[str]) -> int:
    data_dir, durability, workers, tasks, seed, first_index, commands = argv
    workers_n, tasks_n, seed_n, first_n, commands_n = map(int, (workers, tasks, seed, first_index, commands))
    watchdog = threading.Timer(120, os._exit, (3,))
    watchdog.daemon = True
    watchdog.start()

    store = aq.open(data_dir, durability=aq.Durability(durability))
    say(f"ready {store.reducer.latest_sequence}")
    clock = monotonic_clock()
    authority = aq.MutationAuthority.from_store(store, clock=clock)

    lock = threading.Condition()
    issued = [0]
    gated_acks = [0]  # acknowledged commands that passed the gate

    def acked(outs: list) -> None:
        say(f"ack {outs[0].sequence} {len(outs)}")
        if workload._gate is not None:
            with lock:
                gated_acks[0] += 1
                lock.notify_all()

    def gate() -> None:
        with lock:
            issued[0] += 1
            k = issued[0]
            if k == commands_n + 1:
                # every earlier command has returned (the authority runs one at a time);
                # wait until each has printed its ack too, then tear this one's write
                lock.wait_for(lambda: gated_acks[0] >= commands_n, timeout=30)
                _armed.set()
                return
        if k > commands_n + 1:
            threading.Event().wait()  # the others wait (the torn write holds the authority)

    os.write = _slow_disk_write
    workload = Workload(authority, workers=workers_n, clock=clock, on_outcome=acked)
    workload.setup(seed_n)
    plans = plan_tasks(seed_n, tasks_n, first_n, tenant=workload.tenant)
    jobs = workload.submit_tasks(plans)
    workload._gate = gate
    workload.run_tasks(plans, submitted=jobs)
    say("done")  # COMMANDS was more than the tasks needed: no torn write
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
