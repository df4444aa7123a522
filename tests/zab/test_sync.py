"""Discovery and synchronisation scenarios: DIFF, TRUNC, SNAP, durability before acks, epochs."""

from __future__ import annotations

from random import Random

from tests.sim.ensemble import Ensemble
from zkcore import MemoryLog
from zkcore.zab import (
    Ack,
    AckEpoch,
    Config,
    Diff,
    Entry,
    FollowerInfo,
    LeaderInfo,
    NewLeader,
    Notification,
    Phase,
    Proposal,
    Replica,
    Role,
    Snap,
    Snapshot,
    make_zxid,
)


def others(ensemble: Ensemble, leader: int) -> list[int]:
    return [sid for sid in ensemble.up() if sid != leader]


def follower_misses(ensemble: Ensemble, writes: list[bytes]) -> tuple[int, int]:
    """Settle, crash a follower, commit `writes` without it: (leader, follower), still down."""
    leader = ensemble.settle()
    follower = others(ensemble, leader)[0]
    ensemble.crash(follower)
    for payload in writes:
        ensemble.propose(leader, payload)
    ensemble.run()
    return leader, follower


def test_diff_brings_back_a_follower_that_missed_writes() -> None:
    ensemble = Ensemble(3)
    leader, follower = follower_misses(ensemble, [b"a", b"b"])
    ensemble.restart(follower)
    ensemble.settle()
    assert "DIFF" in ensemble.reasons(follower)
    assert ensemble.applied(follower) == [b"a", b"b"]


def test_empty_diff_when_in_step() -> None:
    ensemble = Ensemble(3)
    leader = ensemble.settle()
    ensemble.propose(leader, b"a")
    ensemble.run()
    follower = others(ensemble, leader)[0]
    ensemble.crash(follower)
    ensemble.restart(follower)
    ensemble.settle()
    diffs = [m for m in ensemble.sent if isinstance(m, Diff) and m.target == follower]
    assert diffs[-1].entries == ()
    assert ensemble.applied(follower) == [b"a"]


def test_trunc_drops_an_uncommitted_tail() -> None:
    ensemble = Ensemble(3)
    old = ensemble.settle()
    assert old == 3
    ensemble.propose(old, b"a")
    ensemble.run()
    ensemble.propose(old, b"lost")  # logged by the leader alone
    ensemble.drop(source=old)
    ensemble.crash(old)
    new = ensemble.settle()
    ensemble.propose(new, b"b")
    ensemble.run()
    ensemble.restart(old)
    ensemble.settle()
    assert "TRUNC" in ensemble.reasons(old)
    assert ensemble.applied(old) == [b"a", b"b"]
    assert [p for _, p in ensemble.nodes[old].storage.entries(0, 1 << 62)] == [b"a", b"b"]


def test_snap_when_too_far_behind() -> None:
    ensemble = Ensemble(3, diff_entries_max=2)
    writes = [b"w%d" % i for i in range(5)]
    leader, follower = follower_misses(ensemble, writes)
    ensemble.restart(follower)
    ensemble.settle()
    assert "SNAP" in ensemble.reasons(follower)
    assert ensemble.applied(follower) == writes
    assert ensemble.nodes[follower].snapshot_zxid > 0


def test_snap_below_a_compacted_log() -> None:
    ensemble = Ensemble(3)
    leader, follower = follower_misses(ensemble, [b"a", b"b", b"c"])
    ensemble.nodes[leader].take_snapshot()  # the leader forgets its log up to c
    ensemble.restart(follower)
    ensemble.settle()
    assert "SNAP" in ensemble.reasons(follower)
    assert ensemble.applied(follower) == [b"a", b"b", b"c"]


def test_follower_acks_newleader_only_once_durable() -> None:
    ensemble = Ensemble(3, auto_sync=False)
    leader, follower = follower_misses(ensemble, [b"a"])
    for sid in ensemble.up():
        ensemble.sync(sid)
    ensemble.run()
    ensemble.restart(follower)
    mark = len(ensemble.sent)
    for _ in range(6):
        ensemble.run()
        ensemble.tick()
    # The DIFF is logged but not durable: no ack, so not up to date.
    status = ensemble.status(follower)
    assert status.phase == Phase.SYNCHRONISATION
    assert status.zxid_last > status.zxid_persisted
    assert not [m for m in ensemble.sent[mark:] if isinstance(m, Ack) and m.source == follower]
    ensemble.sync(follower)
    assert [m for m in ensemble.pending(follower, leader) if isinstance(m, Ack)]
    ensemble.run()
    assert ensemble.status(follower).phase == Phase.BROADCAST
    assert ensemble.applied(follower) == [b"a"]


