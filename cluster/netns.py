"""Several hosts on one machine, for tests and the verifier: each node in a network namespace of
its own with its own address on a shared bridge, talking tcp, started by its own per-host
launcher exactly as on separate machines (`--config <host's config> --ids N`). Real network
faults cut the traffic between namespaces with nftables (or iptables) rules, beside the in-node
fault point of cluster.faults. Needs root and iproute2; everything made is removed by close().

The test process reaches the nodes through one more veth from its own namespace to the bridge
(address .254 of the lab's /24), so clients run in-process as usual.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from cluster import config, faults
from cluster._supervisor import node_pid_path, node_processes
from cluster.harness import ROOT, Harness
from cluster.launch import CONFIG_NAME, read_pid

PEER_PORT, CLIENT_PORT = 2888, 2181
NFT_TABLE = "zkpy_faults"


def available() -> str | None:
    """Why a lab cannot be made here, or None when it can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "needs iproute2's `ip`"
    return None


def firewall() -> str | None:
    """The tool that cuts traffic: nft, else iptables, else None."""
    return "nft" if shutil.which("nft") else "iptables" if shutil.which("iptables") else None


def _ip(*args: str, check: bool = True) -> None:
    out = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and out.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {out.stderr.strip()}")


class NetLab:
    """`nodes` namespaces on one bridge, addresses <subnet>.1.. and <subnet>.254 for us."""

    def __init__(self, nodes: int, tag: str | None = None) -> None:
        self.nodes = nodes
        self.tag = tag or f"zk{os.getpid() % 100000}"
        self.subnet = f"10.77.{1 + os.getpid() % 250}"
        self.bridge_ns = f"{self.tag}-br"
        self.host_link = f"{self.tag}-h0"
        self.made = False

    def namespace(self, i: int) -> str:
        return f"{self.tag}-{i}"

    def address(self, i: int) -> str:
        return f"{self.subnet}.{i}"

    def command(self, i: int, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace(i), *argv]

    def up(self) -> None:
        self.made = True
        try:
            _ip("netns", "add", self.bridge_ns)
            self._in(self.bridge_ns, "link", "add", "br0", "type", "bridge")
            self._in(self.bridge_ns, "link", "set", "br0", "up")
            for i in range(1, self.nodes + 1):
                ns = self.namespace(i)
                _ip("netns", "add", ns)
                inside = self._veth(f"{self.tag}-{i}a", f"{self.tag}-{i}b")
                _ip("link", "set", inside, "netns", ns)
                self._in(ns, "addr", "add", f"{self.address(i)}/24", "dev", inside)
                self._in(ns, "link", "set", inside, "up")
                self._in(ns, "link", "set", "lo", "up")
            self._veth(self.host_link, f"{self.tag}-h1")
            _ip("addr", "add", f"{self.subnet}.254/24", "dev", self.host_link)
            _ip("link", "set", self.host_link, "up")
        except BaseException:
            self.close()
            raise

    def _in(self, ns: str, *args: str) -> None:
        _ip("-n", ns, *args)

    def _veth(self, ours: str, bridged: str) -> str:
        """A veth pair whose `bridged` end is on the bridge; returns the other end's name."""
        _ip("link", "add", ours, "type", "veth", "peer", "name", bridged)
        _ip("link", "set", bridged, "netns", self.bridge_ns)
        self._in(self.bridge_ns, "link", "set", bridged, "master", "br0")
        self._in(self.bridge_ns, "link", "set", bridged, "up")
        return ours

    def cut(self, groups: list[set[int]]) -> None:
        """Drop every packet between nodes of different groups, in both directions."""
        tool = firewall()
        if tool is None:
            raise RuntimeError("a network partition needs nft (nftables) or iptables")
        self.heal()
        for group in groups:
            others = sorted({i for g in groups if g is not group for i in g})
            addresses = [self.address(i) for i in others]
            for i in group:
                if tool == "nft":
                    self._nft(i, addresses)
                else:
                    for a in addresses:
                        self._exec(i, ["iptables", "-A", "INPUT", "-s", a, "-j", "DROP"])
                        self._exec(i, ["iptables", "-A", "OUTPUT", "-d", a, "-j", "DROP"])

    def _nft(self, i: int, addresses: list[str]) -> None:
        peers = ", ".join(addresses)
        script = (
            f"table inet {NFT_TABLE} {{\n"
            f"  chain input {{ type filter hook input priority 0; ip saddr {{ {peers} }} drop; }}\n"
            f"  chain output {{ type filter hook output priority 0; ip daddr {{ {peers} }} drop; }}\n"
            "}\n"
        )
        out = subprocess.run(self.command(i, ["nft", "-f", "-"]), input=script, capture_output=True, text=True,
                             timeout=30)  # fmt: skip
        if out.returncode != 0:
            raise RuntimeError(f"nft in {self.namespace(i)}: {out.stderr.strip()}")

    def heal(self) -> None:
        tool = firewall()
        for i in range(1, self.nodes + 1):
            if tool == "nft":
                self._exec(i, ["nft", "delete", "table", "inet", NFT_TABLE], check=False)
            elif tool == "iptables":
                self._exec(i, ["iptables", "-F"], check=False)

    def _exec(self, i: int, argv: list[str], check: bool = True) -> None:
        out = subprocess.run(self.command(i, argv), capture_output=True, text=True, timeout=30)
        if check and out.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} in {self.namespace(i)}: {out.stderr.strip()}")

    def close(self) -> None:
        if not self.made:
            return
        for ns in [self.namespace(i) for i in range(1, self.nodes + 1)] + [self.bridge_ns]:
            _ip("netns", "del", ns, check=False)
        _ip("link", "del", self.host_link, check=False)
        self.made = False


