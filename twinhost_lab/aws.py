"""The lab's stand-in for the platform's S3 buckets and SSM parameters: moto's server on the host.

The redirector's `twinhost-watcher-refresh` reads, every minute, the release document, the
watcher's config and code archive from the platform's bucket, and the secrets from SSM Parameter
Store. In the lab there is no AWS: moto serves both APIs on the bridge's host address, seeded with
exactly what `pulumi up` of the platform stack would have written (taken from the platform's plan:
the same objects and parameters, byte for byte), and the redirector's user data names it
(the render overrides' `aws`, `stand_in()`), with fixed lab credentials in place of the instance
role.

The platform's backup bucket is made too (empty): the site nodes' restic reaches it on the same
endpoint (the render overrides' `aws` replaces the regional S3 endpoint in their repository
URL) with their site's own backup key, which moto's server accepts like any key (it checks no
credentials). The per-prefix IAM policy is therefore not enforced in the lab; its JSON is unit
tested (tests/unit/test_site_backups.py).

Secret parameter values are whatever the plan holds (the stack file's placeholders, never real
secrets in the lab); they are written to the stand-in and never printed.
"""

from __future__ import annotations

import base64
import json
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import yaml

from infra import platform_watcher as pw
from infra.bootstrap.overrides import AwsStandIn
from twinhost_lab.host import LabError, start_service, stop
from twinhost_lab.layout import Layout

PORT = 5000
# Fixed and public: moto accepts any credentials, and nothing real is behind the endpoint. They
# only stand in for the instance role so that boto3 signs its requests.
ACCESS_KEY_ID = "AKIATWINHOSTLAB00000"
SECRET_ACCESS_KEY = "twinhostLabStandInNotASecret0000000000000"

_BUCKET = "aws:s3/bucket:Bucket"
_OBJECT = "aws:s3/bucketObjectv2:BucketObjectv2"
_PARAMETER = "aws:ssm/parameter:Parameter"


def endpoint_url(host: str, port: int = PORT) -> str:
    return f"http://{host}:{port}"


def stand_in(layout: Layout, *, host: str | None = None, port: int = PORT) -> AwsStandIn:
    """The render overrides' `aws`: the stand-in on the host address, the fixed lab credentials."""
    return AwsStandIn(
        endpoint_url=endpoint_url(host or layout.host_address, port),
        access_key_id=ACCESS_KEY_ID,
        secret_access_key=SECRET_ACCESS_KEY,
    )


@dataclass(frozen=True)
class Seed:
    """What the platform stack puts in AWS for the redirector (values are the plan's own)."""

    region: str
    bucket: str
    objects: dict[str, bytes] = field(repr=False)  # key -> body
    parameters: dict[str, str] = field(repr=False)  # name -> value (SecureString): never shown
    # The platform's backup bucket (its `backups` output), made empty: each site's restic
    # repository is made under its prefix by the site's first backup (docs/backups.md).
    backup_bucket: str | None = None

    def describe(self) -> str:
        """Names only, never a value."""
        return (
            f"s3://{self.bucket} ({', '.join(sorted(self.objects))}); "
            + (f"s3://{self.backup_bucket} (empty); " if self.backup_bucket else "")
            + f"SSM {', '.join(sorted(self.parameters)) or 'none'} in {self.region}"
        )


def platform_seed(platform_plan: Any) -> Seed:
    """The bucket objects and SSM parameters from a platform plan (`infra.plan.runner.run_plan`),
    and the bucket name and region the redirector's refresh settings name."""
    from infra.plan.runner import reveal  # deliberate: loads Pulumi; `lab down`/`status` never need it

    if getattr(platform_plan, "role", None) != "platform":
        raise LabError("the AWS stand-in is seeded from the platform stack's plan")
    settings = _refresh_settings(platform_plan.user_data.get("redirector", ""))
    resources = platform_plan.resources
    # The watcher's bucket; the backup bucket (docs/backups.md) holds nothing the plan writes.
    buckets = [
        r
        for r in resources
        if r.type == _BUCKET and (reveal(r.inputs).get("tags") or {}).get("Name") != "twinhost-backups"
    ]
    if len(buckets) != 1:
        raise LabError(f"expected the platform's one bucket, found {len(buckets)}")
    objects: dict[str, bytes] = {}
    homes = set()
    for resource in (r for r in resources if r.type == _OBJECT):
        inputs = reveal(resource.inputs)
        homes.add(str(inputs.get("bucket")))
        if inputs.get("contentBase64") is not None:
            objects[str(inputs["key"])] = base64.b64decode(inputs["contentBase64"])
        else:
            objects[str(inputs["key"])] = str(inputs.get("content") or "").encode()
    if len(homes) > 1:
        raise LabError(f"the platform's objects are in more than one bucket: {sorted(homes)}")
    parameters: dict[str, str] = {}
    for resource in (r for r in resources if r.type == _PARAMETER):
        inputs = reveal(resource.inputs)
        parameters[str(inputs["name"])] = str(inputs["value"])
    backups = (getattr(platform_plan, "outputs", None) or {}).get("backups") or {}
    seed = Seed(
        region=str(settings["region"]),
        bucket=str(settings["bucket"]),
        objects=objects,
        parameters=parameters,
        backup_bucket=str(backups["bucket"]) if backups.get("bucket") else None,
    )
    _check_release(seed, str(settings["releaseKey"]))
    return seed


