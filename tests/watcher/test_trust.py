"""A node's `caBundle` must be there and load: otherwise every check of that node fails, both nodes
of the site look down and its record freezes. `--check-config` (and a start) refuse it, exit 2."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from infra.catalog import cloudflare_origin_ca_bundle
from twinhost_watcher.__main__ import main


def _config(tmp_path: Path, bundle: str) -> Path:
    secrets = tmp_path / "secrets"
    secrets.mkdir(mode=0o700)
    (secrets / "cf").write_text("token-not-shown\n")
    os.chmod(secrets / "cf", 0o600)
    node = {"caBundle": bundle}
    config = {
        "stateDir": str(tmp_path / "state"),
        "secretsDir": str(secrets),
        "sites": [
            {
                "site": "proxied",
                "record": "proxied.ops.example.net",
                "zone": "ops.example.net",
                "dns": {"backend": "cloudflare", "zoneId": "0" * 32, "tokenSecret": "cf", "proxied": True},
                "nodes": [
                    {"name": "digitalocean", "address": "203.0.113.10", **node},
                    {"name": "linode", "address": "198.51.100.20", **node},
                ],
            }
        ],
    }
    path = tmp_path / "watcher.json"
    path.write_text(json.dumps(config))
    return path


def _check(path: Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(["--config", str(path), "--check-config"], stdout=out, stderr=err)
    return code, err.getvalue()


@pytest.fixture(autouse=True)
def _no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.delenv("TWINHOST_WATCHER_WEBHOOK_URL", raising=False)


def test_check_config_refuses_a_missing_ca_bundle(tmp_path: Path) -> None:
    code, err = _check(_config(tmp_path, str(tmp_path / "ca/cloudflare-origin-ca.pem")))
    assert code == 2
    assert "sites[0].nodes[0].caBundle: cannot be read" in err
    assert "sites[0].nodes[1].caBundle: cannot be read" in err
    assert "token-not-shown" not in err


def test_check_config_refuses_a_bundle_without_certificates(tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    code, err = _check(_config(tmp_path, str(junk)))
    assert code == 2 and "sites[0].nodes[0].caBundle" in err


def test_check_config_accepts_the_shipped_origin_ca_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "cloudflare-origin-ca.pem"
    bundle.write_text(cloudflare_origin_ca_bundle("origin-ecc"))
    code, err = _check(_config(tmp_path, str(bundle)))
    assert (code, err) == (0, "")
