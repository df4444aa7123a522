"""CRC-32C and txn log records through the C in native/src (crc32c.c, txnlog.c): one cffi call
per batch; and the log's background fdatasync, Syncer, from native/_csync.py (syncer.c). Same
interface and results as the twin in native/_pylog.py; C returns codes, this raises.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Sequence
from typing import Any, Final

from native._csync import Syncer
from native._pylog import Bytes, ScanResult, check_batch, payload_lengths
from native._zkpy_native import ffi, lib  # type: ignore[import-not-found]
from zkcore import limits
from zkcore._errors import LocalError

__all__ = ["HARDWARE_CRC", "ScanResult", "Syncer", "crc32c", "log_append", "log_encode", "log_scan"]

# True when crc32c runs on the SSE4.2 instruction rather than the slicing-by-8 tables.
HARDWARE_CRC: Final = bool(lib.zk_crc32c_hw())

# Records one zk_log_scan call reports before the wrapper calls again: bounds the arrays.
_SCAN_RECORDS_MAX: Final = 4096
_STATUS: Final = {lib.ZK_LOG_END: "end", lib.ZK_LOG_TORN: "torn", lib.ZK_LOG_CORRUPT: "corrupt"}
_new_uncleared = ffi.new_allocator(should_clear_after_alloc=False)
assert array("I").itemsize == 4 and array("Q").itemsize == 8, "array widths must match uint32_t / uint64_t"


def crc32c(data: Bytes, crc: int = 0) -> int:
    """CRC-32C of data; passing a previous result as `crc` continues it."""
    if not isinstance(crc, int) or not 0 <= crc <= 0xFFFFFFFF:
        raise LocalError(f"crc must be an int in [0, 2**32): {crc!r}")
    view = memoryview(data).cast("B")
    return int(lib.zk_crc32c(crc, ffi.from_buffer(view), len(view)))


def _batch_arguments(zxids: Sequence[int], payloads: Sequence[Bytes]) -> tuple[Any, Any, Any, int]:
    """The cffi arguments for a batch: zxids, joined payloads, lengths, and the framed size."""
    try:
        joined = b"".join(payloads)
    except TypeError as e:
        raise LocalError(f"payloads must be bytes: {e}") from None
    lengths = list(map(len, payloads))
    if sum(lengths) != len(joined):  # a memoryview of wider items: len() counts items
        lengths = payload_lengths(payloads)
    zxid_array = check_batch(zxids, lengths)
    return (
        ffi.from_buffer("uint64_t[]", zxid_array),
        ffi.from_buffer(joined),
        ffi.from_buffer("uint32_t[]", array("I", lengths)),
        len(joined) + lib.ZK_LOG_HEADER_BYTES * len(lengths),
    )


def log_encode(zxids: Sequence[int], payloads: Sequence[Bytes]) -> bytes:
    """The framed records for zxids[i], payloads[i], concatenated."""
    c_zxids, c_payloads, c_lengths, total = _batch_arguments(zxids, payloads)
    out = _new_uncleared("uint8_t[]", max(total, 1))
    written = lib.zk_log_encode(c_zxids, c_payloads, c_lengths, len(payloads), out, total)
    assert written == total, f"zk_log_encode wrote {written} bytes, expected {total}"
    return bytes(ffi.buffer(out, total))


def log_append(fd: int, zxids: Sequence[int], payloads: Sequence[Bytes]) -> int:
    """Frame the records and write them at fd's current position; return the bytes written."""
    if not isinstance(fd, int) or fd < 0:
        raise LocalError(f"fd must be a non-negative int: {fd!r}")
    c_zxids, c_payloads, c_lengths, total = _batch_arguments(zxids, payloads)
    written = int(lib.zk_log_append(fd, c_zxids, c_payloads, c_lengths, len(payloads)))
    if written < 0:
        raise OSError(-written, f"{os.strerror(-written)} (appending {total} log bytes to fd {fd})")
    assert written == total, f"zk_log_append wrote {written} bytes, expected {total}"
    return written


def log_scan(buf: Bytes, offset: int = 0) -> ScanResult:
    """Parse records from buf[offset:]; stop at the end, a zero header, a cut or a bad record."""
    view = memoryview(buf).cast("B")
    size = len(view)
    if not isinstance(offset, int) or not 0 <= offset <= size:
        raise LocalError(f"offset must be within the buffer of {size} bytes: {offset!r}")
    c_buf = ffi.from_buffer(view)
    cap = min(_SCAN_RECORDS_MAX, (size - offset) // (lib.ZK_LOG_HEADER_BYTES + 1) + 1)
    c_zxids = _new_uncleared("uint64_t[]", cap)
    c_offsets = _new_uncleared("uint64_t[]", cap)
    c_lengths = _new_uncleared("uint32_t[]", cap)
    c_count = ffi.new("size_t *")
    c_end = ffi.new("size_t *")
    records: list[tuple[int, bytes]] = []
    at = offset
    while True:
        status = lib.zk_log_scan(
            c_buf, size, at, limits.frame_bytes_max, c_zxids, c_offsets, c_lengths, cap, c_count, c_end
        )
        assert status >= 0, f"zk_log_scan refused offset {at} of {size}"
        count = c_count[0]
        spans = zip(ffi.unpack(c_offsets, count), ffi.unpack(c_lengths, count), strict=True)
        if isinstance(buf, bytes):
            payloads = [buf[o : o + n] for o, n in spans]
        else:
            payloads = [bytes(view[o : o + n]) for o, n in spans]
        records += zip(ffi.unpack(c_zxids, count), payloads, strict=True)
        at = c_end[0]
        if status != lib.ZK_LOG_MORE:
            return ScanResult(records, at, _STATUS[status])
