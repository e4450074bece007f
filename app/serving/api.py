"""The prediction API: a Flask app factory (run by gunicorn, see app/serving/gunicorn_conf.py).

Endpoints: POST /predict, POST /invocations (MLflow scoring protocol), GET /health, /ready,
/metrics, /openapi.json and / (a form to try predictions). Every error is JSON with a reason.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import orjson
from flask import Flask, Response, render_template, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from werkzeug.exceptions import HTTPException

from app.model.iris import CLASS_NAMES, FEATURE_NAMES
from app.model.model_source import LoadedModel
from app.serving import metrics, model_handoff
from app.serving.model_holder import ModelHolder, ServedModel
from app.serving.openapi import build_spec
from app.serving.payloads import InvalidRequest, parse_invocations, parse_json_body, parse_predict, to_matrix
from app.serving.request_metrics import RequestMetrics, RouteLabeller
from config.app_settings import ApiSettings

log = logging.getLogger(__name__)

HTTP_REASONS = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


def error_response(status: int, reason: str, message: str) -> Response:
    return json_response({"error": {"status": status, "reason": reason, "message": message}}, status)


class NotReady(Exception):
    pass


def create_app(
    settings: ApiSettings | None = None, model: LoadedModel | None = None, poll_seconds: float | None = None
) -> Flask:
    """Build the app. With no `model`, load one per settings; poll in the background if none exists."""
    settings = settings or ApiSettings()
    app = Flask(__name__)
    # Werkzeug rejects larger bodies with 413 before we read them.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes

    holder = ModelHolder(lambda: model_handoff.load_for_worker(settings))
    if model is not None:
        holder.install(model)
    elif not holder.try_load():
        holder.poll_until_loaded(poll_seconds or settings.model_poll_seconds)
    app.extensions["model_holder"] = holder

    def current_model() -> ServedModel:
        served = holder.current
        if served is None:
            raise NotReady
        return served

    def reject(endpoint: str, error: InvalidRequest) -> Response:
        metrics.INVALID_REQUESTS.labels(endpoint, error.reason).inc()
        return error_response(error.status, error.reason, error.message)

    @app.errorhandler(InvalidRequest)
    def invalid(error: InvalidRequest) -> Response:
        return reject(route_of(request.environ), error)

    @app.errorhandler(NotReady)
    def not_ready(_: NotReady) -> Response:
        return error_response(503, "not_ready", "no model loaded yet; see GET /ready")

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        reason = HTTP_REASONS.get(status, "http_error")
        if status == 413:
            return reject(
                route_of(request.environ),
                InvalidRequest(413, "body_too_large", f"body exceeds {settings.max_body_bytes} bytes"),
            )
        response = error_response(status, reason, error.description or error.name)
        if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
            response.headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error; see the server log")

    def read_json() -> Any:
        environ = request.environ
        length = environ.get("CONTENT_LENGTH", "")
        if length.isdigit() and int(length) <= settings.max_body_bytes:
            # Declared and within the limit: read it straight from the server's stream. On this
            # hot path werkzeug's stream wrappers cost more than the read itself.
            body = environ["wsgi.input"].read(int(length))
        else:  # chunked or over the limit: werkzeug enforces MAX_CONTENT_LENGTH (413)
            body = request.get_data(cache=False)
        return parse_json_body(body, environ.get("CONTENT_TYPE"))

    @app.post("/predict")
    def predict() -> Response:
        payload = read_json()
        served = current_model()
        fast = served.model.fast
        parsed = parse_predict(payload, len(fast.feature_names), settings.max_batch_rows)
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

    @app.post("/invocations")
    def invocations() -> Response:
        payload = read_json()
        served = current_model()
        fast = served.model.fast
        rows = parse_invocations(payload, fast.feature_names, settings.max_batch_rows)
        indices, probabilities = fast.predict_indices(rows)
        classes = indices.tolist()
        served.recorder.record(rows, classes, probabilities.max(axis=1).tolist())
        return json_response({"predictions": [fast.class_names[i] for i in classes]})

    @app.get("/health")
    def health() -> Response:
        return json_response({"status": "alive"})

    @app.get("/ready")
    def ready() -> Response:
        served = holder.current
        if served is None:
            return error_response(503, "not_ready", "no model loaded yet")
        return json_response({"status": "ready", "model": served.info})

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        registry = REGISTRY
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)

    def names() -> tuple[tuple[str, ...], tuple[str, ...]]:
        served = holder.current
        if served is None:
            return FEATURE_NAMES, CLASS_NAMES
        return served.model.fast.feature_names, served.model.fast.class_names

    @app.get("/openapi.json")
    def openapi() -> Response:
        features, classes = names()
        return json_response(build_spec(features, classes, settings.max_batch_rows))

    @app.get("/")
    def index() -> str:
        features, classes = names()
        return render_template("index.html", features=features, classes=classes)

    route_of = RouteLabeller(app.url_map)  # every route is registered by now
    app.wsgi_app = RequestMetrics(app.wsgi_app, route_of)  # type: ignore[method-assign]
    return app
