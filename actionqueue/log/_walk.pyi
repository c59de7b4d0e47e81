"""Type stubs for the native record walker (``_wal.pyx``); ``_wal_py`` has the same surface."""

from typing import Any, Iterable, Literal, overload

import numpy as np
import numpy.typing as npt

from ..model import WalEvent

DEFAULT_MAX_PAYLOAD: int

_Buffer = bytes | bytearray | memoryview | Any

_WalkResult = tuple[int, int, int | None, int, str | None, list[WalEvent] | None]

# collect=True: the events are always a list (possibly empty)
@overload
def walk(
    buf: _Buffer,
    start: int,
    prev_sequence: int | None,
    max_payload: int,
    collect: Literal[True],
    max_records: int = -1,
    collect_from: int = 0,
    trusted: bool = False,
) -> tuple[int, int, int | None, int, str | None, list[WalEvent]]: ...
@overload
def walk(
    buf: _Buffer,
    start: int = 0,
    prev_sequence: int | None = None,
    max_payload: int = ...,
    collect: bool = False,
    max_records: int = -1,
    collect_from: int = 0,
    trusted: bool = False,
) -> _WalkResult: ...
def skip_below(
    buf: _Buffer, start: int, prev_sequence: int | None, sequence: int
) -> tuple[int, int, int | None]: ...
def find_valid_record(buf: _Buffer, start: int, max_payload: int = ...) -> int: ...
def scan_frames(
    buf: _Buffer, check_crc: bool = True
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint32], int]: ...
def scan_columns(
    buf: _Buffer,
    start: int = 0,
    prev_sequence: int | None = None,
    kinds: int = ...,
    min_sequence: int = 0,
    max_sequence: int = ...,
    max_payload: int = ...,
) -> tuple[
    tuple[
        npt.NDArray[np.uint64],
        npt.NDArray[np.uint32],
        npt.NDArray[np.uint64],
        npt.NDArray[np.uint8],
        npt.NDArray[np.uint64],
    ],
    int,
    int,
    int | None,
]: ...
def decode_at(buf: _Buffer, offsets: Iterable[int]) -> list[WalEvent]: ...
