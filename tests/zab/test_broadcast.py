"""Broadcast scenarios: quorum commits, pipelining, forwarding, observers, gaps, timeouts, rollover."""

from __future__ import annotations

from random import Random

import pytest

from tests.sim.ensemble import Ensemble
from zkcore import LocalError, MemoryLog, limits
from zkcore.zab import (
    Ack,
    Commit,
    Config,
    Inform,
    Phase,
    Ping,
    Proposal,
    Refused,
    Replica,
    Request,
    Role,
    Snapshot,
    Sync,
    make_zxid,
)


def followers(ensemble: Ensemble, leader: int) -> list[int]:
    return [sid for sid in ensemble.up() if sid != leader and ensemble.config.is_voter(sid)]


def test_commit_waits_for_a_durable_quorum_including_the_leader() -> None:
    ensemble = Ensemble(3, auto_sync=False)
    leader = ensemble.settle()
    f1, f2 = followers(ensemble, leader)
    ensemble.propose(leader, b"a")
    ensemble.deliver(kind=Proposal)
    assert not [m for m in ensemble.pending() if isinstance(m, Ack)]  # nobody synced yet
    ensemble.sync(f1)
    ensemble.deliver(kind=Ack)
    assert ensemble.status(leader).zxid_committed == 0  # f1 alone: the leader is not durable
    ensemble.sync(leader)
    assert ensemble.status(leader).zxid_committed > 0
    assert ensemble.applied(leader) == [b"a"]
    ensemble.run()
    assert ensemble.applied(f1) == [b"a"]
    # Committed on a quorum: f2 applies it without waiting for its own disk (as ZooKeeper's
    # servers do), and acks it only once that disk has it.
    assert ensemble.applied(f2) == [b"a"]
    assert ensemble.status(f2).zxid_persisted == 0
    assert not [m for m in ensemble.pending(f2, leader) if isinstance(m, Ack)]
    ensemble.sync(f2)
    assert [m for m in ensemble.pending(f2, leader) if isinstance(m, Ack)]


def test_proposals_are_pipelined_in_zxid_order() -> None:
    ensemble = Ensemble(3)
    leader = ensemble.settle()
    for payload in (b"a", b"b", b"c"):
        assert ensemble.propose(leader, payload)
    f1 = followers(ensemble, leader)[0]
    queued = [m for m in ensemble.pending(leader, f1) if isinstance(m, Proposal)]
    assert [m.payload for m in queued] == [b"a", b"b", b"c"]
    epoch = ensemble.status(leader).epoch
    assert [m.zxid for m in queued] == [make_zxid(epoch, c) for c in (1, 2, 3)]
    ensemble.run()
    assert all(ensemble.applied(sid) == [b"a", b"b", b"c"] for sid in ensemble.up())


def test_followers_and_observers_forward_writes() -> None:
    ensemble = Ensemble(3, observers=1)
    leader = ensemble.settle()
    f1 = followers(ensemble, leader)[0]
    assert ensemble.propose(f1, b"from follower")
    assert ensemble.propose(4, b"from observer")
    assert [type(m) for m in ensemble.pending(f1, leader)] == [Request]
    ensemble.run()
    assert all(ensemble.applied(sid) == [b"from follower", b"from observer"] for sid in ensemble.up())


def test_no_write_without_an_established_leader() -> None:
    ensemble = Ensemble(3)
    assert not any(ensemble.propose(sid, b"x") for sid in ensemble.up())


