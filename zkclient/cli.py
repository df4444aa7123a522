"""zkCli for zkpy: one command from the command line, or an interactive shell without one.

    python -m zkclient.cli ls -s /                      # the ensemble in ./zkpy-data (or ZKPY_CONNECT)
    python -m zkclient.cli --data-dir D admin mntr      # the ensemble the launcher runs in D
    python -m zkclient.cli --server tcp://10.0.0.1:2181,tcp://10.0.0.2:2181   # the shell; `help`

In the shell, Tab completes commands and znode paths, and history persists in ~/.zkpy_history
(ZKPY_HISTORY names another file).

Errors print ZooKeeper-like messages (`Node does not exist: /a`); a one-shot command that fails
exits 1 (2 for a usage error).
"""

from __future__ import annotations

import argparse
import cmd
import os
import shlex
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn, TextIO, TypeVar

from zkclient import admin
from zkclient._shell_extras import ShellExtras, UsageError
from zkclient.acl import format_perms, parse_acl
from zkclient.client import Client
from zkclient.exceptions import (
    AuthFailedError,
    BadVersionError,
    ClientError,
    ClientTimeoutError,
    ConnectionLoss,
    InvalidACLError,
    KeeperError,
    LocalError,
    NoAuthError,
    NoChildrenForEphemeralsError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
    NoWatcherError,
    SessionExpiredError,
)
from zkclient.hosts import parse_hosts
from zkclient.local import default_hosts, fallback_hint, short_name
from zkclient.states import AddWatchMode, WatchedEvent, WatcherType, ZnodeStat

T = TypeVar("T")

# WatchedEvent names back to ZooKeeper's, as zkCli prints them.
_EVENT_NAMES = {"CREATED": "NodeCreated", "DELETED": "NodeDeleted", "CHANGED": "NodeDataChanged",
                "CHILD": "NodeChildrenChanged", "NONE": "None"}  # fmt: skip
_STATE_NAMES = {"CONNECTED": "SyncConnected", "EXPIRED_SESSION": "Expired", "CLOSED": "Closed"}

# zkCli's wording, by exception class.
_MESSAGES: list[tuple[type[BaseException], str]] = [
    (NoNodeError, "Node does not exist: {path}"),
    (NodeExistsError, "Node already exists: {path}"),
    (BadVersionError, "version No is not valid : {path}"),
    (NotEmptyError, "Node not empty: {path}"),
    (NoAuthError, "Insufficient permission : {path}"),
    (InvalidACLError, "Acl is not valid : {path}"),
    (NoChildrenForEphemeralsError, "Ephemerals cannot have children: {path}"),
    (NoWatcherError, "No watcher of that type on: {path}"),
    (AuthFailedError, "Authentication failed: {error}"),
    (SessionExpiredError, "Session expired or closed: {error}"),
    (ConnectionLoss, "Connection lost: {error}"),
]

USAGE = {
    "ls": "ls [-s] [-R] [-w] path",
    "get": "get [-s] [-w] [-l] path",
    "set": "set [-s] [-v version] path data",
    "create": "create [-e] [-s] [-c] [-t ttl] path [data] [acl]",
    "delete": "delete [-v version] path",
    "deleteall": "deleteall path",
    "stat": "stat [-w] path",
    "getAcl": "getAcl [-s] path",
    "setAcl": "setAcl [-s] [-v version] [-R] path acl",
    "addauth": "addauth scheme auth",
    "sync": "sync path",
    "watch": "watch [-R] [--count N] path",
    "getEphemerals": "getEphemerals [path]",
    "getAllChildrenNumber": "getAllChildrenNumber path",
    "addWatch": "addWatch [-m mode] path  # mode: PERSISTENT or PERSISTENT_RECURSIVE (default)",
    "removewatches": "removewatches path [-c|-d|-a] [-l]",
    "printwatches": "printwatches on|off",
    "admin": f"admin <{'|'.join(admin.COMMANDS)}>",
    "config": "config",
    "whoami": "whoami",
    "version": "version",
    "history": "history",
    "redo": "redo cmdno",
    "connect": "connect <connect string>",
    "close": "close",
    "quit": "quit",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}\nusage: {self.usage}")


