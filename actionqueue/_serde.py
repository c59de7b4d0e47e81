"""JSON conversion methods shared by every model type (the work is done by ``_json``)."""

from __future__ import annotations

from typing import Any


class Serde:
    """JSON conversion in serde_json's shape, shared by every model type."""

    __slots__ = ()

    def to_builtins(self) -> Any:
        """The serde_json shape of this value as plain Python objects (dict, list, str, int)."""
        from ._json import to_builtins

        return to_builtins(self)

    @classmethod
    def from_builtins(cls, obj: Any):
        """Build a value from the serde_json shape (the inverse of :meth:`to_builtins`)."""
        from ._json import from_builtins

        return from_builtins(cls, obj)

    def to_json(self) -> str:
        """Compact JSON, byte for byte what Rust's ``serde_json::to_string`` writes."""
        from ._json import dumps

        return dumps(self.to_builtins())

    @classmethod
    def from_json(cls, text: "str | bytes"):
        """Parse the JSON that Rust's ``serde_json`` writes for this type."""
        from ._json import loads

        return cls.from_builtins(loads(text))
