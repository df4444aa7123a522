"""The clients of a verification run: each a thread with its own zkclient session, doing register
reads, writes and compare-and-sets, sequential creates, ephemerals and watches, and recording
every operation with its real-time interval and outcome.

An operation whose outcome the client cannot know (a connection lost or a timeout while a write
was in flight) is recorded as unknown: it may have happened, at any time after it started.

A client whose last operation took longer than STALL_S (its server was paused, cut off or gone)
reads linearizably next: the moments after a stall are when a server that lost its place (a
leader that has not yet noticed it was replaced) answers, and a sync then a read is the operation
that shows it.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from zkclient import AsyncResult, Client, KazooState
from zkclient import exceptions as zke

T = TypeVar("T")
OP_TIMEOUT_S = 3.0
STALL_S = 1.0
SESSION_TIMEOUT_S = 4.0
REGISTER_ROOT = "/verify/r"
SEQ_ROOT = "/verify/seq"
EPH_ROOT = "/verify/eph"

# The checker's names for the client's event types.
EVENT_NAMES = {"CREATED": "NodeCreated", "DELETED": "NodeDeleted", "CHANGED": "NodeDataChanged",
               "CHILD": "NodeChildrenChanged"}  # fmt: skip

# Outcomes that say a request definitely did not take effect.
DEFINITE_FAILURES = (
    zke.NoNodeError,
    zke.NodeExistsError,
    zke.BadVersionError,
    zke.NotEmptyError,
    zke.BadArgumentsError,
    zke.NoAuthError,
)


@dataclass
class Recorder:
    """The history: one record per finished operation, appended under a lock."""

    started: float = field(default_factory=time.monotonic)
    ops: list[dict[str, Any]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)  # what the nemesis did, and when
    lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        return time.monotonic() - self.started

    def add(self, **record: Any) -> None:
        with self.lock:
            self.ops.append(record)


@dataclass
class Stamp:
    """When a request completed in the client (its event thread), once it has."""

    at: float | None = None
    flag: threading.Event = field(default_factory=threading.Event)


class Shared:
    """What workers tell each other: ephemerals to look for (path -> owner session)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ephemerals: dict[str, int] = {}

    def add_ephemeral(self, path: str, session: int) -> None:
        with self.lock:
            self.ephemerals[path] = session
            if len(self.ephemerals) > 200:
                self.ephemerals.pop(next(iter(self.ephemerals)))

    def some_ephemeral(self, rng: random.Random) -> str | None:
        with self.lock:
            return rng.choice(list(self.ephemerals)) if self.ephemerals else None


def session_of(client: Client) -> int:
    """The client's session id (0 before it has one)."""
    cid = client.client_id
    return cid[0] if cid is not None else 0


def setup(hosts: str, keys: int, recorder: Recorder) -> None:
    """The folders and the registers (value "0", recorded as process 0's creates)."""
    client = Client(hosts=hosts, timeout=SESSION_TIMEOUT_S * 2)
    client.start(timeout=30)
    try:
        for root in (REGISTER_ROOT, SEQ_ROOT, EPH_ROOT):
            client.ensure_path(root)
        for k in range(keys):
            t0 = recorder.now()
            path, stat = client.create(f"{REGISTER_ROOT}/{k}", b"0", include_data=True)
            recorder.add(process=0, session=session_of(client), kind="create", key=path, value="0", version=0,
                         zxid=stat.czxid, status="ok", start=t0, end=recorder.now())  # fmt: skip
    finally:
        client.stop()
        client.close()


