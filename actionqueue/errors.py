"""Exception hierarchy of actionqueue.

Every error the package raises on purpose derives from :class:`ActionQueueError`.
The decoding errors mirror the Rust ``DecodeError`` variants one to one; their
``kind`` attribute carries the Rust variant name so that reports from the two
implementations can be compared mechanically.
"""

from __future__ import annotations

__all__ = [
    "ActionQueueError",
    "ValidationError",
    "EncodeError",
    "DecodeError",
    "UnsupportedVersion",
    "InvalidLength",
    "CrcMismatch",
    "PayloadDecodeError",
]


class ActionQueueError(Exception):
    """Base class of every error raised by actionqueue."""


class ValidationError(ActionQueueError, ValueError):
    """A value breaks an invariant the Rust types enforce (nil task id, ``max_attempts == 0``...).

    Raised by constructors. When the same rule fails while decoding bytes, the decoder
    raises :class:`PayloadDecodeError` instead (as Rust reports a deserialization error).
    """


class EncodeError(ActionQueueError, ValueError):
    """An event cannot be encoded: a field holds the wrong type or an out-of-range integer."""


class DecodeError(ActionQueueError, ValueError):
    """Bytes that are not a valid WAL v5 record.

    Attributes:
        kind: the Rust ``DecodeError`` variant: ``"UnsupportedVersion"``, ``"InvalidLength"``,
            ``"CrcMismatch"`` or ``"Decode"``.
        reason: a human-readable explanation.
        offset: byte offset of the problem, relative to the start of the buffer given to the
            decoder (for payload errors, the offset inside that buffer where decoding failed),
            or ``None`` when not applicable.
        record_offset: for batch decoding, the offset of the start of the bad record.
    """

    kind = "Decode"

    def __init__(self, reason: str, offset: int | None = None, record_offset: int | None = None):
        super().__init__(reason, offset, record_offset)
        self.reason = reason
        self.offset = offset
        self.record_offset = record_offset

    def __str__(self) -> str:
        where = []
        if self.record_offset is not None:
            where.append(f"record at byte {self.record_offset}")
        if self.offset is not None:
            where.append(f"byte {self.offset}")
        suffix = f" ({', '.join(where)})" if where else ""
        return f"{self._prefix()}{self.reason}{suffix}"

    def _prefix(self) -> str:
        return "decode error: "


class UnsupportedVersion(DecodeError):
    """The record header names a WAL version other than 5."""

    kind = "UnsupportedVersion"

    def __init__(self, version: int, offset: int | None = None, record_offset: int | None = None):
        super().__init__(
            f"Unsupported WAL version: {version}. Current version: 5", offset, record_offset
        )
        self.version = version
        self.args = (version, offset, record_offset)

    def _prefix(self) -> str:
        return "unsupported version: "


class InvalidLength(DecodeError):
    """The buffer is too short for a record, or the header's length exceeds the buffer."""

    kind = "InvalidLength"

    def _prefix(self) -> str:
        return "invalid length: "


class CrcMismatch(DecodeError):
    """The payload's CRC-32 differs from the one in the record header."""

    kind = "CrcMismatch"

    def __init__(
        self, expected: int, actual: int, offset: int | None = None, record_offset: int | None = None
    ):
        super().__init__(
            f"expected 0x{expected:08x}, actual 0x{actual:08x}", offset, record_offset
        )
        self.expected = expected
        self.actual = actual
        self.args = (expected, actual, offset, record_offset)

    def _prefix(self) -> str:
        return "CRC-32 mismatch: "


class PayloadDecodeError(DecodeError):
    """The CRC-valid payload is not a valid postcard ``WalEvent`` (Rust ``DecodeError::Decode``)."""

    kind = "Decode"
