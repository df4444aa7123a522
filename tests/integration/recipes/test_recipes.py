"""Every recipe in zkclient.recipe against a real 3-node ensemble, in one process: kazoo's call
shapes and node layouts, waiting and waking, cleanup, and the failure paths a client can cause
on its own (lost create replies, orphans, a session closed mid-wait). The multi-process fault
tests for Lock, Election, ReadLock/WriteLock and Semaphore are in test_lock_faults.py."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.integration.conftest import Ensemble, wait_for
from tests.integration.recipes.contender import LossyClient
from zkclient import Client, KazooState
from zkclient.exceptions import CancelledError, LockTimeout, NoNodeError, SessionExpiredError
from zkclient.recipe import Lock, NodeData, TreeEvent

SESSION_S = 4.0
LOCK_NODE = re.compile(r"^([0-9a-f]{32})__lock__(\d{10})$")


@pytest.fixture
def connect(ensemble: Ensemble) -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(cls: type[Client] = Client) -> Client:
        client = cls(ensemble.connect_string(), timeout=SESSION_S)
        client.start(timeout=30)
        made.append(client)
        return client

    yield make
    for client in made:
        client.stop()


class Background:
    """Runs a call on a thread; result() waits for it with a deadline."""

    def __init__(self, func: Callable[[], Any]) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(func,), daemon=True)
        self.thread.start()

    def _run(self, func: Callable[[], Any]) -> None:
        try:
            self.value = func()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            self.error = e

    @property
    def done(self) -> bool:
        return not self.thread.is_alive()

    def result(self, timeout_s: float = 30) -> Any:
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "still running"
        if self.error is not None:
            raise self.error
        return self.value


# --- Lock ---------------------------------------------------------------------------------------


def test_lock_layout_order_and_api(connect: Callable[..., Client]) -> None:
    a, b = connect(), connect()
    first, second = a.Lock("/api-lock", "first"), b.Lock("/api-lock", "second")
    assert first.acquire()
    names = a.get_children("/api-lock")
    assert len(names) == 1 and LOCK_NODE.match(names[0]) and names[0].startswith(first.prefix)
    assert a.get("/api-lock/" + names[0])[0] == b"first"  # the identifier is the data
    assert not second.acquire(blocking=False)
    assert b.get_children("/api-lock") == names, "a failed non-blocking acquire leaves no node"
    with pytest.raises(LockTimeout):
        second.acquire(timeout=0.3)
    waiting = Background(second.acquire)
    wait_for(lambda: len(a.get_children("/api-lock")) == 2, 10, "the second contender's node")
    assert first.contenders() == ["first", "second"]
    assert not waiting.done
    assert first.release() and not first.release()
    assert waiting.result() is True
    assert second.is_acquired
    second.release()
    # b's own read: a may be connected to a server that has not applied b's delete yet
    assert b.get_children("/api-lock") == []
    with a.Lock("/api-lock"):  # the context manager
        assert len(a.get_children("/api-lock")) == 1
    assert a.get_children("/api-lock") == []


def test_cancel_ends_a_pending_acquire(connect: Callable[..., Client]) -> None:
    a, b = connect(), connect()
    holder, waiter = a.Lock("/cancel-lock"), b.Lock("/cancel-lock")
    holder.acquire()
    pending = Background(waiter.acquire)
    wait_for(lambda: len(a.get_children("/cancel-lock")) == 2, 10, "the waiter's node")
    waiter.cancel()
    with pytest.raises(CancelledError):
        pending.result()
    wait_for(lambda: len(a.get_children("/cancel-lock")) == 1, 10, "the cancelled contender's node to go")
    holder.release()


class Recording(Lock):
    watched: list[tuple[str, str | None]] = []

    def _get_predecessor(self, node: str) -> str | None:
        found = super()._get_predecessor(node)
        self.watched.append((node, found))
        return found


def test_each_waiter_watches_only_its_predecessor(connect: Callable[..., Client]) -> None:
    """No herd: with a queue of waiters, each watches the node just before its own, and the
    release of the holder wakes only the next one."""
    holder_client = connect()
    holder = holder_client.Lock("/herd")
    holder.acquire()
    waiters = [Recording(connect(), "/herd", f"w{i}") for i in range(4)]
    pending = []
    for w in waiters:  # one at a time, so the order is known
        pending.append(Background(w.acquire))
        wait_for(lambda w=w: w.node is not None and len(Recording.watched) >= len(pending), 10, "waiting")  # type: ignore[misc]
    holder_client.sync("/herd")  # the waiters' creates went through other servers
    order = sorted(holder_client.get_children("/herd"), key=lambda n: n[-10:])
    assert [w.node for w in waiters] == order[1:]
    first_look = {node: pred for node, pred in Recording.watched}
    assert first_look == {order[i + 1]: order[i] for i in range(4)}
    holder.release()
    for i, w in enumerate(waiters):
        assert pending[i].result() is True
        w.release()
    # Each waiter looked at the children once when it queued and once when its predecessor
    # went: a herd (everyone woken by every release) would look many more times.
    assert len(Recording.watched) == 2 * len(waiters), Recording.watched


def test_a_lost_create_reply_is_found_by_prefix(connect: Callable[..., Client]) -> None:
    zk = connect(LossyClient)
    assert isinstance(zk, LossyClient)
    zk.lose = 1
    lock = zk.Lock("/lossy", "me")
    assert lock.acquire(timeout=30)
    names = zk.get_children("/lossy")
    assert names == [lock.node] and zk.lost_paths == ["/lossy/" + names[0]], "one node, the lost one"
    lock.release()
    assert zk.get_children("/lossy") == []


def test_an_orphan_with_our_prefix_blocks_nobody(connect: Callable[..., Client]) -> None:
    """A create applied after we gave up on it leaves a second node with our prefix: it must not
    become our predecessor (we would wait for ourselves) nor anyone's."""
    a, b, c = connect(), connect(), connect()
    holder = a.Lock("/orphan")
    holder.acquire()
    mine = b.Lock("/orphan")
    orphan = b.create(mine.create_path, b"", ephemeral=True, sequence=True)
    taking = Background(mine.acquire)
    wait_for(lambda: mine.node is not None, 10, "our real node")
    behind = c.Lock("/orphan")
    waiting = Background(behind.acquire)
    holder.release()
    assert taking.result() is True
    assert b.exists(orphan) is None, "the orphan was deleted"
    mine.release()
    assert waiting.result() is True
    behind.release()


