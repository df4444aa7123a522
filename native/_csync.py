"""The background fdatasync through the C in native/src/syncer.c: a pthread that reports a
finished sync through its eventfd without the interpreter lock. Same interface and results as
the twin in native/_pysync.py.
"""

from __future__ import annotations

import os
from typing import Any

from native import _pysync
from native._zkpy_native import ffi, lib  # type: ignore[import-not-found]
from zkcore._errors import LocalError

__all__ = ["Syncer"]

for _name in ("IDLE", "RUNNING", "BUSY"):
    assert getattr(lib, f"ZK_SYNC_{_name}") == getattr(_pysync, _name), (
        f"syncer.h and _pysync.py disagree on {_name}"
    )


class Syncer:
    __doc__ = _pysync.Syncer.__doc__

    def __init__(self) -> None:
        self._s: Any = lib.zk_syncer_new()
        if self._s == ffi.NULL:
            errno = ffi.errno
            raise OSError(errno, f"cannot start the fdatasync thread: {os.strerror(errno)}")
        self._pid = os.getpid()  # a forked child has the struct but not the thread
        self._took = ffi.new("int64_t *")

    def fileno(self) -> int:
        if self._s is None:
            raise LocalError("the syncer is closed")
        return int(lib.zk_syncer_fd(self._s))

    def start(self, fd: int) -> int:
        if not isinstance(fd, int) or fd < 0:
            raise LocalError(f"fd must be a non-negative int: {fd!r}")
        if self._s is None:
            raise LocalError("the syncer is closed")
        return int(lib.zk_syncer_start(self._s, fd))

    def finish(self, block: bool) -> tuple[int, int]:
        if self._s is None:
            return _pysync.IDLE, 0
        result = int(lib.zk_syncer_finish(self._s, 1 if block else 0, self._took))
        return result, (int(self._took[0]) if result >= 0 else 0)

    def close(self) -> None:
        s, self._s = self._s, None
        if s is not None and os.getpid() == self._pid:
            lib.zk_syncer_free(s)

    def __del__(self) -> None:
        self.close()
