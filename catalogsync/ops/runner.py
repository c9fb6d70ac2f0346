"""OpsRunner: the lane supervisor that owns the queue of one database.

One loop (``loop_once``) reaps finished jobs, applies commands and starts eligible
jobs per lane. Each running job runs its stages in order on a pool of named item
workers. Pause and cancel reach a running item through a per-job stop flag.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from catalogsync.catalog.repository import CatalogRepository
from catalogsync.config import Settings
from catalogsync.db import database_error, is_storage_fault
from catalogsync.errors import (
    CatalogsyncError,
    TransferStopped,
)
from catalogsync.library.playlists import after_stage

from . import stages
from .context import JobContext, StopReason
from .helper_process import HelperProcess, helper_groups, helper_process_count
from .jobdefs import DOWNLOAD_LANE, job_lane_type
from .lease import RunnerLease
from .models import JobStatus, StageStatus
from .repository import CommandOutcome, OpsRepository
from .shared import SharedResources
from .unattended import RunnerHooks
from .workers import FailureKind, StageWorkers, classify, fail_items_of_lost_workers

log = logging.getLogger("catalogsync.runner")


class OpsRunner:
    """Runs queued jobs: one download-class lane and one general lane."""

    def __init__(
        self,
        repository: OpsRepository,
        sleep_seconds: float = 1.0,
        *,
        download_lane_concurrency: int = 1,
        general_lane_concurrency: int = 3,
        settings: Settings | None = None,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.repository = repository
        # One connection per thread for both: a worker settles an item across them at once.
        self.catalog = CatalogRepository(repository.db_path, share_with=repository)
        self.settings = settings
        self.sleep_seconds = max(float(sleep_seconds), 0.005)
        self.download_lane_concurrency = max(int(download_lane_concurrency), 1)
        self.general_lane_concurrency = max(int(general_lane_concurrency), 1)
        self._job_pool = ThreadPoolExecutor(
            max_workers=self.download_lane_concurrency + self.general_lane_concurrency,
            thread_name_prefix="catalogsync-job",
        )
        self._futures: dict[int, Future[None]] = {}
        self._contexts: dict[int, JobContext] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._holding = threading.Event()
        self.on_event = on_event
        self.shared = SharedResources.build(settings, self.catalog, repository)
        self.shared.download_jobs_at_once = self.download_lane_concurrency
        self._helpers: dict[int, HelperProcess] = {}
        self._helpers_failed = False
        self.hooks: RunnerHooks | None = None  # schedules, sd_notify, notifications
        self._storage_fault: BaseException | None = None
        # Set once another runner took the lease: from then on this one writes nothing
        # about jobs and items (they are the new owner's), it only winds its threads down.
        self.lease_lost = False

    # -- the loop ----------------------------------------------------------

    def loop_once(self) -> bool:
        """One supervisor pass; True when anything happened."""
        had_commands = self.apply_pending_commands() > 0
        self._sync_stop_flags()
        finished = self._reap_finished_jobs()
        idle = self._stopping.is_set() or self._holding.is_set()
        started = 0 if idle else self._start_eligible_jobs()
        return bool(had_commands or finished or started)

    def hold_new_jobs(self, hold: bool = True) -> None:
        """Finish the running jobs but start no queued one (an operator waiting to quit)."""
        if hold:
            self._holding.set()
        else:
            self._holding.clear()
            self.nudge()

    def nudge(self) -> None:
        """Wake the loop now (an in-process client just wrote a command or a job)."""
        self._wake.set()

    def run_forever(
        self,
        *,
        until_idle: bool = False,
        lease: RunnerLease | None = None,
        stop_event: threading.Event | None = None,
        stop_timeout: float = 30.0,
    ) -> None:
        """Loop until stopped (or, with ``until_idle``, until nothing is queued or running).

        Raises ``StorageError`` (after stopping every job) when the database turns out
        corrupt, full or read-only: a runner that cannot record its work must not go on.
        """
        hooks = self.hooks = RunnerHooks(self.settings, self.repository, self.catalog, self.shared)
        hooks.started()  # schedules, sd_notify READY, notifications
        try:
            try:
                self._run_loop(until_idle=until_idle, lease=lease, stop_event=stop_event)
            except Exception as exc:
                if not is_storage_fault(exc):
                    raise
                self.storage_fault(exc)
            hooks.stopping()
            try:
                self.stop(stop_timeout)
            except Exception as exc:
                if not is_storage_fault(exc):
                    raise
        finally:
            hooks.close()
        if self._storage_fault is not None:
            raise database_error(self.repository.db_path, self._storage_fault)  # type: ignore[arg-type]

    def storage_fault(self, exc: BaseException) -> None:
        """The database failed under us: remember the first fault and stop the runner."""
        with self._lock:
            if self._storage_fault is None:
                self._storage_fault = exc
                log.error("database fault, stopping the runner: %s", exc)
        self._stopping.set()
        self.nudge()

    def busy(self) -> bool:
        """True while a job thread is still running (a stop left it blocked)."""
        with self._lock:
            return any(not future.done() for future in self._futures.values())

    def _run_loop(
        self,
        *,
        until_idle: bool,
        lease: RunnerLease | None,
        stop_event: threading.Event | None,
    ) -> None:
        while not self._stopping.is_set() and not (stop_event and stop_event.is_set()):
            # The lease first: a runner that was frozen (SIGSTOP, a suspended VM) while
            # another took over must not start or settle jobs that runner now owns.
            if lease is not None and not lease.heartbeat():
                log.error("lost the runner lease to another runner; stopping")
                self.lease_lost = True
                self.repository.add_event(
                    None, "lease_lost", "runner lost its lease; stopping", level="error"
                )
                break
            if self.hooks is not None:
                self.hooks.tick()
            self.loop_once()
            if until_idle and self.is_idle():
                break
            self._wake.wait(self.sleep_seconds)
            self._wake.clear()

    def is_idle(self) -> bool:
        with self._lock:
            if self._futures:
                return False
        if self.repository.list_pending_commands():
            return False
        return (
            not self.repository.list_queued_jobs(limit=1) and not self.repository.list_active_jobs()
        )

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful stop: running items stop at a chunk boundary and go back to pending."""
        self._stopping.set()
        with self._lock:
            contexts = list(self._contexts.values())
        for ctx in contexts:
            ctx.stop(StopReason.SHUTDOWN, "runner stopped")
        deadline = time.monotonic() + timeout
        with self._lock:
            futures = list(self._futures.values())
        for future in futures:
            remaining = max(deadline - time.monotonic(), 0.1)
            try:
                future.result(timeout=remaining)
            except Exception:  # noqa: BLE001 - a job's crash was logged where it happened
                pass
        self._reap_finished_jobs()
        self._job_pool.shutdown(wait=False, cancel_futures=True)
        self.shared.close()

    # -- commands ----------------------------------------------------------

    def apply_pending_commands(self) -> int:
        applied = 0
        for command in self.repository.list_pending_commands():
            outcome = self.repository.apply_command(int(command["id"]))
            if outcome.job_id:
                applied += 1
                self._after_command(outcome)
        return applied

    def _after_command(self, outcome: CommandOutcome) -> None:
        with self._lock:
            ctx = self._contexts.get(outcome.job_id)
        if outcome.applied and ctx is not None:
            if outcome.job_status == JobStatus.PAUSE_REQUESTED:
                ctx.stop(StopReason.PAUSE)
            elif outcome.job_status == JobStatus.CANCELED:
                ctx.stop(StopReason.CANCEL)
            elif outcome.job_status == JobStatus.RUNNING and ctx.reason == StopReason.PAUSE:
                ctx.clear()
        self._emit(
            "command",
            {"job_id": outcome.job_id, "applied": outcome.applied, "message": outcome.message},
        )

    def _sync_stop_flags(self) -> None:
        """Raise stop flags for running jobs whose status changed outside this runner."""
        with self._lock:
            contexts = dict(self._contexts)
        if not contexts:
            return
        for job_id, status in self.repository.job_statuses(list(contexts)).items():
            ctx = contexts[job_id]
            if status == JobStatus.PAUSE_REQUESTED and not ctx.should_stop():
                ctx.stop(StopReason.PAUSE)
            elif status == JobStatus.CANCELED:
                ctx.stop(StopReason.CANCEL)

    def _emit(self, kind: str, data: dict[str, Any]) -> None:
        if self.on_event is not None:
            try:
                self.on_event(kind, data)
            except Exception:  # noqa: BLE001 - a UI callback must never break the runner
                log.exception("event callback failed")

    # -- scheduling --------------------------------------------------------

    def _reap_finished_jobs(self) -> int:
        finished = 0
        with self._lock:
            for job_id, future in list(self._futures.items()):
                if not future.done():
                    continue
                del self._futures[job_id]
                self._contexts.pop(job_id, None)
                finished += 1
                exc = future.exception()
                if exc is not None:
                    log.error("job %s crashed: %s", job_id, exc, exc_info=exc)
        return finished

    def _start_eligible_jobs(self) -> int:
        started = 0
        lane_counts = Counter(
            job_lane_type(job.job_type) for job in self.repository.list_active_jobs()
        )
        with self._lock:
            # A job whose thread is still winding down occupies its lane slot too.
            for job_id in self._futures:
                job = self.repository.get_job(job_id)
                if job is not None and job.status not in (
                    JobStatus.RUNNING,
                    JobStatus.PAUSE_REQUESTED,
                ):
                    lane_counts[job_lane_type(job.job_type)] += 1
        for queued in self.repository.list_queued_jobs(limit=200):
            lane = job_lane_type(queued.job_type)
            limit = (
                self.download_lane_concurrency
                if lane == DOWNLOAD_LANE
                else self.general_lane_concurrency
            )
            if lane_counts[lane] >= limit:
                continue
            claimed = self.repository.claim_job_if_queued(queued.id)
            if claimed is None:
                continue
            ctx = JobContext(claimed.id)
            with self._lock:
                self._contexts[claimed.id] = ctx
                future = self._job_pool.submit(self._run_job, claimed.id, ctx)
                self._futures[claimed.id] = future
            # A finished job is reaped (and its lane refilled) now, not at the next tick.
            future.add_done_callback(lambda _done: self.nudge())
            lane_counts[lane] += 1
            started += 1
            self.repository.add_event(claimed.id, "started", f"job {claimed.id} started")
            self._emit("job_started", {"job_id": claimed.id})
        return started

    # -- running one job ---------------------------------------------------

    def _run_job(self, job_id: int, ctx: JobContext) -> None:
        try:
            self._run_job_stages(job_id, ctx)
        except Exception as exc:  # noqa: BLE001 - one job's bug must not stop the runner
            if is_storage_fault(exc):
                self.storage_fault(exc)  # the whole runner stops; nothing more is written
                ctx.stop(StopReason.SHUTDOWN, "database fault")
                return
            log.exception("job %s failed unexpectedly", job_id)
            message = f"internal error: {type(exc).__name__}: {exc}"
            self.repository.set_job_status(job_id, JobStatus.FAILED, error=message)
            self.repository.add_event(job_id, "failed", message, level="error")
            self._emit("job_finished", {"job_id": job_id, "status": "failed"})
        finally:
            if self._storage_fault is None and not self.lease_lost:
                self.repository.stop_job_workers(job_id)
                if self.hooks is not None:
                    self.hooks.job_ended(job_id)

    def _run_job_stages(self, job_id: int, ctx: JobContext) -> None:
        self.repository.ensure_job_stages(job_id)
        while True:
            if ctx.should_stop() and self._settle_stop(job_id, ctx):
                return
            job = self.repository.get_job(job_id)
            if job is None:
                return
            if job.status == JobStatus.CANCELED:
                ctx.stop(StopReason.CANCEL)
                self._settle_stop(job_id, ctx)
                return
            stage = next(
                (
                    s
                    for s in self.repository.list_job_stages(job_id)
                    if s.status in (StageStatus.PENDING, StageStatus.RUNNING)
                ),
                None,
            )
            if stage is None:
                self._finalize_job(job_id)
                return
            try:
                self._run_stage(job, stage.id, ctx)
            except (CatalogsyncError, TransferStopped) as exc:
                failure = classify(exc)
                if failure.kind == FailureKind.STOPPED:
                    pass  # a stop raised while planning: settled at the top of the loop
                elif failure.kind == FailureKind.STORAGE:
                    ctx.stop(StopReason.STORAGE, failure.message)
                else:
                    # Planning failed (no source, no backend...): the job cannot proceed.
                    self._fail_job_in_stage(job_id, stage.id, failure.message)
                    return
            self.apply_pending_commands()

    def _fail_job_in_stage(self, job_id: int, stage_id: int, message: str) -> None:
        self.repository.set_stage_status(stage_id, StageStatus.FAILED)
        self.repository.cancel_pending_items(job_id)
        self.repository.set_job_status(job_id, JobStatus.FAILED, error=message)
        self.repository.add_event(job_id, "failed", message, level="error")
        self._emit("job_finished", {"job_id": job_id, "status": "failed", "message": message})

    def _settle_stop(self, job_id: int, ctx: JobContext) -> bool:
        """Bring a stopped job to rest; False when a resume cleared the stop meanwhile."""
        if self.lease_lost or self._storage_fault is not None:
            return True  # the job is another runner's now (or the database is unusable)
        self.apply_pending_commands()
        job = self.repository.get_job(job_id)
        if job is None:
            return True
        reason = ctx.reason
        if reason is None and job.status == JobStatus.RUNNING:
            return False
        if job.status == JobStatus.CANCELED or reason == StopReason.CANCEL:
            self.repository.cancel_pending_items(job_id)
            self.repository.set_job_status(job_id, JobStatus.CANCELED)
            self.repository.add_event(job_id, "canceled", f"job {job_id} canceled")
            self._emit("job_finished", {"job_id": job_id, "status": "canceled"})
        elif reason == StopReason.SHUTDOWN:
            self.repository.requeue_job(job_id, ahead=True)
            self.repository.add_event(
                job_id,
                "interrupted",
                f"job {job_id} stopped with the runner; it resumes first at the next start",
            )
        elif reason == StopReason.STORAGE:
            message = ctx.message or "storage problem"
            self.repository.set_job_status(
                job_id,
                JobStatus.PAUSED,
                from_statuses=(JobStatus.RUNNING, JobStatus.PAUSE_REQUESTED),
                pause_reason=message,
            )
            self.repository.add_event(
                job_id, "paused_storage", f"job {job_id} paused: {message}", level="error"
            )
            self._emit("job_paused", {"job_id": job_id, "message": message, "by": "storage"})
        else:
            self.repository.set_job_status(
                job_id,
                JobStatus.PAUSED,
                from_statuses=(JobStatus.PAUSE_REQUESTED, JobStatus.RUNNING),
                pause_reason="paused by operator",
            )
            self.repository.add_event(job_id, "paused", f"job {job_id} paused")
            self._emit(
                "job_paused", {"job_id": job_id, "message": "paused by operator", "by": "operator"}
            )
        for stage in self.repository.list_job_stages(job_id):
            if stage.status == StageStatus.RUNNING:
                self.repository.set_stage_status(stage.id, StageStatus.PENDING)
        return True

    def _executor(self, job: Any, stage: Any, ctx: JobContext) -> stages.StageExecutor:
        return stages.make_executor(
            stage.stage_type,
            repository=self.repository,
            catalog=self.catalog,
            settings=self.settings,
            job=job,
            stage=stage,
            ctx=ctx,
            shared=self.shared,
        )

    def _run_stage(self, job: Any, stage_id: int, ctx: JobContext) -> None:
        stage = self.repository.get_stage(stage_id)
        executor = self._executor(job, stage, ctx)
        self.repository.set_stage_status(stage_id, StageStatus.RUNNING)
        try:
            self._run_stage_items(job, stage, executor, ctx)
        finally:
            executor.close()

    def _run_stage_items(
        self, job: Any, stage: Any, executor: stages.StageExecutor, ctx: JobContext
    ) -> None:
        stage_id = stage.id
        if not stage.planned:
            executor.plan()
            self.repository.mark_stage_planned(stage_id)
        worker_count = max(1, executor.worker_count())
        names = [f"{stage.stage_type}-{n}" for n in range(1, worker_count + 1)]
        groups = helper_groups(names, self._helper_processes(executor, stage_id))
        local, helpers = groups[0], []
        try:
            for group in groups[1:]:
                try:
                    helpers.append(self._start_helper(job.id, stage_id, group, ctx))
                except OSError as exc:  # no interpreter to start: these workers stay here
                    self._helpers_failed_with(job.id, f"cannot start a download helper: {exc}")
                    local = local + group

            def exited(helper: Any) -> bool:
                return self._helper_exited(helper, job.id, stage_id, executor, ctx)

            self._workers(executor, ctx).run(local, helpers, on_helper_exit=exited)
        finally:
            for helper in helpers:
                self._finish_helper(helper, job.id, stage_id, executor, ctx)
        if ctx.should_stop():
            return
        counts = self.repository.stage_item_counts(stage_id)
        if counts.get("pending") or counts.get("running"):
            return  # a resume raced the stop; the job loop runs the stage again
        final = self.repository.get_stage(stage_id)
        assert final is not None  # the stage row outlives the job's run
        if final.failed_items and not final.done_items:
            status = StageStatus.FAILED
        elif final.failed_items:
            status = StageStatus.COMPLETED_WITH_ERRORS
        else:
            status = StageStatus.COMPLETED
        self.repository.set_stage_status(stage_id, status)
        self.repository.add_event(
            job.id,
            "stage_finished",
            f"{stage.stage_type}: {final.success_items} done, {final.skipped_items} skipped, "
            f"{final.failed_items} failed",
            level="info" if status == StageStatus.COMPLETED else "warning",
        )
        # The .m3u8 files follow what the stage changed (issue 11); never fails the job.
        library = self.settings.library if self.settings is not None else None
        after_stage(self.catalog, self.repository, library, job.id, stage.stage_type)

    # -- helper processes ----------------------------------------------------

    def _helper_processes(self, executor: stages.StageExecutor, stage_id: int) -> int:
        """How many processes this stage's workers run in (1 = only this one)."""
        if self._helpers_failed:
            return 1
        pending = self.repository.stage_item_counts(stage_id).get("pending", 0)
        return helper_process_count(self.settings, executor.stage_type, pending)

    def _start_helper(
        self, job_id: int, stage_id: int, names: list[str], ctx: JobContext
    ) -> HelperProcess:
        assert self.settings is not None
        helper = HelperProcess(self.settings, job_id, stage_id, names, on_stop=ctx.stop)
        with self._lock:
            self._helpers[helper.pid] = helper
        return helper

    def _helper_exited(
        self,
        helper: HelperProcess,
        job_id: int,
        stage_id: int,
        executor: stages.StageExecutor,
        ctx: JobContext,
    ) -> bool:
        """A helper exited while the stage ran: settle it now, not at the stage's end.

        True when its worker names should go on in this process: the stage still has
        songs and the job is not stopping (a helper killed, or sent SIGTERM on its own,
        would otherwise leave the stage with fewer workers until it ends).
        """
        failure = self._finish_helper(helper, job_id, stage_id, executor, ctx)
        if ctx.should_stop():
            return False
        counts = self.repository.stage_item_counts(stage_id)
        if not (counts.get("pending") or counts.get("running")):
            return False
        if failure is None:  # a clean exit with songs left: stopped from outside
            names = ", ".join(helper.worker_names)
            self.repository.add_event(
                job_id,
                "helper_stopped",
                f"download helper process {helper.pid} stopped before the stage ended; "
                f"its workers ({names}) go on in the runner",
                level="warning",
            )
        return True

    def _finish_helper(
        self,
        helper: HelperProcess,
        job_id: int,
        stage_id: int,
        executor: stages.StageExecutor,
        ctx: JobContext,
    ) -> str | None:
        """Wait for a helper; if it died, its items go back with a retry (attempts bound it).

        Once per helper: what went wrong, or None for a clean exit (or a second call).
        """
        with self._lock:
            if self._helpers.pop(helper.pid, None) is None:
                return None  # settled already, when it exited mid-stage
        if helper.running():
            helper.request_stop(ctx.reason or StopReason.SHUTDOWN, ctx.message)
        failure = helper.finish()
        if failure is None:
            return None
        held = fail_items_of_lost_workers(
            self.repository,
            stage_id,
            job_id,
            helper.worker_names,
            failure,
            executor.max_attempts(),
        )
        self._helpers_failed_with(job_id, f"{failure}; {held} item(s) it held will be retried")
        return failure

    def _helpers_failed_with(self, job_id: int, message: str) -> None:
        """No more helpers for this runner: say why, once per failure."""
        self._helpers_failed = True
        message = f"{message}; this runner downloads in its own process until it restarts"
        log.error("%s", message)
        self.repository.add_event(job_id, "helper_failed", message, level="warning")

    def helper_pids(self) -> list[int]:
        """Process ids of the helper processes running now (tests use them)."""
        with self._lock:
            return list(self._helpers)

    def _workers(self, executor: stages.StageExecutor, ctx: JobContext) -> StageWorkers:
        return StageWorkers(
            executor,
            ctx,
            owned=lambda: not self.lease_lost,
            on_database_fault=self.storage_fault,
        )

    def _finalize_job(self, job_id: int) -> None:
        stages = self.repository.list_job_stages(job_id)
        failed = sum(s.failed_items for s in stages)
        # The job's verdict is its last stage that had work (download after sync): a
        # sync_download whose every song failed failed, whatever the sync did.
        primary = next((s for s in reversed(stages) if s.failed_items or s.done_items), None)
        if primary is not None and primary.failed_items and not primary.done_items:
            status = JobStatus.FAILED
            error = f"all {primary.failed_items} items of the {primary.stage_type} stage failed"
        elif failed:
            status = JobStatus.COMPLETED_WITH_ERRORS
            error = f"{failed} items failed; retry them with `jobs retry {job_id}` or R in the TUI"
        else:
            status = JobStatus.COMPLETED
            error = None
        # A pause requested after the last item finished is moot: the job is done.
        moved = self.repository.set_job_status(
            job_id,
            status,
            from_statuses=(JobStatus.RUNNING, JobStatus.PAUSE_REQUESTED),
            error=error,
        )
        if moved:
            level = "info" if status == JobStatus.COMPLETED else "error"
            text = f"job {job_id} {status.value.replace('_', ' ')}"
            self.repository.add_event(
                job_id, status.value, text + (f": {error}" if error else ""), level=level
            )
            self._emit("job_finished", {"job_id": job_id, "status": status.value, "message": error})
