"""A thin client over the node's ZeroMQ client protocol for tests and benchmarks: connect a session
to one server and send requests one at a time, waiting on a deadline, never sleeping."""

from __future__ import annotations

import itertools
from typing import Any

import zmq

from zkcore import _records as rec
from zkcore._jute import Reader


class Refused(Exception):
    """The server answered the connect with an empty frame: not serving, try another."""


class NoAnswer(Exception):
    """Nothing came back before the deadline."""


class WireSession:
    def __init__(self, endpoint: str, timeout_ms: int = 4000, session_id: int = 0, passwd: bytes = bytes(16),
                 last_zxid: int = 0, wait_ms: int = 3000) -> None:  # fmt: skip
        self.endpoint = endpoint
        self.sock: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.wait_ms = wait_ms
        self.xids = itertools.count(1)
        self.events: list[tuple[int, rec.WatcherEvent]] = []
        self.last_zxid = last_zxid
        self.sock.send(rec.ConnectRequest(0, last_zxid, timeout_ms, session_id, passwd, False).encode())
        frame = self._recv()
        if not frame:
            self.close()
            raise Refused(endpoint)
        resp = rec.ConnectResponse.decode(frame)
        self.session_id, self.passwd, self.timeout_ms = resp.session_id, resp.passwd, resp.timeout_ms

    def _recv(self) -> bytes:
        if not self.sock.poll(self.wait_ms, zmq.POLLIN):
            raise NoAnswer(self.endpoint)
        frame: bytes = self.sock.recv()
        return frame

    def call(self, opcode: int, body: Any, xid: int | None = None) -> tuple[rec.ReplyHeader, Reader]:
        """Send one request and wait for its reply; notifications on the way land in `events`."""
        xid = next(self.xids) if xid is None else xid
        payload = (
            rec.encode_multi_request(body) if opcode == rec.OpCode.MULTI else (body.encode() if body else b"")
        )
        self.sock.send(rec.RequestHeader(xid, opcode).encode() + payload)
        while True:
            r = Reader(self._recv())
            header = rec.ReplyHeader.read(r)
            if header.xid == rec.XID_NOTIFICATION:
                self.events.append((header.zxid, rec.WatcherEvent.read(r)))
            elif header.xid == xid:
                self.last_zxid = max(self.last_zxid, header.zxid)
                return header, r

    def wait_event(self) -> tuple[int, rec.WatcherEvent]:
        """The next notification: (the zxid of the change, the event)."""
        while not self.events:
            r = Reader(self._recv())
            header = rec.ReplyHeader.read(r)
            assert header.xid == rec.XID_NOTIFICATION, f"expected a notification, got {header}"
            self.events.append((header.zxid, rec.WatcherEvent.read(r)))
        return self.events.pop(0)

    def create(self, path: str, data: bytes = b"", flags: int = 0) -> tuple[int, str]:
        h, r = self.call(rec.OpCode.CREATE, rec.CreateRequest(path, data, rec.OPEN_ACL_UNSAFE, flags))
        return h.err, (rec.CreateResponse.read(r).path if h.err == 0 else "")

    def get(self, path: str) -> tuple[int, bytes]:
        h, r = self.call(rec.OpCode.GET_DATA, rec.PathWatchRequest(path, False))
        return h.err, (rec.GetDataResponse.read(r).data if h.err == 0 else b"")

    def set(self, path: str, data: bytes, version: int = -1) -> int:
        return self.call(rec.OpCode.SET_DATA, rec.SetDataRequest(path, data, version))[0].err

    def children(self, path: str) -> tuple[int, list[str]]:
        h, r = self.call(rec.OpCode.GET_CHILDREN, rec.PathWatchRequest(path, False))
        return h.err, (list(rec.GetChildrenResponse.read(r).children) if h.err == 0 else [])

    def close_session(self) -> int:
        return self.call(rec.OpCode.CLOSE_SESSION, None)[0].err

    def close(self) -> None:
        self.sock.close()
