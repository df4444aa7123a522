"""The storage interface Zab and recovery see, and MemoryLog, its in-memory version for the
simulator and unit tests. The disk implementation lives in cluster/storage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

LogEntry = tuple[int, bytes]  # (zxid, encoded Txn)


class Storage(Protocol):
    def append(self, entries: Sequence[LogEntry]) -> None:
        """Append entries with zxids above last_zxid(), in order. Durable after sync()."""

    def fsync(self) -> int:
        """Make every appended entry durable; return the highest durable zxid."""

    def entries(self, lo: int, hi: int) -> list[LogEntry]:
        """Entries with lo < zxid <= hi, in zxid order."""

    def last_zxid(self) -> int:
        """The highest appended zxid, or 0 for an empty log."""

    def truncate(self, zxid: int) -> None:
        """Drop every entry above `zxid` (a TRUNC from a new leader)."""


class MemoryLog:
    """Storage in a list. `durable_zxid` models what a crash keeps: entries up to the last sync."""

    def __init__(self, entries: Sequence[LogEntry] = ()) -> None:
        self._entries: list[LogEntry] = list(entries)
        self.durable_zxid = self._entries[-1][0] if self._entries else 0

    def append(self, entries: Sequence[LogEntry]) -> None:
        last = self.last_zxid()
        for zxid, payload in entries:
            assert zxid > last, f"append out of order: {zxid:#x} after {last:#x}"
            self._entries.append((zxid, payload))
            last = zxid

    def fsync(self) -> int:
        self.durable_zxid = self.last_zxid()
        return self.durable_zxid

    def entries(self, lo: int, hi: int) -> list[LogEntry]:
        return [e for e in self._entries if lo < e[0] <= hi]

    def last_zxid(self) -> int:
        return self._entries[-1][0] if self._entries else 0

    def truncate(self, zxid: int) -> None:
        self._entries = [e for e in self._entries if e[0] <= zxid]
        self.durable_zxid = min(self.durable_zxid, zxid)

    def crash(self) -> MemoryLog:
        """What survives a crash: the entries that were synced."""
        return MemoryLog([e for e in self._entries if e[0] <= self.durable_zxid])
