"""End to end, on the shared provisioned test host (after test_provisioning.py, before
test_recovery.py): host metrics reach Prometheus, and an alert reaches a receiver.

Alertmanager and node-exporter are TEST ONLY built from Debian's packages and tagged with the
catalog's pinned names (tests/support/debian_service_image/Dockerfile). Alertmanager's one receiver
is the test's webhook on this machine, with short grouping durations (tests/support/alert_webhook.py);
the alert rules are the repo's own (`ApiDown` keeps its `for: 1m`).
"""

from __future__ import annotations

import time

import pytest

from config.services import SERVICES
from config.stack_layout import DATA_DISK_MOUNT_POINT
from tests.support.alert_webhook import AlertWebhook
from tests.support.prometheus_query import wait_for_series
from tests.support.provisioned import ProvisionedHost

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]
API_CONTAINER = "mlops-api-1"
# ApiDown: up to 15 s until the failed scrape, 1 m `for`, 15 s evaluation, 5 s group_wait.
FIRING_DEADLINE = 180
RESOLVED_DEADLINE = 180


def report(capsys: pytest.CaptureFixture[str], message: str) -> None:
    with capsys.disabled():
        print(f"\n[e2e] {message}", flush=True)


def test_prometheus_scrapes_node_exporter_and_alertmanager(provisioned: ProvisionedHost) -> None:
    with provisioned.tunnel(SERVICES.prometheus.port) as port:
        for job in (SERVICES.node_exporter.name, SERVICES.alertmanager.name):
            wait_for_series(port, f'up{{job="{job}"}} == 1')
        # The data disk's filesystem, labelled by the relabel rule the disk alert selects.
        (volume,) = wait_for_series(port, 'node_filesystem_size_bytes{job="node-exporter",volume="data"}')
        assert volume["metric"]["mountpoint"] == DATA_DISK_MOUNT_POINT
        assert float(volume["value"][1]) > 0
        # Written every minute by the stack role's timer; test_provisioning.py killed the API once.
        (api,) = wait_for_series(port, 'mlops_container_restarts_total{job="node-exporter",container="api"}')
        assert float(api["value"][1]) >= 1
        wait_for_series(port, 'mlops_container_restarts_total{container="mlflow"}')
        # Prometheus delivers alerts to Alertmanager.
        (sent,) = wait_for_series(port, "prometheus_notifications_alertmanagers_discovered")
        assert float(sent["value"][1]) == 1


def test_api_down_reaches_the_webhook_and_so_does_its_resolution(
    provisioned: ProvisionedHost, alert_webhook: AlertWebhook, capsys: pytest.CaptureFixture[str]
) -> None:
    host = provisioned.host
    stopped = time.monotonic()
    host.inner_docker("stop", API_CONTAINER)
    try:
        firing = alert_webhook.wait_for(lambda n: n.has("ApiDown", "firing"), stopped, FIRING_DEADLINE)
    finally:
        started = time.monotonic()
        host.inner_docker("start", API_CONTAINER)
    resolved = alert_webhook.wait_for(lambda n: n.has("ApiDown", "resolved"), started, RESOLVED_DEADLINE)
    report(
        capsys,
        f"ApiDown firing {firing.received - stopped:.0f} s after the API stopped, "
        f"resolved {resolved.received - started:.0f} s after it started again",
    )
    (alert,) = (a for a in firing.body["alerts"] if a["labels"]["alertname"] == "ApiDown")
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["runbook_url"].endswith("#apidown")
    assert firing.body["receiver"] == "page"
    # Leave the stack as the other tests found it: the API healthy again.
    deadline = time.monotonic() + 180
    health = ""
    while time.monotonic() < deadline:
        health = host.inner_docker("inspect", "--format", "{{.State.Health.Status}}", API_CONTAINER)
        if health == "healthy":
            break
        time.sleep(2)
    assert health == "healthy"


def test_alertmanagers_config_is_a_0600_secret_of_its_own_user(provisioned: ProvisionedHost) -> None:
    path = "/opt/mlops/secrets/alertmanager_config"
    mode, uid = provisioned.host.exec("stat", "-c", "%a %u", path).split()
    assert (mode, int(uid)) == ("600", SERVICES.alertmanager.uid)
    assert "/alerts" not in provisioned.host.exec("cat", "/opt/mlops/compose.yml")
