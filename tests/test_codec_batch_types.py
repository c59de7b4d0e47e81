"""``encode_batch`` checks every item's type before it reads anything of the item.

The native ``encode_batch`` fetches the ``event`` slot of the next item early (a cache
prefetch); it must do so only once it knows that item is a ``WalEvent``, or it reads
memory of an object of another type (past its end for a small one). A wrong item
raises the same :class:`~actionqueue.EncodeError`, naming its index, on both backends.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import actionqueue as aq
from aq_testlib import PACKAGE_PARENT, PUREPYTHON, load_backend

GOOD = aq.WalEvent(5, aq.AttemptStarted(aq.RunId(bytes(range(1, 17))), aq.AttemptId(bytes(range(2, 18))), 1_700_000_000))
NEXT = aq.WalEvent(6, aq.EnginePaused(1_700_000_001))


class FakeWalEvent:
    """Not a WalEvent (no subclass of anything of ours), with the same slot names."""

    __slots__ = ("sequence", "event")

    def __init__(self, sequence, event):
        self.sequence = sequence
        self.event = event


class FakeWithDict:
    """Plain attributes, for a class with a ``__dict__``."""

    def __init__(self, sequence, event):
        self.sequence = sequence
        self.event = event


def _backends() -> list:
    names = ["python"] if PUREPYTHON else ["cython", "python"]
    return [pytest.param(name, id=name) for name in names]


BAD_ITEMS = {
    "none": lambda: None,
    "object": object,
    "str": lambda: "x",
    "int": lambda: 7,
    "bytes": lambda: b"\x05\x00\x00\x00",
    "bare_event": lambda: GOOD.event,
    "fake_slots": lambda: FakeWalEvent(9, GOOD.event),
    "fake_slots_bad_event": lambda: FakeWalEvent(9, 12345),
    "fake_dict": lambda: FakeWithDict(9, GOOD.event),
}

LAYOUTS = {
    "alone": lambda bad: ([bad], 0),
    "after_good": lambda bad: ([GOOD, bad], 1),
    "between_good": lambda bad: ([GOOD, bad, NEXT], 1),
    "after_two": lambda bad: ([GOOD, NEXT, bad], 2),
}


def _raised(codec, items) -> aq.EncodeError:
    with pytest.raises(aq.EncodeError) as info:
        codec.encode_batch(items)
    return info.value


@pytest.mark.parametrize("container", [list, tuple, iter], ids=["list", "tuple", "iterator"])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("what", sorted(BAD_ITEMS))
def test_wrong_item_raises_the_same_error_on_both_backends(what, layout, container) -> None:
    items, index = LAYOUTS[layout](BAD_ITEMS[what]())
    outcomes = {}
    for backend in [p.values[0] for p in _backends()]:
        codec = load_backend(backend)
        exc = _raised(codec, container(items))
        assert type(exc) is aq.EncodeError
        assert f"batch item {index}:" in str(exc), str(exc)
        assert f"got {type(items[index]).__name__}" in str(exc), str(exc)
        outcomes[backend] = (type(exc), str(exc))
        # the codec is still usable afterwards, and the good items encode as before
        assert codec.encode_batch([GOOD, NEXT]) == codec.encode(GOOD) + codec.encode(NEXT)
    assert len(set(outcomes.values())) == 1, outcomes


@pytest.mark.parametrize("backend", _backends())
def test_an_error_inside_an_item_names_its_index(backend) -> None:
    codec = load_backend(backend)
    bad = aq.WalEvent(7, aq.EnginePaused(1))
    object.__setattr__(bad, "sequence", -1)
    exc = _raised(codec, [GOOD, NEXT, bad])
    assert str(exc).startswith("batch item 2: ")
    exc = _raised(codec, iter([GOOD, bad]))
    assert str(exc).startswith("batch item 1: ")


@pytest.mark.parametrize("backend", _backends())
def test_good_batches_are_unchanged(backend) -> None:
    codec = load_backend(backend)
    events = [aq.WalEvent(i, aq.EnginePaused(i)) for i in range(1, 50)] + [GOOD]
    want = b"".join(codec.encode(e) for e in events)
    assert codec.encode_batch(events) == want
    assert codec.encode_batch(tuple(events)) == want
    assert codec.encode_batch(iter(events)) == want
    assert codec.encode_batch([]) == b""


def test_a_batch_list_emptied_while_encoding_is_not_read_past_its_end() -> None:
    """Encoding may run Python code (``len`` of a list subclass in a vec field): the list
    of events can shrink under the encoder, which must not read past its new end."""
    events: list = []

    class Deps(list):
        def __len__(self):
            events.clear()
            return list.__len__(self)

    for backend in [p.values[0] for p in _backends()]:
        codec = load_backend(backend)
        event = aq.DependencyDeclared(aq.TaskId(bytes(range(1, 17))), [aq.TaskId(bytes(range(3, 19)))], 1)
        object.__setattr__(event, "depends_on", Deps(event.depends_on))
        events[:] = [aq.WalEvent(1, event)] + [aq.WalEvent(i, aq.EnginePaused(i)) for i in range(2, 40)]
        first = aq.WalEvent(1, aq.DependencyDeclared(aq.TaskId(bytes(range(1, 17))), [aq.TaskId(bytes(range(3, 19)))], 1))
        # the walk over the list stops where the list now ends, as a Python loop over it does
        assert codec.encode_batch(events) == codec.encode(first)


_GUARD_PAGE_CHILD = textwrap.dedent(
    """
    import ctypes, mmap, os, sys
    import actionqueue as aq
    from actionqueue.codec import _codec

    # A Python object of type ``object`` (16 bytes) placed at the very end of a readable
    # page, followed by a page that cannot be read: reading any slot of it faults.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    page = mmap.PAGESIZE
    base = libc.mmap(None, 2 * page, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
    assert base not in (None, ctypes.c_void_p(-1).value)
    assert libc.mprotect(base + page, page, 0) == 0
    addr = base + page - 16
    ctypes.c_ssize_t.from_address(addr).value = 1 << 40  # its refcount never reaches 0
    ctypes.c_void_p.from_address(addr + 8).value = id(object)
    edge = ctypes.cast(addr, ctypes.py_object).value
    assert type(edge) is object
    good = aq.WalEvent(5, aq.EnginePaused(1))
    for items in ([good, edge], [good, good, edge], (good, edge), [edge]):
        try:
            _codec.encode_batch(items)
        except aq.EncodeError as exc:
            assert "got object" in str(exc), str(exc)
        else:
            raise AssertionError("encoded an object")
    print("ok", flush=True)
    os._exit(0)  # the fake object must not meet the interpreter's teardown
    """
)


@pytest.mark.skipif(PUREPYTHON, reason="the native codec is not in use")
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs mmap/mprotect through libc")
@pytest.mark.skipif(hasattr(sys, "gettotalrefcount"), reason="object layout of a debug build differs")
def test_native_batch_does_not_read_a_slot_of_an_object_of_another_type() -> None:
    """The object after a good event ends right before an unreadable page: reading the
    ``event`` slot of it (as the prefetch did before its type was checked) crashes."""
    load_backend("cython")
    proc = subprocess.run(
        [sys.executable, "-c", _GUARD_PAGE_CHILD], capture_output=True, text=True, timeout=120, cwd=PACKAGE_PARENT
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", (proc.returncode, proc.stdout, proc.stderr[-2000:])
