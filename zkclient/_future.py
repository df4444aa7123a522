"""AsyncResult: what every `*_async` call returns, shaped like kazoo's IAsyncResult (get, wait,
ready, successful, rawlink). Results are set on the client's event thread, in arrival order.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from zkclient.exceptions import ClientTimeoutError

if TYPE_CHECKING:
    from zkclient._dispatch import Dispatcher

log = logging.getLogger("zkclient.events")
T = TypeVar("T")


class AsyncResult(Generic[T]):
    """A value or an exception that will arrive. `rawlink(cb)` calls cb(self) once it has."""

    def __init__(self, dispatcher: Dispatcher | None = None) -> None:
        self._dispatcher = dispatcher
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._value: T | None = None
        self._exception: BaseException | None = None
        self._callbacks: list[Callable[[AsyncResult[T]], Any]] = []

    # --- producer side ------------------------------------------------------------------------

    def set(self, value: T) -> None:
        self._finish(value, None)

    def set_exception(self, exception: BaseException) -> None:
        self._finish(None, exception)

    def _finish(self, value: T | None, exception: BaseException | None) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self._value, self._exception = value, exception
            self._done.set()
            callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            self._run(cb)

    def _run(self, cb: Callable[[AsyncResult[T]], Any]) -> None:
        try:
            cb(self)
        except Exception:
            log.exception("rawlink callback %r raised", cb)

    # --- consumer side ------------------------------------------------------------------------

    @property
    def value(self) -> T | None:
        return self._value

    @property
    def exception(self) -> BaseException | None:
        return self._exception

    def ready(self) -> bool:
        return self._done.is_set()

    def successful(self) -> bool:
        return self._done.is_set() and self._exception is None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until ready (or the timeout); whether it is ready."""
        if self._done.is_set():
            return True
        if self._dispatcher is not None and self._dispatcher.in_event_thread():
            return self._dispatcher.run_until(self._done.is_set, timeout)
        return self._done.wait(timeout)

    def get(self, block: bool = True, timeout: float | None = None) -> T:
        """The value, or raise the exception; ClientTimeoutError if it has not come in time."""
        if not self._done.is_set() and not (block and self.wait(timeout)):
            raise ClientTimeoutError("no result yet" if not block else f"no result within {timeout}s")
        if self._exception is not None:
            raise self._exception
        return self._value  # type: ignore[return-value]

    def get_nowait(self) -> T:
        return self.get(block=False)

    def rawlink(self, callback: Callable[[AsyncResult[T]], Any]) -> None:
        """Call callback(self) when the result is set (on the event thread); at once, through
        the event thread, if it already is."""
        with self._lock:
            if not self._done.is_set():
                self._callbacks.append(callback)
                return
        if self._dispatcher is not None:
            self._dispatcher.submit(self._run, callback)
        else:
            self._run(callback)

    def unlink(self, callback: Callable[[AsyncResult[T]], Any]) -> None:
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)
