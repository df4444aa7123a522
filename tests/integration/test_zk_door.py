"""ZooKeeper's own TCP protocol door, proven with a real ZooKeeper client (kazoo from PyPI) on a
real 3-node ensemble, beside our ZeroMQ door on the same nodes, and attacked with bad input."""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    BadVersionError,
    ConnectionLoss,
    LockTimeout,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    ReconfigDisabledError,
)
from kazoo.security import make_acl, make_digest_acl

from tests.integration.conftest import Ensemble, wait_for
from zkclient import Client
from zkcore import limits
from zkcore._records import (
    OPEN_ACL_UNSAFE,
    ConnectRequest,
    ConnectResponse,
    CreateRequest,
    OpCode,
    RequestHeader,
)

SESSION_S = 4.0
LENGTH = struct.Struct(">i")


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ensemble]:
    e = Ensemble(Path(tmp_path_factory.mktemp("zkdoor")) / "e", 3)
    yield e
    e.stop()


def zk_hosts(ensemble: Ensemble, *sids: int) -> str:
    return ",".join(ensemble.conf.servers[s].zk for s in (sids or ensemble.servers))


@pytest.fixture
def kazoo(ensemble: Ensemble) -> Iterator[Callable[..., KazooClient]]:
    made: list[KazooClient] = []

    def make(*sids: int, chroot: str = "", **kw: object) -> KazooClient:
        zk = KazooClient(hosts=zk_hosts(ensemble, *sids) + chroot, timeout=SESSION_S, **kw)  # type: ignore[arg-type]
        zk.start(timeout=20)
        made.append(zk)
        return zk

    yield make
    for zk in made:
        try:
            zk.stop()
            zk.close()
        except Exception:  # noqa: BLE001 - a test may have broken it on purpose
            pass


# --- kazoo: the basics ---------------------------------------------------------------------


def test_kazoo_crud_modes_versions_and_transactions(kazoo: Callable[..., KazooClient]) -> None:
    zk = kazoo()
    assert zk.server_version()[:2] == (3, 8)
    zk.ensure_path("/kz/crud")
    assert zk.create("/kz/crud/a", b"1") == "/kz/crud/a"
    with pytest.raises(NodeExistsError):
        zk.create("/kz/crud/a", b"again")
    assert zk.create("/kz/crud/s-", b"", sequence=True) == "/kz/crud/s-0000000001"
    eph = zk.create("/kz/crud/e-", b"", ephemeral=True, sequence=True)
    assert zk.exists(eph).ephemeralOwner == zk.client_id[0]
    data, stat = zk.get("/kz/crud/a")
    assert data == b"1" and stat.version == 0
    zk.set("/kz/crud/a", b"2", version=0)
    with pytest.raises(BadVersionError):
        zk.set("/kz/crud/a", b"3", version=0)
    t = zk.transaction()
    t.create("/kz/crud/t", b"x")
    t.check("/kz/crud/a", 1)
    t.set_data("/kz/crud/a", b"4")
    assert t.commit()[0] == "/kz/crud/t"
    with pytest.raises(NoNodeError):
        zk.delete("/kz/crud/none")
    assert sorted(zk.get_children("/kz/crud")) == ["a", eph.rsplit("/", 1)[1], "s-0000000001", "t"]
    zk.delete("/kz/crud", recursive=True)
    assert zk.exists("/kz/crud") is None


def test_kazoo_watches_sync_acls_and_chroot(kazoo: Callable[..., KazooClient]) -> None:
    zk, other = kazoo(1), kazoo(2)
    zk.ensure_path("/kz/w")
    seen: list[bytes | None] = []
    zk.DataWatch("/kz/w", lambda data, stat: seen.append(data))
    other.set("/kz/w", b"changed")
    wait_for(lambda: seen[-1:] == [b"changed"], 10, "the data watch")
    children: list[list[str]] = []
    zk.ChildrenWatch("/kz/w", lambda c: children.append(sorted(c)))
    other.create("/kz/w/c", b"")
    wait_for(lambda: children[-1:] == [["c"]], 10, "the children watch")
    other.set("/kz/w", b"after")
    zk.sync("/kz/w")
    assert zk.get("/kz/w")[0] == b"after"
    zk.add_auth("digest", "alice:secret")
    zk.create("/kz/secret", b"s", acl=[make_digest_acl("alice", "secret", all=True)])
    assert zk.get("/kz/secret")[0] == b"s"
    with pytest.raises(NoAuthError):
        other.get("/kz/secret")
    rooted = kazoo(chroot="/kz")
    assert rooted.get("/w")[0] == b"after"  # the chroot works as ZooKeeper's clients do it
    assert "w" in rooted.get_children("/")


