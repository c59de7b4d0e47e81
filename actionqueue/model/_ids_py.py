"""Pure-Python base of the identifier types (twin of ``_ids.pyx``)."""

from __future__ import annotations

import uuid as _uuid
from typing import Any

from ._ids_common import random_v4, raw_from, text
from ._serde import Serde

_NIL = bytes(16)


class IdBase(Serde):
    """16 bytes of a UUID, compared and hashed by value within one identifier type."""

    __slots__ = ("_raw",)
    _raw: bytes

    def __init__(self, value: Any):
        object.__setattr__(self, "_raw", raw_from(value, type(self).__name__))

    @classmethod
    def _from_raw(cls, raw: bytes):
        """Build from exactly 16 bytes without checks (the codec's path)."""
        obj = object.__new__(cls)
        object.__setattr__(obj, "_raw", raw)
        return obj

    @classmethod
    def new(cls):
        """A fresh random (version 4) identifier."""
        return cls._from_raw(random_v4())

    @classmethod
    def nil(cls):
        """The all-zero identifier."""
        return cls._from_raw(_NIL)

    @property
    def bytes(self) -> bytes:
        """The 16 raw bytes (the order of the canonical text form)."""
        return self._raw

    @property
    def uuid(self) -> _uuid.UUID:
        return _uuid.UUID(bytes=self._raw)

    @property
    def is_nil(self) -> bool:
        return self._raw == _NIL

    def __str__(self) -> str:
        return text(self._raw)

    def __repr__(self) -> str:
        return f"{type(self).__name__}('{text(self._raw)}')"

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if type(other) is type(self):
            return self._raw == other._raw
        return NotImplemented

    def __ne__(self, other: object) -> bool:
        if type(other) is type(self):
            return self._raw != other._raw
        return NotImplemented

    def __lt__(self, other: object) -> bool:
        if type(other) is type(self):
            return self._raw < other._raw
        return NotImplemented

    def __le__(self, other: object) -> bool:
        if type(other) is type(self):
            return self._raw <= other._raw
        return NotImplemented

    def __gt__(self, other: object) -> bool:
        if type(other) is type(self):
            return self._raw > other._raw
        return NotImplemented

    def __ge__(self, other: object) -> bool:
        if type(other) is type(self):
            return self._raw >= other._raw
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._raw)

    def __reduce__(self):
        return (type(self), (self._raw,))


class TaskId(IdBase):
    """Identifier of a task."""

    __slots__ = ()


class RunId(IdBase):
    """Identifier of a run (one execution instance of a task)."""

    __slots__ = ()


class AttemptId(IdBase):
    """Identifier of an attempt of a run."""

    __slots__ = ()


class ActorId(IdBase):
    """Identifier of a registered actor (worker)."""

    __slots__ = ()


class TenantId(IdBase):
    """Identifier of a tenant."""

    __slots__ = ()


class LedgerEntryId(IdBase):
    """Identifier of a ledger entry."""

    __slots__ = ()


class SubscriptionId(IdBase):
    """Identifier of an event subscription."""

    __slots__ = ()
