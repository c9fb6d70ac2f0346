"""HTTP/1.1 GETs for the downloader, on the standard library's ``http.client``.

A download needs little of HTTP: a GET with a few headers, redirects, a kept-alive
connection, proxies from the environment, TLS with the same trust as the rest of
catalogsync (``httpx.create_ssl_context``), and a body read as it arrives. httpx does
all of that and more, but every request goes through its client, httpcore's pool and
h11's parser in pure Python: measured on 500 files of 256 KiB, about 0.67 ms of CPU per
request against 0.16 ms here, which was the largest share of a small song's cost (see
``docs/benchmarks.md``). The rest of catalogsync keeps using httpx.

One ``Session`` per downloader keeps one idle connection. Each request runs as an
``Exchange`` in the downloader's reader thread; the worker can ``abort`` it from its own
thread, which shuts the socket so a blocked read returns at once.
"""

from __future__ import annotations

import base64
import http.client
import os
import re
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit

import idna

from catalogsync.redact import mask_secrets

MAX_REDIRECTS = 20
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_SAFE_PATH = "/%:@!$&'()*+,;=-._~"
_SAFE_QUERY = _SAFE_PATH + "?"
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# A redirect's body up to this size is read, so its connection can follow the redirect.
_DRAIN_BYTES = 64 * 1024
# Connection-level failures that mean a kept-alive connection was closed by the server
# while idle: the request is sent again once on a new connection.
_STALE = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    BrokenPipeError,
    ConnectionAbortedError,
)


class WireError(Exception):
    """An HTTP exchange failed below the level of a status code."""


class BadURL(WireError):
    """The URL (or a redirect's ``Location``) cannot be fetched: scheme, host, port."""


class TooManyRedirects(WireError):
    """More than ``MAX_REDIRECTS`` redirects."""


class ConnectFailed(WireError):
    """No connection to the server (refused, unreachable, TLS handshake, proxy)."""


class BadCertificate(ConnectFailed):
    """The server's TLS certificate did not verify: trying again will not help."""


class Timeout(WireError):
    """The server took longer than the connect or read timeout."""


class ConnectionLost(WireError):
    """The connection broke (reset, closed, garbage) before the response was complete."""


class Truncated(ConnectionLost):
    """The body ended before the length the server announced."""


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    target: str  # the request target: path and query, or the absolute URL for a proxy
    authorization: str | None  # from user:password in the URL


@dataclass(frozen=True)
class _Proxy:
    host: str
    port: int
    authorization: str | None


class BadFraming(WireError):
    """The chunked body is malformed (a chunk-size line that is not hexadecimal)."""


class _BadChunkLine(http.client.HTTPException):
    """Raised inside http.client's chunk reader; not a ValueError, so it is not taken
    for a connection closed early (which http.client reports the same way)."""


class _Response(http.client.HTTPResponse):
    def _read_next_chunk_size(self) -> int:
        line = self.fp.readline(http.client._MAXLINE + 1)  # type: ignore[attr-defined]
        if len(line) > http.client._MAXLINE:  # type: ignore[attr-defined]
            raise http.client.LineTooLong("chunk size")
        if not line:
            raise ValueError("the connection closed before the next chunk")  # truncated
        size = line.split(b";", 1)[0]
        try:
            return int(size, 16)
        except ValueError:
            self._close_conn()  # type: ignore[attr-defined]
            shown = size.strip()[:20].decode("ascii", "replace")
            raise _BadChunkLine(f"chunk size line {shown!r} is not hexadecimal") from None


class _ReadTimeout:
    """Once connected (any TLS handshake done), a connection's reads wait ``read_timeout``;
    ``timeout`` covers only the connect."""

    read_timeout: float = 30.0
    sock: socket.socket
    response_class: type[http.client.HTTPResponse] = _Response

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self.sock.settimeout(self.read_timeout)


class _Connection(_ReadTimeout, http.client.HTTPConnection):
    pass


class _TlsConnection(_ReadTimeout, http.client.HTTPSConnection):
    pass


def _basic(user: str | None, password: str | None) -> str | None:
    if not user:
        return None
    pair = f"{unquote(user)}:{unquote(password or '')}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def _parse(url: str) -> _Target:
    """Split ``url`` into what a request needs, percent-encoding what a browser would."""
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        host = parts.hostname or ""
        port = parts.port
    except ValueError as exc:
        raise BadURL(f"{url!r}: {exc}") from None
    if scheme not in ("http", "https"):
        raise BadURL(f"{url!r}: not an http(s) URL")
    if not host:
        raise BadURL(f"{url!r}: no host")
    try:
        host.encode("ascii")
    except UnicodeEncodeError:
        # IDNA 2008 with UTS 46 mapping (what browsers and curl do): "straße.de" is
        # xn--strae-oqa.de, not IDNA 2003's "strasse.de", which is another host.
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise BadURL(f"{url!r}: bad host name ({exc})") from None
    path = _LONE_PERCENT.sub("%25", quote(parts.path or "/", safe=_SAFE_PATH))
    query = _LONE_PERCENT.sub("%25", quote(parts.query, safe=_SAFE_QUERY))
    return _Target(
        scheme=scheme,
        host=host,
        port=port or (443 if scheme == "https" else 80),
        target=path + (f"?{query}" if query else ""),
        authorization=_basic(parts.username, parts.password),
    )


