"""Mutual exclusion over recorded holds of a lock (Lock, Election, WriteLock): never two holders
at once, outside the one window ZooKeeper leaves open.

A hold is what one contender believed: from the moment its acquire returned to the moment it
began to release, or heard SUSPENDED or LOST, whichever came first. Times are
`time.monotonic()` readings; on Linux that is CLOCK_MONOTONIC, one clock for the whole host
(since boot), so readings from different processes on one machine compare. Holds from different
hosts do not.

The window: a holder that cannot run (SIGSTOPped, swapped out, a long GC pause) cannot hear that
its connection went quiet, so it believes it holds the lock while the ensemble expires its
session and hands the lock to the next contender. That overlap is allowed only when
  - the earlier hold ended `lost` (its session was gone when it tried to release), and
  - its contender had gone silent (a recorded `Silence`: paused, partitioned) at or before the
    later hold began, and, when `expiry_min_s` is given, at least that long before (a session
    must not expire sooner than its timeout allows).
A holder that keeps running hears SUSPENDED after 2/3 of the session timeout without a reply,
before the session can expire (a whole timeout after the ensemble last heard from it), so its
hold ends first: any other overlap is a violation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from checker._result import CheckResult, Violation

__all__ = ["HOW", "Hold", "Silence", "check_mutual_exclusion", "load_holds"]

# How a hold ended: released (the holder let go), suspended (it heard SUSPENDED and stopped
# trusting the lock), lost (its session was gone: it heard LOST, or its release failed for it),
# killed (the process died; the test records when), open (still held when the run stopped).
HOW = ("released", "suspended", "lost", "killed", "open")


@dataclass(frozen=True, slots=True)
class Hold:
    contender: str
    acquired: float
    released: float  # math.inf for an open hold
    how: str = "released"
    session: int | None = None
    lock: str = ""
    shared: bool = False  # a read lock's hold: overlaps other shared holds freely

    def __post_init__(self) -> None:
        if self.how not in HOW:
            raise ValueError(f"hold.how must be one of {HOW}, got {self.how!r}")
        if not self.released >= self.acquired:
            raise ValueError(f"a hold must end after it starts: {self.acquired} > {self.released}")

    def text(self) -> str:
        sid = f" s{self.session:#x}" if self.session is not None else ""
        end = "open" if math.isinf(self.released) else f"{self.released:.6f}"
        kind = " (shared)" if self.shared else ""
        return (
            f"{self.contender}{sid} held {self.lock or 'the lock'}{kind} [{self.acquired:.6f}, {end}] "
            f"ended {self.how}"
        )


@dataclass(frozen=True, slots=True)
class Silence:
    """From `start` to `end` the contender could not run or reach the ensemble (a test fault)."""

    contender: str
    start: float
    end: float = math.inf


def _excused(early: Hold, late: Hold, silences: Sequence[Silence], expiry_min_s: float) -> bool:
    if early.how != "lost":
        return False
    return any(
        s.contender == early.contender and early.acquired <= s.start <= late.acquired - expiry_min_s
        for s in silences
    )


def check_mutual_exclusion(
    holds: Iterable[Hold],
    silences: Iterable[Silence] = (),
    *,
    max_holders: int = 1,
    expiry_min_s: float = 0.0,
) -> CheckResult:
    """Every pair of overlapping holds of one lock, beyond max_holders at once (1 for a lock),
    that the session-expiry window does not excuse, is a violation; shared holds (read locks)
    conflict only with exclusive ones. Holds of different `lock` names are judged separately."""
    all_holds = sorted(holds, key=lambda h: (h.lock, h.acquired, h.released, h.contender))
    quiet = list(silences)
    violations: list[Violation] = []
    by_lock: dict[str, list[Hold]] = {}
    for hold in all_holds:
        by_lock.setdefault(hold.lock, []).append(hold)
    for lock, group in by_lock.items():
        violations.extend(_check_one_lock(lock, group, quiet, max_holders, expiry_min_s))
    return CheckResult("mutual exclusion", len(all_holds), tuple(violations))


def _check_one_lock(
    lock: str, group: list[Hold], silences: list[Silence], max_holders: int, expiry_min_s: float
) -> list[Violation]:
    """Sweep in order of acquisition, keeping the holds still running; a new hold that finds
    max_holders unexcused holds running is a violation with each of them."""
    out: list[Violation] = []
    running: list[Hold] = []
    for late in group:
        running = [h for h in running if h.released > late.acquired]
        rivals = [
            h
            for h in running
            if not (h.shared and late.shared) and not _excused(h, late, silences, expiry_min_s)
        ]
        if len(rivals) >= max_holders:
            notes = [h.text() for h in rivals] + [late.text()]
            name = lock or "the lock"
            summary = (
                f"mutual exclusion: {late.contender} acquired {name} while {len(rivals)} other hold(s) ran"
            )
            out.append(Violation(summary, (), tuple(notes)))
        running.append(late)
    return out


def load_holds(paths: Iterable[Path]) -> tuple[list[Hold], list[Silence]]:
    """Holds and silences from JSON-lines files: {"hold": {...Hold fields}} or
    {"silence": {...Silence fields}} per line; other lines are ignored. A null `released`
    means open."""
    holds: list[Hold] = []
    silences: list[Silence] = []
    for path in paths:
        for line in Path(path).read_text().splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            if "hold" in record:
                fields = dict(record["hold"])
                if fields.get("released") is None:
                    fields["released"] = math.inf
                holds.append(Hold(**fields))
            elif "silence" in record:
                fields = dict(record["silence"])
                if fields.get("end") is None:
                    fields["end"] = math.inf
                silences.append(Silence(**fields))
    return holds, silences
