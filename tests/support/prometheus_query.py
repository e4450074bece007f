"""Instant queries against a running Prometheus (the e2e reaches the host's through an SSH tunnel)."""

from __future__ import annotations

import time
from typing import Any

import requests


def query(port: int, expression: str) -> list[dict[str, Any]]:
    response = requests.get(f"http://127.0.0.1:{port}/api/v1/query", params={"query": expression}, timeout=10)
    body = response.json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def wait_for_series(port: int, expression: str, timeout: float = 120) -> list[dict[str, Any]]:
    """The result of `expression` once it is not empty (Prometheus scrapes every 15 s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = query(port, expression)
        if result:
            return result
        time.sleep(3)
    raise AssertionError(f"Prometheus has no series for {expression} after {timeout} s")
