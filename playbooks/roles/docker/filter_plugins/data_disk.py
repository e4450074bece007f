"""The docker role's decision for a data disk, from what `blkid --probe -o export DEVICE` says.

    blkid_result | docker_data_disk_action(device)  -> 'format' or 'mount'

- nothing found (blkid exits 2, prints nothing): a blank disk -> 'format' (ext4, once);
- an ext4 filesystem: -> 'mount' (never formatted again: the data on it is the stack's);
- anything else (another filesystem, a partition table, a RAID or LVM member): refused, so no
  disk that holds something else is ever formatted or mounted by mistake.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

FILESYSTEM = "ext4"
BLKID_NOTHING_FOUND = 2


def probe_fields(stdout: str) -> dict[str, str]:
    """`KEY=value` lines of `blkid -o export` as a dict."""
    fields = {}
    for line in stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def data_disk_action(blkid: Mapping[str, Any], device: str) -> str:
    rc = int(blkid.get("rc", -1))
    fields = probe_fields(str(blkid.get("stdout", "")))
    if rc == BLKID_NOTHING_FOUND and not fields:
        return "format"
    if rc != 0:
        raise AnsibleFilterError(f"blkid could not probe {device} (exit {rc}): {blkid.get('stderr', '')}")
    if fields.get("TYPE") == FILESYSTEM:
        return "mount"
    found = fields.get("TYPE") or (f"a {fields['PTTYPE']} partition table" if "PTTYPE" in fields else "data")
    raise AnsibleFilterError(
        f"data disk {device} holds {found}, not {FILESYSTEM}: refusing to format or mount it "
        "(attach a blank disk, or one this role formatted)"
    )


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"docker_data_disk_action": data_disk_action}
