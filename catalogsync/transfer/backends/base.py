"""The storage-backend contract, path checks and the retry loop shared by every backend."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import time
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, ClassVar, TypeVar

from catalogsync.errors import (
    CatalogsyncError,
    ConfigError,
    StorageFullError,
    StorageUnavailableError,
    TransferError,
)
from catalogsync.transfer.durability import sha256_of
from catalogsync.transfer.http import parse_retry_after
from catalogsync.transfer.paths import UnsafePathError
from catalogsync.transfer.ratelimit import TokenBucket
from catalogsync.transfer.retry import RetriesExhausted, Transient, retrying
from catalogsync.transfer.stop import never

T = TypeVar("T")
ProgressFn = Callable[[int, int | None], None]

PROBE_PREFIX = ".catalogsync-probe-"
_MAX_MESSAGE = 400
_NETWORK_CODES = frozenset({"connection", "timeout"})
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def no_progress(done: int, total: int | None) -> None:
    """An ``on_progress`` that ignores progress."""


def one_line(text: str, limit: int = _MAX_MESSAGE) -> str:
    """Collapse whitespace (newlines included) and cut ``text`` to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@dataclass(frozen=True)
class RemoteFile:
    """What a backend knows about a stored file: its size and, when available, its SHA-256."""

    size: int
    sha256: str | None = None


def check_relative(rel: str, label: str) -> PurePosixPath:
    """Validate a POSIX relative path; raise ``UnsafePathError`` if it could leave the root."""

    def refuse(reason: str) -> UnsafePathError:
        return UnsafePathError(f"{label}: refusing path {rel!r}: {reason}")

    if not isinstance(rel, str) or not rel:
        raise refuse("it is empty")
    if "\\" in rel:
        raise refuse("it contains a backslash")
    if any(unicodedata.category(ch) == "Cc" for ch in rel):
        raise refuse("it contains a control character")
    if rel.startswith("/"):
        raise refuse("it is absolute")
    parts = rel.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise refuse("it has an empty, '.' or '..' component")
    return PurePosixPath(*parts)


def option_bool(options: Mapping[str, Any], key: str, default: bool, label: str) -> bool:
    """A boolean option that may arrive as text from the command line."""
    value = options.get(key, default)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{label}: option {key}={value!r} is not true or false")


def option_float(options: Mapping[str, Any], key: str, default: float, label: str) -> float:
    """A positive number option that may arrive as text from the command line."""
    value = options.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if number <= 0:
        raise ConfigError(f"{label}: option {key}={value!r} is not a positive number")
    return number


def open_source(local: Path, label: str) -> tuple[IO[bytes], int]:
    """Open the local file to upload; a missing or unreadable source is a ``TransferError``."""
    try:
        fh = open(local, "rb")  # noqa: SIM115 - the caller closes it
    except FileNotFoundError as exc:
        raise TransferError(
            f"{label}: source file {local} does not exist", code="source_missing", permanent=True
        ) from exc
    except IsADirectoryError as exc:
        raise TransferError(
            f"{label}: source {local} is a folder", code="source_missing", permanent=True
        ) from exc
    except OSError as exc:
        raise TransferError(
            f"{label}: cannot read {local}: {exc.strerror or exc}", code="source_unreadable"
        ) from exc
    try:
        size = os.fstat(fh.fileno()).st_size
    except OSError as exc:
        fh.close()
        raise TransferError(
            f"{label}: cannot read {local}: {exc.strerror or exc}", code="source_unreadable"
        ) from exc
    return fh, size


def read_source(fh: IO[bytes], n: int, local: Path, label: str) -> bytes:
    """Read up to ``n`` bytes of the source; a read error is a ``TransferError``."""
    try:
        return fh.read(n)
    except OSError as exc:
        raise TransferError(
            f"{label}: cannot read {local}: {exc.strerror or exc}", code="source_unreadable"
        ) from exc


