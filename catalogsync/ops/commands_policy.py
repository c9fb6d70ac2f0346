"""Which commands a job takes in its status: the one place that decides it.

The task row's ``can_pause`` / ``can_resume`` / ``can_cancel`` / ``can_retry``
(``views.build_task_row``) and the check before a command is queued and again when
the runner applies it (``CommandsRepository.validate_command``) all ask here. Pure:
no SQL; the caller passes the job's failed-item count.
"""

from __future__ import annotations

from functools import cache

from .models import ACTIVE_JOB_STATUSES, CommandType, JobStatus


def refusal(command: CommandType, status: JobStatus, failed_items: int) -> str | None:
    """Why ``command`` makes no sense for a job in ``status`` now, or None when it does.

    A reason that does not start with ``it `` is said after the job's status
    (``cannot pause job 3: it is paused; only queued or running jobs ...``).
    """
    if command == CommandType.PAUSE:
        if status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            return "only queued or running jobs can be paused"
    elif command == CommandType.RESUME:
        if status not in (JobStatus.PAUSED, JobStatus.PAUSE_REQUESTED):
            return "only paused jobs can be resumed"
    elif command == CommandType.CANCEL:
        if status.is_finished:
            return "it has already finished"
    elif command == CommandType.RETRY:
        if status in ACTIVE_JOB_STATUSES:
            return "pause it or let it finish before retrying its failed items"
        if status == JobStatus.CANCELED:
            return "a canceled job cannot be retried; submit a new one"
        if failed_items <= 0:
            return "it has no failed items"
    return None


def allowed_commands(status: JobStatus, failed_items: int) -> frozenset[CommandType]:
    """The commands a job in ``status`` with ``failed_items`` failed items takes now."""
    return _allowed(JobStatus(status), failed_items > 0)


@cache
def _allowed(status: JobStatus, has_failed: bool) -> frozenset[CommandType]:
    # Only whether any item failed matters: one answer per (status, yes/no), built once.
    return frozenset(c for c in CommandType if refusal(c, status, int(has_failed)) is None)
