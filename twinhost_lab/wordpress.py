"""The WordPress drill (`twinhost lab drill --wordpress`, tests/lab/test_wordpress.py), on a lab
booted with `twinhost lab up --wordpress` (app kind `wordpress` with `database: mariadb`).

Everything goes through HTTPS from the lab's "internet" namespace, as a visitor or an editor
would, with the site's name resolved to one node at a time:

1. WordPress's own install page through node A (`/wp-admin/install.php?step=2`), then a login
   (`/wp-login.php`, cookies) and, through the REST API with the login's nonce, a published post
   and an uploaded PNG (random pixels, so its bytes are its own);
2. both read back through node B: the post's title and marker in its page and in the REST API,
   the upload's bytes (SHA-256) under /wp-content/uploads/;
3. node A killed (Container.kill: no shutdown, cable unplugged); node B must then serve the post
   and the upload byte for byte (seconds from the kill to both served), and take a second post
   and upload of its own;
4. node A booted again: once it is healthy over TLS, it must serve all four (its database
   member rejoined by IST, its brick healed by GlusterFS).

Lost: every post or upload acknowledged (HTTP 201) that a node then does not serve as written
(target 0). The admin password is random per run and never printed.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twinhost_lab import database
from twinhost_lab import lab as lab_module
from twinhost_lab.checks import RunningLab
from twinhost_lab.host import LabError, run, wait_for
from twinhost_lab.layout import Layout

Log = Callable[[str], None]
SERVE_TIMEOUT_S = 120.0
RETURN_TIMEOUT_S = 600.0
IMAGE_SIDE = 256  # 256 x 256 random RGB pixels: about 197 KB, incompressible


def png(seed: bytes, side: int = IMAGE_SIDE) -> bytes:
    """A valid PNG of pseudo-random pixels derived from `seed` (WordPress checks an image's type
    with getimagesize before it keeps the upload)."""
    stream = hashlib.shake_256(seed).digest(side * side * 3)
    rows = b"".join(b"\x00" + stream[y * side * 3 : (y + 1) * side * 3] for y in range(side))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


@dataclass
class Item:
    """A post or an upload acknowledged by WordPress (HTTP 201), and how to check it."""

    kind: str  # "post" | "upload"
    via: str  # the node it was written through
    ident: int
    url: str  # the post's REST route, or the upload's URL
    marker: str = ""  # a post: its marker in the title and content
    sha256: str = ""  # an upload: its bytes
    size: int = 0


@dataclass
class WordPressFigures:
    install_s: float = 0.0
    login_s: float = 0.0
    post_s: float = 0.0
    upload_s: float = 0.0
    upload_bytes: int = 0
    read_on_b_s: float | None = None
    killed: str = ""
    served_by_b_after_kill_s: float | None = None
    written_on_b_while_a_dead_s: float | None = None
    a_healthy_after_boot_s: float | None = None
    served_by_a_after_boot_s: float | None = None
    acknowledged: int = 0
    lost: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        def s(value: float | None) -> str:
            return "never" if value is None else f"{value:.1f} s"

        return [
            f"WORDPRESS install through node A {s(self.install_s)}, login {s(self.login_s)}, post "
            f"{s(self.post_s)}, upload of {self.upload_bytes} B {s(self.upload_s)}; both read on node B "
            f"{s(self.read_on_b_s)} later",
            f"WORDPRESS {self.killed} killed: node B served the post and the upload byte for byte "
            f"{s(self.served_by_b_after_kill_s)} after the kill, took a post and an upload of its own "
            f"{s(self.written_on_b_while_a_dead_s)} after",
            f"WORDPRESS {self.killed} booted again: healthy over TLS after {s(self.a_healthy_after_boot_s)}, "
            f"served all {self.acknowledged} items after {s(self.served_by_a_after_boot_s)}",
            f"WORDPRESS {self.acknowledged} posts and uploads acknowledged, {len(self.lost)} lost"
            + (f": {self.lost}" if self.lost else ""),
        ]


class WordPressSite:
    """An HTTPS client of the lab's WordPress site, through one node or the other."""

    def __init__(self, lab: RunningLab):
        self.lab = lab
        self.www = str(lab.site["www"][0])
        self.base = f"https://{self.www}"
        self.files = lab.files / "wordpress"
        self.files.mkdir(parents=True, exist_ok=True)
        self.jar = self.files / "cookies.txt"
        self.jar.unlink(missing_ok=True)
        self.password = secrets.token_urlsafe(24)  # never printed
        self.user = "labeditor"
        self.nonce = ""

    def request(self, role: str, path: str, *extra: str, max_time: int = 60) -> tuple[int, bytes]:
        """(HTTP status, body) of `path` through `role`'s node; status 0 when curl failed."""
        body = self.files / f"body-{secrets.token_hex(4)}"
        command = lab_module.internet_curl(
            self.lab.layout,
            self.base + path,
            self.www,
            self.lab.address(role),
            "-b",
            str(self.jar),
            "-c",
            str(self.jar),
            "-o",
            str(body),
            "-w",
            "%{http_code}",
            *extra,
            max_time=max_time,
        )
        try:
            result = run(command, check=False, timeout=max_time + 15)
        except Exception:  # noqa: BLE001 - a hung connection is an answer (status 0)
            return 0, b""
        try:
            data = body.read_bytes()
        except FileNotFoundError:
            data = b""
        body.unlink(missing_ok=True)
        code = result.stdout.strip()
        return (int(code) if code.isdigit() else 0), data

    def install(self, role: str) -> None:
        """WordPress's install page, step 2 (the form's POST): the site's tables and its admin."""
        code, body = self.request(
            role,
            "/wp-admin/install.php?step=2",
            "--data-urlencode",
            "weblog_title=Harbour Law (lab)",
            "--data-urlencode",
            f"user_name={self.user}",
            "--data-urlencode",
            f"admin_password={self.password}",
            "--data-urlencode",
            f"admin_password2={self.password}",
            "--data-urlencode",
            "pw_weak=1",
            "--data-urlencode",
            "admin_email=editor@harbour-law.co.uk",
            "--data-urlencode",
            "blog_public=0",
            max_time=180,
        )
        if code != 200 or b"Success!" not in body:
            raise LabError(f"WordPress install through {role}: HTTP {code}: {_text(body)}")

    def login(self, role: str) -> None:
        self.request(role, "/wp-login.php")  # sets WordPress's test cookie
        code, body = self.request(
            role,
            "/wp-login.php",
            "--data-urlencode",
            f"log={self.user}",
            "--data-urlencode",
            f"pwd={self.password}",
            "--data-urlencode",
            "wp-submit=Log In",
            "--data-urlencode",
            "testcookie=1",
            "--data-urlencode",
            f"redirect_to={self.base}/wp-admin/",
        )
        logged_in = "wordpress_logged_in_" in (self.jar.read_text() if self.jar.exists() else "")
        if code != 302 or not logged_in:
            raise LabError(
                f"WordPress login through {role}: HTTP {code}, logged in: {logged_in}: {_text(body)}"
            )
        code, body = self.request(role, "/wp-admin/admin-ajax.php?action=rest-nonce")
        if code != 200 or not body.strip().isalnum():
            raise LabError(f"WordPress REST nonce through {role}: HTTP {code}: {_text(body)}")
        self.nonce = body.strip().decode()

    def post(self, role: str, marker: str) -> Item:
        payload = json.dumps(
            {
                "title": f"Lab post {marker}",
                "content": f"<p>Written through {role}: {marker}</p>",
                "status": "publish",
            }
        )
        code, body = self.request(
            role,
            "/?rest_route=/wp/v2/posts",
            "-H",
            f"X-WP-Nonce: {self.nonce}",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            payload,
        )
        if code != 201:
            raise LabError(f"WordPress post through {role}: HTTP {code}: {_text(body)}")
        ident = int(json.loads(body)["id"])
        return Item("post", role, ident, f"/?rest_route=/wp/v2/posts/{ident}", marker=marker)

    def upload(self, role: str, marker: str) -> Item:
        data = png(marker.encode())
        path = self.files / f"{marker}.png"
        path.write_bytes(data)
        code, body = self.request(
            role,
            "/?rest_route=/wp/v2/media",
            "-H",
            f"X-WP-Nonce: {self.nonce}",
            "-H",
            "Content-Type: image/png",
            "-H",
            f"Content-Disposition: attachment; filename={marker}.png",
            "--data-binary",
            f"@{path}",
        )
        path.unlink(missing_ok=True)
        if code != 201:
            raise LabError(f"WordPress upload through {role}: HTTP {code}: {_text(body)}")
        answer = json.loads(body)
        url = str(answer["source_url"])
        if not url.startswith(self.base + "/"):
            raise LabError(f"WordPress upload through {role}: unexpected URL {url}")
        return Item(
            "upload",
            role,
            int(answer["id"]),
            url.removeprefix(self.base),
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
        )

    def served(self, role: str, item: Item) -> str | None:
        """None when `role` serves `item` as written; otherwise what is wrong."""
        if item.kind == "upload":
            code, body = self.request(role, item.url)
            if code != 200:
                return f"HTTP {code}"
            digest = hashlib.sha256(body).hexdigest()
            return (
                None
                if digest == item.sha256
                else f"{len(body)} B, sha256 {digest[:12]} (not {item.sha256[:12]})"
            )
        code, body = self.request(role, item.url)
        if code != 200:
            return f"REST HTTP {code}"
        answer: dict[str, Any] = json.loads(body)
        if item.marker not in answer.get("title", {}).get("rendered", ""):
            return "REST: the title has not the marker"
        code, body = self.request(role, f"/?p={item.ident}")
        if code != 200 or item.marker.encode() not in body:
            return f"page HTTP {code}, marker {'present' if item.marker.encode() in body else 'missing'}"
        return None

    def missing(self, role: str, items: list[Item]) -> list[str]:
        return [
            f"{item.kind} {item.ident} (through {item.via}) on {role}: {problem}"
            for item in items
            if (problem := self.served(role, item)) is not None
        ]

    def wait_served(self, role: str, items: list[Item], timeout: float) -> tuple[float | None, list[str]]:
        """Seconds until `role` serves every item as written (None, and what is still wrong, if not)."""
        started = time.monotonic()
        problems: list[str] = []
        while time.monotonic() - started < timeout:
            problems = self.missing(role, items)
            if not problems:
                return round(time.monotonic() - started, 1), []
            time.sleep(1)
        return None, problems


