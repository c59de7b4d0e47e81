"""What an append checks and encodes, before a byte is written: one home for both writers
(the threaded :class:`~actionqueue.log.writer.WalWriter` and :mod:`actionqueue.aio`'s)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import model as _model
from ..errors import PayloadTooLarge, SequenceViolation
from ._walker import codec
from .format import HEADER_LEN

__all__ = ["check_payloads", "encode_events", "encode_next"]


def encode_events(events: Sequence[Any], after: int, max_payload: int) -> tuple[bytes, int]:
    """``events`` (WalEvents, sequences ascending above ``after``) as one buffer of framed
    records, and the last sequence: ``TypeError`` for anything but a WalEvent,
    :class:`SequenceViolation` for a sequence out of order, :class:`PayloadTooLarge` for
    a payload above ``max_payload`` (no reader would take it for a record)."""
    prev = after
    for event in events:
        seq = getattr(event, "sequence", None)
        if not isinstance(seq, int):
            raise TypeError(f"append takes WalEvent objects, not {type(event).__name__}")
        if seq <= prev:
            raise SequenceViolation(prev + 1, seq)
        prev = seq
    data = codec.encode_batch(events) if len(events) != 1 else codec.encode(events[0])
    check_payloads(data, len(events), events, max_payload)
    return data, prev


def encode_next(sequence: int, event: Any, max_payload: int) -> bytes:
    """The framed record of an event body appended under ``sequence`` (``append_next``)."""
    data = codec.encode(_model.WalEvent.of(sequence, event))
    if len(data) - HEADER_LEN > max_payload:
        check_payloads(data, 1, (sequence,), max_payload)
    return data


def check_payloads(data: bytes, count: int, sequences: Sequence[Any], max_payload: int) -> None:
    """Refuse records whose payload is above the cap, before a byte is written: every
    reader would take such a record for damage (and TRUNCATE_PARTIAL would cut it).
    ``sequences``: the records' sequences, or their events (read only on failure)."""
    if len(data) - HEADER_LEN * count <= max_payload:
        return  # no record can be above the cap: the common case costs one comparison
    pos = 0
    with memoryview(data) as view:
        for i in range(count):
            length = int.from_bytes(view[pos + 4 : pos + 8], "little")
            if length > max_payload:
                seq = sequences[i] if isinstance(sequences[i], int) else sequences[i].sequence
                raise PayloadTooLarge(seq, length, max_payload)
            pos += HEADER_LEN + length
