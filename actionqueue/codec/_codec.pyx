# cython: language_level=3
"""Native postcard codec for WAL v5 records.

The codec is driven by the same wire schema as the pure-Python twin
(``__aq_fields__`` on the model classes, see ``_schema.py``): at import the schema is
compiled into a tree of :class:`_Spec` nodes, and one encoder and one decoder walk that
tree in C. Decoded objects are built without calling ``__init__``: the instance is
allocated with ``PyType_GenericAlloc`` and each field is stored straight into its
``__slots__`` member (offsets read from the member descriptors at import). The objects
are immutable and built only from values that exist before them, so they cannot take
part in reference cycles and are untracked from the garbage collector (as msgspec does).

Bounds: every read is checked against the end of the payload before it happens, which
is why the module is compiled with ``boundscheck=False``. No allocation is sized from an
untrusted length before the bytes it describes have been found in the buffer.
"""

cimport cython
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_Check, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.list cimport PyList_Check
from cpython.long cimport PyLong_Check
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.object cimport PyObject, PyTypeObject
from cpython.ref cimport Py_DECREF, Py_INCREF
from cpython.tuple cimport PyTuple_Check, PyTuple_New, PyTuple_SET_ITEM
from cpython.unicode cimport PyUnicode_Check
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

import types

from .. import _backend
from .. import model as m
from ..model._ids cimport IdBase

if not _backend.NATIVE or not issubclass(m.TaskId, IdBase):
    raise ImportError("the native codec needs the native identifier types (ACTIONQUEUE_PUREPYTHON is set)")
