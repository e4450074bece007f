"""Backup targets as rclone names them, the entry points' storage flags, and the restore CLI."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from config import stack_layout as layout
from stacks import backup, provision
from stacks.host_storage import BackupTargetError, backup_role_vars, data_disk_vars, parse_target
from stacks.playbook_run import ProvisionError

BASE = ["--host", "203.0.113.7", "--user", "deploy"]


@pytest.mark.parametrize(
    ("given", "remote"),
    [
        ("gs://mlops-backups", ":gcs,bucket_policy_only=true,no_check_bucket=true:mlops-backups"),
        ("gs://mlops-backups/", ":gcs,bucket_policy_only=true,no_check_bucket=true:mlops-backups"),
        (
            "gs://mlops-backups/prod/vm-1",
            ":gcs,bucket_policy_only=true,no_check_bucket=true:mlops-backups/prod/vm-1",
        ),
        ("/var/backups/mlops/", "/var/backups/mlops"),
    ],
)
def test_targets_become_rclone_remotes(given: str, remote: str) -> None:
    target = parse_target(given)
    assert target.remote == remote
    assert target.read_on_controller is given.startswith("gs://")


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        ("gs://", "not a valid GCS bucket name"),
        ("gs://Upper-Case", "not a valid GCS bucket name"),
        ("gs://ab", "not a valid GCS bucket name"),
        ("gs://bucket/a,b", "the prefix may hold"),
        ("gs://bucket/a:b", "the prefix may hold"),
        ("s3://bucket", "expected gs://BUCKET[/PREFIX] or an absolute path"),
        ("backups", "expected gs://BUCKET[/PREFIX] or an absolute path"),
        ("/var/../etc", "without '..'"),
        ("/srv/a:b", "without '..' or ':'"),
        ("/", "without '..'"),
    ],
)
def test_bad_targets_are_refused_with_the_reason(given: str, reason: str) -> None:
    with pytest.raises(BackupTargetError, match=reason.replace("[", r"\[").replace("]", r"\]")):
        parse_target(given)


def test_the_provision_flags_reach_the_roles(tmp_path: Path) -> None:
    args = provision.parse_args([*BASE, "--data-disk-device", layout.DATA_DISK_DEVICE_PATH,
                                 "--backup-target", "gs://mlops-backups/vm"])  # fmt: skip
    extravars = provision.storage_vars(args)
    assert extravars["docker_data_disk_device"] == layout.DATA_DISK_DEVICE_PATH
    assert extravars["docker_data_mount_point"] == layout.DATA_DISK_MOUNT_POINT
    assert extravars["docker_data_root"].startswith(layout.DATA_DISK_MOUNT_POINT + "/")
    # The stack root becomes a link into the disk: a replaced VM's containers find their files.
    assert extravars["docker_stack_root"] == layout.HOST_STACK_ROOT
    assert extravars["docker_stack_root_on_disk"].startswith(layout.DATA_DISK_MOUNT_POINT + "/")
    assert extravars["backup_target"].endswith(":mlops-backups/vm")
    assert extravars["backup_target_given"] == "gs://mlops-backups/vm"
    assert extravars["backup_target_read_on_controller"] is True
    assert extravars["backup_staging_dir"].startswith(layout.DATA_DISK_MOUNT_POINT + "/")


def test_without_the_flags_no_disk_is_formatted_and_no_timer_is_set() -> None:
    extravars = provision.storage_vars(provision.parse_args(BASE))
    assert extravars["docker_data_disk_device"] == ""
    assert extravars["backup_target"] == ""
    # Docker's data still lives under the mount point (a plain folder on a VM without a data disk).
    assert extravars["docker_data_root"] == data_disk_vars(None)["docker_data_root"]


@pytest.mark.parametrize("device", ["sdb", "/tmp/disk", "/dev", "/dev/../etc/passwd"])
def test_a_data_disk_must_be_a_device_path(device: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        provision.parse_args([*BASE, "--data-disk-device", device])
    assert exit_info.value.code == 2
    assert "--data-disk-device" in capsys.readouterr().err


def test_a_bad_backup_target_is_a_usage_error_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        provision.parse_args([*BASE, "--backup-target", "s3://elsewhere"])
    assert exit_info.value.code == 2
    assert "--backup-target" in capsys.readouterr().err


def test_restore_takes_a_backup_id_list_does_not(capsys: pytest.CaptureFixture[str]) -> None:
    assert backup.parse_args(["restore", *BASE, "--backup", "20260102T030405Z"]).backup == "20260102T030405Z"
    for argv in (["list", *BASE, "--backup", "20260102T030405Z"], ["restore", *BASE, "--backup", "latest"]):
        with pytest.raises(SystemExit) as exit_info:
            backup.parse_args(argv)
        assert exit_info.value.code == 2
    assert "--backup" in capsys.readouterr().err


def test_restore_vars_carry_the_action_the_id_and_an_override_target(tmp_path: Path) -> None:
    args = backup.parse_args(["restore", *BASE, "--backup", "20260102T030405Z", "--backup-target", "/srv/b"])
    extravars = backup.restore_vars(args, tmp_path)
    assert extravars["backup_action"] == "restore"
    assert extravars["backup_requested_id"] == "20260102T030405Z"
    assert extravars["backup_target"] == "/srv/b"
    assert extravars["backup_target_read_on_controller"] is False
    assert extravars["backup_list_file"] == str(tmp_path / backup.LIST_FILE)
    # Without --backup-target the playbook uses the host's own (an empty target here).
    plain = backup.restore_vars(backup.parse_args(["list", *BASE]), tmp_path)
    assert plain["backup_target"] == ""


def test_a_bad_override_target_is_a_usage_error(tmp_path: Path) -> None:
    args = backup.parse_args(["restore", *BASE, "--backup-target", "ftp://x"])
    with pytest.raises(ProvisionError) as error:
        backup.restore_vars(args, tmp_path)
    assert error.value.code == 2
    assert "--backup-target" in str(error.value)


def test_no_ssh_key_is_a_usage_error_before_anything_runs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLOPS_SSH_PRIVATE_KEY", raising=False)
    assert backup.main(["list", *BASE]) == 2
    assert "MLOPS_SSH_PRIVATE_KEY" in capsys.readouterr().out


def test_the_role_facts_name_the_stack_and_its_store() -> None:
    facts = backup_role_vars(None)
    assert facts["backup_stack_dir"] == layout.HOST_STACK_ROOT
    assert facts["backup_mlflow_db"].endswith(".db")
    assert facts["backup_archive_suffix"] == ".tar.gz"


RCLONE = shutil.which("rclone")


def test_debian_rclone_knows_the_gcs_options_the_remote_uses() -> None:
    """The options in the on-the-fly remote exist in the installed rclone (Debian's 1.60)."""
    assert RCLONE, "rclone is installed by scripts/install-system-deps.sh"
    help_text = subprocess.run(
        [RCLONE, "help", "backend", "gcs"], capture_output=True, text=True, check=True
    ).stdout
    options = parse_target("gs://bucket").remote.split(":")[1].split(",")[1:]
    for option in options:
        assert f"Config:      {option.split('=')[0]}" in help_text, option


def test_backups_of_an_iap_stack_go_through_the_same_tunnel(tmp_path: Path) -> None:
    args = backup.parse_args(
        [
            "list",
            "--host",
            "203.0.113.7",
            "--user",
            "deploy",
            "--via-iap",
            "vm-1",
            "--project",
            "p-1",
            "--zone",
            "z-1",
        ]
    )
    inventory = provision.host_inventory(args, {"MLOPS_SSH_HOST_KEY": "ssh-ed25519 AAAAC3Nz"}, tmp_path)
    (host,) = inventory["all"]["hosts"].values()
    assert "start-iap-tunnel vm-1 22" in host["ansible_ssh_common_args"]
    with pytest.raises(ProvisionError, match="MLOPS_SSH_HOST_KEY"):
        provision.deploy_key(args, {"MLOPS_SSH_PRIVATE_KEY": "key"})
