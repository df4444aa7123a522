"""ACLs for the client: zkcore's ACL and Id records, kazoo's helpers to build them, and zkCli's
text form (`scheme:id:perms`, comma separated, e.g. `world:anyone:cdrwa,digest:bob:xyz=:r`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from zkcore._acl import digest_id
from zkcore._errors import InvalidACLError
from zkcore._records import ACL, CREATOR_ALL_ACL, OPEN_ACL_UNSAFE, READ_ACL_UNSAFE, Id, Perms

__all__ = [
    "ACL",
    "CREATOR_ALL_ACL",
    "Id",
    "OPEN_ACL_UNSAFE",
    "Permissions",
    "READ_ACL_UNSAFE",
    "format_acl",
    "format_perms",
    "make_acl",
    "make_digest_acl",
    "make_digest_acl_credential",
    "parse_acl",
    "parse_perms",
]

Permissions = Perms
ANYONE_ID_UNSAFE = Id("world", "anyone")
AUTH_IDS = Id("auth", "")

# zkCli's letters, in the order it prints them.
_PERM_LETTERS = (
    ("c", Perms.CREATE),
    ("d", Perms.DELETE),
    ("r", Perms.READ),
    ("w", Perms.WRITE),
    ("a", Perms.ADMIN),
)


def make_acl(
    scheme: str,
    credential: str,
    read: bool = False,
    write: bool = False,
    create: bool = False,
    delete: bool = False,
    admin: bool = False,
    all: bool = False,  # noqa: A002 - kazoo's keyword
) -> ACL:
    """One ACL entry from a scheme, an id and permission flags (kazoo's make_acl)."""
    if all:
        perms = int(Perms.ALL)
    else:
        perms = 0
        for flag, bit in ((read, Perms.READ), (write, Perms.WRITE), (create, Perms.CREATE),
                          (delete, Perms.DELETE), (admin, Perms.ADMIN)):  # fmt: skip
            if flag:
                perms |= bit
    return ACL(perms, Id(scheme, credential))


def make_digest_acl_credential(username: str, password: str) -> str:
    """`user:base64(sha1(user:password))`, the id a digest ACL names."""
    return digest_id(username, password)


def make_digest_acl(
    username: str,
    password: str,
    read: bool = False,
    write: bool = False,
    create: bool = False,
    delete: bool = False,
    admin: bool = False,
    all: bool = False,  # noqa: A002 - kazoo's keyword
) -> ACL:
    """A digest ACL entry for user and password (the server only ever sees the hash)."""
    cred = make_digest_acl_credential(username, password)
    return make_acl(
        "digest", cred, read=read, write=write, create=create, delete=delete, admin=admin, all=all
    )


def parse_perms(text: str) -> int:
    """zkCli's permission letters (`cdrwa`, any order, any subset) as bits."""
    perms = 0
    letters = dict(_PERM_LETTERS)
    for ch in text:
        bit = letters.get(ch.lower())
        if bit is None:
            raise InvalidACLError(f"permission letters must be among 'cdrwa', got {text!r}")
        perms |= bit
    if not perms:
        raise InvalidACLError(f"an ACL entry needs at least one permission, got {text!r}")
    return perms


def format_perms(perms: int) -> str:
    return "".join(letter for letter, bit in _PERM_LETTERS if perms & bit)


def parse_acl(text: str) -> list[ACL]:
    """zkCli's ACL text: entries `scheme:id:perms` separated by commas. The id may itself hold
    colons (digest `user:hash`, ipv6), so the scheme ends at the first colon and the perms start
    after the last one: `world:anyone:cdrwa,digest:bob:xyz=:r,ip:10.0.0.0/8:r,auth::cdrwa`."""
    entries: list[ACL] = []
    for raw in text.split(","):
        entry = raw.strip()
        scheme, sep1, rest = entry.partition(":")
        ident, sep2, perms = rest.rpartition(":")
        if not sep1 or not sep2 or not scheme:
            raise InvalidACLError(f"ACL entries are 'scheme:id:perms', got {entry!r}")
        entries.append(ACL(parse_perms(perms), Id(scheme, ident)))
    return entries


def format_acl(acl: Iterable[ACL]) -> str:
    """The inverse of parse_acl."""
    return ",".join(f"{a.id.scheme}:{a.id.id}:{format_perms(a.perms)}" for a in acl)


def check_acl_list(acl: Sequence[ACL] | None) -> tuple[ACL, ...]:
    """An ACL argument as a tuple of ACL records; None means OPEN_ACL_UNSAFE."""
    if acl is None:
        return OPEN_ACL_UNSAFE
    if isinstance(acl, ACL):
        raise TypeError("acl must be a list of ACL entries, not a single ACL")
    out = tuple(acl)
    for entry in out:
        if not isinstance(entry, ACL):
            raise TypeError(f"acl entries must be ACL records, got {type(entry).__name__}")
    return out
