"""Wake a runner in another process at once: one empty datagram on a local socket.

A client that queues a job or a command writes it to the database first and then sends
a nudge; the runner that holds the lease listens and runs a supervisor pass right away
instead of at its next tick. The datagram carries nothing, so the socket needs no
authentication: the worst a stranger can do is make the runner look at the queue.

On Linux the socket lives in the abstract namespace (no file to clean up, no path
length limit), named after the database's real path; elsewhere it is a socket file
beside the database when its path fits. Without either the runner simply keeps its
interval, as before.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("catalogsync.nudge")

_MAX_UNIX_PATH = 100  # sun_path is 104-108 bytes; keep a margin


def nudge_address(db_path: str | Path) -> str | bytes | None:
    """The runner's nudge address for this database, or None when there is none."""
    real = os.path.realpath(db_path)
    digest = hashlib.sha256(real.encode("utf-8", "surrogateescape")).hexdigest()[:24]
    if sys.platform.startswith("linux"):
        return f"\0catalogsync-{digest}".encode()
    candidate = str(Path(real).parent / f".catalogsync-{digest[:8]}.sock")
    return candidate if len(candidate.encode()) <= _MAX_UNIX_PATH else None


def send_nudge(db_path: str | Path) -> bool:
    """Tell the runner of ``db_path`` to look at the queue now; False when nobody listens."""
    address = nudge_address(db_path)
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.sendto(b"", address)
        return True
    except OSError:  # nobody listening (ECONNREFUSED / ENOENT), or a full queue: harmless
        return False


class NudgeListener:
    """The runner's side: a thread that calls ``on_nudge`` for every datagram received."""

    def __init__(self, db_path: str | Path, on_nudge: Callable[[], None]) -> None:
        self.address = nudge_address(db_path)
        self._on_nudge = on_nudge
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def start(self) -> bool:
        """Bind and start listening; False (and the runner keeps its interval) on failure."""
        if self.address is None:
            return False
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            if isinstance(self.address, str):
                try:
                    os.unlink(self.address)  # a stale file from a runner that died
                except FileNotFoundError:
                    pass
            sock.bind(self.address)
        except OSError as exc:
            sock.close()
            log.debug("no nudge socket (%s); the runner polls at its interval", exc)
            return False
        self._sock = sock
        self._thread = threading.Thread(target=self._listen, name="catalogsync-nudge", daemon=True)
        self._thread.start()
        return True

    def _listen(self) -> None:
        sock = self._sock
        assert sock is not None
        while not self._stopping.is_set():
            try:
                sock.recv(16)
            except OSError:
                return
            if self._stopping.is_set():
                return
            self._on_nudge()

    def stop(self) -> None:
        """Stop the thread and free the address (another runner may bind it next)."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        self._stopping.set()
        try:
            # Wake the blocking recv() so the thread sees the stop flag.
            sock.sendto(b"", sock.getsockname())
        except OSError:
            pass
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
        sock.close()
        if isinstance(self.address, str):
            try:
                os.unlink(self.address)
            except OSError:
                pass
