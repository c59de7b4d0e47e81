"""The segmented layout: rotation, seals, reading across segments, verify, repair, removal."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

import actionqueue as aq
from actionqueue import segments, wal


def lease(seq: int, owner_len: int = 8) -> aq.WalEvent:
    return aq.WalEvent(seq, aq.LeaseAcquired(aq.RunId(seq.to_bytes(16, "big")), "w" * owner_len, seq + 30, seq))


def fill(data_dir: Path, n: int, segment_bytes: int = 2048, **kw) -> list[aq.WalEvent]:
    events = [lease(i, 5 + i % 40) for i in range(1, n + 1)]
    with wal.WalWriter(data_dir, segment_bytes=segment_bytes, **kw) as writer:
        for event in events:
            writer.append(event)
    return events


def test_new_dir_is_segmented_and_rotates(tmp_path) -> None:
    events = fill(tmp_path, 300)
    found = segments.list_segments(tmp_path / "wal")
    assert wal.detect_layout(tmp_path) is wal.Layout.SEGMENTED and len(found) > 5
    assert not (tmp_path / "wal" / wal.RUST_WAL_NAME).exists()
    prev_last = 0
    for segment in found[:-1]:
        seal = segment.read_seal()
        assert seal is not None and seal.first_sequence == segment.first_sequence == prev_last + 1
        assert seal.length == segment.path.stat().st_size <= 2048 + 200
        assert seal.xxh3_128 == segments.digest_file(segment.path)
        prev_last = seal.last_sequence
    assert found[-1].read_seal() is None  # the active segment
    # each segment is a valid Rust-format WAL file on its own
    assert [e.sequence for e in wal.WalReader(found[1].path)][0] == found[1].first_sequence
    assert list(wal.WalReader(tmp_path)) == events


def test_reopen_continues_in_the_active_segment(tmp_path) -> None:
    events = fill(tmp_path, 50)
    with wal.WalWriter(tmp_path, segment_bytes=2048) as writer:
        assert writer.current_sequence == 50
        active = writer.path
        writer.append(lease(51))
        assert writer.path == active
    assert [e.sequence for e in wal.WalReader(tmp_path)] == [e.sequence for e in events] + [51]


def test_from_sequence_skips_whole_segments(tmp_path, monkeypatch) -> None:
    fill(tmp_path, 300)
    opened = []
    real_open = open

    def spy(path, *args, **kwargs):
        opened.append(Path(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", spy)
    got = [e.sequence for e in wal.WalReader(tmp_path, from_sequence=290)]
    assert got == list(range(290, 301))
    assert len([p for p in opened if p.suffix == ".seg"]) <= 2


def test_verify_checks_seals_without_decoding_and_names_the_file(tmp_path) -> None:
    fill(tmp_path, 300)
    report = wal.verify(tmp_path)
    assert report.clean and report.records == 300 and report.last_sequence == 300
    victim = segments.list_segments(tmp_path / "wal")[2]
    data = bytearray(victim.path.read_bytes())
    data[40] ^= 0x01
    victim.path.write_bytes(bytes(data))
    report = wal.verify(tmp_path)
    assert not report.clean and report.problem.path == victim.path
    assert "digest" in str(report.problem)
    with pytest.raises(wal.WalCorruption):
        list(wal.WalReader(tmp_path))


def test_repair_cuts_out_mid_log_damage_and_keeps_every_valid_record(tmp_path) -> None:
    events = fill(tmp_path, 200, layout="rust")
    path = tmp_path / "wal" / wal.RUST_WAL_NAME
    data = bytearray(path.read_bytes())
    offsets = []
    pos = 0
    while pos < len(data):
        offsets.append(pos)
        pos += 12 + int.from_bytes(data[pos + 4 : pos + 8], "little")
    bad = offsets[100]
    data[bad + 20] ^= 0xFF  # damage record 101's payload
    path.write_bytes(bytes(data))
    with pytest.raises(wal.MidLogCorruption) as info:
        wal.WalWriter(tmp_path, repair_policy=wal.RepairPolicy.TRUNCATE_PARTIAL)
    assert info.value.offset == bad and info.value.valid_records_after == 99
    assert path.read_bytes() == bytes(data)  # nothing cut implicitly (decisions.md #6)
    planned = wal.repair(tmp_path, dry_run=True)
    assert path.read_bytes() == bytes(data)
    results = wal.repair(tmp_path)
    assert [r.cuts for r in results] == [r.cuts for r in planned] == [((bad, offsets[101] - bad),)]
    backup = results[0].backup / f"{path.name}.{bad}.cut"
    assert backup.read_bytes() == bytes(data[bad : offsets[101]])
    assert [e.sequence for e in wal.WalReader(tmp_path)] == [e.sequence for e in events if e.sequence != 101]
    with wal.WalWriter(tmp_path) as writer:  # opens cleanly, the gap is allowed
        assert writer.current_sequence == 200


def test_repair_of_a_torn_tail_truncates_and_backs_up(tmp_path) -> None:
    fill(tmp_path, 20, layout="rust")
    path = tmp_path / "wal" / wal.RUST_WAL_NAME
    whole = path.read_bytes()
    path.write_bytes(whole + b"\x05\x00\x00\x00\x40")
    (result,) = wal.repair(tmp_path)
    assert result.cuts == ((len(whole), 5),) and path.read_bytes() == whole
    assert wal.repair(tmp_path) == []


def test_remove_segments_before_keeps_the_active_one_and_anything_not_covered(tmp_path) -> None:
    fill(tmp_path, 300)
    with wal.WalWriter(tmp_path, segment_bytes=2048) as writer:
        before = writer.segments()
        removed = writer.remove_segments_before(150)
        after = writer.segments()
    assert removed and all(p.suffix == ".seg" for p in removed)
    assert after[0].first_sequence <= 150 and len(after) == len(before) - len(removed)
    assert all(not p.exists() and not p.with_suffix(".seal").exists() for p in removed)
    assert [e.sequence for e in wal.WalReader(tmp_path)][-1] == 300
    assert wal.verify(tmp_path).clean


def test_unsealed_segment_in_the_middle_is_reported(tmp_path) -> None:
    fill(tmp_path, 300)
    victim = segments.list_segments(tmp_path / "wal")[1]
    victim.seal_path.unlink()
    with pytest.raises(wal.SegmentError) as info:
        wal.WalWriter(tmp_path)
    assert info.value.path == victim.path
    assert not wal.verify(tmp_path).clean


def test_lock_is_exclusive_and_released_on_close(tmp_path) -> None:
    writer = wal.WalWriter(tmp_path)
    with pytest.raises(wal.WalLocked):
        wal.WalWriter(tmp_path)
    writer.close()
    wal.WalWriter(tmp_path).close()


def test_rust_layout_is_kept_for_an_existing_rust_log(tmp_path) -> None:
    (tmp_path / "wal").mkdir()
    (tmp_path / "wal" / wal.RUST_WAL_NAME).write_bytes(b"")
    with wal.WalWriter(tmp_path, segment_bytes=256) as writer:
        for i in range(1, 50):
            writer.append(lease(i))
        assert writer.layout is wal.Layout.RUST
    assert sorted(os.listdir(tmp_path / "wal")) == [wal.CHECKPOINT_NAME, "LOCK", wal.MANIFEST_NAME, wal.RUST_WAL_NAME]


@pytest.mark.parametrize("durability", list(wal.Durability))
def test_durability_modes_all_persist_on_close(tmp_path, durability) -> None:
    events = fill(tmp_path, 100, durability=durability)
    assert list(wal.WalReader(tmp_path)) == events


def test_follow_yields_events_appended_by_another_writer(tmp_path) -> None:
    stop = threading.Event()
    seen: list[int] = []

    def consume() -> None:
        for event in wal.WalReader(tmp_path).follow(poll_interval=0.01, stop=stop):
            seen.append(event.sequence)

    with wal.WalWriter(tmp_path, segment_bytes=1024, durability="none") as writer:
        writer.append_many(lease(i) for i in range(1, 11))
        thread = threading.Thread(target=consume)
        thread.start()
        for i in range(11, 120):
            writer.append(lease(i))
        # a half-written record at the end is waited for, not reported
        os.write(writer._fd, b"\x05\x00\x00\x00\x30")
        deadline = time.monotonic() + 10
        while len(seen) < 119 and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()
        thread.join(5)
        os.ftruncate(writer._fd, writer.size)
    assert seen == list(range(1, 120))
    assert len(segments.list_segments(tmp_path / "wal")) > 2


# --------------------------------------------------------------------------------------
# Checkpoint of a cleanly closed writer
# --------------------------------------------------------------------------------------
class _WalkSpy:
    """Records the start offset of every walk the writer's validation makes."""

    def __init__(self, inner):
        self._inner = inner
        self.starts: list[int] = []

    def walk(self, buf, start=0, *args, **kw):
        self.starts.append(start)
        return self._inner.walk(buf, start, *args, **kw)

    def __getattr__(self, name):
        return getattr(self._inner, name)