def _parser(name: str) -> _Parser:
    return _Parser(prog=name, usage=USAGE[name], add_help=False)


def error_message(e: BaseException) -> str:
    path = getattr(e, "path", None) or ""
    for cls, text in _MESSAGES:
        if isinstance(e, cls):
            return text.format(path=path, error=e)
    if isinstance(e, LocalError):
        return str(e)
    if isinstance(e, KeeperError):
        return f"{type(e).__name__}: {e}"
    return f"{type(e).__name__}: {e}"


def format_stat(stat: ZnodeStat) -> str:
    def when(ms: int) -> str:
        return time.strftime("%a %b %d %H:%M:%S %Z %Y", time.localtime(ms / 1000))

    return "\n".join([
        f"cZxid = {stat.czxid:#x}", f"ctime = {when(stat.ctime)}", f"mZxid = {stat.mzxid:#x}",
        f"mtime = {when(stat.mtime)}", f"pZxid = {stat.pzxid:#x}", f"cversion = {stat.cversion}",
        f"dataVersion = {stat.version}", f"aclVersion = {stat.aversion}",
        f"ephemeralOwner = {stat.ephemeralOwner:#x}", f"dataLength = {stat.dataLength}",
        f"numChildren = {stat.numChildren}",
    ])  # fmt: skip


def format_event(event: WatchedEvent) -> str:
    state = _STATE_NAMES.get(event.state, event.state)
    return f"WatchedEvent state:{state} type:{_EVENT_NAMES.get(event.type, event.type)} path:{event.path}"


def _text(data: bytes | None) -> str:
    return "null" if data is None else data.decode("utf-8", "replace")


