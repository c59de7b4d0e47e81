"""msgspec equivalents of the event kinds in the reference workload (and the nested types
they use), for the side-by-side codec benchmark. Imported only when msgspec is installed."""

from __future__ import annotations

import enum
from typing import Optional, Union

import msgspec

import actionqueue as aq

class MRunState(enum.IntEnum):
    SCHEDULED = 0
    READY = 1
    LEASED = 2
    RUNNING = 3
    RETRY_WAIT = 4
    SUSPENDED = 5
    COMPLETED = 6
    FAILED = 7
    CANCELED = 8


class MAttemptResultKind(enum.IntEnum):
    SUCCESS = 0
    FAILURE = 1
    TIMEOUT = 2
    SUSPENDED = 3


class MHoldPolicy(enum.IntEnum):
    HOLD_DURING_RETRY = 0
    RELEASE_ON_RETRY = 1


class MSafetyLevel(enum.IntEnum):
    PURE = 0
    IDEMPOTENT = 1
    TRANSACTIONAL = 2


# Subclasses inherit frozen=True; each states it again for type checkers, which read
# msgspec's dataclass_transform per class (msgspec/msgspec#657).
class _S(msgspec.Struct, array_like=True, frozen=True):
    pass


class MTaskPayload(_S, frozen=True):
    data: bytes  # "bytes" in aq; renamed so the annotation resolves to the builtin
    content_type: Optional[str]


class MOncePolicy(_S, tag=0, frozen=True):
    pass


class MRepeatPolicy(_S, tag=1, frozen=True):
    count: int
    interval_secs: int


class MCronPolicy(_S, tag=2, frozen=True):
    expression: str
    max_occurrences: Optional[int]


class MTaskConstraints(_S, frozen=True):
    max_attempts: int
    timeout_secs: Optional[int]
    concurrency_key: Optional[str]
    concurrency_key_hold_policy: MHoldPolicy
    safety_level: MSafetyLevel
    required_capabilities: Optional[tuple[str, ...]]


class MTaskMetadata(_S, frozen=True):
    tags: tuple[str, ...]
    priority: int
    description: Optional[str]


class MTaskSpec(_S, frozen=True):
    id: bytes
    payload: MTaskPayload
    run_policy: Union[MOncePolicy, MRepeatPolicy, MCronPolicy]
    constraints: MTaskConstraints
    metadata: MTaskMetadata
    parent_task_id: Optional[bytes]
    tenant_id: Optional[bytes]


class MRunInstance(_S, frozen=True):
    id: bytes
    task_id: bytes
    state: MRunState
    current_attempt_id: Optional[bytes]
    attempt_count: int
    created_at: int
    scheduled_at: int
    effective_priority: int
    last_state_change_at: int


class MTaskCreated(_S, tag=0, frozen=True):
    task_spec: MTaskSpec
    timestamp: int


class MRunCreated(_S, tag=1, frozen=True):
    run_instance: MRunInstance


class MRunStateChanged(_S, tag=2, frozen=True):
    run_id: bytes
    previous_state: MRunState
    new_state: MRunState
    timestamp: int


class MAttemptStarted(_S, tag=3, frozen=True):
    run_id: bytes
    attempt_id: bytes
    timestamp: int


class MAttemptFinished(_S, tag=4, frozen=True):
    run_id: bytes
    attempt_id: bytes
    result: MAttemptResultKind
    error: Optional[str]
    output: Optional[bytes]
    timestamp: int


class MLeaseAcquired(_S, tag=7, frozen=True):
    run_id: bytes
    owner: str
    expiry: int
    timestamp: int


class MLeaseHeartbeat(_S, tag=8, frozen=True):
    run_id: bytes
    owner: str
    expiry: int
    timestamp: int


class MLeaseReleased(_S, tag=10, frozen=True):
    run_id: bytes
    owner: str
    expiry: int
    timestamp: int


MEvent = Union[
    MTaskCreated, MRunCreated, MRunStateChanged, MAttemptStarted, MAttemptFinished,
    MLeaseAcquired, MLeaseHeartbeat, MLeaseReleased,
]


class MWalEvent(_S, frozen=True):
    sequence: int
    event: MEvent


def _opt_id(x):
    return None if x is None else x.bytes


def _m_policy(p):
    if isinstance(p, aq.RepeatPolicy):
        return MRepeatPolicy(p.count, p.interval_secs)
    if isinstance(p, aq.CronPolicy):
        return MCronPolicy(p.expression, p.max_occurrences)
    return MOncePolicy()


def _m_task_created(e):
    s = e.task_spec
    c = s.constraints
    md = s.metadata
    return MTaskCreated(
        MTaskSpec(
            s.id.bytes,
            MTaskPayload(s.payload.bytes, s.payload.content_type),
            _m_policy(s.run_policy),
            MTaskConstraints(
                c.max_attempts, c.timeout_secs, c.concurrency_key,
                MHoldPolicy(c.concurrency_key_hold_policy.index), MSafetyLevel(c.safety_level.index),
                c.required_capabilities,
            ),
            MTaskMetadata(md.tags, md.priority, md.description),
            _opt_id(s.parent_task_id),
            _opt_id(s.tenant_id),
        ),
        e.timestamp,
    )


def _m_run_created(e):
    r = e.run_instance
    return MRunCreated(MRunInstance(
        r.id.bytes, r.task_id.bytes, MRunState(r.state.index), _opt_id(r.current_attempt_id),
        r.attempt_count, r.created_at, r.scheduled_at, r.effective_priority, r.last_state_change_at,
    ))


_TO_MSGSPEC = {
    aq.TaskCreated: _m_task_created,
    aq.RunCreated: _m_run_created,
    aq.RunStateChanged: lambda e: MRunStateChanged(
        e.run_id.bytes, MRunState(e.previous_state.index), MRunState(e.new_state.index), e.timestamp),
    aq.AttemptStarted: lambda e: MAttemptStarted(e.run_id.bytes, e.attempt_id.bytes, e.timestamp),
    aq.AttemptFinished: lambda e: MAttemptFinished(
        e.run_id.bytes, e.attempt_id.bytes, MAttemptResultKind(e.result.index), e.error, e.output, e.timestamp),
    aq.LeaseAcquired: lambda e: MLeaseAcquired(e.run_id.bytes, e.owner, e.expiry, e.timestamp),
    aq.LeaseHeartbeat: lambda e: MLeaseHeartbeat(e.run_id.bytes, e.owner, e.expiry, e.timestamp),
    aq.LeaseReleased: lambda e: MLeaseReleased(e.run_id.bytes, e.owner, e.expiry, e.timestamp),
}


def to_msgspec(events):
    conv = _TO_MSGSPEC
    return [MWalEvent(we.sequence, conv[type(we.event)](we.event)) for we in events]
