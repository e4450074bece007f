"""Monitoring against the real thing: Debian's Prometheus scraping the real API under gunicorn.

The API (started by tests.support.processes.start_api like the shared `api_server` fixture) gets a known mix
of traffic; then every panel query of every generated dashboard (template variables substituted)
runs through Prometheus's HTTP API and must return data that agrees with the traffic; the real
alert rules load and evaluate without errors; finally the API stops and ApiDown goes pending.

Exact counts from rate(): the window of `$__rate_interval` is chosen to start 1 ms before a
scrape taken after a warm-up pass (so every label set exists at its start) and to end on a
scrape taken after the measured traffic. Prometheus then extrapolates over 1 ms only and
rate * (t_end - t_start) equals the increase, i.e. the number of events sent.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from app.serving.metrics import LATENCY_BUCKETS
from config import stack_layout as layout
from config.monitoring import (
    API_JOB,
    NODE_EXPORTER_JOB,
    PROMETHEUS_JOB,
    PROMETHEUS_RULES_DIR,
    prometheus_config,
)
from dashboards.queries import PanelQuery, load_dashboards, panel_queries, substitute
from tests.support.processes import Server, clean_env, free_port, start_api, start_process, wait_for_http

pytestmark = pytest.mark.integration

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
# Rows whose position in the training distribution is known whatever the training split:
# MEDIAN sits near the Iris medians (inside the training 10-90 % band for every feature),
# LOW is below every training minimum (position 0), HIGH above every maximum (position 1).
MEDIAN = [5.8, 3.0, 4.35, 1.3]
LOW = [4.0, 1.5, 0.5, 0.05]
HIGH = [8.5, 4.8, 7.5, 3.0]
CONFIDENCE_LOW_BOUND = 0.6  # the bucket the confidence panel reports (le="0.6")
POLL_SECONDS = 60.0
SCRAPE_SECONDS = 1


# --- Prometheus ---------------------------------------------------------------------------------


@dataclass
class Prometheus:
    url: str
    log_path: Path

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self._get("/api/v1/query", params)

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        params = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": str(step)}
        return self._get("/api/v1/query_range", params)

    def scalar(self, expr: str, at: float | None = None) -> float | None:
        result = self.query(expr, at)
        return float(result[0]["value"][1]) if result else None

    def latest_scrape(self, job: str) -> float:
        """Timestamp of the most recent scrape of the job (all its series share it)."""
        (series,) = self.query(f'up{{job="{job}"}}[30s]')
        return max(float(ts) for ts, _ in series["values"])

    def api(self, path: str) -> Any:
        response = requests.get(self.url + path, timeout=10)
        response.raise_for_status()
        return response.json()["data"]

    def _get(self, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        response = requests.get(self.url + path, params=params, timeout=10)
        assert response.status_code == 200, (params, response.text)
        data = response.json()["data"]
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        result: list[dict[str, Any]] = data["result"]
        return result


def wait_for(what: str, check: Callable[[], bool], prometheus: Prometheus | None = None) -> None:
    deadline = time.monotonic() + POLL_SECONDS
    while not check():
        if time.monotonic() > deadline:
            log = prometheus.log_path.read_text(errors="replace")[-3000:] if prometheus else ""
            pytest.fail(f"timed out waiting for {what}\n{log}")
        time.sleep(0.25)


@pytest.fixture(scope="module")
def monitored_api(trained_store: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """This module's own API under gunicorn, started like the shared `api_server` fixture.

    Not the session-wide `api_server`: the last test stops the API, which must not take the
    server away from test modules that run later.
    """
    logs = tmp_path_factory.mktemp("monitored-api")
    server = start_api(
        {"MLOPS_TRACKING_URI": trained_store.tracking_uri, "MLOPS_MODEL_CACHE_DIR": str(logs / "cache")},
        logs / "gunicorn.log",
    )
    yield server
    server.stop()


# The host's textfile metrics as the backup job and the restart-count timer write them: the last
# backup an hour ago; the API container restarted twice after the first scrape.
BACKUP_AGE_SECONDS = 3600
API_RESTARTS = 2


def _write_textfile(folder: Path, name: str, text: str) -> None:
    (folder / f"{name}.tmp").write_text(text, encoding="utf-8")
    (folder / f"{name}.tmp").rename(folder / name)  # node-exporter never reads a half-written file


def _restarts(count: int) -> str:
    return f'mlops_container_restarts_total{{container="api"}} {count}\n'


@dataclass
class NodeExporter:
    server: Server
    textfile_dir: Path


@pytest.fixture(scope="module")
def node_exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeExporter]:
    """Debian's node-exporter on loopback, reading a textfile folder like the VM's."""
    folder = tmp_path_factory.mktemp("textfile")
    backup_time = time.time() - BACKUP_AGE_SECONDS
    _write_textfile(
        folder, layout.BACKUP_METRIC_FILE, f"mlops_backup_last_success_timestamp_seconds {backup_time}\n"
    )
    _write_textfile(folder, layout.CONTAINER_RESTARTS_METRIC_FILE, _restarts(0))
    port = free_port()
    args = [
        "/usr/bin/prometheus-node-exporter",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--collector.textfile.directory={folder}",
    ]
    server = start_process(
        args, clean_env({}), folder.parent / "node-exporter.log", f"http://127.0.0.1:{port}"
    )
    try:
        wait_for_http(f"{server.base_url}/metrics", timeout=30, process=server.process)
        yield NodeExporter(server, folder)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def prometheus(
    monitored_api: Server, node_exporter: NodeExporter, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus")
    assert binary, "prometheus is missing: run `make system-deps` (Debian package prometheus)"
    workdir = tmp_path_factory.mktemp("prometheus")
    port = free_port()
    api_address = monitored_api.base_url.removeprefix("http://").rstrip("/")
    # The same renderer as config/prometheus/prometheus.yml; only targets, pace and rule paths differ.
    node_address = node_exporter.server.base_url.removeprefix("http://")
    config = prometheus_config(
        {API_JOB: [api_address], PROMETHEUS_JOB: [f"127.0.0.1:{port}"], NODE_EXPORTER_JOB: [node_address]},
        scrape_interval=f"{SCRAPE_SECONDS}s",
        evaluation_interval=f"{SCRAPE_SECONDS}s",
        rule_files=[str(PROMETHEUS_RULES_DIR / "*.yml")],
        alertmanagers=(),
        # This machine's root filesystem stands in for the VM's data disk.
        data_mount_point="/",
    )
    config_path = workdir / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    log_path = workdir / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = Prometheus(url=f"http://127.0.0.1:{port}", log_path=log_path)

    def ready() -> bool:
        assert process.poll() is None, log_path.read_text(errors="replace")
        try:
            return requests.get(server.url + "/-/ready", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        wait_for("Prometheus to be ready", ready, server)
        wait_for("a first scrape of the API", lambda: server.scalar(f'up{{job="{API_JOB}"}}') == 1.0, server)
        restarts = f'mlops_container_restarts_total{{job="{NODE_EXPORTER_JOB}"}}'
        wait_for("a first scrape of the host", lambda: server.scalar(restarts) == 0.0, server)
        _write_textfile(
            node_exporter.textfile_dir, layout.CONTAINER_RESTARTS_METRIC_FILE, _restarts(API_RESTARTS)
        )
        wait_for("the restarts to be scraped", lambda: server.scalar(restarts) == float(API_RESTARTS), server)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=30)


# --- Traffic --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One request of the mix and what the API must answer."""

    method: str
    path: str
    status: int
    reason: str | None = None  # the rejection reason, for invalid inputs
    json_body: Any = None
    raw_body: bytes | None = None
    content_type: str = "application/json"


