"""One read of everything the screens show, off the event loop, from what it is given.

The app takes a ``RefreshRequest`` from the screens on the event loop and hands it to a
thread worker, which calls ``read_models``: the thread never looks at screen state.
"""

from __future__ import annotations

from dataclasses import dataclass

from catalogsync.errors import NotFoundError
from catalogsync.service import Catalogsync
from tui.messages import JobsRefreshed
from tui.widgets.job_table import job_matches


@dataclass(frozen=True)
class RefreshRequest:
    """What one read needs: taken from the screens on the event loop."""

    task_limit: int = 50
    detail_job_id: int | None = None  # the job whose detail pane is open
    filter_text: str = ""  # the job filter, as matched (``filter_key``)
    playlists: bool = False  # the playlist picker is open
    events: bool = False  # the log view is open
    attached: bool = True  # no embedded runner: ask who holds the lease


def read_models(service: Catalogsync, request: RefreshRequest) -> JobsRefreshed:
    """One consistent read of the engine for ``request`` (runs in a thread worker)."""
    dashboard = service.dashboard(request.task_limit)
    detail = None
    if request.detail_job_id is not None:
        try:
            detail = service.job_detail(request.detail_job_id)
        except NotFoundError:
            detail = None
    text = request.filter_text
    return JobsRefreshed(
        dashboard,
        detail,
        request.detail_job_id,
        service.playlists() if request.playlists else None,
        service.runner_holder() if request.attached else None,
        service.task_rows_matching(lambda row: job_matches(row, text)) if text else None,
        text,
        service.recent_events(200) if request.events else None,
    )