def test_observers_get_inform_and_never_count() -> None:
    ensemble = Ensemble(3, observers=2)
    leader = ensemble.settle()
    f1, f2 = followers(ensemble, leader)
    ensemble.crash(f1)
    ensemble.crash(f2)
    ensemble.propose(leader, b"a")
    ensemble.run()
    # Two observers acking nothing cannot make a quorum with the leader.
    assert ensemble.status(leader).zxid_committed == 0
    assert not [m for m in ensemble.sent if isinstance(m, Proposal) and m.target in (4, 5)]
    ensemble.restart(f1)
    new = ensemble.settle(servers=[leader, f1, 4, 5])
    assert ensemble.applied(4) == ensemble.applied(5) == [b"a"]  # committed by the new epoch
    ensemble.propose(new, b"b")
    ensemble.run()
    assert ensemble.applied(4) == ensemble.applied(5) == [b"a", b"b"]
    informs = [m for m in ensemble.sent if isinstance(m, Inform)]
    assert sorted((m.target, m.payload) for m in informs) == [(4, b"b"), (5, b"b")]
    # Observers ack NEWLEADER (so the leader knows they synced), never a proposal.
    zxid_b = informs[0].zxid
    assert not [m for m in ensemble.sent if isinstance(m, Ack) and m.source in (4, 5) and m.zxid >= zxid_b]


def test_gap_in_proposals_makes_the_follower_resync() -> None:
    ensemble = Ensemble(3)
    leader = ensemble.settle()
    f1 = followers(ensemble, leader)[0]
    ensemble.propose(leader, b"a")
    ensemble.drop(leader, f1, Proposal)  # f1 never sees a
    ensemble.propose(leader, b"b")
    ensemble.run()
    assert any("out of sequence" in reason for reason in ensemble.reasons(f1))
    ensemble.settle()
    assert ensemble.applied(f1) == [b"a", b"b"]


def test_commit_beyond_the_log_makes_the_follower_resync() -> None:
    ensemble = Ensemble(3)
    leader = ensemble.settle()
    f1, f2 = followers(ensemble, leader)
    ensemble.propose(leader, b"a")
    ensemble.drop(leader, f1, Proposal)
    ensemble.run()
    assert any("commit" in reason and "beyond our log" in reason for reason in ensemble.reasons(f1))
    ensemble.settle()
    assert ensemble.applied(f1) == [b"a"]


def test_ping_reveals_a_lost_tail() -> None:
    ensemble = Ensemble(3)
    leader = ensemble.settle()
    f1 = followers(ensemble, leader)[0]
    ensemble.cut_one_way(leader, f1)  # f1 misses the proposal and its commit
    ensemble.propose(leader, b"a")
    ensemble.run()
    ensemble.recover()
    ensemble.tick(leader)
    ensemble.run()
    assert any(reason.startswith("ping") for reason in ensemble.reasons(f1))
    ensemble.settle()
    assert ensemble.applied(f1) == [b"a"]


def test_duplicates_and_strays_change_nothing() -> None:
    ensemble = Ensemble(3)
    leader = ensemble.settle()
    f1, f2 = followers(ensemble, leader)
    ensemble.propose(leader, b"a")
    proposals = [m for m in ensemble.pending(leader, f1) if isinstance(m, Proposal)]
    ensemble.run()
    epoch = ensemble.status(leader).epoch
    ensemble.step(proposals[0])  # a duplicate of a logged proposal
    ensemble.step(Commit(leader, f1, epoch, proposals[0].zxid))  # a duplicate commit
    ensemble.step(Proposal(f2, f1, make_zxid(epoch, 9), b"stray"))  # not from our leader
    ensemble.step(Ping(leader, f1, epoch + 5, 0))  # another epoch
    ensemble.run()
    assert ensemble.status(f1).phase == Phase.BROADCAST
    assert ensemble.applied(f1) == [b"a"]
    assert ensemble.leader() == leader


def test_leader_steps_down_when_it_loses_its_quorum() -> None:
    ensemble = Ensemble(3, sync_limit_ticks=3)
    leader = ensemble.settle()
    ensemble.isolate(leader)
    ensemble.tick(leader, n=5)
    status = ensemble.status(leader)
    assert status.role == Role.LOOKING
    assert "lost quorum" in ensemble.reasons(leader)[-1]


def test_follower_gives_up_on_a_silent_leader() -> None:
    ensemble = Ensemble(3, sync_limit_ticks=3)
    leader = ensemble.settle()
    f1, f2 = followers(ensemble, leader)
    ensemble.crash(leader)
    ensemble.tick(f1, f2, n=5)
    assert "silent" in ensemble.reasons(f1)[-2] or "silent" in ensemble.reasons(f1)[-1]
    new = ensemble.settle()
    assert new in (f1, f2)
    assert ensemble.status(new).epoch == 2


