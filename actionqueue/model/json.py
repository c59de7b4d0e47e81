"""The serde_json shape of the model, both ways.

``to_builtins`` produces exactly what Rust's ``serde_json`` produces for the same value
(objects in field declaration order, externally tagged enums, ``Vec<u8>`` as arrays of
integers, UUIDs as lowercase hyphenated strings, ``null`` for ``None`` except for
``CronPolicy.max_occurrences``, which Rust omits when ``None``), and ``dumps`` writes it
with serde_json's compact formatting and escaping rules. ``from_builtins`` accepts what
serde would accept: unknown keys are ignored, and fields Rust marks ``#[serde(default)]``
may be missing.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from ..errors import ValidationError
from . import _serde
from ._base import _NamedVariant, _Value, _WireEnum
from .events import AttemptFinished, Event
from .ids import IdBase
from .types import (
    BudgetThresholdFilter,
    ConcurrencyKeyHoldPolicy,
    CronPolicy,
    CustomFilter,
    EventFilter,
    OncePolicy,
    RepeatPolicy,
    RunInstance,
    RunPolicy,
    RunStateChangedFilter,
    SafetyLevel,
    TaskCompletedFilter,
    TaskConstraints,
    TaskSpec,
)

__all__ = ["to_builtins", "from_builtins", "dumps", "loads"]

# Serde variant names of the union variants whose Python class name differs.
_VARIANT_NAMES: dict[type, str] = {
    OncePolicy: "Once",
    RepeatPolicy: "Repeat",
    CronPolicy: "Cron",
    TaskCompletedFilter: "TaskCompleted",
    RunStateChangedFilter: "RunStateChanged",
    BudgetThresholdFilter: "BudgetThreshold",
    CustomFilter: "Custom",
}

# Fields serde omits when None (skip_serializing_if = "Option::is_none").
_SKIP_NONE: dict[type, frozenset[str]] = {CronPolicy: frozenset({"max_occurrences"})}

# Fields with #[serde(default)]: the value used when the key is missing.
_DEFAULTS: dict[type, dict[str, Any]] = {
    AttemptFinished: {"output": None},
    TaskSpec: {"parent_task_id": None, "tenant_id": None},
    TaskConstraints: {
        "concurrency_key_hold_policy": ConcurrencyKeyHoldPolicy.HOLD_DURING_RETRY,
        "safety_level": SafetyLevel.PURE,
        "required_capabilities": None,
    },
    RunInstance: {"last_state_change_at": 0},
    CronPolicy: {"max_occurrences": None},
}


def variant_name(cls: type) -> str:
    """The serde name of a union variant class."""
    return _VARIANT_NAMES.get(cls, cls.__name__)


def dumps(obj: Any) -> str:
    """Compact JSON with serde_json's escaping (non-ASCII and DEL written raw)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    return json.loads(text)


# --------------------------------------------------------------------------------------
# Python value -> builtins
# --------------------------------------------------------------------------------------
def _to(spec: tuple) -> Callable[[Any], Any]:
    kind = spec[0]
    if kind in ("u8", "u32", "u64", "i32", "str"):
        return lambda v: v
    if kind == "bytes":
        return list
    if kind == "id":
        return str
    if kind == "enum":
        return lambda v: v.value
    if kind == "named":
        return lambda v: {"Custom": v.name} if v.is_custom else v.name
    if kind == "opt":
        inner = _to(spec[1])
        return lambda v: None if v is None else inner(v)
    if kind == "vec":
        inner = _to(spec[1])
        return lambda v: [inner(x) for x in v]
    if kind == "struct":
        return _struct_to(spec[1])
    if kind == "union":
        return _union_to
    raise AssertionError(spec)


_struct_to_cache: dict[type, Callable[[Any], Any]] = {}


def _struct_to(cls: type[_Value]) -> Callable[[Any], Any]:
    cached = _struct_to_cache.get(cls)
    if cached is not None:
        return cached
    fields = tuple((name, _to(spec)) for name, spec in cls.__aq_fields__)
    skip = _SKIP_NONE.get(cls, frozenset())

    def fn(v: Any) -> Any:
        out = {}
        for name, conv in fields:
            value = getattr(v, name)
            if value is None and name in skip:
                continue
            out[name] = conv(value)
        return out

    _struct_to_cache[cls] = fn
    return fn


def _union_to(v: Any) -> Any:
    cls = type(v)
    name = variant_name(cls)
    if not cls.__aq_fields__:
        return name
    return {name: _struct_to(cls)(v)}


def _is_tagged(cls: type) -> bool:
    """Whether a value of ``cls`` serializes as its enum variant (externally tagged).

    Events and filters exist in Rust only as enum variants; ``RepeatPolicy`` and
    ``CronPolicy`` are Rust structs of their own and serialize as such when given alone
    (inside a ``TaskSpec`` they are tagged, as ``RunPolicy`` variants).
    """
    return issubclass(cls, (Event, EventFilter, OncePolicy))


def to_builtins(value: Any) -> Any:
    """The serde_json shape of any model value."""
    cls = type(value)
    if isinstance(value, _Value):
        return _union_to(value) if _is_tagged(cls) else _struct_to(cls)(value)
    if isinstance(value, IdBase):
        return str(value)
    if isinstance(value, _WireEnum):
        return value.value
    if isinstance(value, _NamedVariant):
        return {"Custom": value.name} if value.is_custom else value.name
    raise TypeError(f"not an actionqueue model value: {cls.__name__}")


# --------------------------------------------------------------------------------------
# builtins -> Python value
# --------------------------------------------------------------------------------------
def _bad(where: str, expected: str, got: Any) -> ValidationError:
    return ValidationError(f"{where}: expected {expected}, got {type(got).__name__} {got!r:.60}")


