"""Shared helpers of the actionqueue test suite (imported by conftest.py and the tests).

* where the golden vectors live (``ACTIONQUEUE_VECTORS``, default ``tests/vectors``),
* loading the two codec backends,
* record framing helpers,
* hypothesis strategies for every model value, built generically from ``__aq_fields__``
  so that a field added to the model is covered without touching this file.
"""

from __future__ import annotations

import functools
import importlib
import os
import struct
import zlib
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import strategies as st

import actionqueue as aq

PROJECT_ROOT = Path(__file__).resolve().parents[1]
#: The directory the package under test was imported from: the project root for an in-place
#: build or an editable install, site-packages for an installed wheel or sdist. Child
#: processes import the package from here (not from PROJECT_ROOT, whose sources may be unbuilt).
PACKAGE_PARENT = Path(aq.__file__).resolve().parent.parent
#: The golden vectors recorded from the Rust original (tests/vectors/README.md); the
#: ACTIONQUEUE_VECTORS environment variable points the suite at another copy.
VECTORS_DIR = Path(os.environ.get("ACTIONQUEUE_VECTORS") or Path(__file__).resolve().parent / "vectors")
VECTORS_MISSING = (
    f"golden vectors not found at {VECTORS_DIR} "
    "(they live in tests/vectors of the repository and the sdist; ACTIONQUEUE_VECTORS overrides the path)"
)
#: A file from each group of vectors the tests read: a copy without one of them is incomplete.
VECTORS_REQUIRED = (
    "events/all_variants.wal",
    "events/all_variants.jsonl",
    "events/all_variants.index.jsonl",
    "events/records/00_TaskCreated.bin",
    "events/records/00_TaskCreated.json",
    "events/decode_edge/cases.json",
    "events/nonroundtrip/cases.json",
    "corrupt/cases.json",
    "corrupt/base_events.jsonl",
    "replay/valid/v08_random_mixed/events.wal",
    "replay/valid/v08_random_mixed/snapshot.json",
    "replay/invalid/cases.json",
)

#: ACTIONQUEUE_FUZZ_SCALE multiplies the example budgets of the property tests that use
#: budget(): the default run keeps them small (the README's test command stays under two
#: minutes); .ci/run runs them again at 4x.
SCALE = float(os.environ.get("ACTIONQUEUE_FUZZ_SCALE", "1"))


def budget(n: int) -> int:
    """``n`` examples, times ACTIONQUEUE_FUZZ_SCALE."""
    return max(1, int(n * SCALE))


def vectors_missing_files(root: Path = VECTORS_DIR) -> list[str]:
    """The files of ``VECTORS_REQUIRED`` absent under ``root`` (empty: the copy looks complete)."""
    return [rel for rel in VECTORS_REQUIRED if not (root / rel).is_file()]

PUREPYTHON = bool(os.environ.get("ACTIONQUEUE_PUREPYTHON"))
BACKENDS = {"cython": "actionqueue.codec._codec", "python": "actionqueue.codec._codec_py"}


def load_backend(name: str):
    """Import one codec backend.

    A missing native module fails the test loudly, unless ``ACTIONQUEUE_PUREPYTHON`` is
    set (then the cython parametrisation is skipped): a broken build must never pass
    silently.
    """
    try:
        module = importlib.import_module(BACKENDS[name])
    except ImportError as exc:
        if name == "cython" and PUREPYTHON:
            pytest.skip(f"native codec not importable and ACTIONQUEUE_PUREPYTHON is set: {exc}")
        pytest.fail(
            f"cannot import the {name} codec {BACKENDS[name]} ({exc}); build it "
            "(pip install -e .) or set ACTIONQUEUE_PUREPYTHON=1 to test the pure-Python codec only",
            pytrace=False,
        )
    if name == "cython":
        assert getattr(module, "CYTHON_MODULE", 0) == 1, f"{module.__file__} is not the native codec"
    else:
        assert not hasattr(module, "CYTHON_MODULE"), f"{module.__file__} is not the pure-Python codec"
    return module


def vector_path(*parts: str) -> Path:
    return VECTORS_DIR.joinpath(*parts)


# --------------------------------------------------------------------------------------
# Framing helpers (independent of the package's own encoder)
# --------------------------------------------------------------------------------------
HEADER = struct.Struct("<III")


