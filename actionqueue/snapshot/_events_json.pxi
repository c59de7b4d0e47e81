# Included by _sjson.pyx (it shares its ``Out`` writer and the wire-schema ``Plan``s).
#
# Events to JSON straight from their postcard payloads, in bulk: the export's fast path
# (:mod:`actionqueue.export`). No event object is built: each payload is walked once by
# the same plans that write a snapshot's JSON from objects, so the text is the one
# ``model/json.py`` gives (serde_json's shape and escapes); the suite compares the two.
# Payloads come from a scan, which has already checked every record (framing, CRC, the
# payload's structure and UTF-8); the walk still checks every bound, and raises
# ValueError on a payload it cannot follow.

#: The id columns of an export, in order (``Plan.id_slot`` is 1 + the index).
EXPORT_ID_COLUMNS = ("task_id", "run_id", "attempt_id")

#: What :func:`events_json` writes per record.
JSON_BODY = 0  # the event's fields: ``{"run_id":...,"timestamp":...}``
JSON_LINES = 1  # the WalEvent as ``dump`` writes it, one per line: ``{"sequence":1,"event":{...}}\n``
JSON_NONE = 2  # nothing (only the ids)
DEF M_BODY = 0
DEF M_LINES = 1
DEF M_NONE = 2


cdef struct PCur:
    const uint8_t *p
    const uint8_t *end


cdef int pc_fail(PCur *c, str what) except -1:
    raise ValueError(f"cannot follow an event payload: {what}")


cdef inline int pc_varint(PCur *c, uint64_t *out) except -1:
    # a u64's bounds (10 bytes, the last at most 1): the codec's reader, aq_varint_read
    if aq_varint_read(&c.p, c.end, out, 10, 0x01) != 0:
        return pc_fail(c, "a truncated or overlong varint")
    return 0


cdef inline const uint8_t *pc_span(PCur *c, Py_ssize_t *n) except NULL:
    cdef uint64_t k = 0
    pc_varint(c, &k)
    if k > <uint64_t>(c.end - c.p):
        pc_fail(c, "a length beyond the payload")
    cdef const uint8_t *data = c.p
    n[0] = <Py_ssize_t>k
    c.p += k
    return data


cdef int pc_value(Out o, Plan p, PCur *c, uint8_t *ids) except -1:
    """Write the JSON of the value of plan ``p`` at ``c``; ``ids`` gets the tagged ids
    (16 bytes per id column, a nonzero flag byte after the three when set)."""
    cdef int k = p.kind
    cdef uint64_t v = 0
    cdef uint32_t z
    cdef Py_ssize_t n, i
    cdef const uint8_t *data
    cdef bint first
    cdef Plan fp
    if k == K_INT:
        if p.ik == 0:  # u8: one raw byte
            if c.p >= c.end:
                return pc_fail(c, "truncated")
            v = c.p[0]
            c.p += 1
            return o.u64(v)
        pc_varint(c, &v)
        if p.ik == 3:  # i32, zigzag
            z = <uint32_t>v
            if z & 1:
                o.ch(45)
                return o.u64((<uint64_t>(z >> 1)) + 1)
            return o.u64(z >> 1)
        return o.u64(v)
    if k == K_ID:
        data = pc_span(c, &n)
        if n != 16:
            return pc_fail(c, "an id that is not 16 bytes")
        if p.id_slot and not ids[48 + p.id_slot - 1]:
            memcpy(ids + 16 * (p.id_slot - 1), data, 16)
            ids[48 + p.id_slot - 1] = 1
        return o.uuid(data)
    if k == K_STRUCT:
        o.ch(123)
        first = True
        for i in range(len(p.plans)):
            fp = <Plan>p.plans[i]
            if p.skip_none[i] and fp.kind == K_OPT and c.p < c.end and c.p[0] == 0:
                c.p += 1
                continue
            if not first:
                o.ch(44)
            first = False
            o.lit(<bytes>p.jkeys[i])
            pc_value(o, fp, c, ids)
        return o.ch(125)
    if k == K_STR:
        data = pc_span(c, &n)
        return o.utf8(data, n)
    if k == K_OPT:
        if c.p >= c.end or c.p[0] > 1:
            return pc_fail(c, "a bad option tag")
        c.p += 1
        if (c.p - 1)[0] == 0:
            return o.put(b"null", 4)
        return pc_value(o, p.inner, c, ids)
    if k == K_ENUM:
        pc_varint(c, &v)
        if v >= <uint64_t>len(p.by_index):
            return pc_fail(c, "an enum index out of range")
        return o.lit(<bytes>p.by_index[<Py_ssize_t>v])
    if k == K_BYTES:
        data = pc_span(c, &n)
        return o.byte_array(data, n)
    if k == K_VEC:
        pc_varint(c, &v)
        if v > <uint64_t>(c.end - c.p):
            return pc_fail(c, "a count beyond the payload")
        o.ch(91)
        for i in range(<Py_ssize_t>v):
            if i:
                o.ch(44)
            pc_value(o, p.inner, c, ids)
        return o.ch(93)
    if k == K_UNION:
        pc_varint(c, &v)
        if v >= <uint64_t>len(p.by_index):
            return pc_fail(c, "a variant index out of range")
        name, fp = p.by_index[<Py_ssize_t>v]
        if fp is None:
            return o.lit(name)
        o.ch(123)
        o.lit(name)
        o.ch(58)
        pc_value(o, fp, c, ids)
        return o.ch(125)
    if k == K_NAMED:
        pc_varint(c, &v)
        if v < <uint64_t>p.units:
            return o.lit(<bytes>p.by_index[<Py_ssize_t>v])
        if v > <uint64_t>p.units:
            return pc_fail(c, "a variant index out of range")
        data = pc_span(c, &n)
        o.put(b'{"Custom":', 10)
        o.utf8(data, n)
        return o.ch(125)
    raise AssertionError(k)


