"""The node loop's epoll poll set: plain fds (ready, hung up, closed, reopened under the same
number), ZeroMQ sockets (their notification fd, a message that arrives while the loop waits or
while it sends), and the shared-memory transport's FIFO reopened after its writer went, as a
node's loop keeps one poller across it."""

from __future__ import annotations

import glob
import os
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import zmq

from cluster import _poller as poller_module
from cluster import config
from cluster._poller import POLLIN, POLLOUT, Poller
from cluster._shm_transport import ShmPeerTransport, ring_prefix


@pytest.fixture
def poller() -> Iterator[Poller]:
    p = Poller()
    yield p
    p.close()


@pytest.fixture
def ctx() -> Iterator[zmq.Context[zmq.Socket[bytes]]]:
    c: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    yield c
    c.term()


def test_a_plain_fd_is_reported_for_what_it_was_registered_for(poller: Poller) -> None:
    a, b = socket.socketpair()
    with a, b:
        poller.register(a.fileno(), POLLIN)
        assert poller.poll(0) == {}
        b.send(b"x")
        assert poller.poll(1000) == {a.fileno(): POLLIN}
        poller.register(a.fileno(), POLLIN | POLLOUT)  # again: the flags change
        assert poller.poll(0) == {a.fileno(): POLLIN | POLLOUT}
        a.recv(1)
        poller.register(a.fileno(), POLLOUT)
        assert poller.poll(0) == {a.fileno(): POLLOUT}
        poller.register(a.fileno(), 0)  # no flags: not polled
        b.send(b"y")
        assert poller.poll(0) == {}
        with pytest.raises(KeyError):
            poller.unregister(a.fileno())


def test_a_hung_up_socket_is_readable_and_flagged(poller: Poller) -> None:
    """Whoever reads it finds the end: a peer that went is never left polled and unread."""
    a, b = socket.socketpair()
    with a:
        poller.register(a.fileno(), POLLIN)
        b.close()
        events = poller.poll(1000)[a.fileno()]
        assert events & POLLIN and events & select.EPOLLHUP
        assert a.recv(1) == b""


def test_a_closed_fd_can_be_unregistered_and_its_number_used_again(poller: Poller) -> None:
    a, b = socket.socketpair()
    fd = a.fileno()
    poller.register(fd, POLLIN)
    a.close()  # epoll forgets a closed file by itself
    poller.unregister(fd)
    c, d = socket.socketpair()
    with b, c, d:
        poller.register(c.fileno(), POLLIN)
        d.send(b"x")
        assert poller.poll(1000) == {c.fileno(): POLLIN}


def test_an_fd_reopened_under_its_number_is_polled_once_registered_again(poller: Poller) -> None:
    """dup2 onto a registered fd gives it a new file, which epoll does not know: registering the
    fd again (as the node does after a peer is lost) polls the new one."""
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    try:
        poller.register(r1, POLLIN)
        os.dup2(r2, r1)
        os.write(w2, b"x")
        assert poller.poll(50) == {}, "the new file is not in the epoll set yet"
        poller.register(r1, POLLIN)
        assert poller.poll(1000) == {r1: POLLIN}
    finally:
        for fd in (r1, w1, r2, w2):
            os.close(fd)


def test_a_zeromq_socket_is_reported_while_it_holds_messages(
    poller: Poller, ctx: zmq.Context[zmq.Socket[bytes]]
) -> None:
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    try:
        a.bind("inproc://poller-test")
        b.connect("inproc://poller-test")
        poller.register(a, POLLIN)
        assert poller.poll(0) == {}
        b.send(b"one")
        b.send(b"two")
        assert poller.poll(1000) == {a: POLLIN}
        assert a.recv() == b"one"
        assert poller.poll(0) == {a: POLLIN}, "one message is still there"
        assert a.recv() == b"two"
        assert poller.poll(0) == {}
        poller.register(a, POLLIN | POLLOUT)
        assert poller.poll(0) == {a: POLLOUT}
    finally:
        a.close(linger=0)
        b.close(linger=0)


def test_a_message_wakes_a_wait_and_one_that_came_during_a_send_is_seen(
    poller: Poller, ctx: zmq.Context[zmq.Socket[bytes]]
) -> None:
    """ZMQ_FD says only that something changed, and a send may take in the news of a message
    without it saying so again: a socket used so is touched, and asked again before the wait."""
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    try:
        a.bind("inproc://poller-wake")
        b.connect("inproc://poller-wake")
        poller.register(a, POLLIN)
        sender = threading.Timer(0.1, lambda: b.send(b"late"))
        sender.start()
        started = time.monotonic()
        assert poller.poll(5000) == {a: POLLIN}
        assert time.monotonic() - started < 2.5, "woken by the message, not by the timeout"
        sender.join()
        assert a.recv() == b"late"
        for i in range(200):
            b.send(b"%d" % i)
            a.send(b"reply")  # takes in the news of b's message
            poller.touch(a)
            assert poller.poll(1000) == {a: POLLIN}
            assert a.recv() == b"%d" % i
            assert b.recv() == b"reply"
    finally:
        a.close(linger=0)
        b.close(linger=0)


