"""Wire schema derived from the model's annotations.

Every struct-like model class gets ``__aq_fields__``: a tuple of ``(name, spec)`` in
declaration (= wire) order. A spec is a small tuple:

====================  ===========================================================
``("u8",)``           one raw byte
``("u32",)``          unsigned LEB128 varint, at most 5 bytes
``("u64",)``          unsigned LEB128 varint, at most 10 bytes
``("i32",)``          zigzag, then varint
``("str",)``          varint byte length + UTF-8
``("bytes",)``        varint length + raw bytes (``Vec<u8>``)
``("id", cls)``       ``0x10`` + 16 bytes (a uuid serialized as bytes)
``("enum", cls)``     varint variant index of a unit-only enum
``("named", cls)``    unit variants plus a final ``Custom(String)`` (Role, Capability)
``("struct", cls)``   the fields of ``cls``, back to back
``("union", base)``   varint variant index, then the variant's fields; variants are
                      ``base._variants`` in index order
``("opt", spec)``     ``00`` or ``01`` + value
``("vec", spec)``     varint count + values (a tuple in Python)
====================  ===========================================================

The codecs (``codec._codec_py``, ``codec._codec``) and the JSON mapping (:mod:`.json`) read these
specs; the construction-time coercion of fields is generated here from them too.
"""

from __future__ import annotations

import sys
import typing
import uuid as _uuid
from typing import Any, Callable

from ..errors import ValidationError
from ._base import _NamedVariant, _Value, _WireEnum
from .ids import IdBase

_INT_RANGES = {
    "u8": (0, 0xFF),
    "u32": (0, 0xFFFFFFFF),
    "u64": (0, 0xFFFFFFFFFFFFFFFF),
    "i32": (-(2**31), 2**31 - 1),
}


