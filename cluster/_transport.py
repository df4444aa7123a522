"""Peer traffic over ZeroMQ: each node binds one PULL socket at its peer endpoint and keeps a
PUSH socket connected to every other node's. A message is one frame: an encoded Zab message.

ZeroMQ keeps order on one connection but may drop what is queued across a reconnect or at the
high-water mark; sends never block (a full or unconnected peer drops the message), and Zab
notices the gap or the silence and resynchronises.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

import zmq
from zmq.utils.monitor import recv_monitor_message

from cluster.config import EnsembleConfig

if TYPE_CHECKING:
    from cluster._shm_transport import ShmPeerTransport

log = logging.getLogger("zkpy.transport")
PEER_HWM = 10_000
RECV_BATCH_MAX = 1000


def prepare_ipc(endpoint: str) -> None:
    """Remove a stale ipc socket file left by a killed process, so bind succeeds."""
    if endpoint.startswith("ipc://"):
        path = endpoint[len("ipc://") :]
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


class PeerTransport:
    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], conf: EnsembleConfig, server_id: int) -> None:
        self.server_id = server_id
        self.inbox = ctx.socket(zmq.PULL)
        self.inbox.setsockopt(zmq.RCVHWM, PEER_HWM)
        self.inbox.setsockopt(zmq.LINGER, 0)
        endpoint = conf.servers[server_id].peer
        prepare_ipc(endpoint)
        self.inbox.bind(endpoint)
        self.outboxes: dict[int, zmq.Socket[bytes]] = {}
        self.monitors: dict[zmq.Socket[bytes], int] = {}
        for sid, server in conf.servers.items():
            if sid == server_id:
                continue
            sock = ctx.socket(zmq.PUSH)
            sock.setsockopt(zmq.SNDHWM, PEER_HWM)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.IMMEDIATE, 1)  # no queueing for a peer that is not connected
            sock.setsockopt(zmq.RECONNECT_IVL, 50)
            sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
            # A dead peer's connection closes at once: the monitor says so long before a timeout.
            self.monitors[sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)] = sid
            sock.connect(server.peer)
            self.outboxes[sid] = sock
        self.sent = self.dropped = self.received = 0

    def send(self, target: int, *parts: bytes) -> None:
        """One message, given in one or more parts that are its bytes one after another."""
        sock = self.outboxes.get(target)
        if sock is None:
            self.dropped += 1
            return
        try:
            sock.send(b"".join(parts), zmq.NOBLOCK)  # one part: joined without a copy
            self.sent += 1
        except zmq.Again:
            self.dropped += 1

    # --- the node loop's poll: the same face as ShmPeerTransport ----------------------------

    def poll_targets(self) -> list[zmq.Socket[bytes]]:
        return [self.inbox, *self.monitors]

    def before_poll(self) -> bool:
        """True if a message is known to be waiting (ZeroMQ's poll tells for itself)."""
        return False

    def holding(self) -> bool:
        """Whether a message waits for room (ZeroMQ queues it in its own thread)."""
        return False

    def after_poll(self) -> None:
        pass

    def tick(self) -> None:
        pass

    def receive(self, events: dict[object, int]) -> list[bytes]:
        """Every frame waiting now, up to RECV_BATCH_MAX."""
        if self.inbox not in events:
            return []
        frames: list[bytes] = []
        while len(frames) < RECV_BATCH_MAX:
            try:
                frames.append(self.inbox.recv(zmq.NOBLOCK))
            except zmq.Again:
                break
        self.received += len(frames)
        return frames

    def lost(self, events: dict[object, int]) -> list[int]:
        """The peers whose connection closed, from the readable monitor sockets."""
        lost: list[int] = []
        for monitor, sid in self.monitors.items():
            while monitor in events:
                try:
                    event = recv_monitor_message(monitor, zmq.NOBLOCK)
                except zmq.Again:
                    break
                if event["event"] == zmq.EVENT_DISCONNECTED:
                    lost.append(sid)
        return lost

    def close(self) -> None:
        self.inbox.close()
        for monitor in self.monitors:
            monitor.close()
        for sock in self.outboxes.values():
            sock.disable_monitor()
            sock.close()


def peer_transport(
    ctx: zmq.Context[zmq.Socket[bytes]], conf: EnsembleConfig, server_id: int
) -> PeerTransport | ShmPeerTransport:
    """Shared memory for `shm://` peer endpoints, ZeroMQ for tcp:// and ipc://."""
    if conf.servers[server_id].peer.startswith("shm://"):
        from cluster._shm_transport import ShmPeerTransport

        return ShmPeerTransport(conf, server_id)
    return PeerTransport(ctx, conf, server_id)
