"""docs/protocol-vectors.json against our codec: every frame decodes to the listed field values
and encodes back to the exact bytes, and the file is what the generator writes today."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests import protocol_vectors as pv

FILE = json.loads(pv.PATH.read_text())


def test_the_file_is_current() -> None:
    assert FILE == json.loads(json.dumps(pv.document())), "run: python -m tests.protocol_vectors"


@pytest.mark.parametrize("vector", FILE["vectors"], ids=[v["name"] for v in FILE["vectors"]])
def test_bytes_decode_to_the_fields_and_encode_back(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    names = [p["part"] for p in vector["parts"]]
    decoded = pv.decode(names, data)
    assert [pv.to_json(v) for v in decoded] == [p["value"] for p in vector["parts"]]
    assert pv.encode(list(zip(names, decoded, strict=True))) == data


def test_vectors_cover_every_client_request_kind() -> None:
    headers = [p["value"] for v in FILE["vectors"] for p in v["parts"] if p["part"] == "RequestHeader"]
    ops = {h["type"] for h in headers}
    want = {pv.OP.PING, pv.OP.AUTH, pv.OP.CREATE, pv.OP.CREATE2, pv.OP.CREATE_TTL, pv.OP.CREATE_CONTAINER,
            pv.OP.GET_DATA, pv.OP.EXISTS, pv.OP.SET_DATA, pv.OP.DELETE, pv.OP.GET_CHILDREN2, pv.OP.GET_ACL,
            pv.OP.SET_ACL, pv.OP.SYNC, pv.OP.GET_EPHEMERALS, pv.OP.ADD_WATCH, pv.OP.REMOVE_WATCHES,
            pv.OP.SET_WATCHES2, pv.OP.MULTI, pv.OP.CLOSE_SESSION}  # fmt: skip
    assert want <= ops
