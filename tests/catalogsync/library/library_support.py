"""A real library for the library tests: songs downloaded by a sync_download job."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from catalogsync import cli
from catalogsync.service import Catalogsync
from tests.support.audio import mp3_body


def write_config(home: Path, body: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(body, encoding="utf-8")


def build_library(home: Path, server, count: int, *, album: str = "Album") -> Catalogsync:
    """``count`` songs by one artist (tracks 1..count of ``album``) downloaded into ``home``."""
    tracks = []
    for n in range(count):
        url = server.route(f"/s{n}.mp3", body=mp3_body(8_000 + n * 417, seed=n))
        tracks.append(
            {
                "url": url,
                "title": f"Song {n}",
                "artist": "Band",
                "album": album,
                "track": n + 1,
                "year": 2001,
            }
        )
    playlist = home.parent / f"{home.name}-list.json"
    playlist.write_text(json.dumps({"name": "Mix", "tracks": tracks}), encoding="utf-8")
    service = Catalogsync.open(home=str(home))
    service.add_playlists([str(playlist)])
    service.submit_job("sync_download")
    service.run_headless(until_idle=True)
    return service


def song_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.mp3") if p.is_file())


def run_cli(home: Path, *args: str) -> tuple[int, str, str]:
    """`catalogsync --home HOME ARGS` in-process: (exit code, stdout, stderr)."""
    try:
        result = CliRunner().invoke(cli.app, ["--home", str(home), *args])
    finally:
        service: Any = cli._state.pop("service", None)
        if service is not None:
            service.close()
    return result.exit_code, result.stdout, result.stderr


def digests(root: Path) -> list[str]:
    """The SHA-256 of every song file under ``root``, sorted (where they are is ignored)."""
    return sorted(hashlib.sha256((root / p).read_bytes()).hexdigest() for p in song_files(root))
