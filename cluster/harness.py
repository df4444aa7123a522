"""A handle on a launcher-started ensemble, for tests, benchmarks and the verifier: start it in a
folder, look at its nodes, do faults to them (kill -9, SIGSTOP/SIGCONT, partitions), and stop
everything it started by pid at the end, whatever happened in between."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from cluster import admin, config, faults
from cluster._shm_transport import remove_rings
from cluster._supervisor import lock_holder, lock_path, node_processes
from cluster.launch import config_path, node_pid_path, read_pid

ROOT = Path(__file__).resolve().parents[1]
SERVING_STATES = ("leader", "follower", "observer")


def wait_for(predicate: Callable[[], object], timeout_s: float, what: str) -> object:
    """Poll until predicate() is truthy and return it; AssertionError after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.02)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base_port(servers: int, transport: str) -> int:
    """A base port whose ports (config.local_ensemble's layout) are all free now, so that
    ensembles of several tests, or of one test, do not collide. Every port stays below Linux's
    ephemeral range (32768 up), where any outgoing connection may take one at any moment."""
    offsets = [0, 1000, 2000, 6000] if transport == "tcp" else [0, 6000]
    span = 32768 - 6000 - servers - 20000
    start = os.getpid() % (span // 10) * 10
    for attempt in range(span // 10):
        base = 20000 + (start + attempt * 10) % span
        if all(_port_free(base + offset + i) for offset in offsets for i in range(servers)):
            return base
    raise AssertionError("no free range of ports for an ensemble")


class Harness:
    """`options` (EnsembleConfig fields, and `extra` for free-form keys such as `debug`) write
    the config ahead of the launcher, which then resumes it."""

    def __init__(
        self,
        data_dir: Path,
        nodes: int,
        observers: int = 0,
        transport: str = config.TRANSPORT_DEFAULT,
        base_port: int | None = None,
        **options: Any,
    ) -> None:
        self.data_dir = data_dir.resolve()
        if base_port is None:
            base_port = free_base_port(nodes + observers, transport)
        if options:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            conf = config.local_ensemble(self.data_dir, nodes, observers, transport, base_port, **options)
            conf.write(config_path(self.data_dir))
        # A config written already (above, or by the caller) decides the ports: the launcher
        # refuses a --base-port that disagrees with it.
        ports = [] if config_path(self.data_dir).exists() else ["--base-port", str(base_port)]
        self.launch("--nodes", str(nodes), "--observers", str(observers), "--transport", transport, *ports,
                    "--detach", timeout=90)  # fmt: skip
        self.conf = config.load(config_path(self.data_dir))
        self.started_pids = {sid: self.pid(sid) for sid in self.conf.servers}
        self.paused: set[int] = set()

    def launch(self, *args: str, timeout: float = 30) -> str:
        cmd = [sys.executable, "-m", "cluster.launch", *args, "--data-dir", str(self.data_dir)]
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        assert out.returncode == 0, f"cluster.launch {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}"
        return out.stdout

    # --- looking ----------------------------------------------------------------------------

    @property
    def servers(self) -> list[int]:
        return sorted(self.conf.servers)

    def endpoint(self, sid: int) -> str:
        return self.conf.servers[sid].client

    def connect_string(self) -> str:
        return self.conf.connect_string()

    def pid(self, sid: int) -> int | None:
        return read_pid(node_pid_path(self.conf, sid))

    def mntr(self, sid: int) -> dict[str, str]:
        return admin.parse_mntr(admin.query(self.endpoint(sid), "mntr", 500) or "")

    def state(self, sid: int) -> str:
        return self.mntr(sid).get("zk_server_state", "down")

    def leader(self) -> int | None:
        for sid in self.conf.voters:
            if sid not in self.paused and self.state(sid) == "leader":
                return sid
        return None

    def wait_healthy(self, timeout_s: float = 60) -> None:
        """Every node up and serving (leader, follower or observer)."""
        wait_for(lambda: all(self.state(sid) in SERVING_STATES for sid in self.servers), timeout_s,
                 "every node to serve")  # fmt: skip

    # --- faults -----------------------------------------------------------------------------

    def kill(self, sid: int, sig: int = signal.SIGKILL) -> int:
        """Signal a node (kill -9 by default; the supervisor restarts it). Its pid."""
        pid = self.pid(sid)
        assert pid is not None, f"node {sid} is not running"
        os.kill(pid, sig)
        if sig == signal.SIGSTOP:
            self.paused.add(sid)
        elif sig in (signal.SIGCONT, signal.SIGKILL):
            self.paused.discard(sid)
        return pid

    def partition(self, groups: list[set[int]]) -> None:
        faults.partition(self.data_dir, groups)

    def heal(self) -> None:
        """End partitions and pauses."""
        faults.heal(self.data_dir)
        for sid in list(self.paused):
            try:
                self.kill(sid, signal.SIGCONT)
            except (AssertionError, ProcessLookupError):
                self.paused.discard(sid)

    def kill_supervisor(self) -> None:
        """kill -9 of the supervisor. Its nodes would die with it (SIGTERM): they are frozen
        first (SIGSTOP, recorded as paused) so that a test can kill -9 them as a crash."""
        pid = lock_holder(lock_path(self.conf))
        assert pid, "no supervisor running"
        for sid in self.servers:
            if self.pid(sid) is not None:
                self.kill(sid, signal.SIGSTOP)
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: lock_holder(lock_path(self.conf)) is None, 10, f"supervisor {pid} gone")

    def stop(self) -> None:
        faults.heal(self.data_dir)
        sup = lock_holder(lock_path(self.conf))
        if sup is not None:
            subprocess.run([sys.executable, "-m", "cluster.launch", "stop", "--data-dir", str(self.data_dir)],
                           cwd=ROOT, capture_output=True, timeout=60)  # fmt: skip
        # Whatever is left (a node a test SIGSTOPped, a supervisor that hung) goes by pid, as
        # the process table names them (a pid file may name a pid reused since).
        for proc in node_processes(config_path(self.data_dir)).values():
            try:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
            except psutil.Error:
                pass
        if sup and psutil.pid_exists(sup):
            os.kill(sup, signal.SIGKILL)
        remove_rings(self.conf)
