"""Two versions of zkpy on one host, run by run in turn, so that a noisy machine's drift falls on
both alike: this working tree against a git revision, built in a temporary worktree.

    python -m bench ab --vs REV [--rounds 3] [--seconds 8] [--reads 0] [--servers 1]
    python -m bench ab --vs REV --memory [--znodes 300000]

A run starts an ensemble of --servers from one tree, gives it 1000 znodes of 100 bytes and
drives it with this tree's load generator (bench/zkload.c: 30 sessions x 40 requests in flight
through the servers' ZooKeeper ports, --reads percent getData, the rest setData) for --seconds:
ops/s and the servers' CPU-µs per op (utime + stime from /proc, summed over the servers). With
--memory a run creates --znodes znodes of 100 bytes through one connection instead (the tree's
bench.memory) and gives the leader's RSS growth per znode. Each round runs both trees, which one
first alternating; the table has every run, the medians and their ratio this / REV. REV must
have cluster.harness and bench.memory, as every commit since 2026-12-04 does.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from tabulate import tabulate

from bench import _loadgen, _suite, memory
from cluster.progress import Progress

ROOT = Path(__file__).resolve().parent.parent
RUNNER = Path(__file__).resolve().parent / "_ab_run.py"
ZNODES, SESSIONS, OUTSTANDING = 1000, 30, 40  # the load: 1000 znodes, 30 sessions x 40 in flight


class AbError(Exception):
    """A tree could not be built or a run failed; the message says which and why."""


def worktree(rev: str, where: Path) -> Path:
    """REV checked out at where/tree with its native core built in place."""
    tree = where / "tree"
    out = subprocess.run(["git", "worktree", "add", "--detach", str(tree), rev], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    if out.returncode != 0:
        raise AbError(f"git worktree add {rev} failed: {out.stderr.strip()}")
    build = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=tree,
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    if build.returncode != 0:
        raise AbError(f"building {rev}'s native core failed:\n{build.stderr.strip()[-2000:]}")
    return tree


def run_in(tree: Path, args: argparse.Namespace, binary: Path | None) -> dict[str, float]:
    """One run: an ensemble of tree's code (the runner script with tree first on sys.path),
    measured from here."""
    bootstrap = "import runpy, sys; sys.path.insert(0, sys.argv[1]); sys.argv = sys.argv[2:]; runpy.run_path(sys.argv[0], run_name='__main__')"
    cmd = [sys.executable, "-c", bootstrap, str(tree), str(RUNNER), str(args.servers)]
    with subprocess.Popen(cmd, cwd=tree, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as runner:  # fmt: skip
        assert runner.stdin is not None and runner.stdout is not None and runner.stderr is not None
        try:
            line = runner.stdout.readline()
            if not line:
                raise AbError(
                    f"the ensemble of {tree} did not come up:\n{runner.stderr.read().strip()[-3000:]}"
                )
            ensemble: dict[str, Any] = json.loads(line)
            if ensemble["core"] != "native":
                raise AbError(
                    f"{tree} runs its {ensemble['core']!r} core, not the native one: is its native/ built?"
                )
            return measure(ensemble, args, binary)
        finally:
            runner.stdin.close()  # the runner stops its ensemble
            runner.wait(timeout=120)


def measure(ensemble: dict[str, Any], args: argparse.Namespace, binary: Path | None) -> dict[str, float]:
    if args.memory:
        pid = ensemble["leader_pid"]
        before = psutil.Process(pid).memory_info().rss
        memory.create_all(ensemble["leader_host"], args.znodes, b"x" * 100, Progress("creating", None))
        time.sleep(1.0)  # let a snapshot written meanwhile finish, as bench.memory does
        return {"rss_per_znode": (psutil.Process(pid).memory_info().rss - before) / args.znodes}
    assert binary is not None
    hosts, pids = ensemble["hosts"], ensemble["pids"]
    _loadgen.setup(binary, hosts[0], ZNODES)
    window: dict[str, float] = {}

    def opened() -> None:
        window["cpu"] = _suite.cpu_s(pids)

    def closed() -> None:
        window["cpu"] = _suite.cpu_s(pids) - window["cpu"]

    out = _loadgen.load(
        binary, hosts, SESSIONS, OUTSTANDING, args.reads, 2.0, args.seconds, ZNODES, opened, closed
    )
    ops = out["all"]["ops"]
    return {"ops_s": out["all"]["ops_s"], "cpu_us_per_op": window["cpu"] * 1e6 / ops if ops else float("nan")}


def main(argv: list[str] | None = None) -> None:
    try:
        compare(argv)
    except AbError as e:
        sys.exit(f"bench ab: {e}")


def compare(argv: list[str] | None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench ab", description=__doc__.split("\n\n")[0])
    p.add_argument("--vs", required=True, help="the git revision to compare this working tree with")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=8.0, help="measured seconds of a load run")
    p.add_argument("--reads", type=int, default=0, help="percent getData (the rest setData)")
    p.add_argument("--servers", type=int, default=1)
    p.add_argument("--memory", action="store_true", help="RSS growth per znode created instead of load")
    p.add_argument("--znodes", type=int, default=300_000, help="znodes a --memory run creates")
    args = p.parse_args(argv)
    binary = None if args.memory else _loadgen.build()
    keys = ["rss_per_znode"] if args.memory else ["ops_s", "cpu_us_per_op"]
    with tempfile.TemporaryDirectory(prefix="zkpy-ab-") as tmp:
        other = worktree(args.vs, Path(tmp))
        try:
            trees = {"this tree": ROOT, args.vs: other}
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
            for round_no in range(args.rounds):
                order = list(trees) if round_no % 2 == 0 else list(reversed(trees))
                for name in order:
                    result = run_in(trees[name], args, binary)
                    runs[name].append(result)
                    print(f"round {round_no + 1}, {name}: " + ", ".join(f"{k} {result[k]:,.1f}" for k in keys),
                          flush=True)  # fmt: skip
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT, capture_output=True,
                           timeout=120)  # fmt: skip
    rows = [
        [name, i + 1, *(f"{run[k]:,.1f}" for k in keys)] for name in runs for i, run in enumerate(runs[name])
    ]
    medians = {name: [statistics.median(run[k] for run in runs[name]) for k in keys] for name in runs}
    rows += [[f"{name}, median", "", *(f"{v:,.1f}" for v in medians[name])] for name in runs]
    this, vs = medians["this tree"], medians[args.vs]
    rows.append(
        [f"this / {args.vs}", "", *(f"{a / b:.3f}x" if b else "-" for a, b in zip(this, vs, strict=True))]
    )
    print(tabulate(rows, headers=["tree", "run", *keys]))


if __name__ == "__main__":
    main()
