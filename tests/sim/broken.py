"""Deliberately broken replicas, each one rule of Zab switched off, to prove the checkers bite.

Test-only subclasses: each overrides one method of a role class and plugs it into a Replica.
"""

from __future__ import annotations

from typing import Any

from verify import broken as verify_broken
from zkcore.server import ClientTable, Server
from zkcore.zab import Replica, Vote
from zkcore.zab._election import Election
from zkcore.zab._leader import Leader
from zkcore.zab._learner import Learner


class EarlyCommitLeader(Leader):
    def commit_point(self) -> int:
        """Broken: commit what the leader alone has logged, without waiting for a quorum."""
        return self.core.zxid_persisted


class EarlyCommitReplica(Replica):
    leader_class = EarlyCommitLeader


class ShortHistoryElection(Election):
    def better(self, new: Vote, current: Vote | None) -> bool:
        """Broken: ignore the history (epoch, zxid); the highest server id wins."""
        if not self.core.config.is_voter(new.leader):
            return False
        return current is None or new.leader > current.leader


class TrustingLeader(Leader):
    def learner_more_recent(self, current_epoch: int, zxid: int) -> bool:
        """Broken: lead even learners with a newer history (the discovery guard is off)."""
        return False


class ShortHistoryReplica(Replica):
    """Elects a leader with a shorter history; the leader's discovery guard is off too,
    otherwise that guard alone keeps such a leader from being established."""

    election_class = ShortHistoryElection
    leader_class = TrustingLeader


class ShortHistoryElectionOnlyReplica(Replica):
    """Only the election is broken: the discovery guard keeps safety, at the cost of liveness."""

    election_class = ShortHistoryElection


class GapBlindLearner(Learner):
    def next_zxid(self, zxid: int) -> bool:
        """Broken: take any later proposal as the next one, so a lost proposal leaves a hole
        and the follower applies past a txn it never logged."""
        return zxid > self.core.log.last()


class GapBlindReplica(Replica):
    learner_class = GapBlindLearner


VARIANTS: dict[str, type[Replica]] = {
    "early-commit": EarlyCommitReplica,
    "short-history": ShortHistoryReplica,
    "short-history-election-only": ShortHistoryElectionOnlyReplica,
    "gap-blind": GapBlindReplica,
}


# --- whole servers (tests/sim/servers.py) -------------------------------------------------------


# The stalled clock and trusting sync of verify/broken.py, which the verifier must catch too.
StalledClockServer = verify_broken.StalledClockServer


class NoGateClientTable(ClientTable):
    """Broken: a server takes a client that has seen a newer state than it has."""

    def admits(self, req: Any) -> str | None:
        return None if self.host.serving() else "not serving"


class NoLastZxidGateServer(Server):
    client_table_class = NoGateClientTable


SERVER_VARIANTS: dict[str, type[Server]] = {
    "stalled-clock": StalledClockServer,
    "no-last-zxid-gate": NoLastZxidGateServer,
}
