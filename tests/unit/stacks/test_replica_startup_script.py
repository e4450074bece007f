"""The API replicas' startup script (stacks/replica_startup.py): rendered from config/ and the
compose service, linted by shellcheck, and refusing what a replica must never run.

It runs for real in tests/e2e/test_replica_startup.py (a fresh test host, no Ansible)."""

from __future__ import annotations

import itertools
import re
import shlex
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from config import stack_layout as layout
from config.api_group import GOOGLE_FRONT_END_RANGES
from config.services import API_IMAGE, SERVICES
from stacks import provision
from stacks.api_scale_out import ReplicaStartup
from stacks.compose import api_service, compose_document
from stacks.image_digests import ENV_IMAGE_DIGESTS, to_json
from stacks.replica_startup import (
    ReplicaSpecError,
    container_arguments,
    run_options,
    spec_hash,
    startup_script,
)
from tests.support.pulumi_harness import (
    FAKE_INTERNAL_IP,
    GET_ZONES,
    INSTANCE_TEMPLATE,
    LOCAL_COMMAND,
    Deployment,
    RecordingMocks,
    engine_config,
    run_program,
    stack_files,
)
from tests.unit.stacks.test_image_digests import released

DIGEST = "sha256:" + "ab" * 32
STARTUP = ReplicaStartup(
    api_image=f"europe-west1-docker.pkg.dev/proj/mlops-images/mlops-api@{DIGEST}",
    registry_logins=("europe-west1-docker.pkg.dev",),
    mlflow_url=f"http://10.10.0.2:{SERVICES.mlflow.port}",
    password_secret_version="projects/proj/secrets/mlops-api-mlflow-password-1a2b/versions/3",
)


def _pairs(arguments: list[str], flag: str) -> list[str]:
    return [arguments[i + 1] for i, argument in enumerate(arguments[:-1]) if argument == flag]


def _environment(arguments: list[str]) -> dict[str, str]:
    return dict(value.split("=", 1) for value in _pairs(arguments, "--env") if "=" in value)


