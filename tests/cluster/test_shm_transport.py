"""The shared-memory peer transport, two servers' transports in one process: messages, wake-ups
through the poll, a message too big for the ring (spilled to a file), a writer that goes (its
FIFO reads end-of-file: peer lost), and a reader that restarts (its writers attach again)."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from cluster import _shm_transport as shm
from cluster import config
from cluster._shm_transport import SPILL_BYTES_MIN, SPILLS_MAX, ShmPeerTransport, ring_prefix
from cluster.harness import wait_for


@pytest.fixture
def conf(tmp_path: Path) -> Iterator[config.EnsembleConfig]:
    c = config.local_ensemble(tmp_path, voters=2, transport="shm")
    yield c
    for server in c.servers.values():
        assert not glob.glob(ring_prefix(server.peer) + "*"), "a closed transport leaves nothing in /dev/shm"


def poll(transport: ShmPeerTransport, timeout_ms: int = 1000) -> dict[object, int]:
    poller = zmq.Poller()
    for fd in transport.poll_targets():
        poller.register(fd, zmq.POLLIN)
    if transport.before_poll():
        timeout_ms = 0
    events = dict(poller.poll(timeout_ms))
    transport.after_poll()
    return events


def test_messages_wake_the_reader_through_its_poll(conf: config.EnsembleConfig) -> None:
    two = ShmPeerTransport(conf, 2)  # first: one attaches to it as it starts
    one = ShmPeerTransport(conf, 1)
    try:
        assert poll(two, 0) == {}
        assert two.before_poll() is False  # two is going to sleep
        one.send(2, b"hello")
        one.send(2, b"again")
        events = poll_raw(two)
        assert set(events) == {two.inboxes[1].fd}, "the writer woke the sleeping reader"
        assert two.receive(events) == [b"hello", b"again"]
        assert two.lost(events) == []
        assert (one.sent, one.dropped, two.received) == (2, 0, 2)
        one.send(2, b"while awake")  # no wake-up needed: the reader looks before it sleeps
        assert two.before_poll() is True
        two.after_poll()
        assert two.receive({}) == [b"while awake"]
    finally:
        one.close()
        two.close()


def poll_raw(transport: ShmPeerTransport) -> dict[object, int]:
    """Poll without before_poll: the sleeping flags stay as they are."""
    poller = zmq.Poller()
    for fd in transport.poll_targets():
        poller.register(fd, zmq.POLLIN)
    events = dict(poller.poll(1000))
    transport.after_poll()
    return events


def test_a_message_too_big_for_the_ring_goes_through_a_spill_file(conf: config.EnsembleConfig) -> None:
    two = ShmPeerTransport(conf, 2)  # first: one attaches to it as it starts
    one = ShmPeerTransport(conf, 1)
    try:
        big = os.urandom(SPILL_BYTES_MIN * 5)  # five times the spill size, larger than the ring
        one.send(2, b"small")
        one.send(2, big)
        one.send(2, b"after")
        one.send(2, b"a SNAP's head, ", big, b", tail")  # in parts, spilled part by part
        one.send(2, b"small ", b"parts")
        assert two.receive(poll(two)) == [
            b"small",
            big,
            b"after",
            b"a SNAP's head, " + big + b", tail",
            b"small parts",
        ]
        assert not glob.glob(two.inboxes[1].ring.path + ".spill.*")
    finally:
        one.close()
        two.close()


def test_a_full_ring_holds_messages_in_order_until_the_reader_makes_room(
    conf: config.EnsembleConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a full ring (or SPILLS_MAX spills waiting) cannot take waits in the writer, in order,
    and goes as the reader makes room: forwarded writes dropped there were never answered.
    Only past HELD_BYTES_MAX is a message dropped."""
    two = ShmPeerTransport(conf, 2)
    one = ShmPeerTransport(conf, 1)
    try:
        sent = [bytes([i]) * (1 << 20) for i in range(20)]  # 20 MiB through an 8 MiB ring
        sent += [bytes([100 + i]) * (3 << 20) for i in range(SPILLS_MAX + 2)]  # spilled ones too
        sent.append(b"last")
        for message in sent:
            one.send(2, message)
        assert one.holding() and one.dropped == 0
        got: list[bytes] = []
        for _ in range(100):
            got += two.receive(poll(two, 100))
            one.before_poll()  # the writer's loop: what waits goes as there is room
            if len(got) == len(sent):
                break
        assert got == sent and not one.holding()
        assert (one.sent, one.dropped) == (len(sent), 0)
        monkeypatch.setattr(shm, "HELD_BYTES_MAX", 3 << 20)
        for message in sent[:12]:
            one.send(2, message)
        held = len(one.outboxes[2].held)
        assert held == 3 and one.dropped >= 1  # some in the ring, 3 MiB held, the rest dropped
        kept = 12 - one.dropped
        while len(got) < len(sent) + kept:
            got += two.receive(poll(two, 100))
            one.before_poll()
        assert got[len(sent) :] == sent[:kept] and not glob.glob(two.inboxes[1].ring.path + ".spill.*")
    finally:
        one.close()
        two.close()


