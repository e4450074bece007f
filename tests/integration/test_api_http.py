"""The real API under gunicorn (2 sync workers) over HTTP: contract, every bad input, metrics."""

from __future__ import annotations

import re
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
import requests

from tests.support.processes import Server

pytestmark = pytest.mark.integration

SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]
TIMEOUT = 10  # a hang fails the test instead of blocking it


def post(server: Server, path: str, **kwargs: object) -> requests.Response:
    return requests.post(f"{server.base_url}{path}", timeout=TIMEOUT, **kwargs)  # type: ignore[arg-type]


def test_old_client_call_still_works(api_server: Server) -> None:
    response = post(api_server, "/predict", json={"features": SETOSA})
    assert response.status_code == 200
    body = response.json()
    assert body["prediction"] == "setosa"
    assert body["probabilities"]["setosa"] > 0.9
    assert body["model"]["name"] == "iris-classifier"


def test_batch_and_mlflow_protocol_agree(api_server: Server) -> None:
    batch = post(api_server, "/predict", json={"instances": [SETOSA, VIRGINICA]}).json()
    assert [p["prediction"] for p in batch["predictions"]] == ["setosa", "virginica"]
    columns = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    split = post(
        api_server,
        "/invocations",
        json={"dataframe_split": {"columns": columns, "data": [SETOSA, VIRGINICA]}},
    )
    assert split.json() == {"predictions": ["setosa", "virginica"]}


def raw_json(body: bytes) -> dict[str, object]:
    """Request kwargs for a body sent as is, labelled JSON (what `json=` cannot send)."""
    return {"data": body, "headers": {"Content-Type": "application/json"}}


