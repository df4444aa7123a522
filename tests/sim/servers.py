"""The seeded whole-server simulator: real zkcore Servers (Zab, tree, prep, sessions, client
table) with simulated clients, a faulty network, crashes, pauses and clock jumps, and the client
guarantees checked after every step.

A run is a safety phase with faults, then a healed core (a quorum of voters, never paused or
cut) in which every client must finish its work and every server converge within a budget.
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
from dataclasses import dataclass, field
from random import Random
from typing import Any

import native
from tests.sim.checkers import Violation, cut_links, take_due
from zkcore import DataTree, MemoryLog, Stat, limits, snapshot_chunks, tree_from_snapshot
from zkcore._errors import Code
from zkcore._jute import Reader
from zkcore._records import (
    OPEN_ACL_UNSAFE,
    ConnectRequest,
    ConnectResponse,
    CreateMode,
    CreateRequest,
    CreateResponse,
    GetDataResponse,
    OpCode,
    PathRequest,
    PathWatchRequest,
    ReplyHeader,
    RequestHeader,
    SetDataRequest,
    StatResponse,
    WatcherEvent,
)
from zkcore.server import Hooks, Server, ServerConfig
from zkcore.zab import Config, Message, Phase, Role, decode_message, encode_message

TICK_MS = 10  # simulated ms per tick (the servers' tick_ms)
KEYS = 4
_DELIVER, _TICK, _FSYNC, _WORLD, _CLIENT, _TO_SERVER, _IMAGE = 0, 1, 2, 3, 4, 5, 6
EVENTS_MAX = 2_000_000
XID_NOTIFICATION = -1


@dataclass(frozen=True)
class Options:
    voters: int
    observers: int
    clients: int
    loss: float
    delay_max: int  # ms
    crash: float
    restart: float
    partition: float
    pause: float
    pause_ticks_max: int
    pause_leader: float
    move: float
    clock_jump: float
    ops: float  # client operations per client per tick
    snapshot_count: int
    sync_delay_max: int
    slow_disk_ms: int  # server 2's fsyncs take this much longer: it applies commits late
    safety_ticks: int
    liveness_ticks: int
    init_limit_ticks: int
    sync_limit_ticks: int
    session_timeout_ms: int
    wire: bool
    image_delay_max: int = 0  # > 0: a leader's SNAP image is made off the loop, in up to this many ms
    unseen_bulk_txns_min: int = 1  # batches of others' writes at least this long applied in bulk
    # 0: no closeSession txn lists its session's ephemerals (each server deletes what it holds)
    close_session_listed_bytes_max: int = limits.close_session_listed_bytes_max
    proposals_outstanding_bytes_max: int = limits.zab_proposals_outstanding_bytes_max


def options_for(seed: int, voters: int | None = None, long: bool = False, quick: bool = False) -> Options:
    """The seed's options. `quick` (the default suite's budget) runs fewer clients for fewer
    faulty ticks; `long` (the soak) four times as many faulty ticks."""
    options = _draw_options(seed, voters, long)
    if not quick:
        return options
    return dataclasses.replace(options, clients=min(options.clients, 3), ops=min(options.ops, 1.0),
                               safety_ticks=options.safety_ticks // 3)  # fmt: skip


def _draw_options(seed: int, voters: int | None, long: bool) -> Options:
    rng = Random(f"server-options-{seed}")
    init_limit, sync_limit = rng.choice([(10, 5), (20, 10), (15, 8)])
    return Options(
        voters=voters if voters is not None else rng.choice([3, 3, 5, 7]),
        observers=rng.choice([0, 0, 1, 2]),
        clients=rng.choice([3, 5, 8]),
        loss=rng.choice([0.0, 0.0, 0.01, 0.05]),
        delay_max=rng.choice([2, 5, 10]),
        crash=rng.choice([0.0, 0.003, 0.01]),
        restart=rng.choice([0.1, 0.3]),
        partition=rng.choice([0.0, 0.02, 0.05]),
        pause=rng.choice([0.0, 0.005, 0.02]),
        pause_ticks_max=rng.choice([5, 20, 60]),
        pause_leader=rng.choice([0.0, 0.02, 0.05]),
        move=rng.choice([0.0, 0.01, 0.03]),
        clock_jump=rng.choice([0.0, 0.0, 0.01]),
        ops=rng.choice([0.5, 1.0, 2.0]),
        snapshot_count=rng.choice([100_000, 50, 10]),
        sync_delay_max=rng.choice([0, 2, 8]),
        slow_disk_ms=rng.choice([0, 0, 30, 80]),
        safety_ticks=(rng.choice([100, 200]) * (4 if long else 1)),
        liveness_ticks=400,
        init_limit_ticks=init_limit,
        sync_limit_ticks=sync_limit,
        session_timeout_ms=rng.choice([300, 600, 2000]),
        wire=rng.random() < 0.3,
        # Drawn apart, so that adding it changed no other option of an existing seed.
        image_delay_max=Random(f"server-image-{seed}").choice([0, 40, 200, 1000]),
        unseen_bulk_txns_min=Random(f"server-bulk-{seed}").choice([1, 4]),
        close_session_listed_bytes_max=Random(f"server-close-{seed}").choice(
            [0, limits.close_session_listed_bytes_max]
        ),
        # A txn here is some 50-150 bytes: 2,000 keeps a dozen or more in flight.
        proposals_outstanding_bytes_max=Random(f"server-in-flight-{seed}").choice(
            [limits.zab_proposals_outstanding_bytes_max] * 2 + [2000]
        ),
    )


@dataclass
class Result:
    seed: int
    options: Options
    violation: str | None
    trace_hash: str
    ticks: int
    events: int
    ops_done: int
    election_ticks: int | None
    trace: list[tuple[Any, ...]] = field(default_factory=list)


class SimServer:
    """Durable: log (MemoryLog: a crash keeps its synced part), epochs, the newest snapshot.
    Volatile: the Server, rebuilt on restart from the snapshot; Zab replays the log after it."""

    def __init__(self, sim: ServerSimulation, server_id: int, server_class: type[Server]) -> None:
        self.sim = sim
        self.server_id = server_id
        self.server_class = server_class
        self.storage = MemoryLog()
        self.accepted_epoch = self.current_epoch = 0
        self.snapshot: bytes | None = None
        self.snapshot_zxid = 0
        self.server: Server | None = None
        self.incarnation = 0
        self.sync_pending = False
        self.paused_until = -1  # sim ms
        self.offset_ms = 0  # this server's clock minus the simulation's
        self.wall_jump_ms = 0

    @property
    def up(self) -> bool:
        return self.server is not None

    def paused(self) -> bool:
        return self.sim.now < self.paused_until

    def clock(self) -> tuple[float, int]:
        now = self.sim.now + self.offset_ms
        return float(now), 1_700_000_000_000 + now + self.wall_jump_ms

    def start(self) -> None:
        self.incarnation += 1
        self.sync_pending = False
        # A snapshot never outlives the log it came from: a log holding txns below it holds all
        # of them (else a node falling back to an older snapshot would skip the missing ones).
        last = self.storage.last_zxid()
        assert last == 0 or last >= self.snapshot_zxid, (
            f"server {self.server_id}'s snapshot at {self.snapshot_zxid:#x} is ahead of its log ({last:#x})"
        )
        tree = tree_from_snapshot(self.snapshot) if self.snapshot is not None else DataTree()
        now_ms, wall_ms = self.clock()
        config = self.sim.server_config
        self.server = self.server_class(
            config, self.server_id, rng=Random(self.sim.seed * 1000 + self.server_id * 31 + self.incarnation),
            storage=self.storage, tree=tree, now_ms=now_ms, wall_ms=wall_ms,
            accepted_epoch=self.accepted_epoch, current_epoch=self.current_epoch,
            hooks=Hooks(new_index=native.PathIndex, decode_txns=native.decode_txns,
                        snap_images=self.sim.options.image_delay_max > 0),
        )  # fmt: skip

    def crash(self) -> None:
        self.server = None
        self.storage = self.storage.crash()
        self.incarnation += 1
        self.sync_pending = False


class SimClient:
    """One client process: a session, pipelined requests, reconnects to other servers."""

    def __init__(self, client_id: int) -> None:
        self.client_id = client_id
        self.session_id = 0
        self.passwd = bytes(16)
        self.server: int | None = None
        # The connection's id: (client, its connections so far, the server's incarnation).
        self.conn: tuple[int, int, int] | None = None
        self.connecting = False
        self.connections = 0
        self.last_zxid = 0
        self.xid = 0
        self.outstanding: list[Outstanding] = []
        self.seen: dict[str, int] = {}  # per key: the newest version this client has seen
        self.watches: dict[str, int] = {}  # key -> mzxid seen when the watch was set
        self.closed = False
        self.closing = False
        self.heard_tick = 0
        self.sent_tick = 0


class ServerSimulation:
    """One seeded run of whole servers and clients."""

    def __init__(self, seed: int, options: Options, server_class: type[Server] = Server) -> None:
        self.seed, self.options = seed, options
        self.rng = Random(seed)
        voters = tuple(range(1, options.voters + 1))
        observers = tuple(range(options.voters + 1, options.voters + options.observers + 1))
        zab = Config(voters, observers, init_limit_ticks=options.init_limit_ticks,
                     sync_limit_ticks=options.sync_limit_ticks, election_finalize_ticks=1,
                     proposals_outstanding_bytes_max=options.proposals_outstanding_bytes_max)  # fmt: skip
        self.server_config = ServerConfig(
            zab, tick_ms=TICK_MS, session_timeout_min_ms=options.session_timeout_ms,
            session_timeout_max_ms=options.session_timeout_ms, snap_count=options.snapshot_count,
            container_check_ms=500, unseen_bulk_txns_min=options.unseen_bulk_txns_min,
            close_session_listed_bytes_max=options.close_session_listed_bytes_max,
        )  # fmt: skip
        self.nodes = {sid: SimServer(self, sid, server_class) for sid in voters + observers}
        self.clients = [SimClient(i) for i in range(1, options.clients + 1)]
        self.now = 0
        self.tick = 0
        self.events = 0
        self.trace: list[tuple[Any, ...]] = []
        self._queue: list[tuple[int, int, int, Any]] = []
        self._seq = 0
        self._link_time: dict[tuple[Any, Any], int] = {}
        self._blocked: set[tuple[int, int]] = set()
        self.liveness = False
        self.core: tuple[int, ...] = ()
        # Checks.
        self.txns: dict[int, bytes] = {}  # zxid -> txn hash, as the first server applied it
        self.digests: dict[int, str] = {}  # zxid -> tree digest
        self.acked: dict[str, int] = {}  # key -> the newest mzxid of a write acked to any client
        self.acked_zxids: list[int] = []
        self.seq_names: set[str] = set()
        self.ops_done = 0
        self.created: set[str] = set()
        self.killed: int | None = None
        self.end_tick = options.safety_ticks + options.liveness_ticks
        self.election_started: int | None = None
        self.election_ticks: int | None = None

    # --- the event loop ---------------------------------------------------------------------

    def run(self) -> Result:
        violation = None
        try:
            self._run()
        except Violation as e:
            violation = str(e)
        except AssertionError as e:
            violation = f"assertion: {e}"
        except Exception as e:  # noqa: BLE001 - a server that raises is a failed run, not a crash of the run
            violation = f"exception: {type(e).__name__}: {e}"
        self.trace.append(("end", self.now, violation))
        digest = hashlib.sha256(repr(self.trace).encode()).hexdigest()[:16]
        return Result(self.seed, self.options, violation, digest, self.tick, self.events, self.ops_done,
                      self.election_ticks, self.trace)  # fmt: skip

    def _run(self) -> None:
        for sid, node in self.nodes.items():
            node.start()
            self._handle(node)
            self._push(self.rng.randrange(TICK_MS), _TICK, sid)
        self._push(TICK_MS // 2, _WORLD, None)
        while self._queue:
            time, _, kind, data = heapq.heappop(self._queue)
            self.now = time
            self.events += 1
            if kind == _DELIVER:
                self._deliver(*data)
            elif kind == _TICK:
                self._node_tick(data)
            elif kind == _FSYNC:
                self._fsync(*data)
            elif kind == _CLIENT:
                self._client_frame(*data)
            elif kind == _TO_SERVER:
                self._server_receive(*data)
            elif kind == _IMAGE:
                self._image(*data)
            elif self._world():
                return
            if self.tick > self.end_tick:
                raise Violation(f"liveness: clients or servers unfinished {self.options.liveness_ticks} "
                                f"ticks after healing: {self._unfinished()}")  # fmt: skip
            if self.events > EVENTS_MAX:
                raise Violation(f"runaway: over {EVENTS_MAX} events by tick {self.tick}")

    def _push(self, time: int, kind: int, data: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (time, self._seq, kind, data))

    def _later(self, link: tuple[Any, Any], delay_max: int) -> int:
        """Delivery time on a FIFO link."""
        time = max(self.now + self.rng.randint(1, delay_max), self._link_time.get(link, 0))
        self._link_time[link] = time
        return time

    # --- servers ----------------------------------------------------------------------------

    def _wake(self, node: SimServer) -> Server | None:
        """The server, told the time first; None while down. A paused server holds its inputs."""
        server = node.server
        if server is None:
            return None
        server.tick(*node.clock())
        return server

    def _deliver(self, source: int, target: int, payload: Any) -> None:
        """A peer message arrives, with those due at the same moment for the same server right
        behind it: a node steps what one poll brought together (step_many)."""
        due = take_due(self._queue, self.now, _DELIVER, lambda data: data[1] == target)
        self.events += len(due)
        arrived = [(source, payload), *((s, p) for s, _, p in due)]
        node = self.nodes[target]
        arrived = [(s, p) for s, p in arrived if (s, target) not in self._blocked]
        if node.server is None or not arrived:
            return
        if node.paused():
            for s, p in arrived:
                self._push(node.paused_until, _DELIVER, (s, target, p))
            return
        server = self._wake(node)
        assert server is not None
        wire = self.options.wire
        messages: list[Message] = [decode_message(p) if wire else p for _, p in arrived]
        server.step_many(messages)
        self._handle(node)

    def _node_tick(self, sid: int) -> None:
        self._push(self.now + TICK_MS, _TICK, sid)
        node = self.nodes[sid]
        if node.server is not None and not node.paused():
            self._wake(node)
            self._handle(node)

    def _fsync(self, sid: int, incarnation: int) -> None:
        node = self.nodes[sid]
        if node.server is None or node.incarnation != incarnation:
            return
        if node.paused():
            self._push(node.paused_until, _FSYNC, (sid, incarnation))
            return
        node.sync_pending = False
        self._wake(node)
        assert node.server is not None
        node.server.persisted(node.storage.fsync())
        self._handle(node)

    def _image(self, sid: int, incarnation: int, zxid: int, image: bytes) -> None:
        node = self.nodes[sid]
        if node.server is None or node.incarnation != incarnation:
            return
        if node.paused():
            self._push(node.paused_until, _IMAGE, (sid, incarnation, zxid, image))
            return
        self.trace.append((self.now, "image", sid, zxid))
        server = self._wake(node)
        assert server is not None
        failed = self.rng.random() < 0.2  # the child died: a full disk, say
        server.snap_image(zxid, None if failed else image)
        self._handle(node)

    def _handle(self, node: SimServer) -> None:
        server = node.server
        while server is not None and server.has_ready():
            ready = server.ready()
            zxid_before = server.tree.last_zxid
            if ready.snapshot is not None:
                node.snapshot, node.snapshot_zxid = ready.snapshot.payload, ready.snapshot.zxid
                node.storage.truncate(0)
                node.storage.append(ready.entries)
                node.storage.fsync()
            if ready.truncate_zxid is not None:
                node.storage.truncate(ready.truncate_zxid)
            if ready.accepted_epoch is not None:
                node.accepted_epoch = ready.accepted_epoch
            if ready.current_epoch is not None:
                node.current_epoch = ready.current_epoch
            if ready.entries and ready.snapshot is None:
                node.storage.append(ready.entries)
            if ready.entries and not node.sync_pending:
                node.sync_pending = True
                delay = self.rng.randint(0, self.options.sync_delay_max)
                if node.server_id == 2:
                    delay += self.options.slow_disk_ms
                self._push(self.now + delay, _FSYNC, (node.server_id, node.incarnation))
            for message in ready.messages:
                self._send(message)
            for conn, frame in ready.sends:
                self._to_client(node.server_id, conn, frame)
            for change in ready.roles:
                self._on_role(node.server_id, change)
            if ready.snap_image_due is not None:  # a forked child's copy of the tree as it is now
                assert ready.snap_image_due == server.tree.last_zxid
                image = b"".join(snapshot_chunks(server.tree))
                delay = self.rng.randint(0, self.options.image_delay_max)
                self._push(
                    self.now + delay, _IMAGE, (node.server_id, node.incarnation, ready.snap_image_due, image)
                )
            if ready.snapshot_due is not None:
                # As a node's snapshot child does: the log made durable through the tree first
                # (the tree may have applied committed txns this server's disk does not hold yet).
                node.storage.fsync()
                node.snapshot, node.snapshot_zxid = b"".join(snapshot_chunks(server.tree)), ready.snapshot_due
                server.advance(ready)
                server.snapshot_done(ready.snapshot_due, True)
            else:
                server.advance(ready)
            self._check_server(node, zxid_before)
            if ready.snapshot is not None:
                server.persisted(node.storage.fsync())

    def _send(self, message: Message) -> None:
        source, target = message.source, message.target
        # Loss is drawn even after healing, so the schedule up to there stays the seed's; once
        # healed the network loses nothing: a lost forwarded write leaves its client silent
        # until it times out, so liveness under loss would have no bound.
        lost = self.rng.random() < self.options.loss
        if (source, target) in self._blocked or (lost and not self.liveness):
            return
        payload: Any = encode_message(message) if self.options.wire else message
        self._push(self._later((source, target), self.options.delay_max), _DELIVER, (source, target, payload))

    def _on_role(self, sid: int, change: Any) -> None:
        self.trace.append((self.now, "role", sid, change.role.name, change.phase.name, change.epoch))
        if (
            change.role == Role.LEADING
            and change.phase == Phase.BROADCAST
            and self.election_started is not None
        ):
            ticks = self.tick - self.election_started
            self.election_ticks = ticks if self.election_ticks is None else max(self.election_ticks, ticks)
            self.election_started = None

    # --- checks on servers ------------------------------------------------------------------

    def _check_server(self, node: SimServer, zxid_before: int) -> None:
        server = node.server
        assert server is not None
        tree = server.tree
        if tree.last_zxid != zxid_before:
            digest = tree.digest()
            known = self.digests.setdefault(tree.last_zxid, digest)
            if known != digest:
                raise Violation(f"server {node.server_id}: tree digest differs at zxid {tree.last_zxid:#x}")
        orphans = [s for s in tree.ephemerals if tree.ephemerals[s] and s not in tree.sessions]
        if orphans:
            raise Violation(
                f"server {node.server_id}: ephemerals of ended sessions {[hex(s) for s in orphans]}"
            )

    # --- clients: the wire ------------------------------------------------------------------

    def _to_client(self, sid: int, conn: Any, frame: bytes | None) -> None:
        client = self.clients[conn[0] - 1]
        self._push(self._later((sid, conn), 3), _CLIENT, (client.client_id, conn, frame))

    def _to_server(self, client: SimClient, frame: bytes) -> None:
        assert client.server is not None and client.conn is not None
        link = (client.conn, client.server)
        self._push(self._later(link, 3), _TO_SERVER, (client.server, client.conn, frame))

    def _server_receive(self, sid: int, conn: Any, frame: bytes) -> None:
        """A frame arrives, with those of the same connection due at the same moment right
        behind it: a server reads them together, as a node reads what its socket holds, and
        takes them a run at a time (receive_frames)."""
        due = take_due(self._queue, self.now, _TO_SERVER, lambda data: data[:2] == (sid, conn))
        self.events += len(due)
        frames = [frame, *(held for _, _, held in due)]
        node = self.nodes[sid]
        if node.server is None or conn[2] != node.incarnation:
            return  # the connection died with that incarnation; the client was told
        if node.paused():
            for held in frames:
                self._push(node.paused_until, _TO_SERVER, (sid, conn, held))
            return
        server = self._wake(node)
        assert server is not None
        while frames:
            del frames[: server.receive_frames(conn, frames)]
        self._handle(node)

    def _drop_clients_of(self, sid: int) -> None:
        """A server process died: its clients' connections break (a TCP reset, a ZeroMQ
        disconnect), and they learn it."""
        for client in self.clients:
            if client.server == sid and client.conn is not None:
                self._push(self.now + 1, _CLIENT, (client.client_id, client.conn, None))

    # --- clients: sessions ------------------------------------------------------------------

    def _connect(self, client: SimClient) -> None:
        up = [sid for sid in (self.core or tuple(self.nodes)) if self.nodes[sid].server is not None]
        if not up or client.closed:
            return
        sid = self.rng.choice(up)
        if self.rng.random() < 0.5:
            # An unlucky choice, on purpose: the server furthest behind (clients pick servers
            # blindly, and a lagging one must not take a client that has seen more).
            sid = min(up, key=lambda s: (self.nodes[s].server.tree.last_zxid, s))  # type: ignore[union-attr]
        client.connections += 1
        client.server = sid
        client.conn = (client.client_id, client.connections, self.nodes[sid].incarnation)
        client.connecting = True
        client.heard_tick = self.tick
        request = ConnectRequest(0, client.last_zxid, self.options.session_timeout_ms, client.session_id,
                                 client.passwd, False)  # fmt: skip
        self._to_server(client, request.encode())

    def _disconnect(self, client: SimClient, why: str) -> None:
        """The connection is over: what was outstanding has an unknown outcome."""
        self.trace.append((self.now, "client-drop", client.client_id, client.server, why))
        client.server = client.conn = None
        client.connecting = client.closing = False
        client.outstanding.clear()
        client.watches.clear()

    def _on_connect_response(self, client: SimClient, frame: bytes) -> None:
        response = ConnectResponse.decode(frame)
        client.connecting = False
        if response.timeout_ms == 0:  # expired (or unknown): a new session next time
            self.trace.append((self.now, "expired", client.client_id, client.session_id))
            client.session_id, client.passwd = 0, bytes(16)
            client.server = client.conn = None
            return
        if client.session_id not in (0, response.session_id):
            raise Violation(f"client {client.client_id}: resumed session {response.session_id:#x}, "
                            f"asked for {client.session_id:#x}")  # fmt: skip
        client.session_id, client.passwd = response.session_id, response.passwd

    # --- clients: requests ------------------------------------------------------------------

    def _request(self, client: SimClient, opcode: int, record: Any, key: str, extra: Any = None) -> None:
        client.xid += 1
        frame = RequestHeader(client.xid, opcode).encode() + record.encode()
        watch = bool(getattr(record, "watch", False))
        client.outstanding.append(
            Outstanding(client.xid, opcode, key, extra, client.last_zxid, watch, self.tick)
        )
        self._to_server(client, frame)

    def _client_op(self, client: SimClient) -> None:
        rng = self.rng
        key = f"/k{rng.randrange(KEYS)}"
        roll = rng.random()
        if roll < 0.3:
            if key in self.created:
                self._request(client, OpCode.SET_DATA, SetDataRequest(key, b"%d" % self.events, -1), key)
            else:
                self._request(client, OpCode.CREATE, CreateRequest(key, b"0", OPEN_ACL_UNSAFE, 0), key, "key")
        elif roll < 0.55:
            self._request(client, OpCode.GET_DATA, PathWatchRequest(key, rng.random() < 0.3), key)
        elif roll < 0.75:
            # sync, then a read pipelined behind it: it must see every write acked before now.
            self._request(client, OpCode.SYNC, PathRequest(key), key)
            self._request(client, OpCode.GET_DATA, PathWatchRequest(key, False), key, self.acked.get(key, 0))
        elif roll < 0.87:
            self._request(
                client,
                OpCode.CREATE,
                CreateRequest("/s-", b"", OPEN_ACL_UNSAFE, CreateMode.PERSISTENT_SEQUENTIAL),
                "/s-",
                "seq",
            )
        elif roll < 0.97:
            path = f"/e{client.client_id}-"
            self._request(
                client,
                OpCode.CREATE,
                CreateRequest(path, b"", OPEN_ACL_UNSAFE, CreateMode.EPHEMERAL_SEQUENTIAL),
                path,
                "seq",
            )
        elif not self.liveness:
            self._request(client, OpCode.CLOSE_SESSION, Empty(), "", None)
            client.closing = True  # nothing more on this connection: the server ends it

    def _client_frame(self, client_id: int, conn: Any, frame: bytes | None) -> None:
        client = self.clients[client_id - 1]
        if client.conn != conn:
            return  # for an old connection
        client.heard_tick = self.tick
        if frame is None:
            self._disconnect(client, "dropped")
            return
        if client.connecting:
            self._on_connect_response(client, frame)
            return
        r = Reader(frame)
        header = ReplyHeader.read(r)
        if header.xid == XID_NOTIFICATION:
            event = WatcherEvent.read(r)
            client.watches.pop(event.path, None)
            return
        if header.xid == XID_PING:
            return
        if not client.outstanding:
            raise Violation(f"client {client_id}: a reply (xid {header.xid}) it did not ask for")
        out = client.outstanding.pop(0)
        if header.xid != out.xid:
            raise Violation(f"client {client_id}: FIFO broken: reply for xid {header.xid} before {out.xid}")
        if header.err == Code.OK and header.zxid < out.zxid_seen:
            raise Violation(f"client {client_id}: a reply at zxid {header.zxid:#x}, older than the "
                            f"{out.zxid_seen:#x} it had seen when it asked")  # fmt: skip
        client.last_zxid = max(client.last_zxid, header.zxid)
        self._on_reply(client, out, header, r)

    def _on_reply(self, client: SimClient, out: Outstanding, header: ReplyHeader, r: Reader) -> None:
        err, key = header.err, out.key
        if out.opcode == OpCode.SET_DATA and err == Code.OK:
            self._acked(client, key, StatResponse.read(r).stat.mzxid)
        elif out.opcode == OpCode.CREATE and err in (Code.OK, Code.NODE_EXISTS):
            if out.extra == "key":
                self.created.add(key)
                if err == Code.OK:
                    self._acked(client, key, header.zxid)
            elif err == Code.OK:
                path = CreateResponse.read(r).path
                if path in self.seq_names:
                    raise Violation(f"sequential name {path} created twice")
                self.seq_names.add(path)
                self.ops_done += 1
        elif out.opcode == OpCode.GET_DATA and err == Code.OK:
            self._on_read(client, out, GetDataResponse.read(r).stat)
        elif out.opcode == OpCode.SYNC and err == Code.OK:
            self.ops_done += 1
        elif out.opcode == OpCode.CLOSE_SESSION:
            self.trace.append((self.now, "closed", client.client_id, client.session_id))
            client.session_id, client.passwd = 0, bytes(16)
            self._disconnect(client, "closed")

    def _acked(self, client: SimClient, key: str, mzxid: int) -> None:
        client.seen[key] = max(client.seen.get(key, 0), mzxid)
        self.acked[key] = max(self.acked.get(key, 0), mzxid)
        self.ops_done += 1

    def _on_read(self, client: SimClient, out: Outstanding, stat: Stat) -> None:
        key, mzxid = out.key, stat.mzxid
        if mzxid < client.seen.get(key, 0):
            raise Violation(f"client {client.client_id}: read {key} at mzxid {mzxid:#x}, older than "
                            f"{client.seen[key]:#x} it had seen (read-your-writes / monotonic reads)")  # fmt: skip
        if isinstance(out.extra, int) and mzxid < out.extra:
            raise Violation(f"client {client.client_id}: read {key} after sync at mzxid {mzxid:#x}, older than "
                            f"{out.extra:#x} acked before the sync was sent")  # fmt: skip
        watched = client.watches.get(key)
        if watched is not None and mzxid > watched:
            raise Violation(f"client {client.client_id}: read {key} at mzxid {mzxid:#x} before the event "
                            f"of its watch set at {watched:#x}")  # fmt: skip
        client.seen[key] = max(client.seen.get(key, 0), mzxid)
        if out.watch:
            client.watches.setdefault(key, mzxid)
        self.ops_done += 1

    def _clients_tick(self) -> None:
        timeout_ticks = self.options.session_timeout_ms // TICK_MS
        for client in self.clients:
            if client.conn is None:
                if self.rng.random() < 0.5:
                    self._connect(client)
                continue
            waited = self.tick - client.outstanding[0].sent_tick if client.outstanding else 0
            if self.tick - client.heard_tick > timeout_ticks * 2 // 3 or waited > timeout_ticks * 2 // 3:
                # A silent server, or a request lost between servers: try another server.
                self._disconnect(client, "silent")
                continue
            if client.connecting or not client.session_id or client.closing:
                continue
            if not self.liveness and len(client.outstanding) < PIPELINE_MAX:
                count = int(self.options.ops) + (1 if self.rng.random() < self.options.ops % 1 else 0)
                for _ in range(count):
                    if not client.closing:
                        self._client_op(client)
            elif self.tick - client.sent_tick >= max(1, timeout_ticks // 3):
                client.sent_tick = self.tick
                self._to_server(client, RequestHeader(XID_PING, OpCode.PING).encode())

    # --- the world: faults, clients, liveness -----------------------------------------------

    def _world(self) -> bool:
        self.tick += 1
        self._push(self.now + TICK_MS, _WORLD, None)
        if self.tick == self.options.safety_ticks:
            self._heal()
        if not self.liveness:
            self._faults()
        self._clients_tick()
        return self.liveness and self._liveness_step()

    def _faults(self) -> None:
        rng, options = self.rng, self.options
        for sid, node in self.nodes.items():
            if node.server is not None and rng.random() < options.crash:
                node.crash()
                self._drop_clients_of(sid)
                self.trace.append((self.now, "crash", sid))
            elif node.server is None and rng.random() < options.restart:
                self._restart(node)
            elif node.server is not None and not node.paused() and rng.random() < options.pause:
                ticks = rng.randint(1, options.pause_ticks_max)
                node.paused_until = self.now + ticks * TICK_MS
                self.trace.append((self.now, "pause", sid, ticks))
            if rng.random() < options.clock_jump:
                node.wall_jump_ms += rng.choice([-1, 1]) * rng.randint(1, 100_000)
        if rng.random() < options.partition:
            self._repartition()
        leader = self._leader()
        if leader is not None and not self.nodes[leader].paused() and rng.random() < options.pause_leader:
            # The leader stops (SIGSTOP, a long GC) for longer than its sync limit: the others
            # elect a new leader and go on; then it resumes, still believing it leads, before
            # its clients gave up on it.
            silent_ticks = options.session_timeout_ms // TICK_MS * 2 // 3
            longest = max(options.sync_limit_ticks * 2, min(options.sync_limit_ticks * 5, silent_ticks - 2))
            ticks = rng.randint(options.sync_limit_ticks * 2, longest)
            self.nodes[leader].paused_until = self.now + ticks * TICK_MS
            self.trace.append((self.now, "pause-leader", leader, ticks))
        for client in self.clients:
            if client.conn is not None and not client.connecting and rng.random() < options.move:
                self._disconnect(client, "move")  # clients spread over servers, and fail over

    def _restart(self, node: SimServer) -> None:
        node.start()
        self.trace.append((self.now, "restart", node.server_id))
        self._handle(node)

    def _repartition(self) -> None:
        rng = self.rng
        self._blocked = set()
        if rng.random() < 0.3:
            return
        ids = sorted(self.nodes)
        if rng.random() < 0.5:
            side = {rng.choice(ids)}  # one server cut off: it serves, falling behind, until it notices
        else:
            side = {sid for sid in ids if rng.random() < 0.5}
        self._blocked = cut_links(ids, side)
        self.trace.append((self.now, "partition", tuple(sorted(side))))

    def _heal(self) -> None:
        """Every server up, unpaused and connected, no message lost; clients finish what they
        started."""
        self.liveness = True
        self.core = tuple(sorted(self.nodes))
        self._blocked = set()
        for node in self.nodes.values():
            node.paused_until = -1
            if node.server is None:
                self._restart(node)
        self.trace.append((self.now, "heal"))
        self.end_tick = self.tick + self.options.liveness_ticks

    def _leader(self) -> int | None:
        leaders = [s.server_id for s in self.nodes.values() if s.server is not None and s.server.leading()]
        return leaders[0] if len(leaders) == 1 else None

    def _converged(self) -> bool:
        servers = [n.server for n in self.nodes.values()]
        if any(s is None or not s.serving() for s in servers) or self._leader() is None:
            return False
        if any(c.conn is None or c.connecting or c.outstanding for c in self.clients if not c.closed):
            return False
        zxids = {s.tree.last_zxid for s in servers if s is not None}
        return len(zxids) == 1

    def _liveness_step(self) -> bool:
        """Converge; then kill the leader once and time the election; then converge again."""
        if self.killed is None:
            if self._converged():
                leader = self._leader()
                assert leader is not None
                self.nodes[leader].crash()
                self._drop_clients_of(leader)
                self.killed = leader
                self.election_started = self.tick
                self.trace.append((self.now, "kill-leader", leader))
            return False
        if self.nodes[self.killed].server is None and self.election_ticks is not None:
            self._restart(self.nodes[self.killed])
        return self.election_ticks is not None and self._converged()

    def _unfinished(self) -> str:
        servers = {sid: (n.server.role.role.name if n.server else "down") for sid, n in self.nodes.items()}
        clients = {c.client_id: (c.server, len(c.outstanding)) for c in self.clients}
        return f"servers {servers}, clients {clients}"


@dataclass(slots=True)
class Outstanding:
    xid: int
    opcode: int
    key: str
    extra: Any
    zxid_seen: int
    watch: bool
    sent_tick: int


class Empty:
    def encode(self) -> bytes:
        return b""


PIPELINE_MAX = 8
XID_PING = -2


def run_server_seed(seed: int, voters: int | None = None, server_class: type[Server] = Server,
                    long: bool = False, quick: bool = False) -> Result:  # fmt: skip
    return ServerSimulation(seed, options_for(seed, voters, long, quick), server_class).run()