def test_a_writer_that_closes_removes_the_spill_files_it_held(conf: config.EnsembleConfig) -> None:
    """A big message whose spill file is written but whose name the full ring could not take
    is held as the file: a writer that closes removes it (nobody would ever read it)."""
    two = ShmPeerTransport(conf, 2)
    one = ShmPeerTransport(conf, 1)
    try:
        box = one.outboxes[2]
        assert box.ring is not None
        while box.ring.push(b"x" * 4096, 0, -1) == box.ring.OK:
            pass
        while box.ring.push(b"", 0, -1) == box.ring.OK:
            pass  # not even a spill file's name fits now
        one.send(2, os.urandom(SPILL_BYTES_MIN))  # held: a full ring, with nothing held yet
        assert one.holding() and isinstance(box.held[0], str) and box.held_bytes == 0
        assert len(glob.glob(two.inboxes[1].ring.path + ".spill.*")) == 1
    finally:
        one.close()
    try:
        assert not glob.glob(two.inboxes[1].ring.path + ".spill.*")
    finally:
        two.close()


def test_a_writer_that_goes_is_lost_at_once_and_its_leftovers_dropped(conf: config.EnsembleConfig) -> None:
    two = ShmPeerTransport(conf, 2)  # first: one attaches to it as it starts
    one = ShmPeerTransport(conf, 1)
    try:
        one.send(2, b"before")
        two.receive(poll(two))
        one.send(2, b"left behind")
        one.close()  # what the kernel does for a process killed with -9: its fds close
        events = poll(two)
        assert two.inboxes[1].fd in events
        frames = two.receive(events)
        assert two.lost(events) == [1]
        assert frames in ([b"left behind"], []), "sent before it went: may arrive, never garbage"
        assert poll(two, 50) == {}, "end-of-file is reported once, not again and again"
        one = ShmPeerTransport(conf, 1)  # the restarted peer attaches again
        one.send(2, b"new incarnation")
        events = poll(two)
        assert two.receive(events) == [b"new incarnation"]
        assert two.lost(events) == []
    finally:
        one.close()
        two.close()


def test_a_restarted_reader_gets_its_writers_back(conf: config.EnsembleConfig) -> None:
    two = ShmPeerTransport(conf, 2)  # first: one attaches to it as it starts
    one = ShmPeerTransport(conf, 1)
    try:
        one.send(2, b"to the first two")
        two.close()
        two = ShmPeerTransport(conf, 2)
        one.send(2, b"lost across the restart")
        assert one.dropped == 1
        wait_for(lambda: one.tick() or one.outboxes[2].ring, 5, "one to attach to the new two")
        one.send(2, b"to the second two")
        assert two.receive(poll(two)) == [b"to the second two"]
    finally:
        one.close()
        two.close()
