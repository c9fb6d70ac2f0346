"""The app in a real terminal (tmux at 80x24): keys arrive as an SSH session sends them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.tui.conftest import Seeded

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = (
    "from catalogsync.service import Catalogsync; from tui.app import CatalogsyncApp; "
    "CatalogsyncApp(Catalogsync.open(home={home!r}), embed_runner=False).run()"
)


class Terminal:
    """A detached tmux session running the app."""

    def __init__(self, name: str) -> None:
        self.name = name

    def keys(self, *keys: str) -> None:
        """Send keys in one write, as a fast typist's SSH session delivers them."""
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def screen(self) -> str:
        """The visible text ("" once the app has quit and the session closed)."""
        return subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.name], capture_output=True, text=True
        ).stdout

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if predicate(text) or time.monotonic() > deadline:
                return text
            time.sleep(0.1)


@pytest.fixture
def terminal(seeded: Seeded, home: Path) -> Iterator[Terminal]:
    name = f"catalogsync-test-{uuid.uuid4().hex[:8]}"
    command = f"{sys.executable} -c \"{LAUNCH.format(home=str(home))}\""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color"}
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", name, "-x", "80", "-y", "24", "-c", str(ROOT),
         command],
        check=True, env=env,
    )
    try:
        yield Terminal(name)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def test_task_center_at_80x24_and_a_burst_of_keys_in_the_new_job_dialog(
    seeded: Seeded, terminal: Terminal
) -> None:
    screen = terminal.wait_for(lambda s: "queued #2" in s and "q Quit" in s)
    assert "catalogsync · Task Center" in screen
    assert "Running 1 │ Queued downloads 2 │ Paused 1 │ Failed 1 │ ↓ 6.0 MB/s" in screen
    assert "p Pause c Cancel n New" in screen
    assert all(len(line) <= 80 for line in screen.splitlines())

    terminal.keys("n")
    terminal.wait_for(lambda s: "New job" in s)
    terminal.keys("Tab")
    time.sleep(0.5)
    # Space, down, down, space in one write: each space must toggle the option under the
    # cursor when it was pressed (Textual's own SelectionList toggles a later one).
    terminal.keys("Space", "Down", "Down", "Space", "Tab")
    time.sleep(0.5)
    before = len(seeded.service.ops.list_jobs())
    terminal.keys("Enter")
    terminal.wait_for(lambda s: "New job" not in s and "Job 7 queued" in s)
    jobs = seeded.service.ops.list_jobs()
    assert len(jobs) == before + 1
    assert jobs[-1].job_type == "sync_download"
    assert jobs[-1].playlist_ids == [seeded.playlists[0], seeded.playlists[2]]

    terminal.keys("q")
    gone = terminal.wait_for(lambda s: "Task Center" not in s, timeout=10)
    assert "Task Center" not in gone
