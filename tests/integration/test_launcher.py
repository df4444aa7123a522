"""The launcher tells the truth about real processes: a node that cannot start is named with the
reason from its log, nodes die with their supervisor (or are adopted), `stop` stops every node
of the data dir whoever started it, `status` exits 1 without a quorum and `stop-node` refuses
to break one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from cluster import config
from cluster._supervisor import lock_holder, lock_path, node_command, node_processes
from cluster.harness import ROOT, free_base_port, wait_for
from cluster.launch import config_path, running, serving


def launch(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cluster.launch", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data dir whose every process is gone by pid at the end, whatever the test did."""
    d = tmp_path / "d"
    yield d
    if config_path(d).exists():
        launch("stop", "--data-dir", str(d), "--timeout", "20")
        for proc in node_processes(config_path(d)).values():
            proc.kill()


def hold_ports(*ports: int) -> list[socket.socket]:
    held = []
    for port in ports:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()
        held.append(s)
    return held


def test_a_taken_port_is_named_and_a_quorum_still_starts(data_dir: Path) -> None:
    base = free_base_port(3, "tcp")
    held = hold_ports(base)  # node 1's client port
    try:
        out = launch("--nodes", "3", "--transport", "tcp", "--base-port", str(base), "--data-dir", str(data_dir),
                     "--detach")  # fmt: skip
        status = launch("status", "--data-dir", str(data_dir))  # while node 1 still cannot start
    finally:
        for s in held:
            s.close()
    assert out.returncode == 0, out.stderr
    assert "warning: nodes [1] do not serve" in out.stderr and "Address already in use" in out.stderr
    taken = f"127.0.0.1:{base} (its port for ZeroMQ clients) is taken by pid {os.getpid()}, "
    assert taken in out.stderr, out.stderr
    assert "connect: tcp://127.0.0.1:" in out.stdout
    # status (and the live table of a launcher in the foreground) says why node 1 is down.
    assert "why down (restarted with backoff):" in status.stdout and "  node 1 (died " in status.stdout
    assert taken in status.stdout, status.stdout
    # The port is free again: the supervisor's next restart brings node 1 up.
    conf = config.load(config_path(data_dir))
    wait_for(lambda: len(serving(conf, [1, 2, 3])) == 3, 60, "node 1 to serve once its port is free")
    stopped = launch("stop", "--data-dir", str(data_dir))
    assert stopped.returncode == 0 and "stopped the supervisor" in stopped.stdout
    assert not node_processes(config_path(data_dir))


def test_a_second_ensemble_on_the_same_ports_is_told_whose_they_are(data_dir: Path, tmp_path: Path) -> None:
    """Two local ensembles on one base port: the second one's nodes cannot bind, and the launcher
    says which ports, whose they are (the first ensemble's nodes, by pid and config) and, when
    the person retries with another --base-port, that the config already written decides."""
    base = free_base_port(1, "shm")
    first = tmp_path / "first"
    try:
        up = launch("--nodes", "1", "--base-port", str(base), "--data-dir", str(first), "--detach")
        assert up.returncode == 0, up.stderr
        holder = node_processes(config_path(first))[1].pid
        out = launch("--nodes", "1", "--base-port", str(base), "--data-dir", str(data_dir), "--detach")
        assert out.returncode == 1 and "no quorum serves" in out.stderr, out.stdout + out.stderr
        assert (
            f"127.0.0.1:{base} (its port for ZooKeeper clients) is taken by pid {holder}, zkpy node 1 of "
            f"{config_path(first)}: Address already in use" in out.stderr
        ), out.stderr
        again = launch("--nodes", "1", "--base-port", str(base + 10), "--data-dir", str(data_dir), "--detach")
        assert again.returncode == 2 and "already sets this ensemble's ports" in again.stderr, again.stderr
    finally:
        launch("stop", "--data-dir", str(first), "--timeout", "20")
        for proc in node_processes(config_path(first)).values():
            proc.kill()


def test_no_quorum_fails_with_every_reason_and_leaves_nothing_running(data_dir: Path) -> None:
    base = free_base_port(3, "tcp")
    held = hold_ports(base, base + 1)
    try:
        out = launch("--nodes", "3", "--transport", "tcp", "--base-port", str(base), "--data-dir", str(data_dir),
                     "--detach")  # fmt: skip
    finally:
        for s in held:
            s.close()
    assert out.returncode == 1, out.stdout + out.stderr
    assert "no quorum serves" in out.stderr and "stopped the ensemble again" in out.stderr, out.stderr
    assert out.stderr.count("Address already in use") == 2 and "node 3:" in out.stderr, out.stderr
    assert "connect:" not in out.stdout
    conf = config.load(config_path(data_dir))
    assert lock_holder(lock_path(conf)) is None
    assert not node_processes(config_path(data_dir)), node_processes(config_path(data_dir))
    status = launch("status", "--data-dir", str(data_dir))
    assert status.returncode == 1 and "NO QUORUM" in status.stderr, status.stdout + status.stderr


