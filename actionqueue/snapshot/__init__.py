"""Snapshots: the projection as framed JSON (Rust's schema v8), written atomically, loaded,
validated and hydrated back into a :class:`~actionqueue.state.reducer.ReplayReducer`.

File format (``shared/spec/snapshot-and-recovery.md`` sections 2-3), identical to Rust's:
``u32 LE frame version (4)``, ``u32 LE length``, ``u32 LE CRC-32 of the JSON``, then the JSON
exactly as ``serde_json::to_vec`` writes it.

Two backends with the same files, checks and errors:

* native (``_sjson.pyx``, used by :mod:`.fast`): the JSON is written straight from the
  reducer's records and read by one validating pass; both leave an index of every task
  and run (:mod:`.image` stores it), so that a snapshot is hydrated with its records left
  in the bytes until first used (:mod:`.cold`). :func:`build_snapshot` and
  :func:`load_snapshot` return a :class:`Snapshot`, a read-only mapping of the JSON object.
* pure Python (:mod:`._py`): builtins, ``json`` and a typed parse; its functions return
  dicts. Its module docstring lists where we differ from Rust, on purpose, for both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._backend import NATIVE
from ..errors import (
    IncompatibleVersion,
    SnapshotBootstrapError,
    SnapshotCrcMismatch,
    SnapshotDecodeError,
    SnapshotError,
    SnapshotIoError,
    SnapshotMappingError,
)
from .shape import SNAPSHOT_SCHEMA_VERSION, SNAPSHOT_VERSION
from ._py import MAX_SNAPSHOT_BYTES, parse_snapshot_bytes, snapshot_path
from .document import Snapshot

if TYPE_CHECKING or NATIVE:  # type checkers see the native API
    from .fast import (
        build_snapshot,
        encode_snapshot,
        load_hydrated,
        load_snapshot,
        read_written,
        reducer_from_image,
        reducer_from_snapshot,
        take_snapshot,
        validate_snapshot,
        write_image,
        write_snapshot,
    )
    from .image import image_path
else:
    from ._image_py import image_path
    from ._py import (  # type: ignore[assignment]  # dict where native gives Snapshot (both Mappings)
        build_snapshot,
        encode_snapshot,
        load_hydrated,
        load_snapshot,
        read_written,
        reducer_from_image,
        reducer_from_snapshot,
        take_snapshot,
        validate_snapshot,
        write_image,
        write_snapshot,
    )

__all__ = [
    "MAX_SNAPSHOT_BYTES",
    "SNAPSHOT_SCHEMA_VERSION",
    "SNAPSHOT_VERSION",
    "IncompatibleVersion",
    "Snapshot",
    "SnapshotBootstrapError",
    "SnapshotCrcMismatch",
    "SnapshotDecodeError",
    "SnapshotError",
    "SnapshotIoError",
    "SnapshotMappingError",
    "build_snapshot",
    "encode_snapshot",
    "image_path",
    "load_hydrated",
    "load_snapshot",
    "parse_snapshot_bytes",
    "read_written",
    "reducer_from_image",
    "reducer_from_snapshot",
    "snapshot_path",
    "take_snapshot",
    "validate_snapshot",
    "write_image",
    "write_snapshot",
]
