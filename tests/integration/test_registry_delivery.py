"""Registry delivery for real: the stack role, given an image by digest, pulls it from a registry
and compose runs that digest.

A local registry (Debian's `docker-registry`, CNCF Distribution) on loopback stands in for
Artifact Registry: this machine's Docker pushes the locally built edge image there (the smallest
own image: the others travel the same path), forgets the pushed reference, and the role's own
tasks (files.yml writes `.env`, registry.yml pulls) run against this machine's Docker. The
metadata-server login needs a GCE VM: for a registry that is not Artifact Registry it is skipped,
which is what this run checks too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from config import stack_layout as layout
from config.services import EDGE_IMAGE
from stacks.image_digests import compose_variables, registry_logins
from tests.support.registry import Registry, docker, push, running_registry

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PROJECT = "mlops-registry-test"


def has_image(reference: str) -> bool:
    return (
        subprocess.run(["docker", "image", "inspect", reference], capture_output=True, check=False).returncode
        == 0
    )


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry on 127.0.0.1 (Docker pushes to loopback registries over plain HTTP)."""
    with running_registry(tmp_path_factory.mktemp("registry")) as server:
        yield server


@pytest.fixture(scope="module")
def released_edge(registry: Registry) -> Iterator[str]:
    """The edge image pushed to the registry, as REGISTRY/NAME@sha256:..., absent from Docker."""
    reference = f"{registry.push_host}/mlops-images/edge@{push(EDGE_IMAGE, registry, 'mlops-images/edge')}"
    yield reference
    # The role tags what it pulled (REPOSITORY:deployed) so the prune keeps it: remove both.
    deployed = f"{reference.split('@', maxsplit=1)[0]}:deployed"
    subprocess.run(["docker", "image", "rm", deployed, reference], capture_output=True, check=False)


def run_role_tasks(stack_dir: Path, references: dict[str, str], logins: list[str]) -> None:
    """files.yml then registry.yml of the stack role, on this machine, as its provisioning runs them."""
    playbook = stack_dir.parent / "registry-delivery.yml"
    tasks = [
        {"ansible.builtin.include_role": {"name": "stack", "tasks_from": name}}
        for name in ("files", "registry")
    ]
    playbook.write_text(
        yaml.safe_dump([{"hosts": "localhost", "connection": "local", "gather_facts": False, "tasks": tasks}])
    )
    extravars = {
        "stack_dir": str(stack_dir),
        "stack_source_dir": str(REPO_ROOT),
        "stack_compose": str(VENV_BIN / "docker-compose"),
        "stack_privileged": False,
        "stack_was_running": False,
        "stack_image_delivery": "registry",
        "stack_image_references": references,
        "stack_registry_logins": logins,
        "ansible_python_interpreter": sys.executable,
    }
    env = dict(os.environ, ANSIBLE_ROLES_PATH=str(REPO_ROOT / "playbooks/roles"))
    result = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", str(playbook), "-e", json.dumps(extravars)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:]


def test_the_role_pulls_the_pinned_digest_and_compose_runs_it(released_edge: str, tmp_path: Path) -> None:
    assert not has_image(released_edge), "the pushed reference must be gone before the pull"
    digests = {EDGE_IMAGE: released_edge}
    # Not Artifact Registry: no metadata-server login is attempted.
    assert registry_logins(digests) == []
    stack_dir = tmp_path / "stack"
    run_role_tasks(stack_dir, compose_variables(digests), registry_logins(digests))

    env_lines = (stack_dir / ".env").read_text().splitlines()
    assert f"{layout.EDGE_IMAGE_VARIABLE}={released_edge}" in env_lines
    # Pulled by digest: the registry's copy of the edge is the image built here.
    assert has_image(released_edge)
    pulled = docker("image", "inspect", "--format", "{{.Id}}", released_edge)
    assert pulled == docker("image", "inspect", "--format", "{{.Id}}", EDGE_IMAGE)

    compose = [str(VENV_BIN / "docker-compose"), "--project-name", PROJECT]
    images = subprocess.run(
        [*compose, "config", "--images"], cwd=stack_dir, capture_output=True, text=True, check=True
    ).stdout.split()
    assert released_edge in images
    # A container compose makes for the edge runs exactly that digest. The env files are
    # secrets.yml's (not run here): compose only needs them to exist.
    for name in (layout.MLFLOW_CLIENT_ENV_FILE, layout.MLFLOW_API_CLIENT_ENV_FILE):
        (stack_dir / layout.SECRETS_DIR / name).touch()
    try:
        subprocess.run(
            [*compose, "up", "--no-start", "--no-deps", "edge"],
            cwd=stack_dir,
            capture_output=True,
            check=True,
        )
        container = docker(
            "ps", "--all", "--quiet", "--filter", f"label=com.docker.compose.project={PROJECT}"
        )
        assert docker("inspect", "--format", "{{.Config.Image}}", container) == released_edge
        assert docker("inspect", "--format", "{{.Image}}", container) == pulled
    finally:
        subprocess.run([*compose, "down", "--volumes"], cwd=stack_dir, capture_output=True, check=False)
