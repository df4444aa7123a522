"""Write order, ephemerals, sequential names and watch order, as tables of hand-written histories."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from checker import (
    CheckResult,
    check_ephemerals,
    check_sequential_nodes,
    check_watch_order,
    check_write_order,
)
from checker.history import Kind, Op
from tests.checker.build import UNKNOWN, history, indices, op, read, write

Check = Callable[[Sequence[Op]], CheckResult]
Z = 0x100000000
S1, S2 = 0x51, 0x52


def eph(process: int, path: str, start: float, end: float, session: int = S1, **fields: Any) -> Op:
    return op(Kind.CREATE_EPHEMERAL, process, path, start, end, session=session, path=path, **fields)


def close(process: int, start: float, end: float, session: int = S1, **fields: Any) -> Op:
    return op(Kind.CLOSE_SESSION, process, "", start, end, session=session, **fields)


def exists(process: int, path: str, start: float, end: float, there: bool = True, **fields: Any) -> Op:
    return op(Kind.EXISTS, process, path, start, end, exists=there, **fields)


def seq(process: int, name: str, start: float, end: float, **fields: Any) -> Op:
    return op(Kind.CREATE_SEQ, process, "/s/n-", start, end, path=name, **fields)


def event(process: int, path: str, at: float, kind: str = "NodeDataChanged", **fields: Any) -> Op:
    return op(Kind.WATCH_EVENT, process, path, at, at, event=kind, **fields)


CASES: list[tuple[str, Check, list[Op], set[int] | None]] = [
    # write order
    ("zxids follow real time", check_write_order, history(write(1, "/a", "1", 0, 1, zxid=Z + 1), write(2, "/b", "1", 2, 3, zxid=Z + 2)), None),
    ("overlapping changes in any order", check_write_order, history(write(1, "/a", "1", 0, 3, zxid=Z + 2), write(2, "/b", "1", 1, 2, zxid=Z + 1)), None),
    ("zxids against real time", check_write_order, history(write(1, "/a", "1", 0, 1, zxid=Z + 2), write(2, "/b", "1", 2, 3, zxid=Z + 1)), {0, 1}),
    ("one zxid twice", check_write_order, history(write(1, "/a", "1", 0, 3, zxid=Z + 2), write(2, "/b", "1", 1, 2, zxid=Z + 2)), {0, 1}),
    ("sync read older than a done change", check_write_order, history(write(1, "/a", "1", 0, 1, zxid=Z + 4), read(2, "/b", "0", 2, 3, zxid=Z + 3, sync=True)), {0, 1}),
    ("plain read may be stale", check_write_order, history(write(1, "/a", "1", 0, 1, zxid=Z + 4), read(2, "/b", "0", 2, 3, zxid=Z + 3)), None),
    # ephemerals
    ("gone after close", check_ephemerals, history(eph(1, "/e/1", 0, 1), close(1, 2, 3), exists(2, "/e/1", 4, 5, there=False, sync=True)), None),
    ("seen before close", check_ephemerals, history(eph(1, "/e/1", 0, 1), exists(2, "/e/1", 1.5, 2.5, sync=True, owner=S1), close(1, 2, 3)), None),
    ("seen after close by a synced read", check_ephemerals, history(eph(1, "/e/1", 0, 1), close(1, 2, 3), exists(2, "/e/1", 4, 5, sync=True, owner=S1)), {0, 1, 2}),
    ("seen in a listing after expiry", check_ephemerals, history(eph(1, "/e/1", 0, 1), op(Kind.SESSION_EXPIRED, 1, "", 2, 3, session=S1), op(Kind.READ_CHILDREN, 2, "/e", 4, 5, children=("1",), sync=True)), {0, 1, 2}),
    ("stale plain read may still see it", check_ephemerals, history(eph(1, "/e/1", 0, 1), close(1, 2, 3), exists(2, "/e/1", 4, 5, owner=S1)), None),
    ("state after the closing txn sees it", check_ephemerals, history(eph(1, "/e/1", 0, 1), close(1, 2, 3, zxid=Z + 9), exists(2, "/e/1", 4, 5, owner=S1, zxid=Z + 9)), {0, 1, 2}),
    ("someone else's znode at the path", check_ephemerals, history(eph(1, "/e/1", 0, 1), close(1, 2, 3), eph(2, "/e/1", 3.5, 3.8, session=S2), exists(3, "/e/1", 4, 5, sync=True, owner=S2)), None),
    ("unacknowledged close", check_ephemerals, history(eph(1, "/e/1", 0, 1), close(1, 2, 3, status=UNKNOWN), exists(2, "/e/1", 4, 5, sync=True, owner=S1)), None),
    ("created after the session ended", check_ephemerals, history(close(1, 0, 1), eph(1, "/e/1", 2, 3)), {0, 1}),
    # sequential nodes
    ("numbers grow", check_sequential_nodes, history(seq(1, "/s/n-0000000001", 0, 1, zxid=Z + 1), seq(2, "/s/n-0000000002", 2, 3, zxid=Z + 2)), None),
    ("a name twice", check_sequential_nodes, history(seq(1, "/s/n-0000000001", 0, 1), seq(2, "/s/n-0000000001", 2, 3)), {0, 1}),
    ("numbers against zxids", check_sequential_nodes, history(seq(1, "/s/n-0000000002", 0, 3, zxid=Z + 1), seq(2, "/s/n-0000000001", 1, 2, zxid=Z + 2)), {0, 1}),
    ("numbers against real time", check_sequential_nodes, history(seq(1, "/s/n-0000000002", 0, 1), seq(2, "/s/n-0000000001", 2, 3)), {0, 1}),
    ("overlapping creates in any order", check_sequential_nodes, history(seq(1, "/s/n-0000000002", 0, 3), seq(2, "/s/n-0000000001", 1, 2)), None),
    ("parents are independent", check_sequential_nodes, history(seq(1, "/s/n-0000000002", 0, 1), op(Kind.CREATE_SEQ, 2, "/t/n-", 2, 3, path="/t/n-0000000001")), None),
    ("a name without a number", check_sequential_nodes, history(seq(1, "/s/n-", 0, 1)), {0}),
    # watch order
    ("event before the read that shows it", check_watch_order, history(read(1, "/a", "1", 0, 1, watch=True, mzxid=Z + 1), event(1, "/a", 2), read(1, "/a", "2", 3, 4, mzxid=Z + 2)), None),
    ("read shows the change, no event yet", check_watch_order, history(read(1, "/a", "1", 0, 1, watch=True, mzxid=Z + 1), read(1, "/a", "2", 3, 4, mzxid=Z + 2), event(1, "/a", 5)), {0, 1}),
    ("unchanged reads need no event", check_watch_order, history(read(1, "/a", "1", 0, 1, watch=True, mzxid=Z + 1), read(1, "/a", "1", 3, 4, mzxid=Z + 1)), None),
    ("another session's watch", check_watch_order, history(read(1, "/a", "1", 0, 1, watch=True, mzxid=Z + 1), read(2, "/a", "2", 3, 4, mzxid=Z + 2)), None),
    ("one-shot: re-armed by the next read", check_watch_order, history(read(1, "/a", "1", 0, 1, watch=True, version=1), event(1, "/a", 2), read(1, "/a", "2", 3, 4, watch=True, version=2), read(1, "/a", "3", 5, 6, version=3)), {2, 3}),
    ("child watch", check_watch_order, history(op(Kind.READ_CHILDREN, 1, "/e", 0, 1, children=("a",), watch=True), op(Kind.READ_CHILDREN, 1, "/e", 2, 3, children=("a", "b"))), {0, 1}),
    ("child event", check_watch_order, history(op(Kind.READ_CHILDREN, 1, "/e", 0, 1, children=("a",), watch=True), event(1, "/e", 1.5, "NodeChildrenChanged"), op(Kind.READ_CHILDREN, 1, "/e", 2, 3, children=("a", "b"))), None),
    ("exists watch sees a create", check_watch_order, history(exists(1, "/a", 0, 1, there=False, watch=True), read(1, "/a", "1", 2, 3)), {0, 1}),
]  # fmt: skip


@pytest.mark.parametrize("name, check, ops, culprits", CASES, ids=[case[0] for case in CASES])
def test_znode_rules(name: str, check: Check, ops: list[Op], culprits: set[int] | None) -> None:
    result = check(ops)
    if culprits is None:
        assert result.ok, result.counterexample()
    else:
        assert result.violations, name
        assert indices(result) == culprits, result.counterexample()


def test_an_event_stamped_while_the_watching_read_was_out_may_be_its_own() -> None:
    """The client stamps replies and events on different threads: an event inside the watching
    read's interval may have come after its reply, so the new watch is not held against later
    reads; one stamped before the read started is not."""
    from checker import Kind, Op, Status, check_watch_order

    def read(start: float, end: float, mzxid: int, watch: bool) -> Op:
        return Op(
            1, Kind.READ, "/x", Status.OK, start, end, session=1, value=str(mzxid), mzxid=mzxid, watch=watch
        )

    def event(at: float) -> Op:
        return Op(1, Kind.WATCH_EVENT, "/x", Status.OK, at, at, session=1, event="NodeDataChanged")

    during = [
        read(0.0, 1.0, 5, True),
        event(2.0),
        read(2.5, 3.5, 6, True),
        event(3.0),
        read(5.0, 6.0, 7, False),
    ]
    assert check_watch_order(during).ok
    before = [read(0.0, 1.0, 5, True), event(2.0), read(2.5, 3.5, 6, True), read(5.0, 6.0, 7, False)]
    assert not check_watch_order(before).ok
