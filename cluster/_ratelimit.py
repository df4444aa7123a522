"""Warnings a flood must not flood the log with: said at most once every so many seconds."""

from __future__ import annotations

import time


class Every:
    """due() is True at most once every `seconds` (the first time at once), by the monotonic
    clock: `if every.due(): log.warning(...)` with a count of what happened since."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last = -float("inf")

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._last < self.seconds:
            return False
        self._last = now
        return True
