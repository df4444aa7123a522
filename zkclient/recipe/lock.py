"""Locks with kazoo's names, call shapes and node layout: Lock (exclusive, fair), ReadLock and
WriteLock (shared / exclusive sides of one lock).

Layout (shared with kazoo and our C/Node bindings): each contender creates an
EPHEMERAL_SEQUENTIAL child `<path>/<uuid4 hex><marker><seq>`, marker `__lock__` (Lock, WriteLock)
or `__rlock__` (ReadLock), data = the identifier (UTF-8). Contenders are ordered by the 10-digit
sequence suffix after the marker, compared as text (as kazoo does). A contender holds the lock when
no child with a smaller sequence and an excluding marker is left; otherwise it watches only its
nearest such predecessor (no herd effect).

A create whose reply is lost (ConnectionLoss) is retried by looking for a child that starts with
this contender's uuid prefix, after a `sync` so the server has every committed create. Should the
lost create be applied later anyway, the extra child carries our prefix: every look at the
children deletes such orphans, so they never block the contenders behind them.

Once held, the lock lasts as long as the session: a SUSPENDED connection means it may be lost,
LOST means it is (add a listener with client.add_listener); see docs/recipes.md.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from zkclient.exceptions import (
    CancelledError,
    KeeperError,
    LockTimeout,
    NodeExistsError,
    NoNodeError,
    RetryFailedError,
    SessionExpiredError,
)
from zkclient.retry import ForceRetryError, Retry
from zkclient.states import KazooState, WatchedEvent

if TYPE_CHECKING:
    from zkclient.client import Client

__all__ = ["Lock", "ReadLock", "Semaphore", "WriteLock", "contender_sequence"]

SEQUENCE_DIGITS = 10


def _contenders_re(names: Iterable[str]) -> re.Pattern[str]:
    """kazoo's pattern: one of the markers, then the sequence suffix that ends the name."""
    return re.compile(r"(?:{})(-?\d{{{}}})$".format("|".join(sorted(names)), SEQUENCE_DIGITS))


def contender_sequence(name: str, names: Iterable[str] = ("__lock__", "__rlock__")) -> str | None:
    """The sequence suffix of a contender's node name (text, as kazoo compares it), or None when
    the name carries none of the markers."""
    match = _contenders_re(names).search(name)
    return match.group(1) if match is not None else None


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