def test_a_node_still_loading_past_the_timeout_is_waited_for(data_dir: Path) -> None:
    """A node busy on its core (as loading a big snapshot is) is not given up at --timeout."""
    conf = config.local_ensemble(data_dir, 1)
    conf.extra["serverClass"] = "tests.integration.slow_server:SlowToLoad"
    data_dir.mkdir(parents=True)
    conf.write(config_path(data_dir))
    out = launch("--config", str(config_path(data_dir)), "--detach", "--timeout", "1")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "not serving yet after" in out.stderr and "but working (node 1 at" in out.stderr, out.stderr
    assert "connect:" in out.stdout
    # So is a node restarted by start-node.
    assert launch("stop-node", "--config", str(config_path(data_dir)), "--id", "1", "--force").returncode == 0
    out = launch("start-node", "--config", str(config_path(data_dir)), "--id", "1", "--timeout", "1")
    assert out.returncode == 0 and "node 1 is back" in out.stdout, out.stdout + out.stderr


def test_nodes_die_with_their_supervisor_and_a_relaunch_works_at_once(data_dir: Path) -> None:
    assert launch("--nodes", "3", "--data-dir", str(data_dir), "--detach").returncode == 0
    conf = config.load(config_path(data_dir))
    status = launch("status", "--data-dir", str(data_dir))
    assert status.returncode == 0 and "leader" in status.stdout and "warning" not in status.stdout
    cpus = [line.split()[6] for line in status.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert len(cpus) == 3 and all(c.endswith("%") for c in cpus)
    # The CLI finds this ensemble from its data dir, with no connect string to paste.
    cli = [sys.executable, "-m", "zkclient.cli", "--data-dir", str(data_dir)]
    made = subprocess.run([*cli, "create", "/x", "y"], capture_output=True, text=True, timeout=60, cwd="/")
    assert made.returncode == 0 and "Created /x" in made.stdout, made.stdout + made.stderr
    listed = subprocess.run([*cli, "ls", "/"], capture_output=True, text=True, timeout=60, cwd="/")
    assert listed.stdout.strip() == "[x, zookeeper]"
    holder = lock_holder(lock_path(conf))
    assert holder
    nodes = list(node_processes(config_path(data_dir)).values())
    os.kill(holder, signal.SIGKILL)
    wait_for(lambda: not any(map(running, nodes)), 30, "the nodes to die with their supervisor")
    again = launch("--nodes", "3", "--data-dir", str(data_dir), "--detach")  # no "already running"
    assert again.returncode == 0, again.stderr
    assert lock_holder(lock_path(conf)) not in (None, holder)
    # stop-node refuses to leave no quorum, then status warns when exactly a quorum serves.
    assert launch("stop-node", "--id", "1", "--data-dir", str(data_dir)).returncode == 0
    refused = launch("stop-node", "--id", "2", "--data-dir", str(data_dir))
    assert refused.returncode == 1 and "fewer than a quorum (2)" in refused.stderr
    status = launch("status", "--data-dir", str(data_dir))
    assert (
        status.returncode == 0
        and "down (maintenance)" in status.stdout
        and "exactly a quorum" in status.stdout
    )
    assert launch("start-node", "--id", "1", "--data-dir", str(data_dir)).returncode == 0


def test_stop_finds_nodes_nobody_supervises_and_start_adopts_them(data_dir: Path) -> None:
    data_dir.mkdir()
    conf = config.local_ensemble(data_dir, 3)
    conf.write(config_path(data_dir))
    procs = [subprocess.Popen(node_command(config_path(data_dir), sid), cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True) for sid in (1, 2, 3)]  # fmt: skip
    try:
        wait_for(lambda: len(serving(conf, [1, 2, 3])) == 3, 60, "hand-started nodes to serve")
        out = launch("--nodes", "3", "--data-dir", str(data_dir), "--detach")
        assert out.returncode == 0 and "adopting them" in out.stderr
        assert {p.pid for p in node_processes(config_path(data_dir)).values()} == {p.pid for p in procs}
        holder = lock_holder(lock_path(conf))
        assert holder
        os.kill(holder, signal.SIGKILL)  # adopted nodes are not its children: they live on
        wait_for(lambda: lock_holder(lock_path(conf)) is None, 10, "the supervisor gone")
        assert all(p.poll() is None for p in procs)
        stopped = launch("stop", "--data-dir", str(data_dir))
        assert stopped.returncode == 0 and "stopped nodes without a supervisor: 1 (pid" in stopped.stdout
        for p in procs:
            assert p.wait(30) == 0  # SIGTERM: a clean exit
        assert not psutil.pid_exists(holder) or psutil.Process(holder).status() == psutil.STATUS_ZOMBIE
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_autopurge_keeps_the_configured_snapshots(tmp_path: Path) -> None:
    from cluster.harness import Harness
    from cluster.wire import WireSession

    e = Harness(tmp_path / "p", 1, snap_count=40, snap_retain_count=4)
    try:
        s = WireSession(e.endpoint(1))
        for i in range(330):
            assert s.create(f"/s{i}", b"x")[0] == 0
        s.close()
        snap_dir = e.conf.node_dir(1) / "snap"
        wait_for(lambda: len(list(snap_dir.glob("snapshot.*"))) >= 4, 30, "4 snapshots")
        node_log = e.conf.node_dir(1) / "node.log"
        wait_for(lambda: node_log.read_text().count("purged") >= 6, 30, "the snapshots after the first few")
        assert 4 <= len(list(snap_dir.glob("snapshot.*"))) <= 5  # one may be in flight
        assert "autopurge.snapRetainCount=4" in config_path(e.data_dir).read_text()
    finally:
        e.stop()
