"""The committed compose file is what `python -m stacks.compose` renders from config/services.py.

Fast checks (no Docker) that run before the slow end-to-end test: one source of truth for ports,
images and exposure, and the hardening every long-running service must have.
"""

from __future__ import annotations

import yaml

from config.services import SERVICES, Exposure
from stacks import compose
from stacks.provision import known_hosts_lines


def test_committed_compose_file_is_current() -> None:
    assert compose.main(["--check"]) == 0, "run `python -m stacks.compose`"


def test_compose_services_agree_with_the_catalog() -> None:
    document = yaml.safe_load(compose.COMPOSE_FILE.read_text(encoding="utf-8"))
    services = document["services"]
    for service in SERVICES.all():
        spec = services[service.name]
        assert spec["image"] == service.image
        assert ":latest" not in spec["image"]
        published = spec["ports"][0]
        host_ip, host_port, container_port = published.rsplit(":", 2)
        assert int(host_port) == int(container_port) == service.port
        if service.exposure is Exposure.PUBLIC:
            assert host_ip == "0.0.0.0"
        elif service.exposure is Exposure.INTERNAL:
            assert host_ip == "127.0.0.1"
        else:  # optional-public: loopback unless the stack role sets the bind address
            assert host_ip == "${GRAFANA_BIND_ADDRESS:-127.0.0.1}"


def test_every_service_is_hardened() -> None:
    document = yaml.safe_load(compose.COMPOSE_FILE.read_text(encoding="utf-8"))
    for name, spec in document["services"].items():
        assert spec["security_opt"] == ["no-new-privileges:true"], name
        assert spec["cap_drop"] == ["ALL"], name
        assert spec["read_only"] is True, name
        for limit in ("mem_limit", "cpus", "pids_limit"):
            assert spec[limit], (name, limit)
        assert spec["restart"] == ("no" if name == "trainer" else "unless-stopped"), name
        assert not any("docker.sock" in volume for volume in spec.get("volumes", [])), name
        if name != "trainer":
            # api's healthcheck is the HEALTHCHECK of app/Dockerfile (probes /ready).
            assert "healthcheck" in spec or name == SERVICES.api.name, name


def test_known_hosts_lines_pin_the_given_key_to_host_and_port() -> None:
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx"
    assert known_hosts_lines("10.0.0.5", 22, key) == [f"10.0.0.5 {key}"]
    assert known_hosts_lines("127.0.0.1", 2222, f"somehost {key} comment") == [f"[127.0.0.1]:2222 {key}"]
