"""The task center's start: what it imports and what its first frame shows.

Not timings (bench/tui_refresh.py prints the first paint): the structure that keeps it
short, so a change that undoes it fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from typing import Any

import pytest
from textual.css.query import NoMatches

import tui.app
from tests.tui.conftest import Seeded, make_app
from tui import reads
from tui.widgets.job_table import JobTable

# The task center reads the database and draws: it needs no HTTP client, TLS beyond
# asyncio's, audio tags, notifications, cron, nor the runner and its download stack
# (the embedded runner loads those when it starts, not the import).
NOT_FOR_THE_TASK_CENTER = [
    "httpx",
    "httpcore",
    "mutagen",
    "apprise",
    "cronsim",
    "catalogsync.ops.runner",
    "catalogsync.transfer.http",
    "catalogsync.ops.stages",
]


def test_importing_the_app_loads_no_engine_stack_it_does_not_draw() -> None:
    code = (
        "import json, sys\n"
        "import tui.app\n"
        f"watched = {NOT_FOR_THE_TASK_CENTER!r}\n"
        "print(json.dumps([m for m in watched if m in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(done.stdout) == []


@pytest.mark.parametrize("size", [(120, 40), (80, 24), (60, 20)])
async def test_the_first_frame_already_shows_the_job_rows(
    seeded: Seeded, size: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(seeded.service)
    rows_per_frame: list[int] = []
    original = app._display

    def display(screen: Any, renderable: Any) -> None:
        painting = renderable is not None and not app._batch_count
        original(screen, renderable)
        if painting:
            try:
                rows_per_frame.append(app.task_center.query_one(JobTable).row_count)
            except NoMatches:
                rows_per_frame.append(0)

    app._display = display  # type: ignore[method-assign]
    read_on: list[threading.Thread] = []

    def read_models(*args: Any) -> Any:
        read_on.append(threading.current_thread())
        return reads.read_models(*args)

    monkeypatch.setattr(tui.app, "read_models", read_models)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        shown = app.task_center.query_one(JobTable).row_count
    # The first read is applied before the first frame, and the table has its columns
    # at mount: no frame of an empty table comes first.
    assert shown == len(app.task_center.rows) > 0
    assert rows_per_frame and rows_per_frame[0] == shown
    # That read ran on the event loop: a thread beside the screen's compose waited for the
    # GIL after every SQLite call (about 80 ms instead of a few).
    assert read_on[0] is threading.main_thread()