class Lock:
    """An exclusive, fair lock on `path` (kazoo's Lock):

        lock = zk.Lock("/app/lock", "worker-1")
        with lock:  # blocks until held
            ...

    Not re-entrant. identifier: stored as the node's data, listed by contenders().
    extra_lock_patterns: other markers whose nodes also count as contenders."""

    _NODE_NAME = "__lock__"  # the marker between the uuid and the sequence
    _EXCLUDE_NAMES: tuple[str, ...] = ("__lock__",)  # markers that exclude us from a lower sequence

    def __init__(self, client: Client, path: str, identifier: str | None = None,
                 extra_lock_patterns: Iterable[str] = ()) -> None:  # fmt: skip
        if not isinstance(path, str) or not path.startswith("/") or path.endswith("/"):
            raise ValueError(f"lock path must be absolute and not end in '/': {path!r}")
        self.client = client
        self.path = path
        self._exclude_names = set(self._EXCLUDE_NAMES) | set(extra_lock_patterns)
        self._contenders_re = _contenders_re(self._exclude_names)
        self.data = str(identifier or "").encode("utf-8")
        self.node: str | None = None  # our child's name once created
        self.wake_event = threading.Event()
        self.prefix = uuid.uuid4().hex + self._NODE_NAME
        self.create_path = self.path + "/" + self.prefix
        self.create_tried = False
        self.is_acquired = False
        self.assured_path = False
        self.cancelled = False
        self._create_lost = False  # a create went unanswered: sweep for orphans on release
        self._retry = Retry(max_tries=-1, delay=0.05, backoff=2, max_delay=1.0)
        self._acquire_method_lock = threading.Lock()

    # --- acquire -------------------------------------------------------------------------------

    def cancel(self) -> None:
        """Make a pending acquire give up with CancelledError."""
        self.cancelled = True
        self.wake_event.set()

    def acquire(self, blocking: bool = True, timeout: float | None = None, ephemeral: bool = True) -> bool:
        """Take the lock: True once held. blocking=False: False at once if another holds it.
        timeout (s): LockTimeout if not held by then. ephemeral=False: a node that outlives the
        session (the lock is then not released by session expiry: the caller must)."""
        retry = self._retry.copy()
        retry.deadline = timeout
        if blocking:
            locked = self._acquire_method_lock.acquire(True, -1 if timeout is None else timeout)
        else:
            locked = self._acquire_method_lock.acquire(False)
        if not locked:
            return False
        already_acquired = self.is_acquired
        try:
            gotten = False
            try:
                gotten = retry(self._inner_acquire, blocking, _deadline(timeout), ephemeral)
            except RetryFailedError:
                pass
            except (KeeperError, LockTimeout, CancelledError):
                if not already_acquired:
                    self._best_effort_cleanup()
                    self.cancelled = False
                raise
            if gotten:
                self.is_acquired = True
            elif not already_acquired:
                self._best_effort_cleanup()
            return gotten
        finally:
            self._acquire_method_lock.release()

    def _watch_session(self, state: str) -> bool:
        """Any change of state wakes the waiter to look again. It stays registered: only the
        waiting thread removes it (two threads removing one listener could race)."""
        self.wake_event.set()
        return False

    def _inner_acquire(self, blocking: bool, deadline: float | None, ephemeral: bool) -> bool:
        if self.is_acquired:
            if not blocking:
                return False
            raise ForceRetryError()  # not re-entrant: wait (until the deadline) like kazoo
        if not self.assured_path:
            self.client.ensure_path(self.path)
            self.assured_path = True
        node = None
        if self.create_tried:
            node = self._find_node()  # our create may have happened without our hearing of it
        self.create_tried = True
        if node is None:
            try:
                created = self.client.create(self.create_path, self.data, ephemeral=ephemeral, sequence=True)
            except KeeperError as e:
                if not isinstance(e, SessionExpiredError):
                    self._create_lost = True
                raise
            node = created[len(self.path) + 1 :]
        self.node = node
        while True:
            self.wake_event.clear()
            if self.cancelled:
                raise CancelledError(f"acquire of {self.path} was cancelled")
            predecessor = self._get_predecessor(node)
            if predecessor is None:
                return True
            if not blocking:
                return False
            self.client.add_listener(self._watch_session)
            try:
                self.client.get(self.path + "/" + predecessor, self._watch_predecessor)
            except NoNodeError:
                continue  # gone already: look again
            else:
                left = _left(deadline)
                if left is not None and not self.wake_event.wait(left):
                    raise LockTimeout(f"Failed to acquire lock on {self.path} within the timeout")
                if left is None:
                    self.wake_event.wait()
            finally:
                self.client.remove_listener(self._watch_session)

    def _watch_predecessor(self, event: WatchedEvent) -> None:
        self.wake_event.set()

    def _get_predecessor(self, node: str) -> str | None:
        """The nearest contender before `node` that excludes us, or None: we hold the lock.
        Deletes our own orphans on the way (nodes with our prefix other than `node`)."""
        ours = node[len(self.prefix) :]
        children = self.client.get_children(self.path)
        found_self = False
        before: list[tuple[str, str]] = []
        for child in children:
            if child == node:
                found_self = True
                continue
            if child.startswith(self.prefix):
                self._delete_orphan(child)
                continue
            match = self._contenders_re.search(child)
            if match is not None and match.group(1) < ours:
                before.append((match.group(1), child))
        if not found_self:
            # Our node is gone (deleted by someone, or a session that was replaced): start over.
            self.create_tried = False
            raise ForceRetryError()
        if not before:
            return None
        return max(before)[1]

    def _delete_orphan(self, child: str) -> None:
        try:
            self.client.delete(self.path + "/" + child)
        except NoNodeError:
            pass

    def _find_node(self) -> str | None:
        """Our child, found by its uuid prefix after a sync (so a create that this session's
        server applied before it failed is visible wherever we are now)."""
        self.client.sync(self.path)
        mine = sorted(c for c in self.client.get_children(self.path) if c.startswith(self.prefix))
        for extra in mine[1:]:
            self._delete_orphan(extra)
        return mine[0] if mine else None

    def _best_effort_cleanup(self) -> None:
        try:
            node = self.node or self._find_node()
            if node:
                self._delete_orphan(node)
            self._sweep_orphans()
        except (KeeperError, ConnectionError, RetryFailedError):
            pass
        self.node = None

    def _sweep_orphans(self) -> None:
        if not self._create_lost:
            return
        for child in self.client.get_children(self.path):
            if child.startswith(self.prefix):
                self._delete_orphan(child)
        self._create_lost = False

    # --- release and inspection -----------------------------------------------------------------

    def release(self) -> bool:
        """Give the lock up (delete our node); False if it was not held."""
        return self.client.retry(self._inner_release)

    def _inner_release(self) -> bool:
        if not self.is_acquired:
            return False
        if self.node is not None:
            self._delete_orphan(self.node)
        self._sweep_orphans()
        self.is_acquired = False
        self.node = None
        self.create_tried = False
        return True

    def contenders(self) -> list[str]:
        """The identifiers of every contender in lock order (the holder first; readers and
        writers alike for a read/write lock). A contender without one shows as ''."""
        if not self.assured_path:
            self.client.ensure_path(self.path)
            self.assured_path = True
        pattern = _contenders_re(self._exclude_names | {self._NODE_NAME})
        ordered = sorted(
            (m.group(1), child)
            for child in self.client.get_children(self.path)
            if (m := pattern.search(child))
        )
        out = []
        for _, child in ordered:
            try:
                data, _stat = self.client.get(self.path + "/" + child)
            except NoNodeError:
                continue
            out.append(data.decode("utf-8"))
        return out

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


