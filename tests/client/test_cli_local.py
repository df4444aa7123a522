"""The CLI and Client() find the local ensemble with no connect string (ZKPY_CONNECT, the data
dir's config in either form, else 127.0.0.1:2181), the prompt stays short, and zkCli's shell
commands (history, redo, printwatches, version, addWatch, removewatches) work; no server needed."""

from __future__ import annotations

import io
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from zkclient import cli, local
from zkclient.local import connect_string_of, default_hosts, short_name

OURS = "dataDir=/d\nserver.1=participant;peer=ipc:///d/run/1.peer;client=ipc:///d/run/1.client\n" \
       "server.2=observer;peer=tcp://h2:2888;client=tcp://h2:2181\n"  # fmt: skip
ZOO = "dataDir=/d\nclientPort=2181\nserver.2=zoo2:2888:3888\nserver.1=zoo1:2888:3888:participant;0.0.0.0:2182\n" \
      "server.3=zoo3:2888:3888;10.0.0.3:2183\n"  # fmt: skip


@pytest.mark.parametrize(
    "text, hosts",
    [
        (OURS, "ipc:///d/run/1.client,tcp://h2:2181"),
        (ZOO, "tcp://zoo1:2182,tcp://zoo2:2181,tcp://10.0.0.3:2183"),
        ("dataDir=/d\n", None),
    ],
)
def test_connect_string_of_a_config(tmp_path: Path, text: str, hosts: str | None) -> None:
    (tmp_path / "ensemble.cfg").write_text(text)
    assert connect_string_of(tmp_path / "ensemble.cfg") == hosts


def test_where_the_default_comes_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ZKPY_CONNECT", raising=False)
    assert default_hosts() == ("127.0.0.1:2181", "127.0.0.1:2181", True)
    (tmp_path / "zkpy-data").mkdir()
    (tmp_path / "zkpy-data" / "ensemble.cfg").write_text(OURS)
    assert default_hosts() == ("ipc:///d/run/1.client,tcp://h2:2181", "zkpy-data", False)
    monkeypatch.setenv("ZKPY_CONNECT", "tcp://e:1")
    assert default_hosts() == ("tcp://e:1", "tcp://e:1", False)
    assert default_hosts(str(tmp_path / "zkpy-data"))[0].startswith("ipc:///d/run/1.client")  # named wins
    with pytest.raises(FileNotFoundError, match="--data-dir /nowhere: no ensemble here"):
        default_hosts("/nowhere")