def test_partitioned_minority_leader_is_replaced_and_rejoins() -> None:
    ensemble = Ensemble(5)
    old = ensemble.settle()
    ensemble.propose(old, b"a")
    ensemble.run()
    ensemble.isolate(old)
    majority = [sid for sid in ensemble.up() if sid != old]
    assert ensemble.propose(old, b"lost")  # accepted, but it can never commit
    ensemble.tick(*majority, n=8)  # the majority gives up on its silent leader
    new = ensemble.settle(servers=majority)
    assert new != old
    assert ensemble.propose(new, b"b")
    ensemble.run()
    ensemble.tick(old, n=10)
    assert ensemble.status(old).role != Role.LEADING
    ensemble.recover()
    ensemble.settle()
    assert all(ensemble.applied(sid) == [b"a", b"b"] for sid in ensemble.up())
    assert "TRUNC" in ensemble.reasons(old)  # its uncommitted b"lost" is gone


def test_zxid_counter_rollover_forces_a_new_epoch() -> None:
    ensemble = Ensemble(3, zxid_counter_max=3)
    leader = ensemble.settle()
    epoch = ensemble.status(leader).epoch
    for payload in (b"a", b"b", b"c"):
        assert ensemble.propose(leader, payload)
    assert not ensemble.propose(leader, b"d")
    assert "rolled over" in ensemble.reasons(leader)[-1]
    new = ensemble.settle()
    assert ensemble.status(new).epoch == epoch + 1
    assert ensemble.propose(new, b"d")
    ensemble.run()
    assert all(ensemble.applied(sid) == [b"a", b"b", b"c", b"d"] for sid in ensemble.up())


def test_voter_with_a_newer_accepted_epoch_makes_the_leader_step_down() -> None:
    ensemble = Ensemble(3)
    leader = ensemble.settle()
    f1 = followers(ensemble, leader)[0]
    ensemble.load(f1, [], 9, 0)  # it accepted epoch 9 from a leader that never established
    new = ensemble.settle()
    assert ensemble.status(new).epoch == 10


def test_one_voter_ensemble() -> None:
    ensemble = Ensemble(1)
    assert ensemble.settle() == 1
    assert ensemble.propose(1, b"solo")
    assert ensemble.applied(1) == [b"solo"]


def test_persisted_reports_are_clipped_to_what_was_written() -> None:
    replica = Replica(Config((1,)), 1, rng=Random(1), storage=MemoryLog(), snapshots=_Empty())
    for _ in range(3):
        replica.tick()
    replica.advance(replica.ready())
    assert replica.status().phase == Phase.BROADCAST
    assert replica.propose(b"a")
    replica.persisted(make_zxid(9, 9))  # the shell has not even written it yet
    assert replica.status().zxid_persisted == 0
    ready = replica.ready()
    assert ready.entries and not ready.committed
    replica.advance(ready)
    replica.persisted(ready.entries[-1][0])
    assert replica.ready().committed == ready.entries


class _Empty:
    def snapshot(self) -> Snapshot:
        return Snapshot(0, b"")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: r.propose("text"), "payload must be bytes"),
        (lambda r: r.step(Ping(2, 3, 1, 0)), "stepped into server 1"),
        (lambda r: r.step(b"bytes"), "step takes a Zab message"),
        (lambda r: r.persisted(-1), "zxid must be"),
        (lambda r: r.compact(5), "zxid must be"),
        (lambda r: r.advance(None), "advance takes the Ready"),
    ],
)
def test_entry_points_check_their_input(call: object, message: str) -> None:
    replica = Replica(Config((1, 2, 3)), 1, rng=Random(1), storage=MemoryLog(), snapshots=_Empty())
    with pytest.raises(LocalError, match=message):
        call(replica)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"server_id": 9}, "not in the ensemble"),
        ({"rng": 5}, "rng must be a random.Random"),
        ({"accepted_epoch": 1, "current_epoch": 2}, "current_epoch must be"),
        ({"zxid_applied": 7}, "zxid_applied must be"),
    ],
)
def test_construction_checks(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "server_id": 1,
        "rng": Random(1),
        "storage": MemoryLog(),
        "snapshots": _Empty(),
    }
    args.update(kwargs)
    server_id = args.pop("server_id")
    with pytest.raises(LocalError, match=message):
        Replica(Config((1, 2, 3)), server_id, **args)  # type: ignore[arg-type]


