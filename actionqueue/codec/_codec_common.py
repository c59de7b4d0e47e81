"""Constants and messages shared by the native and the pure-Python codec.

Both backends raise the same errors with the same reasons and offsets, so that the
differential tests can compare them exactly.
"""

from __future__ import annotations

import struct

#: WAL record format version written in every record header.
VERSION = 5
#: Bytes of a record header: u32 LE version, u32 LE payload length, u32 LE CRC-32.
HEADER_LEN = 12
#: The smallest buffer ``decode`` accepts (a header and one payload byte).
MIN_RECORD_LEN = HEADER_LEN + 1
#: Largest payload the format can describe.
MAX_PAYLOAD_LEN = 0xFFFFFFFF

HEADER = struct.Struct("<III")

# postcard's error texts (what Rust prints), used as the start of our reasons
MSG_EOF = "Hit the end of buffer, expected more data"
MSG_VARINT = "Found a varint that didn't terminate. Is the usize too big for this platform?"
MSG_OPTION = "Found an Option discriminant that wasn't 0 or 1"
MSG_UTF8 = "Tried to parse invalid utf-8"
MSG_SERDE = "Serde Deserialization Error"


def too_short(n: int) -> str:
    return f"Buffer too short: {n} bytes (minimum {MIN_RECORD_LEN} required)"


def length_exceeds(length: int, available: int) -> str:
    return f"payload length {length} exceeds the {available} bytes available after the header"
