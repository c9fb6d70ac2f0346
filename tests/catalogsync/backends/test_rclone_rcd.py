"""The rclone backend through one shared ``rclone rcd`` (the real program on 127.0.0.1)."""

from __future__ import annotations

import base64
import http.client
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalogsync.transfer.backends import RcloneBackend
from catalogsync.transfer.backends import rcd as rclone_module
from catalogsync.transfer.ratelimit import TokenBucket

pytestmark = pytest.mark.skipif(
    shutil.which("rclone") is None,
    reason="the rclone program is not installed (apt-get install rclone, or rclone.org/install)",
)


@pytest.fixture(autouse=True)
def no_daemons_left() -> Iterator[None]:
    """Each test starts and ends without a running rcd."""
    rclone_module.stop_daemons()
    yield
    rclone_module.stop_daemons()


def backend(tmp_path: Path, config: Path, name: str = "cloud", **kwargs: object) -> RcloneBackend:
    return RcloneBackend(name, f"nas:{tmp_path / 'dest'}", {"config": str(config)}, **kwargs)


def running_daemons() -> list[rclone_module.RcloneDaemon]:
    return [d for d in rclone_module._DAEMONS.values() if d.alive()]


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def test_every_backend_shares_one_daemon_until_the_runner_stops(
    tmp_path: Path, rclone_config: Path, song: Path
) -> None:
    first, second = backend(tmp_path, rclone_config), backend(tmp_path, rclone_config, "other")
    first.upload(song, "a/one.mp3")
    second.upload(song, "b/two.mp3")
    assert second.stat("a/one.mp3") is not None
    daemons = running_daemons()
    assert len(daemons) == 1
    proc = daemons[0].proc
    assert proc is not None and "rcd" in cmdline(proc.pid)
    rclone_module.stop_daemons()  # what the runner's SharedResources.close() calls
    assert proc.poll() is not None, "the rcd process ended with the runner"
    assert not running_daemons()


def test_the_credentials_are_random_and_not_on_the_command_line(
    tmp_path: Path, rclone_config: Path, song: Path
) -> None:
    backend(tmp_path, rclone_config).upload(song, "x.mp3")
    daemon = running_daemons()[0]
    assert daemon.proc is not None
    assert daemon._password not in " ".join(cmdline(daemon.proc.pid))
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
    conn.request(
        "POST",
        "/operations/list",
        json.dumps({"fs": str(tmp_path), "remote": ""}),
        {"Content-Type": "application/json"},
    )
    assert conn.getresponse().status == 401, "no credentials, no answer"
    conn.close()
    wrong = base64.b64encode(b"catalogsync:guess").decode()
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
    conn.request(
        "POST",
        "/operations/list",
        json.dumps({"fs": str(tmp_path), "remote": ""}),
        {"Content-Type": "application/json", "Authorization": f"Basic {wrong}"},
    )
    assert conn.getresponse().status == 401
    conn.close()


def test_upload_workers_share_one_bandwidth_limit(
    tmp_path: Path, rclone_config: Path, song: Path
) -> None:
    """One --bwlimit on the one daemon, however many workers upload through it."""
    limiter = TokenBucket(4 * 1024 * 1024)
    workers = [backend(tmp_path, rclone_config, f"w{n}", limiter=limiter) for n in range(3)]
    for n, worker in enumerate(workers):
        worker.upload(song, f"w/{n}.mp3")
    daemons = running_daemons()
    assert len(daemons) == 1
    assert daemons[0].proc is not None
    args = cmdline(daemons[0].proc.pid)
    assert args[args.index("--bwlimit") + 1] == f"{4 * 1024 * 1024}B"


def test_an_rclone_without_rcd_falls_back_to_one_process_per_operation(
    tmp_path: Path,
    rclone_config: Path,
    song: Path,
    fake_rclone: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("FAKE_RCLONE_MODE", "no_rcd")
    b = RcloneBackend(
        "cloud",
        f"nas:{tmp_path / 'dest'}",
        {"config": str(rclone_config), "binary": str(fake_rclone), "rcd": "true"},
    )
    stored = b.upload(song, "f/song.mp3")
    assert stored.size == song.stat().st_size
    assert (tmp_path / "dest" / "f" / "song.mp3").read_bytes() == song.read_bytes()
    assert not b.use_rcd
    assert "running one rclone process per operation" in caplog.text
    assert "unknown command" in caplog.text


def test_a_daemon_that_died_is_replaced_on_the_next_operation(
    tmp_path: Path, rclone_config: Path, song: Path
) -> None:
    b = backend(tmp_path, rclone_config, sleep=lambda _s: None)
    b.upload(song, "one.mp3")
    dead = running_daemons()[0]
    assert dead.proc is not None
    dead.proc.kill()
    dead.proc.wait(10)
    assert b.stat("one.mp3") is not None
    assert b.upload(song, "two.mp3").size == song.stat().st_size
    assert running_daemons() and running_daemons()[0] is not dead


def test_errors_through_rcd_read_like_the_process_path(tmp_path: Path, song: Path) -> None:
    config = tmp_path / "empty.conf"
    config.write_text("", encoding="utf-8")
    b = RcloneBackend("cloud", "missing:music", {"config": str(config)})
    from catalogsync.errors import StorageUnavailableError

    with pytest.raises(StorageUnavailableError, match="remote 'missing' is not configured"):
        b.upload(song, "x.mp3")
