"""Refuse a smaller bootDiskSizeGb or dataDiskSizeGb before anything changes: GCE cannot shrink a disk.

What the provider would do otherwise:
- the boot disk (`boot_disk.initialize_params.size` of the instance) is resized in place through
  the disks.resize API, which only grows: a smaller size fails halfway through `pulumi up`;
- the data disk (`compute.Disk.size`) grows in place, but a smaller size forces a replacement
  (ForceNewIfChange with IsDiskShrinkage): a new, empty disk.

The check reads the disks' current sizes with the `gcp.compute.getDisk` invoke, by the names the
stack gives them (the boot disk takes its instance's name), at preview as at `up`. A disk that does
not exist yet (the first `up`) has nothing to compare with.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from config.stack_settings import PROJECT_NAME, StackConfigError, StackSettings
from stacks.naming import GcpIds


@dataclass(frozen=True)
class ExistingDisk:
    id: str
    size_gb: int


def existing_disk(project: str, zone: str, name: str) -> ExistingDisk | None:
    """The disk of that name, or None when GCP has none (or cannot say: then nothing is checked)."""
    try:
        found = gcp.compute.get_disk(name=name, zone=zone, project=project)
    except Exception as error:  # the provider reports a missing disk as a failed invoke
        if "not found" not in str(error).lower():
            # A fresh project (Compute API still off) or missing permission: the disk cannot be
            # compared, and `up` fails on its own if the deployer may not read disks at all.
            pulumi.log.warn(f"could not look up disk {name} in {zone} ({error}); its size is not checked")
        return None
    if not found.id or found.size is None:
        return None
    return ExistingDisk(id=found.id, size_gb=int(found.size))


@dataclass(frozen=True)
class ExistingDisks:
    boot: ExistingDisk | None
    data: ExistingDisk | None

    @classmethod
    def look_up(cls, settings: StackSettings, ids: GcpIds) -> ExistingDisks:
        return cls(
            boot=existing_disk(settings.project, settings.zone, ids.instance),
            data=existing_disk(settings.project, settings.zone, ids.data_disk),
        )


def shrink_problems(settings: StackSettings, disks: ExistingDisks) -> list[str]:
    """One `key: message` line per disk the settings would shrink."""
    wanted = (
        ("bootDiskSizeGb", disks.boot, settings.boot_disk_size_gb),
        ("dataDiskSizeGb", disks.data, settings.data_disk_size_gb),
    )
    return [
        f"{PROJECT_NAME}:{key}: {size} GB is smaller than the existing disk ({disk.size_gb} GB); "
        f"GCE cannot shrink a disk: set {disk.size_gb} or more"
        for key, disk, size in wanted
        if disk is not None and size < disk.size_gb
    ]


def refuse_shrinking(settings: StackSettings, disks: ExistingDisks) -> None:
    problems = shrink_problems(settings, disks)
    if problems:
        raise StackConfigError(problems)