def is_wordpress(lab: RunningLab) -> bool:
    box = lab.boxes[lab.primary]
    return box.exec(["test", "-e", "/etc/twinhost/wordpress.env"], check=False).returncode == 0


def drill(layout: Layout, log: Log = print) -> WordPressFigures:
    """Install, write through A, read through B, kill A, read and write through B, boot A, read
    everything through A (the module's docstring)."""
    lab = RunningLab(layout)
    if not is_wordpress(lab):
        raise LabError("the running lab's site is not WordPress (`twinhost lab up --wordpress`)")
    site = WordPressSite(lab)
    a, b = lab.primary, lab.standby
    figures = WordPressFigures(killed=lab.boxes[a].node.name)
    items: list[Item] = []
    run_id = secrets.token_hex(4)

    database.wait_synced(lab)
    started = time.monotonic()
    site.install(a)
    figures.install_s = round(time.monotonic() - started, 1)
    log(f"installed WordPress through {a} in {figures.install_s} s")
    started = time.monotonic()
    site.login(a)
    figures.login_s = round(time.monotonic() - started, 1)
    started = time.monotonic()
    items.append(site.post(a, f"wp-{run_id}-a-post"))
    figures.post_s = round(time.monotonic() - started, 1)
    started = time.monotonic()
    items.append(site.upload(a, f"wp-{run_id}-a-upload"))
    figures.upload_s = round(time.monotonic() - started, 1)
    figures.upload_bytes = items[-1].size
    log(f"post {items[0].ident} and upload {items[1].url} ({figures.upload_bytes} B) through {a}")
    read, problems = site.wait_served(b, items, SERVE_TIMEOUT_S)
    if read is None:
        figures.problems.append(f"node B did not serve what A acknowledged: {problems}")
        figures.lost = problems
        figures.acknowledged = len(items)
        return figures
    figures.read_on_b_s = read
    log(f"both read back through {b} after {read} s")

    box = lab.boxes[a]
    log(f"pulling the plug on {box.node.name}")
    killed_at = time.monotonic()
    box.kill()
    try:
        served, problems = site.wait_served(b, items, SERVE_TIMEOUT_S)
        figures.served_by_b_after_kill_s = None if served is None else round(time.monotonic() - killed_at, 1)
        if served is None:
            figures.problems.append(f"node B alone did not serve them: {problems}")
        log(f"node B served both {figures.served_by_b_after_kill_s} s after the kill")
        try:
            items.append(site.post(b, f"wp-{run_id}-b-post"))
            items.append(site.upload(b, f"wp-{run_id}-b-upload"))
            figures.written_on_b_while_a_dead_s = round(time.monotonic() - killed_at, 1)
        except LabError as exc:
            figures.problems.append(f"node B alone refused a write: {exc}")
    finally:
        _boot(lab, a, log)
    booted_at = time.monotonic()
    try:
        wait_for(
            lambda: lab_module.healthy_over_tls(layout, lab.state),
            timeout=RETURN_TIMEOUT_S,
            interval=2,
            what="both site nodes healthy over TLS again",
        )
        figures.a_healthy_after_boot_s = round(time.monotonic() - booted_at, 1)
    except LabError as exc:
        figures.problems.append(str(exc))
    served, problems = site.wait_served(a, items, SERVE_TIMEOUT_S)
    if served is not None:
        figures.served_by_a_after_boot_s = round(time.monotonic() - booted_at, 1)
    figures.acknowledged = len(items)
    figures.lost = sorted({*problems, *site.missing(b, items)})
    for line in figures.lines():
        log(line)
    return figures


def _boot(lab: RunningLab, role: str, log: Log) -> None:
    box = lab.boxes[role]
    log(f"booting {box.node.name} again")
    lab_module.boot_again(lab.layout, lab.state, box)


def problems(figures: WordPressFigures) -> list[str]:
    found = list(figures.problems)
    if figures.lost:
        found.append(f"{len(figures.lost)} acknowledged posts or uploads lost: {figures.lost}")
    return found


def _text(body: bytes) -> str:
    return body.decode(errors="replace").replace("\n", " ")[:400]
