"""Resumable, verified, stoppable downloads over HTTP(S) and ``file://``."""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import os
import queue
import re
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

from catalogsync import __version__
from catalogsync.errors import (
    StorageFullError,
    TransferError,
    TransferStopped,
)
from catalogsync.files import NotRegularFileError, open_regular, size_or_zero
from catalogsync.transfer.durability import fsync_dir
from catalogsync.transfer.pacing import PlatformGate
from catalogsync.transfer.ratelimit import TokenBucket
from catalogsync.transfer.retry import RetriesExhausted, Transient, retrying
from catalogsync.transfer.spec import DownloadSpec, ProgressCallback
from catalogsync.transfer.stop import never
from catalogsync.transfer.storage import storage_guard
from catalogsync.transfer.wire import (
    BadCertificate,
    BadFraming,
    BadURL,
    ConnectFailed,
    Exchange,
    Response,
    Session,
    Timeout,
    TooManyRedirects,
    Truncated,
    WireError,
)

_POLL_SECONDS = 0.2
_QUEUE_CHUNKS = 16
_GATHER_BYTES = 1024 * 1024
_READ_BYTES = 1024 * 1024  # at most one socket read of this much per chunk
_HASH_CHUNK = 1024 * 1024
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(?:(\d+)-(\d+)|\*)\s*/\s*(\d+|\*)\s*$", re.IGNORECASE)
# A body this big is worth resuming after a kill: its validator is kept as it starts.
RESUME_WORTH = 1024 * 1024
_HTML_TYPES = ("text/html", "application/xhtml+xml")


@dataclass(frozen=True)
class DownloadResult:
    """A finished download: the final path, its size and SHA-256, and how it went."""

    path: Path
    size: int
    sha256: str
    resumed: bool
    attempts: int


@dataclass
class _Outcome:
    size: int
    sha256: str
    resumed: bool


def part_path(dest: Path) -> Path:
    """Where the bytes of ``dest`` live until they are complete: ``name.ext.part``."""
    return dest.with_name(dest.name + ".part")


