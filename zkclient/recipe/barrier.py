"""Barriers (kazoo's Barrier and DoubleBarrier).

Barrier: the barrier is up while its node exists; wait() blocks until it is deleted.
DoubleBarrier: num_clients members meet at enter() (each an ephemeral child `<path>/<uuid4 hex>`
holding its identifier; the last to arrive creates `<path>/ready`), and meet again at leave()
(each waits until every member's node is gone, watching one node at a time).
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING

from zkclient.exceptions import KeeperError, NodeExistsError, NoNodeError, RetryFailedError
from zkclient.states import EventType, KazooState, WatchedEvent

if TYPE_CHECKING:
    from zkclient.client import Client

__all__ = ["Barrier", "DoubleBarrier"]


class Barrier:
    """barrier = zk.Barrier("/app/gate"); barrier.create(); ... barrier.wait() elsewhere blocks
    until someone calls barrier.remove()."""

    def __init__(self, client: Client, path: str) -> None:
        self.client = client
        self.path = path

    def create(self) -> None:
        """Put the barrier up (no-op if it is)."""
        self.client.retry(self.client.ensure_path, self.path)

    def remove(self) -> bool:
        """Take the barrier down; False if it was not up."""
        try:
            self.client.retry(self.client.delete, self.path)
        except NoNodeError:
            return False
        return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the barrier is down (True) or timeout seconds pass (False). Starts with a
        sync, so a barrier created before the call is seen even from a lagging server."""
        cleared = threading.Event()

        def wait_for_clear(event: WatchedEvent) -> None:
            if event.type in (EventType.DELETED, EventType.NONE):
                cleared.set()

        deadline = None if timeout is None else time.monotonic() + timeout
        self.client.sync(self.path)  # a barrier put up before this call is seen, whatever the server
        while True:
            if not self.client.exists(self.path, watch=wait_for_clear):
                return True
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not cleared.wait(left):
                return False
            cleared.clear()  # deleted (or the session ended): look again


class DoubleBarrier:
    """barrier = zk.DoubleBarrier("/app/round", 3); barrier.enter() returns once 3 members have
    entered; barrier.leave() returns once all have left."""

    def __init__(self, client: Client, path: str, num_clients: int, identifier: str | None = None) -> None:
        self.client = client
        self.path = path
        self.num_clients = num_clients
        self._identifier = identifier or f"{socket.getfqdn()}-{os.getpid()}"
        self.participating = False
        self.assured_path = False
        self.node_name = uuid.uuid4().hex
        self.create_path = self.path + "/" + self.node_name

    def enter(self) -> None:
        """Enter; blocks until num_clients members have entered. On failure, leaves again."""
        try:
            self.client.retry(self._inner_enter)
            self.participating = True
        except (KeeperError, RetryFailedError):
            self._best_effort_cleanup()
            self.participating = False

    def _inner_enter(self) -> bool:
        if not self.assured_path:
            self.client.ensure_path(self.path)
            self.assured_path = True
        ready = threading.Event()
        try:
            self.client.create(self.create_path, self._identifier.encode("utf-8"), ephemeral=True)
        except NodeExistsError:
            pass  # ours, from a try whose reply was lost

        def created(event: WatchedEvent) -> None:
            if event.type in (EventType.CREATED, EventType.NONE):
                ready.set()

        def session(state: str) -> None:
            if state != KazooState.CONNECTED:
                ready.set()  # wake to look again (or fail) on a connection problem

        self.client.add_listener(session)
        try:
            while True:
                if self.client.exists(self.path + "/ready", watch=created):
                    return True
                children = [c for c in self.client.get_children(self.path) if c != "ready"]
                if len(children) >= self.num_clients:
                    self.client.ensure_path(self.path + "/ready")
                    return True
                ready.wait()
                ready.clear()
        finally:
            self.client.remove_listener(session)

    def leave(self) -> None:
        """Leave; blocks until every member has left."""
        try:
            self.client.retry(self._inner_leave)
        except (KeeperError, RetryFailedError):
            self._best_effort_cleanup()
        self.participating = False

    def _inner_leave(self) -> bool:
        try:
            self.client.delete(self.path + "/ready")
        except NoNodeError:
            pass
        while True:
            children = self.client.get_children(self.path)
            if not children:
                return True
            if len(children) == 1 and children[0] == self.node_name:
                self.client.delete(self.create_path)
                return True
            children.sort()
            if self.node_name == children[0]:
                self._wait_gone(children[-1])  # the lowest waits for the highest to go
                continue
            try:
                self.client.delete(self.create_path)
            except NoNodeError:
                pass
            self._wait_gone(children[0])

    def _wait_gone(self, child: str) -> None:
        gone = threading.Event()

        def deleted(event: WatchedEvent) -> None:
            if event.type in (EventType.DELETED, EventType.NONE):
                gone.set()

        if self.client.exists(self.path + "/" + child, watch=deleted):
            gone.wait()

    def _best_effort_cleanup(self) -> None:
        try:
            self.client.retry(self.client.delete, self.create_path)
        except (NoNodeError, KeeperError, RetryFailedError):
            pass