def test_session_loss_while_waiting_fails_the_acquire(connect: Callable[..., Client]) -> None:
    a, b = connect(), connect()
    a.Lock("/closed-wait").acquire()
    waiter = b.Lock("/closed-wait")
    pending = Background(waiter.acquire)
    wait_for(lambda: waiter.node is not None, 10, "the waiter's node")
    b.stop()
    with pytest.raises(Exception, match="[Cc]losed|[Ee]xpired"):
        pending.result()
    wait_for(lambda: len(a.get_children("/closed-wait")) == 1, 10, "the closed session's node to go")


def test_a_waiter_whose_server_is_killed_still_gets_the_lock(
    ensemble: Ensemble, connect: Callable[..., Client]
) -> None:
    """Mid-acquire, blocked on its predecessor, the waiter's server dies: it moves to another
    server with its session (and its node and watch) and takes the lock when it is released."""
    a, b = connect(), connect()
    holder = a.Lock("/killed-wait")
    holder.acquire()
    waiter = b.Lock("/killed-wait")
    pending = Background(lambda: waiter.acquire(timeout=60))
    wait_for(lambda: waiter.node is not None, 10, "the waiter's node")
    victim = next(sid for sid in ensemble.servers if ensemble.endpoint(sid) == b.endpoint)
    pid = ensemble.kill(victim)
    wait_for(lambda: b.connected and b.endpoint != ensemble.endpoint(victim), 30, "the waiter to fail over")
    a.retry(holder.release)
    assert pending.result(60) is True
    assert b.retry(b.get_children, "/killed-wait") == [waiter.node], "no second node"
    waiter.release()
    wait_for(lambda: ensemble.pid(victim) not in (None, pid), 60, f"node {victim} restarted")
    ensemble.wait_healthy()


