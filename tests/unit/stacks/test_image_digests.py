"""The released images by digest: parsed and checked, then what the entry point and the role get."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from config import stack_layout as layout
from config.services import API_IMAGE, EDGE_IMAGE, MLFLOW_IMAGE, OWN_IMAGE_NAMES, TRAINER_IMAGE
from stacks import provision
from stacks.image_digests import (
    ENV_IMAGE_DIGESTS,
    ArtifactRepository,
    ImageDigestsError,
    artifact_repository,
    compose_variables,
    digests_from_environment,
    parse_image_digests,
    registry_logins,
    to_json,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
ROLE = REPO_ROOT / "playbooks/roles/stack"
REGISTRY = "europe-west1-docker.pkg.dev/my-project/mlops-images"


def released(registry: str = REGISTRY) -> dict[str, str]:
    """What `make release` writes: each own image to REGISTRY/NAME@sha256:..."""
    return {
        name: f"{registry}/{name.rsplit('/', 1)[-1].split(':')[0]}@sha256:{str(i) * 64}"
        for i, name in enumerate(sorted(OWN_IMAGE_NAMES))
    }


def test_a_release_map_is_accepted_whole() -> None:
    digests = released()
    assert parse_image_digests(json.dumps(digests)) == digests


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("not json", "not JSON"),
        ('["a"]', "must be a JSON object"),
        (json.dumps({k: v for k, v in released().items() if k != API_IMAGE}), f"missing ['{API_IMAGE}']"),
        (json.dumps({**released(), "mlops-platform/other:1": "x"}), "unknown ['mlops-platform/other:1']"),
        (json.dumps({**released(), EDGE_IMAGE: f"{REGISTRY}/edge:0.1.0"}), f"{EDGE_IMAGE}: "),
        (json.dumps({**released(), EDGE_IMAGE: f"{REGISTRY}/edge@sha256:abc"}), "HOST/PATH@sha256:<64 hex>"),
        (json.dumps({**released(), EDGE_IMAGE: "library/edge@sha256:" + "a" * 64}), "HOST/PATH"),
        (json.dumps({**released(), EDGE_IMAGE: 7}), f"{EDGE_IMAGE}: 7 is not"),
    ],
)
def test_a_bad_map_is_refused_saying_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ImageDigestsError, match=None) as raised:
        parse_image_digests(text)
    assert says in str(raised.value)


def test_the_environment_variable_is_named_in_its_error_and_absent_means_archive() -> None:
    assert digests_from_environment({}) is None
    assert digests_from_environment({ENV_IMAGE_DIGESTS: " "}) is None
    with pytest.raises(ImageDigestsError, match=f"^environment variable {ENV_IMAGE_DIGESTS}: not JSON"):
        digests_from_environment({ENV_IMAGE_DIGESTS: "{"})


def test_the_json_form_is_canonical_so_only_a_new_digest_changes_the_command() -> None:
    digests = released()
    reordered = dict(reversed(list(digests.items())))
    assert to_json(reordered) == to_json(digests)
    assert " " not in to_json(digests)
    changed = {**digests, API_IMAGE: digests[API_IMAGE][:-1] + "f"}
    assert to_json(changed) != to_json(digests)


def test_each_image_goes_to_its_compose_variable() -> None:
    digests = released()
    assert compose_variables(digests) == {
        layout.API_IMAGE_VARIABLE: digests[API_IMAGE],
        layout.MLFLOW_IMAGE_VARIABLE: digests[MLFLOW_IMAGE],
        layout.TRAINER_IMAGE_VARIABLE: digests[TRAINER_IMAGE],
        layout.EDGE_IMAGE_VARIABLE: digests[EDGE_IMAGE],
    }


def test_docker_logs_in_to_artifact_registry_only() -> None:
    assert registry_logins(released()) == ["europe-west1-docker.pkg.dev"]
    assert registry_logins(released("127.0.0.1:5000/mlops")) == []
    assert registry_logins(released("registry.example.org/mlops")) == []


def test_the_repository_comes_from_the_registry_host_and_path() -> None:
    assert artifact_repository(released()) == ArtifactRepository("europe-west1", "my-project", "mlops-images")
    assert artifact_repository(released("127.0.0.1:5000/mlops")) is None


def test_images_split_over_two_repositories_or_a_short_path_are_refused() -> None:
    split = {**released(), API_IMAGE: released("us-docker.pkg.dev/p/other")[API_IMAGE]}
    with pytest.raises(ImageDigestsError, match="one Artifact Registry repository"):
        artifact_repository(split)
    short = {**released(), API_IMAGE: "us-docker.pkg.dev/p/api@sha256:" + "a" * 64}
    with pytest.raises(ImageDigestsError, match="PROJECT/REPOSITORY/IMAGE"):
        artifact_repository(short)


def entry_point(*extra: str) -> Any:
    return provision.parse_args(["--host", "h", "--user", "u", *extra])


def test_the_entry_point_takes_digests_inline_or_from_a_file(tmp_path: Path) -> None:
    digests = released()
    inline = entry_point("--image-delivery", "registry", "--image-digests", to_json(digests))
    file = tmp_path / "digests.json"
    file.write_text(json.dumps(digests, indent=2))
    from_file = entry_point("--image-delivery", "registry", "--image-digests", str(file))
    assert inline.image_digests == from_file.image_digests == digests
    extravars = provision.delivery_vars(inline, None)
    assert extravars == {
        "stack_image_delivery": "registry",
        "stack_image_references": compose_variables(digests),
        "stack_registry_logins": ["europe-west1-docker.pkg.dev"],
    }


def test_without_digests_no_image_is_pinned() -> None:
    assert provision.delivery_vars(entry_point("--image-delivery", "registry"), None) == {
        "stack_image_delivery": "registry"
    }


@pytest.mark.parametrize(
    "argv",
    [
        ["--image-digests", to_json(released())],  # archive delivery has nothing to pull
        ["--image-delivery", "registry", "--image-digests", "{}"],
        ["--image-delivery", "registry", "--image-digests", "/nonexistent/digests.json"],
    ],
)
def test_the_entry_point_refuses_bad_digests_as_a_usage_error(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        entry_point(*argv)
    assert exited.value.code == 2
    assert "--image-digests" in capsys.readouterr().err


def _env_file(overrides: dict[str, Any]) -> str:
    """The `.env` the stack role writes, rendered as Ansible renders it (Jinja2, trim_blocks)."""
    tasks = yaml.safe_load((ROLE / "tasks/files.yml").read_text())
    task = next(t for t in tasks if t.get("ansible.builtin.copy", {}).get("dest") == "{{ stack_dir }}/.env")
    variables: dict[str, Any] = {}
    for name in ("facts.yml", "settings.yml"):
        variables.update(yaml.safe_load((ROLE / "defaults/main" / name).read_text()))
    variables.update(stack_edge_server_name="203.0.113.9", **overrides)
    environment = jinja2.Environment(trim_blocks=True, undefined=jinja2.StrictUndefined, autoescape=False)
    return environment.from_string(task["ansible.builtin.copy"]["content"]).render(variables)


def test_the_role_pins_each_image_by_digest_in_the_env_file() -> None:
    digests = released()
    lines = _env_file({"stack_image_references": compose_variables(digests)}).splitlines()
    for name, reference in digests.items():
        assert f"{compose_variables({name: reference}).popitem()[0]}={reference}" in lines
    assert f"{layout.EDGE_SERVER_NAME_VARIABLE}=203.0.113.9" in lines


def test_archive_delivery_leaves_the_compose_defaults() -> None:
    text = _env_file({})
    for variable in compose_variables(released()):
        assert f"{variable}=" not in text
