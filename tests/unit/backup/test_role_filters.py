"""The roles' decisions, as filter plugins: which backup to restore, and what to do with a data disk.

The format-once path also runs for real in tests/e2e (a loop device plays the data disk); these
cover every answer blkid can give, including the ones the end-to-end test cannot make.
"""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from tests.support.script_module import load_script

ids = load_script("playbooks/roles/backup/filter_plugins/backup_ids.py")
disk = load_script("playbooks/roles/docker/filter_plugins/data_disk.py")
DEVICE = "/dev/disk/by-id/google-mlops-data"


def test_backup_ids_come_from_archive_names_only_sorted_oldest_first() -> None:
    names = [
        "mlops-backup-20260103T000000Z.tar.gz",
        "mlops-backup-20260101T235959Z.tar.gz",
        "mlops-backup-latest.tar.gz",  # not an id
        "notes.txt",
        "mlops-backup-20260102T120000Z.tar.gz.partial",
    ]
    assert ids.backup_ids(names, "mlops-backup-", ".tar.gz") == ["20260101T235959Z", "20260103T000000Z"]


def test_the_newest_backup_is_chosen_unless_one_is_named() -> None:
    found = ["20260101T000000Z", "20260102T000000Z"]
    assert ids.select_backup(found, "", "gs://b") == "20260102T000000Z"
    assert ids.select_backup(found, "20260101T000000Z", "gs://b") == "20260101T000000Z"


def test_an_unknown_id_or_no_backups_fail_with_the_target_named() -> None:
    with pytest.raises(
        AnsibleFilterError, match=r"unknown backup id '20250101T000000Z' at gs://b; the newest: 2026"
    ):
        ids.select_backup(["20260101T000000Z"], "20250101T000000Z", "gs://b")
    with pytest.raises(AnsibleFilterError, match="no backups at /srv/backups yet"):
        ids.select_backup([], "", "/srv/backups")


def test_a_blank_disk_is_formatted_and_an_ext4_disk_only_mounted() -> None:
    assert disk.data_disk_action({"rc": 2, "stdout": "", "stderr": ""}, DEVICE) == "format"
    ext4 = {"rc": 0, "stdout": "DEVNAME=/dev/sdb\nUUID=c6c4\nTYPE=ext4\nUSAGE=filesystem\n"}
    assert disk.data_disk_action(ext4, DEVICE) == "mount"


@pytest.mark.parametrize(
    ("stdout", "found"),
    [
        ("DEVNAME=/dev/sdb\nTYPE=xfs\nUSAGE=filesystem\n", "holds xfs"),
        ("DEVNAME=/dev/sdb\nPTUUID=1234\nPTTYPE=gpt\n", "a gpt partition table"),
        ("DEVNAME=/dev/sdb\nTYPE=LVM2_member\n", "holds LVM2_member"),
    ],
)
def test_a_disk_holding_anything_else_is_never_formatted(stdout: str, found: str) -> None:
    with pytest.raises(AnsibleFilterError, match=f"{found}.*refusing to format or mount it"):
        disk.data_disk_action({"rc": 0, "stdout": stdout}, DEVICE)


def test_a_failed_probe_is_an_error_not_a_blank_disk() -> None:
    with pytest.raises(AnsibleFilterError, match="could not probe"):
        disk.data_disk_action({"rc": 4, "stdout": "", "stderr": "usage error"}, DEVICE)
