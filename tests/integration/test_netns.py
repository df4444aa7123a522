"""Several hosts for real: a 3-node ensemble in three network namespaces with addresses of their
own, over tcp, each node started by its own host's launcher from its own config; a real network
partition (nftables or iptables) between the namespaces makes the majority elect a leader of its
own and the cut-off leader step down; healing brings it back. Root only; all made is removed."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster import netns
from cluster.harness import wait_for
from zkclient import Client, make_acl
from zkclient.exceptions import NoAuthError

pytestmark = pytest.mark.skipif(netns.available() is not None, reason=str(netns.available()))


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[netns.NetnsHarness]:
    h = netns.NetnsHarness(tmp_path / "n", 3)
    try:
        yield h
    finally:
        h.stop()
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert h.lab.tag not in listed, "every namespace made is removed"


def test_three_hosts_over_tcp_and_a_real_partition(hosts: netns.NetnsHarness) -> None:
    lab = hosts.lab
    for sid in hosts.servers:  # each node runs inside its own host's namespace
        pid = hosts.pid(sid)
        assert pid is not None
        where = subprocess.run(["ip", "netns", "identify", str(pid)], capture_output=True, text=True).stdout
        assert where.strip() == lab.namespace(sid)
        assert hosts.endpoint(sid) == f"tcp://{lab.address(sid)}:2181"
    hosts.wait_healthy(60)
    zk = Client(hosts.connect_string(), timeout=10)
    zk.start(timeout=30)
    zk.create("/over-tcp", b"1")
    # Over ZeroMQ's tcp the node learns this client's address (libzmq's Peer-Address): its
    # identity for ACLs of the ip scheme, as ZooKeeper gives every connection one.
    ours = f"{lab.subnet}.254"
    assert zk.whoami() == [("ip", ours)]
    zk.create("/lab-only", b"x", acl=[make_acl("ip", f"{lab.subnet}.0/24", all=True)])
    zk.create("/elsewhere", b"x", acl=[make_acl("ip", "192.0.2.0/24", all=True)])
    assert zk.get("/lab-only")[0] == b"x"
    with pytest.raises(NoAuthError):
        zk.get("/elsewhere")
    zk.stop()
    if netns.firewall() is None:
        pytest.skip("no nft or iptables to cut traffic with")
    old = wait_for(hosts.leader, 30, "a leader")
    assert isinstance(old, int)
    majority = set(hosts.servers) - {old}
    hosts.net_partition([{old}, majority])
    new = wait_for(
        lambda: next((s for s in majority if hosts.state(s) == "leader"), None), 30, "a majority leader"
    )
    wait_for(lambda: hosts.state(old) != "leader", 30, "the cut-off leader to step down")
    zk = Client(",".join(hosts.endpoint(s) for s in sorted(majority)), timeout=10)
    zk.start(timeout=30)
    zk.set("/over-tcp", b"2")  # the majority still takes writes
    zk.stop()
    hosts.heal()
    hosts.wait_healthy(60)
    assert hosts.state(old) == "follower" and hosts.state(new) == "leader"  # type: ignore[arg-type]
    zk = Client(hosts.endpoint(old), timeout=10)
    zk.start(timeout=30)
    zk.sync("/over-tcp")
    assert zk.get("/over-tcp")[0] == b"2"
    zk.stop()


@pytest.mark.skipif(netns.firewall() is None, reason="no nft or iptables to cut traffic with")
def test_verify_under_real_network_partitions(tmp_path: Path) -> None:
    import sys

    cmd = [sys.executable, "-m", "verify", "--nodes", "3", "--time", "8", "--nemesis", "netpartition",
           "--interval", "2.5", "--seed", "5", "--data-dir", str(tmp_path / "v")]  # fmt: skip
    out = subprocess.run(cmd, cwd="/", capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "netpartition" in out.stdout.split("faults injected")[1][:300]
    faults = (tmp_path / "v" / "history.faults.jsonl").read_text()
    assert '"fault": "netpartition ' in faults
