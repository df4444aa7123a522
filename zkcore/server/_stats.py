"""A read-only picture of a server, for admin words, metrics and tests: the shell formats it and
never reaches into the server's own fields."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from zkcore.zab import Phase, Role


@dataclass(frozen=True, slots=True)
class ConnectionStats:
    conn: Hashable
    session_id: int
    timeout_ms: int
    queued: int
    requests: int


@dataclass(frozen=True, slots=True)
class ServerStats:
    server_id: int
    role: Role
    phase: Phase
    serving: bool
    leader: int
    epoch: int
    zxid_applied: int
    zxid_committed: int
    zxid_persisted: int
    lead_from: int
    learners: int
    learners_synced: int
    znodes: int
    data_size: int  # the tree's path and data bytes (DataTree.approximate_data_size)
    ephemerals: int
    sessions: int
    watches: int
    watched_paths: int
    watchers: int
    packets_received: int
    packets_sent: int
    outstanding: int
    latency_min_ms: float
    latency_avg_ms: float
    latency_max_ms: float
    latency_buckets: tuple[int, ...]  # requests per bucket of LATENCY_BUCKETS_MS, then over the last
    latency_sum_ms: float
    connections: tuple[ConnectionStats, ...]
