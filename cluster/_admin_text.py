"""The text a node answers to ZooKeeper's four-letter words, built from its live state. Field
names follow ZooKeeper's so existing dashboards and scripts can read them.
"""

from __future__ import annotations

import os
import resource
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import native
from cluster._shm_transport import ShmPeerTransport
from cluster._transport import PeerTransport
from cluster.config import EnsembleConfig
from cluster.storage import DataDir, TxnLog
from zkcore.server import Server, ServerStats
from zkcore.zab import Role, zxid_epoch

# ZooKeeper's layout ("3.8.4-<build>, built on <date>"), so clients that gate features on the
# server's version (kazoo's server_version(), Curator) see 3.8, with our own name beside it.
VERSION = "3.8.4-zkpy-0.1.0, built on 2026-12-05 00:00 UTC"
_MODES = {
    Role.LEADING: "leader",
    Role.FOLLOWING: "follower",
    Role.OBSERVING: "observer",
    Role.LOOKING: "looking",
}


@dataclass(slots=True)
class LoopStats:
    """What mntr says of the node's loop: its turns, and the naps of busy turns that let more
    reads gather for the next (EnsembleConfig.coalesce_us)."""

    turns: int = 0
    naps: int = 0
    pipelined_naps: int = 0  # of those, the longer naps after reads that came pipelined


