"""Connect strings: endpoints, bare host:port as tcp, chroot on the last entry, and errors that
name the entry and the rule."""

from __future__ import annotations

import pytest

from zkclient.hosts import ConnectString, parse_hosts, prefix_root, strip_root
from zkcore._errors import BadArgumentsError

CASES = [
    ("tcp://127.0.0.1:2181", ConnectString(("tcp://127.0.0.1:2181",))),
    ("127.0.0.1:2181", ConnectString(("tcp://127.0.0.1:2181",))),
    ("zk1", ConnectString(("tcp://zk1:2181",))),
    (" a:1 , b:2 ", ConnectString(("tcp://a:1", "tcp://b:2"))),
    (
        "tcp://127.0.0.1:2181,ipc:///run/zk/1.sock",
        ConnectString(("tcp://127.0.0.1:2181", "ipc:///run/zk/1.sock")),
    ),
    (
        "ipc:///run/zk/1.sock,ipc:///run/zk/2.sock",
        ConnectString(("ipc:///run/zk/1.sock", "ipc:///run/zk/2.sock")),
    ),
    ("a:1,b:2/app", ConnectString(("tcp://a:1", "tcp://b:2"), "/app")),
    ("tcp://a:1/app/sub", ConnectString(("tcp://a:1",), "/app/sub")),
    ("a:1/", ConnectString(("tcp://a:1",))),
    ("a:1/app/", ConnectString(("tcp://a:1",), "/app")),
    ("[::1]:2182", ConnectString(("tcp://[::1]:2182",))),
    ("[::1]", ConnectString(("tcp://[::1]:2181",))),
    ("a:1,a:1", ConnectString(("tcp://a:1",))),
    ("inproc://x", ConnectString(("inproc://x",))),
]

BAD = [
    ("", "no servers"),
    ("a:1,,b:2", "empty entry"),
    ("a:99999", "port must be"),
    ("a:port", "port must be"),
    ("ftp://a:1", "unknown ZeroMQ transport"),
    ("a:1/app,b:2", "only the last entry"),
    ("a:1/app//x", "bad chroot"),
    ("ipc://", "no address"),
    (":2181", "no host"),
    ("[::1:2181", "brackets"),
]


@pytest.mark.parametrize("text, want", CASES, ids=[c[0] or "empty" for c in CASES])
def test_parse(text: str, want: ConnectString) -> None:
    assert parse_hosts(text) == want


@pytest.mark.parametrize("text, rule", BAD, ids=[b[0] or "empty" for b in BAD])
def test_bad_connect_strings_name_the_rule(text: str, rule: str) -> None:
    with pytest.raises(BadArgumentsError, match=rule):
        parse_hosts(text)


@pytest.mark.parametrize(
    "chroot, client, server",
    [("", "/a", "/a"), ("/app", "/", "/app"), ("/app", "/a/b", "/app/a/b")],
)
def test_chroot_prefix_and_strip_are_inverse(chroot: str, client: str, server: str) -> None:
    assert prefix_root(chroot, client) == server
    assert strip_root(chroot, server) == client


def test_strip_leaves_paths_outside_the_chroot() -> None:
    assert strip_root("/app", "/apple") == "/apple"
    assert strip_root("/app", "/other") == "/other"
