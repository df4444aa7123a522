"""Distributed queues (kazoo's Queue and LockingQueue), entries ordered by priority then arrival.

Queue: entries are PERSISTENT_SEQUENTIAL children `<path>/entry-<priority 000-999>-<seq>`; get()
takes the first by reading then deleting it: whoever deletes it got it, so an entry goes to one
consumer, but a consumer that dies after the delete loses the entry (at-most-once).

LockingQueue: entries `<path>/entries/entry-<priority>-<seq>`; get() locks one by creating the
ephemeral `<path>/taken/<entry name>` (holding the consumer's id) and returns it; consume()
deletes entry and lock in one transaction, release() unlocks it. A consumer whose session ends
unlocks its entry for others (at-least-once).
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import TYPE_CHECKING

from zkclient.exceptions import ConnectionLossError, NodeExistsError, NoNodeError
from zkclient.retry import ForceRetryError
from zkclient.states import WatchedEvent

if TYPE_CHECKING:
    from zkclient.client import Client

__all__ = ["LockingQueue", "Queue"]


def _check_priority(priority: int) -> None:
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise TypeError("priority must be an int")
    if priority < 0 or priority > 999:
        raise ValueError("priority must be between 0 and 999")


class _BaseQueue:
    def __init__(self, client: Client, path: str) -> None:
        self.client = client
        self.path = path
        self._entries_path = path
        self.structure_paths: tuple[str, ...] = (path,)
        self.ensured_path = False

    def _check_put_arguments(self, value: bytes, priority: int = 100) -> None:
        if not isinstance(value, bytes):
            raise TypeError("value must be a byte string")
        _check_priority(priority)

    def _ensure_paths(self) -> None:
        if not self.ensured_path:
            for path in self.structure_paths:
                self.client.ensure_path(path)
            self.ensured_path = True

    def __len__(self) -> int:
        self._ensure_paths()
        _data, stat = self.client.retry(self.client.get, self._entries_path)
        return stat.children_count


class Queue(_BaseQueue):
    """queue = zk.Queue("/app/jobs"); queue.put(b"job", priority=10); queue.get() -> bytes or
    None when empty. Lower priority values come out first."""

    prefix = "entry-"

    def __init__(self, client: Client, path: str) -> None:
        super().__init__(client, path)
        self._children: list[str] = []

    def get(self) -> bytes | None:
        """Take the first entry (removing it); None if the queue is empty."""
        self._ensure_paths()
        return self.client.retry(self._inner_get)

    def _inner_get(self) -> bytes | None:
        if not self._children:
            self._children = sorted(self.client.retry(self.client.get_children, self.path))
        if not self._children:
            return None
        name = self._children[0]
        try:
            data, _stat = self.client.get(self.path + "/" + name)
            self.client.delete(self.path + "/" + name)
        except NoNodeError:
            self._children = []  # taken by another consumer: look again
            raise ForceRetryError() from None
        self._children.pop(0)
        return data

    def put(self, value: bytes, priority: int = 100) -> None:
        """Add an entry. Not retried on ConnectionLoss (it may have been added)."""
        self._check_put_arguments(value, priority)
        self._ensure_paths()
        self.client.create(f"{self.path}/{self.prefix}{priority:03d}-", value, sequence=True)


class LockingQueue(_BaseQueue):
    """queue = zk.LockingQueue("/app/jobs"); queue.put(b"job"); value = queue.get(timeout=5);
    ...process...; queue.consume(). An entry got and not consumed goes back to the queue when
    released or when the consumer's session ends."""

    lock = "/taken"
    entries = "/entries"
    entry = "entry"

    def __init__(self, client: Client, path: str) -> None:
        super().__init__(client, path)
        self.id = uuid.uuid4().hex.encode()
        self.processing_element: tuple[str, bytes] | None = None
        self._lock_path = self.path + self.lock
        self._entries_path = self.path + self.entries
        self.structure_paths = (self._lock_path, self._entries_path)

    def _entry_prefix(self, priority: int) -> str:
        return f"{self._entries_path}/{self.entry}-{priority:03d}-"

    def put(self, value: bytes, priority: int = 100) -> None:
        """Add an entry."""
        self._check_put_arguments(value, priority)
        self._ensure_paths()
        self.client.create(self._entry_prefix(priority), value, sequence=True)

    def put_all(self, values: list[bytes], priority: int = 100) -> None:
        """Add several entries in one transaction: all or none."""
        if not isinstance(values, list):
            raise TypeError("values must be a list of byte strings")
        _check_priority(priority)
        for value in values:
            if not isinstance(value, bytes):
                raise TypeError("value must be a byte string")
        self._ensure_paths()
        with self.client.transaction() as transaction:
            for value in values:
                transaction.create(self._entry_prefix(priority), value, sequence=True)

    def get(self, timeout: float | None = None) -> bytes | None:
        """Lock and return the first free entry, waiting up to timeout seconds (None: for ever);
        None if none came. An entry got and not yet consumed or released is returned again."""
        self._ensure_paths()
        if self.processing_element is not None:
            return self.processing_element[1]
        return self._inner_get(timeout)

    def holds_lock(self) -> bool:
        """Whether this consumer still holds the lock on its entry (after a sync)."""
        if self.processing_element is None:
            return False
        lock_id, _ = self.processing_element
        lock_path = f"{self._lock_path}/{lock_id}"
        self.client.sync(lock_path)
        try:
            value, _stat = self.client.retry(self.client.get, lock_path)
        except NoNodeError:
            return False
        return value == self.id

    def consume(self) -> bool:
        """Remove the entry being processed (and its lock); False if this consumer lost it."""
        if self.processing_element is None or not self.holds_lock():
            return False
        id_, _value = self.processing_element
        with self.client.transaction() as transaction:
            transaction.delete(f"{self._entries_path}/{id_}")
            transaction.delete(f"{self._lock_path}/{id_}")
        self.processing_element = None
        return True

    def release(self) -> bool:
        """Unlock the entry being processed without consuming it; False if this consumer lost it."""
        if self.processing_element is None or not self.holds_lock():
            return False
        id_, _value = self.processing_element
        with self.client.transaction() as transaction:
            transaction.delete(f"{self._lock_path}/{id_}")
        self.processing_element = None
        return True

    def _inner_get(self, timeout: float | None) -> bytes | None:
        """Look for a free entry, and when there is none wait for the entries or the locks to
        change. The watches only wake this thread: the client's event thread never blocks."""
        changed = threading.Event()

        def on_change(event: WatchedEvent) -> None:
            changed.set()

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            changed.clear()
            values = self.client.retry(self.client.get_children, self._entries_path, on_change)
            taken = self.client.retry(self.client.get_children, self._lock_path, on_change)
            for id_ in self._filter_locked(values, taken):
                got = self._take(id_)
                if got is not None:
                    self.processing_element = got
                    return got[1]
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not changed.wait(left):
                return None

    def _filter_locked(self, values: list[str], taken: list[str]) -> list[str]:
        locked = set(taken)
        return [x for x in sorted(values) if x not in locked]

    def _take(self, id_: str) -> tuple[str, bytes] | None:
        lock_path = f"{self._lock_path}/{id_}"
        try:
            self.client.create(lock_path, self.id, ephemeral=True)
        except NodeExistsError:
            return None  # another consumer has it
        except ConnectionLossError:
            try:  # the reply was lost: the lock is ours if it holds our id
                owner, _stat = self.client.retry(self.client.get, lock_path)
            except NoNodeError:
                return None
            if owner != self.id:
                return None
        try:
            value, _stat = self.client.retry(self.client.get, f"{self._entries_path}/{id_}")
        except NoNodeError:
            self.client.delete(f"{self._lock_path}/{id_}")  # consumed meanwhile
            return None
        return (id_, value)
