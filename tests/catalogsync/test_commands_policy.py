"""One decision for which commands a job takes: the task row's flags and the validation
before a command is queued both follow ``allowed_commands``."""

from __future__ import annotations

import pytest

from catalogsync.errors import InvalidTransitionError
from catalogsync.ops import views
from catalogsync.ops.commands_policy import allowed_commands, refusal
from catalogsync.ops.models import CommandType, ItemStatus, JobStatus, StageStatus

P, R, C, T = CommandType.PAUSE, CommandType.RESUME, CommandType.CANCEL, CommandType.RETRY

EXPECTED = {
    # status: (without failed items, with failed items)
    JobStatus.QUEUED: ({P, C}, {P, C, T}),  # failed items from before a re-queue
    JobStatus.RUNNING: ({P, C}, {P, C}),
    JobStatus.PAUSE_REQUESTED: ({R, C}, {R, C}),
    JobStatus.PAUSED: ({R, C}, {R, C, T}),
    JobStatus.COMPLETED: (set(), {T}),
    JobStatus.COMPLETED_WITH_ERRORS: (set(), {T}),
    JobStatus.FAILED: (set(), {T}),
    JobStatus.CANCELED: (set(), set()),
}


@pytest.mark.parametrize("status", list(JobStatus))
def test_allowed_commands_per_status(status: JobStatus) -> None:
    without, with_failed = EXPECTED[status]
    assert allowed_commands(status, 0) == without
    assert allowed_commands(status, 3) == with_failed
    for command in CommandType:
        allowed = command in allowed_commands(status, 3)
        assert (refusal(command, status, 3) is None) == allowed


@pytest.mark.parametrize("status", list(JobStatus))
def test_task_row_flags_and_validation_agree(repo, status: JobStatus) -> None:
    """Whatever the row offers, submit_command accepts; whatever it hides, it refuses."""
    job = repo.create_job("sync_only", status=status)
    stage = repo.create_stage(
        job_id=job, stage_type="sync", seq_no=1, status=StageStatus.COMPLETED_WITH_ERRORS
    )
    repo.create_items(
        stage, [{"item_type": "playlist_sync", "item_key": "p:1", "status": ItemStatus.FAILED}]
    )
    [row] = [r for r in views.task_center_rows(repo) if r.id == job]
    offered = {P: row.can_pause, R: row.can_resume, C: row.can_cancel, T: row.can_retry}
    assert {c for c, yes in offered.items() if yes} == allowed_commands(status, 1)
    for command, yes in offered.items():
        if yes:  # only queued (the runner applies it): the job stays as it is for the next
            assert repo.submit_command(job, command) > 0
            continue
        with pytest.raises(InvalidTransitionError, match=f"cannot {command.value} job {job}"):
            repo.submit_command(job, command)
