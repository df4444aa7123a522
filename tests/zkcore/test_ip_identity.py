"""Every connection holds the identity ip:<its client's address>, as ZooKeeper gives each: ACLs of
the ip scheme let it in (on the server it is connected to, and on the leader that preps its
forwarded writes), and whoAmI names it with the digests it added. No I/O: the shell's word for
the address is the `address` of the connection's first frame."""

from __future__ import annotations

import pytest

from tests.zkcore.test_server import Servers, reply, request
from zkcore._acl import client_infos, digest_id, ip_identity
from zkcore._errors import Code
from zkcore._records import (
    ACL,
    OPEN_ACL_UNSAFE,
    AuthPacket,
    ClientInfo,
    ConnectRequest,
    CreateRequest,
    Id,
    OpCode,
    PathWatchRequest,
    Perms,
    RequestHeader,
    SetDataRequest,
    WhoAmIResponse,
)
from zkcore.server import Server


@pytest.mark.parametrize(
    ("address", "identity"),
    [
        ("10.1.2.3", (Id("ip", "10.1.2.3"),)),
        ("::ffff:127.0.0.1", (Id("ip", "127.0.0.1"),)),  # IPv4 through a dual-stack socket
        ("::1", (Id("ip", "::1"),)),
        ("fe80:0:0:0:0:0:0:1", (Id("ip", "fe80::1"),)),
        ("localhost:0:0:7936", ()),  # what libzmq says of an ipc peer: not an address
        ("", ()),
        (None, ()),
    ],
)
def test_a_connection_s_ip_identity(address: str | None, identity: tuple[Id, ...]) -> None:
    assert ip_identity(address) == identity


def test_who_am_i_names_a_digest_by_its_user() -> None:
    ids = (Id("ip", "10.1.2.3"), Id("digest", digest_id("alice", "pw")), Id("super", ""))
    assert client_infos(ids) == (
        ClientInfo("ip", "10.1.2.3"),
        ClientInfo("digest", "alice"),
        ClientInfo("super", ""),
    )


def _open(net: Servers, server: Server, conn: str, address: str | None) -> None:
    server.receive(conn, ConnectRequest(0, 0, 10_000, 0, bytes(16), False).encode(), address)
    net.pump()
    assert len(net.frames(conn)) == 1  # its ConnectResponse


def _ask(net: Servers, server: Server, conn: str, xid: int, opcode: int, body: object) -> tuple[int, object]:
    """One request; its error code and reply reader."""
    frame = RequestHeader(xid, opcode).encode() if body is None else request(xid, opcode, body)
    server.receive(conn, frame, "192.0.2.99")  # ignored: not the first
    net.pump()
    (frame,) = net.frames(conn)
    header, r = reply(frame)
    assert header.xid == xid
    return header.err, r


def _who(net: Servers, server: Server, conn: str, xid: int) -> list[tuple[str, str]]:
    err, r = _ask(net, server, conn, xid, OpCode.WHO_AM_I, None)
    assert err == Code.OK
    return [(i.auth_scheme, i.user) for i in WhoAmIResponse.read(r).client_info]  # type: ignore[arg-type]


def test_ip_acls_and_who_am_i_through_a_follower_and_the_leader() -> None:
    net = Servers(3, indexed=True)
    leader_id = net.settle()
    leader = net.servers[leader_id]
    follower = net.servers[next(s for s in net.servers if s != leader_id)]
    _open(net, leader, "admin", "10.9.9.9")
    lan = (ACL(Perms.ALL, Id("ip", "10.0.0.0/8")),)
    for xid, (path, acl) in enumerate([("/lan", lan), ("/open", OPEN_ACL_UNSAFE)], 1):
        assert _ask(net, leader, "admin", xid, OpCode.CREATE, CreateRequest(path, b"v", acl, 0))[0] == Code.OK
    _open(net, follower, "inside", "10.1.2.3")
    _open(net, follower, "outside", "192.168.1.1")
    _open(net, follower, "unknown", None)  # a shell that cannot tell: no ip identity at all

    def outcome(conn: str, xid: int) -> tuple[int, int]:
        read = _ask(net, follower, conn, xid, OpCode.GET_DATA, PathWatchRequest("/lan", False))[0]
        # A write is prepped by the leader, with the identities the follower forwarded.
        write = _ask(net, follower, conn, xid + 1, OpCode.SET_DATA, SetDataRequest("/lan", b"w", -1))[0]
        return read, write

    assert outcome("inside", 10) == (Code.OK, Code.OK)
    assert outcome("outside", 10) == (Code.NO_AUTH, Code.NO_AUTH)
    assert outcome("unknown", 10) == (Code.NO_AUTH, Code.NO_AUTH)

    assert _who(net, follower, "inside", 20) == [("ip", "10.1.2.3")]
    assert _who(net, follower, "unknown", 20) == []
    assert _who(net, leader, "admin", 20) == [("ip", "10.9.9.9")]
    follower.receive("outside", request(-4, OpCode.AUTH, AuthPacket(0, "digest", b"alice:pw")))
    net.pump()
    assert reply(net.frames("outside")[0])[0].err == Code.OK
    assert _who(net, follower, "outside", 21) == [("ip", "192.168.1.1"), ("digest", "alice")]
    # An ip identity is not one the "auth" scheme gives a new node's ACL: with no digest, such
    # a create is refused, as ZooKeeper refuses it.
    auth_only = (ACL(Perms.ALL, Id("auth", "")),)
    err, _ = _ask(net, follower, "inside", 30, OpCode.CREATE, CreateRequest("/mine", b"", auth_only, 0))
    assert err == Code.INVALID_ACL
