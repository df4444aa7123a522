"""What the client reports to the application: session states, watch events and znode stats,
with kazoo's names and shapes (KazooState, KeeperState, EventType, WatchedEvent, ZnodeStat).
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from zkcore._datatree import NODE_CHILDREN_CHANGED, NODE_CREATED, NODE_DATA_CHANGED, NODE_DELETED
from zkcore._records import Stat
from zkcore._watches import (
    CHILD_WATCH_REMOVED,
    DATA_WATCH_REMOVED,
    PERSISTENT_WATCH_REMOVED,
    WatcherType,
)

__all__ = [
    "AddWatchMode",
    "EventType",
    "KazooState",
    "KeeperState",
    "WatchedEvent",
    "WatcherType",
    "ZnodeStat",
    "event_type_name",
]

NODE_NONE = -1  # Watcher.Event.EventType.None: a state change, not a znode change
STATE_SYNC_CONNECTED = 3


class KazooState:
    """The session as the application sees it. CONNECTED: all is well. SUSPENDED: the connection
    is gone and the client is looking for another server; the session (and its ephemerals and
    locks) may or may not still exist. LOST: the session is gone (expired or closed)."""

    CONNECTED = "CONNECTED"
    SUSPENDED = "SUSPENDED"
    LOST = "LOST"


class KeeperState:
    """The state carried by a WatchedEvent: CONNECTED for znode events; EXPIRED_SESSION or CLOSED
    in the NONE event every watcher gets when its session ends."""

    CONNECTED = "CONNECTED"
    CONNECTING = "CONNECTING"
    EXPIRED_SESSION = "EXPIRED_SESSION"
    AUTH_FAILED = "AUTH_FAILED"
    CLOSED = "CLOSED"


class EventType:
    CREATED = "CREATED"
    DELETED = "DELETED"
    CHANGED = "CHANGED"
    CHILD = "CHILD"
    NONE = "NONE"
    DATA_WATCH_REMOVED = "DATA_WATCH_REMOVED"
    CHILD_WATCH_REMOVED = "CHILD_WATCH_REMOVED"
    PERSISTENT_WATCH_REMOVED = "PERSISTENT_WATCH_REMOVED"


_EVENT_NAMES = {
    NODE_NONE: EventType.NONE,
    NODE_CREATED: EventType.CREATED,
    NODE_DELETED: EventType.DELETED,
    NODE_DATA_CHANGED: EventType.CHANGED,
    NODE_CHILDREN_CHANGED: EventType.CHILD,
    DATA_WATCH_REMOVED: EventType.DATA_WATCH_REMOVED,
    CHILD_WATCH_REMOVED: EventType.CHILD_WATCH_REMOVED,
    PERSISTENT_WATCH_REMOVED: EventType.PERSISTENT_WATCH_REMOVED,
}


def event_type_name(code: int) -> str:
    """EventType's name for a WatcherEvent type code; an unknown code keeps its number."""
    return _EVENT_NAMES.get(code, f"UNKNOWN({code})")


class AddWatchMode(enum.IntEnum):
    """addWatch's mode: every event on one path, or created/deleted/changed on a whole subtree."""

    PERSISTENT = 0
    PERSISTENT_RECURSIVE = 1


class WatchedEvent(NamedTuple):
    """What a watch function receives: type (EventType), state (KeeperState) and the path
    (relative to the client's chroot; None for a NONE event)."""

    type: str
    state: str
    path: str | None


class ZnodeStat(NamedTuple):
    """A znode's Stat with ZooKeeper's field names and kazoo's readable properties."""

    czxid: int
    mzxid: int
    ctime: int
    mtime: int
    version: int
    cversion: int
    aversion: int
    ephemeralOwner: int  # noqa: N815 - ZooKeeper's and kazoo's field name
    dataLength: int  # noqa: N815
    numChildren: int  # noqa: N815
    pzxid: int

    @classmethod
    def from_stat(cls, stat: Stat) -> ZnodeStat:
        return cls(
            stat.czxid,
            stat.mzxid,
            stat.ctime,
            stat.mtime,
            stat.version,
            stat.cversion,
            stat.aversion,
            stat.ephemeral_owner,
            stat.data_length,
            stat.num_children,
            stat.pzxid,
        )

    @property
    def acl_version(self) -> int:
        return self.aversion

    @property
    def children_version(self) -> int:
        return self.cversion

    @property
    def created(self) -> float:
        """ctime in seconds since the epoch."""
        return self.ctime / 1000.0

    @property
    def last_modified(self) -> float:
        """mtime in seconds since the epoch."""
        return self.mtime / 1000.0

    @property
    def owner_session_id(self) -> int | None:
        """The owning session of an ephemeral znode; None for any other znode."""
        return self.ephemeralOwner or None

    @property
    def creation_transaction_id(self) -> int:
        return self.czxid

    @property
    def last_modified_transaction_id(self) -> int:
        return self.mzxid

    @property
    def data_length(self) -> int:
        return self.dataLength

    @property
    def children_count(self) -> int:
        return self.numChildren
