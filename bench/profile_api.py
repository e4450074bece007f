"""`python -m bench.profile_api [MODEL_DIR]`: where one POST /predict spends its time, in process.

Runs the API's request path through Flask's test client with prometheus-client in multiprocess
mode (as under gunicorn), next to the constant-response ceiling app, then times each step of
the path on its own and prints cProfile's top functions. Without MODEL_DIR it trains into a
temporary store first (like `make bench`). Server and socket costs (gunicorn) are not in here:
both apps pay those alike.
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import shutil
import sys
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from bench.inprocess import median_call_ms

REQUESTS = 3000
BODY = json.dumps({"features": [5.1, 3.5, 1.4, 0.2]}).encode()


def _client_post(client: Any) -> None:
    response = client.post("/predict", data=BODY, content_type="application/json")
    if response.status_code != 200:
        raise RuntimeError(f"HTTP {response.status_code}: {response.get_data(as_text=True)}")


def _request_metrics(metrics: Any) -> None:
    metrics.HTTP_REQUESTS.labels("/predict", "POST", "200").inc()
    metrics.HTTP_REQUEST_DURATION.labels("/predict", "POST").observe(0.001)


def profile(model_dir: Path) -> None:
    # Multiprocess metrics, as gunicorn_conf sets them; must precede importing app.serving.metrics.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="metrics-", dir=tempfile.gettempdir())
    from app.model.fast_model import load_bundle
    from app.model.model_source import LoadedModel, ModelRef
    from app.serving import metrics
    from app.serving.api import create_app
    from app.serving.payloads import parse_json_body, parse_predict
    from app.serving.prediction_metrics import PredictionRecorder
    from app.serving.responses import json_response
    from bench.ceiling_app import create_app as create_ceiling
    from config.app_settings import DEFAULT_MODEL_NAME, ApiSettings, ModelSource

    loaded = LoadedModel(ModelRef(DEFAULT_MODEL_NAME, "1", "path", model_dir), load_bundle(model_dir))
    settings = ApiSettings(model_source=ModelSource.PATH, model_path=model_dir)
    api, ceiling = create_app(settings, model=loaded).test_client(), create_ceiling().test_client()
    payload = parse_json_body(BODY, "application/json")
    row = parse_predict(payload, 4, 1000).rows[0]
    index, probabilities = loaded.fast.predict_row(row)
    fast = loaded.fast
    graph_only = fast.graph_only()  # the path of models without a table
    recorder = PredictionRecorder(
        DEFAULT_MODEL_NAME, "1", fast.class_names, fast.feature_names, fast.baseline
    )
    answer = {"prediction": "setosa", "probabilities": {"a": 1.0, "b": 0.0, "c": 0.0}}

    steps: dict[str, Callable[[], Any]] = {
        "whole request, API (test client)": partial(_client_post, api),
        "whole request, ceiling (test client)": partial(_client_post, ceiling),
        "parse_json_body + parse_predict": lambda: parse_predict(
            parse_json_body(BODY, "application/json"), 4, 1000
        ),
        "fast.predict_row (decision table if any)": partial(fast.predict_row, row),
        "one row through onnxruntime (no table)": partial(graph_only.predict_row, row),
        "recorder.record_one (prediction metrics)": partial(
            recorder.record_one, row, index, probabilities[index]
        ),
        "request metrics (counter+histogram)": partial(_request_metrics, metrics),
        "json_response": partial(json_response, answer),
    }
    print(f"{'step':<45} {'us/call':>9}")
    for name, call in steps.items():
        print(f"{name:<45} {median_call_ms(call, repeats=5) * 1000:>9.1f}")

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(REQUESTS):
        _client_post(api)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(15)
    stats.sort_stats("cumulative").print_stats(r"/app/|prometheus_client|onnxruntime", 25)
    print(f"\ncProfile of {REQUESTS} POST /predict (test client): top 15 by own time, then app/,")
    print("prometheus_client and onnxruntime by cumulative time:")
    print(out.getvalue())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    work = Path(tempfile.mkdtemp(prefix="mlops-profile-"))
    tempfile.tempdir = str(work)
    try:
        if args:
            model_dir = Path(args[0])
        else:
            from bench.run import MODEL_NAME, train

            tracking_uri = f"sqlite:///{work}/mlflow.db"
            os.environ["MLFLOW_TRACKING_URI"] = os.environ["MLFLOW_REGISTRY_URI"] = tracking_uri
            version = train(work, tracking_uri)
            from mlflow.artifacts import download_artifacts

            model_dir = Path(
                download_artifacts(f"models:/{MODEL_NAME}/{version}", dst_path=str(work / "model"))
            )
        profile(model_dir)
    finally:
        tempfile.tempdir = None
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
