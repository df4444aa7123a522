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
from pathlib import Path
from typing import Any

from tabulate import tabulate

from bench import _loadgen

ROOT = Path(__file__).resolve().parent.parent
RUNNER = Path(__file__).resolve().parent / "_ab_run.py"


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


def run_in(tree: Path, settings: dict[str, object]) -> dict[str, float]:
    """One run with tree's code: the runner script with tree first on sys.path."""
    bootstrap = "import runpy, sys; sys.path.insert(0, sys.argv[1]); sys.argv = sys.argv[2:]; runpy.run_path(sys.argv[0], run_name='__main__')"
    cmd = [sys.executable, "-c", bootstrap, str(tree), str(RUNNER), json.dumps(settings)]
    out = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, timeout=3600)
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        raise AbError(f"a run in {tree} failed:\n{(out.stderr or out.stdout).strip()[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    core = result.pop("core", None)
    if core != "native":
        raise AbError(f"{tree} ran on its {core!r} core, not the native one: is its native/ built?")
    return {key: float(value) for key, value in result.items()}


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
    settings = {"servers": args.servers, "seconds": args.seconds, "reads": args.reads, "memory": args.memory,
                "znodes": args.znodes, "loadgen": str(ROOT / "bench" / "_loadgen.py"),
                "binary": "" if args.memory else str(_loadgen.build())}  # fmt: skip
    keys = ["rss_per_znode"] if args.memory else ["ops_s", "cpu_us_per_op"]
    with tempfile.TemporaryDirectory(prefix="zkpy-ab-") as tmp:
        other = worktree(args.vs, Path(tmp))
        try:
            trees = {"this tree": ROOT, args.vs: other}
            runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
            for round_no in range(args.rounds):
                order = list(trees) if round_no % 2 == 0 else list(reversed(trees))
                for name in order:
                    result = run_in(trees[name], settings)
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
