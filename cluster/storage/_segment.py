"""One txn log segment file: its header, a sparse zxid -> offset index, and the chunked scan that
reads its records back (bounded reads, native log_scan) and checks them when the log opens.

A segment is `log.<first zxid as 16 hex>`: a 16-byte header (magic, format version, first zxid),
then records back to back, then zeros up to the preallocated size. A sealed (not last) segment
ends exactly at its last record; the last one may end in zeros, a torn write or garbage.
"""

from __future__ import annotations

import os
import struct
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, repeat
from operator import add, itemgetter, lt
from pathlib import Path
from typing import Final, Protocol

from cluster.storage._files import DamageReport, StorageError
from native._pylog import HEADER_BYTES as RECORD_HEADER_BYTES
from native._pylog import ScanResult
from zkcore import limits

MAGIC: Final = b"ZPYL"
VERSION: Final = 1
HEADER: Final = struct.Struct(">4sIQ")
HEADER_BYTES: Final = HEADER.size
# Bytes read per scan step: more than one record of the largest size, so each step progresses.
CHUNK_BYTES: Final = 4 * 1024 * 1024
# One sparse index entry per this many bytes of records: reads start near the zxid they want.
INDEX_STEP_BYTES: Final = 64 * 1024

assert CHUNK_BYTES > RECORD_HEADER_BYTES + limits.frame_bytes_max


class BackgroundSync(Protocol):
    """native's Syncer: an fdatasync on a thread, polled for through fileno()."""

    def fileno(self) -> int: ...

    def start(self, fd: int, /) -> int: ...

    def finish(self, block: bool, /) -> tuple[int, int]: ...

    def close(self) -> None: ...


class LogCodec(Protocol):
    """The native log functions storage uses (native, or its twin, or the C build directly)."""

    Syncer: Callable[[], BackgroundSync]

    def log_append(self, fd: int, zxids: Sequence[int], payloads: Sequence[bytes], /) -> int: ...

    def log_scan(self, buf: bytes, offset: int = 0, /) -> ScanResult: ...


@dataclass(slots=True)
class Segment:
    """What the log keeps in memory about one segment file."""

    path: Path
    first_zxid: int
    last_zxid: int = 0  # 0 while it holds no record
    data_end: int = HEADER_BYTES  # offset just after the last record
    index_zxids: list[int] = field(default_factory=list)
    index_offsets: list[int] = field(default_factory=list)

    def note(self, zxid: int, offset: int, length: int) -> None:
        """Record that a record for zxid with a payload of length bytes sits at offset."""
        assert zxid > self.last_zxid, f"segment zxids must grow: {zxid:#x} after {self.last_zxid:#x}"
        assert offset == self.data_end, f"records must be contiguous: {offset} != {self.data_end}"
        if not self.index_offsets or offset - self.index_offsets[-1] >= INDEX_STEP_BYTES:
            self.index_zxids.append(zxid)
            self.index_offsets.append(offset)
        self.last_zxid = zxid
        self.data_end = offset + RECORD_HEADER_BYTES + length

    def note_many(self, zxids: list[int], lengths: list[int], offset: int) -> None:
        """note() for records back to back from offset, whose zxids the caller found increasing."""
        assert zxids[0] > self.last_zxid, f"segment zxids must grow: {zxids[0]:#x} after {self.last_zxid:#x}"
        assert all(map(lt, zxids, zxids[1:])), "segment zxids must grow"
        assert offset == self.data_end, f"records must be contiguous: {offset} != {self.data_end}"
        ends = list(accumulate(map(add, lengths, repeat(RECORD_HEADER_BYTES)), initial=offset))
        # The sparse index: the first record, then each one INDEX_STEP_BYTES past the last entry.
        at = (
            0
            if not self.index_offsets
            else bisect_left(ends, self.index_offsets[-1] + INDEX_STEP_BYTES, 0, len(zxids))
        )
        while at < len(zxids):
            self.index_zxids.append(zxids[at])
            self.index_offsets.append(ends[at])
            at = bisect_left(ends, ends[at] + INDEX_STEP_BYTES, at + 1, len(zxids))
        self.last_zxid = zxids[-1]
        self.data_end = ends[-1]

    def offset_near(self, zxid: int) -> int:
        """An offset to scan from that is at or before the first record with a zxid >= zxid."""
        at = bisect_right(self.index_zxids, zxid) - 1
        return self.index_offsets[at] if at >= 0 else HEADER_BYTES

    def cut(self, offset: int, last_zxid: int) -> None:
        """Forget every record from offset on; last_zxid is the zxid of the record before it."""
        assert HEADER_BYTES <= offset <= self.data_end, f"cut at {offset} outside the records"
        keep = bisect_right(self.index_offsets, offset - 1)
        del self.index_zxids[keep:], self.index_offsets[keep:]
        self.data_end = offset
        self.last_zxid = last_zxid


def encode_header(first_zxid: int) -> bytes:
    return HEADER.pack(MAGIC, VERSION, first_zxid)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One step of a scan: records found from file offset `offset` up to `end`. `status` is
    "more" while the scan goes on, then log_scan's "end", "torn" or "corrupt" for the last step."""

    offset: int
    records: list[tuple[int, bytes]]
    end: int
    status: str


