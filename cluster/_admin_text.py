"""The text a node answers to ZooKeeper's four-letter words, built from its live state. Field
names follow ZooKeeper's so existing dashboards and scripts can read them.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import native
from zkcore.zab import Role, zxid_epoch

if TYPE_CHECKING:
    from cluster.node import Node

VERSION = "zkpy-0.1.0 (ZooKeeper 3.8 protocol)"
_MODES = {
    Role.LEADING: "leader",
    Role.FOLLOWING: "follower",
    Role.OBSERVING: "observer",
    Role.LOOKING: "looking",
}


class AdminText:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.started = time.monotonic()

    def answer(self, command: str) -> str:
        handler = getattr(self, f"_{command}", None)
        if handler is None:
            return f"{command} is not executed because it is not supported\n"
        text: str = handler()
        return text

    def mode(self) -> str:
        return _MODES.get(self.node.role.role, "looking")

    def _latency(self) -> tuple[float, float, float]:
        lat = self.node.clients.latency_ms
        if not lat:
            return 0.0, 0.0, 0.0
        return min(lat), sum(lat) / len(lat), max(lat)

    def _ruok(self) -> str:
        return "imok"

    def _isro(self) -> str:
        return "rw"

    def _srvr(self) -> str:
        node, tree = self.node, self.node.tree
        lo, avg, hi = self._latency()
        return (
            f"Zookeeper version: {VERSION}\n"
            f"Latency min/avg/max: {lo:.3f}/{avg:.3f}/{hi:.3f}\n"
            f"Received: {node.clients.packets_received}\n"
            f"Sent: {node.clients.packets_sent}\n"
            f"Connections: {len(node.clients.connections)}\n"
            f"Outstanding: {node.clients.outstanding()}\n"
            f"Zxid: {tree.last_zxid:#x}\n"
            f"Mode: {self.mode()}\n"
            f"Node count: {len(tree)}\n"
        )

    def _stat(self) -> str:
        clients = "".join(
            f" {c.identity.hex()}[session={c.session_id:#x}](queued={len(c.queue)},recved={c.requests})\n"
            for c in self.node.clients.connections.values()
        )
        return self._srvr().replace("Latency", f"Clients:\n{clients}\nLatency", 1)

    def _cons(self) -> str:
        lines = [
            f" {c.identity.hex()}[session={c.session_id:#x},timeout={c.timeout_ms},queued={len(c.queue)},"
            f"recved={c.requests}]"
            for c in self.node.clients.connections.values()
        ]
        return "\n".join(lines) + "\n"

    def _wchs(self) -> str:
        watches = self.node.clients.watches
        paths = watches.paths()
        return f"{watches.watchers()} connections watching {len(paths)} paths\nTotal watches:{len(watches)}\n"

    def _conf(self) -> str:
        return self.node.conf.render() + f"serverId={self.node.server_id}\n"

    def _envi(self) -> str:
        return (
            "Environment:\n"
            f"zookeeper.version={VERSION}\n"
            f"python.version={sys.version.split()[0]}\n"
            f"native.implementation={native.IMPLEMENTATION}\n"
            f"os.pid={os.getpid()}\n"
        )

    def _dirs(self) -> str:
        d = self.node.data_dir

        def size(folder: Path) -> int:
            return sum(f.stat().st_size for f in folder.glob("*") if f.is_file())

        return f"datadir_size: {size(d.snap_dir)}\nlogdir_size: {size(d.log_dir)}\n"

    def _mntr(self) -> str:
        node, tree = self.node, self.node.tree
        status = node.replica.status()
        lo, avg, hi = self._latency()
        values: dict[str, object] = {
            "zk_version": VERSION,
            "zk_server_state": self.mode(),
            "zk_server_id": node.server_id,
            "zk_leader_id": status.leader,
            "zk_epoch": status.epoch,
            "zk_last_zxid": f"{tree.last_zxid:#x}",
            "zk_zxid_committed": f"{status.zxid_committed:#x}",
            "zk_zxid_persisted": f"{status.zxid_persisted:#x}",
            "zk_serving": int(node.serving()),
            "zk_avg_latency": f"{avg:.3f}",
            "zk_max_latency": f"{hi:.3f}",
            "zk_min_latency": f"{lo:.3f}",
            "zk_packets_received": node.clients.packets_received,
            "zk_packets_sent": node.clients.packets_sent,
            "zk_num_alive_connections": len(node.clients.connections),
            "zk_outstanding_requests": node.clients.outstanding(),
            "zk_znode_count": len(tree),
            "zk_watch_count": len(node.clients.watches),
            "zk_ephemerals_count": sum(len(p) for p in tree.ephemerals.values()),
            "zk_sessions": len(tree.sessions),
            "zk_peer_messages_sent": node.peers.sent,
            "zk_peer_messages_dropped": node.peers.dropped,
            "zk_peer_messages_received": node.peers.received,
            "zk_native": native.IMPLEMENTATION,
            "zk_uptime": int((time.monotonic() - self.started) * 1000),
        }
        if status.role == Role.LEADING:
            values["zk_followers"] = status.learners
            values["zk_synced_followers"] = status.learners_synced
            values["zk_epoch_zxid_start"] = f"{zxid_epoch(node.lead_from)}"
        return "".join(f"{k}\t{v}\n" for k, v in values.items())
