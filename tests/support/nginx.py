"""A real nginx (Debian's package) serving a folder on 127.0.0.1, for tests.

Users download from production web servers, not from our test server; where the
binary is missing the tests that need it skip with the reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


@dataclass
class Nginx:
    """A running nginx: its document root, base URL and access log."""

    root: Path
    base_url: str
    access_log: Path

    def url(self, relative: str) -> str:
        return f"{self.base_url}/{relative.lstrip('/')}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def nginx_serving(workdir: Path, *, extra_location: str = "") -> Iterator[Nginx]:
    """Start nginx in the foreground on a free port, serving ``workdir/root``."""
    if NGINX is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    root = workdir / "root"
    root.mkdir(parents=True, exist_ok=True)
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)
    port = _free_port()
    user = "user root;" if os.geteuid() == 0 else ""
    conf = workdir / "nginx.conf"
    conf.write_text(
        f"""
{user}
daemon off;
master_process off;
worker_processes 1;
pid {workdir / "nginx.pid"};
error_log {logs / "error.log"} warn;
events {{ worker_connections 256; }}
http {{
    access_log {logs / "access.log"};
    client_body_temp_path {workdir / "tmp-body"};
    proxy_temp_path {workdir / "tmp-proxy"};
    fastcgi_temp_path {workdir / "tmp-fastcgi"};
    uwsgi_temp_path {workdir / "tmp-uwsgi"};
    scgi_temp_path {workdir / "tmp-scgi"};
    types {{ audio/mpeg mp3; audio/flac flac; text/html html; application/json json; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        {extra_location}
    }}
}}
""",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [NGINX, "-c", str(conf), "-p", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            if process.poll() is not None:
                error = process.stderr.read().decode(errors="replace") if process.stderr else ""
                pytest.fail(f"nginx did not start: {error.strip()}")
            try:
                urllib.request.urlopen(base + "/", timeout=1).close()
                break
            except urllib.error.HTTPError:
                break  # it answers (403/404 for the bare root): it is up
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("nginx did not answer within 10 s")
                time.sleep(0.05)
        yield Nginx(root, base, logs / "access.log")
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()
