"""The client side of a node: a ROUTER socket, one Connection per client, sessions, watches, and
each client's requests answered in the order they were sent (a read waits behind the same
client's write or sync until that is done here). Reads are answered locally through the native
read path. A watch notification goes out as its txn is applied, so before any reply that
reflects the change.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import logging
import struct
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import zmq

from cluster import admin
from zkcore import Code, DataTree, RemoteError, auth_identity, limits
from zkcore._datatree import ApplyResult
from zkcore._errors import KeeperError
from zkcore._paths import path_problem
from zkcore._records import (
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
    RequestHeader,
    SetWatches2,
    TxnHeader,
    WatcherEvent,
)
from zkcore._requests import (
    ClientRequest,
    ForwardedRequest,
    decode_request,
    encode_reply,
    read_reply_body,
    write_reply_body,
)
from zkcore._watches import ADD_WATCH_MODES, Fired, Kind, WatcherType, WatchTable

log = logging.getLogger("zkpy.clients")
FRAME = struct.Struct(">i")
ERR = struct.Struct(">i")
ERR_OFFSET = 12  # of ReplyHeader's err: after xid (int) and zxid (long)
NATIVE_READS = frozenset({OpCode.EXISTS, OpCode.GET_DATA, OpCode.GET_CHILDREN, OpCode.GET_CHILDREN2})
WATCH_OPS = frozenset(
    {OpCode.ADD_WATCH, OpCode.REMOVE_WATCHES, OpCode.CHECK_WATCHES, OpCode.SET_WATCHES, OpCode.SET_WATCHES2}
)
SERVER_ONLY_OPS = frozenset({OpCode.DELETE_CONTAINER, OpCode.CREATE_SESSION})
WATCHER_TYPES = frozenset(int(t) for t in WatcherType)
PASSWORD_BYTES = 16
STATE_SYNC_CONNECTED = 3  # Watcher.Event.KeeperState of every notification


def decode_connect(frame: bytes) -> ConnectRequest:
    """A ConnectRequest; older clients leave out the trailing readOnly byte."""
    try:
        return ConnectRequest.decode(frame)
    except RemoteError:
        return ConnectRequest.decode(frame + b"\0")


def is_barrier(req: ClientRequest) -> bool:
    """Writes and syncs finish elsewhere (Zab); the same client's later reads wait for them."""
    return req.is_write or req.opcode == OpCode.SYNC


@dataclass(slots=True)
class Pending:
    req: ClientRequest
    frame: bytes
    received: float
    submitted: bool = False
    reply: bytes | None = None
    sync_zxid: int = -1  # a sync: apply through this zxid, once the leader has said, then answer


@dataclass(slots=True, eq=False)
class Connection:
    identity: bytes
    session_id: int = 0
    timeout_ms: int = 0
    auth_ids: tuple[Id, ...] = ()
    connect: ConnectRequest | None = None  # a new session waiting for its createSession txn
    queue: deque[Pending] = field(default_factory=deque)
    requests: int = 0


