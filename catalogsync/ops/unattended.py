"""What a long-running runner does besides running jobs: schedules, systemd, notifications.

``RunnerHooks`` is the runner's one seam for all of it: ``started`` once the lease is
held, ``tick`` on every supervisor pass, ``job_ended`` when a job's thread ends and
``stopping`` on the way out. Each is a call into its own module; none may break the
runner (a failure is logged and the runner carries on).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from catalogsync import clock
from catalogsync.catalog import quarantine
from catalogsync.notify import Notifier
from catalogsync.sdnotify import SystemdNotifier
from catalogsync.transfer.windows import BandwidthWindows

from .jobdefs import job_has_stage
from .models import JobStatus
from .schedules import Scheduler, iso_utc, local_zone, next_schedule

if TYPE_CHECKING:
    from catalogsync.catalog.repository import CatalogRepository
    from catalogsync.config import Settings

    from .repository import OpsRepository
    from .shared import SharedResources

log = logging.getLogger("catalogsync.runner")
PURGE_EVERY_SECONDS = 6 * 3600


def cooldown_event(repository: OpsRepository) -> Callable[[str, float, str], None]:
    """What the pacer calls when a platform's cooldown starts: an event and a log line."""

    def report(platform: str, seconds: float, reason: str) -> None:
        message = (
            f"{platform}: the server asked to slow down ({reason or 'rate limit'}); "
            f"every worker waits {round(seconds)} s before its next request to it"
        )
        log.warning("%s", message)
        repository.add_event(None, "cooldown", message, level="warning")

    return report


class RunnerHooks:
    def __init__(
        self,
        settings: Settings | None,
        repository: OpsRepository,
        catalog: CatalogRepository,
        shared: SharedResources,
        *,
        systemd: SystemdNotifier | None = None,
    ) -> None:
        self.settings = settings
        self.repository = repository
        self.catalog = catalog
        self.shared = shared
        self._purged_at: float | None = None
        self._status_at = float("-inf")
        self.systemd = systemd or SystemdNotifier()
        self.scheduler: Scheduler | None = None
        self.notifier: Notifier | None = None
        self.windows: BandwidthWindows | None = None
        if settings is None:
            return
        unattended = settings.unattended
        if unattended.schedules:
            self.scheduler = Scheduler(settings, repository, catalog)
        if unattended.notify.urls or unattended.notify.urls_env:
            self.notifier = Notifier(unattended.notify, repository)
        if unattended.download_limits:
            self.windows = BandwidthWindows(
                unattended.download_limits,
                settings.download.max_bytes_per_sec,
                local_zone(),
                now=clock.now,
            )

    def summary(self) -> str:
        """systemd's STATUS= line: `2 running, 5 queued; next nightly at 2026-...Z`."""
        running = len(self.repository.list_active_jobs())
        queued = len(self.repository.list_queued_jobs(limit=1000))
        text = f"{running} running, {queued} queued"
        cooling = self.shared.pacer.cooldowns()
        if cooling:
            text += "; cooldown " + ", ".join(f"{p} {round(s)} s" for p, s in cooling.items())
        if self.settings is not None:
            nxt = next_schedule(self.settings.unattended.schedules)
            if nxt:
                text += f"; next {nxt['name']} at {nxt['next_run_at']}"
        return text

    def started(self) -> None:
        """The lease is held: tell systemd we are ready."""
        self._guard(self._started)

    def _started(self) -> None:
        settled = quarantine.recover(self.catalog)
        if settled:
            self.repository.add_event(
                None,
                "quarantine_recovered",
                f"finished {settled} move(s) to the trash that an unclean stop interrupted",
                level="warning",
            )
        self._tick(heartbeat=False)  # a catch-up run is queued before READY is said
        self.systemd.ready(self.summary())

    def tick(self) -> None:
        self._guard(self._tick)

    def _tick(self, *, heartbeat: bool = True) -> None:
        now = clock.now()
        if self.settings is not None and (
            self._purged_at is None or now - self._purged_at >= PURGE_EVERY_SECONDS
        ):
            self._purged_at = now
            purged = quarantine.purge(self.catalog, self.settings.library.trash_days)
            if purged:
                log.info(
                    "purged %d file(s) older than %d days from the trash",
                    purged,
                    self.settings.library.trash_days,
                )
        if self.scheduler is not None:
            self.scheduler.tick()
        if self.windows is not None and self.windows.apply(self.shared.download_limiter):
            limit = self.windows.current
            text = f"{limit} bytes/s" if limit else "no limit"
            log.info("bandwidth window: downloads now at %s (%s)", text, iso_utc(clock.now()))
        # The summary costs two queries: once a second is plenty for systemctl status.
        if heartbeat and self.systemd.enabled and time.monotonic() - self._status_at >= 1.0:
            self._status_at = time.monotonic()
            self.systemd.heartbeat(self.summary())

    def job_ended(self, job_id: int) -> None:
        self._guard(lambda: self._mirror(job_id))
        notifier = self.notifier
        if notifier is not None:
            self._guard(lambda: notifier.job_ended(job_id))

    def _mirror(self, job_id: int) -> None:
        """After a sync: files of the mirror policy's removed tracks go to the trash."""
        job = self.repository.get_job(job_id)
        if job is None or job.status not in (JobStatus.COMPLETED, JobStatus.COMPLETED_WITH_ERRORS):
            return
        if not job_has_stage(job.job_type, "sync"):
            return
        report = quarantine.quarantine_unreferenced(self.catalog)
        days = self.settings.library.trash_days if self.settings is not None else 30
        if report.moved:
            shown = "; ".join(report.moved[:5]) + (" ..." if len(report.moved) > 5 else "")
            self.repository.add_event(
                job_id,
                "quarantined",
                f"mirror: moved {len(report.moved)} file(s) no wanted playlist lists any more to "
                f"{quarantine.TRASH_DIR}/ (kept {days} days): {shown}",
            )
        if report.kept:
            self.repository.add_event(
                job_id,
                "quarantine_kept",
                f"mirror: left {len(report.kept)} file(s) in place: " + "; ".join(report.kept[:5]),
                level="warning",
            )

    def stopping(self) -> None:
        """On the way out, before the running jobs are stopped."""
        self._guard(lambda: self.systemd.stopping("stopping: jobs resume at the next start"))

    def close(self) -> None:
        """Once the jobs are stopped: deliver queued notifications (bounded), close sockets."""
        if self.notifier is not None:
            self._guard(self.notifier.close)
        self.systemd.close()

    @staticmethod
    def _guard(call: object) -> None:
        try:
            call()  # type: ignore[operator]
        except Exception:  # noqa: BLE001 - unattended extras must never stop the runner
            log.exception("runner hook failed")
