"""The event thread: one per client, running every callback (watch functions, session listeners,
completions of results) in the order the I/O thread queued them, never on the I/O thread.

Completions share the queue with watch events, so a result that reflects a change is delivered
only after the watch function for that change has run. A blocking wait made on the event thread
itself (a watch function that calls client.get) keeps draining the queue while it waits.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("zkclient.events")

# Callbacks waiting to run; when full, the I/O thread waits for the application to catch up.
EVENT_QUEUE_MAX = 100_000
_STOP = None


class Dispatcher:
    def __init__(self, name: str, queue_max: int = EVENT_QUEUE_MAX) -> None:
        self._queue: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = queue.Queue(queue_max)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._stopping = False

    def start(self) -> None:
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._stopping

    def in_event_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, func: Callable[..., Any], *args: Any) -> None:
        """Queue func(*args) behind everything queued before; run it here if the thread is gone."""
        if not self._thread.is_alive() and (self._stopping or self._thread.ident is not None):
            self._call(func, args)
            return
        self._queue.put((func, args))

    def _call(self, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            func(*args)
        except Exception:  # a callback's bug must not stop the events of everyone else
            log.exception("callback %r raised", func)

    def _run(self) -> None:
        while not self._stopping:
            item = self._queue.get()
            if item is _STOP:
                self._stopping = True
                break
            self._call(*item)

    def run_until(self, done: Callable[[], bool], timeout: float | None) -> bool:
        """On the event thread: run queued callbacks until done() or the timeout; done()."""
        assert self.in_event_thread()
        deadline = None if timeout is None else time.monotonic() + timeout
        while not done():
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                return False
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                return done()
            if item is _STOP:
                self._stopping = True
                return done()
            self._call(*item)
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Run what is queued, then end the thread (not waiting for it when called from it)."""
        if self._thread.ident is None:
            self._stopping = True
            return
        if self._stopping:
            return
        self._queue.put(_STOP)
        if self.in_event_thread():
            return
        self._thread.join(timeout)
        while not self._thread.is_alive():  # what was queued after the stop runs here
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                self._call(*item)
