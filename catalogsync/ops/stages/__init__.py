"""Stage executors, one module each, and the one map from a stage type to its executor.

Adding a stage type: its row in ``ops/jobdefs.py`` (``STAGE_DEFS``), one module here
with a ``StageExecutor`` subclass, its line in ``STAGES``, and its tests.
"""

from __future__ import annotations

from typing import Any

from catalogsync.errors import CatalogsyncError

from .base import FileRecord, NewDownload, Outcome, Skipped, StageExecutor, Succeeded
from .collect import CollectStageExecutor
from .download import DownloadStageExecutor
from .sync import SyncStageExecutor
from .upload import UploadStageExecutor
from .verify import VerifyStageExecutor

__all__ = [
    "STAGES",
    "FileRecord",
    "NewDownload",
    "Outcome",
    "Skipped",
    "StageExecutor",
    "Succeeded",
    "make_executor",
]

STAGES: dict[str, type[StageExecutor]] = {
    "collect": CollectStageExecutor,
    "sync": SyncStageExecutor,
    "download": DownloadStageExecutor,
    "upload": UploadStageExecutor,
    "verify": VerifyStageExecutor,
}


def make_executor(stage_type: str, **kwargs: Any) -> StageExecutor:
    """The executor for one stage of one job."""
    try:
        cls = STAGES[stage_type]
    except KeyError:
        raise CatalogsyncError(f"unknown stage type {stage_type!r}") from None
    return cls(**kwargs)
