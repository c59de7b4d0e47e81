"""What the native (``_ids.pyx``) and pure-Python (``_ids_py.py``) identifier types share:
how a user's value becomes 16 bytes, and how 16 bytes are written as text."""

from __future__ import annotations

import os
import uuid as _uuid
from typing import Any

from ..errors import ValidationError


def raw_from(value: Any, type_name: str) -> bytes:
    """The 16 bytes an identifier is built from: a ``uuid.UUID``, its text (any form
    ``uuid.UUID`` parses), 16 raw bytes, or another identifier of any type."""
    if isinstance(value, bytes):
        raw = value
    elif isinstance(value, _uuid.UUID):
        raw = value.bytes
    elif isinstance(value, str):
        canonical = _canonical(value)
        if canonical is not None:
            raw = canonical
        else:
            # the other forms uuid.UUID takes (simple, braced, urn:uuid:), but only hex
            # digits: int() inside it would also take "+" and "_", which no uuid text has
            core = value.replace("urn:", "").replace("uuid:", "").strip("{}").replace("-", "")
            try:
                if not _HEX.issuperset(core):
                    raise ValueError(value)
                raw = _uuid.UUID(value).bytes
            except ValueError:
                raise ValidationError(f"invalid {type_name}: {value!r}") from None
    elif isinstance(value, (bytearray, memoryview)):
        raw = bytes(value)
    elif hasattr(value, "bytes") and hasattr(value, "is_nil"):  # another identifier
        raw = value.bytes
    else:
        raise TypeError(f"{type_name}() takes a UUID, a str or 16 bytes, not {type(value).__name__}")
    if len(raw) != 16:
        raise ValidationError(f"{type_name} needs exactly 16 bytes, got {len(raw)}")
    return raw


_HEX = frozenset("0123456789abcdefABCDEF")


def _canonical(text: str) -> bytes | None:
    """The bytes of ``xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`` (the form serde writes), or
    None for any other form (left to ``uuid.UUID``, which accepts exactly the same)."""
    if len(text) != 36 or text[8] != "-" or text[13] != "-" or text[18] != "-" or text[23] != "-":
        return None
    digits = text[:8] + text[9:13] + text[14:18] + text[19:23] + text[24:]
    if not _HEX.issuperset(digits):
        return None
    return bytes.fromhex(digits)


def random_v4() -> bytes:
    """16 random bytes with the version (4) and variant bits of a UUIDv4."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return bytes(raw)


def text(raw: bytes) -> str:
    """The canonical lowercase hyphenated form."""
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
