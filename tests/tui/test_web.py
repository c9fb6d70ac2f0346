"""`catalogsync tui --web` end to end: headless Chromium presses `p` on a running job.

Real parts: the demo's loopback song server, `catalogsync tui --web` (textual-serve)
in a subprocess, Debian's chromium driven by playwright, and `jobs show --json`.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
CLI = [
    sys.executable,
    "-c",
    "import sys; from catalogsync.cli import main; sys.argv[0] = 'catalogsync'; sys.exit(main())",
]

pytestmark = [
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="chromium is not installed (apt-get install chromium)"
    ),
    pytest.mark.timeout(180),
]
playwright_sync = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytest.importorskip("textual_serve", reason="textual-serve is not installed")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def job_status(db: Path, job_id: int) -> str | None:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute("SELECT status FROM job_runs WHERE id = ?", (job_id,)).fetchone()
        return row[0] if row else None
    finally:
        conn.close()


@pytest.fixture
def demo_home(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A home whose config names the demo source, its server running, one download job."""
    from catalogsync.config import load_settings
    from catalogsync.providers.demo import DemoServer
    from catalogsync.service import Catalogsync

    home = tmp_path / "home"
    manifests = home / "demo-playlists"
    server = DemoServer(root=manifests).start()
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f'[[sources]]\nname = "demo"\nkind = "directory"\npath = "{manifests}"\n', encoding="utf-8"
    )
    service = Catalogsync(load_settings(str(home)))
    try:
        added = service.add_playlists([str(p) for p in server.manifest_paths], wanted=True)
        job = service.submit_job(
            "sync_download", playlist_ids=[a.id for a in added], requested_by="test"
        )
        service.close()
        yield home, job.id
    finally:
        server.stop()


def test_p_in_the_browser_pauses_the_running_job(demo_home: tuple[Path, int]) -> None:
    home, job_id = demo_home
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    web = subprocess.Popen(
        [*CLI, "--home", str(home), "tui", "--web", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def listening() -> bool:
            with socket.socket() as probe:
                return probe.connect_ex(("127.0.0.1", port)) == 0

        wait_until(listening, 30, "textual-serve to listen on 127.0.0.1")
        with playwright_sync.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(f"http://127.0.0.1:{port}/")
                # The tab's own `catalogsync tui` embeds the runner: the job starts.
                db = home / "catalogsync.db"
                wait_until(
                    lambda: job_status(db, job_id) == "running",
                    60,
                    "the job to run in the browser's task center",
                )
                page.click("#terminal")
                page.keyboard.press("p")
                wait_until(lambda: job_status(db, job_id) == "paused", 30, "the job to pause")
            finally:
                browser.close()
        shown = subprocess.run(
            [*CLI, "--home", str(home), "jobs", "show", str(job_id), "--json"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["job"]["status"] == "paused"
    finally:
        web.terminate()
        try:
            web.wait(20)
        except subprocess.TimeoutExpired:
            web.kill()
            web.wait(10)


def test_web_refuses_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [*CLI, "--home", str(tmp_path / "h"), "tui", "--web", "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert result.stderr.strip().startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    assert "Traceback" not in result.stderr
