"""The lab's WordPress drill, its pure parts: the stack copy `lab up --wordpress` boots, the image
it uploads, and the figures' count of what was lost."""

from __future__ import annotations

import struct
import zlib

import yaml

from tests.conftest import REPO
from twinhost_lab.lab import with_wordpress
from twinhost_lab.wordpress import WordPressFigures, png


def test_the_wordpress_lab_boots_a_copy_of_the_site_with_the_app_and_its_database():
    before = (REPO / "Pulumi.harbourlaw.yaml").read_text()
    copy = with_wordpress(REPO, "harbourlaw")
    config = yaml.safe_load((copy / "Pulumi.harbourlaw.yaml").read_text())["config"]
    assert config["twinhost:database"] == "mariadb"
    assert config["twinhost:app"] == {"kind": "wordpress"}
    assert config["twinhost:domains"] == ["harbour-law.co.uk"]
    assert (copy / "Pulumi.prod.yaml").read_text() == (REPO / "Pulumi.prod.yaml").read_text()
    assert (REPO / "Pulumi.harbourlaw.yaml").read_text() == before


def test_the_uploaded_image_is_a_valid_png_of_its_own_bytes():
    """WordPress keeps an image upload only if getimagesize reads it: a real PNG, 256 x 256 RGB,
    its pixels derived from the marker (two markers, two files; incompressible, ~197 KB)."""
    first, second = png(b"marker-1"), png(b"marker-2")
    assert first != second and png(b"marker-1") == first
    assert first[:8] == b"\x89PNG\r\n\x1a\n" and len(first) > 190_000
    width, height = struct.unpack(">II", first[16:24])
    assert (width, height) == (256, 256)
    # every chunk's CRC is right (getimagesize reads only the header; browsers read them all)
    offset = 8
    while offset < len(first):
        (length,) = struct.unpack(">I", first[offset : offset + 4])
        kind_and_data = first[offset + 4 : offset + 8 + length]
        (crc,) = struct.unpack(">I", first[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind_and_data) == crc
        offset += 12 + length
    assert offset == len(first)


def test_the_figures_say_what_was_lost():
    figures = WordPressFigures(
        killed="th-do", acknowledged=4, lost=["upload 7 (through linode) on digitalocean: HTTP 404"]
    )
    assert "4 posts and uploads acknowledged, 1 lost" in figures.lines()[-1]
    assert "never" in figures.lines()[1]  # not served by B after the kill: no time to show
