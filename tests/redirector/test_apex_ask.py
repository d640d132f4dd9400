"""The apex ask service: yes only for names registered in the ops zone, through a real resolver
path (a DNS server on 127.0.0.1), and no certificate or redirect for anything else."""

from __future__ import annotations

import importlib.util
import json
import time
from importlib.machinery import SourceFileLoader
from pathlib import Path
from types import ModuleType

import pytest

from infra.bootstrap.parts import CLOUDINIT_DIR
from infra.redirector.parts import ASK_SCRIPT, MACHINE
from infra.redirector.registry import CONTENT_PATTERN, apex_record_content, apex_record_name

from .loopback import (
    OPS_ZONE,
    REGISTERED,
    WRONG_CONTENT,
    AskService,
    Zone,
    free_port,
    loopback_spec,
    start_ask_service,
    stop,
)


def _load_script() -> ModuleType:
    path = CLOUDINIT_DIR / (MACHINE + ASK_SCRIPT)
    loader = SourceFileLoader("twinhost_apex_ask", str(path))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


ask_script = _load_script()  # stdlib only at import time: loads in the venv without dnspython


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("client-one.test", "client-one.test"),
        ("Client-One.TEST.", "client-one.test"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("localhost", None),  # a single label is never a client apex
        ("203.0.113.7", None),  # an IP literal (no SNI, or a Host header of an address)
        ("[2001:db8::1]", None),
        ("client-one.test:443", None),
        ("_apex.ops.example.test", None),
        ("-bad.test", None),
        ("b\u00fccher.example", None),  # Caddy sends A-labels; a U-label is malformed here
        ("a" * 64 + ".test", None),
        ("", None),
        ("two words.test", None),
    ],
)
def test_only_well_formed_host_names_are_looked_up(raw: str, expected: str | None) -> None:
    assert ask_script.normalise(raw) == expected


def test_script_and_renderer_agree_on_the_record_content() -> None:
    assert ask_script.CONTENT.pattern == CONTENT_PATTERN.pattern
    assert ask_script.CONTENT.match(apex_record_content("harbourlaw"))


def test_apex_record_is_named_under_the_registry() -> None:
    assert (
        apex_record_name("Harbour-Law.co.uk.", "ops.brightpixel.agency")
        == "harbour-law.co.uk._apex.ops.brightpixel.agency"
    )
    with pytest.raises(ValueError, match="DNS label"):
        apex_record_content("Not A Label")


# -- against the real DNS server ------------------------------------------------------------------


@pytest.mark.parametrize("apex", sorted(REGISTERED))
def test_ask_says_yes_for_a_registered_apex(ask_service: AskService, apex: str) -> None:
    assert ask_service.ask(apex) == 200
    assert ask_service.gate(apex) == 200
    assert ask_service.ask(apex.upper() + ".") == 200  # same name, as a client may spell it


@pytest.mark.parametrize("name", ["unknown.test", f"www.{sorted(REGISTERED)[0]}", WRONG_CONTENT, OPS_ZONE])
def test_ask_says_no_for_a_name_that_is_not_a_registered_apex(ask_service: AskService, name: str) -> None:
    assert ask_service.ask(name) == 404
    assert ask_service.gate(name) == 404


@pytest.mark.parametrize("name", ["203.0.113.7", "localhost", "", "a b.test", f"_apex.{OPS_ZONE}"])
def test_ask_refuses_what_is_not_a_host_name(ask_service: AskService, name: str) -> None:
    assert ask_service.ask(name) == 400


def test_ask_fails_closed_when_dns_does_not_answer(dns_zone: Zone, tmp_path: Path) -> None:
    """No resolver: neither yes nor no (503), so Caddy issues nothing and retries later."""
    spec = loopback_spec(dns_zone, resolver_port=free_port())  # nothing listens there
    process, service = start_ask_service(tmp_path, spec)
    try:
        assert service.ask(sorted(REGISTERED)[0]) == 503
    finally:
        stop(process)


