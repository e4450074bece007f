"""Concurrent clients hammering /predict, one fresh connection per request, failures counted by kind.

A failure's kind says whether the request may have reached the server: `refused` (the connection
was never established, so nothing was sent; a client may safely retry) versus `reset` (the
connection was accepted, then dropped before an answer: the request is lost).
"""

from __future__ import annotations

import http.client
import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]
EXPECTED = {tuple(SETOSA): "setosa", tuple(VIRGINICA): "virginica"}


@dataclass
class LoadOutcome:
    """What the clients saw: answers by status, and failures by kind."""

    outcomes: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str) -> None:
        with self.lock:
            self.outcomes[kind] += 1

    @property
    def answered(self) -> int:
        return self.outcomes["200"]

    @property
    def lost(self) -> int:
        """Requests sent on an accepted connection that got no answer."""
        return self.outcomes["reset"] + self.outcomes["timeout"] + self.outcomes["other_error"]

    @property
    def wrong(self) -> int:
        """Answers that were not a correct 200."""
        statuses = sum(n for kind, n in self.outcomes.items() if kind.isdigit() and kind != "200")
        return statuses + self.outcomes["wrong_class"]


def predict_once(host: str, port: int, features: list[float], timeout: float) -> str:
    """One request on a new connection (Connection: close); the outcome's kind."""
    body = json.dumps({"features": features})
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        try:
            connection.connect()
        except ConnectionRefusedError:
            return "refused"
        connection.request(
            "POST", "/predict", body, {"Content-Type": "application/json", "Connection": "close"}
        )
        response = connection.getresponse()
        payload = response.read()
    except TimeoutError:
        return "timeout"
    except (ConnectionError, http.client.RemoteDisconnected, http.client.IncompleteRead):
        return "reset"
    except OSError:
        return "other_error"
    finally:
        connection.close()
    if response.status != 200:
        return str(response.status)
    return "200" if json.loads(payload)["prediction"] == EXPECTED[tuple(features)] else "wrong_class"


class Hammer:
    """`clients` threads posting /predict back to back until stopped (or refused: the server is gone)."""

    def __init__(self, base_url: str, clients: int, timeout: float = 10.0, stop_on_refused: bool = True):
        parts = urlsplit(base_url)
        self._address = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._timeout = timeout
        self._stop_on_refused = stop_on_refused
        self._stop = threading.Event()
        self.result = LoadOutcome()
        self._threads = [
            threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(clients)
        ]

    def _client(self, index: int) -> None:
        features = SETOSA if index % 2 else VIRGINICA
        while not self._stop.is_set():
            kind = predict_once(*self._address, features, self._timeout)
            self.result.add(kind)
            if kind == "refused" and self._stop_on_refused:
                return

    def __enter__(self) -> Hammer:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> LoadOutcome:
        self._stop.set()
        return self.finish()

    def finish(self) -> LoadOutcome:
        """Wait for the clients to end by themselves (each one ends when it is refused)."""
        for thread in self._threads:
            thread.join(self._timeout + 5)
        return self.result
