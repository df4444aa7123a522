"""zkcore stays a function of its inputs: it imports no sockets, clocks, threads or processes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

FORBIDDEN = {"socket", "zmq", "time", "threading", "os", "random", "select", "selectors", "asyncio",
             "multiprocessing", "subprocess", "signal", "datetime", "native", "cluster"}  # fmt: skip
ZKCORE = Path(__file__).resolve().parent.parent / "zkcore"


def imported_modules(source: str) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted(ZKCORE.rglob("*.py")), ids=lambda p: str(p.relative_to(ZKCORE)))
def test_zkcore_module_imports_no_io(path: Path) -> None:
    bad = imported_modules(path.read_text()) & FORBIDDEN
    assert not bad, f"{path.name} imports {sorted(bad)}; pass time, randomness and I/O in instead"


def test_the_check_can_fail() -> None:
    assert imported_modules("import time\nfrom os import path\n") & FORBIDDEN == {"time", "os"}
