"""Ops on many znodes at once, pipelined: ensure_path sends the creates of every missing ancestor
back to back (FIFO order makes each parent exist before its child's create is applied), and a
recursive delete lists a subtree level by level and deletes it deepest first. No recursion.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zkclient._future import AsyncResult
from zkcore._errors import NodeExistsError, NoNodeError
from zkcore._paths import join_path

if TYPE_CHECKING:
    from zkclient.acl import ACL
    from zkclient.client import Client


def ancestors_and_self(path: str) -> list[str]:
    """'/a/b/c' -> ['/a', '/a/b', '/a/b/c']; '/' -> []."""
    parts = [p for p in path.split("/") if p]
    return ["/" + "/".join(parts[: i + 1]) for i in range(len(parts))]


def ensure_path_async(
    client: Client, path: str, acl: list[ACL] | tuple[ACL, ...] | None
) -> AsyncResult[bool]:
    """Create path and every missing ancestor; True, or the first error other than NodeExists."""
    creates = [client.create_async(p, b"", acl) for p in ancestors_and_self(path)]
    done: AsyncResult[bool] = client._new_result()
    if not creates:
        done.set(True)
        return done

    def finish(_: AsyncResult[Any]) -> None:
        for result in creates:
            exc = result.exception
            if exc is not None and not isinstance(exc, NodeExistsError):
                done.set_exception(exc)
                return
        done.set(True)

    creates[-1].rawlink(finish)  # replies come in order: the last one completes last
    return done


def delete_recursive(client: Client, path: str) -> bool:
    """Delete path and everything below it. Nodes that vanish meanwhile are fine; a child created
    meanwhile makes its parent's delete fail with NotEmptyError."""
    order: list[str] = []
    level = [path]
    while level:
        listings = [(p, client.get_children_async(p)) for p in level]
        level = []
        for parent, listing in listings:
            try:
                children = listing.get()
            except NoNodeError:
                continue
            order.append(parent)
            level += [join_path(parent, child) for child in children]
    deletes = [client.delete_async(p) for p in reversed(order) if p != "/"]
    for result in deletes:
        try:
            result.get()
        except NoNodeError:
            pass
    return True
