"""Server: one whole zkpy server as a sans-I/O state machine: Zab's replica, the tree, prep, the
session tracker, the container reaper and the client table.

Inputs: step (a peer message), receive/close (a client connection's frames), tick (the clock),
persisted (storage synced through a zxid), snapshot_done. Outputs: one ServerReady at a time,
acted on in field order and then handed back through advance(), as zab.Ready is.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import ClassVar

from zkcore import limits
from zkcore._datatree import DataTree, ReadIndex
from zkcore._errors import CODE_OK, Code, KeeperError, LocalError, RemoteError
from zkcore._jute import Reader, Writer
from zkcore._prep import Prep, Request
from zkcore._records import (
    SET_DATA_OPCODE,
    CreateSessionTxn,
    Id,
    OpCode,
    PathRequest,
    SetDataTxn,
    Txn,
    TxnHeader,
    encode_set_data_txn,
)
from zkcore._requests import ForwardedRequest, forwarded_body
from zkcore._restore import REPLAY_CREATE, REPLAY_DELETE, REPLAY_SET_DATA, TxnColumns, decode_txns
from zkcore._sessions import SessionTracker
from zkcore._snapshot import snapshot_bytes, tree_from_snapshot
from zkcore._storage import LogEntry, Storage
from zkcore.server._clients import ClientTable, ConnId
from zkcore.server._stats import ConnectionStats, ServerStats
from zkcore.zab import (
    Config,
    Message,
    Phase,
    Ready,
    Replica,
    Rng,
    Role,
    RoleChange,
    Snapshot,
    zxid_epoch,
)

SESSION_SECRET_DEFAULT = b"zkpy-session-secret"
# The txn kinds DataTree.replay applies inline, which change nothing but the tree.
UNSEEN_KINDS = frozenset((REPLAY_CREATE, REPLAY_DELETE, REPLAY_SET_DATA))
CLIENT_ID = struct.Struct(">q")  # a txn's first field: the session whose write it is
# The key a leader's own client's write goes to Zab under: 9 bytes, which no ForwardedRequest
# (24 bytes at least) can be.
_LOCAL_KEY = struct.Struct(">xQ")
# A write's txn holds its request's body, a TxnHeader (32 bytes), and per create at most 11 bytes
# more: its ephemeral flag and parentCVersion where the request had flags, and a sequential
# node's 10-digit suffix. Past this the txn could outgrow a frame.
TXN_GROWTH_MAX = 32 + 11 * limits.multi_ops_max
_WRITE_BODY_BYTES_MAX = limits.frame_bytes_max - TXN_GROWTH_MAX
# Looked at for every write, as ints (see CODE_OK).
_LEADING, _BROADCAST = int(Role.LEADING), int(Phase.BROADCAST)


# How often a server looks for connections whose requests went unanswered (drop_unanswered):
# a pass over every connection.
UNANSWERED_CHECK_MS = 1000


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """What a server needs to know beyond Zab's Config; times in milliseconds."""

    zab: Config
    tick_ms: int = 50
    session_timeout_min_ms: int = 4000
    session_timeout_max_ms: int = 40000
    data_bytes_max: int = limits.data_bytes_max
    snap_count: int = 100_000
    # A snapshot also once the txns since the last one hold this many KiB (0: never), so that
    # big znodes cannot grow the log without bound: Zab keeps the log since the snapshot before
    # last in memory, for syncs. ZooKeeper's snapSizeLimitInKb, whose default is 4 GiB.
    snap_size_limit_kb: int = 256 * 1024
    container_check_ms: int = 60_000
    secret: bytes = SESSION_SECRET_DEFAULT
    bulk_replay_txns_min: int = 1000
    # Committed batches this long or longer of txns no one here sees go through one decode and
    # DataTree.replay; shorter ones through apply(), which costs less for a few (one txn:
    # ~9 us applied against ~23 us decoded and replayed; even at four).
    unseen_bulk_txns_min: int = 4
    # Bytes of ephemeral paths a closeSession txn lists; past it, none (see Prep's close).
    close_session_listed_bytes_max: int = limits.close_session_listed_bytes_max

    def __post_init__(self) -> None:
        if not isinstance(self.zab, Config):
            raise LocalError(f"zab must be a zab Config: {type(self.zab).__name__}")
        if self.tick_ms < 1:
            raise LocalError(f"tick_ms must be positive: {self.tick_ms}")
        if not 0 < self.session_timeout_min_ms <= self.session_timeout_max_ms:
            raise LocalError(
                "session timeouts must satisfy 0 < min <= max: "
                f"{self.session_timeout_min_ms}, {self.session_timeout_max_ms}"
            )
        if self.snap_count < 1:
            raise LocalError(f"snap_count must be positive: {self.snap_count}")
        if self.snap_size_limit_kb < 0:
            raise LocalError(
                f"snap_size_limit_kb must be 0 (no limit) or positive: {self.snap_size_limit_kb}"
            )
        if self.unseen_bulk_txns_min < 1:
            raise LocalError(f"unseen_bulk_txns_min must be positive: {self.unseen_bulk_txns_min}")
        if not 0 <= self.close_session_listed_bytes_max <= limits.frame_bytes_max // 2:
            raise LocalError(
                f"close_session_listed_bytes_max must be in [0, {limits.frame_bytes_max // 2}]: "
                f"{self.close_session_listed_bytes_max}"
            )


