"""The edge (nginx with the stack's rendered config) in front of the real API under gunicorn.

What a client may rely on through the edge: TLS, the same answers as the API gives directly (its
4xx JSON errors included), JSON errors for what the edge refuses itself, no /metrics, and normal
requests still answered while hundreds of clients send byte by byte and stall.
"""

from __future__ import annotations

import http.server
import json
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from config import edge as edge_facts
from tests.support.edge import Edge, running_edge
from tests.support.processes import Server

SETOSA = [5.1, 3.5, 1.4, 0.2]
TIMEOUT = 15
SLOW_CLIENTS = 256


@pytest.fixture(scope="module")
def edge(api_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    upstream = api_server.base_url.removeprefix("http://")
    with running_edge(upstream, tmp_path_factory.mktemp("edge")) as running:
        yield running


def through_edge(edge: Edge, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(
        method, f"{edge.https_url}{path}", verify=str(edge.ca_file), timeout=TIMEOUT, **kwargs
    )


def direct(api: Server, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{api.base_url}{path}", timeout=TIMEOUT, **kwargs)


def test_predictions_over_tls_equal_the_direct_answer(edge: Edge, api_server: Server) -> None:
    via_edge = through_edge(edge, "POST", "/predict", json={"features": SETOSA})
    assert via_edge.status_code == 200
    assert via_edge.json() == direct(api_server, "POST", "/predict", json={"features": SETOSA}).json()
    assert via_edge.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "Server" not in via_edge.headers or "/" not in via_edge.headers["Server"]  # no version


def test_plain_http_redirects_to_https(edge: Edge) -> None:
    response = requests.post(
        f"{edge.http_url}/predict", json={"features": SETOSA}, allow_redirects=False, timeout=TIMEOUT
    )
    assert response.status_code == 308
    assert response.headers["Location"].startswith("https://")
    assert response.headers["Location"].endswith("/predict")


MALFORMED: dict[str, tuple[str, str, dict[str, Any]]] = {
    "invalid json": ("POST", "/predict", {"data": b"{", "headers": {"Content-Type": "application/json"}}),
    "wrong media type": ("POST", "/predict", {"data": b"x", "headers": {"Content-Type": "text/plain"}}),
    "wrong feature count": ("POST", "/predict", {"json": {"features": [1, 2]}}),
    "not a number": ("POST", "/predict", {"json": {"features": ["a", 2, 3, 4]}}),
    "unknown route": ("GET", "/no/such/route", {}),
    "wrong method": ("DELETE", "/predict", {}),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_malformed_requests_get_the_same_json_through_the_edge(
    edge: Edge, api_server: Server, case: str
) -> None:
    method, path, kwargs = MALFORMED[case]
    expected = direct(api_server, method, path, **kwargs)
    got = through_edge(edge, method, path, **kwargs)
    assert 400 <= expected.status_code < 500
    assert (got.status_code, got.json()) == (expected.status_code, expected.json())


def _raw_exchange(edge: Edge, request: bytes) -> tuple[int, bytes]:
    """Send raw bytes over TLS; return the status code and body of the answer."""
    port = int(edge.https_url.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=str(edge.ca_file))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as conn,
    ):
        conn.sendall(request)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@pytest.mark.parametrize(
    ("request_bytes", "status", "reason"),
    [
        (
            b"GET /health HTTP/1.1\r\nHost: x\r\nno colon here\r\nConnection: close\r\n\r\n",
            400,
            "bad_request",
        ),
        (
            b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\nConnection: close\r\n\r\n",
            431,
            "request_header_too_large",
        ),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 414, "uri_too_long"),
    ],
    ids=["malformed header", "header too large", "request line too long"],
)
def test_what_the_edge_refuses_itself_is_json_in_the_api_error_shape(
    edge: Edge, request_bytes: bytes, status: int, reason: str
) -> None:
    got_status, body = _raw_exchange(edge, request_bytes)
    assert got_status == status
    error = json.loads(body)["error"]
    assert (error["status"], error["reason"]) == (status, reason)


def test_a_dead_upstream_gets_a_502_json(tmp_path: Path) -> None:
    with running_edge("127.0.0.1:9", tmp_path) as dead:  # nothing listens on the discard port
        response = through_edge(dead, "POST", "/predict", json={"features": SETOSA})
    assert response.status_code == 502
    assert response.json()["error"] == {
        "status": 502,
        "reason": "upstream_unavailable",
        "message": "the API is not reachable; retry shortly",
    }


def test_metrics_are_not_reachable_through_the_edge(edge: Edge, api_server: Server) -> None:
    assert direct(api_server, "GET", "/metrics").status_code == 200
    response = through_edge(edge, "GET", "/metrics")
    assert response.status_code == 404
    assert response.json()["error"]["reason"] == "not_found"


def _oversized_body() -> bytes:
    rows = int(edge_facts.MAX_BODY_BYTES) // 5 + 10
    return b'{"features": [' + b"1.0, " * rows + b"1.0]}"


def test_an_oversized_body_gets_a_413_json_that_requests_urllib_and_curl_read(edge: Edge) -> None:
    body = _oversized_body()
    headers = {"Content-Type": "application/json"}
    response = through_edge(edge, "POST", "/predict", data=body, headers=headers)
    assert response.status_code == 413
    assert response.json()["error"]["reason"] == "body_too_large"

    context = ssl.create_default_context(cafile=str(edge.ca_file))
    request = urllib.request.Request(f"{edge.https_url}/predict", data=body, headers=headers)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=TIMEOUT, context=context)
    assert refused.value.code == 413
    assert b'"body_too_large"' in refused.value.read()


def test_curl_reads_the_413_json(edge: Edge, tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_bytes(_oversized_body())
    result = subprocess.run(
        ["curl", "-sS", "--cacert", str(edge.ca_file), "-H", "Content-Type: application/json",
         "--data-binary", f"@{body}", "-w", "\n%{http_code}", f"{edge.https_url}/predict"],
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )  # fmt: skip
    text, _, status = result.stdout.rpartition("\n")
    assert status == "413", result.stderr
    assert '"reason": "body_too_large"' in text


def _slow_client(edge: Edge, stop: threading.Event, opened: list[int], body: bool) -> None:
    """Open a TLS connection, then send a request one byte every second until stopped."""
    port = int(edge.https_url.rsplit(":", 1)[1])
    context = ssl.create_default_context(cafile=str(edge.ca_file))
    request = b"POST /predict HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
    if body:
        request += b"Content-Length: 100\r\n\r\n" + b'{"features": ['
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname="localhost") as conn,
        ):
            opened.append(1)
            for byte in request:
                if stop.wait(1.0):
                    return
                conn.sendall(bytes([byte]))
    except OSError:
        return  # the edge dropped a stalled client: what it should do


