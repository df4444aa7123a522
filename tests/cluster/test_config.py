"""The ensemble config file: round trip, and errors that name the line and the rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster import config
from zkcore import LocalError


def test_local_ensemble_round_trips(tmp_path: Path) -> None:
    conf = config.local_ensemble(tmp_path, voters=3, observers=2, tick_ms=50)
    parsed = config.parse(conf.render())
    assert parsed == conf
    assert parsed.voters == [1, 2, 3] and parsed.observers == [4, 5]
    assert parsed.connect_string().count("ipc://") == 5
    assert parsed.node_dir(2) == tmp_path.resolve() / "node2"


def test_tcp_ports(tmp_path: Path) -> None:
    conf = config.local_ensemble(tmp_path, voters=3, transport="tcp", base_port=3000)
    assert conf.servers[1].client == "tcp://127.0.0.1:3000"
    assert conf.servers[3].peer == "tcp://127.0.0.1:4002"


@pytest.mark.parametrize(
    "text, message",
    [
        ("tickTime=100\n", "needs dataDir"),
        ("dataDir=/x\n", "at least one participant"),
        ("dataDir=/x\ntickTime=fast\n", "line 2: tickTime must be an integer"),
        ("dataDir=/x\njunk\n", "line 2: expected key=value"),
        ("dataDir=/x\nserver.1=participant;peer=tcp://a:1\n", "needs both peer= and client="),
        ("dataDir=/x\nserver.1=leader;peer=tcp://a:1;client=tcp://a:2\n", "role must be one of"),
        ("dataDir=/x\nserver.1=participant;peer=udp://a:1;client=tcp://a:2\n", "must be tcp:// or ipc://"),
        ("dataDir=/x\nserver.1=participant;peer=tcp://a:1;client=tcp://a:1\n", "must be distinct"),
        ("dataDir=/x\nserver.x=participant;peer=tcp://a:1;client=tcp://a:2\n", "server.<id>"),
        ("dataDir=/x\nserver.300=participant;peer=tcp://a:1;client=tcp://a:2\n", "1..255"),
    ],
)
def test_bad_configs_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(LocalError, match=message):
        config.parse(text)


def test_long_ipc_paths_are_refused_with_advice(tmp_path: Path) -> None:
    with pytest.raises(LocalError, match="shorter --data-dir or --transport tcp"):
        config.local_ensemble(tmp_path / ("d" * 120), voters=1)