@pytest.mark.parametrize("layout", ["rust", "segmented"])
def test_a_clean_close_spares_the_next_open_the_walk(tmp_path, monkeypatch, layout) -> None:
    with wal.WalWriter(tmp_path, layout=layout) as writer:
        for i in range(1, 30):
            writer.append(lease(i))
        size = writer.size
    ckpt = wal.Checkpoint.read(tmp_path / "wal", writer.path)
    assert ckpt is not None and (ckpt.length, ckpt.records, ckpt.first_sequence, ckpt.last_sequence) == (size, 29, 1, 29)
    from actionqueue.log import validate as _validate

    spy = _WalkSpy(_validate.walker)
    monkeypatch.setattr(_validate, "walker", spy)
    with wal.WalWriter(tmp_path) as writer:
        assert writer.current_sequence == 29 and writer.size == size
        assert spy.starts[0] == size  # nothing before the checkpoint walked again
        writer.append(lease(30))
    monkeypatch.undo()
    assert [e.sequence for e in wal.WalReader(tmp_path)] == list(range(1, 31))


def test_records_after_the_checkpoint_are_checked(tmp_path) -> None:
    """A crash after more appends leaves the old checkpoint: the records after it are
    walked (and a torn tail there is found and cut as usual)."""
    with wal.WalWriter(tmp_path, layout="rust") as writer:
        for i in range(1, 11):
            writer.append(lease(i))
    path = tmp_path / "wal" / wal.RUST_WAL_NAME
    more = b"".join(aq.encode(lease(i)) for i in range(11, 16))
    torn = aq.encode(lease(16))[:-3]
    with open(path, "ab") as f:
        f.write(more + torn)
    with pytest.raises(wal.TornTail) as info:
        wal.WalWriter(tmp_path, layout="rust")
    assert info.value.records_before == 15
    with wal.WalWriter(tmp_path, repair_policy=wal.RepairPolicy.TRUNCATE_PARTIAL) as writer:
        assert writer.current_sequence == 15 and writer.repaired is not None


