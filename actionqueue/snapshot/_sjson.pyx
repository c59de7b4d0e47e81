# cython: language_level=3
"""The snapshot's JSON, natively: written straight from the reducer's records, and read by
one validating pass that leaves tasks and runs where they are in the bytes.

Both directions produce the same :class:`Spans` index (per task and per run: its id and
where its JSON lies in the payload), which is what the snapshot image stores and what the
reducer thaws records from. The pure-Python twin is ``_py.py`` (builtins, ``json``, and the
typed parse); the suite runs both and compares them.

Rules that a run must satisfy live here once (:c:func:`run_error`) and are applied to the
facts of a run gathered either from a reducer record or from its JSON.
"""

cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_AsUnsignedLongLong
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcmp, memcpy, memmove, memset

import numpy as np

from ..model._ids cimport IdBase
from ..state.records cimport _Attempt, _Run, _Task
from ..state.reducer cimport ReplayReducer

from .. import model as m
from ..model._ids import AttemptId, RunId, TaskId
from ..model._ids_common import raw_from
from ..state import rules as _rules
from ..state.rules import TRANSITIONS
from ..errors import SnapshotDecodeError, SnapshotMappingError

from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF, Py_INCREF

cdef extern from "Python.h":
    int _PyBytes_Resize(PyObject **bytes, Py_ssize_t newsize) except? -1
    const char *PyUnicode_AsUTF8AndSize(object s, Py_ssize_t *size) except NULL
    object PyUnicode_DecodeUTF8(const char *s, Py_ssize_t size, const char *errors)

cdef extern from "aq_crc32.h":
    uint32_t aq_crc32_update(uint32_t crc, const unsigned char *buf, size_t len) nogil

cdef extern from "aq_frame.h":
    uint32_t AQ_WAL_VERSION
    uint32_t aq_load_u32le(const unsigned char *p) nogil

cdef extern from "aq_varint.h":
    int aq_varint_read(const unsigned char **pp, const unsigned char *end, uint64_t *out, int max_bytes,
                       unsigned int last_max) nogil

cdef extern from "aq_utf8.h":
    void aq_utf8_init()
    int aq_utf8_valid(const unsigned char *s, size_t n, const unsigned char *limit) nogil

aq_utf8_init()

#: serde_json's recursion limit: deeper JSON is refused, as Rust does.
DEPTH_MAX = 128
#: Fields of one run or history entry beyond those the schema names: a limit, so that
#: duplicate detection among unknown keys stays a short linear search.
UNKNOWN_KEYS_MAX = 64
#: Of those, how many may be written with escapes (each is decoded to compare).
ESCAPED_KEYS_MAX = 8
#: The longest state or attempt history a run may have in a snapshot.
HISTORY_MAX = 1 << 24

# =========================================================================================
# Enum tables (built from the model: the one home of the names)
# =========================================================================================
cdef list _STATES = list(m.RunState)
cdef dict _STATE_INDEX = {s: i for i, s in enumerate(_STATES)}
cdef list _STATE_JSON = [b'"' + s.value.encode() + b'"' for s in _STATES]
cdef list _RESULTS = list(m.AttemptResultKind)
cdef dict _RESULT_JSON = {r: b'"' + r.value.encode() + b'"' for r in _RESULTS}
cdef list _RESULT_LIST = [_RESULT_JSON[r] for r in _RESULTS]
cdef int _NRESULTS = len(_RESULTS)
cdef PyObject *_RESULT_OBJ[16]
for _i, _s in enumerate(_RESULTS):
    _RESULT_OBJ[_i] = <PyObject *>_s
cdef const char *_RESULT_C[16]
cdef Py_ssize_t _RESULT_LEN[16]
for _i, _j in enumerate(_RESULT_LIST):
    _RESULT_C[_i] = PyBytes_AS_STRING(_j)
    _RESULT_LEN[_i] = PyBytes_GET_SIZE(_j)
cdef int _NSTATES = len(_STATES)
cdef PyObject *_STATE_OBJ[16]
for _i, _s in enumerate(_STATES):
    _STATE_OBJ[_i] = <PyObject *>_s


cdef inline int state_index(object s) except -1:
    cdef int i
    for i in range(_NSTATES):
        if <PyObject *>s == _STATE_OBJ[i]:
            return i
    raise TypeError(f"not a RunState: {s!r}")
cdef const char *_STATE_C[16]
cdef Py_ssize_t _STATE_LEN[16]
for _i, _j in enumerate(_STATE_JSON):
    _STATE_C[_i] = PyBytes_AS_STRING(_j)
    _STATE_LEN[_i] = PyBytes_GET_SIZE(_j)
cdef bint _ALLOWED[16][16]
memset(_ALLOWED, 0, sizeof(_ALLOWED))
for _a, _b in TRANSITIONS:
    _ALLOWED[_STATE_INDEX[_a]][_STATE_INDEX[_b]] = True
cdef int S_SCHEDULED = _STATE_INDEX[m.RunState.SCHEDULED]
cdef int S_RUNNING = _STATE_INDEX[m.RunState.RUNNING]
cdef int S_CANCELED = _STATE_INDEX[m.RunState.CANCELED]
cdef bint _TERMINAL[16]
cdef bint _LEASE_FORBIDDEN[16]
cdef bint _ATTEMPT_LINEAGE[16]
for _i, _s in enumerate(_STATES):  # the run rules of state/rules.py, as C tables
    _TERMINAL[_i] = _s.is_terminal
    _LEASE_FORBIDDEN[_i] = _s in _rules.LEASE_FORBIDDEN_STATES
    _ATTEMPT_LINEAGE[_i] = _s in _rules.ATTEMPT_LINEAGE_STATES

cdef const char *HEX = b"0123456789abcdef"
cdef const char *DIGITS = b"00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"
cdef uint64_t MAX_DIV10 = 1844674407370955161  # (2**64 - 1) // 10
# "n," for every byte value n, 4 bytes apart (the writer copies 4 and advances by the length)
cdef bytes _BYTE_TEXT = b"".join((str(i) + ",").encode().ljust(4, b"\0") for i in range(256))
cdef const char *BYTE_TEXT = _BYTE_TEXT
cdef unsigned char BYTE_LEN[256]
for _i in range(256):
    BYTE_LEN[_i] = len(str(_i)) + 1

# =========================================================================================
# Output buffer
# =========================================================================================
@cython.final
cdef class Out:
    """A growing byte buffer that is a bytes object (resized in place, never copied at the
    end); the first 12 bytes are kept for the snapshot frame."""
    cdef object buf  # bytes, owned here until take()
    cdef char *p
    cdef size_t n, cap

    def __cinit__(self, size_t cap=1 << 16):
        self.buf = PyBytes_FromStringAndSize(NULL, cap)
        self.p = PyBytes_AS_STRING(self.buf)
        self.cap = cap
        self.n = 0

    cdef int grow(self, size_t need) except -1:
        cdef size_t cap = self.cap * 2
        while cap < self.n + need:
            cap *= 2
        self.resize(cap)
        return 0

    cdef int resize(self, size_t cap) except -1:
        cdef PyObject *b = <PyObject *>self.buf
        Py_INCREF(self.buf)  # _PyBytes_Resize steals it (and frees it on failure)
        self.buf = None
        if _PyBytes_Resize(&b, cap) < 0:
            raise MemoryError()
        self.buf = <object>b
        Py_DECREF(self.buf)
        self.p = PyBytes_AS_STRING(self.buf)
        self.cap = cap
        return 0

    cdef inline int put(self, const char *s, size_t k) except -1:
        if self.n + k > self.cap:
            self.grow(k)
        memcpy(self.p + self.n, s, k)
        self.n += k
        return 0

    cdef inline int ch(self, char c) except -1:
        if self.n + 1 > self.cap:
            self.grow(1)
        self.p[self.n] = c
        self.n += 1
        return 0

    cdef inline int lit(self, bytes b) except -1:
        return self.put(PyBytes_AS_STRING(b), <size_t>PyBytes_GET_SIZE(b))

    cdef int u64(self, uint64_t v) except -1:
        cdef char tmp[24]
        cdef int i = 24, d
        while v >= 100:
            d = <int>(v % 100) * 2
            v //= 100
            i -= 2
            tmp[i] = DIGITS[d]
            tmp[i + 1] = DIGITS[d + 1]
        if v >= 10:
            d = <int>v * 2
            i -= 2
            tmp[i] = DIGITS[d]
            tmp[i + 1] = DIGITS[d + 1]
        else:
            i -= 1
            tmp[i] = <char>(48 + v)
        return self.put(tmp + i, 24 - i)

    cdef int integer(self, object v) except -1:
        cdef int overflow = 0
        cdef long long x
        if type(v) is not int:
            raise TypeError(f"expected an integer, got {type(v).__name__}")
        x = PyLong_AsLongLongAndOverflow(v, &overflow)
        if overflow == 0:
            if x < 0:
                self.ch(45)
                return self.u64(<uint64_t>(-(x + 1)) + 1)
            return self.u64(<uint64_t>x)
        if overflow > 0 and v <= 0xFFFFFFFFFFFFFFFF:
            return self.u64(PyLong_AsUnsignedLongLong(v))
        return self.lit(str(v).encode())

    cdef int string(self, object s) except -1:
        """A JSON string with serde_json's escapes (non-ASCII and DEL raw)."""
        cdef Py_ssize_t k
        cdef const unsigned char *u
        if type(s) is not str:
            raise TypeError(f"expected a string, got {type(s).__name__}")
        u = <const unsigned char *>PyUnicode_AsUTF8AndSize(s, &k)
        return self.utf8(u, k)

    cdef int utf8(self, const unsigned char *u, Py_ssize_t k) except -1:
        """A JSON string from UTF-8 text (already valid), with serde_json's escapes."""
        cdef Py_ssize_t i, start = 0
        cdef unsigned char c
        self.ch(34)
        for i in range(k):
            c = u[i]
            if c >= 0x20 and c != 34 and c != 92:
                continue
            if i > start:
                self.put(<const char *>u + start, i - start)
            start = i + 1
            if c == 34:
                self.put(b'\\"', 2)
            elif c == 92:
                self.put(b"\\\\", 2)
            elif c == 8:
                self.put(b"\\b", 2)
            elif c == 12:
                self.put(b"\\f", 2)
            elif c == 10:
                self.put(b"\\n", 2)
            elif c == 13:
                self.put(b"\\r", 2)
            elif c == 9:
                self.put(b"\\t", 2)
            else:
                self.put(b"\\u00", 4)
                self.ch(HEX[c >> 4])
                self.ch(HEX[c & 15])
        if k > start:
            self.put(<const char *>u + start, k - start)
        return self.ch(34)

    cdef int uuid(self, const uint8_t *raw) except -1:
        cdef int i, j = 1
        cdef char *o
        if self.n + 38 > self.cap:
            self.grow(38)
        o = self.p + self.n
        o[0] = 34
        for i in range(16):
            if i == 4 or i == 6 or i == 8 or i == 10:
                o[j] = 45
                j += 1
            o[j] = HEX[raw[i] >> 4]
            o[j + 1] = HEX[raw[i] & 15]
            j += 2
        o[37] = 34
        self.n += 38
        return 0

    cdef inline int opt_integer(self, object v) except -1:
        """``null`` or the integer (an ``Option`` field)."""
        return self.put(b"null", 4) if v is None else self.integer(v)

    cdef inline int opt_string(self, object v) except -1:
        return self.put(b"null", 4) if v is None else self.string(v)

    cdef int ident(self, object v) except -1:
        if not isinstance(v, IdBase):
            raise TypeError(f"expected an identifier, got {type(v).__name__}")
        return self.uuid((<IdBase>v).raw)

    cdef int byte_array(self, const unsigned char *b, Py_ssize_t k) except -1:
        """``[n,n,...]``: each byte's digits and comma copied from a table."""
        cdef Py_ssize_t i
        cdef char *q
        if self.n + 4 * k + 2 > self.cap:
            self.grow(4 * k + 2)
        q = self.p + self.n
        q[0] = 91
        q += 1
        for i in range(k):
            memcpy(q, &BYTE_TEXT[b[i] * 4], 4)
            q += BYTE_LEN[b[i]]
        if k:
            q -= 1  # the last comma
        q[0] = 93
        self.n = q + 1 - self.p
        return 0

    cdef int builtins(self, object v, int depth) except -1:
        """Any JSON builtins value (dict with str keys, list, tuple, str, int, bool, None)."""
        cdef bint first = True
        if depth > DEPTH_MAX:
            raise SnapshotDecodeError("Failed to encode snapshot: nested too deeply")
        if v is None:
            return self.put(b"null", 4)
        if v is True:
            return self.put(b"true", 4)
        if v is False:
            return self.put(b"false", 5)
        t = type(v)
        if t is str:
            return self.string(v)
        if t is int:
            return self.integer(v)
        if t is list or t is tuple:
            self.ch(91)
            for x in v:
                if not first:
                    self.ch(44)
                first = False
                self.builtins(x, depth + 1)
            return self.ch(93)
        if t is dict:
            self.ch(123)
            for key, x in (<dict>v).items():
                if not first:
                    self.ch(44)
                first = False
                self.string(key)
                self.ch(58)
                self.builtins(x, depth + 1)
            return self.ch(125)
        raise TypeError(f"cannot write {t.__name__} into a snapshot")

    cdef bytes take(self):
        self.resize(self.n)
        out = self.buf
        self.buf = PyBytes_FromStringAndSize(NULL, 0)
        self.p = PyBytes_AS_STRING(self.buf)
        self.n = self.cap = 0
        return out


