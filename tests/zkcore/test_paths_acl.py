"""Path rules and ACL checks, as tables."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zkcore import _acl
from zkcore._errors import BadArgumentsError, InvalidACLError, NoAuthError
from zkcore._paths import _rule_broken, path_problem, split_path, validate_path
from zkcore._records import ACL, OPEN_ACL_UNSAFE, Id, Perms

VALID = ["/", "/a", "/a/b", "/a.b", "/..a", "/a..", "/zookeeper", "/a/b-0000000001", "/ü/é", "/" + "ü" * 2000]
INVALID = [
    ("", "must not be empty"),
    ("a", "must start with '/'"),
    ("/a/", "must not end with '/'"),
    ("//a", "empty component"),
    ("/a//b", "empty component"),
    ("/.", "relative component"),
    ("/a/..", "relative component"),
    ("/a/./b", "relative component"),
    ("/a\0b", "null character"),
    ("/a\x01", "forbidden character"),
    ("/a\x7f", "forbidden character"),
    ("/a\ud800", "forbidden character"),
    ("/a\ufff5", "forbidden character"),
    ("/" + "x" * 5000, "path_bytes_max"),
    ("/" + "\U0001f600" * 1100, "path_bytes_max"),  # 1,101 characters, 4,401 bytes
]


@pytest.mark.parametrize("path", VALID)
def test_valid_paths(path: str) -> None:
    assert path_problem(path) is None
    assert validate_path(path) == path


@pytest.mark.parametrize("path, reason", INVALID)
def test_invalid_paths_name_the_rule(path: str, reason: str) -> None:
    with pytest.raises(BadArgumentsError, match=reason):
        validate_path(path)


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(["/", "a", ".", "..", "\0", "\x1f", "\x7f", "\x9f", "\xa0", "\ud800",
                                 "\uf8ff", "\uf900", "\ufff0", "ü", "x" * 700, "\U0001f600" * 300]), max_size=8))  # fmt: skip
def test_the_one_match_fast_path_agrees_with_the_rules(parts: list[str]) -> None:
    path = "".join(parts)
    assert path_problem(path) == _rule_broken(path)


def test_non_string_path() -> None:
    with pytest.raises(BadArgumentsError, match="must be a str"):
        validate_path(b"/a")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "path, parent, name", [("/a", "/", "a"), ("/a/b", "/a", "b"), ("/a/b/c", "/a/b", "c")]
)
def test_split_path(path: str, parent: str, name: str) -> None:
    assert split_path(path) == (parent, name)


def test_root_has_no_parent() -> None:
    with pytest.raises(BadArgumentsError, match="no parent"):
        split_path("/")


def test_digest_id_matches_zookeeper() -> None:
    # DigestAuthenticationProvider.generateDigest("super:test") from ZooKeeper's docs.
    assert _acl.digest_id("super", "test") == "super:D/InIHSb7yEEbrWz8b9l71RjZJU="


ALICE = Id("digest", _acl.digest_id("alice", "pw"))
BOB = Id("digest", _acl.digest_id("bob", "pw"))


@pytest.mark.parametrize(
    "acl, perm, ids, allowed",
    [
        (OPEN_ACL_UNSAFE, Perms.DELETE, (), True),
        ((ACL(Perms.READ, Id("world", "anyone")),), Perms.WRITE, (), False),
        ((ACL(Perms.ALL, ALICE),), Perms.WRITE, (ALICE,), True),
        ((ACL(Perms.ALL, ALICE),), Perms.WRITE, (BOB,), False),
        ((ACL(Perms.READ, ALICE),), Perms.ADMIN, (ALICE,), False),
        ((ACL(Perms.ALL, ALICE),), Perms.ADMIN, (Id("super", "x"),), True),
        ((ACL(Perms.ALL, Id("ip", "10.0.0.0/8")),), Perms.READ, (Id("ip", "10.1.2.3"),), True),
        ((ACL(Perms.ALL, Id("ip", "10.0.0.0/8")),), Perms.READ, (Id("ip", "11.1.2.3"),), False),
        ((ACL(Perms.ALL, Id("ip", "127.0.0.1")),), Perms.READ, (Id("ip", "127.0.0.1"),), True),
        ((ACL(Perms.ALL, Id("ip", "::1")),), Perms.READ, (Id("ip", "127.0.0.1"),), False),
        ((), Perms.ALL, (), True),
    ],
)
def test_allows(acl: tuple[ACL, ...], perm: int, ids: tuple[Id, ...], allowed: bool) -> None:
    assert _acl.allows(acl, perm, ids) is allowed
    if not allowed:
        with pytest.raises(NoAuthError, match="not authorised"):
            _acl.check_acl(acl, perm, ids, "/x")


@pytest.mark.parametrize(
    "acl, ids, reason",
    [
        ((), (), "must not be empty"),
        ((ACL(0, Id("world", "anyone")),), (), "perms must be in 1..31"),
        ((ACL(64, Id("world", "anyone")),), (), "perms must be in 1..31"),
        ((ACL(1, Id("world", "someone")),), (), "only has the id 'anyone'"),
        ((ACL(1, Id("auth", "")),), (), "needs an authenticated session"),
        ((ACL(1, Id("digest", "nocolon")),), (), "digest ids are"),
        ((ACL(1, Id("ip", "not-an-ip")),), (), "ip ids are"),
        ((ACL(1, Id("kerberos", "x")),), (), "unknown ACL scheme"),
    ],
)
def test_fixup_rejects_bad_acls(acl: tuple[ACL, ...], ids: tuple[Id, ...], reason: str) -> None:
    with pytest.raises(InvalidACLError, match=reason):
        _acl.fixup_acl("/x", ids, acl)


def test_fixup_expands_auth_and_dedups() -> None:
    acl = (ACL(Perms.ALL, Id("auth", "")), ACL(Perms.ALL, ALICE), ACL(Perms.READ, Id("world", "anyone")))
    out = _acl.fixup_acl("/x", (ALICE, Id("ip", "127.0.0.1")), acl)
    assert out == (ACL(Perms.ALL, ALICE), ACL(Perms.READ, Id("world", "anyone")))


def test_auth_identity() -> None:
    assert _acl.auth_identity("digest", b"alice:pw") == ALICE
    with pytest.raises(InvalidACLError, match="user:password"):
        _acl.auth_identity("digest", b"alice")
    with pytest.raises(InvalidACLError, match="not supported"):
        _acl.auth_identity("sasl", b"x")
