"""Snapshot images, format 2: the index of a ``snapshot.bin``, so that recovery need not
read the JSON to use it.

Rust's snapshot file is one JSON document: to use any of it, all of it must be parsed and
validated. When we write or first validate a snapshot, the pass that does it also records
where each task and run lies in the payload (:class:`~._sjson.Spans`). The image keeps
that index next to the snapshot (``snapshots/snapshot.image``); recovery maps
``snapshot.bin``, checks its CRC-32, reads the index and leaves every task and run in the
bytes until the reducer first asks for it (:class:`~.cold.SpanProjection`).

The image is only a faster path to ``snapshot.bin``'s content: it names the frame of the
``snapshot.bin`` it indexes (version, length, CRC-32) and carries its own xxh3-128
digest; recovery uses it only when both hold, and otherwise reads ``snapshot.bin``. Rust
ignores the file. (Format 1, written by the pure-Python backend, held a second copy of
every record instead; each backend falls back to ``snapshot.bin`` on the other's.)

Layout (little-endian)::

    header  magic "AQSIMAGE", u32 image version (2), u32 snapshot frame version,
            u32 snapshot JSON length, u32 snapshot JSON CRC-32, u64 wal_sequence,
            u64 body length, 16 bytes xxh3-128 of the body
    body    u64 tasks n, u64 runs m, u64 length of J, J: JSON {"header": {...},
            "top": {section: [start, end]}}; then task ids (16n), task starts (8n),
            task ends (8n), run ids (16m), run task ids (16m), run starts (8m),
            run ends (8m): offsets into the snapshot's JSON payload; then one byte per
            task (n) and per run (m): 1 when its text is our writer's (copied as it is
            into the next snapshot), 0 when it must be re-encoded
"""

from __future__ import annotations

import json
import mmap
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

from ..errors import ImageError
from ..log.files import OS, Files, atomic_write
from . import _sjson

__all__ = ["IMAGE_NAME", "IMAGE_VERSION", "encode_image", "image_path", "map_file", "read_image"]

IMAGE_NAME = "snapshot.image"
IMAGE_VERSION = 2
_MAGIC = b"AQSIMAGE"
_HEADER = struct.Struct("<8sIIIIQQ16s")
_COUNTS = struct.Struct("<QQQ")
#: An image larger than this is refused before it is read (its snapshot is at most 256 MiB).
IMAGE_BYTES_MAX = 1 << 30


def image_path(data_dir: str | os.PathLike) -> Path:
    """``<data_dir>/snapshots/snapshot.image``."""
    return Path(data_dir) / "snapshots" / IMAGE_NAME


def encode_image(spans: Any, header: dict[str, int], frame: tuple[int, int, int]) -> bytes:
    """The image of the snapshot whose file frame is ``frame`` and index ``spans``."""
    meta = json.dumps({"header": header, "top": {k: list(v) for k, v in spans.top.items()}}).encode()
    arrays = [np.ascontiguousarray(a, dtype=np.uint8 if a.ndim == 2 else "<u8").tobytes()
              for a in (spans.task_ids, spans.task_start, spans.task_end,
                        spans.run_ids, spans.run_task, spans.run_start, spans.run_end)]  # fmt: skip
    arrays += [np.ascontiguousarray(spans.task_canon, dtype=np.uint8).tobytes(),
               np.ascontiguousarray(spans.run_canon, dtype=np.uint8).tobytes()]
    body = b"".join([_COUNTS.pack(len(spans.task_ids), len(spans.run_ids), len(meta)), meta, *arrays])
    version, length, crc = frame
    head = _HEADER.pack(_MAGIC, IMAGE_VERSION, version, length, crc, header["wal_sequence"], len(body),
                        xxhash.xxh3_128_digest(body))  # fmt: skip
    return head + body


def write_image_file(data_dir: str | os.PathLike, data: bytes, fs: Files = OS) -> None:
    """Atomically (re)place the image (the caller fsyncs the directory)."""
    atomic_write(image_path(data_dir), data, fs, sync_dir=False)


def map_file(path: Path) -> Any:
    """The file's bytes: a read-only map on POSIX (snapshot files are replaced by rename,
    never rewritten in place, so a mapping stays valid), a copy elsewhere."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if os.name != "posix" or size == 0:
            return f.read()
        flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
        return mmap.mmap(f.fileno(), size, flags=flags, prot=mmap.PROT_READ)


def read_image(path: Path, frame: tuple[int, int, int]) -> tuple[dict[str, int], Any]:
    """``(header, spans)`` of the image at ``path`` of the ``snapshot.bin`` with frame
    ``frame``; :class:`ImageError` when it is missing, damaged or of another snapshot."""
    try:
        if os.path.getsize(path) > IMAGE_BYTES_MAX:
            raise ImageError(f"{path} is larger than {IMAGE_BYTES_MAX} bytes")
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read {path}: {exc}") from None
    if len(data) < _HEADER.size:
        raise ImageError("truncated header")
    magic, version, snap_version, snap_length, snap_crc, seq, body_len, digest = _HEADER.unpack_from(data)
    if magic != _MAGIC or version != IMAGE_VERSION:
        raise ImageError("not a snapshot image of this version")
    if (snap_version, snap_length, snap_crc) != tuple(frame):
        raise ImageError("made from another snapshot.bin")
    body = memoryview(data)[_HEADER.size :]
    if len(body) != body_len:
        raise ImageError(f"body is {len(body)} bytes, the header says {body_len}")
    if xxhash.xxh3_128_digest(body) != digest:
        raise ImageError("digest mismatch")
    return _parse_body(body, snap_length, seq)


def _parse_body(body: memoryview, payload_len: int, seq: int) -> tuple[dict[str, int], Any]:
    if len(body) < _COUNTS.size:
        raise ImageError("truncated body")
    n, m, meta_len = _COUNTS.unpack_from(body)
    sizes = (16 * n, 8 * n, 8 * n, 16 * m, 16 * m, 8 * m, 8 * m, n, m)
    if _COUNTS.size + meta_len + sum(sizes) != len(body):
        raise ImageError("the body's sizes do not add up")
    pos = _COUNTS.size + meta_len
    try:
        meta = json.loads(bytes(body[_COUNTS.size : pos]))
        header, top = meta["header"], {k: (int(a), int(b)) for k, (a, b) in meta["top"].items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise ImageError(f"bad index metadata: {exc}") from None
    if header.get("wal_sequence") != seq or header.get("task_count") != n or header.get("run_count") != m:
        raise ImageError("the index disagrees with its header")
    spans = _sjson.Spans(0, 0)
    arrays: list[Any] = []
    for size, kind in zip(sizes, "iooiiooff"):  # ids, offsets, flags
        if kind == "o":
            arrays.append(np.frombuffer(body, dtype="<u8", count=size // 8, offset=pos).astype(np.uint64))
        else:
            raw = np.frombuffer(body, dtype=np.uint8, count=size, offset=pos)
            arrays.append(raw.reshape(-1, 16) if kind == "i" else raw.copy())
        pos += size
    (spans.task_ids, spans.task_start, spans.task_end, spans.run_ids, spans.run_task, spans.run_start,
     spans.run_end, spans.task_canon, spans.run_canon) = arrays  # fmt: skip
    spans.top = top
    for start, end in ((spans.task_start, spans.task_end), (spans.run_start, spans.run_end)):
        if len(start) and (int(end.max()) > payload_len or bool(np.any(start >= end))):
            raise ImageError("a span lies outside the snapshot")
    if any(not 0 <= a <= b <= payload_len for a, b in top.values()):
        raise ImageError("a section lies outside the snapshot")
    return header, spans
