"""A real media server reads what catalogsync leaves: MPD (Debian's `mpd`, driven by `mpc`).

MPD scans the library folder with its own tag readers (not mutagen) and resolves the
`.m3u8` files in it relative to their own location, as Navidrome and Jellyfin do.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from catalogsync.service import Catalogsync

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "audio"
MPD, MPC = shutil.which("mpd"), shutil.which("mpc")
pytestmark = pytest.mark.skipif(
    not (MPD and MPC), reason="mpd and mpc are not installed (.ci/run installs them)"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"mpd exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("mpd did not listen in time")


def test_mpd_reads_the_tags_and_the_playlist_files(tmp_path, http_server):
    formats = ["silence.mp3", "silence.flac", "silence.ogg", "silence.m4a"]
    tracks = []
    for n, name in enumerate(formats):
        body = (FIXTURES / name).read_bytes()
        if name.endswith(".mp3"):
            # An empty ID3v2.4 header in front: the download stage's sniffer does not take a
            # bare MPEG-2.5 stream (ff e3) for audio (reported to the lead).
            body = b"ID3\x04\x00\x00\x00\x00\x00\x00" + body
        url = http_server.route(f"/t{n}.{name.rsplit('.', 1)[1]}", body=body)
        tracks.append(
            {
                "url": url,
                "title": f"Song {n}",
                "artist": "Band",
                "album": "Quiet",
                "albumartist": "The Band",
                "track": n + 1,
                "year": 2001,
            }
        )
    order = [tracks[i] for i in (2, 0, 3, 1)]
    playlist = tmp_path / "quiet.json"
    playlist.write_text(json.dumps({"name": "Quiet Mix", "tracks": order}))
    service = Catalogsync.open(home=str(tmp_path / "home"))
    try:
        service.add_playlists([str(playlist)])
        job = service.submit_job("sync_download").id
        service.run_headless(until_idle=True)
        assert service.job_row(job).status == "completed", service.repository._fetchall(
            "SELECT last_error FROM job_items WHERE status = 'failed'"
        )[0][0]
        root = service.settings.library_root
    finally:
        service.close()

    port = _free_port()
    state = tmp_path / "mpd"
    (state / "playlists").mkdir(parents=True)
    config = state / "mpd.conf"
    config.write_text(
        f'music_directory "{root}"\nplaylist_directory "{state / "playlists"}"\n'
        f'db_file "{state / "db"}"\nstate_file "{state / "state"}"\n'
        f'log_file "{state / "log"}"\nbind_to_address "127.0.0.1"\nport "{port}"\n'
        'auto_update "no"\naudio_output {\n  type "null"\n  name "null"\n}\n'
    )
    mpd = subprocess.Popen(
        [MPD, "--no-daemon", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for_port(port, mpd)

        def mpc(*args: str) -> list[str]:
            done = subprocess.run(
                [MPC, "-h", "127.0.0.1", "-p", str(port), *args],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            return done.stdout.splitlines()

        mpc("update", "--wait")
        songs = [
            line
            for line in mpc("-f", "%albumartist%::%album%::%track%::%date%::%title%", "listall")
            if "::" in line
        ]
        assert sorted(songs) == [f"The Band::Quiet::{n + 1}::2001::Song {n}" for n in range(4)]
        assert mpc("ls", "Playlists") == ["Playlists/Quiet Mix.m3u8"]
        assert mpc("-f", "%title%", "playlist", "Playlists/Quiet Mix.m3u8") == [
            t["title"] for t in order
        ]
    finally:
        mpd.terminate()
        mpd.wait(timeout=30)
