"""WAL validation, writer start-up, repair and reading against the corrupt-file vectors.

``corrupt/cases.json`` records what each Rust read path reports. We follow Rust's tail
validator on every case (decisions.md #5), refuse to cut valid records after mid-log
damage (#6), and report a sequence that does not increase (#7); the tests that depart
from a Rust column name the decision.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import actionqueue as aq
from actionqueue import wal
from actionqueue.log import _walk_py as _wal_py
from actionqueue.log._walk_common import REASON_NAMES

from aq_testlib import VECTORS_DIR

CORRUPT = VECTORS_DIR / "corrupt"
CASES = json.loads((CORRUPT / "cases.json").read_text()) if (CORRUPT / "cases.json").is_file() else []
FILE_CASES = [c for c in CASES if "validate_tail_strict" in c]
pytestmark = pytest.mark.skipif(not FILE_CASES, reason="golden vectors not found")

# decisions.md #6: damage followed by valid records (Rust's TruncatePartial cuts them away)
MID_LOG = {"c15_crc_corrupt_middle.wal", "c16_bytes_missing_middle.wal", "c17_zero_fill_middle.wal",
           "c19_unsupported_version_middle.wal"}
# decisions.md #7: Rust accepts sequences 1,2,7,3,3; we report the 4th record
NON_MONOTONIC = "c20_nonmonotonic_sequences.wal"

WALKERS = [pytest.param(_wal_py, id="python")]
try:
    from actionqueue.log import _walk as _wal

    WALKERS.append(pytest.param(_wal, id="cython"))
except ImportError:  # pragma: no cover
    pass


def ids(cases):
    return [c["file"].removesuffix(".wal") for c in cases]


def data_dir_with(tmp_path: Path, case_file: str) -> Path:
    (tmp_path / "wal").mkdir()
    shutil.copyfile(CORRUPT / case_file, tmp_path / "wal" / wal.RUST_WAL_NAME)
    return tmp_path


@pytest.mark.parametrize("walker", WALKERS)
@pytest.mark.parametrize("case", FILE_CASES, ids=ids(FILE_CASES))
def test_classifier_matches_rust_tail_validator(walker, case) -> None:
    buf = (CORRUPT / case["file"]).read_bytes()
    end, count, last, reason, detail, _ = walker.walk(buf)
    expected = case["validate_tail_strict"]
    if case["file"] == NON_MONOTONIC:
        assert (REASON_NAMES[reason], end, last) == ("sequence_not_increasing", 45, 7)  # decisions.md #7
        return
    if expected["ok"]:
        assert (reason, end, last or 0) == (0, expected["end_offset"], expected["last_valid_sequence"])
    else:
        assert (REASON_NAMES[reason], end) == (expected["reason"], expected["offset"])
        lenient = case["validate_tail_lenient"]
        assert end == lenient["last_valid_offset"] and (last or 0) == lenient["last_valid_sequence"]


@pytest.mark.parametrize("case", FILE_CASES, ids=ids(FILE_CASES))
def test_validate_file_classifies_torn_tail_and_mid_log(case) -> None:
    report = wal.validate_file(CORRUPT / case["file"])
    expected = case["validate_tail_strict"]
    if case["file"] == NON_MONOTONIC:
        assert isinstance(report.corruption, wal.MidLogCorruption)
        assert report.corruption.reason == "sequence_not_increasing" and report.corruption.offset == 45
        return
    if expected["ok"]:
        assert report.clean and report.end_offset == expected["end_offset"]
        assert (report.last_sequence or 0) == expected["last_valid_sequence"]
        return
    corruption = report.corruption
    assert (corruption.reason, corruption.offset) == (expected["reason"], expected["offset"])
    assert corruption.path == CORRUPT / case["file"]
    if case["file"] in MID_LOG:
        assert isinstance(corruption, wal.MidLogCorruption)
        assert corruption.next_valid_offset is not None and corruption.valid_records_after >= 1
        assert "refusing to cut" in str(corruption)
    else:
        assert isinstance(corruption, wal.TornTail)


@pytest.mark.parametrize("case", FILE_CASES, ids=ids(FILE_CASES))
def test_strict_writer_opens_only_clean_logs(tmp_path, case) -> None:
    data_dir = data_dir_with(tmp_path, case["file"])
    before = (data_dir / "wal" / wal.RUST_WAL_NAME).read_bytes()
    expected = case["writer_strict"]
    if expected["ok"] and case["file"] != NON_MONOTONIC:
        with wal.WalWriter(data_dir) as writer:
            assert writer.current_sequence == expected["current_sequence"]
            assert writer.size == expected["file_len_after"]
    else:
        with pytest.raises(wal.WalCorruption) as info:
            wal.WalWriter(data_dir)
        if case["file"] != NON_MONOTONIC:
            # the tail validator's offset (Rust's writer scan differs only in the kind on c10/c14)
            assert info.value.offset == case["validate_tail_strict"]["offset"]
    assert (data_dir / "wal" / wal.RUST_WAL_NAME).read_bytes() == before  # strict touches nothing


@pytest.mark.parametrize("case", FILE_CASES, ids=ids(FILE_CASES))
def test_truncate_partial_cuts_only_torn_tails(tmp_path, case) -> None:
    data_dir = data_dir_with(tmp_path, case["file"])
    path = data_dir / "wal" / wal.RUST_WAL_NAME
    before = path.read_bytes()
    expected = case["writer_truncate_partial"]
    if case["file"] in MID_LOG or case["file"] == NON_MONOTONIC:
        # decisions.md #6/#7: reported, nothing cut (Rust cuts to expected["file_len_after"])
        with pytest.raises(wal.MidLogCorruption):
            wal.WalWriter(data_dir, repair_policy=wal.RepairPolicy.TRUNCATE_PARTIAL)
        assert path.read_bytes() == before
        return
    with wal.WalWriter(data_dir, repair_policy=wal.RepairPolicy.TRUNCATE_PARTIAL) as writer:
        assert writer.current_sequence == expected["current_sequence"]
        assert writer.size == expected["file_len_after"]
        assert (writer.repaired is not None) == (expected["file_len_after"] != case["file_len"])
    assert path.stat().st_size == expected["file_len_after"]
    assert path.read_bytes() == before[: expected["file_len_after"]]


def test_repair_then_append_restores_the_clean_file(tmp_path) -> None:
    scenario = next(c for c in CASES if c.get("scenario") == "repair_then_append")
    data_dir = data_dir_with(tmp_path, scenario["file"])
    lines = (CORRUPT / "base_events.jsonl").read_text(encoding="utf-8").rstrip("\n").split("\n")
    last = aq.WalEvent.from_json(lines[-1])
    with wal.WalWriter(data_dir, repair_policy=wal.RepairPolicy.TRUNCATE_PARTIAL) as writer:
        assert writer.current_sequence == scenario["current_sequence_after_repair"]
        writer.append(last)
    assert (data_dir / "wal" / wal.RUST_WAL_NAME).read_bytes() == (CORRUPT / "c00_clean.wal").read_bytes()


@pytest.mark.parametrize("case", FILE_CASES, ids=ids(FILE_CASES))
def test_reader_yields_valid_prefix_then_reports(case) -> None:
    reader = wal.WalReader(CORRUPT / case["file"])
    seen = []
    expected = case["fs_reader"]
    if case["file"] == NON_MONOTONIC:
        with pytest.raises(wal.MidLogCorruption) as info:
            seen.extend(e.sequence for e in reader)
        assert seen == [1, 2, 7] and info.value.offset == 45  # decisions.md #7
        return
    if expected["error"] is None:
        assert [e.sequence for e in reader] == expected["sequences"]
        return
    with pytest.raises(wal.WalCorruption) as info:
        seen.extend(e.sequence for e in reader)
    assert seen == expected["sequences"]
    # decisions.md #5: the tail validator's classification on every path
    strict = case["validate_tail_strict"]
    assert (info.value.reason, info.value.offset) == (strict["reason"], strict["offset"])


def test_reader_events_equal_base_events() -> None:
    lines = (CORRUPT / "base_events.jsonl").read_text(encoding="utf-8").rstrip("\n").split("\n")
    events = list(wal.WalReader(CORRUPT / "c00_clean.wal"))
    assert [e.to_json() for e in events] == lines
    assert [e.sequence for e in wal.WalReader(CORRUPT / "c00_clean.wal", from_sequence=5)] == list(range(5, 12))
