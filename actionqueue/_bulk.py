"""Helpers for bulk work: replays and snapshots that build or walk millions of objects."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Hold off the cyclic garbage collector for a bulk build.

    A replay or a snapshot creates millions of long-lived objects and no reference
    cycles; with the collector on, each full collection re-walks everything built so far
    (about a third of a replay's time, most of a snapshot's, on the reference workload).
    It is switched back on afterwards if it was on; nesting is fine.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
