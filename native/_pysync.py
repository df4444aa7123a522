"""The pure-Python twin of native/src/syncer.c: an fdatasync on a thread of its own, and an
eventfd that turns readable when it is done, with the same interface and results as the C
version in native/_csync.py (see syncer.h for the contract).

The twin's thread needs the interpreter lock to report: while the loop is busy in Python, a
finished fdatasync waits for the lock's next hand-over (at most sys.getswitchinterval(), 5 ms)
before the eventfd tells. The C thread reports at once.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Final

from zkcore._errors import LocalError

__all__ = ["BUSY", "IDLE", "RUNNING", "Syncer"]

# finish() results besides 0 (done, the fdatasync succeeded) and a positive errno (it failed).
IDLE: Final = -1  # no sync was started since the last result was taken
RUNNING: Final = -2  # still running (only when not blocking)
BUSY: Final = -3  # start(): a sync is running, or its result is not taken yet


class Syncer:
    """One fdatasync at a time on a thread; fileno() is readable once it is done, and finish()
    takes its result. The fd given to start() must stay open until that sync is finished."""

    def __init__(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._event_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._fd = -1  # the file to sync, -1 when none is asked for
        self._started = False
        self._done = False
        self._result = 0
        self._took_ns = 0
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="fdatasync", daemon=True)
        self._thread.start()

    def fileno(self) -> int:
        if self._event_fd < 0:
            raise LocalError("the syncer is closed")
        return self._event_fd

    def start(self, fd: int) -> int:
        """Start an fdatasync of fd: 0, or BUSY."""
        if not isinstance(fd, int) or fd < 0:
            raise LocalError(f"fd must be a non-negative int: {fd!r}")
        with self._changed:
            if self._event_fd < 0:
                raise LocalError("the syncer is closed")
            if self._started:
                return BUSY
            self._started, self._done, self._fd = True, False, fd
            self._changed.notify_all()
        return 0

    def finish(self, block: bool) -> tuple[int, int]:
        """(result, nanoseconds the fdatasync took): result 0 or an errno once done, else IDLE
        or RUNNING (the time then 0). With block, waits for a running sync."""
        with self._changed:
            if not self._started or self._event_fd < 0:
                return IDLE, 0
            while not self._done:
                if not block:
                    return RUNNING, 0
                self._changed.wait()
            try:
                os.eventfd_read(self._event_fd)
            except BlockingIOError:
                pass
            self._started = self._done = False
            return self._result, self._took_ns

    def close(self) -> None:
        """Stop the thread once the running sync, if any, is done."""
        if self._event_fd < 0:
            return
        with self._changed:
            self._stop = True
            self._changed.notify_all()
        self._thread.join()
        os.close(self._event_fd)
        self._event_fd = -1

    def _run(self) -> None:
        with self._changed:
            while True:
                while self._fd < 0 and not self._stop:
                    self._changed.wait()
                if self._fd < 0:
                    return  # stopping, and nothing left to sync
                fd = self._fd
                self._changed.release()
                began = time.monotonic_ns()
                try:
                    os.fdatasync(fd)
                    result = 0
                except OSError as e:
                    result = e.errno or 0
                took = time.monotonic_ns() - began
                self._changed.acquire()
                self._fd, self._done, self._result, self._took_ns = -1, True, result, took
                os.eventfd_write(self._event_fd, 1)  # under the lock, as the C thread does
                self._changed.notify_all()
