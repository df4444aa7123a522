"""What a check says: a verdict, how many ops it looked at, and for each violation the few ops
involved, printed as short text a person can follow against the history file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from tabulate import tabulate

from checker.history import Kind, Op, Status

EXAMPLE_OPS_MAX = 12  # ops printed per counterexample; the rest are counted


def zxid_text(zxid: int | None) -> str:
    """A zxid the way ZooKeeper prints one."""
    return "?" if zxid is None else hex(zxid)


def time_text(t: float) -> str:
    return "unknown" if math.isinf(t) else f"{t:.6f}"


def describe(op: Op) -> str:
    """One line for one op: its number, who, what, what came back, and when."""
    who = f"p{op.process}" + (f" s{op.session:#x}" if op.session is not None else "")
    parts = [f"#{op.index}" if op.index >= 0 else "#?", who, op.kind.value, op.key]
    parts.extend(_describe_arguments(op))
    if op.ok:
        parts.extend(_describe_results(op))
    elif op.status is Status.FAIL:
        parts.append("FAILED")
    else:
        parts.append("(outcome unknown)")
    flags = [name for name in ("sync", "watch") if getattr(op, name)]
    if flags:
        parts.append("[" + ",".join(flags) + "]")
    parts.append(f"[{time_text(op.start)}, {time_text(op.end)}]")
    return " ".join(part for part in parts if part)


def _describe_arguments(op: Op) -> list[str]:
    if op.kind is Kind.CAS:
        return [f"if v{op.expected_version} := {op.value!r}"]
    if op.kind in (Kind.WRITE, Kind.CREATE) and op.value is not None:
        return [f":= {op.value!r}"]
    if op.kind in (Kind.SESSION_EXPIRED, Kind.CLOSE_SESSION) and op.zxid is not None:
        return [f"zxid={zxid_text(op.zxid)}"]
    if op.kind is Kind.WATCH_EVENT:
        return [op.event or "event", *([f"zxid={zxid_text(op.zxid)}"] if op.zxid is not None else [])]
    return []


def _describe_results(op: Op) -> list[str]:
    out = []
    if op.kind is Kind.READ:
        out.append(f"-> {op.value!r}")
    elif op.kind is Kind.EXISTS:
        out.append("-> exists" if op.exists else "-> absent")
    elif op.kind is Kind.READ_CHILDREN:
        out.append(f"-> [{', '.join(op.children or ())}]")
    elif op.kind in (Kind.CREATE_SEQ, Kind.CREATE_EPHEMERAL) and op.path is not None:
        out.append(f"-> {op.path}")
    if op.kind in (Kind.READ, Kind.WRITE, Kind.CAS, Kind.CREATE) and op.version is not None:
        out.append(f"v{op.version}")
    if op.owner:
        out.append(f"owner={op.owner:#x}")
    if op.mzxid is not None:
        out.append(f"mzxid={zxid_text(op.mzxid)}")
    if op.zxid is not None and op.kind not in (Kind.SESSION_EXPIRED, Kind.CLOSE_SESSION, Kind.WATCH_EVENT):
        out.append(f"zxid={zxid_text(op.zxid)}")
    return out


@dataclass(frozen=True)
class Violation:
    """One broken rule: a line saying which, the ops that show it, and optional notes."""

    summary: str
    ops: tuple[Op, ...]
    notes: tuple[str, ...] = ()
    by_client: bool = False  # list the ops client by client instead of by start time

    def text(self) -> str:
        if self.by_client:
            ops = sorted(self.ops, key=lambda op: (op.process, op.session or 0, op.start, op.index))
        else:
            ops = sorted(self.ops, key=lambda op: (op.start, op.index))
        lines = [self.summary]
        lines.extend("  " + describe(op) for op in ops[:EXAMPLE_OPS_MAX])
        if len(ops) > EXAMPLE_OPS_MAX:
            lines.append(f"  ... and {len(ops) - EXAMPLE_OPS_MAX} more ops")
        lines.extend("  " + note for note in self.notes)
        return "\n".join(lines)


@dataclass(frozen=True)
class CheckResult:
    """A check's verdict on a history. `inconclusive` says why it could not decide, if it could not."""

    name: str
    ops_checked: int
    violations: tuple[Violation, ...] = ()
    inconclusive: str | None = None

    @property
    def ok(self) -> bool:
        """True when the check decided and found nothing wrong."""
        return not self.violations and self.inconclusive is None

    @property
    def verdict(self) -> str:
        if self.violations:
            return "VIOLATION"
        return "inconclusive" if self.inconclusive is not None else "ok"

    def counterexample(self, examples_max: int = 3) -> str:
        """The first few violations as text; empty when there are none."""
        parts = [
            v.text() if v.summary.startswith(self.name) else f"{self.name}: {v.text()}"
            for v in self.violations[:examples_max]
        ]
        if len(self.violations) > examples_max:
            parts.append(f"{self.name}: ... and {len(self.violations) - examples_max} more violations")
        return "\n\n".join(parts)

    def __str__(self) -> str:
        head = f"{self.name}: {self.verdict} ({self.ops_checked} ops checked)"
        if self.inconclusive is not None:
            head += f": {self.inconclusive}"
        return head + ("\n" + self.counterexample() if self.violations else "")


@dataclass(frozen=True)
class Report:
    """Every check's result on one history, printable as a table followed by the counterexamples."""

    results: tuple[CheckResult, ...]
    ops_total: int = 0
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return all(result.ok for result in self.results)

    @property
    def violated(self) -> bool:
        return any(result.violations for result in self.results)

    def result(self, name: str) -> CheckResult:
        """The result of the check called `name`."""
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(f"no check named {name!r}: {', '.join(r.name for r in self.results)}")

    def table(self) -> str:
        rows = [(r.name, r.ops_checked, r.verdict, len(r.violations)) for r in self.results]
        return tabulate(rows, headers=["check", "ops checked", "verdict", "violations"], tablefmt="simple")

    def text(self, examples_max: int = 3) -> str:
        lines = [f"{self.ops_total} ops in the history", "", self.table()]
        for result in self.results:
            if result.inconclusive is not None:
                lines += ["", f"{result.name}: inconclusive: {result.inconclusive}"]
        for result in self.results:
            if result.violations:
                lines += ["", result.counterexample(examples_max)]
        lines.extend(self.notes)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()


def violation(summary: str, ops: Sequence[Op], *notes: str) -> Violation:
    """A Violation from any sequence of ops."""
    return Violation(summary, tuple(ops), tuple(notes))
