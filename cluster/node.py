"""The node process: sockets, files, fork and the clock around zkcore's Server.

    python -m cluster.node --config ensemble.cfg --id 1

One loop: tell the server the time, step what has arrived, act on its ServerReady (persist,
send, reply, snapshot). The log is group-committed by one fdatasync at a time on a thread of its
own (TxnLog.sync_start): the loop goes on meanwhile, so a slow disk slows writes but silences no
heartbeat, and the writes that arrive during one sync go to disk together in the next.
"""

from __future__ import annotations

import argparse
import enum
import faulthandler
import gc
import importlib
import logging
import math
import os
import random
import resource
import select
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import zmq

import native
from cluster import config as config_mod
from cluster._admin_text import AdminText, LoopStats
from cluster._adminserver import COMMANDS as ADMIN_COMMANDS
from cluster._adminserver import AdminRequest, AdminServer, answer_json, metrics_text
from cluster._coalesce import Coalescer
from cluster._poller import POLLIN, POLLOUT, Poller
from cluster._ports import binding
from cluster._supervisor import die_with_parent
from cluster._transport import peer_transport, prepare_ipc
from cluster._zkdoor import CLIENT_CNXNS_DEFAULT, TcpConnection, ZkDoor
from cluster.faults import BlockedPeers, blocked_path
from cluster.storage import (
    ACCEPTED_EPOCH,
    CURRENT_EPOCH,
    DataDir,
    StorageError,
    TxnLog,
    drop_snapshots_after,
    free_space_text,
    load_snapshot,
    purge_before,
    purge_point,
    read_epoch,
    recover,
    replay_entries,
    write_epoch,
    write_snapshot,
)
from zkcore import (
    DataTree,
    LocalError,
    LogEntry,
    RemoteError,
    limits,
    snapshot_chunks,
    snapshot_node_count,
)
from zkcore._restore import collector_paused
from zkcore.server import SESSION_SECRET_DEFAULT, ConnId, Hooks, Server, ServerConfig, ServerReady
from zkcore.zab import Config, Message, decode_message, encode_message_parts

log = logging.getLogger("zkpy.node")
CLIENT_TURN_S = 0.02  # client work per loop turn, between looks at peers and the clock
CLIENT_TURN_FRAMES_MAX = 1000
# Socket flags as plain ints, a little cheaper per call than pyzmq's enum flags.
NOBLOCK = int(zmq.NOBLOCK)
SNDMORE_NOBLOCK = int(zmq.SNDMORE | zmq.NOBLOCK)
CLIENT_BATCH_FRAMES = 200  # frames taken off the socket before the server sees them
# The loop waits this long for the log sync it starts, as if it ran fdatasync itself: a turn
# then reads, logs and answers a batch, and the next batch is what those answers bring back
# (group commit). A sync still running after it is taken up when it ends, and the loop goes
# on meanwhile: a slow disk slows the writes, never the heartbeats, the reads or the peers.
SYNC_WAIT_MS = 20


LOOPBACK = "127.0.0.1"


def peer_address(frame: zmq.Frame) -> str | None:
    """The IP address a ZeroMQ message came from over tcp (libzmq's Peer-Address); None if
    the transport does not say."""
    try:
        return str(frame.get("Peer-Address"))
    except (zmq.ZMQError, UnicodeDecodeError):
        return None


def fast_enum_members() -> None:
    """Python 3.11's EnumType has a __getattr__ (a fallback for member names it could not put in
    the class dict; 3.12 dropped it), and any __getattr__ on a metaclass sends every class
    attribute read through the slow generic hook: `OpCode.SET_DATA` costs 250 ns instead of 60.
    A write reads some 24 members (Code.OK, Role.LEADING, OpCode...), about a twentieth of the
    server's CPU per write. Every member is in its class's dict, so this process drops the
    fallback."""
    if "__getattr__" in vars(enum.EnumType):
        delattr(enum.EnumType, "__getattr__")


YOUNG_COLLECTION_ALLOCS = 10_000


def rarer_young_collections() -> None:
    """The cyclic collector's youngest generation is collected every YOUNG_COLLECTION_ALLOCS
    net allocations instead of 700: a write allocates dozens of short-lived objects, and at 700
    the collections cost about 7 % of a write (in process, 100 pipelined setData: 23.6-24.4 us
    a write, 22.3-22.5 at 10,000 and 22.1-22.8 with the collector off). The server makes no
    cycles (tests/zkcore/test_no_cycles.py), so nothing waits longer to be freed."""
    gc.set_threshold(YOUNG_COLLECTION_ALLOCS, *gc.get_threshold()[1:])


def more_file_descriptors() -> tuple[int, int]:
    """Raise this process's soft limit on open files to its hard one, as Go programs do at
    start: each client connection takes a descriptor, and libzmq 4.3 aborts the process when
    its ipc listener finds none left (src/ipc_listener.cpp; the ZooKeeper door only waits, see
    ZkDoor.accept), while the soft limit is often 1,024 under a hard one of 524,288 (systemd's
    default). (the limit before, the limit now)"""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard
    if want == resource.RLIM_INFINITY:
        try:
            want = int(Path("/proc/sys/fs/nr_open").read_text())
        except (OSError, ValueError):
            want = soft
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            return soft, soft
        return soft, want
    return soft, soft


