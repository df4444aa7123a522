"""The server's watch tables: which watcher hears which event, once, and what setWatches fires."""

from __future__ import annotations

from zkcore import DataTree, Txn
from zkcore import _records as rec
from zkcore._datatree import NODE_CHILDREN_CHANGED, NODE_CREATED, NODE_DATA_CHANGED, NODE_DELETED
from zkcore._watches import (
    CHILD_WATCH_REMOVED,
    DATA_WATCH_REMOVED,
    PERSISTENT_WATCH_REMOVED,
    Fired,
    Kind,
    WatcherType,
    WatchTable,
)


def fired(table: WatchTable, *events: tuple[int, str]) -> set[tuple[str, int, str]]:
    return {(str(f.watcher), f.event, f.path) for f in table.trigger(events)}


def test_one_shot_watches_fire_once_per_matching_event() -> None:
    t = WatchTable()
    t.add("a", Kind.DATA, "/x")
    t.add("b", Kind.CHILD, "/x")
    assert fired(t, (NODE_CHILDREN_CHANGED, "/y")) == set()
    assert fired(t, (NODE_DATA_CHANGED, "/x")) == {("a", NODE_DATA_CHANGED, "/x")}
    assert fired(t, (NODE_DATA_CHANGED, "/x")) == set()  # used up
    assert fired(t, (NODE_CHILDREN_CHANGED, "/x")) == {("b", NODE_CHILDREN_CHANGED, "/x")}
    assert len(t) == 0 and t.watchers() == 0


class Watcher:
    """A watcher whose hash says nothing of when it set its watch (connections hash by id)."""

    def __init__(self, name: str, hash_value: int) -> None:
        self.name, self.hash_value = name, hash_value

    def __hash__(self) -> int:
        return self.hash_value


def test_notifications_go_out_in_the_order_the_watches_were_set() -> None:
    """Whatever the watchers' hashes: a set would send them in hash order, which for
    connections (hashed by address) changes with unrelated code, and the simulator's seeds
    would not replay."""
    t = WatchTable()
    watchers = [Watcher(name, h) for name, h in (("w1", 7), ("w2", 3), ("w3", 5), ("w4", 1))]
    for w in watchers:
        t.add(w, Kind.DATA, "/x")
    t.add(watchers[1], Kind.PERSISTENT, "/x")  # heard once, where its first watch put it
    t.add(Watcher("p", 2), Kind.PERSISTENT, "/x")
    names = [f.watcher.name for f in t.trigger([(NODE_DATA_CHANGED, "/x")])]  # type: ignore[attr-defined]
    assert names == ["w1", "w2", "w3", "w4", "p"]


def test_created_fires_data_watches_and_deleted_fires_both_tables_once() -> None:
    t = WatchTable()
    t.add("exists-on-missing", Kind.DATA, "/x")
    assert fired(t, (NODE_CREATED, "/x")) == {("exists-on-missing", NODE_CREATED, "/x")}
    t.add("a", Kind.DATA, "/x")
    t.add("a", Kind.CHILD, "/x")
    assert fired(t, (NODE_DELETED, "/x")) == {("a", NODE_DELETED, "/x")}  # one event, not two
    assert len(t) == 0


def test_persistent_watches_hear_every_event_on_their_path_and_stay() -> None:
    t = WatchTable()
    t.add("p", Kind.PERSISTENT, "/x")
    for event in (NODE_CREATED, NODE_DATA_CHANGED, NODE_CHILDREN_CHANGED, NODE_DELETED):
        assert fired(t, (event, "/x")) == {("p", event, "/x")}
    assert fired(t, (NODE_CREATED, "/x/child")) == set()
    assert len(t) == 1


