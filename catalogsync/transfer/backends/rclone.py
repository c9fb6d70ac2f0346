"""Any configured rclone remote (SFTP, SMB, S3, Drive, ...) as an upload target."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import queue
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath
from typing import IO, Any

from catalogsync.errors import (
    StorageFullError,
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
)
from catalogsync.transfer.backends.rcd import RcloneDaemon, shared_daemon, terminate
from catalogsync.transfer.retry import Transient
from catalogsync.transfer.stop import never

_POLL_SECONDS = 0.1
#: ``rclone backend features`` answers, per (program, config, remote), shared by all instances
_FEATURES: dict[tuple[str, str | None, str], dict[str, Any]] = {}
_FEATURES_LOCK = threading.Lock()
_TARGET = re.compile(r"^(?!-):?[^/\\:]+:")
_TIMESTAMP = re.compile(r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}\s+")
#: hashes we can compute locally, strongest first
_HASHES = ("sha256", "sha1", "md5")
_NOT_FOUND = (
    "directory not found",
    "object not found",
    "file not found",
    "doesn't exist",
    "does not exist",
    "not found",
)
_FULL = (
    "no space left",
    "quota",
    "insufficient storage",
    "insufficientstorage",
    "disk full",
    "storage full",
)
_FULL_STATUS = re.compile(r"\b507\b")
_CONFIG = ("didn't find section in config file", "unknown backend", "couldn't find type of fs")
_DENIED = (
    "permission denied",
    "access denied",
    "forbidden",
    "unauthorized",
    "authentication",
    "authorization",
    "invalid_grant",
    "operation not permitted",
)
_DENIED_STATUS = re.compile(r"\b40[13]\b")
_READ_ONLY = ("read-only file system",)
_NETWORK = (
    "connection refused",
    "no such host",
    "timeout",
    "timed out",
    "connection reset",
    "network is unreachable",
    "no route to host",
    "dial tcp",
    "tls handshake",
    "broken pipe",
    "unexpected eof",
    "temporary failure",
    "eof",
)
_USAGE = ("unknown flag", "unknown shorthand flag", "unknown command", "usage:", "invalid argument")


log = logging.getLogger("catalogsync.rclone")


def _has(text: str, needles: tuple[str, ...]) -> bool:
    return any(needle in text for needle in needles)


def _error_lines(stderr: str) -> list[str]:
    """Error messages from rclone's stderr (JSON log lines or plain ``Failed to ...`` lines)."""
    found: list[str] = []
    for raw in stderr.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                entry = json.loads(line)
            except ValueError:
                entry = None
            if isinstance(entry, dict):
                if str(entry.get("level", "")).lower() in ("error", "critical", "fatal"):
                    found.append(one_line(str(entry.get("msg", ""))))
                continue
        line = _TIMESTAMP.sub("", line)
        if "ERROR" in line or "CRITICAL" in line or line.startswith(("Failed", "Error", "Usage")):
            found.append(one_line(line.replace("ERROR : ", "").replace("CRITICAL: ", "")))
        elif "usage" in line.lower() or "unknown flag" in line.lower():
            found.append(one_line(line))
    return found