@dataclass(frozen=True, slots=True)
class Hooks:
    """The shell's faster ways (native code) to build trees; each optional, same results."""

    load_tree: Callable[[bytes], DataTree] = tree_from_snapshot  # may come with its read index
    replay: Callable[[DataTree, Sequence[LogEntry]], None] | None = None
    new_index: Callable[[], ReadIndex] | None = None
    decode_txns: Callable[[Sequence[bytes]], TxnColumns] = decode_txns
    # True: the shell makes a SNAP's image of the tree off the loop (ServerReady.snap_image_due,
    # then snap_image()), so that a leader keeps serving while it is made; False: the server
    # makes it in the loop, which stops the leader for as long as that takes.
    snap_images: bool = False


@dataclass(slots=True)  # not frozen, as prep's Request: one is made per write
class PreppedSetData:
    """A setData the leader prepped for a client of its own, as apply() takes it: the txn's
    header and body without their records (one of each per write)."""

    client_id: int
    cxid: int
    time: int
    path: str
    data: bytes
    version: int


@dataclass(slots=True)  # not frozen: a frozen one costs 3 µs more to make, each loop turn
class ServerReady:
    """What to do, in field order, then call advance(ready):

    1. snapshot: a leader's SNAP; write it as the newest snapshot and replace the log with
       `entries`, atomically and durably (the tree already is the snapshot's).
    2. truncate_zxid: drop every logged entry above it, durably.
    3. accepted_epoch, current_epoch: write durably before sending anything.
    4. entries: append to the log; sync when convenient and report persisted(zxid). Without a
       snapshot they may be appended after the messages are sent: no message claims them logged
       (Zab acks only what persisted() reported).
    5. messages: send each to message.target.
    6. sends: to each client connection in order: a frame, or None for "drop this client"
       (ZeroMQ: an empty frame; TCP: close the socket), or Framed replies already
       length-prefixed (only to connections that gave receive_stream their bytes). Then `closed`: connections the server
       forgot after their last send (ZeroMQ: nothing to do; TCP: close the socket).
    7. admin: four-letter words to answer (from stats()), on connections that sent nothing else.
    8. snapshot_due: write a snapshot of the tree (zkcore.snapshot_chunks) through this zxid, then
       report snapshot_done.
    9. snap_image_due (with Hooks.snap_images): make the tree's image through this zxid, as
       zkcore.snapshot_chunks writes it, without stopping (a forked child: the tree as it is now, before
       anything else changes it), then report snap_image().
    10. roles, notes: for logs and monitoring.
    The txns committed in this ready are applied by advance(), after the shell sent the messages:
    their replies and watch events come with the next ready().
    """

    snapshot: Snapshot | None
    truncate_zxid: int | None
    accepted_epoch: int | None
    current_epoch: int | None
    entries: tuple[LogEntry, ...]
    messages: tuple[Message, ...]
    sends: tuple[tuple[ConnId, bytes | None], ...]
    closed: tuple[ConnId, ...]
    admin: tuple[tuple[ConnId, str], ...]
    snapshot_due: int | None
    snap_image_due: int | None
    roles: tuple[RoleChange, ...]
    notes: tuple[str, ...]
    zab: Ready | None = field(default=None, repr=False)


