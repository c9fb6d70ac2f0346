"""The fault matrix: every bad input and fault gives one line, a known exit, no hang.

Each case runs the real command line in a subprocess against a real home folder and
asserts the exact line on stderr, the exit code, and that nothing was recorded or
written outside the library. Waits are bounded (subprocess timeouts, polling).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalogsync.config_schema import SCHEMA
from catalogsync.db import SCHEMA_VERSION
from catalogsync.errors import CatalogsyncError
from tests.catalogsync.pipeline_support import wait_for, write_m3u
from tests.support.audio import mp3_body
from tests.support.httpserver import Behaviour, LocalServer

TIMEOUT = 60  # seconds any one command may take before the test calls it a hang


def cli(home: Path, *args: str, timeout: float = TIMEOUT, env: dict[str, str] | None = None):
    """Run `catalogsync --home HOME ARGS` in a subprocess: (exit code, stdout, stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", "catalogsync.cli", "--home", str(home), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    return done.returncode, done.stdout, done.stderr


def one_line(stderr: str) -> str:
    """The single line a failure prints (and the proof that there is only one)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def _init(home: Path) -> None:
    code, _, err = cli(home, "init")
    assert code == 0, err


# -- config.toml -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[downlaod]\nworkers = 3\n", ":1: unknown table [downlaod] (did you mean [download]?)"),
        (
            "[download]\nwrokers = 8\n",
            ":2: unknown key wrokers in [download] (did you mean workers?)",
        ),
        (
            "[download]\nworkers = 100000000000000000\n",
            ":2: [download] workers must be an integer from 1 to 64, got 100000000000000000",
        ),
        (
            "[download]\nprocesses = 'many'\n",
            ":2: [download] processes must be \"auto\" or an integer from 1 to 64, got 'many'",
        ),
        (
            "[download]\nprocesses = 0\n",
            ':2: [download] processes must be "auto" or an integer from 1 to 64, got 0',
        ),
        (
            "[download]\nprocesses = true\n",
            ':2: [download] processes must be "auto" or an integer from 1 to 64, got true',
        ),
        (
            "[[sources]]\nname = 'x'\nkind = 'directry'\npath = '/srv'\n",
            ":3: [[sources]] #1 kind must be one of 'manual_file', 'directory', "
            "'playlist_square', got 'directry' (did you mean 'directory'?)",
        ),
        ("library = 42\n", ":1: library must be a folder path, got 42"),
        (
            "[runner]\ngeneral_lane_concurrency = 0\n",
            ":2: [runner] general_lane_concurrency must be an integer from 1 to 64, got 0",
        ),
        (
            "[upload]\nreserve_mb = 100\n",
            ":2: reserve_mb is not a setting of [upload]: free space is kept on the library disk "
            "by [download] reserve_mb",
        ),
        (
            "[upload]\nprocesses = 2\n",
            ":2: processes is not a setting of [upload]: uploads always run in the runner "
            "process; only [download] takes processes",
        ),
        ("[tui.keys]\nquit = 3\n", ":2: [tui.keys] quit must be a string, got 3"),
        (
            "[platforms.example]\njitter = 2\n",
            ":2: [platforms.example] jitter must be a number from 0 to 1, got 2",
        ),
        (
            "[[schedules]]\nname = 'n'\njob = 'sync_everything'\n",
            ":3: [[schedules]] #1 job must be one of 'catalog_sync', 'collect_only', 'sync_only', "
            "'sync_download', 'download_only', 'upload_only', 'download_upload', "
            "'library_verify', got 'sync_everything'",
        ),
        ("[download\n", ":1: Expected ']' at the end of a table declaration (column 10)"),
    ],
)
def test_a_bad_config_is_one_line_naming_file_and_line(home: Path, text: str, message: str):
    home.mkdir()
    config = home / "config.toml"
    config.write_text(text, encoding="utf-8")
    code, out, err = cli(home, "status")
    assert (code, out) == (1, "")
    assert one_line(err) == f"error: {config}{message}"
    assert sorted(p.name for p in home.iterdir()) == ["config.toml"], "nothing else was made"


def test_every_table_the_design_names_is_accepted(home: Path):
    home.mkdir()
    (home / "config.toml").write_text(
        """
library = "lib"
[runner]
download_lane_concurrency = 1
[download]
workers = 64
stall_seconds = 30
[[download.limits]]
hours = "08:00-18:00"
max_bytes_per_sec = 1000000
[upload]
workers = 2
[[sources]]
name = "exports"
kind = "directory"
path = "lists"
[sources.options]
anything = "goes"
[[schedules]]
name = "nightly"
cron = "0 3 * * *"
job = "catalog_sync"
playlists = [1, 2]
catch_up = true
[platforms.example]
requests_per_minute = 30
jitter = 0.2
[notify]
urls = ["json://127.0.0.1:9/"]
on = ["failed"]
[log]
max_bytes = 0
[tui]
refresh_seconds = 1.0
[tui.keys]
pause_job = "p"
""",
        encoding="utf-8",
    )
    code, _, err = cli(home, "status", "--json")
    assert code == 0, err


def test_a_config_that_is_a_fifo_is_refused_at_once(home: Path):
    home.mkdir()
    os.mkfifo(home / "config.toml")
    code, _, err = cli(home, "status", timeout=20)
    assert code == 1
    assert one_line(err) == (
        f"error: {home / 'config.toml'}: the config file is a FIFO (named pipe), not a regular file"
    )


# -- the database ------------------------------------------------------------------


def _existing_db(home: Path) -> Path:
    _init(home)
    return home / "catalogsync.db"


def test_a_garbage_database_is_one_line_and_left_untouched(home: Path):
    home.mkdir()
    db = home / "catalogsync.db"
    db.write_bytes(b"this is not sqlite at all\n" * 100)
    before = db.read_bytes()
    code, _, err = cli(home, "status")
    assert code == 1
    assert one_line(err) == (
        f"error: {db}: not an SQLite database (file is not a database) (point --db at the "
        "right file, or move this one away and run `catalogsync init`)"
    )
    assert db.read_bytes() == before


@pytest.mark.parametrize("how", ["truncated", "overwritten pages"])
def test_a_corrupt_database_is_one_line(home: Path, how: str):
    db = _existing_db(home)
    data = db.read_bytes()
    if how == "truncated":
        db.write_bytes(data[:3000])
    else:
        db.write_bytes(data[: 4096 * 2] + b"\xff" * (4096 * 3) + data[4096 * 5 :])
    code, _, err = cli(home, "status")
    assert code == 1
    assert one_line(err) == (
        f"error: {db}: the database is corrupt (database disk image is malformed) (stop "
        f"catalogsync and restore a backup, or salvage it with: sqlite3 {db} .recover)"
    )


def test_a_database_missing_a_table_is_one_line(home: Path):
    db = _existing_db(home)
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE job_runs")
    code, _, err = cli(home, "jobs", "list")
    assert code == 1
    assert one_line(err) == (
        f"error: {db}: not a catalogsync database of this version (no such table: job_runs) "
        "(point --db at the right file, or move this one away and run `catalogsync init`)"
    )


def test_a_database_stamped_current_without_a_table_is_refused_at_open(home: Path):
    db = _existing_db(home)
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE library_summary")
    code, _, err = cli(home, "status")
    assert code == 1
    assert one_line(err) == (
        f"error: {db}: not a catalogsync database of this version: no table library_summary "
        "(point --db at the right file, or move this one away and run `catalogsync init`)"
    )


@pytest.mark.parametrize("kind", ["directory", "fifo", "symlink loop"])
def test_a_database_path_that_is_no_file_is_refused_at_once(tmp_path: Path, home: Path, kind):
    db = tmp_path / "odd.db"
    if kind == "directory":
        db.mkdir()
        what = (
            "the database path is a directory, not a database file (point --db at an "
            "SQLite file, or at a new path to create one)"
        )
    elif kind == "fifo":
        os.mkfifo(db)
        what = (
            "the database path is a FIFO (named pipe), not a database file (point --db "
            "at an SQLite file, or at a new path to create one)"
        )
    else:
        db.symlink_to(db)
        what = (
            "cannot open the database: Too many levels of symbolic links (check that it "
            "exists and this user can write it)"
        )
    code, _, err = cli(home, "--db", str(db), "status", timeout=20)
    assert code == 1
    assert one_line(err) == f"error: {db}: {what}"


def test_verbose_keeps_the_traceback(home: Path):
    home.mkdir()
    (home / "catalogsync.db").write_bytes(b"garbage" * 100)
    code, _, err = cli(home, "-v", "status")
    assert code == 1
    assert "Traceback" in err and "sqlite3.DatabaseError" in err
    assert err.rstrip().splitlines()[-1].startswith("error: ")


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of our own (read-only and full disks need one); skip without root."""
    point = tmp_path / "disk"
    point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(point)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


def test_a_read_only_home_is_one_line(tmpfs: Path):
    _init(tmpfs)
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    for args in (("status",), ("playlists", "list"), ("jobs", "list")):
        code, _, err = cli(tmpfs, *args)
        assert code == 1
        assert one_line(err) == (
            f"error: {tmpfs / 'catalogsync.db'}: the database (or its folder) is read-only "
            "(make the file and its folder writable for this user, or use --db elsewhere)"
        )


def test_a_full_database_disk_is_one_line_and_records_nothing(tmpfs: Path, tmp_path: Path):
    _init(tmpfs)
    playlist = write_m3u(tmp_path / "p.m3u", [("A", "S", "http://127.0.0.1:9/a.mp3")])
    with open(tmpfs / "filler", "wb") as fh, pytest.raises(OSError):
        for _ in range(200):  # 12.5 MiB: more than the 4 MiB disk holds
            fh.write(b"\0" * 65536)
            fh.flush()
    code, _, err = cli(tmpfs, "playlists", "add", str(playlist))
    assert code == 1
    assert one_line(err) == (
        f"error: {tmpfs / 'catalogsync.db'}: the disk holding the database is full (free "
        "some space on it, then run the command again)"
    )
    (tmpfs / "filler").unlink()
    code, out, _ = cli(tmpfs, "playlists", "list", "--json")
    assert code == 0 and json.loads(out)["playlists"] == []


def test_an_unwritable_library_is_one_line(tmp_path: Path, home: Path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = cli(home, "init", "--library", str(blocker / "music"))
    assert code == 1
    assert one_line(err) == (
        f"error: {blocker / 'music'}: cannot create the library folder: Not a directory "
        "(check that it exists and this user can write it)"
    )


def test_a_database_fault_mid_run_stops_the_runner_non_zero(
    tmp_path: Path, home: Path, http_server: LocalServer
):
    """A table vanishing under a running runner: one line, exit 1, no endless loop."""
    _init(home)
    url = http_server.route("/slow.mp3", body=mp3_body(400_000), rate_bps=100_000)
    playlist = write_m3u(tmp_path / "p.m3u", [("A", "Slow", url)])
    assert cli(home, "playlists", "add", str(playlist))[0] == 0
    assert cli(home, "jobs", "submit", "sync_download")[0] == 0
    runner = subprocess.Popen(
        [sys.executable, "-m", "catalogsync.cli", "--home", str(home), "run", "--until-idle"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        db = home / "catalogsync.db"

        def downloading() -> bool:
            with sqlite3.connect(db, timeout=10) as conn:
                row = conn.execute("SELECT MAX(downloaded_bytes) FROM job_workers").fetchone()
            return bool(row and row[0])

        assert wait_for(downloading, timeout=30)
        with sqlite3.connect(db, timeout=10) as conn:
            conn.execute("DROP TABLE job_events")
        _, err = runner.communicate(timeout=TIMEOUT)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait(10)
    assert runner.returncode == 1
    last = err.strip().splitlines()[-1]
    assert last == (
        f"error: {db}: not a catalogsync database of this version (no such table: "
        "job_events) (point --db at the right file, or move this one away and run "
        "`catalogsync init`)"
    )
    assert "Traceback" not in err


# -- playlists -----------------------------------------------------------------------


def test_a_fifo_playlist_is_refused_at_once(tmp_path: Path, home: Path):
    _init(home)
    fifo = tmp_path / "fifo.m3u"
    os.mkfifo(fifo)
    code, _, err = cli(home, "playlists", "add", str(fifo), timeout=20)
    assert code == 1
    assert one_line(err) == f"error: {fifo}: is a FIFO (named pipe), not a playlist file"


def test_a_directory_playlist_is_refused(tmp_path: Path, home: Path):
    _init(home)
    folder = tmp_path / "folder.pls"
    folder.mkdir()
    code, _, err = cli(home, "playlists", "add", str(folder))
    assert code == 1
    assert one_line(err) == f"error: {folder}: is a directory, not a playlist file"


def test_a_playlist_symlink_to_another_file_is_not_echoed(tmp_path: Path, home: Path):
    _init(home)
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$hunter2hash:19000:0:99999:7:::\n")
    link = tmp_path / "list.m3u"
    link.symlink_to(secret)
    code, _, err = cli(home, "playlists", "add", str(link))
    assert code == 1
    assert one_line(err) == (
        f"error: {link}: is a symlink to {secret}, which is not a playlist file "
        "(expected .m3u, .m3u8, .pls, .json or .csv)"
    )
    assert "hunter2" not in err


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        (
            "le.m3u",
            "#EXTM3U\n/a.mp3\n".encode("utf-16-le"),
            ":1: the file is UTF-16 (little-endian, no BOM); save the playlist as UTF-8",
        ),
        (
            "be.m3u",
            "#EXTM3U\n/a.mp3\n".encode("utf-16-be"),
            ":1: the file is UTF-16 (big-endian, no BOM); save the playlist as UTF-8",
        ),
        (
            "bom.m3u",
            "#EXTM3U\n/a.mp3\n".encode("utf-16"),
            ":1: the file is UTF-16 (little-endian, with BOM); save the playlist as UTF-8",
        ),
        (
            "q.csv",
            b'url,title\nhttp://127.0.0.1:9/a.mp3,A\n"http://127.0.0.1:9/b.mp3,B\n',
            ":3: malformed CSV: a quoted field is never closed",
        ),
        (
            "n.json",
            b'{"tracks": [{"url": "http://127.0.0.1:9/a.mp3", "size": ' + b"9" * 5000 + b"}]}",
            ":1: invalid JSON: a number with 5000 digits is too long",
        ),
    ],
)
def test_honest_playlist_format_messages(tmp_path: Path, home: Path, name, data, message):
    _init(home)
    path = tmp_path / name
    path.write_bytes(data)
    code, _, err = cli(home, "playlists", "add", str(path))
    assert code == 1
    assert one_line(err) == f"error: {path}{message}"
    assert "set_int_max_str_digits" not in err
    code, out, _ = cli(home, "playlists", "list", "--json")
    assert json.loads(out)["playlists"] == []


# -- secrets -------------------------------------------------------------------------


def test_a_backend_url_with_a_password_is_refused_masked(home: Path):
    _init(home)
    code, _, err = cli(
        home,
        "backends",
        "add",
        "nas",
        "--kind",
        "webdav",
        "--target",
        "http://alice:PW123@127.0.0.1:9/music",
    )
    assert code == 1
    assert one_line(err) == (
        "error: --target http://alice:***@127.0.0.1:9/music: a password in the URL would be "
        "stored in the database; give the user with -o username=NAME and the password with "
        "-o password_env=VARIABLE (the name of an environment variable you export)"
    )
    assert "PW123" not in err
    code, out, _ = cli(home, "backends", "list", "--json")
    assert [b["name"] for b in json.loads(out)["backends"]] == ["library"]


@pytest.mark.parametrize(
    "pair",
    [
        "password =PW123",
        "passwd=PW123",
        "PassWord=PW123",
        "api_key=PW123",
        "Token=PW123",
        "webdav_secret=PW123",
    ],
)
def test_secret_options_are_refused_whatever_their_case(home: Path, pair: str):
    _init(home)
    code, _, err = cli(
        home,
        "backends",
        "add",
        "nas",
        "--kind",
        "webdav",
        "--target",
        "http://127.0.0.1:9/music",
        "-o",
        pair,
    )
    assert code == 1
    line = one_line(err)
    assert "PW123" not in line and "secrets never go on the command line" in line
    assert "_env=VARIABLE" in line


def test_an_env_option_is_accepted_whatever_its_case(home: Path):
    _init(home)
    code, _, err = cli(
        home,
        "backends",
        "add",
        "nas",
        "--kind",
        "webdav",
        "--target",
        "http://127.0.0.1:9/music",
        "-o",
        "PASSWORD_ENV=NAS_PW",
    )
    assert code == 0, err
    _, out, _ = cli(home, "backends", "list", "--json")
    nas = next(b for b in json.loads(out)["backends"] if b["name"] == "nas")
    assert nas["options"] == {"password_env": "NAS_PW"}


def test_playlist_url_credentials_work_but_are_never_shown(
    tmp_path: Path, home: Path, http_server: LocalServer
):
    _init(home)
    good = http_server.route("/good.mp3", body=mp3_body(20_000))
    bad = http_server.url("/missing.mp3")
    with_auth = [u.replace("http://", "http://bob:hunter2@") for u in (good, bad)]
    playlist = write_m3u(
        tmp_path / "p.m3u", [("A", "Good", with_auth[0]), ("B", "Gone", with_auth[1])]
    )
    assert cli(home, "playlists", "add", str(playlist))[0] == 0
    code, out, err = cli(home, "jobs", "submit", "sync_download", "--wait", "--json")
    job_id = json.loads(out)["job"]["id"]
    seen = [r for r in http_server.requests("/good.mp3")]
    assert seen and seen[0].headers.get("authorization", "").startswith("Basic ")
    outputs = [out, err]
    for args in (
        ("jobs", "show", str(job_id), "--json"),
        ("jobs", "show", str(job_id)),
        ("status", "--json"),
        ("jobs", "list", "--json"),
    ):
        code, shown, shown_err = cli(home, *args)
        assert code == 0, shown_err
        outputs += [shown, shown_err]
    everything = "\n".join(outputs)
    assert "hunter2" not in everything
    detail = json.loads(cli(home, "jobs", "show", str(job_id), "--json")[1])
    assert detail["failed_items"]["items"][0]["error"].count("bob:***@") == 1
    with sqlite3.connect(home / "catalogsync.db") as conn:
        stored = conn.execute("SELECT group_concat(message, ' ') FROM job_events").fetchone()[
            0
        ] + " ".join(r[0] or "" for r in conn.execute("SELECT last_error FROM job_items"))
    assert "hunter2" not in stored


# -- failures are visible ----------------------------------------------------------


def test_a_job_whose_songs_all_failed_is_failed_and_lists_them(
    tmp_path: Path, home: Path, http_server: LocalServer
):
    _init(home)
    entries = [("A", f"Gone {n:02}", http_server.url(f"/gone{n}.mp3")) for n in range(23)]
    playlist = write_m3u(tmp_path / "p.m3u", entries, name="Lost")
    assert cli(home, "playlists", "add", str(playlist))[0] == 0
    code, out, _ = cli(home, "jobs", "submit", "sync_download", "--wait", "--json")
    job = json.loads(out)["job"]
    assert job["status"] == "failed"
    code, out, _ = cli(home, "jobs", "show", str(job["id"]), "--json")
    failed = json.loads(out)["failed_items"]
    assert failed["total"] == 23 and len(failed["items"]) == 20
    first = failed["items"][0]
    assert (first["song"], first["playlist"], first["error_code"], first["stage_type"]) == (
        "Gone 00 / A",
        "Lost",
        "http_404",
        "download",
    )
    assert first["error"] == f"HTTP 404 from {http_server.url('/gone0.mp3')}"
    code, out, _ = cli(home, "jobs", "show", str(job["id"]), "--failed", "--json")
    assert len(json.loads(out)["failed_items"]["items"]) == 23
    code, out, _ = cli(home, "jobs", "show", str(job["id"]))
    assert "23 failed" in out and "and 3 more" in out and "http_404" in out


def test_a_command_rejected_by_the_live_runner_exits_1_with_its_reason(home: Path):
    from catalogsync.ops.models import CommandType
    from catalogsync.service import Catalogsync

    _init(home)
    service = Catalogsync.open(str(home))
    try:
        job_id = service.submit_job("collect_only").id
        service.make_runner()  # we hold the lease: the CLI sees a live runner
        service.repository.submit_command(job_id, CommandType.CANCEL, requested_by="test")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "catalogsync.cli",
                "--home",
                str(home),
                "jobs",
                "pause",
                str(job_id),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert wait_for(lambda: len(service.repository.list_pending_commands()) == 2, timeout=30)
        service.runner.apply_pending_commands()  # cancel applied, then pause rejected
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        service.close()
    assert proc.returncode == 1
    line = one_line(err)
    assert line == (
        f"error: the runner refused: cannot pause job {job_id}: it is canceled; only queued "
        "or running jobs can be paused"
    )


def test_a_command_the_live_runner_applies_prints_its_outcome(home: Path):
    from catalogsync.service import Catalogsync

    _init(home)
    service = Catalogsync.open(str(home))
    try:
        job_id = service.submit_job("collect_only").id
        service.make_runner()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "catalogsync.cli",
                "--home",
                str(home),
                "jobs",
                "pause",
                str(job_id),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert wait_for(lambda: len(service.repository.list_pending_commands()) == 1, timeout=30)
        service.runner.apply_pending_commands()
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        service.close()
    assert proc.returncode == 0, err
    assert "paused" in out


# -- stops, stalls and hangs -----------------------------------------------------------


def _start_runner(home: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "catalogsync.cli", "--home", str(home), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _worker_busy(home: Path) -> bool:
    """A download worker holds an item (it is in the transfer)."""
    with sqlite3.connect(home / "catalogsync.db", timeout=10) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM job_workers WHERE status = 'running' "
            "AND worker_name LIKE 'download-%' AND current_job_item_id IS NOT NULL"
        ).fetchone()
    return bool(row[0])


def _worker_bytes(home: Path) -> int:
    with sqlite3.connect(home / "catalogsync.db", timeout=10) as conn:
        row = conn.execute("SELECT MAX(downloaded_bytes) FROM job_workers").fetchone()
    return int(row[0] or 0)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_runner_stops_within_10_s_while_a_server_stalls(
    tmp_path: Path, home: Path, http_server: LocalServer, sig: signal.Signals
):
    _init(home)
    url = http_server.route(
        "/stall.mp3",
        Behaviour(
            body=mp3_body(500_000), stall_after=64 * 1024, stall_seconds=120, stall_times=None
        ),
    )
    playlist = write_m3u(tmp_path / "p.m3u", [("A", "Stall", url)])
    assert cli(home, "playlists", "add", str(playlist))[0] == 0
    assert cli(home, "jobs", "submit", "sync_download")[0] == 0
    runner = _start_runner(home)
    try:
        assert wait_for(lambda: _worker_busy(home), timeout=30)
        assert wait_for(lambda: len(http_server.requests("/stall.mp3")) >= 1, timeout=30)
        started = time.monotonic()
        runner.send_signal(sig)
        runner.wait(timeout=30)
        took = time.monotonic() - started
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait(10)
    assert took <= 10.0, f"the runner took {took:.1f} s to stop"
    assert runner.returncode == 0
    code, out, _ = cli(home, "jobs", "list", "--json")
    assert json.loads(out)["jobs"][0]["status"] == "queued"  # it resumes first next time


def test_a_playlist_replaced_by_a_fifo_fails_its_sync_without_hanging(tmp_path: Path, home: Path):
    _init(home)
    playlist = write_m3u(tmp_path / "p.m3u", [("A", "S", "http://127.0.0.1:9/a.mp3")])
    assert cli(home, "playlists", "add", str(playlist))[0] == 0
    playlist.unlink()
    os.mkfifo(playlist)
    assert cli(home, "jobs", "submit", "sync_only")[0] == 0
    code, _, err = cli(home, "run", "--until-idle", timeout=TIMEOUT)
    assert code == 0, err
    _, out, _ = cli(home, "jobs", "show", "1", "--json")
    detail = json.loads(out)
    assert detail["job"]["status"] == "failed"
    assert detail["failed_items"]["items"][0]["error"] == (
        f"{playlist}: is a FIFO (named pipe), not a playlist file"
    )


def test_a_stalled_song_fails_as_stalled_after_its_budget(
    tmp_path: Path, home: Path, http_server: LocalServer
):
    _init(home)
    with open(home / "config.toml", "a", encoding="utf-8") as fh:
        fh.write("\n")
    config = (home / "config.toml").read_text(encoding="utf-8")
    (home / "config.toml").write_text(
        config.replace("stall_seconds = 90", "stall_seconds = 5"), encoding="utf-8"
    )
    url = http_server.route(
        "/stall.mp3",
        Behaviour(
            body=mp3_body(300_000), stall_after=32 * 1024, stall_seconds=120, stall_times=None
        ),
    )
    playlist = write_m3u(tmp_path / "p.m3u", [("A", "Stall", url)])
    assert cli(home, "playlists", "add", str(playlist))[0] == 0
    code, out, _ = cli(home, "jobs", "submit", "sync_download", "--wait", "--json")
    job = json.loads(out)["job"]
    assert job["status"] == "failed"
    _, out, _ = cli(home, "jobs", "show", str(job["id"]), "--json")
    item = json.loads(out)["failed_items"]["items"][0]
    assert item["error_code"] == "stalled"
    assert item["error"] == (
        "stalled: the server sent nothing for 5 s in all ([download] stall_seconds = 5)"
    )
    assert not list((home / "library").rglob("*.mp3")), "nothing recorded as a song"


def test_the_worker_row_says_stalled_while_it_waits_to_retry(repo) -> None:
    from catalogsync.errors import TransferError
    from catalogsync.ops.progress import WorkerProgress

    job_id = repo.create_job("download_only", {})
    progress = WorkerProgress(repo, "download-1", job_id)
    progress.start("Song / Singer")
    progress.on_retry(TransferError("no data", code="timeout"), 3.6)
    row = repo.list_job_workers(job_id)[0]
    assert row["current_display_text"] == "stalled, retrying in 4 s: Song / Singer"
    progress.on_bytes(10, 100)
    row = repo.list_job_workers(job_id)[0]
    assert row["current_display_text"] == "Song / Singer"


# -- the library location ------------------------------------------------------------


def test_init_library_is_saved_and_other_commands_never_repoint_it(tmp_path: Path, home: Path):
    music = tmp_path / "music"
    code, out, err = cli(home, "init", "--library", str(music))
    assert code == 0, err
    assert f'library = "{music}"' in (home / "config.toml").read_text(encoding="utf-8")
    code, out, _ = cli(home, "backends", "list", "--json")
    assert json.loads(out)["backends"][0]["target"] == str(music)
    other = tmp_path / "elsewhere"
    code, _, err = cli(home, "--library", str(other), "status")
    assert code == 1
    assert one_line(err) == (
        f"error: --library names the library {other}, but the records point at {music} "
        f"(to move the library: catalogsync library relocate {other} [--move]; to keep it: "
        f'set library = "{music}" in {home / "config.toml"})'
    )
    code, out, _ = cli(home, "backends", "list", "--json")
    assert json.loads(out)["backends"][0]["target"] == str(music), "never re-pointed"
    assert not other.exists()


def test_a_config_root_that_differs_from_the_records_stops_commands(tmp_path: Path, home: Path):
    _init(home)
    config = home / "config.toml"
    moved = tmp_path / "moved"
    config.write_text(f'library = "{moved}"\n' + config.read_text(encoding="utf-8"))
    code, _, err = cli(home, "jobs", "list")
    assert code == 1
    assert one_line(err) == (
        f"error: {config} names the library {moved}, but the records point at "
        f"{home / 'library'} (to move the library: catalogsync library relocate {moved} "
        f'[--move]; to keep it: set library = "{home / "library"}" in {config})'
    )


def test_the_relocate_the_hint_names_mends_the_mismatch(tmp_path: Path, home: Path):
    _init(home)
    config = home / "config.toml"
    moved = tmp_path / "moved"
    config.write_text(f'library = "{moved}"\n' + config.read_text(encoding="utf-8"))
    assert cli(home, "jobs", "list")[0] == 1
    code, _, err = cli(home, "library", "relocate", str(moved))
    assert code == 0, err
    code, out, err = cli(home, "backends", "list", "--json")
    assert code == 0, err
    assert json.loads(out)["backends"][0]["target"] == str(moved)


def test_schema_version_is_current_after_init(home: Path):
    _init(home)
    with sqlite3.connect(home / "catalogsync.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


# -- a runner that lost its lease ---------------------------------------------------


def test_a_runner_that_lost_its_lease_writes_nothing_more_about_its_jobs(
    tmp_path: Path, http_server: LocalServer
):
    from catalogsync.ops.lease import LEASE_HEARTBEAT_SECONDS
    from catalogsync.service import Catalogsync

    home = tmp_path / "home"
    service = Catalogsync.open(str(home))
    try:
        url = http_server.route("/slow.mp3", body=mp3_body(2_000_000), rate_bps=100_000)
        playlist = write_m3u(tmp_path / "p.m3u", [("A", "Slow", url)])
        service.add_playlists([str(playlist)])
        job_id = service.submit_job("sync_download").id
        runner = service.make_runner()
        thread = threading.Thread(
            target=runner.run_forever, kwargs={"lease": service.lease}, daemon=True
        )
        thread.start()
        assert wait_for(lambda: _worker_bytes(home) > 0, timeout=30)
        with sqlite3.connect(home / "catalogsync.db", timeout=10) as conn:
            conn.execute(
                "UPDATE runner_lease SET owner = 'newcomer', pid = 1, heartbeat_epoch = ?",
                (time.time() + 3600,),
            )
        thread.join(timeout=LEASE_HEARTBEAT_SECONDS + 40)
        assert not thread.is_alive()
        events = [e["event_type"] for e in service.repository.list_events(job_id, limit=100)]
        assert "interrupted" not in events
        assert service.repository.get_job(job_id).status.value == "running"  # the newcomer's now
    finally:
        service.runner = None
        service.lease = None
        service.close()


# -- hypothesis: one line or a valid result, never a traceback ----------------------

_NAMES = sorted(
    set(SCHEMA.tables)
    | {k for t in SCHEMA.tables.values() for k in t.keys}
    | {"downlaod", "wrokers", "x", "library", "limits", "keys", "example"}
)
_VALUES = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.sampled_from(
        [
            "true",
            "false",
            '"text"',
            "'lit'",
            "1.5",
            "[1, 2]",
            '["a"]',
            "{a = 1}",
            "nan",
            "inf",
            "1979-05-27",
            '"""multi\nline"""',
            "9" * 5000,
        ]
    ),
    st.text(max_size=12),
)
_LINE = st.one_of(
    st.builds(lambda n: f"[{n}]", st.sampled_from(_NAMES)),
    st.builds(lambda n: f"[[{n}]]", st.sampled_from(_NAMES)),
    st.builds(lambda a, b: f"[{a}.{b}]", st.sampled_from(_NAMES), st.sampled_from(_NAMES)),
    st.builds(lambda k, v: f"{k} = {v}", st.sampled_from(_NAMES), _VALUES),
    st.text(max_size=20),
)


def _assert_one_line(exc: CatalogsyncError) -> None:
    text = str(exc)
    assert text and "\n" not in text.strip() and "Traceback" not in text


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(lines=st.lists(_LINE, max_size=8))
def test_hypothesis_config_is_one_line_error_or_settings(tmp_path_factory, lines):
    from catalogsync.config import Settings, load_settings

    home = tmp_path_factory.mktemp("cfg")
    (home / "config.toml").write_text("\n".join(lines), encoding="utf-8")
    try:
        settings_ = load_settings(str(home))
    except CatalogsyncError as exc:
        _assert_one_line(exc)
    else:
        assert isinstance(settings_, Settings)
        assert 1 <= settings_.download.workers <= 64


_ENTRY = st.one_of(
    st.sampled_from(
        [
            "http://127.0.0.1:9/a.mp3",
            "/abs/b.mp3",
            "rel/c.mp3",
            "file:///d.mp3",
            "ftp://x/e.mp3",
            "http://bob:pw@127.0.0.1:9/f.mp3",
            "",
            "\x00",
            "\ufeff",
        ]
    ),
    st.text(max_size=30),
)
_PIECE = st.one_of(
    _ENTRY,
    st.sampled_from(
        [
            "#EXTM3U",
            "#EXTINF:12,A - B",
            "#EXTINF:x",
            "#PLAYLIST:n",
            "[playlist]",
            "File1=",
            "Title1=t",
            "Length1=-1",
            "NumberOfEntries=3",
            "url,title",
            '"unterminated',
            '{"tracks": [',
            "]}",
            '{"url": 1}',
            "9" * 4500,
            ",,,",
        ]
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    fmt=st.sampled_from(["m3u", "pls", "json", "csv"]),
    pieces=st.lists(_PIECE, max_size=10),
    joiner=st.sampled_from(["\n", "\r\n", ",", ""]),
)
def test_hypothesis_playlists_are_one_line_error_or_tracks(fmt, pieces, joiner):
    from catalogsync.errors import PlaylistFormatError
    from catalogsync.providers.manifest import parse_manifest_text

    text = joiner.join(pieces)
    if fmt == "json" and pieces and pieces[0] == "list":
        text = json.dumps(pieces)
    try:
        content = parse_manifest_text(text, path=f"/tmp/list.{fmt}", fmt=fmt)
    except PlaylistFormatError as exc:
        _assert_one_line(exc)
        assert "set_int_max_str_digits" not in str(exc)
    else:
        assert all(track.remote_id for track in content.tracks)


# -- HTTP edges ---------------------------------------------------------------------


def test_bad_chunked_framing_is_bad_chunked_body(tmp_path: Path, http_server: LocalServer):
    from catalogsync.errors import TransferError
    from catalogsync.providers.base import DownloadSpec
    from catalogsync.transfer.http import HttpDownloader

    url = http_server.route("/bad.mp3", Behaviour(body=mp3_body(50_000), framing="bad_chunked"))
    with (
        HttpDownloader(max_attempts=2, backoff_base=0.01) as downloader,
        pytest.raises(TransferError) as info,
    ):
        downloader.download(DownloadSpec(url=url), tmp_path / "x.mp3")
    assert info.value.code == "bad_chunked_body"
    assert str(info.value) == (
        "bad chunked body: chunk size line 'zz-not-hex' is not hexadecimal "
        "(gave up after 2 requests)"
    )
    assert not (tmp_path / "x.mp3").exists()


def test_host_names_use_idna_2008():
    from catalogsync.transfer.wire import _parse

    assert _parse("http://straße.de/a.mp3").host == "xn--strae-oqa.de"  # 2003: strasse.de
    assert _parse("http://Bücher.example/a.mp3").host == "xn--bcher-kva.example"


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        (
            "https_proxy",
            "socks5://127.0.0.1:1080",
            "error: https_proxy=socks5://127.0.0.1:1080: only http:// proxies are supported, not "
            "socks5:// (unset https_proxy or point it at an http:// proxy)",
        ),
        (
            "ALL_PROXY",
            "https://bob:hunter2@127.0.0.1:3128",
            "error: ALL_PROXY=https://bob:***@127.0.0.1:3128: only http:// proxies are supported, "
            "not https:// (unset ALL_PROXY or point it at an http:// proxy)",
        ),
    ],
)
def test_an_unusable_proxy_is_refused_once_at_start(home: Path, variable, value, line):
    _init(home)
    env = {
        k: ""
        for k in (
            "http_proxy",
            "https_proxy",
            "all_proxy",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
        )
    }
    env[variable] = value
    code, _, err = cli(home, "run", "--until-idle", env=env)
    assert code == 1
    assert [x for x in err.splitlines() if x.strip()][-1] == line
    assert "Traceback" not in err and "hunter2" not in err


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    suffix=st.sampled_from([".m3u", ".m3u8", ".pls", ".json", ".csv"]),
    data=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=100).map(lambda t: t.encode("utf-16-le")),
        st.text(max_size=100).map(lambda t: t.encode("latin-1", "replace")),
    ),
)
def test_hypothesis_playlist_files_are_one_line_error_or_tracks(tmp_path_factory, suffix, data):
    from catalogsync.errors import PlaylistFormatError
    from catalogsync.providers.manifest import ManifestProvider

    path = tmp_path_factory.mktemp("pl") / f"list{suffix}"
    path.write_bytes(data)
    try:
        ManifestProvider().fetch_playlist(str(path))
    except PlaylistFormatError as exc:
        _assert_one_line(exc)
