"""Filters for restores: which backups a target holds, and which one to restore.

    names | mlops_backup_ids(prefix, suffix)       -> ids, oldest first
    ids | mlops_backup_select(requested, target)   -> the requested id, or the newest

An id is the UTC time a backup started (`20260102T030405Z`), so ids sort by age. Objects at the
target that are not backup archives are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ansible.errors import AnsibleFilterError

BACKUP_ID = re.compile(r"\d{8}T\d{6}Z")


def backup_ids(names: Iterable[str], prefix: str, suffix: str) -> list[str]:
    ids = []
    for name in names:
        if name.startswith(prefix) and name.endswith(suffix):
            candidate = name[len(prefix) : len(name) - len(suffix)]
            if BACKUP_ID.fullmatch(candidate):
                ids.append(candidate)
    return sorted(set(ids))


def select_backup(ids: list[str], requested: str, target: str) -> str:
    if not ids:
        raise AnsibleFilterError(f"no backups at {target} yet")
    if not requested:
        return ids[-1]
    if requested not in ids:
        shown = ", ".join(ids[-5:])
        raise AnsibleFilterError(f"unknown backup id {requested!r} at {target}; the newest: {shown}")
    return requested


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"mlops_backup_ids": backup_ids, "mlops_backup_select": select_backup}