def predict(row: list[float]) -> Call:
    return Call("POST", "/predict", 200, json_body={"features": row})


def invalid(path: str, status: int, reason: str, body: Any = None, raw: bytes | None = None) -> Call:
    return Call("POST", path, status, reason, json_body=body, raw_body=raw)


MIX: tuple[Call, ...] = (
    *(predict(MEDIAN) for _ in range(3)),
    predict(LOW),
    predict(HIGH),
    Call("POST", "/predict", 200, json_body={"instances": [MEDIAN, LOW, HIGH, MEDIAN]}),
    Call(
        "POST",
        "/invocations",
        200,
        json_body={"dataframe_split": {"columns": list(FEATURES), "data": [MEDIAN, HIGH]}},
    ),
    Call("POST", "/invocations", 200, json_body={"instances": [LOW]}),
    invalid("/predict", 400, "invalid_json", raw=b'{"features": [1, 2,'),
    Call(
        "POST",
        "/predict",
        415,
        "unsupported_media_type",
        raw_body=b"5.1,3.5,1.4,0.2",
        content_type="text/csv",
    ),
    invalid("/predict", 422, "missing_field", body={}),
    invalid("/invocations", 422, "missing_field", body={"rows": [MEDIAN]}),
    invalid("/predict", 422, "unexpected_field", body={"features": MEDIAN, "model": "x"}),
    invalid("/predict", 422, "wrong_type", body={"features": "5.1,3.5,1.4,0.2"}),
    *(invalid("/predict", 422, "wrong_feature_count", body={"features": [5.1, 3.5, 1.4]}) for _ in range(2)),
    invalid("/predict", 422, "not_a_number", body={"features": ["5.1", 3.5, 1.4, 0.2]}),
    invalid("/predict", 422, "non_finite", raw=b'{"features": [NaN, 3.5, 1.4, 0.2]}'),
    invalid("/predict", 422, "empty_batch", body={"instances": []}),
    invalid("/predict", 422, "too_many_rows", body={"instances": [MEDIAN] * 1001}),
    Call("GET", "/no-such-page", 404),
    Call("POST", "/predict/v2", 404),
    Call("GET", "/predict", 405),
    Call("GET", "/health", 200),
    Call("GET", "/ready", 200),
)
PREDICTION_PATHS = {"/predict", "/invocations"}


