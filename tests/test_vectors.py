"""Golden vectors written and reported by the Rust original (tests/vectors, see its README).

The vectors are read as Rust recorded them: never edited, never regenerated with our own
encoder. Every test runs against both codec backends.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import actionqueue as aq
from aq_testlib import HEADER

pytestmark = pytest.mark.vectors


# --------------------------------------------------------------------------------------
# events/records/*.bin: one record per file, with the serde_json text next to it
# --------------------------------------------------------------------------------------
def test_records_directory_is_complete(vectors: Path) -> None:
    files = sorted((vectors / "events" / "records").glob("*.bin"))
    assert len(files) == 45
    kinds = {aq.WalEvent.from_json(f.with_suffix(".json").read_text("utf-8")).event.kind for f in files}
    assert kinds == set(range(31)), "every event kind has a golden record"


def test_record_decodes_and_reencodes_identically(codec, record_file: Path) -> None:
    data = record_file.read_bytes()
    event = codec.decode(data)
    assert isinstance(event, aq.WalEvent)
    assert codec.encode(event) == data
    assert codec.encode_payload(event) == data[12:]
    assert codec.decode_payload(data[12:]) == event
    assert codec.decode_batch(data) == [event]


def test_record_json_matches_serde_json(codec, record_file: Path) -> None:
    text = record_file.with_suffix(".json").read_text(encoding="utf-8")
    event = codec.decode(record_file.read_bytes())
    assert event.to_json() == text  # exact string: key order, escaping, integers
    assert aq.WalEvent.from_json(text) == event
    assert aq.WalEvent.from_json(text.encode("utf-8")) == event
    assert json.loads(text) == event.to_builtins()


def test_record_event_json_alone(codec, record_file: Path) -> None:
    """The inner event serialises as the externally tagged WalEventType variant."""
    event = codec.decode(record_file.read_bytes()).event
    inner = json.loads(record_file.with_suffix(".json").read_text(encoding="utf-8"))["event"]
    assert event.to_builtins() == inner
    assert type(event).from_builtins(inner) == event
    assert aq.Event.from_json(json.dumps(inner)) == event


# --------------------------------------------------------------------------------------
# events/all_variants.wal: 400 records, sequences 1..400
# --------------------------------------------------------------------------------------
def _jsonl_lines(path: Path) -> list[str]:
    # Split on "\n" only: the JSON contains U+2028/U+2029, which str.splitlines() would cut.
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n")
    return text[:-1].split("\n")


def test_all_variants_batch(codec, vectors: Path) -> None:
    events_dir = vectors / "events"
    data = (events_dir / "all_variants.wal").read_bytes()
    assert len(data) == 158349
    events = codec.decode_batch(data)
    assert len(events) == 400
    assert [e.sequence for e in events] == list(range(1, 401))

    lines = _jsonl_lines(events_dir / "all_variants.jsonl")
    assert len(lines) == 400
    for i, (event, line) in enumerate(zip(events, lines)):
        assert event.to_json() == line, f"record {i}"
        assert aq.WalEvent.from_json(line) == event, f"record {i}"

    assert codec.encode_batch(events) == data
    assert codec.encode_batch(iter(events)) == data
    assert b"".join(codec.encode(e) for e in events) == data
    assert codec.decode_batch(memoryview(data)) == events
    assert codec.decode_batch(bytearray(data)) == events


def test_all_variants_index(codec, vectors: Path) -> None:
    events_dir = vectors / "events"
    data = (events_dir / "all_variants.wal").read_bytes()
    events = codec.decode_batch(data)
    index = [json.loads(line) for line in _jsonl_lines(events_dir / "all_variants.index.jsonl")]
    assert len(index) == len(events) == 400
    pos = 0
    counts: dict[str, int] = {}
    for event, entry in zip(events, index):
        assert entry["offset"] == pos
        version, length, crc = HEADER.unpack_from(data, pos)
        assert (version, length, crc) == (5, entry["payload_len"], entry["crc32"])
        assert entry["record_len"] == 12 + length
        record = data[pos : pos + entry["record_len"]]
        assert codec.crc32(record[12:]) == entry["crc32"]
        assert codec.decode(record) == event
        assert codec.encode(event) == record
        assert event.sequence == entry["sequence"]
        assert event.kind == event.event.kind == entry["variant_index"]
        assert type(event.event).__name__ == event.event.kind_name == entry["variant"]
        assert aq.EVENT_TYPES[entry["variant_index"]] is type(event.event)
        counts[entry["variant"]] = counts.get(entry["variant"], 0) + 1
        pos += entry["record_len"]
    assert pos == len(data)
    assert set(counts) == {cls.__name__ for cls in aq.EVENT_TYPES}


# --------------------------------------------------------------------------------------
# events/decode_edge: hand-made frames probing the decoder, with Rust's verdict
# --------------------------------------------------------------------------------------
#: decisions.md #3: we write the explicit None tag for Cron max_occurrences, so our
#: re-encoding of this record IS identical to the input, where Rust's (which drops the
#: tag) is not.
REENCODE_DIFFERS_BY_DECISION_3 = {"ok_task_created_cron_max_none_explicit.bin"}


def rust_error_kind(result: dict) -> str:
    if "error_kind" in result:
        return result["error_kind"]
    match = re.match(r"(\w+)\s*[({]", result["error_debug"])
    assert match, result
    return match.group(1)


def rust_postcard_message(result: dict) -> str | None:
    match = re.search(r"Failed to deserialize WalEvent: (.*)$", result.get("error_display", ""))
    return match.group(1) if match else None


def test_decode_edge_case(codec, vectors: Path, edge_case: dict) -> None:
    data = (vectors / "events" / "decode_edge" / edge_case["file"]).read_bytes()
    assert data[12:].hex() == edge_case["payload_hex"]
    rust = edge_case["codec_decode"]
    if rust["ok"]:
        event = codec.decode(data)
        assert event.to_builtins() == rust["event_json"]
        assert aq.WalEvent.from_builtins(rust["event_json"]) == event
        ours_identical = codec.encode(event) == data
        if edge_case["file"] in REENCODE_DIFFERS_BY_DECISION_3:
            assert rust["reencoded_identical"] is False
            assert ours_identical is True, "decisions.md #3: we keep the explicit 00 tag"
        else:
            assert ours_identical == rust["reencoded_identical"]
    else:
        with pytest.raises(aq.DecodeError) as info:
            codec.decode(data)
        assert info.value.kind == rust_error_kind(rust)
        if info.value.kind == "Decode":
            assert type(info.value) is aq.PayloadDecodeError
        # Our reason starts with postcard's own message and may add detail (decisions.md #2).
        message = rust_postcard_message(rust)
        if message is not None:
            assert info.value.reason.startswith(message)
        assert info.value.offset is not None and 12 <= info.value.offset <= len(data)
        assert info.value.record_offset == 0
        # decode_batch reports the same failure for the one-record buffer.
        with pytest.raises(aq.DecodeError) as batch_info:
            codec.decode_batch(data)
        assert (batch_info.value.kind, batch_info.value.reason, batch_info.value.offset) == (
            info.value.kind,
            info.value.reason,
            info.value.offset,
        )


def test_decode_edge_role_custom_empty_is_accepted(codec, vectors: Path) -> None:
    """Role::Custom("") decodes (Rust does not validate on decode) though custom("") is refused."""
    event = codec.decode((vectors / "events" / "decode_edge" / "ok_role_custom_empty.bin").read_bytes())
    assert isinstance(event.event, aq.RoleAssigned)
    assert event.event.role.is_custom and event.event.role.name == ""
    with pytest.raises(aq.ValidationError):
        aq.Role.custom("")


# --------------------------------------------------------------------------------------
# events/nonroundtrip: records Rust writes but cannot read (Cron max_occurrences = None)
# --------------------------------------------------------------------------------------
def test_nonroundtrip_decision_3_explicit_none_tag(codec, vectors: Path, nonroundtrip_case: dict) -> None:
    """decisions.md #3 (Cron with max_occurrences = None).

    Rust omits the Option tag when writing and then cannot decode its own record. We reject
    Rust's bytes with the same error kind ("Decode"), and we always write the explicit 00 tag,
    so our own encoding of the same event decodes back to it.
    """
    base = vectors / "events" / "nonroundtrip" / nonroundtrip_case["name"]
    rust_bytes = base.with_suffix(".bin").read_bytes()
    text = base.with_suffix(".json").read_text(encoding="utf-8")

    rust = nonroundtrip_case["rust_postcard_decode"]
    assert rust["ok"] is False
    with pytest.raises(aq.PayloadDecodeError) as info:
        codec.decode(rust_bytes)
    assert info.value.kind == rust_error_kind(rust) == "Decode"

    event = aq.WalEvent.from_json(text)
    policy = event.event.task_spec.run_policy
    assert isinstance(policy, aq.CronPolicy) and policy.max_occurrences is None
    assert nonroundtrip_case["rust_json_roundtrip"]["equal_to_original"] is True
    assert event.to_json() == text

    ours = codec.encode(event)
    assert codec.decode(ours) == event
    # Our payload is Rust's plus the one explicit None tag (00) Rust leaves out.
    ours_payload, rust_payload = ours[12:], rust_bytes[12:]
    assert len(ours_payload) == len(rust_payload) + 1
    assert any(
        ours_payload[k] == 0 and ours_payload[:k] + ours_payload[k + 1 :] == rust_payload
        for k in range(len(ours_payload))
    )
    expr = policy.expression.encode("utf-8")
    tag_at = ours_payload.index(expr) + len(expr)
    assert ours_payload[tag_at] == 0 and ours_payload[:tag_at] == rust_payload[:tag_at]
