"""The `--json` output of the commands that print read models, pinned byte for byte.

Every command runs in-process against the task center's seeded home (tests/tui/conftest.py:
fixed clock, fixed ids) and its stdout is compared with a file under
``tests/catalogsync/golden/``. A change to what scripts read then shows up as a diff of
those files, made on purpose and named in the CHANGELOG.

To regenerate the files after a deliberate change, run::

    CATALOGSYNC_UPDATE_GOLDEN=1 .venv/bin/python -m pytest -q tests/catalogsync/test_json_golden.py

and review ``git diff tests/catalogsync/golden/`` before committing it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from catalogsync import cli
from catalogsync.service import Catalogsync
from tests.tui.conftest import Seeded, seed_task_center

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("CATALOGSYNC_UPDATE_GOLDEN") == "1"

Invoke = Callable[..., str]


@pytest.fixture
def seeded_home(tmp_path: Path) -> tuple[Path, Seeded]:
    home = tmp_path / "home"
    service = Catalogsync.open(home=str(home))
    try:
        seeded = seed_task_center(service)
    finally:
        service.close()
    return home, seeded


@pytest.fixture
def invoke(seeded_home: tuple[Path, Seeded]) -> Invoke:
    home, _ = seeded_home

    def run(*args: str) -> str:
        try:
            result = CliRunner().invoke(cli.app, ["--home", str(home), *args])
        finally:
            service = cli._state.pop("service", None)
            if service is not None:
                service.close()
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        # The home is a fresh tmp_path: the only part of the output that is not fixed.
        return result.stdout.replace(str(home), "<HOME>")

    return run


def check(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.json"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing: run with CATALOGSYNC_UPDATE_GOLDEN=1 once"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, (
        f"`{name}` --json changed; if on purpose, regenerate with CATALOGSYNC_UPDATE_GOLDEN=1 "
        "and say what changed in the CHANGELOG"
    )


def test_status_json(invoke: Invoke) -> None:
    check("status", invoke("status", "--json"))


def test_jobs_list_json(invoke: Invoke) -> None:
    check("jobs_list", invoke("jobs", "list", "--json"))


@pytest.mark.parametrize("which", ["running", "failed", "paused", "completed", "queued_1"])
def test_jobs_show_json(invoke: Invoke, seeded_home: tuple[Path, Seeded], which: str) -> None:
    job_id = getattr(seeded_home[1], which)
    check(f"jobs_show_{which}", invoke("jobs", "show", str(job_id), "--json"))


def test_jobs_show_failed_items_json(invoke: Invoke, seeded_home: tuple[Path, Seeded]) -> None:
    check(
        "jobs_show_failed_all",
        invoke("jobs", "show", str(seeded_home[1].failed), "--failed", "--json"),
    )


def test_playlists_list_json(invoke: Invoke) -> None:
    check("playlists_list", invoke("playlists", "list", "--json"))


def test_command_results_json(invoke: Invoke, seeded_home: tuple[Path, Seeded]) -> None:
    """Commands without a live runner apply at once; each prints the job and the verdict."""
    seeded = seeded_home[1]
    check("jobs_pause", invoke("jobs", "pause", str(seeded.queued_1), "--json"))
    check("jobs_resume", invoke("jobs", "resume", str(seeded.queued_1), "--json"))
    check("jobs_retry", invoke("jobs", "retry", str(seeded.failed), "--json"))
    check("jobs_cancel", invoke("jobs", "cancel", str(seeded.queued_2), "--json"))


def test_submit_and_wanted_json(invoke: Invoke, seeded_home: tuple[Path, Seeded]) -> None:
    seeded = seeded_home[1]
    check(
        "jobs_submit",
        invoke("jobs", "submit", "sync_only", "--playlist", str(seeded.playlists[1]), "--json"),
    )
    check("playlists_wanted", invoke("playlists", "wanted", str(seeded.playlists[3]), "--json"))
