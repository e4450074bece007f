"""The data disk: Docker's data root on the VM (every volume: MLflow's runs, models, artifacts).

A separate zonal persistent disk, so a new VM (a replacement after a `spot` toggle, a boot image
outside its family) gets the same data back: GCE does not delete a disk attached through the
instance's `attached_disk` when the instance goes (auto-delete is off for such disks). Daily
snapshots come from a snapshot schedule attached to it.

Its GCP name is fixed per stack (stacks/naming.py). That makes two things possible before any
change: the size guard (stacks/disk_guard.py) looks the disk up by name, and a disk kept by an
earlier `pulumi destroy` (retainDataDisk) is adopted by the next `pulumi up` through `import_`
instead of failing with "already exists". When the disk is already in the stack's state with that
id, `import_` changes nothing (the engine imports only when the state has no such resource or
another id). A replacement of the disk (e.g. a new gcp:zone) starts from an empty disk: the old
one is kept if retainDataDisk is on, with its snapshots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from config.stack_settings import SNAPSHOT_RETENTION_LABEL as RETENTION_LABEL
from stacks.apis import child_options

# Snapshots start in this UTC hour, when the stack is least busy.
SNAPSHOT_START_TIME = "03:00"


@dataclass(frozen=True)
class DataDiskArgs:
    project: str
    region: str
    zone: str
    name: str
    size_gb: int
    disk_type: str
    snapshot_retention_days: int
    retain: bool
    protect: bool
    labels: dict[str, str] = field(default_factory=dict)
    # The id of a disk of this name that exists already (kept by an earlier destroy, or this
    # stack's own): adopted instead of created.
    existing_id: str | None = None
    after: Sequence[pulumi.Resource] = ()


def retention_labels(labels: dict[str, str], days: int) -> dict[str, str]:
    return {**labels, RETENTION_LABEL: str(days)}


def snapshot_schedule(args: DataDiskArgs) -> gcp.compute.ResourcePolicySnapshotSchedulePolicyArgs:
    return gcp.compute.ResourcePolicySnapshotSchedulePolicyArgs(
        schedule=gcp.compute.ResourcePolicySnapshotSchedulePolicyScheduleArgs(
            daily_schedule=gcp.compute.ResourcePolicySnapshotSchedulePolicyScheduleDailyScheduleArgs(
                days_in_cycle=1, start_time=SNAPSHOT_START_TIME
            )
        ),
        retention_policy=gcp.compute.ResourcePolicySnapshotSchedulePolicyRetentionPolicyArgs(
            max_retention_days=args.snapshot_retention_days,
            # Snapshots outlive the disk (until their retention ends): the last copy of the data.
            on_source_disk_delete="KEEP_AUTO_SNAPSHOTS",
        ),
        snapshot_properties=gcp.compute.ResourcePolicySnapshotSchedulePolicySnapshotPropertiesArgs(
            labels=retention_labels(args.labels, args.snapshot_retention_days),
            # Snapshots stay in the stack's region (GCE's default is the nearest multi-region).
            storage_locations=args.region,
        ),
    )


class DataDisk(pulumi.ComponentResource):
    disk: gcp.compute.Disk
    snapshot_policy: gcp.compute.ResourcePolicy
    snapshot_attachment: gcp.compute.DiskResourcePolicyAttachment

    def __init__(self, name: str, args: DataDiskArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:gcp:DataDisk", name, None, opts)
        self.disk = gcp.compute.Disk(
            f"{name}-data",
            project=args.project,
            zone=args.zone,
            name=args.name,
            size=args.size_gb,
            type=args.disk_type,
            labels=retention_labels(args.labels, args.snapshot_retention_days),
            opts=child_options(
                self,
                args.after,
                # A size increase is an in-place resize; the provider would replace the disk on a
                # decrease (ForceNewIfChange on `size`), which the size guard refuses beforehand.
                protect=args.protect,
                retain_on_delete=args.retain,
                import_=args.existing_id,
            ),
        )
        self.snapshot_policy = gcp.compute.ResourcePolicy(
            f"{name}-snapshots",
            project=args.project,
            region=args.region,
            description="Daily snapshots of the MLOps data disk.",
            snapshot_schedule_policy=snapshot_schedule(args),
            opts=child_options(self, args.after),
        )
        self.snapshot_attachment = gcp.compute.DiskResourcePolicyAttachment(
            f"{name}-snapshots-attachment",
            project=args.project,
            zone=args.zone,
            disk=self.disk.name,
            name=self.snapshot_policy.name,
            # A disk takes one snapshot schedule: should the policy ever be replaced (a new name
            # or region; its schedule updates in place), the old attachment must go first.
            opts=child_options(self, args.after, delete_before_replace=True),
        )
        self.register_outputs({"disk": self.disk.self_link})
