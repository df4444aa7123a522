"""The CLI without an ensemble: zkCli's messages for each error, the stat layout, usage errors
(exit 2), and `admin` asking every server of the connect string (a scripted one answers, a
missing one does not)."""

from __future__ import annotations

import io
import threading

import pytest

from tests.client.fake_server import FakeServer
from zkclient import cli
from zkclient.exceptions import (
    BadArgumentsError,
    BadVersionError,
    ConnectionLoss,
    InvalidACLError,
    NoAuthError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
)
from zkclient.states import WatchedEvent, ZnodeStat


@pytest.mark.parametrize(
    "error, message",
    [
        (NoNodeError("x", "/a"), "Node does not exist: /a"),
        (NodeExistsError("x", "/a"), "Node already exists: /a"),
        (BadVersionError("x", "/a"), "version No is not valid : /a"),
        (NotEmptyError("x", "/a"), "Node not empty: /a"),
        (NoAuthError("x", "/a"), "Insufficient permission : /a"),
        (InvalidACLError("x", "/a"), "Acl is not valid : /a"),
        (NoChildrenForEphemeralsError("x", "/a"), "Ephemerals cannot have children: /a"),
        (BadArgumentsError("path must start with '/': 'a'"), "path must start with '/': 'a'"),
        (ConnectionLoss("gone"), "Connection lost: gone"),
    ],
)
def test_error_messages_read_like_zkcli(error: Exception, message: str) -> None:
    assert cli.error_message(error) == message


def test_stat_and_event_layout() -> None:
    text = cli.format_stat(ZnodeStat(0x10, 0x11, 0, 0, 2, 3, 4, 0x55, 6, 7, 0x12))
    lines = [line.split(" = ")[0] for line in text.splitlines()]
    assert lines == ["cZxid", "ctime", "mZxid", "mtime", "pZxid", "cversion", "dataVersion", "aclVersion",
                     "ephemeralOwner", "dataLength", "numChildren"]  # fmt: skip
    assert "cZxid = 0x10" in text and "ephemeralOwner = 0x55" in text and "dataVersion = 2" in text
    event = WatchedEvent("CHANGED", "CONNECTED", "/a")
    assert cli.format_event(event) == "WatchedEvent state:SyncConnected type:NodeDataChanged path:/a"


@pytest.mark.parametrize(
    "args, status, says",
    [
        (["bogus"], 2, "unknown command"),
        (["create"], 2, "usage: create"),
        (["set", "/a"], 2, "usage: set"),
        (["admin", "nope"], 2, "usage: admin"),
        (["get", "-x", "/a"], 2, "usage: get"),
        (["help"], 0, "getEphemerals [path]"),
    ],
)
def test_usage_errors_exit_2_without_connecting(args: list[str], status: int, says: str) -> None:
    out = io.StringIO()
    shell = cli.Shell("tcp://127.0.0.1:1", 1.0, out)
    assert shell.run(args) == status
    assert says in out.getvalue() and shell.client is None


def test_admin_asks_every_server_and_fails_if_one_is_silent() -> None:
    up, down = FakeServer("admin-up"), FakeServer("admin-down")
    down.close()

    def answer() -> None:
        identity, frame = up.recv()
        assert frame == b"ruok"
        up.send(b"imok", identity)

    thread = threading.Thread(target=answer)
    thread.start()
    out = io.StringIO()
    shell = cli.Shell(f"{up.endpoint},{down.endpoint}", 0.3, out)
    assert shell.run(["admin", "ruok"]) == 1
    thread.join(5)
    assert out.getvalue().splitlines() == [
        f"--- {up.endpoint} ---",
        "imok",
        f"--- {down.endpoint} ---",
        "(no answer)",
    ]
    up.close()


def test_bad_server_option_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--server", "a:1/x,b:2", "ls", "/"]) == 2
    assert "only the last entry" in capsys.readouterr().err
