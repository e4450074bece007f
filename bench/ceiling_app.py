"""The framework ceiling: Flask under the API's gunicorn config, answering a constant prediction.

    gunicorn --config python:app.serving.gunicorn_conf "bench.ceiling_app:create_app()"

Same server, workers and config as the API, no model, no validation, no metrics: what our API
reaches per request is bounded by this.
"""

from __future__ import annotations

import json

from flask import Flask, Response, request

_PREDICTION = json.dumps(
    {
        "prediction": "setosa",
        "probabilities": {"setosa": 1.0, "versicolor": 0.0, "virginica": 0.0},
        "model": {"name": "iris-classifier", "version": "1"},
    }
)


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/ready")
    def ready() -> Response:
        return Response('{"status": "ready"}', mimetype="application/json")

    @app.post("/predict")
    def predict() -> Response:
        request.get_data(cache=False)  # read the body like the API does, ignore it
        return Response(_PREDICTION, mimetype="application/json")

    return app
