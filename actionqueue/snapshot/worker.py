"""The child process that takes a snapshot of a data dir through a given sequence.

It shares nothing with the process that runs the commands but the files: it reads the
newest snapshot (through its image, records left in the bytes), folds the log's events
after it up to ``through`` (all durable: the parent synced them before asking), builds the
snapshot (records unchanged since the last one are copied, not re-encoded) and writes it
atomically. So the command path keeps its interpreter lock, its memory and its latency:
only the disk is shared.

Run as ``python -m actionqueue.snapshot.worker DATA_DIR THROUGH TIMESTAMP``; prints one
JSON line (``{"ok": true, "sequence": ..., "bytes": ..., "seconds": ...}`` or
``{"ok": false, "error": ..., "type": ...}``) and exits 0 or 1.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["main", "snapshot_through"]


def snapshot_through(data_dir: Path, through: int, timestamp: int) -> dict[str, Any]:
    """Write the snapshot of ``data_dir`` at sequence ``through``; what was done."""
    from .._bulk import gc_paused
    from ..errors import RecoveryError, TornTail
    from ..log.reader import WalReader
    from ..state.reducer import ReplayReducer
    from . import build_snapshot, write_snapshot
    from .newest import read_snapshot

    started = time.perf_counter()
    reducer, base, _error, source = read_snapshot(data_dir, through, read_only=True)
    if reducer is None:
        reducer, base = ReplayReducer(), 0
    if base == through:
        return {"ok": True, "sequence": through, "unchanged": True, "seconds": time.perf_counter() - started}
    loaded = time.perf_counter()
    try:
        with gc_paused():
            for batch in WalReader(data_dir, from_sequence=base + 1).batches():
                if batch[-1].sequence > through:
                    batch = [e for e in batch if e.sequence <= through]
                reducer.apply_all(batch)
                if reducer.latest_sequence >= through:
                    break
    except TornTail:
        # the parent may be appending past ``through``: a record it is writing is no damage
        if reducer.latest_sequence < through:
            raise
    if reducer.latest_sequence != through:
        raise RecoveryError(f"the log of {data_dir} ends at {reducer.latest_sequence}, before {through}")
    folded = time.perf_counter()
    snapshot = build_snapshot(reducer, timestamp)
    built = time.perf_counter()
    path = write_snapshot(data_dir, snapshot)
    return {
        "ok": True,
        "sequence": through,
        "bytes": path.stat().st_size,
        "source": source,
        "events_folded": through - base,
        "seconds": {"load": loaded - started, "fold": folded - loaded, "build": built - folded,
                    "write": time.perf_counter() - built},
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        data_dir, through, timestamp = Path(args[0]), int(args[1]), int(args[2])
        result = snapshot_through(data_dir, through, timestamp)
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which logs it
        result = {"ok": False, "type": type(exc).__name__, "error": str(exc)}
    print(json.dumps(result), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":  # pragma: no cover - run as a child process
    sys.exit(main())