# =========================================================================================
# Model values, written by plans compiled from the wire schema (``__aq_fields__``)
# =========================================================================================
DEF K_INT = 1
DEF K_STR = 2
DEF K_BYTES = 3
DEF K_ID = 4
DEF K_ENUM = 5
DEF K_NAMED = 6
DEF K_OPT = 7
DEF K_VEC = 8
DEF K_STRUCT = 9
DEF K_UNION = 10


@cython.final
cdef class Plan:
    """One node of a wire-schema spec, for writing a value's JSON and for transcoding
    JSON to the value's postcard bytes (which the codec then decodes and validates)."""
    cdef int kind
    cdef int ik  # ints: 0 u8, 1 u32, 2 u64, 3 i32
    cdef Plan inner
    cdef list fields  # struct: [(key bytes, attribute name, Plan, skip when None)]
    cdef dict table  # enum: member -> JSON bytes; union: class -> (name JSON, Plan or None)
    cdef Py_ssize_t units  # named: number of unit variants
    cdef dict by_name  # enum / named units: name -> index; union: name -> (index, Plan or None)
    cdef list defaults  # struct: per field, the postcard bytes of its serde default, or None
    cdef list plans  # struct: per field, its Plan
    cdef list attrs  # struct: per field, its attribute name
    cdef list jkeys  # struct: per field, '"name":'
    cdef bint skip_none[32]  # struct: per field, whether None is left out (serde's skip_serializing_if)
    cdef Keys keys  # struct: its field names; enum / union: its variant names
    cdef list entries  # enum: per name, the variant index; union: per name, (index, Plan or None)
    cdef list by_index  # enum / named units: JSON name per index; union: (name JSON, Plan or None) per index
    cdef int id_slot  # id: 1 + the export's id column it feeds (task, run, attempt), or 0


cdef dict _PLANS = {}


def _plan(tuple spec):
    from ..model.json import _SKIP_NONE, variant_name

    cdef Plan p = Plan()
    kind = spec[0]
    if kind in ("u8", "u32", "u64", "i32"):
        p.kind = K_INT
        p.ik = ("u8", "u32", "u64", "i32").index(kind)
    elif kind == "str":
        p.kind = K_STR
    elif kind == "bytes":
        p.kind = K_BYTES
    elif kind == "id":
        p.kind = K_ID
    elif kind == "enum":
        p.kind = K_ENUM
        p.table = {e: b'"' + e.value.encode() + b'"' for e in spec[1]}
        p.by_name = {e.value: e.index for e in spec[1]}
        p.keys = Keys(spec[1].__name__, list(p.by_name))
        p.entries = list(p.by_name.values())
        p.by_index = [None] * len(p.table)
        for e, text in p.table.items():
            p.by_index[e.index] = text
    elif kind == "named":
        p.kind = K_NAMED
        p.units = len(spec[1]._UNIT_NAMES)
        p.by_name = {name: i for i, name in enumerate(spec[1]._UNIT_NAMES)}
        p.by_index = [b'"' + name.encode() + b'"' for name in spec[1]._UNIT_NAMES]
    elif kind in ("opt", "vec"):
        p.kind = K_OPT if kind == "opt" else K_VEC
        p.inner = _plan(spec[1])
    elif kind == "struct":
        return _struct_plan(spec[1])
    elif kind == "union":
        p.kind = K_UNION
        p.table = {}
        p.by_name = {}
        for index, cls in enumerate(spec[1]._variants):
            name = b'"' + variant_name(cls).encode() + b'"'
            p.table[cls] = (name, _struct_plan(cls) if cls.__aq_fields__ else None)
            p.by_name[variant_name(cls)] = (index, p.table[cls][1])
        p.keys = Keys(spec[1].__name__, list(p.by_name))
        p.entries = list(p.by_name.values())
        p.by_index = [p.table[cls] for cls in spec[1]._variants]
    else:
        raise AssertionError(spec)
    return p


def _struct_plan(cls):
    from ..codec._codec_py import _encoder
    from ..model.json import _DEFAULTS, _SKIP_NONE

    cdef Plan p = _PLANS.get(cls)
    if p is not None:
        return p
    p = Plan()
    p.kind = K_STRUCT
    p.fields = []
    p.defaults = []
    _PLANS[cls] = p
    skip = _SKIP_NONE.get(cls, frozenset())
    defaults = _DEFAULTS.get(cls, {})
    for name, spec in cls.__aq_fields__:
        p.fields.append((b'"' + name.encode() + b'":', name, _plan(spec), name in skip))
        if name in defaults:
            out = bytearray()
            _encoder(spec)(defaults[name], out)
            p.defaults.append(bytes(out))
        else:
            p.defaults.append(None)
    p.keys = Keys(cls.__name__, [name for name, _ in cls.__aq_fields__])
    p.plans = [f[2] for f in p.fields]
    p.attrs = [f[1] for f in p.fields]
    p.jkeys = [f[0] for f in p.fields]
    assert len(p.fields) <= 32
    for i, f in enumerate(p.fields):
        p.skip_none[i] = f[3]
    return p


cdef int write_value(Out o, Plan p, object v) except -1:
    cdef int k = p.kind
    cdef bint first
    cdef Py_ssize_t i
    cdef Plan fp
    if k == K_INT:
        return o.integer(v)
    if k == K_STR:
        return o.string(v)
    if k == K_ID:
        return o.ident(v)
    if k == K_OPT:
        if v is None:
            return o.put(b"null", 4)
        return write_value(o, p.inner, v)
    if k == K_ENUM:
        return o.lit(p.table[v])
    if k == K_STRUCT:
        o.ch(123)
        first = True
        for i in range(len(p.plans)):
            x = getattr(v, <str>p.attrs[i])
            if x is None and p.skip_none[i]:
                continue
            if not first:
                o.ch(44)
            first = False
            o.lit(<bytes>p.jkeys[i])
            write_value(o, <Plan>p.plans[i], x)
        return o.ch(125)
    if k == K_BYTES:
        if type(v) is not bytes:
            raise TypeError(f"expected bytes, got {type(v).__name__}")
        return o.byte_array(<const unsigned char *>PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v))
    if k == K_VEC:
        o.ch(91)
        first = True
        for x in v:
            if not first:
                o.ch(44)
            first = False
            write_value(o, p.inner, x)
        return o.ch(93)
    if k == K_UNION:
        name, fp = p.table[type(v)]
        if fp is None:
            return o.lit(name)
        o.ch(123)
        o.lit(name)
        o.ch(58)
        write_value(o, fp, v)
        return o.ch(125)
    if k == K_NAMED:
        if v.index >= p.units:
            o.put(b'{"Custom":', 10)
            o.string(v.name)
            return o.ch(125)
        return o.string(v.name)
    raise AssertionError(k)


# =========================================================================================
# The facts of one run, and the rules on them (the one home of snapshot run validation)
# =========================================================================================
cdef struct Step:
    int frm  # -1: none
    int to
    uint64_t ts

cdef struct Att:
    uint8_t id[16]
    bint finished

cdef struct Facts:
    uint8_t id[16]
    uint8_t task_id[16]
    int state
    bint active
    uint8_t active_id[16]
    uint64_t attempt_count
    uint64_t created_at
    bint lease
    Step *steps
    Py_ssize_t nsteps, capsteps
    Att *atts
    Py_ssize_t natts, capatts


