"""Progress lines: drawn in place on a terminal, nothing in a log or under CI."""

from __future__ import annotations

import io

import pytest

from cluster.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_line_redrawn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    out = Terminal()
    progress = Progress("verify", 60, out=out, every_s=0)
    progress.update(ops=5, faults_injected=1)
    progress.update(ops=12, faults_injected=2)
    progress.done()
    drawn = out.getvalue().split("\r")
    assert drawn[1].startswith("verify: 0/60s, ops 5, faults injected 1")
    assert drawn[2].startswith("verify: 0/60s, ops 12, faults injected 2")
    assert drawn[-1] == ""  # cleared for what comes next


@pytest.mark.parametrize("ci, out", [(None, io.StringIO()), ("true", Terminal())])
def test_logs_and_ci_stay_quiet(monkeypatch: pytest.MonkeyPatch, ci: str | None, out: io.StringIO) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    progress = Progress("bench", out=out, every_s=0)
    progress.update(ops=1)
    progress.done()
    assert out.getvalue() == ""
