"""Which watcher hears of which change: ZooKeeper's server-side watch tables, without I/O.

A watcher is whatever the shell uses to reach a client (a connection); this module only needs it
hashable. Two tables, as in ZooKeeper: data watches (getData, exists, including exists on a
missing node) and child watches (getChildren). One-shot watches leave their table when they fire.
addWatch adds persistent watches (every event on one path; kept after firing) and persistent
recursive watches (created, deleted and data-changed events on a path and everything below it;
never children-changed, which the recursive watch already sees as the child's own events).
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass

from zkcore._datatree import NODE_CHILDREN_CHANGED, NODE_CREATED, NODE_DATA_CHANGED, NODE_DELETED, DataTree

# Watcher.Event.EventType values the server sends for removed watches (client-side in ZooKeeper).
DATA_WATCH_REMOVED = 5
CHILD_WATCH_REMOVED = 6
PERSISTENT_WATCH_REMOVED = 7

# Events that reach each table's watchers (ZooKeeper's DataTree triggers).
_DATA_EVENTS = frozenset({NODE_CREATED, NODE_DELETED, NODE_DATA_CHANGED})
_CHILD_EVENTS = frozenset({NODE_DELETED, NODE_CHILDREN_CHANGED})


class Kind(enum.IntEnum):
    """How a watch was set: one-shot data or child, or addWatch's two persistent modes."""

    DATA = 0
    CHILD = 1
    PERSISTENT = 2
    RECURSIVE = 3


class WatcherType(enum.IntEnum):
    """removeWatches/checkWatches' `type` field (ZooKeeper's Watcher.WatcherType)."""

    CHILDREN = 1
    DATA = 2
    ANY = 3
    PERSISTENT = 4
    PERSISTENT_RECURSIVE = 5


_KINDS_OF_TYPE = {
    WatcherType.CHILDREN: (Kind.CHILD,),
    WatcherType.DATA: (Kind.DATA,),
    WatcherType.ANY: tuple(Kind),
    WatcherType.PERSISTENT: (Kind.PERSISTENT,),
    WatcherType.PERSISTENT_RECURSIVE: (Kind.RECURSIVE,),
}

ADD_WATCH_MODES = {0: Kind.PERSISTENT, 1: Kind.RECURSIVE}


@dataclass(frozen=True, slots=True)
class Fired:
    """One notification to send: `watcher` hears `event` (an EventType) on `path`."""

    watcher: Hashable
    event: int
    path: str