class ClientServer:
    """Serves clients on one ROUTER socket. `submit(fwd)` hands a write to Zab and `sync(token)`
    a sync (False: no leader to take it now); `on_applied` is called for every txn this node
    applies and `on_synced` for every sync Zab has answered."""

    def __init__(
        self,
        sock: zmq.Socket[bytes],
        tree: Callable[[], DataTree],
        server_id: int,
        session_timeout_ms: tuple[int, int],
        submit: Callable[[ForwardedRequest], bool],
        sync: Callable[[int], bool],
        admin_answer: Callable[[str], str],
        serving: Callable[[], bool],
        secret: bytes,
        touch: Callable[[int], None],
        stale_reads: bool = False,
    ) -> None:
        self.sock = sock
        self.tree = tree
        self.submit = submit
        self.sync = sync
        self.admin_answer = admin_answer
        self.serving = serving
        self.secret = secret
        self.touch = touch
        self.stale_reads = stale_reads  # a debug switch (cluster.faults): break read guarantees
        self.session_timeout_ms = session_timeout_ms
        self.connections: dict[bytes, Connection] = {}
        self.by_session: dict[int, Connection] = {}
        self.watches = WatchTable()
        self.syncs: dict[int, tuple[Connection, Pending]] = {}  # by token, until answered
        self._sync_tokens = itertools.count(1)
        self._next_session = ((int(time.time() * 1000) << 24) & ((1 << 56) - 1)) | (server_id << 56)
        self.packets_received = self.packets_sent = 0
        self.latency_ms: deque[float] = deque(maxlen=10_000)

    # --- sessions -------------------------------------------------------------------------

    def password(self, session_id: int) -> bytes:
        return hmac.new(self.secret, struct.pack(">q", session_id), hashlib.sha256).digest()[:PASSWORD_BYTES]

    def negotiate(self, requested_ms: int) -> int:
        lo, hi = self.session_timeout_ms
        return max(lo, min(hi, requested_ms))

    def new_session_id(self) -> int:
        self._next_session += 1
        return self._next_session

    def _send(self, identity: bytes, frame: bytes) -> None:
        """Send one frame. The socket is ROUTER_MANDATORY: a client whose queue is full (it does
        not read) or that is gone raises instead of losing the frame silently, and is cut off;
        it must reconnect, and learns what its requests did from the state it reads."""
        try:
            self.sock.send_multipart([identity, frame], zmq.NOBLOCK)
            self.packets_sent += 1
            return
        except zmq.Again:
            log.warning("client %s is not reading its replies; cutting it off", identity.hex())
        except zmq.ZMQError as e:
            log.info("client %s is gone (%s)", identity.hex(), e)
        conn = self.connections.get(identity)
        if conn is not None:
            self._forget(conn)

    def _forget(self, conn: Connection) -> None:
        """The connection is over: its watches and pending syncs go with it (not its session)."""
        if self.connections.get(conn.identity) is conn:
            del self.connections[conn.identity]
        if self.by_session.get(conn.session_id) is conn:
            del self.by_session[conn.session_id]
        self.watches.drop(conn)
        for token in [t for t, (owner, _) in self.syncs.items() if owner is conn]:
            del self.syncs[token]

    def _refuse(self, conn: Connection, why: str) -> None:
        """An empty frame: this server cannot serve you (now); try another."""
        log.info("refusing client %s: %s", conn.identity.hex(), why)
        self._send(conn.identity, b"")
        self._forget(conn)

    def disconnect_all(self, why: str) -> None:
        """This server stopped serving (it lost its leader): every client is told with an empty
        frame, as ZooKeeper closes its connections, and reconnects elsewhere with its session."""
        if self.stale_reads:
            return
        if self.connections:
            log.info("disconnecting %d clients: %s", len(self.connections), why)
        for conn in list(self.connections.values()):
            self._send(conn.identity, b"")
            self._forget(conn)

    def _connect(self, conn: Connection, frame: bytes) -> None:
        try:
            req = decode_connect(frame)
        except RemoteError as e:
            self._refuse(conn, f"bad connect request: {e}")
            return
        tree = self.tree()
        if not self.serving() and not self.stale_reads:
            self._refuse(conn, "not serving (no quorum or still syncing)")
            return
        if req.last_zxid_seen > tree.last_zxid and not self.stale_reads:
            self._refuse(conn, f"client has seen zxid {req.last_zxid_seen:#x}, we have {tree.last_zxid:#x}")
            return
        timeout = self.negotiate(req.timeout_ms)
        if req.session_id == 0:
            conn.session_id, conn.timeout_ms, conn.connect = self.new_session_id(), timeout, req
            fwd = ForwardedRequest(
                conn.session_id, 0, OpCode.CREATE_SESSION, (), CreateSessionTxn(timeout).encode()
            )
            if not self.submit(fwd):
                self._refuse(conn, "no leader to create a session")
                return
            self.by_session[conn.session_id] = conn
            return
        if (
            not hmac.compare_digest(req.passwd, self.password(req.session_id))
            or req.session_id not in tree.sessions
        ):
            # ZooKeeper's answer to an unknown or expired session: timeout 0.
            self._send(conn.identity, ConnectResponse(0, 0, 0, bytes(PASSWORD_BYTES), False).encode())
            self.connections.pop(conn.identity, None)
            return
        conn.session_id, conn.timeout_ms = req.session_id, timeout
        self.touch(req.session_id)
        old = self.by_session.get(req.session_id)
        if old is not None and old is not conn:
            self._forget(old)
        self.by_session[req.session_id] = conn
        self._send(
            conn.identity,
            ConnectResponse(0, timeout, req.session_id, self.password(req.session_id), False).encode(),
        )

    # --- requests -------------------------------------------------------------------------

    def on_message(self, identity: bytes, frame: bytes) -> None:
        self.packets_received += 1
        conn = self.connections.get(identity)
        if conn is None:
            if len(frame) == 4 and frame.decode("ascii", "replace") in admin.COMMANDS:
                self._send(identity, self.admin_answer(frame.decode("ascii")).encode())
                return
            conn = self.connections[identity] = Connection(identity)
            self._connect(conn, frame)
            return
        if conn.session_id:
            self.touch(conn.session_id)
        try:
            req = decode_request(frame)
        except RemoteError as e:
            self._drop(conn, frame, e)
            return
        if len(conn.queue) >= limits.client_queue_max:
            self._drop(conn, frame, RemoteError(f"more than {limits.client_queue_max} requests outstanding"))
            return
        conn.requests += 1
        if req.xid == XID_PING:
            self._send(identity, encode_reply(XID_PING, self.tree().last_zxid, Code.OK))
            return
        if req.opcode == OpCode.AUTH:
            self._auth(conn, req)
            return
        pending = Pending(req, frame, time.monotonic())
        if req.opcode in SERVER_ONLY_OPS:
            # deleteContainer skips ACL checks: only the leader's container reaper may use it.
            pending.reply = encode_reply(req.xid, self.tree().last_zxid, Code.UNIMPLEMENTED)
            pending.submitted = True
        conn.queue.append(pending)
        if conn.connect is None:  # requests sent before the session exists wait for it
            if is_barrier(req) and not pending.submitted:
                self._submit(conn, pending)
            elif self.stale_reads:
                self._answer_reads(conn)  # at once, even behind the same client's write
            self.flush(conn)

    def _drop(self, conn: Connection, frame: bytes, error: KeeperError) -> None:
        """A client that sent garbage gets a Marshalling error and loses its connection."""
        xid = RequestHeader.decode(frame[:8]).xid if len(frame) >= 8 else 0
        log.warning(
            "client %s (session %#x): %s; disconnecting it", conn.identity.hex(), conn.session_id, error
        )
        self._send(conn.identity, encode_reply(xid, self.tree().last_zxid, int(error.code)))
        self._forget(conn)

    def _auth(self, conn: Connection, req: ClientRequest) -> None:
        try:
            ident = auth_identity(req.body.scheme, req.body.auth)
        except KeeperError:
            self._send(conn.identity, encode_reply(XID_AUTH, 0, Code.AUTH_FAILED))
            return
        if ident not in conn.auth_ids and len(conn.auth_ids) < limits.auth_ids_max:
            conn.auth_ids += (ident,)
        self._send(conn.identity, encode_reply(XID_AUTH, 0, Code.OK))

    def _submit(self, conn: Connection, pending: Pending) -> None:
        """Hand a write or sync to Zab as it arrives (or once its session exists), in order."""
        req = pending.req
        if req.opcode == OpCode.SYNC:
            token = next(self._sync_tokens)
            accepted = self.sync(token)
            if accepted:
                self.syncs[token] = (conn, pending)
        else:
            fwd = ForwardedRequest(conn.session_id, req.xid, req.opcode, conn.auth_ids, pending.frame[8:])
            accepted = self.submit(fwd)
        if not accepted:
            pending.reply = encode_reply(req.xid, self.tree().last_zxid, Code.CONNECTION_LOSS)
        pending.submitted = True

    def flush(self, conn: Connection) -> None:
        """Answer reads that nothing is ahead of and send finished replies, in request order."""
        while conn.queue:
            head = conn.queue[0]
            if head.reply is None and not is_barrier(head.req):
                self._answer_reads(conn)
            if head.reply is None:
                break
            conn.queue.popleft()
            self.latency_ms.append((time.monotonic() - head.received) * 1000)
            self._send(conn.identity, head.reply)
            if self.connections.get(conn.identity) is not conn:
                return  # cut off while sending

    def _answer_reads(self, conn: Connection) -> None:
        """Answer the reads at the head of the queue, natively in one batch where possible, and
        set the watches they asked for."""
        reads = []
        for pending in conn.queue:
            if is_barrier(pending.req):
                if self.stale_reads:
                    continue  # the debug switch: reads do not wait for this client's writes
                break
            if pending.reply is None or not self.stale_reads:
                reads.append(pending)
        tree = self.tree()
        native = [p for p in reads if p.req.opcode in NATIVE_READS]
        for first in range(0, len(native) if tree.index is not None else 0, limits.read_batch_max):
            chunk = native[first : first + limits.read_batch_max]
            batch = b"".join(FRAME.pack(len(p.frame)) + p.frame for p in chunk)
            assert tree.index is not None
            replies, status = tree.index.read_batch(batch, tree.last_zxid)
            pos = 0
            for p, st in zip(chunk, status, strict=True):
                if st == 2:
                    continue
                (n,) = FRAME.unpack_from(replies, pos)
                p.reply = replies[pos + 4 : pos + 4 + n]
                pos += 4 + n
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
            if any(path_problem(p) for p in paths):
                return Code.BAD_ARGUMENTS, None
            tree = self.tree()
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

    def _notify(self, fired: Iterable[Fired], zxid: int) -> None:
        """Send each notification to its connection, if that is still here."""
        for f in fired:
            conn = f.watcher
            assert isinstance(conn, Connection)
            if self.connections.get(conn.identity) is conn:
                event = WatcherEvent(f.event, STATE_SYNC_CONNECTED, f.path)
                self._send(conn.identity, encode_reply(XID_NOTIFICATION, zxid, Code.OK, event))

    # --- txns applied, syncs answered -------------------------------------------------------

    def on_applied(self, header: TxnHeader, result: ApplyResult) -> None:
        """Notify the watchers of what the txn changed, then reply to the local client whose
        write it was, if that client is connected here."""
        if result.events:
            self._notify(self.watches.trigger(result.events), header.zxid)
        if self.syncs:
            self._answer_syncs()
        conn = self.by_session.get(header.client_id)
        if conn is None:
            return
        if conn.connect is not None and header.type == OpCode.CREATE_SESSION:
            conn.connect = None
            session, timeout = conn.session_id, conn.timeout_ms
            self._send(
                conn.identity, ConnectResponse(0, timeout, session, self.password(session), False).encode()
            )
            for pending in conn.queue:
                if is_barrier(pending.req) and not pending.submitted:
                    self._submit(conn, pending)
            self.flush(conn)
            return
        for pending in conn.queue:
            if pending.submitted and pending.reply is None and pending.req.xid == header.cxid:
                err, body = write_reply_body(pending.req.opcode, result)
                pending.reply = encode_reply(pending.req.xid, header.zxid, err, body)
                break
        if header.type == OpCode.CLOSE_SESSION:
            self.flush(conn)
            self._forget(conn)
            return
        self.flush(conn)

    def on_synced(self, token: int, zxid: int) -> None:
        """Zab's answer to a sync: reply once this server has applied through `zxid`."""
        entry = self.syncs.get(token)
        if entry is not None:
            entry[1].sync_zxid = zxid
            self._answer_syncs()

    def _answer_syncs(self) -> None:
        tree = self.tree()
        for token, (conn, pending) in list(self.syncs.items()):
            if 0 <= pending.sync_zxid <= tree.last_zxid:
                del self.syncs[token]
                # SyncResponse has PathRequest's layout: the path, echoed.
                body = PathRequest(pending.req.body.path)
                pending.reply = encode_reply(pending.req.xid, tree.last_zxid, Code.OK, body)
                self.flush(conn)

    def outstanding(self) -> int:
        return sum(len(c.queue) for c in self.connections.values())
