"""The two services `python -m bench` measures, started and stopped by pid: zkpy's ensemble
(cluster.harness) and Debian's Apache ZooKeeper 3.8 (java and the jars in /usr/share/java), each
with fsync on and every server listening for ZooKeeper's client protocol on 127.0.0.1."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import psutil

from cluster.harness import Harness, free_base_port, wait_for

ZK_JARS = ("zookeeper", "zookeeper-jute", "slf4j-api", "slf4j-nop", "netty-all", "commons-cli",
           "metrics-core", "jackson-databind", "jackson-core", "jackson-annotations", "commons-io",
           "snappy-java")  # fmt: skip
ZK_CLASSPATH = ":".join(f"/usr/share/java/{jar}.jar" for jar in ZK_JARS)
START_S = 120  # a JVM on a busy 2-core host can take a while


def four_letter(host: str, word: str, timeout_s: float = 2) -> str:
    """ZooKeeper's four-letter word on a client port (ours answers them on its ZooKeeper door)."""
    address, port = host.rsplit(":", 1)
    try:
        with socket.create_connection((address, int(port)), timeout=timeout_s) as s:
            s.sendall(word.encode())
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks).decode(errors="replace")
    except OSError:
        return ""


def mode(host: str) -> str:
    found = re.search(r"^Mode: (\w+)", four_letter(host, "srvr"), re.M)
    return found.group(1) if found else "down"


def node_count(host: str) -> int:
    found = re.search(r"^Node count: (\d+)", four_letter(host, "srvr"), re.M)
    return int(found.group(1)) if found else -1


def set_affinity(pid: int, cores: set[int]) -> None:
    """taskset -a -p: every thread of pid (threads started later inherit it)."""
    for thread in psutil.Process(pid).threads():
        try:
            os.sched_setaffinity(thread.id, cores)
        except OSError:
            pass  # a thread that ended meanwhile


class Service:
    """What the harness needs of a running ensemble."""

    name = ""
    hosts: list[str]  # ZooKeeper-protocol host:port of each server, in server-id order

    def pids(self) -> list[int]:
        raise NotImplementedError

    def follower(self) -> str:
        """A follower's host:port (for unloaded latency: writes are forwarded, as they are in use)."""
        return next(h for h in self.hosts if mode(h) == "follower")

    def leader_messages(self) -> int | None:
        """Peer messages the leader has sent and received so far; None where not counted."""
        return None

    def wait_replicated(self, znodes: int) -> None:
        wait_for(
            lambda: all(node_count(h) >= znodes + 1 for h in self.hosts),
            60,
            "every server to have every znode",
        )

    def stop(self) -> None:
        raise NotImplementedError


class Ours(Service):
    name = "zkpy"

    def __init__(self, root: Path, voters: int, observers: int) -> None:
        self.harness = Harness(root, voters, observers)
        try:
            self.harness.wait_healthy(START_S)
            self.hosts = [self.harness.conf.servers[sid].zk for sid in self.harness.servers]
            assert all(self.hosts), "every server in the Harness config has a zk= port"
        except BaseException:
            self.harness.stop()
            raise

    def pids(self) -> list[int]:
        return [pid for pid in (self.harness.pid(sid) for sid in self.harness.servers) if pid]

    @property
    def endpoints(self) -> list[str]:
        """The ZeroMQ door of each server."""
        return [self.harness.endpoint(sid) for sid in self.harness.servers]

    def leader_messages(self) -> int | None:
        leader = self.harness.leader()
        if leader is None:
            return None
        values = self.harness.mntr(leader)
        return int(values["zk_peer_messages_sent"]) + int(values["zk_peer_messages_received"])

    def stop(self) -> None:
        self.harness.stop()


class ZooKeeper(Service):
    name = "ZooKeeper"

    def __init__(self, root: Path, voters: int, observers: int, heap: str = "1g") -> None:
        if not shutil.which("java") or not Path("/usr/share/java/zookeeper.jar").exists():
            raise RuntimeError(
                "Apache ZooKeeper needs java and Debian's zookeeper package: apt-get install zookeeper"
            )
        n = voters + observers
        base = free_base_port(n, "tcp")  # client base+i-1, quorum base+1000+i-1, election base+2000+i-1
        self.hosts = [f"127.0.0.1:{base + i}" for i in range(n)]
        self.procs: list[subprocess.Popen[bytes]] = []
        servers = [f"server.{i + 1}=127.0.0.1:{base + 1000 + i}:{base + 2000 + i}"
                   + (":observer" if i >= voters else "") for i in range(n)] if n > 1 else []  # fmt: skip
        try:
            for i in range(n):
                self.procs.append(self._start(root / str(i + 1), i + 1, base + i, servers, i >= voters, heap))
            wait_for(lambda: all(mode(h) in ("leader", "follower", "observer", "standalone") for h in self.hosts)
                     or self._died(), START_S, "ZooKeeper to serve")  # fmt: skip
            if self._died():
                raise RuntimeError(f"a ZooKeeper server exited: see {root}/*/out.log")
        except BaseException:
            self.stop()
            raise

    def _start(self, d: Path, sid: int, port: int, servers: list[str], observer: bool,
               heap: str) -> subprocess.Popen[bytes]:  # fmt: skip
        (d / "data").mkdir(parents=True)
        (d / "data" / "myid").write_text(f"{sid}\n")
        lines = ["tickTime=2000", "initLimit=10", "syncLimit=5", f"dataDir={d / 'data'}", f"clientPort={port}",
                 "clientPortAddress=127.0.0.1", "admin.enableServer=false", "4lw.commands.whitelist=*",
                 "maxClientCnxns=0", *servers] + (["peerType=observer"] if observer else [])  # fmt: skip
        (d / "zoo.cfg").write_text("\n".join(lines) + "\n")  # forceSync is on unless set to no
        with open(d / "out.log", "wb") as log:
            return subprocess.Popen(
                ["java", f"-Xmx{heap}", f"-Xms{heap}", "-cp", ZK_CLASSPATH,
                 "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(d / "zoo.cfg")],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip

    def _died(self) -> bool:
        return any(p.poll() is not None for p in self.procs)

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            p.wait(timeout=30)
