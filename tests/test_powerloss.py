"""Power-loss states through the file-system seam (``tests/powerloss_fs.py``).

A seeded explorer runs writer and authority workloads that rotate, seal, checkpoint,
snapshot and remove segments on a :class:`SimFiles`, cuts the power before every
mutating operation (sampled where there are too many), builds several states a disk can
be left in at each cut, recovers each one with the OS's files, and asserts: every
acknowledged event is present; what is there is the written events from the first on,
with no gap; the dir opens with TRUNCATE_PARTIAL (or, where durability NONE allowed a
loss, fails with a typed error).

The default suite explores a sample; ``ACTIONQUEUE_POWERLOSS_STATES=10000`` (and
``ACTIONQUEUE_POWERLOSS_SEED``) runs a bounded exploration of that many states.
"""

from __future__ import annotations

import itertools
import os
import random
from pathlib import Path

import pytest
from powerloss_fs import PowerCut, SimFiles
from wal_testlib import intact, make_event

import actionqueue as aq
from actionqueue.state.authority import MutationAuthority

SEED = int(os.environ.get("ACTIONQUEUE_POWERLOSS_SEED", random.randrange(1 << 30)))
STATES = int(os.environ.get("ACTIONQUEUE_POWERLOSS_STATES", "400"))
VARIANTS = ("durable", "all", "random", "random")


def writer_workload(root: Path, fs, durability: str, acked: list[int], rng: random.Random) -> None:
    """Appends (single and batches) into small segments; ``acked`` gets each sequence
    whose append returned (under NONE: only what a returned ``sync()`` covered)."""
    seq = 0
    with aq.WalWriter(root, durability=durability, segment_bytes=rng.choice([700, 1500, 4000]), fs=fs) as w:
        for _ in range(rng.randrange(8, 30)):
            n = rng.choice([1, 1, 1, 3])
            batch = [make_event(s) for s in range(seq + 1, seq + n + 1)]
            w.append_many(batch) if n > 1 else w.append(batch[0])
            seq += n
            if durability != "none":
                acked.extend(e.sequence for e in batch)
            elif rng.random() < 0.3:
                w.sync()
                acked[:] = list(range(1, seq + 1))
    if durability == "none":  # close() syncs
        acked[:] = list(range(1, seq + 1))


def authority_workload(root: Path, fs, durability: str, acked: list[int], rng: random.Random) -> None:
    """Commands through the authority, with snapshots and removal of covered segments."""
    ticks = itertools.count(1000)
    store = aq.open(root, durability=durability, segment_bytes=rng.choice([600, 1200]), fs=fs)
    a = MutationAuthority.from_store(store, clock=lambda: next(ticks))
    try:
        for i in range(rng.randrange(10, 30)):
            out = a.create_task(aq.TaskSpec(aq.TaskId.new()))
            acked.append(out.sequence)
            if i % 7 == 6:
                snap = a.snapshot()
                store.writer.remove_segments_before(int(snap["metadata"]["wal_sequence"]))
    finally:
        store.close()


