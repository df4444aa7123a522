"""Driving many contender processes (tests/integration/recipes/contender.py) against an
ensemble: start them, find the current holder, fault it, wait for them to finish, and hand their holds to the
checker. Every process started here is stopped by pid in `stop()`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from checker import CheckResult, Hold, Silence, check_mutual_exclusion, load_holds
from cluster.harness import wait_for

ROOT = Path(__file__).resolve().parents[3]


class Contenders:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.silences: list[Silence] = []

    def start(self, name: str, hosts: str, *options: str) -> None:
        """A lock contender (contender.py)."""
        self._spawn(name, ["tests.integration.recipes.contender", "--hosts", hosts, "--name", name, *options])

    def start_worker(self, name: str, role: str, hosts: str, *options: str) -> None:
        """A user of another recipe (worker.py)."""
        self._spawn(
            name, ["tests.integration.recipes.worker", role, "--hosts", hosts, "--name", name, *options]
        )

    def _spawn(self, name: str, args: list[str]) -> None:
        out = self.folder / f"{name}.jsonl"
        cmd = [sys.executable, "-m", *args, "--out", str(out)]
        err = (self.folder / f"{name}.stderr").open("wb")
        self.procs[name] = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
        err.close()

    def records(self, name: str) -> list[dict[str, Any]]:
        path = self.folder / f"{name}.jsonl"
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line being written
        return out

    def events(self, name: str, event: str) -> list[dict[str, Any]]:
        return [r for r in self.records(name) if r.get("event") == event]

    def holds(self, name: str) -> list[dict[str, Any]]:
        return [r["hold"] for r in self.records(name) if "hold" in r]

    def holding(self) -> str | None:
        """A contender that has said it acquired and not yet recorded the end of that hold."""
        for name in self.procs:
            recs = self.records(name)
            if recs and recs[-1].get("event") == "acquired":
                return name
        return None

    def acquired_after(self, t: float, but: str) -> str | None:
        for name in self.procs:
            if name != but and any(e["t"] > t for e in self.events(name, "acquired")):
                return name
        return None

    def pause(self, name: str) -> float:
        """SIGSTOP a contender; the silence starts just before the signal."""
        at = time.monotonic()
        os.kill(self.procs[name].pid, signal.SIGSTOP)
        self.silences.append(Silence(name, at))
        return at

    def resume(self, name: str) -> None:
        os.kill(self.procs[name].pid, signal.SIGCONT)
        now = time.monotonic()
        self.silences = [Silence(s.contender, s.start, now) if s.contender == name and s.end == float("inf")
                         else s for s in self.silences]  # fmt: skip

    def wait_done(self, timeout_s: float) -> None:
        def finished() -> bool:
            return all(p.poll() is not None for p in self.procs.values())

        wait_for(finished, timeout_s, "every contender to finish:\n" + self.stderr_tail())
        for name, p in self.procs.items():
            assert p.returncode == 0, f"contender {name} exited {p.returncode}:\n{self.stderr_tail(name)}"

    def stderr_tail(self, only: str | None = None) -> str:
        parts = []
        for name in [only] if only else list(self.procs):
            path = self.folder / f"{name}.stderr"
            if path.exists() and path.stat().st_size:
                parts.append(f"--- {name}\n" + path.read_text()[-2000:])
        return "\n".join(parts)

    def check(self, expiry_min_s: float = 0.0, max_holders: int = 1) -> tuple[CheckResult, list[Hold]]:
        holds, _ = load_holds(sorted(self.folder.glob("*.jsonl")))
        result = check_mutual_exclusion(
            holds, self.silences, expiry_min_s=expiry_min_s, max_holders=max_holders
        )
        return result, holds

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGCONT)
                    p.kill()
                except ProcessLookupError:
                    pass
            p.wait(30)
