"""A snapshot as the native backend holds it: the file's bytes and the index of its tasks
and runs, read as the snapshot's JSON object.

:func:`~actionqueue.build_snapshot` and :func:`~actionqueue.load_snapshot` return a
:class:`Snapshot`. It is a read-only mapping: ``snapshot["metadata"]["wal_sequence"]``,
``dict(snapshot)`` and ``snapshot == other`` work as they do on the JSON object (which is
parsed the first time it is needed, and kept), while writing it or hydrating a reducer
from it uses the bytes and the index directly, without a parse.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["Snapshot"]

_HEADER = struct.Struct("<III")


class Snapshot(Mapping[str, Any]):
    """A validated snapshot: :attr:`data` is the file (frame, then the JSON payload),
    :attr:`spans` where each task and run lies in the payload. Compares equal to the JSON
    object it holds (a ``dict``) and to any snapshot with the same content."""

    __slots__ = ("data", "spans", "header", "parsed", "_obj")

    def __init__(self, data: Any, spans: Any, header: dict[str, int], parsed: Any = None) -> None:
        self.data = data
        self.spans = spans
        #: version, timestamp, schema_version, wal_sequence, task_count, run_count
        self.header = header
        #: the typed parse of everything but the runs (tasks None: not parsed), or None
        self.parsed = parsed
        self._obj: dict[str, Any] | None = None

    @property
    def frame(self) -> tuple[int, int, int]:
        """``(frame version, payload length, CRC-32)`` of the file."""
        return _HEADER.unpack_from(self.data)

    @property
    def payload(self) -> memoryview:
        """The JSON, as serde_json writes it."""
        return memoryview(self.data)[_HEADER.size : _HEADER.size + self.frame[1]]

    @property
    def wal_sequence(self) -> int:
        """The last WAL sequence the snapshot covers."""
        return self.header["wal_sequence"]

    def to_dict(self) -> dict[str, Any]:
        """A new JSON object of the snapshot (safe to change)."""
        from ._py import parse_snapshot_bytes

        return parse_snapshot_bytes(bytes(self.payload))

    def _dict(self) -> dict[str, Any]:
        if self._obj is None:
            self._obj = self.to_dict()
        return self._obj

    def __getitem__(self, key: str) -> Any:
        return self._dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._dict())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Snapshot) and self.frame == other.frame and self.payload == other.payload:
            return True
        if isinstance(other, Mapping):
            return self._dict() == dict(other.items())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        h = self.header
        return (f"Snapshot(wal_sequence={h['wal_sequence']}, tasks={h['task_count']}, runs={h['run_count']}, "
                f"bytes={len(self.payload)})")
