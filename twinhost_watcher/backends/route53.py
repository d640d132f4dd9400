"""Route 53: the record set is the simple-routing A set named `record`, changed with one UPSERT.

An UPSERT replaces the whole set in one atomic change, so a move never leaves the name empty.
Credentials come from boto3's default chain: on the redirector, the EC2 instance role (no key on
disk). botocore's retries are off for the same reason as Cloudflare's: the loop is the retry.
"""

from __future__ import annotations

from typing import Any

import boto3  # type: ignore[import-untyped]
import botocore.config  # type: ignore[import-untyped]
import botocore.exceptions  # type: ignore[import-untyped]

from twinhost_watcher.backends import DnsError, RateLimitedError

THROTTLED = {"Throttling", "ThrottlingException", "PriorRequestNotComplete", "RequestLimitExceeded"}
THROTTLE_RETRY_AFTER = 5.0


class Route53Backend:
    name = "route53"

    def __init__(
        self,
        record: str,
        hosted_zone_id: str,
        *,
        region: str = "us-east-1",
        endpoint_url: str | None = None,
        timeout: float = 10.0,
    ):
        self.record = record.rstrip(".")
        self.hosted_zone_id = hosted_zone_id
        self._client = boto3.client(
            "route53",
            region_name=region,
            endpoint_url=endpoint_url,
            config=botocore.config.Config(
                connect_timeout=timeout,
                read_timeout=timeout,
                retries={"max_attempts": 1, "mode": "standard"},
            ),
        )

    def get(self) -> list[str]:
        answer = self._call(
            "list",
            self._client.list_resource_record_sets,
            HostedZoneId=self.hosted_zone_id,
            StartRecordName=self.record,
            StartRecordType="A",
            MaxItems="1",
        )
        for rrset in answer.get("ResourceRecordSets", []):
            if rrset["Name"].rstrip(".").lower() != self.record.lower() or rrset["Type"] != "A":
                continue  # the listing starts at our name but returns the next one when ours is absent
            if "SetIdentifier" in rrset or "AliasTarget" in rrset:
                raise DnsError(
                    f"{self.record} is a weighted/failover/alias record set; the watcher manages "
                    "only simple A records (use failover mode 'route53' for Route 53 routing)"
                )
            return sorted(rr["Value"] for rr in rrset.get("ResourceRecords", []))
        return []

    def set(self, addresses: list[str], ttl: int) -> None:
        if not addresses:
            raise DnsError("refusing to empty the record")  # the engine never asks; be sure
        self._call(
            "change",
            self._client.change_resource_record_sets,
            HostedZoneId=self.hosted_zone_id,
            ChangeBatch={
                "Comment": "twinhost-watcher failover",
                "Changes": [
                    {
                        "Action": "UPSERT",
                        "ResourceRecordSet": {
                            "Name": self.record,
                            "Type": "A",
                            "TTL": ttl,
                            "ResourceRecords": [{"Value": a} for a in addresses],
                        },
                    }
                ],
            },
        )

    def _call(self, what: str, method: Any, **kwargs: Any) -> Any:
        try:
            return method(**kwargs)
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "?")
            if code in THROTTLED:
                raise RateLimitedError(f"route53 {what}: {code}", THROTTLE_RETRY_AFTER) from None
            raise DnsError(f"route53 {what}: {code}: {error.get('Message', '')}") from None
        except botocore.exceptions.BotoCoreError as exc:
            raise DnsError(f"route53 {what}: {exc.__class__.__name__}: {exc}") from None