class Shell(ShellExtras, cmd.Cmd):
    """The commands, shared by the one-shot mode and the interactive shell."""

    def __init__(
        self,
        server: str,
        timeout: float,
        out: TextIO = sys.stdout,
        interactive: bool = False,
        label: str = "",
        fallback: bool = False,
    ) -> None:
        super().__init__(stdout=out)
        self.server = server
        self.fallback = fallback  # the server is ZooKeeper's default address, for want of another
        self.label = label or short_name(server)
        self.lines: list[str] = []  # this shell's commands, for history and redo
        self.print_watches = True
        self.timeout = timeout
        self.out = out
        self.interactive = interactive
        self.client: Client | None = None
        self.count = 0
        self.quit = False
        self._print_lock = threading.Lock()

    # --- plumbing -------------------------------------------------------------------------------

    def _parser_for(self, name: str) -> argparse.ArgumentParser:
        return _parser(name)

    def _usage(self, name: str) -> str:
        return USAGE[name]

    def say(self, text: str) -> None:
        with self._print_lock:
            print(text, file=self.out, flush=True)

    def zk(self) -> Client:
        """The session, opened on first use (admin needs none) and again once lost."""
        if self.client is None or self.client.state == "LOST":
            if self.client is not None:
                self.client.stop()
            self.client = Client(self.server, timeout=self.timeout)
            self.client.start(timeout=self.timeout)
        return self.client

    def close_session(self) -> None:
        if self.client is not None:
            self.client.stop()
            self.client = None

    def run(self, args: list[str]) -> int:
        """Run one command; its exit status (0 ok, 1 failed, 2 usage)."""
        if not args:
            return 0
        name, rest = args[0], args[1:]
        handler: Callable[[list[str]], int | None] | None = getattr(self, f"cmd_{name}", None)
        if handler is None:
            self.say(f"unknown command {name!r}; commands: {', '.join(USAGE)}")
            return 2
        try:
            return handler(rest) or 0
        except UsageError as e:
            self.say(str(e))
            return 2
        except (KeeperError, ClientError) as e:
            self.say(error_message(e))
            if self.fallback and isinstance(e, ClientTimeoutError):
                self.say(fallback_hint()[1])
            return 1

    def _watcher(self, event: WatchedEvent) -> None:
        if self.print_watches:
            self.say(f"\nWATCHER::\n\n{format_event(event)}")

    def _read(self, watch: bool, read: Callable[[Any], T], show: Callable[[T], None]) -> None:
        """Run a read (with a watch for -w) and show its result. The shell prints the watch's
        event whenever it comes; a one-shot command waits for it (Ctrl-C to give up)."""
        if not watch or self.interactive:
            show(read(self._watcher if watch else None))
            return
        fired = threading.Event()

        def watcher(event: WatchedEvent) -> None:
            self._watcher(event)
            fired.set()

        show(read(watcher))
        try:
            while not fired.wait(0.2):
                pass
        except KeyboardInterrupt:
            pass

    # --- commands -------------------------------------------------------------------------------

    def cmd_ls(self, args: list[str]) -> None:
        p = _parser("ls")
        p.add_argument("-s", action="store_true")
        p.add_argument("-R", action="store_true")
        p.add_argument("-w", action="store_true")
        p.add_argument("path")
        a = p.parse_intermixed_args(args)
        zk = self.zk()
        if a.R:
            self._ls_recursive(zk, a.path)
            return

        def show(result: tuple[list[str], ZnodeStat]) -> None:
            children, stat = result
            self.say("[" + ", ".join(sorted(children)) + "]")
            if a.s:
                self.say(format_stat(stat))

        self._read(a.w, lambda w: zk.get_children(a.path, w, include_data=True), show)

    def _ls_recursive(self, zk: Client, path: str) -> None:
        stack = [path]
        while stack:
            node = stack.pop()
            self.say(node)
            try:
                children = zk.get_children(node)
            except NoNodeError:
                if node == path:
                    raise
                continue
            base = "" if node == "/" else node
            stack += [f"{base}/{c}" for c in sorted(children, reverse=True)]

    def cmd_get(self, args: list[str]) -> None:
        p = _parser("get")
        p.add_argument("-s", action="store_true")
        p.add_argument("-w", action="store_true")
        p.add_argument("-l", action="store_true", help="linearizable: a sync pipelined ahead of the read")
        p.add_argument("path")
        a = p.parse_intermixed_args(args)
        zk = self.zk()

        def show(result: tuple[bytes, ZnodeStat]) -> None:
            self.say(_text(result[0]))
            if a.s:
                self.say(format_stat(result[1]))

        self._read(a.w, lambda w: zk.get(a.path, w, linearizable=a.l), show)

    def cmd_stat(self, args: list[str]) -> None:
        p = _parser("stat")
        p.add_argument("-w", action="store_true")
        p.add_argument("path")
        a = p.parse_intermixed_args(args)
        zk = self.zk()

        def show(stat: ZnodeStat | None) -> None:
            if stat is None:
                raise NoNodeError(f"no node at {a.path}", a.path)
            self.say(format_stat(stat))

        self._read(a.w, lambda w: zk.exists(a.path, w), show)

    def cmd_set(self, args: list[str]) -> None:
        p = _parser("set")
        p.add_argument("-s", action="store_true")
        p.add_argument("-v", type=int, default=-1)
        p.add_argument("path")
        p.add_argument("data")
        a = p.parse_intermixed_args(args)
        stat = self.zk().set(a.path, a.data.encode("utf-8"), a.v)
        if a.s:
            self.say(format_stat(stat))

    def cmd_create(self, args: list[str]) -> None:
        p = _parser("create")
        for flag in ("-e", "-s", "-c"):
            p.add_argument(flag, action="store_true")
        p.add_argument("-t", type=int, default=0)
        p.add_argument("path")
        p.add_argument("data", nargs="?", default="")
        p.add_argument("acl", nargs="?", default=None)
        a = p.parse_intermixed_args(args)
        acl = parse_acl(a.acl) if a.acl else None
        path = self.zk().create(a.path, a.data.encode("utf-8"), acl, ephemeral=a.e, sequence=a.s, container=a.c,
                                ttl=a.t)  # fmt: skip
        self.say(f"Created {path}")

    def cmd_delete(self, args: list[str]) -> None:
        p = _parser("delete")
        p.add_argument("-v", type=int, default=-1)
        p.add_argument("path")
        a = p.parse_intermixed_args(args)
        self.zk().delete(a.path, a.v)

    def cmd_deleteall(self, args: list[str]) -> None:
        p = _parser("deleteall")
        p.add_argument("path")
        a = p.parse_intermixed_args(args)
        zk = self.zk()
        if zk.exists(a.path) is None:
            raise NoNodeError(f"no node at {a.path}", a.path)
        zk.delete(a.path, recursive=True)

    def cmd_getAcl(self, args: list[str]) -> None:  # noqa: N802 - zkCli's command name
        p = _parser("getAcl")
        p.add_argument("-s", action="store_true")
        p.add_argument("path")
        a = p.parse_intermixed_args(args)
        acl, stat = self.zk().get_acls(a.path)
        for entry in acl:
            self.say(f"'{entry.id.scheme},'{entry.id.id}\n: {format_perms(entry.perms)}")
        if a.s:
            self.say(format_stat(stat))

    def cmd_setAcl(self, args: list[str]) -> None:  # noqa: N802
        p = _parser("setAcl")
        p.add_argument("-s", action="store_true")
        p.add_argument("-R", action="store_true")
        p.add_argument("-v", type=int, default=-1)
        p.add_argument("path")
        p.add_argument("acl")
        a = p.parse_intermixed_args(args)
        acl = parse_acl(a.acl)
        zk = self.zk()
        stat = zk.set_acls(a.path, acl, a.v)
        if a.R:
            stack = [a.path]
            while stack:
                node = stack.pop()
                base = "" if node == "/" else node
                kids = [f"{base}/{c}" for c in zk.get_children(node)]
                for kid in kids:
                    zk.set_acls(kid, acl)
                stack += kids
        if a.s:
            self.say(format_stat(stat))

    def cmd_addauth(self, args: list[str]) -> None:
        p = _parser("addauth")
        p.add_argument("scheme")
        p.add_argument("auth")
        a = p.parse_intermixed_args(args)
        self.zk().add_auth(a.scheme, a.auth)

    def cmd_sync(self, args: list[str]) -> None:
        p = _parser("sync")
        p.add_argument("path")
        a = p.parse_intermixed_args(args)
        self.zk().sync(a.path)
        self.say("Sync is OK")

    def cmd_getEphemerals(self, args: list[str]) -> None:  # noqa: N802
        p = _parser("getEphemerals")
        p.add_argument("path", nargs="?", default="/")
        a = p.parse_intermixed_args(args)
        self.say("[" + ", ".join(self.zk().get_ephemerals(a.path)) + "]")

    def cmd_getAllChildrenNumber(self, args: list[str]) -> None:  # noqa: N802
        p = _parser("getAllChildrenNumber")
        p.add_argument("path")
        a = p.parse_intermixed_args(args)
        self.say(str(self.zk().get_all_children_number(a.path)))

    def cmd_watch(self, args: list[str]) -> int:
        """A persistent (-R: recursive) watch; prints events until Ctrl-C or --count events."""
        p = _parser("watch")
        p.add_argument("-R", action="store_true")
        p.add_argument("--count", type=int, default=0)
        p.add_argument("path")
        a = p.parse_intermixed_args(args)
        zk = self.zk()
        seen = threading.Semaphore(0)

        def watcher(event: WatchedEvent) -> None:
            if event.type != "PERSISTENT_WATCH_REMOVED":  # our own remove_watches at the end
                self.say(format_event(event))
                seen.release()

        mode = AddWatchMode.PERSISTENT_RECURSIVE if a.R else AddWatchMode.PERSISTENT
        zk.add_watch(a.path, watcher, mode)
        self.say(f"watching {a.path}{' and below' if a.R else ''} (Ctrl-C to stop)")
        got = 0
        try:
            while (not a.count or got < a.count) and zk.state != "LOST":
                if seen.acquire(timeout=0.2):
                    got += 1
        except KeyboardInterrupt:
            pass
        if zk.connected:
            zk.remove_watches(
                a.path, WatcherType.PERSISTENT_RECURSIVE if a.R else WatcherType.PERSISTENT, watcher
            )
        return 0 if zk.state != "LOST" or (a.count and got >= a.count) else 1

    def cmd_admin(self, args: list[str]) -> int:
        """A four-letter word to every server of the connect string (no session needed)."""
        if len(args) != 1 or args[0] not in admin.COMMANDS:
            raise UsageError(f"usage: {USAGE['admin']}")
        silent = 0
        for endpoint in parse_hosts(self.server).endpoints:
            answer = admin.query(endpoint, args[0], int(min(self.timeout, 5.0) * 1000))
            self.say(f"--- {endpoint} ---")
            if answer is None:
                silent += 1
                self.say("(no answer)")
            else:
                self.say(answer.rstrip("\n"))
        return 1 if silent else 0

    def cmd_connect(self, args: list[str]) -> None:
        if len(args) != 1:
            raise UsageError(f"usage: {USAGE['connect']}")
        parse_hosts(args[0])
        self.close_session()
        self.server = args[0]
        self.label = short_name(args[0])
        self.zk()

    def cmd_close(self, args: list[str]) -> None:
        self.close_session()

    def cmd_quit(self, args: list[str]) -> None:
        self.close_session()
        self.quit = True

    cmd_exit = cmd_quit

    def cmd_help(self, args: list[str]) -> None:
        self.say("ZooKeeper -server host:port cmd args")
        for usage in USAGE.values():
            self.say(f"\t{usage}")

    # --- cmd.Cmd: the interactive shell -----------------------------------------------------------

    @property
    def prompt(self) -> str:  # type: ignore[override]
        state = self.client.state if self.client is not None else "CLOSED"
        return f"[zk: {self.label}({state}) {self.count}] "

    def onecmd(self, line: str) -> bool:
        try:
            args = shlex.split(line)
        except ValueError as e:
            self.say(f"cannot parse the line: {e}")
            return False
        if args and args[0] == "EOF":
            self.say("")
            args = ["quit"]
        self.count += 1
        if args and args[0] not in ("history", "redo"):
            self.lines.append(line.strip())
        self.run(args)
        return self.quit

    def completenames(self, text: str, *ignored: Any) -> list[str]:
        return [name for name in USAGE if name.startswith(text)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m zkclient.cli", description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", "-server", help="connect string (default: ZKPY_CONNECT, else the "
                        "ensemble in --data-dir, else 127.0.0.1:2181)")  # fmt: skip
    parser.add_argument("--data-dir", help="use the ensemble the launcher runs there (default ./zkpy-data)")
    parser.add_argument("--timeout", type=float, default=10.0, help="session timeout in seconds")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="a command; none: the interactive shell")
    opts = parser.parse_args(argv)
    label = ""
    fallback = False  # no ensemble named or found: ZooKeeper's 127.0.0.1:2181 is all there is to try
    if opts.server is None:
        try:
            opts.server, label, fallback = default_hosts(opts.data_dir)
        except OSError as e:
            print(str(e), file=sys.stderr)
            return 2
    if fallback:
        reachable, hint = fallback_hint()
        if not reachable:  # a command would wait out its whole timeout for nothing
            print(hint, file=sys.stderr)
            if opts.command:
                return 1  # (the shell starts all the same: an ensemble may be started meanwhile)
    try:
        parse_hosts(opts.server)
    except LocalError as e:
        print(f"bad --server: {e}", file=sys.stderr)
        return 2
    if opts.command:
        shell = Shell(opts.server, opts.timeout, label=label, fallback=fallback)
        try:
            return shell.run(opts.command)
        except BrokenPipeError:  # `... | head`: the reader went away
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # quiet exit-time flush
            return 1
        finally:
            shell.close_session()
    shell = Shell(opts.server, opts.timeout, interactive=True, label=label, fallback=fallback)
    try:
        shell.cmdloop(
            f"Connecting to {opts.server}\n`help` lists the commands; Tab completes commands and paths"
        )
    except KeyboardInterrupt:
        pass
    finally:
        shell.close_session()
    return 0


if __name__ == "__main__":
    sys.exit(main())
