"""Snapshot files: an opaque payload (the serialized tree) written atomically under its zxid,
with a checksum, and read back newest first, skipping any that fail to verify.

A snapshot is `snapshot.<zxid as 16 hex>`: header (magic, format version, zxid), payload,
trailer (payload length, CRC-32C of the payload), all big-endian.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Final

import native
from cluster.storage._files import (
    ZXID_LIMIT,
    DamageReport,
    fsync_dir,
    named_files,
    remove_files,
    report_damage,
    write_all,
    zxid_name,
)
from zkcore._errors import LocalError

SNAPSHOT_PREFIX: Final = "snapshot"
TEMP_SUFFIX: Final = ".tmp"
MAGIC: Final = b"ZPYS"
VERSION: Final = 1
HEADER: Final = struct.Struct(">4sIQ")
TRAILER: Final = struct.Struct(">QI")
# Payload bytes gathered before one write while writing, and read per step while verifying.
WRITE_BUFFER_BYTES: Final = 1024 * 1024
VERIFY_CHUNK_BYTES: Final = 4 * 1024 * 1024


class _Broken(Exception):
    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(reason)
        self.offset = offset
        self.reason = reason


def list_snapshots(directory: Path | str) -> list[tuple[int, Path]]:
    """The snapshot files in directory as (zxid, path), oldest first; none are verified."""
    return named_files(Path(directory), SNAPSHOT_PREFIX)


def write_snapshot(directory: Path | str, zxid: int, chunks: Iterable[bytes]) -> Path:
    """Write the payload made of chunks as the snapshot for zxid, atomically: a temp file,
    fsync, rename, fsync of the directory. Returns the snapshot's path."""
    if not isinstance(zxid, int) or not 0 <= zxid < ZXID_LIMIT:
        raise LocalError(f"snapshot zxid must be an int in [0, 2**64): {zxid!r}")
    directory = Path(directory)
    path = directory / zxid_name(SNAPSHOT_PREFIX, zxid)
    temp = path.with_name(path.name + TEMP_SUFFIX)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(fd, HEADER.pack(MAGIC, VERSION, zxid))
        length, crc = _write_payload(fd, chunks)
        write_all(fd, TRAILER.pack(length, crc))
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        temp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(temp, path)
    fsync_dir(directory)
    return path


def _write_payload(fd: int, chunks: Iterable[bytes]) -> tuple[int, int]:
    """Write the chunks through a bounded buffer; return the payload's length and CRC-32C."""
    length, crc = 0, 0
    pending = bytearray()
    for chunk in chunks:
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise LocalError(f"snapshot chunks must be bytes: {type(chunk).__name__}")
        crc = native.crc32c(chunk, crc)
        length += len(chunk)
        if len(pending) + len(chunk) > WRITE_BUFFER_BYTES:
            write_all(fd, pending)
            pending.clear()
        if len(chunk) >= WRITE_BUFFER_BYTES:
            write_all(fd, chunk)
        else:
            pending += chunk
    write_all(fd, pending)
    return length, crc


def _check(path: Path, zxid: int, keep_payload: bool) -> bytes | None:
    """Verify a snapshot file; return its payload when asked. Raises _Broken."""
    with open(path, "rb") as f:
        length, crc = _check_frame(f.fileno(), zxid)
        f.seek(HEADER.size)
        if keep_payload:
            payload = f.read(length)
            if len(payload) != length:
                raise _Broken(HEADER.size + len(payload), "snapshot shrank while being read")
            actual = native.crc32c(payload)
        else:
            payload, actual, remaining = None, 0, length
            while remaining > 0:
                chunk = f.read(min(VERIFY_CHUNK_BYTES, remaining))
                if not chunk:
                    raise _Broken(HEADER.size + length - remaining, "snapshot shrank while being read")
                actual = native.crc32c(chunk, actual)
                remaining -= len(chunk)
    if actual != crc:
        raise _Broken(HEADER.size, f"payload crc {actual:#010x} differs from the trailer's {crc:#010x}")
    return payload


def _check_frame(fd: int, zxid: int) -> tuple[int, int]:
    """Check a snapshot's header and trailer; return the payload length and crc they give."""
    size = os.fstat(fd).st_size
    if size < HEADER.size + TRAILER.size:
        raise _Broken(0, f"snapshot too short: {size} bytes")
    magic, version, header_zxid = HEADER.unpack(os.pread(fd, HEADER.size, 0))
    if magic != MAGIC or version != VERSION:
        raise _Broken(0, f"snapshot header must be {MAGIC!r} version {VERSION}: {magic!r} {version}")
    if header_zxid != zxid:
        raise _Broken(0, f"snapshot header zxid {header_zxid:#x} differs from its name")
    length, crc = TRAILER.unpack(os.pread(fd, TRAILER.size, size - TRAILER.size))
    if length != size - HEADER.size - TRAILER.size:
        raise _Broken(size - TRAILER.size, f"trailer says {length} payload bytes, the file holds {size}")
    return int(length), int(crc)


def valid_snapshots(
    directory: Path | str, count: int, reports: list[DamageReport] | None = None
) -> list[tuple[int, Path]]:
    """Up to count snapshots that verify, newest first; broken ones are reported and skipped."""
    found: list[tuple[int, Path]] = []
    for zxid, path in reversed(list_snapshots(directory)):
        if len(found) == count:
            break
        try:
            _check(path, zxid, keep_payload=False)
        except (_Broken, OSError) as e:
            report_damage(reports, _damage(path, e))
            continue
        found.append((zxid, path))
    return found


def latest_snapshot(
    directory: Path | str, reports: list[DamageReport] | None = None
) -> tuple[int, bytes] | None:
    """The newest snapshot that verifies as (zxid, payload), or None. Snapshots that fail to
    verify are skipped, logged and appended to reports."""
    for zxid, path in reversed(list_snapshots(directory)):
        try:
            payload = _check(path, zxid, keep_payload=True)
        except (_Broken, OSError) as e:
            report_damage(reports, _damage(path, e))
            continue
        assert payload is not None
        return zxid, payload
    return None


def _damage(path: Path, error: Exception) -> DamageReport:
    if isinstance(error, _Broken):
        return DamageReport(path, error.offset, f"snapshot skipped: {error.reason}")
    return DamageReport(path, 0, f"snapshot skipped: unreadable: {error}")


def drop_snapshots_after(directory: Path | str, zxid: int) -> list[Path]:
    """Remove snapshots above zxid: after a TRUNC they hold txns the ensemble did not commit."""
    doomed = [path for snapshot_zxid, path in list_snapshots(directory) if snapshot_zxid > zxid]
    remove_files(doomed)
    return doomed


def remove_stale_temps(directory: Path | str) -> list[Path]:
    """Remove temp files that a crash left behind mid-write. Only while nothing is writing."""
    doomed = sorted(p for p in Path(directory).iterdir() if p.name.endswith(TEMP_SUFFIX) and p.is_file())
    remove_files(doomed)
    return doomed
