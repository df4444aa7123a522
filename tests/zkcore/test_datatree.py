"""The tree and prep: pipelined writes, sessions and ephemerals, TTL and container nodes,
limits, replay, and snapshots. Semantics checked against ZooKeeper live in test_golden_zookeeper."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from native import PathIndex
from zkcore import Code, KeeperError, RemoteError, snapshot_chunks, snapshot_node_count, tree_from_snapshot
from zkcore import _records as rec
from zkcore._datatree import (
    NO_CHILDREN,
    NODE_CHILDREN_CHANGED,
    NODE_CREATED,
    NODE_DATA_CHANGED,
    NODE_DELETED,
    DataTree,
    Node,
)
from zkcore._prep import Prep, Request, next_version

S1, S2 = 0x101, 0x202
OPEN = rec.OPEN_ACL_UNSAFE


class Leader:
    """Preps many writes before applying them, the way a leader pipelines proposals."""

    def __init__(self, tree: DataTree | None = None) -> None:
        self.tree = tree or DataTree()
        self.prep = Prep(self.tree, data_bytes_max=1000)
        self.zxid = 0
        self.queue: list[rec.Txn] = []

    def propose(self, session: int, opcode: int, body: Any) -> tuple[rec.Txn, KeeperError | None]:
        self.zxid += 1
        txn, err = self.prep.prep(Request(session, self.zxid, opcode, body), self.zxid, 5000 + self.zxid)
        self.queue.append(txn)
        return txn, err

    def commit_all(self) -> list[Any]:
        results = []
        for txn in self.queue:
            results.append(self.tree.apply(rec.Txn.decode(txn.encode())))
            self.prep.applied(txn.zxid)
        self.queue.clear()
        return results

    def write(self, session: int, opcode: int, body: Any) -> Any:
        self.propose(session, opcode, body)
        return self.commit_all()[0]


def create(path: str, flags: int = 0, data: bytes = b"") -> tuple[int, rec.CreateRequest]:
    return rec.OpCode.CREATE, rec.CreateRequest(path, data, OPEN, flags)


@pytest.fixture
def leader() -> Leader:
    ld = Leader()
    ld.write(S1, rec.OpCode.CREATE_SESSION, rec.CreateSessionTxn(4000))
    ld.write(S2, rec.OpCode.CREATE_SESSION, rec.CreateSessionTxn(4000))
    return ld


def test_pipelined_creates_see_each_other(leader: Leader) -> None:
    leader.propose(S1, *create("/q"))
    names = [leader.propose(S1, *create("/q/n-", flags=2))[0].body.path for _ in range(3)]  # type: ignore[union-attr]
    _, err = leader.propose(S1, *create("/q"))
    assert names == ["/q/n-0000000000", "/q/n-0000000001", "/q/n-0000000002"]
    assert err is not None and err.code == Code.NODE_EXISTS
    _, err = leader.propose(S1, rec.OpCode.DELETE, rec.DeleteRequest("/q", -1))
    assert err is not None and err.code == Code.NOT_EMPTY
    results = leader.commit_all()
    assert [r.err for r in results] == [0, 0, 0, 0, Code.NODE_EXISTS, Code.NOT_EMPTY]
    assert leader.tree.get_children("/q")[0] == ["n-0000000000", "n-0000000001", "n-0000000002"]


def test_pipelined_delete_then_create_and_version_chain(leader: Leader) -> None:
    leader.write(S1, *create("/v"))
    for expected in range(3):
        _, err = leader.propose(S1, rec.OpCode.SET_DATA, rec.SetDataRequest("/v", b"x", expected))
        assert err is None
    leader.propose(S1, rec.OpCode.DELETE, rec.DeleteRequest("/v", 3))
    _, err = leader.propose(S1, rec.OpCode.SET_DATA, rec.SetDataRequest("/v", b"y", -1))
    assert err is not None and err.code == Code.NO_NODE
    _, err = leader.propose(S1, *create("/v"))
    assert err is None
    leader.commit_all()
    assert leader.tree.node("/v").version == 0


def test_failed_multi_rolls_back_pending_changes(leader: Leader) -> None:
    ops = [create("/m"), create("/m/child"), (rec.OpCode.CHECK, rec.CheckVersionRequest("/nope", 0))]
    _, err = leader.propose(S1, rec.OpCode.MULTI, ops)
    assert err is not None and err.code == Code.NO_NODE
    # The rolled-back create of /m must not be visible to the next prep.
    _, err = leader.propose(S1, rec.OpCode.SET_DATA, rec.SetDataRequest("/m", b"", -1))
    assert err is not None and err.code == Code.NO_NODE
    result = leader.commit_all()[0]
    assert [(r.type, r.err) for r in result.multi] == [(-1, 0), (-1, 0), (-1, Code.NO_NODE)]
    assert "/m" not in leader.tree


def test_multi_applies_atomically_and_fires_events(leader: Leader) -> None:
    leader.write(S1, *create("/a", data=b"1"))
    ops = [
        create("/b"),
        (rec.OpCode.SET_DATA, rec.SetDataRequest("/a", b"2", 0)),
        (rec.OpCode.DELETE, rec.DeleteRequest("/b", 0)),
    ]
    result = leader.write(S1, rec.OpCode.MULTI, ops)
    assert [r.type for r in result.multi] == [rec.OpCode.CREATE, rec.OpCode.SET_DATA, rec.OpCode.DELETE]
    assert result.events == [(NODE_CREATED, "/b"), (NODE_CHILDREN_CHANGED, "/"), (NODE_DATA_CHANGED, "/a"),
                             (NODE_DELETED, "/b"), (NODE_CHILDREN_CHANGED, "/")]  # fmt: skip
    assert leader.tree.get_data("/a")[0] == b"2" and "/b" not in leader.tree


def test_close_session_deletes_its_ephemerals_including_in_flight(leader: Leader) -> None:
    leader.write(S1, *create("/e"))
    leader.write(S1, *create("/e/one", flags=1))
    leader.write(S2, *create("/e/other", flags=1))
    leader.propose(S1, *create("/e/two", flags=3))
    txn, _ = leader.propose(S1, rec.OpCode.CLOSE_SESSION, None)
    assert txn.body == rec.CloseSessionTxn(("/e/one", "/e/two0000000002"))
    _, err = leader.propose(S1, *create("/e/late", flags=1))
    assert err is not None and err.code == Code.SESSION_EXPIRED
    leader.commit_all()
    assert leader.tree.get_children("/e")[0] == ["other"]
    assert S1 not in leader.tree.sessions and S1 not in leader.tree.ephemerals
    assert leader.tree.get_ephemerals(S2) == ["/e/other"]


def test_writes_need_a_live_session() -> None:
    ld = Leader()
    _, err = ld.propose(0x999, *create("/x"))
    assert err is not None and err.code == Code.SESSION_EXPIRED


@pytest.mark.parametrize(
    "opcode, body, code",
    [
        (rec.OpCode.CREATE, rec.CreateRequest("/big", b"x" * 1001, OPEN, 0), Code.BAD_ARGUMENTS),
        (rec.OpCode.CREATE, rec.CreateRequest("/f", b"", OPEN, 9), Code.BAD_ARGUMENTS),
        (rec.OpCode.CREATE, rec.CreateRequest("/f", b"", OPEN, 5), Code.BAD_ARGUMENTS),
        (rec.OpCode.CREATE_CONTAINER, rec.CreateRequest("/f", b"", OPEN, 0), Code.BAD_ARGUMENTS),
        (rec.OpCode.CREATE, rec.CreateRequest("/f", b"", OPEN, 4), Code.BAD_ARGUMENTS),
        (rec.OpCode.CREATE_TTL, rec.CreateTTLRequest("/f", b"", OPEN, 0, 5), Code.BAD_ARGUMENTS),
        (
            rec.OpCode.CREATE,
            rec.CreateRequest("/f", b"", (rec.ACL(32, rec.Id("world", "anyone")),), 0),
            Code.INVALID_ACL,
        ),
        (rec.OpCode.CREATE_TTL, rec.CreateTTLRequest("/f", b"", OPEN, 5, -4), Code.BAD_ARGUMENTS),
        (rec.OpCode.CREATE, rec.CreateRequest("/zookeeper", b"", OPEN, 0), Code.NODE_EXISTS),  # as ZooKeeper
        (rec.OpCode.DELETE, rec.DeleteRequest("/zookeeper/quota", -1), Code.BAD_ARGUMENTS),
        (rec.OpCode.DELETE, rec.DeleteRequest("/", -1), Code.BAD_ARGUMENTS),
        (rec.OpCode.SET_DATA, rec.SetDataRequest("nope", b"", -1), Code.BAD_ARGUMENTS),
        (rec.OpCode.SET_DATA, rec.SetDataRequest("/", b"x" * 1001, -1), Code.BAD_ARGUMENTS),
        (rec.OpCode.SET_ACL, rec.SetACLRequest("/", (), -1), Code.INVALID_ACL),
        (rec.OpCode.GET_DATA, rec.PathWatchRequest("/", False), Code.BAD_ARGUMENTS),
    ],
)
def test_bad_writes_become_error_txns_and_change_nothing(
    leader: Leader, opcode: int, body: Any, code: int
) -> None:
    before = leader.tree.digest()
    txn, err = leader.propose(S1, opcode, body)
    assert err is not None and err.code == code and str(err)
    assert txn.header.type == rec.OpCode.ERROR and txn.body == rec.ErrorTxn(code)
    assert leader.commit_all()[0].err == code
    sessions_only = leader.tree.digest()
    assert sessions_only == before


def test_containers_and_ttl_nodes_become_candidates(leader: Leader) -> None:
    leader.write(S1, rec.OpCode.CREATE_CONTAINER, rec.CreateRequest("/box", b"", OPEN, 4))
    leader.write(S1, rec.OpCode.CREATE_TTL, rec.CreateTTLRequest("/ttl", b"", OPEN, 5, 100))
    assert leader.tree.expired_candidates(now_ms=0) == []  # container never had a child
    leader.write(S1, *create("/box/item"))
    leader.write(S1, rec.OpCode.DELETE, rec.DeleteRequest("/box/item", -1))
    mtime = leader.tree.node("/ttl").mtime
    assert leader.tree.expired_candidates(mtime + 100) == ["/box"]
    assert leader.tree.expired_candidates(mtime + 101) == ["/box", "/ttl"]
    for path in ("/box", "/ttl"):
        assert leader.write(0, rec.OpCode.DELETE_CONTAINER, rec.PathRequest(path)).err == 0
    assert "/box" not in leader.tree and not leader.tree.containers and not leader.tree.ttls


def test_delete_container_deletes_only_containers_and_ttl_nodes(leader: Leader) -> None:
    leader.write(S1, *create("/eph", flags=1))
    leader.write(S1, *create("/plain"))
    for path in ("/eph", "/plain"):
        assert leader.write(0, rec.OpCode.DELETE_CONTAINER, rec.PathRequest(path)).err == Code.BAD_ARGUMENTS
        assert path in leader.tree


def test_replayed_txns_do_not_change_state_twice(leader: Leader) -> None:
    txn, _ = leader.propose(S1, *create("/r"))
    leader.commit_all()
    before = leader.tree.digest()
    assert leader.tree.apply(txn).err == Code.NODE_EXISTS
    assert leader.tree.digest() == before


@pytest.mark.parametrize(
    "current, expected, nxt", [(0, -1, 1), (4, 4, 5), (2**31 - 1, -1, -(2**31)), (-2, -1, 0)]
)
def test_next_version(current: int, expected: int, nxt: int) -> None:
    assert next_version(current, expected, "/p") == nxt


def test_next_version_mismatch_names_both_versions() -> None:
    with pytest.raises(KeeperError, match="version of '/p' is 3, not the expected 2"):
        next_version(3, 2, "/p")


def test_snapshot_round_trip_keeps_everything(leader: Leader) -> None:
    leader.write(S1, *create("/s", data=b"data"))
    leader.write(S1, *create("/s/e", flags=3))
    leader.write(S1, rec.OpCode.SET_ACL, rec.SetACLRequest("/s/e0000000000", rec.READ_ACL_UNSAFE, -1))
    leader.write(S1, rec.OpCode.CREATE_TTL, rec.CreateTTLRequest("/t", b"", OPEN, 5, 100))
    payload = b"".join(snapshot_chunks(leader.tree, chunk_nodes=2))
    copy = tree_from_snapshot(payload)
    assert copy.digest() == leader.tree.digest()
    assert copy.last_zxid == leader.tree.last_zxid
    assert copy.ephemerals == leader.tree.ephemerals and copy.ttls == leader.tree.ttls
    assert copy.node("/s/e0000000000").acl == rec.READ_ACL_UNSAFE
    assert snapshot_node_count(payload) == len(copy) == len(leader.tree)
    # And the copy keeps working as the original would.
    follower = Leader(copy)
    follower.zxid = leader.zxid
    assert follower.write(S1, *create("/s/e", flags=2)).path == "/s/e0000000001"


@pytest.mark.parametrize("cut", [0, 7, 12, 30])
def test_truncated_snapshot_is_a_remote_error(leader: Leader, cut: int) -> None:
    payload = b"".join(snapshot_chunks(leader.tree))
    with pytest.raises(RemoteError):
        tree_from_snapshot(payload[:cut])
    with pytest.raises(RemoteError):  # every cut is inside the header (magic, zxid, ACLs, count)
        snapshot_node_count(payload[:cut])


def test_all_children_number_and_digest_changes(leader: Leader) -> None:
    for path in ("/n", "/n/a", "/n/a/b", "/n/c"):
        leader.write(S1, *create(path))
    assert leader.tree.all_children_number("/n") == 3
    before = leader.tree.digest()
    leader.write(S1, rec.OpCode.SET_DATA, rec.SetDataRequest("/n/c", b"z", -1))
    assert leader.tree.digest() != before


def test_pipelined_delete_of_child_then_parent(leader: Leader) -> None:
    leader.write(S1, *create("/p"))
    leader.write(S1, *create("/p/c"))
    leader.propose(S1, rec.OpCode.DELETE, rec.DeleteRequest("/p/c", -1))
    _, err = leader.propose(S1, rec.OpCode.DELETE, rec.DeleteRequest("/p", -1))
    assert err is None
    assert [r.err for r in leader.commit_all()] == [0, 0]


def test_failed_multi_restores_earlier_in_flight_records(leader: Leader) -> None:
    leader.write(S1, *create("/r"))
    leader.propose(S1, rec.OpCode.SET_DATA, rec.SetDataRequest("/r", b"1", 0))  # in flight: version 1
    ops = [
        (rec.OpCode.SET_DATA, rec.SetDataRequest("/r", b"2", 1)),
        (rec.OpCode.CHECK, rec.CheckVersionRequest("/nope", 0)),
    ]
    _, err = leader.propose(S1, rec.OpCode.MULTI, ops)
    assert err is not None
    _, err = leader.propose(S1, rec.OpCode.SET_DATA, rec.SetDataRequest("/r", b"3", 1))
    assert err is None, "the failed multi's change to /r must be rolled back to the earlier record"
    leader.commit_all()
    assert leader.tree.get_data("/r")[0] == b"3"


def test_leaves_share_one_read_only_children_dict(leader: Leader) -> None:
    """A leaf keeps no dict of its own (64 bytes a znode); a node gets one with its first child,
    also after its children all left, and in a tree loaded from a snapshot."""
    leader.write(S1, *create("/p"))
    leader.write(S1, *create("/p/a"))
    tree = leader.tree
    assert tree.node("/p/a").children is NO_CHILDREN and tree.node("/p").children == {"a": None}
    with pytest.raises(TypeError, match="add_child"):
        NO_CHILDREN["x"] = None
    leader.write(S1, rec.OpCode.DELETE, rec.DeleteRequest("/p/a", -1))
    leader.write(S1, *create("/p/b"))
    leader.write(S1, *create("/p/a/c"))  # no parent: refused, and nothing shared is touched
    assert tree.get_children("/p")[0] == ["b"] and not NO_CHILDREN
    copy = tree_from_snapshot(b"".join(snapshot_chunks(tree)))
    assert copy.node("/p/b").children is NO_CHILDREN and copy.digest() == tree.digest()


@pytest.mark.parametrize(
    "owner", [0, 0x1234, rec.CONTAINER_EPHEMERAL_OWNER, rec.ttl_to_ephemeral_owner(5000)]
)
@pytest.mark.parametrize("children", [0, 3])
def test_stat_bytes_packs_stat_fields(owner: int, children: int) -> None:
    node = Node(b"abc", rec.OPEN_ACL_UNSAFE, 5, 6, 7, 8, 2, 4, 1, owner, 9)
    for i in range(children):
        node.add_child(f"c{i}")
    assert node.stat_bytes() == struct.pack(">qqqqiiiqiiq", *node.stat_fields())
    assert node.stat() == rec.Stat(*node.stat_fields())


@pytest.mark.parametrize("indexed", [False, True])
def test_set_data_stat_leaves_what_apply_set_data_leaves(indexed: bool) -> None:
    """set_data_stat is apply_set_data without its ApplyResult: the same tree and the same
    Stat, and nothing at all (None) for a node that is not there."""
    trees = [DataTree(PathIndex() if indexed else None) for _ in range(2)]
    for tree in trees:
        tree.apply(
            rec.Txn(rec.TxnHeader(S1, 1, 1, 10, rec.OpCode.CREATE), rec.CreateTxn("/a", b"0", OPEN, False, 1))
        )
    result = trees[0].apply_set_data(2, 20, "/a", b"new", 1)
    stat = trees[1].set_data_stat(2, 20, "/a", b"new", 1)
    assert stat == result.stat_bytes() and rec.Stat.decode(stat).version == 1
    assert trees[1].get_data("/a") == trees[0].get_data("/a") and trees[1].last_zxid == 2
    assert trees[1].set_data_stat(3, 30, "/missing", b"x", 0) is None
    assert trees[1].last_zxid == 2
