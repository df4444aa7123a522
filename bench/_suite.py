"""The runs of `python -m bench`: for each ensemble, each service is started, loaded with znodes,
warmed up, then measured at each read ratio by the same C load generator; zkpy also through its
ZeroMQ door by the Python generator of bench.throughput. One dict per run, ratios added after."""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil

from bench import _loadgen
from bench._services import Ours, Service, ZooKeeper, set_affinity
from cluster.progress import Progress

SERVICES: dict[str, Callable[[Path, int, int], Service]] = {"zookeeper": ZooKeeper, "zkpy": Ours}


@dataclass
class Options:
    ensembles: list[tuple[int, int]]  # (voters, observers)
    read_pcts: list[int]
    services: list[str]
    seconds: float = 5.0
    warmup_s: float = 1.0  # inside each run, before measuring
    jit_warmup_s: float = 60.0  # once per ensemble, before the first run (ZooKeeper's JIT); see warm_up
    sessions: int = 15
    outstanding: int = 40
    znodes: int = 1000
    unloaded_ops: int = 500
    idle_sessions: int = 0  # open to the follower during the unloaded ops, sending nothing
    zmq_read_pcts: list[int] | None = None  # read ratios of the ZeroMQ-door rows; None: all; []: none
    pin: bool = False
    rounds: int = 1  # each ensemble this many times, the services taking turns to go first


def label(voters: int, observers: int) -> str:
    return f"{voters}+{observers}" if observers else str(voters)


def parse_ensemble(text: str) -> tuple[int, int]:
    voters, _, observers = text.partition("+")
    return int(voters), int(observers or 0)


@dataclass
class Ticker:
    """A progress line redrawn from a thread while the main thread waits on a generator."""

    total_runs: int
    step: str = "starting"
    runs: int = 0
    progress: Progress = field(default_factory=lambda: Progress("bench"))
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopped: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self) -> None:
        while not self.stopped.wait(0.5):
            with self.lock:
                self.progress.update(run=f"{self.runs}/{self.total_runs}", now=self.step)

    def say(self, text: str) -> None:
        with self.lock:
            self.progress.done()
            print(text, flush=True)

    def close(self) -> None:
        self.stopped.set()
        with self.lock:
            self.progress.done()