def _bracketed(host: str) -> str:
    """An IPv6 literal in brackets, as a URL or a Host header writes it."""
    return f"[{host}]" if ":" in host else host


def _authority(target: _Target) -> str:
    host = _bracketed(target.host)
    default = 443 if target.scheme == "https" else 80
    return host if target.port == default else f"{host}:{target.port}"


class Session:
    """The connection settings of one downloader, and its one kept-alive connection."""

    def __init__(
        self,
        *,
        connect_timeout: float = 10,
        read_timeout: float = 30,
        user_agent: str = "catalogsync",
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.user_agent = user_agent
        self._proxy_error: BadURL | None = None
        try:
            self._proxies, self._no_proxy = _proxies_from(
                os.environ if environ is None else environ
            )
        except BadURL as exc:  # reported by the first request, as that request's failure
            self._proxies, self._no_proxy, self._proxy_error = {}, "", exc
        self._context: ssl.SSLContext | None = None
        self._lock = threading.Lock()
        self._idle: tuple[tuple[Any, ...], http.client.HTTPConnection] | None = None

    def exchange(self) -> Exchange:
        return Exchange(self)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, None
        if idle is not None:
            idle[1].close()

    # -- used by Exchange --------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = _shared_ssl_context()
        return self._context

    def _proxy_for(self, target: _Target) -> _Proxy | None:
        if self._proxy_error is not None:
            raise self._proxy_error
        proxy = self._proxies.get(target.scheme)
        if proxy is None:
            return None
        # urllib.request is imported here, not at the top: it costs each CLI start that
        # embeds a runner some 20-40 ms, and only a no_proxy list needs it.
        from urllib.request import proxy_bypass_environment  # type: ignore[attr-defined]

        if self._no_proxy and proxy_bypass_environment(
            f"{_bracketed(target.host)}:{target.port}", {"no": self._no_proxy}
        ):
            return None
        return proxy

    def _take(self, key: tuple[Any, ...]) -> http.client.HTTPConnection | None:
        with self._lock:
            idle, self._idle = self._idle, None
        if idle is None:
            return None
        if idle[0] == key:
            return idle[1]
        idle[1].close()
        return None

    def _keep(self, key: tuple[Any, ...], conn: http.client.HTTPConnection) -> None:
        with self._lock:
            old, self._idle = self._idle, (key, conn)
        if old is not None:
            old[1].close()

    def _open(self, target: _Target, proxy: _Proxy | None) -> http.client.HTTPConnection:
        host, port = (proxy.host, proxy.port) if proxy else (target.host, target.port)
        conn: http.client.HTTPConnection
        if target.scheme == "https":
            conn = _TlsConnection(
                host, port, timeout=self.connect_timeout, context=self._ssl_context()
            )
            if proxy is not None:  # a CONNECT tunnel through the proxy
                auth = proxy.authorization
                headers = {"Proxy-Authorization": auth} if auth else None
                conn.set_tunnel(target.host, target.port, headers=headers)
        else:  # through a proxy, the request names the absolute URL (see Exchange._once)
            conn = _Connection(host, port, timeout=self.connect_timeout)
        conn.read_timeout = self.read_timeout
        return conn


_contexts: dict[tuple[str, str], ssl.SSLContext] = {}
_contexts_lock = threading.Lock()


def _shared_ssl_context() -> ssl.SSLContext:
    """httpx's default context (certifi's bundle, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``),
    built once per setting: loading the bundle takes tens of milliseconds."""
    key = (os.environ.get("SSL_CERT_FILE", ""), os.environ.get("SSL_CERT_DIR", ""))
    with _contexts_lock:
        context = _contexts.get(key)
        if context is None:
            import httpx

            context = _contexts[key] = httpx.create_ssl_context()
        return context


class Response:
    """A response's status and headers; its body is read with ``read``."""

    def __init__(self, raw: http.client.HTTPResponse, url: str, read_timeout: float) -> None:
        self._raw = raw
        self._read_timeout = read_timeout
        self.status_code: int = raw.status
        self.reason: str = raw.reason
        self.headers: http.client.HTTPMessage = raw.headers  # ``get`` ignores case
        self.url = url  # after redirects
        self.complete = False  # the whole body was read

    def read(self, limit: int) -> bytes:
        """What the body has ready, up to ``limit`` bytes (one socket read at most);
        ``b""`` once it is complete. Raises ``Truncated`` when it ends early."""
        if self.complete:
            return b""
        try:
            data = self._raw.read1(limit)
        except http.client.IncompleteRead as exc:
            raise Truncated(f"the chunked body ended early: {exc}") from None
        except _BadChunkLine as exc:
            raise BadFraming(f"bad chunked body: {exc}") from None
        except TimeoutError:
            raise Timeout(f"read timed out after {self._read_timeout:g} s") from None
        except (OSError, http.client.HTTPException) as exc:
            raise ConnectionLost(f"connection lost: {exc}") from None
        if data:
            return data
        left = self._raw.length
        if left:
            raise Truncated(
                f"peer closed connection without sending complete message body: "
                f"{left} bytes missing"
            )
        self.complete = True
        return b""


class Exchange:
    """One GET (and its redirects) on a connection of ``session``; used by one thread,
    except ``abort``, which any thread may call."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._conn: http.client.HTTPConnection | None = None
        self._key: tuple[Any, ...] | None = None
        self._response: Response | None = None
        self._aborted = False
        self._lock = threading.Lock()

    def get(self, url: str, headers: Mapping[str, str]) -> Response:
        """GET ``url`` with ``headers``, following redirects; the body is left unread."""
        sent = dict(headers)
        current = url
        jar: list[_Cookie] = []  # cookies set along this redirect chain
        for _ in range(MAX_REDIRECTS + 1):
            target = _parse(current)
            response = self._once(target, current, _with_cookies(sent, jar, target.host))
            location = response.headers.get("location")
            if response.status_code not in _REDIRECTS or not location:
                self._response = response
                return response
            _remember_cookies(jar, response.headers.get_all("set-cookie") or [], target.host)
            nxt = urljoin(current, location.strip())
            if _origin(_parse(nxt)) != _origin(target):
                # Credentials meant for one host are not handed to another.
                sent = {k: v for k, v in sent.items() if k.lower() not in _PRIVATE_HEADERS}
            self._drain(response)
            current = nxt
        raise TooManyRedirects(f"more than {MAX_REDIRECTS} redirects from {url}")

    def keep(self) -> None:
        """The response was read to its end: hand the connection back for the next GET."""
        conn, key, response = self._conn, self._key, self._response
        if conn is None or key is None or response is None or not response.complete:
            return
        response._raw.close()
        with self._lock:
            if self._aborted:
                return
            self._conn = None
        if conn.sock is not None:
            self._session._keep(key, conn)

    def close(self) -> None:
        """Close the connection unless ``keep`` handed it back."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def abort(self) -> None:
        """From another thread: break off at once (a blocked read returns)."""
        with self._lock:
            self._aborted = True
            conn = self._conn
        sock = conn.sock if conn is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _once(self, target: _Target, url: str, headers: dict[str, str]) -> Response:
        session = self._session
        proxy = session._proxy_for(target)
        key = (target.scheme, target.host, target.port, proxy)
        reused = self._conn is not None and self._key == key
        if not reused:
            self.close()
            conn = session._take(key)
            reused = conn is not None
            if conn is None:
                conn = session._open(target, proxy)
            with self._lock:
                if self._aborted:
                    conn.close()
                    raise ConnectionLost("aborted")
                self._conn, self._key = conn, key
        request_target = target.target
        lines = {"Host": _authority(target), "User-Agent": session.user_agent, "Accept": "*/*"}
        if target.authorization:
            lines["Authorization"] = target.authorization
        if proxy is not None and target.scheme == "http":
            request_target = f"http://{_authority(target)}{target.target}"
            if proxy.authorization:
                lines["Proxy-Authorization"] = proxy.authorization
        for name, value in headers.items():  # the caller's headers win, whatever their case
            for same in [k for k in lines if k.lower() == name.lower()]:
                del lines[same]
            lines[name] = value
        for attempt in (1, 2):
            assert self._conn is not None
            try:
                self._conn.request("GET", request_target, headers=lines)
                raw = self._conn.getresponse()
            except _STALE as exc:
                if not reused or attempt == 2 or self._aborted:
                    raise ConnectionLost(f"connection lost: {exc}") from None
                # The server closed the idle connection: send it once more on a new one.
                self._conn.close()
                reused = False
                continue
            except TimeoutError:
                raise Timeout(f"timed out talking to {_authority(target)}") from None
            except ssl.SSLCertVerificationError as exc:
                raise BadCertificate(
                    f"the certificate of {_authority(target)} did not verify "
                    f"({exc.verify_message or exc}); for a private CA set SSL_CERT_FILE"
                ) from None
            except ssl.SSLError as exc:
                raise ConnectFailed(f"TLS with {_authority(target)} failed: {exc}") from None
            except (http.client.InvalidURL, UnicodeError, ValueError) as exc:
                raise BadURL(f"cannot send a request for {url!r}: {exc}") from None
            except http.client.HTTPException as exc:
                raise ConnectionLost(f"bad response from {_authority(target)}: {exc!r}") from None
            except OSError as exc:
                if self._conn.sock is None and not reused:
                    raise ConnectFailed(
                        f"cannot connect to {_authority(target)}: {exc.strerror or exc}"
                    ) from None
                raise ConnectionLost(f"connection lost: {exc.strerror or exc}") from None
            return Response(raw, url, session.read_timeout)
        raise AssertionError("unreachable")  # pragma: no cover

    def _drain(self, response: Response) -> None:
        """Read a redirect's small body so its connection serves the next hop."""
        length = response._raw.length
        try:
            if length is not None and length <= _DRAIN_BYTES:
                while response.read(_DRAIN_BYTES):
                    pass
                response._raw.close()
                return
        except WireError:
            pass
        self.close()


_PRIVATE_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


@dataclass
class _Cookie:
    domain: str
    host_only: bool
    name: str
    value: str

    def applies_to(self, host: str) -> bool:
        return host == self.domain or (not self.host_only and host.endswith("." + self.domain))


def _remember_cookies(jar: list[_Cookie], values: list[str], host: str) -> None:
    """Keep the cookies a redirect set (a signed-download handshake may need them on the
    next hop). Only name, value, Domain and Max-Age are read; they live for one GET."""
    for value in values:
        first, *attributes = value.split(";")
        name, sep, content = first.partition("=")
        name = name.strip()
        if not sep or not name:
            continue
        domain, host_only, expired, foreign = host, True, False, False
        for attribute in attributes:
            key, _, setting = attribute.strip().partition("=")
            key, setting = key.lower(), setting.strip()
            if key == "domain" and setting:
                wanted = setting.lstrip(".").lower()
                if host == wanted or host.endswith("." + wanted):
                    domain, host_only = wanted, False
                else:  # a host may not set cookies for another
                    foreign = True
            elif key == "max-age":
                expired = setting.lstrip("-").isdigit() and int(setting) <= 0
        if foreign:
            continue
        jar[:] = [c for c in jar if (c.domain, c.name) != (domain, name)]
        if not expired:
            jar.append(_Cookie(domain, host_only, name, content.strip()))


def _with_cookies(headers: dict[str, str], jar: list[_Cookie], host: str) -> dict[str, str]:
    """``headers`` with the jar's cookies for ``host`` added to any ``Cookie`` given."""
    pairs = [f"{c.name}={c.value}" for c in jar if c.applies_to(host)]
    if not pairs:
        return headers
    out = {k: v for k, v in headers.items() if k.lower() != "cookie"}
    given = [v for k, v in headers.items() if k.lower() == "cookie"]
    out["Cookie"] = "; ".join([*given, *pairs])
    return out


def _origin(target: _Target) -> tuple[str, str, int]:
    return target.scheme, target.host, target.port


def check_proxy_environment(env: Mapping[str, str] | None = None) -> None:
    """Raise ``BadURL`` (one line) when a proxy variable names a kind we cannot use.

    Called once when a runner starts: a SOCKS or https:// proxy would otherwise fail
    every song as ``bad_url``.
    """
    _proxies_from(os.environ if env is None else env)


def _proxies_from(env: Mapping[str, str]) -> tuple[dict[str, _Proxy], str]:
    """``http_proxy`` / ``https_proxy`` / ``all_proxy`` and ``no_proxy``, the lower-case
    name first, for http(s) proxies."""

    def var(name: str) -> str:
        return (env.get(name) or env.get(name.upper()) or "").strip()

    found: dict[str, _Proxy] = {}
    for scheme in ("http", "https"):
        value = var(f"{scheme}_proxy") or var("all_proxy")
        if not value:
            continue
        if "://" not in value:
            value = "http://" + value
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError as exc:
            raise BadURL(f"proxy {value!r}: {exc}") from None
        if parts.scheme.lower() != "http" or not parts.hostname:
            candidates = (f"{scheme}_proxy", f"{scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY")
            name = next((n for n in candidates if (env.get(n) or "").strip()), candidates[0])
            raise BadURL(
                f"{name}={mask_secrets(value)}: only http:// proxies are supported, not "
                f"{parts.scheme or 'this'}:// (unset {name} or point it at an http:// proxy)"
            )
        found[scheme] = _Proxy(parts.hostname, port or 80, _basic(parts.username, parts.password))
    return found, var("no_proxy")
