"""A real HTTP server on 127.0.0.1 whose misbehaviour is chosen per path (for tests)."""

from __future__ import annotations

import http.client
import re
import select
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
_PIECE = 8 * 1024


@dataclass
class Behaviour:
    """How the server answers one path; ``*_times`` count requests, ``None`` means always."""

    body: bytes = b""
    content_type: str = "audio/mpeg"
    status: int | None = None  # fixed status with a tiny body (404, 410...)
    honour_range: bool = True
    rate_bps: int | None = None  # per-connection bandwidth cap
    fail_first: int = 0  # answer the first N requests with fail_status
    fail_status: int = 503
    retry_after: str | None = None
    reset_after: int | None = None  # body bytes sent before a TCP reset
    reset_times: int | None = 1
    truncate_after: int | None = None  # body bytes sent before a clean close
    truncate_times: int | None = 1
    stall_after: int | None = None  # body bytes sent before going silent
    stall_seconds: float = 5.0
    stall_times: int | None = 1
    redirect_to: str | None = None  # a path on this server, or an absolute URL
    set_cookie: str | None = None  # a Set-Cookie header sent with the redirect
    require_cookie: str | None = None  # 403 unless the Cookie header holds this
    with_headers: int = 0  # body bytes sent in the same write as the headers
    extra_headers: dict[str, str] = field(default_factory=dict)
    framing: str = "length"  # "length", "chunked", "bad_chunked" (a broken size line), or
    # "close" (no length: ends at close)
    drop_idle: bool = False  # close the connection after answering, without saying so
    burst_bytes: int | None = None  # paced in bursts of this many bytes (whole MiB...)


@dataclass(frozen=True)
class Served:
    """A whole response body the server sent: its own log of bytes and time."""

    path: str
    bytes_sent: int
    started: float  # epoch seconds, before the first body byte
    ended: float  # epoch seconds, after the last one was flushed

    @property
    def rate(self) -> float:
        return self.bytes_sent / (self.ended - self.started)


@dataclass(frozen=True)
class Request:
    """One request the server saw."""

    path: str
    range: str | None
    index: int  # 0-based count of requests to this path before this one
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case


