"""systemd: sd_notify on a real NOTIFY_SOCKET, the unit (systemd-analyze verify), log files."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalogsync.config import LogSettings, load_settings
from catalogsync.errors import ConfigError
from catalogsync.logs import JOURNAL_FORMAT, setup_runner_logging
from catalogsync.ops.lease import RunnerLease
from catalogsync.ops.repository import OpsRepository
from catalogsync.sdnotify import SystemdNotifier
from catalogsync.systemd_unit import unit_text
from tests.support.audio import mp3_body

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "catalogsync.cli"]


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(20)
    yield sock, str(path)
    sock.close()


def _messages_until(sock: socket.socket, wanted: str, limit: int = 100) -> list[dict[str, str]]:
    """Datagrams as dicts, up to and including the first holding ``wanted`` (bounded)."""
    seen = []
    for _ in range(limit):
        data = sock.recv(4096).decode()
        fields = dict(line.split("=", 1) for line in data.splitlines() if "=" in line)
        seen.append(fields)
        if wanted in fields:
            return seen
    raise AssertionError(f"no {wanted} in {limit} datagrams: {seen}")


class _HeldSong:
    """A song served on 127.0.0.1 that answers only once released (or after 60 s).

    Its download job stays running for as long as the test needs, with no race against
    a fast transfer. (A FIFO playlist used to do this; FIFOs are now refused at once.)
    """

    def __init__(self, body: bytes) -> None:
        import http.server
        import threading

        release = self.released = threading.Event()
        self.asked = threading.Event()
        asked = self.asked

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return

            def do_GET(self) -> None:  # noqa: N802
                if self.path.startswith("/held"):
                    asked.set()
                    release.wait(60)
                self.send_response(200)
                self.send_header("Content-Type", "audio/mpeg")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/held/song.mp3"

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


def test_the_runner_says_ready_pings_the_watchdog_reports_status_and_says_stopping(
    tmp_path, notify_socket
):
    sock, path = notify_socket
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        '[[schedules]]\nname = "new-year"\ncron = "0 0 1 1 *"\njob = "sync_only"\n',
        encoding="utf-8",
    )
    held = _HeldSong(mp3_body(50_000))
    playlist = tmp_path / "held.m3u"
    playlist.write_text(f"#EXTM3U\n#EXTINF:1,A - S\n{held.url}\n", encoding="utf-8")
    env = {
        **os.environ,
        "CATALOGSYNC_HOME": str(home),
        "NOTIFY_SOCKET": path,
        "WATCHDOG_USEC": "1000000",
    }
    subprocess.run(
        [*CLI, "playlists", "add", str(playlist)],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    process = subprocess.Popen(
        [*CLI, "run"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    terminated = False
    try:
        first = _messages_until(sock, "READY")
        assert first[0]["READY"] == "1", "READY is the first thing systemd hears"
        assert first[0]["STATUS"].startswith("0 running, 0 queued; next new-year at ")
        assert first[0]["MAINPID"] == str(process.pid)
        # The lease is held by now: READY comes only after it is taken.
        assert OpsRepository(home / "catalogsync.db").get_lease()["pid"] == process.pid
        _messages_until(sock, "WATCHDOG")
        subprocess.run(
            [*CLI, "jobs", "submit", "sync_download", "-p", "1"],
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        statuses: list[str] = []
        for _ in range(20):  # bounded: the job runs until the song is released
            statuses += [m["STATUS"] for m in _messages_until(sock, "STATUS") if "STATUS" in m]
            if statuses[-1].startswith("1 running, 0 queued"):
                break
        assert statuses[-1].startswith("1 running, 0 queued"), statuses
        assert held.asked.wait(30), "the download asked for the song"
        held.released.set()
        statuses = []
        for _ in range(20):
            statuses += [m["STATUS"] for m in _messages_until(sock, "STATUS") if "STATUS" in m]
            if statuses[-1].startswith("0 running, 0 queued"):
                break
        assert statuses[-1].startswith("0 running, 0 queued"), statuses
        process.send_signal(signal.SIGTERM)
        terminated = True
        last = _messages_until(sock, "STOPPING")
        assert last[-1]["STOPPING"] == "1"
    finally:
        held.close()
        # One SIGTERM, as systemd sends: a second one that lands after the runner put
        # the default handlers back (on its way out) would kill it with -15.
        if process.poll() is None and not terminated:
            process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
    assert process.returncode == 0


def test_no_ready_when_another_runner_holds_the_lease(tmp_path, notify_socket):
    sock, path = notify_socket
    home = tmp_path / "home"
    load_settings(home=str(home))
    from catalogsync.service import Catalogsync

    holder = Catalogsync.open(home=str(home))
    lease = RunnerLease(holder.repository)
    lease.acquire()
    try:
        env = {**os.environ, "CATALOGSYNC_HOME": str(home), "NOTIFY_SOCKET": path}
        result = subprocess.run(
            [*CLI, "run"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
        )
    finally:
        lease.release()
        holder.close()
    assert result.returncode == 1
    assert "another runner holds the queue" in result.stderr
    assert "Traceback" not in result.stderr
    sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        sock.recv(4096)  # the process has exited: anything it sent would be here


def test_an_abstract_notify_socket_is_reached_too():
    name = f"catalogsync-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(10)
    try:
        notifier = SystemdNotifier(f"@{name}", watchdog_usec="4000000")
        assert notifier.watchdog_interval == 2.0
        notifier.ready("0 running, 0 queued")
        assert sock.recv(4096).decode().splitlines()[:2] == [
            "READY=1",
            "STATUS=0 running, 0 queued",
        ]
        notifier.stopping()
        assert sock.recv(4096).decode().startswith("STOPPING=1")
        notifier.close()
    finally:
        sock.close()


def test_without_notify_socket_nothing_is_sent_and_a_dead_socket_is_not_fatal(tmp_path):
    quiet = SystemdNotifier("")
    assert not quiet.enabled and quiet.send("READY=1") is False
    gone = SystemdNotifier(str(tmp_path / "nobody-listens.sock"))
    assert gone.send("READY=1") is False  # logged once, the runner carries on


def _unit(tmp_path: Path, text: str = "", *, user: bool = False) -> str:
    home = tmp_path / "home dir"
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text(text, encoding="utf-8")
    return unit_text(load_settings(home=str(home)), user=user)


def test_the_unit_runs_this_installation_with_watchdog_restart_and_hardening(tmp_path):
    unit = _unit(
        tmp_path, f'library = "{tmp_path / "music"}"\n[log]\nfile = "{tmp_path}/log/r.log"\n'
    )
    lines = unit.splitlines()
    exec_start = next(line for line in lines if line.startswith("ExecStart="))
    script = Path(sys.executable).parent / "catalogsync"
    program = str(script) if script.exists() else f"{sys.executable} -m catalogsync.cli"
    assert exec_start == f'ExecStart={program} --home "{tmp_path / "home dir"}" run'
    for line in (
        "Type=notify",
        "Restart=on-failure",
        "WatchdogSec=60",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "WantedBy=multi-user.target",
    ):
        assert line in lines
    rw = next(line for line in lines if line.startswith("ReadWritePaths="))
    assert rw == (
        f'ReadWritePaths="{tmp_path / "home dir"}" {tmp_path / "music"} -{tmp_path / "log"}'
    )
    assert "WantedBy=default.target" in _unit(tmp_path, user=True).splitlines()


def test_a_system_unit_installed_with_sudo_runs_as_the_sudo_user(tmp_path, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("sudo installs run as root; this test needs to be root to see that")
    monkeypatch.setenv("SUDO_USER", "music")
    assert "User=music" in _unit(tmp_path).splitlines()
    assert not any(line.startswith("User=") for line in _unit(tmp_path, user=True).splitlines())
    monkeypatch.delenv("SUDO_USER")
    assert not any(line.startswith("User=") for line in _unit(tmp_path).splitlines())


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is missing")
def test_the_printed_unit_passes_systemd_analyze_verify(tmp_path):
    home = tmp_path / "home"
    result = subprocess.run(
        [*CLI, "--home", str(home), "service", "unit"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    unit = tmp_path / "catalogsync.service"
    unit.write_text(result.stdout, encoding="utf-8")
    verify = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=120
    )
    assert verify.returncode == 0, verify.stderr
    assert "catalogsync.service" not in verify.stderr, verify.stderr  # no warning about it


def test_service_install_writes_the_user_unit_and_says_what_to_run(tmp_path):
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    result = subprocess.run(
        [*CLI, "--home", str(tmp_path / "home"), "service", "install", "--user"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    unit = tmp_path / "xdg" / "systemd" / "user" / "catalogsync.service"
    assert "Type=notify" in unit.read_text(encoding="utf-8")
    assert f"wrote {unit}" in result.stdout
    assert "systemctl --user enable --now catalogsync.service" in result.stdout


def test_service_install_to_an_unwritable_place_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = subprocess.run(
        [
            *CLI,
            "--home",
            str(tmp_path / "home"),
            "service",
            "install",
            "--path",
            str(blocker / "sub" / "u.service"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1


@pytest.fixture
def clean_logging():
    logger = logging.getLogger("catalogsync")
    before = list(logger.handlers), logger.level
    yield
    for handler in logger.handlers:
        if handler not in before[0]:
            handler.close()
    logger.handlers[:], logger.level = before


def test_the_log_file_is_reopened_after_logrotate_moves_it(tmp_path, clean_logging):
    path = tmp_path / "logs" / "runner.log"
    setup_runner_logging(LogSettings(file=str(path)))
    log = logging.getLogger("catalogsync.test")
    log.info("before rotation")
    path.rename(path.with_suffix(".log.1"))  # what logrotate does (no copytruncate)
    log.info("after rotation")
    assert "before rotation" in path.with_suffix(".log.1").read_text()
    assert "after rotation" in path.read_text()


def test_the_log_file_rotates_by_size(tmp_path, clean_logging):
    path = tmp_path / "runner.log"
    setup_runner_logging(LogSettings(file=str(path), max_bytes=2000, backups=2))
    log = logging.getLogger("catalogsync.test")
    for n in range(100):
        log.info("line %03d %s", n, "x" * 40)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "runner.log",
        "runner.log.1",
        "runner.log.2",
    ]
    assert "line 099" in path.read_text()


def test_an_unwritable_log_file_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "config.toml").write_text(f'[log]\nfile = "{blocker}/sub/r.log"\n')
    env = {**os.environ, "CATALOGSYNC_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [*CLI, "run", "--until-idle"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: log file {blocker}/sub/r.log")
    with pytest.raises(ConfigError):
        setup_runner_logging(LogSettings(file=str(blocker / "x.log")))


def test_under_journald_the_runner_writes_plain_lines(tmp_path):
    stderr_path = tmp_path / "stderr.txt"
    log_file = tmp_path / "runner.log"
    with open(stderr_path, "w") as stderr:
        st = os.fstat(stderr.fileno())
        env = {
            **os.environ,
            "CATALOGSYNC_HOME": str(tmp_path / "home"),
            "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}",
        }
        subprocess.run(
            [*CLI, "jobs", "submit", "sync_only"],
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        subprocess.run(
            [*CLI, "run", "--until-idle", "--log-file", str(log_file)],
            cwd=REPO_ROOT,
            env=env,
            stderr=stderr,
            stdout=subprocess.DEVNULL,
            timeout=60,
            check=True,
        )
    lines = [line for line in stderr_path.read_text().splitlines() if "job 1" in line]
    assert lines, stderr_path.read_text()
    assert all(line.startswith("INFO catalogsync") for line in lines), lines
    assert "\x1b[" not in stderr_path.read_text()
    assert JOURNAL_FORMAT.startswith("%(levelname)s")
    # The file keeps its timestamps: no journald stamps it.
    assert time.strftime("%Y-") in log_file.read_text().splitlines()[0]


def test_an_operator_pause_is_journaled_as_info_and_a_storage_pause_as_a_warning(caplog):
    """The journal's priority follows what happened: `journalctl -p warning` shows the disk."""
    import logging

    from catalogsync.service import _log_event

    with caplog.at_level(logging.INFO, logger="catalogsync"):
        _log_event("job_paused", {"job_id": 3, "message": "paused by operator", "by": "operator"})
        _log_event("job_paused", {"job_id": 4, "message": "disk full: /srv", "by": "storage"})
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.INFO, "job 3 paused: paused by operator"),
        (logging.WARNING, "job 4 paused: disk full: /srv"),
    ]
