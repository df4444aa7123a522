"""ZooKeeper's own client port: TCP with 4-byte length-prefixed jute frames, framing around the
server's client table and nothing more. Existing ZooKeeper clients (kazoo, Curator, the C and
Java clients, zkCli.sh) connect here; a four-letter word as the first four bytes gets its
text answer and the connection is closed, as ZooKeeper does.

Non-blocking sockets polled in the node's one loop: readable sockets give frames to the server,
ServerReady's sends are queued per connection and written as the socket takes them.
"""

from __future__ import annotations

import errno
import itertools
import logging
import socket
import struct
import time
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field

from cluster._ratelimit import Every
from zkcore import limits
from zkcore.server import ADMIN_WORDS, Framed

log = logging.getLogger("zkpy.zkdoor")
LENGTH = struct.Struct(">i")
RECV_BYTES = 256 * 1024
FRAMES_PER_TURN_MAX = 1000  # frames taken from one connection per loop turn
OUTPUT_BYTES_MAX = 32 * 1024 * 1024  # queued for a client that does not read: then it is cut off
HANDSHAKE_S = 10.0  # a connection must send its ConnectRequest within this
CLIENT_CNXNS_DEFAULT = 60  # ZooKeeper's maxClientCnxns: connections from one address
BACKLOG = 1024
# After accept() failed for want of file descriptors (EMFILE and kin) the listener is not polled
# for this long: the waiting connection would make every poll return at once, and the loop spin.
ACCEPT_PAUSE_S = 0.1


@dataclass(slots=True, eq=False)
class TcpConnection:
    conn_id: int
    sock: socket.socket
    address: str
    opened: float
    inbuf: bytearray = field(default_factory=bytearray)
    outbuf: bytearray = field(default_factory=bytearray)
    greeted: bool = False  # a whole first frame (connect or four-letter word) arrived
    paused: bool = False  # not read while the server has no room for its requests
    closing: bool = False  # close once outbuf is written