from ._codec_common import (
    MSG_EOF,
    MSG_OPTION,
    MSG_SERDE,
    MSG_UTF8,
    MSG_VARINT,
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

#: Tests look for this marker to confirm they run against the native module.
CYTHON_MODULE = 1


cdef extern from "aq_crc32.h":
    uint32_t aq_crc32_update(uint32_t crc, const unsigned char *buf, size_t len) nogil
    void aq_crc32_init()
    const char *aq_crc32_impl_name()

cdef extern from "aq_compat.h":
    void aq_prefetch(const void *p)

cdef extern from "aq_utf8.h":
    void aq_utf8_init()
    int aq_utf8_valid(const unsigned char *s, size_t n, const unsigned char *limit) nogil

cdef extern from "aq_varint.h":
    int aq_varint_read(const unsigned char **pp, const unsigned char *end, uint64_t *out, int max_bytes,
                       unsigned int last_max) nogil
    int aq_varint_skip(const unsigned char **pp, const unsigned char *end, int max_bytes,
                       unsigned int last_max) nogil

cdef extern from "aq_frame.h":
    uint32_t AQ_WAL_VERSION
    Py_ssize_t AQ_HEADER_LEN
    Py_ssize_t AQ_MIN_RECORD_LEN
    uint32_t aq_load_u32le(const unsigned char *p) nogil
    void aq_store_u32le(unsigned char *p, uint32_t v) nogil

cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        const char *name
        int type
        Py_ssize_t offset
        int flags
    ctypedef struct PyMemberDescrObject:
        PyMemberDef *d_member
    PyObject *_PyObject_GC_New(PyTypeObject *tp) except NULL
    PyObject *_PyObject_New(PyTypeObject *tp) except NULL
    void PyObject_GC_UnTrack(void *op)
    bint PyType_IS_GC(PyTypeObject *tp)
    PyObject *_new_bytes "PyBytes_FromStringAndSize"(const char *v, Py_ssize_t n) except NULL
    int _PyBytes_Resize(PyObject **bytes, Py_ssize_t newsize)
    PyObject *PySequence_Fast_GET_ITEM(object o, Py_ssize_t i)
    void Py_XDECREF(PyObject *o)
    PyTypeObject *Py_TYPE(object o)
    Py_ssize_t Py_SIZE(object o)
    object PyUnicode_DecodeUTF8(const char *s, Py_ssize_t size, const char *errors)
    const char *PyUnicode_AsUTF8AndSize(object unicode, Py_ssize_t *size) except NULL
    unsigned long long PyLong_AsUnsignedLongLong(object) except? -1
    size_t PyLong_AsSize_t(object) except? -1
    long long PyLong_AsLongLong(object) except? -1
    object PyLong_FromUnsignedLongLong(unsigned long long v)
    object PyLong_FromLong(long v)

aq_crc32_init()
aq_utf8_init()
CRC32_IMPL = aq_crc32_impl_name().decode("ascii")

# --------------------------------------------------------------------------------------
# Schema compiled to a tree of specs
# --------------------------------------------------------------------------------------
DEF K_U8 = 0
DEF K_U32 = 1
DEF K_U64 = 2
DEF K_I32 = 3
DEF K_STR = 4
DEF K_BYTES = 5
DEF K_ID = 6
DEF K_ENUM = 7
DEF K_NAMED = 8
DEF K_OPT = 9
DEF K_VEC = 10
DEF K_STRUCT = 11
DEF K_UNION = 12

cdef dict _KINDS = {
    "u8": K_U8, "u32": K_U32, "u64": K_U64, "i32": K_I32, "str": K_STR, "bytes": K_BYTES,
    "id": K_ID, "enum": K_ENUM, "named": K_NAMED, "opt": K_OPT, "vec": K_VEC,
    "struct": K_STRUCT, "union": K_UNION,
}


cdef Py_ssize_t _slot_offset(type cls, str name) except -1:
    """Byte offset of the ``__slots__`` member ``name`` inside instances of ``cls``."""
    descr = None
    for klass in cls.__mro__:
        descr = klass.__dict__.get(name)
        if descr is not None:
            break
    if type(descr) is not types.MemberDescriptorType:
        raise TypeError(f"{cls.__name__}.{name} is not a slot")
    cdef PyMemberDef *member = (<PyMemberDescrObject *><PyObject *>descr).d_member
    if member.type != 16:  # T_OBJECT_EX / Py_T_OBJECT_EX
        raise TypeError(f"{cls.__name__}.{name} is not an object slot")
    return member.offset


@cython.final
cdef class _Spec:
    cdef int kind
    cdef _Spec inner              # OPT, VEC
    cdef object cls               # ID, ENUM, NAMED, STRUCT, UNION: the Python class
    cdef PyTypeObject *tp         # ID, STRUCT: the type to allocate
    cdef tuple members            # ENUM: members by index; NAMED: unit members
    cdef str name                 # for messages
    cdef Py_ssize_t n             # STRUCT: fields; UNION: variants; ENUM/NAMED: unit count
    cdef Py_ssize_t *offsets      # STRUCT: slot offsets; ID: [bytes]; NAMED: [index, name]
    cdef tuple fields             # STRUCT: _Spec per field
    cdef tuple field_names        # STRUCT
    cdef tuple variants           # UNION: STRUCT _Spec per variant
    cdef object singleton         # STRUCT without fields
    cdef object validate          # STRUCT: the class's _validate, or None
    cdef bint cache_ints          # U64, U32: values repeat (timestamps), share int objects
    cdef bint is_time             # U64: the field that gives an event its time (scan column)
    cdef int quick_check          # STRUCT: Q_* fast pre-check of _validate's rules

    def __dealloc__(self):
        PyMem_Free(self.offsets)

    cdef int _alloc_offsets(self, Py_ssize_t n) except -1:
        self.offsets = <Py_ssize_t *>PyMem_Malloc(max(n, 1) * sizeof(Py_ssize_t))
        if self.offsets == NULL:
            raise MemoryError()
        return 0


cdef dict _struct_specs = {}

# Decode-time validation. The rules live in the model's ``_validate`` methods (the one
# authority, shared with the constructors and the pure-Python codec). For the types
# that occur on hot paths a C pre-check tells whether ``_validate`` could object at all;
# only when it could is ``_validate`` called, so a disagreement can only cost time,
# never let an invalid value through (and the differential tests compare the two).
DEF Q_NONE = 0
DEF Q_PYTHON = 1
DEF Q_TASK_SPEC = 2
DEF Q_CONSTRAINTS = 3
DEF Q_REPEAT = 4
DEF Q_RUN_INSTANCE = 5

cdef dict _QUICK_CHECKS = {
    m.TaskSpec: Q_TASK_SPEC,
    m.TaskConstraints: Q_CONSTRAINTS,
    m.RepeatPolicy: Q_REPEAT,
    m.RunInstance: Q_RUN_INSTANCE,
}


cdef _Spec _compile(tuple spec):
    cdef _Spec s
    kind = _KINDS[spec[0]]
    if kind == K_STRUCT:
        return _compile_struct(spec[1])
    s = _Spec()
    s.kind = kind
    s.cache_ints = kind == K_U64 or kind == K_U32
    if kind == K_ID:
        s.cls = spec[1]
        s.tp = <PyTypeObject *>spec[1]
        s.name = spec[1].__name__
    elif kind == K_ENUM:
        s.cls = spec[1]
        s.name = spec[1].__name__
        s.members = tuple(spec[1])
        s.n = len(s.members)
    elif kind == K_NAMED:
        s.cls = spec[1]
        s.tp = <PyTypeObject *>spec[1]
        s.name = spec[1].__name__
        s.members = tuple(spec[1]._units)
        s.n = len(s.members)
        s._alloc_offsets(2)
        s.offsets[0] = _slot_offset(spec[1], "index")
        s.offsets[1] = _slot_offset(spec[1], "name")
    elif kind == K_OPT or kind == K_VEC:
        s.inner = _compile(spec[1])
    elif kind == K_UNION:
        s.cls = spec[1]
        s.name = spec[1].__name__
        s.variants = tuple(_compile_struct(v) for v in spec[1]._variants)
        s.n = len(s.variants)
    return s


cdef _Spec _compile_struct(type cls):
    cdef _Spec s = _struct_specs.get(cls)
    if s is not None:
        return s
    s = _Spec()
    s.kind = K_STRUCT
    s.cls = cls
    s.tp = <PyTypeObject *>cls
    s.name = cls.__name__
    fields = cls.__aq_fields__
    s.n = len(fields)
    s._alloc_offsets(s.n)
    for i, (name, _) in enumerate(fields):
        s.offsets[i] = _slot_offset(cls, name)
    s.field_names = tuple(name for name, _ in fields)
    s.fields = tuple(_compile(spec) for _, spec in fields)
    s.validate = cls.__dict__.get("_validate")
    s.quick_check = _QUICK_CHECKS.get(cls, Q_NONE if s.validate is None else Q_PYTHON)
    if s.n == 0:
        s.singleton = cls()
    _struct_specs[cls] = s
    return s


cdef _Spec _WAL_EVENT = _compile_struct(m.WalEvent)
(<_Spec>_WAL_EVENT.fields[0]).cache_ints = False  # sequences never repeat


cdef void _mark_event_times():
    """The time of an event, for scans: its ``timestamp`` field, or for ``RunCreated``
    (which has none) the run's ``created_at``."""
    cdef _Spec variant, field
    for variant in (<_Spec>_WAL_EVENT.fields[1]).variants:
        for i, name in enumerate(variant.field_names):
            if name == "timestamp":
                (<_Spec>variant.fields[i]).is_time = True
    run_instance = _struct_specs[m.RunInstance]
    field = (<_Spec>run_instance).fields[(<_Spec>run_instance).field_names.index("created_at")]
    field.is_time = True


_mark_event_times()


# --------------------------------------------------------------------------------------
# Object construction
# --------------------------------------------------------------------------------------
cdef inline object _alloc(PyTypeObject *tp):
    """A new instance with all slots empty, not tracked by the garbage collector."""
    cdef PyObject *p
    if PyType_IS_GC(tp):
        p = _PyObject_GC_New(tp)  # starts untracked (PyType_GenericAlloc would track it)
    else:
        p = _PyObject_New(tp)
    memset((<char *>p) + sizeof(PyObject), 0, tp.tp_basicsize - sizeof(PyObject))
    cdef object obj = <object>p
    Py_DECREF(obj)  # the cast took a second reference
    return obj


# Timestamps and expiries repeat across nearby events (many events per second), so
# decoded integers above the small-int range go through a small direct-mapped cache
# of int objects (ints are immutable: sharing them is invisible). Decoding holds the
# GIL throughout, which serialises access to the cache.
DEF INT_CACHE_SIZE = 64
cdef PyObject *_int_cache_obj[INT_CACHE_SIZE]
cdef uint64_t _int_cache_key[INT_CACHE_SIZE]


cdef inline object _cached_int(uint64_t v):
    cdef Py_ssize_t slot = v & (INT_CACHE_SIZE - 1)
    cdef PyObject *hit = _int_cache_obj[slot]
    if hit != NULL and _int_cache_key[slot] == v:
        return <object>hit
    obj = PyLong_FromUnsignedLongLong(v)
    Py_INCREF(obj)
    Py_XDECREF(hit)
    _int_cache_obj[slot] = <PyObject *>obj
    _int_cache_key[slot] = v
    return obj


cdef inline void _put(object obj, Py_ssize_t offset, object value):
    """Store ``value`` in an empty slot (the slot owns the new reference)."""
    Py_INCREF(value)
    (<PyObject **>((<char *><PyObject *>obj) + offset))[0] = <PyObject *>value


cdef inline PyObject *_get(object obj, Py_ssize_t offset):
    """Borrowed slot content (NULL when the slot was never set)."""
    return (<PyObject **>((<char *><PyObject *>obj) + offset))[0]


# --------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------
cdef struct Reader:
    const uint8_t *start       # start of the payload
    const uint8_t *p
    const uint8_t *end
    Py_ssize_t base            # offset of `start` in the caller's buffer
    Py_ssize_t record_offset   # offset of the record in the caller's buffer, or -1


cdef int _fail(Reader *r, str reason, const uint8_t *at) except -1:
    rec = None if r.record_offset < 0 else r.record_offset
    raise PayloadDecodeError(reason, r.base + (at - r.start), rec)


DEF VARINT_OK = 0
DEF VARINT_EOF = 1
DEF VARINT_BAD = 2


cdef inline int _varint(const uint8_t **pp, const uint8_t *end, uint64_t *out,
                        int max_bytes, uint8_t last_max) noexcept nogil:
    """Read one postcard varint at ``*pp`` (``aq_varint_read``, the package's one varint
    loop). Accepts over-long forms within ``max_bytes`` as postcard does; the last
    permitted byte may hold at most ``last_max``. Returns VARINT_OK (``*pp`` moved past
    it), VARINT_EOF (``*pp`` where the input ran out) or VARINT_BAD.
    """
    return aq_varint_read(pp, end, out, max_bytes, last_max)


cdef inline int _read_varint(Reader *r, uint64_t *out, int max_bytes, uint8_t last_max) except -1:
    cdef const uint8_t *start = r.p
    cdef int status = _varint(&r.p, r.end, out, max_bytes, last_max)
    if status == VARINT_OK:
        return 0
    return _fail(r, MSG_EOF, r.p) if status == VARINT_EOF else _fail(r, MSG_VARINT, start)


cdef inline int _read_u32(Reader *r, uint64_t *out) except -1:
    return _read_varint(r, out, 5, 0x0F)


cdef inline int _read_u64(Reader *r, uint64_t *out) except -1:
    return _read_varint(r, out, 10, 0x01)


cdef inline const uint8_t *_read_len_prefixed(Reader *r, Py_ssize_t *n) except NULL:
    """Read a varint length and check that many bytes follow; return where they start."""
    cdef uint64_t length = 0  # set by _read_u64 unless it raises (gcc cannot see that)
    _read_u64(r, &length)
    if length > <uint64_t>(r.end - r.p):
        _fail(r, MSG_EOF, r.end)
    cdef const uint8_t *data = r.p
    n[0] = <Py_ssize_t>length
    r.p += length
    return data


cdef object _decode_value(_Spec s, Reader *r):
    cdef uint64_t v = 0  # set by _read_u64/_read_u32 unless they raise (gcc cannot see that)
    cdef uint32_t z
    cdef Py_ssize_t n, i
    cdef const uint8_t *start = r.p
    cdef const uint8_t *data
    cdef int kind = s.kind
    if kind == K_U64 or kind == K_U32:
        if kind == K_U64:
            _read_u64(r, &v)
        else:
            _read_u32(r, &v)
        if v <= 256:
            return PyLong_FromLong(<long>v)  # CPython's shared small ints
        if s.cache_ints:
            return _cached_int(v)
        return PyLong_FromUnsignedLongLong(v)
    if kind == K_ID:
        data = _read_len_prefixed(r, &n)
        if n != 16:
            _fail(r, f"{MSG_SERDE}: uuid must be 16 bytes, got {n}", start)
        obj = _alloc(s.tp)
        memcpy((<IdBase>obj).raw, data, 16)
        return obj
    if kind == K_ENUM:
        _read_u32(r, &v)
        if v >= <uint64_t>s.n:
            _fail(r, f"{MSG_SERDE}: invalid {s.name} variant index {v}", start)
        return s.members[<Py_ssize_t>v]
    if kind == K_STRUCT:
        return _decode_struct(s, r)
    if kind == K_OPT:
        if r.p >= r.end:
            _fail(r, MSG_EOF, r.p)
        if r.p[0] == 0:
            r.p += 1
            return None
        if r.p[0] == 1:
            r.p += 1
            return _decode_value(s.inner, r)
        _fail(r, MSG_OPTION, r.p)
    if kind == K_STR:
        data = _read_len_prefixed(r, &n)
        try:
            return PyUnicode_DecodeUTF8(<const char *>data, n, NULL)
        except UnicodeDecodeError:
            _fail(r, MSG_UTF8, start)
    if kind == K_BYTES:
        data = _read_len_prefixed(r, &n)
        return PyBytes_FromStringAndSize(<const char *>data, n)
    if kind == K_I32:
        _read_u32(r, &v)
        z = <uint32_t>v
        return PyLong_FromLong(<long>(<int64_t>(z >> 1) ^ -(<int64_t>(z & 1))))
    if kind == K_U8:
        if r.p >= r.end:
            _fail(r, MSG_EOF, r.p)
        i = r.p[0]
        r.p += 1
        return PyLong_FromLong(<long>i)
    if kind == K_VEC:
        _read_u64(r, &v)
        # Each element takes at least one byte, so a count above the bytes left cannot be
        # satisfied: only a count that fits is used to size the tuple up front; a larger
        # one is read element by element until the input runs out (same error, same place).
        if v <= <uint64_t>(r.end - r.p):
            items_t = PyTuple_New(<Py_ssize_t>v)
            for i in range(<Py_ssize_t>v):
                item = _decode_value(s.inner, r)
                Py_INCREF(item)
                PyTuple_SET_ITEM(items_t, i, item)
            return items_t
        items = []
        while v:
            items.append(_decode_value(s.inner, r))
            v -= 1
        return tuple(items)
    if kind == K_UNION:
        _read_u32(r, &v)
        if v >= <uint64_t>s.n:
            _fail(r, f"{MSG_SERDE}: invalid {s.name} variant index {v}", start)
        return _decode_struct(<_Spec>s.variants[<Py_ssize_t>v], r)
    if kind == K_NAMED:
        _read_u32(r, &v)
        if v < <uint64_t>s.n:
            return s.members[<Py_ssize_t>v]
        if v == <uint64_t>s.n:
            start = r.p
            data = _read_len_prefixed(r, &n)
            try:
                name = PyUnicode_DecodeUTF8(<const char *>data, n, NULL)
            except UnicodeDecodeError:
                _fail(r, MSG_UTF8, start)
            obj = _alloc(s.tp)
            _put(obj, s.offsets[0], PyLong_FromLong(<long>v))
            _put(obj, s.offsets[1], name)
            return obj
        _fail(r, f"{MSG_SERDE}: invalid {s.name} variant index {v}", start)
    raise AssertionError(kind)


cdef inline bint _is_zero(PyObject *v):
    """Whether a decoded integer is 0 (decoded ints are exact ``int`` objects)."""
    return v == <PyObject *>_ZERO or (<object>v) == 0


cdef inline bint _is_nil_id(PyObject *id_obj):
    cdef const uint8_t *b = (<IdBase>id_obj).raw
    cdef int i
    for i in range(16):
        if b[i] != 0:
            return False
    return True


cdef bint _may_be_invalid(_Spec s, object obj):
    """C pre-check of ``_validate``: False only when every rule certainly holds."""
    cdef int q = s.quick_check
    cdef PyObject *v
    if q == Q_RUN_INSTANCE:
        # id, task_id, state, current_attempt_id, attempt_count, created_at, scheduled_at, ...
        if _is_nil_id(_get(obj, s.offsets[0])) or _is_nil_id(_get(obj, s.offsets[1])):
            return True
        v = _get(obj, s.offsets[2])
        if v != <PyObject *>_RUNNING and _get(obj, s.offsets[3]) != <PyObject *>None:
            return True
        if v == <PyObject *>_READY:
            return True  # the scheduled_at <= created_at rule: let Python compare
        return False
    if q == Q_TASK_SPEC:
        return _is_nil_id(_get(obj, s.offsets[0]))
    if q == Q_CONSTRAINTS:
        # max_attempts, timeout_secs, concurrency_key, hold policy, safety level, capabilities
        if _is_zero(_get(obj, s.offsets[0])):
            return True
        v = _get(obj, s.offsets[1])
        if v != <PyObject *>None and _is_zero(v):
            return True
        v = _get(obj, s.offsets[2])
        if v != <PyObject *>None and len(<object>v) == 0:
            return True
        v = _get(obj, s.offsets[5])
        if v != <PyObject *>None:
            if len(<object>v) == 0:
                return True
            for item in <tuple>v:
                if len(item) == 0:
                    return True
        return False
    if q == Q_REPEAT:
        return _is_zero(_get(obj, s.offsets[0])) or _is_zero(_get(obj, s.offsets[1]))
    return q != Q_NONE


cdef object _ZERO = 0
cdef object _RUNNING = m.RunState.RUNNING
cdef object _READY = m.RunState.READY
cdef uint64_t _RUNNING_INDEX = m.RunState.RUNNING.index
cdef uint64_t _READY_INDEX = m.RunState.READY.index


cdef object _decode_struct(_Spec s, Reader *r):
    cdef Py_ssize_t i
    if s.n == 0:
        return s.singleton
    obj = _alloc(s.tp)
    for i in range(s.n):
        _put(obj, s.offsets[i], _decode_value(<_Spec>s.fields[i], r))
    if s.quick_check != Q_NONE and _may_be_invalid(s, obj):
        try:
            s.validate(obj)
        except ValidationError as exc:
            _fail(r, f"{MSG_SERDE}: {exc}", r.p)
    return obj


cdef object decode_payload_at(const uint8_t *p, Py_ssize_t n, Py_ssize_t base, Py_ssize_t record_offset):
    """Decode the payload at ``p`` (``n`` bytes); error offsets are ``base`` + position."""
    cdef Reader r
    r.start = p
    r.p = p
    r.end = p + n
    r.base = base
    r.record_offset = record_offset
    return _decode_struct(_WAL_EVENT, &r)


cdef uint32_t _check_frame(const uint8_t *p, Py_ssize_t n, Py_ssize_t base) except? 0xFFFFFFFF:
    """Check the record at ``p`` (``n`` bytes available); return its payload length.

    The order of checks is Rust's ``codec::decode``: size, version, length, CRC.
    """
    if n < AQ_MIN_RECORD_LEN:
        raise InvalidLength(too_short(n), base, base)
    cdef uint32_t version = aq_load_u32le(p)
    if version != AQ_WAL_VERSION:
        raise UnsupportedVersion(version, base, base)
    cdef uint32_t length = aq_load_u32le(p + 4)
    if <uint64_t>length > <uint64_t>(n - AQ_HEADER_LEN):
        raise InvalidLength(length_exceeds(length, n - AQ_HEADER_LEN), base + 4, base)
    cdef uint32_t expected = aq_load_u32le(p + 8)
    cdef uint32_t actual = aq_crc32_update(0, p + AQ_HEADER_LEN, length)
    if actual != expected:
        raise CrcMismatch(expected, actual, base + 8, base)
    return length


cdef class _Buffer:
    """Read access to any bytes-like object for the duration of one call."""
    cdef Py_buffer view
    cdef const uint8_t *data
    cdef Py_ssize_t size
    cdef bint held

    def __cinit__(self, object obj):
        if PyBytes_Check(obj):
            self.data = <const uint8_t *>PyBytes_AS_STRING(obj)
            self.size = PyBytes_GET_SIZE(obj)
            self.held = False
        else:
            PyObject_GetBuffer(obj, &self.view, PyBUF_SIMPLE)
            self.held = True
            self.data = <const uint8_t *>self.view.buf
            self.size = self.view.len

    def __dealloc__(self):
        if self.held:
            PyBuffer_Release(&self.view)


def decode(buf):
    """Decode one framed record at the start of ``buf`` (checks version, length and CRC).

    Bytes after the record are ignored, as in Rust's ``codec::decode``.
    """
    cdef const uint8_t *data
    cdef uint32_t length
    if PyBytes_Check(buf):  # the common case, without a buffer export
        data = <const uint8_t *>PyBytes_AS_STRING(buf)
        length = _check_frame(data, PyBytes_GET_SIZE(buf), 0)
        return decode_payload_at(data + AQ_HEADER_LEN, length, AQ_HEADER_LEN, 0)
    cdef _Buffer b = _Buffer(buf)
    length = _check_frame(b.data, b.size, 0)
    return decode_payload_at(b.data + AQ_HEADER_LEN, length, AQ_HEADER_LEN, 0)


def decode_payload(buf):
    """Decode an unframed postcard ``WalEvent``. Trailing bytes are ignored (as in Rust)."""
    cdef _Buffer b = _Buffer(buf)
    return decode_payload_at(b.data, b.size, 0, -1)


def decode_batch(buf):
    """Decode a buffer of consecutive framed records into a list.

    Each record is checked as the WAL readers check it: a record is the header plus
    exactly ``length`` payload bytes. The first bad record raises a ``DecodeError``
    whose ``record_offset`` is where that record starts.
    """
    cdef _Buffer b = _Buffer(buf)
    cdef Py_ssize_t pos = 0, avail, n
    cdef uint32_t length
    out = []
    while pos < b.size:
        avail = b.size - pos
        if avail < AQ_HEADER_LEN:
            raise InvalidLength(too_short(avail), pos, pos)
        length = aq_load_u32le(b.data + pos + 4)
        n = avail
        if <uint64_t>length + AQ_HEADER_LEN < <uint64_t>avail:
            n = length + AQ_HEADER_LEN
        _check_frame(b.data + pos, n, pos)
        out.append(decode_payload_at(b.data + pos + AQ_HEADER_LEN, length, pos + AQ_HEADER_LEN, pos))
        pos += AQ_HEADER_LEN + length
    return out


def crc32(data, value=0):
    """CRC-32 (ISO-HDLC, as zlib) of ``data``, continuing from ``value``."""
    cdef _Buffer b = _Buffer(data)
    cdef uint32_t crc = <uint32_t>(value & 0xFFFFFFFF)
    if b.size < 4096:
        return aq_crc32_update(crc, b.data, b.size)
    with nogil:
        crc = aq_crc32_update(crc, b.data, b.size)
    return crc


# --------------------------------------------------------------------------------------
# Skimming: judge a payload without building objects (for scans and walks)
# --------------------------------------------------------------------------------------
# A skim steps over a payload as the decoder would read it and checks what the decoder
# checks, on the bytes: the structure (varint forms, option tags, variant indices, uuid
# lengths, that lengths fit), that text is valid UTF-8, and the model's rules (the
# ``_validate`` methods) where a few raw field values settle them. Its verdict is one of
# three: the decoder certainly accepts the payload; the payload is malformed (the
# decoder raises); or only the decoder can tell (``needs_decode``: a value that may
# break a model rule, or a type whose rules only Python checks, e.g. a cron expression),
# and the caller decodes the payload. So a skim never accepts what the decoder rejects,
# and its callers reject exactly what the decoder rejects.
cdef struct Skim:
    const uint8_t *p
    const uint8_t *end
    uint64_t time
    int kind
    bint needs_decode     # the payload holds a value only a decode can judge


cdef inline int _skim_varint(Skim *k, uint64_t *out, int max_bytes, uint8_t last_max) noexcept:
    return 0 if _varint(&k.p, k.end, out, max_bytes, last_max) == VARINT_OK else -1


cdef inline int _skip_varint(Skim *k, int max_bytes, uint8_t last_max) noexcept:
    """Step over a varint whose value is not needed (as :func:`_varint` accepts it)."""
    return aq_varint_skip(&k.p, k.end, max_bytes, last_max)


cdef inline int _skim_bytes(Skim *k) noexcept:
    cdef uint64_t n
    if _skim_varint(k, &n, 10, 0x01) < 0 or n > <uint64_t>(k.end - k.p):
        return -1
    k.p += n
    return 0


cdef inline int _skim_text(Skim *k) noexcept:
    """A string: as :func:`_skim_bytes`, and its bytes must be valid UTF-8 (-1 when they
    are not: the decoder's ``MSG_UTF8`` failure)."""
    cdef uint64_t n
    if _skim_varint(k, &n, 10, 0x01) < 0 or n > <uint64_t>(k.end - k.p):
        return -1
    if not aq_utf8_valid(k.p, <size_t>n, k.end):
        return -1
    k.p += n
    return 0


cdef inline int _skim_field(_Spec s, Skim *k) noexcept:
    """:func:`_skim_value`, with the kinds most fields have handled inline (a call per
    field is much of the cost of a skim)."""
    cdef int kind = s.kind
    if kind == K_ID:
        if k.end - k.p >= 17 and k.p[0] == 16:
            k.p += 17
            return 0
        return _skim_id_slow(k)
    if kind == K_U64 and not s.is_time:
        return _skip_varint(k, 10, 0x01)
    if kind == K_U32 or kind == K_I32:
        return _skip_varint(k, 5, 0x0F)
    return _skim_value(s, k)


cdef int _skim_value(_Spec s, Skim *k) noexcept:
    """Step over one value of ``s``: 0, or -1 when the decoder rejects these bytes.

    Checks what the decoder checks (see the comment above :class:`Skim`); a value only
    the decoder can judge sets ``k.needs_decode``.
    """
    cdef uint64_t v
    cdef Py_ssize_t i
    cdef uint8_t tag
    cdef int kind = s.kind
    if kind == K_U64:
        if not s.is_time:
            return _skip_varint(k, 10, 0x01)
        if _skim_varint(k, &v, 10, 0x01) < 0:
            return -1
        k.time = v
        return 0
    if kind == K_ID:
        if k.end - k.p >= 17 and k.p[0] == 16:
            k.p += 17
            return 0
        return _skim_id_slow(k)
    if kind == K_ENUM:
        if _skim_varint(k, &v, 5, 0x0F) < 0 or v >= <uint64_t>s.n:
            return -1
        return 0
    if kind == K_STRUCT:
        if s.quick_check != Q_NONE:
            return _skim_struct_checked(s, k)
        for i in range(s.n):
            if _skim_field(<_Spec>s.fields[i], k) < 0:
                return -1
        return 0
    if kind == K_OPT:
        if k.p >= k.end or k.p[0] > 1:
            return -1
        tag = k.p[0]
        k.p += 1
        return 0 if tag == 0 else _skim_field(s.inner, k)
    if kind == K_STR:
        return _skim_text(k)
    if kind == K_BYTES:
        return _skim_bytes(k)
    if kind == K_U32 or kind == K_I32:
        return _skip_varint(k, 5, 0x0F)
    if kind == K_U8:
        if k.p >= k.end:
            return -1
        k.p += 1
        return 0
    if kind == K_VEC:
        if _skim_varint(k, &v, 10, 0x01) < 0:
            return -1
        while v:  # each element takes at least one byte: bounded by the input
            if _skim_field(s.inner, k) < 0:
                return -1
            v -= 1
        return 0
    if kind == K_UNION:
        if _skim_varint(k, &v, 5, 0x0F) < 0 or v >= <uint64_t>s.n:
            return -1
        return _skim_value(<_Spec>s.variants[<Py_ssize_t>v], k)
    if kind == K_NAMED:
        if _skim_varint(k, &v, 5, 0x0F) < 0 or v > <uint64_t>s.n:
            return -1
        return _skim_text(k) if v == <uint64_t>s.n else 0
    return -1


DEF MAX_CHECKED_FIELDS = 16


cdef int _skim_struct_checked(_Spec s, Skim *k) noexcept:
    """Skim a struct that has model rules, and flag it for a decode unless the raw field
    values show that its ``_validate`` certainly accepts it (the rules of
    :func:`_may_be_invalid`, on bytes; the fields were skimmed, so they are well-formed)."""
    cdef const uint8_t *at[MAX_CHECKED_FIELDS]
    cdef Py_ssize_t i
    cdef int q = s.quick_check
    cdef uint64_t state, created, scheduled
    if s.n > MAX_CHECKED_FIELDS:
        q = Q_PYTHON
    for i in range(s.n):
        if i < MAX_CHECKED_FIELDS:
            at[i] = k.p
        if _skim_field(<_Spec>s.fields[i], k) < 0:
            return -1
    if k.needs_decode:
        return 0
    if q == Q_RUN_INSTANCE:
        # id, task_id, state, current_attempt_id, attempt_count, created_at, scheduled_at, ...
        if _raw_nil_id(at[0], k.end) or _raw_nil_id(at[1], k.end):
            k.needs_decode = True
        elif _raw_varint(at[2], k.end, &state) < 0:
            k.needs_decode = True
        elif state != _RUNNING_INDEX and at[3][0] == 1:
            k.needs_decode = True  # an attempt outside Running
        elif state == _READY_INDEX:  # Ready needs scheduled_at <= created_at
            k.needs_decode = (_raw_varint(at[5], k.end, &created) < 0
                              or _raw_varint(at[6], k.end, &scheduled) < 0
                              or scheduled > created)
    elif q == Q_TASK_SPEC:
        k.needs_decode = _raw_nil_id(at[0], k.end)
    elif q == Q_CONSTRAINTS:
        # max_attempts, timeout_secs, concurrency_key, hold policy, safety level, capabilities
        k.needs_decode = (
            _raw_is_zero(at[0], k.end)
            or (at[1][0] == 1 and _raw_is_zero(at[1] + 1, k.end))
            or (at[2][0] == 1 and _raw_is_zero(at[2] + 1, k.end))  # Some(""): length 0
            or (at[5][0] == 1 and _raw_has_empty_text(at[5] + 1, k.end))
        )
    elif q == Q_REPEAT:
        k.needs_decode = _raw_is_zero(at[0], k.end) or _raw_is_zero(at[1], k.end)
    else:
        k.needs_decode = True  # rules only Python checks (CronPolicy: the cron grammar)
    return 0


cdef inline int _raw_varint(const uint8_t *p, const uint8_t *end, uint64_t *v) noexcept:
    return 0 if _varint(&p, end, v, 10, 0x01) == VARINT_OK else -1


cdef inline bint _raw_is_zero(const uint8_t *p, const uint8_t *end) noexcept:
    """The (already skimmed, so well-formed) varint at ``p`` is 0."""
    cdef uint64_t v
    return _raw_varint(p, end, &v) == 0 and v == 0


cdef bint _raw_has_empty_text(const uint8_t *p, const uint8_t *end) noexcept:
    """The (already skimmed) vec of strings at ``p`` is empty or holds an empty string."""
    cdef uint64_t count, n
    if _varint(&p, end, &count, 10, 0x01) != VARINT_OK or count == 0:
        return True
    while count:
        if _varint(&p, end, &n, 10, 0x01) != VARINT_OK or n == 0 or n > <uint64_t>(end - p):
            return True
        p += n
        count -= 1
    return False


cdef inline bint _raw_nil_id(const uint8_t *p, const uint8_t *end) noexcept:
    """The (already skimmed) uuid at ``p`` is all zeros."""
    cdef uint64_t n
    cdef int i
    if _varint(&p, end, &n, 10, 0x01) != VARINT_OK or n != 16:
        return True
    for i in range(16):
        if p[i]:
            return False
    return True


cdef int _skim_id_slow(Skim *k) noexcept:
    """A uuid in any form but the usual ``10`` + 16 bytes (an over-long length varint is
    still valid; anything else is not): rare, so out of line."""
    cdef uint64_t n
    if _skim_varint(k, &n, 10, 0x01) < 0 or n != 16 or k.end - k.p < 16:
        return -1
    k.p += 16
    return 0


cdef _Spec _EVENT_UNION = <_Spec>_WAL_EVENT.fields[1]


cdef inline int _skim_event(const uint8_t *p, Py_ssize_t n, uint64_t *sequence, Skim *k) noexcept:
    """Skim a whole payload (sequence, then the event) into ``k``: 0, or -1 when malformed."""
    cdef uint64_t v
    k.p = p
    k.end = p + n
    k.time = 0
    k.kind = -1
    k.needs_decode = False
    if _skim_varint(k, sequence, 10, 0x01) < 0:
        return -1
    if _skim_varint(k, &v, 5, 0x0F) < 0 or v >= <uint64_t>_EVENT_UNION.n:  # the event kind
        return -1
    k.kind = <int>v
    return _skim_value(<_Spec>_EVENT_UNION.variants[<Py_ssize_t>v], k)


cdef int scan_payload(const uint8_t *p, Py_ssize_t n, uint64_t *sequence, int *kind, uint64_t *time) noexcept:
    """Judge a payload as :func:`check_payload` does, and read its event kind and time.

    ``sequence``, ``kind`` and ``time`` are set unless the result is -1.
    """
    cdef Skim k
    if _skim_event(p, n, sequence, &k) < 0:
        return -1
    kind[0] = k.kind
    time[0] = k.time
    return 1 if k.needs_decode else 0


cdef int payload_sequence(const uint8_t *p, Py_ssize_t n, uint64_t *sequence) noexcept nogil:
    """Read only a payload's sequence (its first field): 0, or -1 when it is malformed."""
    return 0 if _varint(&p, p + n, sequence, 10, 0x01) == VARINT_OK else -1


cdef int check_payload(const uint8_t *p, Py_ssize_t n, uint64_t *sequence) noexcept:
    """Judge a payload without building objects.

    0: :func:`decode_payload_at` certainly accepts it (``sequence`` is set); 1: it is
    well-formed but holds a value that may break a model rule (or one whose rules only
    Python checks), so only a decode can tell (``sequence`` is set); -1: the decoder
    rejects it (it raises the error).
    """
    cdef Skim k
    if _skim_event(p, n, sequence, &k) < 0:
        return -1
    return 1 if k.needs_decode else 0


# --------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------
DEF INLINE_CAP = 1024

cdef struct Writer:
    uint8_t *buf
    Py_ssize_t len
    Py_ssize_t cap
    PyObject *target          # when set: a bytes object being filled in place (owned)
    bint heap                 # buf is a PyMem block
    uint8_t inline_buf[INLINE_CAP]


cdef inline void _writer_init(Writer *w):
    """A writer that starts in its inline buffer (single records)."""
    w.buf = w.inline_buf
    w.len = 0
    w.cap = INLINE_CAP
    w.target = NULL
    w.heap = False


cdef int _writer_init_bytes(Writer *w, Py_ssize_t cap) except -1:
    """A writer that fills a bytes object directly, so the result needs no final copy."""
    _writer_init(w)
    w.target = _new_bytes(NULL, max(cap, INLINE_CAP))
    w.buf = <uint8_t *>PyBytes_AS_STRING(<object>w.target)
    w.cap = max(cap, INLINE_CAP)
    return 0


cdef object _writer_finish(Writer *w):
    """The written bytes as a bytes object (the writer must still be freed)."""
    if w.target == NULL:
        return PyBytes_FromStringAndSize(<const char *>w.buf, w.len)
    if _PyBytes_Resize(&w.target, w.len) < 0:
        w.target = NULL
        raise MemoryError()
    result = <object>w.target
    Py_DECREF(result)
    w.target = NULL
    return result


cdef inline void _writer_free(Writer *w):
    if w.heap:
        PyMem_Free(w.buf)
    Py_XDECREF(w.target)
    w.target = NULL
    w.buf = NULL
    w.heap = False


cdef int _grow(Writer *w, Py_ssize_t need) except -1:
    cdef Py_ssize_t cap = w.cap * 2
    cdef uint8_t *nb
    while cap < w.len + need:
        cap *= 2
    if w.target != NULL:
        if _PyBytes_Resize(&w.target, cap) < 0:
            w.target = NULL
            raise MemoryError()
        nb = <uint8_t *>PyBytes_AS_STRING(<object>w.target)
    elif w.heap:
        nb = <uint8_t *>PyMem_Realloc(w.buf, cap)
    else:
        nb = <uint8_t *>PyMem_Malloc(cap)
        if nb != NULL:
            memcpy(nb, w.buf, w.len)
    if nb == NULL:
        raise MemoryError()
    w.buf = nb
    w.cap = cap
    w.heap = w.target == NULL
    return 0


cdef inline int _reserve(Writer *w, Py_ssize_t need) except -1:
    if w.len + need > w.cap:
        return _grow(w, need)
    return 0


cdef inline int _put_varint(Writer *w, uint64_t v) except -1:
    _reserve(w, 10)
    cdef uint8_t *p = w.buf + w.len
    while v >= 0x80:
        p[0] = <uint8_t>(v | 0x80)
        p += 1
        v >>= 7
    p[0] = <uint8_t>v
    w.len = (p + 1) - w.buf
    return 0


cdef inline int _put_bytes(Writer *w, const void *data, Py_ssize_t n) except -1:
    _put_varint(w, <uint64_t>n)
    _reserve(w, n)
    memcpy(w.buf + w.len, data, n)
    w.len += n
    return 0


cdef int _bad(str where, str what) except -1:
    raise EncodeError(f"cannot encode {where}: {what}")


cdef uint64_t _as_uint(object v, uint64_t hi, str where) except? 0xFFFFFFFFFFFFFFFF:
    if not PyLong_Check(v):
        _bad(where, f"expected int, got {type(v).__name__}")
    cdef uint64_t x = 0  # set below unless _bad raises (gcc cannot see that _bad always raises)
    try:
        if sizeof(size_t) == 8:
            x = PyLong_AsSize_t(v)  # a plain loop over the digits, faster than the ULL path
        else:
            x = PyLong_AsUnsignedLongLong(v)
    except OverflowError:
        _bad(where, f"integer {v} out of range")
    if x > hi:
        _bad(where, f"integer {v} out of range")
    return x


cdef int _encode_value(_Spec s, object v, Writer *w, str where) except -1:
    cdef int kind = s.kind
    cdef Py_ssize_t n, i
    cdef const char *text
    cdef PyObject *raw
    cdef long long sv
    cdef uint32_t z
    if kind == K_U64:
        return _put_varint(w, _as_uint(v, 0xFFFFFFFFFFFFFFFF, where))
    if kind == K_U32:
        return _put_varint(w, _as_uint(v, 0xFFFFFFFF, where))
    if kind == K_ID:
        if Py_TYPE(v) != s.tp:
            return _bad(where, f"expected {s.name}, got {type(v).__name__}")
        _reserve(w, 17)
        w.buf[w.len] = 16
        memcpy(w.buf + w.len + 1, (<IdBase>v).raw, 16)
        w.len += 17
        return 0
    if kind == K_ENUM:
        for i in range(s.n):
            if <PyObject *>s.members[i] == <PyObject *>v:
                return _put_varint(w, <uint64_t>i)
        return _bad(where, f"expected {s.name}, got {type(v).__name__}")
    if kind == K_STRUCT:
        return _encode_struct(s, v, w, where)
    if kind == K_OPT:
        _reserve(w, 1)
        if v is None:
            w.buf[w.len] = 0
            w.len += 1
            return 0
        w.buf[w.len] = 1
        w.len += 1
        return _encode_value(s.inner, v, w, where)
    if kind == K_STR:
        if not PyUnicode_Check(v):
            return _bad(where, f"expected str, got {type(v).__name__}")
        try:
            text = PyUnicode_AsUTF8AndSize(v, &n)
        except UnicodeEncodeError:
            return _bad(where, "string is not valid UTF-8 (lone surrogate)")
        return _put_bytes(w, text, n)
    if kind == K_BYTES:
        if not PyBytes_Check(v):
            return _bad(where, f"expected bytes, got {type(v).__name__}")
        return _put_bytes(w, PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v))
    if kind == K_I32:
        if not PyLong_Check(v):
            return _bad(where, f"expected int, got {type(v).__name__}")
        try:
            sv = PyLong_AsLongLong(v)
        except OverflowError:
            return _bad(where, f"integer {v} out of range")
        if sv < -0x80000000 or sv > 0x7FFFFFFF:
            return _bad(where, f"integer {v} out of range")
        z = (<uint32_t>(<int>sv) << 1) ^ <uint32_t>(<int>sv >> 31)
        return _put_varint(w, z)
    if kind == K_U8:
        _reserve(w, 1)
        w.buf[w.len] = <uint8_t>_as_uint(v, 0xFF, where)
        w.len += 1
        return 0
    if kind == K_VEC:
        if not (PyTuple_Check(v) or PyList_Check(v)):
            return _bad(where, f"expected a tuple, got {type(v).__name__}")
        _put_varint(w, <uint64_t>len(v))
        for item in v:
            _encode_value(s.inner, item, w, where)
        return 0
    if kind == K_UNION:
        for i in range(s.n):
            if Py_TYPE(v) == (<_Spec>s.variants[i]).tp:
                _put_varint(w, <uint64_t>i)
                return _encode_struct(<_Spec>s.variants[i], v, w, where)
        return _bad(where, f"expected a {s.name} variant, got {type(v).__name__}")
    if kind == K_NAMED:
        if Py_TYPE(v) != s.tp:
            return _bad(where, f"expected {s.name}, got {type(v).__name__}")
        raw = _get(v, s.offsets[0])
        if raw == NULL:
            return _bad(where, f"{s.name} is not initialised")
        i = _as_uint(<object>raw, <uint64_t>s.n, where)
        _put_varint(w, <uint64_t>i)
        if i == s.n:
            raw = _get(v, s.offsets[1])
            if raw == NULL:
                return _bad(where, f"{s.name} is not initialised")
            return _encode_value(_STR_SPEC, <object>raw, w, where)
        return 0
    raise AssertionError(kind)


