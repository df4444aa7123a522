"""The leader's session tracker: when each session was last heard from, in ticks, and which
have gone quiet for longer than their timeout. Expiry is the leader's decision alone; it then
proposes closeSession, so every server deletes the session's ephemerals in the same txn.
"""

from __future__ import annotations

from zkcore import limits
from zkcore._errors import LocalError


class SessionTracker:
    """Sessions kept in buckets by the tick they expire at, as ZooKeeper's ExpiryQueue does:
    a tick looks at one bucket, not at every session."""

    def __init__(self, tick_ms: int) -> None:
        if tick_ms < 1:
            raise LocalError(f"tick_ms must be positive: {tick_ms}")
        self.tick_ms = tick_ms
        self.now = 0
        self._deadline: dict[int, int] = {}  # session -> the tick after which it expires
        self._timeout_ticks: dict[int, int] = {}
        self._buckets: dict[int, dict[int, None]] = {}

    def __len__(self) -> int:
        return len(self._deadline)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._deadline

    def _place(self, session_id: int, deadline: int) -> None:
        old = self._deadline.get(session_id)
        if old == deadline:
            return
        if old is not None:
            bucket = self._buckets[old]
            del bucket[session_id]
            if not bucket:
                del self._buckets[old]
        self._deadline[session_id] = deadline
        self._buckets.setdefault(deadline, {})[session_id] = None

    def add(self, session_id: int, timeout_ms: int) -> None:
        """Track a session from now on; a new leader adds every session with a full timeout."""
        if len(self._deadline) >= limits.sessions_max and session_id not in self._deadline:
            raise LocalError(f"more than sessions_max={limits.sessions_max} sessions")
        ticks = max(1, -(-timeout_ms // self.tick_ms))
        self._timeout_ticks[session_id] = ticks
        self._place(session_id, self.now + ticks)

    def touch(self, session_id: int) -> bool:
        """The session was heard from; False when it is not tracked (expired or unknown)."""
        ticks = self._timeout_ticks.get(session_id)
        if ticks is None:
            return False
        self._place(session_id, self.now + ticks)
        return True

    def remove(self, session_id: int) -> None:
        deadline = self._deadline.pop(session_id, None)
        self._timeout_ticks.pop(session_id, None)
        if deadline is not None:
            bucket = self._buckets[deadline]
            del bucket[session_id]
            if not bucket:
                del self._buckets[deadline]

    def tick(self) -> list[int]:
        """Advance one tick; the sessions that just expired, in id order, no longer tracked."""
        self.now += 1
        expired = sorted(self._buckets.pop(self.now - 1, {}))
        for session_id in expired:
            del self._deadline[session_id]
            del self._timeout_ticks[session_id]
        return expired
