"""Mutual exclusion over recorded lock holds, as a table: each case is a set of holds (and the
silences a test recorded) and the verdict; a violation names the holds involved."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from checker import Hold, Silence, check_mutual_exclusion, load_holds

A, B, C = "a", "b", "c"


def h(who: str, start: float, end: float, how: str = "released", lock: str = "", session: int = 0) -> Hold:
    return Hold(who, start, end, how, session or None, lock)


CASES: list[tuple[str, list[Hold], list[Silence], float, int, int]] = [
    # name, holds, silences, expiry_min_s, max_holders, violations expected
    ("one after another", [h(A, 0, 1), h(B, 1.5, 2), h(C, 2, 3)], [], 0, 1, 0),
    ("touching ends are fine", [h(A, 0, 1), h(B, 1, 2)], [], 0, 1, 0),
    ("overlap", [h(A, 0, 2), h(B, 1, 3)], [], 0, 1, 1),
    ("nested overlap", [h(A, 0, 5), h(B, 1, 2)], [], 0, 1, 1),
    ("three at once counts each newcomer", [h(A, 0, 5), h(B, 1, 6), h(C, 2, 7)], [], 0, 1, 2),
    ("different locks do not interfere", [h(A, 0, 2, lock="/x"), h(B, 1, 3, lock="/y")], [], 0, 1, 0),
    ("suspended hold still must not overlap", [h(A, 0, 2, "suspended"), h(B, 1, 3)], [], 0, 1, 1),
    ("lost without a silence is not excused", [h(A, 0, 5, "lost"), h(B, 3, 4)], [], 0, 1, 1),
    ("lost and silenced before the next acquire", [h(A, 0, 5, "lost"), h(B, 3, 4)], [Silence(A, 1, 4.5)], 0, 1, 0),
    ("silenced after the next acquire", [h(A, 0, 5, "lost"), h(B, 3, 4)], [Silence(A, 3.5, 4.5)], 0, 1, 1),
    ("silenced before its own hold", [h(A, 2, 5, "lost"), h(B, 3, 4)], [Silence(A, 1, 4.5)], 0, 1, 1),
    ("someone else's silence", [h(A, 0, 5, "lost"), h(B, 3, 4)], [Silence(C, 1)], 0, 1, 1),
    ("released hold is never excused", [h(A, 0, 5), h(B, 3, 4)], [Silence(A, 1)], 0, 1, 1),
    ("session expired too soon", [h(A, 0, 5, "lost"), h(B, 3, 4)], [Silence(A, 1)], 4.0, 1, 1),
    ("session expired after its timeout", [h(A, 0, 9, "lost"), h(B, 6, 7)], [Silence(A, 1)], 4.0, 1, 0),
    ("open hold blocks everyone after it", [h(A, 0, math.inf, "open"), h(B, 10, 11)], [], 0, 1, 1),
    ("semaphore of two: two at once", [h(A, 0, 2), h(B, 1, 3)], [], 0, 2, 0),
    ("semaphore of two: three at once", [h(A, 0, 3), h(B, 1, 3), h(C, 2, 3)], [], 0, 2, 1),
    ("readers share", [Hold(A, 0, 3, shared=True), Hold(B, 1, 3, shared=True)], [], 0, 1, 0),
    ("a writer among readers", [Hold(A, 0, 3, shared=True), h(B, 1, 2), Hold(C, 1.5, 3, shared=True)], [], 0, 1, 2),
    ("a reader after a writer", [h(A, 0, 3), Hold(B, 1, 3, shared=True)], [], 0, 1, 1),
]  # fmt: skip


@pytest.mark.parametrize(
    "name,holds,silences,expiry_min_s,max_holders,expected", CASES, ids=[c[0] for c in CASES]
)
def test_cases(
    name: str,
    holds: list[Hold],
    silences: list[Silence],
    expiry_min_s: float,
    max_holders: int,
    expected: int,
) -> None:
    result = check_mutual_exclusion(holds, silences, max_holders=max_holders, expiry_min_s=expiry_min_s)
    assert len(result.violations) == expected, str(result)
    assert result.ok == (expected == 0)
    assert result.ops_checked == len(holds)
    # Order of input never matters.
    again = check_mutual_exclusion(list(reversed(holds)), silences, max_holders=max_holders,
                                   expiry_min_s=expiry_min_s)  # fmt: skip
    assert len(again.violations) == expected


def test_a_violation_names_both_holds() -> None:
    result = check_mutual_exclusion([h(A, 0, 2, session=0x51), h(B, 1, 3, session=0x52)])
    text = str(result)
    assert "VIOLATION" in text
    assert "a s0x51 held the lock [0.000000, 2.000000] ended released" in text
    assert "b s0x52 held the lock" in text


def test_bad_holds_are_refused() -> None:
    with pytest.raises(ValueError, match="how must be one of"):
        Hold(A, 0, 1, "gone")
    with pytest.raises(ValueError, match="end after it starts"):
        Hold(A, 2, 1)


def test_load_holds_reads_json_lines(tmp_path: Path) -> None:
    lines = [
        {"hold": {"contender": A, "acquired": 0.0, "released": 1.0, "how": "released", "session": 5}},
        {"hold": {"contender": B, "acquired": 2.0, "released": None, "how": "open"}},
        {"silence": {"contender": A, "start": 0.5, "end": None}},
        {"note": "ignored"},
    ]
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    holds, silences = load_holds([path])
    assert holds == [Hold(A, 0.0, 1.0, "released", 5), Hold(B, 2.0, math.inf, "open")]
    assert silences == [Silence(A, 0.5, math.inf)]
