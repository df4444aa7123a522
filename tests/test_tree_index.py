"""The tree mirrors every change into the native path index (and its twin): after any sequence
of writes, and after a snapshot load, the index answers exactly what the tree holds."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from hypothesis import given, settings

import native
from tests.zkcore.test_prep_pipelining import SESSIONS, writes
from zkcore import DataTree, Prep, Request, snapshot_chunks, tree_from_snapshot
from zkcore import _records as rec
from zkcore._datatree import InIndex
from zkcore._jute import Reader

IMPLS = [native.python_twin()] + ([native.compiled()] if native.compiled() is not None else [])


def build(impl: Any, ops: list[tuple[int, tuple[int, Any]]]) -> DataTree:
    tree = DataTree(index=impl.PathIndex())
    prep = Prep(tree)
    setup = [(s, (rec.OpCode.CREATE_SESSION, rec.CreateSessionTxn(3000))) for s in SESSIONS]
    for zxid, (session, (opcode, body)) in enumerate(setup + ops, start=1):
        txn, _ = prep.prep(Request(session, zxid, opcode, body), zxid, zxid * 10)
        tree.apply(txn)
        prep.applied(zxid)
    return tree


def assert_index_matches(tree: DataTree, index: Any) -> None:
    assert len(index) == len(tree.nodes)
    names: dict[str, list[str]] = {path: [] for path in tree.nodes}
    for path in tree.nodes:
        if path != "/":
            parent, name = path.rsplit("/", 1)
            names[parent or "/"].append(name)
    for path, node in tree.nodes.items():
        assert index.get(path) == (tree.node_data(path, node), node.stat_bytes()), path
        assert sorted(index.children(path)) == sorted(names[path]), path
        assert len(node.children) == len(names[path]), path


def frame(xid: int, opcode: int, path: str, watch: bool = False) -> bytes:
    body = rec.RequestHeader(xid, opcode).encode() + rec.PathWatchRequest(path, watch).encode()
    return struct.pack(">i", len(body)) + body


@pytest.mark.parametrize("impl", IMPLS, ids=lambda i: i.name)
@settings(max_examples=60, deadline=None)
@given(ops=writes)
def test_index_mirrors_tree(impl: Any, ops: list[tuple[int, tuple[int, Any]]]) -> None:
    tree = build(impl, ops)
    assert_index_matches(tree, tree.index)
    copy = tree_from_snapshot(b"".join(snapshot_chunks(tree)), index=impl.PathIndex())
    assert_index_matches(copy, copy._index)


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
    assert list(status) == [0, 1, 0, 0, 2, 0]
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
    assert answers[3] == (rec.ReplyHeader(4, 77, -101), b"")
    assert answers[4] == (rec.ReplyHeader(6, 77, 0), rec.StatResponse(tree.node("/locked").stat()).encode())


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
