"""The backup bucket: where the VM uploads its backups, and nothing else may read or write.

Versioned (an overwritten or deleted backup stays as a noncurrent version for a while), private
(public access prevention enforced, uniform bucket-level access: IAM only, no object ACLs; CIS GCP
5.1 and 5.2), never force-destroyed (a non-empty bucket is not deleted with the stack), and kept in
GCP like the data disk when retainDataDisk is on. The VM's service account may only create
objects: a compromised VM can add backups but cannot read, overwrite or delete the old ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from stacks.apis import child_options

# storage.objects.create only: upload new objects, no list, get, overwrite or delete. rclone then
# needs its GCS options for this (bucket policy only, no listing of the destination).
WRITER_ROLE = "roles/storage.objectCreator"
# How long a deleted or overwritten backup stays recoverable as a noncurrent version.
NONCURRENT_DAYS = 7


@dataclass(frozen=True)
class BackupBucketArgs:
    project: str
    region: str
    writer_email: pulumi.Input[str]
    retention_days: int
    retain: bool
    protect: bool
    labels: dict[str, str] = field(default_factory=dict)
    after: Sequence[pulumi.Resource] = ()


def lifecycle_rules(retention_days: int) -> list[gcp.storage.BucketLifecycleRuleArgs]:
    """Backups expire after `retention_days`; a noncurrent version NONCURRENT_DAYS later."""
    delete = gcp.storage.BucketLifecycleRuleActionArgs(type="Delete")
    return [
        gcp.storage.BucketLifecycleRuleArgs(
            action=delete,
            condition=gcp.storage.BucketLifecycleRuleConditionArgs(age=retention_days, with_state="LIVE"),
        ),
        gcp.storage.BucketLifecycleRuleArgs(
            action=delete,
            condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                days_since_noncurrent_time=NONCURRENT_DAYS, with_state="ARCHIVED"
            ),
        ),
    ]


class BackupBucket(pulumi.ComponentResource):
    bucket: gcp.storage.Bucket
    writer: gcp.storage.BucketIAMMember

    def __init__(self, name: str, args: BackupBucketArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("mlops:gcp:BackupBucket", name, None, opts)
        self.bucket = gcp.storage.Bucket(
            f"{name}-backups",
            project=args.project,
            # In the stack's region: backups stay where the data lives, no cross-region egress.
            location=args.region.upper(),
            versioning=gcp.storage.BucketVersioningArgs(enabled=True),
            lifecycle_rules=lifecycle_rules(args.retention_days),
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            force_destroy=False,
            labels=args.labels,
            opts=child_options(self, args.after, protect=args.protect, retain_on_delete=args.retain),
        )
        self.writer = gcp.storage.BucketIAMMember(
            f"{name}-backups-writer",
            bucket=self.bucket.name,
            role=WRITER_ROLE,
            member=pulumi.Output.concat("serviceAccount:", args.writer_email),
            opts=child_options(self, args.after),
        )
        self.register_outputs({"bucket": self.bucket.name})
