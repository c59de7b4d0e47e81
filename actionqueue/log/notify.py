"""Wake-ups from writers to followers in the same process.

A follower (``WalReader.follow``) registers an event for the log's directory; a writer
sets the events of its directory after each write. Without followers a write pays one
dict lookup; a follower in another process still polls (its poll interval bounds its
latency), one in this process sees a write as soon as it is made.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

__all__ = ["key_of", "register", "unregister", "wake"]

_lock = threading.Lock()
_waiters: dict[str, tuple[threading.Event, ...]] = {}


def key_of(wal_dir: str | os.PathLike) -> str:
    """The key of a log directory (its resolved path)."""
    return str(Path(wal_dir).resolve())


def register(key: str) -> threading.Event:
    """An event set by every write to the log at ``key`` until :func:`unregister`."""
    event = threading.Event()
    with _lock:
        _waiters[key] = (*_waiters.get(key, ()), event)
    return event


def unregister(key: str, event: threading.Event) -> None:
    with _lock:
        rest = tuple(e for e in _waiters.get(key, ()) if e is not event)
        if rest:
            _waiters[key] = rest
        else:
            _waiters.pop(key, None)


def wake(key: str) -> None:
    """Called by a writer after a write (no lock: a tuple read is atomic)."""
    events = _waiters.get(key)
    if events:
        for event in events:
            event.set()
