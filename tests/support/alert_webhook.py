"""TEST ONLY: a webhook receiver for Alertmanager, run by the e2e on this machine, and the test
host's Alertmanager config that points at it with short test-only durations (through config:
the alert rules keep their own `for:` durations)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from config.alert_receivers import AlertReceiverSettings
from config.alertmanager import AlertTiming, rendered_config

# Short enough for a test: the first notification 5 s after an alert fires, changes (its
# resolution) 10 s after the group's last notification.
TEST_TIMING = AlertTiming(group_wait="5s", group_interval="10s")
WEBHOOK_PATH = "/alerts"


@dataclass(frozen=True)
class Notification:
    """One POST of Alertmanager's webhook format, with when it arrived (monotonic clock)."""

    received: float
    body: dict[str, Any]

    def has(self, alertname: str, status: str) -> bool:
        return any(
            alert["labels"].get("alertname") == alertname and alert["status"] == status
            for alert in self.body.get("alerts", [])
        )


@dataclass
class AlertWebhook:
    """Listens on `address` (this machine as the test host sees it) and keeps every notification."""

    address: str
    notifications: list[Notification] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> AlertWebhook:
        webhook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with webhook._lock:
                    webhook.notifications.append(Notification(time.monotonic(), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((self.address, 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://{self.address}:{self._server.server_address[1]}{WEBHOOK_PATH}"

    def alertmanager_config(self) -> str:
        """The config the test host's Alertmanager gets: this webhook as its one receiver."""
        settings = AlertReceiverSettings.model_validate({"alertWebhookUrl": self.url})
        return rendered_config(settings, TEST_TIMING)

    def wait_for(self, matches: Callable[[Notification], bool], after: float, timeout: float) -> Notification:
        """The first notification since `after` (monotonic) that matches, within `timeout` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                found = [n for n in self.notifications if n.received >= after and matches(n)]
            if found:
                return found[0]
            time.sleep(1)
        with self._lock:
            seen = [n.body.get("status") for n in self.notifications]
        raise AssertionError(f"no matching notification within {timeout} s (seen: {seen})")

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
