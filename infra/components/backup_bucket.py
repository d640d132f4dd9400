"""The platform's backup bucket: one S3 bucket, one prefix per site (docs/backups.md).

Why S3 on the platform, not DigitalOcean Spaces: the copies must survive the loss of either
provider that runs a pair (Spaces would sit at node A's provider), S3 bills by the GB (a small
site's backups cost cents, where Spaces starts at $5 a month per account), and IAM can limit one
site's credentials to its own prefix (`infra/components/site_backups.py`), which Spaces keys
(granted per bucket) cannot.

Everything in the bucket is encrypted by restic on the node before upload; SSE-S3 on top costs
nothing. What it deliberately does not do: version objects (restic's repository is its own
history, and versioning would keep every pruned pack and bill for it), or replicate to a second
region (a cost decision left to the agency: the pair itself is the first copy).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

# Incomplete multipart uploads (an interrupted backup) are billed until aborted.
ABORT_INCOMPLETE_UPLOAD_DAYS = 2


@dataclass
class BackupBucketArgs:
    region: str
    tags: dict[str, str] = field(default_factory=dict)


class BackupBucket(pulumi.ComponentResource):
    """Outputs: `bucket` (its name), `region`, `endpoint` (the regional S3 endpoint restic uses)."""

    def __init__(self, name: str, args: BackupBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("twinhost:platform:BackupBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        bucket = aws.s3.Bucket(
            name,
            bucket_prefix="twinhost-backups-",
            tags={"Name": "twinhost-backups", **args.tags},
            # Every site's backups: a careless `destroy` must not take them (and with objects in
            # it, S3 refuses to delete a bucket without force_destroy, which stays off).
            opts=child.merge(pulumi.ResourceOptions(protect=True)),
        )
        aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            # ACLs off: only IAM policies (one per site) decide who reads what.
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            # SSE-S3 under restic's own encryption: free, and no KMS key to grant.
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="AES256"
                    ),
                )
            ],
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="abort-incomplete-uploads",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                        days_after_initiation=ABORT_INCOMPLETE_UPLOAD_DAYS
                    ),
                )
            ],
            opts=child,
        )
        aws.s3.BucketPolicy(
            f"{name}-tls-only",
            bucket=bucket.id,
            policy=bucket.arn.apply(_tls_only_policy),
            opts=child,
        )
        self.bucket: pulumi.Output[str] = bucket.bucket
        self.region = args.region
        self.endpoint = f"https://s3.{args.region}.amazonaws.com"
        self.register_outputs({"bucket": self.bucket, "region": self.region, "endpoint": self.endpoint})


def _tls_only_policy(arn: str) -> str:
    # Credentials never cross the network in clear, and neither do the (encrypted) packs.
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "TlsOnly",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [arn, f"{arn}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )
