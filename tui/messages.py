"""Messages the app posts to itself: past-tense facts carrying the engine's read models."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

from catalogsync.ops.readmodels import (
    DashboardView,
    EventView,
    JobDetailView,
    PlaylistRow,
    RunnerView,
    TaskRow,
)


@dataclass
class JobsRefreshed(Message):
    """A fresh read of the task center: dashboard payload and the expanded job's detail."""

    dashboard: DashboardView
    detail: JobDetailView | None = None
    detail_job_id: int | None = None
    playlists: list[PlaylistRow] | None = None
    runner_holder: RunnerView | None = None
    # With a job filter: the rows it matches among every job, and the text searched.
    matches: list[TaskRow] | None = None
    match_text: str = ""
    # With the log view open: the newest events of every job.
    events: list[EventView] | None = None


@dataclass
class RunnerEventReceived(Message):
    """The embedded runner reported something (job finished, paused itself, command applied)."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)
