"""One ``rclone rcd`` per runner: the daemon every rclone backend of the runner talks to.

Started on first use by ``shared_daemon`` (one per rclone program, config file and
bandwidth limit), stopped by ``stop_daemons`` when the runner's shared resources close,
at exit, and (Linux) by PR_SET_PDEATHSIG when our process dies without either.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import http.client
import json
import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Any

from catalogsync.transfer.backends.base import one_line

_TERMINATE_GRACE = 0.7


class RcloneDaemon:
    """One ``rclone rcd`` on 127.0.0.1 with random credentials, for every rclone backend.

    A file operation is then an HTTP call on a kept-alive connection (about 2 ms against
    about 90 ms to start an ``rclone`` process), and ``--bwlimit`` is one limit for every
    upload worker instead of one per process. The credentials go in the environment
    (``RCLONE_RC_USER`` / ``RCLONE_RC_PASS``), never on the command line where ``ps``
    shows them; the process dies with ours (PR_SET_PDEATHSIG on Linux, and
    ``stop_daemons`` when the runner stops).
    """

    START_TIMEOUT = 15.0

    def __init__(self, binary: str, config: str | None, rate: float | None) -> None:
        self.binary, self.config, self.rate = binary, config, rate
        self._user = "catalogsync"
        self._password = secrets.token_urlsafe(24)
        self._auth = "Basic " + base64.b64encode(f"{self._user}:{self._password}".encode()).decode()
        self._local = threading.local()
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> None:
        command = [self.binary]
        if self.config:
            command += ["--config", self.config]
        command += [
            "rcd",
            "--rc-addr",
            "127.0.0.1:0",
            "--low-level-retries",
            "1",
            "--log-level",
            "NOTICE",
        ]
        if self.rate:
            command += ["--bwlimit", f"{max(int(self.rate), 1)}B"]
        env = {**os.environ, "RCLONE_RC_USER": self._user, "RCLONE_RC_PASS": self._password}
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            preexec_fn=_die_with_parent,
        )
        assert self.proc.stderr is not None
        found: queue.SimpleQueue[str] = queue.SimpleQueue()
        threading.Thread(
            target=_read_rcd_log,
            args=(self.proc.stderr, found),
            name="rclone-rcd-log",
            daemon=True,
        ).start()
        deadline = time.monotonic() + self.START_TIMEOUT
        lines: list[str] = []
        while True:
            try:
                line = found.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                line = ""
            match = re.search(r"Serving remote control on http://127\.0\.0\.1:(\d+)", line)
            if match:
                self.port = int(match.group(1))
                return
            if line and line != "\0":
                lines.append(line)
            if line == "\0" or time.monotonic() >= deadline:
                self.stop()
                raise OSError(f"rclone rcd did not start: {one_line(' '.join(lines))[-300:]}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def call(self, method: str, params: dict[str, Any], timeout: float) -> tuple[int, Any]:
        """POST one rc method; (HTTP status, decoded JSON). OSError when rcd is gone."""
        body = json.dumps(params).encode()
        for attempt in (1, 2):
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._local.conn = http.client.HTTPConnection(
                    "127.0.0.1", self.port, timeout=timeout
                )
            conn.timeout = timeout
            try:
                conn.request(
                    "POST",
                    f"/{method}",
                    body,
                    {
                        "Authorization": self._auth,
                        "Content-Type": "application/json",
                    },
                )
                response = conn.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, OSError):
                conn.close()
                self._local.conn = None
                if attempt == 2 or not self.alive():
                    raise
        try:
            return response.status, json.loads(data or b"{}")
        except ValueError:
            return response.status, {"error": data.decode("utf-8", "replace")[:300]}

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            terminate(proc)
        if proc.stderr is not None:
            with contextlib.suppress(OSError):
                proc.stderr.close()


_DAEMONS: dict[tuple[str, str | None, float | None], RcloneDaemon] = {}
_DAEMONS_LOCK = threading.Lock()


def shared_daemon(binary: str, config: str | None, rate: float | None) -> RcloneDaemon:
    """The running daemon for this program, config and bandwidth limit (started once)."""
    key = (binary, config, rate or None)
    with _DAEMONS_LOCK:
        daemon = _DAEMONS.get(key)
        if daemon is not None and daemon.alive():
            return daemon
        daemon = RcloneDaemon(binary, config, rate or None)
        daemon.start()
        _DAEMONS[key] = daemon
        return daemon


def stop_daemons() -> None:
    """Stop every ``rclone rcd`` this process started (the runner calls it when it stops)."""
    with _DAEMONS_LOCK:
        daemons = list(_DAEMONS.values())
        _DAEMONS.clear()
    for daemon in daemons:
        daemon.stop()


atexit.register(stop_daemons)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies (Linux), so no rcd is orphaned."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(Exception):
            ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _read_rcd_log(stream: IO[bytes], found: queue.SimpleQueue[str]) -> None:
    try:
        for raw in stream:
            found.put(raw.decode("utf-8", "replace").strip())
    except (OSError, ValueError):
        pass
    finally:
        found.put("\0")


def terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if rclone has not exited within a moment."""
    with contextlib.suppress(OSError):
        proc.terminate()
    try:
        proc.wait(_TERMINATE_GRACE)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(1.0)
