"""Schedules: `[[schedules]]` cron lines that the runner turns into queued jobs.

Cron expressions are evaluated by cronsim in the machine's local time zone, with
Debian cron's DST rules (a time skipped by the spring change runs at the first
minute after it; a time repeated in autumn runs once). What each schedule last
did is kept in SQLite (``schedule_runs``), so a runner that was down while a slot
passed knows it missed one and, with ``catch_up``, runs it once at start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from catalogsync import clock
from catalogsync.cron import iso_utc, latest_at_or_before, local_zone, next_after
from catalogsync.errors import CatalogsyncError
from catalogsync.records import record

if TYPE_CHECKING:
    from catalogsync.catalog.repository import CatalogRepository
    from catalogsync.config import ScheduleConfig, Settings

    from .repository import OpsRepository

log = logging.getLogger("catalogsync.schedules")

__all__ = ["Scheduler", "iso_utc", "local_zone", "next_after", "next_schedule", "schedule_rows"]

# A slot found this late is still "on time" (a busy or briefly suspended runner);
# later than this it was missed while the runner was down, and catch_up decides.
ON_TIME_GRACE_SECONDS = 120.0


def scope_text(schedule: ScheduleConfig) -> str:
    if schedule.playlists == "wanted":
        return "wanted playlists"
    if isinstance(schedule.playlists, list):
        return "playlists " + ", ".join(str(p) for p in schedule.playlists)
    if schedule.sources:
        return "sources " + ", ".join(schedule.sources)
    return "default scope"


def schedule_rows(
    schedules: Sequence[ScheduleConfig],
    states: dict[str, dict[str, Any]],
    *,
    now: float | None = None,
    zone: tzinfo | None = None,
) -> list[dict[str, Any]]:
    """What `schedules list` shows: each schedule with its next run and its last one."""
    now = clock.now() if now is None else now
    zone = zone or local_zone()
    rows = []
    for schedule in schedules:
        state = states.get(schedule.name) or {}
        nxt = next_after(schedule.cron, now, zone)
        rows.append(
            {
                "name": schedule.name,
                "cron": schedule.cron,
                "job_type": schedule.job,
                "scope": scope_text(schedule),
                "catch_up": schedule.catch_up,
                "priority": schedule.priority,
                "next_run_at": iso_utc(nxt),
                "next_run_local": datetime.fromtimestamp(nxt, zone).strftime("%Y-%m-%d %H:%M %Z"),
                "last_run_at": iso_utc(state.get("last_run_at")),
                "last_result": state.get("last_result"),
                "last_job_id": state.get("last_job_id"),
                "last_message": state.get("last_message"),
            }
        )
    return rows


def next_schedule(
    schedules: Sequence[ScheduleConfig], *, now: float | None = None, zone: tzinfo | None = None
) -> dict[str, Any] | None:
    """The dashboard's ``next_schedule``: the soonest schedule, or None without any."""
    if not schedules:
        return None
    now = clock.now() if now is None else now
    zone = zone or local_zone()
    at, schedule = min(
        ((next_after(s.cron, now, zone), s) for s in schedules), key=lambda pair: pair[0]
    )
    return {"name": schedule.name, "job_type": schedule.job, "next_run_at": iso_utc(at)}


@record
class Fired:
    """What one due schedule did: ``submitted`` (with a job id), ``skipped`` or ``missed``."""

    name: str
    result: str
    job_id: int | None
    message: str


