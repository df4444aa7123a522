"""Ordinary mistakes with the launcher, the admin tool and the toolkit: one line naming what was
wrong and what is allowed, exit 2, never a traceback. No ensemble is started."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cluster import admin, config, launch, toolkit
from cluster._supervisor import node_log_path, state_path


@pytest.fixture(autouse=True)
def nothing_starts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A mistake the launcher fails to refuse must fail its test, not start an ensemble (in the
    foreground, one that would run until killed) nor write ./zkpy-data where the tests run."""
    monkeypatch.chdir(tmp_path)

    def started(*args: object, **kwargs: object) -> None:
        raise AssertionError("the launcher started an ensemble")

    monkeypatch.setattr(launch, "Supervisor", started)
    monkeypatch.setattr(launch, "start_detached", started)


def run(main: object, argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)  # type: ignore[operator]
    except SystemExit as e:  # argparse's usage errors
        code = e.code
    out = capsys.readouterr()
    return int(code), out.out + out.err


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--nodes", "0"], "--nodes 0: need 1..255 voting servers"),
        (["--nodes", "3", "--observers", "-1"], "--observers -1: need 0..252"),
        (
            ["--transport", "tcp", "--base-port", "65000"],
            "--base-port 65000: the ports go from base to base+6000+N-1",
        ),
        (
            ["--nodes", "3", "--base-port", "59534"],
            "--base-port 59534: the ports go from base to base+6000+N-1",
        ),
        (["status", "--data-dir", "/nonexistent/zkpy"], "--data-dir /nonexistent/zkpy: no ensemble here"),
        (["stop", "--data-dir", "/nonexistent/zkpy"], "no ensemble here (no ensemble.cfg); start one with"),
        (["status", "--config", "/nonexistent/zoo.cfg"], "/nonexistent/zoo.cfg: no such config file"),
        (["stop-node"], "stop-node needs --id N"),
        (["status", "--timeout", "0"], "--timeout 0.0: must be above 0 seconds"),
        (["--ids", "1,x"], "must be server ids like 1 or 1,2"),
        (["log", "/nonexistent/node1"], "/nonexistent/node1: no such file or folder"),
    ],
)
def test_launcher_mistakes(argv: list[str], says: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, text = run(launch.main, argv, capsys)
    assert code == 2 and says in text and "Traceback" not in text


def test_mistakes_about_a_data_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "afile"
    a_file.write_text("")
    code, text = run(launch.main, ["--data-dir", str(a_file), "--detach"], capsys)
    assert code == 2 and f"--data-dir {a_file}: is a file, not a folder" in text
    (tmp_path / "d").mkdir()
    config.local_ensemble(tmp_path / "d", 3).write(tmp_path / "d" / "ensemble.cfg")
    for cmd in ("start-node", "stop-node"):
        code, text = run(launch.main, [cmd, "--id", "9", "--data-dir", str(tmp_path / "d")], capsys)
        assert code == 2 and "--id 9: no server.9 in" in text and "(ids: [1, 2, 3])" in text
    code, text = run(launch.main, ["start-node", "--id", "2", "--data-dir", str(tmp_path / "d")], capsys)
    assert code == 1 and "no supervisor runs" in text
    code, text = run(launch.main, ["stop", "--data-dir", str(tmp_path / "d")], capsys)
    assert code == 0 and "nothing was running" in text
    code, text = run(launch.main, ["status", "--data-dir", str(tmp_path / "d")], capsys)
    assert code == 1 and "NO QUORUM: 0 of 3 voters serve" in text and "dead" in text


def test_a_base_port_that_its_config_would_ignore_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Retrying with --base-port after "Address already in use" must not quietly resume the
    config's old ports: nothing is started, and the message says where the ports are set."""
    config.local_ensemble(tmp_path, 3).write(tmp_path / "ensemble.cfg")
    code, text = run(
        launch.main, ["--nodes", "3", "--data-dir", str(tmp_path), "--base-port", "3181"], capsys
    )
    assert code == 2 and "Traceback" not in text
    assert f"--base-port 3181: {tmp_path}/ensemble.cfg already sets this ensemble's ports" in text
    assert "127.0.0.1:2181,127.0.0.1:2182,127.0.0.1:2183" in text and "use another --data-dir" in text
    assert not (tmp_path / "node1").exists()


def test_a_config_typo_stops_the_start(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ensemble.cfg").write_text(config.local_ensemble(tmp_path, 1).render() + "tickTme=2000\n")
    code, text = run(launch.main, ["--data-dir", str(tmp_path), "--detach"], capsys)
    assert (
        code == 2
        and f"{tmp_path}/ensemble.cfg:" in text
        and "unknown key 'tickTme'; did you mean tickTime?" in text
    )


@pytest.mark.parametrize(
    "argv, code, says",
    [
        (["127.0.0.1:1", "ruox"], 2, "unknown admin word 'ruox'; one of ruok,"),
        (["a:1,b:2", "ruok"], 2, "one server, not a connect string"),
        (["127.0.0.1:99999", "ruok"], 2, "port must be a number in 1..65535"),
        (["--help"], 2, "usage: python -m cluster.admin <server"),
        (["127.0.0.1:1", "ruok"], 1, "no answer from tcp://127.0.0.1:1"),
    ],
)
def test_admin_mistakes(argv: list[str], code: int, says: str, capsys: pytest.CaptureFixture[str]) -> None:
    got, text = run(admin.main, argv, capsys)
    assert got == code and says in text and "Traceback" not in text


def test_toolkit_refuses_what_is_not_a_node_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = run(toolkit.main, ["check", str(tmp_path)], capsys)
    assert code == 2 and "not a node folder" in text


def test_no_traceback_from_a_real_process(tmp_path: Path) -> None:
    """The same through the command line a person types, for one case of each tool."""
    for argv in (["cluster.launch", "status", "--data-dir", str(tmp_path / "none")],
                 ["cluster.admin", "127.0.0.1:2181", "bogus"], ["verify.check", "--help"]):  # fmt: skip
        out = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, timeout=60)
        assert "Traceback" not in out.stderr, out.stderr
        assert out.returncode in (0, 2), (argv, out.returncode, out.stderr)


def test_why_a_node_is_down_says_how_it_died_and_what_it_last_logged(tmp_path: Path) -> None:
    """The reasons under the live table, `status` and a failed --detach: how often and how each
    node died (from the supervisor's state), then its last error, else its last line."""
    conf = config.local_ensemble(tmp_path, 3)
    (tmp_path / "run").mkdir()
    state = {
        "1": {"pid": None, "deaths": ["exit code 1", "exit code 1"]},
        "2": {"pid": 7, "deaths": ["signal SIGKILL"]},
    }
    state_path(conf).write_text(json.dumps(state))
    for sid, line in ((1, "node1 ERROR zkpy.node cannot start node 1: 127.0.0.1:2181 (...) is taken"),
                      (2, "node2 INFO zkpy.node role FOLLOWING phase BROADCAST"), (3, "node3 INFO zkpy.node role LOOKING")):  # fmt: skip
        node_log_path(conf, sid).parent.mkdir()
        node_log_path(conf, sid).write_text(f"2026-12-07 21:05:02,480 {line}\n")
    assert [line.split("  [")[0] for line in launch.node_reasons(conf, [1, 2, 3], {})] == [
        "  node 1 (died 2 times, the last with exit code 1): its log last said: cannot start node 1: "
        "127.0.0.1:2181 (...) is taken",
        "  node 2 (died 1 time, the last with signal SIGKILL): its log last said: role FOLLOWING phase BROADCAST",
        "  node 3: running but not serving; its log last said: role LOOKING",
    ]
