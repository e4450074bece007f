"""Every error as JSON with a status, a reason from a fixed vocabulary and a message.

Rejected requests are also counted per route and reason (mlserve_invalid_requests_total).
"""

from __future__ import annotations

import logging

from flask import Flask, Response, current_app, request
from werkzeug.exceptions import HTTPException

from app.serving import metrics
from app.serving.payloads import InvalidRequest
from app.serving.responses import error_response

log = logging.getLogger(__name__)

HTTP_REASONS = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


class NotReady(Exception):
    """A prediction was asked for before any model was loaded."""


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(InvalidRequest, reject)
    app.register_error_handler(NotReady, not_ready)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected)


def reject(error: InvalidRequest) -> Response:
    route_of = current_app.extensions["route_of"]
    metrics.INVALID_REQUESTS.labels(route_of(request.environ), error.reason).inc()
    return error_response(error.status, error.reason, error.message)


def not_ready(_: NotReady) -> Response:
    return error_response(503, "not_ready", "no model loaded yet; see GET /ready")


def http_error(error: HTTPException) -> Response:
    status = error.code or 500
    if status == 413:  # werkzeug refused the body: a rejected request like any invalid one
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        return reject(InvalidRequest(413, "body_too_large", f"body exceeds {limit} bytes"))
    response = error_response(status, HTTP_REASONS.get(status, "http_error"), error.description or error.name)
    if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
        response.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
    return response


def unexpected(error: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, "internal_error", "internal error; see the server log")
