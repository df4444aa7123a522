"""Lock, Election, ReadLock/WriteLock and Semaphore against a real 3-node ensemble, with
contenders in separate processes (contender.py) whose holds the checker judges
(checker.check_mutual_exclusion): taking turns, the holder's session expiring while it is
paused, servers killed under contenders mid-acquire, create replies lost, and a partition that
isolates the holder. A lock that does not wait is caught."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import Ensemble, wait_for
from tests.integration.recipes.contenders import Contenders
from zkclient import Client

SESSION_S = 3.0  # the contenders' session timeout (the ensemble allows 2 s and up)
NODE_RE = re.compile(r"^[0-9a-f]{32}__lock__\d{10}$")


@pytest.fixture
def contenders(tmp_path: Path) -> Iterator[Contenders]:
    c = Contenders(tmp_path / "contenders")
    yield c
    c.stop()


def start_all(c: Contenders, ensemble: Ensemble, count: int, path: str, *options: str) -> None:
    for i in range(count):
        c.start(f"c{i}", ensemble.connect_string(), "--path", path, "--session-s", str(SESSION_S), *options)


def assert_checked(
    c: Contenders, expected_holds: int | None = None, expiry_min_s: float = 0.0, max_holders: int = 1
) -> None:
    result, holds = c.check(expiry_min_s, max_holders)
    assert result.ok, str(result)
    if expected_holds is not None:
        assert len(holds) == expected_holds, f"{len(holds)} holds recorded:\n{c.stderr_tail()}"


@pytest.mark.parametrize("mode", ["lock", pytest.param("election", marks=pytest.mark.slow)])
def test_contenders_take_turns(
    request: pytest.FixtureRequest, ensemble: Ensemble, zk: Client, contenders: Contenders, mode: str
) -> None:
    if mode == "election":  # the fault tests below cover Election by default
        request.getfixturevalue("slow_selected")
    path = f"/turns-{mode}"
    start_all(contenders, ensemble, 4, path, "--mode", mode, "--holds", "3", "--hold-s", "0.03")
    seen: set[str] = set()

    def layout() -> bool:  # every contender's node has kazoo's name
        try:
            names = zk.get_children(path)
        except Exception:  # noqa: BLE001 - not made yet
            return False
        assert all(NODE_RE.match(n) for n in names), names
        seen.update(names)
        return len(seen) >= 4

    wait_for(layout, 60, "contenders' nodes to show up")
    contenders.wait_done(90)
    assert_checked(contenders, expected_holds=12)
    assert zk.get_children(path) == [], "nodes left behind"


def test_a_lock_that_does_not_wait_is_caught(ensemble: Ensemble, contenders: Contenders) -> None:
    start_all(contenders, ensemble, 3, "/broken", "--broken", "--holds", "3", "--hold-s", "0.2")
    contenders.wait_done(60)
    result, holds = contenders.check()
    assert len(holds) == 9
    assert result.violations, "three contenders holding at once went unnoticed"


@pytest.mark.parametrize("mode", ["lock", "election"])
def test_a_paused_holders_session_expires_and_the_next_contender_gets_the_lock(
    ensemble: Ensemble, contenders: Contenders, mode: str
) -> None:
    path = f"/expiry-{mode}"
    start_all(contenders, ensemble, 3, path, "--mode", mode, "--holds", "2", "--hold-s", "0.5")
    for _attempt in range(5):
        holder = wait_for(contenders.holding, 60, "a contender to hold the lock")
        assert isinstance(holder, str)
        paused_at = contenders.pause(holder)
        if contenders.holding() == holder:  # stopped mid-hold (not just after its end)
            break
        contenders.resume(holder)
    else:
        pytest.fail("never paused a contender while it held the lock")
    try:
        successor = wait_for(lambda: contenders.acquired_after(paused_at, holder), SESSION_S * 3 + 30,
                             "another contender to get the lock once the paused holder's session expired")  # fmt: skip
        assert isinstance(successor, str)
    finally:
        contenders.resume(holder)
    contenders.wait_done(90)
    # The old holder was told: its hold ended `lost` (its release found the session gone).
    paused_holds = [h for h in contenders.holds(holder) if h["acquired"] < paused_at]
    assert paused_holds[-1]["how"] == "lost", paused_holds
    handed_over = min(e["t"] for e in contenders.events(successor, "acquired") if e["t"] > paused_at)
    # The session can only expire after its timeout with no ping: at least 2/3 of it after the pause.
    assert handed_over - paused_at > SESSION_S * 2 / 3 * 0.9
    assert_checked(contenders, expected_holds=6, expiry_min_s=SESSION_S * 0.5)
    # Without the window, the checker does see the overlap the paused holder believed in.
    result, _ = contenders.check()
    assert result.ok or all("ended lost" in " ".join(v.notes) for v in result.violations)


@pytest.mark.parametrize("mode", ["lock", pytest.param("election", marks=pytest.mark.slow)])
def test_server_killed_under_contenders_mid_acquire(
    request: pytest.FixtureRequest, ensemble: Ensemble, contenders: Contenders, mode: str
) -> None:
    if mode == "election":
        request.getfixturevalue("slow_selected")
    path = f"/killed-{mode}"
    start_all(contenders, ensemble, 4, path, "--mode", mode, "--holds", "5", "--hold-s", "0.05")
    wait_for(lambda: sum(len(contenders.holds(n)) for n in contenders.procs) >= 3, 60, "some turns taken")
    ensemble.wait_healthy()
    leader = wait_for(ensemble.leader, 30, "a leader")
    victim = next(sid for sid in ensemble.servers if sid != leader)
    pid = ensemble.kill(victim)  # contenders connected to it are cut off mid-request
    wait_for(lambda: ensemble.pid(victim) not in (None, pid), 60, f"node {victim} restarted")
    ensemble.wait_healthy()
    wait_for(lambda: sum(len(contenders.holds(n)) for n in contenders.procs) >= 10, 60, "more turns taken")
    pid = ensemble.kill(leader)  # and the leader: every write in flight is cut off
    contenders.wait_done(120)
    assert_checked(contenders, expected_holds=20)
    ensemble.wait_healthy()


@pytest.mark.parametrize("mode", ["lock", pytest.param("election", marks=pytest.mark.slow)])
def test_lost_create_replies_are_found_by_prefix_and_block_nobody(
    request: pytest.FixtureRequest, ensemble: Ensemble, zk: Client, contenders: Contenders, mode: str
) -> None:
    if mode == "election":
        request.getfixturevalue("slow_selected")
    path = f"/lost-replies-{mode}"
    start_all(contenders, ensemble, 2, path, "--mode", mode, "--holds", "3", "--hold-s", "0.05")
    for i in (2, 3):
        contenders.start(f"c{i}", ensemble.connect_string(), "--path", path, "--session-s", str(SESSION_S),
                         "--mode", mode, "--holds", "3", "--hold-s", "0.05", "--lose-creates", "3")  # fmt: skip
    contenders.wait_done(90)
    assert_checked(contenders, expected_holds=12)
    for name in ("c2", "c3"):
        done = contenders.events(name, "done")[-1]
        assert len(done["lost_creates"]) == 3, done
    assert zk.get_children(path) == [], "orphans left behind"


@pytest.mark.parametrize("role", ["follower", "leader"])
def test_partition_isolating_the_holders_server(
    ensemble: Ensemble, contenders: Contenders, role: str
) -> None:
    """The holder is pinned to one server; partitioning that server from the others cuts it
    off: the holder hears SUSPENDED (its hold ends) before its session can expire, and only then
    does the next contender get the lock. No silence is recorded: no overlap is excused."""
    path = f"/partition-{role}"
    ensemble.wait_healthy()
    leader = wait_for(ensemble.leader, 30, "a leader")
    isolated = leader if role == "leader" else next(sid for sid in ensemble.servers if sid != leader)
    others = ",".join(ensemble.endpoint(s) for s in ensemble.servers if s != isolated)
    common = ("--path", path, "--session-s", str(SESSION_S))
    contenders.start(
        "pinned", ensemble.endpoint(isolated), *common, "--holds", "1", "--hold-s", "20", "--pinned"
    )
    wait_for(lambda: contenders.holding() == "pinned", 60, "the pinned contender to hold the lock")
    for i in range(3):
        contenders.start(f"c{i}", others, *common, "--holds", "2", "--hold-s", "0.05")
    cut_at = time.monotonic()
    ensemble.partition([{isolated}, set(ensemble.servers) - {isolated}])
    try:
        wait_for(lambda: contenders.acquired_after(cut_at, "pinned"), SESSION_S * 3 + 30,
                 "another contender to get the lock")  # fmt: skip
    finally:
        ensemble.heal()
    contenders.wait_done(90)
    first = contenders.holds("pinned")[0]
    assert first["how"] in ("suspended", "lost"), contenders.records("pinned")
    assert first["released"] - first["acquired"] < 15, "the pinned holder never heard of the partition"
    assert_checked(contenders)
    ensemble.wait_healthy()


@pytest.mark.slow
def test_read_and_write_locks_with_a_server_killed(
    slow_selected: None, ensemble: Ensemble, contenders: Contenders
) -> None:
    path = "/rw-killed"
    common = ("--path", path, "--session-s", str(SESSION_S), "--holds", "4")
    for i in range(3):
        contenders.start(f"r{i}", ensemble.connect_string(), *common, "--mode", "read", "--hold-s", "0.1")
    for i in range(2):
        contenders.start(f"w{i}", ensemble.connect_string(), *common, "--mode", "write", "--hold-s", "0.05")
    wait_for(lambda: sum(len(contenders.holds(n)) for n in contenders.procs) >= 5, 60, "some turns taken")
    ensemble.wait_healthy()
    leader = wait_for(ensemble.leader, 30, "a leader")
    victim = next(sid for sid in ensemble.servers if sid != leader)
    pid = ensemble.kill(victim)
    contenders.wait_done(90)
    assert_checked(contenders, expected_holds=20)
    wait_for(lambda: ensemble.pid(victim) not in (None, pid), 60, f"node {victim} restarted")
    ensemble.wait_healthy()


@pytest.mark.slow
def test_semaphore_lease_holder_paused_until_its_session_expires(
    slow_selected: None, ensemble: Ensemble, contenders: Contenders
) -> None:
    path = "/sem-expiry"
    start_all(contenders, ensemble, 4, path, "--mode", "semaphore", "--max-leases", "2", "--holds", "2",
              "--hold-s", "0.8")  # fmt: skip
    for _attempt in range(5):
        holder = wait_for(contenders.holding, 60, "a contender to hold a lease")
        assert isinstance(holder, str)
        paused_at = contenders.pause(holder)
        if _open(contenders, holder):  # stopped mid-hold (not just after its end)
            break
        contenders.resume(holder)
    else:
        pytest.fail("never paused a contender while it held a lease")
    try:
        wait_for(lambda: sum(1 for n in contenders.procs if n != holder for e in contenders.events(n, "acquired")
                             if e["t"] > paused_at + SESSION_S) >= 1, SESSION_S * 3 + 30,
                 "a lease taken after the paused holder's session could have expired")  # fmt: skip
    finally:
        contenders.resume(holder)
    contenders.wait_done(90)
    paused_holds = [h for h in contenders.holds(holder) if h["acquired"] < paused_at]
    assert paused_holds[-1]["how"] == "lost", paused_holds
    assert_checked(contenders, expected_holds=8, expiry_min_s=SESSION_S * 0.5, max_holders=2)


def _open(c: Contenders, name: str) -> bool:
    recs = c.records(name)
    return bool(recs) and recs[-1].get("event") == "acquired"


@pytest.mark.slow
def test_soak_lock_under_every_fault(slow_selected: None, ensemble: Ensemble, contenders: Contenders) -> None:
    """Eight contenders, two of them losing create replies, take 15 turns each while a follower
    is killed, the leader is killed, a holder is paused past its session, and a server is
    partitioned away; every hold is checked."""
    path = "/soak"
    for i in range(8):
        lossy = ("--lose-creates", "3") if i < 2 else ()
        contenders.start(f"c{i}", ensemble.connect_string(), "--path", path, "--session-s", str(SESSION_S),
                         "--holds", "15", "--hold-s", "0.05", "--run-s", "240", *lossy)  # fmt: skip

    def turns() -> int:
        return sum(len(contenders.holds(n)) for n in contenders.procs)

    def kill(sid: int) -> None:
        pid = ensemble.kill(sid)
        wait_for(lambda: ensemble.pid(sid) not in (None, pid), 60, f"node {sid} restarted")
        ensemble.wait_healthy()

    wait_for(lambda: turns() >= 10, 60, "some turns")
    leader = wait_for(ensemble.leader, 30, "a leader")
    kill(next(sid for sid in ensemble.servers if sid != leader))
    wait_for(lambda: turns() >= 30, 90, "more turns")
    kill(wait_for(ensemble.leader, 30, "a leader"))  # type: ignore[arg-type]
    wait_for(lambda: turns() >= 50, 90, "more turns")
    holder = wait_for(contenders.holding, 60, "a holder")
    assert isinstance(holder, str)
    paused_at = contenders.pause(holder)
    try:
        wait_for(lambda: contenders.acquired_after(paused_at + SESSION_S, holder), 60, "the lock handed on")
    finally:
        contenders.resume(holder)
    cut = ensemble.servers[0]
    ensemble.partition([{cut}, set(ensemble.servers) - {cut}])
    try:
        wait_for(lambda: turns() >= 80, 120, "turns during the partition")
    finally:
        ensemble.heal()
    contenders.wait_done(240)
    assert_checked(contenders, expected_holds=120, expiry_min_s=SESSION_S * 0.5)
    ensemble.wait_healthy()