def test_kazoo_learns_nothing_of_a_node_it_may_not_read(kazoo: Callable[..., KazooClient]) -> None:
    """As ZooKeeper 3.8.4 answers: exists of a node the client may not READ is NoAuth, a watch
    event about such a node is not sent (the watch used up), and getACL shows digest ids as
    `user:x` to one without ADMIN."""
    owner, stranger = kazoo(1), kazoo(2)
    owner.add_auth("digest", "bob:pw")
    owner.ensure_path("/kz/acl")
    bob = make_digest_acl("bob", "pw", all=True)
    owner.create("/kz/acl/secret", b"s", acl=[bob])
    with pytest.raises(NoAuthError):
        stranger.exists("/kz/acl/secret")
    with pytest.raises(NoAuthError):
        stranger.get_acls("/kz/acl/secret")
    owner.create("/kz/acl/public", b"p", acl=[bob, make_acl("world", "anyone", read=True)])
    assert [(a.id.scheme, a.id.id) for a in stranger.get_acls("/kz/acl/public")[0]] == [
        ("digest", "bob:x"), ("world", "anyone")
    ]  # fmt: skip
    events: list[object] = []
    assert stranger.exists("/kz/acl/later", watch=events.append) is None
    stranger.get_children("/kz/acl", watch=events.append)
    owner.create("/kz/acl/later", b"", acl=[bob])
    wait_for(lambda: events, 10, "the children watch on the open parent")
    stranger.sync("/kz/acl")
    stranger.get("/kz/acl")  # a read after the sync: any event before it has arrived
    assert [(e.type, e.path) for e in events] == [("CHILD", "/kz/acl")], events  # type: ignore[attr-defined]