BAD_REQUESTS = [
    # (description, request kwargs, status, reason)
    ("invalid JSON", raw_json(b"{features: [1,2"), 400, "invalid_json"),
    (
        "wrong content type",
        {"data": b"features=1", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
        415,
        "unsupported_media_type",
    ),
    ("missing field", {"json": {"feature": SETOSA}}, 422, "missing_field"),
    ("extra field", {"json": {"features": SETOSA, "debug": True}}, 422, "unexpected_field"),
    ("three features", {"json": {"features": SETOSA[:3]}}, 422, "wrong_feature_count"),
    ("a string feature", {"json": {"features": [5.1, "wide", 1.4, 0.2]}}, 422, "not_a_number"),
    ("NaN", raw_json(b'{"features": [NaN, 3.5, 1.4, 0.2]}'), 422, "non_finite"),
    ("Infinity", raw_json(b'{"features": [Infinity, 3.5, 1.4, 0.2]}'), 422, "non_finite"),
    ("empty batch", {"json": {"instances": []}}, 422, "empty_batch"),
    ("too many rows", {"json": {"instances": [SETOSA] * 1001}}, 422, "too_many_rows"),
    (
        "body over the limit",
        raw_json(b'{"instances": [' + b"[1,2,3,4]," * 120_000 + b"[1,2,3,4]]}"),
        413,
        "body_too_large",
    ),
    # Bodies that once crashed the parser or the error handler (500) are plain 4xx answers.
    ("deep nesting", raw_json(b"[" * 100_000), 400, "invalid_json"),
    (
        "deep nesting in features",
        raw_json(b'{"features": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
        400,
        "invalid_json",
    ),
    (
        "nesting a parser takes",
        raw_json(b'{"features": [1, 2, 3, ' + b"[" * 900 + b"]" * 900 + b"]}"),
        422,
        "not_a_number",
    ),
    (
        "310-digit integer",
        raw_json(b'{"features": [1' + b"0" * 310 + b", 3.5, 1.4, 0.2]}"),
        422,
        "non_finite",
    ),
    (
        "5000-digit integer",
        raw_json(b'{"features": [1' + b"0" * 5000 + b", 3.5, 1.4, 0.2]}"),
        422,
        "non_finite",
    ),
    ("lone surrogate key", raw_json(b'{"features": [1, 2, 3, 4], "\\ud800": 0}'), 422, "unexpected_field"),
]


def test_an_echoed_lone_surrogate_is_escaped(api_server: Server) -> None:
    response = post(api_server, "/predict", **raw_json(b'{"features": [1, 2, 3, 4], "\\ud800": 0}'))
    assert "\\ud800" in response.json()["error"]["message"]


def csv_body(text: str, content_type: str = "text/csv") -> dict[str, object]:
    return {"data": text.encode(), "headers": {"Content-Type": content_type}}


HEADER = "sepal_length,sepal_width,petal_length,petal_width"
BAD_INVOCATIONS = [
    # (description, request kwargs, status, reason)
    ("no input form", {"json": {}}, 422, "missing_field"),
    ("params not an object", {"json": {"inputs": [SETOSA], "params": "x"}}, 422, "wrong_type"),
    ("index not a list", {"json": {"dataframe_split": {"data": [SETOSA], "index": 5}}}, 422, "wrong_type"),
    ("null columns", {"json": {"dataframe_split": {"data": [SETOSA], "columns": None}}}, 422, "wrong_type"),
    (
        "CSV unknown column",
        csv_body("sepal_length,sepal_width,petal_length,colour\n1,2,3,4\n"),
        422,
        "missing_field",
    ),
    ("CSV extra column", csv_body(f"{HEADER},colour\n1,2,3,4,5\n"), 422, "unexpected_field"),
    ("CSV not a number", csv_body(f"{HEADER}\n5.1,wide,1.4,0.2\n"), 422, "not_a_number"),
    ("CSV quoted number", csv_body(f'{HEADER}\n"5.1",3.5,1.4,0.2\n'), 422, "not_a_number"),
    ("CSV three values", csv_body(f"{HEADER}\n5.1,3.5,1.4\n"), 422, "wrong_feature_count"),
    ("CSV header only", csv_body(f"{HEADER}\n"), 422, "empty_batch"),
    ("CSV too many rows", csv_body(HEADER + "\n1,2,3,4" * 1001), 422, "too_many_rows"),
    ("CSV too large", csv_body(HEADER + "\n1,2,3,4" * 200_000), 413, "body_too_large"),
    ("CSV empty", csv_body(""), 400, "invalid_csv"),
    ("CSV not UTF-8", {"data": b"\xff\xfe", "headers": {"Content-Type": "text/csv"}}, 400, "invalid_csv"),
    (
        "CSV in Latin-1",
        csv_body(f"{HEADER}\n1,2,3,4\n", "text/csv; charset=latin-1"),
        415,
        "unsupported_media_type",
    ),
    ("form data", csv_body("a=1", "application/x-www-form-urlencoded"), 415, "unsupported_media_type"),
]


BAD_BODIES = [("/predict", *c) for c in BAD_REQUESTS] + [("/invocations", *c) for c in BAD_INVOCATIONS]


@pytest.mark.parametrize(
    ("path", "case", "kwargs", "status", "reason"), BAD_BODIES, ids=[f"{c[0]} {c[1]}" for c in BAD_BODIES]
)
def test_bad_input_gets_a_json_error_naming_the_problem(
    api_server: Server, path: str, case: str, kwargs: dict[str, object], status: int, reason: str
) -> None:
    response = post(api_server, path, **kwargs)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["reason"] == reason
    assert error["status"] == status
    assert error["message"]


def test_csv_invocations_answer_like_mlflow_models_serve(api_server: Server) -> None:
    text = f"{HEADER}\r\n{','.join(map(str, SETOSA))}\r\n{','.join(map(str, VIRGINICA))}\r\n"
    response = post(api_server, "/invocations", **csv_body(text, "text/csv; charset=utf-8"))
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": ["setosa", "virginica"]}


def chunks(size: int) -> Iterator[bytes]:
    """A body of `size` bytes sent with Transfer-Encoding: chunked (no Content-Length)."""
    prefix, row = b'{"instances": [', b"[5.1,3.5,1.4,0.2],"
    yield prefix
    sent = len(prefix)
    while sent + len(row) + 20 < size:
        yield row
        sent += len(row)
    yield b"[5.1,3.5,1.4,0.2]]}"


def test_a_chunked_body_over_the_limit_is_413(api_server: Server) -> None:
    response = post(
        api_server, "/predict", data=chunks(1_100_000), headers={"Content-Type": "application/json"}
    )
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert response.status_code == 413, response.text
    assert response.json()["error"]["reason"] == "body_too_large"


def test_a_chunked_body_within_the_limit_is_read(api_server: Server) -> None:
    response = post(
        api_server, "/invocations", data=chunks(10_000), headers={"Content-Type": "application/json"}
    )
    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert response.status_code == 200, response.text
    assert set(response.json()["predictions"]) == {"setosa"}


def test_page_forbids_framing_and_foreign_code(api_server: Server) -> None:
    response = requests.get(f"{api_server.base_url}/", timeout=TIMEOUT)
    assert response.headers["X-Frame-Options"] == "DENY"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    nonce = re.search(r"script-src 'nonce-([^']+)'", policy)
    assert nonce
    assert f'<script nonce="{nonce.group(1)}">' in response.text
    assert "unsafe-inline" not in policy


def test_metrics_content_type_names_its_charset_once(api_server: Server) -> None:
    content_type = requests.get(f"{api_server.base_url}/metrics", timeout=TIMEOUT).headers["Content-Type"]
    assert content_type.lower().count("charset") == 1


def test_ping_and_version_answer_like_mlflow_scoring_server(api_server: Server) -> None:
    assert requests.get(f"{api_server.base_url}/ping", timeout=TIMEOUT).status_code == 200
    answer = requests.get(f"{api_server.base_url}/version", timeout=TIMEOUT)
    assert answer.status_code == 200
    assert answer.text == version("mlops-platform")


def test_unknown_route_is_404_json(api_server: Server) -> None:
    response = requests.get(f"{api_server.base_url}/no/such/route", timeout=TIMEOUT)
    assert response.status_code == 404
    assert response.json()["error"]["reason"] == "not_found"


def test_wrong_method_is_405_json(api_server: Server) -> None:
    response = requests.delete(f"{api_server.base_url}/predict", timeout=TIMEOUT)
    assert response.status_code == 405
    assert response.json()["error"]["reason"] == "method_not_allowed"


def test_health_ready_openapi(api_server: Server) -> None:
    assert requests.get(f"{api_server.base_url}/health", timeout=TIMEOUT).json() == {"status": "alive"}
    ready = requests.get(f"{api_server.base_url}/ready", timeout=TIMEOUT).json()
    assert ready["status"] == "ready"
    spec = requests.get(f"{api_server.base_url}/openapi.json", timeout=TIMEOUT).json()
    assert "/invocations" in spec["paths"]


def metric_value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


def scrape(server: Server) -> str:
    response = requests.get(f"{server.base_url}/metrics", timeout=TIMEOUT)
    assert response.headers["Content-Type"].startswith("text/plain")
    return response.text


def test_metrics_count_every_request_across_both_workers(api_server: Server) -> None:
    before = scrape(api_server)
    sent = 60
    for i in range(sent):
        # A new connection each time, so gunicorn spreads the requests over both workers.
        post(
            api_server,
            "/predict",
            json={"features": SETOSA if i % 2 else VIRGINICA},
            headers={"Connection": "close"},
        )
    for _ in range(7):
        post(api_server, "/predict", json={"features": SETOSA[:2]}, headers={"Connection": "close"})
    requests.get(f"{api_server.base_url}/missing", timeout=TIMEOUT)
    after = scrape(api_server)

    def delta(name: str, **labels: str) -> float:
        return metric_value(after, name, **labels) - metric_value(before, name, **labels)

    ok = delta("mlserve_http_requests_total", endpoint="/predict", method="POST", status="200")
    assert ok == sent
    assert delta("mlserve_http_requests_total", endpoint="/predict", status="422") == 7
    assert delta("mlserve_http_requests_total", endpoint="unmatched", status="404") == 1
    assert delta("mlserve_invalid_requests_total", endpoint="/predict", reason="wrong_feature_count") == 7
    assert delta("mlserve_predictions_total", class_name="setosa") == sent / 2
    assert delta("mlserve_predictions_total", class_name="virginica") == sent / 2
    assert (
        delta("mlserve_http_request_duration_seconds_count", endpoint="/predict", method="POST") == sent + 7
    )
    assert delta("mlserve_prediction_confidence_count") == sent
    assert delta("mlserve_feature_training_quantile_count", feature="petal_length") == sent
    # Gauges: one model, ready in every live worker, baseline shares sum to 1.
    assert metric_value(after, "mlserve_model_ready") == 1
    assert metric_value(after, "mlserve_model_info", model_name="iris-classifier", model_format="onnx") == 1
    assert metric_value(after, "mlserve_baseline_class_share") == pytest.approx(1.0)
    # Both workers answered, so the totals above were aggregated over two processes' files.
    metrics_dir = Path(api_server.env["MLOPS_METRICS_DIR"])
    writers = {p.stem.rsplit("_", 1)[-1] for p in metrics_dir.glob("counter_*.db")}
    assert len(writers - {str(api_server.process.pid)}) >= 2  # the master keeps its own (swaps)
