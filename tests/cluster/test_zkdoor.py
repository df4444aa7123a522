"""The ZooKeeper door's reply path on real loopback sockets, without a node: a ready()'s sends
queued in one call, the ZeroMQ door's handed back in order, a None closing a connection once its
output is written, and a client that stops reading cut off once."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator

import pytest

from cluster import _zkdoor
from cluster._zkdoor import ZkDoor
from zkcore.server import Framed


@pytest.fixture
def door() -> Iterator[ZkDoor]:
    d = ZkDoor("127.0.0.1:0")
    yield d
    for conn_id in list(d.connections):
        d.close(conn_id)
    d.listener.close()


def connect(door: ZkDoor) -> tuple[socket.socket, int]:
    """A client socket and the door's id for it."""
    client = socket.create_connection(door.listener.getsockname()[:2])
    deadline = time.monotonic() + 5
    while not door.accept():
        assert time.monotonic() < deadline, "the door did not accept"
        time.sleep(0.001)
    return client, max(door.connections)


def received(client: socket.socket, size: int) -> bytes:
    client.settimeout(5)
    data = b""
    while len(data) < size:
        chunk = client.recv(size - len(data))
        assert chunk, f"closed after {len(data)} of {size} bytes"
        data += chunk
    return data


def test_send_replies_queues_its_own_and_hands_back_the_rest_in_order(door: ZkDoor) -> None:
    a, a_id = connect(door)
    b, b_id = connect(door)
    sends = [
        (a_id, b"one"),
        (b"\x00zmq", b"z1"),
        (b_id, Framed(struct.pack(">i", 3) + b"two")),  # framed already: sent as it is
        (a_id, b"three"),
        (b"\x00zmq", None),
        (b_id, None),  # close b once its output is written
    ]
    rest, cut = door.send_replies(sends)
    assert rest == [(b"\x00zmq", b"z1"), (b"\x00zmq", None)] and cut == []
    assert door.flush_pending() == []
    assert received(a, 16) == struct.pack(">i", 3) + b"one" + struct.pack(">i", 5) + b"three"
    assert received(b, 7) == struct.pack(">i", 3) + b"two"
    b.settimeout(5)
    assert b.recv(1) == b""  # closed after its reply
    assert b_id not in door.connections and a_id in door.connections
    a.close()
    b.close()


def test_a_client_that_stops_reading_is_cut_off_once(monkeypatch: pytest.MonkeyPatch, door: ZkDoor) -> None:
    monkeypatch.setattr(_zkdoor, "OUTPUT_BYTES_MAX", 1 << 16)
    slow, slow_id = connect(door)
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    other, other_id = connect(door)
    big = b"x" * (1 << 15)
    rest, cut = door.send_replies([(slow_id, big)] * 200 + [(other_id, b"ok")] + [(slow_id, big)] * 5)
    assert rest == [] and cut == [slow_id]
    assert slow_id not in door.connections
    assert door.flush_pending() == []
    assert received(other, 6) == struct.pack(">i", 2) + b"ok"
    slow.close()
    other.close()


def read_all(door: ZkDoor, conn_id: int, recv: bool = True) -> list[bytes | str | None]:
    fd = door.connections[conn_id].sock.fileno()
    deadline = time.monotonic() + 5
    while True:
        items = [item for _, item in door.read(fd, recv=recv)]
        if items or not recv or time.monotonic() > deadline:
            return items
        time.sleep(0.001)  # nothing has arrived yet


def test_frames_are_split_whole_and_in_order_and_a_bad_length_closes_after_them(
    monkeypatch: pytest.MonkeyPatch, door: ZkDoor
) -> None:
    """What one read brings is handed over as whole frames, in order; a partial frame waits
    for the rest; past FRAMES_PER_TURN_MAX the rest wait for the next turn (backlogged); a
    frame of a bad length closes the connection after the frames before it."""
    monkeypatch.setattr(_zkdoor, "FRAMES_PER_TURN_MAX", 3)
    client, conn_id = connect(door)
    frames = [b"f%d" % i * (i + 1) for i in range(5)]
    wire = b"".join(struct.pack(">i", len(f)) + f for f in frames)
    client.sendall(wire + b"\0\0\0\x09part")
    assert read_all(door, conn_id) == frames[:3]
    assert door.backlogged() == [door.connections[conn_id]]
    assert read_all(door, conn_id, recv=False) == frames[3:]
    assert not door.backlogged()
    client.sendall(b"ial!!")  # the partial frame's rest
    assert read_all(door, conn_id) == [b"partial!!"]
    client.sendall(struct.pack(">i", 1) + b"x" + struct.pack(">i", -1) + b"more")
    assert read_all(door, conn_id) == [b"x", None]
    assert conn_id not in door.connections
    client.close()


def test_a_four_letter_word_opens_a_connection_instead_of_a_frame(door: ZkDoor) -> None:
    client, conn_id = connect(door)
    client.sendall(b"ruok")
    assert read_all(door, conn_id) == ["ruok"]
    client.close()
