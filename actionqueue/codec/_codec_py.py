"""Pure-Python postcard codec for WAL v5 records (the reference twin of ``_codec.pyx``).

Selected with ``ACTIONQUEUE_PUREPYTHON=1`` or when the native module is unavailable.
It is built from the model's wire schema (:mod:`actionqueue.model.schema`) at import:
each type gets one encoder and one decoder closure. It raises exactly the errors the
native codec raises, with the same reasons and offsets.
"""

from __future__ import annotations

import zlib
from typing import Any, Callable, Iterable

from .. import model as m
from ..model._base import _NamedVariant, _Value
from ._codec_common import (
    HEADER,
    HEADER_LEN,
    MIN_RECORD_LEN,
    MSG_EOF,
    MSG_OPTION,
    MSG_SERDE,
    MSG_UTF8,
    MSG_VARINT,
    VERSION,
    length_exceeds,
    too_short,
)
from ..errors import (
    CrcMismatch,
    EncodeError,
    InvalidLength,
    PayloadDecodeError,
    UnsupportedVersion,
    ValidationError,
)

__all__ = [
    "encode",
    "decode",
    "encode_payload",
    "decode_payload",
    "encode_batch",
    "decode_batch",
    "crc32",
    "CRC32_IMPL",
]

CRC32_IMPL = "zlib"


def crc32(data: Any, value: int = 0) -> int:
    """CRC-32 (ISO-HDLC, as zlib) of ``data``, continuing from ``value``."""
    return zlib.crc32(data, value & 0xFFFFFFFF) & 0xFFFFFFFF


class _Fail(Exception):
    """Internal: a payload decoding failure at ``pos``."""

    def __init__(self, reason: str, pos: int):
        self.reason = reason
        self.pos = pos


# --------------------------------------------------------------------------------------
# Decoding: every decoder is ``dec(buf: bytes, pos: int) -> (value, new_pos)``
# --------------------------------------------------------------------------------------
def _varint_decoder(max_bytes: int, last_max: int) -> Callable[[bytes, int], tuple[int, int]]:
    def dec(buf: bytes, pos: int) -> tuple[int, int]:
        b = buf[pos] if pos < len(buf) else -1
        if 0 <= b < 0x80:  # one-byte fast path
            return b, pos + 1
        value = 0
        shift = 0
        start = pos
        for i in range(max_bytes):
            if pos >= len(buf):
                raise _Fail(MSG_EOF, pos)
            b = buf[pos]
            pos += 1
            if i == max_bytes - 1 and b > last_max:
                raise _Fail(MSG_VARINT, start)
            value |= (b & 0x7F) << shift
            if b < 0x80:
                return value, pos
            shift += 7
        raise _Fail(MSG_VARINT, start)

    return dec


_dec_u32 = _varint_decoder(5, 0x0F)
_dec_u64 = _varint_decoder(10, 0x01)


