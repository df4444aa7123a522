"""Fast leader election in the manner of ZooKeeper's FastLeaderElection, driven by ticks.

Votes order by (peer epoch, last zxid, server id) within an election round (logical clock).
"""

from __future__ import annotations

from dataclasses import dataclass

from zkcore.zab._core import Core
from zkcore.zab._messages import Notification, Role

NO_LEADER = -1


@dataclass(frozen=True, slots=True)
class Vote:
    """A proposed leader and the history it would lead with."""

    leader: int
    zxid: int
    peer_epoch: int


@dataclass(frozen=True, slots=True)
class Ballot:
    """A vote as another server reported it: with its state and round."""

    vote: Vote
    state: Role
    round: int


def _same(a: Ballot, b: Ballot) -> bool:
    """ZooKeeper's Vote.equals: whole votes while LOOKING, else only leader and epoch."""
    if a.state == Role.LOOKING or b.state == Role.LOOKING:
        return a.vote == b.vote
    return a.vote.leader == b.vote.leader and a.vote.peer_epoch == b.vote.peer_epoch


class Election:
    """One server's side of the election: its round, its vote, and the votes it has heard."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.round = 0
        self.vote: Vote | None = None
        self._votes: dict[int, Ballot] = {}
        self._outside: dict[int, Ballot] = {}
        self._deadline: int | None = None
        self._resend_due = 0

    # --- ordering (the one rule that decides who leads) -------------------------------------

    def better(self, new: Vote, current: Vote | None) -> bool:
        """Whether `new` beats `current`: a higher peer epoch, then zxid, then server id."""
        if not self.core.config.is_voter(new.leader):
            return False
        if current is None:
            return True
        return (new.peer_epoch, new.zxid, new.leader) > (current.peer_epoch, current.zxid, current.leader)

    # --- inputs -----------------------------------------------------------------------------

    def start(self) -> Vote | None:
        """Enter LOOKING: a new round, voting for ourselves (an observer votes for nobody)."""
        core = self.core
        self.round += 1
        self.vote = self._own_vote()
        self._votes = {}
        self._outside = {}
        self._deadline = None
        if self.vote is not None:
            self._votes[core.server_id] = Ballot(self.vote, Role.LOOKING, self.round)
        self._broadcast()
        return self._check_agreement()

    def on_notification(self, n: Notification) -> Vote | None:
        """Handle a notification while LOOKING; returns the decided vote, if this decides."""
        config = self.core.config
        if not config.is_voter(n.source):
            self.reply(n.source, Role.LOOKING)
            return None
        ballot = Ballot(Vote(n.leader, n.zxid, n.peer_epoch), Role(n.state), n.round)
        if ballot.state == Role.LOOKING:
            return self._on_looking(n, ballot)
        if ballot.state in (Role.FOLLOWING, Role.LEADING):
            return self._on_settled(n.source, ballot)
        return None

    def on_tick(self) -> Vote | None:
        ticks = self.core.ticks
        if ticks >= self._resend_due:
            self._broadcast()
        if self._deadline is not None and ticks >= self._deadline:
            self._deadline = None
            if self.vote is not None and self._agrees(
                self._votes, Ballot(self.vote, Role.LOOKING, self.round)
            ):
                return self.vote
        return None

    def reply(self, target: int, state: Role) -> None:
        """Tell `target` our current vote and state (used whatever role we hold)."""
        vote = self.vote
        leader, zxid, peer_epoch = (
            (NO_LEADER, 0, 0) if vote is None else (vote.leader, vote.zxid, vote.peer_epoch)
        )
        self.core.send(Notification(self.core.server_id, target, state, leader, zxid, self.round, peer_epoch))

    def update_epoch(self, epoch: int) -> None:
        """After syncing in a new epoch, report it in our vote (ZooKeeper's updateElectionVote)."""
        if self.vote is not None:
            self.vote = Vote(self.vote.leader, self.vote.zxid, epoch)

    # --- the LOOKING rules ------------------------------------------------------------------

    def _on_looking(self, n: Notification, ballot: Ballot) -> Vote | None:
        if n.round > self.round:
            self.round = n.round
            self._votes = {}
            own = self._own_vote()
            vote = ballot.vote if self.better(ballot.vote, own) else own
            self.vote = vote
            if own is not None and vote is not None:
                self._votes[self.core.server_id] = Ballot(vote, Role.LOOKING, self.round)
            self._broadcast()
        elif n.round < self.round:
            # Its clock lags: answer so that it catches up with our round. Only a voter answers:
            # a voter ignores an observer's round, and answers every observer message, so an
            # observer answering back would ping-pong forever.
            if self.core.config.is_voter(self.core.server_id):
                self.reply(n.source, Role.LOOKING)
            return None
        elif self.better(ballot.vote, self.vote):
            self.vote = ballot.vote
            if self.core.config.is_voter(self.core.server_id):
                self._votes[self.core.server_id] = Ballot(self.vote, Role.LOOKING, self.round)
            self._broadcast()
        self._votes[n.source] = ballot
        return self._check_agreement()

    def _on_settled(self, source: int, ballot: Ballot) -> Vote | None:
        """A FOLLOWING or LEADING server answered: join its leader if a quorum is with it."""
        if ballot.round == self.round:
            self._votes[source] = ballot
            if self._agrees(self._votes, ballot) and self._leader_confirmed(self._votes, ballot):
                self.vote = ballot.vote
                return ballot.vote
        self._outside[source] = ballot
        if self._agrees(self._outside, ballot) and self._leader_confirmed(self._outside, ballot):
            self.round = ballot.round
            self.vote = ballot.vote
            return ballot.vote
        return None

    def _check_agreement(self) -> Vote | None:
        """A quorum agrees with our vote: decide after the finalize wait (or now, if none)."""
        if self.vote is None or not self._agrees(self._votes, Ballot(self.vote, Role.LOOKING, self.round)):
            self._deadline = None
            return None
        if self.core.config.election_finalize_ticks == 0:
            return self.vote
        if self._deadline is None:
            self._deadline = self.core.ticks + self.core.config.election_finalize_ticks
        return None

    def _agrees(self, ballots: dict[int, Ballot], ballot: Ballot) -> bool:
        config = self.core.config
        count = sum(1 for sid, b in ballots.items() if config.is_voter(sid) and _same(b, ballot))
        return count >= config.quorum_size

    def _leader_confirmed(self, ballots: dict[int, Ballot], ballot: Ballot) -> bool:
        """ZooKeeper's checkLeader: the leader itself must say LEADING (or be us, this round)."""
        leader = ballot.vote.leader
        if leader == self.core.server_id:
            return ballot.round == self.round
        heard = ballots.get(leader)
        return heard is not None and heard.state == Role.LEADING

    def _own_vote(self) -> Vote | None:
        core = self.core
        if not core.config.is_voter(core.server_id):
            return None
        return Vote(core.server_id, core.log.last(), core.current_epoch)

    def _broadcast(self) -> None:
        core = self.core
        # Jitter of up to a tick keeps servers that started together from resending in lockstep.
        self._resend_due = core.ticks + core.config.election_resend_ticks + core.rng.randrange(2)
        for sid in core.config.voters:
            if sid != core.server_id:
                self.reply(sid, Role.LOOKING)
