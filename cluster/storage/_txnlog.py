"""The txn log on disk: segment files in one directory, appended through native log_append,
made durable by one fdatasync per fsync() or sync_start() (group commit; the latter on a thread
of its own while the caller's loop goes on), checked and repaired when opened.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from itertools import accumulate, chain, repeat
from operator import add, itemgetter, lt
from pathlib import Path
from types import TracebackType
from typing import Final, cast

import native
from cluster._ratelimit import Every
from cluster.storage._files import (
    ZXID_LIMIT,
    DamageReport,
    StorageError,
    free_space_text,
    fsync_dir,
    logger,
    make_dir,
    named_files,
    os_failure_text,
    remove_files,
    report_damage,
    write_all,
    zxid_name,
)
from cluster.storage._segment import (
    HEADER_BYTES,
    BackgroundSync,
    LogCodec,
    Segment,
    encode_header,
    load_segment,
    read_batches,
    scan_chunks,
)
from native._pylog import HEADER_BYTES as RECORD_HEADER_BYTES
from native._pylog import log_batch_bytes_max
from zkcore import limits
from zkcore._errors import LocalError
from zkcore._storage import LogEntry

SEGMENT_PREFIX: Final = "log"
SEGMENT_BYTES_DEFAULT: Final = 64 * 1024 * 1024
PREALLOCATE_BYTES_DEFAULT: Final = 64 * 1024 * 1024
# Framed bytes handed to one log_append call; a bigger append is written in several.
APPEND_BATCH_BYTES: Final = min(8 * 1024 * 1024, log_batch_bytes_max)
LOCK_NAME: Final = "lock"
_UNSUPPORTED: Final = (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS)
_NO_ROOM: Final = (errno.ENOSPC, errno.EDQUOT)
# An fdatasync this slow (half the default syncLimit x tickTime) is counted and logged, at most
# every SLOW_FSYNC_LOG_S: the writes that wait on it are that late. ZooKeeper warns at 1 s
# (fsync.warningthresholdms) and counts them too (mntr's zk_fsync_threshold_exceed_count).
SLOW_FSYNC_S: Final = 0.25
SLOW_FSYNC_LOG_S: Final = 10.0


def segment_paths(directory: Path) -> list[tuple[int, Path]]:
    """The segment files in directory as (first zxid, path), oldest first."""
    return named_files(directory, SEGMENT_PREFIX)


def segments_before(segments: Sequence[tuple[int, Path]], zxid: int) -> list[Path]:
    """Segments holding only zxids below zxid: each one followed by a segment starting at or
    below zxid. The last segment is never among them."""
    return [
        path for (_, path), (following, _) in zip(segments, segments[1:], strict=False) if following <= zxid
    ]


def _lock(directory: Path) -> int | None:
    """Hold an exclusive lock on the log directory: a second TxnLog on it (say, another process
    recovering) would cut the live last segment to its own, older view of the end."""
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StorageError(f"txn log {directory} is open elsewhere (locked)") from None
    return fd


class TxnLog:
    """zkcore's Storage on disk. append() writes, fsync() makes everything appended durable with
    one fdatasync; sync_start() does the same on a background thread, and sync_done() takes its
    result once sync_fileno() is readable (appends may go on meanwhile: they wait for the next
    sync). A torn or corrupt tail of the last segment is cut at open and listed in `reports`;
    damage in an earlier segment raises StorageError. After a failed write or fsync the log
    refuses every call: restart and recover (a failed fsync may have lost pages).
    One thread at a time, like the loop that owns it."""

    def __init__(
        self,
        directory: Path | str,
        *,
        segment_bytes: int = SEGMENT_BYTES_DEFAULT,
        preallocate_bytes: int = PREALLOCATE_BYTES_DEFAULT,
        codec: LogCodec | None = None,
    ) -> None:
        if not isinstance(segment_bytes, int) or segment_bytes <= HEADER_BYTES:
            raise LocalError(f"segment_bytes must be an int above {HEADER_BYTES}: {segment_bytes!r}")
        if not isinstance(preallocate_bytes, int) or preallocate_bytes <= 0:
            raise LocalError(f"preallocate_bytes must be a positive int: {preallocate_bytes!r}")
        self.directory = Path(directory)
        make_dir(self.directory)
        self._segment_bytes = segment_bytes
        self._preallocate_bytes = preallocate_bytes
        # native's functions are picked at import time, so mypy sees them as Any.
        self._codec = codec if codec is not None else cast(LogCodec, native)
        self._segments: list[Segment] = []
        self._fd: int | None = None  # the last segment, open for appending
        self._allocated = 0  # size of the last segment's file
        self._short_of_room = False  # a preallocation step found no room (warned once)
        self._unsynced = False
        self._durable_zxid = 0
        self._syncer: BackgroundSync | None = None  # made by the first sync_fileno()
        self._syncing: tuple[int, Path] | None = None  # what the running background sync covers
        self._failure: str | None = None
        self.fsync_count = 0
        self.slow_fsyncs = 0  # fdatasyncs that took SLOW_FSYNC_S or more
        # Milliseconds the fdatasyncs took, in all and the shortest and longest (mntr's fsynctime).
        self.fsync_ms_sum = 0.0
        self.fsync_ms_min = self.fsync_ms_max = 0.0
        self._slow_fsync_said = Every(SLOW_FSYNC_LOG_S)
        self._lock_fd = _lock(self.directory)
        reports: list[DamageReport] = []
        try:
            self._load(reports)
        except BaseException:
            self.close()
            raise
        self.reports: tuple[DamageReport, ...] = tuple(reports)

    # --- opening ------------------------------------------------------------------------------

    def _load(self, reports: list[DamageReport]) -> None:
        found = segment_paths(self.directory)
        after = 0
        for number, (first_zxid, path) in enumerate(found):
            last = number == len(found) - 1
            segment, damage = load_segment(path, first_zxid, after, last, self._codec)
            if damage is not None:
                report_damage(reports, damage)
            self._segments.append(segment)
            after = segment.last_zxid
        if self._segments and self._segments[-1].last_zxid == 0:
            empty = self._segments.pop()
            logger.info("removing log segment %s: it holds no record", empty.path)
            remove_files([empty.path])
        if self._segments:
            self._open_last()
        self._durable_zxid = self.last_zxid()

    def _open_last(self) -> None:
        """Open the last segment for appending, cutting the file right after its last record so
        that no stale byte beyond it can ever be read back as a record."""
        segment = self._segments[-1]
        fd = os.open(segment.path, os.O_RDWR)
        try:
            os.ftruncate(fd, segment.data_end)
            os.fsync(fd)
            os.lseek(fd, segment.data_end, os.SEEK_SET)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._allocated = segment.data_end

    # --- Storage ------------------------------------------------------------------------------

    def append(self, entries: Sequence[LogEntry]) -> None:
        """Write entries (zxids above last_zxid(), increasing) to the log. Durable after sync().
        A leader appends every write it proposes: the entries are checked and noted a column at
        a time, not one by one."""
        self._check_usable()
        if not entries:
            return
        zxids = list(map(itemgetter(0), entries))
        payloads = list(map(itemgetter(1), entries))
        lengths = list(map(len, payloads))
        assert zxids[0] > self.last_zxid() and all(map(lt, zxids, zxids[1:])), (
            f"append out of order: {[hex(z) for z in zxids[:8]]} after {self.last_zxid():#x}"
        )
        assert zxids[-1] < ZXID_LIMIT, f"zxid must fit in 64 bits: {zxids[-1]:#x}"
        if min(lengths) < 1 or max(lengths) > limits.frame_bytes_max:
            bad = next(n for n in lengths if not 0 < n <= limits.frame_bytes_max)
            raise LocalError(f"a log payload must be 1 to {limits.frame_bytes_max} bytes: {bad}")
        # Batches of at least APPEND_BATCH_BYTES framed (the last one smaller), as few as that.
        ends = list(accumulate(map(add, lengths, repeat(RECORD_HEADER_BYTES))))
        start, framed_before = 0, 0
        while start < len(zxids):
            stop = min(bisect_left(ends, framed_before + APPEND_BATCH_BYTES, start) + 1, len(zxids))
            framed_bytes = ends[stop - 1] - framed_before
            self._append_batch(zxids[start:stop], payloads[start:stop], lengths[start:stop], framed_bytes)
            start, framed_before = stop, ends[stop - 1]

    def _append_batch(
        self, zxids: list[int], payloads: list[bytes], lengths: list[int], framed_bytes: int
    ) -> None:
        segment = self._segment_for(zxids[0])
        assert self._fd is not None
        try:
            self._reserve(segment.data_end + framed_bytes)
            written = self._codec.log_append(self._fd, zxids, payloads)
        except OSError as e:
            raise self._fail(f"append to {segment.path} failed: {os_failure_text(e, self.directory)}") from e
        assert written == framed_bytes, f"log_append wrote {written} bytes, expected {framed_bytes}"
        segment.note_many(zxids, lengths, segment.data_end)
        self._unsynced = True

    def fsync(self) -> int:
        """Make every appended entry durable with one fdatasync; return the highest durable zxid.
        A background sync still running is waited for first."""
        self._check_usable()
        self._settle()
        if self._unsynced:
            assert self._fd is not None
            started = time.monotonic()
            try:
                os.fdatasync(self._fd)
            except OSError as e:
                raise self._fail(
                    f"fdatasync of {self._segments[-1].path} failed: {os_failure_text(e, self.directory)}"
                ) from e
            self._synced(time.monotonic() - started)
            self._unsynced = False
        self._durable_zxid = self.last_zxid()
        return self._durable_zxid

    def fdatasync_in_child(self) -> None:
        """In a child forked from the log's owner: make what was appended before the fork
        durable (the last segment's fdatasync; the earlier ones were synced when sealed). Not
        fsync(): the owner's sync thread is not in the child, and waiting for it would hang."""
        if self._fd is not None:
            os.fdatasync(self._fd)

    def sync_fileno(self) -> int:
        """A descriptor to poll: readable once a background sync is done (then call sync_done)."""
        if self._syncer is None:
            try:
                self._syncer = self._codec.Syncer()
            except (OSError, RuntimeError) as e:  # the C thread's errno; the twin's "can't start"
                raise StorageError(
                    f"txn log {self.directory}: cannot start the thread that syncs it: {e} (a limit "
                    "on processes or memory: see ulimit -u and the memory free)"
                ) from e
        return int(self._syncer.fileno())

    @property
    def syncing(self) -> bool:
        """A background sync is running, or done with its result not yet taken."""
        return self._syncing is not None

    def sync_start(self) -> bool:
        """Start making every appended entry durable on the background thread: True if it
        started; False if nothing needs it (durable_zxid is the end of the log). Call it only
        when not `syncing`."""
        self._check_usable()
        assert self._syncing is None, "a background sync is running already"
        if not self._unsynced:
            return False
        assert self._fd is not None
        if self._syncer is None:
            self.sync_fileno()
        assert self._syncer is not None
        started = self._syncer.start(self._fd)
        assert started == 0, f"the syncer is busy ({started}) though no sync is running"
        self._syncing = (self.last_zxid(), self._segments[-1].path)
        self._unsynced = False  # an append from now on sets it again: the next sync covers it
        return True

    def sync_done(self) -> int | None:
        """The durable zxid if the background sync is done (its result taken now), else None.
        Raises StorageError if its fdatasync failed."""
        self._check_usable()
        return self._take_sync(block=False)

    def _settle(self) -> None:
        """Wait for a running background sync: before its fd is closed or cut, and before a
        sync in the loop."""
        self._take_sync(block=True)

    def _take_sync(self, block: bool) -> int | None:
        if self._syncing is None or self._syncer is None:
            return None
        result, took_ns = self._syncer.finish(block)
        if result < 0:
            return None  # still running
        zxid, path = self._syncing
        self._syncing = None
        if result:
            error = OSError(result, os.strerror(result))
            raise self._fail(f"fdatasync of {path} failed: {os_failure_text(error, self.directory)}")
        self._synced(took_ns / 1e9)
        self._durable_zxid = max(self._durable_zxid, zxid)
        return self._durable_zxid

    def _synced(self, took: float) -> None:
        if took >= SLOW_FSYNC_S:
            self._slow_fsync(took)
        ms = took * 1000
        self.fsync_ms_min = ms if not self.fsync_count else min(self.fsync_ms_min, ms)
        self.fsync_ms_max = max(self.fsync_ms_max, ms)
        self.fsync_ms_sum += ms
        self.fsync_count += 1

    def _slow_fsync(self, took: float) -> None:
        self.slow_fsyncs += 1
        if self._slow_fsync_said.due():
            logger.warning(
                "txn log %s: an fdatasync took %.0f ms (%d of %.0f ms or more so far): the writes "
                "waiting on this disk wait as long", self.directory, took * 1000, self.slow_fsyncs,
                SLOW_FSYNC_S * 1000,
            )  # fmt: skip

    def entries(self, lo: int, hi: int) -> list[LogEntry]:
        """Entries with lo < zxid <= hi, in zxid order."""
        self._check_usable()
        return list(chain.from_iterable(self._read(lo + 1, hi)))

    def read_from(self, zxid: int) -> Iterator[LogEntry]:
        """Every entry with a zxid at or above zxid, in order, read a bounded chunk at a time.
        Do not append or truncate while iterating."""
        self._check_usable()
        return chain.from_iterable(self._read(zxid, ZXID_LIMIT - 1))

    def last_zxid(self) -> int:
        """The highest appended zxid, or 0 for an empty log."""
        return self._segments[-1].last_zxid if self._segments else 0

    def first_zxid(self) -> int:
        """The lowest zxid the log still holds (older segments may have been purged), or 0."""
        return self._segments[0].first_zxid if self._segments else 0

    @property
    def durable_zxid(self) -> int:
        """The highest zxid known to be on disk."""
        return self._durable_zxid

    def truncate(self, zxid: int) -> None:
        """Drop every entry above zxid (a TRUNC from a new leader), durably."""
        self._check_usable()
        if zxid >= self.last_zxid():
            return
        self._settle()
        keep = bisect_right([segment.first_zxid for segment in self._segments], zxid)
        doomed = self._segments[keep:]
        try:
            if doomed and self._fd is not None:
                os.close(self._fd)
                self._fd = None
            remove_files([segment.path for segment in doomed])
            del self._segments[keep:]
            if self._segments:
                self._cut_last(zxid)
        except OSError as e:
            raise self._fail(f"truncate to {zxid:#x} failed: {os_failure_text(e, self.directory)}") from e
        self._unsynced = False
        self._durable_zxid = self.last_zxid()

    def _cut_last(self, zxid: int) -> None:
        """Cut the last segment just after the record for zxid, or the last one below it."""
        segment = self._segments[-1]
        if self._fd is None:
            self._open_last()
        assert self._fd is not None
        offset, last = self._cut_point(segment, zxid)
        assert 0 < last <= zxid, f"no record at or below {zxid:#x} in {segment.path}"
        os.ftruncate(self._fd, offset)
        os.lseek(self._fd, offset, os.SEEK_SET)
        os.fsync(self._fd)
        segment.cut(offset, last)
        self._allocated = offset

    def _cut_point(self, segment: Segment, zxid: int) -> tuple[int, int]:
        """The offset of the first record above zxid in segment, and the zxid of the one before."""
        assert self._fd is not None
        offset, last = segment.offset_near(zxid), 0
        for chunk in scan_chunks(self._fd, offset, segment.data_end, self._codec):
            for record_zxid, payload in chunk.records:
                if record_zxid > zxid:
                    return offset, last
                last = record_zxid
                offset += RECORD_HEADER_BYTES + len(payload)
        return offset, last

    def remove_segments_before(self, zxid: int) -> list[Path]:
        """Remove the segments that hold only zxids below zxid (purge); the last one stays."""
        self._check_usable()
        doomed = segments_before([(s.first_zxid, s.path) for s in self._segments], zxid)
        remove_files(doomed)
        del self._segments[: len(doomed)]
        return doomed

    def close(self) -> None:
        """Close the log without syncing; further calls raise StorageError."""
        if self._syncer is not None:
            self._syncer.close()  # returns once a running sync is done: its fd is still open
            self._syncer, self._syncing = None, None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
        if self._failure is None:
            self._failure = "the log is closed"

    def __enter__(self) -> TxnLog:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    # --- helpers ------------------------------------------------------------------------------

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise StorageError(f"txn log {self.directory} is unusable: {self._failure}")

    def _fail(self, reason: str) -> StorageError:
        self._failure = reason
        return StorageError(f"txn log {self.directory}: {reason}")

    def _segment_for(self, first_zxid: int) -> Segment:
        """The segment the next batch goes to: the last one, or a new one when it is full."""
        if self._fd is not None and self._segments[-1].data_end < self._segment_bytes:
            return self._segments[-1]
        try:
            if self._fd is not None:
                self._seal()
            return self._create(first_zxid)
        except OSError as e:
            raise self._fail(
                f"rolling over to a new segment at {first_zxid:#x} failed: {os_failure_text(e, self.directory)}"
            ) from e

    def _seal(self) -> None:
        """Cut the full last segment to its exact size and make it durable, then close it."""
        assert self._fd is not None
        self._settle()
        segment = self._segments[-1]
        os.ftruncate(self._fd, segment.data_end)
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = None
        self._unsynced = False
        self._durable_zxid = segment.last_zxid

    def _create(self, first_zxid: int) -> Segment:
        path = self.directory / zxid_name(SEGMENT_PREFIX, first_zxid)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        self._fd, self._allocated = fd, 0
        segment = Segment(path, first_zxid)
        self._segments.append(segment)
        write_all(fd, encode_header(first_zxid))
        self._reserve(HEADER_BYTES)
        os.fsync(fd)
        fsync_dir(self.directory)
        return segment

    def _reserve(self, end: int) -> None:
        """Make the last segment's file at least end bytes long, growing it in whole
        preallocation steps so that appends rarely change its size. A step the disk has no room
        for is only an optimisation lost: the file then grows to fit each batch, until the disk
        cannot hold the batch itself (OSError ENOSPC, for the caller to report)."""
        assert self._fd is not None
        if end <= self._allocated:
            return
        step = self._preallocate_bytes
        # Past the rollover threshold the segment is sealed after this batch: grow only to fit.
        size = end if end > self._segment_bytes else -(-end // step) * step
        try:
            self._allocate(size)
        except OSError as e:
            if e.errno not in _NO_ROOM or size == end:
                raise
            if not self._short_of_room:
                self._short_of_room = True
                logger.warning(
                    "txn log %s: no room to preallocate %d MiB (%s free): the log grows as it "
                    "writes, and writes stop when the disk is full", self.directory,
                    (size - self._allocated) >> 20, free_space_text(self.directory),
                )  # fmt: skip
            self._allocate(end)
            size = end
        self._allocated = size

    def _allocate(self, size: int) -> None:
        assert self._fd is not None
        try:
            os.posix_fallocate(self._fd, self._allocated, size - self._allocated)
        except OSError as e:
            if e.errno not in _UNSUPPORTED:
                raise
            os.ftruncate(self._fd, size)

    def _read(self, lo: int, hi: int) -> Iterator[list[LogEntry]]:
        segments = list(self._segments)
        start = max(0, bisect_right([segment.first_zxid for segment in segments], lo) - 1)
        for segment in segments[start:]:
            if segment.first_zxid > hi:
                return
            if segment.last_zxid < lo:
                continue
            if segment is self._segments[-1] and self._fd is not None:
                yield from read_batches(self._fd, segment, lo, hi, self._codec)
                continue
            try:
                fd = os.open(segment.path, os.O_RDONLY)
            except FileNotFoundError:
                raise StorageError(f"log segment {segment.path} is gone (purged?)") from None
            try:
                yield from read_batches(fd, segment, lo, hi, self._codec)
            finally:
                os.close(fd)
