"""ACLs: the schemes world, auth, digest and ip, the five permission bits, and the checks
ZooKeeper makes when a node's ACL is set (fixup) and when an op touches a node (check).
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from collections.abc import Sequence

from zkcore import limits
from zkcore._errors import InvalidACLError, NoAuthError
from zkcore._records import ACL, ClientInfo, Id, Perms

SCHEMES = ("world", "auth", "digest", "ip", "super")
_ALL = int(Perms.ALL)
_DIGEST_HASH = re.compile(":.*")  # from a digest id's first colon to the end of its line


def digest_id(user: str, password: str) -> str:
    """`user:base64(sha1(user:password))`, the id a digest ACL names."""
    raw = hashlib.sha1(f"{user}:{password}".encode()).digest()
    return f"{user}:{base64.b64encode(raw).decode('ascii')}"


def auth_identity(scheme: str, credential: bytes) -> Id:
    """The identity that addAuth(scheme, credential) adds to a session; raises on bad input."""
    if scheme == "digest":
        text = credential.decode("utf-8", "replace")
        user, sep, password = text.partition(":")
        if not sep or not user:
            raise InvalidACLError(f"digest credential must be 'user:password', got {text!r}")
        return Id("digest", digest_id(user, password))
    raise InvalidACLError(f"auth scheme {scheme!r} is not supported (use 'digest')")


def ip_identity(address: str | None) -> tuple[Id, ...]:
    """The identity a connection from `address` holds from its first frame, as ZooKeeper gives
    every connection one: ip:<address>, for ACLs of the ip scheme (an IPv4 address mapped into
    IPv6, as a dual-stack socket reports it, as the IPv4 one). None or what is not an IP
    address (a shell that cannot tell) gives none."""
    if not address:
        return ()
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return ()
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (Id("ip", str(ip)),)


def client_infos(auth_ids: Sequence[Id]) -> tuple[ClientInfo, ...]:
    """whoAmI's answer: each identity of a connection, its scheme and its user as ZooKeeper
    names them (a digest id, `user:hash`, by its user; an ip id by its address)."""
    return tuple(
        ClientInfo(i.scheme, i.id.partition(":")[0] if i.scheme == "digest" else i.id) for i in auth_ids
    )


def _ip_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def _id_problem(ident: Id) -> str | None:
    if ident.scheme == "world":
        return None if ident.id == "anyone" else "the world scheme only has the id 'anyone'"
    if ident.scheme == "digest":
        user, sep, digest = ident.id.partition(":")
        return None if sep and user and digest else "digest ids are 'user:base64(sha1(user:password))'"
    if ident.scheme == "ip":
        return None if _ip_network(ident.id) is not None else "ip ids are an address or address/bits"
    return f"unknown ACL scheme {ident.scheme!r} (world, auth, digest, ip)"


def fixup_acl(path: str, auth_ids: Sequence[Id], acl: Sequence[ACL]) -> tuple[ACL, ...]:
    """Validate an ACL list being set on `path` and expand 'auth' entries to the caller's ids."""
    if not acl:
        raise InvalidACLError(f"ACL list for {path!r} must not be empty", path)
    if len(acl) > limits.acl_entries_max:
        raise InvalidACLError(
            f"ACL list for {path!r} has {len(acl)} entries, over acl_entries_max={limits.acl_entries_max}",
            path,
        )
    if len(acl) == 1:  # most creates: one world:anyone entry (OPEN_ACL_UNSAFE, READ_ACL_UNSAFE)
        entry = acl[0]
        if entry.id.scheme == "world" and entry.id.id == "anyone" and 0 < entry.perms <= _ALL:
            return (entry,)
    out: list[ACL] = []
    for entry in acl:
        if entry.perms & ~_ALL or entry.perms == 0:
            raise InvalidACLError(f"ACL perms must be in 1..31, got {entry.perms} for {path!r}", path)
        if entry.id.scheme == "auth":
            expanded = [ACL(entry.perms, i) for i in auth_ids if i.scheme not in ("ip", "super")]
            if not expanded:
                raise InvalidACLError(
                    f"'auth' ACL on {path!r} needs an authenticated session (addAuth first)", path
                )
            out.extend(expanded)
            continue
        problem = _id_problem(entry.id)
        if problem is not None:
            raise InvalidACLError(f"bad ACL id {entry.id.scheme}:{entry.id.id} on {path!r}: {problem}", path)
        out.append(entry)
    return tuple(dict.fromkeys(out))  # without duplicates, in order


def _matches(ident: Id, acl_id: Id) -> bool:
    if ident.scheme != acl_id.scheme:
        return False
    if ident.scheme == "ip":
        net, addr = _ip_network(acl_id.id), _ip_network(ident.id)
        return net is not None and addr is not None and addr.version == net.version and addr.subnet_of(net)  # type: ignore[arg-type]
    return ident.id == acl_id.id


def allows(acl: Sequence[ACL], perm: int, auth_ids: Sequence[Id]) -> bool:
    """Whether a caller holding `auth_ids` may do `perm` on a node with `acl`."""
    if not acl:
        return True
    perm = int(perm)  # `int & Perms` would run enum's Python-level __and__ for every entry
    for ident in auth_ids:  # loops, not any(): this runs for every write and slow-path read
        if ident.scheme == "super":
            return True
    for entry in acl:
        if not int(entry.perms) & perm:  # entry.perms may be a Perms (OPEN_ACL_UNSAFE's is)
            continue
        acl_id = entry.id
        if acl_id.scheme == "world" and acl_id.id == "anyone":
            return True
        for ident in auth_ids:
            if _matches(ident, acl_id):
                return True
    return False


def check_acl(acl: Sequence[ACL], perm: int, auth_ids: Sequence[Id], path: str) -> None:
    if not allows(acl, perm, auth_ids):
        raise NoAuthError(f"not authorised for {Perms(perm).name} on {path!r}", path)


def without_digest_hashes(acl: tuple[ACL, ...]) -> tuple[ACL, ...]:
    """`acl` with each digest id's hash replaced by `x` (`bob:x`): what getACL shows a caller
    without ADMIN on the node, so that a world-readable node does not hand out the hash to
    guess passwords against. An id without a colon stays as it is."""
    return tuple(
        ACL(entry.perms, Id("digest", _DIGEST_HASH.sub(":x", entry.id.id)))
        if entry.id.scheme == "digest"
        else entry
        for entry in acl
    )


def world_readable(acl: Sequence[ACL]) -> bool:
    """True when anyone may read: the native read path may answer without auth ids."""
    return allows(acl, Perms.READ, ())