def test_read_and_write_locks(connect: Callable[..., Client]) -> None:
    a, b, c, d = connect(), connect(), connect(), connect()
    r1, r2 = a.ReadLock("/rw", "r1"), b.ReadLock("/rw", "r2")
    assert r1.acquire(timeout=10) and r2.acquire(timeout=10), "readers share"
    assert any("__rlock__" in n for n in a.get_children("/rw"))
    writer = c.WriteLock("/rw", "w")
    writing = Background(lambda: writer.acquire(timeout=30))
    wait_for(lambda: len(a.get_children("/rw")) == 3, 10, "the writer's node")
    late_reader = d.ReadLock("/rw", "r3")
    assert not late_reader.acquire(blocking=False), "a reader queues behind a waiting writer"
    r1.release()
    assert not writing.done
    r2.release()
    assert writing.result() is True
    assert writer.contenders() == ["w"]
    assert not d.ReadLock("/rw").acquire(blocking=False)
    writer.release()
    assert late_reader.acquire(timeout=10)
    late_reader.release()


def test_semaphore(connect: Callable[..., Client]) -> None:
    a, b, c = connect(), connect(), connect()
    s1, s2, s3 = (z.Semaphore("/sem", f"h{i}", max_leases=2) for i, z in enumerate((a, b, c)))
    assert s1.acquire() and s2.acquire()
    assert not s3.acquire(blocking=False)
    a.sync("/sem")
    assert sorted(s1.lease_holders()) == ["h0", "h1"]
    assert a.get("/sem")[0] == b"2"
    assert a.exists("/sem-__lock__") is not None, "kazoo's lock is a sibling of the lease node"
    waiting = Background(lambda: s3.acquire(timeout=30))
    s1.release()
    assert waiting.result() is True
    assert sorted(s3.lease_holders()) == ["h1", "h2"]
    with pytest.raises(ValueError, match="Inconsistent max leases"):
        a.Semaphore("/sem", max_leases=3).acquire()
    s2.release()
    s3.release()
    a.sync("/sem")  # the releases went through b's and c's servers
    assert a.get_children("/sem") == []


# --- Election -----------------------------------------------------------------------------------


def test_election(connect: Callable[..., Client]) -> None:
    a, b = connect(), connect()
    first, second = a.Election("/elect", "node-a"), b.Election("/elect", "node-b")
    leading = threading.Event()
    stop = threading.Event()
    led: list[str] = []

    def lead(name: str) -> None:
        led.append(name)
        leading.set()
        stop.wait(30)

    one = Background(lambda: first.run(lead, "a"))
    assert leading.wait(10)
    two = Background(lambda: second.run(lead, "b"))
    wait_for(lambda: first.contenders() == ["node-a", "node-b"], 10, "both contenders")
    stop.set()
    one.result()
    two.result()
    assert led == ["a", "b"]
    stop.clear()
    leading.clear()
    third = Background(lambda: first.run(lead, "a2"))
    assert leading.wait(10)
    fourth = Background(lambda: second.run(lead, "never"))
    wait_for(lambda: len(first.contenders()) == 2, 10, "the second contender")
    second.cancel()
    assert fourth.result() is None, "a cancelled contender returns quietly"
    stop.set()
    third.result()
    assert led == ["a", "b", "a2"]
    with pytest.raises(ValueError):
        first.run(42)  # type: ignore[arg-type]


def test_leadership_ends_with_the_session(connect: Callable[..., Client]) -> None:
    a, b = connect(), connect()
    leading = {"a": threading.Event(), "b": threading.Event()}
    finish = threading.Event()

    def lead(name: str) -> None:
        leading[name].set()
        finish.wait(30)

    first = Background(lambda: a.Election("/elect-lost", "a").run(lead, "a"))
    assert leading["a"].wait(10)
    second = Background(lambda: b.Election("/elect-lost", "b").run(lead, "b"))
    wait_for(lambda: len(b.get_children("/elect-lost")) == 2, 10, "the second contender")
    a.stop()  # the leader's session ends while it leads
    assert leading["b"].wait(30), "the next contender did not take over"
    finish.set()
    with pytest.raises(SessionExpiredError):  # the old leader's release finds its session gone
        first.result()
    second.result()