def _hash_file(path: Path, name: str) -> str:
    """The local file's digest in one of the hashes rclone reports (md5, sha1...)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, name).hexdigest()


class RcloneBackend(StorageBackend):
    """Runs the ``rclone`` program (never through a shell) against ``remote:path``.

    Options: ``config`` (path of an rclone.conf, passed as ``--config``);
    ``binary`` (the rclone program, default ``rclone`` on ``PATH``); ``timeout``
    (seconds for stat/read/delete commands, default 120); ``rcd`` (default true: talk
    to one shared ``rclone rcd``, see ``RcloneDaemon``; false, or an rcd that cannot
    start, runs one ``rclone`` process per operation as before).

    Progress comes from rcd's ``core/stats`` (or, per process, rclone's JSON stats log,
    ``--use-json-log --stats 0.5s``), so ``on_progress`` is called about twice a second.
    """

    kind = "rclone"

    def __init__(
        self, name: str, target: str, options: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(name, target, options, **kwargs)
        if not _TARGET.match(target):
            raise StorageUnavailableError(
                f"{self.label}: target {target!r} is not remote:path (configure a remote "
                "with `rclone config`)"
            )
        self.remote_name = target.split(":", 2)[0] or target.split(":", 2)[1]
        self.binary = str(self._options.get("binary") or "rclone")
        config = self._options.get("config")
        self.config = str(Path(str(config)).expanduser()) if config else None
        self.timeout = option_float(self._options, "timeout", 120.0, self.label)
        self.use_rcd = option_bool(self._options, "rcd", True, self.label)
        self._features: dict[str, Any] | None = None

    # -- through rclone rcd -------------------------------------------------------------

    def _daemon(self) -> RcloneDaemon | None:
        """The shared rcd, or None for the one-process-per-operation path."""
        if not self.use_rcd:
            return None
        rate = self.limiter.rate if self.limiter is not None else None
        try:
            return shared_daemon(self.binary, self.config, rate)
        except FileNotFoundError as exc:
            raise self._not_installed(exc) from exc
        except OSError as exc:
            log.warning("%s: %s; running one rclone process per operation", self.label, exc)
            self.use_rcd = False
            return None

    def _rc(self, daemon: RcloneDaemon, method: str, params: dict[str, Any], what: str) -> Any:
        """One rc call; its error mapped like a failed rclone run's stderr."""
        try:
            status, data = daemon.call(method, params, self.timeout)
        except TimeoutError as exc:
            raise Transient(
                TransferError(
                    f"rclone rcd {method} timed out after {self.timeout:.0f} s", code="timeout"
                )
            ) from exc
        except OSError as exc:  # the daemon died: the next attempt starts a new one
            daemon.stop()
            raise Transient(
                TransferError(f"rclone rcd stopped answering: {exc}", code="connection")
            ) from exc
        if status == 200 and not (isinstance(data, dict) and data.get("error")):
            return data
        error = str(data.get("error") if isinstance(data, dict) else data)
        raise _RcError(error, self._failure(1, error, what))

    def _rc_stat(
        self, daemon: RcloneDaemon, parts: PurePosixPath, hashes: tuple[str, ...]
    ) -> dict[str, Any] | None:
        opt: dict[str, Any] = {"noMimeType": True}
        if hashes:
            opt.update(showHash=True, hashTypes=list(hashes))
        try:
            data = self._rc(
                daemon,
                "operations/stat",
                {"fs": self.target, "remote": parts.as_posix(), "opt": opt},
                "reading",
            )
        except _RcError as exc:
            if _has(exc.text.lower(), _NOT_FOUND):
                return None
            raise exc.mapped from None
        entry = data.get("item") if isinstance(data, dict) else None
        return self._file_entry(entry, parts)

    def _rc_copyto(
        self,
        daemon: RcloneDaemon,
        local: Path,
        parts: PurePosixPath,
        size: int,
        should_stop: Callable[[], bool],
        on_progress: ProgressFn,
    ) -> None:
        """``operations/copyfile`` as an rc job, watched through ``core/stats``; stopped on stop."""
        params = {
            "srcFs": str(local.parent),
            "srcRemote": local.name,
            "dstFs": self.target,
            "dstRemote": parts.as_posix(),
            "_async": True,
        }
        try:
            job_id = self._rc(daemon, "operations/copyfile", params, "writing")["jobid"]
        except _RcError as exc:
            raise exc.mapped from None
        on_progress(0, size)
        reported = 0
        pause = 0.002  # a small file is done in milliseconds: look soon, then back off
        while True:
            if should_stop():
                with contextlib.suppress(_RcError, Transient):
                    self._rc(daemon, "job/stop", {"jobid": job_id}, "writing")
                raise TransferStopped("transfer stopped")
            try:
                job = self._rc(daemon, "job/status", {"jobid": job_id}, "writing")
                stats = self._rc(daemon, "core/stats", {"group": f"job/{job_id}"}, "writing")
            except _RcError as exc:
                raise exc.mapped from None
            done = min(int(stats.get("bytes") or 0), size)
            if done > reported:
                reported = done
                on_progress(done, size)
            if job.get("finished"):
                break
            time.sleep(pause)
            pause = min(pause * 2, _POLL_SECONDS)
        if not job.get("success"):
            raise self._failure(1, str(job.get("error") or "copy failed"), "writing")
        if reported < size:
            on_progress(size, size)

    # -- command lines ----------------------------------------------------------------

    def _remote(self, parts: PurePosixPath) -> str:
        base = self.target
        if base.endswith((":", "/")):
            return base + parts.as_posix()
        return f"{base}/{parts.as_posix()}"

    def _command(self, *args: str) -> list[str]:
        command = [self.binary]
        if self.config:
            command += ["--config", self.config]
        return [*command, *args]

    def _not_installed(self, exc: OSError) -> StorageUnavailableError:
        return StorageUnavailableError(
            f"rclone is not installed: cannot run {self.binary!r} ({exc.strerror or exc}); "
            "install it from https://rclone.org/install/ or set the binary option"
        )

    def _run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        """Run a short rclone command; stdout is kept as bytes."""
        try:
            return subprocess.run(
                self._command(*args),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise Transient(
                TransferError(
                    f"rclone {args[0]} timed out after {self.timeout:.0f} s", code="timeout"
                )
            ) from exc
        except OSError as exc:
            raise self._not_installed(exc) from exc

    def _failure(self, returncode: int, stderr: str, what: str) -> Exception:
        """Map a failed rclone run to a one-line storage error, permanent error or ``Transient``."""
        lines = _error_lines(stderr)
        message = lines[-1] if lines else one_line(stderr)[-300:] or f"exit status {returncode}"
        text = " ".join(lines).lower() or stderr.lower()
        where = self.display_target
        if _has(text, _CONFIG):
            return StorageUnavailableError(
                one_line(
                    f"{self.label}: rclone remote {self.remote_name!r} is not configured "
                    f"(run `rclone config`): {message}"
                )
            )
        if _has(text, _FULL) or _FULL_STATUS.search(text):
            return StorageFullError(one_line(f"{self.label}: no space left on {where}: {message}"))
        if _has(text, _READ_ONLY):
            return StorageUnavailableError(
                one_line(f"{self.label}: {where} is read-only: {message}")
            )
        if _has(text, _DENIED) or _DENIED_STATUS.search(text):
            return StorageUnavailableError(
                one_line(f"{self.label}: access denied {what} {where}: {message}")
            )
        if _has(text, _USAGE):
            return TransferError(
                one_line(f"{self.label}: rclone refused the command: {message}"),
                code="rclone_usage",
                permanent=True,
            )
        if _has(text, _NETWORK):
            return Transient(TransferError(one_line(message), code="connection"))
        if returncode == 7:
            return StorageUnavailableError(
                one_line(f"{self.label}: rclone reported a fatal error: {message}")
            )
        return Transient(
            TransferError(
                one_line(f"rclone failed {what} {where}: {message}"),
                code=f"rclone_exit_{returncode}",
            )
        )

    # -- capabilities -------------------------------------------------------------------

    @property
    def offers_checksum(self) -> bool:  # type: ignore[override]
        """Whether the remote has SHA-256 hashes (``rclone backend features``, once per remote)."""
        if self._features is None:
            key = (self.binary, self.config, self.remote_name)
            with _FEATURES_LOCK:
                cached = _FEATURES.get(key)
            if cached is None:
                cached = {}
                with contextlib.suppress(Exception):
                    daemon = self._daemon()
                    if daemon is not None:
                        loaded = self._rc(
                            daemon, "operations/fsinfo", {"fs": self.target}, "reading"
                        )
                    else:
                        done = self._run("backend", "features", self.target)
                        loaded = json.loads(done.stdout or b"{}") if done.returncode == 0 else {}
                    cached = loaded if isinstance(loaded, dict) else {}
                if cached:
                    with _FEATURES_LOCK:
                        _FEATURES[key] = cached
            self._features = cached
        hashes = self._features.get("Hashes") or []
        return "sha256" in [str(h).lower() for h in hashes]

    # -- the contract ---------------------------------------------------------------------

    def _lsjson(self, parts: PurePosixPath, hashes: tuple[str, ...]) -> dict[str, Any] | None:
        args = ["lsjson", "--stat", "--no-mimetype"]
        if hashes:
            args.append("--hash")
            for name in hashes:
                args += ["--hash-type", name]
        done = self._run(*args, self._remote(parts))
        stderr = done.stderr.decode("utf-8", "replace")
        if done.returncode in (3, 4) or (done.returncode and _has(stderr.lower(), _NOT_FOUND)):
            return None
        if done.returncode != 0:
            raise self._failure(done.returncode, stderr, "reading")
        try:
            entry = json.loads(done.stdout)
        except ValueError as exc:
            raise Transient(
                TransferError(
                    "rclone lsjson printed something that is not JSON", code="bad_response"
                )
            ) from exc
        return self._file_entry(entry, parts)

    def _file_entry(self, entry: Any, parts: Any) -> dict[str, Any] | None:
        """An lsjson / operations/stat entry of a file; None when there is none."""
        if not isinstance(entry, dict):
            return None
        if entry.get("IsDir"):
            raise TransferError(
                f"{self.label}: {self._remote(parts)} is a folder",
                code="not_a_file",
                permanent=True,
            )
        return entry

    def _stat_entry(self, rel: str, hashes: tuple[str, ...]) -> dict[str, Any] | None:
        parts = self._rel(rel)
        daemon = self._daemon()
        if daemon is not None:
            return self._retrying(lambda: self._rc_stat(daemon, parts, hashes))
        return self._retrying(lambda: self._lsjson(parts, hashes))

    def stat(self, rel: str, *, checksum: bool = False) -> RemoteFile | None:
        """Size (and SHA-256 when ``checksum`` and the remote has it) from ``rclone lsjson``."""
        entry = self._stat_entry(rel, ("sha256",) if checksum else ())
        if entry is None:
            return None
        return RemoteFile(
            int(entry.get("Size", -1)), (entry.get("Hashes") or {}).get("sha256") or None
        )

    def upload(
        self,
        local: Path,
        rel: str,
        *,
        should_stop: Callable[[], bool] = never,
        on_progress: ProgressFn = no_progress,
    ) -> RemoteFile:
        """``rclone copyto`` (its own retries off), then compare size and the best shared hash."""
        local = Path(local).absolute()
        parts = self._rel(rel)
        src, size = open_source(local, self.label)
        src.close()
        remote = self._remote(parts)
        daemon = self._daemon()
        if daemon is not None:
            self._retrying(
                lambda: self._rc_copyto(daemon, local, parts, size, should_stop, on_progress),
                should_stop,
            )
        else:
            self._retrying(
                lambda: self._copyto(local, remote, size, should_stop, on_progress), should_stop
            )
        entry = self._stat_entry(rel, _HASHES)
        stored = -1 if entry is None else int(entry.get("Size", -1))
        if entry is None or stored != size:
            if entry is not None:
                with contextlib.suppress(StorageUnavailableError, TransferError):
                    self.delete(rel)
            what = "nothing" if entry is None else f"{stored} bytes"
            raise self._verify_failed(f"{remote} holds {what}, sent {size} bytes")
        hashes = {
            str(k).lower(): str(v).lower() for k, v in (entry.get("Hashes") or {}).items() if v
        }
        for name in _HASHES:
            if name in hashes:
                try:
                    mine = _hash_file(local, name)
                except OSError as exc:
                    raise TransferError(
                        f"{self.label}: cannot read {local}: {exc}", code="source_unreadable"
                    ) from exc
                if mine != hashes[name]:
                    with contextlib.suppress(StorageUnavailableError, TransferError):
                        self.delete(rel)
                    raise self._verify_failed(
                        f"{remote} has {name} {hashes[name]}, the local file has {mine}"
                    )
                break
        return RemoteFile(stored, hashes.get("sha256"))

    def _copyto(
        self,
        local: Path,
        remote: str,
        size: int,
        should_stop: Callable[[], bool],
        on_progress: ProgressFn,
    ) -> None:
        """One ``rclone copyto`` run, watched through its JSON stats; terminated on stop."""
        args = [
            "copyto",
            str(local),
            remote,
            "--retries",
            "1",
            "--low-level-retries",
            "1",
            "--use-json-log",
            "--stats",
            "0.5s",
            "--stats-log-level",
            "NOTICE",
        ]
        rate = self.limiter.rate if self.limiter is not None else None
        if rate:
            args += ["--bwlimit", f"{max(int(rate), 1)}B"]
        try:
            proc = subprocess.Popen(
                self._command(*args),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        except OSError as exc:
            raise self._not_installed(exc) from exc
        events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        assert proc.stderr is not None
        reader = threading.Thread(
            target=_read_stderr,
            args=(proc.stderr, events),
            name=f"rclone-stderr-{self.name}",
            daemon=True,
        )
        reader.start()
        lines: list[str] = []
        reported = 0
        finished = False
        try:
            on_progress(0, size)
            while not finished:
                if should_stop():
                    raise TransferStopped("transfer stopped")
                try:
                    kind, payload = events.get(timeout=_POLL_SECONDS)
                except queue.Empty:
                    continue
                if kind == "eof":
                    finished = True
                elif kind == "bytes":
                    done = min(int(payload), size)
                    if done > reported:
                        reported = done
                        on_progress(done, size)
                else:
                    lines.append(payload)
            while proc.poll() is None:
                if should_stop():
                    raise TransferStopped("transfer stopped")
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(_POLL_SECONDS)
        finally:
            if proc.poll() is None:
                terminate(proc)
            proc.stderr.close()
        if proc.returncode != 0:
            raise self._failure(proc.returncode, "\n".join(lines), "writing")
        if reported < size:
            on_progress(size, size)

    def delete(self, rel: str) -> None:
        """``rclone deletefile``; a file that is already gone is fine."""
        parts = self._rel(rel)
        daemon = self._daemon()

        def attempt() -> None:
            if daemon is not None:
                try:
                    self._rc(
                        daemon,
                        "operations/deletefile",
                        {"fs": self.target, "remote": parts.as_posix()},
                        "deleting",
                    )
                except _RcError as exc:
                    if not _has(exc.text.lower(), _NOT_FOUND):
                        raise exc.mapped from None
                return
            done = self._run("deletefile", self._remote(parts))
            if done.returncode == 0:
                return
            stderr = done.stderr.decode("utf-8", "replace")
            if done.returncode in (3, 4) or _has(stderr.lower(), _NOT_FOUND):
                return
            raise self._failure(done.returncode, stderr, "deleting")

        self._retrying(attempt)

    def read(self, rel: str) -> bytes:
        """``rclone cat`` of one file (checked to be a file first)."""
        parts = self._rel(rel)
        if self._stat_entry(rel, ()) is None:
            raise TransferError(
                f"{self.label}: {self._remote(parts)} does not exist",
                code="not_found",
                permanent=True,
            )

        def attempt() -> bytes:
            done = self._run("cat", self._remote(parts))
            if done.returncode != 0:
                raise self._failure(
                    done.returncode, done.stderr.decode("utf-8", "replace"), "reading"
                )
            return done.stdout

        return self._retrying(attempt)


class _RcError(Exception):
    """An rc call that answered an error: its text, and the error it maps to."""

    def __init__(self, text: str, mapped: Exception) -> None:
        super().__init__(text)
        self.text = text
        self.mapped = mapped


def _read_stderr(stream: IO[bytes], events: queue.SimpleQueue[tuple[str, Any]]) -> None:
    """Turn rclone's stderr into ("bytes", n) and ("line", text) events, then ("eof", None)."""
    try:
        for raw in stream:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            entry: Any = None
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
            if isinstance(entry, dict) and isinstance(entry.get("stats"), dict):
                transferred = entry["stats"].get("bytes")
                if isinstance(transferred, int):
                    events.put(("bytes", transferred))
                continue
            events.put(("line", line))
    except (OSError, ValueError):
        pass
    finally:
        events.put(("eof", None))


def rclone_available(binary: str = "rclone") -> bool:
    """Whether the rclone program can be found."""
    return shutil.which(binary) is not None