def test_sync_answers_with_the_leaders_commit_point_after_its_commits() -> None:
    ensemble = Ensemble(3, observers=1)
    leader = ensemble.settle()
    f1 = followers(ensemble, leader)[0]
    for payload in (b"a", b"b"):
        assert ensemble.propose(leader, payload)
    ensemble.run()
    committed = ensemble.status(leader).zxid_committed
    assert ensemble.client_sync(leader, 1)
    assert not ensemble.synced  # not before a quorum echoed a heartbeat round sent after it
    ensemble.run()
    assert (leader, 1, committed) in ensemble.synced  # the leader has applied it all
    assert ensemble.client_sync(f1, 2)
    assert ensemble.client_sync(4, 3)
    assert [type(m) for m in ensemble.pending(f1, leader)] == [Sync]
    ensemble.run()
    assert (f1, 2, committed) in ensemble.synced
    assert (4, 3, committed) in ensemble.synced
    assert ensemble.status(f1).zxid_applied >= committed


def test_sync_needs_an_established_leader() -> None:
    ensemble = Ensemble(3)
    assert not any(ensemble.client_sync(sid, 1) for sid in ensemble.up())
    leader = ensemble.settle()
    with pytest.raises(LocalError, match="token"):
        ensemble.replica(leader).sync(-1)


def test_writes_beyond_the_pipeline_wait_in_order_and_all_commit() -> None:
    ensemble = Ensemble(3, proposals_outstanding_max=2)
    leader = ensemble.settle()
    f1 = followers(ensemble, leader)[0]
    payloads = [b"w%d" % i for i in range(7)]
    for i, payload in enumerate(payloads):
        assert ensemble.propose(f1 if i % 2 else leader, payload)  # forwarded ones too
    ensemble.run()
    applied = ensemble.applied(leader)
    assert sorted(applied) == payloads and all(ensemble.applied(sid) == applied for sid in ensemble.up())
    for sent_by in (payloads[0::2], payloads[1::2]):  # each server's writes keep their order
        assert [p for p in applied if p in sent_by] == sent_by
    assert not ensemble.replica(leader)._leader.backlog  # type: ignore[union-attr]


def test_the_bytes_in_flight_are_bounded_and_one_big_write_still_goes() -> None:
    """A leader keeps no more than proposals_outstanding_bytes_max of proposals uncommitted
    (the rest wait in its backlog), so that a burst of big writes fits in what its followers'
    transports hold; a proposal bigger than the bound goes when nothing else is in flight."""
    ensemble = Ensemble(3, proposals_outstanding_bytes_max=100)
    leader = ensemble.settle()
    zab = ensemble.replica(leader)._leader
    assert zab is not None
    payloads = [b"%02d" % i + b"x" * 38 for i in range(6)]  # 40 bytes each
    for payload in payloads:
        assert ensemble.propose(leader, payload)
    assert len(zab.backlog) == 3  # 0, 40 and 80 bytes in flight let one more go; 120 do not
    ensemble.run()
    assert ensemble.applied(leader) == payloads and not zab.backlog
    big = [b"B" * 300, b"b" * 300]
    for payload in big:
        assert ensemble.propose(leader, payload)
    assert list(zab.backlog) == big[1:]
    ensemble.run()
    assert all(ensemble.applied(sid) == payloads + big for sid in ensemble.up())


