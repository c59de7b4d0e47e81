"""The newest valid snapshot of a data dir, as a reducer: from its image when one matches,
else from ``snapshot.bin`` (parsed and validated once). Recovery, the read-only paths and
the background snapshot worker all start here."""

from __future__ import annotations

import builtins
import logging
from pathlib import Path

from ..errors import ReducerError, SnapshotError
from ..log.catalog import Catalog
from ..log.files import OS, Files
from ..log.format import DEFAULT_MAX_PAYLOAD
from ..log.validate import first_sequence
from ..state.reducer import ReplayReducer
from . import image_path, load_hydrated, reducer_from_image, snapshot_path

__all__ = ["json_snapshot_costs_more_than_replay", "read_snapshot"]

log = logging.getLogger("actionqueue.recovery")


def read_snapshot(
    data_dir, at_most: int | None = None, *, write_image: bool = False, read_only: bool = False, fs: Files = OS
) -> tuple[ReplayReducer | None, int, str | None, str | None]:
    """``(reducer, sequence, error, source)`` of the data dir's snapshot, for recovery:
    the reducer is None when there is none, it is damaged (``error`` says why) or newer
    than ``at_most``. Read from its image when there is a matching one (``source``
    ``"image"``), else from ``snapshot.bin`` (``"json"``), parsed and validated once.

    ``write_image``: after reading the JSON, write its image for next time (the caller
    holds the writer). ``read_only``: a caller that cannot write the image skips a JSON
    that would take longer than replaying the whole log
    (:func:`json_snapshot_costs_more_than_replay`)."""
    data_dir = Path(data_dir)
    if read_only and json_snapshot_costs_more_than_replay(data_dir):
        return None, 0, None, None
    reducer = reducer_from_image(data_dir)
    if reducer is not None and (at_most is None or reducer.latest_sequence <= at_most):
        return reducer, reducer.latest_sequence, None, "image"
    try:
        loaded = load_hydrated(data_dir, fs, write_image)
    except (SnapshotError, ReducerError, ValueError) as exc:
        log.warning("ignoring the snapshot of %s: %s", data_dir, exc)
        return None, 0, f"{type(exc).__name__}: {exc}", None
    if loaded is None:
        return None, 0, None, None
    reducer, sequence = loaded
    if at_most is not None and sequence > at_most:
        return None, 0, None, None
    return reducer, sequence, None, "json"


#: A snapshot's JSON is parsed about this many times slower per byte than the log replays.
_JSON_COST_PER_LOG_BYTE = 5


def json_snapshot_costs_more_than_replay(data_dir) -> bool:
    """Whether reading the data dir's ``snapshot.bin`` (no usable image: its JSON would be
    parsed) would take longer than replaying the whole log, and the log is whole (its
    first record has sequence 1, so a full replay gives the same state).

    Read-only callers (:func:`replay_to`, the CLI's ``inspect``/``stats``) then replay the
    log instead: they cannot write the image that makes the next read fast, as
    :func:`open` does. (Judged by sizes: about 5x the log's bytes in JSON.)
    """
    data_dir = Path(data_dir)
    try:
        json_bytes = snapshot_path(data_dir).stat().st_size
        files = Catalog.load(data_dir).files
        if not files:
            return False
        log_bytes = sum(f.stat().st_size for f in files)
        if json_bytes * _JSON_COST_PER_LOG_BYTE <= log_bytes or image_path(data_dir).exists():
            return False
        with builtins.open(files[0], "rb") as f:
            head = f.read(12)
            if len(head) < 12:
                return False
            buf = head + f.read(int.from_bytes(head[4:8], "little"))
    except OSError:
        return False
    return first_sequence(buf, DEFAULT_MAX_PAYLOAD) == 1
