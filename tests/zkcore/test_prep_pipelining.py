"""Property: prepping many writes ahead of applying them (a leader's pipeline) gives exactly the
txns and results of prepping each write after the previous one was applied."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from zkcore import _records as rec
from zkcore._datatree import DataTree
from zkcore._prep import Prep, Request

SESSIONS = (0x11, 0x22)
PATHS = ("/a", "/a/b", "/a/b/c", "/d")
# Changes aversion but keeps every permission, so later writes still have something to do.
OTHER_ACL = (rec.ACL(31, rec.Id("world", "anyone")), rec.ACL(1, rec.Id("ip", "127.0.0.1")))
OPEN = rec.OPEN_ACL_UNSAFE

paths = st.sampled_from(PATHS)
versions = st.integers(-1, 2)
data_ops = st.one_of(
    st.builds(
        lambda p, f: (rec.OpCode.CREATE, rec.CreateRequest(p, b"", OPEN, f)),
        paths,
        st.sampled_from([0, 0, 0, 1, 2, 3]),
    ),
    st.builds(lambda p: (rec.OpCode.CREATE, rec.CreateRequest(p, b"", OPEN, 0)), paths),
    st.builds(lambda p, v: (rec.OpCode.DELETE, rec.DeleteRequest(p, v)), paths, versions),
    st.builds(
        lambda p, d, v: (rec.OpCode.SET_DATA, rec.SetDataRequest(p, d, v)),
        paths,
        st.binary(max_size=3),
        versions,
    ),
    st.builds(lambda p, v: (rec.OpCode.CHECK, rec.CheckVersionRequest(p, v)), paths, versions),
)
single = st.one_of(
    data_ops,
    st.builds(lambda p, v: (rec.OpCode.SET_ACL, rec.SetACLRequest(p, OTHER_ACL, v)), paths, versions),
)
multi = st.lists(data_ops, min_size=1, max_size=4).map(lambda ops: (rec.OpCode.MULTI, ops))
session_ops = st.sampled_from(
    [(rec.OpCode.CLOSE_SESSION, None), (rec.OpCode.CREATE_SESSION, rec.CreateSessionTxn(3000))]
)
# Session 0x11 lives throughout; 0x22 may close and come back, taking its ephemerals with it.
writes = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(SESSIONS), single),
        st.tuples(st.sampled_from(SESSIONS), single),
        st.tuples(st.sampled_from(SESSIONS), single),
        st.tuples(st.just(0x11), multi),
        st.tuples(st.just(0x22), session_ops),
    ),
    max_size=40,
)


def run(ops: list[tuple[int, tuple[int, Any]]], applies: list[int]) -> tuple[list[Any], list[Any], str]:
    """Prep ops in order; before prepping op i, apply the oldest applies[i] queued txns, the
    way commits arrive at a leader while later proposals are still in flight."""
    tree = DataTree()
    prep = Prep(tree)
    txns, results, queue = [], [], []

    def apply_oldest() -> None:
        txn = queue.pop(0)
        results.append(tree.apply(txn))
        prep.applied(txn.zxid)

    for zxid, ((session, (opcode, body)), n) in enumerate(zip(ops, applies, strict=True), start=1):
        for _ in range(min(n, len(queue))):
            apply_oldest()
        txn, _ = prep.prep(Request(session, zxid, opcode, body), zxid, zxid)
        txns.append(txn)
        queue.append(txn)
    while queue:
        apply_oldest()
    return txns, [(r.err, r.path, r.stat, r.multi, r.events) for r in results], tree.digest()


@settings(max_examples=2000, deadline=None)
@given(ops=writes, data=st.data())
def test_pipelined_prep_matches_one_at_a_time(
    ops: list[tuple[int, tuple[int, Any]]], data: st.DataObject
) -> None:
    setup = [(s, (rec.OpCode.CREATE_SESSION, rec.CreateSessionTxn(3000))) for s in SESSIONS]
    ops = setup + ops
    applies = data.draw(st.lists(st.integers(0, 3), min_size=len(ops), max_size=len(ops)))
    assert run(ops, applies) == run(ops, [1] * len(ops))


def test_a_second_close_in_flight_frees_the_sessions_ephemerals_once() -> None:
    """A session's expiry and its client's own close may both be in flight. The second must not
    count the ephemerals the tree still holds for it again: their parent would look empty, and
    a delete of it (which still has a child) would be prepped as fine."""
    ops = [
        (0x11, (rec.OpCode.CREATE_SESSION, rec.CreateSessionTxn(3000))),
        (0x22, (rec.OpCode.CREATE_SESSION, rec.CreateSessionTxn(3000))),
        (0x11, (rec.OpCode.CREATE, rec.CreateRequest("/p", b"", OPEN, 0))),
        (0x11, (rec.OpCode.CREATE, rec.CreateRequest("/p/c", b"", OPEN, 0))),
        (0x22, (rec.OpCode.CREATE, rec.CreateRequest("/p/e", b"", OPEN, 1))),
        (0x22, (rec.OpCode.CLOSE_SESSION, None)),
        (0x22, (rec.OpCode.CLOSE_SESSION, None)),
        (0x11, (rec.OpCode.DELETE, rec.DeleteRequest("/p", -1))),
    ]
    pipelined = run(ops, [1, 1, 1, 1, 1, 1, 0, 0])  # both closes in flight, and the delete
    assert pipelined == run(ops, [1] * len(ops))
    txns, results, _ = pipelined
    assert txns[6].body == rec.CloseSessionTxn(())
    assert results[-1][0] == rec.Code.NOT_EMPTY