class Server:
    """One server. `tree` is its state from its newest snapshot (replay of the log after it is
    Zab's job: it hands those txns out as they are known committed). Subclasses may swap the
    classes below (tests inject faults that way, never production)."""

    replica_class: ClassVar[type[Replica]] = Replica
    client_table_class: ClassVar[type[ClientTable]] = ClientTable

    def __init__(
        self,
        config: ServerConfig,
        server_id: int,
        *,
        rng: Rng,
        storage: Storage,
        tree: DataTree,
        now_ms: float,
        wall_ms: int,
        accepted_epoch: int = 0,
        current_epoch: int = 0,
        hooks: Hooks | None = None,
    ) -> None:
        if not isinstance(config, ServerConfig):
            raise LocalError(f"config must be a ServerConfig: {type(config).__name__}")
        if not isinstance(tree, DataTree):
            raise LocalError(f"tree must be a DataTree: {type(tree).__name__}")
        self.config = config
        self.server_id = server_id
        self.hooks = hooks or Hooks()
        self.now_ms = now_ms
        self.wall_ms = wall_ms
        self._tick_base_ms = now_ms
        self._unanswered_check_ms = now_ms + UNANSWERED_CHECK_MS
        self._tree = tree
        self.snapshot_zxid = tree.last_zxid
        self.snapshot_pending = False
        self.txns_since_snapshot = 0
        self.txn_bytes_since_snapshot = 0
        # A SNAP's image of the tree made off the loop (Hooks.snap_images): wanted, being made.
        self._image_due = False
        self._image_making = False
        self.prep = self._new_prep(tree)
        self.prep_epoch = -1
        # The leader's own clients' writes, kept decoded from the client table to prep under
        # keys of their own, and prep's txns until they are applied, so that neither is encoded
        # or decoded again on its way (by key, by zxid).
        self._local: dict[bytes, Request] = {}
        self._local_keys = itertools.count()
        self._prepped: dict[int, Txn | PreppedSetData] = {}
        self.lead_from = 0
        self.role = RoleChange(Role.LOOKING, Phase.ELECTION, -1, 0, "started")
        self.sessions = SessionTracker(config.tick_ms)  # the leader's: who expires when
        self.touched: dict[int, None] = {}  # a learner's: sessions heard from since its last report
        self.containers_checked_ms = wall_ms
        self._notes: list[str] = []
        self.clients = self.client_table_class(
            self,
            server_id,
            (config.session_timeout_min_ms, config.session_timeout_max_ms),
            config.secret,
            wall_ms,
        )
        self.replica = self.replica_class(
            config.zab,
            server_id,
            rng=rng,
            storage=storage,
            snapshots=self,
            accepted_epoch=accepted_epoch,
            current_epoch=current_epoch,
            zxid_snapshot=tree.last_zxid,
            prepare=self._prepare,
        )

    # --- state --------------------------------------------------------------------------------

    @property
    def tree(self) -> DataTree:
        return self._tree

    def serving(self) -> bool:
        return self.role.phase == _BROADCAST and self.replica.broadcasting()

    def leading(self) -> bool:
        return self.role.role == _LEADING and self.serving()

    def snapshot(self) -> Snapshot | None:
        """Zab's SnapshotSource: the tree, for a SNAP to a learner far behind. Made here and
        now, or (Hooks.snap_images) asked of the shell, and None until it reports snap_image."""
        if not self.hooks.snap_images:
            return Snapshot(self._tree.last_zxid, snapshot_bytes(self._tree))
        if not self._image_making:
            self._image_due = True
        return None

    def note(self, text: str) -> None:
        if len(self._notes) < limits.server_notes_max:
            self._notes.append(text)

    # --- inputs -------------------------------------------------------------------------------

    def step(self, message: Message) -> None:
        """A message from a peer."""
        self.replica.step(message)
        self._check_serving()

    def step_many(self, messages: Sequence[Message]) -> None:
        """step() of each message (what one poll brought from the peers): a leader takes a
        learner's run of forwarded writes together (Replica.step_many). Zab is asked once after
        them whether it left broadcast: leaving and coming back takes a round trip to a new
        leader, so messages that were already waiting cannot hide a departure."""
        self.replica.step_many(messages)
        self._check_serving()

    def _check_serving(self) -> None:
        """Zab just left broadcast (its role change reaches ready() later): no client may be
        answered from here on, so every one is told to go now."""
        if (
            self.role.phase == Phase.BROADCAST
            and self.clients.connections
            and not self.replica.broadcasting()
        ):
            self.on_serving_lost()

    def receive(self, conn: ConnId, frame: bytes, address: str | None = None) -> None:
        """A frame from a client connection (the first one is its connect). `address`, the
        client's IP address where the shell knows it, is looked at with the first frame only:
        the connection holds the identity ip:<address> (ACLs of the ip scheme, whoAmI)."""
        self.clients.receive(conn, frame, address)

    def receive_frames(self, conn: ConnId, frames: list[bytes], address: str | None = None) -> int:
        """Frames from one client connection, in the order it sent them: how many of the first
        were taken (a run of reads answered in one batch, a run of writes, or one frame); give
        it the rest next. `address` as for receive()."""
        return self.clients.receive_frames(conn, frames, address)

    def has_room(self, conn: ConnId) -> bool:
        """Whether a client connection may send another request now (ClientTable.has_room)."""
        return self.clients.has_room(conn)

    def receive_stream(self, conn: ConnId, data: bytes | bytearray) -> tuple[int, bytes]:
        """The bytes of a stream connection (ZooKeeper's TCP framing: length-prefixed frames),
        as many as have arrived: how many bytes of the first frames were taken (a run of plain
        reads, answered in one native batch), and their replies, length-prefixed, for the
        caller to send at once (b"" when none, or when they wait in ready()'s sends behind
        others). Give the rest to receive_frames."""
        return self.clients.receive_stream(conn, data)

    def close(self, conn: ConnId) -> None:
        """A client connection is gone (or its transport gave up on it)."""
        self.clients.close(conn)

    def tick(self, now_ms: float, wall_ms: int) -> None:
        """The clock: `now_ms` never goes back (a monotonic clock), `wall_ms` is the time of day
        stamped into txns. Call it before stepping each batch of inputs: a process that was
        stopped learns how long at once, before it answers anyone."""
        self.now_ms, self.wall_ms = now_ms, wall_ms
        if now_ms < self._tick_base_ms:
            self._tick_base_ms = now_ms
        ticks = int((now_ms - self._tick_base_ms) // self.config.tick_ms)
        if ticks > 0:
            self._tick_base_ms += ticks * self.config.tick_ms
            self.elapse(ticks)

    def elapse(self, ticks: int) -> None:
        """`ticks` whole ticks passed: Zab first (a leader that lost its quorum meanwhile steps
        down now), then session expiry and container reaping on the leader; once a second,
        the connections whose requests went unanswered far too long (drop_unanswered)."""
        self.replica.tick(ticks)
        self._check_serving()
        if self.now_ms >= self._unanswered_check_ms:
            self._unanswered_check_ms = self.now_ms + UNANSWERED_CHECK_MS
            for note in self.clients.drop_unanswered(self.now_ms):
                self.note(note)
        if self.leading():
            ticks_max = -(-self.config.session_timeout_max_ms // self.config.tick_ms) + 1
            for _ in range(min(ticks, ticks_max)):
                for session_id in self.sessions.tick():
                    self.note(f"session {session_id:#x} expired")
                    self.submit(session_id, 0, OpCode.CLOSE_SESSION, (), b"")
            self._reap_containers()
        else:
            self._report_sessions()

    def peer_lost(self, server_id: int) -> None:
        """The connection to a peer closed (see Replica.peer_lost)."""
        self.replica.peer_lost(server_id)
        self._check_serving()

    def persisted(self, zxid: int) -> None:
        """Storage is durable through `zxid` (what Storage.fsync() returned)."""
        self.replica.persisted(zxid)

    def snapshot_done(self, zxid: int, ok: bool) -> None:
        """The snapshot asked for by snapshot_due was written (ok) or failed."""
        if not self.snapshot_pending:
            raise LocalError(f"snapshot_done({zxid:#x}) without a snapshot due")
        self.snapshot_pending = False
        if not ok:
            self.note(f"snapshot at {zxid:#x} failed; the log still has every txn")
            return
        previous, self.snapshot_zxid = self.snapshot_zxid, zxid
        try:
            self.replica.compact(previous)
        except LocalError:
            pass  # the previous snapshot is older than what Zab still holds

    def snap_image(self, zxid: int, payload: bytes | None) -> None:
        """The image asked for by snap_image_due, or None if it could not be made (the learners
        waiting for it register again, and ask for another)."""
        if not self._image_making:
            raise LocalError(f"snap_image({zxid:#x}) without an image due")
        self._image_making = False
        if payload is None:
            self.note(f"the image of the tree at {zxid:#x} for a SNAP could not be made")
            self.replica.snapshot_failed()
            self._check_serving()
            return
        self.replica.snapshot_ready(Snapshot(zxid, payload))
        self._check_serving()

    # --- the Host side of the client table ----------------------------------------------------

    def submit(
        self, session_id: int, xid: int, opcode: int, auth_ids: tuple[Id, ...], body: bytes,
        decoded: object = None,
    ) -> int:  # fmt: skip
        """A client write, `body` its request's bytes after the header (and `decoded` the same
        decoded, if the caller has it), to Zab: the leader preps it. Code.OK, or why it cannot go
        now (see submit_run)."""
        return self.submit_run(session_id, auth_ids, ((xid, opcode, body, decoded),))[0]

    def submit_run(
        self, session_id: int, auth_ids: tuple[Id, ...], writes: Sequence[tuple[int, int, bytes, object]]
    ) -> list[int]:
        """submit() of each write (xid, opcode, body, decoded) of one session, in order: their
        codes. They go to Zab together (a leader stamps and preps them in one pass) up to one
        that cannot go: one that could outgrow a frame (BadArguments), or one Zab does not take
        (ThrottledOp: not executed, safe to retry); the rest go on from there."""
        codes: list[int] = []
        while len(codes) < len(writes):
            if not self.serving():
                codes += [Code.CONNECTION_LOSS] * (len(writes) - len(codes))
                break
            payloads, too_big = self._payloads(session_id, auth_ids, writes, len(codes))
            went = self.replica.propose_many(payloads) if payloads else 0
            codes += [CODE_OK] * went
            if went < len(payloads):  # the leader's backlog is full, or there is no leader now
                for key in payloads[went:]:
                    self._local.pop(key, None)
                codes.append(Code.THROTTLED_OP)
            elif too_big:
                codes.append(self._too_big(session_id, too_big))
        return codes

    def _payloads(
        self, session_id: int, auth_ids: tuple[Id, ...], writes: Sequence[tuple[int, int, bytes, object]],
        start: int,
    ) -> tuple[list[bytes], int]:  # fmt: skip
        """Zab's payloads of writes[start:] up to the first that could outgrow a frame, and that
        one's size (0: none did). A leader's own client's write goes under a short key of its
        own, never encoded, while _local has room: Zab only hands the key back to _prepare (so
        counts a few bytes of it against its backlog; the client table bounds what such writes
        hold). Any other goes as a ForwardedRequest."""
        local = self._local
        leading = self.role.role == _LEADING
        payloads: list[bytes] = []
        for i in range(start, len(writes)):
            xid, opcode, body, decoded = writes[i]
            if len(body) > _WRITE_BODY_BYTES_MAX:
                return payloads, len(body)
            if leading and decoded is not None and len(local) < limits.client_queue_max:
                key = _LOCAL_KEY.pack(next(self._local_keys))
                local[key] = Request(session_id, xid, opcode, decoded, auth_ids, body)
                payloads.append(key)
                continue
            forwarded = ForwardedRequest(session_id, xid, opcode, auth_ids, body).encode()
            if len(forwarded) > limits.frame_bytes_max:  # its identities made it too long
                return payloads, len(forwarded)
            payloads.append(forwarded)
        return payloads, 0

    def _too_big(self, session_id: int, size: int) -> int:
        """A write whose txn (or its way to the leader) could outgrow a frame, which no peer
        takes: refused here, or proposing it would stop the server that tried."""
        self.note(
            f"refused a write of {size} bytes from session {session_id:#x}: its txn could outgrow "
            f"a frame of {limits.frame_bytes_max} bytes"
        )
        return Code.BAD_ARGUMENTS

    def sync(self, token: int) -> bool:
        return self.serving() and self.replica.sync(token)

    def touch(self, session_id: int) -> None:
        """A client of this server was heard from: the leader notes it, a learner reports it."""
        if self.role.role == _LEADING:
            self.sessions.touch(session_id)
        elif len(self.touched) < limits.sessions_max:
            self.touched[session_id] = None

    # --- prep (the leader's stage, called by Zab with the zxid it stamps) ----------------------

    def _prepare(self, zxid: int, payload: bytes) -> bytes | None:
        """The txn for a client write at `zxid`; None for a learner's session report (or a
        malformed request), which makes no txn."""
        request = self._local.pop(payload, None) if self._local else None
        if request is None:
            request = self._forwarded(payload)
            if request is None:
                return None
        if zxid_epoch(zxid) != self.prep_epoch:
            self.prep_epoch = zxid_epoch(zxid)
            self.lead_from = self._tree.last_zxid
            self.prep = self._new_prep(self._tree)
        if request.opcode == SET_DATA_OPCODE and request.raw:
            encoded = self._prepare_set_data(request, zxid)
            if encoded is not None:
                return encoded
        txn, error = self.prep.prep(request, zxid, self.wall_ms)
        if error is not None:
            # Its traceback holds prep's frames, and they the request (up to a megabyte): a cycle
            # only the collector would free, long after the request is answered.
            error.__traceback__ = None
        self._prepped[zxid] = txn
        return txn.encode()

    def _prepare_set_data(self, request: Request, zxid: int) -> bytes | None:
        """A setData's txn, the most common write, without building a Txn: what apply() needs
        of it is kept as a PreppedSetData. None when prep refuses it (nothing recorded: prep()
        makes its error txn)."""
        body, time = request.body, self.wall_ms
        try:
            version = self.prep.set_data(
                request.session_id, body.path, body.data, body.version, request.auth_ids, zxid
            )
        except KeeperError:
            return None
        self._prepped[zxid] = PreppedSetData(
            request.session_id, request.cxid, time, body.path, body.data, version
        )
        encoded = encode_set_data_txn(request.session_id, request.cxid, zxid, time, request.raw, version)
        if encoded is None:  # a null path or data buffer: the txn writes it empty
            header = TxnHeader(request.session_id, request.cxid, zxid, time, SET_DATA_OPCODE)
            encoded = Txn(header, SetDataTxn(body.path, body.data, version)).encode()
        return encoded

    def _forwarded(self, payload: bytes) -> Request | None:
        """A learner's forwarded write, decoded; None for its session report (taken here) or
        for what does not decode."""
        try:
            fwd = ForwardedRequest.decode(payload)
        except RemoteError as e:
            self.note(f"dropping a malformed forwarded request: {e}")
            return None
        if fwd.opcode == OpCode.PING:
            self._on_session_report(fwd.body)
            return None
        try:
            body = forwarded_body(fwd)
        except RemoteError as e:
            self.note(f"dropping a malformed write from session {fwd.session_id:#x}: {e}")
            return None
        return Request(fwd.session_id, fwd.xid, fwd.opcode, body, tuple(fwd.auth_ids), fwd.body)

    # --- sessions and containers --------------------------------------------------------------

    def _report_sessions(self) -> None:
        """A learner tells its leader, once a tick, which sessions it heard from."""
        if not self.touched or not self.serving():
            return
        w = Writer()
        w.int(len(self.touched))
        for session_id in self.touched:
            w.long(session_id)
        self.touched.clear()
        self.replica.propose(ForwardedRequest(0, 0, OpCode.PING, (), w.bytes()).encode())

    def _on_session_report(self, body: bytes) -> None:
        try:
            r = Reader(body)
            sessions = [r.long() for _ in range(r.vector_length())]
            r.expect_end("session report")
        except RemoteError as e:
            self.note(f"dropping a malformed session report: {e}")
            return
        for session_id in sessions:
            self.sessions.touch(session_id)

    def _reap_containers(self) -> None:
        """ZooKeeper's ContainerManager: delete empty containers that once had children and TTL
        nodes idle past their TTL, through Zab like any write (prep checks again)."""
        now_ms = self.wall_ms
        if now_ms - self.containers_checked_ms < self.config.container_check_ms:
            return
        self.containers_checked_ms = now_ms
        for path in self._tree.expired_candidates(now_ms):
            self.submit(0, 0, OpCode.DELETE_CONTAINER, (), PathRequest(path).encode())

    def _track_every_session(self) -> None:
        """Expiry starts afresh from the tree's sessions, each with a full timeout from now."""
        self.sessions = SessionTracker(self.config.tick_ms)
        for session_id, timeout_ms in self._tree.sessions.items():
            self.sessions.add(session_id, timeout_ms)

    # --- outputs ------------------------------------------------------------------------------

    def has_ready(self) -> bool:
        clients = self.clients
        return bool(
            self.replica.has_ready()
            or clients.sends
            or clients.closed
            or clients.admin
            or self._notes
            or (self._snapshot_wanted() and not self.snapshot_pending)
            or self._image_due
        )

    def ready(self) -> ServerReady:
        clients = self.clients
        zab = self.replica.ready() if self.replica.has_ready() else None
        if zab is not None and zab.snapshot is not None:
            self._install(zab.snapshot)
        snapshot_due = None
        if self._snapshot_wanted() and not self.snapshot_pending:
            self.snapshot_pending = True
            self.txns_since_snapshot = self.txn_bytes_since_snapshot = 0
            snapshot_due = self._tree.last_zxid  # applied txns are committed, so logged already
        image_due = None
        if self._image_due:
            self._image_due, self._image_making = False, True
            image_due = self._tree.last_zxid
        notes, self._notes = tuple(self._notes), []
        return ServerReady(
            snapshot=zab.snapshot if zab else None,
            truncate_zxid=zab.truncate_zxid if zab else None,
            accepted_epoch=zab.accepted_epoch if zab else None,
            current_epoch=zab.current_epoch if zab else None,
            entries=zab.entries if zab else (),
            messages=zab.messages if zab else (),
            sends=clients.take_sends() if clients.sends else (),  # (most turns, most of these are
            closed=clients.take_closed() if clients.closed else (),  # empty: no call for them)
            admin=clients.take_admin() if clients.admin else (),
            snapshot_due=snapshot_due,
            snap_image_due=image_due,
            roles=zab.roles if zab else (),
            notes=notes,
            zab=zab,
        )

    def advance(self, ready: ServerReady) -> None:
        """The shell acted on `ready`: now the txns Zab committed in it are applied (what that
        says to clients comes with the next ready())."""
        if not isinstance(ready, ServerReady):
            raise LocalError(f"advance takes the ServerReady from ready(): {type(ready).__name__}")
        zab = ready.zab
        if zab is None:
            return
        self.replica.advance(zab)
        # Zab's outputs are acted on only now, after the shell sent its messages: a leader's
        # COMMITs go out before it applies the txns they commit (followers apply meanwhile),
        # and what applying says to clients goes out with the next ready().
        self.apply_committed(zab)
        if zab.committed:
            self.replica.applied(zab.committed[-1][0])
        for token, zxid in zab.synced:
            self.clients.on_synced(token, zxid)
        for payload in zab.refused:
            self._on_refused(payload)
        for change in zab.roles:
            self._on_role(change)

    def _snapshot_wanted(self) -> bool:
        limit_kb = self.config.snap_size_limit_kb
        return self.txns_since_snapshot >= self.config.snap_count or (
            limit_kb > 0 and self.txn_bytes_since_snapshot >= limit_kb * 1024
        )

    # --- applying -----------------------------------------------------------------------------

    def apply_committed(self, ready: Ready) -> None:
        """Apply the txns Zab says are committed, in order: in bulk while no client is here to
        see replies or events (a restart, a far-behind catch-up), else one by one."""
        committed = ready.committed
        if not committed:
            return
        replay = self.hooks.replay
        if (
            replay is not None
            and len(committed) >= self.config.bulk_replay_txns_min
            and not self.clients.connections
        ):
            replay(self._tree, committed)
            self._prepped.clear()
            self._batch_applied(committed)
            self._track_every_session()
            self.note(f"replayed {len(committed)} committed txns in bulk")
            return
        local, client_id_at = self.clients.by_session, CLIENT_ID.unpack_from
        if (
            len(committed) < self.config.unseen_bulk_txns_min
            or self.clients.watches.watchers()
            or all(  # each txn's events, or its reply, are wanted
                len(payload) >= 8 and client_id_at(payload)[0] in local for _, payload in committed
            )
        ):
            self._apply_each(committed)
        else:
            self._apply_unwatched(committed)
        self._batch_applied(committed)

    def _batch_applied(self, committed: Sequence[LogEntry]) -> None:
        """What follows a batch of committed txns, however they were applied, once for the lot:
        prep forgets the changes it had in flight, and the txns count towards the next snapshot."""
        self.prep.applied(committed[-1][0])
        self.txns_since_snapshot += len(committed)
        self.txn_bytes_since_snapshot += sum(map(len, map(itemgetter(1), committed)))

    def _apply_unwatched(self, committed: Sequence[LogEntry]) -> None:
        """apply() while no watch is set on this server: a create, delete or setData of a session
        connected elsewhere then has no one here to tell, so runs of them go through
        DataTree.replay after one decode of the lot (the shell's native one); the rest, and any
        txn that is not what its log entry says, one by one through apply(). Answering a client
        (a write's reply, a sync) lets the reads queued behind it run, and one may set a watch:
        from then on every txn goes through apply()."""
        txns = self.hooks.decode_txns([payload for _, payload in committed])
        local, watches, quiet, start = self.clients.by_session, self.clients.watches, UNSEEN_KINDS, 0
        for i, (zxid, kind, client_id, stamped) in enumerate(
            zip(map(itemgetter(0), committed), txns.kinds, txns.client_ids, txns.zxids, strict=True)
        ):
            if kind in quiet and client_id not in local and stamped == zxid:
                continue
            if start < i:
                self._replay_unseen(txns, committed, start, i)  # may answer a sync
                start = i
            if watches.watchers():
                break
            self.apply(zxid, committed[i][1])  # may answer its client
            start = i + 1
            if watches.watchers():
                break
        else:
            if start < len(committed):
                self._replay_unseen(txns, committed, start, len(committed))
            return
        self._apply_each(committed[start:])  # a watch is set now: every txn's events count

    def _replay_unseen(self, txns: TxnColumns, committed: Sequence[LogEntry], lo: int, hi: int) -> None:
        """What apply() does for txns lo..hi-1, which nobody here sees: no results, no events."""
        self._tree.replay(txns.rows(lo, hi))
        if self._prepped:
            for zxid, _ in committed[lo:hi]:
                self._prepped.pop(zxid, None)
        self.clients.answer_due_syncs()

    def _apply_each(self, committed: Sequence[LogEntry]) -> None:
        """apply() of each txn, in order, in one pass: a group commit of a leader's own
        clients' setData (the most common write) costs no call a txn to get to the tree. While
        no watch is set on this server, a setData that changed its node is answered from the
        Stat the tree gives back, a run of them together: what waits behind them (a read may
        set a watch) is answered once the run is applied."""
        prepped, tree, clients = self._prepped, self._tree, self.clients
        watches = clients.watches
        answered: list[tuple[int, int, int, str, bytes]] = []  # replied to together
        for zxid, payload in committed:
            txn = prepped.pop(zxid, None) if prepped else None
            if type(txn) is PreppedSetData and not watches.watchers():
                stat = tree.set_data_stat(zxid, txn.time, txn.path, txn.data, txn.version)
                if stat is not None:
                    answered.append((txn.client_id, txn.cxid, zxid, txn.path, stat))
                    continue
            if answered:  # their replies go before anything else this txn may send
                clients.on_set_data_applied(answered)
                answered = []
            self._apply_txn(zxid, payload, txn)
        if answered:
            clients.on_set_data_applied(answered)

    def apply(self, zxid: int, payload: bytes) -> None:
        self._apply_each(((zxid, payload),))

    def _apply_txn(self, zxid: int, payload: bytes, txn: Txn | PreppedSetData | None) -> None:
        """apply() of one txn, `txn` what prep kept of it (None: decoded from the payload)."""
        if isinstance(txn, PreppedSetData):
            result = self._tree.apply_set_data(zxid, txn.time, txn.path, txn.data, txn.version)
            self.clients.on_applied(txn.client_id, txn.cxid, SET_DATA_OPCODE, zxid, result)
            return
        if txn is None:
            txn = Txn.decode(payload)
        assert txn.zxid == zxid, f"log entry {zxid:#x} holds a txn stamped {txn.zxid:#x}"
        result = self._tree.apply(txn, deleted_acls=bool(self.clients.watches.watchers()))
        header = txn.header
        if header.type == OpCode.CREATE_SESSION and isinstance(txn.body, CreateSessionTxn):
            if header.client_id in self.sessions or len(self.sessions) < limits.sessions_max:
                self.sessions.add(header.client_id, txn.body.timeout_ms)
        elif header.type == OpCode.CLOSE_SESSION:
            self.sessions.remove(header.client_id)
        self.clients.on_applied(header.client_id, header.cxid, header.type, zxid, result)

    def _new_prep(self, tree: DataTree) -> Prep:
        return Prep(tree, self.config.data_bytes_max, self.config.close_session_listed_bytes_max)

    def _install(self, snapshot: Snapshot) -> None:
        """A leader's SNAP: the tree becomes the snapshot's."""
        tree = self.hooks.load_tree(snapshot.payload)
        if self.serving() and tree.index is None and self.hooks.new_index is not None:
            tree.attach_index(self.hooks.new_index())
        self._tree = tree
        self.prep = self._new_prep(tree)
        self._prepped.clear()
        self.snapshot_zxid, self.txns_since_snapshot, self.txn_bytes_since_snapshot = snapshot.zxid, 0, 0
        self.note(f"installed a snapshot at {snapshot.zxid:#x} from the leader ({len(tree)} znodes)")

    def _on_refused(self, payload: bytes) -> None:
        try:
            fwd = ForwardedRequest.decode(payload)
        except RemoteError:
            return
        self.clients.on_refused(fwd, Code.THROTTLED_OP)

    def _on_role(self, change: RoleChange) -> None:
        self.note(
            f"role {change.role.name} phase {change.phase.name} leader {change.leader} "
            f"epoch {change.epoch}: {change.reason}"
        )
        was_serving = self.serving()
        if change.role != Role.LEADING:
            self.prep_epoch = -1
            self._local.clear()
            self._prepped.clear()
        self.role = change
        if change.role == Role.LEADING and change.phase == Phase.BROADCAST:
            self._track_every_session()  # a new leader gives every session a full timeout
        if was_serving and not self.serving():
            self.on_serving_lost()
        if change.phase == Phase.BROADCAST and self._tree.index is None and self.hooks.new_index is not None:
            self._tree.attach_index(self.hooks.new_index())

    def on_serving_lost(self) -> None:
        """Every client is told to go, as ZooKeeper closes its connections."""
        self.clients.disconnect_all()

    # --- monitoring ---------------------------------------------------------------------------

    def watch_report(self) -> list[tuple[int, str]]:
        """(session, path) of every watch set through this server, sorted (wchc, wchp)."""
        clients = self.clients
        pairs = {
            (conn.session_id, path)
            for conn in clients.connections.values()
            for _, path in clients.watches.watches_of(conn)
        }
        return sorted(pairs)

    def ephemerals_report(self) -> dict[int, list[str]]:
        """The ephemeral znodes of every session, sorted (dump)."""
        tree = self._tree
        return {session: sorted(tree.ephemerals[session]) for session in sorted(tree.ephemerals)}

    def reset_stats(self) -> None:
        """srst/crst: the latency samples and packet counts start again."""
        clients = self.clients
        clients.latency_ms.clear()
        clients.latency_buckets = [0] * len(clients.latency_buckets)
        clients.latency_sum_ms = 0.0
        clients.packets_received = clients.packets_sent = 0

    # --- counters ---------------------------------------------------------------------------

    def stats(self) -> ServerStats:
        status = self.replica.status()
        clients, tree = self.clients, self._tree
        latency = clients.latency_ms
        return ServerStats(
            server_id=self.server_id,
            role=status.role,
            phase=status.phase,
            serving=self.serving(),
            leader=status.leader,
            epoch=status.epoch,
            zxid_applied=tree.last_zxid,
            zxid_committed=status.zxid_committed,
            zxid_persisted=status.zxid_persisted,
            lead_from=self.lead_from,
            learners=status.learners,
            learners_synced=status.learners_synced,
            znodes=len(tree),
            data_size=tree.approximate_data_size(),
            ephemerals=sum(len(p) for p in tree.ephemerals.values()),
            sessions=len(tree.sessions),
            watches=len(clients.watches),
            watched_paths=len(clients.watches.paths()),
            watchers=clients.watches.watchers(),
            packets_received=clients.packets_received,
            packets_sent=clients.packets_sent,
            outstanding=clients.outstanding(),
            latency_min_ms=min(latency) if latency else 0.0,
            latency_avg_ms=sum(latency) / len(latency) if latency else 0.0,
            latency_max_ms=max(latency) if latency else 0.0,
            latency_buckets=tuple(clients.latency_buckets),
            latency_sum_ms=clients.latency_sum_ms,
            connections=tuple(
                ConnectionStats(c.conn, c.session_id, c.timeout_ms, len(c.queue), c.requests)
                for c in clients.connections.values()
            ),
        )
