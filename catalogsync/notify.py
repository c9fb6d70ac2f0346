"""Job-end notifications through Apprise (ntfy, Gotify, Telegram, e-mail, json:// ...).

Apprise (BSD-2-Clause) is the optional extra ``catalogsync[notify]``. Messages go out
on a thread of their own, so a slow or dead notification service never holds up the
runner; one that cannot be reached is an event and a log line, never a failed job.
Notification URLs carry tokens and passwords: only their scheme and host are ever
printed, logged or stored.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from catalogsync.ops.jobdefs import display_name
from catalogsync.ops.models import JobStatus

if TYPE_CHECKING:
    from catalogsync.config import NotifySettings
    from catalogsync.ops.repository import OpsRepository

log = logging.getLogger("catalogsync.notify")

MiB = 1024 * 1024


def describe_url(url: str) -> str:
    """``scheme://host`` of a notification URL: enough to tell which, no secret."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "(unparseable URL)"
    return f"{parts.scheme}://{host}" if parts.scheme else "(URL without a scheme)"


def notification_urls(settings: NotifySettings, environ: dict[str, str] | None = None) -> list[str]:
    """`urls` plus those in the `urls_env` variable (separated by spaces, commas or lines)."""
    source: Mapping[str, str] = os.environ if environ is None else environ
    urls = list(settings.urls)
    if settings.urls_env:
        urls += [u for u in re.split(r"[\s,]+", source.get(settings.urls_env, "")) if u]
    return urls


@dataclass
class Message:
    job_id: int
    title: str
    body: str
    kind: str  # apprise notify type: success, warning, failure, info


def job_message(repository: OpsRepository, job_id: int) -> Message | None:
    """The message for a finished job: name and outcome, songs added, failures, bytes."""
    job = repository.get_job(job_id)
    if job is None or not job.status.is_finished:
        return None
    facts = repository.job_outcome_facts(job_id)
    outcome = job.status.value.replace("_", " ")
    name = display_name(job.job_type, job.playlist_scope)
    lines = [f"{name} (job {job_id}, {job.job_type}): {outcome}"]
    lines.append(f"songs added: {facts['songs_added']} ({facts['bytes'] / MiB:.1f} MB)")
    if facts["failed"]:
        reasons = ", ".join(f"{code} x{count}" for code, count in facts["reasons"])
        lines.append(f"failed: {facts['failed']} ({reasons})")
    if job.error and not facts["failed"]:
        lines.append(f"error: {job.error}")
    if job.requested_by:
        lines.append(f"requested by {job.requested_by}")
    kind = {
        JobStatus.COMPLETED: "success",
        JobStatus.COMPLETED_WITH_ERRORS: "warning",
        JobStatus.FAILED: "failure",
    }.get(job.status, "info")
    return Message(job_id, f"catalogsync: job {job_id} {outcome}", "\n".join(lines), kind)


class Notifier:
    """Queues a message per job end and delivers it off the runner's thread."""

    def __init__(
        self,
        settings: NotifySettings,
        repository: OpsRepository,
        *,
        environ: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.repository = repository
        self.urls = notification_urls(settings, environ)
        self._queue: queue.Queue[Message | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._apprise: Any = None
        self.delivered = 0
        self.undelivered = 0
        self.enabled = bool(self.urls)
        if settings.urls_env and not (environ if environ is not None else os.environ).get(
            settings.urls_env
        ):
            self._problem(
                f"notifications: ${settings.urls_env} (urls_env) is not set or empty",
                level="warning",
            )
        if self.enabled:
            self.enabled = self._build()

    def _problem(self, message: str, *, level: str = "error", job_id: int | None = None) -> None:
        log.log(logging.ERROR if level == "error" else logging.WARNING, "%s", message)
        try:
            self.repository.add_event(job_id, "notify_failed", message, level=level)
        except Exception:  # noqa: BLE001 - reporting a failed notification must never raise
            log.exception("could not record a notification failure")

    def _build(self) -> bool:
        try:
            import apprise
        except ImportError:
            self._problem(
                "notifications are configured but Apprise is not installed: "
                "pip install 'catalogsync[notify]'"
            )
            return False
        # Apprise's own log lines can quote a URL with its token: keep them out of ours.
        logging.getLogger("apprise").setLevel(logging.CRITICAL)
        self._apprise = apprise.Apprise()
        usable = 0
        for index, url in enumerate(self.urls, start=1):
            if self._apprise.add(url):
                usable += 1
            else:
                self._problem(
                    f"notification URL #{index} ({describe_url(url)}) is not one Apprise "
                    "understands; it is ignored"
                )
        return usable > 0

    def start(self) -> None:
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(
                target=self._deliver_loop, name="catalogsync-notify", daemon=True
            )
            self._thread.start()

    def job_ended(self, job_id: int) -> None:
        """Called by the runner when a job's thread ends; cheap, never raises."""
        if not self.enabled:
            return
        try:
            job = self.repository.get_job(job_id)
            if job is None or job.status.value not in self.settings.on:
                return
            message = job_message(self.repository, job_id)
        except Exception:  # noqa: BLE001 - a notification must never break the runner
            log.exception("could not build the notification for job %s", job_id)
            return
        if message is not None:
            self.start()
            self._queue.put(message)

    def _deliver_loop(self) -> None:
        while True:
            message = self._queue.get()
            if message is None:
                return
            self._deliver(message)

    def _deliver(self, message: Message) -> None:
        hosts = ", ".join(describe_url(u) for u in self.urls)
        try:
            ok = bool(
                self._apprise.notify(
                    body=message.body, title=message.title, notify_type=message.kind
                )
            )
        except Exception as exc:  # noqa: BLE001 - any failure of a plugin is "not delivered"
            ok = False
            log.debug("apprise raised %s", type(exc).__name__)
        if ok:
            self.delivered += 1
            log.info("notification for job %s sent to %s", message.job_id, hosts)
        else:
            self.undelivered += 1
            self._problem(
                f"notification for job {message.job_id} could not be delivered to {hosts}",
                level="warning",
                job_id=message.job_id,
            )

    def close(self, timeout: float = 10.0) -> None:
        """Deliver what is queued (bounded by ``timeout``), then stop the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None
