"""zkcore.Server with no I/O at all: servers wired by a tiny in-process network, clients as
connection ids and frames, time passed in by hand."""

from __future__ import annotations

import struct
from random import Random
from typing import Any

import pytest

from native import PathIndex
from tests.zkcore.test_replay import index_state, tree_state
from zkcore import DataTree, LocalError, MemoryLog, Txn, limits
from zkcore._acl import digest_id
from zkcore._errors import Code
from zkcore._jute import Reader
from zkcore._prep import Prep
from zkcore._records import (
    ACL,
    OPEN_ACL_UNSAFE,
    XID_NOTIFICATION,
    XID_PING,
    AddWatchRequest,
    AuthPacket,
    ConnectRequest,
    ConnectResponse,
    CreateRequest,
    CreateTTLRequest,
    DeleteRequest,
    GetACLResponse,
    GetDataResponse,
    Id,
    OpCode,
    PathRequest,
    PathWatchRequest,
    Perms,
    ReplyHeader,
    RequestHeader,
    SetACLRequest,
    SetDataRequest,
    Stat,
    WatcherEvent,
    WatchTypeRequest,
    encode_multi_request,
)
from zkcore._requests import ForwardedRequest
from zkcore._snapshot import snapshot_bytes
from zkcore.server import Framed, Hooks, Server, ServerConfig
from zkcore.server._clients import ClientTable
from zkcore.server._server import TXN_GROWTH_MAX
from zkcore.zab import Config, Message, Snap
from zkcore.zab import Request as ZabRequest

TICK_MS = 50