class AdminText:
    """Formats a server's stats() snapshot (and this process's files and sockets) as ZooKeeper
    formats its four-letter words."""

    def __init__(
        self,
        conf: EnsembleConfig,
        server_id: int,
        data_dir: DataDir,
        peers: PeerTransport | ShmPeerTransport,
        log: TxnLog,
        loop: LoopStats,
    ) -> None:
        self.conf, self.server_id, self.data_dir, self.peers = conf, server_id, data_dir, peers
        self.log, self.loop = log, loop
        self.started = time.monotonic()

    def answer(self, command: str, server: Server) -> str:
        if command in ("wchc", "wchp", "dump", "crst", "srst"):
            return self._about_server(command, server)
        handler = getattr(self, f"_{command}", None)
        if handler is None:
            return f"{command} is not executed because it is not supported\n"
        text: str = handler(server.stats())
        return text

    def _about_server(self, command: str, server: Server) -> str:
        if command in ("crst", "srst"):
            server.reset_stats()
            return "Connection stats reset.\n" if command == "crst" else "Server stats reset.\n"
        if command == "dump":
            report = server.ephemerals_report()
            lines = [f"Sessions with Ephemerals ({len(report)}):"]
            for session, paths in report.items():
                lines.append(f"0x{session:x}:")
                lines += [f"\t{p}" for p in paths]
            return "SessionTracker dump:\n" + "\n".join(lines) + "\n"
        by: dict[str, list[str]] = {}
        for session, path in server.watch_report():
            key, value = (f"0x{session:x}", path) if command == "wchc" else (path, f"0x{session:x}")
            by.setdefault(key, []).append(value)
        return "".join(f"{k}\n" + "".join(f"\t{v}\n" for v in vs) for k, vs in by.items())

    @staticmethod
    def mode(stats: ServerStats) -> str:
        return _MODES.get(stats.role, "looking") if stats.serving else "looking"

    def _ruok(self, stats: ServerStats) -> str:
        return "imok"

    def _isro(self, stats: ServerStats) -> str:
        return "rw"

    def _srvr(self, stats: ServerStats) -> str:
        return (
            f"Zookeeper version: {VERSION}\n"
            f"Latency min/avg/max: {stats.latency_min_ms:.3f}/{stats.latency_avg_ms:.3f}/{stats.latency_max_ms:.3f}\n"
            f"Received: {stats.packets_received}\n"
            f"Sent: {stats.packets_sent}\n"
            f"Connections: {len(stats.connections)}\n"
            f"Outstanding: {stats.outstanding}\n"
            f"Zxid: {stats.zxid_applied:#x}\n"
            f"Mode: {self.mode(stats)}\n"
            f"Node count: {stats.znodes}\n"
        )

    def _stat(self, stats: ServerStats) -> str:
        clients = "".join(
            f" {_conn_text(c.conn)}[session={c.session_id:#x}](queued={c.queued},recved={c.requests})\n"
            for c in stats.connections
        )
        return self._srvr(stats).replace("Latency", f"Clients:\n{clients}\nLatency", 1)

    def _cons(self, stats: ServerStats) -> str:
        lines = [
            f" {_conn_text(c.conn)}[session={c.session_id:#x},timeout={c.timeout_ms},queued={c.queued},"
            f"recved={c.requests}]"
            for c in stats.connections
        ]
        return "\n".join(lines) + "\n"

    def _wchs(self, stats: ServerStats) -> str:
        return (
            f"{stats.watchers} connections watching {stats.watched_paths} paths\n"
            f"Total watches:{stats.watches}\n"
        )

    def _conf(self, stats: ServerStats) -> str:
        return self.conf.render() + f"serverId={self.server_id}\n"

    def _envi(self, stats: ServerStats) -> str:
        uname = os.uname()
        return (
            "Environment:\n"
            f"zookeeper.version={VERSION}\n"
            f"host.name={socket.gethostname()}\n"
            f"python.version={sys.version.split()[0]}\n"
            f"native.implementation={native.IMPLEMENTATION}\n"
            f"os.name={uname.sysname}\n"
            f"os.arch={uname.machine}\n"
            f"os.version={uname.release}\n"
            f"user.dir={os.getcwd()}\n"
            f"os.pid={os.getpid()}\n"
        )

    def _dirs(self, stats: ServerStats) -> str:
        d = self.data_dir

        def size(folder: Path) -> int:
            return sum(f.stat().st_size for f in folder.glob("*") if f.is_file())

        return f"datadir_size: {size(d.snap_dir)}\nlogdir_size: {size(d.log_dir)}\n"

    def _mntr(self, stats: ServerStats) -> str:
        return "".join(f"{k}\t{v}\n" for k, v in self.mntr_values(stats).items())

    def command_values(self, command: str, server: Server) -> dict[str, object]:
        """What the AdminServer's /commands/<command> answers, as ZooKeeper names it."""
        stats = server.stats()
        if command in ("monitor", "mntr"):
            return dict(self.mntr_values(stats))
        if command == "ruok":
            return {}
        if command in ("stat", "srvr"):
            return {
                "version": VERSION,
                "read_only": False,
                "server_stats": {
                    "packets_sent": stats.packets_sent,
                    "packets_received": stats.packets_received,
                    "max_latency": stats.latency_max_ms,
                    "min_latency": stats.latency_min_ms,
                    "avg_latency": stats.latency_avg_ms,
                    "outstanding_requests": stats.outstanding,
                    "server_state": self.mode(stats),
                    "num_alive_client_connections": len(stats.connections),
                    "last_processed_zxid": stats.zxid_applied,
                    "data_dir_size": 0,
                },
                "node_count": stats.znodes,
            }
        if command == "connections":
            return {
                "connections": [
                    {"session_id": f"0x{c.session_id:x}", "timeout": c.timeout_ms, "outstanding_requests": c.queued,
                     "packets_received": c.requests, "remote_socket_address": _conn_text(c.conn)}
                    for c in stats.connections
                ],
                "secure_connections": [],
            }  # fmt: skip
        if command == "watches":
            by_session: dict[str, list[str]] = {}
            for session, path in server.watch_report():
                by_session.setdefault(f"0x{session:x}", []).append(path)
            return {"session_id_to_watched_paths": by_session}
        if command == "leader":
            return {"is_leader": stats.role == Role.LEADING and stats.serving, "leader_id": stats.leader,
                    "leader_ip": ""}  # fmt: skip
        if command == "configuration":
            return {"server_id": self.server_id, "config": self.conf.render().splitlines()}
        if command == "environment":
            environment: dict[str, object] = {}
            for line in self._envi(stats).splitlines()[1:]:
                key, _, value = line.partition("=")
                environment[key] = value
            return environment
        if command == "dump":
            return {
                "sessions_with_ephemerals": {f"0x{k:x}": v for k, v in server.ephemerals_report().items()}
            }
        raise ValueError(f"unknown command {command!r}")

    def mntr_values(self, stats: ServerStats) -> dict[str, object]:
        values: dict[str, object] = {
            "zk_version": VERSION,
            "zk_server_state": self.mode(stats),
            "zk_server_id": stats.server_id,
            "zk_leader_id": stats.leader,
            "zk_epoch": stats.epoch,
            "zk_last_zxid": f"{stats.zxid_applied:#x}",
            "zk_zxid_committed": f"{stats.zxid_committed:#x}",
            "zk_zxid_persisted": f"{stats.zxid_persisted:#x}",
            "zk_serving": int(stats.serving),
            "zk_avg_latency": f"{stats.latency_avg_ms:.3f}",
            "zk_max_latency": f"{stats.latency_max_ms:.3f}",
            "zk_min_latency": f"{stats.latency_min_ms:.3f}",
            "zk_packets_received": stats.packets_received,
            "zk_packets_sent": stats.packets_sent,
            "zk_num_alive_connections": len(stats.connections),
            "zk_outstanding_requests": stats.outstanding,
            "zk_znode_count": stats.znodes,
            "zk_approximate_data_size": stats.data_size,
            "zk_watch_count": stats.watches,
            "zk_ephemerals_count": stats.ephemerals,
            "zk_sessions": stats.sessions,
            "zk_peer_messages_sent": self.peers.sent,
            "zk_peer_messages_dropped": self.peers.dropped,
            "zk_peer_messages_received": self.peers.received,
            "zk_native": native.IMPLEMENTATION,
            "zk_uptime": int((time.monotonic() - self.started) * 1000),
            "zk_open_file_descriptor_count": _open_fds(),
            "zk_max_file_descriptor_count": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
            "zk_fsync_threshold_exceed_count": self.log.slow_fsyncs,
            # ZooKeeper's fsynctime summary, in ms (with fractions: an fdatasync here takes less
            # than one, which ZooKeeper's whole milliseconds would show as 0).
            "zk_avg_fsynctime": f"{self.log.fsync_ms_sum / max(1, self.log.fsync_count):.3f}",
            "zk_min_fsynctime": f"{self.log.fsync_ms_min:.3f}",
            "zk_max_fsynctime": f"{self.log.fsync_ms_max:.3f}",
            "zk_cnt_fsynctime": self.log.fsync_count,
            "zk_sum_fsynctime": f"{self.log.fsync_ms_sum:.3f}",
            "zk_loop_turns": self.loop.turns,
            "zk_coalesce_naps": self.loop.naps,
            "zk_coalesce_pipelined_naps": self.loop.pipelined_naps,
        }
        if stats.role == Role.LEADING:
            values["zk_followers"] = stats.learners
            values["zk_synced_followers"] = stats.learners_synced
            values["zk_epoch_zxid_start"] = f"{zxid_epoch(stats.lead_from)}"
        return values


def _open_fds() -> int:
    """The file descriptors this process has open, as ZooKeeper's mntr counts them (-1 where
    /proc does not say)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return -1


def _conn_text(conn: object) -> str:
    return conn.hex() if isinstance(conn, bytes) else str(conn)
