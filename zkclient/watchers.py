"""kazoo's watch recipes: DataWatch and ChildrenWatch call a function now and after every change,
re-arming the one-shot watch each time, until the function returns False.

Both run as small state machines on the client's event thread (rawlink callbacks, never a
blocking call there): fetch with a watch, deliver, and fetch again when the watch fires. A fetch
lost to a dropped connection is made again when the client is CONNECTED; a session that ends
(NONE event) is picked up again if the client is started again.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from zkclient._future import AsyncResult
from zkclient.exceptions import WatchError
from zkclient.states import EventType, KazooState, WatchedEvent, ZnodeStat
from zkcore._errors import ConnectionLossError, NoNodeError, SessionExpiredError

if TYPE_CHECKING:
    from zkclient.client import Client

log = logging.getLogger("zkclient.watchers")


def _takes(func: Callable[..., Any], count: int) -> bool:
    """Whether func accepts `count` positional arguments."""
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = 0
    for p in params:
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            return True
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            positional += 1
    return positional >= count


class _Recipe:
    def __init__(self, client: Client, path: str) -> None:
        self._client = client
        self._path = path
        self._func: Callable[..., Any] | None = None
        self._stopped = False
        self._armed = False  # a fetch succeeded and its watch is held
        self._busy = False  # a fetch is in flight
        self._first_call = threading.Event()

    def _bind(self, func: Callable[..., Any]) -> None:
        if self._func is not None:
            raise WatchError(f"a function is already associated with this {type(self).__name__}")
        self._func = func
        self._client.add_listener(self._on_session)
        self._fetch(None)
        dispatcher = self._client._dispatcher
        if self._client.connected and (dispatcher is None or not dispatcher.in_event_thread()):
            self._first_call.wait(self._client.timeout)  # kazoo's recipes return after the first call

    def _fetch(self, event: WatchedEvent | None) -> None:
        raise NotImplementedError

    def _on_session(self, state: str) -> bool:
        if self._stopped:
            return True
        if state == KazooState.CONNECTED and not self._armed and not self._busy:
            self._fetch(None)
        return False

    def _watcher(self, event: WatchedEvent) -> None:
        if self._stopped:
            return
        if event.type == EventType.NONE:
            self._armed = False  # the session ended; a new one re-fetches (see _on_session)
            return
        self._fetch(event)

    def _failed(self, exc: BaseException) -> None:
        """ConnectionLoss: fetch again now or once CONNECTED (see _on_session); a session that
        ended: once a new one is CONNECTED; anything else (NoAuth...) ends the watch."""
        self._busy = False
        self._armed = False
        if isinstance(exc, ConnectionLossError):
            if self._client.connected and not self._stopped:
                self._fetch(None)
        elif not isinstance(exc, SessionExpiredError):
            log.warning("%s on %s stops: %r", type(self).__name__, self._path, exc)
            self._stop()

    def _stop(self) -> None:
        self._stopped = True
        self._func = None
        self._first_call.set()
        self._client.remove_listener(self._on_session)


class DataWatch(_Recipe):
    """func(data, stat) or func(data, stat, event): called at once and after each change of the
    node's data (by mzxid), with (None, None) while the node does not exist. `event` is None for
    the first call and after a reconnect. Return False to stop. Usable as a decorator:
    `@client.DataWatch("/config")`."""

    def __init__(self, client: Client, path: str, func: Callable[..., Any] | None = None) -> None:
        super().__init__(client, path)
        self._version: int | None = None
        self._ever_called = False
        self._with_event = False
        if func is not None:
            self(func)

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        self._with_event = _takes(func, 3)
        self._bind(func)
        return func

    def _fetch(self, event: WatchedEvent | None) -> None:
        if self._stopped:
            return
        self._busy = True
        self._client.get_async(self._path, self._watcher).rawlink(lambda r: self._got_data(r, event))

    def _got_data(self, result: AsyncResult[tuple[bytes, ZnodeStat]], event: WatchedEvent | None) -> None:
        exc = result.exception
        if exc is None:
            assert result.value is not None
            self._deliver(*result.value, event)
        elif isinstance(exc, NoNodeError):
            self._client.exists_async(self._path, self._watcher).rawlink(lambda r: self._got_stat(r, event))
        else:
            self._failed(exc)

    def _got_stat(self, result: AsyncResult[ZnodeStat | None], event: WatchedEvent | None) -> None:
        if result.exception is not None:
            self._failed(result.exception)
        elif result.value is not None:
            self._fetch(event)  # created between the get and the exists: read it
        else:
            self._deliver(None, None, event)

    def _deliver(self, data: bytes | None, stat: ZnodeStat | None, event: WatchedEvent | None) -> None:
        self._busy = False
        self._armed = True
        version = stat.mzxid if stat is not None else None
        if self._stopped or (self._ever_called and version == self._version):
            return
        self._version, self._ever_called = version, True
        func = self._func
        assert func is not None
        try:
            result = func(data, stat, event) if self._with_event else func(data, stat)
        finally:
            self._first_call.set()
        if result is False:
            self._stop()


class ChildrenWatch(_Recipe):
    """func(children) or, with send_event, func(children, event): called at once and after each
    change of the node's children. Stops when func returns False or the node does not exist
    (or, with allow_session_lost=False, when the session is lost)."""

    def __init__(self, client: Client, path: str, func: Callable[..., Any] | None = None,
                 allow_session_lost: bool = True, send_event: bool = False) -> None:  # fmt: skip
        super().__init__(client, path)
        self._allow_session_lost = allow_session_lost
        self._send_event = send_event
        self._prior: list[str] | None = None
        if func is not None:
            self(func)

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        self._bind(func)
        return func

    def _on_session(self, state: str) -> bool:
        if state == KazooState.LOST and not self._allow_session_lost:
            self._stop()
            return True
        return super()._on_session(state)

    def _fetch(self, event: WatchedEvent | None) -> None:
        if self._stopped:
            return
        self._busy = True
        self._client.get_children_async(self._path, self._watcher).rawlink(lambda r: self._got(r, event))

    def _got(self, result: AsyncResult[list[str]], event: WatchedEvent | None) -> None:
        exc = result.exception
        if isinstance(exc, NoNodeError):
            self._stop()
            return
        if exc is not None:
            self._failed(exc)
            return
        self._busy = False
        self._armed = True
        children = result.value
        assert children is not None
        if self._stopped or (event is None and self._prior is not None and children == self._prior):
            return
        self._prior = children
        func = self._func
        assert func is not None
        try:
            outcome = func(children, event) if self._send_event else func(children)
        finally:
            self._first_call.set()
        if outcome is False:
            self._stop()