cdef int grow_array(void **items, Py_ssize_t *cap, size_t item_size, str what) except -1:
    """Double the capacity of a run's history array (``items``), up to :data:`HISTORY_MAX`."""
    cdef void *q
    if cap[0] >= HISTORY_MAX:
        raise SnapshotDecodeError(f"Failed to decode snapshot: a run's {what} history is too long")
    q = realloc(items[0], item_size * (cap[0] * 2 + 16))
    if q == NULL:
        raise MemoryError()
    items[0] = q
    cap[0] = cap[0] * 2 + 16
    return 0


cdef int push_step(Facts *f, int frm, int to, uint64_t ts) except -1:
    if f.nsteps == f.capsteps:
        grow_array(<void **>&f.steps, &f.capsteps, sizeof(Step), "state")
    f.steps[f.nsteps].frm = frm
    f.steps[f.nsteps].to = to
    f.steps[f.nsteps].ts = ts
    f.nsteps += 1
    return 0


cdef Att *push_att(Facts *f) except NULL:
    if f.natts == f.capatts:
        grow_array(<void **>&f.atts, &f.capatts, sizeof(Att), "attempt")
    f.natts += 1
    return &f.atts[f.natts - 1]


cdef inline bint is_nil(const uint8_t *raw):
    cdef int i
    for i in range(16):
        if raw[i]:
            return False
    return True


cdef int run_rule(Facts *f):
    """0 when the run keeps every rule (the common case, decided without Python objects)."""
    cdef Py_ssize_t i
    cdef int prev
    cdef bint found = False, unfinished = False
    if is_nil(f.id) or is_nil(f.task_id):
        return 1
    if f.active and (not _ATTEMPT_LINEAGE[f.state] or f.attempt_count == 0):
        return 1
    if not (_TERMINAL[f.state] and f.nsteps == 0 and f.natts == 0 and not f.active):
        if f.nsteps == 0 or f.steps[0].frm != -1 or f.steps[0].to != S_SCHEDULED or f.steps[0].ts != f.created_at:
            return 1
        prev = f.steps[0].to
        for i in range(1, f.nsteps):
            if f.steps[i].frm == -1 or f.steps[i].frm != prev or not _ALLOWED[f.steps[i].frm][f.steps[i].to]:
                return 1
            prev = f.steps[i].to
        if prev != f.state or <uint64_t>f.natts != f.attempt_count:
            return 1
    if f.active:
        for i in range(f.natts):
            if memcmp(f.atts[i].id, f.active_id, 16) == 0:
                found = True
                unfinished = not f.atts[i].finished
        if not found or not unfinished:
            return 1
    if f.lease and _LEASE_FORBIDDEN[f.state]:
        return 1
    return 0


cdef object run_error(Facts *f):
    """The SnapshotMappingError of a run whose facts break a rule, or None (rules and
    their order as ``validate_snapshot`` documents them)."""
    cdef Py_ssize_t i
    cdef int prev
    cdef bint trimmed, found, unfinished
    cdef int code = run_rule(f)
    if code == 0:
        return None
    rid = RunId._from_raw(PyBytes_FromStringAndSize(<char *>f.id, 16))
    state = _STATES[f.state].value
    if is_nil(f.id):
        return SnapshotMappingError("InvalidRunId", run_id=rid)
    if is_nil(f.task_id):
        return SnapshotMappingError("InvalidTaskId", run_id=rid)
    if f.active and not _ATTEMPT_LINEAGE[f.state]:
        return SnapshotMappingError("InvalidAttemptLineageState", run_id=rid, state=state)
    if f.active and f.attempt_count == 0:
        return SnapshotMappingError("InvalidAttemptLineageCount", run_id=rid)
    trimmed = _TERMINAL[f.state] and f.nsteps == 0 and f.natts == 0 and not f.active
    if not trimmed:
        if f.nsteps == 0 or f.steps[0].frm != -1 or f.steps[0].to != S_SCHEDULED or f.steps[0].ts != f.created_at:
            return SnapshotMappingError("MissingInitialRunStateHistory", run_id=rid)
        prev = f.steps[0].to
        for i in range(1, f.nsteps):
            if f.steps[i].frm == -1 or f.steps[i].frm != prev or not _ALLOWED[f.steps[i].frm][f.steps[i].to]:
                frm = None if f.steps[i].frm == -1 else _STATES[f.steps[i].frm].value
                return SnapshotMappingError("InvalidRunStateHistoryTransition", run_id=rid,
                                            **{"from": frm, "to": _STATES[f.steps[i].to].value})
            prev = f.steps[i].to
        if prev != f.state:
            return SnapshotMappingError("InvalidRunStateHistoryTransition", run_id=rid,
                                        **{"from": _STATES[prev].value, "to": state})
        if <uint64_t>f.natts != f.attempt_count:
            return SnapshotMappingError("InvalidAttemptHistoryCount", run_id=rid,
                                        attempt_count=f.attempt_count, history=f.natts)
    if f.active:
        found = False
        unfinished = False
        for i in range(f.natts):
            if memcmp(f.atts[i].id, f.active_id, 16) == 0:
                found = True
                unfinished = not f.atts[i].finished
        if not found or not unfinished:
            aid = AttemptId._from_raw(PyBytes_FromStringAndSize(<char *>f.active_id, 16))
            return SnapshotMappingError("InvalidActiveAttemptHistory", run_id=rid, attempt_id=aid)
    if f.lease and _LEASE_FORBIDDEN[f.state]:
        return SnapshotMappingError("InvalidLeasePresence", run_id=rid, state=state)
    return None


@cython.final
cdef class FactsBox:
    cdef Facts f

    def __dealloc__(self):
        free(self.f.steps)
        free(self.f.atts)

    cdef void reset(self):
        self.f.nsteps = 0
        self.f.natts = 0
        self.f.active = False
        self.f.lease = False


# =========================================================================================
# The index of a snapshot payload: where each task and run lies
# =========================================================================================
@cython.final
cdef class Spans:
    """Per task and per run (in payload order, which is id order for snapshots we write):
    its id, the payload offsets of its JSON, and for runs the task id. ``top`` maps each
    other top-level key to the span of its value."""
    cdef public object task_ids, task_start, task_end, task_canon
    cdef public object run_ids, run_task, run_start, run_end, run_canon
    cdef public dict top

    def __init__(self, Py_ssize_t ntasks, Py_ssize_t nruns):
        self.task_ids = np.zeros((ntasks, 16), dtype=np.uint8)
        self.task_start = np.zeros(ntasks, dtype=np.uint64)
        self.task_end = np.zeros(ntasks, dtype=np.uint64)
        self.run_ids = np.zeros((nruns, 16), dtype=np.uint8)
        self.run_task = np.zeros((nruns, 16), dtype=np.uint8)
        self.run_start = np.zeros(nruns, dtype=np.uint64)
        self.run_end = np.zeros(nruns, dtype=np.uint64)
        # 1 where the record's text is what our writer writes (it may be copied as it is)
        self.task_canon = np.ones(ntasks, dtype=np.uint8)
        self.run_canon = np.ones(nruns, dtype=np.uint8)
        self.top = {}

    def shrink(self, Py_ssize_t ntasks, Py_ssize_t nruns):
        """Keep the first ``ntasks`` / ``nruns`` entries."""
        self.task_ids = self.task_ids[:ntasks]
        self.task_start = self.task_start[:ntasks]
        self.task_end = self.task_end[:ntasks]
        self.run_ids = self.run_ids[:nruns]
        self.run_task = self.run_task[:nruns]
        self.run_start = self.run_start[:nruns]
        self.run_end = self.run_end[:nruns]
        self.task_canon = self.task_canon[:ntasks]
        self.run_canon = self.run_canon[:nruns]


cdef list _sorted_items(dict d):
    """``[(id, value)]`` of a dict keyed by identifiers, in byte order of the ids."""
    cdef list ids = list(d.keys()), values = list(d.values())
    return [(ids[j], values[j]) for j in _id_order(ids)]


cdef list _id_order(list ids):
    cdef Py_ssize_t i, n = len(ids)
    keys = np.empty((n, 16), dtype=np.uint8)
    cdef uint8_t[:, ::1] kv = keys
    for i in range(n):
        memcpy(&kv[i, 0], (<IdBase>ids[i]).raw, 16)
    k = keys.view(">u8").reshape(n, 2)
    return np.lexsort((k[:, 1], k[:, 0])).tolist()


# =========================================================================================
# Writing the payload from a reducer
# =========================================================================================
cdef int run_facts(FactsBox box, _Run rec, object base) except -1:
    cdef Facts *f = &box.f
    cdef Att *a
    cdef _Attempt att
    box.reset()
    memcpy(f.id, (<IdBase>base.id).raw, 16)
    memcpy(f.task_id, (<IdBase>base.task_id).raw, 16)
    f.state = state_index(rec.state)
    f.created_at = base.created_at
    f.attempt_count = rec.attempt_count
    if rec.attempt_id is not None:
        f.active = True
        memcpy(f.active_id, (<IdBase>rec.attempt_id).raw, 16)
    f.lease = rec.lease_owner is not None
    if rec.history is not None:
        for frm, to, ts in rec.history:
            push_step(f, -1 if frm is None else state_index(frm), state_index(to), ts)
    if rec.attempts is not None:
        for att in rec.attempts:
            a = push_att(f)
            memcpy(a.id, (<IdBase>att.attempt_id).raw, 16)
            a.finished = att.finished_at is not None
    return 0


cdef inline int result_index(object r) except -1:
    cdef int i
    for i in range(_NRESULTS):
        if <PyObject *>r == _RESULT_OBJ[i]:
            return i
    raise TypeError(f"not an AttemptResultKind: {r!r}")


cdef inline int put_state(Out o, object s) except -1:
    cdef int i = state_index(s)
    return o.put(_STATE_C[i], _STATE_LEN[i])


