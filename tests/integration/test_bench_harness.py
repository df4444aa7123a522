"""`python -m bench` end to end in a tiny mode: it builds its C load generator, starts the
services, measures, and writes a results.json whose fields the README and the plots rely on.
A missing compiler or libzookeeper-mt fails here, it is not skipped."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from bench import _loadgen, _report, _suite
from bench._services import Service
from bench.throughput import mixed_frames
from tests.integration.conftest import Ensemble
from zkcore import _records as rec

ROOT = Path(__file__).resolve().parents[2]
RUN_FIELDS = ("service", "door", "ensemble", "servers", "read_pct", "ops_s", "reads_s", "writes_s",
              "reads_s_per_server", "server_cpu_us_per_op", "client_cpu_us_per_op", "leader_msgs_per_op",
              "errors")  # fmt: skip
LATENCY_FIELDS = ("p50_ms", "p99_ms", "p999_ms", "read_p50_ms", "write_p99_ms")


def run_bench(tmp_path: Path, *args: str, timeout_s: float) -> dict[str, Any]:
    env = {**os.environ, "ZKPY_BENCH_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "bench", *args, "--out", str(tmp_path / "out")], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=timeout_s)  # fmt: skip
    assert out.returncode == 0, f"python -m bench failed:\n{out.stdout}\n{out.stderr}"
    assert "ops/s (ours/ZK)" in out.stdout, out.stdout  # the table was printed
    results: dict[str, Any] = json.loads((tmp_path / "out" / "results.json").read_text())
    return results


def test_the_harness_against_zkpy_alone(tmp_path: Path) -> None:
    results = run_bench(tmp_path, "--services", "zkpy", "--ensembles", "1", "--reads", "50,100", "--seconds", "1",
                        "--warmup", "0.2", "--jit-warmup", "0.5", "--zmq-reads", "100", "--sessions", "2",
                        "--outstanding", "10", "--rounds", "2", timeout_s=240)  # fmt: skip
    runs = results["runs"]
    assert len(results["round_runs"]) == 6 and all(r["rounds"] == 2 for r in runs)
    assert [(r["door"], r["read_pct"]) for r in runs] == [("zk", 50), ("zk", 100), ("zmq", 100)]
    for r in runs:
        missing = [f for f in RUN_FIELDS if f not in r]
        assert not missing, f"run {r} lacks {missing}"
        assert r["errors"] == 0 and r["ops_s"] > 0 and r["server_cpu_us_per_op"] > 0, r
        assert r["leader_msgs_per_op"] == 0, "one server has no peers to message"
    assert all(runs[0][f] > 0 for f in LATENCY_FIELDS), runs[0]
    assert runs[1]["read_p50_ms"] > 0 and runs[1]["write_p99_ms"] == 0, runs[1]
    for r in runs[:2]:
        assert r["p50_ms"] <= r["p99_ms"] <= r["p999_ms"], r
    assert runs[0]["writes_s"] > 0 and runs[1]["writes_s"] == 0
    assert runs[1]["capacity_reads_s"] > 0
    assert results["machine"]["cores"] >= 1 and results["notes"], results


@pytest.fixture
def slow_selected(request: pytest.FixtureRequest) -> None:
    if "slow" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("starts Apache ZooKeeper too: select it with -m slow")


@pytest.mark.slow
@pytest.mark.usefixtures("slow_selected")
def test_the_harness_against_both_services_on_three_servers(tmp_path: Path) -> None:
    results = run_bench(tmp_path, "--ensembles", "3", "--reads", "90,100", "--seconds", "2", "--warmup", "0.5",
                        "--jit-warmup", "3", "--unloaded-ops", "100", "--no-zmq", timeout_s=600)  # fmt: skip
    ours = [r for r in results["runs"] if r["service"] == "zkpy"]
    assert {r["service"] for r in results["runs"]} == {"zookeeper", "zkpy"}
    assert all(set(r["ratio_to_zookeeper"]) >= {"ops_s", "p99_ms", "server_cpu_us_per_op"} for r in ours)
    # The unloaded ops with both ensembles up, in turns: 2 chunks of 50 ops for each service.
    turns = results["unloaded_in_turns"]
    assert (turns["chunk_ops"], turns["chunks"], turns["pairs"]) == (50, 2, 2), turns
    assert [(t["chunk"], t["service"]) for t in turns["turns"]] == [
        (0, "zookeeper"),
        (0, "zkpy"),
        (1, "zkpy"),
        (1, "zookeeper"),
    ]
    assert all(t["create"]["ops"] == t["get"]["ops"] == 50 for t in turns["turns"]), turns
    assert all(f["create_p50_us"] > 0 and f["create_cpu_us_per_op"] > 0 for f in turns["figures"].values())
    assert set(turns["ratio_to_zookeeper"]) == {"create", "get"}
    assert not any("unloaded" in extra for extra in results["ensembles"].values())
    reads_only = next(r for r in ours if r["read_pct"] == 100)
    idle_rate = results["ensembles"]["zkpy 3"]["leader_idle_msgs_s"]
    beyond = reads_only["leader_msgs_per_op"] - idle_rate / reads_only["ops_s"]
    assert beyond < 0.01, f"reads cost the leader {beyond:.4f} messages each beyond its heartbeats"


def test_the_generators_idle_sessions_connect_and_the_unloaded_ops_run(
    ensemble_factory: Callable[..., Ensemble],
) -> None:
    """`--idle-sessions`: zkload's unloaded mode opens that many sessions on plain sockets (past
    the 60 connections one address may hold: from 127.1.x.y) and measures as before; the
    harness samples the server's CPU as each phase starts and ends."""
    ensemble = ensemble_factory(1)

    class OneServer:  # the face of bench._services.Service that the unloaded ops use
        def pids(self) -> list[int]:
            return [pid for pid in [ensemble.pid(1)] if pid]

        def follower(self) -> str:
            return ensemble.conf.servers[1].zk

    before = int(ensemble.mntr(1)["zk_packets_received"])
    opts = _suite.Options([(1, 0)], [100], ["zkpy"], unloaded_ops=20, idle_sessions=150)
    result = _suite.unloaded(cast(Service, OneServer()), _loadgen.build(), opts)
    assert result["create"]["ops"] == result["get"]["ops"] == 20, result
    assert result["idle_sessions"] == 150
    # 20 ops take a few CPU-ms, below the 10 ms a process's CPU time is counted in: only there
    assert result["create"]["server_cpu_us_per_op"] >= 0 and result["get"]["server_cpu_us_per_op"] >= 0, (
        result
    )
    grown = int(ensemble.mntr(1)["zk_packets_received"]) - before
    assert grown >= 150 + 1 + 2 * 20, "150 idle connects, the session's, 40 ops"
    phases: list[str] = []
    _loadgen.unloaded(_loadgen.build(), ensemble.conf.servers[1].zk, 5, on_phase=phases.append)
    assert phases == list(_loadgen.UNLOADED_PHASES) == ["creates", "reads", "done"]


