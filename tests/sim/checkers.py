"""Zab's safety properties, checked incrementally after every simulated step.

One committed sequence grows as servers apply; every server's applied history must be its prefix.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from zkcore._storage import LogEntry
from zkcore.zab import zxid_counter, zxid_epoch, zxid_text


class Violation(Exception):
    """A safety or liveness property failed; the message names the property and the values."""


class Checker:
    """Tracks the committed sequence, established leaders and acked writes.

    - prefix: every applied history is a prefix of one committed sequence;
    - primary order: zxids increase along it, each epoch's counters run 1, 2, 3... with no gap;
    - one leader: at most one server establishes each epoch;
    - durability: every committed txn (so every acked write) is in each later leader's history.
    """

    def __init__(self) -> None:
        self.history: list[LogEntry] = []
        self.leaders: dict[int, int] = {}
        self.acked: dict[int, bytes] = {}

    def applied(self, server_id: int, applied: Sequence[LogEntry], start: int) -> None:
        """`applied[start:]` was just applied by `server_id`."""
        history = self.history
        for i in range(start, len(applied)):
            entry = applied[i]
            if i < len(history):
                if history[i] != entry:
                    raise Violation(
                        f"prefix: server {server_id} applied {_text(entry)} at index {i}, "
                        f"the committed sequence has {_text(history[i])}"
                    )
                continue
            assert i == len(history)
            _check_order(history[-1] if history else None, entry)
            history.append(entry)

    def replaced(self, server_id: int, applied: Sequence[LogEntry]) -> None:
        """`server_id` replaced its applied history (snapshot install or restart)."""
        self.applied(server_id, applied, 0)

    def established(self, epoch: int, server_id: int, leader_history: Mapping[int, bytes]) -> None:
        other = self.leaders.setdefault(epoch, server_id)
        if other != server_id:
            raise Violation(f"one leader: servers {other} and {server_id} both established epoch {epoch}")
        for zxid, payload in self.history:
            if leader_history.get(zxid) != payload:
                what = "acked write" if zxid in self.acked else "committed txn"
                raise Violation(
                    f"durability: {what} {zxid_text(zxid)} missing from the history of "
                    f"server {server_id}, established leader of epoch {epoch}"
                )

    def acked_write(self, zxid: int, payload: bytes) -> None:
        self.acked[zxid] = payload


def _check_order(previous: LogEntry | None, entry: LogEntry) -> None:
    zxid = entry[0]
    if previous is None:
        if zxid_counter(zxid) != 1:
            raise Violation(f"primary order: the first committed txn is {zxid_text(zxid)}, not counter 1")
        return
    before = previous[0]
    if zxid_epoch(zxid) == zxid_epoch(before):
        if zxid != before + 1:
            raise Violation(f"primary order: {zxid_text(zxid)} committed right after {zxid_text(before)}")
    elif zxid_epoch(zxid) < zxid_epoch(before) or zxid_counter(zxid) != 1:
        raise Violation(f"primary order: {zxid_text(zxid)} committed right after {zxid_text(before)}")


def _text(entry: LogEntry) -> str:
    return f"{zxid_text(entry[0])}={entry[1][:24]!r}"


def check_prefixes(histories: Iterable[Sequence[LogEntry]]) -> None:
    """A whole-state check for scripted tests: histories must be prefixes of one another."""
    longest: Sequence[LogEntry] = ()
    for history in sorted(histories, key=len):
        if list(history[: len(longest)]) != list(longest):
            raise Violation(f"prefix: {len(history)}-entry history does not extend {len(longest)}-entry one")
        longest = history


def take_due(
    queue: list[tuple[int, int, int, Any]], now: int, kind: int, same: Callable[[Any], bool]
) -> list[Any]:
    """The data of the events of `kind` at the head of a simulator's event heap that are due at
    `now` and that `same` accepts, taken off it in order: they arrive with the one being
    handled, as what one poll or one read brings a node."""
    due = []
    while queue and queue[0][0] == now and queue[0][2] == kind and same(queue[0][3]):
        due.append(heapq.heappop(queue)[3])
    return due


def cut_links(ids: list[int], side: set[int], one_way: bool = False) -> set[tuple[int, int]]:
    """The (source, target) links a partition cuts between `side` and the rest; one way cuts
    only what leaves `side`."""
    return {(a, b) for a in ids for b in ids if (a in side) != (b in side) and (not one_way or a in side)}
