"""The lock recipes' node layout and ordering, as a table, against a fake client that only lists
children and records deletes: which node a contender waits for, which it ignores, and that its
own orphans are deleted. Matches kazoo's rules (marker, 10-digit suffix compared as text)."""

from __future__ import annotations

from typing import Any

import pytest

from zkclient.recipe import Lock, ReadLock, WriteLock
from zkclient.recipe.lock import contender_sequence
from zkclient.retry import ForceRetryError

OTHER = "0" * 32


class FakeClient:
    def __init__(self, children: list[str]) -> None:
        self.children = children
        self.deleted: list[str] = []

    def get_children(self, path: str, watch: Any = None) -> list[str]:
        return list(self.children)

    def delete(self, path: str, version: int = -1) -> bool:
        self.deleted.append(path)
        return True


MINE = "{mine}"  # stands for this contender's uuid prefix + marker

CASES: list[tuple[str, type[Lock], list[str], str, str | None]] = [
    # name, recipe, children (MINE is ours), our node, the predecessor expected
    ("first holds", Lock, [f"{MINE}0000000001"], f"{MINE}0000000001", None),
    ("nearest before us", Lock, ["a__lock__0000000001", "b__lock__0000000002", f"{MINE}0000000003", "c__lock__0000000004"], f"{MINE}0000000003", "b__lock__0000000002"),
    ("order by sequence, not by name", Lock, ["z__lock__0000000001", "a__lock__0000000004", f"{MINE}0000000005"], f"{MINE}0000000005", "a__lock__0000000004"),
    ("a Lock ignores readers", Lock, ["r__rlock__0000000001", f"{MINE}0000000002"], f"{MINE}0000000002", None),
    ("a WriteLock waits for readers", WriteLock, ["r__rlock__0000000001", f"{MINE}0000000002"], f"{MINE}0000000002", "r__rlock__0000000001"),
    ("a ReadLock waits for writers only", ReadLock, ["w__lock__0000000001", "r__rlock__0000000002", f"{MINE}0000000003"], f"{MINE}0000000003", "w__lock__0000000001"),
    ("readers share", ReadLock, ["r__rlock__0000000001", f"{MINE}0000000002"], f"{MINE}0000000002", None),
    ("other children are not contenders", Lock, ["leases", "x__lock__12", f"{MINE}0000000002"], f"{MINE}0000000002", None),
    ("text order, as kazoo: a wrapped negative sequence sorts first", Lock, ["n__lock__-2147483648", f"{MINE}0000000005"], f"{MINE}0000000005", "n__lock__-2147483648"),
]  # fmt: skip


@pytest.mark.parametrize("name,recipe,children,node,expected", CASES, ids=[c[0] for c in CASES])
def test_predecessor(
    name: str, recipe: type[Lock], children: list[str], node: str, expected: str | None
) -> None:
    client = FakeClient([])
    lock = recipe(client, "/l")  # type: ignore[arg-type]
    client.children = [c.replace(MINE, lock.prefix) for c in children]
    assert lock._get_predecessor(node.replace(MINE, lock.prefix)) == expected
    assert client.deleted == []


def test_our_orphans_are_deleted_and_never_waited_for() -> None:
    client = FakeClient([])
    lock = Lock(client, "/l")  # type: ignore[arg-type]
    orphan, ours = lock.prefix + "0000000001", lock.prefix + "0000000003"
    client.children = [orphan, "b__lock__0000000002", ours]
    assert lock._get_predecessor(ours) == "b__lock__0000000002"
    assert client.deleted == ["/l/" + orphan]


def test_our_node_gone_starts_over() -> None:
    client = FakeClient(["b__lock__0000000002"])
    lock = Lock(client, "/l")  # type: ignore[arg-type]
    with pytest.raises(ForceRetryError):
        lock._get_predecessor(lock.prefix + "0000000003")


def test_names_and_sequences() -> None:
    lock, read = Lock(FakeClient([]), "/l"), ReadLock(FakeClient([]), "/l")  # type: ignore[arg-type]
    assert len(lock.prefix) == 32 + len("__lock__") and lock.prefix.endswith("__lock__")
    assert read.prefix.endswith("__rlock__") and read.create_path == "/l/" + read.prefix
    assert contender_sequence(OTHER + "__lock__0000000042") == "0000000042"
    assert contender_sequence(OTHER + "__rlock__0000000042") == "0000000042"
    assert contender_sequence(OTHER + "__party__") is None
    with pytest.raises(ValueError):
        Lock(FakeClient([]), "relative")  # type: ignore[arg-type]