cdef Plan _EVENT_PLAN = _plan(("union", m.Event))
cdef Plan _WAL_EVENT_PLAN = _struct_plan(m.WalEvent)


cdef void _tag_ids():
    """Which id fields feed the id columns: an event's own ``task_id``/``run_id``/
    ``attempt_id``, a TaskSpec's ``id`` (TaskCreated) and a RunInstance's ``id`` and
    ``task_id`` (RunCreated). Ids nested elsewhere (a filter's, a dependency's) do not."""
    cdef Plan p
    slots = {name: i + 1 for i, name in enumerate(EXPORT_ID_COLUMNS)}
    tags = [(cls, {n: slots[n] for n, _ in cls.__aq_fields__ if n in slots}) for cls in m.EVENT_TYPES]
    tags.append((m.TaskSpec, {"id": 1}))
    tags.append((m.RunInstance, {"id": 2, "task_id": 1}))
    for cls, by_field in tags:
        sp = _struct_plan(cls)
        for i, attr in enumerate((<Plan>sp).attrs):
            p = <Plan>(<Plan>sp).plans[i]
            if attr in by_field and p.kind == K_ID:
                p.id_slot = by_field[attr]


_tag_ids()


cdef inline void uuid_text(const uint8_t *raw, uint8_t *o) noexcept:
    cdef int i, j = 0
    for i in range(16):
        if i == 4 or i == 6 or i == 8 or i == 10:
            o[j] = 45
            j += 1
        o[j] = HEX[raw[i] >> 4]
        o[j + 1] = HEX[raw[i] & 15]
        j += 2


def events_json(const uint8_t[::1] buf, const uint64_t[::1] offsets, int mode=M_BODY):
    """The JSON of the records starting at ``offsets`` in ``buf`` (a log file's bytes), in
    one pass and without event objects.

    Returns ``(text, ends, id_text, id_ends)``: ``text`` holds every record's JSON back
    to back (``mode``: :data:`JSON_BODY`, :data:`JSON_LINES` or :data:`JSON_NONE`), record
    ``i`` being ``text[ends[i]:ends[i + 1]]`` (``ends`` int64, one longer than
    ``offsets``). Likewise for each id column ``j`` (:data:`EXPORT_ID_COLUMNS`): the
    canonical text of record ``i``'s id is ``id_text[j][id_ends[j, i]:id_ends[j, i + 1]]``,
    empty when the record has none (``id_text`` uint8 arrays, ``id_ends`` int32, shape
    ``(3, n + 1)``): Arrow's string layout.
    """
    cdef Py_ssize_t n = offsets.shape[0], i, j, size = buf.shape[0]
    cdef uint64_t off, length, seq = 0
    cdef PCur c
    cdef uint8_t ids[51]
    cdef Out o = Out(1 << 16 if mode == M_NONE else max(<Py_ssize_t>1 << 16, n * 160))
    cdef Plan body
    cdef list variants = _EVENT_PLAN.by_index
    if mode < M_BODY or mode > M_NONE:
        raise ValueError(f"mode must be JSON_BODY, JSON_LINES or JSON_NONE, not {mode}")
    cdef int32_t used[3]
    ends = np.empty(n + 1, np.int64)
    id_text = np.empty((3, n * 36), np.uint8)
    id_ends = np.empty((3, n + 1), np.int32)
    cdef int64_t[::1] e = ends
    cdef uint8_t[:, ::1] t = id_text
    cdef int32_t[:, ::1] ie = id_ends
    if n * 36 > 0x7FFFFFFF:
        raise OverflowError("too many records for one call: at most 59 million")
    e[0] = 0
    for j in range(3):
        ie[j, 0] = used[j] = 0
    for i in range(n):
        off = offsets[i]
        if off > <uint64_t>size or size - off < 12:
            raise ValueError(f"no record at offset {off}")
        length = aq_load_u32le(&buf[0] + off + 4)
        if length > <uint64_t>(size - off - 12):
            raise ValueError(f"no complete record at offset {off}")
        c.p = &buf[0] + off + 12
        c.end = c.p + length
        memset(ids, 0, 51)
        if mode == M_LINES:
            pc_value(o, _WAL_EVENT_PLAN, &c, ids)
            o.ch(10)
        else:
            pc_varint(&c, &seq)
            pc_varint(&c, &length)
            if length >= <uint64_t>len(variants):
                raise ValueError(f"record at offset {off}: unknown event kind {length}")
            body = <Plan>(<tuple>variants[<Py_ssize_t>length])[1]
            if body is None:
                o.put(b"{}", 2)
            else:
                pc_value(o, body, &c, ids)
            if mode == M_NONE:
                o.n = 0
        e[i + 1] = o.n
        for j in range(3):
            if ids[48 + j]:
                uuid_text(ids + 16 * j, &t[j, used[j]])
                used[j] += 36
            ie[j, i + 1] = used[j]
    return o.take(), ends, [id_text[j, :used[j]] for j in range(3)], id_ends