def test_ip_acls_who_am_i_and_reconfig_as_zookeeper_answers_them(
    ensemble: Ensemble, kazoo: Callable[..., KazooClient]
) -> None:
    """Every connection holds the identity ip:<its client's address>, through either door: an
    ACL of the ip scheme lets it in (reads on its server, writes prepped by the leader), and
    zkCli.sh's whoami (ZooKeeper's whoAmI) names it, with the digests the session added. A
    ZeroMQ client over ipc is on the node's host: 127.0.0.1. And reconfig gets ZooKeeper's
    answer when reconfigEnabled is false, on a connection that stays."""
    zk, other = kazoo(1), kazoo(2)
    zk.create("/kz-ip-local", b"l", acl=[make_acl("ip", "127.0.0.1", all=True)])
    zk.create("/kz-ip-lan", b"n", acl=[make_acl("ip", "10.0.0.0/8", all=True)])
    assert other.get("/kz-ip-local")[0] == b"l"
    other.set("/kz-ip-local", b"l2")
    with pytest.raises(NoAuthError):
        other.get("/kz-ip-lan")
    with pytest.raises(NoAuthError):
        other.set("/kz-ip-lan", b"n2")
    ours = Client(ensemble.endpoint(3), timeout=SESSION_S)
    ours.start(timeout=20)
    try:
        assert ours.whoami() == [("ip", "127.0.0.1")]
        assert ours.get("/kz-ip-local")[0] == b"l2"
        ours.add_auth("digest", "alice:pw")
        assert ours.whoami() == [("ip", "127.0.0.1"), ("digest", "alice")]
    finally:
        ours.stop()
    # reconfig: refused as ZooKeeper refuses it with reconfigEnabled=false, the connection kept
    with pytest.raises(ReconfigDisabledError):
        other.reconfig(joining=None, leaving="3", new_members=None)
    assert other.state == KazooState.CONNECTED and other.get("/kz-ip-local")[0] == b"l2"
    script = "whoami\naddauth digest bob:secret\nwhoami\n"
    out = subprocess.run([str(ZKCLI), "-server", zk_hosts(ensemble, 3)], input=script, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    lines = [line.strip() for line in out.stdout.splitlines()]
    assert lines.count("ip: 127.0.0.1") == 2 and "digest: bob" in lines, out.stdout + out.stderr


def test_kazoo_recipes(kazoo: Callable[..., KazooClient]) -> None:
    a, b = kazoo(1), kazoo(3)
    held: list[str] = []
    lock_a, lock_b = a.Lock("/kz/lock", "a"), b.Lock("/kz/lock", "b")
    with lock_a:
        got = threading.Event()

        def take_b() -> None:
            with lock_b:
                held.append("b")
                got.set()

        thread = threading.Thread(target=take_b)
        thread.start()
        wait_for(lambda: len(lock_a.contenders()) == 2, 10, "b waiting")
        assert not got.is_set()
        held.append("a")
    thread.join(10)
    assert held == ["a", "b"]
    counter = a.Counter("/kz/counter")
    counter += 3
    b.Counter("/kz/counter").__add__(2)
    assert a.Counter("/kz/counter").value == 5
    queue = a.Queue("/kz/queue")
    for item in (b"1", b"2", b"3"):
        queue.put(item)
    assert [b.Queue("/kz/queue").get() for _ in range(3)] == [b"1", b"2", b"3"]
    barrier = a.Barrier("/kz/barrier")
    barrier.create()
    released = threading.Event()
    threading.Thread(target=lambda: (b.Barrier("/kz/barrier").wait(10), released.set())).start()
    barrier.remove()
    assert released.wait(10)
    leader: list[str] = []
    election = a.Election("/kz/election", "a")
    threading.Thread(target=lambda: election.run(lambda: leader.append("a"))).start()
    wait_for(lambda: leader == ["a"], 10, "the election's leader")


# --- sessions: failover and both doors ---------------------------------------------------------


def test_kazoo_fails_over_when_its_server_is_killed(
    ensemble: Ensemble, kazoo: Callable[..., KazooClient]
) -> None:
    victim = 2
    zk = kazoo(victim, 1, 3, randomize_hosts=False)  # on server 2 first
    states: list[str] = []
    zk.add_listener(states.append)
    path = zk.create("/kz/failover-", b"", ephemeral=True, sequence=True, makepath=True)
    session = zk.client_id[0]
    pid = ensemble.kill(victim)
    wait_for(lambda: KazooState.SUSPENDED in states and zk.state == KazooState.CONNECTED, 30, "failover")
    assert zk.client_id[0] == session and zk.exists(path) is not None  # same session, its ephemeral too
    wait_for(lambda: ensemble.pid(victim) not in (None, pid), 60, f"node {victim} restarted")
    ensemble.wait_healthy()


def test_a_session_moves_between_the_doors(ensemble: Ensemble, kazoo: Callable[..., KazooClient]) -> None:
    """The same client table behind both doors: a session made through ZooKeeper's protocol is
    resumed through ZeroMQ, with its ephemeral, and the other way round."""
    zk = kazoo(1)
    path = zk.create("/kz/moved-", b"", ephemeral=True, sequence=True, makepath=True)
    session_id, passwd = zk.client_id
    ours = Client(ensemble.endpoint(2), client_id=(session_id, passwd), timeout=SESSION_S)
    ours.start()
    try:
        assert ours.client_id == (session_id, passwd)
        assert ours.get_ephemerals() == [path]
    finally:
        ours.stop()  # closes the session: the ephemeral goes

    def ephemeral_gone() -> bool:
        # The session kazoo shares was closed: its server may drop the connection at any moment,
        # even between the state check and the exists.
        try:
            return zk.state != KazooState.CONNECTED or zk.exists(path) is None
        except ConnectionLoss:
            return True

    wait_for(ephemeral_gone, 10, "the ephemeral to go")


# --- four-letter words ---------------------------------------------------------------------------


def word(ensemble: Ensemble, sid: int, command: str) -> str:
    host, port = ensemble.conf.servers[sid].zk.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(command.encode())
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def mntr(ensemble: Ensemble, sid: int) -> dict[str, str]:
    return dict(line.split("\t", 1) for line in word(ensemble, sid, "mntr").splitlines())


def test_four_letter_words_on_the_client_port(ensemble: Ensemble, kazoo: Callable[..., KazooClient]) -> None:
    zk = kazoo(1)
    zk.ensure_path("/kz")  # not left to an earlier test: with -n the order is not the file's
    zk.create("/kz/eph4lw", b"", ephemeral=True)
    zk.exists("/kz/watched4lw", watch=lambda e: None)
    assert word(ensemble, 1, "ruok") == "imok"
    srvr = word(ensemble, 1, "srvr")
    assert srvr.startswith("Zookeeper version: 3.8.") and "\nMode: " in srvr and "Node count: " in srvr
    values = mntr(ensemble, 1)
    assert values["zk_server_state"] in ("leader", "follower") and int(values["zk_znode_count"]) > 0
    zk.create("/kz/size4lw", bytes(1000))  # the path's bytes and the data's, as ZooKeeper counts
    grown = mntr(ensemble, 1)
    assert int(grown["zk_approximate_data_size"]) - int(values["zk_approximate_data_size"]) == 11 + 1000
    assert 0 < int(values["zk_open_file_descriptor_count"]) < int(values["zk_max_file_descriptor_count"])
    assert int(values["zk_fsync_threshold_exceed_count"]) >= 0  # the txn log's slow fdatasyncs
    assert int(values["zk_cnt_fsynctime"]) > 0 and 0 < float(values["zk_avg_fsynctime"]) <= float(
        values["zk_max_fsynctime"]
    )
    assert "zookeeper.version=3.8." in word(ensemble, 1, "envi")
    assert f"0x{zk.client_id[0]:x}" in word(ensemble, 1, "wchc")
    assert "/kz/watched4lw" in word(ensemble, 1, "wchp")
    assert "/kz/eph4lw" in word(ensemble, 1, "dump")
    assert word(ensemble, 1, "isro") == "rw"
    assert "serverId=1" in word(ensemble, 1, "conf")
    assert "Total watches:" in word(ensemble, 1, "wchs")
    assert word(ensemble, 1, "srst") == "Server stats reset.\n"
    for command in ("stat", "cons", "crst", "dirs"):
        assert word(ensemble, 1, command)


# --- hostile input -------------------------------------------------------------------------------


def raw(ensemble: Ensemble, sid: int = 1) -> socket.socket:
    host, port = ensemble.conf.servers[sid].zk.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def framed(body: bytes) -> bytes:
    return LENGTH.pack(len(body)) + body


def handshake(s: socket.socket) -> ConnectResponse:
    s.sendall(framed(ConnectRequest(0, 0, 10_000, 0, bytes(16), False).encode()))
    return ConnectResponse.decode(read_frame(s))


def read_frame(s: socket.socket) -> bytes:
    head = recv_exactly(s, 4)
    return recv_exactly(s, LENGTH.unpack(head)[0])


def recv_exactly(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def closed(s: socket.socket) -> bool:
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


@pytest.mark.parametrize(
    "garbage",
    [LENGTH.pack(-5), LENGTH.pack(2 * 1024 * 1024) + b"x" * 100, b"\xff\xff\xff\xff"],
    ids=["negative length", "2 MB length", "minus one"],
)
def test_bad_lengths_close_the_connection_and_hurt_nobody(
    ensemble: Ensemble, kazoo: Callable[..., KazooClient], garbage: bytes
) -> None:
    witness = kazoo(1)
    s = raw(ensemble)
    handshake(s)
    s.sendall(garbage)
    assert closed(s)
    assert witness.exists("/") is not None


def test_malformed_and_unknown_requests(ensemble: Ensemble) -> None:
    s = raw(ensemble)
    handshake(s)
    s.sendall(framed(RequestHeader(5, 999).encode()))  # an unknown opcode: Unimplemented, then closed
    reply = read_frame(s)
    assert struct.unpack(">iqi", reply[:16])[0::2] == (5, -6)
    assert closed(s)
    s = raw(ensemble)
    handshake(s)
    s.sendall(framed(RequestHeader(6, OpCode.CREATE).encode() + b"\x00\x00\x00\x09trunc"))
    assert struct.unpack(">iqi", read_frame(s)[:16])[0::2] == (6, -5)  # Marshalling
    assert closed(s)
    s = raw(ensemble)
    s.sendall(framed(b"not a connect request"))
    assert closed(s)


def test_pipelined_reads_split_anywhere_are_answered_in_order(
    ensemble: Ensemble, kazoo: Callable[..., KazooClient]
) -> None:
    """Plain reads sent back to back are answered by the stream path in runs; a write, a watch
    and a missing node among them, and frames cut at every kind of boundary, keep every reply
    in order and right."""
    kazoo(1).create("/kz-pipe", b"piped")
    s = raw(ensemble)
    handshake(s)
    get = lambda xid, path="/kz-pipe", watch=0: framed(  # noqa: E731
        RequestHeader(xid, OpCode.GET_DATA).encode() + LENGTH.pack(len(path)) + path.encode() + bytes([watch])
    )
    stream = b"".join(get(x) for x in range(1, 101))
    stream += get(101, watch=1) + get(102, "/kz-none") + get(103)
    stream += framed(
        RequestHeader(104, OpCode.SET_DATA).encode()
        + b"\x00\x00\x00\x08/kz-pipe\x00\x00\x00\x01w\xff\xff\xff\xff"
    )
    stream += b"".join(get(x) for x in range(105, 205))
    for cut in (7, 50, 1000, 1, 3):  # mid-length, mid-body, many frames, single bytes
        s.sendall(stream[:cut])
        stream = stream[cut:]
        time.sleep(0.02)
    s.sendall(stream)
    replies = [read_frame(s) for _ in range(205)]
    headers = [struct.unpack(">iqi", r[:16]) for r in replies]
    xids = [h[0] for h in headers]
    assert xids == [*range(1, 104), -1, *range(104, 205)]  # the watch fires before the write's reply
    assert [h[2] for h in headers[100:103]] == [0, -101, 0]
    assert all(r[16:25] == LENGTH.pack(5) + b"piped" for r in replies[:100])
    assert all(r[16:21] == LENGTH.pack(1) + b"w" for r in replies[105:])
    zxids = [h[1] for h in headers]
    assert zxids[:100] == [zxids[0]] * 100 and zxids[-1] > zxids[0]
    s.close()


def test_read_replies_a_slow_reader_leaves_unread_wait_for_it_in_order(
    ensemble: Ensemble, kazoo: Callable[..., KazooClient]
) -> None:
    """A run of reads is answered and written at once; what the socket does not take (a client
    that reads slowly) waits for it, with the replies after it behind, none lost."""
    data = bytes(range(256)) * 2048  # 512 KiB: a few replies fill the socket's buffers
    kazoo(1).create("/kz-big", data)
    s = raw(ensemble)
    handshake(s)
    path = b"/kz-big"

    def get(xid: int) -> bytes:
        return framed(RequestHeader(xid, OpCode.GET_DATA).encode() + LENGTH.pack(len(path)) + path + b"\0")

    count = 40  # 20 MiB of replies
    s.sendall(b"".join(get(x) for x in range(1, count + 1)))
    time.sleep(0.5)  # unread: most of it waits in the server
    s.sendall(get(count + 1))
    s.settimeout(30)
    replies = [read_frame(s) for _ in range(count + 1)]
    assert [struct.unpack(">i", r[:4])[0] for r in replies] == list(range(1, count + 2))
    assert all(r[16:20] == LENGTH.pack(len(data)) and r[20 : 20 + len(data)] == data for r in replies)
    s.close()


def test_a_busy_node_naps_to_coalesce_and_a_client_awaiting_each_reply_is_never_held(
    ensemble: Ensemble, kazoo: Callable[..., KazooClient]
) -> None:
    """coalesceMicros: a turn that answered several plain reads which were already waiting,
    and took nothing else, is followed by a nap, so that the next turn has more to answer; a
    longer one (coalescePipelinedMicros) when they came two or more a connection. A client
    that sends each request after the last reply is never held up by one, nor are writes
    (group commit batches them already), and clients that each await their reply never get
    the longer nap, however many of them the node answers in a turn, nor does a lone client
    that pipelines (the longer nap grows with the connections that keep the node busy)."""
    kazoo(1).create("/kz-nap", b"x")  # no session on node 2 but the connections below
    path = b"/kz-nap"

    def get(xid: int) -> bytes:
        return framed(RequestHeader(xid, OpCode.GET_DATA).encode() + LENGTH.pack(len(path)) + path + b"\0")

    def set_data(xid: int) -> bytes:
        body = LENGTH.pack(len(path)) + path + LENGTH.pack(1) + b"y" + LENGTH.pack(-1)
        return framed(RequestHeader(xid, OpCode.SET_DATA).encode() + body)

    # Closed however the test ends: a failure's traceback keeps this frame, and with it 21
    # connections that would count against the next test's share of maxClientCnxns.
    with contextlib.ExitStack() as connections:
        one = connections.enter_context(raw(ensemble, 2))
        handshake(one)
        before = mntr(ensemble, 2)
        for xid in range(1, 301):
            one.sendall(get(xid))
            assert struct.unpack(">i", read_frame(one)[:4])[0] == xid
        after = mntr(ensemble, 2)
        assert int(after["zk_coalesce_naps"]) == int(before["zk_coalesce_naps"])
        assert int(after["zk_loop_turns"]) - int(before["zk_loop_turns"]) >= 300
        # A lone client that keeps ten reads in flight, five at a time, until the node napped:
        # never the longer nap.
        one.sendall(b"".join(get(xid) for xid in range(1, 6)))
        for sent in range(1, 2001):
            one.sendall(b"".join(get(xid) for xid in range(1, 6)))
            assert [struct.unpack(">i", read_frame(one)[:4])[0] for _ in range(5)] == [1, 2, 3, 4, 5]
            if sent % 100 == 0 and mntr(ensemble, 2)["zk_coalesce_naps"] != after["zk_coalesce_naps"]:
                break
        assert [struct.unpack(">i", read_frame(one)[:4])[0] for _ in range(5)] == [1, 2, 3, 4, 5]
        stats = mntr(ensemble, 2)
        assert int(stats["zk_coalesce_naps"]) > int(after["zk_coalesce_naps"])
        assert stats["zk_coalesce_pipelined_naps"] == after["zk_coalesce_pipelined_naps"]
        many = [connections.enter_context(raw(ensemble, 2)) for _ in range(20)]
        for s in many:
            handshake(s)

        def naps() -> tuple[int, int]:
            stats = mntr(ensemble, 2)
            return int(stats["zk_coalesce_naps"]), int(stats["zk_coalesce_pipelined_naps"])

        def bursts(request: Callable[[int], bytes], rounds: int, size: int = 100) -> tuple[int, int]:
            """Rounds of `size` requests from every connection, each sent before the node
            answers the first (most of the time: the node may keep up with a round), until the
            node took a nap of each kind; how many it took."""
            before = naps()
            for _ in range(rounds):
                for s in many:
                    s.sendall(b"".join(request(x) for x in range(1, size + 1)))
                for s in many:
                    assert [struct.unpack(">i", read_frame(s)[:4])[0] for _ in range(size)] == list(
                        range(1, size + 1)
                    )
                if all(now > then for now, then in zip(naps(), before, strict=True)):
                    break
            return naps()[0] - before[0], naps()[1] - before[1]

        assert bursts(set_data, 5) == (0, 0)
        assert bursts(get, 30, size=1)[1] == 0  # 20 clients awaiting each reply: no long nap
        assert all(bursts(get, 30))


def test_frames_past_one_turns_bound_are_taken_with_no_more_bytes_coming(ensemble: Ensemble) -> None:
    """One read can bring more whole frames than a loop turn takes from a connection
    (FRAMES_PER_TURN_MAX): the rest are taken in the next turns, although the socket has
    nothing more to say. (They waited for more bytes before: a bulk load stalled.)"""
    s = raw(ensemble)
    handshake(s)
    count = 3_000
    s.sendall(b"".join(framed(RequestHeader(x, OpCode.SET_DATA).encode() + b"\x00\x00\x00\x01/\x00\x00\x00\x01x\xff\xff\xff\xff")
                       for x in range(1, count + 1)))  # fmt: skip
    s.settimeout(30)
    assert [struct.unpack(">i", read_frame(s)[:4])[0] for _ in range(count)] == list(range(1, count + 1))
    s.close()


def test_a_client_pipelining_more_than_the_server_queues_is_slowed_not_cut_off(
    ensemble: Ensemble, kazoo: Callable[..., KazooClient]
) -> None:
    """A client with more requests in flight than limits.client_queue_max (as the C client's
    async bulk loads send them) is not read while the server holds that many: it is slowed down,
    as ZooKeeper slows it, and gets every reply, in order. (Before, the request over the limit
    got its error ahead of the replies it came after, and the connection was closed; and the
    frames past one read's FRAMES_PER_TURN_MAX waited for more bytes that never came.)"""
    count = limits.client_queue_max + 2_500
    kazoo(1).ensure_path("/kz-flood")
    s = raw(ensemble)
    handshake(s)
    stream = b"".join(
        framed(
            RequestHeader(x, OpCode.CREATE).encode()
            + CreateRequest(f"/kz-flood/n{x}", b"x" * 100, OPEN_ACL_UNSAFE, 0).encode()
        )
        for x in range(1, count + 1)
    )
    sender = threading.Thread(target=s.sendall, args=(stream,), daemon=True)  # the server stops reading it
    sender.start()
    s.settimeout(60)
    replies = [struct.unpack(">iqi", read_frame(s)[:16]) for _ in range(count)]
    sender.join(10)
    assert [r[0] for r in replies] == list(range(1, count + 1))
    assert {r[2] for r in replies} == {0}
    assert kazoo(2).get("/kz-flood")[1].numChildren == count
    s.close()


def test_big_requests_and_many_connections(ensemble: Ensemble, kazoo: Callable[..., KazooClient]) -> None:
    s = raw(ensemble)
    handshake(s)
    body = CreateRequest("/kz-big", b"b" * 512 * 1024, (), 0)
    s.sendall(framed(RequestHeader(1, OpCode.CREATE).encode() + body.encode()))
    header = struct.unpack(">iqi", read_frame(s)[:16])
    assert header[2] in (0, -114)  # created, or InvalidACL for the empty ACL list: either way served
    s.close()
    zk = kazoo(1)
    zk.create("/kz-big2", b"b" * 512 * 1024)  # a 512 KB znode through kazoo
    assert len(zk.get("/kz-big2")[0]) == 512 * 1024
    sockets = [raw(ensemble, 2) for _ in range(60)]  # ZooKeeper's default maxClientCnxns
    try:
        for s in sockets[:60:10]:
            assert handshake(s).session_id != 0
    finally:
        for s in sockets:
            s.close()


def test_half_open_connections_are_closed_and_bounded(ensemble: Ensemble) -> None:
    """Thousands of connections that never finish a handshake, from one address: the node keeps
    at most maxClientCnxns of them, closes the rest at once, and serves everybody else (here a
    client on the other door: every TCP client of this test shares the attacker's address)."""
    witness = Client(ensemble.endpoint(3), timeout=SESSION_S)
    witness.start()
    opened: list[socket.socket] = []
    try:
        for _ in range(2000):
            try:
                s = raw(ensemble, 3)
                s.sendall(b"\x00\x00")  # half a length
                opened.append(s)
            except OSError:
                pass
        live = wait_for(lambda: sum(1 for s in opened if not _gone(s)) <= 61 or None, 20, "the excess closed")
        assert live
        started = time.monotonic()
        assert witness.get("/")[1] is not None and time.monotonic() - started < 5
    finally:
        for s in opened:
            s.close()
        witness.stop()


def _gone(s: socket.socket) -> bool:
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


# --- AdminServer and Prometheus -------------------------------------------------------------------


def http_get(ensemble: Ensemble, sid: int, path: str) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    host, port = ensemble.conf.servers[sid].admin.rsplit(":", 1)
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_admin_server_commands_and_metrics(ensemble: Ensemble, kazoo: Callable[..., KazooClient]) -> None:
    import json

    zk = kazoo(1)
    zk.exists("/kz-admin", watch=lambda e: None)
    for _ in range(20):
        zk.get("/")
    status, body = http_get(ensemble, 1, "/commands/ruok")
    assert status == 200 and json.loads(body)["error"] is None
    monitor = json.loads(http_get(ensemble, 1, "/commands/monitor")[1])
    assert monitor["zk_server_state"] in ("leader", "follower") and monitor["command"] == "monitor"
    stat = json.loads(http_get(ensemble, 1, "/commands/stat")[1])
    assert stat["version"].startswith("3.8.") and stat["node_count"] > 0
    connections = json.loads(http_get(ensemble, 1, "/commands/connections")[1])["connections"]
    assert f"0x{zk.client_id[0]:x}" in [c["session_id"] for c in connections]
    watches = json.loads(http_get(ensemble, 1, "/commands/watches")[1])["session_id_to_watched_paths"]
    assert "/kz-admin" in watches[f"0x{zk.client_id[0]:x}"]
    leaders = [
        json.loads(http_get(ensemble, s, "/commands/leader")[1])["is_leader"] for s in ensemble.servers
    ]
    assert leaders.count(True) == 1
    assert json.loads(http_get(ensemble, 1, "/commands/configuration")[1])["server_id"] == 1
    assert json.loads(http_get(ensemble, 1, "/commands/environment")[1])["zookeeper.version"].startswith(
        "3.8."
    )
    assert http_get(ensemble, 1, "/commands/nonsense")[0] == 404
    status, metrics = http_get(ensemble, 1, "/metrics")
    assert status == 200 and "\nznode_count " in metrics
    count = next(line for line in metrics.splitlines() if line.startswith("request_latency_seconds_count"))
    assert float(count.split()[1]) >= 20
    assert 'request_latency_seconds_bucket{le="+Inf"}' in metrics


def test_our_lock_and_kazoos_lock_share_one_lock(
    ensemble: Ensemble, kazoo: Callable[..., KazooClient]
) -> None:
    """The recipes' node layout is kazoo's: a kazoo client (ZooKeeper's protocol) and ours
    (ZeroMQ) contend for one lock, and each waits for the other."""
    theirs = kazoo(1)
    ours = Client(ensemble.connect_string(), timeout=SESSION_S)
    ours.start()
    try:
        order: list[str] = []
        their_lock, our_lock = theirs.Lock("/kz/shared-lock", "kazoo"), ours.Lock("/kz/shared-lock", "zkpy")
        with their_lock:
            done = threading.Event()

            def take() -> None:
                with our_lock:
                    order.append("zkpy")
                done.set()

            threading.Thread(target=take).start()
            wait_for(lambda: sorted(their_lock.contenders()) == ["kazoo", "zkpy"], 10, "ours waiting")
            assert not done.is_set()
            order.append("kazoo")
        assert done.wait(10) and order == ["kazoo", "zkpy"]
        with our_lock, pytest.raises(LockTimeout):
            theirs.Lock("/kz/shared-lock", "kazoo2").acquire(timeout=0.5)
    finally:
        ours.stop()


# --- ZooKeeper's own Java CLI and C client ---------------------------------------------------------

ZKCLI = Path("/usr/share/zookeeper/bin/zkCli.sh")
C_SMOKE = Path(__file__).resolve().parent / "c_client" / "zk_smoke.c"


def test_zkcli_sh_scripted(ensemble: Ensemble) -> None:
    assert ZKCLI.exists(), f"{ZKCLI} is missing: apt-get install zookeeper (make test installs it)"
    script = "create /zkcli hello\ncreate -s /zkcli/n- x\nls /zkcli\nget /zkcli\nset /zkcli bye\n"
    script += "stat /zkcli\ndelete /zkcli/n-0000000000\nls /zkcli\n"
    out = subprocess.run([str(ZKCLI), "-server", zk_hosts(ensemble, 1)], input=script, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    lines = [
        line for line in (out.stdout + out.stderr).splitlines() if line.strip()
    ]  # "Created" goes to stderr
    for expected in ("Created /zkcli", "Created /zkcli/n-0000000000", "[n-0000000000]", "hello",
                     "dataVersion = 1", "numChildren = 1", "[]"):  # fmt: skip
        assert expected in lines, f"{expected!r} not in zkCli.sh's output:\n{out.stdout}\n{out.stderr}"


def test_the_zookeeper_c_client(ensemble: Ensemble, tmp_path: Path) -> None:
    header = Path("/usr/include/zookeeper/zookeeper.h")
    assert header.exists(), (
        f"{header} is missing: apt-get install libzookeeper-mt-dev (make test installs it)"
    )
    binary = tmp_path / "zk_smoke"
    subprocess.run(["cc", "-DTHREADED", "-O1", "-o", str(binary), str(C_SMOKE), "-lzookeeper_mt", "-lpthread"],
                   check=True, timeout=120)  # fmt: skip
    out = subprocess.run([str(binary), zk_hosts(ensemble)], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout.strip()) == (0, "ok"), out.stdout + out.stderr


def test_a_node_out_of_file_descriptors_neither_spins_nor_floods_its_log(
    ensemble_factory: Callable[..., Ensemble],
) -> None:
    """accept() failing for want of file descriptors (EMFILE) left the connection waiting, so
    every poll returned at once: the loop spun at a whole core and logged a warning each time
    (85,000 lines in 3 s). The door stops polling its listener for a moment after a failure:
    its clients are served meanwhile, the log gets a line a second, and once descriptors are
    free again new connections are taken."""
    e = ensemble_factory(nodes=1)
    sid = wait_for(e.leader, 10, "a leader")
    assert isinstance(sid, int)
    pid = e.pid(sid)
    assert pid is not None
    zk = KazooClient(hosts=zk_hosts(e, sid), timeout=SESSION_S)
    zk.start(timeout=20)
    zk.create("/fd", b"0")
    host, port = e.conf.servers[sid].zk.rsplit(":", 1)
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (len(os.listdir(f"/proc/{pid}/fd")) + 5, hard))
    waiting = [socket.create_connection((host, int(port))) for _ in range(30)]  # 25 past the limit
    try:
        time.sleep(2)
        zk.set("/fd", b"1")  # its client is served meanwhile
        said = (e.data_dir / f"node{sid}" / "node.log").read_text().count("cannot accept")
        assert 1 <= said <= 5, f"{said} warnings in 2 s"
    finally:
        for s in waiting:
            s.close()
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))
    late = KazooClient(hosts=zk_hosts(e, sid), timeout=SESSION_S)
    late.start(timeout=20)  # taken once descriptors are free
    assert late.get("/fd")[0] == b"1"
    late.stop()
    zk.stop()


