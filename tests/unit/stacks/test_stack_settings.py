"""Stack settings: clear messages for bad config, and Pulumi.yaml declarations that match the model."""

from __future__ import annotations

import logging
from typing import Any

import pulumi
import pytest

from config import edge
from config.stack_settings import (
    DEFAULT_BOOT_IMAGE,
    PROJECT_NAME,
    StackConfigError,
    StackSettings,
    config_keys,
    parse_stack_config,
)
from stacks.stack_config import load_stack_settings
from tests.support.pulumi_harness import configure_engine, engine_config, project_file, stack_files

VALID = {"gcp:project": "my-project-1", "mlops-platform:sshSourceRanges": '["203.0.113.7/32"]'}


def problems_of(**changes: Any) -> list[str]:
    raw = {**VALID, **{f"mlops-platform:{key}": value for key, value in changes.items()}}
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config(raw)
    return caught.value.problems


def test_minimal_config_gets_safe_defaults() -> None:
    settings = parse_stack_config(VALID)
    assert settings.boot_image == DEFAULT_BOOT_IMAGE == "debian-cloud/debian-13"
    assert settings.public_services == ["api"]
    assert settings.deletion_protection is False
    assert settings.spot is False
    assert settings.ssh_public_key is None


def test_engine_strings_are_converted_to_typed_values() -> None:
    settings = parse_stack_config(
        {
            **VALID,
            "mlops-platform:bootDiskSizeGb": "30",
            "mlops-platform:spot": "true",
            "mlops-platform:labels": '{"team": "ml"}',
        }
    )
    assert settings.boot_disk_size_gb == 30
    assert settings.spot is True
    assert settings.labels == {"team": "ml"}


def test_unknown_key_is_named_with_the_near_known_key() -> None:
    assert problems_of(machinType="e2-small") == [
        "mlops-platform:machinType: unknown key (did you mean 'machineType'?)"
    ]


def test_unknown_key_far_from_any_known_key_gets_no_guess() -> None:
    assert problems_of(colour="blue") == ["mlops-platform:colour: unknown key"]


def test_mistyped_value_names_the_key_and_the_value() -> None:
    (problem,) = problems_of(bootDiskSizeGb="twenty")
    assert problem.startswith("mlops-platform:bootDiskSizeGb: ")
    assert "valid integer" in problem
    assert "'twenty'" in problem


def test_missing_required_keys_are_named_with_how_to_set_them() -> None:
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config({})
    problems = caught.value.problems
    assert len(problems) == 2
    assert problems[0].startswith("gcp:project: required but not set")
    assert "pulumi config set gcp:project" in problems[0]
    # Required by the default sshVia (direct), so named next to the other missing key.
    assert problems[1].startswith("mlops-platform:sshSourceRanges: required with sshVia direct")
    assert "pulumi config set --path 'mlops-platform:sshSourceRanges[0]'" in problems[1]


def test_all_problems_are_reported_at_once() -> None:
    problems = problems_of(machinType="x", spot="maybe", bootDiskSizeGb="5")
    assert [problem.split(":")[1] for problem in problems] == ["machinType", "bootDiskSizeGb", "spot"]


def test_ssh_from_the_whole_internet_is_refused() -> None:
    (problem,) = problems_of(sshSourceRanges='["10.0.0.0/8", "0.0.0.0/0"]')
    assert problem.startswith("mlops-platform:sshSourceRanges: ")
    assert "0.0.0.0/0" in problem
    assert "3.6" in problem
    (problem,) = problems_of(sshSourceRanges='["::/0"]')
    assert "::/0" in problem


def test_ssh_via_iap_needs_no_admin_ranges_and_refuses_them() -> None:
    settings = parse_stack_config({"gcp:project": "my-project-1", "mlops-platform:sshVia": "iap"})
    assert settings.ssh_through_iap
    assert settings.ssh_source_ranges == []
    # A range set next to iap would look like it opened SSH; it would not.
    (problem,) = problems_of(sshVia="iap")
    assert problem.startswith("mlops-platform:sshSourceRanges: has no effect with sshVia iap")
    assert "35.235.240.0/20" in problem
    assert "pulumi config rm mlops-platform:sshSourceRanges" in problem


def test_ssh_via_is_direct_by_default_and_a_typo_gets_a_guess() -> None:
    settings = parse_stack_config(VALID)
    assert settings.ssh_via == "direct"
    assert not settings.ssh_through_iap
    (problem,) = problems_of(sshVia="iaq", sshSourceRanges="[]")
    assert (
        problem
        == "mlops-platform:sshVia: 'iaq' is not a way to reach SSH (did you mean 'iap'?); one of: direct, iap"
    )


def test_direct_ssh_without_admin_ranges_is_refused() -> None:
    (problem,) = problems_of(sshVia="direct", sshSourceRanges="[]")
    assert problem.startswith("mlops-platform:sshSourceRanges: required with sshVia direct")
    assert "or set sshVia iap" in problem


def test_ranges_must_be_cidrs() -> None:
    (problem,) = problems_of(publicSourceRanges='["10.0.0.300/32"]')
    assert problem.startswith("mlops-platform:publicSourceRanges: ")
    (problem,) = problems_of(sshSourceRanges="203.0.113.7/32")
    assert "JSON list" in problem


def test_internal_services_cannot_be_made_public() -> None:
    (problem,) = problems_of(publicServices='["api", "mlflow"]')
    assert problem.startswith("mlops-platform:publicServices: ")
    assert "'mlflow' is internal" in problem


def test_unknown_public_service_gets_a_suggestion() -> None:
    (problem,) = problems_of(publicServices='["grafna"]')
    assert "did you mean 'grafana'?" in problem