def test_a_new_apex_is_known_once_its_record_exists(dns_zone: Zone, ask_service: AskService) -> None:
    """A site stack's `pulumi up` adds the record; nothing is done on the redirector. A name asked
    about before its record existed is refused until the negative caches expire (the zone's
    negative TTL, then the service's own `negative_cache_s`: 1 s each here)."""
    apex = "late-client.test"
    assert ask_service.ask(apex) == 404
    dns_zone.register(apex, "lateclient")
    deadline = time.monotonic() + 10
    while ask_service.ask(apex) != 200:
        assert time.monotonic() < deadline, "a registered apex stayed unknown"
        time.sleep(0.25)
    assert "lookup late-client.test -> registered" in ask_service.log.read_text()


# -- certificates only for apexes that point here, and not too often -------------------------------

EIP = "192.0.2.44"


@pytest.fixture
def pointing(dns_zone: Zone, tmp_path: Path):
    """An ask service that knows the redirector's address, and three registered apexes: one
    pointing here, one still at the client's old host, one with an extra AAAA elsewhere."""
    apexes = {"moved.test": [EIP], "not-yet.test": ["198.51.100.9"], "dual.test": [EIP, "2001:db8::9"]}
    for apex, addresses in apexes.items():
        dns_zone.register(apex, apex.split(".")[0].replace("-", ""))
        dns_zone.hosts[apex] = addresses
    dns_zone.register("no-address.test", "noaddress")
    dns_zone.hosts["no-address.test"] = []  # the name exists, with no address record
    dns_zone.write()
    process, service = start_ask_service(tmp_path, loopback_spec(dns_zone, public_address=EIP, max_asks=2))
    try:
        yield service
    finally:
        stop(process)


def test_a_certificate_needs_the_apex_to_point_at_the_redirector(pointing: AskService) -> None:
    """The registration exists before the client moves DNS and may outlive it: only an apex whose
    A/AAAA records are all the Elastic IP gets a certificate. Redirects (/gate) still need only
    the registration."""
    assert pointing.ask("moved.test") == 200
    for name in ("not-yet.test", "dual.test", "no-address.test"):
        assert pointing.ask(name) == 404, name
        assert pointing.gate(name) == 200, name
    assert "ask not-yet.test: A/AAAA ['198.51.100.9'], not 192.0.2.44" in pointing.log.read_text()


def test_certificate_asks_are_limited_per_name(pointing: AskService) -> None:
    """Caddy asks before each order; a success lasts months, so repeats mean failed orders. The
    third ask within the window is refused (429), for that name only, and redirects go on."""
    assert [pointing.ask("moved.test") for _ in range(3)] == [200, 200, 429]
    assert pointing.gate("moved.test") == 200
    assert pointing.ask("unknown-here.test") == 404  # refusals are not counted against anyone


def test_ask_limit_forgets_asks_older_than_the_window() -> None:
    now = [1000.0]
    limit = ask_script.AskLimit(2, 3600, clock=lambda: now[0])
    assert [limit.allow("a.test"), limit.allow("a.test"), limit.allow("a.test"), limit.allow("b.test")] == [
        True,
        True,
        False,
        True,
    ]
    now[0] += 3601
    assert limit.allow("a.test")


def test_the_platform_gives_the_ask_service_the_elastic_ip() -> None:
    from infra.redirector.parts import apex_ask_part
    from infra.redirector.spec import RedirectorSpec

    spec = RedirectorSpec(
        hostname="r",
        debian=12,
        admin_user="ops",
        ssh_keys=(),
        ops_zone="ops.example.test",
        acme_email="a@example.test",
        public_address=EIP,
    )
    settings = json.loads(next(f.content for f in apex_ask_part(spec).files if f.path.endswith(".json")))
    assert settings["address"] == EIP and settings["max_asks"] == 3 and settings["ask_window"] == 3600
