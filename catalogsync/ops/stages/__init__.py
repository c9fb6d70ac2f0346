"""Stage executors, one module each, and the one map from a stage type to its executor.

Adding a stage type: its row in ``ops/jobdefs.py`` (``STAGE_DEFS``), one module here
with a ``StageExecutor`` subclass, its line in ``STAGES`` (module and class name: a
stage's module is imported when a job first reaches it), and its tests.
"""

from __future__ import annotations

import importlib
from typing import Any

from catalogsync.errors import CatalogsyncError

from .base import FileRecord, NewDownload, Outcome, Skipped, StageExecutor, Succeeded

__all__ = [
    "STAGES",
    "FileRecord",
    "NewDownload",
    "Outcome",
    "Skipped",
    "StageExecutor",
    "Succeeded",
    "executor_class",
    "make_executor",
]

# Stage type -> (its module here, its executor class). A module is imported when a job
# first reaches its stage: the download stage's brings the whole HTTP stack (http.client,
# ssl, email: about 25 ms), which a sync-only job, or a runner that only uploads, never
# needs.
STAGES: dict[str, tuple[str, str]] = {
    "collect": ("collect", "CollectStageExecutor"),
    "sync": ("sync", "SyncStageExecutor"),
    "download": ("download", "DownloadStageExecutor"),
    "upload": ("upload", "UploadStageExecutor"),
    "verify": ("verify", "VerifyStageExecutor"),
}


def executor_class(stage_type: str) -> type[StageExecutor]:
    """The executor class of a stage type (importing its module on first use)."""
    try:
        module_name, class_name = STAGES[stage_type]
    except KeyError:
        raise CatalogsyncError(f"unknown stage type {stage_type!r}") from None
    cls: type[StageExecutor] = getattr(
        importlib.import_module(f"{__name__}.{module_name}"), class_name
    )
    return cls


def make_executor(stage_type: str, **kwargs: Any) -> StageExecutor:
    """The executor for one stage of one job."""
    return executor_class(stage_type)(**kwargs)