@pytest.mark.parametrize(
    ("labels", "fragment"),
    [('{"Team": "ml"}', "label key 'Team'"), ('{"team": "ML Ops"}', "label value 'ML Ops'")],
)
def test_labels_follow_gcp_rules(labels: str, fragment: str) -> None:
    (problem,) = problems_of(labels=labels)
    assert problem.startswith("mlops-platform:labels: ")
    assert fragment in problem


def test_zone_must_lie_in_region() -> None:
    with pytest.raises(StackConfigError) as caught:
        parse_stack_config({**VALID, "gcp:region": "us-east1", "gcp:zone": "europe-west1-b"})
    assert caught.value.problems == ["gcp:zone 'europe-west1-b' is not in gcp:region 'us-east1'"]


def test_deploy_user_and_public_key_are_checked() -> None:
    (problem,) = problems_of(deployUser="root")
    assert problem.startswith("mlops-platform:deployUser: ")
    (problem,) = problems_of(sshPublicKey="not a key")
    assert problem.startswith("mlops-platform:sshPublicKey: ")


def test_other_providers_keys_are_left_to_them() -> None:
    settings = parse_stack_config({**VALID, "gcp:credentials": "{}", "aws:region": "x"})
    assert settings.project == "my-project-1"


def test_program_stops_cleanly_with_the_message_logged(caplog: pytest.LogCaptureFixture) -> None:
    configure_engine({**VALID, "mlops-platform:machinType": "e2-small"}, stack="dev")
    with caplog.at_level(logging.ERROR), pytest.raises(pulumi.RunError) as caught:
        load_stack_settings()
    # RunError: the Pulumi runtime prints the message without a stack trace.
    assert "mlops-platform:machinType: unknown key (did you mean 'machineType'?)" in str(caught.value)
    assert caught.value.__cause__ is None
    assert "did you mean 'machineType'" in caplog.text


def test_project_file_declares_every_project_key_with_the_models_default() -> None:
    project = project_file()
    assert project["name"] == PROJECT_NAME
    assert project["main"] == "stacks/"
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"] == ".venv"
    declared = project["config"]
    project_keys = {key.split(":", 1)[1] for key in config_keys() if key.startswith(f"{PROJECT_NAME}:")}
    assert set(declared) == project_keys
    for name, field in StackSettings.model_fields.items():
        alias = field.alias or name
        if ":" in alias:
            continue
        declaration = declared[alias]
        if "value" in declaration:  # a map: no schema type exists for it in Pulumi.yaml
            assert declaration["value"] == field.get_default(call_default_factory=True)
            continue
        assert declaration["description"]
        if field.is_required():
            assert "default" not in declaration
        elif field.default is None:
            # "" for text, 0 for integers: both read back as unset.
            assert declaration["default"] == (0 if declaration["type"] == "integer" else "")
            assert (
                getattr(
                    parse_stack_config({**VALID, f"{PROJECT_NAME}:{alias}": declaration["default"]}), name
                )
                is None
            )
        else:
            assert declaration["default"] == field.get_default(call_default_factory=True), alias


@pytest.mark.parametrize("stack_file", stack_files(), ids=lambda path: path.name)
def test_every_stack_file_is_valid(stack_file: Any) -> None:
    settings = parse_stack_config(engine_config(stack_file))
    assert "0.0.0.0/0" not in settings.ssh_source_ranges


def test_prod_is_sized_for_traffic_and_protected_and_dev_is_cheap() -> None:
    files = {path.name: path for path in stack_files()}
    prod = parse_stack_config(engine_config(files["Pulumi.prod.yaml"]))
    dev = parse_stack_config(engine_config(files["Pulumi.dev.yaml"]))
    assert prod.deletion_protection is True
    # Deployed from CI runners with unknown addresses: SSH only through IAP.
    assert prod.ssh_via == "iap"
    assert dev.ssh_via == "direct"
    assert prod.spot is False
    assert prod.machine_type == "e2-standard-4"
    assert dev.machine_type == "e2-small"
    assert dev.spot is True


def test_domain_and_acme_settings_are_checked_and_empty_means_unset() -> None:
    settings = parse_stack_config({**VALID, "mlops-platform:domain": "", "mlops-platform:acmeEmail": ""})
    assert (settings.domain, settings.acme_email) == (None, None)
    assert settings.acme_server == edge.LETS_ENCRYPT_DIRECTORY
    good = parse_stack_config(
        {**VALID, "mlops-platform:domain": "api.example.com", "mlops-platform:acmeEmail": "ops@example.com"}
    )
    assert (good.domain, good.acme_email) == ("api.example.com", "ops@example.com")
    assert "mlops-platform:domain" in problems_of(domain="Api.Example.com")[0]
    assert "mlops-platform:domain" in problems_of(domain="localhost")[0]
    assert "mlops-platform:acmeEmail" in problems_of(acmeEmail="not-an-address")[0]
    assert "mlops-platform:acmeServer" in problems_of(acmeServer="http://acme.example/dir")[0]


def test_data_disk_and_retention_keys_have_safe_defaults_and_limits() -> None:
    settings = parse_stack_config(VALID)
    assert settings.data_disk_type == "pd-balanced"
    assert settings.retain_data_disk is True
    assert settings.snapshot_retention_days >= 1
    assert settings.backup_retention_days >= 1
    (problem,) = problems_of(dataDiskType="pd-balnced")
    assert problem.startswith("mlops-platform:dataDiskType: 'pd-balnced' is not a data disk type")
    assert "did you mean 'pd-balanced'" in problem
    (problem,) = problems_of(snapshotRetentionDays="0")
    assert problem.startswith("mlops-platform:snapshotRetentionDays: ")
    (problem,) = problems_of(dataDiskSizeGb="5")
    assert problem.startswith("mlops-platform:dataDiskSizeGb: ")
