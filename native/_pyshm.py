"""The pure-Python twin of native/src/shmring.c: a single-producer single-consumer ring of
messages in a shared-memory file, with the same layout, interface and results as the C version
in native/_cshm.py (the layout and the wake-up protocol are described in shmring.h).

The file handling is here and shared by both: the reader creates a ring (marking the file it
replaces abandoned, so a writer still attached to it attaches again), a writer attaches to it
under an exclusive flock (one writer per ring, released when its process dies, even by kill -9).

Header words are read and written through a memoryview cast to native u64, which copies them
with one 8-byte load or store, as C does. On x86-64 those are ordered (TSO) as the protocol
needs; the store-then-load of the wake-up protocol gets its full fence from a lock
acquire (a locked instruction). On weaker CPUs the C ring is the one to run: this twin is the
reference and the fallback, and the node loop never blocks for longer than a tick, so a lost
wake-up would cost a tick, never a hang.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import threading
from collections.abc import Callable
from typing import Final

from zkcore._errors import LocalError, RemoteError

Bytes = bytes | bytearray | memoryview
ReaderCalls = tuple[Callable[[], object], Callable[[], object], Callable[[], int]]

MAGIC: Final = 0x7A6B707972696E67  # "zkpyring"
VERSION: Final = 1
HEADER_BYTES: Final = 4096
RECORD_HEADER_BYTES: Final = 8
CAPACITY_MIN: Final = 4096
CAPACITY_MAX: Final = 1 << 30
FLAG_SPILL: Final = 1

# push results
OK: Final = 0
FULL: Final = 1
TOO_BIG: Final = 2
ABANDONED: Final = 3
READER_GONE: Final = 4
# pop results
END: Final = 0
MORE: Final = 5
CORRUPT: Final = 6
POP_RECORDS_MAX: Final = 4096

# header word indexes (byte offset / 8)
_MAGIC, _VERSION, _CAPACITY, _GENERATION, _ABANDONED = 0, 1, 2, 3, 4
_TAIL = 8
_HEAD, _SLEEPING = 16, 17
_GENERATION_MASK: Final = 0x7FFFFFFF
_RECORD = struct.Struct("=II")
_FENCE = threading.Lock()


def _record_bytes(length: int) -> int:
    return RECORD_HEADER_BYTES + ((length + 7) & ~7)


def _check_capacity(capacity: object) -> None:
    if (
        not isinstance(capacity, int)
        or not CAPACITY_MIN <= capacity <= CAPACITY_MAX
        or capacity & (capacity - 1)
    ):
        raise LocalError(
            f"ring capacity must be a power of two in {CAPACITY_MIN}..{CAPACITY_MAX}: {capacity!r}"
        )


def _map(fd: int, path: str) -> mmap.mmap:
    """The ring file at fd, mapped, once its header says it is a ring of its own size."""
    size = os.fstat(fd).st_size
    if size < HEADER_BYTES + CAPACITY_MIN:
        raise RemoteError(f"shared-memory ring {path} is {size} bytes, shorter than a header and a ring")
    mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    magic, version, capacity = struct.unpack_from("=QQQ", mm, 0)
    problem = ""
    if magic != MAGIC or version != VERSION:
        problem = f"is not a version-{VERSION} zkpy shared-memory ring"
    elif (
        capacity & (capacity - 1)
        or not CAPACITY_MIN <= capacity <= CAPACITY_MAX
        or size != HEADER_BYTES + capacity
    ):
        problem = f"has capacity {capacity}, which does not match its size {size}"
    if problem:
        mm.close()
        raise RemoteError(f"shared-memory ring {path} {problem}")
    return mm


class ShmRing:
    """One ring, from one side: `create(path, capacity)` for the reader, `attach(path)` for the
    writer. A message is bytes of at most `message_bytes_max`; push() never blocks."""

    OK, FULL, TOO_BIG, ABANDONED, READER_GONE = OK, FULL, TOO_BIG, ABANDONED, READER_GONE
    END, MORE, CORRUPT, FLAG_SPILL = END, MORE, CORRUPT, FLAG_SPILL

    def __init__(self, path: str, fd: int, mm: mmap.mmap, writer: bool) -> None:
        self.path, self.writer = path, writer
        self._fd, self._mm = fd, mm
        self._words = memoryview(mm)[:HEADER_BYTES].cast("Q")
        capacity = self._words[_CAPACITY]
        assert len(mm) == HEADER_BYTES + capacity, "_map checked the header"
        self.capacity: int = capacity
        self.message_bytes_max: int = capacity - RECORD_HEADER_BYTES
        self.generation = 0

    # --- the file ---------------------------------------------------------------------------

    @classmethod
    def create(cls, path: str, capacity: int) -> ShmRing:
        """The reader's new, empty ring at path. A ring already there (a previous incarnation's)
        is marked abandoned first, so that its writer attaches again, and is then replaced."""
        _check_capacity(capacity)
        abandon(path)
        tmp = f"{path}.new"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, HEADER_BYTES + capacity)
            mm = mmap.mmap(fd, HEADER_BYTES + capacity, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            struct.pack_into("=QQQ", mm, 0, MAGIC, VERSION, capacity)
            os.rename(tmp, path)  # a writer never sees a half-made header
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, mm, writer=False)

    @classmethod
    def attach(cls, path: str) -> ShmRing:
        """The writer's side of the reader's ring at path. FileNotFoundError: no reader made it
        yet; BlockingIOError: another writer holds it; RemoteError: not a ring or abandoned."""
        fd = os.open(path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            ring = cls(path, fd, _map(fd, path), writer=True)
        except BaseException:
            os.close(fd)
            raise
        if ring._words[_ABANDONED]:
            ring.close()
            raise RemoteError(f"shared-memory ring {path} was abandoned by its reader")
        ring.generation = ring._attach()
        return ring

    def close(self) -> None:
        if self._fd < 0:
            return
        self._words.release()
        self._release_views()
        self._mm.close()
        os.close(self._fd)  # the writer's flock goes with it
        self._fd = -1

    def _release_views(self) -> None:
        """The C twin drops its pointer into the mapping here."""

    @property
    def closed(self) -> bool:
        return self._fd < 0

    # --- the ring (the C twin overrides these) -----------------------------------------------

    def _attach(self) -> int:
        words = self._words  # under the flock: no other writer bumps it meanwhile
        words[_GENERATION] = words[_GENERATION] + 1
        return int(words[_GENERATION])

    def push(self, payload: Bytes, flags: int = 0, wake_fd: int = -1) -> int:
        """Append one message; wake a sleeping reader through wake_fd. One of OK, FULL,
        TOO_BIG, ABANDONED, READER_GONE (the message is in the ring, nobody reads it)."""
        assert self.writer, "push on the reader's side of a ring"
        words, capacity = self._words, self.capacity
        if words[_ABANDONED]:
            return ABANDONED
        length = memoryview(payload).nbytes
        if length > self.message_bytes_max:
            return TOO_BIG
        need = _record_bytes(length)
        tail, head = words[_TAIL], words[_HEAD]
        if tail - head > capacity or capacity - (tail - head) < need:
            return FULL
        mm, view = self._mm, memoryview(payload).cast("B")
        at = tail & (capacity - 1)
        _RECORD.pack_into(
            mm, HEADER_BYTES + at, length, (self.generation & _GENERATION_MASK) << 1 | flags & FLAG_SPILL
        )
        at = (at + RECORD_HEADER_BYTES) & (capacity - 1)
        first = min(capacity - at, length)
        mm[HEADER_BYTES + at : HEADER_BYTES + at + first] = view[:first]
        mm[HEADER_BYTES : HEADER_BYTES + length - first] = view[first:]
        words[_TAIL] = tail + need
        with _FENCE:  # the tail store before the sleeping load
            pass
        if wake_fd < 0 or not words[_SLEEPING]:
            return OK
        words[_SLEEPING] = 0  # one writer per ring, so a plain store does what C's exchange does
        try:
            os.write(wake_fd, b"\x01")
        except BlockingIOError:
            pass  # a full pipe already holds a wake-up
        except OSError:
            return READER_GONE
        return OK

    def pop(self, records_max: int = POP_RECORDS_MAX) -> tuple[int, list[tuple[bytes, int]], int]:
        """Take the published messages of the current writer: (status, [(payload, flags)],
        stale records skipped). status is END, MORE (call again) or CORRUPT (all dropped)."""
        assert not self.writer, "pop on the writer's side of a ring"
        words, capacity, mm = self._words, self.capacity, self._mm
        head, tail = words[_HEAD], words[_TAIL]
        generation = words[_GENERATION] & _GENERATION_MASK
        out: list[tuple[bytes, int]] = []
        skipped, status = 0, END
        if tail - head > capacity or (tail - head) % 8:
            status, head = CORRUPT, tail
        while head != tail:
            at = head & (capacity - 1)
            length, stamp = _RECORD.unpack_from(mm, HEADER_BYTES + at)
            need = _record_bytes(length)
            if need > tail - head:
                status, head = CORRUPT, tail
                break
            if stamp >> 1 != generation:
                skipped += 1
                head += need
                continue
            if len(out) == records_max:
                status = MORE
                break
            at = (at + RECORD_HEADER_BYTES) & (capacity - 1)
            first = min(capacity - at, length)
            payload = mm[HEADER_BYTES + at : HEADER_BYTES + at + first]
            if first < length:
                payload += mm[HEADER_BYTES : HEADER_BYTES + length - first]
            out.append((payload, stamp & FLAG_SPILL))
            head += need
        words[_HEAD] = head
        return status, out, skipped

    def sleep(self) -> bool:
        """The reader is about to block: True if a message came meanwhile (do not block)."""
        words = self._words
        words[_SLEEPING] = 1
        with _FENCE:  # the sleeping store before the tail load
            pass
        if words[_TAIL] != words[_HEAD]:
            words[_SLEEPING] = 0
            return True
        return False

    def wake(self) -> None:
        self._words[_SLEEPING] = 0

    def discard(self) -> None:
        """Drop every published message (their writer died)."""
        self._words[_HEAD] = self._words[_TAIL]

    def pending_bytes(self) -> int:
        return int(self._words[_TAIL] - self._words[_HEAD])

    def reader_calls(self) -> ReaderCalls:
        """(sleep, wake, pending_bytes) as a reader's loop calls them every turn: plain
        callables, which the native ring makes without a Python frame of their own. Not to be
        called once the ring is closed."""
        return self.sleep, self.wake, self.pending_bytes


def abandon(path: str) -> bool:
    """Mark the ring at path abandoned, if there is one: its writer stops and attaches again."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        mm = _map(fd, path)
    except (RemoteError, ValueError, OSError):
        os.close(fd)
        return False
    words = memoryview(mm)[:HEADER_BYTES].cast("Q")
    marked = words[_MAGIC] == MAGIC
    if marked:
        words[_ABANDONED] = 1
    words.release()
    mm.close()
    os.close(fd)
    return marked