cdef int write_run(Out o, _Run rec, object base) except -1:
    cdef _Attempt a
    cdef bint first = True
    cdef int k
    o.put(b'{"run_instance":{"id":', 22)
    o.uuid((<IdBase>base.id).raw)
    o.put(b',"task_id":', 11)
    o.uuid((<IdBase>base.task_id).raw)
    o.put(b',"state":', 9)
    put_state(o, rec.state)
    o.put(b',"current_attempt_id":', 22)
    if rec.attempt_id is None:
        o.put(b"null", 4)
    else:
        o.ident(rec.attempt_id)
    o.put(b',"attempt_count":', 17)
    o.integer(rec.attempt_count)
    o.put(b',"created_at":', 14)
    o.integer(base.created_at)
    o.put(b',"scheduled_at":', 16)
    o.integer(base.scheduled_at)
    o.put(b',"effective_priority":', 22)
    o.integer(base.effective_priority)
    o.put(b',"last_state_change_at":', 24)
    o.integer(rec.changed_at)
    o.put(b'},"state_history":[', 19)
    if rec.history is not None:
        for frm, to, ts in rec.history:
            if not first:
                o.ch(44)
            first = False
            o.put(b'{"from":', 8)
            if frm is None:
                o.put(b"null", 4)
            else:
                put_state(o, frm)
            o.put(b',"to":', 6)
            put_state(o, to)
            o.put(b',"timestamp":', 13)
            o.integer(ts)
            o.ch(125)
    o.put(b'],"attempts":[', 14)
    first = True
    if rec.attempts is not None:
        for a in rec.attempts:
            if not first:
                o.ch(44)
            first = False
            o.put(b'{"attempt_id":', 14)
            o.ident(a.attempt_id)
            o.put(b',"started_at":', 14)
            o.integer(a.started_at)
            o.put(b',"finished_at":', 15)
            o.opt_integer(a.finished_at)
            o.put(b',"result":', 10)
            if a.result is None:
                o.put(b"null", 4)
            else:
                k = result_index(a.result)
                o.put(_RESULT_C[k], _RESULT_LEN[k])
            o.put(b',"error":', 9)
            o.opt_string(a.error)
            o.put(b',"output":', 10)
            if a.output is None:
                o.put(b"null", 4)
            else:
                o.byte_array(<const unsigned char *>PyBytes_AS_STRING(a.output), PyBytes_GET_SIZE(a.output))
            o.ch(125)
    o.put(b'],"lease":', 10)
    if rec.lease_owner is None:
        o.put(b"null", 4)
    else:
        o.put(b'{"owner":', 9)
        o.string(rec.lease_owner)
        o.put(b',"expiry":', 10)
        o.integer(rec.lease_expiry)
        o.put(b',"acquired_at":', 15)
        o.integer(rec.lease_acquired_at)
        o.put(b',"updated_at":', 14)
        o.integer(rec.lease_updated_at)
        o.ch(125)
    return o.ch(125)


cdef int write_task(Out o, _Task t, Plan spec_plan) except -1:
    o.put(b'{"task_spec":', 13)
    write_value(o, spec_plan, t.spec)
    o.put(b',"created_at":', 14)
    o.integer(t.created_at)
    o.put(b',"updated_at":null,"canceled_at":', 33)
    o.opt_integer(t.canceled_at)
    return o.ch(125)


cdef inline void store_u32(char *p, uint32_t v):
    p[0] = <char>(v & 0xFF)
    p[1] = <char>((v >> 8) & 0xFF)
    p[2] = <char>((v >> 16) & 0xFF)
    p[3] = <char>(v >> 24)


cdef bytes framed(Out o, uint32_t version):
    """The frame (version, length, CRC-32 of the payload) into the 12 reserved bytes."""
    cdef size_t length = o.n - 12
    if length > 0xFFFFFFFF:
        raise SnapshotDecodeError(f"snapshot JSON is {length} bytes, above the u32 length field")
    store_u32(o.p, version)
    store_u32(o.p + 4, <uint32_t>length)
    store_u32(o.p + 8, aq_crc32_update(0, <const unsigned char *>o.p + 12, length))
    return o.take()


cdef class _Cold:
    """The records of a reducer still in a snapshot's bytes, in id order: copied into the
    new snapshot as they are (unchanged since that snapshot was validated)."""
    cdef const uint8_t[::1] payload
    cdef const uint8_t[:, ::1] ids
    cdef const uint64_t[::1] start, end
    cdef const int64_t[::1] rows
    cdef const uint8_t[:, ::1] task  # runs: their task ids
    cdef Py_ssize_t next

    def __init__(self, payload, ids, start, end, rows, task=None):
        self.payload = payload
        self.ids = ids
        self.start = start
        self.end = end
        self.rows = rows
        self.task = task if task is not None else ids
        self.next = 0

    cdef inline bint more(self):
        return self.next < self.rows.shape[0]

    cdef inline const uint8_t *id_at(self):
        return &self.ids[self.rows[self.next], 0]


cdef _Cold _no_cold():
    empty = np.zeros((0, 16), dtype=np.uint8)
    return _Cold(np.zeros(1, dtype=np.uint8), empty, np.zeros(0, np.uint64), np.zeros(0, np.uint64),
                 np.zeros(0, np.int64))


cdef inline int copy_cold(Out o, _Cold c, uint8_t *id_out, uint8_t *task_out) except -1:
    cdef int64_t row = c.rows[c.next]
    cdef uint64_t a = c.start[row], b = c.end[row]
    if not a < b <= <uint64_t>c.payload.shape[0]:
        raise SnapshotDecodeError("Failed to encode snapshot: a cold record's span lies outside its snapshot")
    o.put(<const char *>&c.payload[a], b - a)
    memcpy(id_out, &c.ids[row, 0], 16)
    if task_out != NULL:
        memcpy(task_out, &c.task[row, 0], 16)
    c.next += 1
    return 0


def encode_projection(ReplayReducer r, uint64_t timestamp, uint32_t version, uint32_t schema,
                      dict small, cold_tasks=None, cold_runs=None):
    """``(file bytes, Spans, first run rule error or None)`` of the reducer's projection.

    ``small`` holds the other sections' builtins (``engine`` and the lists after ``runs``,
    in file order). Records still in a snapshot's bytes (``cold_tasks`` / ``cold_runs``:
    :class:`_Cold`) are merged in id order and copied as they are: a snapshot taken again
    costs what changed since the last one plus a copy of the rest."""
    cdef _Run rec
    cdef _Task t
    cdef Py_ssize_t i, j, ntasks, nruns
    cdef Plan spec_plan = _struct_plan(m.TaskSpec)
    cdef FactsBox box = FactsBox()
    cdef _Cold ct = cold_tasks if cold_tasks is not None else _no_cold()
    cdef _Cold cr = cold_runs if cold_runs is not None else _no_cold()
    cdef list tasks = _sorted_items(r._tasks)
    cdef list runs = _sorted_items(r._runs)
    ntasks = len(tasks) + ct.rows.shape[0]
    nruns = len(runs) + cr.rows.shape[0]
    cdef Spans spans = Spans(ntasks, nruns)
    cdef uint8_t[:, ::1] tid_v = spans.task_ids, rid_v = spans.run_ids, rtask_v = spans.run_task
    cdef uint64_t[::1] ts_v = spans.task_start, te_v = spans.task_end
    cdef uint64_t[::1] rs_v = spans.run_start, re_v = spans.run_end
    cdef size_t estimate = 1200 * (len(runs) + len(tasks)) + (ct.payload.shape[0] if ct.rows.shape[0] else 0)
    if cr.rows.shape[0] and cr.payload.shape[0] > (ct.payload.shape[0] if ct.rows.shape[0] else 0):
        estimate += cr.payload.shape[0]
    cdef Out o = Out(max(<size_t>1 << 16, estimate))
    first_error = None
    o.n = 12
    o.put(b'{"version":', 11)
    o.u64(version)
    o.put(b',"timestamp":', 13)
    o.u64(timestamp)
    o.put(b',"metadata":{"schema_version":', 30)
    o.u64(schema)
    o.put(b',"wal_sequence":', 16)
    o.u64(r._latest_sequence)
    o.put(b',"task_count":', 14)
    o.u64(ntasks)
    o.put(b',"run_count":', 13)
    o.u64(nruns)
    o.put(b'},"tasks":[', 11)
    j = 0
    for i in range(ntasks):
        if i:
            o.ch(44)
        ts_v[i] = o.n - 12
        if ct.more() and (j == len(tasks) or memcmp(ct.id_at(), (<IdBase>tasks[j][0]).raw, 16) < 0):
            copy_cold(o, ct, &tid_v[i, 0], NULL)
        else:
            tid, t = tasks[j]
            j += 1
            memcpy(&tid_v[i, 0], (<IdBase>tid).raw, 16)
            write_task(o, t, spec_plan)
        te_v[i] = o.n - 12
    o.put(b'],"runs":[', 10)
    j = 0
    for i in range(nruns):
        if i:
            o.ch(44)
        rs_v[i] = o.n - 12
        if cr.more() and (j == len(runs) or memcmp(cr.id_at(), (<IdBase>runs[j][0]).raw, 16) < 0):
            copy_cold(o, cr, &rid_v[i, 0], &rtask_v[i, 0])
            re_v[i] = o.n - 12
            continue
        rid, rec = runs[j]
        j += 1
        base = rec.base
        if rec.attempt_id is not None and rec.state is not m.RunState.RUNNING:
            raise SnapshotDecodeError(
                f"Failed to decode snapshot: runs[{i}].run_instance: active attempt_id is only valid in Running state")
        memcpy(&rid_v[i, 0], (<IdBase>rid).raw, 16)
        memcpy(&rtask_v[i, 0], (<IdBase>base.task_id).raw, 16)
        write_run(o, rec, base)
        re_v[i] = o.n - 12
        if first_error is None:
            run_facts(box, rec, base)
            first_error = run_error(&box.f)
    o.ch(93)
    for key, value in small.items():
        o.ch(44)
        o.string(key)
        o.ch(58)
        start = o.n - 12
        o.builtins(value, 1)
        spans.top[key] = (start, o.n - 12)
    o.ch(125)
    return framed(o, version), spans, first_error


def encode_builtins(object snapshot, uint32_t version):
    """The file bytes of a snapshot given as JSON builtins (serde_json's compact form)."""
    cdef Out o = Out(1 << 16)
    o.n = 12
    o.builtins(snapshot, 0)
    return framed(o, version)


def crc32(data):
    """CRC-32 (zlib's) of a bytes-like object."""
    cdef const unsigned char[::1] v = data
    if v.shape[0] == 0:
        return 0
    return aq_crc32_update(0, &v[0], v.shape[0])


# =========================================================================================
# Reading: a strict JSON cursor (serde_json's grammar and limits)
# =========================================================================================
cdef struct Cur:
    const uint8_t *base
    const uint8_t *p
    const uint8_t *end
    int depth
    # how often the text differed from what our writer (serde's compact form) would write:
    # whitespace, escapes, unknown or missing or reordered fields, -0. A record read
    # without any is copied as it is into the next snapshot; any other is re-encoded.
    Py_ssize_t odd