def test_slept_says_whether_a_poll_waited_for_what_it_reports(
    poller: Poller, ctx: zmq.Context[zmq.Socket[bytes]]
) -> None:
    """What the node's nap rule asks (EnsembleConfig.coalesce_us): events that sat waiting are
    found without a wait, however slowly the poll ran; events that came during a wait, or no
    events after one, mean it slept. A poll that may not wait never sleeps."""
    a, b = socket.socketpair()
    z, w = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    try:
        poller.register(a.fileno(), POLLIN)
        b.send(b"x")
        assert poller.poll(1000) == {a.fileno(): POLLIN} and not poller.slept
        a.recv(1)
        assert poller.poll(0) == {} and not poller.slept
        assert poller.poll(10) == {} and poller.slept
        sender = threading.Timer(0.1, lambda: b.send(b"y"))
        sender.start()
        assert poller.poll(5000) == {a.fileno(): POLLIN} and poller.slept
        sender.join()
        a.recv(1)
        z.bind("inproc://poller-slept")
        w.connect("inproc://poller-slept")
        poller.register(z, POLLIN)
        assert poller.poll(10) == {} and poller.slept
        w.send(b"one")
        w.send(b"two")
        time.sleep(0.05)
        assert poller.poll(1000) == {z: POLLIN} and not poller.slept
        assert z.recv() == b"one"
        assert poller.poll(1000) == {z: POLLIN} and not poller.slept, "known to hold one more"
        assert z.recv() == b"two"
        sender = threading.Timer(0.1, lambda: w.send(b"late"))
        sender.start()
        assert poller.poll(5000) == {z: POLLIN} and poller.slept
        sender.join()
    finally:
        a.close()
        b.close()
        z.close(linger=0)
        w.close(linger=0)


def test_an_idle_socket_is_asked_for_its_events_only_when_something_changed(
    poller: Poller, ctx: zmq.Context[zmq.Socket[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asking (getsockopt ZMQ_EVENTS) polls the socket's mailbox, a system call: not every turn."""
    asked: list[int] = []
    raw_get = poller_module._raw_get

    def counting_get(sock: zmq.Socket[bytes]) -> Callable[[int], int]:
        get = raw_get(sock)

        def counted(option: int) -> int:
            asked.append(option)
            return get(option)

        return counted

    monkeypatch.setattr(poller_module, "_raw_get", counting_get)
    a, b = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    try:
        a.bind("inproc://poller-idle")
        b.connect("inproc://poller-idle")
        poller.register(a, POLLIN)
        for _ in range(100):
            assert poller.poll(0) == {}
        assert len(asked) <= 2, "asked once, and once more if connecting woke its fd"
        b.send(b"x")  # the fd becomes readable: asked, and reported
        assert poller.poll(1000) == {a: POLLIN}
        before = len(asked)
        assert a.recv() == b"x"
        assert poller.poll(0) == {}, "reported last time, so asked again: nothing now"
        assert len(asked) > before
        before = len(asked)
        a.send(b"y")
        poller.touch(a)
        poller.poll(0)
        assert len(asked) > before, "touched: asked again"
    finally:
        a.close(linger=0)
        b.close(linger=0)


def test_a_peer_fifo_reopened_after_its_writer_went_wakes_the_same_poller(tmp_path: Path) -> None:
    """As a node's loop does: one poller for the transport's life; after a writer is lost the
    transport reopens its FIFO under the same fd, and the node registers its targets again."""
    conf = config.local_ensemble(tmp_path, voters=2, transport="shm")
    two = ShmPeerTransport(conf, 2)
    one = ShmPeerTransport(conf, 1)
    poller = Poller()

    def turn(timeout_ms: int = 1000) -> tuple[list[bytes], list[int]]:
        events = poller.poll(0 if two.before_poll() else timeout_ms)
        two.after_poll()
        frames, lost = two.receive(events), two.lost(events)
        if lost:
            for target in two.poll_targets():
                poller.register(target, POLLIN)
        return frames, lost

    try:
        for fd in two.poll_targets():
            poller.register(fd, POLLIN)
        one.send(2, b"before")
        assert turn() == ([b"before"], [])
        one.close()
        deadline = time.monotonic() + 5
        while turn()[1] != [1]:
            assert time.monotonic() < deadline, "the writer's end was not seen"
        one = ShmPeerTransport(conf, 1)
        assert turn(0) == ([], [])
        sender = threading.Timer(0.1, lambda: one.send(2, b"new incarnation"))
        sender.start()  # while two's loop waits in its poll
        started = time.monotonic()
        assert turn(3000) == ([b"new incarnation"], [])
        assert time.monotonic() - started < 2, "the reopened FIFO did not wake the poll"
        sender.join()
    finally:
        poller.close()
        one.close()
        two.close()
        for server in conf.servers.values():
            assert not glob.glob(ring_prefix(server.peer) + "*")
