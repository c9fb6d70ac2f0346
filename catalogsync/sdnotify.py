"""sd_notify over a plain AF_UNIX datagram socket: what `Type=notify` units expect.

No dependency: the protocol is one datagram of ``KEY=VALUE`` lines sent to the path in
``$NOTIFY_SOCKET`` (a leading ``@`` names an abstract socket). Without the variable every
call is a no-op, so the TUI's embedded runner and tests outside systemd pay nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable

log = logging.getLogger("catalogsync.sdnotify")


class SystemdNotifier:
    """Sends READY, WATCHDOG, STATUS and STOPPING to systemd (when it listens)."""

    def __init__(
        self,
        address: str | None = None,
        *,
        watchdog_usec: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        address = os.environ.get("NOTIFY_SOCKET") if address is None else address
        self.address: str | bytes | None = None
        if address:
            # "@name" is Linux's abstract namespace: a leading NUL byte on the wire.
            self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = os.environ.get("WATCHDOG_USEC") if watchdog_usec is None else watchdog_usec
        try:
            period = int(usec) / 1e6 if usec else 0.0
        except ValueError:
            period = 0.0
        # Ping at half the watchdog period (systemd's advice), and at least every 10 s.
        self.watchdog_interval = min(period / 2, 10.0) if period > 0 else 10.0
        self._clock = clock
        self._last_ping = float("-inf")
        self._last_status: str | None = None
        self._sock: socket.socket | None = None
        self._failed = False

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *lines: str) -> bool:
        """One datagram; False (logged once) when systemd cannot be reached."""
        if self.address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(lines).encode("utf-8"), self.address)
        except OSError as exc:
            if not self._failed:
                log.warning("cannot notify systemd on %s: %s", os.environ.get("NOTIFY_SOCKET"), exc)
                self._failed = True
            return False
        return True

    def ready(self, status: str) -> None:
        self._last_status = status
        self._last_ping = self._clock()
        self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def heartbeat(self, status: str) -> None:
        """WATCHDOG=1 at the watchdog interval; STATUS= whenever the summary changed."""
        lines = []
        now = self._clock()
        if now - self._last_ping >= self.watchdog_interval:
            lines.append("WATCHDOG=1")
            self._last_ping = now
        if status != self._last_status:
            lines.append(f"STATUS={status}")
            self._last_status = status
        if lines:
            self.send(*lines)

    def stopping(self, status: str = "stopping") -> None:
        self.send("STOPPING=1", f"STATUS={status}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