def frame(payload: bytes, *, version: int = 5, length: int | None = None, crc: int | None = None) -> bytes:
    """A WAL record around ``payload``; header fields can be overridden."""
    if length is None:
        length = len(payload)
    if crc is None:
        crc = zlib.crc32(payload) & 0xFFFFFFFF
    return HEADER.pack(version, length, crc) + payload


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def error_signature(exc: BaseException) -> tuple:
    """What must be identical when two backends reject the same input."""
    if isinstance(exc, aq.DecodeError):
        return (
            type(exc).__name__,
            exc.kind,
            exc.reason,
            exc.offset,
            exc.record_offset,
            str(exc),
            getattr(exc, "expected", None),
            getattr(exc, "actual", None),
            getattr(exc, "version", None),
        )
    return (type(exc).__name__, str(exc))


def outcome(fn: Callable[[Any], Any], data: Any) -> tuple:
    """``("ok", to_builtins)`` or ``("err", signature)``; other exceptions propagate."""
    try:
        value = fn(data)
    except aq.DecodeError as exc:
        return ("err", error_signature(exc))
    if isinstance(value, list):
        return ("ok", [v.to_builtins() for v in value])
    return ("ok", value.to_builtins())


# --------------------------------------------------------------------------------------
# Hypothesis strategies
# --------------------------------------------------------------------------------------
U32_MAX = 2**32 - 1
U64_MAX = 2**64 - 1
I32_MIN, I32_MAX = -(2**31), 2**31 - 1

U64_EDGES = [
    0, 1, 127, 128, 255, 256, 16383, 16384, 2**21 - 1, 2**21, 2**28 - 1, 2**28,
    2**31 - 1, 2**31, U32_MAX, 2**32, 2**35, 2**49, 2**56, 2**63 - 1, 2**63, U64_MAX,
]
I32_EDGES = [I32_MIN, I32_MIN + 1, -8193, -8192, -65, -64, -1, 0, 1, 63, 64, 8191, 8192, I32_MAX - 1, I32_MAX]


def ints(lo: int, hi: int, edges: list[int] = U64_EDGES + I32_EDGES) -> st.SearchStrategy[int]:
    picks = sorted({e for e in edges + [lo, hi] if lo <= e <= hi})
    return st.one_of(st.sampled_from(picks), st.integers(lo, hi))


INT_RANGES = {"u8": (0, 0xFF), "u32": (0, U32_MAX), "u64": (0, U64_MAX), "i32": (I32_MIN, I32_MAX)}

SPECIAL_STRINGS = [
    "",
    "a",
    "\x00",
    "ctl \x01\x08\x0c\x1b\x1f end",
    "\n\r\t",
    '"quote" \\back/slash',
    "\x7f",
    "\u2028line\u2029para",
    "caf\u00e9",
    "\u20ac",
    "\U0001f600",
    "\U0001f469\u200d\U0001f469\u200d\U0001f467",
    "\ufeff",
    "\uffff",
    "\U0010ffff",
    "x" * 127,
    "y" * 128,
    "\u20ac" * 50,  # 150 UTF-8 bytes: two-byte length varint
]
texts = st.one_of(
    st.sampled_from(SPECIAL_STRINGS),
    st.text(st.characters(codec="utf-8"), max_size=24),
)
nonempty_texts = texts.filter(bool)
binaries = st.one_of(
    st.sampled_from([b"", b"\x00", bytes(range(256))]),
    st.binary(max_size=40),
    st.binary(min_size=128, max_size=160),
)

#: Cron expressions the cron 0.12 grammar accepts (see tests/test_cron.py).
CRON_EXPRESSIONS = [
    "0 * * * * * *",
    "*/5 * * * * *",
    "0 0 9 * * MON *",
    "0 0 12 ? * MON-FRI",
    "0 0 0 * * * 2020-2030",
    "0 30 9,12,15 1,15 May-Aug Mon,Wed,Fri 2018/2",
    "@daily",
    "@hourly",
]


def ids(cls: type, *, nonnil: bool = False) -> st.SearchStrategy:
    edges = [b"\xff" * 16, bytes(range(16))] + ([] if nonnil else [b"\x00" * 16])
    raw = st.binary(min_size=16, max_size=16)
    if nonnil:
        raw = raw.filter(lambda b: b != b"\x00" * 16)
    return st.one_of(st.sampled_from(edges), raw).map(cls)


def _optional(s: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.none(), s)


