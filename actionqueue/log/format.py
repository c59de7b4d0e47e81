"""The log's format constants: the one copy of every name and limit the log files use.

Record framing (12-byte header: u32 version, u32 payload length, u32 CRC-32, all little
endian) is the codec's (:mod:`actionqueue.codec._codec_common`); this module adds what the files
around the records are called and how big things may get.
"""

from __future__ import annotations

from ..codec._codec_common import HEADER_LEN, VERSION
from ._walk_common import DEFAULT_MAX_PAYLOAD

__all__ = [
    "HEADER_LEN",
    "VERSION",
    "DEFAULT_MAX_PAYLOAD",
    "DEFAULT_SEGMENT_BYTES",
    "WAL_DIR",
    "SNAPSHOTS_DIR",
    "RUST_WAL_NAME",
    "LOCK_NAME",
    "CHECKPOINT_NAME",
    "MANIFEST_NAME",
    "SEGMENT_SUFFIX",
    "SEAL_SUFFIX",
    "TMP_SUFFIX",
    "BACKUP_DIR",
    "SEAL_FORMAT",
    "SEAL_FORMATS_READ",
    "MANIFEST_FORMAT",
    "CHECKPOINT_FORMAT",
    "METADATA_BYTES_MAX",
    "LISTING_ATTEMPTS_MAX",
]

#: The log's folder inside a data dir.
WAL_DIR = "wal"
#: The data dir's other folder, the snapshots' (named here too: telling a data dir from any
#: other directory takes both names).
SNAPSHOTS_DIR = "snapshots"
#: The Rust original's log: one file, never rotated.
RUST_WAL_NAME = "actionqueue.wal"
#: The file a writer locks (besides the ``wal/`` folder itself).
LOCK_NAME = "LOCK"
#: A clean close's record of what the writer checked (:mod:`.checkpoint`).
CHECKPOINT_NAME = "CHECKPOINT"
#: The list of the log's segments (:mod:`.catalog`).
MANIFEST_NAME = "MANIFEST"
#: Segment files are ``<first sequence, 20 digits>.seg``; a sealed one has a ``.seal`` beside it.
SEGMENT_SUFFIX = ".seg"
SEAL_SUFFIX = ".seal"
#: Every atomic replace writes ``<name>.tmp`` first (a crash can leave one behind).
TMP_SUFFIX = ".tmp"
#: Where repair keeps what it removed.
BACKUP_DIR = "repair-backup"

#: Default size at which the active segment is sealed and a new one begun.
DEFAULT_SEGMENT_BYTES = 64 << 20

#: Seals name their predecessor's last sequence from format 2 on; format 1 is still read.
SEAL_FORMAT = "actionqueue-seal-2"
SEAL_FORMATS_READ = ("actionqueue-seal-1", SEAL_FORMAT)
MANIFEST_FORMAT = "actionqueue-manifest-1"
CHECKPOINT_FORMAT = "actionqueue-checkpoint-2"
#: A seal, MANIFEST or CHECKPOINT larger than this is damaged (never read into memory whole).
METADATA_BYTES_MAX = 16 << 20
#: How often a listing that raced with a rotation or removal is redone before the gap it
#: shows is taken as real.
LISTING_ATTEMPTS_MAX = 8