def test_slow_clients_do_not_starve_normal_requests(edge: Edge) -> None:
    stop = threading.Event()
    opened: list[int] = []
    threads = [
        threading.Thread(target=_slow_client, args=(edge, stop, opened, i % 2 == 0), daemon=True)
        for i in range(SLOW_CLIENTS)
    ]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 30
        while len(opened) < SLOW_CLIENTS and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(opened) == SLOW_CLIENTS
        # Two sync workers: without a buffering proxy two such clients already block the API.
        answers = [through_edge(edge, "POST", "/predict", json={"features": SETOSA}) for _ in range(20)]
        assert [a.status_code for a in answers] == [200] * 20
        assert {a.json()["prediction"] for a in answers} == {"setosa"}
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)


class _StandIn(http.server.BaseHTTPRequestHandler):
    """Grafana's stand-in (no Grafana image can run here): says which path reached it."""

    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "proto": self.headers.get("X-Forwarded-Proto")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_public_grafana_is_served_under_its_sub_path(
    edge: Edge, api_server: Server, tmp_path: Path
) -> None:
    stand_in = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StandIn)
    threading.Thread(target=stand_in.serve_forever, daemon=True).start()
    upstream = api_server.base_url.removeprefix("http://")
    try:
        grafana = f"127.0.0.1:{stand_in.server_address[1]}"
        with running_edge(upstream, tmp_path, grafana_upstream=grafana) as with_grafana:
            answer = through_edge(with_grafana, "GET", f"{edge_facts.GRAFANA_PATH}api/health")
    finally:
        stand_in.shutdown()
    assert answer.status_code == 200
    # The sub-path reaches Grafana unchanged (it serves from it), and it learns the scheme was https.
    assert answer.json() == {"path": f"{edge_facts.GRAFANA_PATH}api/health", "proto": "https"}
    # Without the location (Grafana not public) the path is the API's, which knows no such route.
    assert through_edge(edge, "GET", f"{edge_facts.GRAFANA_PATH}api/health").status_code == 404
