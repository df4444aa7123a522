"""The pure-Python twin of native/src/crc32c.c and txnlog.c: CRC-32C and txn log records,
with the same interface and results as the C version in native/_clog.py; and the log's
background fdatasync, Syncer, from native/_pysync.py (its C twin comes with native/_clog.py).

A record is, big-endian: u32 payload_len | u32 crc | u64 zxid | payload, where crc is CRC-32C
over the 4 length bytes, the 8 zxid bytes and the payload. Sixteen zero bytes mark the end of
written data. A length of 0 in any other header, or above limits.frame_bytes_max, is corrupt.
"""

from __future__ import annotations

import os
import struct
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from native._pysync import Syncer as Syncer
from zkcore import limits
from zkcore._errors import LocalError

Bytes = bytes | bytearray | memoryview

HEADER_BYTES: Final = 16
# Bytes one log_encode / log_append call frames; cluster/storage splits bigger batches.
log_batch_bytes_max: Final = limits.log_batch_bytes_max

SCAN_STATUSES: Final = ("end", "torn", "corrupt")

_HEADER = struct.Struct(">IIQ")
_LENGTH = struct.Struct(">I")
_ZXID = struct.Struct(">Q")
_ZERO_HEADER: Final = bytes(HEADER_BYTES)
_ZXID_LIMIT: Final = 1 << 64


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What log_scan found: the good records, the offset just after them, and why it stopped."""

    records: list[tuple[int, bytes]]
    end: int
    status: str

    def __post_init__(self) -> None:
        assert self.status in SCAN_STATUSES, f"scan status must be one of {SCAN_STATUSES}: {self.status!r}"
        assert self.end >= 0, f"scan end must not be negative: {self.end}"


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        table.append(crc)
    return tuple(table)


_TABLE: Final = _crc32c_table()


def crc32c(data: Bytes, crc: int = 0) -> int:
    """CRC-32C of data; passing a previous result as `crc` continues it."""
    if not isinstance(crc, int) or not 0 <= crc <= 0xFFFFFFFF:
        raise LocalError(f"crc must be an int in [0, 2**32): {crc!r}")
    table = _TABLE
    value = crc ^ 0xFFFFFFFF
    for byte in memoryview(data).cast("B"):
        value = table[(value ^ byte) & 0xFF] ^ (value >> 8)
    return value ^ 0xFFFFFFFF


def payload_lengths(payloads: Sequence[Bytes]) -> list[int]:
    """The byte length of each payload; LocalError when one is not bytes-like."""
    try:
        return [memoryview(p).nbytes for p in payloads]
    except TypeError as e:
        raise LocalError(f"payloads must be bytes: {e}") from None


def check_batch(zxids: Sequence[int], lengths: list[int]) -> array[int]:
    """Check a batch for log_encode / log_append, given its payload lengths; return the zxids
    as an array of u64."""
    if len(zxids) != len(lengths):
        raise LocalError(f"zxids and payloads must pair up: {len(zxids)} zxids, {len(lengths)} payloads")
    try:
        zxid_array = array("Q", zxids)
    except (OverflowError, TypeError) as e:
        raise LocalError(f"zxids must be ints in [0, 2**64): {e}") from None
    if lengths and min(lengths) == 0:
        raise LocalError(f"payload must not be empty: index {lengths.index(0)}")
    if lengths and max(lengths) > limits.frame_bytes_max:
        raise LocalError(f"payload must be at most {limits.frame_bytes_max} bytes: {max(lengths)}")
    total = sum(lengths) + HEADER_BYTES * len(lengths)
    if total > log_batch_bytes_max:
        raise LocalError(f"a log batch must be at most {log_batch_bytes_max} bytes framed: {total}")
    return zxid_array


def log_encode(zxids: Sequence[int], payloads: Sequence[Bytes]) -> bytes:
    """The framed records for zxids[i], payloads[i], concatenated."""
    lengths = payload_lengths(payloads)
    zxid_array = check_batch(zxids, lengths)
    out = bytearray()
    for zxid, payload, length in zip(zxid_array, payloads, lengths, strict=True):
        crc = crc32c(payload, crc32c(_ZXID.pack(zxid), crc32c(_LENGTH.pack(length))))
        out += _HEADER.pack(length, crc, zxid)
        out += payload
    return bytes(out)


def log_append(fd: int, zxids: Sequence[int], payloads: Sequence[Bytes]) -> int:
    """Frame the records and write them at fd's current position; return the bytes written."""
    data = memoryview(log_encode(zxids, payloads))
    done = 0
    while done < len(data):
        written = os.write(fd, data[done:])  # os.write retries EINTR itself (PEP 475)
        if written <= 0:
            raise OSError(f"write to fd {fd} made no progress at byte {done} of {len(data)}")
        done += written
    return done


def log_scan(buf: Bytes, offset: int = 0) -> ScanResult:
    """Parse records from buf[offset:]; stop at the end, a zero header, a cut or a bad record."""
    view = memoryview(buf).cast("B")
    size = len(view)
    if not isinstance(offset, int) or not 0 <= offset <= size:
        raise LocalError(f"offset must be within the buffer of {size} bytes: {offset!r}")
    records: list[tuple[int, bytes]] = []
    at = offset
    while True:
        if at == size:
            return ScanResult(records, at, "end")
        if size - at < HEADER_BYTES:
            return ScanResult(records, at, "torn")
        length, crc, zxid = _HEADER.unpack_from(view, at)
        if length == 0:
            status = "end" if view[at : at + HEADER_BYTES] == _ZERO_HEADER else "corrupt"
            return ScanResult(records, at, status)
        if length > limits.frame_bytes_max:
            return ScanResult(records, at, "corrupt")
        start = at + HEADER_BYTES
        if size - start < length:
            return ScanResult(records, at, "torn")
        payload = view[start : start + length]
        expected = crc32c(payload, crc32c(view[at + 8 : start], crc32c(view[at : at + 4])))
        if crc != expected:
            return ScanResult(records, at, "corrupt")
        records.append((zxid, bytes(payload)))
        at = start + length
