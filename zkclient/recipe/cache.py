"""A cached copy of a subtree (kazoo's TreeCache API: start, close, listen, listen_fault,
get_data, get_children; TreeEvent and NodeData).

Unlike kazoo's, which sets a data and a child watch on every node, this one sets a single
persistent recursive watch on the root (addWatch) and, at start and after every reconnect or
new session, reads the whole subtree again and reports the difference. Every change is applied
on one background thread in the order it arrived; each event is followed by a fresh read of the
node, so the cache converges on the server's tree. Listeners run on that thread.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from zkclient.exceptions import KeeperError, NoNodeError, RetryFailedError
from zkclient.states import AddWatchMode, EventType, KazooState, WatchedEvent, ZnodeStat

if TYPE_CHECKING:
    from zkclient.client import Client

__all__ = ["NodeData", "TreeCache", "TreeEvent"]

log = logging.getLogger("zkclient.recipe.cache")
EVENTS_QUEUE_MAX = 100_000


class NodeData(NamedTuple):
    path: str
    data: bytes
    stat: ZnodeStat


class _TreeEventFields(NamedTuple):
    event_type: int
    event_data: NodeData | None


class TreeEvent(_TreeEventFields):
    """event_type is one of the constants below; event_data a NodeData (None for connection
    events and INITIALIZED)."""

    __slots__ = ()

    NODE_ADDED = 0
    NODE_UPDATED = 1
    NODE_REMOVED = 2
    CONNECTION_SUSPENDED = 3
    CONNECTION_RECONNECTED = 4
    CONNECTION_LOST = 5
    INITIALIZED = 6


def _join(parent: str, child: str) -> str:
    return parent.rstrip("/") + "/" + child


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


class TreeCache:
    """cache = zk.TreeCache("/app/config"); cache.listen(on_event); cache.start(); then
    cache.get_data("/app/config/db") -> NodeData or None. close() when done."""

    STATE_LATENT = 0
    STATE_STARTED = 1
    STATE_CLOSED = 2

    def __init__(self, client: Client, path: str) -> None:
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"path must start with '/': {path!r}")
        self._client = client
        self._root = path.rstrip("/") or "/"
        self._state = self.STATE_LATENT
        self._lock = threading.Lock()
        self._nodes: dict[str, NodeData] = {}
        self._children: dict[str, set[str]] = {}
        self._event_listeners: list[Callable[[TreeEvent], Any]] = []
        self._error_listeners: list[Callable[[Exception], Any]] = []
        self._tasks: queue.Queue[tuple[Callable[..., None], tuple[Any, ...]] | None] = queue.Queue(
            EVENTS_QUEUE_MAX
        )
        self._thread: threading.Thread | None = None
        self._watching = False
        self._initialized = False

    # --- public ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start following the subtree (its root is created if missing)."""
        if self._state == self.STATE_CLOSED:
            raise RuntimeError("already closed")
        if self._state == self.STATE_STARTED:
            raise RuntimeError("already started")
        self._state = self.STATE_STARTED
        self._thread = threading.Thread(target=self._run, name="zkclient-treecache", daemon=True)
        self._thread.start()
        self._client.add_listener(self._session_watcher)
        self._client.ensure_path(self._root)
        if self._client.connected:
            self._in_background(self._resync)

    def close(self) -> None:
        """Stop following; the cache empties. A closed cache cannot start again."""
        if self._state != self.STATE_STARTED:
            self._state = self.STATE_CLOSED
            return
        self._state = self.STATE_CLOSED
        self._client.remove_listener(self._session_watcher)
        self._tasks.put(None)
        if self._watching:
            try:
                self._client.remove_watches(self._root, func=self._on_watch)
            except (KeeperError, RetryFailedError):
                pass
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(10)
        with self._lock:
            self._nodes.clear()
            self._children.clear()

    def listen(self, listener: Callable[[TreeEvent], Any]) -> Callable[[TreeEvent], Any]:
        """listener(TreeEvent) for every change of the cache; usable as a decorator."""
        self._event_listeners.append(listener)
        return listener

    def listen_fault(self, listener: Callable[[Exception], Any]) -> Callable[[Exception], Any]:
        """listener(exception) for errors met while following the tree."""
        self._error_listeners.append(listener)
        return listener

    def get_data(self, path: str, default: Any = None) -> NodeData | Any:
        """The cached NodeData of path, or default if it is not in the cache."""
        self._check_inside(path)
        with self._lock:
            return self._nodes.get(path.rstrip("/") or "/", default)

    def get_children(self, path: str, default: Any = None) -> frozenset[str] | Any:
        """The cached children's names of path, or default if it is not in the cache."""
        self._check_inside(path)
        with self._lock:
            children = self._children.get(path.rstrip("/") or "/")
            return default if children is None else frozenset(children)

    def _check_inside(self, path: str) -> None:
        root = self._root
        if not (path == root or path.rstrip("/") == root or path.startswith(root.rstrip("/") + "/")):
            raise ValueError(f"outside of tree: {path!r} is not under {root!r}")

    # --- the background thread ------------------------------------------------------------------

    def _in_background(self, func: Callable[..., None], *args: Any) -> None:
        if self._state == self.STATE_STARTED:
            self._tasks.put((func, args))

    def _run(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None or self._state != self.STATE_STARTED:
                return
            func, args = task
            try:
                func(*args)
            except Exception as e:  # noqa: BLE001 - every error goes to the fault listeners
                self._fault(e)

    def _fault(self, exc: Exception) -> None:
        if not self._error_listeners:
            log.warning("TreeCache on %s: %r", self._root, exc)
        for listener in list(self._error_listeners):
            try:
                listener(exc)
            except Exception:
                log.exception("TreeCache fault listener raised")

    def _publish(self, event_type: int, data: NodeData | None = None) -> None:
        event = TreeEvent(event_type, data)
        for listener in list(self._event_listeners):
            try:
                listener(event)
            except Exception as e:  # noqa: BLE001
                self._fault(e)

    def _session_watcher(self, state: str) -> None:
        """On the client's event thread: hand everything to the background thread."""
        if state == KazooState.SUSPENDED:
            self._in_background(self._publish, TreeEvent.CONNECTION_SUSPENDED)
        elif state == KazooState.CONNECTED:
            self._in_background(self._publish, TreeEvent.CONNECTION_RECONNECTED)
            self._in_background(self._resync)
        elif state == KazooState.LOST:
            self._watching = False
            self._in_background(self._publish, TreeEvent.CONNECTION_LOST)

    def _on_watch(self, event: WatchedEvent) -> None:
        if event.type == EventType.NONE:
            self._watching = False  # the session ended; a new one resyncs
        elif event.path is not None:
            self._in_background(self._on_change, event.type, event.path)

    # --- keeping the copy -----------------------------------------------------------------------

    def _resync(self) -> None:
        """Watch the subtree (again), then read all of it and report what differs."""
        if self._state != self.STATE_STARTED or not self._client.connected:
            return
        if not self._watching:
            self._client.add_watch(self._root, self._on_watch, AddWatchMode.PERSISTENT_RECURSIVE)
            self._watching = True
        seen: set[str] = set()
        stack = [self._root]
        while stack:
            path = stack.pop()
            if self._refresh(path):
                seen.add(path)
                with self._lock:
                    stack.extend(_join(path, c) for c in self._children.get(path, ()))
        with self._lock:
            gone = sorted((p for p in self._nodes if p not in seen), reverse=True)
        for path in gone:
            self._remove(path)
        if not self._initialized:
            self._initialized = True
            self._publish(TreeEvent.INITIALIZED)

    def _on_change(self, kind: str, path: str) -> None:
        if kind == EventType.DELETED:
            self._remove(path)
            return
        if not self._refresh(path):
            return
        if kind == EventType.CREATED:  # a subtree may have come with it before we looked
            stack = [_join(path, c) for c in self._children.get(path, ())]
            while stack:
                child = stack.pop()
                if self._refresh(child):
                    stack.extend(_join(child, c) for c in self._children.get(child, ()))

    def _refresh(self, path: str) -> bool:
        """Read path's data and children into the cache; False (and removed) if it is gone."""
        try:
            data, stat = self._client.get(path)
            children = self._client.get_children(path)
        except NoNodeError:
            self._remove(path)
            return False
        node = NodeData(path, data, stat)
        with self._lock:
            old = self._nodes.get(path)
            self._nodes[path] = node
            self._children[path] = set(children)
            if path != self._root:
                self._children.setdefault(_parent(path), set()).add(path.rsplit("/", 1)[1])
        if old is None:
            self._publish(TreeEvent.NODE_ADDED, node)
        elif old.stat.mzxid != stat.mzxid:
            self._publish(TreeEvent.NODE_UPDATED, node)
        return True

    def _remove(self, path: str) -> None:
        """Drop path and everything cached below it, deepest first, reporting each."""
        with self._lock:
            below = sorted((p for p in self._nodes if p == path or p.startswith(path.rstrip("/") + "/")),
                           reverse=True)  # fmt: skip
            removed = [self._nodes.pop(p) for p in below]
            for p in below:
                self._children.pop(p, None)
            if path != self._root:
                siblings = self._children.get(_parent(path))
                if siblings is not None:
                    siblings.discard(path.rsplit("/", 1)[1])
        for node in removed:
            self._publish(TreeEvent.NODE_REMOVED, node)
