"""`python -m checker`: the report on stdout and the exit status (0 ok, 1 violation, 2 unreadable)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from checker.__main__ import main
from checker.history import save
from tests.checker.build import history, read, write

GOOD = history(write(1, "/x", "a", 0, 1, zxid=1), read(2, "/x", "a", 2, 3, zxid=1, mzxid=1, sync=True))
STALE = history(
    write(1, "/x", "a", 0, 1, zxid=1), write(1, "/x", "b", 2, 3, zxid=2), read(2, "/x", "a", 4, 5, sync=True)
)


def test_passing_history_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save(GOOD, tmp_path / "h.jsonl")
    assert main([str(tmp_path / "h.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "linearizability" in out and "VIOLATION" not in out


def test_violation_exits_1_and_prints_the_ops(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save(STALE, tmp_path / "h.jsonl")
    assert main([str(tmp_path / "h.jsonl")]) == 1
    out = capsys.readouterr().out
    assert "VIOLATION" in out and "#2 p2 read /x -> 'a'" in out


def test_initial_values_and_all_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save(history(read(1, "/x", "1", 0, 1)), tmp_path / "h.jsonl")
    assert main([str(tmp_path / "h.jsonl"), "--all-reads", "--initial", "/x=0"]) == 1
    assert main([str(tmp_path / "h.jsonl"), "--all-reads"]) == 0
    capsys.readouterr()


def test_unreadable_history_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text(json.dumps({"process": 1, "kind": "read", "status": "ok", "start": 0, "end": 1}) + "\n")
    assert main([str(path)]) == 2
    assert f"{path}:1: an ok read op needs its result 'value'" in capsys.readouterr().err
    assert main([str(tmp_path / "absent.jsonl")]) == 2
    assert main([str(path), "--initial", "novalue"]) == 2


def test_runs_as_a_module(tmp_path: Path) -> None:
    save(STALE, tmp_path / "h.jsonl")
    done = subprocess.run(
        [sys.executable, "-m", "checker", str(tmp_path / "h.jsonl")],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "check" in done.stdout and "ops checked" in done.stdout