cdef object bad(Cur *c, str what):
    return SnapshotDecodeError(f"Failed to decode snapshot: {what} at byte {c.p - c.base}")


cdef inline int ws(Cur *c) except -1:
    cdef const uint8_t *start = c.p
    while c.p < c.end and (c.p[0] == 32 or c.p[0] == 10 or c.p[0] == 13 or c.p[0] == 9):
        c.p += 1
    if c.p != start:
        c.odd += 1
    return 0


cdef inline int peek(Cur *c) except -2:
    if c.p < c.end and c.p[0] > 32:  # compact JSON: no whitespace to skip
        return c.p[0]
    ws(c)
    if c.p >= c.end:
        raise bad(c, "EOF while parsing")
    return c.p[0]


cdef inline int expect(Cur *c, uint8_t ch, str what) except -1:
    if peek(c) != ch:
        raise bad(c, "expected " + what)
    c.p += 1
    return 0


cdef signed char _HEXVAL[256]
for _i in range(256):
    _HEXVAL[_i] = -1
for _i, _ch in enumerate("0123456789abcdef"):
    _HEXVAL[ord(_ch)] = _i
for _i, _ch in enumerate("ABCDEF"):
    _HEXVAL[ord(_ch)] = 10 + _i


cdef inline int hexval(uint8_t h):
    return _HEXVAL[h]


cdef int u_escape(Cur *c, const uint8_t *q) except -2:
    """The code unit of the 4 hex digits at ``q``."""
    cdef int i, v = 0, h
    if c.end - q < 4:
        raise bad(c, "EOF while parsing a string")
    for i in range(4):
        h = hexval(q[i])
        if h < 0:
            raise bad(c, "invalid escape")
        v = v * 16 + h
    return v


cdef inline bint has_special(uint64_t w):
    """Whether one of the 8 bytes of ``w`` is '"', '\\' or below 0x20."""
    cdef uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL
    cdef uint64_t quote = w ^ (ones * 34), slash = w ^ (ones * 92)
    cdef uint64_t zq = (quote - ones) & ~quote, zs = (slash - ones) & ~slash
    cdef uint64_t low = (w - ones * 0x20) & ~w
    return ((zq | zs | low) & highs) != 0


cdef int string_span(Cur *c, const uint8_t **s, Py_ssize_t *n) except -1:
    """Consume a string; ``*s``/``*n`` the raw bytes between the quotes. Returns 1 when
    they hold escapes (decode with :func:`_unescape`), else 0."""
    cdef const uint8_t *q
    cdef uint8_t b
    cdef int esc = 0, u
    cdef uint64_t w
    if peek(c) != 34:
        raise bad(c, "expected a string")
    q = c.p + 1
    while True:
        # eight plain bytes at a time (no quote, backslash or control character)
        while c.end - q >= 8:
            memcpy(&w, q, 8)
            if has_special(w):
                break
            q += 8
        if q >= c.end:
            raise bad(c, "EOF while parsing a string")
        b = q[0]
        if b == 34:
            break
        if b < 0x20:
            raise bad(c, "control character in a string")
        if b == 92:
            esc = 1
            if q + 1 >= c.end:
                raise bad(c, "EOF while parsing a string")
            b = q[1]
            if b == 117:
                u = u_escape(c, q + 2)
                q += 6
                if 0xDC00 <= u <= 0xDFFF:
                    raise bad(c, "lone trailing surrogate in hex escape")
                if 0xD800 <= u <= 0xDBFF:
                    if c.end - q < 6 or q[0] != 92 or q[1] != 117:
                        raise bad(c, "lone leading surrogate in hex escape")
                    u = u_escape(c, q + 2)
                    if not 0xDC00 <= u <= 0xDFFF:
                        raise bad(c, "lone leading surrogate in hex escape")
                    q += 6
                continue
            if b not in (34, 92, 47, 98, 102, 110, 114, 116):
                raise bad(c, "invalid escape")
            q += 2
            continue
        q += 1
    s[0] = c.p + 1
    n[0] = q - (c.p + 1)
    c.p = q + 1
    c.odd += esc
    return esc


cdef object _unescape(const uint8_t *s, Py_ssize_t n):
    import json
    return json.loads(b'"' + PyBytes_FromStringAndSize(<const char *>s, n) + b'"')


cdef object str_value(Cur *c):
    cdef const uint8_t *s
    cdef Py_ssize_t n
    if string_span(c, &s, &n):
        return _unescape(s, n)
    return PyUnicode_DecodeUTF8(<const char *>s, n, NULL)


cdef int number_span(Cur *c, bint *integer, bint *negative) except -1:
    """Consume a JSON number (strict grammar); tell whether it is an integer literal."""
    cdef const uint8_t *q = c.p
    integer[0] = True
    negative[0] = False
    if q < c.end and q[0] == 45:
        negative[0] = True
        q += 1
    if q >= c.end or not 48 <= q[0] <= 57:
        raise bad(c, "invalid number")
    if q[0] == 48:
        q += 1
    else:
        while q < c.end and 48 <= q[0] <= 57:
            q += 1
    if q < c.end and q[0] == 46:
        integer[0] = False
        q += 1
        if q >= c.end or not 48 <= q[0] <= 57:
            raise bad(c, "invalid number")
        while q < c.end and 48 <= q[0] <= 57:
            q += 1
    if q < c.end and (q[0] == 101 or q[0] == 69):
        integer[0] = False
        q += 1
        if q < c.end and (q[0] == 43 or q[0] == 45):
            q += 1
        if q >= c.end or not 48 <= q[0] <= 57:
            raise bad(c, "invalid number")
        while q < c.end and 48 <= q[0] <= 57:
            q += 1
    c.p = q
    return 0


cdef uint64_t read_int(Cur *c, bint *negative, str what) except? 0:
    """An integer literal's magnitude (its sign in ``negative``)."""
    cdef const uint8_t *q
    cdef bint integer
    cdef uint64_t v = 0, d
    peek(c)
    q = c.p
    number_span(c, &integer, negative)
    if not integer:
        raise bad(c, f"{what}: expected an integer")
    if negative[0]:
        q += 1
    while q < c.p:
        d = q[0] - 48
        if v > MAX_DIV10 or (v == MAX_DIV10 and d > 5):
            raise bad(c, f"{what}: integer out of range")
        v = v * 10 + d
        q += 1
    return v


cdef uint64_t read_u64(Cur *c, uint64_t hi, str what) except? 0:
    """An integer literal in 0..=hi (``-0`` is 0, as both serde_json and ``json`` read it)."""
    cdef bint negative
    cdef uint64_t v = read_int(c, &negative, what)
    if negative:
        c.odd += 1
    if (negative and v != 0) or v > hi:
        raise bad(c, f"{what}: expected an integer in 0..={hi}")
    return v


cdef int64_t read_i32(Cur *c, str what) except? 0:
    cdef bint negative
    cdef uint64_t v = read_int(c, &negative, what)
    if v > (2147483648 if negative else 2147483647):
        raise bad(c, f"{what}: expected an integer in -2147483648..=2147483647")
    return -<int64_t>v if negative else <int64_t>v


cdef inline bint is_null(Cur *c) except -1:
    if peek(c) == 110:
        if c.end - c.p >= 4 and memcmp(c.p, b"null", 4) == 0:
            c.p += 4
            return True
        raise bad(c, "expected a value")
    return False


cdef int skip(Cur *c) except -1:
    """Consume any JSON value (duplicate keys refused at every depth, as both readers do)."""
    cdef int b = peek(c)
    cdef const uint8_t *s
    cdef Py_ssize_t n
    cdef bint integer, negative
    cdef uint64_t seen = 0
    cdef Obj o
    if b == 34:
        string_span(c, &s, &n)
    elif b == 123:
        if open_object(c, K_ANY, &o):
            while True:
                next_key(c, K_ANY, &o, &seen)
                skip(c)
                if not more(c, 125):
                    break
    elif b == 91:
        if open_array(c, "array"):
            while True:
                skip(c)
                if not more(c, 93):
                    break
    elif b == 116 and c.end - c.p >= 4 and memcmp(c.p, b"true", 4) == 0:
        c.p += 4
    elif b == 102 and c.end - c.p >= 5 and memcmp(c.p, b"false", 5) == 0:
        c.p += 5
    elif b == 110 and c.end - c.p >= 4 and memcmp(c.p, b"null", 4) == 0:
        c.p += 4
    elif b == 45 or 48 <= b <= 57:
        number_span(c, &integer, &negative)
    else:
        raise bad(c, "expected a value")
    return 0


# ---- objects: known keys by index, duplicates refused ------------------------------------
@cython.final
cdef class Keys:
    """The known keys of one object kind (immutable; shared by every reader)."""
    cdef list names  # bytes
    cdef str where
    cdef const char *cname[32]
    cdef Py_ssize_t clen[32]
    cdef int count

    def __init__(self, str where, names):
        self.where = where
        self.names = [n.encode() for n in names]
        assert len(self.names) <= 32
        self.count = len(self.names)
        for i, n in enumerate(self.names):
            self.cname[i] = PyBytes_AS_STRING(n)
            self.clen[i] = PyBytes_GET_SIZE(n)


cdef Keys K_ANY = Keys("object", ())


cdef struct Obj:
    int hint  # the field expected next (keys usually come in declaration order)
    int nesc  # unknown keys written with escapes
    # the unknown keys met in the object being read, as raw spans (escaped or not)
    const uint8_t *unk_s[64]
    Py_ssize_t unk_n[64]
    bint unk_e[64]
    int nunk


cdef int open_object(Cur *c, Keys k, Obj *o) except -1:
    """Consume ``{``; returns 0 when the object is empty (``}`` consumed too)."""
    expect(c, 123, f"an object for {k.where}")
    c.depth += 1
    if c.depth > DEPTH_MAX:
        raise bad(c, "recursion limit exceeded")
    o.nunk = 0
    o.nesc = 0
    o.hint = 0
    if peek(c) == 125:
        c.p += 1
        c.depth -= 1
        return 0
    return 1


cdef object key_text(const uint8_t *s, Py_ssize_t n, bint esc):
    return _unescape(s, n) if esc else PyUnicode_DecodeUTF8(<const char *>s, n, NULL)