def _dec_u8(buf: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(buf):
        raise _Fail(MSG_EOF, pos)
    return buf[pos], pos + 1


def _dec_i32(buf: bytes, pos: int) -> tuple[int, int]:
    z, pos = _dec_u32(buf, pos)
    return (z >> 1) ^ -(z & 1), pos


def _dec_raw(buf: bytes, pos: int) -> tuple[bytes, int]:
    n, pos = _dec_u64(buf, pos)
    end = pos + n
    if end > len(buf):
        raise _Fail(MSG_EOF, len(buf))
    return buf[pos:end], end


def _dec_str(buf: bytes, pos: int) -> tuple[str, int]:
    start = pos
    raw, pos = _dec_raw(buf, pos)
    try:
        return raw.decode("utf-8"), pos
    except UnicodeDecodeError:
        raise _Fail(MSG_UTF8, start) from None


def _new(cls: type[_Value]) -> Callable[..., Any]:
    """A constructor that sets the slots directly, skipping ``__init__`` coercion."""
    setters = tuple(cls.__dict__[name].__set__ for name, _ in cls.__aq_fields__)
    new = object.__new__

    def make(*values: Any) -> Any:
        obj = new(cls)
        for set_slot, value in zip(setters, values):
            set_slot(obj, value)
        return obj

    return make


def _decoder(spec: tuple) -> Callable[[bytes, int], tuple[Any, int]]:
    kind = spec[0]
    if kind == "u8":
        return _dec_u8
    if kind == "u32":
        return _dec_u32
    if kind == "u64":
        return _dec_u64
    if kind == "i32":
        return _dec_i32
    if kind == "str":
        return _dec_str
    if kind == "bytes":
        return _dec_raw
    if kind == "id":
        from_raw = spec[1]._from_raw

        def dec_id(buf: bytes, pos: int) -> tuple[Any, int]:
            start = pos
            raw, pos = _dec_raw(buf, pos)
            if len(raw) != 16:
                raise _Fail(f"{MSG_SERDE}: uuid must be 16 bytes, got {len(raw)}", start)
            return from_raw(raw), pos

        return dec_id
    if kind == "enum":
        members = tuple(spec[1])
        name = spec[1].__name__

        def dec_enum(buf: bytes, pos: int) -> tuple[Any, int]:
            start = pos
            i, pos = _dec_u32(buf, pos)
            if i >= len(members):
                raise _Fail(f"{MSG_SERDE}: invalid {name} variant index {i}", start)
            return members[i], pos

        return dec_enum
    if kind == "named":
        cls = spec[1]
        units = cls._units
        make_named = _named_maker(cls)

        def dec_named(buf: bytes, pos: int) -> tuple[Any, int]:
            start = pos
            i, pos = _dec_u32(buf, pos)
            if i < len(units):
                return units[i], pos
            if i == len(units):
                name, pos = _dec_str(buf, pos)
                return make_named(i, name), pos
            raise _Fail(f"{MSG_SERDE}: invalid {cls.__name__} variant index {i}", start)

        return dec_named
    if kind == "opt":
        inner = _decoder(spec[1])

        def dec_opt(buf: bytes, pos: int) -> tuple[Any, int]:
            if pos >= len(buf):
                raise _Fail(MSG_EOF, pos)
            tag = buf[pos]
            if tag == 0:
                return None, pos + 1
            if tag == 1:
                return inner(buf, pos + 1)
            raise _Fail(MSG_OPTION, pos)

        return dec_opt
    if kind == "vec":
        return _vec_decoder(_decoder(spec[1]))
    if kind == "struct":
        return _struct_decoder(spec[1])
    if kind == "union":
        return _union_decoder(spec[1])
    raise AssertionError(spec)


def _vec_decoder(inner: Callable[[bytes, int], tuple[Any, int]]) -> Callable[[bytes, int], tuple[Any, int]]:
    def dec_vec(buf: bytes, pos: int) -> tuple[Any, int]:
        n, pos = _dec_u64(buf, pos)
        items: list[Any] = []
        append = items.append
        # No preallocation from the untrusted count: every element takes >= 1 byte,
        # so a huge count runs out of input instead of memory.
        for _ in range(n):
            item, pos = inner(buf, pos)
            append(item)
        return tuple(items), pos

    return dec_vec


def _union_decoder(base: type[_Value]) -> Callable[[bytes, int], tuple[Any, int]]:
    variants = tuple(_struct_decoder(v) for v in base._variants)
    name = base.__name__

    def dec_union(buf: bytes, pos: int) -> tuple[Any, int]:
        start = pos
        i, pos = _dec_u32(buf, pos)
        if i >= len(variants):
            raise _Fail(f"{MSG_SERDE}: invalid {name} variant index {i}", start)
        return variants[i](buf, pos)

    return dec_union


def _named_maker(cls: type[_NamedVariant]) -> Callable[[int, str], Any]:
    set_index = _NamedVariant.__dict__["index"].__set__
    set_name = _NamedVariant.__dict__["name"].__set__

    def make(index: int, name: str) -> Any:
        obj = object.__new__(cls)
        set_index(obj, index)
        set_name(obj, name)
        return obj

    return make


_struct_decoders: dict[type, Callable[[bytes, int], tuple[Any, int]]] = {}


def _struct_decoder(cls: type[_Value]) -> Callable[[bytes, int], tuple[Any, int]]:
    cached = _struct_decoders.get(cls)
    if cached is not None:
        return cached
    fields = cls.__aq_fields__
    if not fields:
        singleton = cls()

        def dec_unit(buf: bytes, pos: int) -> tuple[Any, int]:
            return singleton, pos

        _struct_decoders[cls] = dec_unit
        return dec_unit
    field_decoders = tuple(_decoder(spec) for _, spec in fields)
    make = _new(cls)
    validate = cls.__dict__.get("_validate")

    def dec_struct(buf: bytes, pos: int) -> tuple[Any, int]:
        values = []
        for dec in field_decoders:
            value, pos = dec(buf, pos)
            values.append(value)
        obj = make(*values)
        if validate is not None:
            try:
                validate(obj)
            except ValidationError as exc:
                raise _Fail(f"{MSG_SERDE}: {exc}", pos) from None
        return obj, pos

    _struct_decoders[cls] = dec_struct
    return dec_struct


_decode_wal_event = _struct_decoder(m.WalEvent)


def _as_bytes(buf: Any) -> bytes:
    """The content of a bytes-like object (``TypeError`` for anything else, as in C)."""
    if type(buf) is bytes:
        return buf
    with memoryview(buf) as view:
        return view.tobytes()


def decode_payload(buf: Any) -> m.WalEvent:
    """Decode an unframed postcard ``WalEvent``. Trailing bytes are ignored (as in Rust)."""
    data = _as_bytes(buf)
    try:
        return _decode_wal_event(data, 0)[0]
    except _Fail as fail:
        raise PayloadDecodeError(fail.reason, fail.pos) from None


def _check_frame(data: Any, n: int, base: int) -> int:
    """Validate the header of the record at ``data[base:base + n]``; return the payload length."""
    if n < MIN_RECORD_LEN:
        raise InvalidLength(too_short(n), base, base)
    version, length, expected = HEADER.unpack_from(data, base)
    if version != VERSION:
        raise UnsupportedVersion(version, base, base)
    if length > n - HEADER_LEN:
        raise InvalidLength(length_exceeds(length, n - HEADER_LEN), base + 4, base)
    actual = zlib.crc32(memoryview(data)[base + HEADER_LEN : base + HEADER_LEN + length]) & 0xFFFFFFFF
    if actual != expected:
        raise CrcMismatch(expected, actual, base + 8, base)
    return length


def decode(buf: Any) -> m.WalEvent:
    """Decode one framed record at the start of ``buf`` (checks version, length and CRC).

    Bytes after the record are ignored, as in Rust's ``codec::decode``.
    """
    data = _as_bytes(buf)
    length = _check_frame(data, len(data), 0)
    try:
        return _decode_wal_event(data[HEADER_LEN : HEADER_LEN + length], 0)[0]
    except _Fail as fail:
        raise PayloadDecodeError(fail.reason, HEADER_LEN + fail.pos, 0) from None


def decode_batch(buf: Any) -> list[m.WalEvent]:
    """Decode a buffer of consecutive framed records into a list.

    Each record is checked as the WAL readers check it: a record is the header plus
    exactly ``length`` payload bytes. The first bad record raises a :class:`DecodeError`
    whose ``record_offset`` is where that record starts.
    """
    data = _as_bytes(buf)
    out = []
    pos = 0
    end = len(data)
    while pos < end:
        avail = end - pos
        if avail < HEADER_LEN:
            raise InvalidLength(too_short(avail), pos, pos)
        length = HEADER.unpack_from(data, pos)[1]
        n = min(avail, HEADER_LEN + length)
        _check_frame(data, n, pos)
        start = pos + HEADER_LEN
        try:
            out.append(_decode_wal_event(data[start : start + length], 0)[0])
        except _Fail as fail:
            raise PayloadDecodeError(fail.reason, start + fail.pos, pos) from None
        pos = start + length
    return out


# --------------------------------------------------------------------------------------
# Encoding: every encoder is ``enc(value, out: bytearray) -> None``
# --------------------------------------------------------------------------------------
class _Bad(Exception):
    """Internal: a value that cannot be encoded."""


def _append_varint(out: bytearray, v: int) -> None:
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _int_encoder(kind: str) -> Callable[[Any, bytearray], None]:
    hi = {"u8": 0xFF, "u32": 0xFFFFFFFF, "u64": 0xFFFFFFFFFFFFFFFF, "i32": 0x7FFFFFFF}[kind]
    lo = -0x80000000 if kind == "i32" else 0

    def check(v: Any) -> int:
        if not isinstance(v, int):
            raise _Bad(f"expected int, got {type(v).__name__}")
        if not lo <= v <= hi:
            raise _Bad(f"integer {v} out of range for {kind}")
        return v

    if kind == "u8":

        def enc_u8(v: Any, out: bytearray) -> None:
            out.append(check(v))

        return enc_u8
    if kind == "i32":

        def enc_i32(v: Any, out: bytearray) -> None:
            v = check(v)
            _append_varint(out, ((v << 1) ^ (v >> 31)) & 0xFFFFFFFF)

        return enc_i32

    def enc_uint(v: Any, out: bytearray) -> None:
        _append_varint(out, check(v))

    return enc_uint


def _enc_bytes(v: Any, out: bytearray) -> None:
    if not isinstance(v, bytes):
        raise _Bad(f"expected bytes, got {type(v).__name__}")
    _append_varint(out, len(v))
    out += v


def _enc_str(v: Any, out: bytearray) -> None:
    if not isinstance(v, str):
        raise _Bad(f"expected str, got {type(v).__name__}")
    try:
        raw = v.encode("utf-8")
    except UnicodeEncodeError:
        raise _Bad("string is not valid UTF-8 (lone surrogate)") from None
    _append_varint(out, len(raw))
    out += raw


def _encoder(spec: tuple) -> Callable[[Any, bytearray], None]:
    kind = spec[0]
    if kind in ("u8", "u32", "u64", "i32"):
        return _int_encoder(kind)
    if kind == "str":
        return _enc_str
    if kind == "bytes":
        return _enc_bytes
    if kind == "id":
        cls = spec[1]

        def enc_id(v: Any, out: bytearray) -> None:
            if type(v) is not cls:
                raise _Bad(f"expected {cls.__name__}, got {type(v).__name__}")
            try:
                raw = v.bytes
            except AttributeError:
                raw = None
            if type(raw) is not bytes or len(raw) != 16:
                raise _Bad(f"{cls.__name__} does not hold 16 bytes")
            out.append(16)
            out += raw

        return enc_id
    if kind == "enum":
        cls = spec[1]
        index_of = cls._index_of

        def enc_enum(v: Any, out: bytearray) -> None:
            if type(v) is not cls:
                raise _Bad(f"expected {cls.__name__}, got {type(v).__name__}")
            out.append(index_of[v])

        return enc_enum
    if kind == "named":
        cls = spec[1]
        n_units = len(cls._units)

        def enc_named(v: Any, out: bytearray) -> None:
            if type(v) is not cls:
                raise _Bad(f"expected {cls.__name__}, got {type(v).__name__}")
            try:
                index, name = v.index, v.name
            except AttributeError:
                raise _Bad(f"{cls.__name__} is not initialised") from None
            if not isinstance(index, int) or not 0 <= index <= n_units:
                raise _Bad(f"{cls.__name__} variant index {index!r} out of range")
            out.append(index)
            if index == n_units:
                _enc_str(name, out)

        return enc_named
    if kind == "opt":
        inner = _encoder(spec[1])

        def enc_opt(v: Any, out: bytearray) -> None:
            if v is None:
                out.append(0)
            else:
                out.append(1)
                inner(v, out)

        return enc_opt
    if kind == "vec":
        inner = _encoder(spec[1])

        def enc_vec(v: Any, out: bytearray) -> None:
            if not isinstance(v, (tuple, list)):
                raise _Bad(f"expected a tuple, got {type(v).__name__}")
            _append_varint(out, len(v))
            for item in v:
                inner(item, out)

        return enc_vec
    if kind == "struct":
        return _struct_encoder(spec[1])
    if kind == "union":
        base = spec[1]
        variants = {cls: (i, _struct_encoder(cls)) for i, cls in enumerate(base._variants)}

        def enc_union(v: Any, out: bytearray) -> None:
            entry = variants.get(type(v))
            if entry is None:
                raise _Bad(f"expected a {base.__name__} variant, got {type(v).__name__}")
            _append_varint(out, entry[0])
            entry[1](v, out)

        return enc_union
    raise AssertionError(spec)


_struct_encoders: dict[type, Callable[[Any, bytearray], None]] = {}


def _struct_encoder(cls: type[_Value]) -> Callable[[Any, bytearray], None]:
    cached = _struct_encoders.get(cls)
    if cached is not None:
        return cached
    fields = tuple(
        (name, cls.__dict__[name].__get__, _encoder(spec)) for name, spec in cls.__aq_fields__
    )

    def enc_struct(v: Any, out: bytearray) -> None:
        if type(v) is not cls:
            raise _Bad(f"expected {cls.__name__}, got {type(v).__name__}")
        for name, get, enc in fields:
            try:
                value = get(v)
            except AttributeError:
                raise _Bad(f"{cls.__name__}.{name} is not set") from None
            try:
                enc(value, out)
            except _Bad as bad:
                if bad.args and isinstance(bad.args[0], str) and not bad.args[0].startswith(cls.__name__ + "."):
                    prefix = f"{cls.__name__}.{name}"
                    raise _Bad(f"{prefix}: {bad.args[0]}") from None
                raise

    _struct_encoders[cls] = enc_struct
    return enc_struct


_encode_wal_event = _struct_encoder(m.WalEvent)


def _encode_into(event: Any, out: bytearray) -> None:
    try:
        _encode_wal_event(event, out)
    except _Bad as bad:
        raise EncodeError(f"cannot encode {type(event).__name__}: {bad.args[0]}") from None


def encode_payload(event: m.WalEvent) -> bytes:
    """Encode ``event`` as an unframed postcard payload."""
    out = bytearray()
    _encode_into(event, out)
    return bytes(out)


def _frame_into(event: Any, out: bytearray) -> None:
    start = len(out)
    out += b"\x00" * HEADER_LEN
    _encode_into(event, out)
    length = len(out) - start - HEADER_LEN
    if length > 0xFFFFFFFF:
        del out[start:]
        raise EncodeError(f"payload of {length} bytes exceeds the u32 length field")
    crc = zlib.crc32(memoryview(out)[start + HEADER_LEN :]) & 0xFFFFFFFF
    HEADER.pack_into(out, start, VERSION, length, crc)


def encode(event: m.WalEvent) -> bytes:
    """Encode ``event`` as one framed WAL v5 record (header + postcard payload)."""
    out = bytearray()
    _frame_into(event, out)
    return bytes(out)


def encode_batch(events: Iterable[m.WalEvent]) -> bytes:
    """Encode many events into one buffer of consecutive framed records.

    An item that is not a ``WalEvent`` (or that holds a value that cannot be encoded)
    raises :class:`~actionqueue.errors.EncodeError` whose message starts with
    ``batch item <index>:``, as the native codec's does.
    """
    out = bytearray()
    i = 0
    try:
        for event in events:
            _frame_into(event, out)  # checks the item's type before it reads any field
            i += 1
    except EncodeError as exc:
        raise EncodeError(f"batch item {i}: {exc}") from None
    return bytes(out)

