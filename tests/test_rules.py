"""The run rules (actionqueue.state.rules), against tables written out by hand from Rust's
sources and spec (reducer.md): the one home the reducer, the authority and both snapshot
validators ask."""

from __future__ import annotations

import pytest

import actionqueue as aq
from actionqueue.state import rules

S = aq.RunState
R = aq.AttemptResultKind


def test_lease_states_per_event() -> None:
    assert rules.LEASE_EVENT_STATES == {
        "Acquire": {S.READY, S.LEASED},
        "Heartbeat": {S.LEASED, S.RUNNING},
        "Expire": {S.READY, S.LEASED, S.RUNNING},
        "Release": {S.READY, S.LEASED, S.RUNNING},
    }


def test_no_lease_before_it_can_be_acquired_or_after_the_end() -> None:
    assert rules.LEASE_FORBIDDEN_STATES == {S.SCHEDULED, S.COMPLETED, S.FAILED, S.CANCELED}


@pytest.mark.parametrize(
    "prev, new, blocked",
    [
        (S.LEASED, S.RUNNING, True),  # entering Running
        (S.RUNNING, S.COMPLETED, True),  # leaving Running...
        (S.RUNNING, S.FAILED, True),
        (S.RUNNING, S.RETRY_WAIT, True),
        (S.RUNNING, S.SUSPENDED, True),
        (S.RUNNING, S.CANCELED, False),  # ...but to Canceled, which drops the attempt
        (S.READY, S.LEASED, False),
        (S.SCHEDULED, S.CANCELED, False),
        (S.SUSPENDED, S.READY, False),
    ],
)
def test_an_active_attempt_blocks(prev, new, blocked) -> None:
    assert rules.attempt_blocks(prev, new) is blocked


def test_blocked_transitions_are_all_allowed_ones() -> None:
    for prev, targets in rules.BLOCKED_BY_ACTIVE_ATTEMPT.items():
        assert all(rules.is_valid_transition(prev, new) for new in targets)


def test_a_snapshot_shows_an_active_attempt_only_running_or_canceled() -> None:
    assert rules.ATTEMPT_LINEAGE_STATES == {S.RUNNING, S.CANCELED}


@pytest.mark.parametrize(
    "result, error, output, refused",
    [
        (R.SUCCESS, None, None, None),
        (R.SUCCESS, None, b"out", None),
        (R.SUSPENDED, None, b"", None),
        (R.SUCCESS, "e", None, "SuccessWithError"),
        (R.SUSPENDED, "e", b"x", "SuccessWithError"),
        (R.FAILURE, "e", None, None),
        (R.TIMEOUT, "e", None, None),
        (R.FAILURE, None, None, "NonSuccessWithoutError"),
        (R.TIMEOUT, None, b"x", "NonSuccessWithoutError"),
        (R.FAILURE, "e", b"x", "NonSuccessWithOutput"),
    ],
)
def test_outcome_shapes(result, error, output, refused) -> None:
    assert rules.outcome_shape_error(result, error, output) == refused


@pytest.mark.parametrize(
    "given, lands",
    [
        ((R.SUCCESS, None, b""), (R.SUCCESS, None, b"")),
        ((R.SUCCESS, "e", b"x"), (R.SUCCESS, None, None)),
        ((R.SUSPENDED, "e", None), (R.SUSPENDED, None, None)),
        ((R.FAILURE, None, b"x"), (R.FAILURE, "unknown failure", None)),
        ((R.TIMEOUT, None, None), (R.TIMEOUT, "unknown timeout", None)),
        ((R.FAILURE, "e", b"x"), (R.FAILURE, "e", None)),
        ((R.TIMEOUT, "t", None), (R.TIMEOUT, "t", None)),
    ],
)
def test_outcomes_land_normalised(given, lands) -> None:
    assert rules.normalize_attempt_outcome(*given) == lands
