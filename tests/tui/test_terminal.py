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
# A tmux server of our own: other tmux users on the machine cannot take our sessions down.
TMUX = ["tmux", "-L", f"catalogsync-tests-{os.getpid()}"]
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
        subprocess.run([*TMUX, "send-keys", "-t", self.name, *keys], check=True)

    def screen(self) -> str:
        """The visible text ("" once the app has quit and the session closed)."""
        return subprocess.run(
            [*TMUX, "capture-pane", "-p", "-t", self.name], capture_output=True, text=True
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
    command = f'{sys.executable} -c "{LAUNCH.format(home=str(home))}"'
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color"}
    subprocess.run(
        [*TMUX, "new-session", "-d", "-s", name, "-x", "80", "-y", "24", "-c", str(ROOT), command],
        check=True,
        env=env,
    )
    try:
        yield Terminal(name)
    finally:
        subprocess.run([*TMUX, "kill-session", "-t", name], capture_output=True)


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
    before = len(seeded.service.repository.list_jobs())
    terminal.keys("Enter")
    terminal.wait_for(lambda s: "New job" not in s and "Job 7 queued" in s)
    jobs = seeded.service.repository.list_jobs()
    assert len(jobs) == before + 1
    assert jobs[-1].job_type == "sync_download"
    assert jobs[-1].playlist_ids == [seeded.playlists[0], seeded.playlists[2]]

    terminal.keys("q")
    gone = terminal.wait_for(lambda s: "Task Center" not in s, timeout=10)
    assert "Task Center" not in gone


def _session_alive(name: str) -> bool:
    return subprocess.run([*TMUX, "has-session", "-t", name], capture_output=True).returncode == 0


def _start(name: str, command: str, size: tuple[int, int] = (80, 24)) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm-256color"}
    subprocess.run(
        [
            *TMUX,
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            str(size[0]),
            "-y",
            str(size[1]),
            "-c",
            str(ROOT),
            command,
        ],
        check=True,
        env=env,
    )


def test_q_typed_during_start_up_quits(tmp_path: Path) -> None:
    """Issue 13.1: keys typed while the app starts (here while it takes the runner lease
    for its embedded runner) went into a hidden job filter, and `q` did not quit."""
    name = f"catalogsync-q-{uuid.uuid4().hex[:8]}"
    cli = "from catalogsync.cli import main; main()"
    _start(name, f"{sys.executable} -c '{cli}' --home {tmp_path / 'home'} tui")
    try:
        time.sleep(0.3)
        subprocess.run([*TMUX, "send-keys", "-t", name, "q"], check=True)
        deadline = time.monotonic() + 20
        while _session_alive(name) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _session_alive(name), Terminal(name).screen()
    finally:
        subprocess.run([*TMUX, "kill-session", "-t", name], capture_output=True)


def _db_rows(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return (
        Path(f"/proc/{pid}").exists()
        and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    )


def test_hang_up_stops_the_embedded_runner_cleanly_within_5_seconds(tmp_path: Path) -> None:
    """Issue 13.3: closing the tmux pane (SIGHUP) while the demo downloads."""
    home = tmp_path / "demo-home"
    name = f"catalogsync-hup-{uuid.uuid4().hex[:8]}"
    cli = "from catalogsync.cli import main; main()"
    _start(name, f"{sys.executable} -c '{cli}' --home {home} demo", size=(120, 40))
    db = home / "catalogsync.db"
    try:
        deadline = time.monotonic() + 60
        running: list[tuple] = []
        while time.monotonic() < deadline:
            if db.exists():
                try:
                    running = _db_rows(
                        db,
                        "SELECT st.job_run_id FROM job_items i JOIN job_stages st "
                        "ON st.id = i.job_stage_id WHERE i.status = 'running' "
                        "AND i.item_type = 'song_download'",
                    )
                except Exception:  # the schema is being created
                    running = []
            if running:
                break
            time.sleep(0.2)
        assert running, Terminal(name).screen()
        job_id = int(running[0][0])
        (pid,) = _db_rows(db, "SELECT pid FROM runner_lease")[0]
        subprocess.run([*TMUX, "kill-session", "-t", name], check=True)
        hung_up = time.monotonic()
        while _pid_alive(int(pid)) and time.monotonic() - hung_up < 10:
            time.sleep(0.05)
        took = time.monotonic() - hung_up
        assert not _pid_alive(int(pid)), "the app outlived its terminal"
        assert took <= 5.0, f"took {took:.1f} s"
        assert _db_rows(db, "SELECT COUNT(*) FROM job_items WHERE status = 'running'") == [(0,)]
        assert _db_rows(db, "SELECT status FROM job_runs WHERE id = ?", (job_id,)) == [("queued",)]
        messages = [
            m
            for (m,) in _db_rows(
                db, "SELECT message FROM job_events WHERE job_run_id = ?", (job_id,)
            )
        ]
        assert "runner stopped: terminal hung up" in messages
        assert _db_rows(db, "SELECT COUNT(*) FROM runner_lease") == [(0,)]
    finally:
        subprocess.run([*TMUX, "kill-session", "-t", name], capture_output=True)
