"""Alertmanager's configuration: routes by severity, grouping, inhibition, and the stack's receivers.

Routing, grouping and inhibition are facts of this module. The receivers come from the stack config
(config/alert_receivers.py); their webhook URLs and SMTP password are secrets, so the full config is
rendered at deploy time (`rendered_config`) and reaches the host as a 0600 secret file, never the
repo. Alertmanager 0.25 (Debian's, in the tests) has no `url_file` for webhooks, so the secrets
are written into that file rather than referenced by path. `make generate` writes the
receiver-less config to the repo (`ALERTMANAGER_EXAMPLE_FILE`) for review and `amtool check-config`.
With no receiver configured, alerts reach the `null` receiver: they show in Prometheus' and
Alertmanager's UIs only, and nobody is notified.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.alert_receivers import AlertReceiverSettings

REPO_ROOT = Path(__file__).resolve().parent.parent
ALERTMANAGER_EXAMPLE_FILE = REPO_ROOT / "config" / "alertmanager" / "alertmanager.yml"
# Where the container reads its config (a compose secret) and keeps its silences and notification log.
ALERTMANAGER_CONFIG_SECRET = "alertmanager_config"  # noqa: S105 - a file name
ALERTMANAGER_CONTAINER_CONFIG_FILE = f"/run/secrets/{ALERTMANAGER_CONFIG_SECRET}"
ALERTMANAGER_CONTAINER_DATA_DIR = "/alertmanager"

NULL_RECEIVER = "null"
PAGE_RECEIVER = "page"
# Alerts are grouped per rule and scrape job: one notification lists every instance of the same problem.
GROUP_BY = ("alertname", "job")
# `ApiDown` explains these: while the API cannot be scraped its traffic and latency alerts are noise.
# The API alerts aggregate away `job` and `instance`; every alert carries the stack's external label
# `monitor` (config/monitoring.py), so inhibition is per stack.
API_DOWN = "ApiDown"
INHIBITED_BY_API_DOWN = (
    "ModelNotReady",
    "High5xxRatio",
    "HighP99Latency",
    "TrafficButNoPredictions",
    "HighInvalidInputRatio",
)
INHIBIT_EQUAL = ("monitor",)


@dataclass(frozen=True)
class AlertTiming:
    """Alertmanager's grouping and repeat durations (Alertmanager duration strings)."""

    # Wait before the first notification of a new group, so alerts firing together arrive together.
    group_wait: str = "30s"
    # Wait before notifying about changes (new or resolved alerts) in a group already notified.
    group_interval: str = "5m"
    # Critical alerts are repeated hourly while they fire; warnings twice a day.
    critical_repeat_interval: str = "1h"
    warning_repeat_interval: str = "12h"


DEFAULT_TIMING = AlertTiming()


def _receiver(settings: AlertReceiverSettings) -> dict[str, Any]:
    """The one receiver that pages: every configured channel at once. Reads secrets."""
    receiver: dict[str, Any] = {"name": PAGE_RECEIVER}
    if settings.alert_webhook_url is not None:
        receiver["webhook_configs"] = [
            {"url": settings.alert_webhook_url.get_secret_value(), "send_resolved": True}
        ]
    if settings.alert_slack_webhook_url is not None:
        receiver["slack_configs"] = [
            {"api_url": settings.alert_slack_webhook_url.get_secret_value(), "send_resolved": True}
        ]
    if settings.alert_email_to is not None:
        receiver["email_configs"] = [_email(settings)]
    return receiver


def _email(settings: AlertReceiverSettings) -> dict[str, Any]:
    email: dict[str, Any] = {
        "to": settings.alert_email_to,
        "from": settings.alert_email_from,
        "smarthost": settings.alert_smtp_smarthost,
        "send_resolved": True,
        # STARTTLS is required: credentials never cross the network in clear.
        "require_tls": True,
    }
    if settings.alert_smtp_username is not None and settings.alert_smtp_password is not None:
        email["auth_username"] = settings.alert_smtp_username
        email["auth_password"] = settings.alert_smtp_password.get_secret_value()
    return email


def _route(receiver: str, timing: AlertTiming) -> dict[str, Any]:
    def by_severity(severity: str, repeat: str) -> dict[str, Any]:
        return {"receiver": receiver, "matchers": [f'severity="{severity}"'], "repeat_interval": repeat}

    return {
        "receiver": receiver,
        "group_by": list(GROUP_BY),
        "group_wait": timing.group_wait,
        "group_interval": timing.group_interval,
        "repeat_interval": timing.warning_repeat_interval,
        "routes": [
            by_severity("critical", timing.critical_repeat_interval),
            by_severity("warning", timing.warning_repeat_interval),
        ],
    }


def _inhibit_rules() -> list[dict[str, Any]]:
    targets = "|".join(INHIBITED_BY_API_DOWN)
    return [
        {
            "source_matchers": [f'alertname="{API_DOWN}"'],
            "target_matchers": [f'alertname=~"{targets}"'],
            "equal": list(INHIBIT_EQUAL),
        }
    ]


def alertmanager_config(
    settings: AlertReceiverSettings | None = None, timing: AlertTiming = DEFAULT_TIMING
) -> dict[str, Any]:
    """Alertmanager's config as a dict. It holds the receivers' secrets when any is configured."""
    receivers: list[dict[str, Any]] = [{"name": NULL_RECEIVER}]
    if settings is not None and settings.has_alert_receiver:
        receivers.append(_receiver(settings))
    root = receivers[-1]["name"]
    return {"route": _route(root, timing), "inhibit_rules": _inhibit_rules(), "receivers": receivers}


def example_config() -> dict[str, Any]:
    """The receiver-less config, as `make generate` writes it to the repo."""
    return alertmanager_config()


def rendered_config(
    settings: AlertReceiverSettings | None = None, timing: AlertTiming = DEFAULT_TIMING
) -> str:
    """The config as one line of JSON (valid YAML): the provisioning entry point hands it to the
    playbook as the answer to a prompt, which reads a single line."""
    return json.dumps(alertmanager_config(settings, timing), separators=(",", ":"))