class StorageBackend(ABC):
    """A place uploads go to: a folder, a WebDAV share or an rclone remote.

    ``rel`` arguments are POSIX relative paths (``manifest/Artist/Title.mp3``);
    anything that could land outside the target root is refused with
    ``StorageUnavailableError`` (``UnsafePathError``). Errors carry one line that
    names the backend (``"webdav backend nas: ..."``) and never a password.
    """

    kind: ClassVar[str] = ""
    #: whether ``upload`` verifies content by SHA-256 (not just by size)
    offers_checksum: bool = False

    def __init__(
        self,
        name: str,
        target: str,
        options: Mapping[str, Any] | None = None,
        *,
        limiter: TokenBucket | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 4,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        chunk_size: int = 64 * 1024,
    ) -> None:
        self.name = name
        self.target = target
        self._options = dict(options or {})
        self.limiter = limiter
        self._sleep = sleep
        self.max_attempts = max(int(max_attempts), 1)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.chunk_size = max(int(chunk_size), 1)

    # -- identity --------------------------------------------------------------

    @property
    def label(self) -> str:
        """How errors name this backend: ``"<kind> backend <name>"``."""
        return f"{self.kind} backend {self.name}"

    @property
    def display_target(self) -> str:
        """The target as shown to users (never with credentials)."""
        return self.target

    @property
    def options(self) -> dict[str, Any]:
        """The backend options with secrets masked."""
        return {
            k: ("***" if "password" in k and "env" not in k else v)
            for k, v in self._options.items()
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} target={self.display_target!r}>"

    # -- the contract ----------------------------------------------------------

    @abstractmethod
    def stat(self, rel: str, *, checksum: bool = False) -> RemoteFile | None:
        """Size (and SHA-256 if ``checksum`` and offered) of ``rel``, or ``None`` when absent."""

    @abstractmethod
    def upload(
        self,
        local: Path,
        rel: str,
        *,
        should_stop: Callable[[], bool] = never,
        on_progress: ProgressFn = no_progress,
    ) -> RemoteFile:
        """Copy ``local`` to ``rel``, verify the stored copy and return what is stored."""

    @abstractmethod
    def delete(self, rel: str) -> None:
        """Remove ``rel``; a file that is already gone is fine."""

    @abstractmethod
    def read(self, rel: str) -> bytes:
        """The bytes of a small stored file (used by ``probe``)."""

    def close(self) -> None:
        """Release connections; the backend may not be used afterwards."""
        return None

    def __enter__(self) -> StorageBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- built on the contract ---------------------------------------------------

    def probe(self) -> None:
        """Write, read back and delete a small probe file; raise a one-line storage error."""
        rel = PROBE_PREFIX + secrets.token_hex(6)
        data = b"catalogsync probe " + secrets.token_hex(16).encode() + b"\n"
        uploaded = False
        try:
            with tempfile.TemporaryDirectory(prefix="catalogsync-probe-") as tmp:
                source = Path(tmp) / "probe"
                source.write_bytes(data)
                self.upload(source, rel)
                uploaded = True
            back = self.read(rel)
            if back != data:
                raise StorageUnavailableError(
                    f"{self.label}: the probe file read back differs from what was written"
                )
        except StorageFullError as exc:
            raise StorageFullError(self._probe_message(exc)) from exc
        except CatalogsyncError as exc:  # a TransferStopped, a signal, goes through
            raise StorageUnavailableError(self._probe_message(exc)) from exc
        finally:
            if uploaded:
                with contextlib.suppress(CatalogsyncError):
                    self.delete(rel)

    def same_copy(
        self, local: Path, rel: str, *, local_sha256: str | None = None
    ) -> RemoteFile | None:
        """The target's file when ``rel`` already holds ``local`` (same size; same SHA-256
        when the backend offers checksums), else None: the one test an upload skips by."""
        remote = self.stat(rel, checksum=self.offers_checksum)
        if remote is None or remote.size != Path(local).stat().st_size:
            return None
        if remote.sha256 is None:
            return remote
        digest = local_sha256 or sha256_of(Path(local))
        return remote if digest.lower() == remote.sha256.lower() else None

    def needs_upload(self, local: Path, rel: str, *, local_sha256: str | None = None) -> bool:
        """False when ``rel`` already holds ``local`` (see ``same_copy``)."""
        return self.same_copy(local, rel, local_sha256=local_sha256) is None

    # -- helpers for subclasses -------------------------------------------------

    def _rel(self, rel: str) -> PurePosixPath:
        """``rel`` checked by ``check_relative`` with this backend's label."""
        return check_relative(rel, self.label)

    def _probe_message(self, exc: BaseException) -> str:
        detail = str(exc)
        prefix = f"{self.label}: "
        if detail.startswith(prefix):
            detail = detail[len(prefix) :]
        return one_line(f"{self.label}: probe of {self.display_target} failed: {detail}")

    def _verify_failed(self, detail: str) -> TransferError:
        return TransferError(
            one_line(f"{self.label}: verification failed: {detail}"), code="verify_failed"
        )

    def _acquire(self, n: int, should_stop: Callable[[], bool]) -> None:
        if self.limiter is not None:
            self.limiter.acquire(n, should_stop)

    def _retrying(self, action: Callable[[], T], should_stop: Callable[[], bool] = never) -> T:
        """Run ``action`` up to ``max_attempts`` times while it raises ``Transient``."""
        try:
            return retrying(
                action,
                max_attempts=self.max_attempts,
                should_stop=should_stop,
                backoff_base=self.backoff_base,
                backoff_max=self.backoff_max,
                sleep=self._sleep,
            )[0]
        except RetriesExhausted as exhausted:
            raise self._give_up(exhausted.error) from None

    def _give_up(self, last: TransferError) -> Exception:
        tail = f"(gave up after {self.max_attempts} attempts)"
        if last.code in _NETWORK_CODES:
            return StorageUnavailableError(
                one_line(f"{self.label}: cannot reach {self.display_target}: {last} {tail}")
            )
        return TransferError(one_line(f"{self.label}: {last} {tail}"), code=last.code)

    def _status_error(self, status: int, url: str, retry_after: str | None = None) -> Exception:
        """Map an HTTP error status to a storage error, a permanent error or ``Transient``."""
        if status == 507:
            return StorageFullError(f"{self.label}: insufficient storage (HTTP 507) at {url}")
        if status == 401:
            return StorageUnavailableError(
                f"{self.label}: authentication failed (HTTP 401) for {url}"
            )
        if status == 403:
            return StorageUnavailableError(f"{self.label}: access denied (HTTP 403) for {url}")
        if status in (408, 429) or status >= 500:
            return Transient(
                TransferError(f"HTTP {status} from {url}", code=f"http_{status}"),
                delay=parse_retry_after(retry_after, self.backoff_max),
            )
        word = "" if 400 <= status < 500 else "unexpected "
        return TransferError(
            f"{self.label}: {word}HTTP {status} from {url}", code=f"http_{status}", permanent=True
        )
