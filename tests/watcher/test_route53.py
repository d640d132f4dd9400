"""The Route 53 backend against moto's server mode: a real HTTP Route 53 API on 127.0.0.1."""

from __future__ import annotations

import socket

import boto3
import pytest
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

from twinhost_watcher.backends import DnsError
from twinhost_watcher.backends.route53 import Route53Backend

from .conftest import A, B, Harness

NAME = "acme.ops.example.net"


@pytest.fixture(scope="module")
def moto_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Dummy credentials: moto accepts any; boto3 must not look for real ones.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")


@pytest.fixture
def zone(moto_endpoint: str, aws_env: None):
    client = boto3.client("route53", region_name="us-east-1", endpoint_url=moto_endpoint)
    created = client.create_hosted_zone(Name="ops.example.net", CallerReference=str(id(client)) + NAME)
    zone_id = created["HostedZone"]["Id"].split("/")[-1]
    yield client, zone_id
    # leave the zone: each test makes its own, the server dies with the module


def rrsets(client, zone_id: str) -> dict[tuple[str, str], dict]:
    out = client.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    return {(r["Name"], r["Type"]): r for r in out}


def backend(endpoint: str, zone_id: str) -> Route53Backend:
    return Route53Backend(NAME, zone_id, endpoint_url=endpoint, timeout=3)


def test_a_missing_record_reads_as_empty_not_as_the_next_name(moto_endpoint, zone) -> None:
    client, zone_id = zone
    # A name that sorts after ours: the listing starts at our name and would return this one.
    client.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": "zz.ops.example.net",
                        "Type": "A",
                        "TTL": 60,
                        "ResourceRecords": [{"Value": "203.0.113.5"}],
                    },
                }
            ]
        },
    )
    assert backend(moto_endpoint, zone_id).get() == []


def test_set_upserts_the_whole_set_and_get_reads_it_back(moto_endpoint, zone) -> None:
    client, zone_id = zone
    r53 = backend(moto_endpoint, zone_id)
    r53.set([A, B], 60)
    assert r53.get() == [A, B]
    r53.set([B], 30)
    assert r53.get() == [B]
    record = rrsets(client, zone_id)[(NAME + ".", "A")]
    assert record["TTL"] == 30 and record["ResourceRecords"] == [{"Value": B}]


def test_a_weighted_record_set_is_refused(moto_endpoint, zone) -> None:
    client, zone_id = zone
    client.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "CREATE",
                    "ResourceRecordSet": {
                        "Name": NAME,
                        "Type": "A",
                        "TTL": 60,
                        "SetIdentifier": "do",
                        "Weight": 10,
                        "ResourceRecords": [{"Value": A}],
                    },
                }
            ]
        },
    )
    with pytest.raises(DnsError, match="weighted/failover/alias"):
        backend(moto_endpoint, zone_id).get()


def test_an_unknown_zone_is_an_error_naming_route53s_code(moto_endpoint, aws_env) -> None:
    with pytest.raises(DnsError, match="route53 list: NoSuchHostedZone"):
        backend(moto_endpoint, "ZNOSUCHZONE123").get()


def test_an_unreachable_endpoint_is_an_error(aws_env) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(DnsError, match="route53 list: EndpointConnectionError"):
        backend(f"http://127.0.0.1:{port}", "Z123").get()


def test_the_watcher_moves_a_route53_record_and_puts_it_back(tmp_path, moto_endpoint, zone) -> None:
    _client, zone_id = zone
    r53 = backend(moto_endpoint, zone_id)
    r53.set([A, B], 60)
    h = Harness(tmp_path, [])
    h.backend = r53  # type: ignore[assignment]
    h.restart()
    h.checker.health["digitalocean"] = False
    h.ticks(3)
    assert r53.get() == [B]
    h.checker.health["digitalocean"] = True
    h.ticks(2)
    assert r53.get() == [A, B]
    assert [m["to"] for m in h.notifier.messages] == [[B], [A, B]]
