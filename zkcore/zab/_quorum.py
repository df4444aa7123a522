"""Who votes, how many make a quorum, and the timing knobs (in ticks) of one ensemble.

Config checks itself on construction; the quorum helpers are pure functions over server ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from zkcore import limits
from zkcore._errors import LocalError
from zkcore.zab._messages import SERVER_ID_MAX


def _check_ticks(name: str, value: object, lo: int = 1, hi: int = 1_000_000) -> None:
    if type(value) is not int or not lo <= value <= hi:
        raise LocalError(f"{name} must be an int in [{lo}, {hi}]: {value!r}")


@dataclass(frozen=True, slots=True)
class Config:
    """An ensemble: voters (who elect and ack) and observers (who only learn), plus timings.

    init_limit_ticks: a leader must be established, and a learner up to date, within this.
    discovery_limit_ticks: a new leader must hear from a quorum (FOLLOWERINFO), and a learner
      from its leader (LEADERINFO), within this; otherwise the votes split and it elects again
      at once instead of waiting out init_limit_ticks.
    sync_limit_ticks: in broadcast, a learner that hears nothing from its leader for this long goes
      LOOKING, and a leader that hears from no quorum for this long steps down.
    election_resend_ticks: a LOOKING server repeats its vote this often.
    election_finalize_ticks: after a quorum agrees, wait this long for a better vote.
    learner_retry_ticks: a learner repeats its handshake message this often while unanswered.
    transfer_entries_max: txns in one sync message; a longer sync goes on in DIFFs.
    proposals_outstanding_max, proposals_outstanding_bytes_max: a leader's uncommitted
      proposals, and their bytes, in flight at once; later writes wait in its backlog.
    """

    voters: tuple[int, ...]
    observers: tuple[int, ...] = ()
    init_limit_ticks: int = 10
    sync_limit_ticks: int = 5
    discovery_limit_ticks: int = 5
    election_resend_ticks: int = 2
    election_finalize_ticks: int = 1
    learner_retry_ticks: int = 2
    diff_entries_max: int = limits.zab_diff_entries_max
    proposals_outstanding_max: int = limits.zab_proposals_outstanding_max
    proposals_outstanding_bytes_max: int = limits.zab_proposals_outstanding_bytes_max
    zxid_counter_max: int = limits.zab_zxid_counter_max
    transfer_entries_max: int = limits.zab_sync_entries_max

    def __post_init__(self) -> None:
        for name, ids in (("voters", self.voters), ("observers", self.observers)):
            if type(ids) is not tuple:
                raise LocalError(f"{name} must be a tuple of server ids: {ids!r}")
            for sid in ids:
                if type(sid) is not int or not 1 <= sid <= SERVER_ID_MAX:
                    raise LocalError(f"server ids must be ints in [1, {SERVER_ID_MAX}]: {sid!r} in {name}")
        if not self.voters:
            raise LocalError("an ensemble needs at least one voter: voters=()")
        servers = self.voters + self.observers
        if len(set(servers)) != len(servers):
            raise LocalError(f"server ids must be unique across voters and observers: {servers}")
        if len(servers) > limits.zab_servers_max:
            raise LocalError(f"{len(servers)} servers, over zab_servers_max {limits.zab_servers_max}")
        _check_ticks("init_limit_ticks", self.init_limit_ticks)
        _check_ticks("sync_limit_ticks", self.sync_limit_ticks)
        _check_ticks("discovery_limit_ticks", self.discovery_limit_ticks)
        _check_ticks("election_resend_ticks", self.election_resend_ticks)
        _check_ticks("election_finalize_ticks", self.election_finalize_ticks, 0)
        _check_ticks("learner_retry_ticks", self.learner_retry_ticks)
        _check_ticks("diff_entries_max", self.diff_entries_max, 0, limits.zab_diff_entries_max)
        _check_ticks(
            "proposals_outstanding_max",
            self.proposals_outstanding_max,
            1,
            limits.zab_proposals_outstanding_max,
        )
        _check_ticks(
            "proposals_outstanding_bytes_max",
            self.proposals_outstanding_bytes_max,
            1,
            limits.zab_proposals_outstanding_bytes_max,
        )
        _check_ticks("zxid_counter_max", self.zxid_counter_max, 1, limits.zab_zxid_counter_max)
        _check_ticks("transfer_entries_max", self.transfer_entries_max, 1, limits.zab_sync_entries_max)

    @property
    def quorum_size(self) -> int:
        return len(self.voters) // 2 + 1

    def is_voter(self, server_id: int) -> bool:
        return server_id in self.voters

    def is_server(self, server_id: int) -> bool:
        return server_id in self.voters or server_id in self.observers


def is_quorum(config: Config, server_ids: Iterable[int]) -> bool:
    """Whether the voters among `server_ids` (duplicates count once) make a majority."""
    voters = {sid for sid in server_ids if config.is_voter(sid)}
    return len(voters) >= config.quorum_size


def quorum_zxid(config: Config, zxid_by_voter: Mapping[int, int]) -> int:
    """The highest zxid that a quorum of voters has reached; a voter not in the map counts as 0."""
    reached = sorted((zxid_by_voter.get(sid, 0) for sid in config.voters), reverse=True)
    return reached[config.quorum_size - 1]