def test_leader_serves_no_writes_before_a_quorum_acked_newleader() -> None:
    ensemble = Ensemble(3)
    ensemble.tick(n=3)
    for _ in range(10):
        ensemble.deliver(kind=None)
        leaders = [sid for sid in ensemble.up() if ensemble.status(sid).role == Role.LEADING]
        if leaders and ensemble.status(leaders[0]).phase != Phase.BROADCAST:
            assert not ensemble.propose(leaders[0], b"too early")
        ensemble.tick()
    leader = ensemble.settle()
    assert ensemble.propose(leader, b"now")


def test_new_epoch_exceeds_every_accepted_epoch_of_the_quorum() -> None:
    ensemble = Ensemble(3)
    ensemble.load(1, [], 7, 0)  # accepted 7 in some failed epoch
    ensemble.drop()
    leader = ensemble.settle()
    assert ensemble.status(leader).epoch == 8
    assert all(ensemble.status(sid).current_epoch == 8 for sid in ensemble.up())


def test_epochs_are_in_the_ready_that_sends_the_ack() -> None:
    """acceptedEpoch goes out with ACKEPOCH and currentEpoch with the NEWLEADER ack, so the shell
    makes each durable before the message leaves (Ready's order)."""
    follower = Replica(Config((1, 2, 3)), 1, rng=Random(0), storage=MemoryLog(), snapshots=_NoSnapshots())
    follower.ready()
    follower.step(Notification(3, 1, Role.LEADING, 3, 0, 1, 0))
    follower.step(Notification(2, 1, Role.FOLLOWING, 3, 0, 1, 0))
    ready = follower.ready()
    assert [type(m) for m in ready.messages] == [FollowerInfo]
    follower.step(LeaderInfo(3, 1, 4))
    ready = follower.ready()
    assert ready.accepted_epoch == 4 and ready.current_epoch == 0
    assert [type(m) for m in ready.messages] == [AckEpoch]
    follower.step(Diff(3, 1, 4, 0, 0, ()))
    assert follower.ready().current_epoch is None
    follower.step(NewLeader(3, 1, 4, 0))
    ready = follower.ready()
    assert ready.current_epoch == 4
    assert [type(m) for m in ready.messages] == [Ack]


def test_current_epoch_waits_for_the_synced_log_to_be_durable() -> None:
    """Regression (simulator): currentEpoch written before the DIFF was durable let a crashed
    follower come back with the new epoch and a short log, win the election and lose a write."""
    follower = _following_replica()
    follower.step(LeaderInfo(3, 1, 4))
    follower.advance(follower.ready())
    zxid = make_zxid(3, 1)
    follower.step(Diff(3, 1, 4, 0, 0, (Entry(zxid, b"a"),)))
    follower.step(NewLeader(3, 1, 4, zxid))
    ready = follower.ready()
    assert ready.entries == ((zxid, b"a"),)
    assert ready.current_epoch is None and not [m for m in ready.messages if isinstance(m, Ack)]
    follower.advance(ready)
    follower.persisted(zxid)
    ready = follower.ready()
    assert ready.current_epoch == 4
    assert [m for m in ready.messages if isinstance(m, Ack)] == [Ack(1, 3, 4, zxid)]


def test_snap_is_durable_as_a_whole() -> None:
    """Regression (simulator): a SNAP dropped the old log at once but left the entries after the
    snapshot to a later sync; a crash in between lost acked txns. Now the snapshot and its
    entries are installed as one durable unit, so the NEWLEADER ack needs no further sync."""
    follower = _following_replica()
    follower.step(LeaderInfo(3, 1, 4))
    follower.advance(follower.ready())
    first, second = make_zxid(3, 1), make_zxid(3, 2)
    follower.step(Snap(3, 1, 4, first, b"state", first, (Entry(second, b"b"),)))
    follower.step(NewLeader(3, 1, 4, second))
    ready = follower.ready()
    assert ready.snapshot == Snapshot(first, b"state") and ready.entries == ((second, b"b"),)
    assert ready.current_epoch == 4
    assert [m for m in ready.messages if isinstance(m, Ack)] == [Ack(1, 3, 4, second)]
    assert follower.status().zxid_persisted == second


def _following_replica() -> Replica:
    follower = Replica(Config((1, 2, 3)), 1, rng=Random(0), storage=MemoryLog(), snapshots=_NoSnapshots())
    follower.step(Notification(3, 1, Role.LEADING, 3, 0, 1, 0))
    follower.step(Notification(2, 1, Role.FOLLOWING, 3, 0, 1, 0))
    follower.advance(follower.ready())
    return follower


