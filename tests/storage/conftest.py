"""Fixtures for the storage tests: each log test runs once over the C build and once over the
Python twin of native's log functions."""

from __future__ import annotations

from types import ModuleType

import pytest

from native import _pylog

try:
    from native import _clog
except ImportError:  # the C extension is not built: the twin still gets tested
    _clog = None  # type: ignore[assignment]

CODECS = [
    pytest.param(_pylog, id="python"),
    pytest.param(_clog, id="native", marks=pytest.mark.skipif(_clog is None, reason="not built")),
]


@pytest.fixture(params=CODECS)
def codec(request: pytest.FixtureRequest) -> ModuleType:
    return request.param  # type: ignore[no-any-return]