@dataclass
class Expected:
    """What the measured traffic must show in Prometheus, tallied from the API's own answers."""

    window_start: float = 0.0
    window_end: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    classes: Counter[str] = field(default_factory=Counter)
    prediction_requests: int = 0
    rows: int = 0
    rows_outside_band: int = 0
    rows_below_band: int = 0
    low_confidence_rows: int = 0
    model: dict[str, str] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return self.window_end - self.window_start

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())


class Client:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        # Class and confidence of each row, learned from /predict (the model is deterministic).
        self.row_answers: dict[tuple[float, ...], tuple[str, float]] = {}

    def send(self, call: Call) -> requests.Response:
        data = call.raw_body if call.raw_body is not None else None
        if call.json_body is not None:
            data = json.dumps(call.json_body).encode()
        headers = {"Content-Type": call.content_type} if data is not None else {}
        response = self.session.request(
            call.method, self.base_url + call.path, data=data, headers=headers, timeout=30
        )
        assert response.status_code == call.status, (call, response.text)
        if call.reason is not None:
            assert response.json()["error"]["reason"] == call.reason, response.text
        return response

    def answer_for(self, row: list[float]) -> tuple[str, float]:
        key = tuple(row)
        if key not in self.row_answers:
            body = self.send(predict(row)).json()
            self.row_answers[key] = (body["prediction"], max(body["probabilities"].values()))
        return self.row_answers[key]

    def run(self, mix: tuple[Call, ...], expected: Expected | None) -> None:
        for call in mix:
            response = self.send(call)
            if expected is not None:
                self._tally(call, response, expected)

    def _tally(self, call: Call, response: requests.Response, expected: Expected) -> None:
        expected.statuses[str(response.status_code)] += 1
        if call.path in PREDICTION_PATHS:
            expected.prediction_requests += 1
        if call.reason is not None:
            expected.reasons[call.reason] += 1
        if response.status_code != 200 or call.path not in PREDICTION_PATHS:
            return
        body = call.json_body
        rows = [body["features"]] if "features" in body else body.get("instances")
        rows = rows if rows is not None else body["dataframe_split"]["data"]
        if call.path == "/predict":
            expected.model = response.json()["model"]
        for row in rows:
            class_name, confidence = self.row_answers[tuple(row)]
            expected.classes[class_name] += 1
            expected.rows += 1
            expected.rows_outside_band += row != MEDIAN
            expected.rows_below_band += row == LOW
            expected.low_confidence_rows += confidence <= CONFIDENCE_LOW_BOUND


def api_requests_seen(prometheus: Prometheus) -> float | None:
    """What Prometheus's latest scrape says the API answered (without /metrics)."""
    return prometheus.scalar(f'sum(mlserve_http_requests_total{{job="{API_JOB}",endpoint!="/metrics"}})')


