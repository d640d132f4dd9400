"""On-demand certificates over real ACME HTTP-01, gated by the apex registry.

The redirector's rendered Caddyfile (ports 80/443, ACME issuer, the production layout) runs in
a private network namespace against a local ACME CA (Caddy's `acme_server`); see acme_netns.py.
Proves what the loopback tests cannot: that HTTP-01 challenges on port 80 are answered even
though every request there is otherwise gated, that a registered apex gets a CA-signed
certificate through ACME, and that an unknown name gets none.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.redirector.parts import apex_ask_part, render_caddyfile
from infra.redirector.registry import apex_record_content, apex_record_name

from .loopback import OPS_ZONE, REGISTERED, SYSTEM_PYTHON, loopback_spec

HERE = Path(__file__).resolve().parent
ACME_HOST = "acme.test"
CA_CADDYFILE = f"""{{
\tadmin off
\thttp_port 8080
\thttps_port 9443
\tskip_install_trust
\tauto_https disable_redirects
}}

https://{ACME_HOST}:9443 {{
\ttls internal
\tacme_server
}}
"""
UNKNOWN = "not-a-client.test"


def _namespaces_available() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    return subprocess.run(["unshare", "--net", "--mount", "true"], capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def acme_run(host_packages: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    if not _namespaces_available():
        pytest.skip("needs root and unshare(1) for a private network namespace")
    workdir = tmp_path_factory.mktemp("acme")
    dns_port, ask_port = 5353, 9180  # private namespace: fixed ports cannot collide
    txt = {apex_record_name(apex, OPS_ZONE): [apex_record_content(site)] for apex, site in REGISTERED.items()}
    (workdir / "zone.json").write_text(json.dumps({"zone": OPS_ZONE, "negative_ttl": 1, "txt": txt}))

    class _Zone:  # loopback_spec only reads the port
        port = dns_port

    spec = loopback_spec(
        _Zone(),  # type: ignore[arg-type]
        ask_port=ask_port,
        issuer="acme",
        bind=None,
        http_port=80,
        https_port=443,
        acme_directory=f"https://{ACME_HOST}:9443/acme/local/directory",
        admin=f"unix/{workdir / 'admin.sock'}",
        # Caddy picks HTTP-01 or TLS-ALPN-01 at random when both are allowed; pin HTTP-01 to
        # prove the port-80 path (the challenge answered before the gate and the redirect).
        acme_challenges=("http-01",),
    )
    ca_root = workdir / "ca-data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
    (workdir / "redirector.Caddyfile").write_text(render_caddyfile(spec, acme_ca_root=str(ca_root)))
    (workdir / "ca.Caddyfile").write_text(CA_CADDYFILE)
    config = next(f.content for f in apex_ask_part(spec).files if f.path.endswith(".json"))
    (workdir / "apex-ask.json").write_text(config)
    names = " ".join([ACME_HOST, *REGISTERED, UNKNOWN])
    (workdir / "hosts").write_text(f"127.0.0.1 localhost {names}\n")
    (workdir / "run.json").write_text(
        json.dumps(
            {
                "apexes": sorted(REGISTERED),
                "unknown": UNKNOWN,
                "dns_port": dns_port,
                "ask_port": ask_port,
            }
        )
    )
    result = subprocess.run(
        ["unshare", "--net", "--mount", SYSTEM_PYTHON, str(HERE / "acme_netns.py"), str(workdir)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(json.loads(result.stdout))


@pytest.mark.parametrize("apex", sorted(REGISTERED))
def test_registered_apex_gets_an_acme_certificate_over_http01_and_a_redirect(
    acme_run: dict[str, Any], apex: str
) -> None:
    answer = acme_run["https"][apex]
    assert "error" not in answer, answer
    assert answer["status"] == 301
    assert answer["location"] == f"https://www.{apex}/fees?matter=conveyancing"
    assert answer["names"] == [apex]
    # Issued by the ACME CA's directory (its storage folder), after an http-01 challenge was served.
    assert f"{ACME_HOST}-9443-acme-local-directory/{apex}" in acme_run["certificates"]
    served = [
        json.loads(line)
        for line in acme_run["redirector_log"].splitlines()
        if '"served key authentication"' in line
    ]
    assert any(e.get("identifier") == apex and e.get("challenge") == "http-01" for e in served)


def test_unknown_name_gets_no_acme_order(acme_run: dict[str, Any]) -> None:
    assert "error" in acme_run["https"][UNKNOWN]
    assert not any(UNKNOWN in path for path in acme_run["certificates"])
    assert f'"identifier":"{UNKNOWN}"' not in acme_run["redirector_log"].replace(" ", "")
