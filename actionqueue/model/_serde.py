"""JSON conversion methods shared by every model type.

The work is done by :mod:`.json`, which sits above the model types (it needs their
classes) and binds itself here when it is imported (``model/__init__`` imports it after
the types): the types call down to this module, never up, so there is no import cycle.
"""

from __future__ import annotations

from typing import Any, Callable

# Bound by actionqueue.model.json: (to_builtins, from_builtins, dumps, loads).
_to_builtins: Callable[[Any], Any]
_from_builtins: Callable[[type, Any], Any]
_dumps: Callable[[Any], str]
_loads: Callable[["str | bytes"], Any]


def bind(to_builtins: Callable[[Any], Any], from_builtins: Callable[[type, Any], Any],
         dumps: Callable[[Any], str], loads: Callable[["str | bytes"], Any]) -> None:
    """Install the JSON mapping (called once, by :mod:`actionqueue.model.json`)."""
    global _to_builtins, _from_builtins, _dumps, _loads
    _to_builtins, _from_builtins, _dumps, _loads = to_builtins, from_builtins, dumps, loads


class Serde:
    """JSON conversion in serde_json's shape, shared by every model type."""

    __slots__ = ()

    def to_builtins(self) -> Any:
        """The serde_json shape of this value as plain Python objects (dict, list, str, int)."""
        return _to_builtins(self)

    @classmethod
    def from_builtins(cls, obj: Any):
        """Build a value from the serde_json shape (the inverse of :meth:`to_builtins`)."""
        return _from_builtins(cls, obj)

    def to_json(self) -> str:
        """Compact JSON, byte for byte what Rust's ``serde_json::to_string`` writes."""
        return _dumps(self.to_builtins())

    @classmethod
    def from_json(cls, text: "str | bytes"):
        """Parse the JSON that Rust's ``serde_json`` writes for this type."""
        return cls.from_builtins(_loads(text))