def api_requests_answered(base_url: str) -> float:
    """What the API says right now, read from its own /metrics (that read counts under /metrics)."""
    text = requests.get(base_url + "/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "mlserve_http_requests_total" and sample.labels["endpoint"] != "/metrics"
    )


@pytest.fixture(scope="module")
def expected(monitored_api: Server, prometheus: Prometheus) -> Expected:
    """Send a warm-up pass, then the measured traffic; return the window and what it must show."""
    client = Client(monitored_api.base_url)
    for row in (MEDIAN, LOW, HIGH):
        client.answer_for(row)
    client.run(MIX, expected=None)  # warm-up: every label set exists before the window opens
    warm = api_requests_answered(monitored_api.base_url)

    def settled(total: float) -> Callable[[], bool]:
        return lambda: api_requests_seen(prometheus) == total

    wait_for("the warm-up to be scraped", settled(warm), prometheus)
    result = Expected(window_start=prometheus.latest_scrape(API_JOB))
    for _ in range(2):
        client.run(MIX, result)
    wait_for("the measured traffic to be scraped", settled(warm + result.requests), prometheus)
    # Like Grafana's $__rate_interval, the window spans several scrapes of every job.
    wait_for(
        "a window of at least 5 scrapes",
        lambda: prometheus.latest_scrape(API_JOB) - result.window_start >= 5 * SCRAPE_SECONDS,
        prometheus,
    )
    result.window_end = prometheus.latest_scrape(API_JOB)
    assert result.rows > 0
    assert result.window_end > result.window_start
    return result


# --- Panel checks ------------------------------------------------------------------------------


def by_label(result: list[dict[str, Any]], label: str) -> dict[str, float]:
    return {series["metric"].get(label, ""): float(series["value"][1]) for series in result}


def counts(result: list[dict[str, Any]], label: str, exp: Expected) -> dict[str, int]:
    """rate() values turned back into event counts over the window."""
    values = by_label(result, label)
    for value in values.values():
        count = value * exp.seconds
        assert count == pytest.approx(round(count), abs=0.01), values
    return {key: round(value * exp.seconds) for key, value in values.items() if round(value * exp.seconds)}


def single(result: list[dict[str, Any]]) -> float:
    (series,) = result
    return float(series["value"][1])


def approx(value: float) -> Any:
    return pytest.approx(value, rel=1e-3, abs=1e-9)


Check = Callable[[list[dict[str, Any]], Expected, Prometheus], None]


def check_statuses(result: list[dict[str, Any]], exp: Expected, _: Prometheus) -> None:
    assert counts(result, "status", exp) == dict(exp.statuses)


def check_no_5xx(result: list[dict[str, Any]], exp: Expected, _: Prometheus) -> None:
    assert sum(n for status, n in exp.statuses.items() if status.startswith("5")) == 0
    assert single(result) == 0.0


def check_4xx_ratio(result: list[dict[str, Any]], exp: Expected, _: Prometheus) -> None:
    client_errors = sum(n for status, n in exp.statuses.items() if status.startswith("4"))
    assert single(result) == approx(client_errors / exp.requests)


def check_latency(result: list[dict[str, Any]], _: Expected, __: Prometheus) -> None:
    value = single(result)
    assert math.isfinite(value)
    assert 0.0 < value <= max(LATENCY_BUCKETS)


def check_model_info(result: list[dict[str, Any]], exp: Expected, _: Prometheus) -> None:
    (series,) = result
    assert series["metric"]["model_name"] == exp.model["name"]
    assert series["metric"]["model_version"] == exp.model["version"]
    assert series["metric"]["model_format"]
    assert float(series["value"][1]) == 1.0


def check_ready(result: list[dict[str, Any]], _: Expected, __: Prometheus) -> None:
    assert single(result) == 1.0


def check_invalid_ratio(result: list[dict[str, Any]], exp: Expected, _: Prometheus) -> None:
    assert single(result) == approx(sum(exp.reasons.values()) / exp.prediction_requests)


def class_shares(exp: Expected, prometheus: Prometheus) -> tuple[dict[str, float], dict[str, float]]:
    baseline = by_label(prometheus.query(f'mlserve_baseline_class_share{{job="{API_JOB}"}}'), "class_name")
    live = {name: exp.classes[name] / exp.rows for name in baseline}
    return live, baseline


