"""The zkCli shell commands beyond reading and writing znodes (watches, history, who and what),
and the interactive shell's Tab completion of paths and its persistent history: a mixin of
zkclient.cli's Shell, which provides say(), zk(), run() and the state they use."""

from __future__ import annotations

import argparse
import os
import shlex
from typing import TYPE_CHECKING

from zkclient.exceptions import ClientError, KeeperError
from zkclient.states import AddWatchMode, WatchedEvent, WatcherType

if TYPE_CHECKING:
    from zkclient.client import Client


class UsageError(Exception):
    pass


class ShellExtras:
    """Needs from the class it is mixed into: the methods and attributes declared here."""

    lines: list[str]
    print_watches: bool
    client: Client | None

    def say(self, text: str) -> None:
        raise NotImplementedError

    def zk(self) -> Client:
        raise NotImplementedError

    def run(self, args: list[str]) -> int:
        raise NotImplementedError

    def _watcher(self, event: WatchedEvent) -> None:
        raise NotImplementedError

    def _parser_for(self, name: str) -> argparse.ArgumentParser:
        raise NotImplementedError

    def _usage(self, name: str) -> str:
        raise NotImplementedError

    def cmd_addWatch(self, args: list[str]) -> None:  # noqa: N802
        p = self._parser_for("addWatch")
        p.add_argument("-m", default="PERSISTENT_RECURSIVE", choices=["PERSISTENT", "PERSISTENT_RECURSIVE"])
        p.add_argument("path")
        a = p.parse_intermixed_args(args)
        self.zk().add_watch(a.path, self._watcher, getattr(AddWatchMode, a.m))

    def cmd_removewatches(self, args: list[str]) -> None:
        p = self._parser_for("removewatches")
        kind = p.add_mutually_exclusive_group()
        for flag in ("-c", "-d", "-a"):
            kind.add_argument(flag, action="store_true")
        p.add_argument(
            "-l", action="store_true", help="ignored: watches are always removed on the server too"
        )
        p.add_argument("path")
        a = p.parse_intermixed_args(args)
        wtype = WatcherType.CHILDREN if a.c else WatcherType.DATA if a.d else WatcherType.ANY
        self.zk().remove_watches(a.path, wtype)

    def cmd_printwatches(self, args: list[str]) -> None:
        if len(args) > 1 or (args and args[0] not in ("on", "off")):
            raise UsageError(f"usage: {self._usage('printwatches')}")
        if args:
            self.print_watches = args[0] == "on"
        self.say(f"printwatches is {'on' if self.print_watches else 'off'}")

    def cmd_whoami(self, args: list[str]) -> None:
        """Who the server takes this shell's connection for (whoAmI), as zkCli prints it."""
        identities = self.zk().whoami()
        self.say("Auth scheme: User")
        for scheme, user in identities:
            self.say(f"{scheme}: {user}")

    def cmd_config(self, args: list[str]) -> int:
        """The ensemble's servers, as the connected server's `conf` has them."""
        zk = self.zk()
        lines = zk.command("conf").splitlines()
        for line in lines:
            if line.startswith("server."):
                self.say(line)
        self.say(f"version={zk.last_zxid:x}")
        return 0

    def cmd_version(self, args: list[str]) -> None:
        self.say(f"ZooKeeper CLI version: {_version()} (zkpy; ZooKeeper 3.8 protocol)")

    def cmd_history(self, args: list[str]) -> None:
        start = max(0, len(self.lines) - 10)
        for number in range(start, len(self.lines)):
            self.say(f"{number} - {self.lines[number]}")

    def cmd_redo(self, args: list[str]) -> int:
        if len(args) != 1 or not args[0].isdigit() or int(args[0]) >= len(self.lines):
            raise UsageError(f"usage: {self._usage('redo')} (a number that `history` shows)")
        line = self.lines[int(args[0])]
        self.lines.append(line)
        return self.run(shlex.split(line))

    def completedefault(self, text: str, line: str, begidx: int, endidx: int) -> list[str]:
        """Tab on a path: the children of its parent that start with what is typed."""
        if not text.startswith("/") or self.client is None or not self.client.connected:
            return []
        parent, _, prefix = text.rpartition("/")
        try:
            children = self.client.get_children(parent or "/")
        except (KeeperError, ClientError):
            return []
        return sorted(f"{parent}/{c}" for c in children if c.startswith(prefix))

    def preloop(self) -> None:
        try:
            import readline
        except ImportError:  # no line editing here: no history or completion either
            return
        readline.set_completer_delims(" \t\n")
        try:
            readline.read_history_file(history_file())
        except OSError:
            pass

    def postloop(self) -> None:
        try:
            import readline

            readline.set_history_length(1000)
            readline.write_history_file(history_file())
        except (ImportError, OSError):
            pass


def history_file() -> str:
    return os.environ.get("ZKPY_HISTORY") or os.path.join(os.path.expanduser("~"), ".zkpy_history")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("zkpy", "zkpy-client"):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return "unknown"
