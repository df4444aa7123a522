"""The history format: JSON lines round trip, invoke/complete pairs, and errors that name the
file, the line, the value and the rule."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from checker.history import HistoryError, Kind, Op, Status, from_pairs, load, save
from tests.checker.build import UNKNOWN, cas, history, op, read, write


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    ops = history(
        write(1, "/r/0", "a", 0.0, 1.0, session=7, version=1, zxid=0x100000002),
        cas(2, "/r/0", 1, "b", 0.5, status=UNKNOWN),
        read(3, "/r/0", "a", 1.5, 2.0, version=1, mzxid=2, zxid=9, sync=True, watch=True, owner=0),
        op(Kind.READ_CHILDREN, 1, "/eph", 3.0, 4.0, children=("a", "b"), zxid=4),
        op(Kind.CREATE_SEQ, 2, "/seq/n-", 3.0, 4.0, path="/seq/n-0000000001", zxid=5),
        op(Kind.WATCH_EVENT, 3, "/r/0", 5.0, 5.0, event="NodeDataChanged"),
        op(Kind.CLOSE_SESSION, 1, "", 6.0, 7.0, session=7),
    )
    path = tmp_path / "h.jsonl"
    save(ops, path)
    assert load(path) == ops
    first = json.loads(path.read_text().splitlines()[1])
    assert first["status"] == "info" and "end" not in first  # unknown outcome: no end is written


def test_unknown_outcome_ends_at_infinity() -> None:
    assert math.isinf(write(1, "/k", "v", 1.0, 2.0, status=UNKNOWN).end)


def test_jepsen_spelling_and_null_end_are_read(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    path.write_text(
        '{"process": 1, "f": "write", "key": "/k", "value": "v", "status": "info", "start": 1, "end": null}\n\n'
    )
    (only,) = load(path)
    assert only.kind is Kind.WRITE and only.unknown and math.isinf(only.end) and only.index == 0


def test_pairs_become_completed_ops() -> None:
    ops = from_pairs(
        [
            {"process": 1, "kind": "write", "key": "/k", "value": "a", "status": "invoke", "time": 1.0},
            {"process": 2, "kind": "read", "key": "/k", "status": "invoke", "time": 1.5},
            {"process": 1, "kind": "write", "key": "/k", "status": "ok", "time": 2.0, "zxid": 5},
            {"process": 2, "kind": "read", "key": "/k", "status": "ok", "time": 3.0, "value": "a"},
            {"process": 3, "kind": "write", "key": "/k", "value": "b", "status": "invoke", "time": 4.0},
        ]
    )
    assert [(o.process, o.status, o.start, o.end) for o in ops] == [
        (1, Status.OK, 1.0, 2.0),
        (2, Status.OK, 1.5, 3.0),
        (3, Status.UNKNOWN, 4.0, math.inf),
    ]
    assert ops[0].value == "a" and ops[0].zxid == 5 and ops[1].value == "a"


def test_pairs_are_detected_in_files(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    lines = [
        {"process": 1, "kind": "write", "key": "/k", "value": "a", "status": "invoke", "time": 1.0},
        {"process": 1, "kind": "write", "key": "/k", "status": "fail", "time": 2.0},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    (only,) = load(path)
    assert only.status is Status.FAIL and only.end == 2.0


BAD_LINES = [
    ("not json", ":2: not JSON"),
    ("[1, 2]", ":2: a record must be a JSON object"),
    ('{"process": 1, "kind": "write", "status": "ok", "start": 0, "end": 1}', ":2: a write op needs 'value'"),
    ('{"process": 1, "kind": "jump", "status": "ok", "start": 0}', ":2: kind must be one of"),
    ('{"process": 1, "kind": "read", "status": "maybe", "start": 0}', ":2: status must be ok, fail or info"),
    ('{"process": "one", "kind": "read", "status": "fail", "start": 0, "end": 1}', ":2: process must be int"),
    (
        '{"process": 1, "kind": "read", "status": "ok", "start": 2, "end": 1, "value": "x"}',
        "must not end before it starts: start=2, end=1",
    ),
    ('{"process": 1, "kind": "read", "status": "ok", "start": 0, "end": 1}', "needs its result 'value'"),
    ('{"process": 1, "kind": "read", "status": "fail", "start": 0}', "status 'fail' needs an end"),
    (
        '{"process": 1, "kind": "read", "status": "fail", "start": 0, "end": 1, "colour": 1}',
        "unknown field 'colour'",
    ),
    ('{"kind": "read", "status": "fail", "start": 0, "end": 1}', "a record needs 'process'"),
    (
        '{"process": 1, "kind": "read_children", "status": "ok", "start": 0, "end": 1, "children": [1]}',
        "children",
    ),
    ('{"process": 1, "kind": "watch_event", "status": "fail", "start": 0, "end": 1}', "watch_event"),
    ('{"process": true, "kind": "read", "status": "fail", "start": 0, "end": 1}', "process must be int"),
]


@pytest.mark.parametrize("line, message", BAD_LINES)
def test_bad_records_name_file_line_and_rule(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    good = '{"process": 1, "kind": "read", "status": "fail", "start": 0, "end": 1}'
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(HistoryError, match=message) as caught:
        load(path)
    assert str(caught.value).startswith(f"{path}:")


def test_missing_file_is_a_history_error(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="cannot read"):
        load(tmp_path / "absent.jsonl")


def test_op_checks_its_types() -> None:
    with pytest.raises(HistoryError, match="kind must be Kind"):
        Op(1, "read", "/k", Status.OK, 0.0, 1.0, value="x")  # type: ignore[arg-type]
    with pytest.raises(HistoryError, match="start must be a finite"):
        Op(1, Kind.READ, "/k", Status.FAIL, math.nan, 1.0)