@pytest.mark.parametrize("lost", [1, 3])
def test_proposals_lost_at_the_end_of_a_burst_are_sent_again(lost: int) -> None:
    """A follower finds a lost proposal at the next one; when the lost ones were the last and
    the quorum needs that follower (one of three down), nothing else would ever show it. The
    leader sends them again once it went learner_retry_ticks without an ack or a proposal."""
    ensemble = Ensemble(3)
    leader = ensemble.settle()
    follower, down = followers(ensemble, leader)
    ensemble.crash(down)
    ensemble.run()
    payloads = [b"w%d" % i for i in range(lost)]
    for payload in payloads:
        assert ensemble.propose(leader, payload)
    assert ensemble.drop(leader, follower, Proposal) == lost
    ensemble.run()
    assert ensemble.applied(leader) == []
    ensemble.tick(n=ensemble.config.learner_retry_ticks + 1)
    ensemble.run()
    assert ensemble.applied(leader) == payloads == ensemble.applied(follower)
    assert ensemble.status(leader).role == Role.LEADING and ensemble.status(follower).role == Role.FOLLOWING


def test_a_follower_that_has_what_is_sent_again_ignores_it() -> None:
    """What a follower has but has not acked (its disk is slow) may come again: it neither
    logs it twice nor registers again, and acks it once durable."""
    ensemble = Ensemble(3)
    leader = ensemble.settle()
    follower = followers(ensemble, leader)[0]
    assert ensemble.propose(leader, b"w0") and ensemble.propose(leader, b"w1")
    ensemble.deliver()
    ensemble.drop(follower, leader, Ack)  # its acks of w0 and w1 are lost
    ensemble.cut_one_way(follower, leader)
    ensemble.tick(n=ensemble.config.learner_retry_ticks + 1)
    resent = [m for m in ensemble.queues[(leader, follower)] if isinstance(m, Proposal)]
    assert [m.payload for m in resent] == [b"w0", b"w1"]
    ensemble.recover()
    ensemble.run()
    ensemble.tick()
    ensemble.run()
    assert ensemble.applied(follower) == [b"w0", b"w1"] == ensemble.applied(leader)
    assert ensemble.status(follower).role == Role.FOLLOWING


def test_a_deposed_leader_never_answers_a_sync() -> None:
    """ZOOKEEPER-1675: a leader cut off from its followers still believes it leads until its
    sync limit runs out; a sync it takes meanwhile must wait for a quorum, which never comes."""
    ensemble = Ensemble(3)
    leader = ensemble.settle()
    ensemble.isolate(leader)
    assert ensemble.client_sync(leader, 7)
    ensemble.run()
    assert ensemble.status(leader).role == Role.LEADING
    assert not ensemble.synced


def test_syncs_share_a_round_and_a_round_needs_fresh_echoes() -> None:
    ensemble = Ensemble(5)
    leader = ensemble.settle()
    for token in (1, 2, 3):
        assert ensemble.client_sync(leader, token)
    pings = [m for f in followers(ensemble, leader) for m in ensemble.pending(leader, f)]
    assert [type(m) for m in pings] == [Ping] * 4  # one round for the three syncs
    ensemble.run()
    assert sorted(token for _, token, _ in ensemble.synced) == [1, 2, 3]


def test_a_closed_connection_to_the_leader_starts_an_election_at_once() -> None:
    ensemble = Ensemble(3)
    leader = ensemble.settle()
    f1, f2 = followers(ensemble, leader)
    ensemble.replica(f1).peer_lost(leader)
    assert ensemble.status(f1).role == Role.LOOKING  # no waiting for sync_limit_ticks
    ensemble.replica(leader).peer_lost(f2)  # one follower gone: the leader still has a quorum
    assert ensemble.status(leader).role == Role.LEADING
    ensemble.replica(leader).peer_lost(f1)
    assert ensemble.status(leader).role == Role.LOOKING