def _refresh_settings(user_data: str) -> dict[str, Any]:
    document = yaml.safe_load(user_data) or {}
    for entry in document.get("write_files") or []:
        if entry.get("path") == pw.REFRESH_SETTINGS:
            return dict(json.loads(entry["content"]))
    raise LabError(f"the redirector's user data has no {pw.REFRESH_SETTINGS}")


def _check_release(seed: Seed, release_key: str) -> None:
    """Everything the release names is in the seed: a lab that boots must not fail on a gap here."""
    if release_key not in seed.objects:
        raise LabError(f"the platform plan has no {release_key} object")
    release = json.loads(seed.objects[release_key])
    keys = [release["archive"]["key"]] + ([release["config"]["key"]] if release.get("config") else [])
    missing = [k for k in keys if k not in seed.objects]
    missing += [
        s["parameter"] for s in release.get("secrets", {}).values() if s["parameter"] not in seed.parameters
    ]
    if missing:
        raise LabError(f"the release names what the platform plan does not hold: {missing}")


def start_aws_standin(
    layout: Layout, platform_plan: Any, *, host: str | None = None, port: int = PORT
) -> int:
    """Start moto on `host` (the bridge's host address) and seed it from the platform's plan;
    returns its PID. Log in <run_dir>/aws/moto.log. A failed seed ends the server."""
    seed = platform_seed(platform_plan)  # before anything starts
    host = host or layout.host_address
    url = endpoint_url(host, port)
    directory = layout.run_dir / "aws"
    directory.mkdir(parents=True, exist_ok=True)
    pid = start_service(
        [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
        directory / "moto.log",
        ready=lambda: _answers(url),
        what="moto (S3/SSM stand-in)",
    )
    try:
        seed_standin(url, seed)
    except BaseException:
        stop(pid)
        raise
    return pid


def client(service: str, url: str, region: str) -> Any:
    """A boto3 client for the stand-in, with the lab credentials (never the host's)."""
    # deliberate: boto3 loads only when the stand-in is seeded or read (about 0.5 s).
    import boto3  # type: ignore[import-untyped]
    from botocore.config import Config  # type: ignore[import-untyped]

    session = boto3.session.Session(
        aws_access_key_id=ACCESS_KEY_ID, aws_secret_access_key=SECRET_ACCESS_KEY, region_name=region
    )
    config = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2})
    return session.client(service, endpoint_url=url, config=config)


def clients(url: str, region: str) -> tuple[Any, Any]:
    """S3 and SSM clients for the stand-in."""
    return client("s3", url, region), client("ssm", url, region)


def seed_standin(url: str, seed: Seed) -> None:
    """Create the bucket and objects and the SecureString parameters, as `pulumi up` would."""
    s3, ssm = clients(url, seed.region)
    create: dict[str, Any] = {"Bucket": seed.bucket}
    if seed.region != "us-east-1":
        create["CreateBucketConfiguration"] = {"LocationConstraint": seed.region}
    s3.create_bucket(**create)
    if seed.backup_bucket:
        s3.create_bucket(**{**create, "Bucket": seed.backup_bucket})
    for key, body in sorted(seed.objects.items()):
        if key == pw.RELEASE_KEY:
            continue
        s3.put_object(Bucket=seed.bucket, Key=key, Body=body)
    for name, value in sorted(seed.parameters.items()):
        ssm.put_parameter(Name=name, Value=value, Type="SecureString", Tier="Standard")
    # The release last, as the stack writes it (it names the others), and its parameter
    # versions must be the ones the stand-in gave.
    release = seed.objects.get(pw.RELEASE_KEY)
    if release is not None:
        for name, spec in json.loads(release).get("secrets", {}).items():
            version = ssm.get_parameter(Name=spec["parameter"])["Parameter"]["Version"]
            if int(version) != int(spec["version"]):
                raise LabError(
                    f"secret {name}: the release names version {spec['version']}, "
                    f"the stand-in holds {version}"
                )
        s3.put_object(Bucket=seed.bucket, Key=pw.RELEASE_KEY, Body=release)


def _answers(url: str) -> bool:
    """Any HTTP answer (an error status included) means the server is up."""
    try:
        with urllib.request.urlopen(url + "/moto-api/", timeout=2):  # noqa: S310 - the lab's own http stand-in
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
