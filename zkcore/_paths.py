"""ZooKeeper's rules for znode paths: absolute, no empty, '.' or '..' components, no trailing
slash, no control or reserved characters; and the parent/child split every op needs.
"""

from __future__ import annotations

import re

from zkcore import limits
from zkcore._errors import BadArgumentsError

# Every path the rules below accept, but the root and the over-long, in one match: components of
# allowed characters, none of them '.' or '..'. Each create is checked, so this is the hot case.
_PLAIN_PATH = re.compile(r"(?:/(?!\.\.?(?:/|\Z))[^/\x00-\x1f\x7f-\x9f\ud800-\uf8ff\ufff0-\uffff]+)+\Z")


def _bad_char(c: str) -> bool:
    o = ord(c)
    return 0 < o <= 0x1F or 0x7F <= o <= 0x9F or 0xD800 <= o <= 0xF8FF or 0xFFF0 <= o <= 0xFFFF


def path_problem(path: str) -> str | None:
    """Why `path` is not a valid znode path, or None when it is."""
    if (
        type(path) is str
        and _PLAIN_PATH.match(path) is not None
        and (4 * len(path) <= limits.path_bytes_max or len(path.encode()) <= limits.path_bytes_max)
    ):
        return None
    return _rule_broken(path)


def _rule_broken(path: str) -> str | None:
    """path_problem, rule by rule: the first rule `path` breaks, in words."""
    if not isinstance(path, str):
        return f"path must be a str, got {type(path).__name__}"
    if not path:
        return "path must not be empty"
    if path[0] != "/":
        return f"path must start with '/': {path!r}"
    if len(path.encode("utf-8", "surrogatepass")) > limits.path_bytes_max:
        return f"path is longer than path_bytes_max={limits.path_bytes_max} bytes"
    if path == "/":
        return None
    if path[-1] == "/":
        return f"path must not end with '/': {path!r}"
    for i, name in enumerate(path[1:].split("/")):
        if not name:
            return f"path has an empty component (//): {path!r}"
        if name in (".", ".."):
            return f"path has a relative component {name!r}: {path!r}"
        if "\0" in name:
            return f"path has a null character in component {i + 1}: {path!r}"
        if any(_bad_char(c) for c in name):
            return f"path has a forbidden character in component {i + 1}: {path!r}"
    return None


def validate_path(path: str) -> str:
    """Return `path` when valid, else raise BadArgumentsError naming the rule it breaks."""
    problem = path_problem(path)
    if problem is not None:
        raise BadArgumentsError(problem, path if isinstance(path, str) else None)
    return path


def split_path(path: str) -> tuple[str, str]:
    """('/a/b', 'c') for '/a/b/c'; ('/', 'a') for '/a'. The root has no parent."""
    cut = path.rfind("/")
    if cut < 0 or path == "/":
        raise BadArgumentsError(f"path has no parent: {path!r}", path)
    return (path[:cut] or "/"), path[cut + 1 :]


def parent_of(path: str) -> str:
    return split_path(path)[0]


def join_path(parent: str, name: str) -> str:
    return parent + name if parent == "/" else parent + "/" + name
