"""Fixtures for the end-to-end test: a test host provisioned once by the real entry point."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from stacks.provision_env import ENV_ALERTMANAGER_CONFIG
from tests.support import testhost
from tests.support.alert_webhook import AlertWebhook
from tests.support.provisioned import GRAFANA_PASSWORD, MLFLOW_PASSWORD, ProvisionedHost, run_entry_point
from tests.support.testhost import LoopDisk, TestHost


@pytest.fixture(scope="session")
def alert_webhook() -> Iterator[AlertWebhook]:
    """The webhook the test host's Alertmanager notifies, on this machine's address as containers
    on Docker's default bridge (the test host, and through its NAT the inner stack) reach it."""
    webhook = AlertWebhook(testhost.default_bridge_gateway()).start()
    try:
        yield webhook
    finally:
        webhook.stop()


@pytest.fixture(scope="session")
def provisioned(
    tmp_path_factory: pytest.TempPathFactory, alert_webhook: AlertWebhook
) -> Iterator[ProvisionedHost]:
    testhost.build_base_images()
    testhost.build_testhost_image()
    testhost.build_test_prometheus_image()
    testhost.build_test_alertmanager_image()
    testhost.build_test_node_exporter_image()
    keys = tmp_path_factory.mktemp("keys")
    private_key, public_key = testhost.generate_ssh_key(keys)
    # The VM's data disk: blank, so the first run formats it (tests/e2e/test_recovery.py keeps it
    # for a replacement host).
    disk = LoopDisk.create(tmp_path_factory.mktemp("disk") / "data-disk.img")
    host = TestHost.start(f"mlops-e2e-{os.getpid()}", public_key, data_device=disk.device)
    provisioned_host: ProvisionedHost | None = None
    try:
        known_hosts = keys / "known_hosts"
        known_hosts.write_text(f"[127.0.0.1]:{host.ssh_port} {host.host_key()}\n", encoding="utf-8")
        # What the Pulumi program passes (secrets in the environment only) ...
        env = {
            **os.environ,
            "MLOPS_SSH_PRIVATE_KEY": private_key,
            "MLOPS_SSH_HOST_KEY": host.host_key(),
            "MLOPS_MLFLOW_ADMIN_PASSWORD": MLFLOW_PASSWORD,
            "MLOPS_GRAFANA_ADMIN_PASSWORD": GRAFANA_PASSWORD,
            # Alertmanager's one receiver is the test's webhook, with short test-only durations.
            ENV_ALERTMANAGER_CONFIG: alert_webhook.alertmanager_config(),
            # ... plus this machine's build settings: no registry, so a local Python base image,
            # Debian's BuildKit client, and the machine's CA bundle for pip (stacks/images.py).
            "MLOPS_DOCKER": testhost.DOCKER,
            "MLOPS_BASE_IMAGE": testhost.PYTHON_BASE,
            "MLOPS_BUILD_CA_BUNDLE": testhost.CA_BUNDLE,
        }
        first = run_entry_point(host, env)
        provisioned_host = ProvisionedHost(host, env, keys / "deploy_key", known_hosts, first, public_key)
        yield provisioned_host
    finally:
        # The host the session ends with (a test may have replaced it), then its disk.
        (provisioned_host.host if provisioned_host else host).remove()
        disk.detach()