def test_the_unloaded_table_pairs_each_round_with_zookeeper_and_gives_medians() -> None:
    def ops(create_us: float, get_us: float, cpu: float) -> dict[str, Any]:
        return {
            "create": {"p50_us": create_us, "p99_us": 2 * create_us, "server_cpu_us_per_op": cpu},
            "get": {"p50_us": get_us, "p99_us": 2 * get_us, "server_cpu_us_per_op": cpu / 4},
            "idle_sessions": 0,
        }

    ensembles = {
        "zookeeper 3": {"unloaded": ops(1000, 200, 900)},
        "zkpy 3": {"unloaded": ops(1500, 100, 700)},
        "zkpy 3 round 2": {"unloaded": ops(1100, 100, 600)},
        "zookeeper 3 round 2": {"unloaded": ops(1100, 400, 1000)},
        "zookeeper 3 round 3": {"unloaded": ops(900, 200, 800)},
        "zkpy 3 round 3": {"unloaded": ops(1800, 100, 650)},
    }
    lines = _report.unloaded_table(ensembles).splitlines()
    row = {cells[0]: cells[1:] for cells in (re.split(r"\s{2,}", line.strip()) for line in lines[2:])}
    assert row["zkpy 3"] == ["1.500 (1.50x)", "0.100 (0.50x)", "3.000", "0.200", "700", "175"], row
    assert row["zkpy 3 round 2"][:2] == ["1.100 (1.00x)", "0.100 (0.25x)"], "against its round's ZooKeeper"
    assert row["zookeeper 3 round 2"][:2] == ["1.100", "0.400"]
    # Medians of zkpy's figures; each ratio the median of the rounds' own (1.5, 1.0, 2.0).
    assert row["zkpy 3, median of 3 rounds"][:2] == ["1.500 (1.50x)", "0.100 (0.50x)"], row
    assert row["zkpy 3, median of 3 rounds"][4:] == ["650", "162"], row
    assert any(line.startswith("zookeeper 3, median of 3 rounds") for line in lines)