@pytest.mark.parametrize("damage", ["flip", "garbage_checkpoint", "other_file", "shorter"])
def test_a_checkpoint_that_does_not_match_is_not_trusted(tmp_path, damage) -> None:
    with wal.WalWriter(tmp_path, layout="rust") as writer:
        for i in range(1, 11):
            writer.append(lease(i))
    path = tmp_path / "wal" / wal.RUST_WAL_NAME
    ckpt_path = tmp_path / "wal" / wal.CHECKPOINT_NAME
    data = bytearray(path.read_bytes())
    if damage == "flip":  # a payload byte of record 3: its CRC no longer holds
        record = len(aq.encode(lease(1)))
        data[2 * record + 20] ^= 0x01
        path.write_bytes(bytes(data))
        with pytest.raises(wal.MidLogCorruption):
            wal.WalWriter(tmp_path)
        return
    if damage == "garbage_checkpoint":
        ckpt_path.write_bytes(b"{not json")
    elif damage == "other_file":
        obj = json.loads(ckpt_path.read_bytes())
        obj["file"] = "00000000000000000001.seg"
        ckpt_path.write_text(json.dumps(obj))
    else:  # the file was cut (by hand) inside what the checkpoint covers: records that
        # a clean close had on disk are gone, and that is said, under every policy
        path.write_bytes(bytes(data[: len(data) // 2]))
        with pytest.raises(wal.SegmentError, match="records were lost"):
            wal.WalWriter(tmp_path, repair_policy=wal.RepairPolicy.TRUNCATE_PARTIAL)
        assert aq.repair(tmp_path) is not None  # an explicit repair accepts the loss
        ckpt_path.unlink(missing_ok=True)
    try:
        with wal.WalWriter(tmp_path, repair_policy=wal.RepairPolicy.TRUNCATE_PARTIAL) as writer:
            expected = [e.sequence for e in wal.WalReader(tmp_path)]
            assert writer.current_sequence == (expected[-1] if expected else 0)
    except wal.WalCorruption:
        pytest.fail("a whole-file check of an undamaged log must pass")


def test_the_checkpoint_serves_after_a_rotation(tmp_path, monkeypatch) -> None:
    with wal.WalWriter(tmp_path, durability="none", segment_bytes=300) as w:
        for i in range(1, 51):
            w.append(lease(i))
    assert len(list((tmp_path / "wal").glob("*.seg"))) > 1
    from actionqueue.log import validate as _validate

    spy = _WalkSpy(_validate.walker)
    monkeypatch.setattr(_validate, "walker", spy)
    ckpt = json.loads((tmp_path / "wal" / wal.CHECKPOINT_NAME).read_bytes())
    with wal.WalWriter(tmp_path, segment_bytes=300) as w:
        assert w.current_sequence == 50
    assert spy.starts[0] == ckpt["length"] > 0