# --- Party, barriers ----------------------------------------------------------------------------


def test_party_and_shallow_party(connect: Callable[..., Client]) -> None:
    a, b = connect(), connect()
    p1, p2 = a.Party("/party", "alpha"), b.Party("/party", "beta")
    p1.join()
    p2.join()
    p2.join()  # again: still one member
    a.sync("/party")
    assert len(p1) == 2 and sorted(p1) == ["alpha", "beta"]
    assert all(n.endswith("__party__") for n in a.get_children("/party"))
    assert p2.leave() and not p2.leave()
    a.sync("/party")
    assert list(p1) == ["alpha"]
    s1, s2 = a.ShallowParty("/shallow", "one"), b.ShallowParty("/shallow", "two")
    s1.join()
    s2.join()
    a.sync("/shallow")
    assert sorted(s1) == ["one", "two"]
    b.stop()  # a member whose session ends leaves by itself
    wait_for(lambda: list(s1) == ["one"], 10, "the closed member to leave")
    assert len(p1) == 1


def test_barrier(connect: Callable[..., Client]) -> None:
    a, b = connect(), connect()
    barrier = a.Barrier("/gate")
    barrier.create()
    other = b.Barrier("/gate")
    assert other.wait(timeout=0.2) is False
    waiting = Background(lambda: other.wait(timeout=30))
    assert barrier.remove() and not barrier.remove()
    assert waiting.result() is True
    assert other.wait() is True


def test_double_barrier(connect: Callable[..., Client]) -> None:
    clients = [connect() for _ in range(3)]
    barriers = [z.DoubleBarrier("/round", 3, f"m{i}") for i, z in enumerate(clients)]
    entering = [Background(barriers[0].enter), Background(barriers[1].enter)]
    wait_for(lambda: len(clients[0].get_children("/round")) == 2, 10, "two members in")
    assert not any(e.done for e in entering), "nobody passes before the third arrives"
    barriers[2].enter()
    for e in entering:
        e.result()
    assert all(b.participating for b in barriers)
    leaving = [Background(barriers[0].leave), Background(barriers[1].leave)]
    wait_for(lambda: sorted(clients[0].get_children("/round")) != [], 10, "leaving")
    assert not any(x.done for x in leaving) or clients[0].get_children("/round") == []
    barriers[2].leave()
    for x in leaving:
        x.result()
    assert clients[0].get_children("/round") == []


# --- queues, counter ----------------------------------------------------------------------------


def test_queue(connect: Callable[..., Client]) -> None:
    a, b = connect(), connect()
    q = a.Queue("/queue")
    q.put(b"low", priority=200)
    q.put(b"one")
    q.put(b"two")
    q.put(b"urgent", priority=1)
    assert len(q) == 4
    assert all(n.startswith("entry-") for n in a.get_children("/queue"))
    other = b.Queue("/queue")
    b.sync("/queue")
    assert [other.get(), q.get(), other.get(), q.get(), q.get()] == [b"urgent", b"one", b"two", b"low", None]
    with pytest.raises(ValueError):
        q.put(b"x", priority=1000)
    with pytest.raises(TypeError):
        q.put("text")  # type: ignore[arg-type]


def test_locking_queue(connect: Callable[..., Client]) -> None:
    a, b = connect(), connect()
    q1, q2 = a.LockingQueue("/lq"), b.LockingQueue("/lq")
    q1.put(b"first")
    q1.put_all([b"second", b"third"])
    assert len(q1) == 3
    assert q1.get() == b"first"
    assert q1.get() == b"first", "not consumed: the same entry again"
    assert q2.get(timeout=5) == b"second"
    assert q1.holds_lock()
    assert q1.consume() and not q1.consume()
    assert q2.release()
    b.stop()  # nothing held now; a new consumer on a client whose session ends releases its entry
    c = connect()
    q3 = c.LockingQueue("/lq")
    assert q3.get(timeout=5) == b"second"
    c.stop()
    assert q1.get(timeout=10) == b"second", "a consumer's session ended: its entry came back"
    assert q1.consume()
    assert q1.get(timeout=5) == b"third" and q1.consume()
    assert q1.get(timeout=0.2) is None
    waiting = Background(lambda: q1.get(timeout=30))
    connect().LockingQueue("/lq").put(b"late")
    assert waiting.result() == b"late"


