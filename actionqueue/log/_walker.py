"""The record walker of the chosen backend: native (``_wal.pyx``) or its pure-Python twin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import _backend

if TYPE_CHECKING or _backend.NATIVE:  # type checkers see the native stubs
    from ..codec import _codec as codec
    from . import _walk as walker
else:
    from ..codec import _codec_py as codec  # type: ignore[no-redef]
    from . import _walk_py as walker  # type: ignore[no-redef]

__all__ = ["codec", "walker"]
