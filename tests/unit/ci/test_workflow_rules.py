"""The workflows' security and structure rules: read-only by default, OIDC only where a job
authenticates, no persisted git credentials, the project and repository from variables, and every
`run:` step a make target or a script that exists."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
WORKFLOWS = {path.name: path for path in sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))}
AUTH_ACTION = "google-github-actions/auth@"


def load(name: str) -> dict[str, Any]:
    loaded: dict[Any, Any] = yaml.safe_load(WORKFLOWS[name].read_text())
    # YAML 1.1 reads the key `on` as True.
    loaded["on"] = loaded.pop(True, loaded.get("on"))
    return loaded


def jobs() -> list[tuple[str, str, dict[str, Any]]]:
    return [(name, job_id, job) for name in WORKFLOWS for job_id, job in load(name)["jobs"].items()]


def steps() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{name}:{job_id}", step) for name, job_id, job in jobs() for step in job.get("steps", [])]


@pytest.mark.parametrize("name", WORKFLOWS)
def test_top_level_permissions_are_read_only(name: str) -> None:
    assert load(name)["permissions"] == {"contents": "read"}


@pytest.mark.parametrize(("name", "job_id", "job"), jobs())
def test_id_token_is_granted_only_to_jobs_that_authenticate(
    name: str, job_id: str, job: dict[str, Any]
) -> None:
    authenticates = any(AUTH_ACTION in step.get("uses", "") for step in job.get("steps", []))
    calls_a_workflow = "uses" in job
    granted = job.get("permissions", {}).get("id-token") == "write"
    assert granted == (authenticates or calls_a_workflow), f"{name}:{job_id}"


def test_every_checkout_drops_its_credentials() -> None:
    checkouts = [
        (where, step) for where, step in steps() if step.get("uses", "").startswith("actions/checkout@")
    ]
    assert checkouts
    for where, step in checkouts:
        assert step.get("with", {}).get("persist-credentials") is False, where


def test_deploy_accounts_are_separate_and_production_is_an_environment() -> None:
    deploy = load("deploy.yml")["jobs"]
    accounts = {
        job_id: step["with"]["service_account"]
        for job_id, job in deploy.items()
        for step in job["steps"]
        if AUTH_ACTION in step.get("uses", "")
    }
    assert accounts == {
        "preview": "${{ vars.GCP_PREVIEW_SERVICE_ACCOUNT }}",
        "up": "${{ vars.GCP_DEPLOY_SERVICE_ACCOUNT }}",
    }
    assert deploy["up"]["environment"] == "production"
    assert deploy["up"]["concurrency"] == {"group": "deploy-production", "cancel-in-progress": False}
    assert "environment" not in deploy["preview"]


def test_preview_runs_the_policy_pack_and_comments_on_the_pull_request() -> None:
    preview = load("deploy.yml")["jobs"]["preview"]
    pulumi_step = next(
        step for step in preview["steps"] if step.get("uses", "").startswith("pulumi/actions@")
    )
    assert pulumi_step["with"]["command"] == "preview"
    assert pulumi_step["with"]["policyPacks"] == "policy"
    assert pulumi_step["with"]["comment-on-pr"] is True


def test_main_deploys_the_digests_the_release_recorded() -> None:
    release = load("release.yml")
    assert release["on"]["push"] == {"branches": ["main"], "tags": ["v*"]}
    deploy_call = release["jobs"]["deploy"]
    assert deploy_call["uses"] == "./.github/workflows/deploy.yml"
    assert deploy_call["needs"] == "images"
    assert deploy_call["with"]["image-digests"] == "${{ needs.images.outputs.digests }}"
    up = load("deploy.yml")["jobs"]["up"]
    pulumi_step = next(step for step in up["steps"] if step.get("uses", "").startswith("pulumi/actions@"))
    assert pulumi_step["env"]["MLOPS_IMAGE_DIGESTS"] == "${{ inputs.image-digests }}"
    assert pulumi_step["with"]["command"] == "up"


def test_no_project_or_repository_is_hard_coded() -> None:
    text = "\n".join(path.read_text() for path in WORKFLOWS.values())
    assert not re.search(r"projects/\d+|\.iam\.gserviceaccount\.com|gs://|docker\.pkg\.dev/", text)
    assert "vars.GCP_WORKLOAD_IDENTITY_PROVIDER" in text


def run_commands() -> list[tuple[str, list[str]]]:
    found = []
    for where, step in steps():
        for line in step.get("run", "").splitlines():
            if line.strip():
                found.append((where, shlex.split(line)))
    return found


def test_ci_runs_each_test_suite_as_its_own_job() -> None:
    commands = {" ".join(argv) for where, argv in run_commands() if where.startswith("ci.yml:")}
    assert {"make lint", "make unit", "make integration", "make e2e"} <= commands


@pytest.mark.parametrize(("where", "argv"), run_commands())
def test_every_run_step_is_a_make_target_or_a_repo_script(where: str, argv: list[str]) -> None:
    if argv[0] == "make":
        # Variables get a stand-in value (the step's shell would expand them on the runner).
        args = [re.sub(r"=.*", "=stand-in", arg) if "=" in arg else arg for arg in argv[1:]]
        targets = [arg for arg in args if "=" not in arg]
        assert targets, where
        env = {**os.environ, "MAKEFLAGS": ""}
        result = subprocess.run(
            ["make", "-n", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"{where}: make -n {' '.join(args)}: {result.stderr}"
    else:
        script = REPO_ROOT / argv[0]
        assert argv[0].startswith("scripts/"), f"{where}: {argv[0]} is neither make nor scripts/..."
        assert script.is_file(), where
        assert os.access(script, os.X_OK), f"{where}: {argv[0]} is not executable"
