"""Request metrics middleware: bounded route labels and one count per answer, errors included."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from prometheus_client import REGISTRY
from werkzeug.test import EnvironBuilder

from app.serving.request_metrics import RequestMetrics, RouteLabeller


def make_app() -> Flask:
    app = Flask(__name__)

    @app.get("/static-route")
    def static_route() -> str:
        return "ok"

    @app.get("/items/<int:item>")
    def item(item: int) -> str:
        return str(item)

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("boom")

    app.wsgi_app = RequestMetrics(app.wsgi_app, RouteLabeller(app.url_map))  # type: ignore[method-assign]
    return app


@pytest.mark.parametrize(
    ("method", "path", "label"),
    [
        ("GET", "/static-route", "/static-route"),
        ("POST", "/static-route", "/static-route"),  # wrong method on a known path: still the route
        ("GET", "/items/42", "/items/<int:item>"),
        ("GET", "/items/not-a-number", "unmatched"),
        ("GET", "/nowhere/../etc/passwd", "unmatched"),
        ("GET", "/", "unmatched"),
    ],
)
def test_route_label_is_the_template_or_unmatched(method: str, path: str, label: str) -> None:
    labeller = RouteLabeller(make_app().url_map)
    environ = EnvironBuilder(method=method, path=path).get_environ()
    assert labeller(environ) == label


def count(endpoint: str, method: str, status: str) -> float:
    value = REGISTRY.get_sample_value(
        "mlserve_http_requests_total", {"endpoint": endpoint, "method": method, "status": status}
    )
    return value or 0.0


def duration_count(endpoint: str, method: str) -> float:
    labels = {"endpoint": endpoint, "method": method}
    return REGISTRY.get_sample_value("mlserve_http_request_duration_seconds_count", labels) or 0.0


@pytest.mark.parametrize(
    ("method", "path", "endpoint", "status"),
    [
        ("GET", "/static-route", "/static-route", "200"),
        ("GET", "/items/7", "/items/<int:item>", "200"),
        ("DELETE", "/static-route", "/static-route", "405"),
        ("GET", "/missing", "unmatched", "404"),
        ("GET", "/boom", "/boom", "500"),
        ("BREW", "/static-route", "/static-route", "405"),
    ],
)
def test_every_answer_is_counted_and_timed(method: str, path: str, endpoint: str, status: str) -> None:
    client: Any = make_app().test_client()
    label = method if method != "BREW" else "other"  # unknown methods must not grow the label set
    before, before_timed = count(endpoint, label, status), duration_count(endpoint, label)
    response = client.open(path, method=method)
    assert response.status_code == int(status)
    assert count(endpoint, label, status) == before + 1
    assert duration_count(endpoint, label) == before_timed + 1