def load_tree(payload: bytes | None, index: native.PathIndex | None = None) -> DataTree:
    """A snapshot as a tree (None: the empty tree), its records scanned natively, kept in
    `index` when given."""
    with collector_paused():
        tree = load_snapshot(payload, index)
    gc.freeze()  # a million long-lived nodes: later collections need not walk them
    return tree


def load_snap(payload: bytes) -> DataTree:
    """A leader's SNAP, its read index filled as it loads (from the snapshot's columns): that
    costs the sync, where initLimit applies, not the moment this follower starts serving,
    where a second of filling it made the leader give up on it (syncLimit)."""
    return load_tree(payload, new_index())


def replay(tree: DataTree, entries: Sequence[LogEntry]) -> None:
    """Committed txns applied in native batches (DataTree.replay): the same tree apply() leaves."""
    started = time.monotonic()
    with collector_paused():
        replay_entries(tree, entries)
    gc.freeze()
    log.info("replayed %d committed txns in bulk in %.2fs", len(entries), time.monotonic() - started)


def new_index() -> native.PathIndex:
    return native.PathIndex()


def snap_stall_warning(znodes: int, spent_s: float, conf: config_mod.EnsembleConfig) -> str | None:
    """What to tell the operator when sending a SNAP (reading the tree's image a child made,
    and handing it to the peer transport) held this leader up longer than its followers wait
    for it (syncLimit x tickTime): they may elect again, and the follower that needed the SNAP
    waits initLimit x tickTime for all of it."""
    tick_s = conf.tick_ms / 1000
    if spent_s <= conf.sync_limit_ticks * tick_s:
        return None
    sync_ticks, init_ticks = (max(now, math.ceil(factor * spent_s / tick_s)) for now, factor in
                              ((conf.sync_limit_ticks, 2), (conf.init_limit_ticks, 6)))  # fmt: skip
    return (
        f"a follower needed the whole tree (SNAP): sending its {znodes:,} znodes took {spent_s:.2f}s, and "
        f"this leader heard and answered nobody meanwhile. Followers give up on a leader silent for "
        f"syncLimit x tickTime = {conf.sync_limit_ticks * tick_s:.2f}s, so they may have elected again. "
        f"For a tree this size set syncLimit={sync_ticks} and initLimit={init_ticks} (tickTime={conf.tick_ms})"
    )


CHILD_NICE = 10  # the forked writers of snapshots and SNAP images run at this lower priority
IMAGE_PREFIX = "snap-image."  # in the node's directory: a SNAP's tree, while a child writes it


class SurvivorFreezer:
    """Freezes what survives each full collection of the cyclic collector (gc.freeze, at the end
    of the loop turn after it), so that the next one walks only what came since. A full
    collection walks every object not frozen: the tree a node builds while serving (its load
    and replay are frozen already) grows that to 0.3 s at a million znodes, and the
    collector keeps running them as the tree grows. In process, 1M creates (a throwaway script
    over bench/bench_server.py's server, the collector's default thresholds): 62 full
    collections of up to 315 ms, against one of 14 ms then about 2 ms each, and 13 % less time
    in all. Freezing keeps the collector from ever freeing a cycle among frozen objects; the
    server makes none (tests/zkcore/test_no_cycles.py), so it costs nothing it could have freed."""

    def __init__(self) -> None:
        self.due = False
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "stop" and info["generation"] == 2:
            self.due = True

    def poll(self) -> None:
        if self.due:
            self.due = False
            gc.freeze()

    def close(self) -> None:
        gc.callbacks.remove(self._on_gc)


@dataclass(frozen=True, slots=True)
class Child:
    """A forked writer: of a snapshot (`path` None), which may answer on the pipe `answer` how
    old the files it found to purge are, or of a SNAP's image to `path`."""

    zxid: int
    started: float
    path: Path | None = None
    answer: int | None = None

    @property
    def kind(self) -> str:
        return "snapshot" if self.path is None else "SNAP image"


def server_class(spec: str) -> type[Server]:
    """`module:Class` from the config's serverClass: a Server subclass (the verifier's
    deliberately broken variants live in verify.broken); empty means Server."""
    if not spec:
        return Server
    module, _, name = spec.partition(":")
    cls = getattr(importlib.import_module(module), name, None)
    if not (isinstance(cls, type) and issubclass(cls, Server)):
        raise LocalError(f"serverClass must name a zkcore Server subclass as module:Class: {spec!r}")
    return cls


