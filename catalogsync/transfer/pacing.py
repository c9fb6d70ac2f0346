"""Pacing per platform: requests per minute with jitter, a concurrency cap, shared cooldowns.

Every worker of a runner asks the same ``PlatformGate`` before each request to a
platform, so a 429 or 503 with ``Retry-After`` seen by one worker holds back all of
them (``cooldown``), not only the one that was told. Waits are sliced so a pause or
cancel still reaches a waiting worker within a fraction of a second.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from catalogsync.errors import TransferStopped
from catalogsync.records import record
from catalogsync.transfer.stop import never

WAIT_SLICE_SECONDS = 0.1
# A 429 without Retry-After still means "slow down": this long, unless max_cooldown is less.
DEFAULT_COOLDOWN_SECONDS = 30.0

WaitCallback = Callable[[float], None]
CooldownCallback = Callable[[str, float, str], None]


@record
class PlatformPacing:
    """`[platforms.NAME]`: how fast one platform is asked for files."""

    requests_per_minute: float = 0.0  # 0 = no pacing
    jitter: float = 0.0  # up to this fraction of the interval added at random
    max_concurrent: int = 0  # 0 = as many as there are workers
    max_cooldown: float = 600.0  # a Retry-After longer than this is cut to it


class PlatformGate:
    """What one platform's requests wait for: its cooldown, its rate and its concurrency cap."""

    def __init__(
        self,
        platform: str,
        pacing: PlatformPacing | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        on_cooldown: CooldownCallback | None = None,
    ) -> None:
        self.platform = platform
        self._on_cooldown = on_cooldown
        self.pacing = pacing or PlatformPacing()
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._cooldown_until = 0.0
        self._next_request_at = 0.0
        limit = self.pacing.max_concurrent
        self._slots = threading.BoundedSemaphore(limit) if limit > 0 else None
        self.cooldowns = 0  # how many times a server asked us to back off

    def cooldown(self, seconds: float | None, reason: str = "") -> float:
        """Hold every request to this platform back for ``seconds`` (bounded); the wait set.

        ``on_cooldown(platform, seconds, reason)`` hears of a cooldown that starts, not of
        the ones other workers report while it lasts (one event per episode, not three).
        """
        wait = DEFAULT_COOLDOWN_SECONDS if seconds is None else max(float(seconds), 0.0)
        wait = min(wait, self.pacing.max_cooldown)
        with self._lock:
            now = self._clock()
            starts = self._cooldown_until <= now
            self._cooldown_until = max(self._cooldown_until, now + wait)
            self.cooldowns += 1
        if starts and self._on_cooldown is not None:
            try:
                self._on_cooldown(self.platform, wait, reason)
            except Exception:  # noqa: BLE001 - reporting must never break a transfer
                pass
        return wait

    def cooldown_remaining(self) -> float:
        with self._lock:
            return max(self._cooldown_until - self._clock(), 0.0)

    def _reserve(self) -> float:
        """The moment this request may go: after the cooldown and one interval after the last."""
        with self._lock:
            now = self._clock()
            at = max(now, self._cooldown_until)
            rpm = self.pacing.requests_per_minute
            if rpm > 0:
                at = max(at, self._next_request_at)
                interval = 60.0 / rpm
                jitter = interval * self.pacing.jitter * self._rng.random()
                self._next_request_at = at + interval + jitter
            return at

    def before_request(
        self, should_stop: Callable[[], bool] = never, on_wait: WaitCallback | None = None
    ) -> float:
        """Block until a request may be sent; returns the seconds waited."""
        start = self._clock()
        at = self._reserve()
        shown = None
        while True:
            # A cooldown that another worker set while we waited moves us back too.
            at = max(at, self._cooldown_until)
            left = at - self._clock()
            if left <= 0:
                break
            if should_stop():
                raise TransferStopped(f"stopped while waiting for {self.platform}'s pacing")
            if on_wait is not None and shown != int(left + 0.999):
                shown = int(left + 0.999)
                on_wait(left)
            self._sleep(min(WAIT_SLICE_SECONDS, left))
        if on_wait is not None and shown is not None:
            on_wait(0.0)
        return self._clock() - start

    @contextmanager
    def slot(self, should_stop: Callable[[], bool] = never) -> Iterator[None]:
        """One of ``max_concurrent`` transfers to this platform (no cap when 0)."""
        if self._slots is None:
            yield
            return
        while not self._slots.acquire(timeout=WAIT_SLICE_SECONDS):
            if should_stop():
                raise TransferStopped(f"stopped while waiting for a free {self.platform} slot")
        try:
            yield
        finally:
            self._slots.release()


class Pacer:
    """The gates of every platform, shared by all the workers of one runner."""

    def __init__(
        self,
        platforms: dict[str, PlatformPacing] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        on_cooldown: CooldownCallback | None = None,
    ) -> None:
        self.platforms = dict(platforms or {})
        self.on_cooldown = on_cooldown
        self._clock = clock
        self._sleep = sleep
        self._gates: dict[str, PlatformGate] = {}
        self._lock = threading.Lock()

    def gate(self, platform: str) -> PlatformGate:
        with self._lock:
            gate = self._gates.get(platform)
            if gate is None:
                gate = self._gates[platform] = PlatformGate(
                    platform,
                    self.platforms.get(platform),
                    clock=self._clock,
                    sleep=self._sleep,
                    on_cooldown=self.on_cooldown,
                )
            return gate

    def cooldowns(self) -> dict[str, float]:
        """Platforms in a cooldown now, with the seconds left."""
        with self._lock:
            gates = list(self._gates.values())
        return {g.platform: left for g in gates if (left := g.cooldown_remaining()) > 0}