def test_a_follower_does_not_blame_its_leader_for_its_own_stall() -> None:
    """A follower whose own loop stood still for 30 ticks (a long apply, say) finds its leader's
    messages waiting and keeps following it; ticked through the same 30 ticks one at a time,
    with nothing from the leader, it gives up. A leader's stall still counts in full: it
    steps down, having heard from no quorum."""
    ensemble = Ensemble(3)
    leader = ensemble.settle()
    f1, f2 = (sid for sid in ensemble.up() if sid != leader)
    ensemble.tick(n=2)  # past the ticks that start a follower's count
    before = len(ensemble.reasons(f1))
    ensemble.replica(f1).tick(30)  # one call: a stall
    ensemble.run()
    assert ensemble.reasons(f1)[before:] == []  # it never left its leader
    assert ensemble.status(f1).role == Role.FOLLOWING and ensemble.status(f1).leader == leader
    assert ensemble.propose(leader, b"a")
    ensemble.run()
    assert ensemble.applied(f1) == [b"a"]
    ensemble.isolate(leader)
    ensemble.tick(f2, n=30)
    assert any("silent" in reason for reason in ensemble.reasons(f2))
    ensemble.replica(leader).tick(30)
    assert ensemble.status(leader).role != Role.LEADING


@pytest.mark.parametrize(
    ("config", "kept_bytes_max"),
    [
        ({}, None),
        ({"proposals_outstanding_max": 2}, None),
        ({"proposals_outstanding_bytes_max": 100}, None),
        ({"zxid_counter_max": 3}, None),
        ({}, 100),
    ],
    ids=["room", "pipeline-of-2", "100-bytes-in-flight", "counter-runs-out", "100-bytes-kept"],
)
@pytest.mark.parametrize("on_leader", [True, False], ids=["leader", "follower"])
def test_a_run_of_writes_proposed_together_goes_as_one_at_a_time(
    monkeypatch: pytest.MonkeyPatch, config: dict[str, int], kept_bytes_max: int | None, on_leader: bool
) -> None:
    """propose_many takes what propose() one payload at a time would take, up to the first it
    refuses, and each server is sent the same messages in the same order, logs and applies the
    same: through a full pipeline (the rest in the backlog), when the zxid counter runs out in
    the middle of the run (the rest refused, the leader steps down), and when the uncommitted
    entries outgrow what a replica keeps of them (the rest read back from its log)."""
    if kept_bytes_max is not None:
        monkeypatch.setattr(limits, "zab_uncommitted_kept_bytes_max", kept_bytes_max)
    payloads = [b"%02d" % i + b"x" * 38 for i in range(6)]  # 40 bytes each

    def run(together: bool) -> tuple[object, ...]:
        ensemble = Ensemble(3, **config)
        leader = ensemble.settle()
        sid = leader if on_leader else followers(ensemble, leader)[0]
        ensemble.propose(sid, b"first")
        sent_before = len(ensemble.sent)
        if together:
            went = ensemble.replica(sid).propose_many(payloads)
            ensemble._handle(sid)
        else:
            went = 0
            while went < len(payloads) and ensemble.propose(sid, payloads[went]):
                went += 1
        by_link: dict[tuple[int, int], list[object]] = {}
        for m in ensemble.sent[sent_before:]:
            by_link.setdefault((m.source, m.target), []).append(m)
        reasons = ensemble.reasons(leader)[-1:]
        ensemble.run()
        return went, by_link, reasons, [ensemble.applied(s) for s in ensemble.up()]

    together = run(True)
    assert together == run(False)
    went, _, reasons, applied = together
    if "zxid_counter_max" not in config:
        assert went == len(payloads) and all(a == [b"first", *payloads] for a in applied)
    elif on_leader:
        assert went == 2 and "rolled over" in reasons[0]  # b"first" took the first zxid
    else:  # a follower forwards them all (the leader runs out as it stamps them)
        assert went == len(payloads)


