"""Both identifier implementations (native ``_ids`` and pure-Python ``_ids_py``) behave alike."""

from __future__ import annotations

import pickle
import uuid

import pytest

import actionqueue as aq
from actionqueue.model import _ids_py

BASES = [pytest.param(_ids_py.IdBase, id="python")]
try:
    from actionqueue.model import _ids

    BASES.append(pytest.param(_ids.IdBase, id="cython"))
except ImportError:  # pragma: no cover - pure-Python install
    pass

RAW = bytes(range(16))


@pytest.fixture(params=BASES)
def id_types(request):
    base = request.param

    class AId(base):
        __slots__ = ()

    class BId(base):
        __slots__ = ()

    return AId, BId


def test_value_semantics(id_types) -> None:
    AId, BId = id_types
    a = AId(RAW)
    assert a == AId(uuid.UUID(bytes=RAW)) == AId(str(uuid.UUID(bytes=RAW))) == AId(a)
    assert a != BId(RAW) and not (a == BId(RAW))
    assert hash(a) == hash(RAW)  # the same in both implementations
    assert a.bytes == RAW and a.uuid == uuid.UUID(bytes=RAW)
    assert str(a) == "00010203-0405-0607-0809-0a0b0c0d0e0f"
    assert repr(a) == "AId('00010203-0405-0607-0809-0a0b0c0d0e0f')"
    assert AId.nil().is_nil and not a.is_nil
    assert sorted([AId(b"\xff" * 16), a, AId.nil()]) == [AId.nil(), a, AId(b"\xff" * 16)]
    with pytest.raises(TypeError):
        _ = a < BId(RAW)
    n = AId.new()
    assert n.uuid.version == 4 and n != AId.new()


def test_rejects_bad_input(id_types) -> None:
    AId, _ = id_types
    with pytest.raises(aq.ValidationError):
        AId(b"short")
    with pytest.raises(aq.ValidationError):
        AId("not-a-uuid")
    with pytest.raises(TypeError):
        AId(12)
    # uuid.UUID's int() would take a sign or an underscore; no uuid text has them
    for text in ("+0010203-0405-0607-0809-0a0b0c0d0e0f", "00010203_0405_0607_0809_0a0b0c0d0e0f",
                 "0001020304050607_0809_0a0b0c0d0e0f", "00010203-0405-0607-0809-0a0b0c0d0e0g"):
        with pytest.raises(aq.ValidationError):
            AId(text)


@pytest.mark.parametrize(
    "text",
    ["00010203-0405-0607-0809-0a0b0c0d0e0f", "00010203-0405-0607-0809-0A0B0C0D0E0F",
     "000102030405060708090a0b0c0d0e0f", "{00010203-0405-0607-0809-0a0b0c0d0e0f}",
     "urn:uuid:00010203-0405-0607-0809-0a0b0c0d0e0f"],
)
def test_accepts_the_uuid_text_forms(id_types, text) -> None:
    AId, _ = id_types
    assert AId(text).bytes == RAW


def test_immutable(id_types) -> None:
    AId, _ = id_types
    a = AId(RAW)
    with pytest.raises(AttributeError):
        a.x = 1  # type: ignore[attr-defined]


def test_model_ids_pickle_and_hash_in_dicts() -> None:
    r = aq.RunId.new()
    assert pickle.loads(pickle.dumps(r)) == r
    d = {r: 1}
    assert d[aq.RunId(r.bytes)] == 1
    assert aq.TaskId(r.bytes) not in d
