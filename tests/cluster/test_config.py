"""The ensemble config file: round trip, and errors that name the line and the rule."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from cluster import config
from zkcore import LocalError


def test_local_ensemble_round_trips(tmp_path: Path) -> None:
    conf = config.local_ensemble(tmp_path, voters=3, observers=2, tick_ms=50)
    parsed = config.parse(conf.render())
    assert parsed == conf
    assert parsed.voters == [1, 2, 3] and parsed.observers == [4, 5]
    assert parsed.connect_string().count("ipc://") == 5
    assert parsed.node_dir(2) == tmp_path.resolve() / "node2"
    off = dataclasses.replace(conf, coalesce_us=0, coalesce_pipelined_us=300)  # zkpy's own keys
    assert "coalesceMicros=0" in off.render() and "coalescePipelinedMicros=300" in off.render()
    assert config.parse(off.render()) == off


def test_tcp_ports(tmp_path: Path) -> None:
    conf = config.local_ensemble(tmp_path, voters=3, transport="tcp", base_port=3000)
    assert conf.servers[1].client == "tcp://127.0.0.1:3000"
    assert conf.servers[3].peer == "tcp://127.0.0.1:4002"


@pytest.mark.parametrize(
    "text, message",
    [
        ("tickTime=100\n", "needs dataDir"),
        ("dataDir=/x\n", "at least one participant"),
        ("dataDir=/x\ntickTime=fast\n", "config:2: tickTime=fast: must be an integer in 1..60000"),
        ("dataDir=/x\ntickTime=0\n", "config:2: tickTime=0: must be an integer in 1..60000"),
        ("dataDir=/x\njunk\n", "config:2: expected key=value"),
        ("dataDir=/x\ntickTme=2000\n", "config:2: unknown key 'tickTme'; did you mean tickTime\\?"),
        ("dataDir=/x\nfrobnicate=1\n", "config:2: unknown key 'frobnicate'; known keys: tickTime"),
        ("dataDir=/x\ntickTime=5\ntickTime=6\n", "config:3: tickTime is set twice \\(first on line 2\\)"),
        (
            "dataDir=/x\nsnapSizeLimitInKb=-1\n",
            "snapSizeLimitInKb=-1: must be an integer in 0..1099511627776",
        ),
        ("dataDir=/x\ncoalesceMicros=20000\n", "coalesceMicros=20000: must be an integer in 0..10000"),
        (
            "dataDir=/x\ncoalescePipelinedMicros=-5\n",
            "coalescePipelinedMicros=-5: must be an integer in 0..10000",
        ),
        (
            "dataDir=/x\nautopurge.snapRetainCount=1\n",
            "autopurge.snapRetainCount=1: must be an integer in 3..1000",
        ),
        (
            "dataDir=/x\nminSessionTimeout=9\nmaxSessionTimeout=8\n"
            "server.1=participant;peer=tcp://a:1;client=tcp://a:2\n",
            "minSessionTimeout=9 must be at most maxSessionTimeout=8",
        ),
        ("dataDir=/x\nserver.1=zoo1:2888\n", "config:2: server.1='zoo1:2888': expected host:peerPort"),
        ("dataDir=/x\nserver.1=zoo1:2888:3888\n", "no client port; add ';<clientPort>'"),
        ("dataDir=/x\nserver.1=participant;peer=tcp://a:1\n", "needs both peer= and client="),
        ("dataDir=/x\nserver.1=leader;peer=tcp://a:1;client=tcp://a:2\n", "role must be one of"),
        (
            "dataDir=/x\nserver.1=participant;peer=udp://a:1;client=tcp://a:2\n",
            "must be tcp://, ipc:// or shm://",
        ),
        (
            "dataDir=/x\nserver.1=participant;peer=tcp://a:1;client=shm:///a\n",
            "client endpoint must be tcp:// or ipc://",
        ),
        (
            "dataDir=/x\nserver.1=participant;peer=shm://run/1.peer;client=ipc:///a\n",
            "needs an absolute path",
        ),
        (
            "dataDir=/x\nserver.1=participant;peer=shm:///r/1.peer;client=ipc:///r/1\n"
            "server.2=participant;peer=tcp://b:1;client=tcp://b:2\n",
            "shm:// peer endpoints work only when every server uses them \\(one host\\): servers \\[1\\] do, \\[2\\] do not",
        ),
        ("dataDir=/x\nserver.1=participant;peer=tcp://a:1;client=tcp://a:1\n", "must be distinct"),
        ("dataDir=/x\nserver.x=participant;peer=tcp://a:1;client=tcp://a:2\n", "server.<id>"),
        ("dataDir=/x\nserver.300=participant;peer=tcp://a:1;client=tcp://a:2\n", "1..255"),
    ],
)
def test_bad_configs_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(LocalError, match=message):
        config.parse(text)


def test_shm_peers_with_ipc_clients(tmp_path: Path) -> None:
    conf = config.local_ensemble(tmp_path, voters=3, transport="shm", base_port=3000)
    assert conf.servers[2].peer == f"shm://{tmp_path.resolve()}/run/2.peer"
    assert conf.servers[2].client == f"ipc://{tmp_path.resolve()}/run/2.client"
    assert conf.servers[2].zk == "127.0.0.1:3001"
    assert config.parse(conf.render()) == conf


def test_unknown_transport_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(LocalError, match="transport must be one of ipc, tcp, shm: 'udp'"):
        config.local_ensemble(tmp_path, voters=3, transport="udp")


def test_long_ipc_paths_are_refused_with_advice(tmp_path: Path) -> None:
    with pytest.raises(LocalError, match="shorter --data-dir or --transport tcp"):
        config.local_ensemble(tmp_path / ("d" * 120), voters=1)


def test_zoo_cfg_server_lines_are_accepted() -> None:
    conf = config.parse(
        "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/var/lib/zookeeper\nclientPort=2181\n"
        "maxClientCnxns=60\nautopurge.snapRetainCount=5\nautopurge.purgeInterval=24\n"
        "server.1=zoo1:2888:3888\nserver.2=zoo2:2888:3888;2182\nserver.3=10.0.0.3:2888:3888:observer;0.0.0.0:2183\n",
        "zoo.cfg",
    )
    # The client port keeps speaking ZooKeeper's protocol; our ZeroMQ door takes the election port.
    assert conf.servers[1] == config.ServerConfig(
        1, "participant", "tcp://zoo1:2888", "tcp://zoo1:3888", "zoo1:2181"
    )
    assert conf.servers[2].zk == "zoo2:2182"
    assert conf.servers[3] == config.ServerConfig(
        3, "observer", "tcp://10.0.0.3:2888", "tcp://10.0.0.3:3888", "10.0.0.3:2183"
    )
    assert (conf.tick_ms, conf.snap_retain_count, conf.purge_interval_hours) == (2000, 5, 24)
    assert (conf.coalesce_us, conf.coalesce_pipelined_us) == (100, 2000)  # zkpy's own, not in a zoo.cfg
    assert conf.extra["maxClientCnxns"] == "60" and not conf.ignored  # clientPort was used
    assert config.parse(conf.render()) == conf  # and it renders in zkpy's own form


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p, "no such config file"),
        (lambda p: p.mkdir() or p, "is a folder, not a config file"),
    ],
)
def test_load_names_the_file(tmp_path: Path, make: object, message: str) -> None:
    path = make(tmp_path / "zoo.cfg")  # type: ignore[operator]
    with pytest.raises(LocalError, match=f"{path}: {message}"):
        config.load(path)


def test_load_errors_name_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "ensemble.cfg"
    path.write_text("dataDir=/x\n\ntickTme=2000\n")
    with pytest.raises(LocalError, match=f"^{path}:3: unknown key 'tickTme'; did you mean tickTime"):
        config.load(path)
