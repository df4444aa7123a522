"""Watches, sync and server-side disconnects on a real ensemble, spoken at the wire level: which
events arrive, when (before any reply that reflects the change), and what setWatches replays."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Ensemble, wait_for
from tests.integration.wire import WireSession
from zkcore import _records as rec
from zkcore._datatree import NODE_CHILDREN_CHANGED, NODE_CREATED, NODE_DATA_CHANGED, NODE_DELETED
from zkcore._errors import Code

OP = rec.OpCode


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ensemble]:
    e = Ensemble(Path(tmp_path_factory.mktemp("watches")) / "e", 3)
    yield e
    e.stop()


def two_servers(ensemble: Ensemble) -> tuple[int, int]:
    leader = wait_for(ensemble.leader, 30, "a leader")
    follower = next(sid for sid in ensemble.conf.voters if sid != leader)
    return follower, leader  # type: ignore[return-value]


def watch(s: WireSession, opcode: int, path: str) -> int:
    return s.call(opcode, rec.PathWatchRequest(path, True))[0].err


def test_a_watch_fires_on_another_servers_write_before_a_reply_that_shows_it(ensemble: Ensemble) -> None:
    watcher_sid, writer_sid = two_servers(ensemble)
    watcher, writer = ensemble.session(watcher_sid), ensemble.session(writer_sid)
    try:
        assert writer.create("/order", b"0")[0] == Code.OK
        # Reads on another server may lag: sync, so the watcher's server has the create.
        assert watcher.call(OP.SYNC, rec.PathRequest("/order"))[0].err == Code.OK
        for i in range(1, 30):
            assert watch(watcher, OP.GET_DATA, "/order") == Code.OK
            h, _ = writer.call(OP.SET_DATA, rec.SetDataRequest("/order", str(i).encode(), -1))
            assert h.err == Code.OK
            # Read until the change shows: the event must already be there by then.
            while True:
                reply, r = watcher.call(OP.GET_DATA, rec.PathWatchRequest("/order", False))
                data = rec.GetDataResponse.read(r).data
                if data == str(i).encode():
                    break
                assert not watcher.events, "a reply still showed old data after the event had come"
            assert watcher.events, f"round {i}: the reply showed the change before its event"
            zxid, event = watcher.events.pop(0)
            assert (event.type, event.path, zxid) == (NODE_DATA_CHANGED, "/order", h.zxid)
            assert not watcher.events, "a one-shot watch fired twice"
    finally:
        watcher.close()
        writer.close()


def test_exists_child_and_delete_events(ensemble: Ensemble) -> None:
    a, b = two_servers(ensemble)
    s, w = ensemble.session(a), ensemble.session(b)
    try:
        assert watch(s, OP.EXISTS, "/ev") == Code.NO_NODE  # an exists watch on a missing node
        assert w.create("/ev")[0] == Code.OK
        assert s.wait_event()[1] == rec.WatcherEvent(NODE_CREATED, 3, "/ev")
        assert watch(s, OP.GET_CHILDREN, "/ev") == Code.OK
        assert watch(s, OP.GET_DATA, "/ev") == Code.OK
        assert watch(s, OP.GET_DATA, "/ev-missing") == Code.NO_NODE  # sets no watch
        assert w.create("/ev/kid")[0] == Code.OK
        assert s.wait_event()[1] == rec.WatcherEvent(NODE_CHILDREN_CHANGED, 3, "/ev")
        assert watch(s, OP.GET_CHILDREN, "/ev") == Code.OK
        assert w.call(OP.DELETE, rec.DeleteRequest("/ev/kid", -1))[0].err == Code.OK
        assert w.call(OP.DELETE, rec.DeleteRequest("/ev", -1))[0].err == Code.OK
        events = [s.wait_event()[1], s.wait_event()[1]]
        assert events == [
            rec.WatcherEvent(NODE_CHILDREN_CHANGED, 3, "/ev"),
            rec.WatcherEvent(NODE_DELETED, 3, "/ev"),
        ]
        assert w.create("/ev-missing")[0] == Code.OK
        s.call(OP.EXISTS, rec.PathWatchRequest("/", False))  # a round trip: nothing else came
        assert s.events == []
    finally:
        s.close()
        w.close()


def test_persistent_recursive_watch_remove_and_check(ensemble: Ensemble) -> None:
    a, b = two_servers(ensemble)
    s, w = ensemble.session(a), ensemble.session(b)
    try:
        assert s.call(OP.ADD_WATCH, rec.AddWatchRequest("/tree", 1))[0].err == Code.OK
        assert s.call(OP.ADD_WATCH, rec.AddWatchRequest("/tree", 7))[0].err == Code.BAD_ARGUMENTS
        assert s.call(OP.ADD_WATCH, rec.AddWatchRequest("tree", 0))[0].err == Code.BAD_ARGUMENTS
        for path in ("/tree", "/tree/a", "/tree/a/b"):
            assert w.create(path)[0] == Code.OK
        assert w.set("/tree/a/b", b"x") == Code.OK
        got = [s.wait_event()[1] for _ in range(4)]
        assert got == [
            rec.WatcherEvent(NODE_CREATED, 3, "/tree"),
            rec.WatcherEvent(NODE_CREATED, 3, "/tree/a"),
            rec.WatcherEvent(NODE_CREATED, 3, "/tree/a/b"),
            rec.WatcherEvent(NODE_DATA_CHANGED, 3, "/tree/a/b"),
        ]
        assert s.call(OP.CHECK_WATCHES, rec.WatchTypeRequest("/tree", 5))[0].err == Code.OK
        assert s.call(OP.CHECK_WATCHES, rec.WatchTypeRequest("/tree", 4))[0].err == Code.NO_WATCHER
        assert s.call(OP.REMOVE_WATCHES, rec.WatchTypeRequest("/tree", 3))[0].err == Code.OK
        assert s.call(OP.REMOVE_WATCHES, rec.WatchTypeRequest("/tree", 3))[0].err == Code.NO_WATCHER
        assert s.call(OP.REMOVE_WATCHES, rec.WatchTypeRequest("/tree", 9))[0].err == Code.BAD_ARGUMENTS
        assert w.set("/tree/a", b"y") == Code.OK
        s.call(OP.EXISTS, rec.PathWatchRequest("/", False))
        assert s.events == []
    finally:
        s.close()
        w.close()


def test_set_watches_after_reconnect_fires_missed_changes(ensemble: Ensemble) -> None:
    a, b = two_servers(ensemble)
    s = ensemble.session(a)
    w = ensemble.session(b)
    try:
        assert w.create("/sw", b"old")[0] == Code.OK
        assert w.create("/sw-same")[0] == Code.OK
        assert s.call(OP.SYNC, rec.PathRequest("/sw-same"))[0].err == Code.OK  # s's server has both
        assert watch(s, OP.GET_DATA, "/sw") == Code.OK
        assert watch(s, OP.GET_DATA, "/sw-same") == Code.OK
        seen = s.last_zxid
        session, passwd = s.session_id, s.passwd
        s.close()  # the client goes away; /sw changes while it is gone
        assert w.set("/sw", b"new") == Code.OK
        back = ensemble.session(b, session_id=session, passwd=passwd, last_zxid=seen)
        try:
            body = rec.SetWatches2(seen, ("/sw", "/sw-same"), ("/sw-new",), (), (), ())
            h, _ = back.call(OP.SET_WATCHES2, body, xid=rec.XID_SET_WATCHES)
            assert h.err == Code.OK
            assert [e for _, e in back.events] == [rec.WatcherEvent(NODE_DATA_CHANGED, 3, "/sw")]
            back.events.clear()
            assert w.create("/sw-new")[0] == Code.OK  # re-armed exist watch
            assert back.wait_event()[1] == rec.WatcherEvent(NODE_CREATED, 3, "/sw-new")
            assert w.set("/sw-same", b"changed") == Code.OK  # re-armed data watch
            assert back.wait_event()[1] == rec.WatcherEvent(NODE_DATA_CHANGED, 3, "/sw-same")
        finally:
            back.close()
    finally:
        w.close()


def test_sync_then_read_sees_every_completed_write(ensemble: Ensemble) -> None:
    a, b = two_servers(ensemble)
    s, w = ensemble.session(a), ensemble.session(b)
    try:
        assert w.create("/synced", b"0")[0] == Code.OK
        for i in range(20):
            h, _ = w.call(OP.SET_DATA, rec.SetDataRequest("/synced", b"%d" % i, -1))
            sync, r = s.call(OP.SYNC, rec.PathRequest("/synced"))
            assert sync.err == Code.OK and rec.PathRequest.read(r).path == "/synced"
            assert sync.zxid >= h.zxid
            assert s.get("/synced") == (Code.OK, b"%d" % i)
    finally:
        s.close()
        w.close()


def test_clients_of_a_server_that_loses_its_leader_are_told_to_go(ensemble: Ensemble) -> None:
    follower, leader = two_servers(ensemble)
    s = ensemble.session(follower)
    try:
        assert watch(s, OP.EXISTS, "/") == Code.OK
        ensemble.kill(leader)
        frame = wait_for(lambda: s.sock.poll(100) and [s.sock.recv()], 30, "the follower's goodbye")
        assert frame == [b""]
        again = ensemble.session(session_id=s.session_id, passwd=s.passwd, last_zxid=s.last_zxid)
        assert again.get("/")[0] == Code.OK
        again.close()
    finally:
        s.close()
        wait_for(lambda: ensemble.pid(leader) not in (None, ensemble.started_pids[leader]), 60, "a restart")