cdef _Spec _STR_SPEC = _compile(("str",))


cdef int _encode_struct(_Spec s, object v, Writer *w, str where) except -1:
    cdef Py_ssize_t i
    cdef PyObject *field
    if Py_TYPE(v) != s.tp:
        return _bad(where, f"expected {s.name}, got {type(v).__name__}")
    for i in range(s.n):
        field = _get(v, s.offsets[i])
        if field == NULL:
            return _bad(f"{s.name}.{s.field_names[i]}", "field is not set")
        _encode_value(<_Spec>s.fields[i], <object>field, w, None if where is None else s.name)
    return 0


cdef int _encode_record(object event, Writer *w) except -1:
    """Append one framed record for ``event`` to ``w``."""
    cdef Py_ssize_t start = w.len
    _reserve(w, AQ_HEADER_LEN)
    w.len += AQ_HEADER_LEN
    try:
        _encode_struct(_WAL_EVENT, event, w, "WalEvent")
    except BaseException:
        w.len = start
        raise
    cdef Py_ssize_t length = w.len - start - AQ_HEADER_LEN
    if length > 0xFFFFFFFF:
        w.len = start
        raise EncodeError(f"payload of {length} bytes exceeds the u32 length field")
    cdef uint8_t *h = w.buf + start
    aq_store_u32le(h, AQ_WAL_VERSION)
    aq_store_u32le(h + 4, <uint32_t>length)
    aq_store_u32le(h + 8, aq_crc32_update(0, h + AQ_HEADER_LEN, length))
    return 0


