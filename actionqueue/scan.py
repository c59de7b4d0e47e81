"""Scanning logs into numpy columns, kept importable from ``actionqueue.scan``; the code
lives in :mod:`actionqueue.log.scan`.

This module is also callable as :func:`scan`, so that ``actionqueue.scan(data_dir)`` (the
public function) and ``actionqueue.scan.scan(data_dir)`` (this module's) both work.
"""

from __future__ import annotations

import sys
import types

from .log.scan import ScanColumns, SegmentScanner, iter_scan, kind_mask, scan

__all__ = ["ScanColumns", "SegmentScanner", "scan", "iter_scan", "kind_mask"]


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs) -> ScanColumns:
        return scan(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