def test_the_rendered_script_passes_shellcheck(tmp_path: Path) -> None:
    script = tmp_path / "startup.sh"
    script.write_text(startup_script(STARTUP), encoding="utf-8")
    result = subprocess.run(
        ["shellcheck", "--shell=bash", "--severity=style", str(script)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_tag_is_refused_only_a_digest_runs() -> None:
    tagged = replace(STARTUP, api_image="europe-west1-docker.pkg.dev/proj/mlops-images/mlops-api:latest")
    with pytest.raises(ValueError, match="by digest"):
        startup_script(tagged)


def test_the_password_is_named_by_its_secret_manager_version_never_given() -> None:
    with pytest.raises(ValueError, match="Secret Manager version"):
        startup_script(replace(STARTUP, password_secret_version="hunter2"))
    script = startup_script(STARTUP)
    # The password reaches `docker run` by name only; its value comes from that command's environment.
    arguments = container_arguments(STARTUP)
    assert "MLFLOW_TRACKING_PASSWORD" in _pairs(arguments, "--env")
    assert not any(value.startswith("MLFLOW_TRACKING_PASSWORD=") for value in arguments)
    assert 'MLFLOW_TRACKING_PASSWORD="$password" docker run' in script
    # The token goes to curl as a header on stdin and to Docker on stdin, never as an argument.
    assert "--header @-" in script
    assert "--password-stdin" in script
    assert not re.search(r"set -x|xtrace", script)


def test_the_gcp_endpoints_default_to_gcp_and_are_overridable() -> None:
    script = startup_script(STARTUP)
    assert f'"${{{layout.METADATA_TOKEN_URL_VARIABLE}:-{layout.METADATA_TOKEN_URL}}}"' in script
    assert f'"${{{layout.SECRET_MANAGER_URL_VARIABLE}:-{layout.SECRET_MANAGER_URL}}}"' in script
    assert f"readonly password_secret={shlex.quote(STARTUP.password_secret_version)}" in script


def test_the_replica_runs_the_compose_services_hardening() -> None:
    service = api_service()
    assert service == compose_document()["services"][SERVICES.api.name]
    arguments = container_arguments(STARTUP)
    assert "--read-only" in arguments
    assert _pairs(arguments, "--tmpfs") == service["tmpfs"]
    assert _pairs(arguments, "--cap-drop") == service["cap_drop"] == ["ALL"]
    assert _pairs(arguments, "--security-opt") == service["security_opt"]
    assert _pairs(arguments, "--memory") == [service["mem_limit"]]
    assert _pairs(arguments, "--pids-limit") == [str(service["pids_limit"])]
    assert _pairs(arguments, "--restart") == [service["restart"]]
    assert _pairs(arguments, "--log-driver") == [service["logging"]["driver"]]
    assert sorted(_pairs(arguments, "--log-opt")) == sorted(
        f"{k}={v}" for k, v in service["logging"]["options"].items()
    )
    # The whole VM's CPUs instead of the compose service's share (the script adds `--cpus $(nproc)`).
    assert "--cpus" not in arguments
    assert '--cpus "$(nproc)"' in startup_script(STARTUP)
    assert _pairs(arguments, "--publish") == [f"{SERVICES.api.port}:{SERVICES.api.port}"]
    assert arguments[-1] == STARTUP.api_image


def test_the_replica_has_the_compose_environment_with_mlflow_on_the_management_vm() -> None:
    compose_environment = api_service()["environment"]
    environment = _environment(container_arguments(STARTUP))
    changed = {key for key in compose_environment if environment.get(key) != str(compose_environment[key])}
    assert changed == {"MLOPS_TRACKING_URI", "FORWARDED_ALLOW_IPS"}
    assert environment["MLOPS_TRACKING_URI"] == STARTUP.mlflow_url
    assert environment["FORWARDED_ALLOW_IPS"].split(",") == list(GOOGLE_FRONT_END_RANGES)
    assert environment["MLFLOW_TRACKING_USERNAME"] == layout.MLFLOW_API_USER
    assert set(environment) - set(compose_environment) == {"MLFLOW_TRACKING_USERNAME"}


def test_a_compose_setting_the_replica_cannot_translate_is_refused() -> None:
    with pytest.raises(ReplicaSpecError, match="healthcheck"):
        run_options({**api_service(), "healthcheck": {"test": ["CMD", "true"]}})


def test_the_spec_hash_follows_the_image_and_the_password_version() -> None:
    assert spec_hash(STARTUP) == spec_hash(replace(STARTUP))
    other_image = replace(STARTUP, api_image=STARTUP.api_image.replace("ab" * 32, "cd" * 32))
    rotated = replace(STARTUP, password_secret_version=STARTUP.password_secret_version[:-1] + "4")
    moved = replace(STARTUP, mlflow_url=f"http://10.10.0.9:{SERVICES.mlflow.port}")
    hashes = {spec_hash(s) for s in (STARTUP, other_image, rotated, moved)}
    assert len(hashes) == 4
    assert f"readonly spec={spec_hash(STARTUP)}" in startup_script(STARTUP)


def test_mlflow_is_published_on_loopback_and_on_the_bind_variable_only() -> None:
    mlflow = SERVICES.mlflow
    service = compose_document()["services"][mlflow.name]
    bind = f"${{{layout.MLFLOW_BIND_VARIABLE}:-127.0.0.1}}"
    assert service["ports"] == [
        f"127.0.0.1:{mlflow.port}:{mlflow.port}",
        f"{bind}:{mlflow.port}:{mlflow.port}",
    ]
    # The replicas' Host header (the management VM's internal address) passes MLflow's host check.
    allowed = service["command"][service["command"].index("--allowed-hosts") + 1].split(",")
    assert f"{bind}:{mlflow.port}" in allowed


# --- the program hands the real script the management VM's address (Pulumi engine mocked) ---------

SCALE_OUT: dict[str, object] = {"mlops-platform:apiReplicas": 3}
REGION_ZONES = ["europe-west1-b", "europe-west1-c", "europe-west1-d"]


def _deploy(overrides: dict[str, object]) -> Deployment:
    return run_program(
        engine_config(stack_files()[0], overrides),
        mocks=RecordingMocks({GET_ZONES: lambda _args: {"names": REGION_ZONES}}),
        deploy_options={"environ": {ENV_IMAGE_DIGESTS: to_json(released())}},
    )


def test_the_group_boots_the_real_script_with_mlflow_on_the_management_vms_internal_address(
    tmp_path: Path,
) -> None:
    deployment = _deploy(SCALE_OUT)
    script = deployment.one(INSTANCE_TEMPLATE).inputs["metadataStartupScript"]
    mlflow_url = f"http://{FAKE_INTERNAL_IP}:{SERVICES.mlflow.port}"
    assert f"'MLOPS_TRACKING_URI={mlflow_url}'" in script
    assert f"readonly api_image={released()[API_IMAGE]}" in script
    (path := tmp_path / "startup.sh").write_text(script, encoding="utf-8")
    assert subprocess.run(["shellcheck", str(path)], capture_output=True, check=False).returncode == 0
    # The management VM publishes MLflow on that same address (the stack role's `.env`).
    argv = shlex.split(deployment.one(LOCAL_COMMAND).inputs["create"])
    assert dict(itertools.pairwise(argv))["--mlflow-bind-address"] == FAKE_INTERNAL_IP


def test_a_single_vm_keeps_mlflow_on_loopback_only() -> None:
    argv = shlex.split(_deploy({}).one(LOCAL_COMMAND).inputs["create"])
    assert "--mlflow-bind-address" not in argv


def test_the_entry_point_takes_mlflows_bind_address_as_a_role_var_and_refuses_a_non_address(
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = ["--host", "203.0.113.7", "--user", "deploy"]
    assert provision.mlflow_vars(provision.parse_args(base)) == {}
    args = provision.parse_args([*base, "--mlflow-bind-address", "10.10.0.2"])
    assert provision.mlflow_vars(args) == {"stack_mlflow_bind_address": "10.10.0.2"}
    with pytest.raises(SystemExit):
        provision.parse_args([*base, "--mlflow-bind-address", "10.10.0.2:5000"])
    assert "not an IPv4 address" in capsys.readouterr().err
