"""The bootstrap stack's settings: every bad key named, and bootstrap/Pulumi.yaml agrees with them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from config.stack_settings import StackConfigError
from stacks.bootstrap.settings import PROJECT_NAME, BootstrapSettings, config_keys, parse_bootstrap_config

BOOTSTRAP_DIR = Path(__file__).resolve().parents[3] / "bootstrap"
GOOD = {"gcp:project": "my-project-1", f"{PROJECT_NAME}:githubRepository": "octo-org/mlops-platform"}


def problems(**changes: str) -> list[str]:
    raw = {**GOOD, **{f"{PROJECT_NAME}:{key}": value for key, value in changes.items()}}
    with pytest.raises(StackConfigError) as raised:
        parse_bootstrap_config(raw)
    return raised.value.problems


def test_defaults_fill_everything_but_the_project_and_repository() -> None:
    settings = parse_bootstrap_config(GOOD)
    assert settings.production_environment == "production"
    assert settings.release_environment == "release"
    assert settings.state_bucket_name == "my-project-1-pulumi-state"
    assert settings.key_rotation_days == 90


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("githubRepository", "no-slash"),
        ("githubRepository", "owner/name with space"),
        ("githubRepository", "-owner/name"),
        ("productionEnvironment", "prod:*"),
        ("stateBucket", "Upper-Case"),
        ("stateBucket", "google-state"),
        ("keyRotationDays", "91"),
        ("keyRotationDays", "0"),
    ],
)
def test_a_bad_value_is_reported_under_its_key(key: str, value: str) -> None:
    found = problems(**{key: value})
    assert len(found) == 1
    assert found[0].startswith(f"{PROJECT_NAME}:{key}: ")


def test_a_missing_repository_says_how_to_set_it() -> None:
    with pytest.raises(StackConfigError) as raised:
        parse_bootstrap_config({"gcp:project": "my-project-1"})
    assert raised.value.problems == [
        f"{PROJECT_NAME}:githubRepository: required but not set "
        f"({config_keys()[f'{PROJECT_NAME}:githubRepository']}); "
        f"`pulumi config set {PROJECT_NAME}:githubRepository ...`"
    ]


def test_a_mistyped_key_gets_a_suggestion_and_every_problem_comes_at_once() -> None:
    found = problems(githubRepo="octo-org/x", keyRotationDays="365")
    assert f"{PROJECT_NAME}:githubRepo: unknown key (did you mean 'githubRepository'?)" in found
    assert any(line.startswith(f"{PROJECT_NAME}:keyRotationDays: ") for line in found)


def test_the_project_file_declares_exactly_the_models_keys_with_its_defaults() -> None:
    declared = yaml.safe_load((BOOTSTRAP_DIR / "Pulumi.yaml").read_text())["config"]
    fields = {f.alias: f for f in BootstrapSettings.model_fields.values() if f.alias and ":" not in f.alias}
    assert set(declared) == set(fields)
    for key, declaration in declared.items():
        assert declaration["description"] == fields[key].description, key
        if fields[key].is_required():
            assert "default" not in declaration, key
        else:
            default = fields[key].default
            assert declaration["default"] == ("" if default is None else default), key


def test_the_committed_stack_file_is_valid() -> None:
    stack = yaml.safe_load((BOOTSTRAP_DIR / "Pulumi.ci.yaml").read_text())["config"]
    settings = parse_bootstrap_config({"gcp:project": "my-project-1", **stack})
    assert settings.github_repository == stack[f"{PROJECT_NAME}:githubRepository"]


def test_a_bad_project_is_reported_under_the_providers_key() -> None:
    with pytest.raises(StackConfigError) as raised:
        parse_bootstrap_config({**GOOD, "gcp:project": "Not_A_Project"})
    assert [line.split(": ")[0] for line in raised.value.problems] == ["gcp:project"]