def _applies(times: int | None, index: int) -> bool:
    return times is None or index < times


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        srv = self.server
        with srv.lock:
            index = srv.counts.get(path, 0)
            srv.counts[path] = index + 1
            headers = {k.lower(): v for k, v in self.headers.items()}
            srv.requests.append(Request(path, self.headers.get("Range"), index, headers))
            behaviour = srv.routes.get(path)
        self._index = index
        try:
            self._answer(path, behaviour, index)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            self.close_connection = True

    def _small(self, status: int, text: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(text)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(text)

    def _answer(self, path: str, b: Behaviour | None, index: int) -> None:
        if b is None:
            self._small(404, b"no such path")
            return
        if b.redirect_to is not None:
            to = b.redirect_to
            headers = {"Location": to if "://" in to else self.server.url(to)}
            if b.set_cookie:
                headers["Set-Cookie"] = b.set_cookie
            self._small(302, headers=headers)
            return
        if b.require_cookie and b.require_cookie not in (self.headers.get("Cookie") or ""):
            self._small(403, b"no session cookie")
            return
        if b.status is not None:
            self._small(b.status, b"fixed status")
            return
        if index < b.fail_first:
            headers = {"Retry-After": b.retry_after} if b.retry_after is not None else {}
            self._small(b.fail_status, b"try later", headers)
            return

        body = b.body
        start, end = 0, len(body) - 1
        status = 200
        wanted = self.headers.get("Range")
        if wanted and b.honour_range and b.framing == "length":
            match = _RANGE.match(wanted.strip())
            if match:
                start = int(match.group(1))
                if match.group(2):
                    end = min(int(match.group(2)), len(body) - 1)
                if start >= len(body):
                    self._small(416, headers={"Content-Range": f"bytes */{len(body)}"})
                    return
                status = 206
        chunk = body[start : end + 1]
        if b.framing != "length":
            self._unframed(status, b, chunk)
            return
        self.send_response(status)
        self.send_header("Content-Type", b.content_type)
        self.send_header("Content-Length", str(len(chunk)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
        for key, value in b.extra_headers.items():
            self.send_header(key, value)
        if b.with_headers:
            # One write for the headers and the first body bytes, so the client's first
            # read holds both (as a busy server's often does).
            lead = chunk[: b.with_headers]
            self._headers_buffer.append(b"\r\n")
            self.wfile.write(b"".join(self._headers_buffer) + lead)
            self._headers_buffer = []
            chunk = chunk[len(lead) :]
        else:
            self.end_headers()

        limit = len(chunk)
        mode = None
        if b.reset_after is not None and _applies(b.reset_times, index):
            limit, mode = min(limit, b.reset_after), "reset"
        elif b.truncate_after is not None and _applies(b.truncate_times, index):
            limit, mode = min(limit, b.truncate_after), "truncate"
        elif b.stall_after is not None and _applies(b.stall_times, index):
            limit, mode = min(limit, b.stall_after), "stall"

        began = time.time()
        self._send_paced(chunk[:limit], b.rate_bps, b.burst_bytes)
        if mode == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
        elif mode == "truncate":
            self.close_connection = True
        elif mode == "stall":
            self.server.stopping.wait(b.stall_seconds)
            self.close_connection = True
        else:
            self._send_paced(chunk[limit:], b.rate_bps, b.burst_bytes)
            self.wfile.flush()
            with self.server.lock:
                self.server.served.append(Served(path, len(chunk), began, time.time()))
            if b.drop_idle:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True

    def _unframed(self, status: int, b: Behaviour, chunk: bytes) -> None:
        """A chunked body, or one that ends when the connection closes; ``truncate_after``
        cuts either short (a chunked one mid-chunk)."""
        self.send_response(status)
        self.send_header("Content-Type", b.content_type)
        if b.framing in ("chunked", "bad_chunked"):
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
        self.end_headers()
        cut = b.truncate_after is not None and _applies(b.truncate_times, self._index)
        if b.framing == "close":
            self.wfile.write(chunk[: b.truncate_after] if cut else chunk)
        elif cut:  # one chunk announced whole, cut short
            self.wfile.write(b"%x\r\n" % len(chunk) + chunk[: b.truncate_after])
        elif b.framing == "bad_chunked":  # one good chunk, then a size line that is no size
            piece = chunk[:_PIECE]
            self.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\nzz-not-hex\r\n")
        else:
            for pos in range(0, len(chunk), _PIECE):
                piece = chunk[pos : pos + _PIECE]
                self.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        self.close_connection = True

    def _send_paced(self, data: bytes, rate_bps: int | None, burst: int | None = None) -> None:
        if not rate_bps:
            self.wfile.write(data)
            return
        began = time.monotonic()
        sent = 0
        step = burst or _PIECE
        for pos in range(0, len(data), step):
            # Bursts go out at the end of their period, so the rate the server logs
            # (bytes / time from first to last byte) is the pacing rate itself.
            due = began + (sent + (len(data[pos : pos + step]) if burst else 0)) / rate_bps
            delay = due - time.monotonic()
            if delay > 0 and self.server.stopping.wait(delay):
                return
            piece = data[pos : pos + step]
            self.wfile.write(piece)
            sent += len(piece)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            self.socket = context.wrap_socket(self.socket, server_side=True)
            self.scheme = "https"
        self.lock = threading.Lock()
        self.routes: dict[str, Behaviour] = {}
        self.counts: dict[str, int] = {}
        self.requests: list[Request] = []
        self.served: list[Served] = []
        self.connections = 0
        self.stopping = threading.Event()

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients hanging up (resets, closed keep-alives) are expected here; stay quiet."""
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]

    def url(self, path: str) -> str:
        host, port = self.server_address[:2]
        return f"{self.scheme}://{host}:{port}{path}"


class LocalServer:
    """What the ``http_server`` fixture yields."""

    def __init__(self, server: _Server) -> None:
        self._server = server

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` on this server."""
        return self._server.url(path)

    def route(self, path: str, behaviour: Behaviour | None = None, **kwargs: object) -> str:
        """Register how ``path`` answers; returns its URL."""
        b = behaviour if behaviour is not None else Behaviour(**kwargs)  # type: ignore[arg-type]
        with self._server.lock:
            self._server.routes[path] = b
        return self.url(path)

    def connections(self) -> int:
        """TCP connections accepted so far."""
        with self._server.lock:
            return self._server.connections

    def served(self, path: str) -> list[Served]:
        """Bodies sent whole for ``path``, with the server's timing."""
        with self._server.lock:
            return [s for s in self._server.served if s.path == path]

    def requests(self, path: str | None = None) -> list[Request]:
        """Requests seen so far, optionally only those for ``path``."""
        with self._server.lock:
            return [r for r in self._server.requests if path is None or r.path == path]


def pseudo_random(n: int, seed: int = 12345) -> bytes:
    import random

    return random.Random(seed).randbytes(n)


def start_server(
    tls: tuple[Path, Path] | None = None,
) -> tuple[LocalServer, threading.Thread, _Server]:
    """Start a ThreadingHTTPServer on a random 127.0.0.1 port in a daemon thread; with
    ``tls`` (certificate, key) it speaks HTTPS."""
    server = _Server(tls)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    return LocalServer(server), thread, server


def stop_server(server: _Server, thread: threading.Thread) -> None:
    server.stopping.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


# -- a forward proxy ---------------------------------------------------------------------


class _ProxyHandler(BaseHTTPRequestHandler):
    """Absolute-form GETs relayed to the origin, and CONNECT tunnels."""

    protocol_version = "HTTP/1.1"
    timeout = 10
    server: _ProxyServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return

    def _note(self) -> None:
        with self.server.lock:
            self.server.seen.append(
                (self.command, self.path, self.headers.get("Proxy-Authorization"))
            )

    def do_GET(self) -> None:  # noqa: N802
        self._note()
        url = urlsplit(self.path)
        origin = http.client.HTTPConnection(url.hostname or "", url.port or 80, timeout=10)
        headers = {k: v for k, v in self.headers.items() if not k.lower().startswith("proxy-")}
        try:
            origin.request(
                "GET", url.path + (f"?{url.query}" if url.query else ""), headers=headers
            )
            answer = origin.getresponse()
            body = answer.read()
        finally:
            origin.close()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_CONNECT(self) -> None:  # noqa: N802
        self._note()
        host, _, port = self.path.rpartition(":")
        upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        peers = {self.connection: upstream, upstream: self.connection}
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                ready, _, _ = select.select(list(peers), [], [], 0.5)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        finally:
            upstream.close()
            self.close_connection = True


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.lock = threading.Lock()
        self.seen: list[tuple[str, str, str | None]] = []

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class ForwardProxy:
    """What ``forward_proxy`` yields: its URL and the requests it relayed."""

    def __init__(self, server: _ProxyServer) -> None:
        self._server = server
        host, port = server.server_address[:2]
        self.url = f"http://{host}:{port}"

    def seen(self) -> list[tuple[str, str, str | None]]:
        """(method, request target, Proxy-Authorization) of every request so far."""
        with self._server.lock:
            return list(self._server.seen)


@contextmanager
def forward_proxy() -> Iterator[ForwardProxy]:
    server = _ProxyServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield ForwardProxy(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
