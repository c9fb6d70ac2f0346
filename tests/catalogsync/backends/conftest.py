"""Fixtures for backend tests: a real WebDAV server (wsgidav + cheroot) and rclone config."""

from __future__ import annotations

import contextlib
import io
import shutil
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.audio import mp3_body

DAV_USER = "alice"
DAV_PASSWORD = "s3cret-Pa55word"

_REASONS = {
    400: "Bad Request",
    429: "Too Many Requests",
    503: "Service Unavailable",
    507: "Insufficient Storage",
}


@dataclass
class Faults:
    """How the WebDAV server misbehaves on PUT; ``put_fail_times`` None means always."""

    put_status: int | None = None
    put_fail_times: int | None = None
    retry_after: str | None = None
    truncate_put_to: int | None = None
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def methods(self, method: str) -> list[str]:
        """Paths of the requests seen with ``method``."""
        with self.lock:
            return [path for m, path in self.requests if m == method]


class FaultMiddleware:
    """WSGI middleware in front of wsgidav: answers PUT with an error or truncates its body."""

    def __init__(self, app: Callable[..., Iterable[bytes]], faults: Faults) -> None:
        self.app = app
        self.faults = faults

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        f = self.faults
        method = environ["REQUEST_METHOD"]
        with f.lock:
            f.requests.append((method, environ.get("PATH_INFO", "")))
            put_index = sum(1 for m, _ in f.requests if m == "PUT") - 1
        if method != "PUT":
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        failing = f.put_status is not None and (
            f.put_fail_times is None or put_index < f.put_fail_times
        )
        if failing or f.truncate_put_to is not None:
            body = environ["wsgi.input"].read(length) if length else b""
            if failing:
                status = f.put_status or 500
                text = b"fault injected by the test server"
                headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(text)))]
                if f.retry_after is not None:
                    headers.append(("Retry-After", f.retry_after))
                start_response(f"{status} {_REASONS.get(status, 'Error')}", headers)
                return [text]
            kept = body[: f.truncate_put_to]
            environ["wsgi.input"] = io.BytesIO(kept)
            environ["CONTENT_LENGTH"] = str(len(kept))
        return self.app(environ, start_response)


@dataclass
class DavServer:
    """What the ``webdav_server`` fixture yields."""

    url: str  # base URL of the share, ending in "/"
    root: Path  # the folder the share serves
    faults: Faults
    port: int

    def options(self, **extra: Any) -> dict[str, Any]:
        """Backend options with the right credentials."""
        return {"username": DAV_USER, "password": DAV_PASSWORD, **extra}


@contextlib.contextmanager
def run_webdav(root: Path, tls: tuple[Path, Path] | None = None) -> Iterator[DavServer]:
    """Serve ``root`` as the share ``/music`` (basic auth) on a random 127.0.0.1 port."""
    from cheroot import wsgi
    from wsgidav.wsgidav_app import WsgiDAVApp

    root.mkdir(parents=True, exist_ok=True)
    config = {
        "host": "127.0.0.1",
        "port": 0,
        "provider_mapping": {"/music": str(root)},
        "simple_dc": {"user_mapping": {"*": {DAV_USER: {"password": DAV_PASSWORD}}}},
        "http_authenticator": {
            "accept_basic": True,
            "accept_digest": False,
            "default_to_digest": False,
        },
        "verbose": 0,
        "logging": {"enable": False},
        "dir_browser": {"enable": False},
        "lock_storage": True,
    }
    faults = Faults()
    app = FaultMiddleware(WsgiDAVApp(config), faults)
    server = wsgi.Server(("127.0.0.1", 0), app, numthreads=8)
    server.expiration_interval = 0.05  # quick shutdown
    server.shutdown_timeout = 1
    if tls is not None:
        from cheroot.ssl.builtin import BuiltinSSLAdapter

        server.ssl_adapter = BuiltinSSLAdapter(str(tls[0]), str(tls[1]))
    server.prepare()
    port = server.bind_addr[1]
    thread = threading.Thread(target=server.serve, name="wsgidav-test", daemon=True)
    thread.start()
    scheme = "https" if tls is not None else "http"
    try:
        yield DavServer(f"{scheme}://127.0.0.1:{port}/music/", root, faults, port)
    finally:
        server.stop()
        thread.join(5)


@pytest.fixture
def webdav_server(tmp_path: Path) -> Iterator[DavServer]:
    """A wsgidav share ``/music`` on a random 127.0.0.1 port, with basic auth."""
    with run_webdav(tmp_path / "dav-root") as server:
        yield server


@pytest.fixture
def free_port() -> int:
    """A 127.0.0.1 port nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def rclone_config(tmp_path: Path) -> Path:
    """An rclone.conf with one remote ``nas`` of type local."""
    path = tmp_path / "rclone.conf"
    path.write_text("[nas]\ntype = local\n", encoding="utf-8")
    return path


FAKE_RCLONE = '''#!{python}
"""A stand-in for rclone that misbehaves as FAKE_RCLONE_MODE says, else runs the real one."""
import os, pathlib, subprocess, sys, tempfile

REAL = {real!r}
STATE = pathlib.Path({state!r})
mode = os.environ.get("FAKE_RCLONE_MODE", "")
args = sys.argv[1:]
rest = list(args)
if "--config" in rest:
    del rest[rest.index("--config"):rest.index("--config") + 2]
command = rest[0] if rest else ""
if command == "rcd" and mode == "no_rcd":
    sys.stderr.write('Error: unknown command "rcd" for "rclone"\\n')
    sys.exit(1)
if command == "copyto":
    count = int(STATE.read_text()) if STATE.exists() else 0
    STATE.write_text(str(count + 1))
    if mode == "flaky" and count < 2:
        sys.stderr.write("2024/01/01 00:00:00 Failed to copyto: dial tcp 10.0.0.9:22: "
                         "connect: connection refused\\n")
        sys.exit(1)
    if mode == "full":
        sys.stderr.write('{{"level":"error","msg":"Failed to copy: write /nas/x: '
                         'no space left on device"}}\\n')
        sys.exit(1)
    if mode == "truncate":
        i = args.index("copyto")
        source = pathlib.Path(args[i + 1])
        short = pathlib.Path(tempfile.mkdtemp()) / source.name
        short.write_bytes(source.read_bytes()[:100])
        args[i + 1] = str(short)
sys.exit(subprocess.call([REAL, *args]))
'''


@pytest.fixture
def fake_rclone(tmp_path: Path) -> Path:
    """A program that behaves like rclone but fails as ``FAKE_RCLONE_MODE`` asks."""
    real = shutil.which("rclone") or "rclone"
    script = tmp_path / "fake-rclone"
    script.write_text(
        FAKE_RCLONE.format(python=sys.executable, real=real, state=str(tmp_path / "copies")),
        encoding="utf-8",
    )
    script.chmod(0o755)
    return script


@pytest.fixture
def song(tmp_path: Path) -> Path:
    """A 300 KiB file to upload."""
    path = tmp_path / "src" / "song.mp3"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(mp3_body(300 * 1024, seed=7))
    return path
