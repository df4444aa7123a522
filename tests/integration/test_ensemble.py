"""Real node processes on real ZeroMQ sockets and real disks: writes replicate, reads are local,
and the ensemble survives kill -9 of the leader, of any minority, and of every node."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

import psutil
import pytest
import zmq

from tests.integration.conftest import Ensemble, wait_for
from tests.integration.wire import NoAnswer, WireSession
from zkclient import Client
from zkcore import Code, limits
from zkcore import _records as rec
from zkcore._jute import Reader


def write_until_ok(e: Ensemble, path: str, data: bytes, timeout_s: float = 30) -> float:
    """Create path (or set it if a retry already created it); return when it first succeeded."""

    def attempt() -> float | None:
        try:
            s = e.session(wait_ms=250)
        except AssertionError:
            return None
        try:
            err, _ = s.create(path, data)
            if err in (Code.OK, Code.NODE_EXISTS):
                return time.monotonic()
        except NoAnswer:
            pass
        finally:
            s.close()
        return None

    return wait_for(attempt, timeout_s, f"a successful write of {path}")  # type: ignore[return-value]


def test_writes_replicate_and_every_server_reads_them(ensemble_factory: Callable[..., Ensemble]) -> None:
    e = ensemble_factory(nodes=3, observers=1)
    writer = e.session()
    assert writer.create("/app", b"v0") == (0, "/app")
    for i in range(20):
        assert writer.set("/app", f"v{i + 1}".encode()) == 0
    for sid in sorted(e.conf.servers):
        reader = e.session(sid, last_zxid=writer.last_zxid)
        assert reader.get("/app") == (0, b"v20"), f"server {sid}"
        reader.close()
    admin_views = [e.mntr(sid) for sid in sorted(e.conf.servers)]
    assert sorted(m["zk_server_state"] for m in admin_views) == ["follower", "follower", "leader", "observer"]
    assert len({m["zk_last_zxid"] for m in admin_views}) == 1


def test_leader_kill_then_new_leader_serves_writes(ensemble_factory: Callable[..., Ensemble]) -> None:
    e = ensemble_factory(nodes=3)
    s = e.session()
    assert s.create("/before", b"1")[0] == 0
    s.close()
    leader = wait_for(e.leader, 10, "a leader")
    killed_at = time.monotonic()
    e.kill(leader)  # type: ignore[arg-type]
    first_write = write_until_ok(e, "/after", b"2")
    print(f"kill -9 of leader {leader} to first successful write: {first_write - killed_at:.3f}s")
    s = e.session()
    assert s.get("/before") == (0, b"1") and s.get("/after") == (0, b"2")


def test_minority_kill_writes_continue(ensemble_factory: Callable[..., Ensemble]) -> None:
    e = ensemble_factory(nodes=5)
    leader = wait_for(e.leader, 10, "a leader")
    followers = [sid for sid in e.conf.voters if sid != leader]
    for sid in followers[:2]:
        e.kill(sid)
    s = e.session(leader)  # type: ignore[arg-type]
    for i in range(20):
        assert s.create(f"/still{i}", b"ok")[0] == 0
    reader = e.session(followers[2], last_zxid=s.last_zxid)
    assert reader.get("/still19") == (0, b"ok")


def test_all_nodes_killed_then_restarted_lose_nothing(ensemble_factory: Callable[..., Ensemble]) -> None:
    e = ensemble_factory(nodes=3)
    s = e.session()
    acked = []
    for i in range(1200):  # over BULK_REPLAY_TXNS_MIN: the restart replays the log in bulk
        err, path = s.create(f"/n{i:04d}", str(i).encode())
        assert err == 0
        acked.append(path)
    s.close()
    e.kill_supervisor()  # so nothing restarts them, then kill -9 every node at once
    pids = [e.kill(sid) for sid in sorted(e.conf.servers)]
    for pid in pids:
        wait_for(lambda pid=pid: not psutil.pid_exists(pid), 10, f"pid {pid} gone")
    e.launch("--nodes", "3", "--detach", timeout=60)
    for sid in e.servers:
        s = e.session(sid)
        err, children = s.children("/")
        assert err == 0 and sorted(set(children) - {"zookeeper"}) == [p[1:] for p in acked]
        assert s.get(acked[-1]) == (0, b"1199")
        s.close()
    logs = "".join((e.conf.node_dir(sid) / "node.log").read_text() for sid in e.servers)
    assert "committed txns in bulk" in logs


def test_sigstop_leader_steps_down_and_rejoins(ensemble_factory: Callable[..., Ensemble]) -> None:
    e = ensemble_factory(nodes=3)
    old = wait_for(e.leader, 10, "a leader")
    s = e.session([sid for sid in e.conf.voters if sid != old][0])
    assert s.create("/counter", b"0")[0] == 0
    e.kill(old, signal.SIGSTOP)  # type: ignore[arg-type]
    try:
        write_until_ok(e, "/during", b"x")
    finally:
        e.kill(old, signal.SIGCONT)  # type: ignore[arg-type]
    wait_for(lambda: e.mntr(old).get("zk_server_state") == "follower", 20, f"old leader {old} to follow")  # type: ignore[arg-type]
    reader = e.session(old, last_zxid=0)  # type: ignore[arg-type]
    wait_for(lambda: reader.get("/during") == (0, b"x"), 10, "the old leader to catch up")
    err, children = reader.children("/")
    assert sorted(children) == ["counter", "during", "zookeeper"]


# The SNAP case moves a tree of 1.6 MB, more than one client frame may hold.
@pytest.mark.parametrize("writes, size, sync", [(300, 10, "DIFF"), (800, 2000, "SNAP")])
def test_lagging_node_catches_up(
    ensemble_factory: Callable[..., Ensemble], writes: int, size: int, sync: str
) -> None:
    e = ensemble_factory(nodes=3, diff_entries_max=500)  # ZooKeeper's in-memory commit log
    leader = wait_for(e.leader, 10, "a leader")
    lagger = [sid for sid in e.conf.voters if sid != leader][0]
    e.launch("stop-node", "--id", str(lagger))
    assert "down (maintenance)" in e.launch("status")
    s = e.session(leader)  # type: ignore[arg-type]
    for i in range(writes):
        assert s.create(f"/w{i}", b"x" * size)[0] == 0
    e.launch("start-node", "--id", str(lagger))
    reader = wait_for(lambda: _try_session(e, lagger, s.last_zxid), 30, "the lagging node to serve")
    assert reader.get(f"/w{writes - 1}") == (0, b"x" * size)  # type: ignore[union-attr]
    log_text = (e.conf.node_dir(lagger) / "node.log").read_text()
    assert f"phase SYNCHRONISATION leader {leader} epoch 1: {sync}" in log_text
    if sync == "SNAP":  # the leader had a forked child write the tree, and served meanwhile
        leader_log = (e.conf.node_dir(leader) / "node.log").read_text()  # type: ignore[operator]
        assert "for a SNAP: 804 znodes" in leader_log and "by a child" in leader_log
        assert not list(e.conf.node_dir(leader).glob("snap-image.*"))  # type: ignore[operator]


def _try_session(e: Ensemble, sid: int, last_zxid: int) -> WireSession | None:
    try:
        return WireSession(e.conf.servers[sid].client, last_zxid=last_zxid, wait_ms=500)
    except Exception:  # noqa: BLE001 - refused or silent: not caught up yet
        return None


def test_garbage_from_one_client_hurts_nobody_else(ensemble_factory: Callable[..., Ensemble]) -> None:
    e = ensemble_factory(nodes=3)
    good = e.session(1)
    assert good.create("/ok", b"1")[0] == 0
    ctx = zmq.Context.instance()
    for frame in [b"", b"\x00", b"junk-junk-junk", b"\xff" * 200, b"x" * (limits.frame_bytes_max + 10)]:
        bad = ctx.socket(zmq.DEALER)
        bad.setsockopt(zmq.LINGER, 0)
        bad.connect(e.conf.servers[1].client)
        bad.send(frame)
        bad.poll(300)
        bad.close()
    # A connected session that sends a malformed request gets Marshalling and is cut off.
    rude = e.session(1)
    rude.sock.send(b"\x00\x00\x00\x07\x00\x00\x00\x04" + b"\xff\xff")  # getData with a torn body
    assert rude.sock.poll(2000)
    assert rude.sock.recv()[12:16] == (-5).to_bytes(4, "big", signed=True)
    assert good.get("/ok") == (0, b"1") and good.set("/ok", b"2") == 0
    assert e.mntr(1)["zk_server_state"] in ("leader", "follower")
    assert e.pid(1) == e.started_pids[1], "node 1 must not have crashed and been restarted"


def test_silent_session_expires_and_its_ephemerals_go(ensemble_factory: Callable[..., Ensemble]) -> None:
    e = ensemble_factory(nodes=3)
    leader = wait_for(e.leader, 10, "a leader")
    follower = next(s for s in e.conf.voters if s != leader)
    watcher = e.session(leader)  # type: ignore[arg-type]
    doomed = e.session(follower, timeout_ms=4000)  # a client on a follower that then goes silent
    assert doomed.create("/lock", b"", flags=1)[0] == 0  # ephemeral
    alive = e.session(follower, timeout_ms=4000)
    assert alive.create("/member", b"", flags=1)[0] == 0
    started = time.monotonic()

    def lock_gone() -> bool:  # `alive` keeps talking through the follower all along
        assert alive.get("/member")[0] == 0
        return watcher.get("/lock")[0] == Code.NO_NODE

    wait_for(lock_gone, 7, "the silent session to expire")
    gone_after = time.monotonic() - started
    assert watcher.get("/lock")[0] == Code.NO_NODE, "the silent session's ephemeral must be deleted"
    assert 3.5 < gone_after < 7, f"expired after {gone_after:.1f}s with a 4 s timeout"
    assert watcher.get("/member")[0] == 0, "a session that keeps talking must not expire"
    assert int(e.mntr(leader)["zk_sessions"]) == 2  # type: ignore[arg-type]


def test_a_session_with_more_ephemerals_than_a_close_could_list_ends_cleanly(
    ensemble_factory: Callable[..., Ensemble],
) -> None:
    """6,000 ephemerals of 200-character names: a closeSession listing them would be 1.3 MB,
    more than a peer takes. It used to crash the leader that proposed it, and each leader after
    it when the session expired (ZOOKEEPER-4306); now the close lists none, every server deletes
    them, and no node dies."""
    e = ensemble_factory(nodes=3)
    leader = wait_for(e.leader, 10, "a leader")
    follower = next(s for s in e.conf.voters if s != leader)
    owner = Client(e.endpoint(follower), timeout=10)  # type: ignore[arg-type]
    owner.start(timeout=30)
    owner.create("/big", b"")
    names = [f"{'x' * 200}{i}" for i in range(6000)]
    for pending in [owner.create_async(f"/big/{name}", b"", ephemeral=True) for name in names]:
        pending.get(timeout=60)
    owner.stop()  # closes the session
    readers = {sid: Client(e.endpoint(sid), timeout=10) for sid in e.conf.voters}
    for sid, reader in readers.items():
        reader.start(timeout=30)
        wait_for(lambda r=reader: r.get_children("/big") == [], 30, f"server {sid} to drop the ephemerals")  # type: ignore[misc]
        reader.stop()
    assert e.leader() == leader
    assert "died" not in (e.data_dir / "supervisor.log").read_text()


def test_snapshots_are_taken_purged_and_used_on_restart(ensemble_factory: Callable[..., Ensemble]) -> None:
    e = ensemble_factory(nodes=3, snap_count=40)
    s = e.session()
    for i in range(200):
        assert s.create(f"/s{i}", str(i).encode())[0] == 0
    snap_dir = e.conf.node_dir(1) / "snap"
    wait_for(lambda: len(list(snap_dir.glob("snapshot.*"))) >= 3, 10, "snapshots on node 1")
    assert len(list(snap_dir.glob("snapshot.*"))) <= 4, (
        "old snapshots are purged (3 kept, one may be in flight)"
    )
    s.close()
    e.kill_supervisor()
    for pid in [e.kill(sid) for sid in sorted(e.conf.servers)]:
        wait_for(lambda pid=pid: not psutil.pid_exists(pid), 10, f"pid {pid} gone")
    e.launch("--nodes", "3", "--detach", timeout=60)
    log_text = (e.conf.node_dir(1) / "node.log").read_text()
    assert "loaded snapshot at 0x0 " not in log_text.split("serving clients")[-2], (
        "restart must load a snapshot"
    )
    reader = e.session()
    err, children = reader.children("/")
    assert err == 0 and len(children) == 201
    assert reader.get("/s199") == (0, b"199")


def test_requests_pipelined_behind_the_connect_wait_for_the_session(
    ensemble_factory: Callable[..., Ensemble],
) -> None:
    e = ensemble_factory(nodes=3)
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(e.conf.servers[2].client)
    sock.send(rec.ConnectRequest(0, 0, 10000, 0, bytes(16), False).encode())
    sock.send(
        rec.RequestHeader(1, rec.OpCode.CREATE).encode()
        + rec.CreateRequest("/early", b"e", rec.OPEN_ACL_UNSAFE, 1).encode()
    )
    sock.send(
        rec.RequestHeader(2, rec.OpCode.GET_DATA).encode() + rec.PathWatchRequest("/early", False).encode()
    )
    frames = []
    while len(frames) < 3 and sock.poll(5000):
        frames.append(sock.recv())
    sock.close()
    assert len(frames) == 3
    assert rec.ConnectResponse.decode(frames[0]).session_id != 0
    create, read = Reader(frames[1]), Reader(frames[2])
    assert rec.ReplyHeader.read(create).err == 0 and rec.CreateResponse.read(create).path == "/early"
    header = rec.ReplyHeader.read(read)
    assert (header.xid, header.err) == (2, 0) and rec.GetDataResponse.read(read).data == b"e"


def test_partitioned_leader_steps_down_and_heals(ensemble_factory: Callable[..., Ensemble]) -> None:
    ensemble = ensemble_factory(3)
    old = wait_for(ensemble.leader, 30, "a leader")
    s = ensemble.session(old)
    assert s.create("/before")[0] == 0
    s.close()
    rest = [sid for sid in ensemble.conf.voters if sid != old]
    ensemble.launch("partition", "--groups", f"{old}/{','.join(map(str, rest))}")
    new = wait_for(lambda: next((sid for sid in rest if ensemble.mntr(sid).get("zk_server_state") == "leader"), None),
                   30, "a leader among the majority")  # fmt: skip
    wait_for(
        lambda: ensemble.mntr(old).get("zk_server_state") != "leader", 30, "the cut-off leader to step down"
    )
    w = ensemble.session(new)
    assert w.create("/during")[0] == 0
    w.close()
    ensemble.launch("heal")
    wait_for(lambda: ensemble.mntr(old).get("zk_server_state") == "follower", 30, "the old leader to follow")
    r = ensemble.session(old)
    wait_for(lambda: r.get("/during")[0] == 0, 10, "the write made during the partition on the old leader")
    assert r.get("/before")[0] == 0
    r.close()
    assert ensemble.pid(old) == ensemble.started_pids[old]  # no restart was needed


def test_an_ensemble_on_the_python_twin_keeps_its_tree(
    ensemble_factory: Callable[..., Ensemble], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ZKPY_NATIVE=0: every node keeps its tree in the twin index, the only store it has, and
    the ensemble writes, replicates, snapshots and comes back from kill -9 of every node."""
    monkeypatch.setenv("ZKPY_NATIVE", "0")
    e = ensemble_factory(nodes=3, snap_count=40)
    s = e.session()
    assert s.create("/t", b"top")[0] == 0
    for i in range(120):
        assert s.create(f"/t/n{i}", bytes(i))[0] == 0
    assert s.set("/t/n5", b"five") == 0
    assert s.call(rec.OpCode.DELETE, rec.DeleteRequest("/t/n7", -1))[0].err == 0
    s.close()
    e.kill_supervisor()
    for pid in [e.kill(sid) for sid in sorted(e.conf.servers)]:
        wait_for(lambda pid=pid: not psutil.pid_exists(pid), 10, f"pid {pid} gone")
    e.launch("--nodes", "3", "--detach", timeout=60)
    for sid in e.servers:
        reader = e.session(sid)
        err, children = reader.children("/t")
        assert err == 0 and len(children) == 119 and "n7" not in children
        assert reader.get("/t/n5") == (0, b"five") and reader.get("/t/n119") == (0, bytes(119))
        reader.close()
        assert "(native core: python)" in (e.conf.node_dir(sid) / "node.log").read_text()