def _from(spec: tuple, where: str) -> Callable[[Any], Any]:
    kind = spec[0]
    if kind in ("u8", "u32", "u64", "i32"):

        def from_int(v: Any) -> Any:
            if type(v) is not int:
                raise _bad(where, "an integer", v)
            return v

        return from_int
    if kind == "str":

        def from_str(v: Any) -> Any:
            if type(v) is not str:
                raise _bad(where, "a string", v)
            return v

        return from_str
    if kind == "bytes":

        def from_bytes(v: Any) -> Any:
            # bool is an int to bytes(): serde refuses true/false as a byte
            if type(v) is not list or any(type(b) is not int for b in v):
                raise _bad(where, "an array of bytes", v)
            try:
                return bytes(v)
            except (TypeError, ValueError):
                raise _bad(where, "an array of integers 0..255", v) from None

        return from_bytes
    if kind == "id":
        cls = spec[1]

        def from_id(v: Any) -> Any:
            if type(v) is not str:
                raise _bad(where, "a UUID string", v)
            return cls(v)

        return from_id
    if kind == "enum":
        cls = spec[1]

        members = {member.value: member for member in cls}

        def from_enum(v: Any) -> Any:
            member = members.get(v) if type(v) is str else None
            if member is None:
                raise _bad(where, f"a {cls.__name__} name", v)
            return member

        return from_enum
    if kind == "named":
        cls = spec[1]

        def from_named(v: Any) -> Any:
            if type(v) is str:
                return cls.from_name(v)
            if type(v) is dict and len(v) == 1 and "Custom" in v and type(v["Custom"]) is str:
                return cls(len(cls._units), v["Custom"])
            raise _bad(where, f"a {cls.__name__}", v)

        return from_named
    if kind == "opt":
        inner = _from(spec[1], where)
        return lambda v: None if v is None else inner(v)
    if kind == "vec":
        inner = _from(spec[1], where + "[]")

        def from_vec(v: Any) -> Any:
            if type(v) is not list:
                raise _bad(where, "an array", v)
            return tuple(inner(x) for x in v)

        return from_vec
    if kind == "struct":
        return _struct_from(spec[1])
    if kind == "union":
        return _union_from(spec[1])
    raise AssertionError(spec)


_struct_from_cache: dict[type, Callable[[Any], Any]] = {}
_MISSING = object()


def _struct_from(cls: type[_Value]) -> Callable[[Any], Any]:
    cached = _struct_from_cache.get(cls)
    if cached is not None:
        return cached
    fields: list[tuple[str, Callable[[Any], Any]]] = []
    defaults = _DEFAULTS.get(cls, {})

    def fn(v: Any) -> Any:
        if not fields and cls.__aq_fields__:
            fields.extend((n, _from(s, f"{cls.__name__}.{n}")) for n, s in cls.__aq_fields__)
        if type(v) is not dict:
            raise _bad(cls.__name__, "an object", v)
        kwargs = {}
        for name, conv in fields:
            raw = v.get(name, _MISSING)
            if raw is _MISSING:
                if name not in defaults:
                    raise ValidationError(f"{cls.__name__}: missing field {name!r}")
                kwargs[name] = defaults[name]
            else:
                kwargs[name] = conv(raw)
        return cls(**kwargs)

    _struct_from_cache[cls] = fn
    return fn


_union_from_cache: dict[type, Callable[[Any], Any]] = {}


def _union_from(base: type[_Value]) -> Callable[[Any], Any]:
    cached = _union_from_cache.get(base)
    if cached is not None:
        return cached
    by_name = {variant_name(c): c for c in base._variants}

    def fn(v: Any) -> Any:
        if type(v) is str:
            cls = by_name.get(v)
            if cls is None or cls.__aq_fields__:
                raise _bad(base.__name__, f"a {base.__name__} variant", v)
            return cls()
        if type(v) is dict and len(v) == 1:
            ((name, body),) = v.items()
            cls = by_name.get(name)
            if cls is not None and cls.__aq_fields__:
                return _struct_from(cls)(body)
        raise _bad(base.__name__, f"a {base.__name__} variant", v)

    _union_from_cache[base] = fn
    return fn


_parsers: dict[type, Callable[[Any], Any]] = {}


def _parser_for(cls: type) -> Callable[[Any], Any]:
    """The function that parses the serde shape of ``cls`` (built once per class)."""
    if not isinstance(cls, type):
        raise TypeError(f"not an actionqueue model class: {cls!r}")
    for base in (Event, EventFilter, RunPolicy):
        if cls is base or (issubclass(cls, base) and _is_tagged(cls)):
            union = _union_from(base)
            if cls is base:
                return union

            def parse_variant(obj: Any, union=union, cls=cls) -> Any:
                value = union(obj)
                if not isinstance(value, cls):
                    raise ValidationError(f"expected {cls.__name__}, got {type(value).__name__}")
                return value

            return parse_variant
    if issubclass(cls, _Value):
        return _struct_from(cls)
    if issubclass(cls, IdBase):
        return _from(("id", cls), cls.__name__)
    if issubclass(cls, _WireEnum):
        return _from(("enum", cls), cls.__name__)
    if issubclass(cls, _NamedVariant):
        return _from(("named", cls), cls.__name__)
    raise TypeError(f"not an actionqueue model class: {cls!r}")


def from_builtins(cls: type, obj: Any) -> Any:
    """Build an instance of ``cls`` (any model class) from its serde_json shape."""
    parse = _parsers.get(cls)
    if parse is None:
        parse = _parsers[cls] = _parser_for(cls)
    return parse(obj)


_serde.bind(to_builtins, from_builtins, dumps, loads)  # every model type's to_json & co.
