"""DataTree.replay and the columnar snapshot load against the one-txn-at-a-time path: the same
txns, replayed from decoded columns (by the C decoder and by its twin) or applied one by one,
must leave the same tree, field for field, in the same order, and raise the same errors."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import native
from tests.zkcore.test_prep_pipelining import SESSIONS, writes
from zkcore import DataTree, Prep, Request, limits, snapshot_chunks, tree_from_snapshot
from zkcore import _records as rec
from zkcore._errors import KeeperError, RemoteError
from zkcore._restore import REPLAY_OTHER, decode_txns, scan_snapshot_nodes

IMPLS = [native.python_twin()] + ([native.compiled()] if native.compiled() is not None else [])
impls = pytest.mark.parametrize("impl", IMPLS, ids=lambda impl: impl.name)

# --- random txns, including ones prep would never make ----------------------------------------

PATHS = ["/a", "/a/b", "/a/b/c", "/b"]
ODD_PATHS = ["/b/x", "/zookeeper/q", "/", "rel", "/a/\0", "/é", "/é/ü"]
ACLS = [
    rec.OPEN_ACL_UNSAFE,
    rec.READ_ACL_UNSAFE,
    (rec.ACL(31, rec.Id("digest", "u:p")), rec.ACL(1, rec.Id("world", "anyone"))),
    (),
]
CLIENTS = [0, 0x100, 0x200, -5]
TTLS = [1, 100, limits.ttl_ms_max]  # apply asserts on others: prep never makes them

paths = st.one_of(st.sampled_from(PATHS), st.sampled_from(PATHS), st.sampled_from(ODD_PATHS))
acls = st.sampled_from(ACLS)
datas = st.binary(max_size=6)
small = st.integers(-2, 6)
OP = rec.OpCode
bodies = st.one_of(
    st.tuples(st.sampled_from([OP.CREATE, OP.CREATE2]), st.builds(rec.CreateTxn, paths, datas, acls, st.booleans(), small)),
    st.tuples(st.just(OP.CREATE_CONTAINER), st.builds(rec.CreateContainerTxn, paths, datas, acls, small)),
    st.tuples(st.just(OP.CREATE_TTL), st.builds(rec.CreateTTLTxn, paths, datas, acls, small, st.sampled_from(TTLS))),
    st.tuples(st.sampled_from([OP.DELETE, OP.DELETE_CONTAINER]), st.builds(rec.DeleteTxn, paths)),
    st.tuples(st.just(OP.SET_DATA), st.builds(rec.SetDataTxn, paths, datas, small)),
    st.tuples(st.just(OP.SET_ACL), st.builds(rec.SetACLTxn, paths, acls, small)),
    st.tuples(st.just(OP.CHECK), st.builds(rec.CheckVersionTxn, paths, small)),
    st.tuples(st.just(OP.ERROR), st.builds(rec.ErrorTxn, st.sampled_from([-101, -110]))),
    st.tuples(st.just(OP.CREATE_SESSION), st.builds(rec.CreateSessionTxn, st.integers(0, 40000))),
    st.tuples(st.just(OP.CLOSE_SESSION), st.builds(rec.CloseSessionTxn, st.lists(paths, max_size=3).map(tuple))),
    st.tuples(st.just(OP.CLOSE_SESSION), st.none()),
)  # fmt: skip


@st.composite
def txn_payloads(draw: Any, garbage: bool = False) -> list[bytes]:
    """Encoded txns in order, with zxids that mostly grow; with garbage, a few raw byte strings."""
    payloads = []
    for kind, body in draw(st.lists(bodies, max_size=40)):
        header = rec.TxnHeader(
            draw(st.sampled_from(CLIENTS)), 7, draw(st.integers(1, 60)), draw(st.integers(-1, 10**13)), kind
        )
        payloads.append(rec.Txn(header, body).encode())
        if garbage and draw(st.integers(0, 9)) == 0:
            payloads.append(draw(st.binary(max_size=48)))
    return payloads


def prepped_payloads(ops: list[tuple[int, tuple[int, Any]]]) -> list[bytes]:
    """The txns a leader would log for ops: sessions first, then each write prepped and applied."""
    tree = DataTree()
    prep = Prep(tree)
    setup = [(s, (OP.CREATE_SESSION, rec.CreateSessionTxn(3000))) for s in SESSIONS]
    payloads = []
    for zxid, (session, (opcode, body)) in enumerate(setup + ops, start=1):
        txn, _ = prep.prep(Request(session, zxid, opcode, body), zxid, zxid * 10)
        tree.apply(txn)
        prep.applied(zxid)
        payloads.append(txn.encode())
    return payloads


# --- the state both paths must agree on ---------------------------------------------------------


def tree_state(tree: DataTree) -> tuple[Any, ...]:
    """Everything a tree holds, orders included."""
    nodes = [
        (path, tree.node_data(path, node), node.acl, node.czxid, node.mzxid, node.ctime, node.mtime, node.version,
         node.cversion, node.aversion, node.ephemeral_owner, node.pzxid, tree.child_names(path, node))
        for path, node in tree.nodes.items()
    ]  # fmt: skip
    ephemerals = [(owner, list(owned)) for owner, owned in tree.ephemerals.items()]
    return (
        nodes, ephemerals, list(tree.containers), list(tree.ttls), list(tree.sessions.items()),
        tree.last_zxid, list(tree._acls),
    )  # fmt: skip


def index_state(tree: DataTree) -> list[Any] | None:
    index: Any = tree.index
    if index is None:
        return None
    assert len(index) == len(tree.nodes)
    return [(path, index.get(path), index.children(path)) for path in tree.nodes]


def apply_each(tree: DataTree, payloads: list[bytes]) -> BaseException | None:
    """The old path: decode and apply one txn at a time; the first error stops it."""
    try:
        for payload in payloads:
            tree.apply(rec.Txn.decode(payload))
    except (RemoteError, KeeperError) as e:  # garbage, or a create of a path with no parent
        return e
    return None


def replay_all(tree: DataTree, payloads: list[bytes], impl: Any, batch: int = 7) -> BaseException | None:
    try:
        for start in range(0, len(payloads), batch):
            tree.replay(impl.decode_txns(payloads[start : start + batch]))
    except (RemoteError, KeeperError) as e:
        return e
    return None


def assert_same_run(impl: Any, payloads: list[bytes], indexed: bool = False) -> None:
    trees = [DataTree(impl.PathIndex() if indexed else None) for _ in range(2)]
    old_error = apply_each(trees[0], payloads)
    new_error = replay_all(trees[1], payloads, impl)
    assert repr(new_error) == repr(old_error)
    assert tree_state(trees[1]) == tree_state(trees[0])
    assert index_state(trees[1]) == index_state(trees[0])


# --- replay -----------------------------------------------------------------------------------


@impls
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads=txn_payloads())
def test_replay_leaves_the_tree_apply_leaves(impl: Any, payloads: list[bytes]) -> None:
    assert_same_run(impl, payloads)


@impls
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads=txn_payloads(garbage=True))
def test_replay_stops_at_garbage_where_apply_does(impl: Any, payloads: list[bytes]) -> None:
    assert_same_run(impl, payloads)


@impls
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads=txn_payloads())
def test_replay_keeps_an_attached_index_in_step(impl: Any, payloads: list[bytes]) -> None:
    assert_same_run(impl, payloads, indexed=True)


@impls
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=writes)
def test_replay_of_prepped_writes(impl: Any, ops: list[tuple[int, tuple[int, Any]]]) -> None:
    assert_same_run(impl, prepped_payloads(ops))


def txn(zxid: int, kind: int, body: Any, client: int = 0x100) -> bytes:
    return rec.Txn(rec.TxnHeader(client, zxid, zxid, 1000 + zxid, kind), body).encode()


def create(zxid: int, path: str, parent_cversion: int = 1, ephemeral: bool = False) -> bytes:
    return txn(zxid, OP.CREATE, rec.CreateTxn(path, b"d", rec.OPEN_ACL_UNSAFE, ephemeral, parent_cversion))


CASES = {
    "delete of a node with children": [create(1, "/a"), create(2, "/a/b"), txn(3, OP.DELETE, rec.DeleteTxn("/a"))],
    "create of an existing node": [create(1, "/a"), create(2, "/a", 5)],
    "closeSession of an ephemeral with a child": [create(1, "/a", ephemeral=True), create(2, "/a/b"),
                                                  txn(3, OP.CLOSE_SESSION, rec.CloseSessionTxn(("/a",)))],
    "create under a missing parent": [create(1, "/a/b"), create(2, "/a")],
    "cversion never moves back": [create(1, "/a"), create(2, "/a/b", 3), create(3, "/a/c", 2)],
    "setData and delete of missing nodes": [txn(1, OP.SET_DATA, rec.SetDataTxn("/a", b"", 1)),
                                            txn(2, OP.DELETE, rec.DeleteTxn("/a"))],
    "delete then create again": [create(1, "/a"), create(2, "/a/b"), txn(3, OP.DELETE, rec.DeleteTxn("/a/b")),
                                 create(4, "/a/b", 2), txn(5, OP.DELETE_CONTAINER, rec.DeleteTxn("/a/b"))],
    "ephemerals go with their session": [txn(1, OP.CREATE_SESSION, rec.CreateSessionTxn(500)),
                                         create(2, "/e", ephemeral=True), txn(3, OP.CLOSE_SESSION, None)],
    "containers and TTLs": [txn(1, OP.CREATE_CONTAINER, rec.CreateContainerTxn("/c", b"", rec.OPEN_ACL_UNSAFE, 1)),
                            txn(2, OP.CREATE_TTL, rec.CreateTTLTxn("/t", b"", rec.OPEN_ACL_UNSAFE, 1, 50)),
                            txn(3, OP.DELETE, rec.DeleteTxn("/c"))],
    "zxids that go back": [create(9, "/a"), create(3, "/b"), txn(2, OP.ERROR, rec.ErrorTxn(-110))],
    "garbage stops both": [create(1, "/a"), b"\x00" * 40, create(3, "/b")],
}  # fmt: skip


@impls
@pytest.mark.parametrize("payloads", CASES.values(), ids=CASES.keys())
@pytest.mark.parametrize("indexed", [False, True], ids=["plain", "indexed"])
def test_replay_cases(impl: Any, payloads: list[bytes], indexed: bool) -> None:
    assert_same_run(impl, payloads, indexed)


def test_replay_takes_the_common_kinds_inline() -> None:
    header = rec.TxnHeader(0x100, 1, 5, 99, OP.CREATE)
    payloads = [
        rec.Txn(header, rec.CreateTxn("/a", b"x", rec.OPEN_ACL_UNSAFE, True, 1)).encode(),
        rec.Txn(rec.TxnHeader(0x100, 2, 6, 100, OP.SET_DATA), rec.SetDataTxn("/a", b"y", 1)).encode(),
        rec.Txn(rec.TxnHeader(0x100, 3, 7, 101, OP.MULTI), rec.MultiTxn(())).encode(),
    ]
    columns = decode_txns(payloads)
    assert columns.kinds[:2] != [REPLAY_OTHER] * 2 and columns.kinds[2] == REPLAY_OTHER
    assert columns.owners[0] == 0x100 and columns.numbers[1] == 1
    tree = DataTree()
    tree.replay(columns)
    assert tree.node("/a").data == b"y" and tree.ephemerals == {0x100: {"/a": None}} and tree.last_zxid == 7


# --- snapshots --------------------------------------------------------------------------------


@impls
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payloads=txn_payloads())
def test_snapshot_load_gives_back_the_tree(impl: Any, payloads: list[bytes]) -> None:
    tree = DataTree()
    apply_each(tree, payloads)
    snapshot = b"".join(snapshot_chunks(tree, chunk_nodes=3))
    copy = tree_from_snapshot(snapshot, scan=impl.scan_snapshot_nodes)
    assert tree_state(copy)[:-1] == tree_state(tree)[:-1]  # ACLs intern in snapshot order
    assert b"".join(snapshot_chunks(copy)) == snapshot
    # An index filled as the snapshot loads holds what attach_index puts in it.
    loaded = tree_from_snapshot(snapshot, impl.PathIndex(), scan=impl.scan_snapshot_nodes)
    attached = tree_from_snapshot(snapshot, scan=impl.scan_snapshot_nodes)
    attached.attach_index(impl.PathIndex())
    assert index_state(loaded) == index_state(attached)


def test_snapshot_scanners_agree_on_a_prepped_tree() -> None:
    tree = DataTree()
    apply_each(
        tree, prepped_payloads([(0x11, (OP.CREATE, rec.CreateRequest("/a", b"", rec.OPEN_ACL_UNSAFE, 3)))])
    )
    snapshot = b"".join(snapshot_chunks(tree))
    trees = [tree_from_snapshot(snapshot, scan=impl.scan_snapshot_nodes) for impl in IMPLS]
    trees.append(tree_from_snapshot(snapshot, scan=scan_snapshot_nodes))
    assert len({repr(tree_state(t)) for t in trees}) == 1


@pytest.mark.parametrize("indexed", [False, True], ids=["plain", "indexed"])
def test_a_snapshot_chunk_of_big_znodes_ends_at_chunk_bytes(indexed: bool) -> None:
    """Chunks of a snapshot are bounded in bytes as well as in nodes: 4,096 znodes of 1 MB in
    one chunk, copied on the way, took a snapshot's forked child past its host's memory."""
    tree = DataTree(index=IMPLS[-1].PathIndex()) if indexed else DataTree()
    big = [
        (0x11, (OP.CREATE, rec.CreateRequest(f"/n{i}", bytes(50_000), rec.OPEN_ACL_UNSAFE, 0)))
        for i in range(9)
    ]
    assert apply_each(tree, prepped_payloads(big)) is None
    chunks = list(snapshot_chunks(tree, chunk_bytes=120_000))
    assert len(chunks) >= 4  # 9 x 50 KB in chunks that stop once past 120 KB, and the sessions
    assert all(len(chunk) < 120_000 + 50_200 for chunk in chunks)
    assert b"".join(chunks) == b"".join(snapshot_chunks(tree))
    assert tree_state(tree_from_snapshot(b"".join(chunks)))[:-1] == tree_state(tree)[:-1]