cdef int next_key(Cur *c, Keys k, Obj *o, uint64_t *seen) except -2:
    """Read a key and its ``:``; the index of a known key (refused when seen before), or -1
    for an unknown one (its value must then be skipped)."""
    cdef const uint8_t *s
    cdef const uint8_t *m
    cdef Py_ssize_t n, mn, i
    cdef bytes name, decoded = None
    cdef bint esc = string_span(c, &s, &n)
    expect(c, 58, "':'")
    m, mn = s, n
    if esc:
        decoded = _unescape(s, n).encode()
        m = <const uint8_t *>PyBytes_AS_STRING(decoded)
        mn = PyBytes_GET_SIZE(decoded)
    i = o.hint
    if i < k.count and mn == k.clen[i] and memcmp(m, k.cname[i], mn) == 0:
        if seen[0] & (1ULL << i):
            raise bad(c, f"{k.where}: duplicate field `{k.names[i].decode()}`")
        seen[0] |= 1ULL << i
        o.hint = <int>i + 1
        return <int>i
    c.odd += 1  # not the field expected next
    for i in range(k.count):
        if mn == k.clen[i] and m[0] == <uint8_t>k.cname[i][0] and memcmp(m, k.cname[i], mn) == 0:
            if seen[0] & (1ULL << i):
                raise bad(c, f"{k.where}: duplicate field `{k.names[i].decode()}`")
            seen[0] |= 1ULL << i
            o.hint = <int>i + 1
            return <int>i
    # the key's text is m[:mn] (decoded once when escaped); an earlier escaped key is
    # decoded to compare, and there are at most ESCAPED_KEYS_MAX of those per object
    if esc:
        if o.nesc == ESCAPED_KEYS_MAX:
            raise bad(c, f"{k.where}: more than {ESCAPED_KEYS_MAX} escaped unknown field names")
        o.nesc += 1
    for i in range(o.nunk):
        if not o.unk_e[i]:
            if o.unk_n[i] == mn and memcmp(o.unk_s[i], m, mn) == 0:
                raise bad(c, f"{k.where}: duplicate field `{key_text(m, mn, 0)}`")
        elif key_text(o.unk_s[i], o.unk_n[i], 1).encode() == PyBytes_FromStringAndSize(<const char *>m, mn):
            raise bad(c, f"{k.where}: duplicate field `{key_text(m, mn, 0)}`")
    if o.nunk == UNKNOWN_KEYS_MAX:
        raise bad(c, f"{k.where}: more than {UNKNOWN_KEYS_MAX} unknown fields")
    o.unk_s[o.nunk] = s
    o.unk_n[o.nunk] = n
    o.unk_e[o.nunk] = esc
    o.nunk += 1
    return -1


cdef int more(Cur *c, int closer) except -1:
    """After a member: 1 when another follows (``,`` consumed), 0 at the end (``closer``,
    the bracket of the object or array being read, consumed)."""
    cdef int b = peek(c)
    if b == 44:
        c.p += 1
        return 1
    if b == closer:
        c.p += 1
        c.depth -= 1
        return 0
    raise bad(c, "expected ',' or '}'" if closer == 125 else "expected ',' or ']'")


cdef int open_array(Cur *c, str where) except -1:
    expect(c, 91, f"an array for {where}")
    c.depth += 1
    if c.depth > DEPTH_MAX:
        raise bad(c, "recursion limit exceeded")
    if peek(c) == 93:
        c.p += 1
        c.depth -= 1
        return 0
    return 1


cdef int require(Cur *c, uint64_t seen, uint64_t needed, Keys k) except -1:
    """Every field of ``needed`` was read (a missing optional one makes the text odd)."""
    cdef int i
    if seen != (1ULL << k.count) - 1:
        c.odd += 1
    if seen & needed != needed:
        for i in range(len(k.names)):
            if needed & (1ULL << i) and not seen & (1ULL << i):
                raise bad(c, f"{k.where}: missing field `{k.names[i].decode()}`")
    return 0


cdef int read_uuid(Cur *c, uint8_t *out, str what) except -1:
    cdef const uint8_t *s
    cdef Py_ssize_t n, i, j = 0
    cdef int hi, lo
    if not string_span(c, &s, &n) and n == 36 and s[8] == 45 and s[13] == 45 and s[18] == 45 and s[23] == 45:
        i = 0
        while i < 36:
            if i == 8 or i == 13 or i == 18 or i == 23:
                i += 1
                continue
            hi = hexval(s[i])
            lo = hexval(s[i + 1])
            if hi < 0 or lo < 0:
                break
            out[j] = <uint8_t>(hi * 16 + lo)
            j += 1
            i += 2
        if j == 16:
            return 0
    # any other spelling: the identifiers' own parser decides (one home for the grammar)
    text = _unescape(s, n) if memchr_backslash(s, n) else PyUnicode_DecodeUTF8(<const char *>s, n, NULL)
    try:
        raw = raw_from(text, what)
    except Exception as exc:
        raise bad(c, f"{what}: {exc}")
    memcpy(out, PyBytes_AS_STRING(raw), 16)
    return 0


cdef bint memchr_backslash(const uint8_t *s, Py_ssize_t n):
    cdef Py_ssize_t i
    for i in range(n):
        if s[i] == 92:
            return True
    return False


cdef int read_name(Cur *c, const char **names, Py_ssize_t *lens, int count, str what, str kind) except -1:
    """The index of the string at ``c`` among ``names`` (JSON strings, quotes included)."""
    cdef const uint8_t *s
    cdef Py_ssize_t n
    cdef int i
    cdef bytes name
    if string_span(c, &s, &n):
        name = _unescape(s, n).encode()
        s = <const uint8_t *>PyBytes_AS_STRING(name)
        n = PyBytes_GET_SIZE(name)
    for i in range(count):
        if n == lens[i] - 2 and memcmp(s, names[i] + 1, n) == 0:
            return i
    raise bad(c, f"{what}: expected a {kind} name")


cdef inline int read_state(Cur *c, str what) except -1:
    return read_name(c, _STATE_C, _STATE_LEN, _NSTATES, what, "RunState")


# =========================================================================================
# Reading a run (validated into facts; with ``parts``, also the values to build it from)
# =========================================================================================
cdef Keys K_RUN = Keys("run", ("run_instance", "state_history", "attempts", "lease"))
cdef Keys K_INST = Keys("run_instance", ("id", "task_id", "state", "current_attempt_id", "attempt_count",
                                         "created_at", "scheduled_at", "effective_priority",
                                         "last_state_change_at"))
cdef Keys K_STEP = Keys("state_history entry", ("from", "to", "timestamp"))
cdef Keys K_ATT = Keys("attempt", ("attempt_id", "started_at", "finished_at", "result", "error", "output"))
cdef Keys K_LEASE = Keys("lease", ("owner", "expiry", "acquired_at", "updated_at"))
cdef uint64_t U64_MAX = 0xFFFFFFFFFFFFFFFF
cdef uint64_t U32_MAX = 0xFFFFFFFF


cdef int read_instance(Cur *c, Facts *f, list parts) except -1:
    cdef Obj o
    cdef uint64_t seen = 0
    cdef int i
    cdef uint64_t scheduled = 0, changed = 0
    cdef int64_t priority = 0
    if open_object(c, K_INST, &o):
        while True:
            i = next_key(c, K_INST, &o, &seen)
            if i == 0:
                read_uuid(c, f.id, "RunId")
            elif i == 1:
                read_uuid(c, f.task_id, "TaskId")
            elif i == 2:
                f.state = read_state(c, "run_instance.state")
            elif i == 3:
                if not is_null(c):
                    f.active = True
                    read_uuid(c, f.active_id, "AttemptId")
            elif i == 4:
                f.attempt_count = read_u64(c, U32_MAX, "run_instance.attempt_count")
            elif i == 5:
                f.created_at = read_u64(c, U64_MAX, "run_instance.created_at")
            elif i == 6:
                scheduled = read_u64(c, U64_MAX, "run_instance.scheduled_at")
            elif i == 7:
                priority = read_i32(c, "run_instance.effective_priority")
            elif i == 8:
                changed = read_u64(c, U64_MAX, "run_instance.last_state_change_at")
            else:
                skip(c)
            if not more(c, 125):
                break
    require(c, seen, 0b011110111, K_INST)
    if is_nil(f.id):
        raise bad(c, "run_instance: run_id must not be nil")
    if is_nil(f.task_id):
        raise bad(c, "run_instance: task_id must not be nil")
    if f.active and f.state != S_RUNNING:
        raise bad(c, "run_instance: active attempt_id is only valid in Running state")
    if parts is not None:
        parts[:] = [scheduled, priority, changed]
    return 0


cdef int read_history(Cur *c, Facts *f, list out) except -1:
    cdef Obj o
    cdef uint64_t seen, ts
    cdef int i, frm, to
    if not open_array(c, "state_history"):
        return 0
    while True:
        seen = 0
        frm = -1
        to = 0
        ts = 0
        if open_object(c, K_STEP, &o):
            while True:
                i = next_key(c, K_STEP, &o, &seen)
                if i == 0:
                    if not is_null(c):
                        frm = read_state(c, "state_history.from")
                elif i == 1:
                    to = read_state(c, "state_history.to")
                elif i == 2:
                    ts = read_u64(c, U64_MAX, "state_history.timestamp")
                else:
                    skip(c)
                if not more(c, 125):
                    break
        require(c, seen, 0b110, K_STEP)
        push_step(f, frm, to, ts)
        if out is not None:
            out.append((None if frm < 0 else _STATES[frm], _STATES[to], ts))
        if not more(c, 93):
            break
    return 0


cdef object read_output(Cur *c, bint want):
    """null, or an array of integers 0..=255 as bytes (None unless ``want``)."""
    cdef bytearray out = bytearray() if want else None
    cdef uint8_t b
    if is_null(c):
        return None
    if open_array(c, "output"):
        while True:
            b = <uint8_t>read_u64(c, 255, "attempt.output")
            if want:
                out.append(b)
            if not more(c, 93):
                break
    return bytes(out) if want else None


cdef inline int read_result(Cur *c) except -1:
    """The index of an AttemptResultKind name."""
    return read_name(c, _RESULT_C, _RESULT_LEN, _NRESULTS, "attempt.result", "AttemptResultKind")


