"""The host's backup of the stack's MLflow store, run by the systemd timer `mlops-backup.timer`.

    python3 mlops_backup.py --config /etc/mlops/backup.json

One backup: a one-off container of the MLflow image (its volumes, its user) snapshots the database
through SQLite's online backup API and packs it with the artifacts (mlflow_store.py, next to this
file) into `<prefix><id><suffix>` in a staging folder on the data disk; rclone then copies that
archive to the target under its unique name, without listing, reading or deleting anything there
(the VM's service account may only create objects). The staging folder is removed afterwards.
Progress and errors go to stdout/stderr: systemd puts them in the journal
(`journalctl -u mlops-backup`). Standard library only (the host's Python). Writes nothing secret:
MLflow's users and passwords (basic_auth.db) are not part of a backup.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

# Where the store script appears inside the one-off container, and the staging folder.
CONTAINER_SCRIPT = "/usr/local/lib/mlops-backup/mlflow_store.py"
CONTAINER_STAGING = "/backup"


@dataclass(frozen=True)
class BackupConfig:
    """/etc/mlops/backup.json, written by the backup role (no secrets in it)."""

    target: str
    stack_dir: str
    compose: list[str]
    mlflow_service: str
    mlflow_uid: int
    db: str
    artifacts: str
    staging_dir: str
    store_script: str
    archive_prefix: str
    archive_suffix: str
    # For `python -m stacks.backup`: the target as given, and whether the host may read it.
    target_given: str = ""
    read_on_controller: bool = False
    # node-exporter's textfile folder: each success writes its time there (empty: no metric).
    textfile_dir: str = ""
    metric_file: str = ""

    @classmethod
    def load(cls, path: Path) -> BackupConfig:
        settings = json.loads(path.read_text(encoding="utf-8"))
        settings["mlflow_uid"] = int(settings["mlflow_uid"])
        return cls(**settings)


def say(message: str) -> None:
    print(f"mlops-backup: {message}", flush=True)


# Prometheus alerts when this is older than 26 h (config/prometheus/rules/host.yml).
SUCCESS_METRIC = "mlops_backup_last_success_timestamp_seconds"


def write_success_metric(config: BackupConfig, now: float) -> None:
    """The time of this success for node-exporter's textfile collector. Written to a temporary
    file and renamed over the old one, so the collector never reads half a file."""
    if not config.textfile_dir or not config.metric_file:
        return
    target = Path(config.textfile_dir) / config.metric_file
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_text(
        f"# HELP {SUCCESS_METRIC} Unix time of the last successful backup of MLflow's store.\n"
        f"# TYPE {SUCCESS_METRIC} gauge\n{SUCCESS_METRIC} {now:.0f}\n",
        encoding="utf-8",
    )
    temporary.chmod(0o644)
    temporary.replace(target)


def new_backup_id(now: float) -> str:
    """UTC time to the second: sorts like time, and names each archive once."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))


def snapshot_command(config: BackupConfig, staging: Path, archive_name: str, backup_id: str) -> list[str]:
    return [
        *config.compose, "run", "--rm", "--no-deps", "--no-TTY",
        "--entrypoint", "python3",
        "--volume", f"{staging}:{CONTAINER_STAGING}",
        "--volume", f"{config.store_script}:{CONTAINER_SCRIPT}:ro",
        config.mlflow_service, CONTAINER_SCRIPT, "snapshot",
        "--db", config.db, "--artifacts", config.artifacts,
        "--archive", f"{CONTAINER_STAGING}/{archive_name}", "--id", backup_id,
    ]  # fmt: skip


def upload_command(config: BackupConfig, archive: Path) -> list[str]:
    # --no-check-dest: no listing or reading of the target, only the upload itself.
    return [
        "rclone", "--config", "/dev/null", "copyto", str(archive), f"{config.target}/{archive.name}",
        "--no-check-dest", "--retries", "3", "--verbose", "--stats-one-line", "--stats", "30s",
    ]  # fmt: skip


def run(command: list[str], cwd: str) -> None:
    result = subprocess.run(command, cwd=cwd, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} ... exited with {result.returncode}")


def back_up(config: BackupConfig) -> str:
    started = time.monotonic()
    backup_id = new_backup_id(time.time())
    archive_name = f"{config.archive_prefix}{backup_id}{config.archive_suffix}"
    staging = Path(config.staging_dir) / backup_id
    staging.mkdir(parents=True, mode=0o700)
    try:
        # MLflow's user writes the archive; nobody else may read the staging folder.
        os.chown(staging, config.mlflow_uid, config.mlflow_uid)
        say(f"{backup_id}: snapshot of MLflow's database and artifacts")
        run(snapshot_command(config, staging, archive_name, backup_id), config.stack_dir)
        say(f"{backup_id}: copying {archive_name} to {config.target}")
        run(upload_command(config, staging / archive_name), config.stack_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_success_metric(config, time.time())
    say(f"{backup_id}: done in {time.monotonic() - started:.1f} s")
    return backup_id


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mlops_backup.py", description=__doc__)
    parser.add_argument("--config", type=Path, required=True, help="the backup role's JSON settings")
    args = parser.parse_args(argv)
    try:
        back_up(BackupConfig.load(args.config))
    except (RuntimeError, OSError, ValueError, TypeError) as error:
        print(f"mlops-backup: FAILED: {error}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
