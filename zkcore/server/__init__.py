"""The whole server above the disk and the sockets: Zab, the tree, prep, sessions, the reaper and
the client table, as one sans-I/O state machine (Server) that a shell feeds and drains."""

from zkcore.server._clients import (
    ADMIN_WORDS,
    LATENCY_BUCKETS_MS,
    ClientTable,
    Connection,
    ConnId,
    Framed,
    Pending,
)
from zkcore.server._server import SESSION_SECRET_DEFAULT, Hooks, Server, ServerConfig, ServerReady
from zkcore.server._stats import ConnectionStats, ServerStats

__all__ = [
    "ADMIN_WORDS",
    "ClientTable",
    "ConnId",
    "Connection",
    "ConnectionStats",
    "Framed",
    "Hooks",
    "LATENCY_BUCKETS_MS",
    "Pending",
    "SESSION_SECRET_DEFAULT",
    "Server",
    "ServerConfig",
    "ServerReady",
    "ServerStats",
]