cdef int read_attempts(Cur *c, Facts *f, list out) except -1:
    cdef Obj o
    cdef uint64_t seen
    cdef int i, r
    cdef Att *a
    cdef const uint8_t *s
    cdef Py_ssize_t n
    cdef _Attempt rec
    cdef uint64_t t
    if not open_array(c, "attempts"):
        return 0
    while True:
        seen = 0
        a = push_att(f)
        a.finished = False
        started = finished = result = error = output = None
        if open_object(c, K_ATT, &o):
            while True:
                i = next_key(c, K_ATT, &o, &seen)
                if i == 0:
                    read_uuid(c, a.id, "AttemptId")
                elif i == 1:
                    t = read_u64(c, U64_MAX, "attempt.started_at")
                    if out is not None:
                        started = t
                elif i == 2:
                    if not is_null(c):
                        a.finished = True
                        t = read_u64(c, U64_MAX, "attempt.finished_at")
                        if out is not None:
                            finished = t
                elif i == 3:
                    if not is_null(c):
                        r = read_result(c)
                        if out is not None:
                            result = _RESULTS[r]
                elif i == 4:
                    if not is_null(c):
                        if out is None:
                            string_span(c, &s, &n)
                        else:
                            error = str_value(c)
                elif i == 5:
                    output = read_output(c, out is not None)
                else:
                    skip(c)
                if not more(c, 125):
                    break
        require(c, seen, 0b11, K_ATT)
        if out is not None:
            rec = _Attempt(AttemptId._from_raw(PyBytes_FromStringAndSize(<char *>a.id, 16)), started)
            rec.finished_at, rec.result, rec.error, rec.output = finished, result, error, output
            out.append(rec)
        if not more(c, 93):
            break
    return 0


cdef object read_lease(Cur *c, Facts *f, bint want):
    cdef Obj o
    cdef uint64_t seen = 0
    cdef int i
    owner = None
    vals = [0, 0, 0]
    if is_null(c):
        return None
    f.lease = True
    if open_object(c, K_LEASE, &o):
        while True:
            i = next_key(c, K_LEASE, &o, &seen)
            if i == 0:
                if peek(c) != 34:
                    raise bad(c, "lease.owner: expected a string")
                owner = str_value(c)
            elif 1 <= i <= 3:
                vals[i - 1] = read_u64(c, U64_MAX, "lease." + K_LEASE.names[i].decode())
            else:
                skip(c)
            if not more(c, 125):
                break
    require(c, seen, 0b1111, K_LEASE)
    return (owner, vals[0], vals[1], vals[2]) if want else None


cdef int read_run(Cur *c, FactsBox box, list parts) except -1:
    cdef Obj o
    """One run entry: its facts in ``box``; with ``parts`` (a list), the values to build its
    record: [scheduled_at, effective_priority, last_state_change_at, history, attempts, lease]."""
    cdef uint64_t seen = 0
    cdef int i
    cdef Facts *f = &box.f
    box.reset()
    history = [] if parts is not None else None
    attempts = [] if parts is not None else None
    lease = None
    inst = [] if parts is not None else None
    if open_object(c, K_RUN, &o):
        while True:
            i = next_key(c, K_RUN, &o, &seen)
            if i == 0:
                read_instance(c, f, inst)
            elif i == 1:
                read_history(c, f, history)
            elif i == 2:
                read_attempts(c, f, attempts)
            elif i == 3:
                lease = read_lease(c, f, parts is not None)
            else:
                skip(c)
            if not more(c, 125):
                break
    require(c, seen, 0b111, K_RUN)
    if parts is not None:
        parts[:] = inst + [history, attempts, lease]
    return 0


def thaw_run(const uint8_t[::1] payload, Py_ssize_t start, Py_ssize_t end):
    """The parts of the run whose JSON is ``payload[start:end]`` (validated when written;
    its rules are checked again, cheaply):
    ``(id, task_id, state, current attempt id or None, attempt_count, created_at,
    scheduled_at, effective_priority, last_state_change_at, history, attempts, lease)``."""
    cdef Cur c
    cdef FactsBox box = FactsBox()
    cdef list parts = []
    if not 0 <= start < end <= payload.shape[0]:
        raise SnapshotDecodeError("Failed to decode snapshot: a run's span lies outside the payload")
    c.base = &payload[0]
    c.p = c.base + start
    c.end = c.base + end
    c.depth = 0
    c.odd = 0
    read_run(&c, box, parts)
    f = &box.f
    err = run_error(f)
    if err is not None:  # validated when written: a forged file or a bug
        raise err
    return (RunId._from_raw(PyBytes_FromStringAndSize(<char *>f.id, 16)),
            TaskId._from_raw(PyBytes_FromStringAndSize(<char *>f.task_id, 16)),
            _STATES[f.state],
            AttemptId._from_raw(PyBytes_FromStringAndSize(<char *>f.active_id, 16)) if f.active else None,
            f.attempt_count, f.created_at, *parts)


# =========================================================================================
# Reading the whole payload
# =========================================================================================
cdef Keys K_TOP = Keys("snapshot", ("version", "timestamp", "metadata", "tasks", "runs"))
cdef Keys K_META = Keys("metadata", ("schema_version", "wal_sequence", "task_count", "run_count"))
cdef Keys K_TASK = Keys("task", ("task_spec", "created_at", "updated_at", "canceled_at"))


cdef uint32_t TASK_CREATED = m.EVENT_TYPES.index(m.TaskCreated)
cdef Plan _SPEC_PLAN = None  # set once the plans are built (below)


cdef int read_task(Cur *c, uint8_t *tid, list out, Out ev) except -1:
    """One task entry: its id into ``tid``; its spec transcoded into ``ev`` as one framed
    WAL record of a ``TaskCreated`` event (for the codec to decode and validate); appends
    ``(record start, record end, created_at, canceled_at)`` to ``out``."""
    cdef uint64_t seen = 0
    cdef int i
    cdef Obj o
    cdef Py_ssize_t rec = ev.n, spec
    cdef uint64_t created = 0
    canceled = None
    ev.put(b"\0\0\0\0\0\0\0\0\0\0\0\0", 12)
    varint(ev, len(out) + 1)
    varint(ev, TASK_CREATED)
    if open_object(c, K_TASK, &o):
        while True:
            i = next_key(c, K_TASK, &o, &seen)
            if i == 0:
                spec = ev.n
                transcode_struct(c, _SPEC_PLAN, ev)
                if ev.p[spec] != 16:  # the spec's first field: an id (tag 0x10, 16 bytes)
                    raise bad(c, "task_spec: expected an id first")
                memcpy(tid, ev.p + spec + 1, 16)
            elif i == 1:
                created = read_u64(c, U64_MAX, "task.created_at")
            elif i == 2:
                if not is_null(c):
                    read_u64(c, U64_MAX, "task.updated_at")
            elif i == 3:
                if not is_null(c):
                    canceled = read_u64(c, U64_MAX, "task.canceled_at")
            else:
                skip(c)
            if not more(c, 125):
                break
    require(c, seen, 0b11, K_TASK)
    varint(ev, created)
    store_u32(ev.p + rec, AQ_WAL_VERSION)
    store_u32(ev.p + rec + 4, <uint32_t>(ev.n - rec - 12))
    store_u32(ev.p + rec + 8, aq_crc32_update(0, <const unsigned char *>ev.p + rec + 12, ev.n - rec - 12))
    out.append((rec, ev.n, created, canceled))
    return 0


def scan(const uint8_t[::1] payload):
    """Validate a snapshot payload (JSON syntax, duplicate keys, the shape and types of
    every run, the rules of every run, the shape of task entries) in one pass.

    Returns ``(header, spans, (records, tasks), first run error)``: ``header`` holds
    version, timestamp and the four metadata fields; ``records`` the task specs as framed
    ``TaskCreated`` WAL records, ``tasks`` per task ``(record start, record end,
    created_at, canceled_at)`` (the codec decodes and validates the records);
    ``spans.top`` the other top-level keys. Raises :class:`SnapshotDecodeError`."""
    cdef Cur c
    cdef Obj ot, om
    cdef Py_ssize_t odd
    cdef uint64_t seen = 0, mseen
    cdef int i
    cdef Py_ssize_t nt = 0, nr = 0, cap_t = 1024, cap_r = 1024
    cdef FactsBox box = FactsBox()
    cdef const uint8_t *start
    cdef Spans spans
    cdef list tasks = []
    cdef Out ev = Out(1 << 16)
    first_error = None
    header = {}
    if payload.shape[0] == 0:
        raise SnapshotDecodeError("Failed to decode snapshot: EOF while parsing a value")
    c.base = &payload[0]
    c.p = c.base
    c.end = c.base + payload.shape[0]
    c.depth = 0
    c.odd = 0
    if not aq_utf8_valid(c.base, payload.shape[0], c.end):
        raise SnapshotDecodeError("Failed to decode snapshot: invalid UTF-8")
    spans = Spans(cap_t, cap_r)
    cdef uint8_t[:, ::1] tid_v = spans.task_ids, rid_v = spans.run_ids, rtask_v = spans.run_task
    cdef uint64_t[::1] ts_v = spans.task_start, te_v = spans.task_end, rs_v = spans.run_start, re_v = spans.run_end
    if peek(&c) != 123:
        raise SnapshotDecodeError("Failed to decode snapshot: expected a JSON object")
    if open_object(&c, K_TOP, &ot):
        while True:
            i = next_key(&c, K_TOP, &ot, &seen)
            if i == 0:
                header["version"] = read_u64(&c, U32_MAX, "version")
            elif i == 1:
                header["timestamp"] = read_u64(&c, U64_MAX, "timestamp")
            elif i == 2:
                mseen = 0
                if open_object(&c, K_META, &om):
                    while True:
                        i = next_key(&c, K_META, &om, &mseen)
                        if i >= 0:
                            header[K_META.names[i].decode()] = read_u64(
                                &c, U32_MAX if i == 0 else U64_MAX, "metadata." + K_META.names[i].decode())
                        else:
                            skip(&c)
                        if not more(&c, 125):
                            break
                require(&c, mseen, 0b1111, K_META)
            elif i == 3:
                if open_array(&c, "tasks"):
                    while True:
                        if nt == cap_t:
                            cap_t *= 2
                            _grow(spans, cap_t, -1)
                            tid_v, ts_v, te_v = spans.task_ids, spans.task_start, spans.task_end
                        peek(&c)
                        start = c.p
                        odd = c.odd
                        read_task(&c, &tid_v[nt, 0], tasks, ev)
                        ts_v[nt] = start - c.base
                        te_v[nt] = c.p - c.base
                        spans.task_canon[nt] = c.odd == odd
                        nt += 1
                        if not more(&c, 93):
                            break
            elif i == 4:
                if open_array(&c, "runs"):
                    while True:
                        if nr == cap_r:
                            cap_r *= 2
                            _grow(spans, -1, cap_r)
                            rid_v, rtask_v, rs_v, re_v = spans.run_ids, spans.run_task, spans.run_start, spans.run_end
                        peek(&c)
                        start = c.p
                        odd = c.odd
                        read_run(&c, box, None)
                        spans.run_canon[nr] = c.odd == odd
                        memcpy(&rid_v[nr, 0], box.f.id, 16)
                        memcpy(&rtask_v[nr, 0], box.f.task_id, 16)
                        rs_v[nr] = start - c.base
                        re_v[nr] = c.p - c.base
                        if first_error is None:
                            first_error = run_error(&box.f)
                            if first_error is not None:
                                first_error = (nr, first_error)
                        nr += 1
                        if not more(&c, 93):
                            break
            else:
                # another section: its span, parsed by the caller (its key decoded)
                key = key_text(ot.unk_s[ot.nunk - 1], ot.unk_n[ot.nunk - 1], ot.unk_e[ot.nunk - 1])
                peek(&c)
                start = c.p
                skip(&c)
                if key in spans.top:
                    raise bad(&c, f"snapshot: duplicate field `{key}`")
                spans.top[key] = (start - c.base, c.p - c.base)
            if not more(&c, 125):
                break
    require(&c, seen, 0b11111, K_TOP)
    ws(&c)
    if c.p != c.end:
        raise bad(&c, "trailing characters")
    spans.shrink(nt, nr)
    return header, spans, (ev.take(), tasks), first_error


