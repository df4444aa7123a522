"""The client's watch tables (ZooKeeper's ZKWatchManager): which functions hear which event.

A one-shot watch is recorded when the reply that set it comes back OK (exists on a missing node:
an exist watch). A notification is routed by its type:

    NodeCreated, NodeDataChanged  data + exist watchers of the path
    NodeDeleted                   data + exist + child watchers of the path
    NodeChildrenChanged           child watchers of the path

plus the persistent watchers of the path (any type), and the persistent-recursive watchers of
the path and its ancestors (any type but NodeChildrenChanged). One-shot watchers leave their
table as they fire; each function hears one event once however many of its watches match.
Paths here are the server's (chroot included).
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from zkcore._datatree import NODE_CHILDREN_CHANGED, NODE_CREATED, NODE_DATA_CHANGED, NODE_DELETED
from zkcore._errors import Code
from zkcore._records import XID_SET_WATCHES, OpCode, RequestHeader, SetWatches2
from zkcore._watches import CHILD_WATCH_REMOVED, DATA_WATCH_REMOVED, PERSISTENT_WATCH_REMOVED, WatcherType

WatchFunc = Callable[[Any], Any]
# One setWatches2 frame carries at most this many bytes of paths (ZooKeeper's limit too).
SET_WATCHES_BYTES_MAX = 128 * 1024


class Kind(enum.Enum):
    DATA = "data"
    EXIST = "exist"
    CHILD = "child"
    PERSISTENT = "persistent"
    RECURSIVE = "recursive"


ONE_SHOT = (Kind.DATA, Kind.EXIST, Kind.CHILD)

# Which tables an event empties (one-shot) for its own path.
_ONE_SHOT_ROUTES: dict[int, tuple[Kind, ...]] = {
    NODE_CREATED: (Kind.DATA, Kind.EXIST),
    NODE_DATA_CHANGED: (Kind.DATA, Kind.EXIST),
    NODE_DELETED: (Kind.DATA, Kind.EXIST, Kind.CHILD),
    NODE_CHILDREN_CHANGED: (Kind.CHILD,),
}

KINDS_OF_TYPE: dict[int, tuple[Kind, ...]] = {
    WatcherType.CHILDREN: (Kind.CHILD,),
    WatcherType.DATA: (Kind.DATA, Kind.EXIST),
    WatcherType.ANY: tuple(Kind),
    WatcherType.PERSISTENT: (Kind.PERSISTENT,),
    WatcherType.PERSISTENT_RECURSIVE: (Kind.RECURSIVE,),
}

REMOVED_EVENT: dict[Kind, int] = {
    Kind.DATA: DATA_WATCH_REMOVED,
    Kind.EXIST: DATA_WATCH_REMOVED,
    Kind.CHILD: CHILD_WATCH_REMOVED,
    Kind.PERSISTENT: PERSISTENT_WATCH_REMOVED,
    Kind.RECURSIVE: PERSISTENT_WATCH_REMOVED,
}


@dataclass(frozen=True, slots=True)
class WatchRegistration:
    """A watch a request asks for: recorded as `on_ok` if the reply is OK, as `on_no_node` if it
    is NoNode (exists on a missing node), else not at all."""

    path: str
    func: WatchFunc
    on_ok: Kind | None
    on_no_node: Kind | None = None

    def kind_for(self, err: int) -> Kind | None:
        if err == Code.OK:
            return self.on_ok
        if err == Code.NO_NODE:
            return self.on_no_node
        return None


@dataclass(frozen=True, slots=True)
class WatchSnapshot:
    """Every path watched, by table: what setWatches2 sends after a reconnect."""

    data: tuple[str, ...]
    exist: tuple[str, ...]
    child: tuple[str, ...]
    persistent: tuple[str, ...]
    recursive: tuple[str, ...]

    def empty(self) -> bool:
        return not (self.data or self.exist or self.child or self.persistent or self.recursive)


def self_and_ancestors(path: str) -> Iterator[str]:
    """'/a/b' -> '/a/b', '/a', '/' (walked without recursion)."""
    yield path
    while path != "/":
        path = path[: path.rfind("/")] or "/"
        yield path


class WatchManager:
    """The five tables, shared by the I/O thread (record, route, snapshot) and the application
    (add_watch, remove_watches) under one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tables: dict[Kind, dict[str, dict[WatchFunc, None]]] = {kind: {} for kind in Kind}

    def __len__(self) -> int:
        with self._lock:
            return sum(len(funcs) for table in self._tables.values() for funcs in table.values())

    def add(self, kind: Kind, path: str, func: WatchFunc) -> None:
        with self._lock:
            self._tables[kind].setdefault(path, {})[func] = None

    def record(self, registration: WatchRegistration, err: int) -> Kind | None:
        """Record the watch a reply with error `err` set, if it set one; which table took it."""
        kind = registration.kind_for(err)
        if kind is not None:
            self.add(kind, registration.path, registration.func)
        return kind

    def route(self, event_type: int, path: str) -> list[WatchFunc]:
        """The functions that hear this event, each once, in registration order; one-shot
        watches are used up."""
        heard: dict[WatchFunc, None] = {}
        with self._lock:
            for kind in _ONE_SHOT_ROUTES.get(event_type, ()):
                heard.update(self._tables[kind].pop(path, {}))
            if event_type not in _ONE_SHOT_ROUTES:
                return list(heard)
            heard.update(self._tables[Kind.PERSISTENT].get(path, {}))
            recursive = self._tables[Kind.RECURSIVE]
            if recursive and event_type != NODE_CHILDREN_CHANGED:
                for prefix in self_and_ancestors(path):
                    heard.update(recursive.get(prefix, {}))
        return list(heard)

    def has(self, path: str, watcher_type: int, func: WatchFunc | None = None) -> bool:
        with self._lock:
            for kind in KINDS_OF_TYPE[WatcherType(watcher_type)]:
                funcs = self._tables[kind].get(path, {})
                if funcs and (func is None or func in funcs):
                    return True
        return False

    def remove(
        self, path: str, watcher_type: int, func: WatchFunc | None = None
    ) -> list[tuple[Kind, WatchFunc]]:
        """Drop the watches of this type on path (only func's, when given): what was removed."""
        removed: list[tuple[Kind, WatchFunc]] = []
        with self._lock:
            for kind in KINDS_OF_TYPE[WatcherType(watcher_type)]:
                table = self._tables[kind]
                funcs = table.get(path)
                if not funcs:
                    continue
                if func is None:
                    removed += [(kind, f) for f in funcs]
                    del table[path]
                elif func in funcs:
                    removed.append((kind, func))
                    del funcs[func]
                    if not funcs:
                        del table[path]
        return removed

    def remaining(self, path: str, watcher_type: int) -> bool:
        """Whether any watch of this type is still held on path (by any function)."""
        return self.has(path, watcher_type)

    def snapshot(self) -> WatchSnapshot:
        with self._lock:
            t = self._tables
            return WatchSnapshot(*(tuple(sorted(t[k])) for k in (Kind.DATA, Kind.EXIST, Kind.CHILD,
                                                                 Kind.PERSISTENT, Kind.RECURSIVE)))  # fmt: skip

    def clear(self) -> list[WatchFunc]:
        """Forget every watch (the session ended); each function once, to tell it so."""
        everyone: dict[WatchFunc, None] = {}
        with self._lock:
            for table in self._tables.values():
                for funcs in table.values():
                    everyone.update(funcs)
                table.clear()
        return list(everyone)


def set_watches_frames(
    snap: WatchSnapshot, relative_zxid: int, bytes_max: int = SET_WATCHES_BYTES_MAX
) -> list[bytes]:
    """The setWatches2 request frames (xid -8) that re-register every watch in snap after a
    reconnect, split so that no frame carries more than bytes_max bytes of paths."""
    if snap.empty():
        return []
    header = RequestHeader(XID_SET_WATCHES, OpCode.SET_WATCHES2).encode()
    frames: list[bytes] = []
    groups: list[list[str]] = [[], [], [], [], []]
    size = 0
    for i, paths in enumerate((snap.data, snap.exist, snap.child, snap.persistent, snap.recursive)):
        for path in paths:
            n = 4 + len(path.encode("utf-8"))
            if size and size + n > bytes_max:
                frames.append(header + SetWatches2(relative_zxid, *map(tuple, groups)).encode())
                groups, size = [[], [], [], [], []], 0
            groups[i].append(path)
            size += n
    frames.append(header + SetWatches2(relative_zxid, *map(tuple, groups)).encode())
    return frames
