"""The entry point's SSH arguments through IAP: what Ansible hands to ssh, quoting included."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from ansible.plugins.connection import ConnectionBase

from stacks.iap_tunnel import IapTarget
from stacks.playbook_run import EXIT_USAGE, ProvisionError
from stacks.provision import (
    IAP_SSH_RETRIES,
    parse_args,
    require_pinned_key_through_iap,
    ssh_inventory,
)

DIRECT = ["--host", "203.0.113.5", "--user", "deploy"]
IAP = [*DIRECT, "--via-iap", "mlops-prod-1a2b3c-vm", "--project", "my-project-1", "--zone", "europe-west1-b"]
KNOWN_HOSTS = Path("/tmp/mlops provision/known_hosts")  # a space: quoting must keep it one argument


def ssh_argv(inventory: dict[str, object]) -> list[str]:
    """ssh's arguments from the inventory, split as Ansible's ssh connection plugin splits them."""
    host = inventory["all"]["hosts"]["target"]  # type: ignore[index]
    split: list[str] = ConnectionBase._split_ssh_args(host["ansible_ssh_common_args"])
    return split


def option(argv: list[str], name: str) -> str:
    values = [
        argv[i + 1].split("=", 1)[1]
        for i, arg in enumerate(argv)
        if arg == "-o" and argv[i + 1].startswith(f"{name}=")
    ]
    assert len(values) == 1, (name, argv)
    return values[0]


def test_through_iap_ssh_runs_gclouds_tunnel_as_its_proxy_command() -> None:
    inventory = ssh_inventory(parse_args(IAP), KNOWN_HOSTS)
    argv = ssh_argv(inventory)
    assert shlex.split(option(argv, "ProxyCommand")) == [
        "gcloud",
        "compute",
        "start-iap-tunnel",
        "mlops-prod-1a2b3c-vm",
        "22",
        "--listen-on-stdin",
        "--project=my-project-1",
        "--zone=europe-west1-b",
    ]
    assert option(argv, "ProxyUseFdpass") == "no"
    # The pinned key and the strict check are the same as for a direct connection.
    assert option(argv, "UserKnownHostsFile") == str(KNOWN_HOSTS)
    assert option(argv, "StrictHostKeyChecking") == "yes"
    host = inventory["all"]["hosts"]["target"]
    assert host["ansible_host"] == "203.0.113.5"  # only the known_hosts name: never dialled
    assert host["ansible_ssh_retries"] == IAP_SSH_RETRIES


def test_iap_retries_span_about_ten_minutes_of_boot() -> None:
    # Ansible's ssh plugin pauses 2**attempt - 1 s (at most 30 s) between attempts.
    waited = sum(min(2**attempt - 1, 30) for attempt in range(IAP_SSH_RETRIES))
    assert 540 <= waited <= 720


def test_direct_ssh_has_no_proxy_and_no_retries() -> None:
    inventory = ssh_inventory(parse_args(DIRECT), KNOWN_HOSTS)
    argv = ssh_argv(inventory)
    assert not any(arg.startswith("ProxyCommand=") for arg in argv)
    assert option(argv, "UserKnownHostsFile") == str(KNOWN_HOSTS)
    assert "ansible_ssh_retries" not in inventory["all"]["hosts"]["target"]


@pytest.mark.parametrize(
    "argv",
    [
        [*DIRECT, "--via-iap", "vm-1", "--zone", "europe-west1-b"],
        [*DIRECT, "--via-iap", "vm-1", "--project", "my-project-1"],
        [*DIRECT, "--project", "my-project-1", "--zone", "europe-west1-b"],
        [*DIRECT, "--via-iap", "vm;reboot", "--project", "my-project-1", "--zone", "europe-west1-b"],
    ],
    ids=["no-project", "no-zone", "no-via-iap", "shell-in-name"],
)
def test_incomplete_or_unsafe_iap_arguments_exit_with_usage(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == EXIT_USAGE
    assert "--via-iap" in capsys.readouterr().err


def test_through_iap_the_host_key_must_be_given_not_scanned() -> None:
    args = parse_args(IAP)
    with pytest.raises(ProvisionError, match="MLOPS_SSH_HOST_KEY is required with --via-iap") as raised:
        require_pinned_key_through_iap(args, {})
    assert raised.value.code == EXIT_USAGE
    require_pinned_key_through_iap(args, {"MLOPS_SSH_HOST_KEY": "ssh-ed25519 AAAA"})
    require_pinned_key_through_iap(parse_args(DIRECT), {})  # direct: scanned on first contact


def test_an_iap_target_refuses_what_a_shell_would_read() -> None:
    with pytest.raises(ValueError, match="zone"):
        IapTarget("vm-1", "my-project-1", "europe-west1-b $(id)")
