# cython: language_level=3
"""Native base of the identifier types: the 16 bytes live inside the object.

One allocation per identifier, no garbage-collector tracking, and hashing, equality
and ordering in C (the hash equals ``hash(id.bytes)``, as in the pure-Python twin
``_ids_py.py``). The codec (``_codec.pyx``) fills ``raw`` directly.
"""

cimport cython
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.object cimport Py_EQ, Py_GE, Py_GT, Py_LE, Py_LT, Py_NE
from libc.string cimport memcmp, memcpy

import uuid as _uuid

from . import _serde
from ._ids_common import random_v4, raw_from, text

cdef extern from "aq_compat.h":
    Py_hash_t aq_hash_bytes(const void *data, Py_ssize_t n)

cdef uint8_t[16] _NIL


cdef class IdBase:
    """16 bytes of a UUID, compared and hashed by value within one identifier type."""

    def __init__(self, value):
        cdef bytes b = raw_from(value, type(self).__name__)
        memcpy(self.raw, <const char *>b, 16)

    @classmethod
    def _from_raw(cls, bytes raw not None):
        """Build from exactly 16 bytes without checks (the codec's path)."""
        if len(raw) != 16:
            raise ValueError("need 16 bytes")
        cdef IdBase obj = cls.__new__(cls)
        memcpy(obj.raw, <const char *>raw, 16)
        return obj

    @classmethod
    def new(cls):
        """A fresh random (version 4) identifier."""
        return cls._from_raw(random_v4())

    @classmethod
    def nil(cls):
        """The all-zero identifier."""
        return cls._from_raw(bytes(16))

    @property
    def bytes(self):
        """The 16 raw bytes (the order of the canonical text form)."""
        return PyBytes_FromStringAndSize(<const char *>self.raw, 16)

    @property
    def uuid(self):
        return _uuid.UUID(bytes=self.bytes)

    @property
    def is_nil(self):
        return memcmp(self.raw, _NIL, 16) == 0

    def __str__(self):
        return text(self.bytes)

    def __repr__(self):
        return f"{type(self).__name__}('{text(self.bytes)}')"

    def __richcmp__(self, other, int op):
        if type(other) is not type(self):
            return NotImplemented
        cdef int c = memcmp(self.raw, (<IdBase>other).raw, 16)
        if op == Py_EQ:
            return c == 0
        if op == Py_NE:
            return c != 0
        if op == Py_LT:
            return c < 0
        if op == Py_LE:
            return c <= 0
        if op == Py_GT:
            return c > 0
        return c >= 0

    def __hash__(self):
        return aq_hash_bytes(self.raw, 16)

    def __reduce__(self):
        return (type(self), (self.bytes,))

    # JSON in serde's shape (the same methods as _serde.Serde, which a native type
    # cannot inherit; the work is done by the JSON mapping _serde is bound to).
    def to_builtins(self):
        """The serde_json shape: the canonical text."""
        return text(self.bytes)

    @classmethod
    def from_builtins(cls, obj):
        """Parse the serde_json shape (a UUID string)."""
        return _serde._from_builtins(cls, obj)

    def to_json(self):
        """Compact JSON, as Rust's ``serde_json::to_string`` writes it."""
        return _serde._dumps(self.to_builtins())

    @classmethod
    def from_json(cls, text):
        """Parse the JSON that Rust's ``serde_json`` writes for this type."""
        return cls.from_builtins(_serde._loads(text))


cdef class TaskId(IdBase):
    """Identifier of a task."""


cdef class RunId(IdBase):
    """Identifier of a run (one execution instance of a task)."""


cdef class AttemptId(IdBase):
    """Identifier of an attempt of a run."""


cdef class ActorId(IdBase):
    """Identifier of a registered actor (worker)."""


cdef class TenantId(IdBase):
    """Identifier of a tenant."""


cdef class LedgerEntryId(IdBase):
    """Identifier of a ledger entry."""


cdef class SubscriptionId(IdBase):
    """Identifier of an event subscription."""
