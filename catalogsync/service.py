"""The engine's public face: one object the CLI and the TUI both drive.

It opens the database, submits jobs and commands, answers read-model queries,
and owns an embedded runner when this process holds the runner lease.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from catalogsync.catalog.repository import CatalogRepository
from catalogsync.config import Settings, load_settings
from catalogsync.db import database_error, initialize_database
from catalogsync.errors import CatalogsyncError, LeaseHeldError
from catalogsync.ops import views
from catalogsync.ops.jobdefs import JOB_TYPES, job_has_stage
from catalogsync.ops.lease import RunnerLease
from catalogsync.ops.models import CommandStatus, CommandType, JobStatus
from catalogsync.ops.readmodels import (
    CommandResult,
    DashboardView,
    EventView,
    FailedItems,
    JobDetailView,
    JobFacts,
    PlaylistRow,
    RunnerView,
    TaskRow,
)
from catalogsync.ops.repository import OpsRepository
from catalogsync.records import record
from catalogsync.redact import mask_value

# The variables ``transfer.wire`` reads a proxy from (either case).
_PROXY_VARIABLES = tuple(
    name for base in ("http_proxy", "https_proxy", "all_proxy") for name in (base, base.upper())
)

if TYPE_CHECKING:
    from catalogsync.nudge import NudgeListener
    from catalogsync.ops.runner import OpsRunner

__all__ = [
    "AddedPlaylist",
    "Catalogsync",
    "database_error",
    "read_only_plan",
]  # database_error: for the CLI

log = logging.getLogger("catalogsync")

# `catalogsync run` exits within this long after SIGTERM/SIGINT, whatever its workers
# are blocked on (systemd's default TimeoutStopSec is 90 s; ours is documented as 10).
SHUTDOWN_SECONDS = 8.0
# How long `jobs pause|resume|cancel|retry` waits for a live runner's verdict.
COMMAND_VERDICT_SECONDS = 3.0
# wait_for_change with the runner in this process: its events wake the waiter, and the
# database is looked at only this often besides (for a commit made elsewhere).
EMBEDDED_POLL_SECONDS = 0.25


@record
class AddedPlaylist:
    id: int
    name: str
    platform: str
    created: bool


def _log_event(kind: str, data: dict[str, Any]) -> None:
    """Journal lines for a headless runner (systemd captures stderr)."""
    if kind == "job_started":
        log.info("job %s started", data["job_id"])
    elif kind == "job_finished":
        message = data.get("message")
        log.info("job %s %s%s", data["job_id"], data["status"], f": {message}" if message else "")
    elif kind == "job_paused":
        # An operator's pause is what was asked for; a full or missing disk is a warning.
        level = logging.INFO if data.get("by") == "operator" else logging.WARNING
        log.log(level, "job %s paused: %s", data["job_id"], data.get("message"))
    elif kind == "command":
        log.info("%s", data["message"])


def read_only_plan(settings: Settings, playlist_ids: list[int]) -> dict[str, Any]:
    """`playlists plan`: the plan, read from the database without upgrading or writing it."""
    import sqlite3

    from catalogsync.db import SCHEMA_VERSION
    from catalogsync.ops.plan import playlist_plan

    path = settings.db_path
    if not path.exists():
        raise CatalogsyncError(f"no database at {path}; run `catalogsync init` first")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise CatalogsyncError(f"{path}: {exc}") from None
    if version < SCHEMA_VERSION:
        raise CatalogsyncError(
            f"{path} is from an older catalogsync; run `catalogsync status` once to upgrade it"
        )
    repository = OpsRepository(path)
    catalog = CatalogRepository(path, share_with=repository)
    try:
        return playlist_plan(catalog, repository, playlist_ids or None)
    finally:
        repository.close()


def _backend_view(row: dict[str, Any]) -> dict[str, Any]:
    """A storage_backends row with its options as an object, secrets masked."""
    import json

    from catalogsync.redact import MASK, is_secret_name

    view = dict(row)
    options = json.loads(view.pop("options_json", None) or "{}")
    # Rows stored before secrets were refused may still hold one: never print it.
    view["options"] = {k: MASK if is_secret_name(k) else v for k, v in options.items()}
    view["target"] = mask_value(view["target"])
    view["is_default"] = bool(view.get("is_default"))
    return view


class Catalogsync:
    """An open catalogsync home: settings, database and (maybe) a runner."""

    def __init__(self, settings: Settings, *, check_library: bool = True) -> None:
        self.settings = settings
        conn = initialize_database(settings.db_path, settings.library_root)
        self.repository = OpsRepository(settings.db_path)
        self.repository.adopt(conn)  # the checked connection reads on: one open, not two
        self.catalog = CatalogRepository(settings.db_path, share_with=self.repository)
        if check_library:
            self.check_library_location()
        self.runner: OpsRunner | None = None  # the embedded runner, when we hold the lease
        self.lease: RunnerLease | None = None
        self._runner_thread: threading.Thread | None = None
        self._runner_stop = threading.Event()
        self.runner_error: CatalogsyncError | None = None  # why an embedded runner stopped
        self._nudges: NudgeListener | None = None
        self._runner_events = threading.Event()  # set by every event of our own runner

    @classmethod
    def open(
        cls, home: str | None = None, db: str | None = None, library: str | None = None
    ) -> Catalogsync:
        return cls(load_settings(home, db, library))

    def close(self) -> None:
        self.stop_runner()
        self.repository.close()

    def check_library_location(self) -> None:
        """Stop when the library root in use differs from the one the records point at.

        The default `library` backend is the truth for where files are; a config or a
        ``--library`` that names another folder would download beside the old files.
        """
        recorded = Path(self.catalog.default_backend()["target"])
        configured = self.settings.library_root
        if recorded.resolve() == configured.resolve():
            return
        source = "--library" if self.settings.library_override else str(self.settings.config_path)
        raise CatalogsyncError(
            f"{source} names the library {configured}, but the records point at {recorded} "
            f"(to move the library: catalogsync library relocate {configured} [--move]; "
            f'to keep it: set library = "{recorded}" in {self.settings.config_path})'
        )

    # -- reads ---------------------------------------------------------------

    # Every read model passes mask_value: a playlist URL's password is never shown,
    # in the CLI, its --json or the TUI.

    def dashboard(self, task_limit: int = 50) -> DashboardView:
        return mask_value(
            views.dashboard_payload(
                self.repository, task_limit=task_limit, schedules=self.settings.unattended.schedules
            )
        )

    def recent_events(self, limit: int = 200) -> list[EventView]:
        return mask_value([views.event_view(e) for e in self.repository.list_events(limit=limit)])

    def task_rows(self, limit: int = 50) -> list[TaskRow]:
        return mask_value(views.task_center_rows(self.repository, limit=limit))

    def task_rows_matching(
        self, matches: Callable[[JobFacts], bool], limit: int = 50
    ) -> list[TaskRow]:
        return mask_value(views.task_rows_matching(self.repository, matches, limit=limit))

    def job_detail(self, job_id: int) -> JobDetailView:
        return mask_value(views.job_detail(self.repository, int(job_id)))

    def job_failed_items(
        self, job_id: int, *, limit: int | None = 20, offset: int = 0
    ) -> FailedItems:
        self.repository.require_job(int(job_id))
        return views.job_failed_items(self.repository, int(job_id), limit=limit, offset=offset)

    def job_statuses(self, job_ids: Iterable[int]) -> dict[int, JobStatus]:
        """Just the statuses of these jobs (one small query; a follower asks often)."""
        return self.repository.job_statuses([int(i) for i in job_ids])

    def playlists(self) -> list[PlaylistRow]:
        return mask_value(views.playlist_rows(self.catalog))

    def playlist(self, playlist_id: int) -> PlaylistRow:
        """One playlist's row (NotFoundError names the id when there is none)."""
        self.catalog.require_playlists([int(playlist_id)])
        return next(r for r in self.playlists() if r.id == int(playlist_id))

    def schedules(self) -> list[dict[str, Any]]:
        """Each `[[schedules]]` entry with its next run and what its last run did."""
        from catalogsync.ops.schedules import schedule_rows

        return schedule_rows(self.settings.unattended.schedules, self.repository.schedule_states())

    def plan(self, playlist_ids: Iterable[int] | None = None) -> dict[str, Any]:
        """What syncing and downloading these playlists would do (ops/plan.py); no writes."""
        from catalogsync.ops.plan import playlist_plan

        return playlist_plan(self.catalog, self.repository, [int(i) for i in playlist_ids or []])

    # -- jobs ----------------------------------------------------------------

    def submit_job(
        self,
        job_type: str,
        *,
        playlist_ids: Iterable[int] | None = None,
        sources: Iterable[str] | None = None,
        backend: str | None = None,
        priority: int = 100,
        requested_by: str = "cli",
    ) -> TaskRow:
        """Validate and queue a job; returns its task row."""
        if job_type not in JOB_TYPES:
            raise CatalogsyncError(
                f"unknown job type {job_type!r}; choose one of: {', '.join(JOB_TYPES)}"
            )
        ids = [int(i) for i in playlist_ids or []]
        # dict.fromkeys drops repeats and keeps the order the user gave.
        ids = list(dict.fromkeys(ids))
        if ids:
            self.catalog.require_playlists(ids)
        source_names = list(dict.fromkeys(sources or []))
        for name in source_names:
            self.settings.source(name)
        if backend is not None:
            self.catalog.get_backend(backend)
        elif job_has_stage(job_type, "upload"):
            raise CatalogsyncError(f"{job_type} needs a target: add --backend NAME")
        job_id = self.repository.create_job(
            job_type,
            self.settings.snapshot(),
            priority=priority,
            requested_by=requested_by,
            sources=source_names,
            playlist_scope={"playlist_ids": ids} if ids else {},
            backend_name=backend,
        )
        self.repository.add_event(job_id, "submitted", f"job {job_id} submitted by {requested_by}")
        self.repository.ensure_job_stages(job_id)
        self.nudge()
        return self.job_row(job_id)

    def job_row(self, job_id: int) -> TaskRow:
        return self.job_detail(job_id).job

    def command(
        self,
        job_id: int,
        command: CommandType | str,
        *,
        requested_by: str = "cli",
        wait_seconds: float = COMMAND_VERDICT_SECONDS,
    ) -> CommandResult:
        """Send pause/resume/cancel/retry and return the runner's verdict.

        With no live runner the command is a pure state change and is applied here.
        Otherwise the runner applies it; we wait up to ``wait_seconds`` for its verdict,
        so a rejection (``CatalogsyncError`` with the runner's reason) is not lost; with
        no verdict by then the result is ``applied=False`` (sent, applied when it can).
        """
        kind = CommandType(command)
        command_id = self.repository.submit_command(int(job_id), kind, requested_by=requested_by)

        def result(applied: bool, message: str) -> CommandResult:
            return CommandResult(int(job_id), kind, command_id, applied, message)

        if self.runner is None and self._live_runner() is None:
            # Nobody runs the queue: this is a pure state change, apply it ourselves.
            outcome = self.repository.apply_command(command_id)
            if not outcome.applied:
                raise CatalogsyncError(outcome.message)
            return result(True, outcome.message)
        self.nudge()
        deadline = time.monotonic() + wait_seconds
        while True:
            row = self.repository.get_command(command_id)
            if row is not None and row["status"] == CommandStatus.APPLIED.value:
                return result(True, str(row["message"] or "applied"))
            if row is not None and row["status"] == CommandStatus.REJECTED.value:
                reason = str(row["message"] or f"job {job_id}: rejected")
                raise CatalogsyncError(f"the runner refused: {reason}")
            if time.monotonic() >= deadline:
                return result(
                    False,
                    (
                        f"job {job_id}: {kind.value} sent; the runner has not "
                        f"answered within {wait_seconds:.0f} s (it applies it when it can)"
                    ),
                )
            time.sleep(0.05)

    def move_job(self, job_id: int, direction: int) -> bool:
        moved = self.repository.move_queued_job(int(job_id), direction)
        if moved:
            self.repository.add_event(
                int(job_id), "reordered", f"job {job_id} moved {'up' if direction < 0 else 'down'}"
            )
        return moved

    # -- playlists ------------------------------------------------------------

    def add_playlists(
        self, refs: Iterable[str], *, name: str | None = None, wanted: bool | None = None
    ) -> list[AddedPlaylist]:
        """Register playlist files or URLs; nothing is stored unless every ref is understood."""
        from catalogsync.providers import registry

        described = []
        for ref in refs:
            provider = registry.provider_for_ref(ref)
            described.append(provider.describe(ref))
        added = []
        for item in described:
            playlist_id, created = self.catalog.upsert_playlist(
                platform=item.platform,
                remote_id=item.remote_id,
                name=name or item.name,
                ref=item.ref,
                pool_kind="url"
                if "://" in item.ref and not item.ref.startswith("file:")
                else "manual_file",
                wanted=wanted,
            )
            added.append(AddedPlaylist(playlist_id, name or item.name, item.platform, created))
        return added

    def set_wanted(self, playlist_ids: Iterable[int], wanted: bool) -> int:
        return self.catalog.set_wanted(playlist_ids, wanted)

    def set_sync_policy(self, playlist_id: int, policy: str) -> None:
        """``add`` (files stay) or ``mirror`` (files of tracks removed upstream are trashed)."""
        self.catalog.set_sync_policy(int(playlist_id), policy)

    def source_names(self) -> list[str]:
        """The `[[sources]]` of config.toml, by name."""
        return [s.name for s in self.settings.sources]

    # -- storage backends -------------------------------------------------------

    def backends(self) -> list[dict[str, Any]]:
        """Every storage backend, options as an object with secrets masked."""
        return [_backend_view(row) for row in self.catalog.list_backends()]

    def backend(self, name: str) -> dict[str, Any]:
        """One backend by name (CatalogsyncError naming it when there is none)."""
        return _backend_view(self.catalog.get_backend(name))

    def add_backend(self, name: str, kind: str, target: str, options: dict[str, str]) -> int:
        """Register a storage backend; secrets in ``options`` are refused by the catalog."""
        return self.catalog.add_backend(name, kind, target, options)

    def probe_backend(self, name: str) -> dict[str, Any]:
        """Write, read back and delete a small probe file on a backend; its view."""
        from catalogsync.transfer.backends import make_backend

        row = self.catalog.get_backend(name)
        make_backend(row).probe()
        return _backend_view(row)

    # -- runner ---------------------------------------------------------------

    def _live_runner(self) -> dict[str, Any] | None:
        return RunnerLease(self.repository).live_holder()

    def runner_holder(self) -> RunnerView | None:
        """Who runs the queue when it is not us (None when nobody or we do)."""
        if self.runner is not None:
            return None
        return views.lease_view(self._live_runner())

    def runner_pid(self) -> int | None:
        """The pid in our own lease while this process runs the queue."""
        return self.lease.info.pid if self.lease is not None else None

    def make_runner(
        self, on_event: Callable[[str, dict[str, Any]], None] | None = None
    ) -> OpsRunner:
        """Take the lease (LeaseHeldError if a live runner has it), recover, build a runner."""
        from catalogsync.ops.recovery import recover_on_start
        from catalogsync.ops.runner import OpsRunner

        if any(os.environ.get(name) for name in _PROXY_VARIABLES):
            # Checked once, here, rather than as every song's bad_url; without a proxy
            # set there is nothing to check, and the HTTP stack loads at the first song.
            from catalogsync.transfer.wire import BadURL, check_proxy_environment

            try:
                check_proxy_environment()
            except BadURL as exc:
                raise CatalogsyncError(str(exc)) from None
        lease = RunnerLease(self.repository)
        lease.acquire()
        self.lease = lease
        recover_on_start(self.repository, self.catalog)

        def relay(kind: str, data: dict[str, Any]) -> None:
            try:
                if on_event is not None:
                    on_event(kind, data)
            finally:
                self._runner_events.set()  # wait_for_change: a job of ours started, ended...

        runner = self.runner = OpsRunner(
            self.repository,
            sleep_seconds=0.5,
            download_lane_concurrency=self.settings.download_lane_concurrency,
            general_lane_concurrency=self.settings.general_lane_concurrency,
            settings=self.settings,
            on_event=relay,
        )
        self._listen_for_nudges(runner)
        return runner

    # -- nudges and waiting (clients in other processes) ------------------------

    def _listen_for_nudges(self, runner: OpsRunner) -> None:
        """While we hold the lease, a client in another process can wake our runner."""
        from catalogsync.nudge import NudgeListener

        self._stop_nudges()
        self._nudges = NudgeListener(self.settings.db_path, runner.nudge)
        self._nudges.start()

    def _stop_nudges(self) -> None:
        if self._nudges is not None:
            self._nudges.stop()
            self._nudges = None

    def wait_for_change(self, timeout: float, *, poll: float = 0.01) -> bool:
        """Block until a job may have changed, or ``timeout`` passes; True when one may have.

        With the runner in this process (``jobs submit --wait`` embeds one), its events
        (a job started, finished, paused, a command applied) wake the waiter at once, and
        the database is looked at every ``EMBEDDED_POLL_SECONDS`` only: a waiter that
        woke at every commit of the runner's threads took the GIL from them about a
        hundred times a second. Otherwise ``PRAGMA data_version``, which changes whenever
        another connection (a runner in another process) commits and costs microseconds
        to read, is looked at every ``poll`` seconds.
        """
        conn = self.repository._conn()
        start = conn.execute("PRAGMA data_version").fetchone()[0]
        deadline = time.monotonic() + max(timeout, 0.0)
        events = self._runner_events if self.runner is not None else None
        if events is not None:
            poll = max(poll, EMBEDDED_POLL_SECONDS)
        while True:
            if events is not None and events.is_set():
                events.clear()
                return True
            if conn.execute("PRAGMA data_version").fetchone()[0] != start:
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if events is not None:
                events.wait(min(poll, remaining))
            else:
                time.sleep(min(poll, remaining))

    def start_runner_thread(
        self, on_event: Callable[[str, dict[str, Any]], None] | None = None
    ) -> bool:
        """Embed a runner in a background thread; False (attached as client) if one is live."""
        try:
            runner = self.make_runner(on_event)
        except LeaseHeldError:
            return False
        self._runner_stop.clear()
        self._runner_thread = threading.Thread(
            target=self._run_embedded, args=(runner,), name="catalogsync-runner", daemon=True
        )
        self._runner_thread.start()
        return True

    def _run_embedded(self, runner: OpsRunner) -> None:
        try:
            runner.run_forever(lease=self.lease, stop_event=self._runner_stop)
        except CatalogsyncError as exc:  # a database fault: the runner stopped itself
            self.runner_error = exc
            log.error("%s", exc)
        finally:
            self._stop_nudges()  # before the lease: the next holder binds the address
            if self.lease is not None:
                self.lease.release()

    def stop_runner(self, timeout: float = 30.0, *, reason: str | None = None) -> None:
        """Stop an embedded runner gracefully (running jobs resume first at next start).

        With ``reason`` (``terminal hung up``), every job it stopped and the global event
        list get an event ``runner stopped: REASON``.
        """
        embedded = self.runner is not None
        active = [JobStatus.RUNNING, JobStatus.PAUSE_REQUESTED]
        stopped = [j.id for j in self.repository.list_jobs(active)] if reason and embedded else []
        self._stop_runner(timeout)
        if reason and embedded:
            message = f"runner stopped: {reason}"
            for job_id in stopped:
                self.repository.add_event(job_id, "runner_stopped", message, level="warning")
            self.repository.add_event(None, "runner_stopped", message, level="warning")

    def _stop_runner(self, timeout: float) -> None:
        if self._runner_thread is not None:
            self._runner_stop.set()
            if self.runner is not None:
                self.runner.nudge()
            self._runner_thread.join(timeout)
            self._runner_thread = None
        elif self.runner is not None:
            self.runner.stop(timeout)
            if self.lease is not None:
                self.lease.release()
        self._stop_nudges()
        self.runner = None
        self.lease = None

    def hold_new_jobs(self, hold: bool = True) -> None:
        """Let the embedded runner finish its running jobs without starting queued ones."""
        if self.runner is not None:
            self.runner.hold_new_jobs(hold)

    def nudge(self) -> None:
        """Wake the runner now: ours directly, one in another process by a datagram."""
        if self.runner is not None:
            self.runner.nudge()
        else:
            from catalogsync.nudge import send_nudge

            send_nudge(self.settings.db_path)

    def run_headless(self, *, until_idle: bool = False) -> bool:
        """`catalogsync run`: hold the lease and run jobs until SIGINT/SIGTERM (or idle).

        Returns False when the stop left a job thread blocked after SHUTDOWN_SECONDS
        (a read that never returns): the caller exits the process anyway, and the next
        runner recovers those items as after any unclean stop.
        """
        runner = self.make_runner(on_event=_log_event)
        stop = threading.Event()

        def _graceful(signum: int, _frame: Any) -> None:
            log.info("signal %s: stopping after in-flight chunks", signum)
            stop.set()
            runner.nudge()

        previous = {sig: signal.signal(sig, _graceful) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            runner.run_forever(
                until_idle=until_idle,
                lease=self.lease,
                stop_event=stop,
                stop_timeout=SHUTDOWN_SECONDS,
            )
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._stop_nudges()  # before the lease: the next holder binds the address
            if self.lease is not None:
                self.lease.release()
            self.runner = None
            self.lease = None
        return not runner.busy()

    def active_job_count(self) -> int:
        return len(self.repository.list_jobs([JobStatus.RUNNING, JobStatus.PAUSE_REQUESTED]))
