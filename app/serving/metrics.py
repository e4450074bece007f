"""Prometheus metrics of the prediction API.

Names follow Prometheus conventions (unit suffixes, `_total` for counters) and every label
has a bounded set of values: endpoints are route templates, reasons a fixed vocabulary,
classes and features come from the model. Under gunicorn the registry is collected in
prometheus-client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR is set by app/serving/gunicorn_conf.py),
with values that survive a full or read-only directory (app/serving/metric_values.py) and a
`mlserve_metrics_degraded` gauge computed at each scrape (app/serving/metrics_exposition.py).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from app.serving import metric_values

NAMESPACE = "mlserve"

metric_values.install()  # before the first metric below is made

# Fast model: most requests finish in well under 10 ms, so the low buckets are dense.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
CONFIDENCE_BUCKETS = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
# A feature value is observed as its position in the training distribution (the training CDF at
# that value). Buckets at the training deciles: without drift each decile gets about 10 %.
TRAINING_DECILE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)

HTTP_REQUESTS = Counter(
    "http_requests",
    "HTTP requests answered, by route template, method and status code.",
    ["endpoint", "method", "status"],
    namespace=NAMESPACE,
)
HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ["endpoint", "method"],
    namespace=NAMESPACE,
    buckets=LATENCY_BUCKETS,
)
INVALID_REQUESTS = Counter(
    "invalid_requests",
    "Requests rejected before prediction, by endpoint and reason.",
    ["endpoint", "reason"],
    namespace=NAMESPACE,
)
PREDICTIONS = Counter(
    "predictions",
    "Rows predicted, by model and predicted class.",
    ["model_name", "model_version", "class_name"],
    namespace=NAMESPACE,
)
PREDICTION_CONFIDENCE = Histogram(
    "prediction_confidence",
    "Probability of the predicted class, one observation per row.",
    namespace=NAMESPACE,
    buckets=CONFIDENCE_BUCKETS,
)
FEATURE_TRAINING_QUANTILE = Histogram(
    "feature_training_quantile",
    "Position of each input feature value in the training distribution (0..1), per feature.",
    ["feature"],
    namespace=NAMESPACE,
    buckets=TRAINING_DECILE_BUCKETS,
)
MODEL_INFO = Gauge(
    "model_info",
    "The model being served (value 1), by name, version, format and source.",
    ["model_name", "model_version", "model_format", "source"],
    namespace=NAMESPACE,
    multiprocess_mode="livemax",
)
MODEL_READY = Gauge(
    "model_ready",
    "1 when every live worker has a verified model loaded, else 0.",
    namespace=NAMESPACE,
    multiprocess_mode="livemin",
)
BASELINE_CLASS_SHARE = Gauge(
    "baseline_class_share",
    "Share of each class in the training data of the served model.",
    ["class_name"],
    namespace=NAMESPACE,
    multiprocess_mode="livemax",
)
