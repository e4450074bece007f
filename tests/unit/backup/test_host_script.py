"""deploy/backup/mlops_backup.py: its commands, and a real upload with Debian's rclone to a folder."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.support.script_module import load_script

host = load_script("deploy/backup/mlops_backup.py")


def _config(tmp_path: Path, target: str) -> Any:
    settings = {
        "target": target, "stack_dir": "/opt/mlops", "compose": ["docker", "compose"],
        "mlflow_service": "mlflow", "mlflow_uid": "10001", "db": "/mlflow/db/mlflow.db",
        "artifacts": "/mlflow/artifacts", "staging_dir": str(tmp_path / "staging"),
        "store_script": "/usr/local/lib/mlops-backup/mlflow_store.py",
        "archive_prefix": "mlops-backup-", "archive_suffix": ".tar.gz",
        "target_given": target, "read_on_controller": False,
    }  # fmt: skip
    path = tmp_path / "backup.json"
    path.write_text(json.dumps(settings), encoding="utf-8")
    return host.BackupConfig.load(path)


def test_ids_are_utc_seconds() -> None:
    assert host.new_backup_id(0) == "19700101T000000Z"


def test_the_snapshot_runs_in_mlflows_image_with_its_volumes(tmp_path: Path) -> None:
    config = _config(tmp_path, "/srv/backups")
    command = host.snapshot_command(config, Path("/s/x"), "mlops-backup-X.tar.gz", "X")
    assert command[:6] == ["docker", "compose", "run", "--rm", "--no-deps", "--no-TTY"]
    assert "mlflow" in command
    assert "snapshot" in command
    assert f"/s/x:{host.CONTAINER_STAGING}" in command
    assert command[-4:] == ["--archive", f"{host.CONTAINER_STAGING}/mlops-backup-X.tar.gz", "--id", "X"]
    assert config.mlflow_uid == 10001  # JSON may carry it as a string


def test_the_upload_with_debians_rclone_creates_the_object_and_checks_nothing_first(tmp_path: Path) -> None:
    assert shutil.which("rclone"), "rclone is installed by scripts/install-system-deps.sh"
    target = tmp_path / "target" / "prefix"
    config = _config(tmp_path, str(target))
    archive = tmp_path / "mlops-backup-20260102T030405Z.tar.gz"
    archive.write_bytes(b"archive")
    command = host.upload_command(config, archive)
    assert "--no-check-dest" in command
    subprocess.run(command, check=True, capture_output=True)
    assert (target / archive.name).read_bytes() == b"archive"
