"""Deliberately broken servers for the verifier to catch: each a Server subclass that switches
off one guarantee. A node runs one only when its config names it (serverClass=module:Class,
which `python -m verify --debug NAME` writes); production code has no branch for them."""

from __future__ import annotations

from typing import Any

from zkcore.server import ClientTable, Connection, Pending, Server
from zkcore.zab import Ready, Replica, Role, Sync
from zkcore.zab._leader import Leader


class StaleReadsClientTable(ClientTable):
    """Reads never wait for what the client has seen: a read pipelined behind the same client's
    write is answered before that write is applied, a client that has seen newer state than the
    server is served anyway, and a server that lost its leader keeps its clients."""

    def admits(self, req: Any) -> str | None:
        return None

    def reads_ready(self, conn: Connection) -> list[Pending]:
        return [p for p in conn.queue if p.reply is None and not p.barrier]

    def _enqueue(self, conn: Connection, req: Any, frame: bytes) -> None:
        super()._enqueue(conn, req, frame)
        if conn.connect is None:
            self.answer_reads(conn)  # at once, even behind the same client's write

    def disconnect_all(self) -> None:
        return


class StaleReadsServer(Server):
    client_table_class = StaleReadsClientTable


class EarlyAckServer(Server):
    """The leader applies a write and answers its client as soon as the write is logged
    locally, before a quorum has acked it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.applied_early: set[int] = set()

    def apply_committed(self, ready: Ready) -> None:
        if self.role.role == Role.LEADING:
            for zxid, payload in ready.entries:
                self.apply(zxid, payload)
                self.applied_early.add(zxid)
        for zxid, payload in ready.committed:
            if zxid in self.applied_early:
                self.applied_early.discard(zxid)
                continue
            self.apply(zxid, payload)
        if ready.committed:
            self._batch_applied(ready.committed)


VARIANTS: dict[str, str] = {
    "stale_reads": "verify.broken:StaleReadsServer",
    "early_ack": "verify.broken:EarlyAckServer",
}


class TrustingSyncLeader(Leader):
    """A leader answers syncs from its own commit point at once, asking no quorum."""

    def sync(self, token: int) -> bool:
        if not self.established:
            return False
        self.core.synced(token, self.core.zxid_committed)
        return True

    def _add_sync(self, token: int, learner: int) -> None:
        core = self.core
        core.send(Sync(core.server_id, learner, self.epoch, token, core.zxid_committed))


class TrustingSyncReplica(Replica):
    leader_class = TrustingSyncLeader


class StalledClockServer(Server):
    """The node loop before issue 10: a stall of any length counted as one tick, so a leader
    resumed after a pause serves until its sync limit runs out again, and it answers syncs from
    its own commit point (ZOOKEEPER-1675)."""

    replica_class = TrustingSyncReplica

    def elapse(self, ticks: int) -> None:
        super().elapse(1)


VARIANTS["stalled_clock"] = "verify.broken:StalledClockServer"