def split_frames(stream: bytes) -> list[bytes | None]:
    """Length-prefixed frames back to back -> the frames."""
    frames: list[bytes | None] = []
    pos = 0
    while pos < len(stream):
        (n,) = struct.unpack_from(">i", stream, pos)
        frames.append(stream[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return frames


def framed(frames: list[bytes]) -> bytes:
    return b"".join(struct.pack(">i", len(f)) + f for f in frames)


class Servers:
    """N servers, messages delivered at once unless a server is paused; storage syncs at once."""

    def __init__(
        self,
        voters: int = 1,
        indexed: bool = False,
        hooks: Hooks | None = None,
        unseen_bulk_txns_min: int = 1,  # every batch through the bulk path, however short
        server_options: dict[str, Any] | None = None,
        **zab: Any,
    ) -> None:
        ids = tuple(range(1, voters + 1))
        config = ServerConfig(Config(ids, init_limit_ticks=10, sync_limit_ticks=5, **zab), tick_ms=TICK_MS,
                              unseen_bulk_txns_min=unseen_bulk_txns_min, **(server_options or {}))  # fmt: skip
        self.now = 0.0
        self.paused: set[int] = set()
        self.held: list[Message] = []
        self.storage = {sid: MemoryLog() for sid in ids}
        self.servers = {
            sid: Server(
                config,
                sid,
                rng=Random(sid),
                storage=self.storage[sid],
                tree=DataTree(PathIndex()) if indexed else DataTree(),
                now_ms=0.0,
                wall_ms=1_000_000,
                hooks=hooks,
            )  # fmt: skip
            for sid in ids
        }
        self.sent: dict[object, list[bytes | None]] = {}
        self.closed: list[object] = []
        self.admin: list[tuple[object, str]] = []
        self.framed = 0  # Framed sends seen
        self.slow_disks: set[int] = set()  # servers told of their syncs only by synced()
        self.deferred: dict[int, list[Message]] = {}  # servers whose messages wait for release()
        self.images: dict[int, tuple[int, bytes]] = {}  # snap_image_due: the tree then, as a child copies it
        self.notes: list[str] = []
        self.snapshots_due: list[tuple[int, int]] = []  # (server, zxid), never written here

    def pump(self) -> None:
        for _ in range(10_000):
            busy = False
            for sid, server in self.servers.items():
                if sid in self.paused:
                    continue
                while server.has_ready():
                    busy = True
                    ready = server.ready()
                    log = self.storage[sid]
                    if ready.snapshot is not None:
                        log.truncate(0)
                    if ready.truncate_zxid is not None:
                        log.truncate(ready.truncate_zxid)
                    log.append(ready.entries)
                    for conn, frame in ready.sends:
                        if isinstance(frame, Framed):  # a run of replies: keep them as frames
                            self.framed += 1
                            self.sent.setdefault(conn, []).extend(split_frames(frame))
                        else:
                            self.sent.setdefault(conn, []).append(frame)
                    self.closed.extend(ready.closed)
                    self.admin.extend(ready.admin)
                    self.notes.extend(ready.notes)
                    self.held.extend(ready.messages)
                    if ready.snapshot_due is not None:
                        self.snapshots_due.append((sid, ready.snapshot_due))
                    if ready.snap_image_due is not None:
                        assert ready.snap_image_due == server.tree.last_zxid
                        self.images[sid] = (ready.snap_image_due, snapshot_bytes(server.tree))
                    server.advance(ready)
                    if ready.entries and sid not in self.slow_disks:
                        server.persisted(log.fsync())
            messages, self.held = self.held, []
            for m in messages:
                if m.target in self.paused or m.source in self.paused:
                    continue
                if m.target in self.deferred:
                    self.deferred[m.target].append(m)
                    continue
                busy = True
                self.servers[m.target].step(m)
            if not busy:
                return
        raise AssertionError("the servers did not go quiet")

    def stream(self, server: Server, conn: object, data: bytes | bytearray) -> int:
        """A stream connection's bytes to `server`, as a node gives them: the replies it answers
        with at once are sent at once (kept as frames, like a Framed send); the bytes taken."""
        taken, replies = server.receive_stream(conn, data)
        if replies:
            self.framed += 1
            self.sent.setdefault(conn, []).extend(split_frames(replies))
        return taken

    def advance(self, ticks: int = 1) -> None:
        for _ in range(ticks):
            self.now += TICK_MS
            for sid, server in self.servers.items():
                if sid not in self.paused:
                    server.tick(self.now, 1_000_000 + int(self.now))
            self.pump()

    def settle(self) -> int:
        for _ in range(200):
            self.advance()
            leaders = [s for s, v in self.servers.items() if v.leading() and s not in self.paused]
            serving = [s for s, v in self.servers.items() if v.serving() and s not in self.paused]
            if len(leaders) == 1 and len(serving) == len(self.servers) - len(self.paused):
                return leaders[0]
        raise AssertionError("no leader")

    def synced(self, sid: int) -> None:
        """A slow disk catches up: its server learns that all it logged is durable."""
        self.slow_disks.discard(sid)
        self.servers[sid].persisted(self.storage[sid].fsync())
        self.pump()

    def release(self, sid: int) -> None:
        """Deliver what was deferred to sid, and what it brings."""
        self.held.extend(self.deferred.pop(sid))
        self.pump()

    def frames(self, conn: object) -> list[bytes | None]:
        frames, self.sent[conn] = self.sent.get(conn, []), []
        return frames

    def connect(
        self, sid: int, conn: object, session_id: int = 0, passwd: bytes = bytes(16), last_zxid: int = 0
    ) -> ConnectResponse | None:
        self.servers[sid].receive(
            conn, ConnectRequest(0, last_zxid, 10_000, session_id, passwd, False).encode()
        )
        self.pump()
        frames = self.frames(conn)
        if frames == [None]:
            return None
        assert len(frames) == 1 and frames[0] is not None, frames
        return ConnectResponse.decode(frames[0])


def request(xid: int, opcode: int, record: object) -> bytes:
    return RequestHeader(xid, opcode).encode() + record.encode()  # type: ignore[attr-defined]


def reply(frame: bytes | None) -> tuple[ReplyHeader, Reader]:
    assert frame is not None
    r = Reader(frame)
    return ReplyHeader.read(r), r


def test_a_session_and_pipelined_requests_in_order() -> None:
    net = Servers(1)
    sid = net.settle()
    # A create and a read pipelined behind the connect: they wait for the session.
    net.servers[sid].receive("c", ConnectRequest(0, 0, 10_000, 0, bytes(16), False).encode())
    net.servers[sid].receive("c", request(1, OpCode.CREATE, CreateRequest("/a", b"1", OPEN_ACL_UNSAFE, 0)))
    net.servers[sid].receive("c", request(2, OpCode.GET_DATA, PathWatchRequest("/a", False)))
    net.pump()
    frames = net.frames("c")
    assert ConnectResponse.decode(frames[0]).session_id != 0  # type: ignore[arg-type]
    (h1, _), (h2, r2) = reply(frames[1]), reply(frames[2])
    assert (h1.xid, h1.err, h2.xid, h2.err) == (1, Code.OK, 2, Code.OK)
    assert GetDataResponse.read(r2).data == b"1"  # the read behind the write sees it


def test_refusals_not_serving_and_behind_the_client() -> None:
    net = Servers(3)
    assert net.connect(1, "early") is None  # no leader yet: go elsewhere
    net.settle()
    assert net.connect(1, "ahead", last_zxid=1 << 40) is None  # it has seen more than we have
    assert net.connect(1, "ok") is not None


def test_an_expired_session_gets_timeout_zero_and_is_forgotten() -> None:
    net = Servers(1)
    sid = net.settle()
    response = net.connect(sid, "x", session_id=12345, passwd=bytes(16))
    assert response is not None and response.timeout_ms == 0 and "x" in net.closed


def test_garbage_gets_its_error_and_the_connection_is_closed() -> None:
    net = Servers(1)
    sid = net.settle()
    assert net.connect(sid, "g") is not None
    net.servers[sid].receive("g", b"\x00\x00\x00\x07\x00\x00\x00\x04garbage")
    net.pump()
    (h, _) = reply(net.frames("g")[0])
    assert h.err == Code.MARSHALLING and "g" in net.closed
    net.servers[sid].receive("w", b"ruok")
    net.pump()
    assert ("w", "ruok") in net.admin


def test_a_watch_event_comes_before_the_reply_that_shows_the_change() -> None:
    net = Servers(1)
    sid = net.settle()
    server = net.servers[sid]
    assert net.connect(sid, "w") is not None
    server.receive("w", request(1, OpCode.CREATE, CreateRequest("/n", b"0", OPEN_ACL_UNSAFE, 0)))
    server.receive("w", request(2, OpCode.GET_DATA, PathWatchRequest("/n", True)))
    server.receive("w", request(3, OpCode.SET_DATA, SetDataRequest("/n", b"1", -1)))
    server.receive("w", request(4, OpCode.GET_DATA, PathWatchRequest("/n", False)))
    net.pump()
    xids = [reply(f)[0].xid for f in net.frames("w")]
    assert xids == [1, 2, -1, 3, 4]


def _run_of_frames(mode: str, tail: list[bytes]) -> tuple[list[bytes | None], list[object]]:
    """One server, a tree with a world-readable and a private node, then a client's frames in one
    go (receive_frames), one by one (receive), or as a TCP stream is taken (receive_stream on the
    bytes, then a frame by receive_frames where the run stops); what it was sent, and what was
    closed."""
    net = Servers(1, indexed=True)
    server = net.servers[net.settle()]
    assert net.connect(server.server_id, "c") is not None
    private = (ACL(Perms.ALL, Id("digest", digest_id("alice", "pw"))),)
    for xid, (path, acl) in enumerate([("/a", OPEN_ACL_UNSAFE), ("/p", private)], 1):
        server.receive("c", request(xid, OpCode.CREATE, CreateRequest(path, b"v", acl, 0)))
    net.pump()
    frames = [
        request(10, OpCode.GET_DATA, PathWatchRequest("/a", False)),
        request(11, OpCode.EXISTS, PathWatchRequest("/missing", True)),  # a watch on a missing node
        request(12, OpCode.GET_CHILDREN, PathWatchRequest("/", True)),
        request(13, OpCode.GET_DATA, PathWatchRequest("/p", False)),  # unreadable: the slow path
        request(14, OpCode.GET_DATA, PathWatchRequest("/a", True)),
        request(15, OpCode.SET_DATA, SetDataRequest("/a", b"w", -1)),  # a write: later reads wait
        request(16, OpCode.GET_DATA, PathWatchRequest("/a", False)),
        *tail,
    ]
    if mode == "batched":
        taken = []
        while frames:
            taken.append(server.receive_frames("c", frames))
            del frames[: taken[-1]]
        # The three reads first, then the unreadable one alone, then the read with a watch, ...;
        # a run of writes in one call, up to a read, or to garbage (which ends the connection).
        assert taken[:2] == [3, 1] and sum(taken) == 7 + len(tail)
        if _WRITES[0] in tail:
            assert taken[5:] == ([4, 1] if tail[2] == _WRITES[2] else [3, 1, 1])
    elif mode == "streamed":
        stream = bytearray(framed(frames))
        runs = []
        while stream:
            runs.append(net.stream(server, "c", stream))
            del stream[: runs[-1]]
            if stream:
                (n,) = struct.unpack_from(">i", stream)
                assert server.receive_frames("c", [bytes(stream[4 : 4 + n])]) == 1
                del stream[: 4 + n]
        # The plain read of /a alone; then only the exists of a missing node, which stops the run.
        assert runs[0] == len(framed(frames[:1])) and runs[1] == 0
    else:
        for frame in frames:
            server.receive("c", frame)
    net.pump()
    server.receive("c", request(20, OpCode.CREATE, CreateRequest("/missing", b"", OPEN_ACL_UNSAFE, 0)))
    net.pump()
    return net.frames("c")[2:], net.closed  # after the two creates' replies


_WRITES = [
    request(30, OpCode.CREATE, CreateRequest("/w", b"", OPEN_ACL_UNSAFE, 0)),
    request(31, OpCode.SET_DATA, SetDataRequest("/w", b"1", -1)),
    request(32, OpCode.DELETE, DeleteRequest("/w", 5)),  # BadVersion
    request(33, OpCode.SET_DATA, SetDataRequest("/missing", b"1", -1)),  # NoNode
]


@pytest.mark.parametrize(
    "tail",
    [
        [],
        [RequestHeader(18, OpCode.GET_DATA).encode() + b"\x00\x00\x00\x02/\xff\x00"],  # not UTF-8
        [*_WRITES, request(34, OpCode.GET_DATA, PathWatchRequest("/w", False))],
        [*_WRITES[:2], RequestHeader(35, OpCode.SET_DATA).encode() + b"\x00\x00", *_WRITES[2:]],  # garbage
    ],
    ids=["reads-and-a-write", "then-a-path-not-utf8", "then-writes", "then-writes-and-garbage"],
)
def test_a_run_of_frames_is_answered_as_one_at_a_time(tail: list[bytes]) -> None:
    """The native batch for a run of reads, and a run of writes taken in one call, give the same
    replies, watches, events and order as frames taken one by one: watches set, the slow path for
    what the batch cannot answer, a connection that sends garbage in a run closed there."""
    batched, one_by_one = _run_of_frames("batched", tail), _run_of_frames("one-by-one", tail)
    assert batched == one_by_one
    assert _run_of_frames("streamed", tail) == one_by_one
    sent, closed = batched
    xids = [reply(f)[0].xid for f in sent if f is not None]
    garbage = [xid for (xid,) in (struct.unpack_from(">i", f) for f in tail) if xid in (18, 35)]
    if garbage:  # the bad frame is refused as it comes, before the write is done, and ends the connection
        assert xids == [10, 11, 12, 13, 14, *garbage]
        assert sent[-1] is None and closed == ["c"]
    elif tail:
        # The watch on / fires on the create of /w, that on /missing on the last create.
        assert xids == [10, 11, 12, 13, 14, -1, 15, 16, -1, 30, 31, 32, 33, 34, -1, 20]
        assert [reply(f)[0].err for f in sent][9:14] == [0, 0, Code.BAD_VERSION, Code.NO_NODE, 0]
    else:  # the watch on /a fires on the write, those on / and /missing on the create
        assert xids == [10, 11, 12, 13, 14, -1, 15, 16, -1, -1, 20]


def one_server_with_a() -> tuple[Servers, Server]:
    """One indexed server, a client "c" connected, /a created holding b"v" (its reply taken)."""
    net = Servers(1, indexed=True)
    server = net.servers[net.settle()]
    assert net.connect(server.server_id, "c") is not None
    server.receive("c", request(1, OpCode.CREATE, CreateRequest("/a", b"v", OPEN_ACL_UNSAFE, 0)))
    net.pump()
    net.frames("c")
    return net, server


def test_plain_reads_are_answered_without_decoding_them(monkeypatch: pytest.MonkeyPatch) -> None:
    net, server = one_server_with_a()

    def no_decoding(frame: bytes) -> None:
        raise AssertionError("a plain read was decoded in Python")

    monkeypatch.setattr("zkcore.server._clients.decode_request", no_decoding)
    reads = [request(x, OpCode.GET_DATA, PathWatchRequest("/a", False)) for x in (2, 3, 4)]
    assert server.receive_frames("c", reads) == 3
    net.pump()
    replies = [reply(f) for f in net.frames("c")]
    assert [h.xid for h, _ in replies] == [2, 3, 4]
    assert all(GetDataResponse.read(r).data == b"v" for _, r in replies)


def test_a_stream_of_plain_reads_is_answered_in_one_send() -> None:
    net = Servers(1, indexed=True)
    server = net.servers[net.settle()]
    assert net.stream(server, "c", framed([request(1, OpCode.GET_DATA, PathWatchRequest("/", False))])) == 0
    assert net.connect(server.server_id, "c") is not None
    server.receive("c", request(1, OpCode.CREATE, CreateRequest("/a", b"v", OPEN_ACL_UNSAFE, 0)))
    net.pump()
    net.frames("c")
    reads = [request(x, OpCode.GET_DATA, PathWatchRequest("/a", False)) for x in (2, 3, 4)]
    whole = framed(reads)
    # Only whole frames are taken: the last one's missing byte leaves it for the next recv.
    assert net.stream(server, "c", whole[:-1]) == len(framed(reads[:2]))
    assert net.stream(server, "c", whole[len(framed(reads[:2])) :]) == len(framed(reads[2:]))
    net.pump()
    assert net.framed == 2
    replies = [reply(f) for f in net.frames("c")]
    assert [h.xid for h, _ in replies] == [2, 3, 4]
    assert all(GetDataResponse.read(r).data == b"v" for _, r in replies)
    stats = server.stats()
    assert stats.packets_received == stats.packets_sent == 5  # connect, create, three reads
    assert server.clients.reads_streamed == 3  # of them, what the stream path answered


def test_stream_replies_wait_behind_sends_not_taken_yet() -> None:
    """A run of reads is answered at once, but its replies are handed back only while nothing
    waits for ready(): the connection's own earlier reply may be there, and goes first."""
    net, server = one_server_with_a()
    server.receive("c", request(2, OpCode.GET_DATA, PathWatchRequest("/a", True)))  # answered, not sent
    reads = [request(x, OpCode.GET_DATA, PathWatchRequest("/a", False)) for x in (3, 4)]
    taken, replies = server.receive_stream("c", framed(reads))
    assert (taken, replies) == (len(framed(reads)), b"")
    net.pump()
    assert [reply(f)[0].xid for f in net.frames("c")] == [2, 3, 4]
    assert net.framed == 1  # the two reads' replies in one send
    taken, replies = server.receive_stream("c", framed(reads))  # nothing waits now: handed back
    assert taken == len(framed(reads))
    assert [reply(f)[0].xid for f in split_frames(replies)] == [3, 4]


@pytest.mark.parametrize(
    "frame",
    [
        request(5, OpCode.GET_DATA, PathWatchRequest("/a", True)),  # a watch to set
        request(5, OpCode.GET_DATA, PathWatchRequest("/nope", False)),  # a missing node
        request(-2, OpCode.EXISTS, PathWatchRequest("/a", False)),  # a reserved xid
        request(5, OpCode.SET_DATA, SetDataRequest("/a", b"w", -1)),  # a write
    ],
    ids=["watch", "missing", "reserved-xid", "write"],
)
def test_a_stream_run_stops_before_what_needs_more_than_a_lookup(frame: bytes) -> None:
    net, server = one_server_with_a()
    read = request(2, OpCode.GET_DATA, PathWatchRequest("/a", False))
    assert net.stream(server, "c", framed([read, frame, read])) == len(framed([read]))
    assert net.stream(server, "c", framed([frame, read])) == 0
    server.receive("c", request(3, OpCode.SET_DATA, SetDataRequest("/a", b"x", -1)))
    assert net.stream(server, "c", framed([read])) == 0  # behind its own write: it waits


def test_a_leader_sends_its_commits_before_it_applies_them() -> None:
    """The COMMITs of a quorum-acked write come out of ready() while the leader's tree does
    not hold the write yet; advance() applies it, and the client's reply comes with the next
    ready(): followers apply while the leader does."""
    net = Servers(3)
    sid = net.settle()
    net.connect(sid, "c")
    leader = net.servers[sid]

    def act(server_id: int) -> list[Message]:  # one server's readies, storage synced at once
        server, out = net.servers[server_id], []
        while server.has_ready():
            ready = server.ready()
            net.storage[server_id].append(ready.entries)
            out.extend(ready.messages)
            server.advance(ready)
            if ready.entries:
                server.persisted(net.storage[server_id].fsync())
        return out

    leader.receive("c", request(1, OpCode.CREATE, CreateRequest("/a", b"", OPEN_ACL_UNSAFE, 0)))
    proposals = act(sid)
    acks = []
    for m in proposals:
        net.servers[m.target].step(m)
        acks.extend(act(m.target))
    for m in acks:
        leader.step(m)
    ready = leader.ready()
    assert {type(m).__name__ for m in ready.messages} == {"Commit"}
    assert "/a" not in leader.tree.nodes and not ready.sends
    leader.advance(ready)
    assert "/a" in leader.tree.nodes
    ready = leader.ready()
    assert [conn for conn, _ in ready.sends] == ["c"]
    header, _ = reply(ready.sends[0][1])
    assert header.xid == 1 and header.err == 0


def test_a_leaders_own_clients_writes_reach_prep_unencoded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A write from a client of the leader goes to Zab under a short key and to prep as the
    client table decoded it: no ForwardedRequest is encoded or decoded on its way."""
    net = Servers(3)
    sid = net.settle()
    net.connect(sid, "c")

    def refuse(*args: object) -> bytes:
        raise AssertionError("a ForwardedRequest was encoded or decoded for a local write")

    monkeypatch.setattr(ForwardedRequest, "encode", refuse)
    monkeypatch.setattr(ForwardedRequest, "decode", refuse)
    net.servers[sid].receive("c", request(1, OpCode.CREATE, CreateRequest("/a", b"1", OPEN_ACL_UNSAFE, 0)))
    net.servers[sid].receive("c", request(2, OpCode.SET_DATA, SetDataRequest("/a", b"2", 0)))
    net.pump()
    assert [reply(f)[0].err for f in net.frames("c")] == [0, 0]
    assert all(s.tree.get_data("/a")[0] == b"2" for s in net.servers.values())


@pytest.mark.parametrize("watched", [False, True])
@pytest.mark.parametrize("indexed", [False, True])
def test_a_leaders_own_set_data_leaves_what_prep_and_apply_of_its_txn_leave(
    monkeypatch: pytest.MonkeyPatch, indexed: bool, watched: bool
) -> None:
    """A setData from a client of the leader is prepped and applied without a Txn; the
    followers decode and apply the txn it logged. Both leave the same tree, and the client gets
    prep's errors (through the txn prep() makes) and apply's Stats: while no watch is set on the
    server, straight from the Stat the tree gives back, else through the ApplyResult that
    triggers the watches. Either way the replies are the same bytes."""
    replies = {}
    for watch in sorted({False, watched}):
        frames, full, fast = _set_data_from_a_leaders_client(monkeypatch, indexed, watch)
        assert full == [5, 6, 7]  # prep()'s whole way only to make the error txns
        assert fast == ([] if watch else [3, 4, 8, 9])  # the setData whose reply skipped ApplyResult
        replies[watch] = frames
    assert replies[watched] == replies[False]


def _set_data_from_a_leaders_client(
    monkeypatch: pytest.MonkeyPatch, indexed: bool, watched: bool
) -> tuple[list[bytes | None], list[int], list[int]]:
    """The replies to a run of setData from a client of the leader (with a watch set on the
    leader elsewhere when `watched`), the cxids that took prep()'s whole way, and those whose
    reply was built without an ApplyResult."""
    monkeypatch.undo()
    net = Servers(3, indexed=indexed)
    sid = net.settle()
    net.connect(sid, "c")
    full: list[int] = []  # the setData that took prep()'s whole way, by cxid
    fast: list[int] = []
    whole = Prep.prep
    stat_only = ClientTable.on_set_data_applied

    def counted(self: Prep, req: Any, zxid: int, time: int) -> Any:
        if req.opcode == OpCode.SET_DATA:
            full.append(req.cxid)
        return whole(self, req, zxid, time)

    def counted_fast(self: ClientTable, applied: list[tuple[int, int, int, str, bytes]]) -> None:
        fast.extend(cxid for _, cxid, *_ in applied)
        stat_only(self, applied)

    monkeypatch.setattr(Prep, "prep", counted)
    monkeypatch.setattr(ClientTable, "on_set_data_applied", counted_fast)
    server = net.servers[sid]
    net.connect(sid, "w")  # a session either way, so that both runs stamp the same zxids
    if watched:
        server.receive("w", request(1, OpCode.EXISTS, PathWatchRequest("/elsewhere", True)))
    locked = (ACL(Perms.ALL, Id("digest", digest_id("alice", "pw"))),)
    server.receive("c", request(1, OpCode.CREATE, CreateRequest("/a", b"0", OPEN_ACL_UNSAFE, 0)))
    server.receive("c", request(2, OpCode.CREATE, CreateRequest("/locked", b"", locked, 0)))
    net.pump()
    null_data = SetDataRequest("/a", b"", -1).encode()
    null_data = null_data[: 4 + len("/a")] + b"\xff\xff\xff\xff" + null_data[4 + len("/a") + 4 :]
    frames = [
        request(3, OpCode.SET_DATA, SetDataRequest("/a", b"1", 0)),
        request(4, OpCode.SET_DATA, SetDataRequest("/a", b"2", 1)),  # pipelined: prep's version
        request(5, OpCode.SET_DATA, SetDataRequest("/a", b"x", 1)),  # BadVersion
        request(6, OpCode.SET_DATA, SetDataRequest("/missing", b"x", -1)),  # NoNode
        request(7, OpCode.SET_DATA, SetDataRequest("/locked", b"x", -1)),  # NoAuth
        RequestHeader(8, OpCode.SET_DATA).encode() + null_data,  # null data: the txn has it empty
        request(9, OpCode.SET_DATA, SetDataRequest("/a", b"3", -1)),
    ]
    for frame in frames:
        server.receive("c", frame)
    net.pump()
    out = net.frames("c")
    replies = [reply(f) for f in out]
    assert [h.err for h, _ in replies] == [0, 0, 0, 0, Code.BAD_VERSION, Code.NO_NODE, Code.NO_AUTH, 0, 0]
    assert [Stat.read(r).version for h, r in replies if h.err == 0 and h.xid > 2] == [1, 2, 3, 4]
    states = {s: (tree_state(v.tree), index_state(v.tree)) for s, v in net.servers.items()}
    assert all(state == states[sid] for state in states.values())
    assert server.tree.get_data("/a")[0] == b"3"
    return out, full, fast


def test_a_read_behind_a_set_data_of_a_group_commit_sees_the_whole_commit() -> None:
    """The setData of one group commit are answered together, and a read that waited behind one
    of them is answered once they are all applied: from the tree after the last, and a watch it
    sets is not fired by the writes it already sees (ZooKeeper's reads, too, see what was
    applied before they reached the head of their queue), but by the next."""
    net = Servers(1, indexed=True)
    sid = net.settle()
    server = net.servers[sid]
    for conn in ("c", "d"):
        assert net.connect(sid, conn) is not None
    server.receive("c", request(1, OpCode.CREATE, CreateRequest("/a", b"0", OPEN_ACL_UNSAFE, 0)))
    net.pump()
    net.frames("c")
    net.slow_disks.add(sid)  # both writes in the next log sync: one group commit
    server.receive_frames("c", [request(2, OpCode.SET_DATA, SetDataRequest("/a", b"1", -1))])
    server.receive_frames("c", [request(3, OpCode.GET_DATA, PathWatchRequest("/a", True))])
    server.receive_frames("d", [request(1, OpCode.SET_DATA, SetDataRequest("/a", b"2", -1))])
    net.pump()
    assert net.frames("c") == [] and net.frames("d") == []
    net.synced(sid)
    (set_header, _), (get_header, body) = (reply(f) for f in net.frames("c"))
    assert (set_header.xid, get_header.xid) == (2, 3)
    data = body.buffer()
    assert data == b"2" and get_header.zxid == server.tree.last_zxid  # no event: it saw d's write
    assert [reply(f)[0].xid for f in net.frames("d")] == [1]
    server.receive("d", request(2, OpCode.SET_DATA, SetDataRequest("/a", b"3", -1)))
    net.pump()
    ((event_header, event),) = (reply(f) for f in net.frames("c"))
    assert event_header.xid == XID_NOTIFICATION and WatcherEvent.read(event).path == "/a"


def test_a_leader_resumed_after_a_pause_steps_down_before_it_answers_a_sync() -> None:
    """Fault 1 of the issue, at the lowest level: the old leader is stopped while the others
    elect a new one and commit a write; when it resumes, the time it missed comes in first."""
    net = Servers(3)
    old = net.settle()
    assert net.connect(old, "c") is not None
    net.paused.add(old)
    new = net.settle()
    assert new != old
    assert net.connect(new, "w") is not None
    net.servers[new].receive("w", request(1, OpCode.CREATE, CreateRequest("/x", b"", OPEN_ACL_UNSAFE, 0)))
    net.pump()
    net.paused.discard(old)
    server = net.servers[old]
    server.tick(net.now, 1_000_000 + int(net.now))  # the shell tells the time before any input
    server.receive("c", request(5, OpCode.SYNC, PathRequest("/x")))
    server.receive("c", request(6, OpCode.EXISTS, PathWatchRequest("/x", False)))
    net.pump()
    frames = net.frames("c")
    assert frames and all(f is None for f in frames)  # dropped: it no longer leads, answers nothing


def test_snapshot_done_without_a_snapshot_due_is_refused() -> None:
    net = Servers(1)
    with pytest.raises(LocalError, match="without a snapshot due"):
        net.servers[1].snapshot_done(5, True)


@pytest.mark.parametrize(("limit_kb", "creates"), [(1, 1), (2, 2), (3, 3), (0, None)])
def test_a_snapshot_is_due_after_snap_size_limit_kb_of_txns(limit_kb: int, creates: int | None) -> None:
    """However few txns (snapCount is far off), once the txns since the last snapshot hold
    snap_size_limit_kb KiB, a snapshot is due: big znodes cannot grow the log without end."""
    net = Servers(3, server_options={"snap_size_limit_kb": limit_kb, "snap_count": 1000})
    sid = net.settle()
    assert net.connect(sid, "c") is not None  # a createSession txn of some 40 bytes
    for i in range(6):  # each create's txn: 1,000 bytes of data and some 70 of header, path and ACL
        body = CreateRequest(f"/n{i}", bytes(1000), OPEN_ACL_UNSAFE, 0)
        net.servers[sid].receive("c", request(i + 1, OpCode.CREATE, body))
        net.pump()
    first = net.servers[sid].tree.node("/n0").czxid
    if creates is None:
        assert net.snapshots_due == []
    else:
        assert sorted(net.snapshots_due) == [(s, first + creates - 1) for s in sorted(net.servers)]


def test_a_snapshot_is_due_every_snap_count_txns_and_never_while_one_is_being_written() -> None:
    """snap_count txns after the last snapshot began, the next is due, once; while it is being
    written no other is asked for, however many txns go by, and the one after that counts from
    when this one began."""
    net = Servers(1, server_options={"snap_count": 3})
    sid = net.settle()
    server = net.servers[sid]
    assert net.connect(sid, "c") is not None  # a createSession txn

    def create(i: int) -> None:
        server.receive("c", request(i + 1, OpCode.CREATE, CreateRequest(f"/n{i}", b"", OPEN_ACL_UNSAFE, 0)))
        net.pump()

    create(0)
    assert net.snapshots_due == []
    create(1)  # the third txn
    assert net.snapshots_due == [(sid, server.tree.last_zxid)] and server.snapshot_pending
    first = server.tree.last_zxid
    for i in range(2, 9):  # seven more while that one is written: none asked for
        create(i)
    assert net.snapshots_due == [(sid, first)]
    server.snapshot_done(first, True)
    net.pump()  # more than snap_count txns went by since the first began: the next is due now
    assert net.snapshots_due == [(sid, first), (sid, server.tree.last_zxid)]
    second = server.tree.last_zxid
    server.snapshot_done(second, True)
    net.pump()
    create(9)
    create(10)
    assert len(net.snapshots_due) == 2  # two txns since the second began
    create(11)
    assert net.snapshots_due[-1] == (sid, server.tree.last_zxid) and len(net.snapshots_due) == 3


def test_stats_are_a_snapshot() -> None:
    net = Servers(1)
    sid = net.settle()
    assert net.connect(sid, "s") is not None
    stats = net.servers[sid].stats()
    assert stats.serving and stats.leader == sid and [c.conn for c in stats.connections] == ["s"]
    assert WatcherEvent  # imported for the reader's benefit: events are WatcherEvent records


def _writes_from_every_server(net: Servers, rounds: int, seed: int) -> dict[object, list[int]]:
    """Creates (of every kind), setData, deletes and multis from a client on each server; the
    xids each client sent, in order."""
    rng, sent = Random(seed), {}
    for sid in net.servers:
        assert net.connect(sid, f"c{sid}") is not None
        sent[f"c{sid}"] = []
    kinds = [(OpCode.CREATE, 0), (OpCode.CREATE, 1), (OpCode.CREATE, 2), (OpCode.CREATE_CONTAINER, 0)]
    for i in range(rounds):
        for sid, server in net.servers.items():
            conn, xid, path = f"c{sid}", len(sent[f"c{sid}"]) + 1, f"/n{rng.randrange(8)}"
            what = rng.random()
            if what < 0.4:
                opcode, flags = rng.choice(kinds)
                body: object = CreateRequest(path, b"d" * rng.randrange(5), OPEN_ACL_UNSAFE, flags)
                if flags == 0 and rng.random() < 0.3:
                    opcode, body = OpCode.CREATE_TTL, CreateTTLRequest(path, b"t", OPEN_ACL_UNSAFE, 5, 60_000)
            elif what < 0.75:
                opcode, body = OpCode.SET_DATA, SetDataRequest(path, str(i).encode(), -1)
            elif what < 0.9:
                opcode, body = OpCode.DELETE, DeleteRequest(path, -1)
            else:
                ops = [(OpCode.CREATE, CreateRequest(f"{path}m", b"", OPEN_ACL_UNSAFE, 0)),
                       (OpCode.SET_DATA, SetDataRequest(path, b"m", -1))]  # fmt: skip
                opcode, body = OpCode.MULTI, MultiBody(ops)
            server.receive(conn, request(xid, opcode, body))
            sent[conn].append(xid)
        if i % 3 == 2:
            net.pump()
    net.pump()
    return sent


class MultiBody:
    def __init__(self, ops: list[tuple[int, object]]) -> None:
        self.ops = ops

    def encode(self) -> bytes:
        return encode_multi_request(self.ops)  # type: ignore[arg-type]


def count_replays(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The length of each DataTree.replay from now on, on any server."""
    replayed: list[int] = []
    real_replay = DataTree.replay

    def counting_replay(tree: DataTree, txns: Any) -> None:
        replayed.append(len(txns))
        real_replay(tree, txns)

    monkeypatch.setattr(DataTree, "replay", counting_replay)
    return replayed


def test_writes_no_one_here_sees_go_through_replay_and_leave_the_state_apply_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With no watch set, a server applies the creates, deletes and setData of sessions on
    other servers through DataTree.replay; every server still ends with the tree and read
    index that applying each committed txn gives, and each client has all its replies."""
    replayed = count_replays(monkeypatch)
    net = Servers(3, indexed=True)
    leader = net.settle()
    sent = _writes_from_every_server(net, 40, seed=3)
    other = next(sid for sid in net.servers if sid != leader)  # last, a write the leader does not see
    sent[f"c{other}"].append(xid := len(sent[f"c{other}"]) + 1)
    net.servers[other].receive(
        f"c{other}", request(xid, OpCode.CREATE, CreateRequest("/z", b"", OPEN_ACL_UNSAFE, 0))
    )
    net.pump()
    assert sum(replayed) > 40  # most of the other servers' writes went in bulk
    expected = DataTree(PathIndex())
    for _, payload in net.storage[leader].entries(0, net.storage[leader].last_zxid()):
        expected.apply(Txn.decode(payload))
    assert not net.servers[leader].prep._pending  # what was in flight is forgotten once applied
    for sid, server in net.servers.items():
        assert tree_state(server.tree) == tree_state(expected), sid
        assert index_state(server.tree) == index_state(expected), sid
        assert [reply(f)[0].xid for f in net.frames(f"c{sid}")] == sent[f"c{sid}"]


def test_a_run_of_writes_stops_at_write_run_max_and_where_the_queue_fills(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """receive_frames takes at most limits.write_run_max writes in one call, and none past the
    point where has_room would say no: the rest are the shell's to hold."""
    monkeypatch.setattr(limits, "write_run_max", 2)
    monkeypatch.setattr(limits, "client_queue_max", 5)
    net = Servers(1)
    server = net.servers[net.settle()]
    assert net.connect(server.server_id, "c") is not None
    net.slow_disks.add(server.server_id)  # the writes stay uncommitted, so queued
    frames = [
        request(x, OpCode.CREATE, CreateRequest(f"/r{x}", b"", OPEN_ACL_UNSAFE, 0)) for x in range(1, 8)
    ]
    taken = []
    while frames and server.has_room("c"):
        taken.append(server.receive_frames("c", frames))
        del frames[: taken[-1]]
    assert taken == [2, 2, 1] and len(frames) == 2 and not server.has_room("c")
    net.synced(server.server_id)
    assert [reply(f)[0].xid for f in net.frames("c")] == [1, 2, 3, 4, 5]


def _write_run(voters: int, on_leader: bool, batched: bool, backlog_max: int) -> tuple[object, ...]:
    """A client's run of writes to the leader or a follower, in one receive_frames call or frame
    by frame: what the client was sent, what each server's tree and log hold after."""
    if backlog_max:
        limits.zab_backlog_max = backlog_max
    net = Servers(voters, indexed=True, proposals_outstanding_max=2)
    leader = net.settle()
    sid = leader if on_leader else min(s for s in net.servers if s != leader)
    server = net.servers[sid]
    assert net.connect(sid, "c") is not None
    if backlog_max:  # nothing commits: two writes in flight, backlog_max waiting, the rest refused
        net.slow_disks.update(net.servers)
    too_big = limits.frame_bytes_max - TXN_GROWTH_MAX // 2  # decodes, but its txn could outgrow a frame
    frames = [
        request(1, OpCode.SET_DATA, SetDataRequest("/w", b"x" * (too_big - 16), -1)),  # answered at once
        request(2, OpCode.CREATE, CreateRequest("/w", b"", OPEN_ACL_UNSAFE, 0)),
        request(3, OpCode.SET_DATA, SetDataRequest("/w", b"1", -1)),
        request(4, OpCode.SET_DATA, SetDataRequest("/w", b"2", 5)),  # BadVersion
        request(XID_PING, OpCode.SET_DATA, SetDataRequest("/w", b"p", -1)),  # a ping, whatever it says
        request(5, OpCode.CREATE, CreateRequest("/w/s-", b"", OPEN_ACL_UNSAFE, 2)),  # sequential
        request(6, OpCode.SET_DATA, SetDataRequest("/w", b"3", -1)),
        request(7, OpCode.DELETE, DeleteRequest("/w/s-0000000000", -1)),
    ]
    if batched:
        assert server.receive_frames("c", frames) == len(frames)
    else:
        for frame in frames:
            server.receive("c", frame)
    net.pump()
    at_once = net.frames("c")
    for s in list(net.slow_disks):
        net.synced(s)
    sent = [(reply(f)[0].xid, reply(f)[0].err) if f is not None else None for f in at_once + net.frames("c")]
    state = [
        (v.tree.digest(), net.storage[s].entries(0, net.storage[s].last_zxid()))
        for s, v in net.servers.items()
    ]
    return len(at_once), sent, state


@pytest.mark.parametrize(
    ("voters", "on_leader", "backlog_max"),
    [(1, True, 0), (3, True, 0), (3, False, 0), (1, True, 1), (3, False, 1)],
    ids=["alone", "leader", "follower", "alone-backlog-full", "follower-backlog-full"],
)
def test_a_run_of_writes_gets_what_the_same_writes_one_at_a_time_get(
    monkeypatch: pytest.MonkeyPatch, voters: int, on_leader: bool, backlog_max: int
) -> None:
    """A run of writes goes to Zab together (a leader stamps and preps it in one pass, a follower
    forwards it): the same replies in the same order, the same txns logged everywhere, as when
    the writes come one at a time. Among them a refused one (BadVersion), one too big to go, a
    frame with a ping's xid, and, with a full backlog, those Zab cannot take (ThrottledOp)."""
    monkeypatch.setattr(limits, "zab_backlog_max", limits.zab_backlog_max)
    batched = _write_run(voters, on_leader, True, backlog_max)
    assert batched == _write_run(voters, on_leader, False, backlog_max)
    # The write too big to go and the ping are answered as they come; the writes in order, those
    # Zab could not take too.
    ok_or_throttled = Code.THROTTLED_OP if backlog_max else 0
    assert batched[:2] == (
        2 if backlog_max else 8,
        [(1, Code.BAD_ARGUMENTS), (XID_PING, 0), (2, 0), (3, 0), (4, Code.BAD_VERSION),
         (5, ok_or_throttled), (6, ok_or_throttled), (7, ok_or_throttled)],
    )  # fmt: skip


def test_a_connection_has_no_room_while_its_queue_is_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """has_room says when a shell that can stop reading a connection should: from
    client_queue_max requests waiting until their replies go; receive_frames never refuses."""
    monkeypatch.setattr(limits, "client_queue_max", 3)
    net = Servers(1)
    net.settle()
    server = net.servers[1]
    assert server.has_room("c") and server.has_room("unknown")  # a new connection may connect
    assert net.connect(1, "c") is not None
    net.slow_disks.add(1)  # the writes stay uncommitted, so queued
    for xid in range(1, 4):
        assert server.has_room("c")
        server.receive_frames(
            "c", [request(xid, OpCode.CREATE, CreateRequest(f"/q{xid}", b"", OPEN_ACL_UNSAFE, 0))]
        )
    net.pump()
    assert not server.has_room("c") and net.frames("c") == []
    net.synced(1)
    assert [reply(f)[0].xid for f in net.frames("c")] == [1, 2, 3] and server.has_room("c")


def test_a_request_past_a_full_queue_drops_the_connection_without_an_error_reply(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A shell that cannot stop reading (the ZeroMQ door, past what it holds) feeds a request to
    a full connection anyway: it is told to go with an empty frame, and no error reply overtakes
    the replies it was owed (they go with the connection: ConnectionLoss, outcome unknown)."""
    monkeypatch.setattr(limits, "client_queue_max", 3)
    net = Servers(1)
    net.settle()
    server = net.servers[1]
    assert net.connect(1, "c") is not None
    net.slow_disks.add(1)
    for xid in range(1, 5):
        server.receive("c", request(xid, OpCode.CREATE, CreateRequest(f"/q{xid}", b"", OPEN_ACL_UNSAFE, 0)))
    net.pump()
    assert net.frames("c") == [None]
    net.synced(1)
    assert net.frames("c") == [] and server.has_room("c")  # forgotten: its next frame connects anew


def test_a_short_batch_no_one_here_sees_is_applied_one_txn_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Below unseen_bulk_txns_min, a batch of other servers' writes goes through apply(): one
    decode and replay costs more than applying a few. At the minimum and above, in bulk."""
    replayed = count_replays(monkeypatch)
    net = Servers(3, indexed=True, unseen_bulk_txns_min=4)
    leader = net.settle()
    writer = next(sid for sid in net.servers if sid != leader)
    assert net.connect(writer, "c") is not None
    net.servers[writer].receive("c", request(1, OpCode.CREATE, CreateRequest("/a", b"", OPEN_ACL_UNSAFE, 0)))
    net.pump()
    assert replayed == [] and all(s.tree.node("/a") is not None for s in net.servers.values())
    for xid in range(2, 8):
        net.servers[writer].receive(
            "c", request(xid, OpCode.CREATE, CreateRequest(f"/a/{xid}", b"", OPEN_ACL_UNSAFE, 0))
        )
    net.pump()
    assert replayed and min(replayed) >= 4, replayed
    assert sum(replayed) == 2 * 6  # the leader and the third server, each in one batch
    assert [reply(f)[0].xid for f in net.frames("c")] == list(range(1, 8))
    for server in net.servers.values():
        assert sorted(server.tree.get_children("/a")[0]) == sorted(str(x) for x in range(2, 8))


def test_a_server_applies_what_its_quorum_made_durable_without_waiting_for_its_own_disk() -> None:
    """As ZooKeeper's servers do: a leader whose disk is slow answers its own client's write
    once the followers made it durable, and a follower with a slow disk applies (and answers
    reads from) what the others committed; each acks only what its own disk holds."""
    net = Servers(3, indexed=True)
    leader = net.settle()
    follower = next(sid for sid in net.servers if sid != leader)
    assert net.connect(leader, "c") is not None and net.connect(follower, "r") is not None
    net.slow_disks.add(leader)
    net.servers[leader].receive("c", request(1, OpCode.CREATE, CreateRequest("/n", b"0", OPEN_ACL_UNSAFE, 0)))
    net.pump()
    (answer,) = net.frames("c")
    assert reply(answer)[0].err == Code.OK and reply(answer)[0].xid == 1
    status = net.servers[leader].replica.status()
    assert status.zxid_persisted < status.zxid_committed, "answered before its own disk had it"
    net.synced(leader)
    net.slow_disks.add(follower)
    net.servers[leader].receive("c", request(2, OpCode.SET_DATA, SetDataRequest("/n", b"1", -1)))
    net.pump()
    assert reply(net.frames("c")[0])[0].err == Code.OK
    net.servers[follower].receive("r", request(1, OpCode.GET_DATA, PathWatchRequest("/n", False)))
    net.pump()
    (got,) = net.frames("r")
    assert GetDataResponse.read(reply(got)[1]).data == b"1"
    status = net.servers[follower].replica.status()
    assert status.zxid_persisted < status.zxid_committed == status.zxid_applied


def test_a_watch_on_a_server_has_it_apply_one_txn_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    net = Servers(3, indexed=True)
    leader = net.settle()
    follower = next(sid for sid in net.servers if sid != leader)
    writer = next(sid for sid in net.servers if sid not in (leader, follower))
    assert net.connect(follower, "w") is not None and net.connect(writer, "c") is not None
    net.servers[writer].receive("c", request(1, OpCode.CREATE, CreateRequest("/n", b"0", OPEN_ACL_UNSAFE, 0)))
    net.pump()
    net.servers[follower].receive("w", request(1, OpCode.GET_DATA, PathWatchRequest("/n", True)))
    net.pump()
    net.frames("w")
    net.servers[writer].receive("c", request(2, OpCode.SET_DATA, SetDataRequest("/n", b"1", -1)))
    net.servers[writer].receive("c", request(3, OpCode.SET_DATA, SetDataRequest("/n", b"2", -1)))
    net.pump()
    events = net.frames("w")
    assert [reply(f)[0].xid for f in events] == [-1]  # the one-shot watch fired once
    assert net.servers[follower].tree.get_data("/n")[0] == b"2"
    # A sync after a write it did not see itself is answered once that write is applied here
    # (what the leader sends it is held back meanwhile): the sync is answered by applying it.
    net.deferred[follower] = []
    net.servers[writer].receive("c", request(4, OpCode.SET_DATA, SetDataRequest("/n", b"3", -1)))
    net.pump()
    assert net.servers[leader].tree.get_data("/n")[0] == b"3"  # committed without this server
    net.servers[follower].receive("w", request(2, OpCode.SYNC, PathRequest("/n")))
    net.servers[follower].receive("w", request(3, OpCode.GET_DATA, PathWatchRequest("/n", False)))
    net.pump()
    assert net.frames("w") == [] and net.servers[follower].tree.get_data("/n")[0] == b"2"
    net.release(follower)
    answers = net.frames("w")
    assert [reply(f)[0].xid for f in answers] == [2, 3]
    header, r = reply(answers[1])
    assert GetDataResponse.read(r).data == b"3" and header.err == Code.OK


def test_a_watch_set_by_a_read_behind_a_write_sees_the_next_txn_of_the_batch() -> None:
    """A client's read waits behind its write; applying the write answers both, and the read's
    watch must then see the next txn, although it came in the same batch of commits."""
    net = Servers(3, indexed=True)
    leader = net.settle()
    follower, other = (sid for sid in net.servers if sid != leader)
    assert net.connect(follower, "w") is not None and net.connect(other, "c") is not None
    net.servers[other].receive("c", request(1, OpCode.CREATE, CreateRequest("/n", b"0", OPEN_ACL_UNSAFE, 0)))
    net.pump()
    net.servers[follower].receive("w", request(1, OpCode.SET_DATA, SetDataRequest("/n", b"1", -1)))
    net.servers[follower].receive("w", request(2, OpCode.GET_DATA, PathWatchRequest("/n", True)))
    net.servers[other].receive("c", request(2, OpCode.SET_DATA, SetDataRequest("/n", b"2", -1)))
    net.pump()
    frames = net.frames("w")
    assert [reply(f)[0].xid for f in frames] == [1, 2, -1]
    header, r = reply(frames[1])
    assert header.err == Code.OK and GetDataResponse.read(r).data == b"1"


def test_a_session_closed_from_an_older_connection_drops_the_newer_one() -> None:
    """A client asks to close its session, loses that connection and comes back on another
    before the close is applied: once it is, the new connection is told to go (an empty frame),
    so that its next request is not taken for a new connection's handshake; reconnecting then
    finds the session gone."""
    net = Servers(3, indexed=True)
    leader = net.settle()
    follower = next(sid for sid in net.servers if sid != leader)
    server = net.servers[follower]
    first = net.connect(follower, "old")
    assert first is not None
    server.receive("old", RequestHeader(7, OpCode.CLOSE_SESSION).encode())  # forwarded, not applied yet
    server.close("old")
    server.receive("new", ConnectRequest(0, 0, 10_000, first.session_id, first.passwd, False).encode())
    net.pump()
    answer, go = net.frames("new")  # the session is still there; then the close is applied
    assert answer is not None and ConnectResponse.decode(answer).timeout_ms > 0
    assert go is None
    assert first.session_id not in server.tree.sessions
    expired = net.connect(follower, "newer", first.session_id, first.passwd)
    assert expired is not None and expired.timeout_ms == 0  # ZooKeeper's "session expired"


def _behind_waiting_for_an_image() -> tuple[Servers, int, int]:
    """3 servers that make SNAP images off the loop; one of them paused while 5 creates went
    through the leader (too many for a DIFF), then resumed: (net, leader, the one behind) once
    the leader asked its shell for an image. Client "c" is connected to the leader."""
    net = Servers(3, hooks=Hooks(snap_images=True), diff_entries_max=2)
    leader = net.settle()
    behind = next(sid for sid in net.servers if sid != leader)
    assert net.connect(leader, "c") is not None
    net.paused.add(behind)
    for i in range(5):
        net.servers[leader].receive(
            "c", request(i + 1, OpCode.CREATE, CreateRequest(f"/n{i}", b"x", OPEN_ACL_UNSAFE, 0))
        )
    net.pump()
    assert [reply(f)[0].err for f in net.frames("c")] == [Code.OK] * 5
    net.paused.discard(behind)
    return net, leader, behind


def _image_asked(net: Servers, leader: int) -> tuple[int, bytes]:
    """Time passes until the leader asks for an image (the one behind notices the silence and
    registers again): its zxid, and the tree then as a forked child would write it."""
    for _ in range(40):
        net.advance()
        if leader in net.images:
            return net.images.pop(leader)
    raise AssertionError("the leader asked for no image")


def test_a_leader_serves_while_the_image_for_a_snap_is_made_off_its_loop() -> None:
    net, leader, behind = _behind_waiting_for_an_image()
    zxid, image = _image_asked(net, leader)
    assert zxid == net.servers[leader].tree.last_zxid
    assert not [m for m in net.held if isinstance(m, Snap)]
    # The leader goes on serving meanwhile; what it commits follows the image.
    net.servers[leader].receive(
        "c", request(9, OpCode.CREATE, CreateRequest("/late", b"", OPEN_ACL_UNSAFE, 0))
    )
    net.pump()
    assert reply(net.frames("c")[0])[0].err == Code.OK
    net.servers[leader].snap_image(zxid, image)
    net.pump()
    net.settle()
    assert tree_state(net.servers[behind].tree) == tree_state(net.servers[leader].tree)
    assert "/late" in net.servers[behind].tree.nodes and net.servers[behind].serving()
    with pytest.raises(LocalError, match="without an image due"):
        net.servers[leader].snap_image(zxid, image)


def test_an_image_that_could_not_be_made_is_asked_for_again() -> None:
    net, leader, behind = _behind_waiting_for_an_image()
    zxid, _ = _image_asked(net, leader)
    net.servers[leader].snap_image(zxid, None)  # the child failed: a full disk, say
    net.pump()
    assert any("could not be made" in note for note in net.notes)
    zxid, image = _image_asked(net, leader)  # dropped, it times out, registers again, and asks anew
    net.servers[leader].snap_image(zxid, image)
    net.pump()
    net.settle()
    assert tree_state(net.servers[behind].tree) == tree_state(net.servers[leader].tree)


def _ephemerals(net: Servers, sid: int, conn: str, names: list[str], in_flight: int = 500) -> int:
    """A session on `sid` that owns an ephemeral /e/<name> for each name, made `in_flight` at a
    time: its id."""
    response = net.connect(sid, conn)
    assert response is not None
    server = net.servers[sid]
    server.receive(conn, request(1, OpCode.CREATE, CreateRequest("/e", b"", OPEN_ACL_UNSAFE, 0)))
    for i, name in enumerate(names):
        server.receive(
            conn, request(2 + i, OpCode.CREATE, CreateRequest(f"/e/{name}", b"", OPEN_ACL_UNSAFE, 1))
        )
        if i % in_flight == in_flight - 1:
            net.pump()
    net.pump()
    assert [reply(f)[0].err for f in net.frames(conn)] == [Code.OK] * (len(names) + 1)
    return response.session_id


def _gone_everywhere(net: Servers, session_id: int) -> None:
    for server in net.servers.values():
        assert server.tree.nodes["/e"].stat().num_children == 0
        assert session_id not in server.tree.ephemerals and session_id not in server.tree.sessions
    assert len({server.tree.last_zxid for server in net.servers.values()}) == 1


def test_a_session_whose_ephemerals_would_outgrow_a_frame_closes_on_every_server() -> None:
    """6,000 ephemerals of 200-character names: listed in the closeSession txn they would make it
    1.3 MB, more than any peer takes (ZOOKEEPER-4306: the leader's proposal failed, and each new
    leader proposed the close again). The txn lists none; every server deletes the session's
    ephemerals from its own tree, and a watcher on another server hears of it."""
    net = Servers(3, indexed=True)
    leader = net.settle()
    follower, other = (sid for sid in net.servers if sid != leader)
    session_id = _ephemerals(net, follower, "c", [f"{'x' * 200}{i}" for i in range(6000)])
    assert net.connect(other, "w") is not None
    net.servers[other].receive("w", request(1, OpCode.GET_CHILDREN, PathWatchRequest("/e", True)))
    net.pump()
    net.frames("w")
    net.servers[follower].receive("c", RequestHeader(9999, OpCode.CLOSE_SESSION).encode())
    net.pump()
    (closed,) = net.frames("c")
    assert reply(closed)[0].err == Code.OK
    _gone_everywhere(net, session_id)
    ((_, payload),) = net.storage[leader].entries(net.servers[leader].tree.last_zxid - 1, 1 << 64)
    txn = Txn.decode(payload)
    assert txn.header.type == OpCode.CLOSE_SESSION and txn.body is None
    (event,) = net.frames("w")
    header, r = reply(event)
    assert header.xid == -1 and WatcherEvent.read(r).path == "/e"


def test_an_expiring_session_is_closed_however_many_changes_are_in_flight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A closeSession needs a change record per ephemeral and one per parent: past
    prep_pending_max it was refused (an error txn), and an expired session, forgotten by the
    leader's session tracker, kept its ephemerals for good."""
    monkeypatch.setattr(limits, "prep_pending_max", 20)
    net = Servers(3, indexed=True)
    leader = net.settle()
    follower = next(sid for sid in net.servers if sid != leader)
    session_id = _ephemerals(net, follower, "c", [f"n{i}" for i in range(30)], in_flight=1)
    net.servers[follower].close("c")  # the client is gone: its session expires
    net.advance(10_000 // TICK_MS + 40)
    _gone_everywhere(net, session_id)


@pytest.mark.parametrize("indexed", [False, True])
def test_writes_prepped_behind_a_close_see_its_ephemerals_gone(indexed: bool) -> None:
    """A close preps no record per ephemeral: while it is in flight, prep takes the ephemerals
    the tree holds for the closing session as gone. Writes pipelined behind it on the same
    server get what they would get after it: the names are free, the parent emptier."""
    net = Servers(1, indexed=indexed)
    sid = net.settle()
    server = net.servers[sid]
    session_id = _ephemerals(net, sid, "a", ["n0", "n1", "n2"])
    assert net.connect(sid, "b") is not None
    server.receive("b", request(1, OpCode.CREATE, CreateRequest("/e/n0", b"", OPEN_ACL_UNSAFE, 0)))  # exists
    server.receive("a", RequestHeader(99, OpCode.CLOSE_SESSION).encode())
    writes = [
        (OpCode.SET_DATA, SetDataRequest("/e/n1", b"x", -1)),
        (OpCode.CREATE, CreateRequest("/e/n1", b"", OPEN_ACL_UNSAFE, 0)),
        (OpCode.DELETE, DeleteRequest("/e", -1)),
        (OpCode.DELETE, DeleteRequest("/e/n1", -1)),
        (OpCode.CREATE, CreateRequest("/e/n2/c", b"", OPEN_ACL_UNSAFE, 0)),
        (OpCode.DELETE, DeleteRequest("/e", -1)),
    ]
    for xid, (opcode, body) in enumerate(writes, start=2):
        server.receive("b", request(xid, opcode, body))
    net.pump()
    assert [reply(f)[0].err for f in net.frames("b")] == [
        Code.NODE_EXISTS,
        Code.NO_NODE,
        Code.OK,
        Code.NOT_EMPTY,
        Code.OK,
        Code.NO_NODE,
        Code.OK,
    ]
    assert session_id not in server.tree.ephemerals and "/e" not in server.tree.nodes


def _write_requests() -> list[tuple[int, object]]:
    """One write of every kind, each as big as its record allows where that matters."""
    path = "/w/" + "p" * 4000
    acl = tuple(ACL(Perms.ALL, Id("digest", f"{'u' * 300}{i}:h")) for i in range(64))
    return [
        (OpCode.CREATE, CreateRequest(path, b"d" * 1000, OPEN_ACL_UNSAFE, 0)),
        (OpCode.CREATE, CreateRequest(path + "-", b"", OPEN_ACL_UNSAFE, 3)),  # ephemeral sequential
        (OpCode.CREATE2, CreateRequest("/w/c2", b"", OPEN_ACL_UNSAFE, 0)),
        (OpCode.CREATE_TTL, CreateTTLRequest("/w/t", b"", OPEN_ACL_UNSAFE, 6, 60_000)),
        (OpCode.CREATE_CONTAINER, CreateRequest("/w/k", b"", OPEN_ACL_UNSAFE, 4)),
        (OpCode.SET_DATA, SetDataRequest(path, b"x" * 100_000, -1)),
        (OpCode.SET_ACL, SetACLRequest("/w/c2", acl, -1)),
        (OpCode.DELETE, DeleteRequest(path, -1)),
        (OpCode.MULTI, MultiBody([(OpCode.CREATE, CreateRequest(f"/w/m{i}-", b"", OPEN_ACL_UNSAFE, 2))
                                  for i in range(limits.multi_ops_max)])),
    ]  # fmt: skip


def test_a_txn_outgrows_its_request_by_at_most_txn_growth_max() -> None:
    """The bound the server refuses writes by (a txn bigger than a frame would stop the server
    proposing it): every kind of write, sequential creates in a full multi the most."""
    net = Servers(1)
    sid = net.settle()
    server = net.servers[sid]
    assert net.connect(sid, "c") is not None
    server.receive("c", request(1, OpCode.CREATE, CreateRequest("/w", b"", OPEN_ACL_UNSAFE, 0)))
    net.pump()
    for xid, (opcode, body) in enumerate(_write_requests(), start=2):
        raw = body.encode()  # type: ignore[attr-defined]
        server.receive("c", request(xid, opcode, body))
        net.pump()
        assert reply(net.frames("c")[-1])[0].err == Code.OK
        last = server.tree.last_zxid
        ((_, txn),) = net.storage[sid].entries(last - 1, last)
        ops = len(body.ops) if isinstance(body, MultiBody) else 1
        assert len(txn) - len(raw) <= 32 + 11 * ops <= TXN_GROWTH_MAX, (opcode, len(txn) - len(raw))


@pytest.mark.parametrize("via", ["leader", "follower"])
def test_a_write_whose_txn_could_outgrow_a_frame_is_refused_and_nothing_stops(via: str) -> None:
    """A multi just under the frame limit (1,024 creates): its txn, or its way to the leader,
    would be a few bytes over, and the server that proposed it raised, out of its loop. It gets
    BadArguments; the next write goes through on every server."""
    net = Servers(3)
    leader = net.settle()
    sid = leader if via == "leader" else next(s for s in net.servers if s != leader)
    server = net.servers[sid]
    assert net.connect(sid, "c") is not None
    ops = [(OpCode.CREATE, CreateRequest(f"/m{i:04d}", b"d" * 1031, OPEN_ACL_UNSAFE, 0)) for i in range(1024)]
    pad = limits.frame_bytes_max - 5 - len(request(2, OpCode.MULTI, MultiBody(ops)))
    ops[-1] = (OpCode.CREATE, CreateRequest("/m1023", b"d" * (1031 + pad), OPEN_ACL_UNSAFE, 0))
    big = request(2, OpCode.MULTI, MultiBody(ops))
    assert len(big) == limits.frame_bytes_max - 5
    server.receive("c", big)
    server.receive("c", request(3, OpCode.CREATE, CreateRequest("/after", b"", OPEN_ACL_UNSAFE, 0)))
    net.pump()
    assert [reply(f)[0].err for f in net.frames("c")] == [Code.BAD_ARGUMENTS, Code.OK]
    assert all("/after" in s.tree.nodes and "/m0000" not in s.tree.nodes for s in net.servers.values())


def test_a_write_lost_on_the_way_to_the_leader_costs_its_client_the_connection() -> None:
    """A forwarded write that a transport past its limits dropped is never answered, and the
    follower answers the client's pings meanwhile: after twice its session timeout without
    an answer the follower drops the connection, so that its client reconnects and gets
    ConnectionLoss for it instead of waiting for good (ZooKeeper's clients time out: their
    pings wait behind the write)."""
    net = Servers(3)
    leader = net.settle()
    follower = next(sid for sid in net.servers if sid != leader)
    answer = net.connect(follower, "c")
    assert answer is not None
    net.deferred[leader] = []
    net.servers[follower].receive(
        "c", request(1, OpCode.CREATE, CreateRequest("/n", b"0", OPEN_ACL_UNSAFE, 0))
    )
    net.pump()
    lost = [m for m in net.deferred[leader] if isinstance(m, ZabRequest)]
    assert len(lost) == 1
    net.deferred[leader] = [m for m in net.deferred[leader] if m not in lost]
    net.release(leader)
    ping = RequestHeader(XID_PING, OpCode.PING).encode()
    for _ in range(2 * answer.timeout_ms // (20 * TICK_MS) - 1):
        net.servers[follower].receive("c", ping)
        net.advance(20)
        frames = net.frames("c")
        assert frames and None not in frames and all(reply(f)[0].xid == XID_PING for f in frames)
    net.advance(2 * 1000 // TICK_MS + 20)
    assert net.frames("c")[-1:] == [None]
    assert any("had no answer in" in note and "xid 1," in note for note in net.notes)
    assert "/n" not in net.servers[leader].tree.nodes


def test_reconfig_is_refused_as_zookeeper_refuses_it_and_the_connection_stays() -> None:
    """ZooKeeper with reconfigEnabled=false (its default) answers reconfig ReconfigDisabled,
    whatever its body says, in its turn, and keeps the connection; zkpy answered Unimplemented
    and closed it, so a client lost what it had in flight."""
    net = Servers(3)
    leader = net.settle()
    follower = next(s for s in net.servers if s != leader)
    server = net.servers[follower]
    assert net.connect(follower, "c") is not None
    # ReconfigRequest { ustring joiningServers; ustring leavingServers; ustring newMembers; long curConfigId }
    leaving = b"server.3"
    body = struct.pack(">i", -1) + struct.pack(">i", len(leaving)) + leaving + struct.pack(">iq", -1, -1)
    frames = [
        request(1, OpCode.CREATE, CreateRequest("/r", b"", OPEN_ACL_UNSAFE, 0)),  # answered first
        RequestHeader(2, OpCode.RECONFIG).encode() + body,
        RequestHeader(3, OpCode.RECONFIG).encode() + b"\x01not a reconfig request",
        request(4, OpCode.GET_DATA, PathWatchRequest("/r", False)),
    ]
    for frame in frames:
        server.receive("c", frame)
    net.pump()
    answers = [reply(frame)[0] for frame in net.frames("c")]
    assert [(h.xid, h.err) for h in answers] == [
        (1, 0),
        (2, Code.RECONFIG_DISABLED),
        (3, Code.RECONFIG_DISABLED),
        (4, 0),
    ]


def test_get_acl_needs_read_or_admin_and_hides_digest_hashes_without_admin() -> None:
    """As ZooKeeper's getACL since 3.6: a caller with neither READ nor ADMIN on the node gets
    NoAuth; one without ADMIN sees each digest id as `user:x`, not the hash a password could
    be guessed against; one with ADMIN sees the ACL as it was set. zkpy gave anyone all of it."""
    net = Servers(3)
    leader = net.settle()
    follower = next(s for s in net.servers if s != leader)
    server = net.servers[follower]
    bob, alice = Id("digest", digest_id("bob", "pw")), Id("digest", digest_id("alice", "pw"))
    acls = {
        "/public": (ACL(Perms.ALL, bob), ACL(Perms.READ, Id("world", "anyone"))),
        "/admin": (ACL(Perms.ALL, bob), ACL(Perms.ADMIN, Id("world", "anyone"))),
        "/bob": (ACL(Perms.ALL, bob), ACL(Perms.READ, alice)),
    }
    assert net.connect(follower, "c") is not None
    for xid, (path, acl) in enumerate(acls.items(), start=1):
        server.receive("c", request(xid, OpCode.CREATE, CreateRequest(path, b"", acl, 0)))
    net.pump()
    assert [reply(f)[0].err for f in net.frames("c")] == [0, 0, 0]

    def get_acl(conn: str) -> list[tuple[int, list[tuple[int, str]] | None]]:
        for xid, path in enumerate(acls, start=10):
            server.receive(conn, request(xid, OpCode.GET_ACL, PathRequest(path)))
        net.pump()
        out: list[tuple[int, list[tuple[int, str]] | None]] = []
        for frame in net.frames(conn):
            head, r = reply(frame)
            got = GetACLResponse.read(r).acl if head.err == 0 else None
            out.append(
                (head.err, None if got is None else [(int(a.perms), f"{a.id.scheme}:{a.id.id}") for a in got])
            )
        return out

    world = get_acl("c")
    assert world == [
        (0, [(31, "digest:bob:x"), (1, "world:anyone")]),
        (0, [(31, f"digest:{bob.id}"), (16, "world:anyone")]),  # ADMIN: shown as set
        (Code.NO_AUTH, None),
    ]
    assert net.connect(follower, "a") is not None
    server.receive("a", request(-4, OpCode.AUTH, AuthPacket(0, "digest", b"alice:pw")))
    net.pump()
    net.frames("a")
    # READ, no ADMIN: every digest id hidden, alice's own too (ZooKeeper's rule).
    assert get_acl("a")[2] == (0, [(31, "digest:bob:x"), (1, "digest:alice:x")])
    assert net.connect(follower, "b") is not None
    server.receive("b", request(-4, OpCode.AUTH, AuthPacket(0, "digest", b"bob:pw")))
    net.pump()
    net.frames("b")
    assert [acl for _, acl in get_acl("b")] == [
        [(int(a.perms), f"{a.id.scheme}:{a.id.id}") for a in acl] for acl in acls.values()
    ]


def _auth(net: Servers, server: Server, conn: str, user: str) -> None:
    server.receive(conn, request(-4, OpCode.AUTH, AuthPacket(0, "digest", f"{user}:pw".encode())))
    net.pump()
    net.frames(conn)


@pytest.mark.parametrize("indexed", [True, False], ids=["native-read-path", "python-tree"])
def test_exists_needs_read_on_a_node_that_is_there(indexed: bool) -> None:
    """ZooKeeper's exists since 3.8.4 and 3.9.2 (ZOOKEEPER-2590): NoAuth for a node the caller
    may not READ, and no watch set by it; a missing node is NoNode, its watch set, as before.
    zkpy answered every exists, from the native read path too."""
    net = Servers(1, indexed=indexed)
    server = net.servers[net.settle()]
    bob = Id("digest", digest_id("bob", "pw"))
    assert net.connect(server.server_id, "bob") is not None
    _auth(net, server, "bob", "bob")
    server.receive("bob", request(1, OpCode.CREATE, CreateRequest("/bob", b"", (ACL(Perms.ALL, bob),), 0)))
    net.pump()
    assert [reply(f)[0].err for f in net.frames("bob")] == [0]
    assert net.connect(server.server_id, "c") is not None
    for xid, path in ((1, "/bob"), (2, "/missing"), (3, "/zookeeper")):
        server.receive("c", request(xid, OpCode.EXISTS, PathWatchRequest(path, True)))
    net.pump()
    assert [(reply(f)[0].xid, reply(f)[0].err) for f in net.frames("c")] == [
        (1, Code.NO_AUTH), (2, Code.NO_NODE), (3, 0)
    ]  # fmt: skip
    server.receive("bob", request(2, OpCode.SET_DATA, SetDataRequest("/bob", b"x", -1)))
    server.receive("bob", request(3, OpCode.CREATE, CreateRequest("/missing", b"", OPEN_ACL_UNSAFE, 0)))
    net.pump()
    events = [WatcherEvent.read(reply(f)[1]) for f in net.frames("c")]
    assert [(e.type, e.path) for e in events] == [(1, "/missing")], "no watch was set on /bob"
    server.receive("bob", request(4, OpCode.EXISTS, PathWatchRequest("/bob", False)))
    net.pump()
    assert [reply(f)[0].err for f in net.frames("bob")] == [0, 0, 0]


def test_watch_events_reach_only_those_who_may_read_the_node() -> None:
    """ZooKeeper since 3.8.4 and 3.9.2 (CVE-2024-23944): an event is sent only to a watcher
    that may READ the node it is about (the parent, for NodeChildrenChanged), as the node's ACL
    stood when the txn changed it (a deleted node's, as it was). A persistent recursive watch on
    an open node named every protected node created, changed or deleted under it."""
    net = Servers(3)
    leader = net.settle()
    server = net.servers[next(s for s in net.servers if s != leader)]
    bob = Id("digest", digest_id("bob", "pw"))
    secret, readable = (ACL(Perms.ALL, bob),), (ACL(Perms.ALL, bob), ACL(Perms.READ, Id("world", "anyone")))
    assert net.connect(server.server_id, "bob") is not None
    _auth(net, server, "bob", "bob")
    server.receive("bob", request(1, OpCode.CREATE, CreateRequest("/open", b"", OPEN_ACL_UNSAFE, 0)))
    server.receive("bob", request(2, OpCode.CREATE, CreateRequest("/open/was-readable", b"", readable, 0)))
    net.pump()
    assert net.connect(server.server_id, "w") is not None
    watches = [
        request(1, OpCode.ADD_WATCH, AddWatchRequest("/open", 1)),  # persistent recursive
        request(2, OpCode.GET_CHILDREN, PathWatchRequest("/open", True)),
        request(3, OpCode.EXISTS, PathWatchRequest("/open/later", True)),
        request(4, OpCode.GET_DATA, PathWatchRequest("/open/was-readable", True)),
    ]
    for frame in watches:
        server.receive("w", frame)
    net.pump()
    assert [reply(f)[0].err for f in net.frames("w")] == [0, 0, Code.NO_NODE, 0]  # exists: watches
    bobs = [
        CreateRequest("/open/secret", b"", secret, 0),  # nothing: w may not read it
        SetDataRequest("/open/secret", b"x", -1),  # nothing
        CreateRequest("/open/later", b"", secret, 0),  # nothing, and the exists watch is used up
        CreateRequest("/open/pub", b"", OPEN_ACL_UNSAFE, 0),  # created
        SetACLRequest("/open/was-readable", secret, -1),
        DeleteRequest("/open/was-readable", -1),  # deleted as bob-only: nothing
        DeleteRequest("/open/secret", -1),  # nothing
    ]
    opcodes = {CreateRequest: OpCode.CREATE, SetDataRequest: OpCode.SET_DATA, SetACLRequest: OpCode.SET_ACL,
               DeleteRequest: OpCode.DELETE}  # fmt: skip
    for xid, body in enumerate(bobs, start=10):
        server.receive("bob", request(xid, opcodes[type(body)], body))
    net.pump()
    events = [WatcherEvent.read(reply(f)[1]) for f in net.frames("w")]
    # The child watch on /open (open) fires at the first create; the recursive one sees /open/pub.
    assert [(e.type, e.path) for e in events] == [(4, "/open"), (1, "/open/pub")]
    server.receive("w", request(5, OpCode.CHECK_WATCHES, WatchTypeRequest("/open/later", 2)))
    net.pump()
    assert [reply(f)[0].err for f in net.frames("w")] == [Code.NO_WATCHER], "used up, unsent"