def scan_chunks(fd: int, start: int, stop: int, codec: LogCodec) -> Iterator[Chunk]:
    """Scan the records in fd from start up to stop (or the end of the file), CHUNK_BYTES a read."""
    at = start
    while True:
        want = min(CHUNK_BYTES, stop - at)
        buf = os.pread(fd, want, at)
        result = codec.log_scan(buf)
        more_file = len(buf) == want and at + want < stop
        status = result.status
        if more_file and (status == "torn" or (status == "end" and result.end == len(buf))):
            status = "more"
        yield Chunk(at, result.records, at + result.end, status)
        if status != "more":
            return
        assert result.end > 0, f"scan made no progress at offset {at}"
        at += result.end


def read_batches(
    fd: int, segment: Segment, lo: int, hi: int, codec: LogCodec
) -> Iterator[list[tuple[int, bytes]]]:
    """The records in a segment with lo <= zxid <= hi, in order, up to where it ends now, a
    scan chunk's worth at a time."""
    stop = segment.data_end
    for chunk in scan_chunks(fd, segment.offset_near(lo), stop, codec):
        records = chunk.records
        past = bool(records) and records[-1][0] > hi
        if records and (records[0][0] < lo or past):
            records = [record for record in records if lo <= record[0] <= hi]
        if records:
            yield records
        if past:
            return
        if chunk.status not in ("more", "end") or (chunk.status == "end" and chunk.end != stop):
            raise StorageError(
                f"log segment {segment.path} changed under the log: {chunk.status} at offset {chunk.end}, "
                f"expected records up to {stop}"
            )


def _header_damage(fd: int, path: Path, first_zxid: int) -> str | None:
    """Why the segment header is unusable, or None when it is good."""
    raw = os.pread(fd, HEADER_BYTES, 0)
    if len(raw) < HEADER_BYTES:
        return f"segment header torn: {len(raw)} of {HEADER_BYTES} bytes"
    magic, version, zxid = HEADER.unpack(raw)
    if magic != MAGIC:
        return f"segment magic must be {MAGIC!r}: {magic!r}"
    if version != VERSION:
        # A format we do not know is never ours to cut: refuse it even as the last segment.
        raise StorageError(f"log segment {path} has format version {version}, this code reads {VERSION}")
    if zxid != first_zxid:
        return f"segment header zxid {zxid:#x} differs from its name"
    return None


def _scan_segment(fd: int, segment: Segment, after_zxid: int, codec: LogCodec) -> tuple[int, str] | None:
    """Load the records of an opened segment into it; return (offset, reason) for the first bad
    spot, or None when the records run cleanly to a zero header or the end of the file."""
    size = os.fstat(fd).st_size
    previous = after_zxid
    for chunk in scan_chunks(fd, HEADER_BYTES, size, codec):
        offset, records = chunk.offset, chunk.records
        zxids = list(map(itemgetter(0), records))
        if zxids and _in_order(segment, previous, zxids):  # the usual case: note them all at once
            segment.note_many(zxids, list(map(len, map(itemgetter(1), records))), offset)
            previous, offset, records = zxids[-1], segment.data_end, []
        for zxid, payload in records:  # one at a time, to find and name the bad one
            if segment.last_zxid == 0 and zxid != segment.first_zxid:
                return offset, f"first record zxid {zxid:#x} differs from the segment name"
            if zxid <= previous:
                return offset, f"record zxid {zxid:#x} does not follow {previous:#x}"
            segment.note(zxid, offset, len(payload))
            previous = zxid
            offset += RECORD_HEADER_BYTES + len(payload)
        assert offset == chunk.end, f"scan offsets disagree: {offset} != {chunk.end}"
        if chunk.status == "torn":
            return chunk.end, "torn record (cut short by the end of the file)"
        if chunk.status == "corrupt":
            return chunk.end, "corrupt record (bad crc or length)"
    return None


def _in_order(segment: Segment, previous: int, zxids: list[int]) -> bool:
    """Whether zxids, the next records of segment, may all be noted: the first one is the one
    the segment is named after (for an empty segment), and they all follow previous in order."""
    if segment.last_zxid == 0 and zxids[0] != segment.first_zxid:
        return False
    return previous < zxids[0] and all(map(lt, zxids, zxids[1:]))


def load_segment(
    path: Path, first_zxid: int, after_zxid: int, last: bool, codec: LogCodec
) -> tuple[Segment, DamageReport | None]:
    """Read a segment's records back and check them. A damaged last segment comes back with the
    good records and a report of where the damage starts (the caller cuts it there); damage in a
    sealed segment (one that is not last) is committed history lost, and raises StorageError."""
    segment = Segment(path, first_zxid)
    fd = os.open(path, os.O_RDONLY)
    try:
        reason = _header_damage(fd, path, first_zxid)
        bad = (0, reason) if reason is not None else _scan_segment(fd, segment, after_zxid, codec)
        if bad is None and not last:
            size = os.fstat(fd).st_size
            if segment.last_zxid == 0:
                bad = (HEADER_BYTES, "sealed segment holds no record")
            elif segment.data_end != size:
                bad = (
                    segment.data_end,
                    f"sealed segment has {size - segment.data_end} bytes after its records",
                )
    finally:
        os.close(fd)
    if bad is None:
        return segment, None
    damage = DamageReport(path, bad[0], bad[1])
    if not last:
        raise StorageError(f"log segment {path} is damaged at offset {bad[0]} ({bad[1]}); refusing to open")
    return segment, damage
