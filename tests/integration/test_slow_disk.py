"""A leader on a slow disk: every fdatasync it makes takes 800 ms (strace delays the real
syscall), longer than syncLimit x tickTime (500 ms). The log syncs on a thread of its own, so
the leader's loop goes on with its heartbeats: no follower leaves it and nobody elects; and
writes commit on the two followers' disks at their speed, those of the leader's own clients
too (a server applies what its quorum made durable without waiting for its own disk). Root
and strace (`make deps` installs it); every process started is stopped."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from cluster.faults import slow_fdatasync
from cluster.harness import Harness, wait_for
from zkclient import Client

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("strace") is None, reason="delaying fdatasync needs root and strace"
)

DELAY_US = 800_000


def test_a_slow_disk_on_the_leader_costs_no_election() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="zkslow", dir="/tmp"))  # short: ipc socket paths have a limit
    e = Harness(tmp / "e", 3)
    clients: list[Client] = []
    strace: subprocess.Popen[bytes] | None = None
    try:
        leader = wait_for(e.leader, 30, "a leader")
        follower = next(sid for sid in e.servers if sid != leader)
        via_follower, via_leader = (
            Client(e.endpoint(follower), timeout=10),
            Client(e.endpoint(leader), timeout=10),
        )
        clients += [via_follower, via_leader]
        for zk in clients:
            zk.start(timeout=30)
        via_follower.create("/s", b"")
        epochs = {sid: e.mntr(sid)["zk_epoch"] for sid in e.servers}
        pid = e.pid(leader)
        assert pid is not None
        strace = slow_fdatasync(pid, DELAY_US)
        time.sleep(1)  # attached to every thread
        started = time.monotonic()
        via_leader.set("/s", b"from the leader's own client")
        leader_took = time.monotonic() - started
        took = []
        deadline = time.monotonic() + 3  # six times syncLimit x tickTime
        while time.monotonic() < deadline:
            started = time.monotonic()
            via_follower.set("/s", b"through a follower")
            took.append(time.monotonic() - started)
        slow = int(e.mntr(leader)["zk_fsync_threshold_exceed_count"])
        strace.terminate()
        strace.wait(timeout=30)
        strace = None
        assert e.leader() == leader
        assert {sid: e.mntr(sid)["zk_epoch"] for sid in e.servers} == epochs, "an election happened"
        assert slow >= 2, "the leader's slow fdatasyncs are counted"
        assert statistics.median(took) < DELAY_US / 1e6 / 2, f"writes waited for the leader's disk: {took}"
        assert leader_took < DELAY_US / 1e6 / 2, f"the leader's own client waited for its disk: {leader_took}"
        assert via_leader.get("/s")[0] == b"through a follower"
    finally:
        if strace is not None:
            strace.kill()
            strace.wait()
        for zk in clients:
            zk.stop()
        e.stop()
        shutil.rmtree(tmp, ignore_errors=True)
