"""zkclient against a real 3-node ensemble (one per module): CRUD, the create modes, transactions,
ACLs and auth, ephemerals and sessions (closed, expired, moved by failover after kill -9), watches
and sync, and the CLI's one-shot commands run as subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.integration.conftest import Ensemble, wait_for
from zkclient import (
    ACL,
    AddWatchMode,
    Client,
    Id,
    KazooState,
    WatchedEvent,
    WatcherType,
    make_acl,
    make_digest_acl,
)
from zkclient.exceptions import (
    AuthFailedError,
    BadArgumentsError,
    BadVersionError,
    InvalidACLError,
    NoAuthError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    NoWatcherError,
    RolledBackError,
    RuntimeInconsistency,
)

ROOT = Path(__file__).resolve().parents[2]
SESSION_S = 4.0  # the ensemble's minSessionTimeout


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ensemble]:
    e = Ensemble(Path(tmp_path_factory.mktemp("client")) / "e", 3, container_check_ms=100)
    yield e
    e.stop()


@pytest.fixture
def connect(ensemble: Ensemble) -> Iterator[Callable[..., Client]]:
    """Clients on the whole ensemble (or on the given servers, tried in that order); all stopped
    at the end of the test."""
    made: list[Client] = []

    def make(*sids: int, timeout: float = SESSION_S, **kw: Any) -> Client:
        order = list(sids) or ensemble.servers
        hosts = ",".join(ensemble.endpoint(sid) for sid in order)
        client = Client(hosts, timeout=timeout, randomize_hosts=not sids, **kw)
        client.start(timeout=30)
        made.append(client)
        return client

    yield make
    for client in made:
        client.stop()


def leader_and_followers(ensemble: Ensemble) -> tuple[int, list[int]]:
    ensemble.wait_healthy()
    leader = wait_for(ensemble.leader, 30, "a leader")
    return leader, [sid for sid in ensemble.conf.voters if sid != leader]  # type: ignore[return-value]


def sid_of(ensemble: Ensemble, client: Client) -> int:
    return next(sid for sid in ensemble.servers if ensemble.endpoint(sid) == client.endpoint)


def cli(
    ensemble: Ensemble, *args: str, check: bool = True, everyone: bool = False
) -> subprocess.CompletedProcess[str]:
    """One CLI command in its own process (and session): on server 1 unless `everyone`, so that
    each command reads what the one before it wrote (reads are local)."""
    server = ensemble.connect_string() if everyone else ensemble.endpoint(ensemble.servers[0])
    cmd = [sys.executable, "-m", "zkclient.cli", "--server", server, *args]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60)
    if check:
        assert out.returncode == 0, f"{args}: {out.stdout}{out.stderr}"
    return out


# --- data ---------------------------------------------------------------------------------------


def test_crud(connect: Callable[..., Client]) -> None:
    zk = connect()
    assert zk.command("ruok").strip() == "imok"  # a four-letter word to its server
    assert zk.create("/crud", b"v0") == "/crud"
    with pytest.raises(NodeExistsError):
        zk.create("/crud")
    data, stat = zk.get("/crud")
    assert data == b"v0" and stat.version == 0 and stat.dataLength == 2
    assert zk.set("/crud", b"v1", version=0).version == 1
    with pytest.raises(BadVersionError):
        zk.set("/crud", b"v2", version=0)
    assert zk.exists("/crud").version == 1  # type: ignore[union-attr]
    assert zk.exists("/crud/none") is None
    with pytest.raises(NoNodeError):
        zk.get("/crud/none")
    path, stat = zk.create("/crud/a", b"x", include_data=True)
    assert path == "/crud/a" and stat.czxid == stat.mzxid
    assert zk.create("/crud/b/c/d", makepath=True) == "/crud/b/c/d"
    assert zk.ensure_path("/crud/b/e/f") is True and zk.ensure_path("/crud/b/e/f") is True
    children, parent = zk.get_children("/crud", include_data=True)
    assert sorted(children) == ["a", "b"] and parent.numChildren == 2
    assert zk.get_all_children_number("/crud") == 6
    assert zk.get_many(["/crud", "/crud/nope"])[0][0] == b"v1"  # type: ignore[index]
    assert isinstance(zk.get_many(["/crud/nope"])[0], NoNodeError)
    with pytest.raises(NotEmptyError):
        zk.delete("/crud")
    with pytest.raises(BadVersionError):
        zk.delete("/crud/a", version=5)
    assert zk.delete("/crud/a", version=0) is True
    assert zk.delete("/crud", recursive=True) is True
    assert zk.exists("/crud") is None
    with pytest.raises(BadArgumentsError):
        zk.create("no-slash")


def test_sequential_ephemeral_container_and_ttl_creates(
    ensemble: Ensemble, connect: Callable[..., Client]
) -> None:
    zk = connect()
    zk.create("/modes")
    first = zk.create("/modes/job-", sequence=True)
    second = zk.create("/modes/job-", sequence=True, ephemeral=True)
    assert first == "/modes/job-0000000000" and second == "/modes/job-0000000001"
    assert zk.create("/modes/q/", sequence=True, makepath=True) == "/modes/q/0000000000"
    eph = zk.create("/modes/eph", ephemeral=True)
    assert zk.exists(eph).owner_session_id == zk.client_id[0]  # type: ignore[union-attr,index]
    with pytest.raises(NoChildrenForEphemeralsError):
        zk.create("/modes/eph/kid")
    assert zk.get_ephemerals("/modes") == ["/modes/eph", "/modes/job-0000000001"]
    assert zk.get_ephemerals() == ["/modes/eph", "/modes/job-0000000001"]
    zk.create("/modes/box", container=True)
    zk.create("/modes/box/item")
    path, stat = zk.create("/modes/ttl", ttl=300, include_data=True)
    assert path == "/modes/ttl" and stat.owner_session_id is None
    zk.delete("/modes/box/item")
    wait_for(lambda: zk.exists("/modes/box") is None, 15, "the emptied container to be reaped")
    wait_for(lambda: zk.exists("/modes/ttl") is None, 15, "the idle TTL node to be reaped")
    with pytest.raises(BadArgumentsError):
        zk.create("/modes/bad", ephemeral=True, ttl=100)


def test_transaction_is_all_or_nothing(connect: Callable[..., Client]) -> None:
    zk = connect()
    zk.create("/tx", b"0")
    tx = zk.transaction()
    tx.create("/tx/a", b"a")
    tx.set_data("/tx", b"1")
    tx.check("/tx", 1)
    tx.delete("/tx/a")
    results = tx.commit()
    assert results[0] == "/tx/a" and results[1].version == 1 and results[2:] == [True, True]
    bad = zk.transaction()
    bad.create("/tx/b")
    bad.check("/tx", 99)
    bad.set_data("/tx", b"2")
    results = bad.commit()
    assert [type(r) for r in results] == [RolledBackError, BadVersionError, RuntimeInconsistency]
    assert zk.exists("/tx/b") is None and zk.get("/tx")[0] == b"1"
    with zk.transaction() as t:
        t.create("/tx/c", ephemeral=True)
    assert zk.exists("/tx/c") is not None
    with pytest.raises(ValueError):
        t.commit()


def test_acls_and_add_auth(ensemble: Ensemble, connect: Callable[..., Client]) -> None:
    owner = connect(auth_data=[("digest", "alice:pw")])
    server = sid_of(ensemble, owner)  # one server: each read sees the writes before it
    stranger = connect(server)
    acl = [make_digest_acl("alice", "pw", all=True), make_acl("world", "anyone", read=True)]
    owner.create("/acl", b"secret", acl=acl)
    got, stat = stranger.get_acls("/acl")
    # It may READ, not ADMIN: the digest's hash is hidden from it, as ZooKeeper hides it.
    assert got == [ACL(acl[0].perms, Id("digest", "alice:x")), acl[1]] and stat.aversion == 0
    assert owner.get_acls("/acl")[0] == acl
    assert stranger.get("/acl")[0] == b"secret"
    with pytest.raises(NoAuthError):
        stranger.set("/acl", b"mine")
    with pytest.raises(AuthFailedError):
        stranger.add_auth("nonsense", "x")
    assert stranger.add_auth("digest", "alice:pw") is True
    stranger.set("/acl", b"now mine")
    assert owner.set_acls("/acl", [make_acl("auth", "", all=True)], version=0).aversion == 1
    with pytest.raises(BadVersionError):
        owner.set_acls("/acl", acl, version=0)
    outsider = connect(server)
    with pytest.raises(NoAuthError):
        outsider.get("/acl")
    with pytest.raises(InvalidACLError):
        outsider.create("/acl-auth", acl=[make_acl("auth", "", all=True)])  # no identity to expand


# --- sessions -----------------------------------------------------------------------------------


def test_ephemerals_vanish_when_the_session_closes(connect: Callable[..., Client]) -> None:
    watcher = connect()
    zk = connect()
    zk.create("/member", ephemeral=True)
    wait_for(lambda: watcher.exists("/member"), 10, "the watcher's server to have /member")
    zk.stop()
    assert zk.state == KazooState.LOST and zk.client_id is None
    wait_for(lambda: watcher.exists("/member") is None, 10, "the closed session's ephemeral to go")


def test_failover_after_kill_9_keeps_the_session_and_its_ephemerals(
    ensemble: Ensemble, connect: Callable[..., Client]
) -> None:
    leader, followers = leader_and_followers(ensemble)
    zk = connect(*followers, leader, timeout=6.0)
    victim = sid_of(ensemble, zk)  # the first follower, unless it was not serving yet
    assert victim != leader
    states: list[str] = []
    zk.add_listener(states.append)
    session = zk.client_id
    zk.create("/held", b"lock", ephemeral=True)
    zk.create("/counter", b"0")
    reads: list[bytes] = []
    stop = threading.Event()

    def reader() -> None:  # reads in flight when the server dies are retried elsewhere
        while not stop.wait(0.01):
            reads.append(zk.get("/counter")[0])

    thread = threading.Thread(target=reader)
    thread.start()
    pid = ensemble.kill(victim)
    try:
        wait_for(lambda: zk.connected and zk.endpoint != ensemble.endpoint(victim), 30, "failover")
        assert zk.client_id == session
        assert zk.exists("/held").owner_session_id == session[0]  # type: ignore[union-attr,index]
        zk.set("/counter", b"1")
        wait_for(lambda: reads[-1:] == [b"1"], 10, "the reader to see the write")
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive(), "a read failed instead of being retried"
    assert states == [KazooState.SUSPENDED, KazooState.CONNECTED]
    wait_for(lambda: not psutil.pid_exists(pid), 10, f"pid {pid} gone")
    wait_for(lambda: ensemble.pid(victim) not in (None, pid), 60, f"node {victim} restarted")
    ensemble.wait_healthy()


SCRIPT = """
import sys
from zkclient import Client
zk = Client(sys.argv[1], timeout=4.0)
zk.start(timeout=30)
zk.create(sys.argv[2], ephemeral=True)
print(zk.client_id[0], flush=True)
sys.stdin.read()
"""


def test_a_session_expires_when_its_client_dies_abruptly(
    ensemble: Ensemble, connect: Callable[..., Client]
) -> None:
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, ensemble.connect_string(), "/doomed"], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        session_id = int(proc.stdout.readline())
        zk = connect()
        stat = wait_for(lambda: zk.exists("/doomed"), 10, "zk's server to have /doomed")
        assert stat.owner_session_id == session_id  # type: ignore[attr-defined]
        os.kill(proc.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        wait_for(lambda: zk.exists("/doomed") is None, 15, "the dead client's session to expire")
        assert time.monotonic() - killed_at > SESSION_S * 0.5, "expired too soon for a 4 s session"
    finally:
        proc.kill()
        proc.wait(10)


# --- watches and sync ---------------------------------------------------------------------------


def test_watch_event_comes_before_any_reply_showing_the_change(
    ensemble: Ensemble, connect: Callable[..., Client]
) -> None:
    leader, followers = leader_and_followers(ensemble)
    watcher, writer = connect(followers[0]), connect(leader)
    writer.create("/order", b"0")
    wait_for(lambda: watcher.exists("/order"), 10, "the follower to have /order")  # reads are local
    for i in range(1, 20):
        events: list[WatchedEvent] = []
        watcher.get("/order", watch=events.append)
        writer.set("/order", str(i).encode())
        while watcher.get("/order")[0] != str(i).encode():
            pass  # a read answered before the change may return after its event: only later ones count
        assert events == [WatchedEvent("CHANGED", "CONNECTED", "/order")], f"round {i}"


def test_one_shot_watches_fire_once_by_type(connect: Callable[..., Client]) -> None:
    zk, other = connect(), connect()
    heard: list[tuple[str, str, str | None]] = []

    def recorder(name: str) -> Callable[[WatchedEvent], None]:
        return lambda e: heard.append((name, e.type, e.path))

    assert zk.exists("/ow", watch=recorder("exists")) is None
    other.create("/ow")
    wait_for(lambda: heard == [("exists", "CREATED", "/ow")], 10, "NodeCreated")
    zk.get("/ow", watch=recorder("data"))
    zk.get_children("/ow", watch=recorder("child"))
    other.create("/ow/kid")
    wait_for(lambda: heard[1:] == [("child", "CHILD", "/ow")], 10, "NodeChildrenChanged")
    other.set("/ow", b"x")
    wait_for(lambda: heard[2:] == [("data", "CHANGED", "/ow")], 10, "NodeDataChanged")
    zk.get("/ow", watch=recorder("data"))
    zk.get_children("/ow", watch=recorder("child"))
    other.delete("/ow", recursive=True)
    wait_for(lambda: len(heard) == 5, 10, "the deletes")
    assert sorted(heard[3:]) == [("child", "CHILD", "/ow"), ("data", "DELETED", "/ow")]
    other.create("/ow")
    zk.sync("/ow")
    assert len(heard) == 5, "one-shot watches fired again"


def test_persistent_recursive_watch_and_remove(connect: Callable[..., Client]) -> None:
    zk, other = connect(), connect()
    heard: list[WatchedEvent] = []
    zk.add_watch("/pr", heard.append, AddWatchMode.PERSISTENT_RECURSIVE)
    other.create("/pr/a/b", makepath=True)
    other.set("/pr/a/b", b"1")
    other.set("/pr/a/b", b"2")
    want = [("CREATED", "/pr"), ("CREATED", "/pr/a"), ("CREATED", "/pr/a/b"), ("CHANGED", "/pr/a/b"),
            ("CHANGED", "/pr/a/b")]  # fmt: skip
    wait_for(lambda: [(e.type, e.path) for e in heard] == want, 10, "the recursive events")
    assert zk.check_watches("/pr", WatcherType.PERSISTENT_RECURSIVE) is True
    assert zk.remove_watches("/pr", WatcherType.PERSISTENT_RECURSIVE) is True
    wait_for(lambda: heard[-1].type == "PERSISTENT_WATCH_REMOVED", 10, "the removed event")
    with pytest.raises(NoWatcherError):
        zk.remove_watches("/pr", WatcherType.ANY)
    with pytest.raises(NoWatcherError):
        zk.check_watches("/pr", WatcherType.PERSISTENT_RECURSIVE)
    count = len(heard)
    other.set("/pr/a", b"quiet")
    zk.sync("/pr")
    assert len(heard) == count


def test_data_and_children_watch_recipes(connect: Callable[..., Client]) -> None:
    zk, other = connect(), connect()
    datas: list[bytes | None] = []
    kids: list[list[str]] = []

    @zk.DataWatch("/recipe")
    def on_data(data: bytes | None, stat: Any) -> bool:
        datas.append(data)
        return data != b"stop"

    assert datas == [None]
    other.create("/recipe", b"a")
    wait_for(lambda: datas == [None, b"a"], 10, "the node's creation")  # zk's server has it now
    zk.ChildrenWatch("/recipe", lambda children: kids.append(sorted(children)))
    assert kids == [[]]
    other.set("/recipe", b"b")
    other.create("/recipe/x")
    other.create("/recipe/y")
    wait_for(lambda: datas == [None, b"a", b"b"], 10, "the data change")
    wait_for(lambda: kids[-1] == ["x", "y"], 10, "children changes")
    other.set("/recipe", b"stop")
    wait_for(lambda: datas[-1] == b"stop", 10, "the stopping call")  # (a later set could hide it)
    other.set("/recipe", b"after")
    zk.sync("/recipe")
    assert datas == [None, b"a", b"b", b"stop"]


def test_watches_survive_failover_and_hear_what_was_missed(
    ensemble: Ensemble, connect: Callable[..., Client]
) -> None:
    leader, followers = leader_and_followers(ensemble)
    zk = connect(*followers, leader, timeout=6.0)
    victim = sid_of(ensemble, zk)
    assert victim != leader
    writer = connect(leader)
    writer.create("/missed", b"0")
    wait_for(lambda: zk.exists("/missed"), 10, "zk's server to have /missed")  # reads are local
    heard: list[WatchedEvent] = []
    zk.get("/missed", watch=heard.append)
    zk.exists("/appears", watch=heard.append)
    pid = ensemble.kill(victim)
    writer.set("/missed", b"1")  # while zk is cut off
    wait_for(lambda: zk.connected and zk.endpoint != ensemble.endpoint(victim), 30, "failover")
    wait_for(lambda: [e.type for e in heard] == ["CHANGED"], 10, "the missed change, replayed by setWatches2")
    writer.create("/appears")
    wait_for(lambda: [e.type for e in heard] == ["CHANGED", "CREATED"], 10, "the re-armed exists watch")
    wait_for(lambda: ensemble.pid(victim) not in (None, pid), 60, f"node {victim} restarted")
    ensemble.wait_healthy()


def test_sync_then_read_sees_every_completed_write(
    ensemble: Ensemble, connect: Callable[..., Client]
) -> None:
    leader, followers = leader_and_followers(ensemble)
    reader, writer = connect(followers[0]), connect(leader)
    writer.create("/synced", b"0")
    for i in range(20):
        writer.set("/synced", b"%d" % i)
        assert reader.sync("/synced") == "/synced"
        assert reader.get("/synced")[0] == b"%d" % i
    for i in range(20, 40):
        writer.set("/synced", b"%d" % i)
        assert reader.get("/synced", linearizable=True)[0] == b"%d" % i
    assert cli(ensemble, "get", "-l", "/synced").stdout == b"39\n".decode()


# --- the CLI ------------------------------------------------------------------------------------


def test_cli_one_shot_commands(ensemble: Ensemble) -> None:
    assert cli(ensemble, "create", "/cli", "hello").stdout == "Created /cli\n"
    assert cli(ensemble, "create", "-s", "/cli/n-", "x").stdout == "Created /cli/n-0000000000\n"
    assert cli(ensemble, "get", "/cli").stdout == "hello\n"
    assert "dataVersion = 0" in cli(ensemble, "get", "-s", "/cli").stdout
    cli(ensemble, "set", "-v", "0", "/cli", "bye")
    failed = cli(ensemble, "set", "-v", "0", "/cli", "again", check=False)
    assert (failed.returncode, failed.stdout) == (1, "version No is not valid : /cli\n")
    assert cli(ensemble, "ls", "/cli").stdout == "[n-0000000000]\n"
    assert cli(ensemble, "ls", "-R", "/cli").stdout == "/cli\n/cli/n-0000000000\n"
    assert "numChildren = 1" in cli(ensemble, "stat", "/cli").stdout
    assert cli(ensemble, "getAllChildrenNumber", "/cli").stdout == "1\n"
    cli(ensemble, "setAcl", "/cli", "world:anyone:cdrwa,digest:bob:xyz=:r")
    assert cli(ensemble, "getAcl", "/cli").stdout == "'world,'anyone\n: cdrwa\n'digest,'bob:xyz=\n: r\n"
    assert cli(ensemble, "create", "-e", "/cli-eph").stdout == "Created /cli-eph\n"
    assert cli(ensemble, "getEphemerals").stdout == "[]\n"  # its own session's: none
    assert cli(ensemble, "addauth", "digest", "bob:pw").returncode == 0
    assert cli(ensemble, "whoami").stdout == "Auth scheme: User\nip: 127.0.0.1\n"  # the server's answer
    missing = cli(ensemble, "get", "/nope", check=False)
    assert (missing.returncode, missing.stdout) == (1, "Node does not exist: /nope\n")
    assert cli(ensemble, "delete", "/cli", check=False).stdout == "Node not empty: /cli\n"
    cli(ensemble, "deleteall", "/cli")
    assert cli(ensemble, "stat", "/cli", check=False).returncode == 1
    usage = cli(ensemble, "create", check=False)
    assert usage.returncode == 2 and "usage: create" in usage.stdout


def test_cli_admin_mntr_asks_every_server(ensemble: Ensemble) -> None:
    out = cli(ensemble, "admin", "mntr", everyone=True).stdout
    assert out.count("zk_server_state\t") == 3
    for sid in ensemble.servers:
        assert f"--- {ensemble.endpoint(sid)} ---" in out


def test_cli_sync_and_watch(ensemble: Ensemble, connect: Callable[..., Client]) -> None:
    assert cli(ensemble, "sync", "/").stdout == "Sync is OK\n"
    cmd = [sys.executable, "-m", "zkclient.cli", "--server", ensemble.connect_string(), "watch", "-R", "--count",
           "2", "/cliw"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("watching /cliw")
        zk = connect()
        zk.create("/cliw/a", makepath=True)
        assert proc.wait(30) == 0
        assert proc.stdout.read().splitlines() == [
            "WatchedEvent state:SyncConnected type:NodeCreated path:/cliw",
            "WatchedEvent state:SyncConnected type:NodeCreated path:/cliw/a",
        ]
    finally:
        proc.kill()
        proc.wait(10)