def test_client_and_cli_use_the_local_ensemble(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    from zkclient import Client

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ZKPY_CONNECT", "tcp://127.0.0.1:1,tcp://127.0.0.1:2")
    assert Client().hosts == ("tcp://127.0.0.1:1", "tcp://127.0.0.1:2")
    assert cli.main(["--data-dir", str(tmp_path / "none"), "ls", "/"]) == 2
    assert "no ensemble here" in capsys.readouterr().err


def test_the_prompt_is_short() -> None:
    long = ",".join(f"ipc:///home/someone/work/zkpy-data/run/{i}.client" for i in range(1, 6))
    assert short_name(long) == "ipc:…/zkpy-data/run/1.client +4"
    assert short_name("10.0.0.1:2181") == "10.0.0.1:2181"
    shell = cli.Shell(long, 1.0, io.StringIO())
    assert shell.prompt == "[zk: ipc:…/zkpy-data/run/1.client +4(CLOSED) 0] "
    assert cli.Shell(long, 1.0, io.StringIO(), label="zkpy-data").prompt == "[zk: zkpy-data(CLOSED) 0] "


def test_history_redo_printwatches_version() -> None:
    out = io.StringIO()
    shell = cli.Shell("tcp://127.0.0.1:1", 1.0, out)
    for line in ("printwatches off", "printwatches", "version", "history"):
        shell.onecmd(line)
    text = out.getvalue()
    assert "printwatches is off" in text and "ZooKeeper CLI version:" in text
    assert "0 - printwatches off\n1 - printwatches\n2 - version" in text
    out.truncate(0)
    shell.onecmd("redo 2")
    assert "ZooKeeper CLI version:" in out.getvalue()
    assert shell.run(["redo", "99"]) == 2 and shell.run(["printwatches", "maybe"]) == 2
    assert shell.run(["addWatch", "-m", "ONCE", "/a"]) == 2 and shell.client is None


class FakeClient:
    connected = True

    def __init__(self, tree: dict[str, list[str]]) -> None:
        self.tree = tree

    def get_children(self, path: str) -> list[str]:
        return self.tree[path]


def test_tab_completes_paths() -> None:
    shell = cli.Shell("tcp://127.0.0.1:1", 1.0, io.StringIO())
    shell.client = FakeClient({"/": ["app", "apps", "zookeeper"], "/app": ["config", "lock"]})  # type: ignore[assignment]
    assert shell.completedefault("/ap", "get /ap", 4, 7) == ["/app", "/apps"]
    assert shell.completedefault("/app/c", "ls /app/c", 3, 9) == ["/app/config"]
    assert shell.completedefault("x", "ls x", 3, 4) == []
    assert shell.completenames("re") == ["removewatches", "redo"]


def test_history_persists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readline: Any = pytest.importorskip("readline")
    monkeypatch.setenv("ZKPY_HISTORY", str(tmp_path / "history"))
    readline.clear_history()
    shell = cli.Shell("tcp://127.0.0.1:1", 1.0, io.StringIO())
    shell.preloop()
    readline.add_history("ls /app")
    shell.postloop()
    readline.clear_history()
    cli.Shell("tcp://127.0.0.1:1", 1.0, io.StringIO()).preloop()
    assert readline.get_history_item(readline.get_current_history_length()) == "ls /app"


def _serve_once(reply: bytes) -> tuple[socket.socket, threading.Thread]:
    """A listener on a free port of 127.0.0.1 that sends `reply` to its first connection."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(reply)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return listener, thread


def _fallback_to(port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "FALLBACK", f"127.0.0.1:{port}")


def _free_port() -> int:
    """A port of 127.0.0.1 nothing listens on (bound a moment, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_with_no_ensemble_named_the_cli_says_what_it_tried_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No ZKPY_CONNECT, no ./zkpy-data: a command does not wait out its timeout on ZooKeeper's
    default address when nothing there can take its session, and says how to name the ensemble."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ZKPY_CONNECT", raising=False)
    free = _free_port()
    _fallback_to(free, monkeypatch)
    assert cli.main(["ls", "/"]) == 1
    err = capsys.readouterr().err
    assert f"nothing listens on 127.0.0.1:{free}" in err and "--data-dir D" in err and "ZKPY_CONNECT" in err
    listener, thread = _serve_once(b"imok")  # a ZooKeeper-protocol port, as a local ensemble's 2181
    with listener:
        _fallback_to(listener.getsockname()[1], monkeypatch)
        assert cli.main(["ls", "/"]) == 1
        thread.join(5)
    assert "is a port for ZooKeeper's own clients (zkCli.sh, kazoo)" in capsys.readouterr().err


def test_a_zeromq_port_there_is_worth_trying(monkeypatch: pytest.MonkeyPatch) -> None:
    listener, thread = _serve_once(b"\xff\x00\x00\x00\x00\x00\x00\x00\x01\x7f")  # ZMTP's greeting
    with listener:
        _fallback_to(listener.getsockname()[1], monkeypatch)
        assert local.fallback_hint()[0]
        thread.join(5)


def test_an_address_named_in_zkpy_connect_is_not_second_guessed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ZKPY_CONNECT=127.0.0.1:2181 names the address: the CLI tries it for its timeout, and does
    not tell the person that no ensemble was named."""
    monkeypatch.chdir(tmp_path)
    free = _free_port()
    _fallback_to(free, monkeypatch)
    monkeypatch.setenv("ZKPY_CONNECT", f"127.0.0.1:{free}")
    asked: list[bool] = []
    monkeypatch.setattr(cli, "fallback_hint", lambda: asked.append(True) or (False, "hint"))
    assert cli.main(["--timeout", "0.5", "ls", "/"]) == 1
    assert not asked


def test_zkpy_admin_asks_a_zookeeper_protocol_port_in_plain_text(capsys: pytest.CaptureFixture[str]) -> None:
    """`zkpy-admin 127.0.0.1:2181 mntr`, the README's example, reaches a local ensemble's door
    for ZooKeeper's clients (and ZooKeeper itself) as ZooKeeper's four-letter words go; a
    ZeroMQ port, which greets first, is asked over ZeroMQ; nothing listening is no answer."""
    from zkclient import admin

    listener, thread = _serve_once(b"imok")
    with listener:
        assert admin.main([f"127.0.0.1:{listener.getsockname()[1]}", "ruok"]) == 0
        thread.join(5)
    assert capsys.readouterr().out == "imok\n"
    listener, thread = _serve_once(admin.ZMTP_GREETING_FIRST + bytes(8) + b"\x7f")
    with listener:
        port = listener.getsockname()[1]
        assert (
            admin.over_tcp("127.0.0.1", port, "ruok", 1.0) == admin.ZMTP_GREETING_FIRST + bytes(8) + b"\x7f"
        )
        thread.join(5)
    free = _free_port()
    assert admin.ask(f"tcp://127.0.0.1:{free}", "ruok", 200) is None


def test_the_shell_says_so_as_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The interactive shell starts all the same (an ensemble may be started meanwhile), and
    says at once that nothing it could use listens at the default address."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ZKPY_CONNECT", raising=False)
    free = _free_port()
    _fallback_to(free, monkeypatch)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # end of input: the shell quits
    assert cli.main([]) == 0
    assert f"nothing listens on 127.0.0.1:{free}" in capsys.readouterr().err