def test_turns_pair_chunk_by_chunk() -> None:
    """Each service's figures are the medians of its chunks' (CPU per op over all its ops), and
    each ratio the median of the chunks' own ratios, not the ratio of the medians."""

    def turn(chunk: int, service: str, create_us: float, get_us: float, cpu: float) -> dict[str, Any]:
        return {"chunk": chunk, "service": service,
                "create": {"p50_us": create_us, "p99_us": 3 * create_us, "server_cpu_us_per_op": cpu, "ops": 100},
                "get": {"p50_us": get_us, "p99_us": 2 * get_us, "server_cpu_us_per_op": cpu / 10, "ops": 100}}  # fmt: skip

    turns = [turn(0, "zookeeper", 1000, 400, 2000), turn(0, "zkpy", 900, 200, 1500),
             turn(1, "zkpy", 1300, 200, 1700), turn(1, "zookeeper", 1200, 400, 2200),
             turn(2, "zookeeper", 2000, 400, 2400), turn(2, "zkpy", 1500, 100, 1900)]  # fmt: skip
    paired = _suite.pair_turns(turns)
    ours, zk = paired["figures"]["zkpy"], paired["figures"]["zookeeper"]
    assert (ours["create_p50_us"], ours["create_p99_us"], ours["get_p50_us"]) == (1300, 3900, 200)
    assert zk["create_p50_us"] == 1200 and zk["get_p99_us"] == 800
    assert ours["create_cpu_us_per_op"] == pytest.approx(1700) and zk["get_cpu_us_per_op"] == pytest.approx(
        220
    )
    # Chunk ratios 0.9, 1.083 and 0.75: their median, where the medians' ratio would say 1.083.
    assert paired["ratio_to_zookeeper"]["create"] == pytest.approx(0.9)
    assert paired["ratio_to_zookeeper"]["get"] == pytest.approx(0.5) and paired["pairs"] == 3
    lines = _report.turns_table({"chunks": 3, "chunk_ops": 100, **paired}).splitlines()
    row = {cells[0]: cells[1:] for cells in (re.split(r"\s{2,}", line.strip()) for line in lines[2:])}
    assert row["zkpy, median of 3 chunks of 100"] == ["1.300", "0.200", "3.900", "0.400", "1700", "170"], row
    assert row["zkpy / ZooKeeper, median of 3 chunks' ratios"] == ["0.90x", "0.50x"], row
    alone = _suite.pair_turns([t for t in turns if t["service"] == "zkpy"])
    assert "ratio_to_zookeeper" not in alone and alone["figures"]["zkpy"]["create_p50_us"] == 1300
    assert "OSError: no java" in _report.turns_table({"error": "OSError: no java"})


def test_only_both_services_with_three_servers_take_turns() -> None:
    def opts(services: list[str], ensembles: list[tuple[int, int]], ops: int = 500) -> _suite.Options:
        return _suite.Options(ensembles, [100], services, unloaded_ops=ops)

    assert _suite.takes_turns(opts(["zookeeper", "zkpy"], [(1, 0), (3, 0)]))
    assert not _suite.takes_turns(opts(["zkpy"], [(3, 0)]))
    assert not _suite.takes_turns(opts(["zookeeper", "zkpy"], [(3, 2), (5, 0)]))
    assert not _suite.takes_turns(opts(["zookeeper", "zkpy"], [(3, 0)], ops=0))


# --- the pieces, as tables ------------------------------------------------------------------------


@pytest.mark.parametrize(("read_pct", "writes"), [(100, 0), (99, 1), (90, 10), (50, 50), (0, 100)])
def test_mixed_frames_write_share(read_pct: int, writes: int) -> None:
    frames = mixed_frames(100, read_pct)
    kinds = [rec.RequestHeader.decode(f[:8]).type for f in frames]
    assert kinds.count(rec.OpCode.SET_DATA) == writes
    assert kinds.count(rec.OpCode.GET_DATA) == 100 - writes