class WriteLock(Lock):
    """The exclusive side of a read/write lock on `path`: excludes readers and writers."""

    _NODE_NAME = "__lock__"
    _EXCLUDE_NAMES = ("__lock__", "__rlock__")


class ReadLock(Lock):
    """The shared side of a read/write lock on `path`: many readers hold it at once, never
    alongside a writer that came first."""

    _NODE_NAME = "__rlock__"
    _EXCLUDE_NAMES = ("__lock__",)


class Semaphore:
    """At most max_leases holders of `path` at once (kazoo's Semaphore):

        with zk.Semaphore("/app/slots", "worker-1", max_leases=3):
            ...

    Layout (kazoo's): the node `path` holds max_leases as text; each holder has an ephemeral
    child `path/<uuid4 hex>` holding its identifier; contenders queue on the Lock
    `<path>-__lock__` (a sibling of `path`), whose holder alone watches the leases. Every user of
    one semaphore must give the same max_leases (ValueError otherwise)."""

    def __init__(self, client: Client, path: str, identifier: str | None = None, max_leases: int = 1) -> None:
        if not isinstance(max_leases, int) or max_leases < 1:
            raise ValueError(f"max_leases must be a positive int, got {max_leases!r}")
        self.client = client
        self.path = path
        self.data = str(identifier or "").encode("utf-8")
        self.max_leases = max_leases
        self.wake_event = threading.Event()
        self.create_path = self.path + "/" + uuid.uuid4().hex
        self.lock_path = path + "-__lock__"
        self.is_acquired = False
        self.assured_path = False
        self.cancelled = False
        self._session_expired = False

    def _ensure_path(self) -> None:
        try:
            self.client.create(self.path, str(self.max_leases).encode("utf-8"), makepath=True)
        except NodeExistsError:
            data, _stat = self.client.get(self.path)
            try:
                leases = int(data.decode("utf-8"))
            except ValueError:
                pass  # not ours to judge: the node's data is used for something else
            else:
                if leases != self.max_leases:
                    raise ValueError(
                        f"Inconsistent max leases: {leases}, expected: {self.max_leases}"
                    ) from None
        self.assured_path = True

    def cancel(self) -> None:
        """Make a pending acquire give up with CancelledError."""
        self.cancelled = True
        self.wake_event.set()

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take a lease: True once held; False at once (blocking=False) if none is free;
        LockTimeout if none is free within timeout seconds."""
        self.cancelled = False
        retry = Retry(max_tries=-1, delay=0.05, backoff=2, max_delay=1.0, deadline=timeout)
        self.client.add_listener(self._watch_session)
        try:
            self.is_acquired = retry(self._inner_acquire, blocking, timeout)
        except RetryFailedError:
            self._best_effort_cleanup()  # ConnectionLoss until the timeout ran out
            self.is_acquired = False
        except (KeeperError, LockTimeout, CancelledError):
            self._best_effort_cleanup()
            self.cancelled = False
            raise
        finally:
            self.client.remove_listener(self._watch_session)
        return self.is_acquired

    def _inner_acquire(self, blocking: bool, timeout: float | None) -> bool:
        self._session_expired = False
        if not self.assured_path:
            self._ensure_path()
        if self.client.exists(self.create_path):
            return True  # a lease created by a try whose reply was lost
        deadline = _deadline(timeout)
        lock = Lock(self.client, self.lock_path, self.data.decode("utf-8"))
        try:
            if not lock.acquire(blocking, _left(deadline)):
                return False
            while True:
                self.wake_event.clear()
                if self._get_lease():
                    return True
                if not blocking:
                    return False
                left = _left(deadline)
                if not self.wake_event.wait(left) and left is not None:
                    raise LockTimeout(f"Failed to acquire semaphore on {self.path} within {timeout} seconds")
        finally:
            lock.release()

    def _watch_lease_change(self, event: WatchedEvent) -> None:
        self.wake_event.set()

    def _get_lease(self) -> bool:
        if self._session_expired:
            raise ForceRetryError("the session was lost: start over")
        if self.cancelled:
            raise CancelledError(f"acquire of semaphore {self.path} was cancelled")
        children = self.client.get_children(self.path, self._watch_lease_change)
        if len(children) < self.max_leases:
            try:
                self.client.create(self.create_path, self.data, ephemeral=True)
            except NodeExistsError:
                pass
        self.is_acquired = self.client.exists(self.create_path) is not None
        return self.is_acquired

    def _watch_session(self, state: str) -> None:
        if state == KazooState.LOST:
            self._session_expired = True
            self.wake_event.set()

    def _best_effort_cleanup(self) -> None:
        try:
            self.client.delete(self.create_path)
        except (KeeperError, RetryFailedError):
            pass

    def release(self) -> bool:
        """Give the lease back; False if none was held."""
        return self.client.retry(self._inner_release)

    def _inner_release(self) -> bool:
        if not self.is_acquired:
            return False
        try:
            self.client.delete(self.create_path)
        except NoNodeError:
            pass
        self.is_acquired = False
        return True

    def lease_holders(self) -> list[str]:
        """The identifiers of the current lease holders, unordered."""
        if not self.client.exists(self.path):
            return []
        holders = []
        for child in self.client.get_children(self.path):
            try:
                data, _stat = self.client.get(self.path + "/" + child)
            except NoNodeError:
                continue
            holders.append(data.decode("utf-8"))
        return holders

    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
