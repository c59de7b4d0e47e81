"""The conformance suite of segment archives: every archive implementation passes it
(parametrize ``archive`` with a new backend to add one)."""

from __future__ import annotations

import pytest

from actionqueue.log.archive import Archive, ArchiveError, ArchivedSegment, LocalArchive


@pytest.fixture(params=["local"])
def archive(request, tmp_path) -> Archive:
    if request.param == "local":
        return LocalArchive(tmp_path / "archive")
    raise AssertionError(request.param)


def _segment(tmp_path, name: str, body: bytes) -> tuple:
    seg, seal = tmp_path / name, tmp_path / (name + ".seal")
    seg.write_bytes(body)
    seal.write_bytes(b'{"seal": "' + name.encode() + b'"}')
    return seg, seal


def test_an_empty_archive_lists_nothing(archive) -> None:
    assert isinstance(archive, Archive)
    assert archive.ranges() == []


def test_put_then_list_get_delete(archive, tmp_path) -> None:
    a = _segment(tmp_path, "00000000000000000001.seg", b"first")
    b = _segment(tmp_path, "00000000000000000011.seg", b"second" * 1000)
    archive.put("00000000000000000011.seg", 11, 20, *b)
    archive.put("00000000000000000001.seg", 1, 10, *a)
    assert archive.ranges() == [ArchivedSegment(1, 10, "00000000000000000001.seg"),
                                ArchivedSegment(11, 20, "00000000000000000011.seg")]  # fmt: skip
    out = tmp_path / "out"
    out.mkdir()
    seg, seal = archive.get("00000000000000000011.seg", out)
    assert seg.read_bytes() == b"second" * 1000 and seal.read_bytes() == b[1].read_bytes()
    archive.delete("00000000000000000001.seg")
    archive.delete("00000000000000000001.seg")  # twice: nothing
    assert [r.first_sequence for r in archive.ranges()] == [11]
    with pytest.raises(ArchiveError):
        archive.get("00000000000000000001.seg", out)


def test_a_put_again_replaces(archive, tmp_path) -> None:
    archive.put("s.seg", 1, 2, *_segment(tmp_path, "s.seg", b"old"))
    archive.put("s.seg", 1, 3, *_segment(tmp_path, "s.seg", b"new"))
    assert archive.ranges() == [ArchivedSegment(1, 3, "s.seg")]
    seg, _ = archive.get("s.seg", tmp_path / "..")
    assert seg.read_bytes() == b"new"


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden"])
def test_names_that_escape_the_archive_are_refused(archive, tmp_path, name) -> None:
    seg, seal = _segment(tmp_path, "x.seg", b"x")
    with pytest.raises(ArchiveError):
        archive.put(name, 1, 1, seg, seal)


def test_a_missing_source_is_an_archive_error(archive, tmp_path) -> None:
    with pytest.raises(ArchiveError):
        archive.put("gone.seg", 1, 1, tmp_path / "gone.seg", tmp_path / "gone.seg.seal")
    assert archive.ranges() == []