class _ReaderThread:
    """A daemon thread that runs stream readers one after another.

    Starting a thread per request cost a noticeable share of a small file's time
    (the new thread has to win the GIL before ``start`` returns). A reader that
    finished cleanly hands its thread back for the next request; one abandoned
    mid-read (a stop, a stall) retires it, and the thread exits once its blocked
    read returns.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="http-download-reader", daemon=True)
        self._thread.start()

    def run(self, job: Callable[[], None]) -> None:
        self._jobs.put(job)

    def retire(self) -> None:
        """Exit after the current job."""
        self._jobs.put(None)

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()


class _StreamReader:
    """Runs one GET in a reader thread and hands chunks over a bounded queue.

    The caller polls the queue in short slices, so a stop request or a stall is
    noticed within ``_POLL_SECONDS`` even while the socket read is blocked.
    """

    def __init__(
        self,
        session: Session,
        url: str,
        headers: dict[str, str],
        chunk_size: int | None,
        thread: _ReaderThread | None = None,
    ) -> None:
        self._exchange: Exchange = session.exchange()
        self._url = url
        self._headers = headers
        self._chunk_size = chunk_size
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=_QUEUE_CHUNKS)
        self._held: tuple[str, Any] | None = None
        self._cancel = threading.Event()
        self.finished = False  # the caller took the last event ("end" or "error")
        self.thread = thread if thread is not None else _ReaderThread()
        self.thread.run(self._run)

    def _put(self, item: tuple[str, Any]) -> bool:
        while not self._cancel.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        exchange = self._exchange
        try:
            response = exchange.get(self._url, self._headers)
            if not self._put(("response", response)):
                return
            if response.status_code not in (200, 206):
                # Never read: the caller fails or retries the attempt and closes us.
                self._cancel.wait()
                return
            # A good response's body is read at once, without waiting for the caller
            # to look at the headers: on 500 small files the reader spent a sixth of
            # its time in that wait. The bounded queue caps the read-ahead.
            while data := response.read(_READ_BYTES):
                if not self._put_data(data):
                    return
            exchange.keep()
            self._put(("end", None))
        except Exception as exc:  # handed to the caller, which classifies it
            self._put(("error", exc))
        finally:
            exchange.close()

    def _put_data(self, data: bytes) -> bool:
        step = self._chunk_size
        if step and len(data) > step:
            return all(self._put(("data", data[i : i + step])) for i in range(0, len(data), step))
        return self._put(("data", data))

    def get(self, should_stop: Callable[[], bool], stall_limit: float) -> tuple[str, Any]:
        """The next event; raise ``TransferStopped`` or a timeout after ``stall_limit`` idle s."""
        if self._held is not None:
            held, self._held = self._held, None
            return held
        started = time.monotonic()
        while True:
            if should_stop():
                raise TransferStopped("transfer stopped")
            try:
                event = self._queue.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                waited = time.monotonic() - started
                if waited >= stall_limit:
                    raise _Stalled(
                        TransferError(
                            f"no data from the server for {stall_limit:.0f} s",
                            code="timeout",
                        ),
                        waited,
                    ) from None
                continue
            if event[0] in ("end", "error"):
                self.finished = True
            return event

    def gather(self, data: bytes, limit: int) -> bytes:
        """``data`` plus the data already waiting in the queue, up to ``limit`` bytes in all.

        Nothing is waited for, so a slow link still hands over every read at once; a
        fast one is written, hashed and reported once per ``limit`` instead of per read.
        """
        if len(data) >= limit:
            return data
        parts = [data]
        size = len(data)
        while size < limit:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item[0] != "data" or size + len(item[1]) > limit:
                self._held = item
                self.finished = item[0] in ("end", "error")
                break
            parts.append(item[1])
            size += len(item[1])
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def close(self) -> _ReaderThread | None:
        """Drop the response; returns the thread if it can run the next request.

        Once the last event was taken the job is ending on its own (a body read to its
        end left the connection for the next request) and the thread is reused.
        Otherwise it may be blocked in a read: the connection is shut, so that read
        returns, and the thread is retired.
        """
        self._cancel.set()
        if not self.finished:
            self._exchange.abort()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        if self.finished:
            return self.thread
        self.thread.retire()
        return None


class _Stalled(Transient):
    """An attempt that got no byte for ``seconds``: it counts against the stall budget."""

    def __init__(self, error: TransferError, seconds: float) -> None:
        super().__init__(error)
        self.seconds = seconds


def _classify_exception(exc: BaseException, *, in_body: bool) -> TransferError:
    if isinstance(exc, TooManyRedirects):
        return TransferError(
            f"too many redirects: {exc}", code="too_many_redirects", permanent=True
        )
    if isinstance(exc, BadURL):
        return TransferError(f"bad URL: {exc}", code="bad_url", permanent=True)
    if isinstance(exc, BadCertificate):
        return TransferError(str(exc), code="tls_certificate", permanent=True)
    if isinstance(exc, Timeout):
        return TransferError(f"timed out: {exc}", code="timeout")
    if isinstance(exc, BadFraming):
        return TransferError(f"{exc}", code="bad_chunked_body")
    if isinstance(exc, Truncated) or (in_body and isinstance(exc, WireError)):
        return TransferError(f"body cut short: {exc}", code="truncated")
    if isinstance(exc, ConnectFailed | WireError):
        return TransferError(f"connection failed: {exc}", code="connection")
    return TransferError(f"transfer failed: {exc}", code="transfer_error")


def parse_retry_after(value: str | None, cap: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or HTTP date), capped at ``cap``."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), cap)


class HttpDownloader:
    """Downloads a ``DownloadSpec`` to a file, resuming, retrying and verifying as it goes.

    One download at a time: it keeps its reader thread and one kept-alive connection
    between downloads, so give each worker thread its own (they can share the limiter).
    """

    def __init__(
        self,
        *,
        limiter: TokenBucket | None = None,
        chunk_size: int = 64 * 1024,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        connect_timeout: float = 10,
        read_timeout: float = 30,
        sleep: Callable[[float], None] = time.sleep,
        durable: bool = True,
        stall_budget: float | None = None,
    ) -> None:
        """``durable=False`` skips the fsyncs: the caller flushes later (see ``durability``).

        ``stall_budget``: seconds a download may spend waiting for a byte, summed over
        its attempts; past it the song fails with the permanent code ``stalled``.
        """
        self.durable = durable
        self.stall_budget = stall_budget
        self._stall_left: float | None = None
        self._part_validator: str | None = None
        self._on_validator: Callable[[str], None] | None = None
        self.last_validator: str | None = None  # of the last response, for a later resume
        self._reader_thread: _ReaderThread | None = None
        self.session = Session(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            user_agent=f"catalogsync/{__version__}",
        )
        self.limiter = limiter
        self.chunk_size = max(int(chunk_size), 1)
        self.max_attempts = max(int(max_attempts), 1)
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._sleep = sleep
        self._gate: PlatformGate | None = None

    def close(self) -> None:
        """Let the reader thread go and close the kept-alive connection."""
        thread, self._reader_thread = self._reader_thread, None
        if thread is not None:
            thread.retire()
        self.session.close()

    def __enter__(self) -> HttpDownloader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- public entry point -------------------------------------------------

    def download(
        self,
        spec: DownloadSpec,
        dest: Path,
        *,
        should_stop: Callable[[], bool] = never,
        on_progress: ProgressCallback | None = None,
        before_rename: Callable[[int, str], None] | None = None,
        part: Path | None = None,
        keep_part: bool = False,
        gate: PlatformGate | None = None,
        on_wait: Callable[[float], None] | None = None,
        on_retry: Callable[[TransferError, float], None] | None = None,
        validator: str | None = None,
        on_validator: Callable[[str], None] | None = None,
    ) -> DownloadResult:
        """Fetch ``spec`` into ``dest`` (via ``dest.part``) and return what was written.

        ``gate`` paces each request to the song's platform and is told of every 429/503
        with Retry-After, so all workers cool down; ``on_wait(seconds)`` shows the wait.

        ``before_rename(size, sha256)`` runs once the ``.part`` is complete and verified,
        before it takes its final name: a caller that records the file there never has a
        finished file on disk that it does not know about. ``part`` names the partial
        file instead of ``dest.part``; with ``keep_part`` the verified ``.part`` is left
        for the caller to check, tag, record and rename (the result's ``path`` is it).

        ``on_validator(etag_or_last_modified)`` runs when a whole body of at least
        ``RESUME_WORTH`` bytes starts: the caller keeps it with the `.part`, so even a
        process killed mid-body resumes with If-Range rather than a blind Range.
        """
        dest = Path(dest)
        part = Path(part) if part is not None else part_path(dest)
        progress = on_progress or (lambda done, total: None)
        scheme = urlparse(spec.url).scheme.lower()
        if scheme not in ("http", "https", "file"):
            raise TransferError(
                f"unsupported URL scheme {scheme or '(none)'!r} in {spec.url!r}",
                code="bad_url",
                permanent=True,
            )
        with self._storage_guard(dest.parent, delete=None):
            dest.parent.mkdir(parents=True, exist_ok=True)
        self._stall_left = self.stall_budget
        # The ETag / Last-Modified of the bytes the `.part` holds (``validator``, from an
        # earlier try), sent as If-Range: a server whose file changed since answers with
        # the whole new file instead of a range spliced onto the old bytes.
        self._part_validator = validator
        self.last_validator = None
        self._on_validator = on_validator

        def one_attempt() -> _Outcome:
            if scheme == "file":
                return self._copy_file(spec, part, should_stop, progress)
            if gate is not None:
                gate.before_request(should_stop, on_wait)
            self._gate = gate
            try:
                return self._attempt(spec, part, should_stop, progress)
            except Transient as transient:
                self._charge_stall(transient)
                raise

        try:
            outcome, attempt = retrying(
                one_attempt,
                max_attempts=self.max_attempts,
                should_stop=should_stop,
                backoff_base=self.backoff_base,
                backoff_max=self.backoff_max,
                sleep=self._sleep,
                on_retry=on_retry,
            )
        except RetriesExhausted as exhausted:
            raise TransferError(
                f"{exhausted.error} (gave up after {self.max_attempts} requests)",
                code=exhausted.error.code,
                permanent=False,
            ) from None
        if keep_part:
            return DownloadResult(part, outcome.size, outcome.sha256, outcome.resumed, attempt)
        if before_rename is not None:
            before_rename(outcome.size, outcome.sha256)
        with self._storage_guard(part, delete=None):
            os.replace(part, dest)
            if self.durable:
                fsync_dir(dest.parent)
        return DownloadResult(dest, outcome.size, outcome.sha256, outcome.resumed, attempt)

    def _stall_limit(self) -> float:
        """How long the next wait for a byte may last: the read timeout, or less."""
        if self._stall_left is None:
            return self.read_timeout
        return max(min(self.read_timeout, self._stall_left), 0.5)

    def _charge_stall(self, transient: Transient) -> None:
        """Count a stalled attempt; over the budget it becomes the permanent ``stalled``."""
        if self._stall_left is None or transient.error.code != "timeout":
            return
        seconds = transient.seconds if isinstance(transient, _Stalled) else self.read_timeout
        self._stall_left -= seconds
        if self._stall_left <= 0.5:
            budget = self.stall_budget or 0
            raise TransferError(
                f"stalled: the server sent nothing for {budget:.0f} s in all "
                f"([download] stall_seconds = {budget:.0f})",
                code="stalled",
                permanent=True,
            ) from None

    # -- one HTTP attempt ----------------------------------------------------

    def _attempt(
        self,
        spec: DownloadSpec,
        part: Path,
        should_stop: Callable[[], bool],
        progress: ProgressCallback,
    ) -> _Outcome:
        offset = size_or_zero(part)
        headers = {**spec.headers, "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if self._part_validator:
                headers["If-Range"] = self._part_validator
        # Paced transfers hand over chunk_size pieces, so progress moves while the token
        # bucket holds them back; unpaced ones hand over each read whole (no copies).
        pieces = self.chunk_size if self._paced() else None
        thread, self._reader_thread = self._reader_thread, None
        reader = _StreamReader(self.session, spec.url, headers, pieces, thread)
        try:
            kind, payload = reader.get(
                should_stop, self.connect_timeout + self._stall_limit() + 1.0
            )
            if kind == "error":
                raise _failure(payload, in_body=False)
            if kind != "response":  # pragma: no cover - the reader always starts with these
                raise Transient(TransferError("no response", code="connection"))
            response: Response = payload
            status = response.status_code

            if status == 416:
                return self._after_416(spec, part, response, offset)
            self._check_status(response)
            if status == 200 or self.last_validator is None:
                self.last_validator = _validator_of(response.headers)
                worth = (_int_header(response.headers.get("content-length")) or 0) >= RESUME_WORTH
                if status == 200 and self.last_validator and worth and self._on_validator:
                    self._on_validator(self.last_validator)
            content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if content_type in _HTML_TYPES:
                raise TransferError(
                    f"server sent a web page ({content_type}) instead of audio for {spec.url}",
                    code="unsupported_content",
                    permanent=True,
                )

            decoder = _decoder_for(response.headers.get("content-encoding"), spec.url)
            if decoder is not None and status == 206:
                # A range of an encoded body cannot be appended to decoded bytes.
                _unlink(part)
                raise Transient(
                    TransferError(
                        f"server sent an encoded range of {spec.url}", code="content_encoding"
                    ),
                    delay=0.0,
                )
            append = False
            total: int | None = None
            length = _int_header(response.headers.get("content-length"))
            if decoder is not None:
                length = None  # Content-Length counts the encoded bytes
            if status == 206:
                start, _end, full = _parse_content_range(response.headers.get("content-range"))
                if start is not None and start == offset:
                    append = offset > 0
                    total = full
                    if total is None and length is not None:
                        total = offset + length
                else:
                    _unlink(part)
                    raise Transient(
                        TransferError(
                            f"server answered a range we did not ask for "
                            f"({response.headers.get('content-range')!r})",
                            code="bad_range",
                        ),
                        delay=0.0,
                    )
            else:
                total = length
            if total is not None and spec.expected_size and total != spec.expected_size:
                _unlink(part)
                raise Transient(
                    TransferError(
                        f"server announces {total} bytes, expected {spec.expected_size}",
                        code="size_mismatch",
                    )
                )
            if total is None:
                total = spec.expected_size or None
            try:
                return self._receive(
                    reader, spec, part, append, total, should_stop, progress, decoder
                )
            except BaseException:
                if decoder is not None:
                    # Decoded bytes cannot be resumed with a Range of the encoded body.
                    _unlink(part)
                raise
        finally:
            self._reader_thread = reader.close()

    def _paced(self) -> bool:
        """A bandwidth limit is set now (the shared bucket exists even without one)."""
        return self.limiter is not None and self.limiter.rate is not None

    def _check_status(self, response: Response) -> None:
        status = response.status_code
        if status in (200, 206):
            return
        url = str(response.url)
        if status == 429 or status == 408 or status >= 500:
            retry_after = response.headers.get("retry-after")
            delay = parse_retry_after(retry_after, self.backoff_max)
            if self._gate is not None and (status == 429 or (status == 503 and retry_after)):
                # The platform's cooldown holds the next attempt (and every other worker's).
                self._gate.cooldown(parse_retry_after(retry_after, 86400.0), f"HTTP {status}")
                delay = 0.0
            raise Transient(
                TransferError(f"HTTP {status} from {url}", code=f"http_{status}"), delay=delay
            )
        if 400 <= status < 500:
            raise TransferError(f"HTTP {status} from {url}", code=f"http_{status}", permanent=True)
        raise TransferError(
            f"unexpected HTTP {status} from {url}", code=f"http_{status}", permanent=True
        )

    def _after_416(
        self, spec: DownloadSpec, part: Path, response: Response, offset: int
    ) -> _Outcome:
        _start, _end, full = _parse_content_range(response.headers.get("content-range"))
        expected = spec.expected_size or full
        if offset and expected is not None and offset == expected:
            return self._verify(spec, part, _hash_file(part), offset, expected, resumed=True)
        _unlink(part)
        raise Transient(
            TransferError(f"server refused range bytes={offset}- (HTTP 416)", code="http_416"),
            delay=0.0,
        )

    def _receive(
        self,
        reader: _StreamReader,
        spec: DownloadSpec,
        part: Path,
        append: bool,
        total: int | None,
        should_stop: Callable[[], bool],
        progress: ProgressCallback,
        decoder: _Decoder | None,
    ) -> _Outcome:
        hasher = _hash_file(part) if append else hashlib.sha256()
        done = size_or_zero(part) if append else 0
        with self._storage_guard(part, delete=part):
            fh = open(part, "ab" if append else "wb")  # noqa: SIM115 - closed in finally
        try:
            progress(done, total)
            while True:
                kind, payload = reader.get(should_stop, self._stall_limit())
                if kind == "data":
                    # Paced: one piece at a time, so the bucket is asked for chunk_size
                    # bytes and progress moves with it, not once per gathered MiB.
                    limit = self.chunk_size if self._paced() else _GATHER_BYTES
                    payload = reader.gather(payload, limit)
                    if should_stop():
                        raise TransferStopped("transfer stopped")
                    if decoder is not None:
                        payload = decoder.decompress(payload)
                    done += self._take_chunk(fh, part, payload, hasher, should_stop)
                    progress(done, total)
                elif kind == "end":
                    if decoder is not None:
                        done += self._take_chunk(fh, part, decoder.finish(), hasher, should_stop)
                        progress(done, total)
                    break
                else:
                    with self._storage_guard(part, delete=part, fh=fh):
                        fh.flush()
                    raise _failure(payload, in_body=True)
            self._finish_part(fh, part)
        finally:
            with contextlib.suppress(OSError):
                fh.close()
        if total is not None and done < total:
            raise Transient(TransferError(f"got {done} of {total} bytes", code="truncated"))
        return self._verify(spec, part, hasher, done, total, resumed=append)

    def _verify(
        self,
        spec: DownloadSpec,
        part: Path,
        hasher: Any,
        size: int,
        total: int | None,
        *,
        resumed: bool,
    ) -> _Outcome:
        expected = spec.expected_size or total
        if expected is not None and size != expected:
            _unlink(part)
            raise Transient(
                TransferError(f"got {size} bytes, expected {expected}", code="size_mismatch")
            )
        digest = hasher.hexdigest()
        if spec.sha256 and digest.lower() != spec.sha256.strip().lower():
            _unlink(part)
            raise Transient(
                TransferError(
                    f"SHA-256 {digest} does not match the expected {spec.sha256}",
                    code="checksum_mismatch",
                )
            )
        return _Outcome(size=size, sha256=digest, resumed=resumed)

    # -- file:// -------------------------------------------------------------

    def _copy_file(
        self,
        spec: DownloadSpec,
        part: Path,
        should_stop: Callable[[], bool],
        progress: ProgressCallback,
    ) -> _Outcome:
        source = _file_url_path(spec.url)
        try:
            src = open_regular(source)  # never blocks on a FIFO; closed in finally
            src_size = os.fstat(src.fileno()).st_size
        except NotRegularFileError as exc:
            raise TransferError(
                f"{source} is {exc.kind}, not a file", code="not_a_file", permanent=True
            ) from exc
        except FileNotFoundError as exc:
            raise TransferError(
                f"{source} does not exist", code="not_found", permanent=True
            ) from exc
        except IsADirectoryError as exc:
            raise TransferError(f"{source} is a folder", code="not_a_file", permanent=True) from exc
        except OSError as exc:
            raise TransferError(
                f"cannot read {source}: {exc.strerror or exc}", code="source_unreadable"
            ) from exc
        try:
            offset = size_or_zero(part)
            append = 0 < offset <= src_size
            if not append:
                offset = 0
            hasher = _hash_file(part) if append else hashlib.sha256()
            total = src_size
            if spec.expected_size and total != spec.expected_size:
                raise Transient(
                    TransferError(
                        f"{source} has {total} bytes, expected {spec.expected_size}",
                        code="size_mismatch",
                    )
                )
            with self._storage_guard(part, delete=part):
                fh = open(part, "ab" if append else "wb")  # noqa: SIM115 - closed in finally
            try:
                src.seek(offset)
                done = offset
                progress(done, total)
                while True:
                    if should_stop():
                        raise TransferStopped("transfer stopped")
                    try:
                        data = src.read(self.chunk_size)
                    except OSError as exc:
                        raise Transient(
                            TransferError(f"cannot read {source}: {exc}", code="source_unreadable")
                        ) from exc
                    if not data:
                        break
                    done += self._take_chunk(fh, part, data, hasher, should_stop)
                    progress(done, total)
                self._finish_part(fh, part)
            finally:
                with contextlib.suppress(OSError):
                    fh.close()
        finally:
            src.close()
        return self._verify(spec, part, hasher, done, total, resumed=append)

    # -- helpers -------------------------------------------------------------

    def _take_chunk(
        self,
        fh: IO[bytes],
        part: Path,
        data: bytes,
        hasher: Any,
        should_stop: Callable[[], bool],
    ) -> int:
        """Pace, write and hash one chunk of a transfer; returns its length."""
        if self.limiter is not None:
            self.limiter.acquire(len(data), should_stop)
        with self._storage_guard(part, delete=part, fh=fh):
            self._write_chunk(fh, data)
        hasher.update(data)
        return len(data)

    def _finish_part(self, fh: IO[bytes], part: Path) -> None:
        """Flush a complete ``.part`` (and fsync it, unless a flusher does that later)."""
        with self._storage_guard(part, delete=part, fh=fh):
            fh.flush()
            if self.durable:
                os.fsync(fh.fileno())

    def _write_chunk(self, fh: IO[bytes], data: bytes) -> None:
        """Write one chunk (kept tiny so tests can inject disk errors here)."""
        fh.write(data)

    @contextlib.contextmanager
    def _storage_guard(
        self, path: Path, *, delete: Path | None, fh: IO[bytes] | None = None
    ) -> Iterator[None]:
        """``storage_guard``, and on a full disk the partial file ``delete`` goes too."""
        try:
            with storage_guard(path):
                yield
        except StorageFullError:
            if delete is not None:
                if fh is not None:
                    with contextlib.suppress(OSError):
                        fh.close()
                _unlink(delete)
            raise


class _Decoder:
    """Undo a Content-Encoding we did not ask for (we send ``Accept-Encoding: identity``).

    Some servers compress audio anyway; saving those bytes as the song would record a
    gzip stream as an `.mp3`. gzip and zlib-wrapped deflate are told apart by their
    header, and a "deflate" body without the zlib wrapper (a common server mistake)
    is read as raw deflate.
    """

    def __init__(self, encoding: str, url: str) -> None:
        self.encoding, self.url = encoding, url
        self._raw_fallback = encoding == "deflate"
        self._started = False
        self._z = zlib.decompressobj(wbits=47)  # 32 + 15: gzip or zlib header, detected

    def decompress(self, data: bytes) -> bytes:
        try:
            out = self._z.decompress(data)
        except zlib.error as exc:
            if self._raw_fallback and not self._started:
                self._raw_fallback = False
                self._z = zlib.decompressobj(wbits=-15)
                return self.decompress(data)
            raise self._bad(exc) from None
        self._started = True
        if self._z.eof and self._z.unused_data:
            # gzip allows several members one after another.
            rest, self._z = self._z.unused_data, zlib.decompressobj(wbits=47)
            return out + self.decompress(rest)
        return out

    def finish(self) -> bytes:
        try:
            out = self._z.flush()
        except zlib.error as exc:
            raise self._bad(exc) from None
        if not self._z.eof:
            raise Transient(
                TransferError(
                    f"{self.encoding} body of {self.url} ends before its compressed stream",
                    code="truncated",
                )
            )
        return out

    def _bad(self, exc: zlib.error) -> TransferError:
        return TransferError(
            f"server sent a {self.encoding} body that does not decode ({exc}) for {self.url}",
            code="content_encoding",
            permanent=True,
        )


def _decoder_for(header: str | None, url: str) -> _Decoder | None:
    """The decoder for a Content-Encoding header; refuses encodings we cannot undo."""
    encodings = [e.strip().lower() for e in (header or "").split(",") if e.strip()]
    encodings = [e for e in encodings if e != "identity"]
    if not encodings:
        return None
    if len(encodings) == 1 and encodings[0] in ("gzip", "x-gzip", "deflate"):
        return _Decoder("gzip" if encodings[0] == "x-gzip" else encodings[0], url)
    raise TransferError(
        f"server sent the song compressed as {', '.join(encodings)} (Content-Encoding), "
        f"which catalogsync cannot decode: {url}",
        code="content_encoding",
        permanent=True,
    )


def _validator_of(headers: Any) -> str | None:
    """What If-Range may carry for these bytes: a strong ETag, else Last-Modified."""
    etag = str(headers.get("etag") or "").strip()
    if etag and not etag.startswith("W/"):
        return etag
    modified = str(headers.get("last-modified") or "").strip()
    return modified or None


def _failure(exc: BaseException, *, in_body: bool) -> Exception:
    """The exception to raise for an error the reader thread hit: permanent or retryable."""
    error = _classify_exception(exc, in_body=in_body)
    if error.permanent:
        return error
    return Transient(error)


def _parse_content_range(value: str | None) -> tuple[int | None, int | None, int | None]:
    if not value:
        return None, None, None
    match = _CONTENT_RANGE.match(value)
    if not match:
        return None, None, None
    start, end, full = match.groups()
    return (
        int(start) if start is not None else None,
        int(end) if end is not None else None,
        int(full) if full not in (None, "*") else None,
    )


def _int_header(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        number = int(value.strip())
    except ValueError:
        return None
    return number if number >= 0 else None


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _hash_file(path: Path) -> Any:
    hasher = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while chunk := fh.read(_HASH_CHUNK):
                hasher.update(chunk)
    except FileNotFoundError:
        pass
    return hasher


def _file_url_path(url: str) -> Path:
    parsed = urlparse(url)
    if parsed.netloc not in ("", "localhost"):
        raise TransferError(f"file URL {url!r} names another host", code="bad_url", permanent=True)
    from urllib.request import url2pathname  # here: a 20-40 ms import most runs never need

    return Path(url2pathname(parsed.path))