class WatchTable:
    """Every watch one server holds, by kind and path, and by watcher for cleanup."""

    def __init__(self) -> None:
        # Watchers by kind and path, in the order they set their watches (dicts, not sets: a
        # txn's notifications then go out in that order, not in the order of their hashes).
        self._by_kind: dict[Kind, dict[str, dict[Hashable, None]]] = {kind: {} for kind in Kind}
        self._by_watcher: dict[Hashable, set[tuple[Kind, str]]] = {}

    def __len__(self) -> int:
        return sum(len(ws) for table in self._by_kind.values() for ws in table.values())

    def add(self, watcher: Hashable, kind: Kind, path: str) -> None:
        self._by_kind[kind].setdefault(path, {})[watcher] = None
        self._by_watcher.setdefault(watcher, set()).add((kind, path))

    def _discard(self, watcher: Hashable, kind: Kind, path: str) -> bool:
        watchers = self._by_kind[kind].get(path)
        if watchers is None or watcher not in watchers:
            return False
        del watchers[watcher]
        if not watchers:
            del self._by_kind[kind][path]
        mine = self._by_watcher.get(watcher)
        if mine is not None:
            mine.discard((kind, path))
            if not mine:
                del self._by_watcher[watcher]
        return True

    def has(self, watcher: Hashable, watcher_type: int, path: str) -> bool:
        """checkWatches: does `watcher` hold a watch of this type on `path`?"""
        kinds = _KINDS_OF_TYPE[WatcherType(watcher_type)]
        return any(watcher in self._by_kind[kind].get(path, ()) for kind in kinds)

    def remove(self, watcher: Hashable, watcher_type: int, path: str) -> list[Fired]:
        """removeWatches: drop `watcher`'s watches of this type on `path`; the events that tell
        the client which were removed (empty: it held none, ZooKeeper's NoWatcher)."""
        removed = []
        for kind in _KINDS_OF_TYPE[WatcherType(watcher_type)]:
            if self._discard(watcher, kind, path):
                removed.append(kind)
        events = []
        if Kind.DATA in removed:
            events.append(Fired(watcher, DATA_WATCH_REMOVED, path))
        if Kind.CHILD in removed:
            events.append(Fired(watcher, CHILD_WATCH_REMOVED, path))
        if Kind.PERSISTENT in removed or Kind.RECURSIVE in removed:
            events.append(Fired(watcher, PERSISTENT_WATCH_REMOVED, path))
        return events

    def drop(self, watcher: Hashable) -> None:
        """The watcher is gone (its connection closed or moved): forget all its watches."""
        for kind, path in list(self._by_watcher.get(watcher, ())):
            self._discard(watcher, kind, path)

    def watches_of(self, watcher: Hashable) -> list[tuple[Kind, str]]:
        return sorted(self._by_watcher.get(watcher, ()))

    def paths(self) -> dict[str, int]:
        """Watchers per watched path (every kind), for the wchp-style admin view."""
        out: dict[str, int] = {}
        for table in self._by_kind.values():
            for path, watchers in table.items():
                out[path] = out.get(path, 0) + len(watchers)
        return out

    def watchers(self) -> int:
        return len(self._by_watcher)

    def trigger(self, events: Iterable[tuple[int, str]]) -> Iterator[Fired]:
        """The notifications for one txn's events, in event order; each watcher hears of each
        event once, however many of its watches match it. One-shot watches are used up."""
        data, child = self._by_kind[Kind.DATA], self._by_kind[Kind.CHILD]
        persistent, recursive = self._by_kind[Kind.PERSISTENT], self._by_kind[Kind.RECURSIVE]
        for event, path in events:
            heard: dict[Hashable, None] = {}
            if event in _DATA_EVENTS:
                for w in data.pop(path, ()):
                    self._forget(w, Kind.DATA, path)
                    heard[w] = None
            if event in _CHILD_EVENTS:
                for w in child.pop(path, ()):
                    self._forget(w, Kind.CHILD, path)
                    heard[w] = None
            heard.update(persistent.get(path, ()))
            if recursive and event != NODE_CHILDREN_CHANGED:
                for prefix in _self_and_ancestors(path):
                    heard.update(recursive.get(prefix, ()))
            for w in heard:
                yield Fired(w, event, path)

    def _forget(self, watcher: Hashable, kind: Kind, path: str) -> None:
        mine = self._by_watcher.get(watcher)
        if mine is not None:
            mine.discard((kind, path))
            if not mine:
                del self._by_watcher[watcher]

    def resume(
        self,
        watcher: Hashable,
        tree: DataTree,
        relative_zxid: int,
        data: Iterable[str],
        exist: Iterable[str],
        child: Iterable[str],
        persistent: Iterable[str] = (),
        recursive: Iterable[str] = (),
    ) -> list[Fired]:
        """setWatches after a reconnect: events for what changed since the client's last zxid
        fire at once, the other watches are set again (ZooKeeper's DataTree.setWatches)."""
        fired = []
        for path in data:
            node = tree.nodes.get(path)
            if node is None:
                fired.append(Fired(watcher, NODE_DELETED, path))
            elif node.mzxid > relative_zxid:
                fired.append(Fired(watcher, NODE_DATA_CHANGED, path))
            else:
                self.add(watcher, Kind.DATA, path)
        for path in exist:
            if path in tree.nodes:
                fired.append(Fired(watcher, NODE_CREATED, path))
            else:
                self.add(watcher, Kind.DATA, path)
        for path in child:
            node = tree.nodes.get(path)
            if node is None:
                fired.append(Fired(watcher, NODE_DELETED, path))
            elif node.pzxid > relative_zxid:
                fired.append(Fired(watcher, NODE_CHILDREN_CHANGED, path))
            else:
                self.add(watcher, Kind.CHILD, path)
        for path in persistent:
            self.add(watcher, Kind.PERSISTENT, path)
        for path in recursive:
            self.add(watcher, Kind.RECURSIVE, path)
        return fired


def _self_and_ancestors(path: str) -> Iterator[str]:
    yield path
    while path != "/":
        path = path[: path.rfind("/")] or "/"
        yield path
