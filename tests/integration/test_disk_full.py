"""A node whose disk fills up: on a real tmpfs far smaller than a log segment's preallocation, it
takes writes until the disk is full (preallocation is an optimisation it gives up, not a
condition of writing), then stops with a message that says what happened and what to do, which
the supervisor's log repeats; once there is room again it comes back with every acked write.
Root only (it mounts the tmpfs); everything made is removed."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.harness import Harness, wait_for
from zkclient import Client

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("mount") is None, reason="mounting a tmpfs needs root and mount"
)

DATA = b"z" * 100_000


def _mount(where: Path, size_mb: int, remount: bool = False) -> None:
    options = f"{'remount,' if remount else ''}size={size_mb}m"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=True, timeout=30)


@pytest.fixture
def small_disk() -> Iterator[Path]:
    where = Path(tempfile.mkdtemp(prefix="zkfull", dir="/tmp"))  # short: ipc socket paths have a limit
    _mount(where, 8)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, timeout=30)
        where.rmdir()


def test_a_full_disk_stops_writes_clearly_and_room_brings_them_back(small_disk: Path) -> None:
    e = Harness(small_disk / "e", 1)
    try:
        wait_for(e.leader, 30, "a leader")
        zk = Client(e.connect_string(), timeout=10)
        zk.start(timeout=30)
        zk.create("/fill", b"")
        acked = []
        for i in range(200):  # 20 MB: more than the disk holds
            try:
                zk.create(f"/fill/n{i}", DATA)
            except Exception:  # noqa: BLE001 - the node stops when the disk is full
                break
            acked.append(f"n{i}")
        else:
            pytest.fail("every write went through on an 8 MB disk")
        zk.stop()
        # Written until full: with the whole 64 MB preallocation required, not even the first.
        assert len(acked) * len(DATA) > 4_000_000, f"only {len(acked)} writes before the disk was full"
        node_log = (small_disk / "e" / "node1" / "node.log").read_text()
        assert "no room to preallocate" in node_log
        wait_for(lambda: "Its log last said: stopping: txn log" in (small_disk / "e" / "supervisor.log").read_text(),
                 30, "the supervisor to say why the node stopped")  # fmt: skip
        said = (small_disk / "e" / "supervisor.log").read_text().split("Its log last said: ")[-1]
        assert all(
            words in said for words in ("No space left on device", "free on the disk of", "make room")
        ), said

        _mount(small_disk, 64, remount=True)
        zk = Client(e.connect_string(), timeout=10)
        zk.start(timeout=60)  # the supervisor restarts it with backoff
        assert sorted(zk.get_children("/fill")) == sorted(acked)
        assert all(zk.get(f"/fill/{name}")[0] == DATA for name in acked)
        zk.create("/fill/after", b"room again")
        zk.stop()
    finally:
        e.stop()