def test_rounds_pair_within_a_round_and_give_medians() -> None:
    """--rounds: each round's zkpy row is divided by the same round's ZooKeeper row, and the
    table row is the median of the rounds (the ratio: of the rounds' ratios, not of medians)."""

    def run(service: str, rnd: int, cpu: float, errors: int = 0) -> dict[str, Any]:
        return {"service": service, "door": "zk", "ensemble": "1", "servers": 1, "read_pct": 0, "seconds": 8.0,
                "round": rnd, "ops_s": 1000.0 * (rnd + 1), "server_cpu_us_per_op": cpu, "errors": errors}  # fmt: skip

    # ZooKeeper's CPU swings from round to round; zkpy's with it, a little below.
    rows = [run("zookeeper", 0, 20.0), run("zkpy", 0, 18.0), run("zookeeper", 1, 30.0), run("zkpy", 1, 27.0),
            run("zookeeper", 2, 40.0), run("zkpy", 2, 36.0, errors=2)]  # fmt: skip
    _suite.add_ratios(rows)
    assert [r["ratio_to_zookeeper"]["server_cpu_us_per_op"] for r in rows if r["service"] == "zkpy"] == [
        pytest.approx(0.9)
    ] * 3
    zk, ours = _suite.over_rounds(rows)
    assert (zk["service"], zk["server_cpu_us_per_op"], zk["rounds"]) == ("zookeeper", 30.0, 3)
    assert ours["server_cpu_us_per_op"] == 27.0 and ours["ops_s"] == 2000.0 and ours["errors"] == 2
    assert ours["ratio_to_zookeeper"]["server_cpu_us_per_op"] == pytest.approx(0.9)
    assert ours["seconds"] == 8.0 and "round" not in ours


def test_ratios_pair_runs_of_the_same_ensemble_and_read_ratio() -> None:
    def run(service: str, ensemble: str, read_pct: int, ops_s: float) -> dict[str, Any]:
        return {"service": service, "door": "zk", "ensemble": ensemble, "read_pct": read_pct, "ops_s": ops_s,
                "p99_ms": 2.0, "server_cpu_us_per_op": 10.0, "reads_s_per_server": ops_s}  # fmt: skip

    rows = [run("zookeeper", "3", 90, 1000), run("zookeeper", "3", 100, 4000), run("zkpy", "3", 90, 500),
            run("zkpy", "3", 100, 6000), run("zkpy", "5", 100, 1)]  # fmt: skip
    _suite.add_ratios(rows)
    assert rows[2]["ratio_to_zookeeper"]["ops_s"] == 0.5
    assert rows[3]["ratio_to_zookeeper"] == {"ops_s": 1.5, "p99_ms": 1.0, "server_cpu_us_per_op": 1.0,
                                             "reads_s_per_server": 1.5}  # fmt: skip
    assert "ratio_to_zookeeper" not in rows[4] and "ratio_to_zookeeper" not in rows[0]


def test_a_pinned_run_whose_generator_kept_its_cores_busy_is_said_to_be_bound_by_it() -> None:
    def run(
        service: str, door: str, ops_s: float, client_us: float, server_us: float = 5.0
    ) -> dict[str, Any]:
        return {"service": service, "door": door, "ensemble": "1", "read_pct": 100, "ops_s": ops_s,
                "client_cpu_us_per_op": client_us, "server_cpu_us_per_op": server_us}  # fmt: skip

    runs = [
        run("zookeeper", "zk", 30_000, 31.6),
        run("zkpy", "zk", 77_000, 8.0),
        run("zkpy", "zmq", 1e6, 9.0),
    ]
    pinned = {
        "runs": runs,
        "ensembles": {"zookeeper 1": {"generator_cores": 1}, "zkpy 1": {"generator_cores": 1}},
    }
    assert _report.generator_bound(pinned) == [
        "zookeeper 1 servers, 100% reads: the load generator used 0.95 of its 1 core; it set the pace of "
        "this run, not the servers."
    ]  # the zkpy run used 0.62 of it; the ZeroMQ door's rows have generators of their own
    unpinned = {"runs": runs, "ensembles": {"zookeeper 1": {"generator_cores": None}}}
    assert _report.generator_bound(unpinned) == []
    # Where the harness knows the servers' cores, it says how busy they were, and what that means
    # for the latencies: a server with time to spare leaves the queue in the generator.
    both = [
        run("zookeeper", "zk", 74_000, 13.0, 13.5),
        run("zkpy", "zk", 70_000, 13.8, 6.0),
        run("zkpy", "zk", 37_000, 26.5, 19.1),  # ten sessions that each await their reply
    ]
    cores = {"generator_cores": 1, "server_cores": 1}
    assert _report.generator_bound({"runs": both, "ensembles": {"zookeeper 1": cores, "zkpy 1": cores}}) == [
        "zookeeper 1 servers, 100% reads: the load generator used 0.96 of its 1 core; it set the pace of "
        "this run, not the servers, though the servers were busy too (1.00 of their 1 core).",
        "zkpy 1 servers, 100% reads: the load generator used 0.97 of its 1 core; it set the pace of this "
        "run, not the servers (the servers used 0.42 of their 1 core: its requests waited mostly in the "
        "generator, so the latencies are largely its own).",
        "zkpy 1 servers, 100% reads: the load generator used 0.98 of its 1 core; it set the pace of this "
        "run, not the servers (the servers used 0.71 of their 1 core: they had time to spare, so part of "
        "each latency is time spent in the generator).",
    ]