class _NoSnapshots:
    def snapshot(self) -> Snapshot:
        raise AssertionError("no snapshot expected")


def test_proposal_during_sync_is_logged_after_the_diff() -> None:
    ensemble = Ensemble(3)
    leader, follower = follower_misses(ensemble, [b"a"])
    ensemble.restart(follower)
    while not [m for m in ensemble.pending(leader, follower) if isinstance(m, NewLeader)]:
        ensemble.deliver()
        ensemble.tick()
    ensemble.propose(leader, b"b")  # queued behind NEWLEADER on the same link
    kinds = [type(m) for m in ensemble.pending(leader, follower)]
    assert kinds.index(NewLeader) < kinds.index(Proposal)
    ensemble.settle()
    assert ensemble.applied(follower) == [b"a", b"b"]


def test_lost_sync_message_makes_the_learner_register_again() -> None:
    ensemble = Ensemble(3)
    leader, follower = follower_misses(ensemble, [b"a"])
    ensemble.restart(follower)
    for _ in range(20):
        if ensemble.drop(leader, follower, Diff):  # the DIFF is lost, its NEWLEADER arrives
            break
        ensemble.deliver()
        ensemble.tick()
    ensemble.settle()
    assert "NEWLEADER without a sync: the sync was lost" in ensemble.reasons(follower)
    assert ensemble.applied(follower) == [b"a"]


def _waiting_for_an_image(writes: list[bytes], **config: int) -> tuple[Ensemble, int, int]:
    """Servers that make SNAP images in the background; a follower that missed `writes` (too
    many for a DIFF) started again: the leader is making its image. (ensemble, leader, it)."""
    ensemble = Ensemble(3, diff_entries_max=2, **config)
    for node in ensemble.nodes.values():
        node.images_in_background = True
    leader, follower = follower_misses(ensemble, writes)
    ensemble.restart(follower)
    ensemble.run()
    assert ensemble.nodes[leader].image_making is not None
    return ensemble, leader, follower


def test_a_snap_made_in_the_background_goes_to_the_learner_waiting_while_the_leader_serves() -> None:
    writes = [b"w%d" % i for i in range(5)]
    ensemble, leader, follower = _waiting_for_an_image(writes)
    other = next(sid for sid in others(ensemble, leader) if sid != follower)
    source = ensemble.nodes[leader]
    assert (
        source.image_making is not None and source.image_making.zxid == ensemble.status(leader).zxid_applied
    )
    assert not [m for m in ensemble.sent if isinstance(m, Snap)]
    # Meanwhile the leader goes on committing with the other follower; those txns follow the image.
    ensemble.propose(leader, b"late")
    ensemble.run()
    assert ensemble.applied(other) == [*writes, b"late"]
    source.image_made()
    ensemble.settle()
    (snap,) = [m for m in ensemble.sent if isinstance(m, Snap)]
    assert snap.zxid < ensemble.status(leader).zxid_committed and [e.payload for e in snap.entries] == [
        b"late"
    ]
    assert ensemble.applied(follower) == [*writes, b"late"]
    assert "SNAP" in ensemble.reasons(follower)


def test_a_background_snap_outrun_by_a_compaction_is_made_again() -> None:
    ensemble, leader, follower = _waiting_for_an_image([b"a", b"b", b"c"])
    source = ensemble.nodes[leader]
    stale = source.image_making
    assert stale is not None
    ensemble.propose(leader, b"d")
    ensemble.run()
    source.take_snapshot()  # the log now starts after d: the image at c is no point of it
    assert ensemble.nodes[leader].snapshot_zxid > stale.zxid  # the log's base is past the image
    source.image_made()
    assert not [m for m in ensemble.sent if isinstance(m, Snap)]
    assert source.image_making is not None and source.image_making.zxid > stale.zxid
    source.image_made()
    ensemble.settle()
    assert ensemble.applied(follower) == [b"a", b"b", b"c", b"d"]


def test_a_sync_longer_than_one_message_goes_on_in_diffs() -> None:
    ensemble = Ensemble(3, diff_entries_max=5, transfer_entries_max=2)
    leader, follower = follower_misses(ensemble, [b"x", b"y", b"z"])
    ensemble.restart(follower)
    ensemble.settle()
    diffs = [m for m in ensemble.sent if m.target == follower and isinstance(m, Diff)][-2:]
    assert [[e.payload for e in m.entries] for m in diffs] == [[b"x", b"y"], [b"z"]]
    assert diffs[1].zxid == diffs[0].entries[-1].zxid
    assert ensemble.applied(follower) == [b"x", b"y", b"z"]