def spec_of(annotation: Any) -> tuple:
    """Translate one resolved annotation into a spec tuple."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, tag = typing.get_args(annotation)[:2]
        if base is int and tag in _INT_RANGES:
            return (tag,)
        raise TypeError(f"unsupported annotation {annotation!r}")
    if origin is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1 or len(typing.get_args(annotation)) != 2:
            raise TypeError(f"only Optional[X] unions are supported, got {annotation!r}")
        return ("opt", spec_of(args[0]))
    if origin is tuple:
        items = typing.get_args(annotation)
        if len(items) != 2 or items[1] is not Ellipsis:
            raise TypeError(f"only tuple[X, ...] is supported, got {annotation!r}")
        return ("vec", spec_of(items[0]))
    if annotation is str:
        return ("str",)
    if annotation is bytes:
        return ("bytes",)
    if isinstance(annotation, type):
        if issubclass(annotation, IdBase):
            return ("id", annotation)
        if issubclass(annotation, _WireEnum):
            return ("enum", annotation)
        if issubclass(annotation, _NamedVariant):
            return ("named", annotation)
        if issubclass(annotation, _Value):
            if "__dataclass_fields__" in annotation.__dict__:
                return ("struct", annotation)
            return ("union", annotation)
    raise TypeError(f"unsupported annotation {annotation!r}")


def _resolve(cls: type) -> tuple:
    module_globals = vars(sys.modules[cls.__module__])
    fields = []
    for name, f in cls.__dataclass_fields__.items():  # type: ignore[attr-defined]
        ann = f.type
        if isinstance(ann, str):
            # Evaluate against the module only: field names such as ``bytes`` must not
            # shadow the builtins they are annotated with.
            ann = eval(ann, dict(module_globals))  # noqa: S307 - our own annotations
        fields.append((name, spec_of(ann)))
    return tuple(fields)


# --------------------------------------------------------------------------------------
# Construction-time coercion: accept the obvious Python spellings, reject the rest.
# --------------------------------------------------------------------------------------
def _coercer(spec: tuple, where: str) -> Callable[[Any], Any]:
    """The function that coerces and checks one field of wire type ``spec`` (``where``
    names it in errors), built once per field by the builder for its kind."""
    kind = spec[0]
    build = _COERCER_BUILDERS["int" if kind in _INT_RANGES else kind]
    return build(spec, where)


def _int_coercer(spec: tuple, where: str) -> Callable[[Any], Any]:
    lo, hi = _INT_RANGES[spec[0]]

    def coerce_int(v: Any) -> Any:
        if type(v) is not int:
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{where} must be int, not {type(v).__name__}")
            v = int(v)
        if not lo <= v <= hi:
            raise ValidationError(f"{where} = {v} is out of range {lo}..{hi}")
        return v

    return coerce_int


def _str_coercer(spec: tuple, where: str) -> Callable[[Any], Any]:
    def coerce_str(v: Any) -> Any:
        if type(v) is not str:
            if not isinstance(v, str):
                raise TypeError(f"{where} must be str, not {type(v).__name__}")
            v = str(v)
        return v

    return coerce_str


def _bytes_coercer(spec: tuple, where: str) -> Callable[[Any], Any]:
    def coerce_bytes(v: Any) -> Any:
        if type(v) is not bytes:
            if not isinstance(v, (bytes, bytearray, memoryview)):
                raise TypeError(f"{where} must be bytes, not {type(v).__name__}")
            v = bytes(v)
        return v

    return coerce_bytes


def _id_coercer(spec: tuple, where: str) -> Callable[[Any], Any]:
    cls = spec[1]

    def coerce_id(v: Any) -> Any:
        if type(v) is cls:
            return v
        if isinstance(v, (_uuid.UUID, str, bytes, bytearray)):
            return cls(v)
        raise TypeError(f"{where} must be {cls.__name__}, not {type(v).__name__}")

    return coerce_id


def _enum_coercer(spec: tuple, where: str) -> Callable[[Any], Any]:
    cls = spec[1]

    def coerce_enum(v: Any) -> Any:
        if type(v) is cls:
            return v
        if isinstance(v, str):
            try:
                return cls(v)
            except ValueError:
                raise ValidationError(f"{where}: {v!r} is not a {cls.__name__}") from None
        raise TypeError(f"{where} must be {cls.__name__}, not {type(v).__name__}")

    return coerce_enum


def _named_coercer(spec: tuple, where: str) -> Callable[[Any], Any]:
    cls = spec[1]

    def coerce_named(v: Any) -> Any:
        if type(v) is cls:
            return v
        if isinstance(v, str):
            return cls.from_name(v)
        raise TypeError(f"{where} must be {cls.__name__}, not {type(v).__name__}")

    return coerce_named


def _value_coercer(spec: tuple, where: str) -> Callable[[Any], Any]:
    cls = spec[1]

    def coerce_value(v: Any) -> Any:
        if not isinstance(v, cls):
            raise TypeError(f"{where} must be {cls.__name__}, not {type(v).__name__}")
        return v

    return coerce_value


def _opt_coercer(spec: tuple, where: str) -> Callable[[Any], Any]:
    inner = _coercer(spec[1], where)

    def coerce_opt(v: Any) -> Any:
        return None if v is None else inner(v)

    return coerce_opt


def _vec_coercer(spec: tuple, where: str) -> Callable[[Any], Any]:
    inner = _coercer(spec[1], where + "[]")

    def coerce_vec(v: Any) -> Any:
        if isinstance(v, (str, bytes, bytearray)) or not hasattr(v, "__iter__"):
            raise TypeError(f"{where} must be a sequence, not {type(v).__name__}")
        return tuple([inner(x) for x in v])

    return coerce_vec


#: spec kind -> the builder of its coercer (``"int"`` stands for u8, u32, u64 and i32)
_COERCER_BUILDERS: dict[str, Callable[[tuple, str], Callable[[Any], Any]]] = {
    "int": _int_coercer,
    "str": _str_coercer,
    "bytes": _bytes_coercer,
    "id": _id_coercer,
    "enum": _enum_coercer,
    "named": _named_coercer,
    "struct": _value_coercer,
    "union": _value_coercer,
    "opt": _opt_coercer,
    "vec": _vec_coercer,
}


def install(cls: type) -> type:
    """Attach ``__aq_fields__`` and ``__aq_coerce__`` to a freshly made dataclass."""
    fields = _resolve(cls)
    setters = []
    for name, spec in fields:
        coerce = _coercer(spec, f"{cls.__name__}.{name}")
        setters.append((name, coerce, cls.__dict__[name].__set__))
    validate = getattr(cls, "_validate", None)

    def coerce_all(obj: Any) -> None:
        for name, coerce, set_slot in setters:
            value = getattr(obj, name)
            new = coerce(value)
            if new is not value:
                set_slot(obj, new)
        if validate is not None:
            validate(obj)

    cls.__aq_fields__ = fields  # type: ignore[attr-defined]
    cls.__aq_coerce__ = staticmethod(coerce_all)  # type: ignore[attr-defined]
    return cls
