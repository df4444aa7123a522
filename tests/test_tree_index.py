"""A tree with an index keeps its znodes in it (native.PathIndex, or its twin) and is the same
tree as one without: after any sequence of writes, and after a snapshot load, each answers
exactly what the other does."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import native
from tests.zkcore.test_prep_pipelining import OPEN, PATHS, SESSIONS, multi, session_ops, single
from zkcore import DataTree, Prep, Request, snapshot_chunks, tree_from_snapshot
from zkcore import _records as rec
from zkcore._datatree import InIndex
from zkcore._jute import Reader

IMPLS = [native.python_twin()] + ([native.compiled()] if native.compiled() is not None else [])


# The pipelining test's writes, with containers and TTL nodes (which a Stat reports without
# their owner) beside the creates, ephemeral and sequential, setData, delete, setACL and multi.
kinds = st.one_of(
    single,
    st.builds(lambda p: (rec.OpCode.CREATE_CONTAINER, rec.CreateRequest(p, b"box", OPEN, 4)), st.sampled_from(PATHS)),
    st.builds(lambda p: (rec.OpCode.CREATE_TTL, rec.CreateTTLRequest(p, b"t", OPEN, 5, 100)), st.sampled_from(PATHS)),
)  # fmt: skip
writes = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(SESSIONS), kinds),
        st.tuples(st.sampled_from(SESSIONS), kinds),
        st.tuples(st.just(0x11), multi),
        st.tuples(st.just(0x22), session_ops),
    ),
    max_size=40,
)


def build(impl: Any, ops: list[tuple[int, tuple[int, Any]]]) -> DataTree:
    return run(DataTree(index=impl.PathIndex()), ops)[0]


def run(tree: DataTree, ops: list[tuple[int, tuple[int, Any]]]) -> tuple[DataTree, list[Any]]:
    """ops prepped and applied on tree, one at a time; what each txn and its apply gave."""
    prep = Prep(tree)
    setup = [(s, (rec.OpCode.CREATE_SESSION, rec.CreateSessionTxn(3000))) for s in SESSIONS]
    seen = []
    for zxid, (session, (opcode, body)) in enumerate(setup + ops, start=1):
        txn, _ = prep.prep(Request(session, zxid, opcode, body), zxid, zxid * 10)
        result = tree.apply(txn)
        prep.applied(zxid)
        seen.append((txn.encode(), result.err, result.path, result.events, result.stat, result.multi))
    return tree, seen


def state(tree: DataTree) -> Any:
    """What a tree holds, each node's children as a set (an index keeps them in its own order)."""
    nodes = {
        path: (tree.node_data(path, node), node.acl, node.stat(), node.cversion, node.ephemeral_owner,
               sorted(tree.child_names(path, node)))
        for path, node in tree.nodes.items()
    }  # fmt: skip
    return (
        nodes, tree.ephemerals, tree.containers, tree.ttls, tree.sessions, tree.last_zxid, tree.digest(),
        tree.approximate_data_size(),
    )  # fmt: skip


def frame(xid: int, opcode: int, path: str, watch: bool = False) -> bytes:
    body = rec.RequestHeader(xid, opcode).encode() + rec.PathWatchRequest(path, watch).encode()
    return struct.pack(">i", len(body)) + body


@pytest.mark.parametrize("impl", IMPLS, ids=lambda i: i.name)
@settings(max_examples=150, deadline=None)
@given(ops=writes)
def test_a_tree_in_its_index_is_the_tree_without_one(
    impl: Any, ops: list[tuple[int, tuple[int, Any]]]
) -> None:
    """The same writes, prepped against each tree and applied to it, give the same txns and
    results (errors, events, Stats) and leave the same tree; so do their snapshots loaded with
    and without an index, and a tree without one given an index afterwards."""
    plain, plain_seen = run(DataTree(), ops)
    indexed, indexed_seen = run(DataTree(index=impl.PathIndex()), ops)
    assert indexed_seen == plain_seen
    assert state(indexed) == state(plain)
    assert len(indexed) == len(plain) == len(list(indexed.nodes))
    for snapshot in (b"".join(snapshot_chunks(plain)), b"".join(snapshot_chunks(indexed))):
        assert state(tree_from_snapshot(snapshot, index=impl.PathIndex())) == state(plain)
        assert state(tree_from_snapshot(snapshot)) == state(plain)
    plain.attach_index(impl.PathIndex())
    assert state(plain) == state(indexed)