@pytest.mark.parametrize(
    ("config", "backlog_bytes", "kept_bytes_max"),
    [
        ({}, None, None),
        ({"proposals_outstanding_max": 2}, None, None),
        ({"proposals_outstanding_max": 1}, 100, None),
        ({"proposals_outstanding_bytes_max": 100}, None, None),
        ({"zxid_counter_max": 4}, None, None),
        ({}, None, 100),
    ],
    ids=[
        "room",
        "pipeline-of-2",
        "backlog-full",
        "100-bytes-in-flight",
        "counter-runs-out",
        "100-bytes-kept",
    ],
)
def test_forwarded_writes_stepped_together_go_as_one_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
    config: dict[str, int],
    backlog_bytes: int | None,
    kept_bytes_max: int | None,
) -> None:
    """What one poll brings a leader (each follower's ACK, then the writes it forwarded) stepped
    together (step_many) does what stepping them one by one does: the same messages to each
    server in the same order, refusals included (a full backlog refuses one write and may take
    the next), the same logs and trees; when the zxid counter runs out, the write that ran out
    is refused and the rest find a replica that no longer leads."""
    if backlog_bytes is not None:
        monkeypatch.setattr(limits, "zab_backlog_bytes_max", backlog_bytes)
    if kept_bytes_max is not None:
        monkeypatch.setattr(limits, "zab_uncommitted_kept_bytes_max", kept_bytes_max)
    payloads = [b"%02d" % i + b"x" * (8 if i == 4 else 38) for i in range(8)]  # 40 bytes, the 5th 10

    def run(together: bool) -> tuple[object, ...]:
        ensemble = Ensemble(3, **config)
        leader = ensemble.settle()
        f1, f2 = followers(ensemble, leader)
        ensemble.propose(leader, b"first")
        ensemble.deliver(source=leader)  # the followers' ACKs of it go first on their links
        for sid, run in ((f1, payloads[:5]), (f2, payloads[5:])):
            assert ensemble.replica(sid).propose_many(run) == len(run)
            ensemble._handle(sid)
        sent_before = len(ensemble.sent)
        if together:
            waiting = ensemble.pending(target=leader)
            assert [type(m).__name__ for m in waiting].count("Request") == len(payloads)
            ensemble.drop(target=leader)
            ensemble.replica(leader).step_many(waiting)
            ensemble._handle(leader)
        else:
            ensemble.deliver(target=leader)
        by_link: dict[tuple[int, int], list[object]] = {}
        for m in ensemble.sent[sent_before:]:
            by_link.setdefault((m.source, m.target), []).append(m)
        reasons = ensemble.reasons(leader)[-1:]
        ensemble.run()
        return by_link, reasons, [ensemble.applied(s) for s in ensemble.up()]

    together = run(True)
    assert together == run(False)
    by_link, reasons, applied = together
    refused = sum(isinstance(m, Refused) for messages in by_link.values() for m in messages)
    if "zxid_counter_max" in config:  # b"first" took a zxid, 3 more go, the 4th runs out
        assert refused == 1 and "rolled over" in reasons[0]
    elif backlog_bytes is not None:  # 1 in flight, 80 bytes waiting: the 4th refused, the 5th fits
        assert refused == 4 and all(a == [b"first", *payloads[:3], payloads[4]] for a in applied)
    else:
        assert refused == 0 and all(a == [b"first", *payloads] for a in applied)


def test_step_many_checks_each_forwarded_write_like_step() -> None:
    ensemble = Ensemble(3)
    leader = ensemble.settle()
    f1 = followers(ensemble, leader)[0]
    epoch = ensemble.status(leader).epoch
    stray = [Request(f1, leader, epoch, b"a"), Request(f1, leader % 3 + 1, epoch, b"b")]
    with pytest.raises(LocalError, match="stepped into server"):
        ensemble.replica(leader).step_many(stray)
    unknown = [Request(9, leader, epoch, b"a"), Request(9, leader, epoch, b"b")]
    ensemble.replica(leader).step_many(unknown)  # not a server of ours: ignored, as by step
    ensemble._handle(leader)
    stale = [Request(f1, leader, epoch + 1, b"a"), Request(f1, leader, epoch, b"b")]
    ensemble.replica(leader).step_many(stale)  # another epoch's write: dropped, as by step
    ensemble._handle(leader)
    ensemble.run()
    assert ensemble.applied(leader) == [b"b"]


def test_propose_many_takes_nothing_without_an_established_leader() -> None:
    ensemble = Ensemble(3)
    assert ensemble.replica(1).propose_many([b"a", b"b"]) == 0
    with pytest.raises(LocalError, match="payload must be bytes"):
        ensemble.replica(1).propose_many([b"a", "b"])  # type: ignore[list-item]