def check_largest_deviation(result: list[dict[str, Any]], exp: Expected, prometheus: Prometheus) -> None:
    live, baseline = class_shares(exp, prometheus)
    assert single(result) == approx(max(abs(live[name] - baseline[name]) for name in baseline))


def check_class_counts(result: list[dict[str, Any]], exp: Expected, _: Prometheus) -> None:
    assert counts(result, "class_name", exp) == dict(exp.classes)


def check_class_shares(result: list[dict[str, Any]], exp: Expected, prometheus: Prometheus) -> None:
    live, _ = class_shares(exp, prometheus)
    shares = by_label(result, "class_name")
    assert set(shares) == set(live)  # a class never predicted shows as 0, not as a missing line
    for name, share in live.items():
        assert shares[name] == approx(share), name


def check_baseline(result: list[dict[str, Any]], _: Expected, __: Prometheus) -> None:
    shares = by_label(result, "class_name")
    assert set(shares) == {"setosa", "versicolor", "virginica"}
    assert sum(shares.values()) == pytest.approx(1.0)
    assert all(0.0 < share < 1.0 for share in shares.values())


def check_probability(result: list[dict[str, Any]], _: Expected, __: Prometheus) -> None:
    assert 0.0 < single(result) <= 1.0


def check_low_confidence_share(result: list[dict[str, Any]], exp: Expected, _: Prometheus) -> None:
    assert single(result) == approx(exp.low_confidence_rows / exp.rows)


def check_reasons(result: list[dict[str, Any]], exp: Expected, _: Prometheus) -> None:
    assert counts(result, "reason", exp) == dict(exp.reasons)


def check_outside_band(result: list[dict[str, Any]], exp: Expected, _: Prometheus) -> None:
    shares = by_label(result, "feature")
    assert set(shares) == set(FEATURES)
    for feature in FEATURES:
        assert shares[feature] == approx(exp.rows_outside_band / exp.rows), feature


def check_decile_table(result: list[dict[str, Any]], exp: Expected, _: Prometheus) -> None:
    cumulative = {(s["metric"]["feature"], s["metric"]["le"]): float(s["value"][1]) for s in result}
    assert {feature for feature, _ in cumulative} == set(FEATURES)
    high_rows = exp.rows_outside_band - exp.rows_below_band
    for feature in FEATURES:
        assert cumulative[(feature, "0.1")] == approx(exp.rows_below_band / exp.rows)
        assert cumulative[(feature, "0.9")] == approx((exp.rows - high_rows) / exp.rows)
        assert cumulative[(feature, "1.0")] == approx(1.0)
        assert cumulative[(feature, "+Inf")] == approx(1.0)


def check_targets_up(result: list[dict[str, Any]], _: Expected, __: Prometheus) -> None:
    assert by_label(result, "job") == {API_JOB: 1.0, PROMETHEUS_JOB: 1.0, NODE_EXPORTER_JOB: 1.0}


def check_share(result: list[dict[str, Any]], _: Expected, __: Prometheus) -> None:
    """One host-wide share (disk used, memory available), strictly between empty and full."""
    assert 0.0 < single(result) < 1.0


def check_root_filesystem_share(result: list[dict[str, Any]], _: Expected, __: Prometheus) -> None:
    shares = by_label(result, "mountpoint")
    assert 0.0 < shares["/"] < 1.0, shares
    assert all(0.0 <= share <= 1.0 for share in shares.values()), shares


def check_backup_age(result: list[dict[str, Any]], _: Expected, __: Prometheus) -> None:
    # Written an hour before the test started; the module runs for minutes, not an hour.
    assert BACKUP_AGE_SECONDS <= single(result) < 2 * BACKUP_AGE_SECONDS


def check_api_restarts(result: list[dict[str, Any]], _: Expected, __: Prometheus) -> None:
    # increase() extrapolates within the window: at least the restarts written, never another container.
    restarts = by_label(result, "container")
    assert set(restarts) == {"api"}, restarts
    assert restarts["api"] >= API_RESTARTS


def check_restart_total(result: list[dict[str, Any]], _: Expected, __: Prometheus) -> None:
    assert single(result) >= API_RESTARTS


def check_non_negative(result: list[dict[str, Any]], _: Expected, __: Prometheus) -> None:
    values = [float(series["value"][1]) for series in result]
    assert values, result
    assert all(value >= 0.0 for value in values), values


