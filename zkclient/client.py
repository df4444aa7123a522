"""Client: a ZooKeeper session over ZeroMQ with kazoo's KazooClient API (sync calls, `*_async`
calls returning AsyncResult, listeners, watches, transactions, DataWatch/ChildrenWatch).

The work is split three ways: this class checks arguments and builds requests (_ops), one I/O
thread owns the socket and the session (_connection), one event thread runs every callback in
order (_dispatch). Reads are retried on ConnectionLoss by `command_retry`; writes are not (see
zkclient.retry for why).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import zmq

from zkclient import _tree, admin
from zkclient._connection import AuthCall, Connection
from zkclient._dispatch import Dispatcher
from zkclient._future import AsyncResult
from zkclient._ops import Call, Ops, check_path, create_mode
from zkclient._watchers import REMOVED_EVENT, WatchFunc, WatchManager
from zkclient.acl import ACL, check_acl_list
from zkclient.exceptions import ClientTimeoutError, ConnectionClosedError, RetryFailedError
from zkclient.hosts import parse_hosts
from zkclient.local import default_hosts
from zkclient.retry import Retry
from zkclient.states import (
    AddWatchMode,
    KazooState,
    KeeperState,
    WatchedEvent,
    WatcherType,
    ZnodeStat,
    event_type_name,
)
from zkclient.transaction import ReadRequest, TransactionRequest
from zkclient.watchers import ChildrenWatch, DataWatch
from zkcore._errors import KeeperError, NoNodeError, NoWatcherError
from zkcore._records import OpCode

T = TypeVar("T")
Listener = Callable[[str], Any]
CLOSE_TIMEOUT_S = 5.0


def _retry_of(value: Retry | dict[str, Any] | None, default: Retry) -> Retry:
    if value is None:
        return default
    if isinstance(value, Retry):
        return value
    if isinstance(value, dict):
        return Retry(**value)
    raise TypeError(f"retry policy must be a Retry or a dict of its arguments, got {type(value).__name__}")


class Client:
    """A session with a zkpy ensemble.

    hosts: connect string (see zkclient.hosts; None: see zkclient.local). timeout: the session timeout asked for, in
    seconds (the server clamps it). client_id: (session id, password) to resume a session.
    auth_data: [(scheme, credential)] sent on every connection. read_only: ZooKeeper's flag,
    passed on. randomize_hosts: try servers in a shuffled order. connection_retry: a Retry (or
    its arguments) whose delay, backoff and max_delay pace the rounds over the server list.
    command_retry: the Retry for reads (default: up to 10 retries within one session timeout)."""

    def __init__(
        self,
        hosts: str | None = None,
        timeout: float = 10.0,
        client_id: tuple[int, bytes] | None = None,
        auth_data: Sequence[tuple[str, str | bytes]] | None = None,
        read_only: bool = False,
        randomize_hosts: bool = True,
        connection_retry: Retry | dict[str, Any] | None = None,
        command_retry: Retry | dict[str, Any] | None = None,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
    ) -> None:
        if not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if hosts is None:  # ZKPY_CONNECT, the local ensemble in ./zkpy-data, or 127.0.0.1:2181
            hosts = default_hosts().hosts
        connect = parse_hosts(hosts)
        self.hosts = connect.endpoints
        self.chroot = connect.chroot
        self.timeout = float(timeout)
        self.read_only = read_only
        self.randomize_hosts = randomize_hosts
        self.connection_retry = _retry_of(connection_retry, Retry(max_tries=-1, delay=0.05, max_delay=1.0))
        self.retry_policy = _retry_of(
            command_retry, Retry(max_tries=10, delay=0.05, backoff=2, max_delay=1.0, deadline=self.timeout)
        )
        self._client_id = client_id
        self._auth_data: list[tuple[str, bytes]] = [(s, _as_bytes(c)) for s, c in auth_data or ()]
        self._context = context
        self._watches = WatchManager()
        self._listeners: list[Listener] = []
        self._state = KazooState.LOST
        self._state_changed = threading.Condition()
        self._lifecycle = threading.Lock()
        self._conn: Connection | None = None
        self._dispatcher: Dispatcher | None = None
        self._ops = Ops(self.chroot, self._new_result)
        self._closed = False
        # kazoo's recipes (zkclient.recipe) bound to this client: zk.Lock(path, identifier).
        # Imported here so this block is the whole of the recipes' footprint in this file.
        from functools import partial

        from zkclient import recipe

        self.Lock = partial(recipe.Lock, self)
        self.ReadLock = partial(recipe.ReadLock, self)
        self.WriteLock = partial(recipe.WriteLock, self)
        self.Semaphore = partial(recipe.Semaphore, self)
        self.Election = partial(recipe.Election, self)
        self.Party = partial(recipe.Party, self)
        self.ShallowParty = partial(recipe.ShallowParty, self)
        self.Barrier = partial(recipe.Barrier, self)
        self.DoubleBarrier = partial(recipe.DoubleBarrier, self)
        self.Queue = partial(recipe.Queue, self)
        self.LockingQueue = partial(recipe.LockingQueue, self)
        self.Counter = partial(recipe.Counter, self)
        self.TreeCache = partial(recipe.TreeCache, self)

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> None:
        """Connect and open a session; ClientTimeoutError if no server takes it within timeout
        (the client is then stopped), SessionExpiredError if resuming a session that is gone."""
        with self._lifecycle:
            if self._closed:
                raise ConnectionClosedError("the client was closed; make a new one")
            if self._conn is not None and not (self._conn.expired or self._conn.closed):
                return
            if self._conn is not None:
                self._stop_locked()
            self._dispatcher = Dispatcher("zkclient-events")
            self._dispatcher.start()
            conn = self._conn = Connection(
                self.hosts, self.timeout, self._dispatcher, self._watches, self._on_state, self.chroot,
                self.read_only, self.randomize_hosts, self._client_id, list(self._auth_data), self._context,
                round_backoff=self._round_backoff,
            )  # fmt: skip
            conn.thread.start()
        with self._state_changed:
            self._state_changed.wait_for(lambda: self._state == KazooState.CONNECTED or conn.expired or conn.closed,
                                         timeout)  # fmt: skip
        if self._state == KazooState.CONNECTED:
            return
        expired = conn.expired
        self.stop()
        if expired:
            raise conn.final_error()
        raise ClientTimeoutError(f"Connection time-out: no server of {','.join(self.hosts)} took the session")

    def stop(self) -> None:
        """Close the session (its ephemerals go at once) and stop the threads. Calls made after
        this raise ConnectionClosedError; start() opens a new session."""
        with self._lifecycle:
            self._stop_locked()

    def _stop_locked(self) -> None:
        conn, dispatcher = self._conn, self._dispatcher
        if conn is None:
            return
        conn.shutdown(close_session=True, timeout_s=min(CLOSE_TIMEOUT_S, self.timeout))
        self._client_id = None
        self._conn = None
        if dispatcher is not None:
            dispatcher.stop()

    def restart(self) -> None:
        """stop() then start(): a new session."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop, and refuse to start again (kazoo: free the client's resources)."""
        self.stop()
        self._closed = True

    def __enter__(self) -> Client:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _round_backoff(self, rounds: int) -> float:
        policy = self.connection_retry
        return float(min(policy.delay * policy.backoff ** max(0, rounds - 1), policy.max_delay))

    # --- state ----------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """KazooState: CONNECTED, SUSPENDED or LOST."""
        return self._state

    @property
    def connected(self) -> bool:
        return self._state == KazooState.CONNECTED

    @property
    def client_id(self) -> tuple[int, bytes] | None:
        """(session id, password) of the current session, or None without one."""
        conn = self._conn
        if conn is None or not conn.session_id or conn.expired or conn.closed:
            return None
        return conn.session_id, conn.passwd

    @property
    def last_zxid(self) -> int:
        """The highest zxid seen in any reply: what the client sends when it reconnects."""
        conn = self._conn
        return conn.last_zxid if conn is not None else 0

    @property
    def session_timeout(self) -> float:
        """The negotiated session timeout, in seconds (the requested one before connecting)."""
        conn = self._conn
        return conn.timeout_ms / 1000 if conn is not None else self.timeout

    @property
    def endpoint(self) -> str | None:
        """The server this client is connected to (or trying)."""
        conn = self._conn
        return conn.endpoint if conn is not None else None

    def add_listener(self, listener: Listener) -> None:
        """listener(state) runs on the event thread at every KazooState change; returning True
        removes it."""
        if not callable(listener):
            raise TypeError("listener must be callable")
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _on_state(self, state: str) -> None:
        """On the I/O thread, in order with every reply and event."""
        with self._state_changed:
            changed, self._state = state != self._state, state
            self._state_changed.notify_all()  # also LOST -> LOST: start() waits on expiry too
        if not changed:
            return
        dispatcher = self._dispatcher
        for listener in list(self._listeners):
            if dispatcher is not None:
                dispatcher.submit(self._call_listener, listener, state)

    def _call_listener(self, listener: Listener, state: str) -> None:
        if listener(state) is True:
            self.remove_listener(listener)

    # --- plumbing -------------------------------------------------------------------------------

    def _new_result(self) -> AsyncResult[Any]:
        return AsyncResult(self._dispatcher)

    def _submit(self, call: Call) -> AsyncResult[Any]:
        conn = self._conn
        if conn is None:
            call.result.set_exception(ConnectionClosedError("Connection has been closed"))
        else:
            conn.submit(call)
        return call.result

    def _read(self, make: Callable[[], AsyncResult[T]]) -> T:
        """Run a read, retrying it on ConnectionLoss by command_retry; when retries run out the
        last error is raised as it was."""
        try:
            return self.retry_policy(lambda: make().get())
        except RetryFailedError as e:
            if isinstance(e.__cause__, KeeperError):
                raise e.__cause__ from None
            raise

    def retry(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run func with the client's retry policy (kazoo's client.retry): for the caller's own
        idempotent sequences."""
        return self.retry_policy.copy()(func, *args, **kwargs)

    # --- reads ----------------------------------------------------------------------------------

    def exists_async(self, path: str, watch: WatchFunc | None = None) -> AsyncResult[ZnodeStat | None]:
        return self._submit(self._ops.exists(path, watch))

    def exists(self, path: str, watch: WatchFunc | None = None) -> ZnodeStat | None:
        """The node's stat or None; watch (one-shot) hears its creation, change or deletion."""
        return self._read(lambda: self.exists_async(path, watch))

    def get_async(
        self, path: str, watch: WatchFunc | None = None, linearizable: bool = False
    ) -> AsyncResult[tuple[bytes, ZnodeStat]]:
        if not linearizable:
            return self._submit(self._ops.get(path, watch))
        # A sync and the read pipelined behind it: the server answers the read only after it has
        # applied everything the leader had committed when a quorum confirmed the sync. A failed
        # sync fails the read too: its answer would carry no such promise.
        synced = self._submit(self._ops.sync(path))
        read = self._submit(self._ops.get(path, watch))
        result: AsyncResult[tuple[bytes, ZnodeStat]] = self._new_result()

        def finish(done: AsyncResult[tuple[bytes, ZnodeStat]]) -> None:
            failure = synced.exception or done.exception
            if failure is not None:
                result.set_exception(failure)
            else:
                result.set(done.value)  # type: ignore[arg-type]

        read.rawlink(finish)
        return result

    def get(
        self, path: str, watch: WatchFunc | None = None, linearizable: bool = False
    ) -> tuple[bytes, ZnodeStat]:
        """(data, stat); watch (one-shot) hears the next change or the deletion. linearizable:
        the read sees every write that completed anywhere before it was sent (a sync is
        pipelined ahead of it; it costs a round trip between the servers)."""
        return self._read(lambda: self.get_async(path, watch, linearizable))

    def get_children_async(
        self, path: str, watch: WatchFunc | None = None, include_data: bool = False
    ) -> AsyncResult[Any]:
        return self._submit(self._ops.get_children(path, watch, include_data))

    def get_children(self, path: str, watch: WatchFunc | None = None, include_data: bool = False) -> Any:
        """The children's names (and the stat with include_data); watch (one-shot) hears the next
        child created or deleted, or the node's deletion."""
        return self._read(lambda: self.get_children_async(path, watch, include_data))

    def get_acls_async(self, path: str) -> AsyncResult[tuple[list[ACL], ZnodeStat]]:
        return self._submit(self._ops.get_acls(path))

    def get_acls(self, path: str) -> tuple[list[ACL], ZnodeStat]:
        return self._read(lambda: self.get_acls_async(path))

    def sync_async(self, path: str) -> AsyncResult[str]:
        return self._submit(self._ops.sync(path))

    def sync(self, path: str) -> str:
        """Bring this client's server up to the leader: a read after it sees every write that
        completed before it (on any server)."""
        return self._read(lambda: self.sync_async(path))

    def get_ephemerals_async(self, prefix: str = "/") -> AsyncResult[list[str]]:
        return self._submit(self._ops.get_ephemerals(prefix))

    def get_ephemerals(self, prefix: str = "/") -> list[str]:
        """This session's ephemeral znodes under prefix, sorted."""
        return self._read(lambda: self.get_ephemerals_async(prefix))

    def whoami_async(self) -> AsyncResult[list[tuple[str, str]]]:
        return self._submit(self._ops.whoami())

    def whoami(self) -> list[tuple[str, str]]:
        """Who the server takes this connection for, as ZooKeeper's whoAmI: (scheme, user) of
        each identity it holds, ("ip", this client's address) first, then ("digest", user)
        for each add_auth. A client over ipc is on the server's host: its ip is 127.0.0.1."""
        return self._read(self.whoami_async)

    def get_all_children_number_async(self, path: str) -> AsyncResult[int]:
        return self._submit(self._ops.get_all_children_number(path))

    def get_all_children_number(self, path: str) -> int:
        """How many znodes are below path, at any depth."""
        return self._read(lambda: self.get_all_children_number_async(path))

    def multi_read(self) -> ReadRequest:
        """A batch of getData/getChildren answered together (multiRead)."""
        return ReadRequest(self)

    def get_many(self, paths: Sequence[str]) -> list[tuple[bytes, ZnodeStat] | KeeperError]:
        """getData of each path in one request: per path (data, stat) or the exception."""

        def attempt() -> AsyncResult[list[Any]]:
            batch = self.multi_read()
            for path in paths:
                batch.get(path)
            return batch.commit_async()

        return self._read(attempt)

    # --- writes ---------------------------------------------------------------------------------

    def create_async(self, path: str, value: bytes = b"", acl: Sequence[ACL] | None = None, ephemeral: bool = False,
                     sequence: bool = False, makepath: bool = False, include_data: bool = False,
                     container: bool = False, ttl: int = 0) -> AsyncResult[Any]:  # fmt: skip
        mode = create_mode(ephemeral, sequence, container, ttl)
        acl_list = check_acl_list(acl)
        first = self._submit(self._ops.create(path, value, acl_list, mode, ttl, include_data))
        if not makepath:
            return first
        parent = path.rsplit("/", 1)[0] or "/"
        return _on_no_node(self, first, lambda: self.ensure_path_async(parent, acl_list), lambda: self._submit(
            self._ops.create(path, value, acl_list, mode, ttl, include_data)))  # fmt: skip

    def create(self, path: str, value: bytes = b"", acl: Sequence[ACL] | None = None, ephemeral: bool = False,
               sequence: bool = False, makepath: bool = False, include_data: bool = False,
               container: bool = False, ttl: int = 0) -> Any:  # fmt: skip
        """Create a znode; its path (the server's name for a sequential one), or (path, stat)
        with include_data. makepath creates missing parents. container: deleted by the server
        once its last child goes. ttl (ms): a persistent node deleted once unchanged and childless
        that long. Not retried on ConnectionLoss: it may have been created."""
        return self.create_async(
            path, value, acl, ephemeral, sequence, makepath, include_data, container, ttl
        ).get()

    def ensure_path_async(self, path: str, acl: Sequence[ACL] | None = None) -> AsyncResult[bool]:
        check_path(path)
        return _tree.ensure_path_async(self, path, check_acl_list(acl))

    def ensure_path(self, path: str, acl: Sequence[ACL] | None = None) -> bool:
        """Create path and its missing ancestors (one pipelined round trip); True. Safe to retry."""
        return self._read(lambda: self.ensure_path_async(path, acl))

    def set_async(self, path: str, value: bytes, version: int = -1) -> AsyncResult[ZnodeStat]:
        return self._submit(self._ops.set(path, value, version))

    def set(self, path: str, value: bytes, version: int = -1) -> ZnodeStat:
        """Set a znode's data if its version matches (-1: any); the new stat."""
        return self.set_async(path, value, version).get()

    def delete_async(self, path: str, version: int = -1) -> AsyncResult[bool]:
        return self._submit(self._ops.delete(path, version))

    def delete(self, path: str, version: int = -1, recursive: bool = False) -> bool:
        """Delete a znode if its version matches; recursive deletes its subtree first."""
        if recursive:
            check_path(path)
            return _tree.delete_recursive(self, path)
        return self.delete_async(path, version).get()

    def set_acls_async(self, path: str, acls: Sequence[ACL], version: int = -1) -> AsyncResult[ZnodeStat]:
        return self._submit(self._ops.set_acls(path, check_acl_list(acls), version))

    def set_acls(self, path: str, acls: Sequence[ACL], version: int = -1) -> ZnodeStat:
        return self.set_acls_async(path, acls, version).get()

    def transaction(self) -> TransactionRequest:
        """Ops that commit together or not at all (multi)."""
        return TransactionRequest(self)

    def add_auth_async(self, scheme: str, credential: str | bytes) -> AsyncResult[bool]:
        if not isinstance(scheme, str):
            raise TypeError(f"scheme must be a str, got {type(scheme).__name__}")
        auth = AuthCall(scheme, _as_bytes(credential), self._new_result())

        def remember(result: AsyncResult[Any]) -> None:
            if result.successful() and (auth.scheme, auth.credential) not in self._auth_data:
                self._auth_data.append((auth.scheme, auth.credential))

        assert auth.result is not None
        auth.result.rawlink(remember)
        conn = self._conn
        if conn is None:
            auth.result.set_exception(ConnectionClosedError("Connection has been closed"))
        else:
            conn.submit(auth)
        return auth.result

    def add_auth(self, scheme: str, credential: str | bytes) -> bool:
        """Add an identity to this connection (scheme 'digest', credential 'user:password'); it is
        sent again on every reconnect. AuthFailedError if the server rejects it."""
        return self.add_auth_async(scheme, credential).get()

    # --- watches --------------------------------------------------------------------------------

    def add_watch_async(
        self, path: str, func: WatchFunc, mode: int = AddWatchMode.PERSISTENT
    ) -> AsyncResult[None]:
        if not callable(func):
            raise TypeError("func must be callable")
        return self._submit(self._ops.add_watch(path, func, int(mode)))

    def add_watch(self, path: str, func: WatchFunc, mode: int = AddWatchMode.PERSISTENT) -> None:
        """A watch that stays: PERSISTENT hears every event on path, PERSISTENT_RECURSIVE hears
        created/deleted/changed on path and everything below it. Kept across reconnects."""
        self._read(lambda: self.add_watch_async(path, func, mode))

    def remove_watches_async(self, path: str, watcher_type: int = WatcherType.ANY,
                             func: WatchFunc | None = None) -> AsyncResult[bool]:  # fmt: skip
        """Remove this client's watches of watcher_type on path (only func's, when given); each
        removed function hears DATA_WATCH_REMOVED, CHILD_WATCH_REMOVED or PERSISTENT_WATCH_REMOVED.
        NoWatcherError when the client holds none. The server is asked only when no function
        keeps a watch of that type on the path."""
        full = self._ops.full(check_path(path))
        wtype = WatcherType(watcher_type)
        result: AsyncResult[bool] = self._new_result()
        if not self._watches.has(full, wtype, func):
            result.set_exception(NoWatcherError(f"KeeperErrorCode = NoWatcher for {path}", path))
            return result
        removed = self._watches.remove(full, wtype, func) if func is not None else []
        if removed and self._watches.has(full, wtype):
            self._tell_removed(removed, path)  # others keep the server's watch: nothing to ask
            result.set(True)
            return result

        def on_reply(err: int) -> None:
            self._tell_removed(removed + self._watches.remove(full, wtype), path)

        accept = frozenset({NoWatcherError.code})  # the server's one-shot fired meanwhile
        return self._submit(self._ops.watch_op(OpCode.REMOVE_WATCHES, path, wtype, on_reply, accept))

    def remove_watches(
        self, path: str, watcher_type: int = WatcherType.ANY, func: WatchFunc | None = None
    ) -> bool:
        return self.remove_watches_async(path, watcher_type, func).get()

    def check_watches(self, path: str, watcher_type: int = WatcherType.ANY) -> bool:
        """Whether the server holds a watch of this type on path for this client (NoWatcherError)."""
        wtype = WatcherType(watcher_type)
        return bool(self._read(lambda: self._submit(self._ops.watch_op(OpCode.CHECK_WATCHES, path, wtype))))

    def _tell_removed(self, removed: list[tuple[Any, WatchFunc]], path: str) -> None:
        dispatcher = self._dispatcher
        for kind, func in removed:
            event = WatchedEvent(event_type_name(REMOVED_EVENT[kind]), KeeperState.CONNECTED, path)
            if dispatcher is not None:
                dispatcher.submit(func, event)

    def DataWatch(self, path: str, func: Callable[..., Any] | None = None, **kwargs: Any) -> DataWatch:  # noqa: N802
        """kazoo's recipe: func(data, stat[, event]) now and at every change (None, None while
        the node does not exist) until it returns False."""
        return DataWatch(self, path, func, **kwargs)

    def ChildrenWatch(
        self, path: str, func: Callable[..., Any] | None = None, **kwargs: Any
    ) -> ChildrenWatch:  # noqa: N802
        """kazoo's recipe: func(children[, event]) now and at every change until it returns False
        or the node is deleted."""
        return ChildrenWatch(self, path, func, **kwargs)

    # --- admin ----------------------------------------------------------------------------------

    def command(self, cmd: str | bytes = "ruok") -> str:
        """A four-letter word (ruok, srvr, mntr, ...; str or bytes, as kazoo's `command(b"ruok")`)
        to the server this client is connected to."""
        endpoint = self.endpoint
        if endpoint is None:
            raise ConnectionClosedError("not connected to any server")
        answer = admin.query(endpoint, cmd, int(self.timeout * 1000))
        if answer is None:
            raise ClientTimeoutError(f"no answer to {cmd!r} from {endpoint}")
        return answer


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _on_no_node(client: Client, first: AsyncResult[Any], prepare: Callable[[], AsyncResult[Any]],
                again: Callable[[], AsyncResult[Any]]) -> AsyncResult[Any]:  # fmt: skip
    """first's result, unless it failed with NoNodeError: then prepare(), then again()'s result."""
    out: AsyncResult[Any] = client._new_result()

    def relay(result: AsyncResult[Any]) -> None:
        if result.exception is not None:
            out.set_exception(result.exception)
        else:
            out.set(result.value)

    def after_prepare(result: AsyncResult[Any]) -> None:
        if result.exception is not None:
            out.set_exception(result.exception)
        else:
            again().rawlink(relay)

    def after_first(result: AsyncResult[Any]) -> None:
        if isinstance(result.exception, NoNodeError):
            prepare().rawlink(after_prepare)
        else:
            relay(result)

    first.rawlink(after_first)
    return out
