"""The node loop's poll set: zmq.Poller's interface over one epoll set.

zmq.Poller hands every registered item to zmq_poll on every call: each loop turn of a node
paid for two poll() system calls over every client connection (libzmq looks once without
waiting first) and for building the item array, however few had sent anything; with a thousand
idle sessions open that was most of the cost of answering one client. epoll is told of each
socket once and reports only the ready ones.

ZeroMQ sockets are not file descriptors. Each has a notification fd (ZMQ_FD) that becomes
readable when something may have changed, and ZMQ_EVENTS says what has. What ZMQ_EVENTS said
holds until the fd becomes readable or the socket is used: a send or a receive may take in
news that the fd will not report again. So a socket is asked again when its fd ends a wait,
when it was reported ready (whoever got the report used it), and when its owner says it used
it otherwise (touch()); the wait is skipped while one is ready. Asking costs a getsockopt that
polls the socket's mailbox, a system call: once every loop turn, that was half of what an idle
turn of a node cost.
"""

from __future__ import annotations

import errno
import select
import types
from collections.abc import Callable
from typing import cast

import zmq
import zmq.backend

# What poll() reports and register() takes are epoll's bits (a hang-up or an error adds
# EPOLLHUP or EPOLLERR, and whoever reads the fd finds out which), for ZeroMQ sockets too.
POLLIN = select.EPOLLIN
POLLOUT = select.EPOLLOUT
# ZeroMQ's own as plain ints: an IntFlag on either side of & or | runs enum's Python-level
# operators, which cost a tenth of a 1-server read load's CPU when used per fd per turn.
EVENTS = int(zmq.EVENTS)
ZMQ_POLLIN = int(zmq.POLLIN)
ZMQ_POLLOUT = int(zmq.POLLOUT)
FD = int(zmq.FD)
MAX_EVENTS = 1024  # fds reported by one epoll_wait; the rest are reported next turn


def _raw_get(sock: zmq.Socket[bytes]) -> Callable[[int], int]:
    """The socket's getsockopt as pyzmq's Cython class has it, without the Python-level wrapper
    of its sugar (half a microsecond a call, each loop turn)."""
    return cast(Callable[[int], int], types.MethodType(zmq.backend.Socket.get, sock))


class Poller:
    """register(target, flags), unregister(target), poll(timeout_ms) -> {target: events}, as
    zmq.Poller has them, with epoll's bits. A target is a ZeroMQ socket or a plain fd."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._targets: set[int] = set()  # fds in the epoll set
        # ZeroMQ sockets by notification fd: (the socket, its getsockopt, zmq's bits asked for)
        self._sockets: dict[int, tuple[zmq.Socket[bytes], Callable[[int], int], int]] = {}
        # What a socket's events were when last asked, while that still holds (see the module's
        # doc); a socket not here is asked before the next wait.
        self._known: dict[int, int] = {}
        # Whether the last poll() had to wait: nothing was ready when it looked. What it then
        # reports came in while it waited (or just as it began to), never what sat waiting; the
        # node naps only after a turn whose work was waiting for it (EnsembleConfig.coalesce_us).
        # A clock cannot tell: on a host whose cores are shared, a poll that found its events
        # waiting can take longer than one that was woken at once.
        self.slept = False

    def register(self, target: int | zmq.Socket[bytes], flags: int = POLLIN | POLLOUT) -> None:
        """Poll `target` for `flags` (again: the flags change); flags 0 unregisters it."""
        if not flags:
            self.unregister(target)
            return
        mask = flags
        if isinstance(target, zmq.Socket):
            fd = cast(int, target.get(FD))
            wanted = (ZMQ_POLLIN if flags & POLLIN else 0) | (ZMQ_POLLOUT if flags & POLLOUT else 0)
            self._sockets[fd] = (target, _raw_get(target), wanted)
            self._known.pop(fd, None)
            mask = POLLIN  # the notification fd only ever becomes readable
        else:
            fd = target
        if fd in self._targets:
            try:
                self._epoll.modify(fd, mask)
            except FileNotFoundError:  # the fd was reopened (dup2): the epoll set forgot it
                self._epoll.register(fd, mask)
        else:
            self._epoll.register(fd, mask)
            self._targets.add(fd)

    def unregister(self, target: int | zmq.Socket[bytes]) -> None:
        """Stop polling `target`. An fd that was closed already has left the epoll set by
        itself (and its number may be another socket's now, not registered yet)."""
        fd = cast(int, target.get(FD)) if isinstance(target, zmq.Socket) else target
        if fd not in self._targets:
            raise KeyError(target)
        self._targets.discard(fd)
        self._sockets.pop(fd, None)
        self._known.pop(fd, None)
        try:
            self._epoll.unregister(fd)
        except OSError as e:
            if e.errno not in (errno.EBADF, errno.ENOENT):
                raise

    def touch(self, sock: zmq.Socket[bytes]) -> None:
        """`sock`, a registered ZeroMQ socket, was sent on or received from other than right
        after poll() reported it: its events are asked again before the next wait."""
        self._known.pop(cast(int, sock.get(FD)), None)

    def poll(self, timeout_ms: int) -> dict[object, int]:
        """What is ready, waiting up to timeout_ms (negative: without end) when nothing is."""
        timeout = timeout_ms / 1000 if timeout_ms >= 0 else -1.0
        sockets = self._sockets
        if not sockets:
            return dict(self._wait(timeout))
        known = self._known
        news = False
        for fd, (_, get, wanted) in sockets.items():
            events = known.get(fd)
            if events is None:
                events = known[fd] = self._events(get, wanted)
            news = news or events != 0
        ready: dict[object, int] = dict(self._wait(0.0 if news else timeout))
        for fd, (sock, get, wanted) in sockets.items():
            events = known[fd]
            if ready.pop(fd, 0) and not events:  # something changed in it since: ask it what
                events = self._events(get, wanted)
            if events:
                ready[sock] = events
                del known[fd]  # whoever gets the report uses the socket: ask again next time
            else:
                known[fd] = 0
        return ready

    def _wait(self, timeout: float) -> list[tuple[int, int]]:
        """epoll's ready fds, waiting up to `timeout` seconds if none is ready now (see slept).
        The look that does not wait is one more system call for a turn that sleeps anyway."""
        ready = self._epoll.poll(0.0, MAX_EVENTS)
        self.slept = not ready and timeout != 0
        if self.slept:
            ready = self._epoll.poll(timeout, MAX_EVENTS)
        return ready

    @staticmethod
    def _events(get: Callable[[int], int], wanted: int) -> int:
        """A ZeroMQ socket's events now, in epoll's bits."""
        events = get(EVENTS) & wanted
        return (POLLIN if events & ZMQ_POLLIN else 0) | (POLLOUT if events & ZMQ_POLLOUT else 0)

    def close(self) -> None:
        self._epoll.close()
