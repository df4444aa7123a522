"""Real ensembles for integration tests: started by the launcher in a temporary folder, stopped
by pid at the end (nodes and supervisor alike), whatever the test did to them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from cluster import admin, config
from cluster.launch import SUPERVISOR_PID, config_path, node_pid_path, read_pid
from tests.integration.wire import NoAnswer, Refused, WireSession

ROOT = Path(__file__).resolve().parents[2]


def wait_for(predicate: Callable[[], object], timeout_s: float, what: str) -> object:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.02)


class Ensemble:
    def __init__(
        self, data_dir: Path, nodes: int, observers: int = 0, transport: str = "ipc", **options: int
    ) -> None:
        self.data_dir = data_dir
        if options:  # a config written ahead of the launcher, which then resumes it
            data_dir.mkdir(parents=True)
            config.local_ensemble(data_dir, nodes, observers, transport, **options).write(
                config_path(data_dir)
            )
        self.launch("--nodes", str(nodes), "--observers", str(observers), "--transport", transport,
                    "--base-port", str(20000 + os.getpid() % 5000 * 2), "--detach", timeout=60)  # fmt: skip
        self.conf = config.load(config_path(data_dir))
        self.started_pids = {sid: self.pid(sid) for sid in self.conf.servers}

    def launch(self, *args: str, timeout: float = 30) -> str:
        cmd = [sys.executable, "-m", "cluster.launch", *args, "--data-dir", str(self.data_dir)]
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        assert out.returncode == 0, f"{' '.join(args)} failed:\n{out.stdout}\n{out.stderr}"
        return out.stdout

    def pid(self, sid: int) -> int | None:
        return read_pid(node_pid_path(self.conf, sid))

    def mntr(self, sid: int) -> dict[str, str]:
        return admin.parse_mntr(admin.query(self.conf.servers[sid].client, "mntr", 500) or "")

    def leader(self) -> int | None:
        for sid in self.conf.voters:
            if self.mntr(sid).get("zk_server_state") == "leader":
                return sid
        return None

    def session(self, sid: int | None = None, **kw: object) -> WireSession:
        """A session on server sid (or any serving server), retried until one accepts."""
        order = [sid] if sid is not None else sorted(self.conf.servers)

        def attempt() -> WireSession | None:
            for s in order:
                try:
                    return WireSession(self.conf.servers[s].client, **kw)  # type: ignore[arg-type]
                except (Refused, NoAnswer):
                    continue
            return None

        return wait_for(attempt, 30, f"a server of {order} to accept a session")  # type: ignore[return-value]

    def kill(self, sid: int, sig: int = signal.SIGKILL) -> int:
        pid = self.pid(sid)
        assert pid is not None, f"node {sid} is not running"
        os.kill(pid, sig)
        return pid

    def kill_supervisor(self) -> None:
        pid = read_pid(self.data_dir / SUPERVISOR_PID)
        assert pid is not None, "no supervisor running"
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not psutil.pid_exists(pid), 10, f"supervisor {pid} gone")

    def stop(self) -> None:
        sup = read_pid(self.data_dir / SUPERVISOR_PID)
        if sup is not None:
            subprocess.run([sys.executable, "-m", "cluster.launch", "stop", "--data-dir", str(self.data_dir)],
                           cwd=ROOT, capture_output=True, timeout=30)  # fmt: skip
        # Whatever is left (a node the test SIGSTOPped, a supervisor that hung) goes by pid.
        for sid in self.conf.servers:
            pid = self.pid(sid)
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGCONT)
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if sup is not None and psutil.pid_exists(sup):
            os.kill(sup, signal.SIGKILL)


@pytest.fixture
def ensemble_factory(tmp_path: Path) -> Iterator[Callable[..., Ensemble]]:
    made: list[Ensemble] = []

    def make(nodes: int = 3, observers: int = 0, transport: str = "ipc", **options: int) -> Ensemble:
        e = Ensemble(tmp_path / f"e{len(made)}", nodes, observers, transport, **options)
        made.append(e)
        return e

    yield make
    for e in made:
        e.stop()
