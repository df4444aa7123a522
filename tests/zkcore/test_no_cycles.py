"""The server makes no reference cycles: everything it lets go of is freed by reference counting.

The node freezes what survives each full collection of the cyclic collector
(cluster.node.SurvivorFreezer), so a cycle made of frozen objects would never be freed. This
is the premise that makes that safe: a whole workload through three servers, with every kind of
request, watches, errors, multis, connections that go and sessions that close or expire, and
the collector finds nothing to collect."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from tests.zkcore.test_server import MultiBody, Servers, request
from zkcore._records import (
    OPEN_ACL_UNSAFE,
    AddWatchRequest,
    CreateMode,
    CreateRequest,
    DeleteRequest,
    OpCode,
    PathWatchRequest,
    RequestHeader,
    SetDataRequest,
)


@pytest.fixture
def garbage() -> Iterator[list[object]]:
    """What the collector found unreachable from here on (kept in gc.garbage, not freed)."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


def workload(net: Servers, sid: int, conn: str, xid: int) -> int:
    """Every kind of request from one connection, errors included; the next xid."""
    server = net.servers[sid]
    base = f"/w-{conn}"
    frames = [
        request(xid, OpCode.CREATE, CreateRequest(base, b"x", OPEN_ACL_UNSAFE, 0)),
        request(xid + 1, OpCode.CREATE, CreateRequest(base, b"x", OPEN_ACL_UNSAFE, 0)),  # exists
        request(xid + 2, OpCode.CREATE, CreateRequest(f"{base}/e", b"", OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL)),
        request(xid + 3, OpCode.CREATE, CreateRequest(f"{base}/s", b"", OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_SEQUENTIAL)),
        request(xid + 4, OpCode.GET_DATA, PathWatchRequest(base, True)),
        request(xid + 5, OpCode.EXISTS, PathWatchRequest(f"{base}/none", True)),
        request(xid + 6, OpCode.GET_CHILDREN2, PathWatchRequest(base, True)),
        request(xid + 7, OpCode.ADD_WATCH, AddWatchRequest(base, 1)),
        request(xid + 8, OpCode.SET_DATA, SetDataRequest(base, b"y", -1)),
        request(xid + 9, OpCode.SET_DATA, SetDataRequest(base, b"y", 77)),  # bad version
        request(xid + 10, OpCode.GET_DATA, PathWatchRequest(f"{base}/none", False)),  # no node
        request(xid + 11, OpCode.MULTI, MultiBody([
            (OpCode.CREATE, CreateRequest(f"{base}/m", b"", OPEN_ACL_UNSAFE, 0)),
            (OpCode.SET_DATA, SetDataRequest(base, b"z", -1)),
        ])),
        request(xid + 12, OpCode.MULTI, MultiBody([  # fails: nothing happens
            (OpCode.CREATE, CreateRequest(f"{base}/m2", b"", OPEN_ACL_UNSAFE, 0)),
            (OpCode.DELETE, DeleteRequest(f"{base}/none", -1)),
        ])),
        request(xid + 13, OpCode.DELETE, DeleteRequest(f"{base}/m", -1)),
        request(xid + 14, OpCode.SYNC, PathWatchRequest(base, False)),
        b"\x00\x00\x00\x63\x00\x00\x00",  # garbage: an error, and the connection goes
    ]  # fmt: skip
    for frame in frames:
        server.receive(conn, frame)
    net.pump()
    return xid + len(frames)


def test_a_whole_workload_leaves_no_cycles_for_the_collector(garbage: list[object]) -> None:
    net = Servers(3, indexed=True)
    leader = net.settle()
    follower = next(sid for sid in net.servers if sid != leader)
    xid = 1
    for sid, conn in [(leader, "a"), (follower, "b")]:
        assert net.connect(sid, conn) is not None
        xid = workload(net, sid, conn, xid)
    # A session closed by its client, one whose connection goes, one that expires.
    assert net.connect(leader, "c") is not None
    net.servers[leader].receive("c", RequestHeader(xid, OpCode.CLOSE_SESSION).encode())
    assert net.connect(follower, "d") is not None
    net.servers[follower].close("d")
    assert net.connect(follower, "e") is not None
    net.pump()
    net.advance(10_000 // 50 * 3)  # past every session's timeout: they expire
    for conn in "abcde":
        net.frames(conn)
    assert gc.collect() >= 0
    found = sorted({type(o).__qualname__ for o in garbage})
    assert not garbage, f"{len(garbage)} objects in cycles, of types {found[:20]}"