def check_cpu_share(result: list[dict[str, Any]], _: Expected, __: Prometheus) -> None:
    assert 0.0 <= single(result) <= 1.0


def check_zero(result: list[dict[str, Any]], _: Expected, __: Prometheus) -> None:
    assert single(result) == 0.0


def check_per_job_positive(*jobs: str) -> Check:
    def check(result: list[dict[str, Any]], _: Expected, __: Prometheus) -> None:
        values = by_label(result, "job")
        assert set(jobs) <= set(values), values
        assert all(values[job] > 0 for job in jobs), values

    return check


def check_fd_share(result: list[dict[str, Any]], _: Expected, __: Prometheus) -> None:
    values = by_label(result, "job")
    assert 0.0 < values[PROMETHEUS_JOB] <= 1.0


def check_positive(result: list[dict[str, Any]], _: Expected, __: Prometheus) -> None:
    assert single(result) > 0.0


PS = "mlserve-prediction-service"
PLATFORM = "mlops-platform"
HOST = "mlops-host"
# (dashboard uid, panel title, target refId) -> what its result must show.
CHECKS: dict[tuple[str, str, str], Check] = {
    (PS, "Request rate by status", "A"): check_statuses,
    (PS, "Error ratio", "A"): check_no_5xx,
    (PS, "Error ratio", "B"): check_4xx_ratio,
    (PS, "Prediction latency p50 / p95 / p99", "A"): check_latency,
    (PS, "Prediction latency p50 / p95 / p99", "B"): check_latency,
    (PS, "Prediction latency p50 / p95 / p99", "C"): check_latency,
    (PS, "Model being served", "A"): check_model_info,
    (PS, "Model ready", "A"): check_ready,
    (PS, "Invalid input ratio", "A"): check_invalid_ratio,
    (PS, "Largest class-share deviation", "A"): check_largest_deviation,
    (PS, "Predictions by class", "A"): check_class_counts,
    (PS, "Class share: live vs training", "A"): check_class_shares,
    (PS, "Class share: live vs training", "B"): check_baseline,
    (PS, "Prediction confidence", "A"): check_probability,
    (PS, "Prediction confidence", "B"): check_probability,
    (PS, "Prediction confidence", "C"): check_low_confidence_share,
    (PS, "Invalid inputs by reason", "A"): check_reasons,
    (PS, "Feature drift: values outside the training 10-90 % band", "A"): check_outside_band,
    (PS, "Feature drift: live share at or below each training decile", "A"): check_decile_table,
    (PLATFORM, "Scrape targets up", "A"): check_targets_up,
    (PLATFORM, "Alerts firing", "A"): check_zero,
    (PLATFORM, "Rule evaluation failures", "A"): check_zero,
    (PLATFORM, "Scrape duration", "A"): check_per_job_positive(API_JOB, PROMETHEUS_JOB),
    (PLATFORM, "Samples per scrape", "A"): check_per_job_positive(API_JOB, PROMETHEUS_JOB),
    (PLATFORM, "Process CPU", "A"): check_per_job_positive(PROMETHEUS_JOB),
    (PLATFORM, "Process resident memory", "A"): check_per_job_positive(PROMETHEUS_JOB),
    (PLATFORM, "Open file descriptors", "A"): check_fd_share,
    (PLATFORM, "Prometheus series in memory", "A"): check_positive,
    (PLATFORM, "Prometheus samples ingested", "A"): check_positive,
    (HOST, "Data volume used", "A"): check_share,
    (HOST, "Time since the last successful backup", "A"): check_backup_age,
    (HOST, "Container restarts (1 h)", "A"): check_restart_total,
    (HOST, "Filesystem used", "A"): check_root_filesystem_share,
    (HOST, "Disk busy", "A"): check_non_negative,
    (HOST, "CPU busy", "A"): check_cpu_share,
    (HOST, "Memory available", "A"): check_share,
    (HOST, "Major page faults", "A"): check_non_negative,
    (HOST, "Container restarts (15 min)", "A"): check_api_restarts,
    (HOST, "Network traffic", "A"): check_non_negative,
    (HOST, "Network traffic", "B"): check_non_negative,
}


def _variables(exp: Expected | None) -> dict[str, str]:
    # The 1 ms is the only extrapolation: see the module docstring.
    window = "1m" if exp is None else f"{round(exp.seconds * 1000) + 1}ms"
    return {"job": API_JOB, "feature": ".*", "__rate_interval": window, "__interval": "1s", "__range": window}