def test_the_notes_speak_of_leader_heartbeats_only_where_a_leader_has_peers() -> None:
    def results(idle_by_ensemble: dict[str, float]) -> dict[str, Any]:
        return {"machine": {"cores": 2}, "runs": [],
                "ensembles": {k: {"leader_idle_msgs_s": v, "warmup_ops_s": [1.0, 1.0]}
                              for k, v in idle_by_ensemble.items()}}  # fmt: skip

    def heartbeats(notes: list[str]) -> list[str]:
        return [n for n in notes if "heartbeats even when idle" in n]

    assert heartbeats(_report.notes(results({"zkpy 1": 0.0}))) == []
    said = heartbeats(_report.notes(results({"zkpy 1": 0.0, "zkpy 3": 81.0})))
    assert len(said) == 1 and "(zkpy 3 servers: 81/s)" in said[0], said


@pytest.mark.parametrize(
    ("cores", "servers", "generator", "per_server"),
    [
        (2, 1, {1}, [{0}]),  # this machine, one server: a core each
        (2, 3, {0}, [{1}, {1}, {1}]),  # too few cores: the servers share what the generator leaves
        (8, 5, {5, 6, 7}, [{0}, {1}, {2}, {3}, {4}]),  # a core per server, the rest drive the load
        (1, 3, None, []),  # nothing to pin
    ],
)
def test_pinning(monkeypatch: pytest.MonkeyPatch, cores: int, servers: int, generator: set[int] | None,
                 per_server: list[set[int]]) -> None:  # fmt: skip
    monkeypatch.setattr(_suite.os, "sched_getaffinity", lambda pid: set(range(cores)))
    got_generator, got_servers, said = _suite.pinning(servers)
    assert (got_generator, got_servers) == (generator, per_server), said
    if servers == 1:
        assert said == "pinned: the server on a core of its own, the load generator on cores [1]"


def run_ab(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ZKPY_BENCH_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "bench", "ab", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def worktrees() -> list[str]:
    out = subprocess.run(["git", "worktree", "list", "--porcelain"], cwd=ROOT, capture_output=True, text=True)
    return [line for line in out.stdout.splitlines() if line.startswith("worktree ")]


def test_ab_runs_this_tree_and_a_revision_in_turn(tmp_path: Path) -> None:
    before = worktrees()
    out = run_ab(tmp_path, "--vs", "HEAD", "--rounds", "2", "--seconds", "1")
    assert out.returncode == 0, f"python -m bench ab failed:\n{out.stdout}\n{out.stderr}"
    firsts = [line.split(":")[0] for line in out.stdout.splitlines() if line.startswith("round ")]
    assert firsts == ["round 1, this tree", "round 1, HEAD", "round 2, HEAD", "round 2, this tree"], (
        out.stdout
    )
    ratio = next(line for line in out.stdout.splitlines() if line.startswith("this / HEAD"))
    assert len(ratio.split()) == 5 and ratio.endswith("x"), ratio  # ops/s and CPU-µs per op, as ratios
    assert worktrees() == before, "the revision's worktree was left behind"


def test_ab_names_a_revision_it_cannot_check_out(tmp_path: Path) -> None:
    out = run_ab(tmp_path, "--vs", "no-such-revision", "--rounds", "1")
    assert out.returncode != 0
    assert "bench ab: git worktree add no-such-revision failed" in out.stderr, out.stderr
