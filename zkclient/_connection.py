"""The I/O thread: one ZeroMQ DEALER to one server at a time, the session handshake, pipelined
requests matched to replies in order, pings, and failover to the next server with the same
session when the server refuses, drops or goes silent.

Only this thread touches the DEALER. Application threads hand it Calls through a bounded inbox
and wake it through an inproc PAIR socket. Everything it learns (replies, watch events, state
changes) goes to the event thread through one ordered queue (see _dispatch).
"""

from __future__ import annotations

import enum
import itertools
import logging
import queue
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import zmq

from zkclient._dispatch import Dispatcher
from zkclient._future import AsyncResult
from zkclient._ops import Call, error
from zkclient._watchers import WatchManager, set_watches_frames
from zkclient.exceptions import ConnectionClosedError
from zkclient.hosts import strip_root
from zkclient.states import KazooState, KeeperState, WatchedEvent, event_type_name
from zkcore._errors import Code, ConnectionLossError, RemoteError, SessionExpiredError
from zkcore._jute import Reader
from zkcore._records import (
    XID_AUTH,
    XID_NOTIFICATION,
    XID_PING,
    XID_SET_WATCHES,
    AuthPacket,
    ConnectRequest,
    ConnectResponse,
    OpCode,
    ReplyHeader,
    RequestHeader,
    WatcherEvent,
)

log = logging.getLogger("zkclient.connection")

# Requests sent and not yet answered; the server cuts off a client with 10 000 (client_queue_max).
IN_FLIGHT_MAX = 1000
# Requests handed over by the application and not yet taken by the I/O thread.
INBOX_MAX = 100_000
# Largest reply frame accepted from a server.
REPLY_BYTES_MAX = 1 << 27
CONNECT_TIMEOUT_MIN_S = 1.0
PASSWORD_BYTES = 16
PING_FRAME = RequestHeader(XID_PING, OpCode.PING).encode()


class Phase(enum.Enum):
    HANDSHAKE = "handshake"  # ConnectRequest sent, no ConnectResponse yet
    OPEN = "open"


@dataclass(eq=False, slots=True)
class Link:
    """One DEALER connected to one server."""

    endpoint: str
    sock: zmq.Socket[bytes]
    opened_at: float
    last_recv: float
    last_send: float
    last_ping: float
    resumed: bool  # an existing session: re-register its watches once the server takes it
    phase: Phase = Phase.HANDSHAKE


@dataclass(eq=False, slots=True)
class AuthCall:
    """addAuth: sent with xid -4 and answered out of band, so matched in its own queue. `result`
    is None for the credentials the I/O thread re-sends on every handshake."""

    scheme: str
    credential: bytes
    result: AsyncResult[Any] | None
    queued_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class Shutdown:
    close_session: bool
    timeout_s: float


Item = Call | AuthCall


