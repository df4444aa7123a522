"""The node process: ZeroMQ I/O, ticks and the disk around zkcore's Zab replica and tree.

    python -m cluster.node --config ensemble.cfg --id 1

One thread, one loop: receive what has arrived, step and tick the replica, act on its Ready
(persist, send, apply, reply), group-commit the log with one fdatasync per loop turn.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import random
import signal
import sys
import time
from collections import deque

import zmq

import native
from cluster import config as config_mod
from cluster._admin_text import AdminText
from cluster._clients import ClientServer
from cluster._transport import PeerTransport, prepare_ipc
from cluster.faults import BlockedPeers, blocked_path, debug_switches
from cluster.storage import (
    ACCEPTED_EPOCH,
    CURRENT_EPOCH,
    DataDir,
    StorageError,
    TxnLog,
    drop_snapshots_after,
    purge,
    read_epoch,
    recover,
    replay_entries,
    write_epoch,
    write_snapshot,
)
from zkcore import DataTree, KeeperError, LocalError, LogEntry, Prep, RemoteError, Request, Txn, limits
from zkcore._jute import Reader, Writer
from zkcore._records import CreateSessionTxn, OpCode, PathRequest
from zkcore._requests import ForwardedRequest, forwarded_body
from zkcore._restore import collector_paused
from zkcore._sessions import SessionTracker
from zkcore.zab import (
    Config,
    Phase,
    Ready,
    Replica,
    Role,
    RoleChange,
    Snapshot,
    decode_message,
    encode_message,
    zxid_epoch,
)

log = logging.getLogger("zkpy.node")
SESSION_SECRET_DEFAULT = b"zkpy-session-secret"
WAITING_WRITES_MAX = 10_000


BULK_REPLAY_TXNS_MIN = 1000  # committed txns handed over at once that are worth a bulk replay
CLIENT_TURN_S = 0.02  # client work per loop turn, between looks at peers and the clock
CLIENT_TURN_FRAMES_MAX = 1000


class Node:
    def __init__(self, conf: config_mod.EnsembleConfig, server_id: int) -> None:
        self.conf, self.server_id = conf, server_id
        self.data_dir = DataDir.create(conf.node_dir(server_id))
        self.log = TxnLog(self.data_dir.log_dir)
        recovered = recover(self.data_dir.root, log=self.log)
        for report in recovered.report:
            log.warning("recovery: %s", report)
        started = time.monotonic()
        self.tree = self._load_tree(recovered.snapshot_payload)
        log.info("loaded snapshot at %#x (%d znodes) in %.2fs; %d logged txns after it",
                 recovered.snapshot_zxid, len(self.tree), time.monotonic() - started, len(recovered.txns))  # fmt: skip
        self.snapshot_zxid = recovered.snapshot_zxid
        self.snapshot_child: tuple[int, int, float] | None = None  # pid, zxid, start
        self.txns_since_snapshot = 0
        self.purged_at = -float("inf")  # autopurge.purgeInterval counts from here
        self.prep = Prep(self.tree, conf.data_bytes_max)
        self.role = RoleChange(Role.LOOKING, Phase.ELECTION, -1, 0, "started")
        self.lead_from = 0
        self.prep_epoch = -1
        self.waiting_writes: deque[bytes] = deque()
        self.stashed = self.draining = False
        self.sessions = SessionTracker(conf.tick_ms)  # the leader's: who expires when
        self.touched: dict[int, None] = {}  # a learner's: sessions heard from since its last report
        self.unsynced = False
        self.containers_checked_ms = 0
        self.debug = debug_switches(conf.extra.get("debug", ""))
        if self.debug:
            log.warning(
                "DEBUG SWITCHES ON, guarantees deliberately broken: %s", ", ".join(sorted(self.debug))
            )
        self.applied_early: set[int] = set()  # early_ack: zxids the leader applied before commit
        self.blocked = BlockedPeers(blocked_path(conf.data_dir, server_id))
        self.cut: frozenset[int] = frozenset()
        self.replica = Replica(
            self.zab_config(),
            server_id,
            rng=random.Random(server_id * 7919 + int(time.time())),
            storage=self.log,
            snapshots=self,
            accepted_epoch=read_epoch(self.data_dir.root, ACCEPTED_EPOCH) or 0,
            current_epoch=read_epoch(self.data_dir.root, CURRENT_EPOCH) or 0,
            zxid_snapshot=self.snapshot_zxid,
            prepare=self.prepare,
        )
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.peers = PeerTransport(self.ctx, conf, server_id)
        client_sock = self.ctx.socket(zmq.ROUTER)
        client_sock.setsockopt(zmq.LINGER, 0)
        client_sock.setsockopt(zmq.SNDHWM, 100_000)
        client_sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a reply that cannot be queued raises
        # A frame over the limit disconnects its sender before we ever buffer it.
        client_sock.setsockopt(zmq.MAXMSGSIZE, limits.frame_bytes_max)
        client_endpoint = conf.servers[server_id].client
        prepare_ipc(client_endpoint)
        client_sock.bind(client_endpoint)
        secret = conf.extra.get("sessionSecret", "").encode() or SESSION_SECRET_DEFAULT
        self.admin = AdminText(self)
        self.clients = ClientServer(
            client_sock,
            lambda: self.tree,
            server_id,
            (conf.session_timeout_min_ms, conf.session_timeout_max_ms),
            self.submit,
            self.client_sync,
            self.admin.answer,
            self.serving,
            secret,
            self.touch,
            stale_reads="stale_reads" in self.debug,
        )
        self.running = True

    # --- state ------------------------------------------------------------------------------

    def zab_config(self) -> Config:
        c = self.conf
        return Config(tuple(c.voters), tuple(c.observers), init_limit_ticks=c.init_limit_ticks,
                      sync_limit_ticks=c.sync_limit_ticks)  # fmt: skip

    def _load_tree(self, payload: bytes | None) -> DataTree:
        """The tree from a snapshot (its records scanned natively), without its read index:
        replay is faster without one, and on_role attaches it before this server answers its
        first read."""
        if payload is None:
            return DataTree()
        with collector_paused():
            tree = DataTree.from_snapshot(payload, scan=native.scan_snapshot_nodes)
        gc.freeze()  # a million long-lived nodes: later collections need not walk them
        return tree

    def snapshot(self) -> Snapshot:
        """Zab's SnapshotSource: the tree as it is now, for a SNAP to a learner far behind."""
        return Snapshot(self.tree.last_zxid, b"".join(self.tree.snapshot_chunks()))

    def serving(self) -> bool:
        return self.role.phase == Phase.BROADCAST

    # --- writes -----------------------------------------------------------------------------

    def submit(self, fwd: ForwardedRequest) -> bool:
        """A client write arrived here: Zab forwards it to the leader, whose prepare() preps it.
        True when it will take effect in order (now or once the leader has caught up)."""
        if not self.serving():
            return False
        self.stashed = False
        return self.replica.propose(fwd.encode()) or self.stashed

    def client_sync(self, token: int) -> bool:
        """A client's sync: Zab asks the leader for its commit point (see Ready.synced)."""
        return self.serving() and self.replica.sync(token)

    def prepare(self, zxid: int, payload: bytes) -> bytes | None:
        """Zab's leader hook: the txn for a client write at `zxid`. A new leader first applies
        every txn of earlier epochs; writes that arrive before that wait in order. A learner's
        report of the sessions it heard from arrives this way too, and makes no txn."""
        try:
            fwd = ForwardedRequest.decode(payload)
        except RemoteError as e:
            log.warning("dropping a malformed forwarded request: %s", e)
            return None
        if fwd.opcode == OpCode.PING:
            self.on_session_report(fwd.body)
            return None
        if zxid_epoch(zxid) != self.prep_epoch:
            self.prep_epoch = zxid_epoch(zxid)
            self.lead_from = self.replica.status().zxid_last
            self.prep = Prep(self.tree, self.conf.data_bytes_max)
        if self.tree.last_zxid < self.lead_from or (self.waiting_writes and not self.draining):
            if len(self.waiting_writes) < WAITING_WRITES_MAX:
                self.waiting_writes.append(payload)
                self.stashed = True
            return None
        try:
            body = forwarded_body(fwd)
        except RemoteError as e:
            log.warning("dropping a malformed write from session %#x: %s", fwd.session_id, e)
            return None
        request = Request(fwd.session_id, fwd.xid, fwd.opcode, body, tuple(fwd.auth_ids))
        txn, error = self.prep.prep(request, zxid, int(time.time() * 1000))
        if error is not None:
            log.debug("session %#x xid %d: %s", fwd.session_id, fwd.xid, error)
        return txn.encode()

    # --- sessions -----------------------------------------------------------------------------

    def touch(self, session_id: int) -> None:
        """A client of this server was heard from: the leader notes it, a learner reports it."""
        if self.role.role == Role.LEADING:
            self.sessions.touch(session_id)
        elif len(self.touched) < limits.sessions_max:
            self.touched[session_id] = None

    def report_sessions(self) -> None:
        """A learner tells its leader, once a tick, which sessions it heard from."""
        if not self.touched or not self.serving():
            return
        w = Writer()
        w.int(len(self.touched))
        for session_id in self.touched:
            w.long(session_id)
        self.touched.clear()
        self.replica.propose(ForwardedRequest(0, 0, OpCode.PING, (), w.bytes()).encode())

    def on_session_report(self, body: bytes) -> None:
        try:
            r = Reader(body)
            sessions = [r.long() for _ in range(r.vector_length())]
            r.expect_end("session report")
        except RemoteError as e:
            log.warning("dropping a malformed session report: %s", e)
            return
        for session_id in sessions:
            self.sessions.touch(session_id)

    def expire_sessions(self) -> None:
        """The leader's tick: close every session that has been silent past its timeout."""
        for session_id in self.sessions.tick():
            log.info("session %#x expired", session_id)
            self.submit(ForwardedRequest(session_id, 0, OpCode.CLOSE_SESSION, (), b""))

    def reap_containers(self) -> None:
        """The leader's ContainerManager: delete empty containers that once had children and
        TTL nodes idle past their TTL, through Zab like any write (prep checks again)."""
        now_ms = int(time.time() * 1000)
        if now_ms - self.containers_checked_ms < self.conf.container_check_ms:
            return
        self.containers_checked_ms = now_ms
        for path in self.tree.expired_candidates(now_ms):
            log.info("deleting %s: an empty container or an expired TTL node", path)
            self.submit(ForwardedRequest(0, 0, OpCode.DELETE_CONTAINER, (), PathRequest(path).encode()))

    def drain_waiting_writes(self) -> bool:
        """Propose the writes that waited for this leader to catch up; True if any went out."""
        proposed = False
        self.draining = True
        try:
            while self.waiting_writes and self.tree.last_zxid >= self.lead_from:
                if not self.replica.propose(self.waiting_writes[0]):
                    break
                self.waiting_writes.popleft()
                proposed = True
        finally:
            self.draining = False
        return proposed

    # --- Ready --------------------------------------------------------------------------------

    def handle_ready(self) -> None:
        """Act on every Ready; a new leader then proposes the writes that waited for it."""
        self._act_on_ready()
        while self.waiting_writes and self.role.role == Role.LEADING and self.drain_waiting_writes():
            self._act_on_ready()
        self.maybe_snapshot()

    def _act_on_ready(self) -> None:
        while self.replica.has_ready():
            ready = self.replica.ready()
            self._persist(ready)
            for message in ready.messages:
                if message.target not in self.cut:
                    self.peers.send(message.target, encode_message(message))
            if "early_ack" in self.debug and self.role.role == Role.LEADING:
                for zxid, payload in ready.entries:
                    self.apply(zxid, payload)
                    self.applied_early.add(zxid)
            if len(ready.committed) >= BULK_REPLAY_TXNS_MIN and self.bulk_replay_ok():
                self.replay(ready.committed)
            else:
                for zxid, payload in ready.committed:
                    if zxid in self.applied_early:
                        self.applied_early.discard(zxid)
                        continue
                    self.apply(zxid, payload)
            for token, zxid in ready.synced:
                self.clients.on_synced(token, zxid)
            for change in ready.roles:
                self.on_role(change)
            self.replica.advance(ready)
            if not self.replica.has_ready() and self.unsynced:
                self.replica.persisted(self.log.sync())
                self.unsynced = False

    def _persist(self, ready: Ready) -> None:
        if ready.snapshot is not None:
            self.install_snapshot(ready.snapshot)
        elif ready.truncate_zxid is not None:
            self.log.truncate(ready.truncate_zxid)
            drop_snapshots_after(self.data_dir.snap_dir, ready.truncate_zxid)
            self.unsynced = True
        if ready.accepted_epoch is not None:
            write_epoch(self.data_dir.root, ACCEPTED_EPOCH, ready.accepted_epoch)
        if ready.current_epoch is not None:
            write_epoch(self.data_dir.root, CURRENT_EPOCH, ready.current_epoch)
        if ready.entries:
            self.log.append(list(ready.entries))
            self.unsynced = True
        if ready.snapshot is not None:
            self.replica.persisted(self.log.sync())
            self.unsynced = False

    def install_snapshot(self, snap: Snapshot) -> None:
        write_snapshot(self.data_dir.snap_dir, snap.zxid, [snap.payload])
        self.log.truncate(min(self.log.last_zxid(), snap.zxid))
        self.tree = self._load_tree(snap.payload)
        self.prep = Prep(self.tree, self.conf.data_bytes_max)
        self.snapshot_zxid, self.txns_since_snapshot = snap.zxid, 0
        log.info("installed a snapshot at %#x from the leader (%d znodes)", snap.zxid, len(self.tree))

    def apply(self, zxid: int, payload: bytes) -> None:
        txn = Txn.decode(payload)
        assert txn.zxid == zxid, f"log entry {zxid:#x} holds a txn stamped {txn.zxid:#x}"
        result = self.tree.apply(txn)
        self.prep.applied(zxid)
        if txn.header.type == OpCode.CREATE_SESSION and isinstance(txn.body, CreateSessionTxn):
            self.sessions.add(txn.header.client_id, txn.body.timeout_ms)
        elif txn.header.type == OpCode.CLOSE_SESSION:
            self.sessions.remove(txn.header.client_id)
        self.txns_since_snapshot += 1
        self.clients.on_applied(txn.header, result)

    def bulk_replay_ok(self) -> bool:
        """Catching up in bulk skips per-txn replies and watch events: only while no client is
        connected here (a server serves none before it is in broadcast)."""
        return not self.clients.connections and not self.debug

    def track_every_session(self) -> None:
        """Expiry starts afresh from the tree's sessions, each with a full timeout from now."""
        self.sessions = SessionTracker(self.conf.tick_ms)
        for session_id, timeout_ms in self.tree.sessions.items():
            self.sessions.add(session_id, timeout_ms)

    def replay(self, entries: tuple[LogEntry, ...]) -> None:
        """Committed txns applied in native batches (DataTree.replay), as a restarting or far
        behind server catches up: the same tree apply() would leave, without results."""
        started = time.monotonic()
        with collector_paused():
            replay_entries(self.tree, entries)
        gc.freeze()
        self.prep.applied(entries[-1][0])
        self.txns_since_snapshot += len(entries)
        self.track_every_session()
        log.info("replayed %d committed txns in bulk in %.2fs", len(entries), time.monotonic() - started)

    def maybe_snapshot(self) -> None:
        """Snapshot every snapCount txns: a forked child writes the copy-on-write image of the
        tree while this process keeps serving; _reap_children finishes the job."""
        if self.txns_since_snapshot < self.conf.snap_count or self.snapshot_child is not None:
            return
        self.txns_since_snapshot = 0
        zxid = self.tree.last_zxid  # applied txns are committed, so already durable in the log
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                write_snapshot(self.data_dir.snap_dir, zxid, self.tree.snapshot_chunks())
                code = 0
            finally:
                os._exit(code)
        self.snapshot_child = (pid, zxid, time.monotonic())

    def snapshot_done(self, status: int) -> None:
        """The snapshot child exited: on success purge old files and let Zab forget the log
        before the previous snapshot (what is after it still serves DIFFs)."""
        assert self.snapshot_child is not None
        pid, zxid, started = self.snapshot_child
        self.snapshot_child = None
        if status != 0:
            log.error(
                "snapshot at %#x failed in pid %d (status %d); the log still has every txn", zxid, pid, status
            )
            return
        previous, self.snapshot_zxid = self.snapshot_zxid, zxid
        removed = []
        if time.monotonic() - self.purged_at >= self.conf.purge_interval_hours * 3600:
            self.purged_at = time.monotonic()
            removed = purge(self.data_dir.root, keep=self.conf.snap_retain_count, log=self.log)
        log.info(
            "snapshot at %#x written in %.2fs; purged %d old files",
            zxid,
            time.monotonic() - started,
            len(removed),
        )
        try:
            self.replica.compact(previous)
        except LocalError:
            pass  # the previous snapshot is older than what Zab still holds

    def on_role(self, change: RoleChange) -> None:
        log.info("role %s phase %s leader %d epoch %d: %s",
                 change.role.name, change.phase.name, change.leader, change.epoch, change.reason)  # fmt: skip
        if change.role != Role.LEADING:
            self.waiting_writes.clear()  # their clients will time out and retry elsewhere
            self.prep_epoch = -1
        if change.role == Role.LEADING and change.phase == Phase.BROADCAST:
            # A new leader gives every session a full timeout from now, as ZooKeeper does.
            self.track_every_session()
        if self.role.phase == Phase.BROADCAST and change.phase != Phase.BROADCAST:
            self.clients.disconnect_all(f"no longer serving: {change.reason}")
        if change.phase == Phase.BROADCAST and self.tree.index is None:
            started = time.monotonic()
            self.tree.attach_index(native.PathIndex())
            log.info("built the read index of %d znodes in %.2fs", len(self.tree), time.monotonic() - started)
        self.role = change

    # --- loop ---------------------------------------------------------------------------------

    def run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.peers.inbox, zmq.POLLIN)
        poller.register(self.clients.sock, zmq.POLLIN)
        tick_s = self.conf.tick_ms / 1000
        next_tick = time.monotonic() + tick_s
        while self.running:
            timeout_ms = max(0, int((next_tick - time.monotonic()) * 1000))
            events = dict(poller.poll(timeout_ms))
            if self.peers.inbox in events:
                for frame in self.peers.receive():
                    self.on_peer_frame(frame)
            if self.clients.sock in events:
                self.on_client_frames()
            now = time.monotonic()
            if now >= next_tick:
                self.cut = self.blocked.poll()
                self.replica.tick()
                if self.role.role == Role.LEADING and self.serving():
                    self.expire_sessions()
                    self.reap_containers()
                else:
                    self.report_sessions()
                next_tick = max(next_tick + tick_s, now)
            self.handle_ready()
            self._reap_children()
        self.close()

    def on_peer_frame(self, frame: bytes) -> None:
        try:
            message = decode_message(frame)
        except RemoteError as e:
            log.warning("dropping an undecodable peer message: %s", e)
            return
        if message.target != self.server_id or message.source in self.cut:
            return
        self.replica.step(message)

    def on_client_frames(self) -> None:
        """Client frames waiting now, for at most CLIENT_TURN_S: peers and ticks come first, so
        costly requests cannot starve Zab into an election."""
        sock = self.clients.sock
        deadline = time.monotonic() + CLIENT_TURN_S
        for _ in range(CLIENT_TURN_FRAMES_MAX):
            if time.monotonic() > deadline:
                return
            try:
                parts = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(parts) != 2:
                continue  # a ROUTER message is [identity, frame]; anything else is not ours
            try:
                self.clients.on_message(parts[0], parts[1])
            except KeeperError as e:
                log.warning("client %s: %s", parts[0].hex(), e)

    def _reap_children(self) -> None:
        if self.snapshot_child is None:
            return
        try:
            pid, status = os.waitpid(self.snapshot_child[0], os.WNOHANG)
        except ChildProcessError:
            pid, status = self.snapshot_child[0], 1
        if pid:
            self.snapshot_done(os.waitstatus_to_exitcode(status) if status else 0)

    def close(self) -> None:
        if self.unsynced:
            self.log.sync()
        self.log.close()
        self.peers.close()
        self.clients.sock.close()
        self.ctx.term()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cluster.node", description="Run one zkpy server.")
    p.add_argument("--config", required=True, help="the ensemble config file")
    p.add_argument("--id", type=int, required=True, help="this server's id in the config")
    args = p.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s node{args.id} %(levelname)s %(name)s %(message)s"
    )
    try:
        conf = config_mod.load(args.config)
    except LocalError as e:
        print(f"cluster.node: {e}", file=sys.stderr)
        return 2
    if args.id not in conf.servers:
        print(f"server id {args.id} is not in {args.config} (ids: {sorted(conf.servers)})", file=sys.stderr)
        return 2
    try:
        node = Node(conf, args.id)
    except (zmq.ZMQError, OSError, LocalError, StorageError) as e:  # a port taken, a locked log
        log.error("cannot start node %d: %s", args.id, e)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: setattr(node, "running", False))
    signal.signal(signal.SIGINT, lambda *_: setattr(node, "running", False))
    log.info("serving clients at %s (native core: %s)", conf.servers[args.id].client, native.IMPLEMENTATION)
    node.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
