"""A replica's view of its txn log since its snapshot, in memory, for sync decisions and commits.

The shell's Storage holds the durable copy; this view changes only through Ready outputs.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from itertools import accumulate
from operator import lt

from zkcore._storage import LogEntry
from zkcore.zab._zxid import zxid_text


class ReplicaLog:
    """Entries above `base` (the snapshot zxid, 0 for the empty history) in zxid order.

    A leader holds up to two snapshots' worth of txns here (a DIFF reaches back that far), so
    an entry is kept compact: its zxid in an array, its payload's bytes back to back in one
    arena with their end offsets in another, rather than an int and a bytes object each (about
    70 bytes an entry less, and no small objects that live long among the many that do not)."""

    __slots__ = ("base", "_zxids", "_ends", "_arena", "_origin")

    def __init__(self, base: int = 0, entries: Sequence[LogEntry] = ()) -> None:
        self.base = base
        self._zxids = array("Q")
        self._ends = array("Q")  # where each payload ends, counted from the arena's origin
        self._arena = bytearray()
        self._origin = 0  # the offset of the arena's first byte: compact() cuts from the front
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
        return len(self._zxids) - self._after(zxid)

    def after(self, zxid: int) -> tuple[int, int]:
        """The entries above zxid: how many, and their payload bytes."""
        ends = self._ends
        i = self._after(zxid)
        n = len(ends)
        if i == n:
            return 0, 0
        return n - i, ends[-1] - (ends[i - 1] if i else self._origin)

    def _after(self, zxid: int) -> int:
        """Where the entries above zxid start. The leader asks once per write, with a long log:
        when the k entries that end the log run from zxid + 1 to zxid + k, they are consecutive
        (k increasing ints in a span of k), and no search is needed."""
        zxids = self._zxids
        n = len(zxids)
        if not n or zxid >= zxids[-1]:  # nothing above it: a leader with all it proposed committed
            return n
        k = zxids[-1] - zxid
        if k <= n and zxids[n - k] == zxid + 1:
            return n - k
        return bisect_right(zxids, zxid)

    def entries_after(self, zxid: int, through: int | None = None) -> list[LogEntry]:
        """Entries with zxid < e <= through (through defaults to the last)."""
        zxids, ends = self._zxids, self._ends
        n = len(zxids)
        lo = self._after(zxid)
        hi = n if through is None or not n or through >= zxids[-1] else bisect_right(zxids, through)
        if lo >= hi:
            return []
        origin, arena = self._origin, self._arena
        start = (ends[lo - 1] if lo else origin) - origin
        out = []
        with memoryview(arena) as view:
            for i in range(lo, hi):
                end = ends[i] - origin
                out.append((zxids[i], bytes(view[start:end])))
                start = end
        return out

    def first_after(self, zxid: int, bytes_max: int) -> list[LogEntry]:
        """The first entries above zxid, as many as bytes_max holds (at least one, if any)."""
        zxids, ends = self._zxids, self._ends
        lo = self._after(zxid)
        if lo == len(zxids):
            return []
        start = ends[lo - 1] if lo else self._origin
        hi = max(lo + 1, bisect_right(ends, start + bytes_max, lo))
        return self.entries_after(zxid, zxids[hi - 1])

    def append(self, zxid: int, payload: bytes) -> None:
        zxids = self._zxids
        assert zxid > (zxids[-1] if zxids else self.base), (
            f"append out of order: {zxid_text(zxid)} after {zxid_text(self.last())}"
        )
        zxids.append(zxid)
        arena = self._arena
        arena += payload
        self._ends.append(self._origin + len(arena))

    def append_many(self, entries: Sequence[LogEntry]) -> None:
        """append() of each entry, in order."""
        zxids = [zxid for zxid, _ in entries]
        assert zxids[0] > self.last() and all(map(lt, zxids, zxids[1:])), (
            f"append out of order: {[zxid_text(z) for z in zxids[:4]]} after {zxid_text(self.last())}"
        )
        self._zxids.extend(zxids)
        payloads = [payload for _, payload in entries]
        base = self._origin + len(self._arena)
        self._arena += b"".join(payloads)
        self._ends.extend([base + end for end in accumulate(map(len, payloads))])

    def truncate(self, zxid: int) -> None:
        """Drop every entry above `zxid`, which must be a point of this history."""
        assert self.contains(zxid), f"truncate to {zxid_text(zxid)}, not in this history"
        i = bisect_right(self._zxids, zxid)
        del self._zxids[i:]
        del self._ends[i:]
        del self._arena[(self._ends[-1] if i else self._origin) - self._origin :]

    def reset(self, base: int) -> None:
        """Forget everything: the history is now a snapshot at `base`."""
        self.base = base
        del self._zxids[:]
        del self._ends[:]
        self._arena = bytearray()
        self._origin = 0

    def compact(self, zxid: int) -> None:
        """Forget entries at or below `zxid`; a snapshot now covers them."""
        assert self.contains(zxid), f"compact to {zxid_text(zxid)}, not in this history"
        i = bisect_right(self._zxids, zxid)
        if i:
            cut = self._ends[i - 1]
            del self._zxids[:i]
            del self._ends[:i]
            del self._arena[: cut - self._origin]
            self._origin = cut
        self.base = zxid