def _fix_run_instance(kw: dict) -> dict:
    # RunInstance invariants: an attempt only while Running; Ready needs scheduled_at <= created_at.
    if kw["state"] is not aq.RunState.RUNNING:
        kw["current_attempt_id"] = None
    if kw["state"] is aq.RunState.READY and kw["scheduled_at"] > kw["created_at"]:
        kw["scheduled_at"], kw["created_at"] = kw["created_at"], kw["scheduled_at"]
    return kw


#: Field strategies that honour the constructors' validation rules (_model.py ``_validate``).
FIELD_OVERRIDES: dict[tuple[type, str], st.SearchStrategy] = {
    (aq.TaskConstraints, "max_attempts"): ints(1, U32_MAX),
    (aq.TaskConstraints, "timeout_secs"): _optional(ints(1, U64_MAX)),
    (aq.TaskConstraints, "concurrency_key"): _optional(nonempty_texts),
    (aq.TaskConstraints, "required_capabilities"): _optional(
        st.lists(nonempty_texts, min_size=1, max_size=4).map(tuple)
    ),
    (aq.RepeatPolicy, "count"): ints(1, U32_MAX),
    (aq.RepeatPolicy, "interval_secs"): ints(1, U64_MAX),
    (aq.CronPolicy, "expression"): st.sampled_from(CRON_EXPRESSIONS),
    (aq.CronPolicy, "max_occurrences"): _optional(ints(1, U32_MAX)),
    (aq.TaskSpec, "id"): ids(aq.TaskId, nonnil=True),
    (aq.RunInstance, "id"): ids(aq.RunId, nonnil=True),
    (aq.RunInstance, "task_id"): ids(aq.TaskId, nonnil=True),
}
FIXUPS: dict[type, Callable[[dict], dict]] = {aq.RunInstance: _fix_run_instance}

_cache: dict[Any, st.SearchStrategy] = {}


def for_spec(spec: tuple) -> st.SearchStrategy:
    """A strategy of valid Python values for one wire spec (see actionqueue/_schema.py)."""
    cached = _cache.get(spec)
    if cached is not None:
        return cached
    kind = spec[0]
    if kind in INT_RANGES:
        s = ints(*INT_RANGES[kind])
    elif kind == "str":
        s = texts
    elif kind == "bytes":
        s = binaries
    elif kind == "id":
        s = ids(spec[1])
    elif kind == "enum":
        s = st.sampled_from(list(spec[1]))
    elif kind == "named":
        cls = spec[1]
        n = len(cls._UNIT_NAMES)
        units = [cls(i, name) for i, name in enumerate(cls._UNIT_NAMES)]
        # Custom("") is representable on the wire (Rust decodes it); only custom() rejects it.
        s = st.one_of(st.sampled_from(units), texts.map(lambda name: cls(n, name)))
    elif kind == "opt":
        s = _optional(for_spec(spec[1]))
    elif kind == "vec":
        s = st.lists(for_spec(spec[1]), max_size=4).map(tuple)
    elif kind == "struct":
        s = for_class(spec[1])
    elif kind == "union":
        s = st.one_of([for_class(v) for v in spec[1]._variants])
    else:  # a new spec kind must get a strategy here
        raise AssertionError(f"no strategy for spec {spec!r}")
    _cache[spec] = s
    return s


def for_class(cls: type) -> st.SearchStrategy:
    """Valid instances of a struct-like model class, every field drawn from its spec."""
    key = ("class", cls)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    fields = cls.__aq_fields__
    if not fields:
        s = st.just(cls())
    else:
        parts = {
            name: FIELD_OVERRIDES[(cls, name)] if (cls, name) in FIELD_OVERRIDES else for_spec(spec)
            for name, spec in fields
        }
        fixup = FIXUPS.get(cls)
        if fixup is None:
            s = st.builds(cls, **parts)
        else:
            s = st.fixed_dictionaries(parts).map(functools.partial(_construct, cls, fixup))
    _cache[key] = s
    return s


def _construct(cls: type, fixup: Callable[[dict], dict], kw: dict) -> Any:
    return cls(**fixup(kw))


def wal_events(kind: type | None = None) -> st.SearchStrategy:
    """WalEvents of one event class, or of any class when ``kind`` is None."""
    event = for_class(kind) if kind is not None else st.one_of([for_class(k) for k in aq.EVENT_TYPES])
    return st.builds(aq.WalEvent, sequence=ints(0, U64_MAX), event=event)