def test_counter_under_concurrent_writers(connect: Callable[..., Client]) -> None:
    clients = [connect() for _ in range(3)]

    def add(z: Client) -> None:
        counter = z.Counter("/counter")
        for _ in range(10):
            counter += 1

    workers = [Background(lambda z=z: add(z)) for z in clients]  # type: ignore[misc]
    for w in workers:
        w.result(60)
    counter = clients[0].Counter("/counter")
    clients[0].sync("/counter")
    assert counter.value == 30
    counter -= 5
    assert (counter.pre_value, counter.post_value, counter.value) == (30, 25, 25)
    floats = clients[0].Counter("/float", default=1.5)
    floats += 2.0
    assert floats.value == 3.5 and clients[0].get("/float")[0] == b"3.5"
    curator = clients[0].Counter("/curator", support_curator=True)
    curator += 7
    assert curator.value == 7 and clients[0].get("/curator")[0] == b"\x00\x00\x00\x07"
    with pytest.raises(TypeError):
        counter += 1.5


# --- TreeCache ----------------------------------------------------------------------------------


def test_tree_cache_follows_the_subtree(ensemble: Ensemble, connect: Callable[..., Client]) -> None:
    writer, reader = connect(), connect()
    writer.create("/tree/a/b", b"1", makepath=True)
    events: list[TreeEvent] = []
    cache = reader.TreeCache("/tree")
    cache.listen(events.append)
    cache.start()
    try:
        wait_for(lambda: any(e.event_type == TreeEvent.INITIALIZED for e in events), 10, "INITIALIZED")
        data = cache.get_data("/tree/a/b")
        assert isinstance(data, NodeData) and data.data == b"1"
        assert cache.get_children("/tree") == frozenset({"a"})
        writer.set("/tree/a/b", b"2")
        writer.create("/tree/a/c/d", b"new", makepath=True)
        wait_for(lambda: cache.get_data("/tree/a/c/d") is not None, 10, "the new subtree")
        wait_for(lambda: cache.get_data("/tree/a/b").data == b"2", 10, "the change")
        writer.delete("/tree/a", recursive=True)
        wait_for(lambda: cache.get_data("/tree/a") is None, 10, "the deletion")
        assert cache.get_children("/tree") == frozenset()
        assert cache.get_data("/tree/a/c/d") is None
        kinds = [(e.event_type, e.event_data.path if e.event_data else None) for e in events]
        assert (TreeEvent.NODE_UPDATED, "/tree/a/b") in kinds
        assert (TreeEvent.NODE_ADDED, "/tree/a/c/d") in kinds
        removed = [p for k, p in kinds if k == TreeEvent.NODE_REMOVED]
        assert removed.index("/tree/a/c/d") < removed.index("/tree/a/c") < removed.index("/tree/a")
        with pytest.raises(ValueError):
            cache.get_data("/elsewhere")
        # The connected server killed: the cache hears what changed meanwhile.
        victim = next(sid for sid in ensemble.servers if ensemble.endpoint(sid) == reader.endpoint)
        ensemble.kill(victim)
        writer.retry(writer.ensure_path, "/tree/after")  # the writer may have been cut off too
        wait_for(lambda: cache.get_data("/tree/after") is not None, 30, "the change made during failover")
        assert any(e.event_type == TreeEvent.CONNECTION_SUSPENDED for e in events)
    finally:
        cache.close()
    assert cache.get_data("/tree/after") is None
    ensemble.wait_healthy()


def test_recipes_are_client_attributes(connect: Callable[..., Client]) -> None:
    zk = connect()
    for name in ("Lock", "ReadLock", "WriteLock", "Semaphore", "Election", "Party", "ShallowParty",
                 "Barrier", "DoubleBarrier", "Queue", "LockingQueue", "Counter", "TreeCache"):  # fmt: skip
        assert getattr(zk, name).args == (zk,), name
    assert zk.DataWatch and zk.ChildrenWatch
    assert zk.state == KazooState.CONNECTED
    with pytest.raises(NoNodeError):
        zk.get("/never")
