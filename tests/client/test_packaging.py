"""The client stands alone: it imports and runs with the server's packages and dependencies
unavailable, its distribution (ZKPY_DIST=client) holds only zkclient and zkcore and needs only
pyzmq, and the console scripts are installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVER_SIDE = ("cluster", "native", "psutil", "tabulate", "cffi", "checker", "verify")

BLOCKER = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {SERVER_SIDE!r}:
            raise ImportError(f"the client must not need {{name}}")
sys.meta_path.insert(0, Block())
import zkclient, zkclient.cli, zkclient.admin
from zkclient import KazooClient, KazooException
zk = KazooClient("tcp://127.0.0.1:1")
assert issubclass(zkclient.exceptions.NoNodeError, KazooException[0])
sys.exit(zkclient.cli.main(["--server", "tcp://127.0.0.1:1", "help"]))
"""


def test_the_client_imports_and_runs_without_the_server() -> None:
    out = subprocess.run([sys.executable, "-c", BLOCKER], capture_output=True, text=True, timeout=60, cwd="/")
    assert out.returncode == 0, out.stderr
    assert "ls [-s] [-R] [-w] path" in out.stdout


def test_the_client_distribution_holds_the_client_alone(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("setup.py", "pyproject.toml"):
        shutil.copy(ROOT / name, src / name)
    for package in ("zkclient", "zkcore"):
        shutil.copytree(ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__"))
    out = subprocess.run([sys.executable, "setup.py", "-q", "egg_info", "--egg-base", str(tmp_path)], cwd=src,
                         env={"PATH": "/usr/bin:/bin", "ZKPY_DIST": "client"}, capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    info = tmp_path / "zkpy_client.egg-info"
    sources = (info / "SOURCES.txt").read_text().split()
    packaged = {s.split("/")[0] for s in sources if "/" in s and s.endswith((".py", ".typed"))}
    assert packaged == {"zkclient", "zkcore"}, packaged
    assert "zkclient/py.typed" in sources
    assert (info / "requires.txt").read_text().split() == ["pyzmq>=25"]
    assert "zkpy-cli = zkclient.cli:main" in (info / "entry_points.txt").read_text()


def test_console_scripts_are_installed() -> None:
    bin_dir = Path(sys.executable).parent
    for script, says in (("zkpy", "--nodes"), ("zkpy-cli", "--server"), ("zkpy-verify", "--nemesis")):
        out = subprocess.run(
            [str(bin_dir / script), "--help"], capture_output=True, text=True, timeout=60, cwd="/"
        )
        assert out.returncode == 0 and says in out.stdout, (script, out.stderr)
