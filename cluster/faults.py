"""Fault points for testing a live ensemble: network partitions between nodes, and a slow disk.
(Servers that
break a guarantee on purpose, for the verifier to catch, are Server subclasses in
verify/broken.py, named by the config's serverClass.)

Partitions: where nodes cannot be put in network namespaces of their own (that needs root and
tcp endpoints), each node drops the Zab traffic to and from the peers listed in its file
`<data dir>/faults/<id>.blocked` (peer ids, comma-separated). A node re-reads the file when it
changes, within a tick. `python -m cluster.launch partition --groups 1,2/3,4,5` and `heal`
write and remove these files.

A slow disk: slow_fdatasync(pid, delay_us) attaches strace to every thread of a node and makes
each fdatasync return delay_us late, until the returned process is terminated (root and strace).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

from zkcore import LocalError


def slow_fdatasync(pid: int, delay_us: int) -> subprocess.Popen[bytes]:
    """Every fdatasync of process pid returns delay_us late while the returned strace runs;
    terminating it detaches and leaves the process as it was."""
    return subprocess.Popen(
        ["strace", "-f", "-qq", "-p", str(pid), "-e", "trace=fdatasync",
         "-e", f"inject=fdatasync:delay_exit={delay_us}", "-o", "/dev/null"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def faults_dir(data_dir: Path) -> Path:
    return data_dir / "faults"


def blocked_path(data_dir: Path, server_id: int) -> Path:
    return faults_dir(data_dir) / f"{server_id}.blocked"


def parse_groups(text: str, server_ids: Iterable[int]) -> list[set[int]]:
    """'1,2/3,4,5' -> [{1, 2}, {3, 4, 5}]; every server in exactly one group (the unnamed ones
    form a group of their own)."""
    known = set(server_ids)
    groups: list[set[int]] = []
    seen: set[int] = set()
    for part in text.split("/"):
        try:
            group = {int(x) for x in part.split(",") if x.strip()}
        except ValueError:
            raise LocalError(f"groups must look like 1,2/3,4,5: {text!r}") from None
        if not group or group - known or group & seen:
            raise LocalError(f"each group must name known servers {sorted(known)} once: {text!r}")
        seen |= group
        groups.append(group)
    if known - seen:
        groups.append(known - seen)
    return groups


def partition(data_dir: Path, groups: list[set[int]]) -> None:
    """Cut every link between servers of different groups (both directions)."""
    everyone = set().union(*groups)
    faults_dir(data_dir).mkdir(parents=True, exist_ok=True)
    for group in groups:
        for sid in group:
            blocked = ",".join(str(x) for x in sorted(everyone - group))
            tmp = blocked_path(data_dir, sid).with_suffix(".tmp")
            tmp.write_text(blocked + "\n")
            os.replace(tmp, blocked_path(data_dir, sid))


def heal(data_dir: Path) -> None:
    for path in faults_dir(data_dir).glob("*.blocked"):
        path.unlink(missing_ok=True)


class BlockedPeers:
    """A node's view of its blocked file: poll() once a tick returns the peers to cut off."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self.peers: frozenset[int] = frozenset()

    def poll(self) -> frozenset[int]:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._stamp, self.peers = None, frozenset()
            return self.peers
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                text = self.path.read_text()
                self.peers = frozenset(int(x) for x in text.replace("\n", "").split(",") if x.strip())
            except (OSError, ValueError):
                self.peers = frozenset()
        return self.peers
