"""A site's backup credentials: its restic repository key and an IAM user for its prefix only.

The platform owns the one backup bucket (`infra/components/backup_bucket.py`); each site stack
owns what reaches its own prefix `<site>/` of it, so `destroy-site` takes the site's credentials
with it and no site can read, list or delete another's backups:
- the restic repository password (pulumi_random): restic encrypts everything with it before
  upload; a Pulumi secret end to end (in the nodes' user data only, which is itself a secret);
- an IAM user with one inline policy: objects under `<site>/` (read, write, delete: restic's
  prune deletes packs), and listing the bucket only for keys under that prefix;
- an access key for that user (its secret half is a Pulumi secret).

What it deliberately does not do: rotate the key or the password (both are in first-boot user
data; rotation is a runbook step, docs/backups.md), or forbid deletion (restic's prune needs it;
an attacker on a node can delete that site's backups, never another site's).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

# Letters and digits (written into an EnvironmentFile unquoted); 40 of them is about 238 bits.
PASSWORD_LENGTH = 40


@dataclass
class SiteBackupsArgs:
    site: str
    bucket: pulumi.Input[str]  # the platform's backup bucket (its `backups` output)
    region: pulumi.Input[str]


def prefix(site: str) -> str:
    """The site's prefix in the bucket: its repository lives there."""
    return f"{site}/"


def prefix_policy(bucket: str, site: str) -> str:
    """The IAM policy of a site's backup user: its own prefix and nothing else."""
    arn = f"arn:aws:s3:::{bucket}"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "OwnPrefixObjects",
                    "Effect": "Allow",
                    "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                    "Resource": f"{arn}/{prefix(site)}*",
                },
                {
                    # restic lists its repository's directories (keys/, snapshots/, data/...).
                    "Sid": "ListOwnPrefix",
                    "Effect": "Allow",
                    "Action": "s3:ListBucket",
                    "Resource": arn,
                    "Condition": {"StringLike": {"s3:prefix": [site, f"{prefix(site)}*"]}},
                },
            ],
        },
        sort_keys=True,
    )


class SiteBackups(pulumi.ComponentResource):
    """Outputs: `password` (secret), `access_key_id`, `secret_access_key` (secret), `user`."""

    def __init__(self, name: str, args: SiteBackupsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("twinhost:site:SiteBackups", name, None, opts)
        # IAM is global; the provider's region is the bucket's (where restic talks to S3).
        provider = aws.Provider(f"{name}-aws", region=args.region, opts=pulumi.ResourceOptions(parent=self))
        child = pulumi.ResourceOptions(parent=self, provider=provider)
        password = random.RandomPassword(
            f"{name}-restic-password",
            length=PASSWORD_LENGTH,
            special=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Losing it loses every backup (restic cannot decrypt without it): keep it exportable with
        # `pulumi stack output --show-secrets resticPassword`, and never replace it by accident.
        self.password: pulumi.Output[str] = pulumi.Output.secret(password.result)
        user = aws.iam.User(
            f"{name}-user",
            name=f"twinhost-backup-{args.site}",
            path="/twinhost/",
            tags={"twinhost": "site", "site": args.site},
            opts=child,
        )
        aws.iam.UserPolicy(
            f"{name}-policy",
            user=user.name,
            policy=pulumi.Output.from_input(args.bucket).apply(
                lambda bucket: prefix_policy(bucket, args.site)
            ),
            opts=child,
        )
        key = aws.iam.AccessKey(f"{name}-key", user=user.name, opts=child)
        self.user = user.name
        self.access_key_id: pulumi.Output[str] = key.id
        self.secret_access_key: pulumi.Output[str] = pulumi.Output.secret(key.secret)
        self.register_outputs(
            {"user": self.user, "access_key_id": self.access_key_id, "password": self.password}
        )
