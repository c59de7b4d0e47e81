"""The writer's options that are choices: :class:`Durability` and :class:`RepairPolicy`,
each with the ``Literal`` of its string spellings (every API takes either)."""

from __future__ import annotations

import enum
from typing import Literal

__all__ = ["Durability", "DurabilityName", "RepairPolicy", "RepairPolicyName"]


class RepairPolicy(enum.Enum):
    """What opening a writer does about a torn tail."""

    #: Refuse to open (the default, as in Rust).
    STRICT = "strict"
    #: Cut a torn tail (an incomplete or damaged last record) off, then open.
    TRUNCATE_PARTIAL = "truncate_partial"


#: The string spellings the ``repair_policy`` options take beside the enum.
RepairPolicyName = Literal["strict", "truncate_partial"]


class Durability(enum.Enum):
    """When an append returns, relative to its bytes reaching stable storage."""

    #: fsync after every append (the Rust authority's ``Immediate`` behaviour).
    FSYNC = "fsync"
    #: group commit: concurrent appends wait together for one fsync; each returns only
    #: after an fsync that covers its bytes has succeeded.
    GROUP = "group"
    #: no fsync (the OS writes back when it likes). A crash of the machine may lose any
    #: number of appends that had returned. Call :meth:`WalWriter.sync` to make them durable.
    NONE = "none"


#: The string spellings the ``durability`` options take beside the enum.
DurabilityName = Literal["fsync", "group", "none"]