@pytest.mark.parametrize("impl", IMPLS, ids=lambda i: i.name)
def test_read_batch_answers_like_the_slow_path(impl: Any) -> None:
    ops = [
        (SESSIONS[0], (rec.OpCode.CREATE, rec.CreateRequest("/a", b"hello", rec.OPEN_ACL_UNSAFE, 0))),
        (SESSIONS[0], (rec.OpCode.CREATE, rec.CreateRequest("/a/b", b"", rec.OPEN_ACL_UNSAFE, 1))),
        (SESSIONS[0], (rec.OpCode.CREATE, rec.CreateRequest("/locked", b"s", (rec.ACL(31, rec.Id("ip", "10.0.0.1")),), 0))),
    ]  # fmt: skip
    tree = build(impl, ops)
    batch = b"".join(
        [frame(1, rec.OpCode.GET_DATA, "/a"), frame(2, rec.OpCode.EXISTS, "/a/b", True),
         frame(3, rec.OpCode.GET_CHILDREN2, "/a"), frame(4, rec.OpCode.GET_DATA, "/nope"),
         frame(5, rec.OpCode.GET_DATA, "/locked"), frame(6, rec.OpCode.EXISTS, "/locked")]
    )  # fmt: skip
    replies, status = tree.index.read_batch(batch, 77)
    assert list(status) == [0, 1, 0, 0, 2, 2]  # /locked: the slow path checks READ, exists' too
    r = Reader(replies)
    answers = []
    while r.remaining():
        body = Reader(r.buf[r.pos + 4 : r.pos + 4 + struct.unpack_from(">i", r.buf, r.pos)[0]])
        r.pos += 4 + len(body.buf)
        answers.append((rec.ReplyHeader.read(body), body.rest()))
    data, stat = tree.get_data("/a")
    children, stat_a = tree.get_children("/a")
    assert answers[0] == (rec.ReplyHeader(1, 77, 0), rec.GetDataResponse(data, stat).encode())
    assert answers[1] == (rec.ReplyHeader(2, 77, 0), rec.StatResponse(tree.node("/a/b").stat()).encode())
    assert answers[2] == (
        rec.ReplyHeader(3, 77, 0),
        rec.GetChildren2Response(tuple(children), stat_a).encode(),
    )
    assert answers[3] == (rec.ReplyHeader(4, 77, -101), b"") and len(answers) == 4


@pytest.mark.parametrize("impl", IMPLS, ids=lambda i: i.name)
def test_a_znodes_data_and_children_are_kept_once_by_the_index(impl: Any) -> None:
    """With an index, a node holds only its data's length and its number of children, however
    the tree came to be: by apply, by attaching an index after a replay, or by loading a
    snapshot with one."""
    ops = [
        (SESSIONS[0], (rec.OpCode.CREATE, rec.CreateRequest("/a", b"hello", rec.OPEN_ACL_UNSAFE, 0))),
        (SESSIONS[0], (rec.OpCode.CREATE, rec.CreateRequest("/a/b", bytes(5000), rec.OPEN_ACL_UNSAFE, 1))),
        (SESSIONS[0], (rec.OpCode.SET_DATA, rec.SetDataRequest("/a", b"again!", -1))),
        (SESSIONS[1], (rec.OpCode.CREATE, rec.CreateRequest("/e", b"mine", rec.OPEN_ACL_UNSAFE, 1))),
    ]  # fmt: skip
    built = build(impl, ops)
    snapshot = b"".join(snapshot_chunks(built))
    loaded = tree_from_snapshot(snapshot, index=impl.PathIndex())
    attached = tree_from_snapshot(snapshot)
    assert all(isinstance(node.data, bytes) for node in attached.nodes.values())
    attached.attach_index(impl.PathIndex())
    for tree in (built, loaded, attached):
        for path, node in tree.nodes.items():
            assert isinstance(node.data, InIndex) and isinstance(node.children, InIndex), path
            assert len(node.data) == len(tree.node_data(path, node))
            assert len(node.children) == len(tree.child_names(path, node))
        assert sorted(tree.get_children("/")[0]) == ["a", "e", "zookeeper"]
        assert tree.get_children("/a")[0] == ["b"]
        assert tree.get_data("/a")[0] == b"again!"
        assert tree.get_data("/a/b")[0] == bytes(5000)
        assert tree.get_data("/e")[0] == b"mine"
        assert tree.node("/a").stat().data_length == 6
        assert b"".join(snapshot_chunks(tree)) == snapshot
        assert tree.digest() == built.digest()