class Worker(threading.Thread):
    """One client process of the history."""

    def __init__(
        self,
        process: int,
        hosts: str,
        keys: int,
        recorder: Recorder,
        shared: Shared,
        stop: threading.Event,
        seed: int,
    ) -> None:
        super().__init__(name=f"verify-worker-{process}", daemon=True)
        self.process, self.hosts, self.keys = process, hosts, keys
        self.recorder, self.shared, self.stop_event = recorder, shared, stop
        self.rng = random.Random(seed)
        self.client: Client | None = None
        self.session = 0
        self.counter = 0
        self.versions: dict[str, int] = {}  # the last version this client read per key
        self.errors: list[str] = []
        self.closing = False  # we are closing the session ourselves: LOST is no expiry
        self.completion: Stamp | None = None  # of the request the current call() waits for
        self.stalled = False  # the last call() took longer than STALL_S

    # --- plumbing ---------------------------------------------------------------------------

    def connect(self) -> bool:
        client = Client(hosts=self.hosts, timeout=SESSION_TIMEOUT_S)
        try:
            client.start(timeout=10)
        except Exception as e:  # noqa: BLE001 - any failure to connect: try again later
            client.close()
            self.errors.append(f"connect: {type(e).__name__}: {e}")
            return False
        self.client, self.closing = client, False
        client.add_listener(self._on_state)
        self.session = session_of(client)
        return True

    def _on_state(self, state: str) -> None:
        if state == KazooState.LOST and not self.closing:
            now = self.recorder.now()
            self.recorder.add(process=self.process, session=self.session, kind="session_expired", key="",
                              status="ok", start=now, end=now)  # fmt: skip

    def call(
        self,
        kind: str,
        key: str,
        args: dict[str, Any],
        action: Callable[[Client], Any],
        write: bool,
        start: float | None = None,
    ) -> Any:
        """Run one operation and record it in the checker's format (checker.history): ok with
        its results, fail (it had no effect), or info (a write whose outcome is unknown).
        `start`: when the request went out, if before this call (a pipelined request)."""
        assert self.client is not None
        t0 = self.recorder.now() if start is None else start
        record: dict[str, Any] = {"process": self.process, "session": self.session, "kind": kind, "key": key,
                                  "start": t0, **args}  # fmt: skip
        if start is None:
            self.completion = None
        try:
            result = action(self.client)
        except DEFINITE_FAILURES as e:
            record.update(status="fail", end=self.recorder.now(), error=type(e).__name__)
            self.stalled = record["end"] - t0 >= STALL_S
            self.recorder.add(**record)
            return None
        except Exception as e:  # noqa: BLE001 - lost connection, timeout, expiry: outcome unknown
            self.stalled = self.recorder.now() - t0 >= STALL_S
            if write:
                record.update(status="info", end=None, error=type(e).__name__)
            else:
                record.update(status="fail", end=self.recorder.now(), error=type(e).__name__)
            self.recorder.add(**record)
            if isinstance(e, zke.SessionExpiredError):
                self.reconnect()
            return None
        # The time the client completed it, on its event thread: the order a watch callback and
        # this completion had there is the order the checker must see. A waiter can wake before
        # the completion callback has run (never before a later event's): wait for it.
        completion = self.completion
        if completion is not None:
            completion.flag.wait(1.0)
        end = completion.at if completion is not None and completion.at is not None else self.recorder.now()
        self.stalled = end - t0 >= STALL_S
        record.update(status="ok", end=end, **result)
        self.recorder.add(**record)
        return result

    def stamp(self, result: AsyncResult[Any]) -> Stamp:
        """When the client completes `result`, noted on its event thread (see call)."""
        stamp = Stamp()

        def completed(_: AsyncResult[Any]) -> None:
            stamp.at = self.recorder.now()
            stamp.flag.set()

        result.rawlink(completed)
        return stamp

    def track(self, result: AsyncResult[T]) -> AsyncResult[T]:
        """The one request of a call(): its completion is stamped."""
        self.completion = self.stamp(result)
        return result

    def reconnect(self) -> None:
        if self.client is not None:
            try:
                self.client.stop()
                self.client.close()
            except Exception:  # noqa: BLE001 - it is being thrown away
                pass
        self.client = None

    # --- operations -------------------------------------------------------------------------

    def unique(self) -> str:
        self.counter += 1
        return f"{self.process}-{self.counter}"

    def register(self) -> str:
        return f"{REGISTER_ROOT}/{self.rng.randrange(self.keys)}"

    def read(self, watch: bool = False) -> None:
        key = self.register()
        session = self.session

        def on_event(event: Any) -> None:
            if event.type in EVENT_NAMES:
                now = self.recorder.now()
                self.recorder.add(process=self.process, session=session, kind="watch_event", key=event.path,
                                  event=EVENT_NAMES[event.type], status="ok", start=now, end=now)  # fmt: skip

        def action(c: Client) -> dict[str, Any]:
            data, stat = self.track(c.get_async(key, watch=on_event if watch else None)).get(
                timeout=OP_TIMEOUT_S
            )
            self.versions[key] = stat.version
            return {"value": data.decode(), "version": stat.version, "mzxid": stat.mzxid, "zxid": c.last_zxid}

        self.call("read", key, {"watch": watch}, action, write=False)

    def watch(self) -> None:
        self.read(watch=True)

    def sync_read(self, pipelined: bool = False) -> None:
        """sync(key) then a read of it (or the two pipelined, as get(linearizable=True) sends
        them): the read must see every write that completed before the sync was sent, so the
        checker holds it to linearizability. The op's interval starts before the sync."""
        key = self.register()

        def action(c: Client) -> dict[str, Any]:
            if pipelined:
                result = c.get_async(key, linearizable=True)
            else:
                self.track(c.sync_async(key)).get(timeout=OP_TIMEOUT_S)
                result = c.get_async(key)
            data, stat = self.track(result).get(timeout=OP_TIMEOUT_S)
            self.versions[key] = stat.version
            return {"value": data.decode(), "version": stat.version, "mzxid": stat.mzxid, "zxid": c.last_zxid}

        self.call("read", key, {"watch": False, "sync": True}, action, write=False)

    def linearizable_read(self) -> None:
        self.sync_read(pipelined=True)

    def write(self) -> None:
        key, value = self.register(), self.unique()

        def action(c: Client) -> dict[str, Any]:
            stat = self.track(c.set_async(key, value.encode())).get(timeout=OP_TIMEOUT_S)
            return {"version": stat.version, "zxid": stat.mzxid}

        self.call("write", key, {"value": value}, action, write=True)

    def write_read(self) -> None:
        """A write and a read of the same key sent back to back, without waiting: FIFO client
        order means the read sees the write (or something later)."""
        assert self.client is not None
        key, value = self.register(), self.unique()
        c = self.client
        t_write = self.recorder.now()
        written = c.set_async(key, value.encode())
        t_read = self.recorder.now()
        read = c.get_async(key)
        stamps = (self.stamp(written), self.stamp(read))

        def wait_write(_: Client) -> dict[str, Any]:
            stat = written.get(timeout=OP_TIMEOUT_S)
            return {"version": stat.version, "zxid": stat.mzxid}

        def wait_read(cl: Client) -> dict[str, Any]:
            data, stat = read.get(timeout=OP_TIMEOUT_S)
            return {
                "value": data.decode(),
                "version": stat.version,
                "mzxid": stat.mzxid,
                "zxid": cl.last_zxid,
            }

        self.completion = stamps[0]
        self.call("write", key, {"value": value}, wait_write, write=True, start=t_write)
        self.completion = stamps[1]
        self.call("read", key, {"watch": False}, wait_read, write=False, start=t_read)

    def cas(self) -> None:
        key, value = self.register(), self.unique()
        expected = self.versions.get(key, 0)

        def action(c: Client) -> dict[str, Any]:
            stat = self.track(c.set_async(key, value.encode(), version=expected)).get(timeout=OP_TIMEOUT_S)
            return {"version": stat.version, "zxid": stat.mzxid}

        self.call("cas", key, {"value": value, "expected_version": expected}, action, write=True)

    def create_seq(self) -> None:
        prefix = f"{SEQ_ROOT}/s-"

        def action(c: Client) -> dict[str, Any]:
            path, stat = self.track(c.create_async(prefix, b"", sequence=True, include_data=True)).get(
                timeout=OP_TIMEOUT_S
            )
            return {"path": path, "zxid": stat.czxid}

        self.call("create_seq", prefix, {}, action, write=True)

    def create_ephemeral(self) -> None:
        path = f"{EPH_ROOT}/{self.unique()}"

        def action(c: Client) -> dict[str, Any]:
            created, stat = self.track(c.create_async(path, b"", ephemeral=True, include_data=True)).get(
                timeout=OP_TIMEOUT_S
            )
            return {"path": created, "zxid": stat.czxid}

        if self.call("create_ephemeral", path, {}, action, write=True) is not None:
            self.shared.add_ephemeral(path, self.session)

    def exists(self) -> None:
        path = self.shared.some_ephemeral(self.rng)
        if path is None:
            return

        def action(c: Client) -> dict[str, Any]:
            stat = self.track(c.exists_async(path)).get(timeout=OP_TIMEOUT_S)
            if stat is None:
                return {"exists": False, "zxid": c.last_zxid}
            return {"exists": True, "owner": stat.ephemeralOwner, "mzxid": stat.mzxid, "zxid": c.last_zxid}

        self.call("exists", path, {}, action, write=False)

    def close_session(self) -> None:
        """End this session for good (closeSession); its ephemerals must vanish for everyone."""
        assert self.client is not None
        t0, session = self.recorder.now(), self.session
        self.closing = True
        try:
            self.client.stop()
            status, end = "ok", self.recorder.now()
        except Exception:  # noqa: BLE001 - unknown whether the close went through
            status, end = "info", None
        self.recorder.add(process=self.process, session=session, kind="close_session", key="",
                          status=status, start=t0, end=end)  # fmt: skip
        try:
            self.client.close()
        except Exception:  # noqa: BLE001
            pass
        self.client = None

    # --- the loop ---------------------------------------------------------------------------

    def run(self) -> None:
        ops: list[tuple[Callable[[], None], int]] = [
            (self.read, 30), (self.write, 15), (self.write_read, 10), (self.cas, 12), (self.create_seq, 8),
            (self.create_ephemeral, 5), (self.exists, 8), (self.watch, 10), (self.close_session, 2),
            (self.sync_read, 6), (self.linearizable_read, 6),
        ]  # fmt: skip
        actions, weights = zip(*ops, strict=True)
        while not self.stop_event.is_set():
            if self.client is None and not self.connect():
                self.stop_event.wait(0.5)
                continue
            try:
                if self.stalled:
                    self.rng.choice((self.sync_read, self.linearizable_read))()
                else:
                    self.rng.choices(actions, weights)[0]()
            except Exception as e:  # noqa: BLE001 - a bug in the workload must not hang the run
                self.errors.append(f"{type(e).__name__}: {e}")
                self.reconnect()
        if self.client is not None:
            self.close_session()
