"""Fixtures of the monitoring unit tests."""

from __future__ import annotations

import pytest

from tests.support.monitoring import promtool_path


@pytest.fixture(scope="session")
def promtool() -> str:
    path: str = promtool_path()
    return path
