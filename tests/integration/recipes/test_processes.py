"""Counter, LockingQueue, Party and DoubleBarrier used by several processes at once (worker.py)
against a real ensemble, with a server killed or a user paused past its session. These run with
`-m slow` (the default run keeps to Lock and Election under faults, and every recipe in one
process)."""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Ensemble, wait_for
from tests.integration.recipes.contenders import Contenders
from zkclient import Client

SESSION_S = 3.0


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Contenders]:
    c = Contenders(tmp_path / "workers")
    yield c
    c.stop()


def records(procs: Contenders, key: str) -> list[dict[str, object]]:
    return [r for name in procs.procs for r in procs.records(name) if key in r]


@pytest.mark.slow
def test_counter_adds_from_processes_with_a_server_killed(
    slow_selected: None, ensemble: Ensemble, zk: Client, procs: Contenders
) -> None:
    """No add is lost; an add whose set met ConnectionLoss may have been applied twice (the
    documented ambiguity), so the total lies between the adds that returned and that plus the
    ConnectionLoss errors met."""
    for i in range(4):
        procs.start_worker(f"w{i}", "counter", ensemble.connect_string(), "--path", "/count", "--count", "15",
                           "--session-s", str(SESSION_S))  # fmt: skip
    wait_for(lambda: len(records(procs, "added")) >= 10, 60, "some adds")
    ensemble.wait_healthy()
    leader = wait_for(ensemble.leader, 30, "a leader")
    victim = next(sid for sid in ensemble.servers if sid != leader)
    pid = ensemble.kill(victim)
    procs.wait_done(90)
    adds = records(procs, "added")
    assert len(adds) == 60
    returned = sum(int(r["added"]) for r in adds)  # type: ignore[call-overload]
    losses = sum(int(r["losses"]) for r in adds)  # type: ignore[call-overload]
    zk.sync("/count")
    total = zk.Counter("/count").value
    assert returned <= total <= returned + losses, (returned, losses, total)
    wait_for(lambda: ensemble.pid(victim) not in (None, pid), 60, f"node {victim} restarted")
    ensemble.wait_healthy()


@pytest.mark.slow
def test_locking_queue_consumers_in_processes_one_paused(
    slow_selected: None, ensemble: Ensemble, zk: Client, procs: Contenders
) -> None:
    """A consumer paused with an entry locked loses it when its session expires; another takes
    it over; every entry is consumed exactly once, and the paused consumer is told (its consume
    fails, or its session is reported expired)."""
    items = [f"job-{i:02d}".encode() for i in range(24)]
    zk.LockingQueue("/jobs").put_all(items)
    for i in range(3):
        procs.start_worker(f"q{i}", "consumer", ensemble.connect_string(), "--path", "/jobs", "--hold-s", "0.5",
                           "--session-s", str(SESSION_S))  # fmt: skip

    def busy() -> tuple[str, str] | None:  # a consumer holding an entry it has not consumed
        for name in procs.procs:
            recs = [r for r in procs.records(name) if "got" in r or "consumed" in r or "consume-failed" in r]
            if recs and "got" in recs[-1]:
                return name, str(recs[-1]["got"])
        return None

    found = wait_for(busy, 60, "a consumer with an entry")
    assert isinstance(found, tuple)
    name, item = found
    paused_at = procs.pause(name)
    try:
        wait_for(lambda: any(r["consumed"] == item for r in records(procs, "consumed")), SESSION_S * 3 + 30,
                 f"another consumer to take {item} over")  # fmt: skip
    finally:
        procs.resume(name)
    procs.wait_done(90)
    consumed = Tally(str(r["consumed"]) for r in records(procs, "consumed"))
    assert consumed == Tally(i.decode() for i in items), "each entry consumed exactly once"
    mine = procs.records(name)
    assert not any(r.get("consumed") == item for r in mine), "the paused consumer consumed a lost entry"
    told = [r for r in mine if r.get("consume-failed") == item or "SessionExpired" in str(r.get("error", ""))]
    assert told, f"the paused consumer was not told it lost {item}: {mine}"
    takeover = min(
        float(r["t"]) for r in records(procs, "got") if r["got"] == item and float(r["t"]) > paused_at
    )  # type: ignore[arg-type]
    assert takeover - paused_at > SESSION_S * 0.5, "the lock went before the session could expire"
    zk.sync("/jobs")
    assert zk.get_children("/jobs/entries") == [] and zk.get_children("/jobs/taken") == []


@pytest.mark.slow
def test_party_member_paused_leaves_and_rejoins(
    slow_selected: None, ensemble: Ensemble, zk: Client, procs: Contenders, tmp_path: Path
) -> None:
    stop = tmp_path / "stop"
    for i in range(3):
        procs.start_worker(f"m{i}", "member", ensemble.connect_string(), "--path", "/members",
                           "--stop-file", str(stop), "--session-s", str(SESSION_S))  # fmt: skip
    party = zk.Party("/members")

    def members() -> list[str]:
        zk.sync("/members")
        return sorted(party)

    wait_for(lambda: members() == ["m0", "m1", "m2"], 60, "three members")
    paused_at = procs.pause("m1")
    try:
        wait_for(lambda: members() == ["m0", "m2"], SESSION_S * 3 + 30, "the paused member to leave")
        assert time.monotonic() - paused_at > SESSION_S * 0.5
    finally:
        procs.resume("m1")
    wait_for(lambda: members() == ["m0", "m1", "m2"], 60, "the member to rejoin with a new session")
    joined = [r["joined"] for r in procs.records("m1") if "joined" in r]
    assert len(joined) == 2 and joined[0] != joined[1], "rejoined once, with a new session"
    stop.write_text("stop")
    procs.wait_done(60)
    wait_for(lambda: members() == [], 30, "everyone gone")


@pytest.mark.slow
def test_double_barrier_across_processes(slow_selected: None, ensemble: Ensemble, procs: Contenders) -> None:
    for i in range(3):
        procs.start_worker(f"b{i}", "barrier", ensemble.connect_string(), "--path", "/rendezvous", "--count", "3",
                           "--hold-s", "0.2", "--session-s", str(SESSION_S))  # fmt: skip
    procs.wait_done(90)
    step = {
        key: [float(r["t"]) for r in records(procs, key)]
        for key in ("entering", "entered", "leaving", "left")
    }  # type: ignore[arg-type]
    assert all(len(ts) == 3 for ts in step.values()), step
    assert all(r["entered"] is True for r in records(procs, "entered"))
    assert min(step["entered"]) >= max(step["entering"]), "someone passed before all had entered"
    assert min(step["left"]) >= max(step["leaving"]), "someone left before all were leaving"