def test_a_node_raises_its_soft_limit_on_open_files_to_the_hard_one(
    ensemble_factory: Callable[..., Ensemble],
) -> None:
    """Started under a soft limit of 512 (systemd's default is 1,024 under a hard 524,288),
    a node serves with its hard limit: each client connection takes a descriptor, and libzmq
    aborts the process when its ipc listener runs out."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 512:
        pytest.skip(f"the hard limit here is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))
    try:
        e = ensemble_factory(nodes=1)  # its launcher, supervisor and node inherit 512
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    sid = wait_for(e.leader, 10, "a leader")
    assert isinstance(sid, int)
    pid = e.pid(sid)
    assert pid is not None
    node_soft, node_hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    assert node_soft == node_hard > 512 or node_soft == int(Path("/proc/sys/fs/nr_open").read_text())
    assert "open files: up to" in (e.data_dir / f"node{sid}" / "node.log").read_text()


def test_clients_that_never_send_their_http_request_hold_up_nothing(
    ensemble_factory: Callable[..., Ensemble],
) -> None:
    """The AdminServer was served on the node's loop, each connection given 0.2 s to send its
    request: three idle connections to the leader's admin port every 100 ms stalled its loop
    until its followers left it (an election; a write took 0.2 s with one). Its sockets now have
    threads of their own (at most 16 open: the rest are closed at once): the same stream of idle
    connections leaves every write going and no server changes its role, and once they are
    gone the AdminServer answers."""
    e = ensemble_factory(nodes=3)
    leader = wait_for(e.leader, 10, "a leader")
    assert isinstance(leader, int)
    host, port = e.conf.servers[leader].admin.rsplit(":", 1)
    zk = Client(e.connect_string(), timeout=10)
    zk.start(timeout=30)
    zk.create("/idle", b"")
    logs = [e.data_dir / f"node{sid}" / "node.log" for sid in e.conf.voters]
    roles_before = [log.read_text().count(" role ") for log in logs]
    idle: list[socket.socket] = []
    try:
        for i in range(30):  # 3 s
            idle += [socket.create_connection((host, int(port))) for _ in range(3)]
            zk.set("/idle", str(i).encode())
            time.sleep(0.1)
    finally:
        for s in idle:
            s.close()
    assert [log.read_text().count(" role ") for log in logs] == roles_before

    def answers() -> bool:
        try:
            return http_get(e, leader, "/commands/ruok")[0] == 200
        except OSError:  # still full of idle connections: closed at once
            return False

    wait_for(answers, 10, "the AdminServer to answer")
    zk.stop()