def _damaged_log(root: Path) -> None:
    """40 events in small segments, the first record of a middle segment damaged (so a
    repair rewrites it under a new name, seal and MANIFEST) and a torn tail."""
    with aq.WalWriter(root, segment_bytes=4000) as w:
        for s in range(1, 41):
            w.append(make_event(s))
        segs = [s.path for s in w.segments()]
    victim = segs[len(segs) // 2]
    data = bytearray(victim.read_bytes())
    data[14] ^= 0xFF
    victim.write_bytes(bytes(data))
    with open(segs[-1], "ab") as f:
        f.write(b"\x05\x00\x00\x00\xff")


def repair_workload(root: Path, fs, durability: str, acked: list[int], rng: random.Random) -> None:
    """An explicit repair (log level: these events are not a replayable history)."""
    from actionqueue.log.repair import repair_log

    repair_log(root, fs=fs)


def _check_repair_state(state: Path, acked: list[int], durability: str) -> None:
    """Whatever the cut left, repairing again settles it, and every record the damage
    did not touch is there: the damaged one alone is gone, nothing else."""
    from actionqueue.log.repair import repair_log

    repair_log(state)
    seqs = [e.sequence for e in aq.WalReader(state)]
    assert aq.verify(state, decode_sealed=True).clean
    assert len(seqs) == 39 and set(seqs) < set(range(1, 41)), f"records lost or kept wrongly: {seqs}"


def _check_writer_state(state: Path, acked: list[int], durability: str) -> None:
    try:
        with aq.WalWriter(state, repair_policy=aq.RepairPolicy.TRUNCATE_PARTIAL):
            pass
        got = list(aq.WalReader(state))
    except aq.ActionQueueError:
        if durability == "none" and not acked:
            return
        raise
    seqs = [e.sequence for e in got]
    assert seqs == list(range(1, len(seqs) + 1)), f"a gap: {seqs}"
    assert all(intact(e) for e in got), "an event differs from what was written"
    missing = set(acked) - set(seqs)
    assert not missing, f"acknowledged events lost: {sorted(missing)[:10]}"


def _check_authority_state(state: Path, acked: list[int], durability: str) -> None:
    with aq.open(state, repair_policy=aq.RepairPolicy.TRUNCATE_PARTIAL) as store:
        latest = store.reducer.latest_sequence
        got = [e.sequence for e in aq.WalReader(state)]
    assert not acked or latest >= max(acked), f"acknowledged up to {max(acked)}, recovered to {latest}"
    assert got == list(range(got[0], got[0] + len(got))) if got else True, f"a gap: {got}"


WORKLOADS = {
    "writer": (writer_workload, _check_writer_state, None),
    "authority": (authority_workload, _check_authority_state, None),
    "repair": (repair_workload, _check_repair_state, _damaged_log),
}


def explore(tmp: Path, workload: str, durability: str, seed: int, budget: int) -> int:
    """Cut the power before each step of one seeded run (sampled to ``budget`` states);
    return how many states were checked."""
    run, check, setup = WORKLOADS[workload]
    probe = tmp / "probe"
    probe.mkdir(parents=True)
    if setup is not None:
        setup(probe)
    fs = SimFiles(probe)
    run(probe, fs, durability, [], random.Random(seed))
    steps = fs.steps
    cuts = list(range(1, steps + 1))
    rng = random.Random(seed)
    if len(cuts) * len(VARIANTS) > budget:
        cuts = sorted(rng.sample(cuts, max(1, budget // len(VARIANTS))))
    checked = 0
    for cut in cuts:
        root = tmp / f"run{cut}"
        root.mkdir()
        if setup is not None:
            setup(root)
        fs = SimFiles(root, cut_at=cut)
        acked: list[int] = []
        try:
            run(root, fs, durability, acked, random.Random(seed))
        except (PowerCut, aq.ActionQueueError, OSError):
            pass
        if fs.frozen is None:
            continue  # the run ended before this step (it differs without the cut)
        for i, mode in enumerate(VARIANTS):
            state = tmp / f"state{cut}-{i}"
            notes = fs.crash_state(state, random.Random(seed * 7919 + cut * 31 + i), mode)
            try:
                check(state, acked, durability)
            except Exception as exc:
                raise AssertionError(
                    f"seed {seed}, {workload}/{durability}, cut before step {cut}/{steps}, {mode}: {exc!r}; "
                    f"acked {acked[-3:]}; state {notes}"
                ) from exc
            checked += 1
    return checked


@pytest.mark.parametrize("durability", ["fsync", "group", "none"])
@pytest.mark.parametrize("workload", ["writer", "authority", "repair"])
def test_power_loss_states(tmp_path, workload, durability) -> None:
    print(f"power-loss explorer seed {SEED} (ACTIONQUEUE_POWERLOSS_SEED to replay)")
    if workload == "authority" and durability == "none":
        pytest.skip("NONE acknowledges nothing an authority could count on")
    if workload == "repair" and durability != "fsync":
        pytest.skip("repair has no durability setting")
    budget = max(24, STATES // 5)
    total, seed = 0, SEED
    while total < budget:
        total += explore(tmp_path / f"s{seed}", workload, durability, seed, budget - total)
        seed += 1
    print(f"{total} power-loss states checked")
