"""nginx with a per-connection limit_rate on 127.0.0.1, for the speed-accuracy tests.

The test writes its own nginx.conf under a temporary folder and runs nginx in the
foreground (``daemon off``, ``master_process off``: one process, as the current user)
on a free port, with its own pid, log and temp paths. Its access log records, per
request, ``$bytes_sent`` and ``$request_time``: the rate the server itself saw.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {run}/nginx.pid;
error_log {run}/error.log warn;
events {{ worker_connections 64; }}
http {{
    log_format timing '$uri $status $bytes_sent $request_time $msec';
    access_log {run}/access.log timing;
    client_body_temp_path {run}/body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;
    types {{ audio/mpeg mp3; }}
    sendfile {sendfile};
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location /limited/ {{
            alias {root}/;
            limit_rate {rate};
        }}
        location /bursty/ {{
            alias {root}/;
            limit_rate {rate};
            sendfile_max_chunk 1m;
            output_buffers 1 1m;
        }}
    }}
}}
"""


@dataclass(frozen=True)
class AccessLine:
    """One access-log line: the path, status, bytes the server sent and its time."""

    path: str
    status: int
    bytes_sent: int
    request_time: float
    ended_at: float  # epoch seconds ($msec)

    @property
    def rate(self) -> float:
        """Bytes per second as the server measured it."""
        return self.bytes_sent / self.request_time if self.request_time > 0 else 0.0


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Nginx:
    """nginx serving ``root`` at ``/limited/`` and ``/bursty/``, capped at ``rate`` B/s."""

    def __init__(self, root: Path, run_dir: Path, *, rate: int, sendfile: bool = True) -> None:
        binary = nginx_binary()
        if binary is None:
            raise FileNotFoundError("nginx is not installed (apt-get install nginx-light)")
        run_dir.mkdir(parents=True, exist_ok=True)
        self.root, self.run_dir, self.port = root, run_dir, _free_port()
        conf = run_dir / "nginx.conf"
        conf.write_text(
            _CONF.format(
                run=run_dir,
                port=self.port,
                root=root,
                rate=rate,
                sendfile="on" if sendfile else "off",
            ),
            encoding="utf-8",
        )
        self.process = subprocess.Popen(
            [binary, "-p", str(run_dir), "-c", str(conf), "-e", str(run_dir / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.process.stderr.read().decode()}")  # type: ignore[union-attr]
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.close()
        raise RuntimeError("nginx did not start listening within 10 s")

    def url(self, location: str, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{location}/{name}"

    def access(self) -> list[AccessLine]:
        path = self.run_dir / "access.log"
        if not path.exists():
            return []
        lines = []
        for raw in path.read_text(encoding="utf-8").splitlines():
            uri, status, sent, took, msec = raw.split()
            lines.append(AccessLine(uri, int(status), int(sent), float(took), float(msec)))
        return lines

    def wait_for_log(self, uri: str, timeout: float = 10.0) -> AccessLine:
        """The access line of ``uri`` (nginx writes it once the response is sent)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [a for a in self.access() if a.path == uri]
            if found:
                return found[-1]
            time.sleep(0.05)
        raise AssertionError(f"nginx logged no request for {uri}")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
