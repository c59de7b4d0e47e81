"""What the native (``_wal.pyx``) and pure-Python (``_wal_py.py``) record walkers share.

The one record classifier of the package. Every read path (writer start-up, reader,
validation, repair, scanner) classifies a record in this order, which is the order of
Rust's tail validator (``tail_validation::parse_record_at``), see decisions.md #5:

1. fewer than 12 bytes left                 -> ``incomplete_header``
2. header + length runs past the end        -> ``incomplete_payload``
3. version is not 5                         -> ``unsupported_version``
4. length is 0, or above the payload cap    -> ``decode_failure`` (the cap is ours: a
   length field is never trusted for an allocation)
5. CRC-32 differs                           -> ``crc_mismatch``
6. the payload is not a valid ``WalEvent``  -> ``decode_failure``
7. the sequence is not above the previous record's -> ``sequence_not_increasing``
   (ours, decisions.md #7)
"""

from __future__ import annotations

R_OK = 0
R_INCOMPLETE_HEADER = 1
R_INCOMPLETE_PAYLOAD = 2
R_UNSUPPORTED_VERSION = 3
R_DECODE_FAILURE = 4
R_CRC_MISMATCH = 5
R_SEQUENCE_NOT_INCREASING = 6

#: reason code -> the reason name Rust prints (ours for the last one)
REASON_NAMES = (
    None,
    "incomplete_header",
    "incomplete_payload",
    "unsupported_version",
    "decode_failure",
    "crc_mismatch",
    "sequence_not_increasing",
)



def reason_name(code: int) -> str:
    """The name of a walker's reason code for a bad record (0, no bad record, has none)."""
    name = REASON_NAMES[code]
    assert name is not None, "reason 0 means no bad record"
    return name


#: Readers refuse a payload length above this (as Rust's readers do), configurable.
DEFAULT_MAX_PAYLOAD = 256 * 1024 * 1024
