"""Group membership (kazoo's Party and ShallowParty): each member is an ephemeral child of the
party's node, so a member that dies or loses its session leaves by itself.

Layout (kazoo's): Party members are `<path>/<uuid4 hex>__party__` holding the identifier;
ShallowParty members are `<path>/<uuid4 hex>-<identifier>` with no data, so listing the party is
one getChildren.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

from zkclient.exceptions import NodeExistsError, NoNodeError

if TYPE_CHECKING:
    from zkclient.client import Client

__all__ = ["Party", "ShallowParty"]


class _BaseParty:
    node: str

    def __init__(self, client: Client, path: str, identifier: str | None = None) -> None:
        self.client = client
        self.path = path
        self.data = str(identifier or "").encode("utf-8")
        self.ensured_path = False
        self.participating = False

    @property
    def create_path(self) -> str:
        return self.path + "/" + self.node

    def _ensure_parent(self) -> None:
        if not self.ensured_path:
            self.client.ensure_path(self.path)
            self.ensured_path = True

    def join(self) -> None:
        """Join (idempotent: a join retried after a lost reply finds its node)."""
        self.client.retry(self._inner_join)

    def _inner_join(self) -> None:
        self._ensure_parent()
        try:
            self.client.create(self.create_path, self.data, ephemeral=True)
        except NodeExistsError:
            pass  # ours, from a try whose reply was lost
        self.participating = True

    def leave(self) -> bool:
        """Leave; False if this member was not in the party."""
        self.participating = False
        return self.client.retry(self._inner_leave)

    def _inner_leave(self) -> bool:
        try:
            self.client.delete(self.create_path)
        except NoNodeError:
            return False
        return True

    def __len__(self) -> int:
        self._ensure_parent()
        return len(self._get_children())

    def _get_children(self) -> list[str]:
        children: list[str] = self.client.retry(self.client.get_children, self.path)
        return children


class Party(_BaseParty):
    """zk.Party("/app/workers", "host-1"): join(), leave(), len(party), list(party) gives every
    member's identifier."""

    _NODE_NAME = "__party__"

    def __init__(self, client: Client, path: str, identifier: str | None = None) -> None:
        super().__init__(client, path, identifier)
        self.node = uuid.uuid4().hex + self._NODE_NAME

    def __iter__(self) -> Iterator[str]:
        self._ensure_parent()
        for child in self._get_children():
            try:
                data, _stat = self.client.retry(self.client.get, self.path + "/" + child)
            except NoNodeError:
                continue  # left meanwhile
            yield data.decode("utf-8")

    def _get_children(self) -> list[str]:
        return [c for c in super()._get_children() if self._NODE_NAME in c]


class ShallowParty(_BaseParty):
    """Like Party, with the identifier in the node's name (it must be valid in a znode name):
    listing the members is one request."""

    def __init__(self, client: Client, path: str, identifier: str | None = None) -> None:
        super().__init__(client, path, identifier)
        self.node = "-".join([uuid.uuid4().hex, self.data.decode("utf-8")])

    def __iter__(self) -> Iterator[str]:
        self._ensure_parent()
        for child in self._get_children():
            yield child[child.find("-") + 1 :]