class NetnsHarness(Harness):
    """The Harness on a NetLab: node N's host keeps its files in <data_dir>/host<N> with its own
    config (the same servers, its own dataDir), and runs `cluster.launch --config ... --ids N`."""

    def __init__(self, data_dir: Path, nodes: int, **options: Any) -> None:
        self.data_dir = data_dir.resolve()
        self.lab = NetLab(nodes)
        self.lab.up()
        try:
            servers = {
                i: config.ServerConfig(
                    i,
                    "participant",
                    f"tcp://{self.lab.address(i)}:{PEER_PORT}",
                    f"tcp://{self.lab.address(i)}:{CLIENT_PORT}",
                )  # fmt: skip
                for i in range(1, nodes + 1)
            }
            self.confs: dict[int, config.EnsembleConfig] = {}
            for i in servers:
                host = self.data_dir / f"host{i}"
                host.mkdir(parents=True, exist_ok=True)
                self.confs[i] = config.EnsembleConfig(servers, host, **options)
                self.confs[i].write(host / CONFIG_NAME)
            self.conf = self.confs[1]
            self.start_hosts()
        except BaseException:
            self.stop()
            raise
        self.started_pids = {sid: self.pid(sid) for sid in self.conf.servers}
        self.paused: set[int] = set()

    def config_file(self, sid: int) -> Path:
        return self.confs[sid].data_dir / CONFIG_NAME

    def host_launch(self, sid: int, *args: str) -> subprocess.Popen[str]:
        cmd = [sys.executable, "-m", "cluster.launch", *args, "--config", str(self.config_file(sid))]
        return subprocess.Popen(self.lab.command(sid, cmd), cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)  # fmt: skip

    def start_hosts(self) -> None:
        """Every host's launcher at once (a node serves only once a quorum of hosts is up)."""
        started = {sid: self.host_launch(sid, "--ids", str(sid), "--detach", "--timeout", "90")
                   for sid in self.confs}  # fmt: skip
        for sid, proc in started.items():
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, f"host {sid}'s launcher failed:\n{out}\n{err}"

    def pid(self, sid: int) -> int | None:
        return read_pid(node_pid_path(self.confs[sid], sid))

    def partition(self, groups: list[set[int]]) -> None:
        """The in-node fault point, on every host (each reads its own data dir)."""
        for conf in self.confs.values():
            faults.partition(conf.data_dir, groups)

    def net_partition(self, groups: list[set[int]]) -> None:
        """A real one: the hosts' traffic is dropped between groups."""
        self.lab.cut(groups)

    def heal(self) -> None:
        for conf in self.confs.values():
            faults.heal(conf.data_dir)
        self.lab.heal()
        super().heal()

    def kill_supervisor(self) -> None:
        raise NotImplementedError("each host has its own supervisor: stop it with `stop --config`")

    def stop(self) -> None:
        try:
            if hasattr(self, "confs"):
                stopping = [self.host_launch(sid, "stop", "--timeout", "20") for sid in self.confs]
                for launcher in stopping:
                    launcher.communicate(timeout=60)
                for sid in self.confs:  # whatever a stop left, by pid
                    for node in node_processes(self.config_file(sid)).values():
                        node.send_signal(signal.SIGCONT)
                        node.kill()
        finally:
            self.lab.close()
