"""Export benchmark: the reference log to Arrow and Parquet (issue 13's goals).

Run:  actionqueue bench --section export

What is timed (median of ``repeat`` samples; a data dir in Rust's layout holding the
reference workload, page cache warm), each end to end from the data dir:

* the scan's columns as an Arrow table (``scan(dir).to_arrow()``: every record framed,
  CRC-checked and validated; no event objects, no copies into Arrow), goal >= 10 M ev/s;
* ``export.to_arrow(dir, fields=False)``: the same plus the id columns (one native pass
  over the payloads);
* ``export.to_arrow(dir)``: plus the fields as JSON;
* ``export.write_parquet`` (zstd) with and without the JSON fields, goal >= 1 M ev/s
  for the default (with fields); ``write_arrow`` (IPC) and ``write_jsonl``.

Beside them, a numpy copy of the WAL bytes: the machine's memory speed in this run.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import export
from ..log.scan import scan
from .harness import Report, sample

#: Goals of issue 13 (events/s).
PARQUET_GOAL = 1e6
COLUMNS_GOAL = 10e6


def _data_dir(root: Path, wal: bytes) -> Path:
    d = root / "export"
    (d / "wal").mkdir(parents=True, exist_ok=True)
    (d / "wal" / "actionqueue.wal").write_bytes(wal)
    return d


def run(rep: Report) -> None:
    """The export section."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        rep.skip("export: pyarrow is not installed (pip install 'actionqueue[arrow]')")
        return
    R = rep.config.repeat
    wal = rep.workload()
    root = rep.scratch()
    d = _data_dir(root, wal)
    n = len(scan(d))
    out = root / "out"
    rep.header(f"export: the {n:,}-event log to Arrow and Parquet")
    src = np.frombuffer(wal, dtype=np.uint8)
    dst = np.empty_like(src)
    np.copyto(dst, src)
    rep.row("export", "numpy copy of the WAL bytes (memory speed)", 0, *sample(lambda: np.copyto(dst, src), R),
            len(wal), key="export.copy")
    del dst
    rep.row("export", "scan(dir).to_arrow(): the columns, no objects", n, *sample(lambda: scan(d).to_arrow(), R),
            len(wal), key="export.columns")
    rep.row("export", "to_arrow(dir, fields=False): + task/run/attempt ids", n,
            *sample(lambda: export.to_arrow(d, fields=False), R), len(wal), key="export.ids")
    rep.row("export", "to_arrow(dir): + fields as JSON", n, *sample(lambda: export.to_arrow(d), R), len(wal),
            key="export.table")
    rows = [
        ("write_parquet (zstd), with fields", "export.parquet", lambda: export.write_parquet(d, out, overwrite=True)),
        ("write_parquet (zstd), fields=False", "export.parquet_nf",
         lambda: export.write_parquet(d, out, overwrite=True, fields=False)),
        ("write_arrow (IPC file), with fields", "export.ipc", lambda: export.write_arrow(d, out, overwrite=True)),
        ("write_jsonl (dump's lines)", "export.jsonl", lambda: export.write_jsonl(d, out, overwrite=True)),
    ]
    sizes = {}
    for name, key, fn in rows:
        row = rep.row("export", name, n, *sample(fn, R), len(wal), key=key)
        sizes[key] = os.path.getsize(out)
        row["file_bytes"] = sizes[key]
    out.unlink(missing_ok=True)
    rep.say("  file sizes: " + ", ".join(f"{k.split('.')[1]} {v / 2**20:.1f} MiB" for k, v in sizes.items()))
    rep.say("")
    cols_eps, parquet_eps = rep.eps("export.columns"), rep.eps("export.parquet")
    cols_x = rep.ratio("Arrow table of columns / 10 M ev/s goal", cols_eps / COLUMNS_GOAL)
    pq_x = rep.ratio("Parquet with fields / 1 M ev/s goal", parquet_eps / PARQUET_GOAL)
    rep.ratio("Parquet fields=False / 1 M ev/s goal", rep.eps("export.parquet_nf") / PARQUET_GOAL)
    rep.goal("Arrow table of columns >= 10 M ev/s", cols_x >= 1, f"{cols_eps / 1e6:.1f} M ev/s = {cols_x:.2f}x")
    rep.goal("Parquet (with fields) >= 1 M ev/s", pq_x >= 1, f"{parquet_eps / 1e6:.2f} M ev/s = {pq_x:.2f}x")
