"""The API's routes, as one Blueprint: predictions, health, metrics, the OpenAPI document, the page.

Each request reads the settings and the model holder that create_app put in `app.extensions`,
once, and then the current model once: a model swapped mid-request is not seen half-way.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from app.model.iris import CLASS_NAMES, FEATURE_NAMES
from app.serving.errors import NotReady
from app.serving.model_holder import ModelHolder, ServedModel
from app.serving.openapi import build_spec
from app.serving.payloads import parse_invocations, parse_json_body, parse_predict, to_matrix
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


def read_json(max_body_bytes: int) -> Any:
    environ = request.environ
    length = environ.get("CONTENT_LENGTH", "")
    if length.isdigit() and int(length) <= max_body_bytes:
        # Declared and within the limit: read it straight from the server's stream. On this
        # hot path werkzeug's stream wrappers cost more than the read itself.
        body = environ["wsgi.input"].read(int(length))
    else:  # chunked or over the limit: werkzeug enforces MAX_CONTENT_LENGTH (413)
        body = request.get_data(cache=False)
    return parse_json_body(body, environ.get("CONTENT_TYPE"))


def body_and_model() -> tuple[Any, ServedModel, int]:
    """The JSON body, the model to answer with, and the rows allowed per request.

    The body comes first: a malformed request is rejected as such even before a model is loaded.
    """
    settings, holder = serving_state()
    payload = read_json(settings.max_body_bytes)
    return payload, current_model(holder), settings.max_batch_rows


@bp.post("/predict")
def predict() -> Response:
    payload, served, max_rows = body_and_model()
    fast = served.model.fast
    parsed = parse_predict(payload, len(fast.feature_names), max_rows)
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


@bp.post("/invocations")
def invocations() -> Response:
    payload, served, max_rows = body_and_model()
    fast = served.model.fast
    rows = parse_invocations(payload, fast.feature_names, max_rows)
    indices, probabilities = fast.predict_indices(rows)
    classes = indices.tolist()
    served.recorder.record(rows, classes, probabilities.max(axis=1).tolist())
    return json_response({"predictions": [fast.class_names[i] for i in classes]})


@bp.get("/health")
def health() -> Response:
    return json_response({"status": "alive"})


@bp.get("/ready")
def ready() -> Response:
    _, holder = serving_state()
    served = holder.current
    if served is None:
        return error_response(503, "not_ready", "no model loaded yet")
    return json_response({"status": "ready", "model": served.info})


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    registry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


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
def index() -> str:
    _, holder = serving_state()
    features, classes = model_names(holder)
    return render_template("index.html", features=features, classes=classes)
