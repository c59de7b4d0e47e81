# cython: annotation_typing=False
"""The run rules: the one place that says what a run may do.

The replay reducer, the mutation authority and snapshot validation (both codecs) all ask
this module; none of them lists a state, an outcome shape or a lease rule of its own:

* the state machine: which transitions are allowed (:data:`TRANSITIONS`), which states
  are terminal;
* attempts: which transitions an active attempt blocks (:func:`attempt_blocks`), in which
  states a snapshot may show one (:data:`ATTEMPT_LINEAGE_STATES`), and the shape of an
  attempt's outcome (:func:`outcome_shape_error`, :func:`normalize_attempt_outcome`);
* leases: in which states each lease event is accepted (:data:`LEASE_EVENT_STATES`) and in
  which states no run can hold one (:data:`LEASE_FORBIDDEN_STATES`, derived from the two
  rules above and the state machine).

States, in wire order: Scheduled, Ready, Leased, Running, RetryWait, Suspended, Completed,
Failed, Canceled. Completed, Failed and Canceled are terminal: nothing leaves them. There are
no self loops.
"""

from __future__ import annotations

from ..errors import LEASE_EVENT_TEXT
from ..model import AttemptResultKind, RunState

__all__ = [
    "TRANSITIONS",
    "TERMINAL_STATES",
    "ALLOWED_BY_STATE",
    "is_valid_transition",
    "valid_transitions",
    "is_terminal",
    "BLOCKED_BY_ACTIVE_ATTEMPT",
    "attempt_blocks",
    "ATTEMPT_LINEAGE_STATES",
    "outcome_shape_error",
    "normalize_attempt_outcome",
    "LEASE_EVENT_STATES",
    "LEASE_FORBIDDEN_STATES",
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


# =========================================================================================
# Attempts
# =========================================================================================
#: Per state, the targets a run may not move to while it has an active attempt (ours, spec
#: 6.5, kept by the reducer and checked by the authority): an attempt blocks entering
#: Running and leaving Running other than to Canceled (which drops the attempt).
BLOCKED_BY_ACTIVE_ATTEMPT: dict[RunState, frozenset[RunState]] = {
    src: frozenset(dst for dst in _TARGETS[src]
                   if dst is _S.RUNNING or (src is _S.RUNNING and dst is not _S.CANCELED))
    for src in RunState
}  # fmt: skip


def attempt_blocks(from_state: RunState, to_state: RunState) -> bool:
    """True when an active attempt forbids ``from_state -> to_state``."""
    return to_state in BLOCKED_BY_ACTIVE_ATTEMPT[from_state]


#: States a run with an active attempt may be in, in a snapshot (Rust's mapping rule
#: ``InvalidAttemptLineageState``).
ATTEMPT_LINEAGE_STATES: frozenset[RunState] = frozenset({_S.RUNNING, _S.CANCELED})

_SUCCESS = AttemptResultKind.SUCCESS
_SUSPENDED_RESULT = AttemptResultKind.SUSPENDED
_FAILURE = AttemptResultKind.FAILURE


def outcome_shape_error(
    result: AttemptResultKind, error: str | None, output: bytes | None
) -> str | None:
    """Why Rust's ``AttemptOutcome`` constructors refuse this shape (the authority's
    rejection kind: ``SuccessWithError``, ``NonSuccessWithoutError``,
    ``NonSuccessWithOutput``), or None when they accept it.

    Success and Suspended carry no error; Failure and Timeout carry an error and no output.
    """
    if result is _SUCCESS or result is _SUSPENDED_RESULT:
        return "SuccessWithError" if error is not None else None
    if error is None:
        return "NonSuccessWithoutError"
    return "NonSuccessWithOutput" if output is not None else None


def normalize_attempt_outcome(
    result: AttemptResultKind, error: str | None, output: bytes | None
) -> tuple[AttemptResultKind, str | None, bytes | None]:
    """The outcome an ``AttemptFinished`` event lands as in attempt history.

    A shape Rust's ``AttemptOutcome::from_raw_parts`` accepts (:func:`outcome_shape_error`
    is None) is kept verbatim (an empty output stays ``b""``). The others are replaced,
    never rejected: Success or Suspended with an error lose the error *and* the output;
    Failure or Timeout lose any output and get ``"unknown failure"`` /
    ``"unknown timeout"`` when they carry no error.
    """
    if outcome_shape_error(result, error, output) is None:
        return result, error, output
    if result is _SUCCESS or result is _SUSPENDED_RESULT:
        return result, None, None
    if error is None:
        error = "unknown failure" if result is _FAILURE else "unknown timeout"
    return result, error, None


# =========================================================================================
# Leases
# =========================================================================================
#: Per lease event (as Rust's ``LeaseCausality`` errors name them), the run states in which
#: it is accepted (Rust's lease causality rules).
LEASE_EVENT_STATES: dict[str, frozenset[RunState]] = {
    "Acquire": frozenset({_S.READY, _S.LEASED}),
    "Heartbeat": frozenset({_S.LEASED, _S.RUNNING}),
    "Expire": frozenset({_S.READY, _S.LEASED, _S.RUNNING}),
    "Release": frozenset({_S.READY, _S.LEASED, _S.RUNNING}),
}
assert set(LEASE_EVENT_STATES) == set(LEASE_EVENT_TEXT)


def _lease_holding_states() -> frozenset[RunState]:
    """States a leased run can reach: from where a lease is acquired, along the state
    machine, up to a terminal state (which clears the lease)."""
    seen: set[RunState] = set()
    todo = list(LEASE_EVENT_STATES["Acquire"])
    while todo:
        state = todo.pop()
        if state in seen or state in TERMINAL_STATES:
            continue
        seen.add(state)
        todo.extend(_TARGETS[state])
    return frozenset(seen)


#: States in which no run can hold a lease (Rust's snapshot rule ``InvalidLeasePresence``):
#: Scheduled, before a lease can be acquired, and the terminal states.
LEASE_FORBIDDEN_STATES: frozenset[RunState] = frozenset(RunState) - _lease_holding_states()
assert LEASE_FORBIDDEN_STATES == {_S.SCHEDULED} | TERMINAL_STATES
