"""The client table: one entry per connection, in h11's manner. Frames go in through receive();
replies, watch events and drops come out in `sends`, in the order the connection must see them.

It owns the handshake, each client's FIFO order (a read waits behind the same client's write or
sync until that is done here), the last-zxid gate, syncs and watches. A notification is queued
as its txn is applied, so before any reply that reflects the change. Every front door (ZeroMQ,
ZooKeeper's TCP protocol) is framing around this table.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import itertools
import struct
from collections import deque
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from zkcore import limits
from zkcore._acl import allows, auth_identity, ip_identity
from zkcore._datatree import NODE_DELETED, ApplyResult, DataTree, ReadIndex
from zkcore._errors import CODE_OK, Code, KeeperError, RemoteError
from zkcore._paths import path_problem
from zkcore._records import (
    ACL,
    XID_AUTH,
    XID_NOTIFICATION,
    XID_PING,
    ConnectRequest,
    ConnectResponse,
    CreateSessionTxn,
    Id,
    IntResponse,
    JuteRecord,
    OpCode,
    PathRequest,
    Perms,
    RequestHeader,
    SetWatches2,
    WatcherEvent,
)
from zkcore._requests import (
    REPLY_HEADER,
    WRITE_OPS,
    ClientRequest,
    ForwardedRequest,
    decode_request,
    encode_reply,
    read_reply_body,
    write_reply_body,
)
from zkcore._watches import ADD_WATCH_MODES, Fired, Kind, WatcherType, WatchTable

ConnId = Hashable
FRAME = struct.Struct(">i")
ERR = struct.Struct(">i")
ERR_OFFSET = 12  # of ReplyHeader's err: after xid (int) and zxid (long)
NATIVE_READS = frozenset({OpCode.EXISTS, OpCode.GET_DATA, OpCode.GET_CHILDREN, OpCode.GET_CHILDREN2})
# The same opcodes as a frame carries them (bytes 4-8), to pick out reads without decoding them.
NATIVE_READ_OPCODES = frozenset(struct.pack(">i", op) for op in NATIVE_READS)
PING_XID = struct.pack(">i", XID_PING)
NO_NODE = struct.pack(">i", Code.NO_NODE)
READ_SLOW, READ_WATCH = 2, 1  # read_batch's status per frame (0: answered)
WATCH_OPS = frozenset(
    {OpCode.ADD_WATCH, OpCode.REMOVE_WATCHES, OpCode.CHECK_WATCHES, OpCode.SET_WATCHES, OpCode.SET_WATCHES2}
)
SERVER_ONLY_OPS = frozenset({OpCode.DELETE_CONTAINER, OpCode.CREATE_SESSION})
# Requests answered with an error code in their turn, the connection kept: deleteContainer skips
# ACL checks (only the leader's container reaper may use it), createSession is the connect's;
# and reconfig, as ZooKeeper answers it when reconfigEnabled is false.
REFUSED_OPS: dict[int, int] = {
    **{int(op): int(Code.UNIMPLEMENTED) for op in SERVER_ONLY_OPS},
    int(OpCode.RECONFIG): int(Code.RECONFIG_DISABLED),
}
# Opcodes looked at for every request, as ints (see CODE_OK).
_AUTH, _SYNC, _SET_DATA = int(OpCode.AUTH), int(OpCode.SYNC), int(OpCode.SET_DATA)
_CREATE_SESSION, _CLOSE_SESSION = int(OpCode.CREATE_SESSION), int(OpCode.CLOSE_SESSION)
# The writes a client sends (as frames carry their opcodes) that receive_frames takes a run at a time.
RUN_WRITE_OPCODES = frozenset(
    struct.pack(">i", op) for op in WRITE_OPS - SERVER_ONLY_OPS - {OpCode.CLOSE_SESSION}
)
WATCHER_TYPES = frozenset(int(t) for t in WatcherType)
PASSWORD_BYTES = 16
STATE_SYNC_CONNECTED = 3  # Watcher.Event.KeeperState of every notification
LATENCY_SAMPLES_MAX = 10_000
# Upper bounds (ms) of the request latency histogram's buckets; the last is +Inf.
LATENCY_BUCKETS_MS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0)
# ZooKeeper's four-letter words: a first frame of four bytes is one of these, not a connect.
ADMIN_WORDS = frozenset(
    {"conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "ruok", "stmk", "srvr", "srst", "stat",
     "wchc", "wchp", "wchs", "mntr", "isro", "hash"}
)  # fmt: skip


class Host(Protocol):
    """What the table needs from its server: the tree, whether it serves, a way to Zab."""

    @property
    def tree(self) -> DataTree: ...

    @property
    def now_ms(self) -> float: ...

    def serving(self) -> bool: ...

    def submit(
        self, session_id: int, xid: int, opcode: int, auth_ids: tuple[Id, ...], body: bytes,
        decoded: object = None,
    ) -> int:  # fmt: skip
        """Hand a write (`body`: its bytes after the request header) to Zab: Code.OK, or the
        error code its client gets at once. `decoded` is the body already decoded, if the
        caller has it (so it is not decoded again)."""

    def submit_run(
        self, session_id: int, auth_ids: tuple[Id, ...], writes: Sequence[tuple[int, int, bytes, object]]
    ) -> list[int]:
        """submit() of each write (xid, opcode, body, decoded) of one session, in order: their
        codes."""

    def sync(self, token: int) -> bool: ...

    def touch(self, session_id: int) -> None: ...


def decode_connect(frame: bytes) -> ConnectRequest:
    """A ConnectRequest; older clients leave out the trailing readOnly byte."""
    try:
        return ConnectRequest.decode(frame)
    except RemoteError:
        return ConnectRequest.decode(frame + b"\0")


# Writes and syncs finish elsewhere (Zab); the same client's later reads wait for them.
BARRIER_OPS = WRITE_OPS | {int(OpCode.SYNC)}


class Framed(bytes):
    """Replies already length-prefixed and back to back, as a stream connection carries them:
    a run of reads receive_stream answered while other sends waited, in one send."""

    __slots__ = ()


@dataclass(slots=True)
class Pending:
    req: ClientRequest
    frame: bytes
    received_ms: float
    barrier: bool  # a write or sync: see BARRIER_OPS
    submitted: bool = False
    reply: bytes | None = None
    sync_zxid: int = -1  # a sync: apply through this zxid, once the leader has said, then answer


@dataclass(slots=True, eq=False)
class Connection:
    conn: ConnId
    session_id: int = 0
    timeout_ms: int = 0
    auth_ids: tuple[Id, ...] = ()
    connect: ConnectRequest | None = None  # a new session waiting for its createSession txn
    queue: deque[Pending] = field(default_factory=deque)
    requests: int = 0


def _write_answered(conn: Connection, cxid: int) -> Pending | None:
    """The write of conn's that the txn of client xid `cxid` answers: its first submitted,
    unanswered request with that xid (None: the client asked on another connection)."""
    for pending in conn.queue:
        if pending.submitted and pending.reply is None and pending.req.xid == cxid:
            return pending
    return None


def _plain_write(frame: bytes) -> ClientRequest | None:
    """A write frame's request, decoded; None when it does not decode or its xid is a ping's
    (receive's slow path answers those)."""
    try:
        req = decode_request(frame)
    except RemoteError:
        return None
    return None if req.xid == XID_PING else req


def _full(conn: Connection) -> bool:
    """limits.client_queue_max requests of the connection wait for their replies."""
    return len(conn.queue) >= limits.client_queue_max


class ClientTable:
    """Every client connection of one server. Inputs: receive, close, and from the server
    on_applied, on_synced, on_refused, disconnect_all. Outputs: `sends` ((conn, frame), or
    (conn, None) for "this server drops you: reconnect elsewhere with your session") and
    `closed` (connections forgotten after their last send, without a notice on ZeroMQ) and
    `admin` ((conn, word) four-letter words for the shell to answer)."""

    def __init__(
        self, host: Host, server_id: int, session_timeout_ms: tuple[int, int], secret: bytes, wall_ms: int
    ) -> None:
        self.host = host
        self.secret = secret
        self.session_timeout_ms = session_timeout_ms
        self.connections: dict[ConnId, Connection] = {}
        self.by_session: dict[int, Connection] = {}
        self.watches = WatchTable()
        self.syncs: dict[int, tuple[Connection, Pending]] = {}  # by token, until answered
        self._sync_tokens = itertools.count(1)
        self._next_session = ((wall_ms << 24) & ((1 << 56) - 1)) | (server_id << 56)
        self.sends: list[tuple[ConnId, bytes | None]] = []
        self.closed: list[ConnId] = []
        self.admin: list[tuple[ConnId, str]] = []
        self.packets_received = self.packets_sent = 0
        self.reads_streamed = 0  # of packets_received: plain reads answered natively, at once
        self.read_runs = 0  # the runs those came in (one per connection and call)
        self.latency_ms: deque[float] = deque(maxlen=LATENCY_SAMPLES_MAX)
        self.latency_buckets = [0] * (len(LATENCY_BUCKETS_MS) + 1)  # per bucket, not cumulative
        self.latency_sum_ms = 0.0

    # --- outputs ----------------------------------------------------------------------------

    def take_sends(self) -> tuple[tuple[ConnId, bytes | None], ...]:
        sends, self.sends = tuple(self.sends), []
        return sends

    def take_closed(self) -> tuple[ConnId, ...]:
        closed, self.closed = tuple(self.closed), []
        return closed

    def take_admin(self) -> tuple[tuple[ConnId, str], ...]:
        admin, self.admin = tuple(self.admin), []
        return admin

    def _send(self, conn: ConnId, frame: bytes) -> None:
        self.sends.append((conn, frame))
        self.packets_sent += 1

    def _drop_conn(self, conn: Connection) -> None:
        """Tell the client to go (an empty frame, or a closed socket) and forget it."""
        self.sends.append((conn.conn, None))
        self._forget(conn)

    def _end_conn(self, conn: Connection) -> None:
        """Forget the connection after what was sent to it (its session expired or closed, or it
        sent garbage): on ZeroMQ its next frame starts a new connection, TCP closes the socket."""
        self.closed.append(conn.conn)
        self._forget(conn)

    # --- sessions ---------------------------------------------------------------------------

    def password(self, session_id: int) -> bytes:
        return hmac.new(self.secret, struct.pack(">q", session_id), hashlib.sha256).digest()[:PASSWORD_BYTES]

    def negotiate(self, requested_ms: int) -> int:
        lo, hi = self.session_timeout_ms
        return max(lo, min(hi, requested_ms))

    def new_session_id(self) -> int:
        self._next_session += 1
        return self._next_session

    def _forget(self, conn: Connection) -> None:
        """The connection is over: its watches and pending syncs go with it (not its session)."""
        if self.connections.get(conn.conn) is conn:
            del self.connections[conn.conn]
        if self.by_session.get(conn.session_id) is conn:
            del self.by_session[conn.session_id]
        self.watches.drop(conn)
        for token in [t for t, (owner, _) in self.syncs.items() if owner is conn]:
            del self.syncs[token]

    def close(self, conn_id: ConnId) -> None:
        """The transport lost this connection (or gave up sending to it)."""
        conn = self.connections.get(conn_id)
        if conn is not None:
            self._forget(conn)

    def drop_unanswered(self, now_ms: float) -> list[str]:
        """Drop each connection whose oldest request, a write or sync handed on, has had no
        answer for twice its session timeout; a note for each. Such a request was lost (a
        write forwarded to a leader through a transport past its limits, say) and would never
        be answered, while this server answers the client's pings, so its client would wait
        for as long as it lives; ZooKeeper queues pings behind the writes, and its clients time
        out. Dropped, the client reconnects with its session and gets ConnectionLoss for what
        it had in flight, whose outcome it must check, as after any lost connection."""
        notes = []
        for conn in [c for c in self.connections.values() if c.queue and c.timeout_ms]:
            head = conn.queue[0]
            waited = now_ms - head.received_ms
            if head.submitted and head.reply is None and waited > 2 * conn.timeout_ms:
                notes.append(
                    f"dropped the connection of session {conn.session_id:#x}: its request (xid "
                    f"{head.req.xid}, opcode {head.req.opcode}) had no answer in {waited / 1000:.1f}s, "
                    "twice its session timeout (lost on the way to the leader?); the client "
                    "reconnects and gets ConnectionLoss for it"
                )
                self._drop_conn(conn)
        return notes

    def disconnect_all(self) -> None:
        """This server stopped serving (it lost its leader): every client is told to go, as
        ZooKeeper closes its connections, and reconnects elsewhere with its session."""
        for conn in list(self.connections.values()):
            self._drop_conn(conn)

    def admits(self, req: ConnectRequest) -> str | None:
        """Why this server must refuse a connect now (None: it may take it). A client that has
        seen a newer state than ours must go elsewhere, or its reads could go back in time."""
        if not self.host.serving():
            return "not serving (no quorum or still syncing)"
        last = self.host.tree.last_zxid
        if req.last_zxid_seen > last:
            return f"client has seen zxid {req.last_zxid_seen:#x}, we have {last:#x}"
        return None

    def _connect(self, conn: Connection, frame: bytes) -> None:
        try:
            req = decode_connect(frame)
        except RemoteError:
            self._drop_conn(conn)
            return
        if self.admits(req) is not None:
            self._drop_conn(conn)
            return
        timeout = self.negotiate(req.timeout_ms)
        if req.session_id == 0:
            conn.session_id, conn.timeout_ms, conn.connect = self.new_session_id(), timeout, req
            body = CreateSessionTxn(timeout).encode()
            if self.host.submit(conn.session_id, 0, OpCode.CREATE_SESSION, (), body) != Code.OK:
                self._drop_conn(conn)
                return
            self.by_session[conn.session_id] = conn
            return
        if (
            not hmac.compare_digest(req.passwd, self.password(req.session_id))
            or req.session_id not in self.host.tree.sessions
        ):
            # ZooKeeper's answer to an unknown or expired session: timeout 0.
            self._send(conn.conn, ConnectResponse(0, 0, 0, bytes(PASSWORD_BYTES), False).encode())
            self._end_conn(conn)
            return
        conn.session_id, conn.timeout_ms = req.session_id, timeout
        self.host.touch(req.session_id)
        old = self.by_session.get(req.session_id)
        if old is not None and old is not conn:
            self._forget(old)
        self.by_session[req.session_id] = conn
        self._send(
            conn.conn,
            ConnectResponse(0, timeout, req.session_id, self.password(req.session_id), False).encode(),
        )

    # --- requests ---------------------------------------------------------------------------

    def has_room(self, conn_id: ConnId) -> bool:
        """Whether a connection may send another request now: False while it has
        limits.client_queue_max waiting, when the shell should hold its frames (or stop reading
        it) until its replies go out (ZooKeeper's backpressure). A request that comes anyway
        loses the connection (with no reply: it would overtake the replies still owed)."""
        conn = self.connections.get(conn_id)
        return conn is None or not _full(conn)

    def receive_frames(self, conn_id: ConnId, frames: list[bytes], address: str | None = None) -> int:
        """Take the frames that open `frames` (one connection's, in order) and say how many: a
        run of plain reads from an idle session, answered natively in one call and undecoded,
        a run of up to limits.write_run_max writes, or else the first frame alone, as receive()
        takes it (with `address`). Call again with the rest: a shell bounding its loop turn can
        stop between calls, as no call costs more than one request, one native batch or one
        run of writes."""
        conn = self._in_session(conn_id)
        if conn is not None:
            index = self._native_index(conn)
            if index is not None:
                done = self._answer_read_run(conn, index, frames)
                if done:
                    return done
            if frames[0][4:8] in RUN_WRITE_OPCODES:
                return self._take_write_run(conn, frames)
        self.receive(conn_id, frames[0], address)
        return 1

    def _take_write_run(self, conn: Connection, frames: list[bytes]) -> int:
        """Each write that opens `frames` as receive() takes it, the session touched once for
        the run, up to the first frame that is not one, while the connection has room (as
        has_room says), up to limits.write_run_max: how many were taken (at least the first).
        The run's writes go to Zab together (Host.submit_run); a frame that is not a plain
        write after all (it does not decode, or says it is a ping) goes to _request once
        those before it went."""
        self.host.touch(conn.session_id)
        now_ms = self.host.now_ms
        run: list[Pending] = []
        taken = 0
        for frame in frames:
            if taken and (
                frame[4:8] not in RUN_WRITE_OPCODES or _full(conn) or taken == limits.write_run_max
            ):
                break
            self.packets_received += 1
            taken += 1
            req = _plain_write(frame)
            if req is None or _full(conn):
                self._submit_run(conn, run)
                run = []
                self._request(conn, frame)
                if conn.conn not in self.connections:  # it sent garbage, and is gone
                    break
                continue
            conn.requests += 1
            pending = Pending(req, frame, now_ms, True)
            conn.queue.append(pending)
            run.append(pending)
        self._submit_run(conn, run)
        return taken

    def _submit_run(self, conn: Connection, run: list[Pending]) -> None:
        """_submit of each write of `run` (queued in order, nothing ahead of them submitted
        since), in one Host.submit_run; those that cannot go are answered at once."""
        if not run:
            return
        writes = [(p.req.xid, p.req.opcode, p.frame[8:], p.req.body) for p in run]
        refused = False
        for pending, code in zip(
            run, self.host.submit_run(conn.session_id, conn.auth_ids, writes), strict=True
        ):
            pending.submitted = True
            if code != CODE_OK:
                pending.reply = encode_reply(pending.req.xid, self.host.tree.last_zxid, code)
                refused = True
        if refused:
            self.flush(conn)

    def _in_session(self, conn_id: ConnId) -> Connection | None:
        """The connection, when it has a session (its connect answered); else None."""
        conn = self.connections.get(conn_id)
        return conn if conn is not None and conn.session_id and conn.connect is None else None

    def _native_index(self, conn: Connection) -> ReadIndex | None:
        """The read index, when the reads of this connection (in session) may be answered
        natively now: no request of its is still waiting here (FIFO order); else None."""
        return None if conn.queue else self.host.tree.index

    def receive_stream(self, conn_id: ConnId, data: bytes | bytearray) -> tuple[int, bytes]:
        """The run of plain reads that opens `data`, a stream connection's bytes (length-prefixed
        frames, as ZooKeeper's TCP clients send them), answered natively in one call: (how many
        bytes were taken, their replies). The rest go to receive_frames, frame by frame.
        Nothing is taken unless the session is idle here (its earlier requests all answered),
        and nothing that needs more than a lookup: watches, missing nodes and ACLs stop the run.
        The replies (length-prefixed, back to back) are the caller's to send at once, before
        anything a later ready() gives; while other sends wait for ready(), one of them may be
        this connection's, so the replies wait behind them as one Framed send, and b"" comes
        back."""
        conn = self._in_session(conn_id)
        index = None if conn is None else self._native_index(conn)
        if conn is None or index is None:
            return 0, b""
        replies, answered, taken = index.read_run(data, self.host.tree.last_zxid)
        if not answered:
            return taken, b""
        self._answered(conn, answered)
        if self.sends:
            self.sends.append((conn_id, Framed(replies)))
            return taken, b""
        return taken, replies

    def _answered(self, conn: Connection, reads: int) -> None:
        """The accounting of reads answered natively, as they arrived."""
        self.host.touch(conn.session_id)
        self.packets_received += reads
        self.packets_sent += reads
        self.reads_streamed += reads
        self.read_runs += 1
        conn.requests += reads
        self._observe_many(0.0, reads)

    def _answer_read_run(self, conn: Connection, index: ReadIndex, frames: list[bytes]) -> int:
        """Answer the reads that open `frames` in one native batch, up to the first frame that
        is not a plain read or that the slow path must answer; how many frames were answered."""
        run = 0
        for frame in frames:
            if frame[4:8] not in NATIVE_READ_OPCODES or frame[:4] == PING_XID or run == limits.read_batch_max:
                break
            run += 1
        if run == 0:
            return 0
        sends = self.sends
        conn_id = conn.conn
        answered = 0
        for st, reply in self._read_batch(index, frames[:run]):
            if reply is None:
                break
            if st == READ_WATCH or reply[ERR_OFFSET : ERR_OFFSET + 4] == NO_NODE:
                # Decoded after all: a watch needs its path, and a path that is not UTF-8 is the
                # slow path's to refuse (it was not found, so the lookup did not check it).
                try:
                    req = decode_request(frames[answered])
                except RemoteError:
                    break
                if st == READ_WATCH:
                    self._set_watch(conn, req, ERR.unpack_from(reply, ERR_OFFSET)[0])
            sends.append((conn_id, reply))
            answered += 1
        if answered:
            self._answered(conn, answered)
        return answered

    def _read_batch(self, index: ReadIndex, frames: list[bytes]) -> list[tuple[int, bytes | None]]:
        """Each frame's status from one native read batch, and its reply (None for a frame the
        slow path must answer)."""
        replies, status = index.read_batch(
            b"".join([FRAME.pack(len(f)) + f for f in frames]), self.host.tree.last_zxid
        )
        out: list[tuple[int, bytes | None]] = []
        pos = 0
        for st in status:
            if st == READ_SLOW:
                out.append((st, None))
                continue
            (n,) = FRAME.unpack_from(replies, pos)
            out.append((st, replies[pos + 4 : pos + 4 + n]))
            pos += 4 + n
        return out

    def receive(self, conn_id: ConnId, frame: bytes, address: str | None = None) -> None:
        """One frame from a connection: its connect (or a four-letter word), then requests. The
        first one's `address`, the client's IP address, gives the connection its ip identity
        (ip_identity), as ZooKeeper gives each: ACLs of the ip scheme let it in, and whoAmI
        names it. Later frames' addresses are not looked at."""
        self.packets_received += 1
        conn = self.connections.get(conn_id)
        if conn is None:
            if len(frame) == 4 and frame.decode("ascii", "replace") in ADMIN_WORDS:
                self.admin.append((conn_id, frame.decode("ascii")))
                return
            if len(self.connections) >= limits.connections_max:
                self.sends.append((conn_id, None))
                return
            conn = self.connections[conn_id] = Connection(conn_id, auth_ids=ip_identity(address))
            self._connect(conn, frame)
            return
        if conn.session_id:
            self.host.touch(conn.session_id)
        self._request(conn, frame)

    def _request(self, conn: Connection, frame: bytes) -> None:
        """A request frame from a connection that has sent its connect (its session touched)."""
        try:
            req = decode_request(frame)
        except RemoteError as e:
            self._reject(conn, frame, e)
            return
        if _full(conn):
            # No error reply: it would overtake the replies still owed, which the client's FIFO
            # order forbids. It is told to go, as ZooKeeper closes it, and learns ConnectionLoss.
            self._drop_conn(conn)
            return
        conn.requests += 1
        if req.xid == XID_PING:
            self._send(conn.conn, encode_reply(XID_PING, self.host.tree.last_zxid, Code.OK))
            return
        if req.opcode == _AUTH:
            self._auth(conn, req)
            return
        self._enqueue(conn, req, frame)

    def _enqueue(self, conn: Connection, req: ClientRequest, frame: bytes) -> None:
        pending = Pending(req, frame, self.host.now_ms, req.opcode in BARRIER_OPS)
        refused = REFUSED_OPS.get(req.opcode)
        if refused is not None:
            pending.reply = encode_reply(req.xid, self.host.tree.last_zxid, refused)
            pending.submitted = True
        conn.queue.append(pending)
        if conn.connect is None:  # requests sent before the session exists wait for it
            if pending.barrier and not pending.submitted:
                self._submit(conn, pending)
                if pending.reply is None:  # on its way: behind it, the queue is as it was
                    return
            self.flush(conn)

    def _reject(self, conn: Connection, frame: bytes, error: KeeperError) -> None:
        """A client that sent garbage gets its error code and loses its connection."""
        xid = RequestHeader.decode(frame[:8]).xid if len(frame) >= 8 else 0
        self._send(conn.conn, encode_reply(xid, self.host.tree.last_zxid, int(error.code)))
        self._end_conn(conn)

    def _auth(self, conn: Connection, req: ClientRequest) -> None:
        try:
            ident = auth_identity(req.body.scheme, req.body.auth)
        except KeeperError:
            self._send(conn.conn, encode_reply(XID_AUTH, 0, Code.AUTH_FAILED))
            return
        if ident not in conn.auth_ids and len(conn.auth_ids) < limits.auth_ids_max:
            conn.auth_ids += (ident,)
        self._send(conn.conn, encode_reply(XID_AUTH, 0, Code.OK))

    def _submit(self, conn: Connection, pending: Pending) -> None:
        """Hand a write or sync to Zab as it arrives (or once its session exists), in order. One
        that cannot go anywhere is answered at once with the reason's error code."""
        req = pending.req
        err: int = CODE_OK
        if req.opcode == _SYNC:
            token = next(self._sync_tokens)
            if self.host.sync(token):
                self.syncs[token] = (conn, pending)
            else:
                err = Code.CONNECTION_LOSS
        else:
            err = self.host.submit(
                conn.session_id, req.xid, req.opcode, conn.auth_ids, pending.frame[8:], req.body
            )
        if err != CODE_OK:
            pending.reply = encode_reply(req.xid, self.host.tree.last_zxid, err)
        pending.submitted = True

    def flush(self, conn: Connection) -> None:
        """Answer reads that nothing is ahead of and send finished replies, in request order."""
        now_ms = self.host.now_ms
        while conn.queue:
            head = conn.queue[0]
            if head.reply is None and not head.barrier:
                self.answer_reads(conn)
            if head.reply is None:
                break
            conn.queue.popleft()
            self._observe(now_ms - head.received_ms)
            self._send(conn.conn, head.reply)

    def _observe(self, latency_ms: float) -> None:
        self.latency_ms.append(latency_ms)
        self.latency_sum_ms += latency_ms
        self.latency_buckets[bisect.bisect_left(LATENCY_BUCKETS_MS, latency_ms)] += 1

    def _observe_many(self, latency_ms: float, count: int) -> None:
        self.latency_ms.extend(itertools.repeat(latency_ms, min(count, LATENCY_SAMPLES_MAX)))
        self.latency_sum_ms += latency_ms * count
        self.latency_buckets[bisect.bisect_left(LATENCY_BUCKETS_MS, latency_ms)] += count

    def reads_ready(self, conn: Connection) -> list[Pending]:
        """The unanswered reads at the head of the queue: none behind a write or sync."""
        reads = []
        for pending in conn.queue:
            if pending.barrier:
                break
            if pending.reply is None:
                reads.append(pending)
        return reads

    def answer_reads(self, conn: Connection) -> None:
        """Answer the reads at the head of the queue, natively in one batch where possible, and
        set the watches they asked for."""
        reads = self.reads_ready(conn)
        tree = self.host.tree
        native = [p for p in reads if p.req.opcode in NATIVE_READS]
        index = tree.index
        for first in range(0, len(native) if index is not None else 0, limits.read_batch_max):
            chunk = native[first : first + limits.read_batch_max]
            assert index is not None
            for p, (_, reply) in zip(chunk, self._read_batch(index, [p.frame for p in chunk]), strict=True):
                p.reply = reply
        for p in reads:
            if p.reply is None:
                body: JuteRecord | bytes | None
                if p.req.opcode in WATCH_OPS:
                    err, body = self._watch_request(conn, p.req)
                else:
                    err, body = read_reply_body(tree, p.req, conn.auth_ids, conn.session_id)
                p.reply = encode_reply(p.req.xid, tree.last_zxid, err, body)
            if p.req.opcode in NATIVE_READS and p.req.body.watch:
                self._set_watch(conn, p.req, ERR.unpack_from(p.reply, ERR_OFFSET)[0])

    # --- watches ----------------------------------------------------------------------------

    def _set_watch(self, conn: Connection, req: ClientRequest, err: int) -> None:
        """ZooKeeper's rules: exists watches a missing node too (for its creation); getData and
        getChildren watch only a node they could read."""
        if req.opcode == OpCode.EXISTS and err in (Code.OK, Code.NO_NODE):
            self.watches.add(conn, Kind.DATA, req.body.path)
        elif err == Code.OK:
            kind = Kind.DATA if req.opcode == OpCode.GET_DATA else Kind.CHILD
            self.watches.add(conn, kind, req.body.path)

    def _watch_request(self, conn: Connection, req: ClientRequest) -> tuple[int, IntResponse | None]:
        """addWatch, removeWatches, checkWatches and setWatches: the error code and reply body."""
        body = req.body
        if req.opcode in (OpCode.SET_WATCHES, OpCode.SET_WATCHES2):
            persistent = body.persistent_watches if isinstance(body, SetWatches2) else ()
            recursive = body.persistent_recursive_watches if isinstance(body, SetWatches2) else ()
            paths = [*body.data_watches, *body.exist_watches, *body.child_watches, *persistent, *recursive]
            if any(path_problem(p) for p in dict.fromkeys(paths)):  # each distinct path once
                return Code.BAD_ARGUMENTS, None
            tree = self.host.tree
            fired = self.watches.resume(
                conn, tree, body.relative_zxid, body.data_watches, body.exist_watches, body.child_watches,
                persistent, recursive,
            )  # fmt: skip
            self._notify(fired, tree.last_zxid)
            return Code.OK, None
        if path_problem(body.path):
            return Code.BAD_ARGUMENTS, None
        if req.opcode == OpCode.ADD_WATCH:
            kind = ADD_WATCH_MODES.get(body.mode)
            if kind is None:
                return Code.BAD_ARGUMENTS, None
            self.watches.add(conn, kind, body.path)
            return Code.OK, IntResponse(0)  # ZooKeeper answers addWatch with ErrorResponse(0)
        if body.type not in WATCHER_TYPES:
            return Code.BAD_ARGUMENTS, None
        if req.opcode == OpCode.CHECK_WATCHES:
            found = self.watches.has(conn, body.type, body.path)
        else:
            found = bool(self.watches.remove(conn, body.type, body.path))
        return (Code.OK if found else Code.NO_WATCHER), None

    def _readable(self, fired: Iterable[Fired], result: ApplyResult) -> Iterator[Fired]:
        """The notifications whose watcher may READ the node the event is on (the parent, for
        NodeChildrenChanged), as the node's ACL was when the txn changed it: ZooKeeper's rule
        since 3.8.4 and 3.9.2 (CVE-2024-23944), else a persistent recursive watch on an open
        node would name every protected node created, changed or deleted below it. The watch is
        used up all the same."""
        tree, deleted = self.host.tree, result.deleted_acls or {}
        acls: dict[tuple[int, str], tuple[ACL, ...] | None] = {}  # each event's looked up once
        for f in fired:
            key = (f.event, f.path)
            if key not in acls:
                # A deleted node's ACL as it was; else the node's now (in a multi that deleted it
                # later, as it was at the delete).
                now = None if f.event == NODE_DELETED and f.path in deleted else tree.change_fields(f.path)
                acls[key] = now[1] if now is not None else deleted.get(f.path)
            acl = acls[key]
            watcher = f.watcher
            assert isinstance(watcher, Connection)
            if acl is None or allows(acl, Perms.READ, watcher.auth_ids):
                yield f

    def _notify(self, fired: Iterable[Fired], zxid: int) -> None:
        """Queue each notification for its connection, if that is still here."""
        for f in fired:
            conn = f.watcher
            assert isinstance(conn, Connection)
            if self.connections.get(conn.conn) is conn:
                event = WatcherEvent(f.event, STATE_SYNC_CONNECTED, f.path)
                self._send(conn.conn, encode_reply(XID_NOTIFICATION, zxid, Code.OK, event))

    # --- txns applied, syncs answered -------------------------------------------------------

    def on_applied(self, client_id: int, cxid: int, kind: int, zxid: int, result: ApplyResult) -> None:
        """Notify the watchers of what the txn (its header's client_id, cxid, type and zxid)
        changed, then reply to the local client whose write it was, if that client is connected
        here."""
        if result.events and self.watches.watchers():  # no watch anywhere: nothing to fire
            self._notify(self._readable(self.watches.trigger(result.events), result), zxid)
        self.answer_due_syncs()
        conn = self.by_session.get(client_id)
        if conn is None:
            return
        if conn.connect is not None and kind == _CREATE_SESSION:
            conn.connect = None
            session, timeout = conn.session_id, conn.timeout_ms
            self._send(
                conn.conn, ConnectResponse(0, timeout, session, self.password(session), False).encode()
            )
            for pending in conn.queue:
                if pending.barrier and not pending.submitted:
                    self._submit(conn, pending)
            self.flush(conn)
            return
        asked = False  # whether this connection sent the write, so gets its reply
        write = _write_answered(conn, cxid)
        if write is not None:
            err, body = write_reply_body(write.req.opcode, result)
            write.reply = encode_reply(write.req.xid, zxid, err, body)
            asked = write.req.opcode == kind
        self.flush(conn)
        if kind == _CLOSE_SESSION:
            # The session is over. The connection that closed it has its reply and knows; one
            # that did not (the session expired, or its client asked on an older connection and
            # came back before the close was applied) is told to go, or on ZeroMQ its next
            # request would be taken for a new connection's handshake.
            if asked:
                self._end_conn(conn)
            else:
                self._drop_conn(conn)

    def on_set_data_applied(self, applied: list[tuple[int, int, int, str, bytes]]) -> None:
        """on_applied of each setData (client_id, cxid, zxid, path, Stat now packed) of a run
        the tree has applied, while no watch was set on this server, in zxid order: each reply
        built from the Stat, without an ApplyResult (what waits behind those writes is answered
        from the tree as it is after all of them), then the syncs due."""
        by_session = self.by_session
        for client_id, cxid, zxid, path, stat in applied:
            conn = by_session.get(client_id)
            write = None if conn is None else _write_answered(conn, cxid)
            if conn is not None and write is not None and write.req.opcode == _SET_DATA:
                write.reply = REPLY_HEADER.pack(cxid, zxid, CODE_OK) + stat
                self.flush(conn)  # at once: _write_answered finds the next one at the head
            else:  # a reused xid, or a client gone: on_applied says what (its syncs first)
                result = ApplyResult(zxid, _SET_DATA, path=path, stat_packed=stat)
                self.on_applied(client_id, cxid, _SET_DATA, zxid, result)
        self.answer_due_syncs()

    def answer_due_syncs(self) -> None:
        """Answer the syncs the applied txns have caught up with (all a txn that no client here
        sees can do)."""
        if self.syncs:
            self._answer_syncs()

    def on_refused(self, fwd: ForwardedRequest, err: int) -> None:
        """Zab could not take this client's write after all: it gets `err` now."""
        conn = self.by_session.get(fwd.session_id)
        if conn is None:
            return
        if fwd.opcode == OpCode.CREATE_SESSION:
            if conn.connect is not None:
                self._drop_conn(conn)
            return
        for pending in conn.queue:
            if pending.submitted and pending.reply is None and pending.req.xid == fwd.xid:
                pending.reply = encode_reply(fwd.xid, self.host.tree.last_zxid, err)
                break
        self.flush(conn)

    def on_synced(self, token: int, zxid: int) -> None:
        """Zab's answer to a sync: reply once this server has applied through `zxid`."""
        entry = self.syncs.get(token)
        if entry is not None:
            entry[1].sync_zxid = zxid
            self._answer_syncs()

    def _answer_syncs(self) -> None:
        last = self.host.tree.last_zxid
        for token, (conn, pending) in list(self.syncs.items()):
            if 0 <= pending.sync_zxid <= last:
                del self.syncs[token]
                # SyncResponse has PathRequest's layout: the path, echoed.
                body = PathRequest(pending.req.body.path)
                pending.reply = encode_reply(pending.req.xid, last, Code.OK, body)
                self.flush(conn)

    def outstanding(self) -> int:
        return sum(len(c.queue) for c in self.connections.values())