class Scheduler:
    """Evaluates the schedules on every runner tick and queues the jobs that are due."""

    def __init__(
        self,
        settings: Settings,
        repository: OpsRepository,
        catalog: CatalogRepository,
        *,
        now: Callable[[], float] = clock.now,
        zone: tzinfo | None = None,
    ) -> None:
        self.settings = settings
        self.schedules = list(settings.unattended.schedules)
        self.repository = repository
        self.catalog = catalog
        self._now = now
        self.zone = zone or local_zone()
        self._last_slot: dict[str, float] = {}
        self._due: dict[str, float] = {}
        self._loaded = False

    def _load(self, now: float) -> None:
        states = self.repository.schedule_states()
        for schedule in self.schedules:
            state = states.get(schedule.name)
            if state and state.get("cron") == schedule.cron and state.get("last_slot_at"):
                self._last_slot[schedule.name] = float(state["last_slot_at"])
            else:
                # First sight (or a changed cron line): start counting from now.
                self._last_slot[schedule.name] = now
                self.repository.save_schedule_state(
                    schedule.name, schedule.cron, schedule.job, last_slot_at=now
                )
            self._due[schedule.name] = next_after(
                schedule.cron, self._last_slot[schedule.name], self.zone
            )
        self._loaded = True

    def tick(self) -> list[Fired]:
        """Queue what is due now; cheap when nothing is (one comparison per schedule)."""
        now = self._now()
        if not self._loaded:
            self._load(now)
        fired = []
        for schedule in self.schedules:
            if now < self._due[schedule.name]:
                continue
            slot = latest_at_or_before(schedule.cron, now, self.zone)
            late = now - slot > ON_TIME_GRACE_SECONDS
            if late and not schedule.catch_up:
                outcome = Fired(
                    schedule.name,
                    "missed",
                    None,
                    f"schedule {schedule.name}: the run due at {iso_utc(slot)} was missed while "
                    "the runner was down (catch_up = false: waiting for the next one)",
                )
                self.repository.add_event(None, "schedule_missed", outcome.message, level="warning")
            else:
                outcome = self._fire(schedule, catch_up_of=slot if late else None)
            self._last_slot[schedule.name] = slot
            self._due[schedule.name] = next_after(schedule.cron, max(slot, now), self.zone)
            self.repository.save_schedule_state(
                schedule.name,
                schedule.cron,
                schedule.job,
                last_slot_at=slot,
                last_run_at=now,
                last_result=outcome.result,
                last_job_id=outcome.job_id,
                last_message=outcome.message,
            )
            log.info("%s", outcome.message)
            fired.append(outcome)
        return fired

    def _scope(self, schedule: ScheduleConfig) -> tuple[list[int] | None, str | None]:
        """Playlist ids to scope the job to (None = the job's default), or why not to run."""
        if schedule.playlists == "wanted":
            ids = [int(p["id"]) for p in self.catalog.list_playlists(wanted_only=True)]
            return (ids, None) if ids else (None, "no playlist is marked wanted")
        if isinstance(schedule.playlists, list):
            known = {int(p["id"]) for p in self.catalog.list_playlists(ids=schedule.playlists)}
            missing = [str(i) for i in schedule.playlists if i not in known]
            if missing:
                return None, f"no playlist with id {', '.join(missing)}"
            return list(dict.fromkeys(schedule.playlists)), None
        return None, None

    def _fire(self, schedule: ScheduleConfig, *, catch_up_of: float | None) -> Fired:
        name = schedule.name
        ids, problem = self._scope(schedule)
        if problem:
            message = f"schedule {name}: not queued: {problem}"
            self.repository.add_event(None, "schedule_skipped", message, level="warning")
            return Fired(name, "skipped", None, message)
        if schedule.backend is not None:
            try:
                self.catalog.get_backend(schedule.backend)
            except CatalogsyncError as exc:
                message = f"schedule {name}: not queued: {exc}"
                self.repository.add_event(None, "schedule_skipped", message, level="warning")
                return Fired(name, "skipped", None, message)
        scope = {"playlist_ids": ids} if ids else {}
        sources = list(dict.fromkeys(schedule.sources))
        holder = self.repository.unfinished_job_like(schedule.job, sources, scope)
        if holder is not None:
            message = (
                f"schedule {name}: job {holder} ({schedule.job}, same scope) is still unfinished; "
                "not queued again"
            )
            self.repository.add_event(holder, "schedule_skipped", message)
            return Fired(name, "skipped", holder, message)
        requested_by = f"schedule:{name}"
        job_id = self.repository.create_job(
            schedule.job,
            self.settings.snapshot(),
            priority=schedule.priority,
            requested_by=requested_by,
            sources=sources,
            playlist_scope=scope,
            backend_name=schedule.backend,
        )
        why = f" (catch-up for {iso_utc(catch_up_of)}, missed while down)" if catch_up_of else ""
        message = f"job {job_id} submitted by {requested_by}{why}"
        self.repository.add_event(job_id, "submitted", message)
        self.repository.ensure_job_stages(job_id)
        return Fired(name, "submitted", job_id, f"schedule {name}: {message}")