def server_config(conf: config_mod.EnsembleConfig) -> ServerConfig:
    zab = Config(tuple(conf.voters), tuple(conf.observers), init_limit_ticks=conf.init_limit_ticks,
                 sync_limit_ticks=conf.sync_limit_ticks, diff_entries_max=conf.diff_entries_max)  # fmt: skip
    return ServerConfig(
        zab,
        tick_ms=conf.tick_ms,
        session_timeout_min_ms=conf.session_timeout_min_ms,
        session_timeout_max_ms=conf.session_timeout_max_ms,
        data_bytes_max=conf.data_bytes_max,
        snap_count=conf.snap_count,
        snap_size_limit_kb=conf.snap_size_limit_kb,
        container_check_ms=conf.container_check_ms,
        secret=conf.extra.get("sessionSecret", "").encode() or SESSION_SECRET_DEFAULT,
    )


def clock() -> tuple[float, int]:
    """(monotonic ms, wall-clock ms): the server's two clocks."""
    return time.monotonic() * 1000, int(time.time() * 1000)


def wait_ms(until_s: float, now_s: float) -> int:
    """How long to wait for `until_s` (monotonic seconds), in whole milliseconds rounded up. A
    wait rounded down ends before it, and the loop then spun through the rest of that
    millisecond with waits of 0: about 2,300 empty loop turns a second on a follower, and 1.6 %
    of a core for each idle node. (A nanosecond's slack: 10.05 - 10.0 is 50.0000000000007 ms.)"""
    return max(0, math.ceil((until_s - now_s) * 1000 - 1e-6))