def parse_address(text: str) -> tuple[str, int]:
    """'host:port' (the config's zk=) -> (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"a ZooKeeper client address must be host:port: {text!r}")
    return host or "0.0.0.0", int(port)


class ZkDoor:
    """The listening socket and its connections. Connection ids are ints (the ZeroMQ door's are
    bytes), so both doors share one client table."""

    def __init__(self, address: str, client_cnxns_max: int = CLIENT_CNXNS_DEFAULT) -> None:
        host, port = parse_address(address)
        self.listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, port))
        self.listener.listen(BACKLOG)
        self.listener.setblocking(False)
        self.client_cnxns_max = client_cnxns_max
        self.connections: dict[int, TcpConnection] = {}
        self.by_fd: dict[int, TcpConnection] = {}
        # Told each connection's fd before it is closed, to stop polling it: an epoll set keeps
        # a socket's registration after close() while a forked child still holds the socket.
        self.closing_fd: Callable[[int], None] = lambda fd: None
        self.pending: list[TcpConnection] = []  # output queued this turn, not yet tried
        self.changed: set[TcpConnection] = set()  # opened, or output queued or written, since interest()
        self.backlog: set[TcpConnection] = set()  # may have whole frames buffered: see backlogged()
        self.refused = 0
        self._refused_said = Every(1.0)  # a flood must not flood the log too
        self.accept_failures = 0  # accept() calls that failed (EMFILE and kin)
        self._accept_failure_said = Every(1.0)
        # When accept() may be tried again after it failed; 0.0 once interest() has said it is
        # (so while it is not 0.0, interest() has news for the poll set).
        self.accept_paused_until = 0.0
        self._accepting = True  # whether the listener is to be polled
        self._ids = itertools.count(1)
        # One buffer for every recv: a fresh 256 KiB bytes per recv costs an mmap, an mremap
        # and a munmap (the node's malloc maps blocks of 128 KiB and up on their own).
        self._recv_view = memoryview(bytearray(RECV_BYTES))

    # --- the poll set -------------------------------------------------------------------------

    def fileno(self) -> int:
        return self.listener.fileno()

    def interest(self) -> list[tuple[int, bool, bool]]:
        """(fd, wants to read, wants to write) for each open connection that was opened, paused
        or resumed, or whose output was queued or written, since the last call, and for the
        listener when accepting stopped or resumed (see accept()): what may have to be polled
        differently."""
        changed, self.changed = self.changed, set()
        wanted = [
            (c.sock.fileno(), not c.paused, bool(c.outbuf)) for c in changed if c.conn_id in self.connections
        ]
        accepting = time.monotonic() >= self.accept_paused_until
        if accepting != self._accepting:
            self._accepting = accepting
            wanted.append((self.fileno(), accepting, False))
        if accepting:
            self.accept_paused_until = 0.0
        return wanted

    def pause(self, conn_id: int) -> None:
        """Stop reading a connection (its requests wait in the kernel, and then in the client)."""
        self._set_paused(conn_id, True)

    def resume(self, conn_id: int) -> None:
        self._set_paused(conn_id, False)

    def _set_paused(self, conn_id: int, paused: bool) -> None:
        conn = self.connections.get(conn_id)
        if conn is not None and conn.paused != paused:
            conn.paused = paused
            self.changed.add(conn)
            if paused:
                self.backlog.discard(conn)  # looked at again when it is resumed
            else:
                self.backlog.add(conn)  # what it sent before it was paused may be buffered

    # --- reading ------------------------------------------------------------------------------

    def accept(self) -> list[int]:
        """Take every waiting connection; the new sockets' fds, to poll."""
        fds = []
        for _ in range(BACKLOG):
            try:
                sock, peer = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:  # EMFILE and kin: leave the rest in the backlog, for a while
                now = time.monotonic()
                self.accept_paused_until = now + ACCEPT_PAUSE_S
                self.accept_failures += 1
                if self._accept_failure_said.due():
                    log.warning("cannot accept client connections: %s (%d times so far); trying again "
                                "every %.1f s", e, self.accept_failures, ACCEPT_PAUSE_S)  # fmt: skip
                break
            address = peer[0] if isinstance(peer, tuple) else str(peer)
            same = sum(1 for c in self.connections.values() if c.address == address)
            if same >= self.client_cnxns_max or len(self.connections) >= limits.connections_max:
                self.refused += 1
                if self._refused_said.due():
                    log.warning("too many connections from %s (%d): closing new ones (%d so far)",
                                address, same, self.refused)  # fmt: skip
                sock.close()
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = TcpConnection(next(self._ids), sock, address, time.monotonic())
            self.connections[conn.conn_id] = conn
            self.by_fd[sock.fileno()] = conn
            self.changed.add(conn)
            fds.append(sock.fileno())
        return fds

    def read(
        self, fd: int, take_run: Callable[[int, bytearray], int] | None = None, recv: bool = True
    ) -> Iterator[tuple[int, bytes | str | None]]:
        """Frames from one readable socket: (conn id, frame), (conn id, word) for a four-letter
        word, or (conn id, None) when the connection is gone (closed by the client, or by us
        for a frame of a bad length). `take_run(conn id, bytes)`, given, sees what has arrived
        first and says how many bytes of whole frames it took (Server.receive_stream: a run of
        reads answered at once); the frames after them are split and handed over one by one,
        at most FRAMES_PER_TURN_MAX: the rest wait in the buffer (backlogged(); recv=False
        takes them without reading the socket)."""
        conn = self.by_fd.get(fd)
        if conn is None or conn.closing or conn.paused:
            return
        self.backlog.discard(conn)
        if recv:
            view = self._recv_view
            try:
                n = conn.sock.recv_into(view)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                n = 0
            if not n:
                self.close(conn.conn_id)
                yield conn.conn_id, None
                return
            conn.inbuf += view[:n]
        if take_run is not None and conn.greeted:
            taken = take_run(conn.conn_id, conn.inbuf)
            if taken:
                del conn.inbuf[:taken]
        for _ in range(FRAMES_PER_TURN_MAX):
            buf = conn.inbuf
            if len(buf) < 4:
                return
            if not conn.greeted:
                word = bytes(buf[:4]).decode("ascii", "replace")
                if word in ADMIN_WORDS:
                    conn.greeted = True
                    del buf[:4]
                    yield conn.conn_id, word
                    return
            (length,) = LENGTH.unpack_from(buf)
            if length < 0 or length > limits.frame_bytes_max:
                log.warning("client %s sent a frame of length %d: closing it", conn.address, length)
                self.close(conn.conn_id)
                yield conn.conn_id, None
                return
            if len(buf) < 4 + length:
                return
            frame = bytes(buf[4 : 4 + length])
            del buf[: 4 + length]
            conn.greeted = True
            yield conn.conn_id, frame
        self.backlog.add(conn)  # FRAMES_PER_TURN_MAX taken: the rest next turn

    def backlogged(self) -> list[TcpConnection]:
        """The connections whose last read stopped at FRAMES_PER_TURN_MAX, or that were just
        resumed: their buffers may hold whole frames already, which poll will not report (the
        socket may have nothing more). Read them with recv=False."""
        return list(self.backlog)

    # --- writing ------------------------------------------------------------------------------

    def send(self, conn_id: int, frame: bytes) -> bool:
        """Queue a frame (length-prefixed, unless it is Framed already), written by
        flush_pending() with the rest of this loop turn's; False when the client has stopped
        reading (it is cut off) or is gone."""
        conn = self.connections.get(conn_id)
        if conn is None or conn.closing:
            return False
        out = conn.outbuf
        if not out:
            self.pending.append(conn)
            self.changed.add(conn)
        if not isinstance(frame, Framed):  # Framed replies carry their own lengths
            out += LENGTH.pack(len(frame))
        out += frame
        return len(out) <= OUTPUT_BYTES_MAX or self._flush(conn)

    def send_replies(
        self, sends: Sequence[tuple[Hashable, bytes | None]]
    ) -> tuple[list[tuple[Hashable, bytes | None]], list[int]]:
        """A ready()'s sends, those to this door's connections (int ids) queued as send()
        queues them, None closing the connection once its output is written: (the sends that
        are not this door's, in order; the connections cut off, which got nothing after the
        send that failed)."""
        rest: list[tuple[Hashable, bytes | None]] = []
        cut: list[int] = []
        send = self.send
        for conn_id, frame in sends:
            if type(conn_id) is not int:
                rest.append((conn_id, frame))
            elif frame is None:
                self.close_after_flush(conn_id)
            elif not send(conn_id, frame) and conn_id not in cut:
                cut.append(conn_id)
        return rest, cut

    def send_now(self, conn_id: int, frames: bytes) -> None:
        """Length-prefixed frames, written at once when nothing is queued for the connection;
        what the socket does not take (or all, behind queued output) is queued as send() does
        (a connection that failed is cut off by flush_pending, which meets the error again)."""
        conn = self.connections.get(conn_id)
        if conn is None or conn.closing:
            return
        if not conn.outbuf:
            try:
                sent = conn.sock.send(frames)
            except OSError:  # would block, or failed
                sent = 0
            if sent == len(frames):
                return
            frames = frames[sent:]
        self.send(conn_id, Framed(frames))

    def flush_pending(self) -> list[int]:
        """Write what this loop turn queued, one send per connection; the connections cut off."""
        pending, self.pending = self.pending, []
        return [
            c.conn_id for c in pending if c.outbuf and c.conn_id in self.connections and not self._flush(c)
        ]

    def send_text(self, conn_id: int, text: str) -> None:
        """A four-letter word's answer: raw text, then the connection is closed."""
        conn = self.connections.get(conn_id)
        if conn is not None:
            conn.outbuf += text.encode()
            self.close_after_flush(conn_id)  # its _flush marks the connection changed

    def close_after_flush(self, conn_id: int) -> None:
        conn = self.connections.get(conn_id)
        if conn is not None:
            conn.closing = True
            self._flush(conn)

    def on_writable(self, fd: int) -> int | None:
        """Write what is queued; the conn id if the client is cut off."""
        conn = self.by_fd.get(fd)
        if conn is not None and not self._flush(conn):
            return conn.conn_id
        return None

    def _flush(self, conn: TcpConnection) -> bool:
        self.changed.add(conn)
        while conn.outbuf:
            try:
                sent = conn.sock.send(conn.outbuf)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                if e.errno not in (errno.EPIPE, errno.ECONNRESET):
                    log.info("client %s: %s", conn.address, e)
                self.close(conn.conn_id)
                return False
            del conn.outbuf[:sent]
        if len(conn.outbuf) > OUTPUT_BYTES_MAX:
            log.warning("client %s is not reading its replies; cutting it off", conn.address)
            self.close(conn.conn_id)
            return False
        if conn.closing and not conn.outbuf:
            self.close(conn.conn_id)
        return True

    # --- closing ------------------------------------------------------------------------------

    def close(self, conn_id: int) -> int | None:
        """Close at once; the fd it had, to unregister."""
        conn = self.connections.pop(conn_id, None)
        if conn is None:
            return None
        self.backlog.discard(conn)
        fd = conn.sock.fileno()
        self.by_fd.pop(fd, None)
        self.closing_fd(fd)
        conn.sock.close()
        return fd

    def stale(self) -> list[int]:
        """Connections that never finished their handshake in time."""
        now = time.monotonic()
        return [
            c.conn_id for c in self.connections.values() if not c.greeted and now - c.opened > HANDSHAKE_S
        ]

    def shutdown(self) -> None:
        for conn_id in list(self.connections):
            self.close(conn_id)
        self.listener.close()
