"""The API's routes, as one Blueprint: predictions, health, metrics, the OpenAPI document, the page.

Each request reads the settings and the model holder that create_app put in `app.extensions`,
once, and then the current model once: a model swapped mid-request is not seen half-way.
"""

from __future__ import annotations

import secrets
from importlib.metadata import version
from typing import Any

import numpy as np
from flask import Blueprint, Response, current_app, render_template, request
from numpy.typing import NDArray
from prometheus_client import CONTENT_TYPE_LATEST

from app.model.iris import CLASS_NAMES, FEATURE_NAMES
from app.serving.csv_payloads import CSV_MEDIA_TYPE, parse_csv_body
from app.serving.errors import NotReady
from app.serving.metrics_exposition import exposition
from app.serving.model_holder import ModelHolder, ServedModel
from app.serving.openapi import build_spec
from app.serving.page_policy import page_headers
from app.serving.payloads import (
    InvalidRequest,
    media_type,
    parse_invocations,
    parse_json,
    parse_json_body,
    parse_predict,
    to_matrix,
)
from app.serving.responses import error_response, json_response
from config.app_settings import ApiSettings

bp = Blueprint("api", __name__)


def serving_state() -> tuple[ApiSettings, ModelHolder]:
    extensions = current_app.extensions
    return extensions["api_settings"], extensions["model_holder"]


def current_model(holder: ModelHolder) -> ServedModel:
    served = holder.current
    if served is None:
        raise NotReady
    return served


def too_large(max_body_bytes: int) -> InvalidRequest:
    return InvalidRequest(413, "body_too_large", f"body exceeds {max_body_bytes} bytes")


def read_up_to(stream: Any, limit: int) -> bytes:
    """At most `limit` bytes of `stream`, fewer only at its end (a read may return less)."""
    chunks, size = [], 0
    while size < limit:
        chunk = stream.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def read_body(max_body_bytes: int) -> bytes:
    """The request body; 413 when it is larger than the limit, declared or sent in chunks."""
    environ = request.environ
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH", "")
    if length.isdigit():
        if int(length) > max_body_bytes:
            raise too_large(max_body_bytes)
        # Straight from the server's stream: on this hot path werkzeug's wrappers cost more than
        # the read itself.
        return bytes(stream.read(int(length)))
    # No declared length (chunked): one byte past the limit tells a body that is too large,
    # without reading the rest of it.
    body = read_up_to(stream, max_body_bytes + 1)
    if len(body) > max_body_bytes:
        raise too_large(max_body_bytes)
    return body


def body_and_model() -> tuple[bytes, str | None, ServedModel, int]:
    """The body and its Content-Type, the model to answer with, and the rows allowed per request.

    The body comes first: a malformed request is rejected as such even before a model is loaded.
    """
    settings, holder = serving_state()
    body = read_body(settings.max_body_bytes)
    return body, request.environ.get("CONTENT_TYPE"), current_model(holder), settings.max_batch_rows


@bp.post("/predict")
def predict() -> Response:
    body, content_type, served, max_rows = body_and_model()
    fast = served.model.fast
    parsed = parse_predict(parse_json_body(body, content_type), len(fast.feature_names), max_rows)
    names = fast.class_names
    if not parsed.batch:  # the common request: one row, plain floats end to end
        index, probabilities = fast.predict_row(parsed.rows[0])
        served.recorder.record_one(parsed.rows[0], index, probabilities[index])
        return json_response(
            {
                "prediction": names[index],
                "probabilities": dict(zip(names, probabilities, strict=True)),
                "model": served.info,
            }
        )
    matrix = to_matrix(parsed.rows)
    indices, probability_matrix = fast.predict_indices(matrix)
    classes, rows = indices.tolist(), probability_matrix.tolist()
    served.recorder.record(matrix, classes, [row[i] for row, i in zip(rows, classes, strict=True)])
    results = [
        {"prediction": names[i], "probabilities": dict(zip(names, row, strict=True))}
        for i, row in zip(classes, rows, strict=True)
    ]
    return json_response({"predictions": results, "model": served.info})


def invocation_rows(
    body: bytes, content_type: str | None, feature_names: tuple[str, ...], max_rows: int
) -> NDArray[np.float32]:
    """JSON in any of MLflow's input forms, or CSV like `mlflow models serve` takes."""
    mime = media_type(content_type)
    if mime == CSV_MEDIA_TYPE:
        return parse_csv_body(body, content_type, feature_names, max_rows)
    if mime != "application/json":
        raise InvalidRequest(
            415,
            "unsupported_media_type",
            f"Content-Type must be application/json or text/csv, got {mime or 'none'!r}",
        )
    return parse_invocations(parse_json(body), feature_names, max_rows)


@bp.post("/invocations")
def invocations() -> Response:
    body, content_type, served, max_rows = body_and_model()
    fast = served.model.fast
    rows = invocation_rows(body, content_type, fast.feature_names, max_rows)
    indices, probabilities = fast.predict_indices(rows)
    classes = indices.tolist()
    served.recorder.record(rows, classes, probabilities.max(axis=1).tolist())
    return json_response({"predictions": [fast.class_names[i] for i in classes]})


@bp.get("/health")
def health() -> Response:
    return json_response({"status": "alive"})


@bp.get("/ready")
@bp.get("/ping")  # the readiness route MLflow's scoring server and its clients poll
def ready() -> Response:
    _, holder = serving_state()
    served = holder.current
    if served is None:
        return error_response(503, "not_ready", "no model loaded yet")
    return json_response({"status": "ready", "model": served.info})


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    # content_type, not mimetype: the constant already names its charset, which Flask would add again.
    return Response(exposition(), content_type=CONTENT_TYPE_LATEST)


@bp.get("/version")
def project_version() -> Response:
    """The server's version as plain text, like MLflow's scoring server answers (it gives MLflow's)."""
    return Response(version("mlops-platform"), mimetype="text/plain")


def model_names(holder: ModelHolder) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Feature and class names of the served model; the Iris names before one is loaded."""
    served = holder.current
    if served is None:
        return FEATURE_NAMES, CLASS_NAMES
    return served.model.fast.feature_names, served.model.fast.class_names


@bp.get("/openapi.json")
def openapi() -> Response:
    settings, holder = serving_state()
    features, classes = model_names(holder)
    return json_response(build_spec(features, classes, settings.max_batch_rows))


@bp.get("/")
def index() -> Response:
    _, holder = serving_state()
    features, classes = model_names(holder)
    nonce = secrets.token_urlsafe(16)
    page = Response(render_template("index.html", features=features, classes=classes, nonce=nonce))
    page.headers.update(page_headers(nonce))
    return page
