"""The host's storage: its data disk, where backups go (as rclone names it), and the docker and
backup roles' variables for both, built once here from config/.

The data disk (`--data-disk-device`, a stable /dev/disk/by-id path) is formatted once and mounted
at DATA_DISK_MOUNT_POINT; Docker's data root (every volume of the stack) is a folder on it.

A target is `gs://BUCKET[/PREFIX]` or an absolute path on the host. For rclone (Debian's 1.60) a
bucket becomes an on-the-fly remote `:gcs,bucket_policy_only=true,no_check_bucket=true:BUCKET/PREFIX`:
- no credentials in it: with none configured, rclone's GCS backend falls back to Google's
  Application Default Credentials, which on a GCE VM are its service account (metadata server);
- bucket_policy_only: the bucket has uniform bucket-level access, so rclone sets no object ACLs;
- no_check_bucket: rclone neither reads nor creates the bucket (the VM may only create objects).
Reading backups back (list, restore) needs more than the VM's create-only access: for a bucket
rclone runs on the controller with the operator's own credentials; for a host path, on the host.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from config import stack_layout as layout
from config.app_settings import CHAMPION_ALIAS, DEFAULT_MODEL_NAME
from config.services import SERVICES

MLFLOW_DB_PATH, MLFLOW_ARTIFACTS_DIR = layout.MLFLOW_DB_PATH, layout.MLFLOW_ARTIFACTS_DIR
# Archive names: `mlops-backup-<UTC time>.tar.gz`; the id is the time, so names sort by age.
ARCHIVE_PREFIX = "mlops-backup-"
ARCHIVE_SUFFIX = ".tar.gz"
# On the data disk, so a backup's scratch space grows with the data and not on the boot disk.
STAGING_DIR = f"{layout.DATA_DISK_MOUNT_POINT}/backup-staging"
# Docker's data root on the data disk: images, containers and every named volume.
DOCKER_DATA_ROOT = f"{layout.DATA_DISK_MOUNT_POINT}/docker"
# The stack root (compose file, configuration, secrets) is a link to this folder on the disk: on a
# replaced VM Docker restarts the old containers as soon as it starts, and their bind mounts must
# find their files (a missing source would become an empty folder in its place).
STACK_ROOT_ON_DISK = f"{layout.DATA_DISK_MOUNT_POINT}/stack"

# GCS bucket names: 3-63 characters, lowercase letters, digits, `-`, `_` and `.`, starting and
# ending with a letter or digit. Prefixes: path segments of safe characters (no `:` or `,`, which
# rclone's connection strings would read).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]")
_PREFIX = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")
_LOCAL_PATH = re.compile(r"/[A-Za-z0-9._/-]*")
_GCS_OPTIONS = "bucket_policy_only=true,no_check_bucket=true"


class BackupTargetError(ValueError):
    """A target that cannot be used; the message says why and what is expected."""


@dataclass(frozen=True)
class BackupTarget:
    """A parsed target: rclone's name for it, and where it can be read back."""

    given: str
    remote: str
    # True for a bucket: the VM may not read it, the controller does (operator's credentials).
    read_on_controller: bool


def parse_target(target: str) -> BackupTarget:
    text = target.strip()
    if text.startswith("gs://"):
        bucket, _, prefix = text.removeprefix("gs://").strip("/").partition("/")
        if not _BUCKET.fullmatch(bucket):
            raise BackupTargetError(f"{target!r}: {bucket!r} is not a valid GCS bucket name")
        if prefix and not _PREFIX.fullmatch(prefix):
            raise BackupTargetError(f"{target!r}: the prefix may hold letters, digits, '.', '_', '-' and '/'")
        path = f"{bucket}/{prefix}" if prefix else bucket
        return BackupTarget(text, f":gcs,{_GCS_OPTIONS}:{path}", read_on_controller=True)
    if text.startswith("/"):
        if not _LOCAL_PATH.fullmatch(text) or ".." in PurePosixPath(text).parts or text.rstrip("/") == "":
            raise BackupTargetError(f"{target!r}: a host path must be absolute, below /, without '..' or ':'")
        return BackupTarget(text, text.rstrip("/"), read_on_controller=False)
    raise BackupTargetError(f"{target!r}: expected gs://BUCKET[/PREFIX] or an absolute path on the host")


def backup_target_arg(value: str) -> BackupTarget:
    """argparse type for --backup-target."""
    try:
        return parse_target(value)
    except BackupTargetError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def data_disk_device(value: str) -> str:
    """argparse type for --data-disk-device: an absolute path under /dev, nothing else."""
    path = PurePosixPath(value)
    if not path.is_absolute() or path.parts[1:2] != ("dev",) or len(path.parts) < 3 or ".." in path.parts:
        raise argparse.ArgumentTypeError(
            f"{value!r}: expected a device path such as {layout.DATA_DISK_DEVICE_PATH}"
        )
    return str(path)


def data_disk_vars(device: str | None) -> dict[str, Any]:
    """The docker role's data disk (empty: the mount point is used as it is) and data root."""
    return {
        "docker_data_disk_device": device or "",
        "docker_data_mount_point": layout.DATA_DISK_MOUNT_POINT,
        "docker_data_root": DOCKER_DATA_ROOT,
        "docker_stack_root": layout.HOST_STACK_ROOT,
        "docker_stack_root_on_disk": STACK_ROOT_ON_DISK,
    }


def backup_role_vars(target: BackupTarget | None) -> dict[str, Any]:
    """The backup role's facts and target, every value from config/ or this module."""
    mlflow = SERVICES.mlflow
    return {
        "backup_target": target.remote if target else "",
        "backup_target_given": target.given if target else "",
        "backup_target_read_on_controller": target is not None and target.read_on_controller,
        "backup_stack_dir": layout.HOST_STACK_ROOT,
        "backup_mlflow_service": mlflow.name,
        "backup_api_service": SERVICES.api.name,
        "backup_mlflow_uid": mlflow.uid,
        "backup_mlflow_url": f"http://127.0.0.1:{mlflow.port}",
        "backup_mlflow_db": MLFLOW_DB_PATH,
        "backup_mlflow_artifacts": MLFLOW_ARTIFACTS_DIR,
        "backup_staging_dir": STAGING_DIR,
        "backup_archive_prefix": ARCHIVE_PREFIX,
        "backup_archive_suffix": ARCHIVE_SUFFIX,
        # Each success's time, for node-exporter's textfile collector (the backup alerts).
        "backup_textfile_dir": layout.NODE_EXPORTER_TEXTFILE_DIR,
        "backup_metric_file": layout.BACKUP_METRIC_FILE,
        # The API serves this alias of this model: after a restore it must serve the backup's.
        "backup_model_name": DEFAULT_MODEL_NAME,
        "backup_model_alias": CHAMPION_ALIAS,
        "backup_api_ready_url": f"http://127.0.0.1:{SERVICES.api.port}{SERVICES.api.health_path}",
    }
