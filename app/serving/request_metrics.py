"""Count and time every HTTP request, as WSGI middleware around the Flask app.

Middleware rather than Flask's before/after-request hooks: it sees every answer Flask gives
(including errors), times the whole of Flask's work, and costs a few plain calls per request
instead of two hook dispatches and context-local look-ups (see docs/BENCHMARKS.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map

from app.serving import metrics

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

# Clients may send any method token; anything else is labelled "other" to keep labels bounded.
KNOWN_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
UNMATCHED = "unmatched"


class RouteLabeller:
    """The route template of a request path, so label values stay bounded whatever clients send."""

    def __init__(self, url_map: Map) -> None:
        self._url_map = url_map
        # Paths of rules without variables label themselves: a dict look-up on the hot path.
        self._static = {rule.rule for rule in url_map.iter_rules() if not rule.arguments}

    def __call__(self, environ: WSGIEnvironment) -> str:
        path = environ.get("PATH_INFO") or "/"
        if path in self._static:
            return str(path)
        try:  # a templated rule, or nothing (404, also a wrong method on a templated path: 405)
            rule, _ = self._url_map.bind_to_environ(environ).match(return_rule=True)
        except HTTPException:
            return UNMATCHED
        return str(rule.rule)


class RequestMetrics:
    """WSGI middleware: `mlserve_http_requests_total` and `..._duration_seconds` per request."""

    def __init__(self, app: WSGIApplication, route_of: Callable[[WSGIEnvironment], str]) -> None:
        self._app = app
        self._route_of = route_of
        # Metric children per (route, method, status), resolved once: label look-ups are not free.
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        statuses: list[str] = []

        def remember_status(status: str, headers: Any, exc_info: Any = None) -> Callable[[bytes], object]:
            statuses.append(status)
            return start_response(status, headers, exc_info)

        try:
            return self._app(environ, remember_status)
        finally:
            # The answer is ready (the server sends the body next): the time Flask took for it.
            self._observe(environ, statuses[-1][:3] if statuses else "500", time.perf_counter() - started)

    def _observe(self, environ: WSGIEnvironment, status: str, seconds: float) -> None:
        method = environ.get("REQUEST_METHOD", "")
        method = method if method in KNOWN_METHODS else "other"
        key = (self._route_of(environ), method, status)
        children = self._children.get(key)
        if children is None:
            children = (
                metrics.HTTP_REQUESTS.labels(*key),
                metrics.HTTP_REQUEST_DURATION.labels(key[0], method),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)
