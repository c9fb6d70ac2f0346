"""The runner lease: one runner owns the queue of a database, with heartbeat and takeover."""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from catalogsync import clock
from catalogsync.errors import LeaseHeldError
from catalogsync.records import record

from .repository import OpsRepository

LEASE_STALE_SECONDS = 30.0
LEASE_HEARTBEAT_SECONDS = 2.0


@record
class LeaseInfo:
    owner: str
    pid: int
    host: str


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunnerLease:
    """The one-runner-per-database lease, with heartbeat and stale takeover."""

    def __init__(self, repository: OpsRepository, *, stale_after: float = LEASE_STALE_SECONDS):
        self.repository = repository
        self.stale_after = stale_after
        # os.uname().nodename is what socket.gethostname() returns on POSIX, without
        # importing socket (about 3 ms of every `catalogsync status`).
        host = os.uname().nodename
        self.info = LeaseInfo(
            owner=f"{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}", pid=os.getpid(), host=host
        )
        self.held = False
        self._last_beat = 0.0

    def _holder_alive(self, row: dict[str, Any]) -> bool:
        # A holder on this host whose process is gone is dead at once; a holder on
        # another host (a shared NAS disk) is trusted until its heartbeat goes stale.
        if row["host"] == self.info.host:
            return _pid_alive(int(row["pid"]))
        return True

    def acquire(self) -> None:
        """Take the lease or raise LeaseHeldError naming the live holder."""
        holder = self.repository.try_acquire_lease(
            self.info.owner,
            self.info.pid,
            self.info.host,
            stale_after=self.stale_after,
            holder_alive=self._holder_alive,
        )
        if holder is not None:
            raise LeaseHeldError(str(holder["owner"]), int(holder["pid"]), str(holder["host"]))
        self.held = True
        self._last_beat = time.monotonic()

    def heartbeat(self) -> bool:
        """Renew the lease at most every ``LEASE_HEARTBEAT_SECONDS``; False once it is lost."""
        if not self.held:
            return False
        if time.monotonic() - self._last_beat < LEASE_HEARTBEAT_SECONDS:
            return True
        self._last_beat = time.monotonic()
        self.held = self.repository.heartbeat_lease(self.info.owner)
        return self.held

    def release(self) -> None:
        if self.held:
            self.repository.release_lease(self.info.owner)
            self.held = False

    def live_holder(self) -> dict[str, Any] | None:
        """The live lease holder's row, or None when nobody (alive) holds it."""
        row = self.repository.get_lease()
        if row is None:
            return None
        if clock.now() - float(row["heartbeat_epoch"]) >= self.stale_after:
            return None
        return row if self._holder_alive(row) else None
