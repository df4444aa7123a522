"""ZooKeeper's ZKWatchManager table on the client: which registered functions hear which event,
one-shot watches used up, persistent ones kept, recursive ones hearing descendants (never
NodeChildrenChanged), each function once per event; what setWatches2 re-registers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from zkclient._watchers import (
    Kind,
    WatchManager,
    WatchRegistration,
    WatchSnapshot,
    self_and_ancestors,
    set_watches_frames,
)
from zkcore._datatree import NODE_CHILDREN_CHANGED, NODE_CREATED, NODE_DATA_CHANGED, NODE_DELETED
from zkcore._errors import Code
from zkcore._jute import Reader
from zkcore._records import RequestHeader, SetWatches2
from zkcore._watches import WatcherType


def named(name: str) -> Callable[[Any], None]:
    def watcher(event: Any) -> None:
        pass

    watcher.__name__ = name
    return watcher


DATA, EXIST, CHILD, PERSISTENT, RECURSIVE = (
    named(n) for n in ("data", "exist", "child", "persistent", "recursive")
)
ROOT_RECURSIVE = named("root_recursive")


def full_manager(path: str = "/a") -> WatchManager:
    m = WatchManager()
    m.add(Kind.DATA, path, DATA)
    m.add(Kind.EXIST, path, EXIST)
    m.add(Kind.CHILD, path, CHILD)
    m.add(Kind.PERSISTENT, path, PERSISTENT)
    m.add(Kind.RECURSIVE, path, RECURSIVE)
    m.add(Kind.RECURSIVE, "/", ROOT_RECURSIVE)
    return m


ROUTES = [
    # event, path, who hears it
    (NODE_CREATED, "/a", {"data", "exist", "persistent", "recursive", "root_recursive"}),
    (NODE_DATA_CHANGED, "/a", {"data", "exist", "persistent", "recursive", "root_recursive"}),
    (NODE_DELETED, "/a", {"data", "exist", "child", "persistent", "recursive", "root_recursive"}),
    (NODE_CHILDREN_CHANGED, "/a", {"child", "persistent"}),
    (NODE_CREATED, "/a/b", {"recursive", "root_recursive"}),
    (NODE_CHILDREN_CHANGED, "/a/b", set()),
    (NODE_DATA_CHANGED, "/ab", {"root_recursive"}),
    (-1, "/a", set()),
    (99, "/a", set()),
]


@pytest.mark.parametrize("event, path, heard", ROUTES)
def test_route(event: int, path: str, heard: set[str]) -> None:
    m = full_manager()
    assert {f.__name__ for f in m.route(event, path)} == heard


@pytest.mark.parametrize(
    "event, left",
    [
        (NODE_CREATED, {"child", "persistent", "recursive", "root_recursive"}),
        (NODE_DATA_CHANGED, {"child", "persistent", "recursive", "root_recursive"}),
        (NODE_DELETED, {"persistent", "recursive", "root_recursive"}),
        (NODE_CHILDREN_CHANGED, {"data", "exist", "persistent", "recursive", "root_recursive"}),
    ],
)
def test_one_shot_watches_are_used_up_and_persistent_ones_stay(event: int, left: set[str]) -> None:
    m = full_manager()
    m.route(event, "/a")
    assert {f.__name__ for f in m.route(NODE_DELETED, "/a")} == left


def test_a_function_hears_an_event_once_however_many_watches_match() -> None:
    m = WatchManager()
    f = named("f")
    for kind in Kind:
        m.add(kind, "/x", f)
    m.add(Kind.DATA, "/x", f)
    assert m.route(NODE_DELETED, "/x") == [f]


def test_functions_hear_in_registration_order() -> None:
    m = WatchManager()
    fs = [named(str(i)) for i in range(5)]
    for f in fs:
        m.add(Kind.DATA, "/o", f)
    assert m.route(NODE_DATA_CHANGED, "/o") == fs


@pytest.mark.parametrize(
    "registration, err, table",
    [
        (WatchRegistration("/p", DATA, Kind.DATA), Code.OK, Kind.DATA),
        (WatchRegistration("/p", DATA, Kind.DATA), Code.NO_NODE, None),
        (WatchRegistration("/p", EXIST, Kind.DATA, Kind.EXIST), Code.OK, Kind.DATA),
        (WatchRegistration("/p", EXIST, Kind.DATA, Kind.EXIST), Code.NO_NODE, Kind.EXIST),
        (WatchRegistration("/p", EXIST, Kind.DATA, Kind.EXIST), Code.NO_AUTH, None),
        (WatchRegistration("/p", CHILD, Kind.CHILD), Code.OK, Kind.CHILD),
    ],
)
def test_a_watch_is_recorded_by_its_reply(
    registration: WatchRegistration, err: int, table: Kind | None
) -> None:
    m = WatchManager()
    assert m.record(registration, err) is table
    assert len(m) == (table is not None)


def test_snapshot_is_what_setwatches2_sends() -> None:
    m = full_manager("/z")
    m.add(Kind.DATA, "/b", DATA)
    assert m.snapshot() == WatchSnapshot(("/b", "/z"), ("/z",), ("/z",), ("/z",), ("/", "/z"))
    assert WatchManager().snapshot().empty()


@pytest.mark.parametrize(
    "watcher_type, removed",
    [
        (WatcherType.CHILDREN, {"child"}),
        (WatcherType.DATA, {"data", "exist"}),
        (WatcherType.PERSISTENT, {"persistent"}),
        (WatcherType.PERSISTENT_RECURSIVE, {"recursive"}),
        (WatcherType.ANY, {"data", "exist", "child", "persistent", "recursive"}),
    ],
)
def test_remove_by_watcher_type(watcher_type: int, removed: set[str]) -> None:
    m = full_manager()
    assert {f.__name__ for _, f in m.remove("/a", watcher_type)} == removed
    assert not m.has("/a", watcher_type)


def test_remove_one_function_keeps_the_others() -> None:
    m = WatchManager()
    f, g = named("f"), named("g")
    m.add(Kind.DATA, "/r", f)
    m.add(Kind.DATA, "/r", g)
    assert m.remove("/r", WatcherType.DATA, f) == [(Kind.DATA, f)]
    assert m.has("/r", WatcherType.DATA) and not m.has("/r", WatcherType.DATA, f)
    assert m.remove("/r", WatcherType.DATA, f) == []


def test_clear_tells_every_function_once() -> None:
    m = full_manager()
    assert sorted(f.__name__ for f in m.clear()) == sorted(
        ["data", "exist", "child", "persistent", "recursive", "root_recursive"]
    )
    assert len(m) == 0


def test_self_and_ancestors() -> None:
    assert list(self_and_ancestors("/a/b/c")) == ["/a/b/c", "/a/b", "/a", "/"]
    assert list(self_and_ancestors("/")) == ["/"]


def test_setwatches2_frames_split_by_size_and_keep_every_path() -> None:

    snap = WatchSnapshot(
        tuple(f"/d{i:03d}" for i in range(40)),
        ("/e",),
        tuple(f"/c{i:03d}" for i in range(40)),
        ("/p",),
        ("/r",),
    )
    frames = set_watches_frames(snap, 77, bytes_max=200)
    assert len(frames) > 2
    merged: list[list[str]] = [[], [], [], [], []]
    for frame in frames:
        r = Reader(frame)
        assert RequestHeader.read(r) == RequestHeader(-8, 105)
        body = SetWatches2.read(r)
        r.expect_end("setWatches2")
        assert body.relative_zxid == 77
        fields = (body.data_watches, body.exist_watches, body.child_watches, body.persistent_watches,
                  body.persistent_recursive_watches)  # fmt: skip
        assert sum(4 + len(p) for f in fields for p in f) <= 200
        for i, paths in enumerate(fields):
            merged[i] += paths
    assert tuple(map(tuple, merged)) == (snap.data, snap.exist, snap.child, snap.persistent, snap.recursive)
    assert set_watches_frames(WatchSnapshot((), (), (), (), ()), 1) == []
