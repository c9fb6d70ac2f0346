"""A WebDAV share (a NAS, Nextcloud, Apache mod_dav, rclone serve webdav...) as an upload target."""

from __future__ import annotations

import functools
import os
import queue
import ssl
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx

from catalogsync.errors import (
    StorageUnavailableError,
    TransferError,
    TransferStopped,
)
from catalogsync.transfer.backends.base import (
    ProgressFn,
    RemoteFile,
    StorageBackend,
    no_progress,
    one_line,
    open_source,
    option_bool,
    option_float,
    read_source,
)
from catalogsync.transfer.retry import Transient
from catalogsync.transfer.stop import never

_POLL_SECONDS = 0.1
_DAV = "{DAV:}"
_PROPFIND_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/><D:getcontentlength/></D:prop>'
    b"</D:propfind>"
)
_OK_PUT = frozenset({200, 201, 204})


class _Secret:
    """A password that never shows up in ``repr`` or logs."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<secret>"


def _classify(exc: BaseException) -> Exception:
    """An httpx failure as a permanent ``TransferError`` or a ``Transient`` one."""
    if isinstance(exc, httpx.TooManyRedirects):
        return TransferError(
            f"too many redirects: {exc}", code="too_many_redirects", permanent=True
        )
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return TransferError(f"bad URL: {exc}", code="bad_url", permanent=True)
    if isinstance(exc, httpx.StreamError):
        return TransferError(
            "the server redirected the upload; use the final URL as the target",
            code="redirected_upload",
            permanent=True,
        )
    if isinstance(exc, httpx.TimeoutException):
        return Transient(TransferError(f"timed out ({type(exc).__name__})", code="timeout"))
    if isinstance(exc, httpx.TransportError):
        return Transient(
            TransferError(
                f"connection failed: {one_line(str(exc)) or type(exc).__name__}", code="connection"
            )
        )
    return TransferError(f"request failed: {one_line(str(exc))}", code="transfer_error")


class WebDavBackend(StorageBackend):
    """Uploads with MKCOL + streaming PUT and verifies the stored size with PROPFIND/HEAD.

    Options: ``username``; ``password`` or ``password_env`` (the name of an
    environment variable holding the password); ``verify_tls`` (true, false or
    the path of a CA bundle; default true); ``timeout`` (seconds, default 30).
    """

    kind = "webdav"
    offers_checksum = False

    def __init__(
        self,
        name: str,
        target: str,
        options: Mapping[str, Any] | None = None,
        *,
        client: httpx.Client | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, target, options, **kwargs)
        parts = urlsplit(target)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname or port == -1:
            raise StorageUnavailableError(
                f"{self.label}: target must be an http:// or https:// URL with a host "
                f"(and a valid port), not a {parts.scheme or 'scheme-less'} address"
            )
        host = parts.hostname
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{host}:{port}" if port else host
        path = parts.path if parts.path.endswith("/") else parts.path + "/"
        self.base_url = urlunsplit((parts.scheme.lower(), netloc, path or "/", "", ""))
        if parts.password is not None:
            raise StorageUnavailableError(
                f"{self.label}: the target URL {self.base_url} must not contain a password; "
                "use the password_env option"
            )
        username = str(self._options.get("username") or unquote(parts.username or ""))
        self._password = _Secret(self._resolve_password())
        self._auth = httpx.BasicAuth(username, self._password.value) if username else None
        self.timeout = option_float(self._options, "timeout", 30.0, self.label)
        self._own_client = client is None
        self._client = (
            client
            if client is not None
            else httpx.Client(
                verify=self._verify_option(),
                timeout=httpx.Timeout(self.timeout),
                follow_redirects=True,
                headers={"User-Agent": "catalogsync"},
            )
        )
        self._folders: set[str] = set()
        self._folders_lock = threading.Lock()

    def _resolve_password(self) -> str:
        env_name = self._options.get("password_env")
        if env_name:
            value = os.environ.get(str(env_name))
            if value is None:
                raise StorageUnavailableError(
                    f"{self.label}: environment variable {env_name} (password_env) is not set"
                )
            return value
        return str(self._options.get("password") or "")

    def _verify_option(self) -> ssl.SSLContext | bool:
        value = self._options.get("verify_tls", True)
        if isinstance(value, str) and ("/" in value or os.sep in value):
            if not Path(value).expanduser().is_file():
                raise StorageUnavailableError(
                    f"{self.label}: verify_tls CA bundle {value} does not exist"
                )
            try:
                return ssl.create_default_context(cafile=str(Path(value).expanduser()))
            except (ssl.SSLError, OSError) as exc:
                raise StorageUnavailableError(
                    f"{self.label}: verify_tls CA bundle {value} is not usable: {exc}"
                ) from exc
        return option_bool(self._options, "verify_tls", True, self.label)

    @property
    def display_target(self) -> str:
        """The base URL without credentials."""
        return self.base_url

    def close(self) -> None:
        """Close the HTTP client if this backend created it."""
        if self._own_client:
            self._client.close()

    # -- requests -----------------------------------------------------------------

    def _url(self, parts: PurePosixPath | tuple[str, ...], folder: bool = False) -> str:
        segments = parts.parts if isinstance(parts, PurePosixPath) else parts
        url = self.base_url + "/".join(quote(s, safe="") for s in segments)
        return url + "/" if folder and segments else url

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One request; transport failures become ``Transient`` or permanent errors."""
        try:
            return self._client.request(
                method, url, auth=self._auth or httpx.USE_CLIENT_DEFAULT, **kwargs
            )
        except httpx.HTTPError as exc:
            text = str(exc)
            if isinstance(exc, httpx.ConnectError) and "CERTIFICATE_VERIFY_FAILED" in text:
                raise StorageUnavailableError(
                    one_line(
                        f"{self.label}: the TLS certificate of {self.base_url} is not trusted "
                        f"({text}); set verify_tls to the path of its CA bundle (or false)"
                    )
                ) from exc
            raise self._labelled(_classify(exc)) from exc
        except httpx.StreamError as exc:
            raise self._labelled(_classify(exc)) from exc

    def _labelled(self, error: Exception) -> Exception:
        if isinstance(error, TransferError) and not str(error).startswith(self.label):
            return TransferError(
                f"{self.label}: {error}", code=error.code, permanent=error.permanent
            )
        return error

    def _propfind(self, url: str) -> RemoteFile | None | bool:
        """``None`` if absent, ``True`` for a folder, a ``RemoteFile`` for a file."""
        response = self._send(
            "PROPFIND",
            url,
            headers={"Depth": "0", "Content-Type": "application/xml"},
            content=_PROPFIND_BODY,
        )
        status = response.status_code
        if status == 404:
            return None
        if status in (400, 405, 501):
            return self._head(url)
        if status != 207:
            raise self._status_error(status, url, response.headers.get("retry-after"))
        try:
            tree = ET.fromstring(response.content)
        except ET.ParseError as exc:
            raise Transient(
                TransferError(f"unreadable PROPFIND answer from {url}: {exc}", code="bad_response")
            ) from exc
        for propstat in tree.iter(f"{_DAV}propstat"):
            status_text = propstat.findtext(f"{_DAV}status") or ""
            if " 200" not in status_text:
                continue
            prop = propstat.find(f"{_DAV}prop")
            if prop is None:
                continue
            kind = prop.find(f"{_DAV}resourcetype")
            if kind is not None and kind.find(f"{_DAV}collection") is not None:
                return True
            length = prop.findtext(f"{_DAV}getcontentlength")
            if length is not None and length.strip().isdigit():
                return RemoteFile(int(length.strip()))
        return self._head(url)

    def _head(self, url: str) -> RemoteFile | None:
        response = self._send("HEAD", url)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._status_error(response.status_code, url, response.headers.get("retry-after"))
        length = response.headers.get("content-length", "").strip()
        if not length.isdigit():
            raise TransferError(
                f"{self.label}: {url} has no size (no Content-Length)", code="bad_response"
            )
        return RemoteFile(int(length))

    # -- the contract -----------------------------------------------------------------

    def stat(self, rel: str, *, checksum: bool = False) -> RemoteFile | None:
        """Size of ``rel`` from PROPFIND (or HEAD), or ``None`` when absent."""
        url = self._url(self._rel(rel))

        def attempt() -> RemoteFile | None:
            found = self._propfind(url)
            if found is True:
                raise TransferError(
                    f"{self.label}: {url} is a folder", code="not_a_file", permanent=True
                )
            return found if isinstance(found, RemoteFile) else None

        return self._retrying(attempt)

    def upload(
        self,
        local: Path,
        rel: str,
        *,
        should_stop: Callable[[], bool] = never,
        on_progress: ProgressFn = no_progress,
    ) -> RemoteFile:
        """MKCOL the folders, stream a PUT, then check the stored size."""
        local = Path(local)
        parts = self._rel(rel)
        src, size = open_source(local, self.label)
        src.close()
        self._ensure_folders(parts.parts[:-1], should_stop)
        url = self._url(parts)
        self._retrying(lambda: self._put(local, url, size, should_stop, on_progress), should_stop)
        remote = self.stat(rel)
        if remote is None or remote.size != size:
            stored = "nothing" if remote is None else f"{remote.size} bytes"
            if remote is not None:
                try:
                    self.delete(rel)
                except (StorageUnavailableError, TransferError):
                    pass
            raise self._verify_failed(f"the server stored {stored} for {url}, sent {size} bytes")
        return remote

    def _ensure_folders(self, folders: tuple[str, ...], should_stop: Callable[[], bool]) -> None:
        """MKCOL the base URL and every parent folder of the file that is not known to exist."""
        for depth in range(len(folders) + 1):
            url = self._url(folders[:depth], folder=True)
            with self._folders_lock:
                if url in self._folders:
                    continue
            self._retrying(functools.partial(self._mkcol, url, depth == 0), should_stop)
            with self._folders_lock:
                self._folders.add(url)

    def _mkcol(self, url: str, is_base: bool) -> None:
        response = self._send("MKCOL", url)
        status = response.status_code
        if status in (200, 201, 204, 301, 405):
            return
        if status in (401, 403, 408, 429, 507) or status >= 500:
            raise self._status_error(status, url, response.headers.get("retry-after"))
        if self._propfind(url) is True:  # some servers answer 409/400 for existing folders
            return
        if is_base:
            raise StorageUnavailableError(
                f"{self.label}: target {url} does not exist and cannot be created (HTTP {status})"
            )
        raise TransferError(
            f"{self.label}: cannot create folder {url} (HTTP {status})",
            code=f"http_{status}",
            permanent=True,
        )

    def _put(
        self,
        local: Path,
        url: str,
        size: int,
        should_stop: Callable[[], bool],
        on_progress: ProgressFn,
    ) -> None:
        """One streaming PUT run in a helper thread so a stop is honoured within ~0.1 s."""
        cancel = threading.Event()
        sent_queue: queue.SimpleQueue[int] = queue.SimpleQueue()
        results: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()

        def body() -> Iterator[bytes]:
            src, _size = open_source(local, self.label)
            with src:
                sent = 0
                while sent < size:
                    if cancel.is_set():
                        raise TransferStopped("transfer stopped")
                    data = read_source(src, min(self.chunk_size, size - sent), local, self.label)
                    if not data:
                        raise TransferError(
                            f"{self.label}: {local} shrank while it was uploaded",
                            code="source_changed",
                        )
                    self._acquire(len(data), cancel.is_set)
                    yield data
                    sent += len(data)
                    sent_queue.put(sent)

        def run() -> None:
            try:
                response = self._send(
                    "PUT",
                    url,
                    content=body(),
                    headers={
                        "Content-Length": str(size),
                        "Content-Type": "application/octet-stream",
                    },
                )
                results.put(("response", response))
            except BaseException as exc:  # handed to the caller
                results.put(("error", exc))

        def report() -> None:
            while True:
                try:
                    on_progress(sent_queue.get_nowait(), size)
                except queue.Empty:
                    return

        on_progress(0, size)
        worker = threading.Thread(target=run, name=f"webdav-put-{self.name}", daemon=True)
        worker.start()
        while True:
            report()
            if should_stop():
                cancel.set()
                raise TransferStopped("transfer stopped")
            try:
                kind, payload = results.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue
            report()
            break
        if kind == "error":
            raise payload
        response: httpx.Response = payload
        if response.status_code not in _OK_PUT:
            raise self._status_error(response.status_code, url, response.headers.get("retry-after"))

    def delete(self, rel: str) -> None:
        """DELETE ``rel``; 404 is fine."""
        url = self._url(self._rel(rel))

        def attempt() -> None:
            response = self._send("DELETE", url)
            if response.status_code in (200, 202, 204, 404):
                return
            raise self._status_error(response.status_code, url, response.headers.get("retry-after"))

        self._retrying(attempt)

    def read(self, rel: str) -> bytes:
        """GET ``rel``."""
        url = self._url(self._rel(rel))

        def attempt() -> bytes:
            response = self._send("GET", url)
            if response.status_code == 200:
                return response.content
            if response.status_code == 404:
                raise TransferError(
                    f"{self.label}: {url} does not exist", code="not_found", permanent=True
                )
            raise self._status_error(response.status_code, url, response.headers.get("retry-after"))

        return self._retrying(attempt)