def test_a_background_snap_brings_what_was_committed_meanwhile_in_diffs() -> None:
    ensemble, leader, follower = _waiting_for_an_image([b"a", b"b", b"c"], transfer_entries_max=2)
    for payload in (b"l1", b"l2", b"l3"):
        ensemble.propose(leader, payload)
    ensemble.run()
    sent = len(ensemble.sent)
    ensemble.nodes[leader].image_made()
    ensemble.settle()
    sync = [m for m in ensemble.sent[sent:] if m.target == follower and isinstance(m, Snap | Diff)]
    assert [(type(m), [e.payload for e in m.entries]) for m in sync] == [
        (Snap, [b"l1", b"l2"]),
        (Diff, [b"l3"]),
    ]
    assert ensemble.applied(follower) == [b"a", b"b", b"c", b"l1", b"l2", b"l3"]


def test_a_snap_replaces_the_history_only_once_the_whole_sync_is_here() -> None:
    """Regression (simulator, seed 5103 --long): installed at once, a SNAP whose txns go on in
    DIFFs left the log shorter than the one the learner had acked; the next DIFF lost, it
    went on to lead without an acked write."""
    follower = _following_replica()
    follower.step(LeaderInfo(3, 1, 4))
    follower.advance(follower.ready())
    base, a, b, c = (make_zxid(3, n) for n in (1, 2, 3, 4))
    follower.step(Snap(3, 1, 4, base, b"state", base, (Entry(a, b"a"),)))
    ready = follower.ready()
    assert ready.snapshot is None and ready.entries == () and follower.status().zxid_last == 0
    follower.advance(ready)
    follower.step(Diff(3, 1, 4, a, a, (Entry(b, b"b"),)))
    follower.step(Diff(3, 1, 4, a, a, (Entry(b, b"b"),)))  # a duplicate: ignored
    follower.step(Diff(3, 1, 4, b, b, (Entry(c, b"c"),)))
    follower.step(NewLeader(3, 1, 4, c))
    ready = follower.ready()
    assert ready.snapshot == Snapshot(base, b"state") and ready.entries == ((a, b"a"), (b, b"b"), (c, b"c"))
    assert follower.status().zxid_committed == b


def test_a_gap_in_a_long_snap_leaves_the_log_as_it_was() -> None:
    follower = _following_replica()
    follower.step(LeaderInfo(3, 1, 4))
    follower.advance(follower.ready())
    base, a, b, c = (make_zxid(3, n) for n in (1, 2, 3, 4))
    follower.step(Snap(3, 1, 4, base, b"state", base, (Entry(a, b"a"),)))
    follower.step(Diff(3, 1, 4, b, b, (Entry(c, b"c"),)))  # the DIFF with b was lost
    ready = follower.ready()
    assert ready.snapshot is None and ready.entries == ()
    assert [type(m) for m in ready.messages] == [FollowerInfo]
    follower.advance(ready)
    follower.step(NewLeader(3, 1, 4, c))  # too late: it registered afresh
    assert follower.status().zxid_last == 0


def test_a_learner_waits_for_a_slow_image_as_long_as_the_leader_pings_it() -> None:
    ensemble, leader, follower = _waiting_for_an_image([b"a", b"b", b"c"], init_limit_ticks=5)
    for _ in range(4 * 5):  # four init limits: pings keep it waiting, its repeated acks keep it known
        ensemble.tick()
        ensemble.run()
    assert ensemble.status(follower).phase == Phase.DISCOVERY
    assert ensemble.reasons(follower).count("elected leader") == 2  # once before the crash: never again
    ensemble.nodes[leader].image_made()
    ensemble.settle()
    assert ensemble.applied(follower) == [b"a", b"b", b"c"]


def test_learners_waiting_for_an_image_that_failed_register_again_and_ask_anew() -> None:
    ensemble, leader, follower = _waiting_for_an_image([b"a", b"b", b"c"], init_limit_ticks=5)
    ensemble.nodes[leader].image_made(failed=True)
    assert ensemble.nodes[leader].image_making is None
    for _ in range(10):
        ensemble.tick()
        ensemble.run()
        if ensemble.nodes[leader].image_making is not None:
            break
    assert ensemble.reasons(follower).count("elected leader") == 3  # before the crash, after, again
    ensemble.nodes[leader].image_made()
    ensemble.settle()
    assert ensemble.applied(follower) == [b"a", b"b", b"c"]