cdef int _grow(Spans s, Py_ssize_t tasks, Py_ssize_t runs) except -1:
    if tasks >= 0:
        s.task_ids = np.resize(s.task_ids, (tasks, 16))
        s.task_start = np.resize(s.task_start, tasks)
        s.task_end = np.resize(s.task_end, tasks)
    if runs >= 0:
        s.run_ids = np.resize(s.run_ids, (runs, 16))
        s.run_task = np.resize(s.run_task, (runs, 16))
        s.run_start = np.resize(s.run_start, runs)
        s.run_end = np.resize(s.run_end, runs)
        s.run_canon = np.resize(s.run_canon, runs)
    if tasks >= 0:
        s.task_canon = np.resize(s.task_canon, tasks)
    return 0


# =========================================================================================
# Task specs: JSON transcoded to postcard, then decoded (and validated) by the codec
# =========================================================================================
cdef int varint(Out o, uint64_t v) except -1:
    cdef char tmp[10]
    cdef int i = 0
    while v >= 0x80:
        tmp[i] = <char>((v & 0x7F) | 0x80)
        v >>= 7
        i += 1
    tmp[i] = <char>v
    return o.put(tmp, i + 1)


cdef int transcode_str(Cur *c, Out o) except -1:
    cdef const uint8_t *s
    cdef Py_ssize_t n
    cdef bytes raw
    if string_span(c, &s, &n):
        raw = _unescape(s, n).encode()
        varint(o, PyBytes_GET_SIZE(raw))
        return o.lit(raw)
    varint(o, n)
    return o.put(<const char *>s, n)


cdef str text_of(Cur *c):
    """The next value as a str (it must be a JSON string)."""
    if peek(c) != 34:
        raise bad(c, "expected a string")
    return str_value(c)


cdef int transcode(Cur *c, Plan p, Out o) except -1:
    """The postcard bytes of the JSON value at ``c`` read as ``p`` (serde's rules: unknown
    fields ignored, ``#[serde(default)]`` fields may be missing, duplicates refused)."""
    cdef int k = p.kind
    cdef bint negative
    cdef uint64_t v
    cdef uint8_t raw[16]
    cdef Py_ssize_t count_at, count, i
    cdef char tmp[10]
    if k == K_INT:
        if p.ik == 3:
            v = <uint64_t>read_i32(c, "integer")
            return varint(o, ((<int64_t>v) << 1) ^ ((<int64_t>v) >> 63))
        v = read_u64(c, 255 if p.ik == 0 else (U32_MAX if p.ik == 1 else U64_MAX), "integer")
        if p.ik == 0:
            return o.ch(<char>v)
        return varint(o, v)
    if k == K_STR:
        return transcode_str(c, o)
    if k == K_ID:
        read_uuid(c, raw, "id")
        o.ch(16)
        return o.put(<const char *>raw, 16)
    if k == K_OPT:
        if is_null(c):
            return o.ch(0)
        o.ch(1)
        return transcode(c, p.inner, o)
    if k == K_STRUCT:
        return transcode_struct(c, p, o)
    if k == K_BYTES or k == K_VEC:
        # the count goes first: leave room for the longest varint, then close the gap
        count = 0
        count_at = o.n
        o.put(b"\0\0\0\0\0\0\0\0\0\0", 10)
        if open_array(c, "array"):
            while True:
                if k == K_BYTES:
                    o.ch(<char>read_u64(c, 255, "byte"))
                else:
                    transcode(c, p.inner, o)
                count += 1
                if not more(c, 93):
                    break
        i = 0
        v = <uint64_t>count
        while v >= 0x80:
            tmp[i] = <char>((v & 0x7F) | 0x80)
            v >>= 7
            i += 1
        tmp[i] = <char>v
        i += 1
        return _close_gap(o, count_at, tmp, i)
    if k == K_ENUM:
        return varint(o, <uint64_t>p.entries[name_index(c, p.keys)])
    if k == K_UNION:
        return transcode_union(c, p, o)
    if k == K_NAMED:
        return transcode_named(c, p, o)
    raise AssertionError(k)


cdef int _close_gap(Out o, Py_ssize_t at, const char *head, Py_ssize_t n) except -1:
    """Replace the 10 reserved bytes at ``at`` with the ``n`` bytes of ``head``."""
    cdef Py_ssize_t tail = o.n - at - 10
    memmove(o.p + at + n, o.p + at + 10, tail)
    memcpy(o.p + at, head, n)
    o.n = at + n + tail
    return 0


cdef int name_index(Cur *c, Keys k) except -1:
    """The position of the JSON string at ``c`` among ``k``'s names."""
    cdef const uint8_t *s
    cdef const uint8_t *m
    cdef Py_ssize_t n, mn
    cdef int i
    cdef bytes decoded
    if peek(c) != 34:
        raise bad(c, f"expected a {k.where} name")
    if string_span(c, &s, &n):
        decoded = _unescape(s, n).encode()
        s = <const uint8_t *>PyBytes_AS_STRING(decoded)
        n = PyBytes_GET_SIZE(decoded)
    for i in range(k.count):
        if n == k.clen[i] and memcmp(s, k.cname[i], n) == 0:
            return i
    raise bad(c, f"unknown {k.where} variant `{PyBytes_FromStringAndSize(<const char *>s, n).decode()}`")


cdef int transcode_union(Cur *c, Plan p, Out o) except -1:
    if peek(c) == 34:
        entry = p.entries[name_index(c, p.keys)]
        if entry[1] is not None:
            raise bad(c, f"{p.keys.where}: a variant with fields is an object")
        return varint(o, entry[0])
    expect(c, 123, "a variant")
    c.depth += 1
    if c.depth > DEPTH_MAX:
        raise bad(c, "recursion limit exceeded")
    entry = p.entries[name_index(c, p.keys)]
    expect(c, 58, "':'")
    if entry[1] is None:
        raise bad(c, f"{p.keys.where}: a unit variant is a string")
    varint(o, entry[0])
    transcode_struct(c, <Plan>entry[1], o)
    if peek(c) != 125:
        raise bad(c, "a variant is an object with one key")
    c.p += 1
    c.depth -= 1
    return 0


cdef int transcode_named(Cur *c, Plan p, Out o) except -1:
    if peek(c) == 34:
        name = str_value(c)
        index = p.by_name.get(name)
        if index is None:
            raise bad(c, f"unknown name `{name}`")
        return varint(o, index)
    expect(c, 123, "a name")
    c.depth += 1
    key = text_of(c)
    expect(c, 58, "':'")
    if key != "Custom":
        raise bad(c, 'expected {"Custom": name}')
    varint(o, p.units)
    if peek(c) != 34:
        raise bad(c, "expected a string")
    transcode_str(c, o)
    if peek(c) != 125:
        raise bad(c, 'expected {"Custom": name}')
    c.p += 1
    c.depth -= 1
    return 0


cdef int transcode_struct(Cur *c, Plan p, Out o) except -1:
    """Fields in declaration order whatever their order in the JSON (our writer's and
    Rust's order needs no reordering)."""
    cdef Obj ob
    cdef uint64_t seen = 0
    cdef Py_ssize_t start = o.n, i, nf = len(p.fields)
    cdef Py_ssize_t fs[32]
    cdef Py_ssize_t fe[32]
    cdef bint ordered = True
    cdef int f, last = -1
    cdef Plan fp
    cdef bytes chunk
    if open_object(c, p.keys, &ob):
        while True:
            f = next_key(c, p.keys, &ob, &seen)
            if f < 0:
                skip(c)
            else:
                if f < last:
                    ordered = False
                last = f
                fs[f] = o.n
                fp = <Plan>p.plans[f]
                transcode(c, fp, o)
                fe[f] = o.n
            if not more(c, 125):
                break
    for i in range(nf):
        if not seen & (1ULL << i):
            d = p.defaults[i]
            if d is None:
                raise bad(c, f"{p.keys.where}: missing field `{p.keys.names[i].decode()}`")
            c.odd += 1
            if <int>i < last:
                ordered = False
            fs[i] = o.n
            o.lit(d)
            fe[i] = o.n
            last = max(last, <int>i)
    if not ordered:
        chunk = PyBytes_FromStringAndSize(o.p + start, o.n - start)
        o.n = start
        for i in range(nf):
            o.put(PyBytes_AS_STRING(chunk) + fs[i] - start, fe[i] - fs[i])
    return 0


def scan_task(const uint8_t[::1] payload, Py_ssize_t start, Py_ssize_t end):
    """:func:`scan`'s ``(records, tasks)`` for the one task entry at ``payload[start:end]``."""
    cdef Cur c
    cdef uint8_t tid[16]
    cdef list tasks = []
    cdef Out ev = Out(4096)
    if not 0 <= start < end <= payload.shape[0]:
        raise SnapshotDecodeError("Failed to decode snapshot: a task's span lies outside the payload")
    c.base = &payload[0]
    c.p = c.base + start
    c.end = c.base + end
    c.depth = 1
    c.odd = 0
    read_task(&c, tid, tasks, ev)
    return ev.take(), tasks


_SPEC_PLAN = _struct_plan(m.TaskSpec)


include "_events_json.pxi"
