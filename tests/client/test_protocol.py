"""The client's I/O thread against a scripted server on a real ZeroMQ socket: handshake fields,
pipelining and reply matching, pings, refusals, expiry, failover with the session and its
watches (setWatches2), auth replayed, and watch events delivered before later replies."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.client.fake_server import WAIT_S, FakeServer, NoFrame, in_thread, start, stop
from zkclient import AddWatchMode, AsyncResult, Client, KazooState, WatchedEvent
from zkclient.exceptions import (
    ConnectionClosedError,
    ConnectionLoss,
    MarshallingError,
    NoNodeError,
    SessionExpiredError,
)
from zkcore._datatree import NODE_CHILDREN_CHANGED, NODE_CREATED, NODE_DATA_CHANGED, NODE_DELETED
from zkcore._records import (
    XID_AUTH,
    XID_SET_WATCHES,
    AddWatchRequest,
    AuthPacket,
    CreateRequest,
    CreateResponse,
    GetChildrenResponse,
    GetDataResponse,
    IntResponse,
    JuteRecord,
    OpCode,
    PathWatchRequest,
    SetDataRequest,
    SetWatches2,
    Stat,
    StatResponse,
    WatchTypeRequest,
)

TIMEOUT_S = 1.2  # pings every 0.4 s of quiet; a server silent for 0.8 s is dead
STAT = Stat(1, 2, 3, 4, 5, 6, 7, 0, 3, 0, 2)


@pytest.fixture
def servers() -> Iterator[list[FakeServer]]:
    made = [FakeServer("a"), FakeServer("b")]
    yield made
    for s in made:
        s.close()


def make_client(*servers: FakeServer, **kw: object) -> Client:
    return Client(",".join(s.endpoint for s in servers), timeout=TIMEOUT_S, randomize_hosts=False, **kw)  # type: ignore[arg-type]


def wait_until(predicate: object, what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        threading.Event().wait(0.01)


def test_handshake_sends_zookeepers_connect_request(servers: list[FakeServer]) -> None:
    a = servers[0]
    client = make_client(a)
    states: list[str] = []
    client.add_listener(states.append)
    req = start(client, a, session_id=0xABC, passwd=b"s" * 16, timeout_ms=1500)
    assert (req.protocol_version, req.last_zxid_seen, req.timeout_ms, req.session_id) == (0, 0, 1200, 0)
    assert req.passwd == bytes(16) and req.read_only is False
    assert client.connected and client.client_id == (0xABC, b"s" * 16)
    assert client.session_timeout == 1.5
    wait_until(lambda: states == [KazooState.CONNECTED], "the CONNECTED listener call")
    stop(client, a)


def test_requests_are_pipelined_and_replies_matched_in_order(servers: list[FakeServer]) -> None:
    a = servers[0]
    client = make_client(a)
    start(client, a)
    data = client.get_async("/a")
    stat = client.exists_async("/b")
    kids = client.get_children_async("/")
    missing = client.exists_async("/c")
    sent = [a.expect() for _ in range(4)]  # all four arrive before any reply
    xids = [h.xid for h, _ in sent]
    assert xids == sorted(xids) and len(set(xids)) == 4
    assert [h.type for h, _ in sent] == [OpCode.GET_DATA, OpCode.EXISTS, OpCode.GET_CHILDREN, OpCode.EXISTS]
    assert PathWatchRequest.read(sent[0][1]) == PathWatchRequest("/a", False)
    a.reply(xids[0], GetDataResponse(b"abc", STAT), zxid=7)
    a.reply(xids[1], StatResponse(STAT), zxid=9)
    a.reply(xids[2], GetChildrenResponse(("x", "y")), zxid=8)
    a.reply(xids[3], err=NoNodeError.code, zxid=9)
    assert data.get(timeout=WAIT_S)[0] == b"abc" and data.get()[1].version == 5
    assert stat.get(timeout=WAIT_S) is not None and stat.get().mzxid == 2  # type: ignore[union-attr]
    assert kids.get(timeout=WAIT_S) == ["x", "y"]
    assert missing.get(timeout=WAIT_S) is None
    assert client.last_zxid == 9
    stop(client, a)


def test_a_reply_with_an_unexpected_xid_drops_the_connection(servers: list[FakeServer]) -> None:
    a = servers[0]
    client = make_client(a)
    start(client, a, session_id=0x77)
    pending = client.get_async("/a")
    xid, _ = a.expect_op(OpCode.GET_DATA)
    a.reply(xid + 5, GetDataResponse(b"", STAT))
    with pytest.raises(ConnectionLoss):
        pending.get(timeout=WAIT_S)
    again = a.expect_connect()
    assert again.session_id == 0x77
    stop(client, a)


def test_an_idle_client_pings_and_stays_connected(servers: list[FakeServer]) -> None:
    a = servers[0]
    client = make_client(a)
    start(client, a)
    started = time.monotonic()
    while time.monotonic() - started < 2 * TIMEOUT_S:
        a.expect_ping(timeout_s=TIMEOUT_S / 3 + 0.3)
    assert a.pings >= 4 and client.connected
    with pytest.raises(NoFrame):
        a.expect_connect(timeout_s=0.1)  # never reconnected
    stop(client, a)


def test_a_refusing_server_is_skipped_for_the_next(servers: list[FakeServer]) -> None:
    a, b = servers
    client = make_client(a, b)
    thread, out = in_thread(lambda: client.start(timeout=WAIT_S))
    a.expect_connect()
    a.refuse()
    req = b.expect_connect()
    assert req.session_id == 0
    b.accept(req, session_id=0xB)
    thread.join(WAIT_S)
    assert out == [None] and client.endpoint == b.endpoint and client.client_id[0] == 0xB  # type: ignore[index]
    stop(client, b)


def test_resuming_an_expired_session_fails_start() -> None:
    a = FakeServer("expired")
    client = make_client(a, client_id=(0x99, b"q" * 16))
    thread, out = in_thread(lambda: client.start(timeout=WAIT_S))
    req = a.expect_connect()
    assert (req.session_id, req.passwd) == (0x99, b"q" * 16)
    a.expire()
    thread.join(WAIT_S)
    assert isinstance(out[0], SessionExpiredError) and client.state == KazooState.LOST
    a.close()


def test_expiry_after_a_drop_loses_the_session_for_good(servers: list[FakeServer]) -> None:
    a = servers[0]
    client = make_client(a)
    states: list[str] = []
    client.add_listener(states.append)
    start(client, a, session_id=0x42)
    events: list[WatchedEvent] = []
    got = client.get_async("/w", watch=events.append)
    xid, _ = a.expect_op(OpCode.GET_DATA)
    a.reply(xid, GetDataResponse(b"", STAT), zxid=3)
    got.get(timeout=WAIT_S)
    a.refuse()  # the server stops serving this connection
    req = a.expect_connect()
    queued = client.get_async("/later")  # waits for the session
    assert (req.session_id, req.last_zxid_seen) == (0x42, 3)
    a.expire()
    with pytest.raises(SessionExpiredError):
        queued.get(timeout=WAIT_S)
    wait_until(lambda: states == ["CONNECTED", "SUSPENDED", "LOST"], "CONNECTED, SUSPENDED, LOST")
    assert events == [WatchedEvent("NONE", "EXPIRED_SESSION", None)]
    with pytest.raises(SessionExpiredError):
        client.get("/after")
    assert client.client_id is None
    stop(client, a)


def test_a_silent_server_is_left_for_the_next_with_session_zxid_and_watches(
    servers: list[FakeServer],
) -> None:
    a, b = servers
    client = make_client(a, b)
    states: list[str] = []
    client.add_listener(states.append)
    start(client, a, session_id=0x51, passwd=b"w" * 16)
    seen: list[WatchedEvent] = []
    calls: list[tuple[AsyncResult[Any], JuteRecord | None, int]] = [
        (client.get_async("/d", watch=seen.append), GetDataResponse(b"", STAT), 0),
        (client.exists_async("/e", watch=seen.append), None, NoNodeError.code),
        (client.get_children_async("/c", watch=seen.append), GetChildrenResponse(()), 0),
        (client.add_watch_async("/p", seen.append, AddWatchMode.PERSISTENT), IntResponse(0), 0),
        (client.add_watch_async("/r", seen.append, AddWatchMode.PERSISTENT_RECURSIVE), IntResponse(0), 0),
    ]
    for zxid, (result, body, err) in enumerate(calls, start=5):
        a.reply(a.expect()[0].xid, body, err=err, zxid=zxid)
        result.wait(WAIT_S)
    write = client.set_async("/d", b"new")
    reader, read_out = in_thread(lambda: client.get("/d"))
    a.expect_op(OpCode.SET_DATA)
    a.expect_op(OpCode.GET_DATA)
    a.answer_pings = False  # a goes silent: no replies, no pings
    with pytest.raises(ConnectionLoss):
        write.get(timeout=WAIT_S)  # writes are not retried: it may have happened
    req = b.expect_connect()
    assert (req.session_id, req.passwd, req.last_zxid_seen) == (0x51, b"w" * 16, 9)
    b.accept(req)
    xid, watches = b.expect_op(OpCode.SET_WATCHES2, SetWatches2)
    assert xid == XID_SET_WATCHES
    assert watches == SetWatches2(9, ("/d",), ("/e",), ("/c",), ("/p",), ("/r",))
    b.reply(XID_SET_WATCHES)
    xid, body = b.expect_op(OpCode.GET_DATA, PathWatchRequest)  # the read, retried on b
    assert body.path == "/d"
    b.reply(xid, GetDataResponse(b"fresh", STAT), zxid=12)
    reader.join(WAIT_S)
    assert read_out[0][0] == b"fresh"
    wait_until(lambda: states == ["CONNECTED", "SUSPENDED", "CONNECTED"], "SUSPENDED then CONNECTED")
    stop(client, b)


def test_watch_events_run_before_the_reply_that_follows_them(servers: list[FakeServer]) -> None:
    a = servers[0]
    client = make_client(a)
    start(client, a)
    order: list[str] = []
    slow = threading.Event()

    def watcher(event: WatchedEvent) -> None:
        slow.wait(0.5)  # a slow watch function: the later reply must still wait for it
        order.append(f"event {event.type} {event.path}")

    armed = client.get_async("/w", watch=watcher)
    xid, _ = a.expect_op(OpCode.GET_DATA)
    a.reply(xid, GetDataResponse(b"", STAT), zxid=10)
    armed.get(timeout=WAIT_S)
    reader, out = in_thread(lambda: client.get("/w"))
    xid, _ = a.expect_op(OpCode.GET_DATA)
    a.notify(NODE_DATA_CHANGED, "/w", zxid=500)
    a.reply(xid, GetDataResponse(b"new", STAT), zxid=11)
    reader.join(WAIT_S)
    order.append("reply")
    assert order == ["event CHANGED /w", "reply"] and out[0][0] == b"new"
    assert client.last_zxid == 11, "a notification's zxid is not a reply's"
    stop(client, a)


def test_events_reach_watchers_by_zookeepers_table(servers: list[FakeServer]) -> None:
    a = servers[0]
    client = make_client(a)
    start(client, a)
    heard: dict[str, list[str]] = {"data": [], "child": [], "persistent": []}
    armers = [
        client.get_async("/n", watch=lambda e: heard["data"].append(e.type)),
        client.get_children_async("/n", watch=lambda e: heard["child"].append(e.type)),
        client.add_watch_async("/n", lambda e: heard["persistent"].append(e.type), AddWatchMode.PERSISTENT),
    ]
    bodies = [GetDataResponse(b"", STAT), GetChildrenResponse(()), IntResponse(0)]
    for body in bodies:
        a.reply(a.expect()[0].xid, body)
    for r in armers:
        r.wait(WAIT_S)
    a.notify(NODE_CHILDREN_CHANGED, "/n")
    a.notify(NODE_DELETED, "/n")
    a.notify(NODE_CREATED, "/n")
    probe = client.exists_async("/")
    a.reply(a.expect()[0].xid, StatResponse(STAT))
    probe.get(timeout=WAIT_S)
    assert heard == {"data": ["DELETED"], "child": ["CHILD"], "persistent": ["CHILD", "DELETED", "CREATED"]}
    stop(client, a)


def test_auth_is_sent_again_after_a_reconnect(servers: list[FakeServer]) -> None:
    a = servers[0]
    client = make_client(a)
    start(client, a)
    added = client.add_auth_async("digest", "bob:secret")
    xid, packet = a.expect_op(OpCode.AUTH, AuthPacket)
    assert (xid, packet) == (XID_AUTH, AuthPacket(0, "digest", b"bob:secret"))
    a.reply(XID_AUTH, zxid=0)
    assert added.get(timeout=WAIT_S) is True
    a.refuse()
    a.accept(a.expect_connect())
    xid, packet = a.expect_op(OpCode.AUTH, AuthPacket)
    assert (xid, packet.auth) == (XID_AUTH, b"bob:secret")
    stop(client, a)


def test_remove_watches_asks_the_server_and_tells_the_watcher(servers: list[FakeServer]) -> None:
    a = servers[0]
    client = make_client(a)
    start(client, a)
    heard: list[WatchedEvent] = []
    armed = client.get_async("/r", watch=heard.append)
    a.reply(a.expect()[0].xid, GetDataResponse(b"", STAT))
    armed.get(timeout=WAIT_S)
    removing = client.remove_watches_async("/r", 2)
    xid, body = a.expect_op(OpCode.REMOVE_WATCHES, WatchTypeRequest)
    assert body == WatchTypeRequest("/r", 2)
    a.reply(xid)
    assert removing.get(timeout=WAIT_S) is True
    assert heard == [WatchedEvent("DATA_WATCH_REMOVED", "CONNECTED", "/r")]
    a.notify(NODE_DATA_CHANGED, "/r")  # nobody hears it now
    probe = client.exists_async("/")
    a.reply(a.expect()[0].xid, StatResponse(STAT))
    probe.get(timeout=WAIT_S)
    assert len(heard) == 1
    stop(client, a)


def test_a_marshalling_error_ends_the_connection(servers: list[FakeServer]) -> None:
    a = servers[0]
    client = make_client(a)
    start(client, a, session_id=0x61)
    bad = client.set_async("/m", b"x")
    xid, _ = a.expect_op(OpCode.SET_DATA, SetDataRequest)
    a.reply(xid, err=MarshallingError.code)
    with pytest.raises(MarshallingError):
        bad.get(timeout=WAIT_S)
    assert a.expect_connect().session_id == 0x61
    stop(client, a)


def test_stop_closes_the_session_and_later_calls_are_refused(servers: list[FakeServer]) -> None:
    a = servers[0]
    client = make_client(a)
    start(client, a)
    stopper, out = in_thread(client.stop)
    xid, _ = a.expect_op(OpCode.CLOSE_SESSION)
    a.reply(xid)
    stopper.join(WAIT_S)
    assert out == [None] and client.state == KazooState.LOST
    with pytest.raises(ConnectionClosedError):
        client.get("/x")


def test_requests_wait_for_a_server_no_longer_than_the_session_timeout(servers: list[FakeServer]) -> None:
    a = servers[0]
    client = make_client(a)
    start(client, a)
    a.answer_pings = False
    a.refuse()  # dropped; every reconnect attempt now goes unanswered
    began = time.monotonic()
    queued = client.set_async("/q", b"")
    with pytest.raises(ConnectionLoss):
        queued.get(timeout=WAIT_S)
    assert time.monotonic() - began < TIMEOUT_S + 1.0
    stop(client, a)


def test_the_event_queue_orders_completions_with_a_blocking_call_on_the_event_thread(
    servers: list[FakeServer],
) -> None:
    """A watch function may call the client synchronously: the event thread keeps dispatching."""
    a = servers[0]
    client = make_client(a)
    start(client, a)
    inner: list[object] = []
    done = threading.Event()

    def watcher(event: WatchedEvent) -> None:
        inner.append(client.exists("/inner"))
        done.set()

    armed = client.exists_async("/x", watch=watcher)
    a.reply(a.expect()[0].xid, err=NoNodeError.code)
    armed.get(timeout=WAIT_S)
    a.notify(NODE_CREATED, "/x")
    xid, body = a.expect_op(OpCode.EXISTS, PathWatchRequest)
    assert body.path == "/inner"
    a.reply(xid, StatResponse(STAT))
    assert done.wait(WAIT_S) and inner[0] is not None
    stop(client, a)


def test_add_watch_sends_opcode_106(servers: list[FakeServer]) -> None:
    a = servers[0]
    client = make_client(a)
    start(client, a)
    adding = client.add_watch_async("/t", lambda e: None, AddWatchMode.PERSISTENT_RECURSIVE)
    xid, body = a.expect_op(OpCode.ADD_WATCH, AddWatchRequest)
    assert body == AddWatchRequest("/t", 1)
    a.reply(xid, IntResponse(0))
    assert adding.get(timeout=WAIT_S) is None
    stop(client, a)


def test_removing_one_of_two_watchers_is_local_and_the_last_asks_the_server(
    servers: list[FakeServer],
) -> None:
    a = servers[0]
    client = make_client(a)
    start(client, a)
    first: list[WatchedEvent] = []
    second: list[WatchedEvent] = []
    for watcher in (first.append, second.append):
        armed = client.get_async("/two", watch=watcher)
        a.reply(a.expect()[0].xid, GetDataResponse(b"", STAT))
        armed.wait(WAIT_S)
    assert client.remove_watches("/two", 2, first.append) is True  # local: `second` still holds it
    wait_until(lambda: [e.type for e in first] == ["DATA_WATCH_REMOVED"], "the first watcher told")
    removing = client.remove_watches_async("/two", 2, second.append)
    xid, body = a.expect_op(OpCode.REMOVE_WATCHES, WatchTypeRequest)
    assert body == WatchTypeRequest("/two", 2)
    a.reply(xid)
    assert removing.get(timeout=WAIT_S) is True
    assert [e.type for e in second] == ["DATA_WATCH_REMOVED"]
    stop(client, a)


def test_a_chroot_prefixes_requests_and_is_stripped_from_answers_and_events() -> None:
    a = FakeServer(tcp=True)
    client = Client(a.endpoint + "/app", timeout=TIMEOUT_S)
    start(client, a)
    heard: list[WatchedEvent] = []
    created = client.create_async("/x", b"")
    xid, body = a.expect_op(OpCode.CREATE, CreateRequest)
    assert body.path == "/app/x"
    a.reply(xid, CreateResponse("/app/x"))
    assert created.get(timeout=WAIT_S) == "/x"
    armed = client.exists_async("/", watch=heard.append)
    xid, body = a.expect_op(OpCode.EXISTS, PathWatchRequest)
    assert body == PathWatchRequest("/app", True)
    a.reply(xid, StatResponse(STAT))
    armed.get(timeout=WAIT_S)
    a.notify(NODE_DATA_CHANGED, "/app")
    wait_until(lambda: heard == [WatchedEvent("CHANGED", "CONNECTED", "/")], "the event, chroot stripped")
    stop(client, a)
    a.close()
