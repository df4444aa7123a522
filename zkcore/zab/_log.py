"""A replica's view of its txn log since its snapshot, in memory, for sync decisions and commits.

The shell's Storage holds the durable copy; this view changes only through Ready outputs.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence

from zkcore._storage import LogEntry
from zkcore.zab._zxid import zxid_text


class ReplicaLog:
    """Entries above `base` (the snapshot zxid, 0 for the empty history) in zxid order."""

    __slots__ = ("base", "_zxids", "_payloads")

    def __init__(self, base: int = 0, entries: Sequence[LogEntry] = ()) -> None:
        self.base = base
        self._zxids: list[int] = []
        self._payloads: list[bytes] = []
        for zxid, payload in entries:
            if zxid > base:
                self.append(zxid, payload)

    def __len__(self) -> int:
        return len(self._zxids)

    def last(self) -> int:
        return self._zxids[-1] if self._zxids else self.base

    def contains(self, zxid: int) -> bool:
        """Whether `zxid` is a point of this history: the base or a logged entry."""
        if zxid == self.base:
            return True
        i = bisect_left(self._zxids, zxid)
        return i < len(self._zxids) and self._zxids[i] == zxid

    def floor(self, zxid: int) -> int | None:
        """The highest point of this history at or below `zxid`; None when `zxid` is below base."""
        if zxid < self.base:
            return None
        i = bisect_right(self._zxids, zxid)
        return self._zxids[i - 1] if i else self.base

    def count_after(self, zxid: int) -> int:
        zxids = self._zxids
        n = len(zxids)
        k = zxids[-1] - zxid if n else 0
        # The leader asks once per write, with a long log: when the k entries that end the log
        # run from zxid + 1 to zxid + k, they are consecutive (k increasing ints in a span of k).
        if 0 < k <= n and zxids[n - k] == zxid + 1:
            return k
        return n - bisect_right(zxids, zxid)

    def entries_after(self, zxid: int, through: int | None = None) -> list[LogEntry]:
        """Entries with zxid < e <= through (through defaults to the last)."""
        lo = bisect_right(self._zxids, zxid)
        hi = len(self._zxids) if through is None else bisect_right(self._zxids, through)
        return list(zip(self._zxids[lo:hi], self._payloads[lo:hi], strict=True))

    def append(self, zxid: int, payload: bytes) -> None:
        assert zxid > self.last(), f"append out of order: {zxid_text(zxid)} after {zxid_text(self.last())}"
        self._zxids.append(zxid)
        self._payloads.append(payload)

    def truncate(self, zxid: int) -> None:
        """Drop every entry above `zxid`, which must be a point of this history."""
        assert self.contains(zxid), f"truncate to {zxid_text(zxid)}, not in this history"
        i = bisect_right(self._zxids, zxid)
        del self._zxids[i:]
        del self._payloads[i:]

    def reset(self, base: int) -> None:
        """Forget everything: the history is now a snapshot at `base`."""
        self.base = base
        self._zxids.clear()
        self._payloads.clear()

    def compact(self, zxid: int) -> None:
        """Forget entries at or below `zxid`; a snapshot now covers them."""
        assert self.contains(zxid), f"compact to {zxid_text(zxid)}, not in this history"
        i = bisect_right(self._zxids, zxid)
        del self._zxids[:i]
        del self._payloads[:i]
        self.base = zxid