def cpu_s(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
        except psutil.Error:
            pass
    return total


def pinning(servers: int) -> tuple[set[int] | None, list[set[int]], str]:
    """Cores for the generator and for each server. With more cores than servers: a core of its
    own for each server, every other core for the generator (it needs them: ZooKeeper's C client
    costs about as much CPU per request as a server). With fewer: the generator on one core and
    the servers round-robin on the rest."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        return None, [], f"--pin: {len(cores)} core, nothing to pin"
    if len(cores) > servers:
        per_server = [{core} for core in cores[:servers]]
        generator = set(cores[servers:])
        who = "the server" if servers == 1 else f"each of {servers} servers"
        return generator, per_server, (f"pinned: {who} on a core of its own, the load generator on "
                                       f"cores {sorted(generator)}")  # fmt: skip
    rest = cores[1:]
    per_server = [{rest[i % len(rest)]} for i in range(servers)]
    return {cores[0]}, per_server, (f"pinned: the load generator on core {cores[0]}, {servers} servers "
                                    f"share cores {rest}")  # fmt: skip


def measure_c(
    service: Service, binary: Path, opts: Options, read_pct: int, gen_cores: set[int] | None
) -> dict[str, Any]:
    pids = service.pids()
    marks: dict[str, tuple[float, int | None, float]] = {}
    gen: list[int] = []

    def mark(key: str) -> Callable[[], None]:
        return lambda: marks.__setitem__(key, (cpu_s(pids), service.leader_messages(), cpu_s(gen)))

    result = _loadgen.load(binary, service.hosts, opts.sessions, opts.outstanding, read_pct, opts.warmup_s,
                           opts.seconds, opts.znodes, mark("start"), mark("stop"), gen_cores,
                           gen.append)  # fmt: skip
    (cpu0, msgs0, gen0), (cpu1, msgs1, gen1) = marks["start"], marks["stop"]
    ops = max(result["all"]["ops"], 1)
    row: dict[str, Any] = {
        "ops_s": result["all"]["ops_s"], "reads_s": result["read"]["ops_s"], "writes_s": result["write"]["ops_s"],
        "errors": result["errors"],
        **{f"{q}_ms": result["all"][f"{q}_us"] / 1000 for q in ("p50", "p99", "p999")},
        **{f"{kind}_{q}_ms": result[kind][f"{q}_us"] / 1000 for kind in ("read", "write") for q in ("p50", "p99", "p999")},
        "server_cpu_us_per_op": (cpu1 - cpu0) * 1e6 / ops, "client_cpu_us_per_op": (gen1 - gen0) * 1e6 / ops,
        "leader_msgs_per_op": (msgs1 - msgs0) / ops if msgs0 is not None and msgs1 is not None else None,
    }  # fmt: skip
    return row


def measure_zmq(
    service: Service, binary: Path, opts: Options, read_pct: int, gen_cores: set[int] | None
) -> dict[str, Any]:
    """bench.throughput's Python ZeroMQ generator: counts only (no latencies), 2 processes."""
    from bench.throughput import zmq_gated_generator

    assert isinstance(service, Ours), "only zkpy has a ZeroMQ door"
    endpoints = service.endpoints
    sessions = [endpoints[i % len(endpoints)] for i in range(opts.sessions)]
    ctx = mp.get_context("spawn")
    gate, out = ctx.Queue(), ctx.Queue()
    procs = [ctx.Process(target=zmq_gated_generator, args=(sessions[i::2], opts.outstanding, read_pct,
                                                            opts.warmup_s, opts.seconds, gate, out))
             for i in range(2)]  # fmt: skip
    try:
        for p in procs:
            p.start()
        for _ in procs:
            assert out.get(timeout=120) == "ready"
        if gen_cores:
            for p in procs:
                assert p.pid is not None
                set_affinity(p.pid, gen_cores)
        start_at = time.time() + 0.1
        for _ in procs:
            gate.put(start_at)
        time.sleep(max(0.0, start_at + opts.warmup_s - time.time()))
        pids, gens = service.pids(), [p.pid for p in procs if p.pid]
        cpu0, msgs0, gen0 = cpu_s(pids), service.leader_messages(), cpu_s(gens)
        time.sleep(max(0.0, start_at + opts.warmup_s + opts.seconds - time.time()))
        cpu1, msgs1, gen1 = cpu_s(pids), service.leader_messages(), cpu_s(gens)
        done = sum(out.get(timeout=60) for _ in procs)
    finally:
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    ops = max(done, 1)
    return {
        "ops_s": done / opts.seconds, "reads_s": done * read_pct / 100 / opts.seconds,
        "writes_s": done * (100 - read_pct) / 100 / opts.seconds, "errors": 0,
        "server_cpu_us_per_op": (cpu1 - cpu0) * 1e6 / ops, "client_cpu_us_per_op": (gen1 - gen0) * 1e6 / ops,
        "leader_msgs_per_op": (msgs1 - msgs0) / ops if msgs0 is not None and msgs1 is not None else None,
    }  # fmt: skip


def run_ensemble(kind: str, voters: int, observers: int, opts: Options, binary: Path, tmp: Path,
                 ticker: Ticker) -> tuple[list[dict[str, Any]], dict[str, Any]]:  # fmt: skip
    """Every run of one service at one ensemble size; and what was found on the way."""
    name, n = label(voters, observers), voters + observers
    ticker.step = f"starting {kind} ({name} servers)"
    service = SERVICES[kind](tmp / f"{kind}-{name}", voters, observers)
    rows: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    try:
        ticker.step = f"{service.name} {name}: {opts.znodes} znodes"
        _loadgen.setup(binary, service.hosts[0], opts.znodes)
        service.wait_replicated(opts.znodes)
        gen_cores, server_cores, extra["pinning"] = pinning(n) if opts.pin else (None, [], "not pinned")
        extra["generator_cores"] = len(gen_cores) if gen_cores else None
        extra["server_cores"] = len(set().union(*server_cores)) if server_cores else None
        for pid, cores in zip(service.pids(), server_cores, strict=False):
            set_affinity(pid, cores)
        before, started = service.leader_messages(), time.monotonic()
        time.sleep(1.0)
        if before is not None:
            extra["leader_idle_msgs_s"] = ((service.leader_messages() or 0) - before) / (
                time.monotonic() - started
            )
        extra["warmup_ops_s"] = warm_up(service, name, binary, opts, gen_cores, ticker)
        if voters == 3 and observers == 0 and opts.unloaded_ops and not takes_turns(opts):
            ticker.step = f"{service.name} {name}: one request in flight"
            extra["unloaded"] = unloaded(service, binary, opts)
        for read_pct in opts.read_pcts:
            for door, how in doors(kind, read_pct, opts):
                ticker.step = f"{service.name} {name} servers, {read_pct}% reads, {door} door"
                row = how(service, binary, opts, read_pct, gen_cores)
                row = {"service": kind, "door": door, "ensemble": name, "voters": voters, "observers": observers,
                       "servers": n, "read_pct": read_pct, "seconds": opts.seconds, **row,
                       "reads_s_per_server": row["reads_s"] / n}  # fmt: skip
                if read_pct == 100 and row["server_cpu_us_per_op"]:
                    row["capacity_reads_s"] = n * 1e6 / row["server_cpu_us_per_op"]
                rows.append(row)
                ticker.runs += 1
                ticker.say(one_line(row))
    finally:
        service.stop()
    return rows, extra


def unloaded(service: Service, binary: Path, opts: Options) -> dict[str, Any]:
    """The unloaded ops through a follower: their latencies, and what the servers (all of them)
    spent on each create and each getData."""
    pids = service.pids()
    cpu: dict[str, float] = {}  # the servers' CPU seconds as each phase started (and at the end)
    found = _loadgen.unloaded(
        binary, service.follower(), opts.unloaded_ops, opts.idle_sessions,
        on_phase=lambda phase: cpu.__setitem__(phase, cpu_s(pids)),
    )  # fmt: skip
    ops = max(opts.unloaded_ops, 1)
    found["create"]["server_cpu_us_per_op"] = (cpu["reads"] - cpu["creates"]) * 1e6 / ops
    found["get"]["server_cpu_us_per_op"] = (cpu["done"] - cpu["reads"]) * 1e6 / ops
    found["idle_sessions"] = opts.idle_sessions
    return found


def takes_turns(opts: Options) -> bool:
    """Whether the unloaded ops at 3 servers are measured with both services up at once, taking
    turns (unloaded_in_turns), rather than each in its own ensemble's runs."""
    return len(opts.services) > 1 and (3, 0) in opts.ensembles and opts.unloaded_ops > 0


# The unloaded ops in turns go in chunks of at least this many ops; unloaded_ops a round, in
# about TURNS_A_ROUND chunks, for each service.
TURN_OPS_MIN = 50
TURNS_A_ROUND = 10


def unloaded_in_turns(opts: Options, binary: Path, tmp: Path, ticker: Ticker) -> dict[str, Any]:
    """The unloaded ops through a follower of each service's 3 servers, both ensembles up at once
    and taking turns, a chunk of ops each (which one first alternating): one request in flight
    is a latency of wake-ups and disks on this machine, and it drifts by more between minutes
    than the two services differ. Paired chunk by chunk, the drift cancels out; each service's
    figures are the medians of its chunks', and each ratio the median of the chunks' own.
    Both ensembles are warmed up first (opts.jit_warmup_s each, one at a time)."""
    chunk = max(TURN_OPS_MIN, opts.unloaded_ops // TURNS_A_ROUND)
    chunks = max(2, round(opts.unloaded_ops * opts.rounds / chunk))
    services: dict[str, Service] = {}
    found: dict[str, Any] = {"chunk_ops": chunk, "chunks": chunks, "turns": [], "warmup_ops_s": {}}
    try:
        for kind in opts.services:
            ticker.step = f"starting {kind} (3 servers) for the unloaded ops in turns"
            service = services[kind] = SERVICES[kind](tmp / f"{kind}-3-turns", 3, 0)
            _loadgen.setup(binary, service.hosts[0], opts.znodes)
            service.wait_replicated(opts.znodes)
            found["warmup_ops_s"][kind] = warm_up(service, "3", binary, opts, None, ticker)
        each = replace(opts, unloaded_ops=chunk)
        for i in range(chunks):
            for kind in opts.services if i % 2 == 0 else opts.services[::-1]:
                ticker.step = f"one request in flight, services in turns: chunk {i + 1}/{chunks}, {kind}"
                found["turns"].append({"chunk": i, "service": kind, **unloaded(services[kind], binary, each)})
    finally:
        for service in services.values():
            service.stop()
    found |= pair_turns(found["turns"])
    return found


def pair_turns(turns: list[dict[str, Any]]) -> dict[str, Any]:
    """Each service's medians over its chunks (p50 and p99 of create and getData; CPU per op
    over all of them) and zkpy's p50s over ZooKeeper's: the median of each chunk's ratio."""
    by: dict[str, dict[int, dict[str, Any]]] = {}
    for turn in turns:
        by.setdefault(turn["service"], {})[turn["chunk"]] = turn
    figures: dict[str, dict[str, float]] = {}
    for service, chunks in by.items():
        got = list(chunks.values())
        figures[service] = {
            f"{kind}_{q}_us": statistics.median(t[kind][f"{q}_us"] for t in got)
            for kind in ("create", "get")
            for q in ("p50", "p99")
        } | {
            f"{kind}_cpu_us_per_op": sum(t[kind]["server_cpu_us_per_op"] * t[kind]["ops"] for t in got)
            / max(1, sum(t[kind]["ops"] for t in got))
            for kind in ("create", "get")
        }
    out: dict[str, Any] = {"figures": figures}
    ours, zk = by.get("zkpy", {}), by.get("zookeeper", {})
    both = sorted(set(ours) & set(zk))
    if both:
        out["ratio_to_zookeeper"] = {
            kind: statistics.median(ours[i][kind]["p50_us"] / zk[i][kind]["p50_us"] for i in both)
            for kind in ("create", "get")
            if all(zk[i][kind]["p50_us"] for i in both)
        }
        out["pairs"] = len(both)
    return out


WARMUP_SLICE_S = 5.0


def warm_up(service: Service, name: str, binary: Path, opts: Options, gen_cores: set[int] | None,
            ticker: Ticker) -> list[float]:  # fmt: skip
    """Load at 90 % reads for opts.jit_warmup_s, in slices of up to WARMUP_SLICE_S; each slice's
    ops/s. On this machine ZooKeeper 3.8 was still speeding up after 25 s of load (8.3k reads/s at
    121 CPU-µs each, then 16.1k at 57 and 18.3k at 50 in the two runs after): its JIT compiles the
    hot paths late. Runs measured before that flatter zkpy, so the full run warms for 60 s, and
    the report says when the last slices were still far apart."""
    slices: list[float] = []
    left = opts.jit_warmup_s
    while left > 0:
        seconds = min(WARMUP_SLICE_S, left)
        ticker.step = (
            f"{service.name} {name}: warm-up, {opts.jit_warmup_s - left:.0f}/{opts.jit_warmup_s:.0f}s"
        )
        got = _loadgen.load(binary, service.hosts, opts.sessions, opts.outstanding, 90, 0, seconds,
                            opts.znodes, cores=gen_cores)  # fmt: skip
        slices.append(float(got["all"]["ops_s"]))
        left -= seconds
    return slices


def doors(kind: str, read_pct: int, opts: Options) -> list[tuple[str, Callable[..., dict[str, Any]]]]:
    zmq = kind == "zkpy" and (opts.zmq_read_pcts is None or read_pct in opts.zmq_read_pcts)
    return [("zk", measure_c)] + ([("zmq", measure_zmq)] if zmq else [])


def one_line(row: dict[str, Any]) -> str:
    lat = f", p50/p99 {row['p50_ms']:.2f}/{row['p99_ms']:.2f} ms" if "p50_ms" in row else ""
    return (f"  {row['service']:9s} {row['door']:3s} {row['ensemble']:>3s} servers {row['read_pct']:3d}% reads: "
            f"{row['ops_s']:9,.0f} ops/s{lat}, {row['server_cpu_us_per_op']:.1f} server CPU-µs/op"
            + (f", errors {row['errors']}" if row["errors"] else ""))  # fmt: skip


RATIO_KEYS = ("ops_s", "p50_ms", "p99_ms", "p999_ms", "server_cpu_us_per_op", "reads_s_per_server")


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """Each zkpy figure over ZooKeeper's at the same ensemble and read ratio, from the same run
    (and the same round)."""
    zk = {(r["ensemble"], r["read_pct"], r.get("round", 0)): r for r in rows if r["service"] == "zookeeper"}
    for r in rows:
        base = zk.get((r["ensemble"], r["read_pct"], r.get("round", 0)))
        if r["service"] != "zkpy" or base is None:
            continue
        r["ratio_to_zookeeper"] = {k: r[k] / base[k] for k in RATIO_KEYS if k in r and base.get(k)}


IDENTITY_KEYS = ("voters", "observers", "servers", "read_pct", "seconds", "round")


def over_rounds(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per service, door, ensemble and read ratio from the rounds' rows: each figure the
    median over the rounds (errors summed), each ratio to ZooKeeper the median of the rounds'
    own ratios (the two services measured minutes apart, not the best of one against the worst
    of the other)."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["service"], r["door"], r["ensemble"], r["read_pct"]), []).append(r)
    out = []
    for group in groups.values():
        row = {k: v for k, v in group[0].items() if k != "round"}
        for k, v in group[0].items():
            if isinstance(v, int | float) and not isinstance(v, bool) and k not in IDENTITY_KEYS:
                values = [g[k] for g in group if k in g]
                row[k] = sum(values) if k == "errors" else statistics.median(values)
        ratios = [g["ratio_to_zookeeper"] for g in group if "ratio_to_zookeeper" in g]
        if ratios:
            row["ratio_to_zookeeper"] = {
                k: statistics.median(x[k] for x in ratios if k in x) for k in ratios[0]
            }
        row["rounds"] = len(group)
        out.append(row)
    return out


# What a service that would not start or load raises: reported, and the other runs still go.
RUN_FAILURES = (_loadgen.LoadGenError, AssertionError, RuntimeError, OSError, subprocess.SubprocessError)


def run_all(opts: Options, tmp: Path) -> dict[str, Any]:
    binary = _loadgen.build()
    per_round = sum(len(doors(k, r, opts)) for k in opts.services for r in opts.read_pcts)
    ticker = Ticker(len(opts.ensembles) * opts.rounds * per_round)
    rows: list[dict[str, Any]] = []
    found: dict[str, Any] = {}
    try:
        for (voters, observers), rnd in itertools.product(opts.ensembles, range(opts.rounds)):
            for kind in opts.services if rnd % 2 == 0 else opts.services[::-1]:
                key = f"{kind} {label(voters, observers)}" + (f" round {rnd + 1}" if rnd else "")
                where = tmp / f"round-{rnd + 1}" if rnd else tmp  # each round's ensembles start afresh
                where.mkdir(exist_ok=True)
                try:
                    got, extra = run_ensemble(kind, voters, observers, opts, binary, where, ticker)
                except RUN_FAILURES as e:
                    # One ensemble that would not start or load is reported; the others still run.
                    got, extra = [], {"error": f"{type(e).__name__}: {e}"}
                    ticker.say(f"  {key} servers: FAILED: {e}")
                if opts.rounds > 1:
                    for row in got:
                        row["round"] = rnd
                rows += got
                found[key] = extra
        turns: dict[str, Any] = {}
        if takes_turns(opts):
            try:
                turns = unloaded_in_turns(opts, binary, tmp, ticker)
            except RUN_FAILURES as e:
                turns = {"error": f"{type(e).__name__}: {e}"}
                ticker.say(f"  unloaded ops in turns: FAILED: {e}")
    finally:
        ticker.close()
    add_ratios(rows)
    out: dict[str, Any] = (
        {"runs": over_rounds(rows), "round_runs": rows} if opts.rounds > 1 else {"runs": rows}
    )
    out["ensembles"] = found
    if turns:
        out["unloaded_in_turns"] = turns
    return out
