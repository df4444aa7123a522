"""Leader election from scripted states: fresh, uneven histories, restarts mid-election, joiners."""

from __future__ import annotations

import pytest

from tests.sim.ensemble import Ensemble
from zkcore.zab import Notification, Phase, Role, make_zxid

History = list[tuple[int, bytes]]


def history(*runs: tuple[int, int]) -> History:
    """history((1, 3), (2, 1)) is zxids 1.1, 1.2, 1.3, 2.1; a zxid's payload names it."""
    return [(make_zxid(e, c), b"%d.%d" % (e, c)) for e, n in runs for c in range(1, n + 1)]


# Each server: (accepted epoch, current epoch, log). Votes order by (current epoch, last zxid, id).
CASES = [
    ("fresh ensemble: highest id", [(0, 0, []), (0, 0, []), (0, 0, [])], 3),
    ("longest history wins", [(1, 1, history((1, 3))), (1, 1, history((1, 1))), (1, 1, history((1, 1)))], 1),
    (
        "newer epoch beats a longer log",
        [(1, 1, history((1, 3))), (2, 2, history((1, 1))), (1, 1, history((1, 1)))],
        2,
    ),
    ("equal histories: highest id", [(1, 1, history((1, 2)))] * 3, 3),
    (
        "accepted epoch does not count, current does",
        [(9, 1, history((1, 2))), (1, 1, history((1, 1))), (1, 1, history((1, 1)))],
        1,
    ),
    (
        "five servers, mixed",
        [
            (2, 2, history((1, 1), (2, 1))),
            (2, 2, history((1, 1), (2, 2))),
            (1, 1, history((1, 5))),
            (0, 0, []),
            (0, 0, []),
        ],
        2,
    ),
]


@pytest.mark.parametrize(("name", "servers", "leader"), CASES, ids=[c[0] for c in CASES])
def test_election_from_states(name: str, servers: list[tuple[int, int, History]], leader: int) -> None:
    ensemble = Ensemble(len(servers))
    for sid, (accepted, current, log) in enumerate(servers, start=1):
        ensemble.load(sid, log, accepted, current)
    ensemble.drop()
    assert ensemble.settle() == leader
    expected = max(servers, key=lambda s: (s[1], s[2][-1][0] if s[2] else 0))[2]
    for sid in ensemble.up():
        # Everyone now holds the leader's history, and the new epoch committed all of it.
        assert ensemble.applied(sid) == [payload for _, payload in expected]
        assert ensemble.status(sid).current_epoch == max(s[0] for s in servers) + 1


def test_only_a_quorum_up_elects_the_best_of_it() -> None:
    ensemble = Ensemble(5)
    ensemble.load(5, history((1, 9)), 1, 1)
    ensemble.load(4, history((1, 2)), 1, 1)
    ensemble.crash(5)
    ensemble.drop()
    assert ensemble.settle() == 4


def test_restart_mid_election() -> None:
    ensemble = Ensemble(5)
    ensemble.deliver()  # the first round of notifications only
    ensemble.crash(5)  # the best candidate dies with votes for it in flight
    ensemble.tick(n=2)
    ensemble.deliver()
    ensemble.restart(5)
    leader = ensemble.settle()
    assert leader == 5
    assert len({epoch for epoch, _ in ensemble.established}) == len(ensemble.established)


def test_restarted_follower_joins_the_settled_leader_without_an_election() -> None:
    ensemble = Ensemble(3)
    leader = ensemble.settle()
    epoch = ensemble.status(leader).epoch
    ensemble.propose(leader, b"before")
    ensemble.run()
    ensemble.crash(1)
    ensemble.propose(leader, b"while down")
    ensemble.run()
    ensemble.restart(1)
    # The settled servers answer its LOOKING notifications with the leader they follow.
    assert ensemble.settle() == leader
    assert ensemble.status(leader).epoch == epoch
    assert ensemble.status(1).role == Role.FOLLOWING and ensemble.status(1).epoch == epoch
    assert ensemble.applied(1) == [b"before", b"while down"]
    assert ensemble.established == [(epoch, leader)]


def test_lagging_round_catches_up() -> None:
    ensemble = Ensemble(3)
    for _ in range(3):  # elections push the survivors' round up
        leader = ensemble.settle()
        ensemble.crash(leader)
        ensemble.settle()
        ensemble.restart(leader)  # back at round 1
        assert ensemble.status(leader).round < max(ensemble.status(s).round for s in ensemble.up())
    ensemble.settle()
    assert len({ensemble.status(s).epoch for s in ensemble.up()}) == 1


def test_observer_never_leads_and_learns_the_leader() -> None:
    ensemble = Ensemble(3, observers=2)
    ensemble.load(4, history((1, 5)), 1, 1)  # the longest history, but an observer
    ensemble.load(1, history((1, 1)), 1, 1)
    ensemble.drop()
    leader = ensemble.settle()
    assert leader in (1, 2, 3)
    assert ensemble.status(4).role == Role.OBSERVING
    assert ensemble.status(4).phase == Phase.BROADCAST
    assert ensemble.applied(4) == [b"1.1"]  # its uncommitted tail was truncated away


def test_observer_votes_are_not_counted() -> None:
    ensemble = Ensemble(3, observers=4)
    ensemble.crash(2)
    ensemble.crash(3)
    ensemble.tick(n=30)
    ensemble.run()
    # One voter and four observers: no quorum, nobody leads.
    assert all(ensemble.status(sid).role != Role.LEADING for sid in ensemble.up())
    assert all(ensemble.status(sid).phase != Phase.BROADCAST for sid in ensemble.up())


def test_a_settled_server_answers_with_its_state() -> None:
    ensemble = Ensemble(3)
    leader = ensemble.settle()
    follower = 1 if leader != 1 else 2
    ensemble.step(Notification(leader, follower, Role.LOOKING, leader, 0, 0, 0))
    (answer,) = ensemble.pending(follower, leader)
    assert isinstance(answer, Notification)
    assert (answer.state, answer.leader) == (Role.FOLLOWING, leader)


def test_a_server_that_joined_a_settled_leader_answers_with_that_leader() -> None:
    """Regression (simulator): joining through out-of-election answers left our own vote in
    place, so we then told LOOKING servers we followed ourselves and they could not converge."""
    ensemble = Ensemble(3)
    leader = ensemble.settle()
    joiner = 1 if leader != 1 else 2
    ensemble.crash(joiner)
    ensemble.restart(joiner)
    ensemble.settle()
    asker = 6 - leader - joiner
    ensemble.step(Notification(asker, joiner, Role.LOOKING, asker, 0, 99, 0))
    (answer,) = ensemble.pending(joiner, asker)
    assert isinstance(answer, Notification) and answer.leader == leader


def test_observers_never_answer_back() -> None:
    """Regression (simulator, a message storm): a voter answers every observer message, so an
    observer must not answer a voter's notification, settled or LOOKING with a newer round."""
    ensemble = Ensemble(3, observers=1)
    ensemble.settle()
    ensemble.step(Notification(1, 4, Role.LOOKING, 1, 0, 0, 0))  # to a settled observer
    assert ensemble.pending(4, 1) == []
    ensemble.crash(4)
    ensemble.restart(4)
    ensemble.drop()
    for _ in range(3):
        ensemble.tick(4)
    ensemble.drop(source=4)
    ensemble.step(Notification(2, 4, Role.LOOKING, 2, 0, 0, 0))  # an older round than the observer's
    assert ensemble.pending(4, 2) == []
