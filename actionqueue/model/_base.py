"""The bases of every model type, and the wire integer kinds.

``_Value`` (frozen, slotted dataclasses whose fields are coerced and checked on
construction), ``_WireEnum`` (unit-only Rust enums) and ``_NamedVariant`` (unit variants
plus ``Custom(String)``). They import nothing of the model, so the schema compiler
(:mod:`.schema`) and the JSON mapping can test against them without an import cycle.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any, ClassVar

from ..errors import ValidationError
from ._serde import Serde as _Serde

__all__ = ["U8", "U32", "U64", "I32"]

# --------------------------------------------------------------------------------------
# Wire integer kinds. To a type checker these are plain ``int``.
# --------------------------------------------------------------------------------------
U8 = Annotated[int, "u8"]
U32 = Annotated[int, "u32"]
U64 = Annotated[int, "u64"]
I32 = Annotated[int, "i32"]


class _Value(_Serde):
    """Base of the struct-like model classes (frozen, slotted dataclasses).

    Construction coerces and checks every field against its wire type (installed by
    :mod:`.schema` as ``__aq_coerce__``), then runs the class's ``_validate``
    (the invariants Rust enforces on construction and on decode).
    """

    __slots__ = ()
    #: ``(name, spec)`` of each field in wire order; set on every model dataclass by
    #: :func:`.schema.install` (the codecs and the JSON mapping are built from it)
    __aq_fields__: ClassVar[tuple[tuple[str, tuple[Any, ...]], ...]]
    #: the variant classes of a union base (``Event``, ``EventFilter``, ``RunPolicy``) in
    #: variant index order; set on those bases only, by the modules that define them
    _variants: ClassVar[tuple[type[_Value], ...]]

    def __post_init__(self) -> None:
        type(self).__aq_coerce__(self)  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------
# Unit enums: members named in Python style, values are the serde (Rust) names, and the
# declaration order is the postcard variant index.
# --------------------------------------------------------------------------------------
class _WireEnum(_Serde, enum.Enum):
    # Members are singletons compared by identity; hash them by identity too (in C), not
    # through Enum's Python-level hash of the name: they key the reducer's hot lookups.
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self.name}"

    @property
    def index(self) -> int:
        """Postcard variant index of this member."""
        return type(self)._index_of[self]  # type: ignore[attr-defined]


def _index_members(cls):
    cls._index_of = {m: i for i, m in enumerate(cls)}
    return cls


# --------------------------------------------------------------------------------------
# Role / Capability: unit variants plus Custom(String).
# --------------------------------------------------------------------------------------
class _NamedVariant(_Serde):
    """A Rust enum of unit variants plus a final ``Custom(String)`` variant.

    ``index`` is the postcard variant index; ``name`` is the Rust variant name for the
    unit variants and the custom name for ``Custom``.
    """

    __slots__ = ("index", "name")
    _UNIT_NAMES: ClassVar[tuple[str, ...]] = ()
    _units: ClassVar[tuple[Any, ...]] = ()
    index: int
    name: str

    def __init__(self, index: int, name: str):
        n = len(self._UNIT_NAMES)
        if not isinstance(index, int) or not 0 <= index <= n:
            raise ValidationError(f"{type(self).__name__} variant index must be 0..{n}")
        if not isinstance(name, str):
            raise TypeError(f"{type(self).__name__} name must be str")
        if index < n and name != self._UNIT_NAMES[index]:
            raise ValidationError(f"{type(self).__name__} variant {index} is {self._UNIT_NAMES[index]}")
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "name", name)

    @classmethod
    def custom(cls, name: str):
        """The ``Custom(name)`` variant; the name must not be empty (as in Rust's ``custom()``)."""
        if not isinstance(name, str):
            raise TypeError(f"custom {cls.__name__.lower()} name must be str")
        if not name:
            raise ValidationError(f"custom {cls.__name__.lower()} name must not be empty")
        return cls(len(cls._UNIT_NAMES), name)

    @classmethod
    def from_name(cls, name: str):
        """The unit variant called ``name`` (its Rust name, e.g. ``"Operator"``)."""
        try:
            return cls._units[cls._UNIT_NAMES.index(name)]
        except ValueError:
            raise ValidationError(f"unknown {cls.__name__}: {name!r}") from None

    @property
    def is_custom(self) -> bool:
        return self.index == len(self._UNIT_NAMES)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return self.index == other.index and self.name == other.name
        return NotImplemented

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.index, self.name))

    def __repr__(self) -> str:
        if self.is_custom:
            return f"{type(self).__name__}.custom({self.name!r})"
        return f"{type(self).__name__}.{_upper_snake(self.name)}"

    def __reduce__(self):
        return (type(self), (self.index, self.name))


def _upper_snake(name: str) -> str:
    out = []
    for i, ch in enumerate(name):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.upper())
    return "".join(out)


def _named_units(cls):
    cls._units = tuple(cls(i, n) for i, n in enumerate(cls._UNIT_NAMES))
    for unit in cls._units:
        setattr(cls, _upper_snake(unit.name), unit)
    return cls
