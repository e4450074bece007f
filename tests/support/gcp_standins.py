"""TEST ONLY: stand-ins for the two GCP endpoints an API replica's startup script calls.

GCP itself cannot run here. One small HTTP server plays both, with the real paths and answers:
- the metadata server's token endpoint (`GET .../service-accounts/default/token`, header
  `Metadata-Flavor: Google`): `{"access_token": ..., "expires_in": ..., "token_type": "Bearer"}`;
- Secret Manager's `GET /v1/{version name}:access` with `Authorization: Bearer <that token>`:
  `{"name": ..., "payload": {"data": <base64>}}`.
Anything else, or a request without its header, gets 403 and is recorded, so a test can see exactly
what the script asked for and how.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from config.stack_layout import METADATA_TOKEN_URL

TOKEN_PATH = urlsplit(METADATA_TOKEN_URL).path


@dataclass
class GcpStandIn:
    token: str
    secret_version: str
    secret_value: str
    base_url: str = ""
    # (path, answered status) of every request, in order.
    requests: list[tuple[str, int]] = field(default_factory=list)

    @property
    def token_url(self) -> str:
        return f"{self.base_url}{TOKEN_PATH}"

    @property
    def secret_manager_url(self) -> str:
        return f"{self.base_url}/v1"

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
        if path == TOKEN_PATH and headers.get("metadata-flavor") == "Google":
            return 200, {"access_token": self.token, "expires_in": 3599, "token_type": "Bearer"}
        if (
            path == f"/v1/{self.secret_version}:access"
            and headers.get("authorization") == f"Bearer {self.token}"
        ):
            data = base64.b64encode(self.secret_value.encode()).decode()
            return 200, {"name": self.secret_version, "payload": {"data": data}}
        return 403, {"error": {"code": 403, "message": "denied by the stand-in"}}


def _handler(stand_in: GcpStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            headers = {key.lower(): value for key, value in self.headers.items()}
            status, body = stand_in.answer(self.path, headers)
            stand_in.requests.append((self.path, status))
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the token and the secret must not reach the test's output either."""

    return Handler


@contextmanager
def serving(stand_in: GcpStandIn, address: str) -> Iterator[GcpStandIn]:
    """Serve `stand_in` on `address` (where the test host reaches this machine), any free port."""
    server = ThreadingHTTPServer((address, 0), _handler(stand_in))
    stand_in.base_url = f"http://{address}:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stand_in
    finally:
        server.shutdown()
        server.server_close()