class Connection:
    """Owns the session's transport. Start with `thread.start()`; stop with `shutdown()`.

    `on_state` is called on the I/O thread with KazooState values, in order with everything
    else this thread queues on the dispatcher."""

    def __init__(
        self,
        endpoints: tuple[str, ...],
        timeout_s: float,
        dispatcher: Dispatcher,
        watches: WatchManager,
        on_state: Callable[[str], None],
        chroot: str = "",
        read_only: bool = False,
        randomize: bool = True,
        session: tuple[int, bytes] | None = None,
        auth: list[tuple[str, bytes]] | None = None,
        context: zmq.Context[zmq.Socket[bytes]] | None = None,
        rng: random.Random | None = None,
        round_backoff: Callable[[int], float] | None = None,
    ) -> None:
        assert endpoints, "a connection needs at least one endpoint"
        self.requested_timeout_ms = max(1, int(timeout_s * 1000))
        self.timeout_ms = self.requested_timeout_ms  # negotiated once connected
        self.dispatcher = dispatcher
        self.watches = watches
        self.on_state = on_state
        self.chroot = chroot
        self.read_only = read_only
        self.session_id, self.passwd = session if session is not None else (0, bytes(PASSWORD_BYTES))
        self.last_zxid = 0
        self.expired = False
        self.closed = False
        self.endpoint: str | None = None
        hosts = list(endpoints)
        if randomize:
            (rng or random.Random()).shuffle(hosts)
        self._hosts = hosts
        self._host_pos = 0
        self._failures = 0  # connect attempts in a row that did not open a session
        self._next_attempt_at = 0.0
        # The wait after the n-th whole round of servers that did not take the session.
        self._round_backoff = round_backoff or (lambda rounds: min(0.05 * 2 ** (rounds - 1), 1.0))
        self._auths = list(auth or [])
        self._set_watches_ok = True
        self._xids = itertools.count(1)
        self._ctx = context or zmq.Context.instance()
        self._inbox: queue.SimpleQueue[Item | Shutdown] = queue.SimpleQueue()
        self._room = threading.BoundedSemaphore(INBOX_MAX)
        self._lock = threading.Lock()  # _finished and the application's end of the wake pipe
        self._finished = False
        address = f"inproc://zkclient-wake-{id(self):x}-{next(_WAKE_IDS)}"
        self._wake_recv = self._ctx.socket(zmq.PAIR)
        self._wake_recv.bind(address)
        self._wake_send: zmq.Socket[bytes] | None = self._ctx.socket(zmq.PAIR)
        self._wake_send.setsockopt(zmq.SNDHWM, 1)
        self._wake_send.connect(address)
        self._poller = zmq.Poller()
        self._poller.register(self._wake_recv, zmq.POLLIN)
        self._link: Link | None = None
        self._outgoing: deque[Item] = deque()
        self._in_flight: deque[Call] = deque()
        self._auth_in_flight: deque[AuthCall] = deque()
        self._done = False
        self._closing_deadline: float | None = None
        self.thread = threading.Thread(target=self._run, name="zkclient-io", daemon=True)

    # --- application side ---------------------------------------------------------------------

    def submit(self, item: Item) -> None:
        """Hand a request to the I/O thread (blocks while INBOX_MAX are waiting)."""
        self._room.acquire()
        with self._lock:
            if not self._finished:
                self._inbox.put(item)
                self._wake_locked()
                return
        self._room.release()
        self._fail(item, self.final_error())

    def shutdown(self, close_session: bool, timeout_s: float) -> None:
        """Close the session (when asked and connected) and end the thread; waits for it."""
        with self._lock:
            if not self._finished:
                self._inbox.put(Shutdown(close_session, timeout_s))
                self._wake_locked()
        if self.thread.ident is not None and threading.current_thread() is not self.thread:
            self.thread.join(timeout_s + 5)
        with self._lock:
            if self._wake_send is not None:
                self._wake_send.close(linger=0)
                self._wake_send = None
        if self.thread.ident is None:
            self._wake_recv.close(linger=0)

    def _wake_locked(self) -> None:
        if self._wake_send is None:
            return
        try:
            self._wake_send.send(b"", zmq.NOBLOCK)
        except zmq.Again:
            pass  # a wake-up is already pending

    def final_error(self) -> Exception:
        """What a request gets once the session is over."""
        if self.expired:
            return SessionExpiredError("KeeperErrorCode = SessionExpired: the session has expired")
        return ConnectionClosedError("Connection has been closed")

    # --- the loop -------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._done:
                self._step()
        except Exception:
            log.exception("zkclient I/O thread failed; closing the connection")
            self._finish(ConnectionLossError("the client's I/O thread failed"), KeeperState.CLOSED)
        finally:
            with self._lock:
                self._finished = True
            self._drain_inbox(self.final_error())
            if self._link is not None:
                self._close_link()
            self._wake_recv.close(linger=0)

    def _step(self) -> None:
        now = time.monotonic()
        if (
            self._link is None
            and now >= self._next_attempt_at
            and self._closing_deadline is None
            and not self._done
        ):
            self._open(now)
        wait_s = max(0.0, min(self._next_wakeup(now), now + 1.0) - now)
        ready = dict(self._poller.poll(int(wait_s * 1000) + 1))
        if self._wake_recv in ready:
            while True:
                try:
                    self._wake_recv.recv(zmq.NOBLOCK)
                except zmq.Again:
                    break
        self._take_inbox()
        link = self._link
        if link is not None and link.sock in ready:
            self._read(link)
        self._tick(time.monotonic())
        self._flush()

    def _next_wakeup(self, now: float) -> float:
        times = [now + 1.0]
        link = self._link
        if link is None:
            times.append(self._next_attempt_at)
        elif link.phase is Phase.HANDSHAKE:
            times.append(link.opened_at + self._connect_timeout_s())
        else:
            interval = self.timeout_ms / 3000
            times += [link.last_recv + 2 * interval, link.last_send + interval,
                      max(link.last_recv, link.last_ping) + interval]  # fmt: skip
        if self._outgoing and (link is None or link.phase is Phase.HANDSHAKE):
            times.append(self._outgoing[0].queued_at + self.requested_timeout_ms / 1000)
        if self._closing_deadline is not None:
            times.append(self._closing_deadline)
        return min(times)

    def _connect_timeout_s(self) -> float:
        return max(CONNECT_TIMEOUT_MIN_S, self.requested_timeout_ms / 1000 / len(self._hosts))

    def _take_inbox(self) -> None:
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, Shutdown):
                self._begin_shutdown(item)
                continue
            self._room.release()
            if self._closing_deadline is not None or self._done:
                self._fail(item, ConnectionClosedError("Connection has been closed"))
            else:
                self._outgoing.append(item)

    # --- connecting -----------------------------------------------------------------------------

    def _open(self, now: float) -> None:
        endpoint = self._hosts[self._host_pos % len(self._hosts)]
        self._host_pos += 1
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, IN_FLIGHT_MAX + 1000)
        sock.setsockopt(zmq.RCVHWM, 100_000)
        sock.setsockopt(zmq.MAXMSGSIZE, REPLY_BYTES_MAX)
        try:
            sock.connect(endpoint)
        except zmq.ZMQError as e:
            log.warning("cannot connect to %s: %s", endpoint, e)
            sock.close(linger=0)
            self._attempt_failed(now)
            return
        self._link = Link(endpoint, sock, now, now, now, now, resumed=self.session_id != 0)
        self.endpoint = endpoint
        self._poller.register(sock, zmq.POLLIN)
        log.debug("connecting to %s (session %#x, last zxid %#x)", endpoint, self.session_id, self.last_zxid)
        self._send(ConnectRequest(0, self.last_zxid, self.requested_timeout_ms, self.session_id, self.passwd,
                                  self.read_only).encode())  # fmt: skip

    def _attempt_failed(self, now: float) -> None:
        self._failures += 1
        if self._failures % len(self._hosts) == 0:
            self._next_attempt_at = now + self._round_backoff(self._failures // len(self._hosts))

    def _established(self, link: Link, resp: ConnectResponse) -> None:
        if resp.timeout_ms <= 0:
            log.info("session %#x has expired (told by %s)", self.session_id, link.endpoint)
            self._finish(SessionExpiredError("KeeperErrorCode = SessionExpired"), KeeperState.EXPIRED_SESSION)
            return
        link.phase = Phase.OPEN
        self._failures = 0
        self.session_id, self.passwd, self.timeout_ms = resp.session_id, resp.passwd, resp.timeout_ms
        log.debug("session %#x open on %s, timeout %d ms", self.session_id, link.endpoint, self.timeout_ms)
        self.on_state(KazooState.CONNECTED)
        self._prime(link)

    def _prime(self, link: Link) -> None:
        """Right after the ConnectResponse and before any queued request: re-register the watches
        of a resumed session (setWatches2, xid -8), then send every credential again (auth lives
        on the connection). Sent only now, not pipelined behind the ConnectRequest, because a
        server answers auth at once: for a new session that would overtake the ConnectResponse."""
        resume = link.resumed and self._set_watches_ok
        frames = set_watches_frames(self.watches.snapshot(), self.last_zxid) if resume else []
        for scheme, credential in self._auths:
            frames.append(
                RequestHeader(XID_AUTH, OpCode.AUTH).encode() + AuthPacket(0, scheme, credential).encode()
            )
            self._auth_in_flight.append(AuthCall(scheme, credential, None))
        for frame in frames:
            if link is not self._link or not self._send(frame):
                return

    # --- sending --------------------------------------------------------------------------------

    def _send(self, frame: bytes) -> bool:
        link = self._link
        assert link is not None
        try:
            link.sock.send(frame, zmq.NOBLOCK)
        except zmq.Again:
            self._drop_link("the server is not reading (send queue full)")
            return False
        link.last_send = time.monotonic()
        return True

    def _flush(self) -> None:
        link = self._link
        while link is not None and link is self._link and link.phase is Phase.OPEN and self._outgoing:
            if len(self._in_flight) >= IN_FLIGHT_MAX:
                return
            item = self._outgoing.popleft()
            if isinstance(item, AuthCall):
                self._auth_in_flight.append(item)
                packet = AuthPacket(0, item.scheme, item.credential).encode()
                self._send(RequestHeader(XID_AUTH, OpCode.AUTH).encode() + packet)
                continue
            item.xid = next(self._xids)
            if item.xid >= 2**31 - 1:
                self._xids = itertools.count(1)
            self._in_flight.append(item)
            self._send(RequestHeader(item.xid, item.opcode).encode() + item.payload)

    def _ping(self, link: Link, now: float) -> None:
        link.last_ping = now
        self._send(PING_FRAME)

    # --- receiving ------------------------------------------------------------------------------

    def _read(self, link: Link) -> None:
        for _ in range(10_000):
            if link is not self._link:
                return
            try:
                frame = link.sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            link.last_recv = time.monotonic()
            try:
                self._on_frame(link, frame)
            except RemoteError as e:
                self._drop_link(f"undecodable frame from {link.endpoint}: {e}")

    def _on_frame(self, link: Link, frame: bytes) -> None:
        if link.phase is Phase.HANDSHAKE:
            if not frame:
                log.debug(
                    "%s refused the session (not serving, or behind zxid %#x)", link.endpoint, self.last_zxid
                )
                self._drop_link(f"{link.endpoint} refused the connection")
                return
            self._established(link, ConnectResponse.decode(frame))
            return
        if not frame:
            self._drop_link(f"{link.endpoint} stopped serving this connection")
            return
        r = Reader(frame)
        header = ReplyHeader.read(r)
        if header.xid == XID_NOTIFICATION:
            self._on_event(WatcherEvent.read(r))
        elif header.xid == XID_PING:
            return
        elif header.xid == XID_AUTH:
            self._on_auth_reply(header.err)
        elif header.xid == XID_SET_WATCHES:
            if header.err != Code.OK:
                log.warning("%s refused setWatches2 (err %d); watches were not re-registered", link.endpoint,
                            header.err)  # fmt: skip
                self._set_watches_ok = header.err not in (Code.MARSHALLING, Code.UNIMPLEMENTED)
        else:
            self._on_reply(link, header, r)

    def _on_reply(self, link: Link, header: ReplyHeader, r: Reader) -> None:
        if not self._in_flight or self._in_flight[0].xid != header.xid:
            expected = self._in_flight[0].xid if self._in_flight else None
            self._drop_link(
                f"reply xid {header.xid} from {link.endpoint} does not match the oldest request {expected}"
            )
            return
        call = self._in_flight.popleft()
        if header.zxid > self.last_zxid:
            self.last_zxid = header.zxid
        if call.watch is not None:
            self.watches.record(call.watch, header.err)
        value, exc = call.outcome(header.err, r)
        if call.on_reply is not None:
            call.on_reply(header.err)
        self._complete(call.result, value, exc)
        if call.opcode == OpCode.CLOSE_SESSION:
            self._finish(ConnectionClosedError("Connection has been closed"), KeeperState.CLOSED)
        elif header.err == Code.MARSHALLING:
            self._drop_link(
                f"{link.endpoint} could not decode request xid {header.xid} and closed the connection"
            )

    def _on_auth_reply(self, err: int) -> None:
        if not self._auth_in_flight:
            log.warning("auth reply with no auth request outstanding")
            return
        auth = self._auth_in_flight.popleft()
        if err == Code.OK and auth.result is not None:
            if (auth.scheme, auth.credential) not in self._auths:
                self._auths.append((auth.scheme, auth.credential))
            self._complete(auth.result, True, None)
        elif err != Code.OK:
            if auth.result is not None:
                self._complete(auth.result, None, error(err, None))
            else:
                log.warning("the server no longer accepts auth scheme %r (err %d)", auth.scheme, err)

    def _on_event(self, event: WatcherEvent) -> None:
        funcs = self.watches.route(event.type, event.path)
        if not funcs:
            return
        watched = WatchedEvent(
            event_type_name(event.type), KeeperState.CONNECTED, strip_root(self.chroot, event.path)
        )
        for func in funcs:
            self.dispatcher.submit(func, watched)

    # --- timers ---------------------------------------------------------------------------------

    def _tick(self, now: float) -> None:
        link = self._link
        if link is not None and link.phase is Phase.HANDSHAKE:
            if now - link.opened_at >= self._connect_timeout_s():
                self._drop_link(f"no answer from {link.endpoint} within {self._connect_timeout_s():.1f}s")
        elif link is not None:
            interval = self.timeout_ms / 3000
            if now - link.last_recv >= 2 * interval:
                self._drop_link(f"nothing from {link.endpoint} for {now - link.last_recv:.1f}s")
            elif now - link.last_send >= interval or (
                now - link.last_recv >= interval and now - link.last_ping >= interval
            ):
                self._ping(link, now)
        if self._link is None or self._link.phase is Phase.HANDSHAKE:
            self._expire_queued(now)
        if self._closing_deadline is not None and now >= self._closing_deadline:
            self._finish(ConnectionClosedError("Connection has been closed"), KeeperState.CLOSED)

    def _expire_queued(self, now: float) -> None:
        """Requests that waited a whole session timeout for a server fail (they were never sent)."""
        limit = self.requested_timeout_ms / 1000
        while self._outgoing and now - self._outgoing[0].queued_at >= limit:
            item = self._outgoing.popleft()
            path = item.path if isinstance(item, Call) else None
            self._fail(item, ConnectionLossError(f"no server took the session within {limit:.1f}s", path))

    # --- losing the link, ending ----------------------------------------------------------------

    def _close_link(self) -> None:
        link = self._link
        assert link is not None
        self._poller.unregister(link.sock)
        link.sock.close(linger=0)
        self._link = None

    def _drop_link(self, reason: str) -> None:
        """The link is unusable: close it, fail what was in flight, and look for a server."""
        link = self._link
        if link is None:
            return
        self._close_link()
        now = time.monotonic()
        if link.phase is Phase.HANDSHAKE:
            log.info("%s", reason)
            self._auth_in_flight.clear()
            self._attempt_failed(now)
            return
        log.warning("connection lost: %s; looking for another server", reason)
        self.on_state(KazooState.SUSPENDED)
        lost = f"KeeperErrorCode = ConnectionLoss ({reason})"
        while self._in_flight:
            call = self._in_flight.popleft()
            self._complete(call.result, None, ConnectionLossError(lost + (f" for {call.path}" if call.path else ""),
                                                                  call.path))  # fmt: skip
        while self._auth_in_flight:
            auth = self._auth_in_flight.popleft()
            if auth.result is not None:
                self._complete(auth.result, None, ConnectionLossError(lost))
        if self._closing_deadline is not None:
            self._finish(ConnectionClosedError("Connection has been closed"), KeeperState.CLOSED)
            return
        self._next_attempt_at = now

    def _begin_shutdown(self, cmd: Shutdown) -> None:
        link = self._link
        if cmd.close_session and link is not None and link.phase is Phase.OPEN and not self._done:
            self._closing_deadline = time.monotonic() + cmd.timeout_s
            close = Call(OpCode.CLOSE_SESSION, b"", None, AsyncResult(self.dispatcher))
            self._outgoing.append(close)
            return
        self._finish(ConnectionClosedError("Connection has been closed"), KeeperState.CLOSED)

    def _finish(self, exc: Exception, keeper_state: str) -> None:
        """The session is over (expired or closed): fail everything, tell every watcher, stop."""
        if self._done:
            return
        self._done = True
        self.expired = keeper_state == KeeperState.EXPIRED_SESSION
        self.closed = not self.expired
        if self._link is not None:
            self._close_link()
        self.on_state(KazooState.LOST)
        for call in self._in_flight:
            self._complete(call.result, None, exc)
        self._in_flight.clear()
        for auth in self._auth_in_flight:
            if auth.result is not None:
                self._complete(auth.result, None, exc)
        self._auth_in_flight.clear()
        while self._outgoing:
            self._fail(self._outgoing.popleft(), exc)
        self._drain_inbox(exc)
        none_event = WatchedEvent("NONE", keeper_state, None)
        for func in self.watches.clear():
            self.dispatcher.submit(func, none_event)

    def _drain_inbox(self, exc: Exception) -> None:
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            if not isinstance(item, Shutdown):
                self._room.release()
                self._fail(item, exc)

    def _fail(self, item: Item, exc: Exception) -> None:
        if item.result is not None:
            self._complete(item.result, None, exc)

    def _complete(self, result: AsyncResult[Any], value: Any, exc: BaseException | None) -> None:
        if exc is not None:
            self.dispatcher.submit(result.set_exception, exc)
        else:
            self.dispatcher.submit(result.set, value)


_WAKE_IDS = itertools.count()
