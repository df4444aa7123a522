"""What every file in the data dir shares: the damage report, the storage error, names that carry
a zxid, and the fsync / atomic-replace steps that make a change survive a crash.
"""

from __future__ import annotations

import errno
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

logger = logging.getLogger("cluster.storage")

ZXID_LIMIT: Final = 1 << 64


class StorageError(Exception):
    """The files on disk cannot be trusted or used: committed history is damaged or missing,
    or an earlier write or fsync failed (after which only a restart and recovery may continue)."""


@dataclass(frozen=True, slots=True)
class DamageReport:
    """Something found broken on disk and what was done about it: `file` is cut at `offset`,
    or skipped / removed when `offset` is the start of what was unusable."""

    file: Path
    offset: int
    reason: str

    def __post_init__(self) -> None:
        assert self.offset >= 0, f"damage offset must not be negative: {self.offset}"
        assert self.reason, "a damage report needs a reason"


def free_space_text(directory: Path) -> str:
    """How much the disk holding `directory` has left for this process, for messages."""
    try:
        st = os.statvfs(directory)
    except OSError:
        return "unknown"
    free = st.f_bavail * st.f_frsize
    if free >= 1 << 30:
        return f"{free / (1 << 30):.1f} GiB"
    if free >= 1 << 20:
        return f"{free / (1 << 20):.1f} MiB"
    return f"{free / 1024:.0f} KiB"


def os_failure_text(e: OSError, directory: Path) -> str:
    """An OSError as a message, saying what to do when the disk is full."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"{e} ({free_space_text(directory)} free on the disk of {directory}: make room there; the node writes again once restarted)"
    return str(e)


def report_damage(reports: list[DamageReport] | None, damage: DamageReport) -> None:
    """Log damage as a warning and record it where the caller asked."""
    logger.warning("storage damage in %s at offset %d: %s", damage.file, damage.offset, damage.reason)
    if reports is not None:
        reports.append(damage)


def zxid_name(prefix: str, zxid: int) -> str:
    """`prefix.<zxid as 16 hex digits>`, the way ZooKeeper names log and snapshot files."""
    assert 0 <= zxid < ZXID_LIMIT, f"zxid must fit in 64 bits: {zxid}"
    return f"{prefix}.{zxid:016x}"


def named_files(directory: Path, prefix: str) -> list[tuple[int, Path]]:
    """Files in directory named `prefix.<16 hex digits>`, as (zxid, path) in zxid order."""
    pattern = re.compile(re.escape(prefix) + r"\.([0-9a-f]{16})")
    found = []
    for entry in os.scandir(directory):
        match = pattern.fullmatch(entry.name)
        if match is not None and entry.is_file():
            found.append((int(match.group(1), 16), Path(entry.path)))
    found.sort()
    return found


def fsync_dir(directory: Path) -> None:
    """Make creations, renames and removals in directory durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dir(directory: Path) -> None:
    """Create directory (and missing parents) so that it survives a crash."""
    missing = [p for p in (directory, *directory.parents) if not p.exists()]
    directory.mkdir(parents=True, exist_ok=True)
    for created in missing:
        fsync_dir(created.parent)


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """os.write until every byte is written."""
    view = memoryview(data).cast("B")
    while view:
        written = os.write(fd, view)
        if written <= 0:
            raise OSError(f"write to fd {fd} made no progress with {len(view)} bytes left")
        view = view[written:]


def replace_atomically(path: Path, data: bytes) -> None:
    """Write a small file so that a crash leaves either the old content or the new: write a
    temp file, fsync it, rename it over path, fsync the directory."""
    temp = path.with_name(path.name + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temp, path)
    fsync_dir(path.parent)


def remove_files(paths: list[Path]) -> None:
    """Unlink paths, newest name last in the list removed first, then fsync their directories."""
    for path in reversed(paths):
        path.unlink(missing_ok=True)
    for directory in sorted({p.parent for p in paths}):
        fsync_dir(directory)
