"""The leader's session tracker, tick by tick."""

from __future__ import annotations

import pytest

from zkcore import LocalError
from zkcore._sessions import SessionTracker


def run(tracker: SessionTracker, ticks: int) -> list[list[int]]:
    return [tracker.tick() for _ in range(ticks)]


def test_quiet_session_expires_after_its_timeout() -> None:
    t = SessionTracker(tick_ms=100)
    t.add(7, timeout_ms=250)  # 3 ticks
    assert run(t, 3) == [[], [], []]
    assert t.tick() == [7]
    assert 7 not in t and len(t) == 0
    assert not t.touch(7), "an expired session cannot be brought back by a late touch"


def test_touch_pushes_the_deadline() -> None:
    t = SessionTracker(tick_ms=100)
    t.add(1, 200)
    t.add(2, 200)
    for _ in range(5):
        t.tick()
        assert t.touch(1)
    assert 1 in t and 2 not in t
    assert run(t, 3) == [[], [], [1]]


def test_expired_come_out_in_id_order_and_removed_never_expire() -> None:
    t = SessionTracker(tick_ms=10)
    for sid in (30, 10, 20, 40):
        t.add(sid, 10)
    t.remove(40)
    assert run(t, 2) == [[], [10, 20, 30]]


@pytest.mark.parametrize("tick_ms", [0, -5])
def test_bad_tick(tick_ms: int) -> None:
    with pytest.raises(LocalError, match="tick_ms must be positive"):
        SessionTracker(tick_ms)