def encode(event):
    """Encode ``event`` as one framed WAL v5 record (header + postcard payload)."""
    cdef Writer w
    _writer_init(&w)
    try:
        _encode_record(event, &w)
        return PyBytes_FromStringAndSize(<const char *>w.buf, w.len)
    finally:
        _writer_free(&w)


def encode_payload(event):
    """Encode ``event`` as an unframed postcard payload."""
    cdef Writer w
    _writer_init(&w)
    try:
        _encode_struct(_WAL_EVENT, event, &w, "WalEvent")
        return PyBytes_FromStringAndSize(<const char *>w.buf, w.len)
    finally:
        _writer_free(&w)


def encode_batch(events):
    """Encode many events into one buffer of consecutive framed records.

    An item that is not a ``WalEvent`` (or that holds a value that cannot be encoded)
    raises :class:`~actionqueue.errors.EncodeError` whose message starts with
    ``batch item <index>:``, as the pure-Python twin's does.
    """
    cdef Writer w
    cdef Py_ssize_t i = 0, n
    cdef PyObject *ahead
    cdef PyTypeObject *wal_event = _WAL_EVENT.tp
    cdef Py_ssize_t event_slot = _WAL_EVENT.offsets[1]
    cdef object event
    if PyList_Check(events) or PyTuple_Check(events):
        _writer_init_bytes(&w, Py_SIZE(events) * 64)
        try:
            # The events are scattered over the heap and encoding is bound by cache
            # misses on them: fetch the record two ahead and the event one ahead early.
            # An item's slots are read only once its type is known to be WalEvent's, and
            # the length is read again for every item: a list can shrink while it is
            # encoded (a value inside an event can run Python code, e.g. a list
            # subclass's __len__), as a Python loop over it would see.
            while i < Py_SIZE(events):
                n = Py_SIZE(events)
                if i + 2 < n:
                    aq_prefetch(PySequence_Fast_GET_ITEM(events, i + 2))
                if i + 1 < n:
                    ahead = PySequence_Fast_GET_ITEM(events, i + 1)
                    if ahead.ob_type == wal_event:
                        ahead = _get(<object>ahead, event_slot)
                        if ahead != NULL:
                            aq_prefetch(ahead)
                event = <object>PySequence_Fast_GET_ITEM(events, i)  # owned while encoded
                if Py_TYPE(event) != wal_event:
                    _not_a_wal_event(event)
                _encode_record(event, &w)
                i += 1
            return _writer_finish(&w)
        except EncodeError as exc:
            raise EncodeError(f"batch item {i}: {exc}") from None
        finally:
            _writer_free(&w)
    _writer_init_bytes(&w, 1 << 16)
    try:
        for event in events:
            if Py_TYPE(event) != wal_event:
                _not_a_wal_event(event)
            _encode_record(event, &w)
            i += 1
        return _writer_finish(&w)
    except EncodeError as exc:
        raise EncodeError(f"batch item {i}: {exc}") from None
    finally:
        _writer_free(&w)


cdef int _not_a_wal_event(object item) except -1:
    """The error for a batch item of another type (the pure-Python twin's wording)."""
    name = type(item).__name__
    raise EncodeError(f"cannot encode {name}: expected WalEvent, got {name}")
