"""The shared-memory ring through the C in native/src/shmring.c: the file handling of
native/_pyshm.py, with push, pop and the wake-up protocol in C (C11 atomics, acquire/release
and the fences the protocol needs). Same interface and results as the twin.
"""

from __future__ import annotations

import mmap
from functools import partial
from typing import Any, Final

from native import _pyshm
from native._pyshm import Bytes, ReaderCalls
from native._zkpy_native import ffi, lib  # type: ignore[import-not-found]

__all__ = ["ShmRing"]

for _name in ("OK", "FULL", "TOO_BIG", "ABANDONED", "READER_GONE", "END", "MORE", "CORRUPT", "HEADER_BYTES",
              "RECORD_HEADER_BYTES", "FLAG_SPILL"):  # fmt: skip
    assert getattr(lib, f"ZK_SHM_{_name}") == getattr(_pyshm, _name), (
        f"shmring.h and _pyshm.py disagree on {_name}"
    )
_new_uncleared: Final = ffi.new_allocator(should_clear_after_alloc=False)


class ShmRing(_pyshm.ShmRing):
    def __init__(self, path: str, fd: int, mm: mmap.mmap, writer: bool) -> None:
        super().__init__(path, fd, mm, writer)
        self._base: Any = ffi.from_buffer(mm, require_writable=True)
        self._out: Any = None  # the reader's copy-out buffer, made on the first pop
        self._lens: Any = None
        self._flags: Any = None
        self._counts: Any = ffi.new("size_t[2]")

    def _release_views(self) -> None:
        ffi.release(self._base)

    def _attach(self) -> int:
        return int(lib.zk_shm_attach(self._base))

    def push(self, payload: Bytes, flags: int = 0, wake_fd: int = -1) -> int:
        assert self.writer, "push on the reader's side of a ring"
        view = memoryview(payload).cast("B")
        return int(
            lib.zk_shm_push(
                self._base, self.capacity, self.generation, ffi.from_buffer(view), len(view), flags, wake_fd
            )
        )

    def pop(self, records_max: int = _pyshm.POP_RECORDS_MAX) -> tuple[int, list[tuple[bytes, int]], int]:
        assert not self.writer, "pop on the writer's side of a ring"
        if self._out is None:  # everything published fits: at most capacity bytes
            self._out = _new_uncleared("uint8_t[]", self.capacity)
            self._lens = _new_uncleared("uint32_t[]", _pyshm.POP_RECORDS_MAX)
            self._flags = _new_uncleared("uint32_t[]", _pyshm.POP_RECORDS_MAX)
        counts = self._counts
        cap = min(records_max, _pyshm.POP_RECORDS_MAX)
        status = lib.zk_shm_pop(self._base, self.capacity, self._out, self.capacity, self._lens, self._flags,
                                cap, counts, counts + 1)  # fmt: skip
        count = counts[0]
        if not count:
            return int(status), [], int(counts[1])
        buf = ffi.buffer(self._out, self.capacity)
        out: list[tuple[bytes, int]] = []
        at = 0
        for length, flag in zip(ffi.unpack(self._lens, count), ffi.unpack(self._flags, count), strict=True):
            out.append((buf[at : at + length], flag))
            at += length
        return int(status), out, int(counts[1])

    def sleep(self) -> bool:
        return bool(lib.zk_shm_sleep(self._base))

    def wake(self) -> None:
        lib.zk_shm_wake(self._base)

    def discard(self) -> None:
        lib.zk_shm_discard(self._base)

    def pending_bytes(self) -> int:
        return int(lib.zk_shm_pending(self._base))

    def reader_calls(self) -> ReaderCalls:
        base = self._base
        return (
            partial(lib.zk_shm_sleep, base),
            partial(lib.zk_shm_wake, base),
            partial(lib.zk_shm_pending, base),
        )