class Node:
    def __init__(self, conf: config_mod.EnsembleConfig, server_id: int) -> None:
        self.conf, self.server_id = conf, server_id
        self.data_dir = DataDir.create(conf.node_dir(server_id))
        self.log = TxnLog(self.data_dir.log_dir)
        log.info("reading the snapshot and txn log in %s", self.data_dir.root)
        recovered = recover(self.data_dir.root, log=self.log)
        for report in recovered.report:
            log.warning("recovery: %s", report)
        started = time.monotonic()
        if recovered.snapshot_payload is not None:  # a big one takes a while: say what is going on
            log.info("loading the snapshot at %#x: %d znodes in %.1f MB", recovered.snapshot_zxid,
                     snapshot_node_count(recovered.snapshot_payload), len(recovered.snapshot_payload) / 1e6)  # fmt: skip
        tree = load_tree(recovered.snapshot_payload, new_index())
        log.info("loaded snapshot at %#x (%d znodes) in %.2fs; %d logged txns after it",
                 recovered.snapshot_zxid, len(tree), time.monotonic() - started, len(recovered.txns))  # fmt: skip
        cls = server_class(conf.extra.get("serverClass", ""))
        if cls is not Server:
            log.warning(
                "SERVER CLASS %s.%s: guarantees may be deliberately broken", cls.__module__, cls.__name__
            )
        now_ms, wall_ms = clock()
        self.server = cls(
            server_config(conf),
            server_id,
            rng=random.Random(server_id * 7919 + wall_ms),
            storage=self.log,
            tree=tree,
            now_ms=now_ms,
            wall_ms=wall_ms,
            accepted_epoch=read_epoch(self.data_dir.root, ACCEPTED_EPOCH) or 0,
            current_epoch=read_epoch(self.data_dir.root, CURRENT_EPOCH) or 0,
            hooks=Hooks(
                load_tree=load_snap,
                replay=replay,
                new_index=new_index,
                decode_txns=native.decode_txns,
                snap_images=True,
            ),
        )
        self.children: dict[int, Child] = {}  # pid: the forked writers of snapshots and SNAP images
        for stale in self.data_dir.root.glob(f"{IMAGE_PREFIX}*"):  # a kill -9 left it
            stale.unlink(missing_ok=True)
        self.purged_at = -float("inf")  # autopurge.purgeInterval counts from here
        self.unsynced = False
        self.sync_waiter = select.poll()  # the log sync's eventfd alone
        self.blocked = BlockedPeers(blocked_path(conf.data_dir, server_id))
        self.cut: frozenset[int] = frozenset()
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        with binding(conf.servers[server_id].peer, "its port for the other servers"):
            self.peers = peer_transport(self.ctx, conf, server_id)
        self.held: dict[bytes, list[bytes]] = {}  # client frames taken off the socket, not yet fed
        # The ZooKeeper door's frames read from a connection the server had no room for: that
        # connection is not read again until they are all fed.
        self.zk_held: dict[int, list[bytes]] = {}
        sock = self.ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 100_000)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)  # a reply that cannot be queued raises
        # A frame over the limit disconnects its sender before we ever buffer it.
        sock.setsockopt(zmq.MAXMSGSIZE, limits.frame_bytes_max)
        endpoint = conf.servers[server_id].client
        prepare_ipc(endpoint)
        with binding(endpoint, "its port for ZeroMQ clients"):
            sock.bind(endpoint)
        self.client_sock = sock
        # The IP address of each ZeroMQ client over tcp whose connection the server does not
        # know yet, from its first frame (its connection's ip identity); None over ipc, whose
        # clients are all on this host.
        self.client_addresses: dict[bytes, str | None] | None = {} if endpoint.startswith("tcp://") else None
        self.client_sock_used = False  # sent on, or read without a poll's word: the poller asks it
        zk_address = conf.servers[server_id].zk
        cnxns = int(conf.extra.get("maxClientCnxns", CLIENT_CNXNS_DEFAULT))
        with binding(zk_address, "its port for ZooKeeper clients"):
            self.zk = ZkDoor(zk_address, cnxns) if zk_address else None
        self.loop = LoopStats()
        self.coalescer = Coalescer(conf.coalesce_us, conf.coalesce_pipelined_us, self.loop)
        self.admin = AdminText(conf, server_id, self.data_dir, self.peers, self.log, self.loop)
        admin_address = conf.servers[server_id].admin
        with binding(admin_address, "its AdminServer's HTTP port"):
            self.admin_server = AdminServer(admin_address, self._answer_admin) if admin_address else None
        self.freezer = SurvivorFreezer()
        self.running = True

    # --- the loop -----------------------------------------------------------------------------

    def run(self) -> None:
        poller = Poller()
        for target in self.peers.poll_targets():
            poller.register(target, POLLIN)
        poller.register(self.client_sock, POLLIN)
        polled: dict[int, int] = {}  # the ZooKeeper door's fds, and what we poll them for
        if self.zk is not None:
            poller.register(self.zk.fileno(), POLLIN)
            polled[self.zk.fileno()] = POLLIN  # the door stops and resumes polling it (accept())

            def closing(fd: int) -> None:
                if polled.pop(fd, None) is not None:
                    poller.unregister(fd)

            self.zk.closing_fd = closing
        if self.admin_server is not None:
            poller.register(self.admin_server.fileno(), POLLIN)
        sync_fd = self.log.sync_fileno()
        poller.register(sync_fd, POLLIN)
        self.sync_waiter.register(sync_fd, select.POLLIN)
        tick_s = self.conf.tick_ms / 1000
        next_tick = time.monotonic()
        admin_fd = self.admin_server.fileno() if self.admin_server is not None else None
        zk = self.zk
        # Each turn asks only what may have changed (an attribute, not a call, where one says):
        # a turn is paid for every message a write takes, and most find nothing to do in most
        # places they look.
        loop, clients, coalescer = self.loop, self.server.clients, self.coalescer
        nap_until = 0.0  # a busy turn's end: see EnsembleConfig.coalesce_us
        while self.running:
            polled_at = time.monotonic()
            if nap_until > polled_at:
                time.sleep(nap_until - polled_at)
                polled_at = time.monotonic()
            loop.turns += 1
            timeout_ms = wait_ms(next_tick, polled_at)
            if (
                self.peers.before_poll()
                or (self.held and self._held_ready())
                or (zk is not None and zk.backlog)
            ):
                timeout_ms = 0  # a peer message came after we last looked, or client frames wait
            elif self.peers.holding():
                timeout_ms = min(timeout_ms, 1)  # a peer's ring was full: try it again soon
            if self.client_sock_used:
                self.client_sock_used = False
                poller.touch(self.client_sock)
            events = poller.poll(timeout_ms)
            self.peers.after_poll()
            now_ms, wall_ms = clock()
            # A poll that found its events waiting (Poller.slept), in a turn that answers several
            # plain reads and takes nothing else, means readers keep the node busy: a nap follows
            # (Coalescer), a longer one when those reads came pipelined. A node that waits for
            # each request (unloaded, or serving a client that awaits each reply) never naps, nor
            # does a turn that takes a write: group commit batches writes already, and a nap
            # would hold up their commit.
            found_waiting = not poller.slept
            self.server.tick(now_ms, wall_ms)  # the time first: a resumed process learns how long it slept
            if sync_fd in events:
                self._sync_done()
            if now_ms >= next_tick * 1000:
                self.cut = self.blocked.poll()
                self.peers.tick()
                next_tick = time.monotonic() + tick_s
                self._close_stale_handshakes()
            messages = [m for m in map(self.peer_message, self.peers.receive(events)) if m is not None]
            if messages:
                self.server.step_many(messages)
            lost = self.peers.lost(events)
            for sid in lost:
                self.server.peer_lost(sid)
            if lost:  # a transport may reopen the fd it polls for a peer (same number, new file)
                for target in self.peers.poll_targets():
                    poller.register(target, POLLIN)
            received, streamed, runs = clients.packets_received, clients.reads_streamed, clients.read_runs
            if self.client_sock in events or self.held:
                self.on_client_frames()
            if zk is not None:
                self.on_zk_events(events)
            self.handle_ready()
            if self.zk_held and self._feed_zk_held():  # held frames taken count as this turn's
                self.handle_ready()
            nap_until = (
                coalescer.nap_until_ms(
                    now_ms,
                    found_waiting,
                    clients.packets_received - received,
                    clients.reads_streamed - streamed,
                    clients.read_runs - runs,
                    bool(messages),
                    self.log.syncing,
                )
                / 1000
            )
            if zk is not None:
                if zk.pending:
                    for conn in zk.flush_pending():
                        self.server.close(conn)
                if zk.changed or zk.accept_paused_until:
                    self._poll_zk_connections(poller, polled)
            if admin_fd in events:
                assert self.admin_server is not None
                self.admin_server.handle()
            if self.children:
                self._reap_children()
            if self.freezer.due:
                self.freezer.poll()
        self.close()
        poller.close()

    def peer_message(self, frame: bytes) -> Message | None:
        """A peer's frame as the message to step, or None: undecodable, not ours, or from a
        peer the blocked-links file cuts us off from."""
        try:
            message = decode_message(frame)
        except RemoteError as e:
            log.warning("dropping an undecodable peer message: %s", e)
            return None
        if message.target != self.server_id or message.source in self.cut:
            return None
        return message

    def on_client_frames(self) -> None:
        """Client frames waiting now, for at most CLIENT_TURN_S: peers and ticks come first, so
        costly requests cannot starve Zab into an election. Frames taken off the socket but not
        yet given to the server when the time is up are held, and go first next turn."""
        deadline = time.monotonic() + CLIENT_TURN_S
        for _ in range(CLIENT_TURN_FRAMES_MAX // CLIENT_BATCH_FRAMES):
            if not self._feed_held(deadline):
                return
            if self._take_client_frames() < CLIENT_BATCH_FRAMES:
                self._feed_held(deadline)
                return

    def _take_client_frames(self) -> int:
        """Up to CLIENT_BATCH_FRAMES messages from the socket into `held`, grouped by client in
        its order, so that a client's reads are answered in one batch; how many were taken. A
        ROUTER message is [identity, frame]; anything else is not ours. (recv, not recv_multipart:
        pyzmq's multipart calls cost five times as much.)"""
        sock, held = self.client_sock, self.held
        self.client_sock_used = True
        known, addresses = self.server.clients.connections, self.client_addresses
        taken = 0
        while taken < CLIENT_BATCH_FRAMES:
            try:
                conn = sock.recv(NOBLOCK)
                part = sock.recv(NOBLOCK, copy=False)
            except zmq.Again:
                break
            taken += 1
            if part.more:
                self._discard_rest(sock)
                continue
            if addresses is not None and conn not in known and conn not in addresses:
                addresses[conn] = peer_address(part)
            held.setdefault(conn, []).append(part.bytes)
        return taken

    def _feed_held(self, deadline: float) -> bool:
        """Give the server the held frames, each client's in order; False if time ran out. A
        client the server has no room for keeps its frames here until it has (the ZeroMQ door's
        backpressure: one socket serves every client, so its frames are taken off it anyway),
        unless it has more than limits.client_queue_max of them: then the server gets the next
        one now, and cuts the client off."""
        held, server, addresses = self.held, self.server, self.client_addresses
        for conn in list(held):
            frames = held[conn]
            # A client over ipc is on this host: its connection's ip identity is the loopback's.
            address = LOOPBACK if addresses is None else addresses.pop(conn, None)
            while frames and self._may_feed(conn, frames):
                del frames[: server.receive_frames(conn, frames, address)]
                if time.monotonic() > deadline:
                    if not frames:
                        del held[conn]
                    return False
            if not frames:
                del held[conn]
        return True

    def _may_feed(self, conn: ConnId, frames: list[bytes]) -> bool:
        """Whether a client's held frames go to the server now (see _feed_held)."""
        return self.server.has_room(conn) or len(frames) > limits.client_queue_max

    def _held_ready(self) -> bool:
        """Whether any held frames can be given to the server now."""
        return any(self._may_feed(conn, frames) for conn, frames in self.held.items())

    @staticmethod
    def _discard_rest(sock: zmq.Socket[bytes]) -> None:
        """The rest of a message of more than [identity, frame] parts: not our protocol."""
        while sock.recv(NOBLOCK, copy=False).more:
            pass

    def on_zk_events(self, events: dict[object, int]) -> None:
        """The ZooKeeper-protocol door: new connections, frames, and sockets ready to write."""
        zk, server = self.zk, self.server
        assert zk is not None
        listen_fd = zk.fileno()  # once a turn, not once an event
        for fd, event in events.items():
            if fd == listen_fd:
                zk.accept()
                continue
            if not isinstance(fd, int) or fd not in zk.by_fd:
                continue
            if event & POLLOUT:
                cut = zk.on_writable(fd)
                if cut is not None:
                    server.close(cut)
            tcp = zk.by_fd.get(fd)  # gone if the write above cut it off
            if event & POLLIN and tcp is not None:
                self._read_zk(fd, tcp, recv=True)
        if not zk.backlog:
            return
        for tcp in zk.backlogged():
            fd = tcp.sock.fileno()
            if fd not in events:
                self._read_zk(fd, tcp, recv=False)

    def _read_zk(self, fd: int, tcp: TcpConnection, recv: bool) -> None:
        """One connection's frames, read from its socket (recv) or only from what it buffered."""
        zk, server = self.zk, self.server
        assert zk is not None
        conn, address = tcp.conn_id, tcp.address
        frames: list[bytes] = []  # given to the server together
        for _, item in zk.read(fd, self._take_reads, recv):
            if isinstance(item, bytes):
                frames.append(item)
                continue
            self._feed(conn, frames, address)
            if item is None:
                frames.clear()  # what the server had no room for goes with the connection
                server.close(conn)
            else:
                zk.send_text(conn, self.admin.answer(item, server))
        self._feed(conn, frames, address)
        if frames:  # no room for them: read no more of it until there is
            self.zk_held[conn] = frames
            zk.pause(conn)

    def _take_reads(self, conn: int, data: bytearray) -> int:
        """The run of plain reads that opens a connection's bytes, answered by the server and
        written at once; how many bytes it took."""
        taken, replies = self.server.receive_stream(conn, data)
        if taken:
            self.coalescer.answered(conn)
        if replies:
            assert self.zk is not None
            self.zk.send_now(conn, replies)
        return taken

    def _feed(self, conn: ConnId, frames: list[bytes], address: str | None) -> None:
        """Give the server one connection's frames, in order (it takes them a run at a time),
        while it has room for them; what it had no room for stays in `frames`. `address`: the
        client's IP address (its connection's ip identity)."""
        while frames and self.server.has_room(conn):
            del frames[: self.server.receive_frames(conn, frames, address)]

    def _feed_zk_held(self) -> bool:
        """The held frames of connections the server has room for again (after its replies went
        out); a connection whose frames are all taken is read again. Whether any were taken.
        ZooKeeper's server stops reading a client the same way: a client that pipelines more
        than limits.client_queue_max requests is slowed down, not cut off, and its replies keep
        their order."""
        zk = self.zk
        assert zk is not None
        fed = False
        for conn, frames in list(self.zk_held.items()):
            tcp = zk.connections.get(conn)
            if tcp is None or tcp.closing:  # gone, or the server forgot it: its requests with it
                del self.zk_held[conn]
                continue
            waiting = len(frames)
            self._feed(conn, frames, tcp.address)
            fed = fed or len(frames) < waiting
            if not frames:
                del self.zk_held[conn]
                zk.resume(conn)
        return fed

    def _poll_zk_connections(self, poller: Poller, polled: dict[int, int]) -> None:
        """Poll each open connection for reading, and for writing while it has output queued
        (looking only at those whose output changed this turn)."""
        zk = self.zk
        assert zk is not None
        for fd, reading, writing in zk.interest():
            want = (POLLIN if reading else 0) | (POLLOUT if writing else 0)
            if polled.get(fd, 0) == want:
                continue
            if want:
                poller.register(fd, want)
                polled[fd] = want
            else:
                poller.unregister(fd)
                del polled[fd]

    def _answer_admin(self, request: AdminRequest) -> None:
        """An AdminServer request, answered from the server's public API."""
        if request.command == "metrics":
            stats = self.server.stats()
            request.body = metrics_text(
                self.admin.mntr_values(stats), stats.latency_buckets, stats.latency_sum_ms
            )
            request.content_type = "text/plain; version=0.0.4; charset=utf-8"
        elif request.command == "list":
            answer_json(request, "list", {"commands": list(ADMIN_COMMANDS)})
        else:
            answer_json(request, request.command, self.admin.command_values(request.command, self.server))

    def _close_stale_handshakes(self) -> None:
        if self.zk is not None:
            for conn in self.zk.stale():
                self.zk.close(conn)
                self.server.close(conn)

    # --- acting on ServerReady ------------------------------------------------------------------

    def handle_ready(self) -> None:
        """Act on every ServerReady, then sync what they appended to the log, waiting up to
        SYNC_WAIT_MS for it (unless a sync is running already: the next starts once it ends)."""
        server = self.server
        while True:
            self._act_on_ready()
            if not self.unsynced or self.log.syncing:
                return
            self.unsynced = False
            if not self.log.sync_start():
                server.persisted(self.log.durable_zxid)  # nothing to sync (a truncation): tell now
            elif not (self.sync_waiter.poll(SYNC_WAIT_MS) and self._sync_done()):
                return  # a slow disk: the loop goes on, and polls for the end of the sync

    def _sync_done(self) -> bool:
        """Tell the server what a finished log sync made durable; False if none finished."""
        durable = self.log.sync_done()
        if durable is None:
            return False
        self.server.persisted(durable)
        return True

    def _act_on_ready(self) -> None:
        server = self.server
        while server.has_ready():
            ready = server.ready()
            self._persist(ready)
            for message in ready.messages:
                if message.target not in self.cut:
                    self.peers.send(message.target, *encode_message_parts(message))
            if ready.entries and ready.snapshot is None:  # a leader's PROPOSALs go out first
                self.log.append(list(ready.entries))
                self.unsynced = True
            sends: Sequence[tuple[ConnId, bytes | None]] = ready.sends
            if sends and self.zk is not None:  # the ZooKeeper door's replies queued in one call
                sends, cut = self.zk.send_replies(sends)
                for cut_id in cut:
                    self.server.close(cut_id)
            failed: set[ConnId] = set()
            for conn, frame in sends:
                if conn not in failed and not self._send(conn, frame):
                    failed.add(conn)  # nothing more to it: a gap in its replies would go unseen
            for conn in ready.closed:
                if isinstance(conn, int) and self.zk is not None:
                    self.zk.close_after_flush(conn)  # TCP: ZooKeeper closes; ZeroMQ: nothing to do
            for conn, word in ready.admin:
                self._send(conn, self.admin.answer(word, server).encode(), forget=False)
            if ready.snapshot_due is not None:
                self._start_snapshot(ready.snapshot_due)
            if ready.snap_image_due is not None:
                self._start_snap_image(ready.snap_image_due)
            for note in ready.notes:
                log.info("%s", note)
            server.advance(ready)

    def _persist(self, ready: ServerReady) -> None:
        """What must be on disk before anything is sent: a SNAP with its entries, a truncation,
        the epochs. Other entries are appended by the caller after the messages went out."""
        snap = ready.snapshot
        if snap is not None:
            write_snapshot(self.data_dir.snap_dir, snap.zxid, [snap.payload])
            self.log.truncate(min(self.log.last_zxid(), snap.zxid))
        elif ready.truncate_zxid is not None:
            self.log.truncate(ready.truncate_zxid)
            drop_snapshots_after(self.data_dir.snap_dir, ready.truncate_zxid)
            self.unsynced = True
        if ready.accepted_epoch is not None:
            write_epoch(self.data_dir.root, ACCEPTED_EPOCH, ready.accepted_epoch)
        if ready.current_epoch is not None:
            write_epoch(self.data_dir.root, CURRENT_EPOCH, ready.current_epoch)
        if snap is not None:
            if ready.entries:
                self.log.append(list(ready.entries))
            self.unsynced = False
            self.server.persisted(self.log.fsync())

    def _send(self, conn: ConnId, frame: bytes | None, forget: bool = True) -> bool:
        """One frame to a client (None: an empty frame, which tells it to go). The socket is
        ROUTER_MANDATORY: a client whose queue is full (it does not read) or that is gone raises
        instead of losing the frame silently, and is cut off; it must reconnect."""
        if isinstance(conn, int):
            return self._send_zk(conn, frame, forget)
        assert isinstance(conn, bytes)
        self.client_sock_used = True
        try:
            sock = self.client_sock
            sock.send(conn, SNDMORE_NOBLOCK)  # unroutable or full: raises, and nothing is queued
            sock.send(frame or b"", NOBLOCK)
            return True
        except zmq.Again:
            log.warning("client %s is not reading its replies; cutting it off", conn.hex())
        except zmq.ZMQError as e:
            # One that asked a four-letter word and gave up (`forget` is False for those) is no
            # news: a launcher polls a node that is still loading a big tree hundreds of times.
            (log.info if forget else log.debug)("client %s is gone (%s)", conn.hex(), e)
        if forget:
            self.server.close(conn)
        return False

    def _send_zk(self, conn: int, frame: bytes | None, forget: bool) -> bool:
        zk = self.zk
        assert zk is not None
        if frame is None:
            zk.close_after_flush(conn)  # ZooKeeper closes the socket of a client it drops
            return True
        if zk.send(conn, frame):
            return True
        if forget:
            self.server.close(conn)
        return False

    # --- snapshots ----------------------------------------------------------------------------

    def _fork(
        self, zxid: int, write: Callable[[], object], path: Path | None = None, answer: int | None = None
    ) -> None:
        """A forked child runs `write` on the copy-on-write image of the tree while this process
        keeps serving; _reap_children reports the result."""
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                # It shares every descriptor of the node: the log's lock, the client port, the
                # rings. Were it to outlive a node killed with kill -9, the node's restart would
                # find them taken until the snapshot is written (a minute for 10M znodes).
                die_with_parent(parent, signal.SIGKILL)
                self._close_in_child()
                # Nobody waits on it by the millisecond: on a host short of cores, the servers'
                # loops come first (a leader starved for syncLimit x tickTime loses its quorum).
                os.nice(CHILD_NICE)
                write()
                code = 0
            finally:
                os._exit(code)
        self.children[pid] = Child(zxid, time.monotonic(), path, answer)

    def _close_in_child(self) -> None:
        """A forked child's copies of the client connections and of the peers' FIFOs: closed,
        so that a connection the node closes is closed for its client at once (not when the
        snapshot is written), and a FIFO the node reopens leaves nothing behind in its epoll set
        (which keeps an fd's registration while any process holds the file)."""
        if self.zk is not None:
            for conn in self.zk.connections.values():
                conn.sock.close()
        for target in self.peers.poll_targets():
            if isinstance(target, int):
                os.close(target)

    def _start_snapshot(self, zxid: int) -> None:
        tree = self.server.tree
        purge_due = time.monotonic() - self.purged_at >= self.conf.purge_interval_hours * 3600
        if purge_due:
            self.purged_at = time.monotonic()
        answer, tell = os.pipe()

        def write() -> None:
            # The tree may hold committed txns the log has not synced yet (a server applies what
            # a quorum made durable): the log first, so that no snapshot outlives its log.
            self.log.fdatasync_in_child()
            write_snapshot(self.data_dir.snap_dir, zxid, snapshot_chunks(tree))
            # Which older files may go: that reads every byte of the snapshots kept (seconds for
            # a big tree, which in the loop lost a leader its quorum), so the child finds out.
            point = purge_point(self.data_dir.root, self.conf.snap_retain_count) if purge_due else None
            os.write(tell, b"" if point is None else b"%d" % point)

        self._fork(zxid, write, answer=answer)
        os.close(tell)

    def _start_snap_image(self, zxid: int) -> None:
        """The tree for a leader's SNAP, written by a child to a file that is read back when it
        is done (not durable: a node that restarts removes it)."""
        path = self.data_dir.root / f"{IMAGE_PREFIX}{zxid:016x}"
        tree = self.server.tree

        def write() -> None:
            with open(path, "wb") as f:
                for chunk in snapshot_chunks(tree):
                    f.write(chunk)

        self._fork(zxid, write, path)

    def _reap_children(self) -> None:
        for pid in list(self.children):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 1
            if done:
                self._child_done(self.children.pop(pid), status == 0)

    def _child_done(self, child: Child, ok: bool) -> None:
        spent = time.monotonic() - child.started
        if child.path is not None:
            self._send_snap_image(child, ok, spent)
            return
        point = b""
        if child.answer is not None:
            point = os.read(child.answer, 32) if ok else b""
            os.close(child.answer)
        if ok:
            removed = purge_before(self.data_dir.root, int(point), log=self.log) if point else []
            log.info("snapshot at %#x written in %.2fs; purged %d old files", child.zxid, spent, len(removed))
        else:
            log.warning("the snapshot at %#x failed after %.2fs (%s free on the disk of %s); the log "
                        "still holds everything it would have held", child.zxid, spent,
                        free_space_text(self.data_dir.snap_dir), self.data_dir.snap_dir)  # fmt: skip
        self.server.snapshot_done(child.zxid, ok)

    def _send_snap_image(self, child: Child, ok: bool, spent: float) -> None:
        """Hand the server the image a child made: the learners waiting for it are sent it now,
        in this loop turn, which is the one stop a SNAP still costs the leader."""
        assert child.path is not None
        started = time.monotonic()
        payload = None
        try:
            if ok:
                payload = child.path.read_bytes()
        except OSError as e:
            log.warning("cannot read the image of the tree for a SNAP: %s", e)
        child.path.unlink(missing_ok=True)
        self.server.snap_image(child.zxid, payload)
        self.handle_ready()
        if payload is not None:
            znodes, stopped = len(self.server.tree), time.monotonic() - started
            log.info("image of the tree at %#x for a SNAP: %d znodes, %.1f MB, made in %.2fs by a child, "
                     "read and sent in %.3fs", child.zxid, znodes, len(payload) / 1e6, spent, stopped)  # fmt: skip
            warning = snap_stall_warning(znodes, stopped, self.conf)
            if warning is not None:
                log.warning("%s", warning)

    def close(self) -> None:
        for pid, child in self.children.items():  # the log holds all a snapshot would have written
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            if child.path is not None:
                child.path.unlink(missing_ok=True)
            if child.answer is not None:
                os.close(child.answer)
            log.info("stopped writing the %s at %#x", child.kind, child.zxid)
        self.children.clear()
        if self.unsynced or self.log.syncing:
            self.log.fsync()
        self.log.close()
        self.peers.close()
        self.client_sock.close()
        if self.zk is not None:
            self.zk.shutdown()
        if self.admin_server is not None:
            self.admin_server.close()
        self.freezer.close()
        self.ctx.term()


STOP_DUMP_S = 10.0  # a node still running this long after SIGTERM logs where it is stuck


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cluster.node", description="Run one zkpy server.")
    p.add_argument("--config", required=True, help="the ensemble config file")
    p.add_argument("--id", type=int, required=True, help="this server's id in the config")
    args = p.parse_args(argv)
    fast_enum_members()
    rarer_young_collections()
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s node{args.id} %(levelname)s %(name)s %(message)s"
    )
    before, limit = more_file_descriptors()
    if limit != before:
        log.info("open files: up to %d (the soft limit was %d)", limit, before)
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

    def stop(*_: object) -> None:
        node.running = False
        # A node that had not exited 60 s after SIGTERM was seen twice in CI, cause not found:
        # should it happen again, every thread's stack goes to the log after STOP_DUMP_S.
        faulthandler.dump_traceback_later(STOP_DUMP_S)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("serving clients at %s (native core: %s)", conf.servers[args.id].client, native.IMPLEMENTATION)
    try:
        node.run()
    except StorageError as e:  # a write or fsync failed: only a restart (and recovery) goes on
        log.error("stopping: %s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
