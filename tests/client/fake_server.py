"""A scripted server for the client's protocol tests: a real ZeroMQ ROUTER (inproc, in the test's
thread) that speaks the server side of docs/protocol.md one frame at a time, as the test says.
Every wait has a deadline; nothing sleeps."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

import zmq

from zkclient import Client
from zkcore._jute import Reader
from zkcore._records import (
    XID_NOTIFICATION,
    XID_PING,
    ConnectRequest,
    ConnectResponse,
    JuteRecord,
    OpCode,
    ReplyHeader,
    RequestHeader,
    WatcherEvent,
)

_NAMES = itertools.count()
WAIT_S = 5.0


class NoFrame(AssertionError):
    """The client sent nothing before the deadline."""


class FakeServer:
    """One ROUTER endpoint. `peer` is the identity of the client's current DEALER."""

    def __init__(self, name: str = "fake", answer_pings: bool = True, tcp: bool = False) -> None:
        self.sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        if tcp:
            port: int = self.sock.bind_to_random_port("tcp://127.0.0.1")
            self.endpoint = f"tcp://127.0.0.1:{port}"
        else:
            self.endpoint = f"inproc://{name}-{next(_NAMES)}"
            self.sock.bind(self.endpoint)
        self.peer = b""
        self.answer_pings = answer_pings
        self.pings = 0
        self.zxid = 0

    def close(self) -> None:
        self.sock.close(linger=0)

    def recv(self, timeout_s: float = WAIT_S) -> tuple[bytes, bytes]:
        if not self.sock.poll(int(timeout_s * 1000)):
            raise NoFrame(f"{self.endpoint}: nothing from the client within {timeout_s}s")
        identity, frame = self.sock.recv_multipart()
        return identity, frame

    def send(self, frame: bytes, identity: bytes | None = None) -> None:
        self.sock.send_multipart([identity or self.peer, frame])

    # --- handshake ------------------------------------------------------------------------------

    def expect_connect(self, timeout_s: float = WAIT_S) -> ConnectRequest:
        """The next frame from a new DEALER must be a ConnectRequest (frames of an older DEALER
        of the same client are skipped)."""
        while True:
            identity, frame = self.recv(timeout_s)
            if identity != self.peer:
                self.peer = identity
                return ConnectRequest.decode(frame)

    def accept(self, req: ConnectRequest, session_id: int = 0x5E55, passwd: bytes = b"p" * 16,
               timeout_ms: int | None = None) -> None:  # fmt: skip
        sid = req.session_id or session_id
        pw = req.passwd if req.session_id else passwd
        self.send(ConnectResponse(0, timeout_ms or req.timeout_ms, sid, pw, False).encode())

    def expire(self) -> None:
        self.send(ConnectResponse(0, 0, 0, bytes(16), False).encode())

    def refuse(self) -> None:
        self.send(b"")

    # --- requests -------------------------------------------------------------------------------

    def expect(self, timeout_s: float = WAIT_S) -> tuple[RequestHeader, Reader]:
        """The next request of the current DEALER (pings are answered and skipped)."""
        while True:
            identity, frame = self.recv(timeout_s)
            if identity != self.peer:
                continue
            r = Reader(frame)
            header = RequestHeader.read(r)
            if header.xid == XID_PING:
                self.pings += 1
                if self.answer_pings:
                    self.send(ReplyHeader(XID_PING, self.zxid, 0).encode())
                continue
            return header, r

    def expect_op(self, opcode: int, body_type: type[Any] | None = None) -> tuple[int, Any]:
        """The next request, which must be `opcode`: its xid and decoded body."""
        header, r = self.expect()
        assert header.type == opcode, f"expected opcode {opcode}, got {header.type} (xid {header.xid})"
        body = body_type.read(r) if body_type is not None else None
        return header.xid, body

    def reply(
        self, xid: int, body: JuteRecord | bytes | None = None, err: int = 0, zxid: int | None = None
    ) -> None:
        if zxid is not None:
            self.zxid = max(self.zxid, zxid)
        payload = body if isinstance(body, bytes) else (body.encode() if body is not None else b"")
        self.send(ReplyHeader(xid, self.zxid if zxid is None else zxid, err).encode() + payload)

    def notify(self, event_type: int, path: str, zxid: int = -1) -> None:
        self.send(
            ReplyHeader(XID_NOTIFICATION, zxid, 0).encode() + WatcherEvent(event_type, 3, path).encode()
        )

    def expect_ping(self, timeout_s: float = WAIT_S) -> None:
        """The next frame must be a ping (answered)."""
        identity, frame = self.recv(timeout_s)
        assert frame[:8] == RequestHeader(XID_PING, OpCode.PING).encode(), f"expected a ping, got {frame!r}"
        self.pings += 1
        self.send(ReplyHeader(XID_PING, self.zxid, 0).encode(), identity)


def start(client: Client, server: FakeServer, **accept: Any) -> ConnectRequest:
    """client.start() against server, which takes the ConnectRequest and accepts it."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            client.start(timeout=WAIT_S)
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            failure.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    req = server.expect_connect()
    server.accept(req, **accept)
    thread.join(WAIT_S)
    assert not thread.is_alive() and not failure, failure
    return req


def in_thread(func: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run func in a thread; the returned list gets its result or its exception."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(func())
        except BaseException as e:  # noqa: BLE001
            out.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def stop(client: Client, server: FakeServer) -> None:
    """client.stop(), with server answering its closeSession (if it is connected to it)."""
    if not client.connected or client.endpoint != server.endpoint:
        client.stop()
        return
    thread, out = in_thread(client.stop)
    while True:
        header, _ = server.expect()
        if header.type == OpCode.CLOSE_SESSION:
            server.reply(header.xid)
            break
    thread.join(WAIT_S)
    assert out == [None]
