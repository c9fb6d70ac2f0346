"""What a shell user and a script expect of the CLI: version, completion, -q, colour, JSON
on every data command, documented exit codes, and a runner that is nudged, not polled."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from catalogsync import __version__, cli
from catalogsync.catalog.repository import BACKEND_KINDS
from catalogsync.cli_json import dump_json, iso_utc
from catalogsync.nudge import NudgeListener, send_nudge
from catalogsync.ops.jobdefs import JOB_TYPES, JobType
from catalogsync.service import Catalogsync
from tests.catalogsync.pipeline_support import wait_for, write_m3u
from tests.support.audio import mp3_body

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
DB_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
COLOUR = re.compile(r"\x1b\[(?:3[0-7]|38;|9[0-7])")


def cli_process(
    home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m catalogsync --home HOME ...` as a whole process."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "catalogsync", "--home", str(home), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        check=False,
    )


@pytest.fixture
def invoke(tmp_path: Path):
    home = tmp_path / "home"

    def run(*args: str) -> tuple[int, str, str]:
        try:
            result = CliRunner().invoke(cli.app, ["--home", str(home), *args])
        finally:
            service = cli._state.pop("service", None)
            if service is not None:
                service.close()
        return result.exit_code, result.stdout, result.stderr

    run.home = home  # type: ignore[attr-defined]
    return run


# -- version, python -m, help ----------------------------------------------------------


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_flag_as_python_m(tmp_path: Path, flag: str) -> None:
    done = cli_process(tmp_path, flag)
    assert (done.returncode, done.stdout) == (0, f"catalogsync {__version__}\n")


def test_version_is_single_sourced_from_the_package() -> None:
    from importlib.metadata import version

    assert version("catalogsync") == __version__


def test_help_names_the_musicdl_floor_and_its_licence(tmp_path: Path) -> None:
    done = cli_process(tmp_path, "--help", env={"COLUMNS": "200"})
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "catalogsync[musicdl]" in text and "musicdl >= 2.10" in text
    assert "PolyForm Noncommercial" in text


# -- completion and choices --------------------------------------------------------------


def test_show_completion_prints_a_script_for_the_shell(tmp_path: Path) -> None:
    done = cli_process(tmp_path, "--show-completion", "bash")
    assert done.returncode == 0, done.stderr
    assert "_CATALOGSYNC_COMPLETE" in done.stdout and "complete " in done.stdout


def _complete(tmp_path: Path, words: str) -> list[str]:
    env = {
        "_CATALOGSYNC_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1),
    }
    done = subprocess.run(
        [sys.executable, "-m", "catalogsync"],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_completion_offers_job_types_and_backend_kinds(tmp_path: Path) -> None:
    assert set(_complete(tmp_path, "catalogsync jobs submit ")) == set(JOB_TYPES)
    assert set(_complete(tmp_path, "catalogsync jobs submit sync_")) == {
        "sync_only",
        "sync_download",
    }
    assert set(_complete(tmp_path, "catalogsync backends add nas --kind ")) == set(BACKEND_KINDS)
    assert set(_complete(tmp_path, "catalogsync playlists policy 1 ")) == {"add", "mirror"}


def test_the_enums_are_the_engine_s_lists(invoke) -> None:
    assert tuple(t.value for t in JobType) == JOB_TYPES
    assert tuple(k.value for k in cli.BackendKind) == BACKEND_KINDS
    code, _, err = invoke("playlists", "policy", "1", "delete")
    assert code == 2 and "delete" in err, "a policy outside the enum is a usage error"


def test_job_types_are_listed_in_help_and_a_wrong_one_is_a_usage_error(invoke) -> None:
    code, out, _ = invoke("jobs", "submit", "--help")
    assert code == 0 and all(t in out for t in JOB_TYPES)
    code, _, err = invoke("jobs", "submit", "teleport")
    assert code == 2 and "teleport" in err


# -- quiet and colour ----------------------------------------------------------------------


def test_quiet_prints_errors_only_but_still_prints_json(invoke) -> None:
    code, out, err = invoke("-q", "jobs", "submit", "download_only")
    assert (code, out, err) == (0, "", "")
    code, out, _ = invoke("-q", "jobs", "list", "--json")
    assert code == 0 and json.loads(out)["jobs"][0]["id"] == 1
    code, out, err = invoke("-q", "jobs", "show", "42")
    assert code == 1 and out == "" and err.startswith("error: job 42")


def test_quiet_wait_with_json_prints_the_job_and_no_progress(invoke) -> None:
    code, out, err = invoke("-q", "jobs", "submit", "sync_only", "--wait", "--json")
    assert code == 0 and json.loads(out)["job"]["status"] == "completed"
    assert err == ""
    code, _, err = invoke("-q", "jobs", "show", "42", "--json")
    assert code == 1 and err.startswith("error: job 42"), "errors still print after -q"


def test_quiet_and_verbose_together_are_a_usage_error(invoke) -> None:
    assert invoke("-q", "-v", "status")[0] == 2


def test_colour_follows_no_color_and_the_flag(tmp_path: Path) -> None:
    home = tmp_path / "h"
    cli_process(home, "jobs", "submit", "download_only")
    forced = {"FORCE_COLOR": "1", "COLUMNS": "120"}
    assert COLOUR.search(cli_process(home, "jobs", "list", env=forced).stdout), "baseline"
    plain = cli_process(home, "jobs", "list", env={**forced, "NO_COLOR": "1"})
    assert plain.returncode == 0 and "queued" in plain.stdout
    assert not COLOUR.search(plain.stdout)
    flag = cli_process(home, "--no-color", "jobs", "list", env=forced)
    assert flag.returncode == 0 and not COLOUR.search(flag.stdout)


# -- JSON on every data command -----------------------------------------------------------

# Commands that print no data (they run something); every other command takes --json.
NO_DATA = {
    "run": "the headless runner: journal lines on stderr",
    "tui": "the task center itself",
    "demo": "runs the demo; its data is in status/jobs --json",
    "service unit": "prints the systemd unit file itself: the text is the data",
    "service install": "writes the unit file and says where",
}


def _leaf_commands() -> dict[str, Any]:
    found: dict[str, Any] = {}

    def walk(command: Any, path: tuple[str, ...]) -> None:
        subcommands = getattr(command, "commands", None)  # a group (typer vendors click)
        if isinstance(subcommands, dict):
            for name, sub in subcommands.items():
                walk(sub, (*path, name))
        else:
            found[" ".join(path)] = command

    walk(typer.main.get_command(cli.app), ())
    return found


def _examples(tmp_path: Path, song_url: str = "http://127.0.0.1:9/a.mp3") -> dict[str, Any]:
    """An invocation (args, expected exit code) of every data command, in a working order."""
    playlist = write_m3u(tmp_path / "p.m3u", [("A", "S", song_url)], name="P")
    share = tmp_path / "share"
    share.mkdir(exist_ok=True)
    return {
        "version": [(["version"], 0)],
        "init": [(["init"], 0)],
        "status": [(["status"], 0)],
        "playlists add": [(["playlists", "add", str(playlist)], 0)],
        "playlists list": [(["playlists", "list"], 0)],
        "playlists wanted": [(["playlists", "wanted", "1"], 0)],
        "playlists unwanted": [(["playlists", "unwanted", "1"], 0)],
        "playlists policy": [(["playlists", "policy", "1", "mirror"], 0)],
        "playlists plan": [(["playlists", "plan", "1"], 0)],
        "jobs submit": [
            (["jobs", "submit", "download_only"], 0),
            # Job 2 runs to its end (job 1 too): its only song answers 404, so the job
            # failed (exit 1; a job whose every song failed is `failed`, issue 12).
            (["playlists", "wanted", "1"], 0),
            (["jobs", "submit", "sync_download", "--wait"], 1),
            (["jobs", "submit", "download_only"], 0),  # job 3 stays queued: no runner
        ],
        "jobs list": [(["jobs", "list"], 0)],
        "jobs show": [(["jobs", "show", "2"], 0)],
        "jobs retry": [(["jobs", "retry", "2"], 0)],
        "jobs pause": [(["jobs", "pause", "3"], 0)],
        "jobs resume": [(["jobs", "resume", "3"], 0)],
        "jobs cancel": [(["jobs", "cancel", "3"], 0)],
        "backends add": [
            (["backends", "add", "nas", "--kind", "local", "--target", str(share)], 0)
        ],
        "backends list": [(["backends", "list"], 0)],
        "backends test": [(["backends", "test", "nas"], 0)],
        "library verify": [(["library", "verify"], 0)],
        "library reorganize": [(["library", "reorganize", "--dry-run"], 0)],
        "library relocate": [(["library", "relocate", str(tmp_path / "moved-library")], 0)],
        "schedules list": [(["schedules", "list"], 0)],
    }


def _check_timestamps(data: Any, where: str) -> int:
    """Every *_at string is ISO 8601 UTC with Z, and no database-style time is left."""
    seen = 0
    if isinstance(data, dict):
        for key, value in data.items():
            if key.endswith("_at") and isinstance(value, str):
                assert ISO_Z.match(value), f"{where}: {key} = {value!r}"
                seen += 1
            seen += _check_timestamps(value, f"{where}.{key}")
    elif isinstance(data, list):
        for n, value in enumerate(data):
            seen += _check_timestamps(value, f"{where}[{n}]")
    elif isinstance(data, str):
        assert not DB_TIME.match(data), f"{where}: a timestamp without a zone: {data!r}"
    return seen


def test_every_data_command_takes_json(tmp_path: Path) -> None:
    """Walks the whole typer app, so a command another branch adds is covered or flagged."""
    examples = _examples(tmp_path)
    for path, command in _leaf_commands().items():
        if path in NO_DATA:
            continue
        options = {opt for param in command.params for opt in getattr(param, "opts", [])}
        assert "--json" in options, f"`catalogsync {path}` prints data but has no --json"
        assert path in examples, (
            f"`catalogsync {path}` has no example in this test: add one to _examples "
            "(and its shape to docs/json.md), or list it in NO_DATA with a reason"
        )


def test_every_data_command_prints_one_json_object_with_utc_timestamps(
    invoke, tmp_path: Path, http_server
) -> None:
    examples = _examples(tmp_path, http_server.route("/gone.mp3", status=404))
    timestamps = 0
    for path, runs in examples.items():
        for args, expected in runs:
            code, out, err = invoke(*args, "--json")
            assert code == expected, f"{path}: exit {code}: {err}"
            data = json.loads(out)
            assert isinstance(data, dict), f"{path}: the top level is an object"
            timestamps += _check_timestamps(data, path)
    assert timestamps > 10, "the examples carry timestamps to check"


def test_the_json_boundary_converts_by_key_only() -> None:
    assert iso_utc("2026-12-01 16:12:18") == "2026-12-01T16:12:18Z"
    assert iso_utc("2026-12-01 16:12:18.250") == "2026-12-01T16:12:18.250Z"
    assert iso_utc("2026-12-01T16:12:18Z") == "2026-12-01T16:12:18Z"
    assert iso_utc("never") == "never"
    data = json.loads(
        dump_json(
            {
                "created_at": "2026-12-01 16:12:18",
                "ended_at": None,
                "name": "2026-12-01 16:12:18",
                "at": 12.5,
            }
        )
    )
    assert data == {
        "created_at": "2026-12-01T16:12:18Z",
        "ended_at": None,
        "name": "2026-12-01 16:12:18",
        "at": 12.5,
    }


def test_plain_tables_show_local_time(tmp_path: Path) -> None:
    home = tmp_path / "h"
    cli_process(home, "jobs", "submit", "download_only")
    service = Catalogsync.open(home=str(home))
    try:
        stored = service.job_detail(1).events[0].created_at
    finally:
        service.close()
    at = datetime.strptime(stored[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    # JST-9 is a POSIX TZ string (nine hours east of UTC): no tz database needed.
    shown = cli_process(home, "jobs", "show", "1", env={"TZ": "JST-9", "COLUMNS": "150"})
    expected = datetime.fromtimestamp(at.timestamp() + 9 * 3600, UTC)
    assert expected.strftime("%Y-%m-%d %H:%M:%S") in shown.stdout
    listed = cli_process(home, "jobs", "show", "1", "--json", env={"TZ": "JST-9"})
    assert json.loads(listed.stdout)["events"][0]["created_at"] == iso_utc(stored)


# -- exit codes of jobs submit --wait -------------------------------------------------------


def test_wait_exits_3_when_some_items_failed(invoke, tmp_path: Path, http_server) -> None:
    good = http_server.route("/good.mp3", body=mp3_body(30_000, seed=1))
    gone = http_server.route("/gone.mp3", status=404)
    invoke(
        "playlists",
        "add",
        str(write_m3u(tmp_path / "m.m3u", [("A", "Good", good), ("A", "Gone", gone)])),
    )
    code, out, _ = invoke("jobs", "submit", "sync_download", "--wait", "--json")
    assert code == 3
    assert json.loads(out)["job"]["status"] == "completed_with_errors"


def test_wait_exits_1_when_the_job_failed(invoke, tmp_path: Path, http_server) -> None:
    gone = http_server.route("/gone.mp3", status=404)
    invoke("playlists", "add", str(write_m3u(tmp_path / "g.m3u", [("A", "Gone", gone)])))
    assert invoke("jobs", "submit", "sync_only", "--wait")[0] == 0
    code, out, _ = invoke("jobs", "submit", "download_only", "--wait", "--json")
    assert code == 1
    assert json.loads(out)["job"]["status"] == "failed"


def _slow_waiting_job(tmp_path: Path, http_server) -> tuple[Path, subprocess.Popen[str]]:
    """`jobs submit sync_download --wait` in its own process, on a song that takes ~10 s."""
    home = tmp_path / "h"
    slow = http_server.route("/slow.mp3", body=mp3_body(400_000, seed=3), rate_bps=40_000)
    assert (
        cli_process(
            home, "playlists", "add", str(write_m3u(tmp_path / "s.m3u", [("A", "Slow", slow)]))
        ).returncode
        == 0
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "catalogsync",
            "--home",
            str(home),
            "jobs",
            "submit",
            "sync_download",
            "--wait",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    service = Catalogsync.open(home=str(home))
    try:

        def downloading() -> bool:
            detail = service.job_detail(1) if service.repository.get_job(1) else None
            return bool(detail) and any(
                s.stage_type == "download" and s.status == "running" for s in detail.stages
            )

        assert wait_for(downloading, timeout=60), "the job never started downloading"
    finally:
        service.close()
    return home, proc


def test_wait_exits_4_when_the_job_is_canceled_meanwhile(tmp_path: Path, http_server) -> None:
    home, proc = _slow_waiting_job(tmp_path, http_server)
    try:
        canceled = cli_process(home, "jobs", "cancel", "1")
        assert canceled.returncode == 0, canceled.stderr
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 4, err


def test_wait_exits_130_on_ctrl_c(tmp_path: Path, http_server) -> None:
    _, proc = _slow_waiting_job(tmp_path, http_server)
    try:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err


# -- nudges and waiting on the database -------------------------------------------------------


def test_a_nudge_reaches_the_listening_runner(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    heard = threading.Event()
    listener = NudgeListener(db, heard.set)
    assert listener.start()
    try:
        assert send_nudge(db)
        assert heard.wait(10)
    finally:
        listener.stop()
    assert not send_nudge(db), "nobody listens once the runner stopped"


def test_a_second_listener_on_one_database_is_refused_cleanly(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    first = NudgeListener(db, lambda: None)
    assert first.start()
    try:
        assert not NudgeListener(db, lambda: None).start()
    finally:
        first.stop()
    again = NudgeListener(db, lambda: None)
    assert again.start(), "the address is free again after stop()"
    again.stop()


def test_a_live_runner_in_another_process_is_nudged_by_submit(tmp_path: Path) -> None:
    """`catalogsync run` holds the lease; a submit from another process is picked up."""
    home = tmp_path / "h"
    assert cli_process(home, "init").returncode == 0
    runner = subprocess.Popen(
        [sys.executable, "-m", "catalogsync", "--home", str(home), "-q", "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    service = Catalogsync.open(home=str(home))
    try:
        assert wait_for(lambda: service.runner_holder() is not None, timeout=60)
        done = cli_process(home, "jobs", "submit", "sync_only", "--wait", "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["job"]["status"] == "completed"
        assert "following the runner" in done.stderr
    finally:
        service.close()
        runner.send_signal(signal.SIGTERM)
        try:
            runner.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            runner.kill()
            runner.communicate()
    assert runner.returncode == 0


def test_wait_for_change_wakes_on_another_connection_s_commit(tmp_path: Path) -> None:
    service = Catalogsync.open(home=str(tmp_path / "h"))
    other = Catalogsync.open(home=str(tmp_path / "h"))
    try:
        assert service.wait_for_change(0.05) is False
        writer = threading.Thread(target=lambda: other.submit_job("sync_only"))
        writer.start()
        assert service.wait_for_change(30) is True
        writer.join(30)
    finally:
        other.close()
        service.close()


def test_wait_for_change_wakes_on_our_own_runner_s_events(tmp_path: Path) -> None:
    """With the runner in this process, its events wake the waiter; the caller's own
    ``on_event`` still gets every one of them."""
    service = Catalogsync.open(home=str(tmp_path / "h"))
    seen: list[str] = []
    try:
        assert service.start_runner_thread(on_event=lambda kind, _data: seen.append(kind))
        job = service.submit_job("sync_only")
        for _ in range(200):  # bounded: each wait ends at an event or its timeout
            # The event comes just after the status is committed: wait for both.
            if service.job_statuses([job.id])[job.id].is_finished and "job_finished" in seen:
                break
            service.wait_for_change(30)
        assert service.job_statuses([job.id])[job.id] == "completed"
        assert "job_started" in seen and "job_finished" in seen
    finally:
        service.close()


def test_a_read_only_command_writes_nothing_to_the_database(invoke) -> None:
    """Opening an up-to-date database commits no change, so `status` never checkpoints."""
    import sqlite3

    assert invoke("init")[0] == 0
    watcher = sqlite3.connect(invoke.home / "catalogsync.db")
    try:
        before = watcher.execute("PRAGMA data_version").fetchone()[0]
        assert invoke("status", "--json")[0] == 0
        assert invoke("jobs", "list")[0] == 0
        assert watcher.execute("PRAGMA data_version").fetchone()[0] == before
        assert invoke("jobs", "submit", "sync_only")[0] == 0
        assert watcher.execute("PRAGMA data_version").fetchone()[0] != before, "baseline"
    finally:
        watcher.close()