ALL_QUERIES = [
    query for dashboard in load_dashboards() for query in panel_queries(dashboard, _variables(None))
]


def _key(query: PanelQuery) -> tuple[str, str, str]:
    return (query.dashboard_uid, query.panel_title, query.ref_id)


def test_every_panel_query_has_a_check() -> None:
    assert sorted(map(_key, ALL_QUERIES)) == sorted(CHECKS)


@pytest.mark.parametrize("panel", ALL_QUERIES, ids=lambda q: f"{q.dashboard_uid}:{q.panel_title}:{q.ref_id}")
def test_panel_query_returns_what_the_traffic_implies(
    panel: PanelQuery, expected: Expected, prometheus: Prometheus
) -> None:
    dashboard = next(d for d in load_dashboards() if d["uid"] == panel.dashboard_uid)
    (query,) = (q for q in panel_queries(dashboard, _variables(expected)) if _key(q) == _key(panel))
    result = prometheus.query(query.expr, at=expected.window_end)
    assert result, f"no data for {query.expr}"
    CHECKS[_key(query)](result, expected, prometheus)
    if not query.instant:  # Grafana runs these as range queries: they must return data too
        start = expected.window_end - 5
        assert prometheus.query_range(query.expr, start, expected.window_end, 1), query.expr


def test_alert_rules_are_loaded_and_evaluate_cleanly(expected: Expected, prometheus: Prometheus) -> None:
    in_files = {
        rule["alert"]
        for path in PROMETHEUS_RULES_DIR.glob("*.yml")
        for group in yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
        for rule in group["rules"]
    }
    assert in_files
    loaded = {rule["name"] for group in prometheus.api("/api/v1/rules")["groups"] for rule in group["rules"]}
    assert loaded == in_files
    # health is "unknown" until a rule is evaluated and "err" when its query fails on real data.
    wait_for(
        "every rule to evaluate without error",
        lambda: all(
            r["health"] == "ok" for g in prometheus.api("/api/v1/rules")["groups"] for r in g["rules"]
        ),
        prometheus,
    )
    firing = [
        a["labels"]["alertname"] for a in prometheus.api("/api/v1/alerts")["alerts"] if a["state"] == "firing"
    ]
    assert firing == []


def test_model_change_annotation_marks_the_minute_a_version_appears(prometheus: Prometheus) -> None:
    (dashboard,) = (d for d in load_dashboards() if d["uid"] == PS)
    (annotation,) = (a for a in dashboard["annotations"]["list"] if a["name"] == "Model changes")
    expr = substitute(annotation["expr"], {"job": API_JOB})
    (served,) = prometheus.query(f'mlserve_model_info{{job="{API_JOB}"}}[1h]')
    first_seen = min(float(timestamp) for timestamp, _ in served["values"])
    marked = prometheus.query(expr, at=first_seen + 1)
    assert [series["metric"]["model_version"] for series in marked] == [served["metric"]["model_version"]]
    # A minute later the same version is old news: no marker on every refresh.
    assert prometheus.query(expr, at=first_seen + 61) == []


def test_stopping_the_api_drops_up_and_api_down_goes_pending(
    monitored_api: Server, expected: Expected, prometheus: Prometheus
) -> None:
    """Last in this module: it stops the API."""
    assert prometheus.scalar(f'up{{job="{API_JOB}"}}') == 1.0
    assert not [
        a for a in prometheus.api("/api/v1/alerts")["alerts"] if a["labels"]["alertname"] == "ApiDown"
    ]
    monitored_api.stop()
    wait_for("up to drop to 0", lambda: prometheus.scalar(f'up{{job="{API_JOB}"}}') == 0.0, prometheus)

    def api_down_pending() -> bool:
        alerts = prometheus.api("/api/v1/alerts")["alerts"]
        return any(a["labels"]["alertname"] == "ApiDown" and a["state"] == "pending" for a in alerts)

    wait_for("ApiDown to go pending", api_down_pending, prometheus)
    (alert,) = [
        a for a in prometheus.api("/api/v1/alerts")["alerts"] if a["labels"]["alertname"] == "ApiDown"
    ]
    assert alert["labels"]["severity"] == "critical"
    assert alert["labels"]["job"] == API_JOB
