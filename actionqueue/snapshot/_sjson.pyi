"""Stubs of the native snapshot codec (``_sjson.pyx``)."""

from typing import Any, final

import numpy as np
import numpy.typing as npt

from ..errors import SnapshotMappingError
from ..state.reducer import ReplayReducer

DEPTH_MAX: int
UNKNOWN_KEYS_MAX: int
HISTORY_MAX: int
ESCAPED_KEYS_MAX: int
#: the run state machine's transitions, as the native run rules read them
TRANSITIONS: Any

@final
class Out:
    """The native writer's output buffer (opaque)."""

@final
class Plan:
    """One compiled node of the wire schema (opaque)."""

@final
class FactsBox:
    """A run's facts for the run rules (opaque)."""

@final
class Keys:
    """The known keys of one object kind (opaque)."""
    def __init__(self, *args: Any) -> None: ...

@final
class Spans:
    task_ids: npt.NDArray[np.uint8]
    task_start: npt.NDArray[np.uint64]
    task_end: npt.NDArray[np.uint64]
    run_ids: npt.NDArray[np.uint8]
    run_task: npt.NDArray[np.uint8]
    run_start: npt.NDArray[np.uint64]
    run_end: npt.NDArray[np.uint64]
    task_canon: npt.NDArray[np.uint8]
    run_canon: npt.NDArray[np.uint8]
    top: dict[str, tuple[int, int]]
    def __init__(self, ntasks: int, nruns: int) -> None: ...
    def shrink(self, ntasks: int, nruns: int) -> None: ...

def encode_projection(
    r: ReplayReducer,
    timestamp: int,
    version: int,
    schema: int,
    small: dict[str, Any],
    cold_tasks: _Cold | None = None,
    cold_runs: _Cold | None = None,
) -> tuple[bytes, Spans, SnapshotMappingError | None]: ...
def encode_builtins(snapshot: Any, version: int) -> bytes: ...
def crc32(data: Any) -> int: ...
_Tasks = tuple[bytes, list[tuple[int, int, int, int | None]]]

def scan(payload: Any) -> tuple[dict[str, int], Spans, _Tasks, tuple[int, SnapshotMappingError] | None]: ...
def thaw_run(payload: Any, start: int, end: int) -> tuple[Any, ...]: ...
def scan_task(payload: Any, start: int, end: int) -> _Tasks: ...

class _Cold:
    def __init__(self, payload: Any, ids: Any, start: Any, end: Any, rows: Any, task: Any = None) -> None: ...

#: the export's id columns, in order
EXPORT_ID_COLUMNS: tuple[str, str, str]
JSON_BODY: int
JSON_LINES: int
JSON_NONE: int

def events_json(
    buf: Any, offsets: npt.NDArray[np.uint64], mode: int = ...
) -> tuple[bytes, npt.NDArray[np.int64], list[npt.NDArray[np.uint8]], npt.NDArray[np.int32]]: ...
