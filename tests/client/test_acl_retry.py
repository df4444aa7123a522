"""zkCli's ACL text both ways, kazoo's ACL helpers, and the Retry policy (tries, backoff, jitter
bounds, deadline), run against a fake clock instead of sleeping."""

from __future__ import annotations

import random

import pytest

from zkclient.acl import (
    ACL,
    Id,
    Permissions,
    format_acl,
    make_acl,
    make_digest_acl,
    parse_acl,
    parse_perms,
)
from zkclient.exceptions import (
    ConnectionClosedError,
    ConnectionLoss,
    InvalidACLError,
    NoNodeError,
    OperationTimeoutError,
    RetryFailedError,
)
from zkclient.retry import ForceRetryError, Retry
from zkcore._acl import digest_id

ACL_CASES = [
    ("world:anyone:cdrwa", [ACL(31, Id("world", "anyone"))]),
    ("world:anyone:r", [ACL(1, Id("world", "anyone"))]),
    ("digest:bob:xyz=:r", [ACL(1, Id("digest", "bob:xyz="))]),
    ("ip:10.0.0.0/8:rw", [ACL(3, Id("ip", "10.0.0.0/8"))]),
    ("ip:fe80::1:a", [ACL(16, Id("ip", "fe80::1"))]),
    ("auth::cdrwa", [ACL(31, Id("auth", ""))]),
    (
        "world:anyone:cdrwa,digest:bob:xyz=:r",
        [ACL(31, Id("world", "anyone")), ACL(1, Id("digest", "bob:xyz="))],
    ),
    (" world:anyone:wrc ", [ACL(7, Id("world", "anyone"))]),
]


@pytest.mark.parametrize("text, acl", ACL_CASES, ids=[c[0] for c in ACL_CASES])
def test_parse_acl(text: str, acl: list[ACL]) -> None:
    assert parse_acl(text) == acl
    assert parse_acl(format_acl(acl)) == acl


@pytest.mark.parametrize("text", ["world:anyone", "world", "world:anyone:x", "world:anyone:", ":x:r", ""])
def test_bad_acl_text(text: str) -> None:
    with pytest.raises(InvalidACLError):
        parse_acl(text)


def test_perms_and_helpers() -> None:
    assert parse_perms("cdrwa") == Permissions.ALL and parse_perms("A") == Permissions.ADMIN
    assert format_acl([ACL(31, Id("world", "anyone"))]) == "world:anyone:cdrwa"
    assert make_acl("world", "anyone", read=True, write=True) == ACL(3, Id("world", "anyone"))
    assert make_acl("world", "anyone", all=True).perms == 31
    assert make_digest_acl("bob", "pw", read=True) == ACL(1, Id("digest", digest_id("bob", "pw")))


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s

    def clock(self) -> float:
        return self.now


def failing(times: int, exc: type[BaseException] = ConnectionLoss) -> tuple[list[int], object]:
    calls: list[int] = []

    def func() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise exc("boom")
        return "ok"

    return calls, func


def retry(t: FakeTime, **kw: object) -> Retry:
    return Retry(sleep_func=t.sleep, clock=t.clock, rng=random.Random(1), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("exc", [ConnectionLoss, OperationTimeoutError, ForceRetryError])
def test_retries_what_is_retryable_with_backoff(exc: type[BaseException]) -> None:
    t = FakeTime()
    calls, func = failing(3, exc)
    assert retry(t, max_tries=5, delay=0.1, backoff=2, max_jitter=0)(func) == "ok"  # type: ignore[arg-type]
    assert len(calls) == 4 and t.sleeps == pytest.approx([0.1, 0.2, 0.4])


def test_jitter_stays_in_bounds_and_max_delay_caps() -> None:
    t = FakeTime()
    _, func = failing(8)
    retry(t, max_tries=10, delay=1.0, backoff=3, max_jitter=0.25, max_delay=2.0)(func)  # type: ignore[arg-type]
    assert all(0.75 <= s <= 2.5 for s in t.sleeps)
    assert Retry(max_tries=4, delay=1, backoff=3, max_delay=5).delays() == [1, 3, 5, 5]


def test_gives_up_after_max_tries_with_the_cause() -> None:
    t = FakeTime()
    calls, func = failing(10)
    with pytest.raises(RetryFailedError) as info:
        retry(t, max_tries=2)(func)  # type: ignore[arg-type]
    assert len(calls) == 3 and isinstance(info.value.__cause__, ConnectionLoss)


def test_gives_up_at_the_deadline() -> None:
    t = FakeTime()
    calls, func = failing(100)
    with pytest.raises(RetryFailedError, match="deadline"):
        retry(t, max_tries=-1, delay=1, backoff=1, max_jitter=0, deadline=3.5)(func)  # type: ignore[arg-type]
    assert len(calls) == 4 and t.now == 3  # tries at 0, 1, 2, 3; the next would start past 3.5


@pytest.mark.parametrize("exc", [NoNodeError, ConnectionClosedError, ValueError])
def test_other_errors_pass_through_at_once(exc: type[BaseException]) -> None:
    t = FakeTime()
    calls, func = failing(1, exc)
    with pytest.raises(exc):
        retry(t, max_tries=5)(func)  # type: ignore[arg-type]
    assert len(calls) == 1 and t.sleeps == []


def test_interrupt_stops_waiting() -> None:
    t = FakeTime()
    _, func = failing(5)
    with pytest.raises(RetryFailedError, match="interrupted"):
        retry(t, max_tries=5, delay=1, interrupt=lambda: True)(func)  # type: ignore[arg-type]
    assert t.sleeps == [0.1]


def test_bad_policies_are_refused() -> None:
    for kw in ({"max_tries": -2}, {"delay": -1}, {"backoff": 0.5}):
        with pytest.raises(ValueError):
            Retry(**kw)
