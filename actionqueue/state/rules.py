"""The run state machine: the one place that says which run-state transitions are allowed.

Everything else (the replay reducer, the mutation authority, tests that need a valid next
state) asks this module; nothing else lists transitions.

States, in wire order: Scheduled, Ready, Leased, Running, RetryWait, Suspended, Completed,
Failed, Canceled. Completed, Failed and Canceled are terminal: nothing leaves them. There are
no self loops.
"""

from __future__ import annotations

from ..model import RunState

__all__ = [
    "TRANSITIONS",
    "TERMINAL_STATES",
    "is_valid_transition",
    "valid_transitions",
    "is_terminal",
]

_S = RunState

#: The 17 allowed ``(from, to)`` pairs: the whole run state machine.
TRANSITIONS: tuple[tuple[RunState, RunState], ...] = (
    (_S.SCHEDULED, _S.READY),
    (_S.SCHEDULED, _S.CANCELED),
    (_S.READY, _S.LEASED),
    (_S.READY, _S.CANCELED),
    (_S.LEASED, _S.READY),
    (_S.LEASED, _S.RUNNING),
    (_S.LEASED, _S.CANCELED),
    (_S.RUNNING, _S.RETRY_WAIT),
    (_S.RUNNING, _S.SUSPENDED),
    (_S.RUNNING, _S.COMPLETED),
    (_S.RUNNING, _S.FAILED),
    (_S.RUNNING, _S.CANCELED),
    (_S.RETRY_WAIT, _S.READY),
    (_S.RETRY_WAIT, _S.FAILED),
    (_S.RETRY_WAIT, _S.CANCELED),
    (_S.SUSPENDED, _S.READY),
    (_S.SUSPENDED, _S.CANCELED),
)

#: States a run never leaves.
TERMINAL_STATES: frozenset[RunState] = frozenset(s for s in RunState if s.is_terminal)

# ---- Lookup forms derived from TRANSITIONS (never edit these by hand) -------------------
_PAIRS = frozenset(TRANSITIONS)

# Targets of each state, in enum order.
_TARGETS: dict[RunState, tuple[RunState, ...]] = {
    src: tuple(dst for dst in RunState if (src, dst) in _PAIRS) for src in RunState
}

#: Hot-path form keyed by member (members hash by identity, in C): the allowed targets.
ALLOWED_BY_STATE: dict[RunState, frozenset[RunState]] = {src: frozenset(t) for src, t in _TARGETS.items()}

assert len(_PAIRS) == len(TRANSITIONS) == 17
assert not any(_TARGETS[s] for s in TERMINAL_STATES)


def is_valid_transition(from_state: RunState, to_state: RunState) -> bool:
    """True when a run may move from ``from_state`` to ``to_state`` (one of the 17 pairs)."""
    return to_state in ALLOWED_BY_STATE[from_state]


def valid_transitions(from_state: RunState) -> tuple[RunState, ...]:
    """The states reachable from ``from_state`` in one step, in enum order."""
    return _TARGETS[from_state]


def is_terminal(state: RunState) -> bool:
    """True for Completed, Failed and Canceled."""
    return state in TERMINAL_STATES