def test_recursive_watches_hear_the_subtree_but_not_children_changed() -> None:
    t = WatchTable()
    t.add("r", Kind.RECURSIVE, "/x")
    t.add("root", Kind.RECURSIVE, "/")
    assert fired(t, (NODE_CREATED, "/x/a/b")) == {
        ("r", NODE_CREATED, "/x/a/b"),
        ("root", NODE_CREATED, "/x/a/b"),
    }
    assert fired(t, (NODE_DATA_CHANGED, "/x")) == {
        ("r", NODE_DATA_CHANGED, "/x"),
        ("root", NODE_DATA_CHANGED, "/x"),
    }
    assert fired(t, (NODE_DELETED, "/xy")) == {("root", NODE_DELETED, "/xy")}  # /xy is not under /x
    assert fired(t, (NODE_CHILDREN_CHANGED, "/x")) == set()
    assert len(t) == 2


def test_remove_check_and_drop() -> None:
    t = WatchTable()
    t.add("a", Kind.DATA, "/x")
    t.add("a", Kind.CHILD, "/x")
    t.add("a", Kind.RECURSIVE, "/x")
    t.add("b", Kind.DATA, "/x")
    assert t.has("a", WatcherType.CHILDREN, "/x") and not t.has("b", WatcherType.CHILDREN, "/x")
    assert t.remove("a", WatcherType.CHILDREN, "/x") == [Fired("a", CHILD_WATCH_REMOVED, "/x")]
    assert t.remove("a", WatcherType.CHILDREN, "/x") == []  # NoWatcher
    assert t.remove("a", WatcherType.ANY, "/x") == [
        Fired("a", DATA_WATCH_REMOVED, "/x"),
        Fired("a", PERSISTENT_WATCH_REMOVED, "/x"),
    ]
    t.add("a", Kind.DATA, "/y")
    t.drop("a")
    assert t.watches_of("a") == [] and t.paths() == {"/x": 1}
    assert fired(t, (NODE_DATA_CHANGED, "/x"), (NODE_DATA_CHANGED, "/y")) == {("b", NODE_DATA_CHANGED, "/x")}


def _tree() -> DataTree:
    tree = DataTree()
    zxid = 0

    def apply(body: object, op: int) -> None:
        nonlocal zxid
        zxid += 1
        tree.apply(Txn(rec.TxnHeader(1, zxid, zxid, 0, op), body))  # type: ignore[arg-type]

    apply(rec.CreateTxn("/same", b"", rec.OPEN_ACL_UNSAFE, False, 1), rec.OpCode.CREATE)  # zxid 1
    apply(rec.CreateTxn("/changed", b"", rec.OPEN_ACL_UNSAFE, False, 2), rec.OpCode.CREATE)  # 2
    apply(rec.CreateTxn("/gone", b"", rec.OPEN_ACL_UNSAFE, False, 3), rec.OpCode.CREATE)  # 3
    apply(rec.SetDataTxn("/changed", b"new", 1), rec.OpCode.SET_DATA)  # 4
    apply(rec.CreateTxn("/changed/kid", b"", rec.OPEN_ACL_UNSAFE, False, 1), rec.OpCode.CREATE)  # 5
    apply(rec.DeleteTxn("/gone"), rec.OpCode.DELETE)  # 6
    return tree


def test_set_watches_fires_what_was_missed_and_rearms_the_rest() -> None:
    t = WatchTable()
    out = t.resume(
        "c",
        _tree(),
        3,
        data=["/same", "/changed", "/gone"],
        exist=["/same", "/never"],
        child=["/same", "/changed", "/gone"],
        persistent=["/p"],
        recursive=["/r"],
    )
    assert {(f.event, f.path) for f in out} == {
        (NODE_DATA_CHANGED, "/changed"),
        (NODE_DELETED, "/gone"),
        (NODE_CREATED, "/same"),
        (NODE_CHILDREN_CHANGED, "/changed"),
    }
    assert len([f for f in out if f.path == "/gone"]) == 2  # once for each watch the client held
    assert t.watches_of("c") == [
        (Kind.DATA, "/never"),
        (Kind.DATA, "/same"),
        (Kind.CHILD, "/same"),
        (Kind.PERSISTENT, "/p"),
        (Kind.RECURSIVE, "/r"),
    ]
