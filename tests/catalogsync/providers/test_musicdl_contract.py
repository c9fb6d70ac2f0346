"""The musicdl adapter against the real musicdl package: its clients and its ``SongInfo``.

test_musicdl.py drives the adapter through fakes; these tests check that the fakes hold
for the release installed (.ci/run installs the ``musicdl`` extra into .venv). Nothing
reaches the network: playlists are real ``SongInfo`` objects built here (with
``SongInfo(...)`` and ``SongInfo.fromdict``), handed to the real client in place of its
``parseplaylist``, and songs are served from 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path
from typing import Any

import pytest

from catalogsync.providers.musicdl import PLATFORMS, MusicdlProvider
from tests.support.audio import mp3_body

modules = pytest.importorskip(
    "musicdl.modules",
    reason="the real musicdl is not importable here (.ci/run installs catalogsync[musicdl] "
    "into .venv; pip install 'catalogsync[musicdl]')",
)
SongInfo: Any = modules.SongInfo

NETEASE_URL = "https://music.163.com/#/playlist?id=24381616"


def real_song(identifier: str, url: str, **fields: Any) -> Any:
    """A real musicdl SongInfo as a NetEase playlist parse returns it."""
    values: dict[str, Any] = {
        "raw_data": {"search": {"id": identifier}},
        "source": "NeteaseMusicClient",
        "song_name": f"Song {identifier}",
        "singers": "Singer A",
        "album": "Album B",
        "ext": "mp3",
        "file_size_bytes": 4170,
        "duration_s": 215,
        "download_url": url,
        "download_url_status": {"ok": True},
        "default_download_headers": {"Referer": "https://music.163.com/"},
        "identifier": identifier,
    }
    values.update(fields)
    return SongInfo(**values)


@pytest.fixture
def provider(tmp_path: Path) -> MusicdlProvider:
    return MusicdlProvider("netease", work_dir=tmp_path / "work")


def serve_parse(
    monkeypatch: pytest.MonkeyPatch, provider: MusicdlProvider, songs: list[Any]
) -> Any:
    """The real client of this thread, whose parseplaylist answers ``songs`` offline."""
    client = provider._client()
    seen: list[str] = []

    def parseplaylist(playlist_url: str, request_overrides: dict[str, Any] | None = None) -> Any:
        seen.append(playlist_url)
        return list(songs)

    monkeypatch.setattr(client, "parseplaylist", parseplaylist)
    client.seen_urls = seen
    return client


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_every_platform_builds_a_real_client_with_what_the_adapter_calls(
    tmp_path: Path, platform: str
) -> None:
    """The extra's floor (musicdl >= 2.10): parseplaylist and download(auto_supplement_song)."""
    client = MusicdlProvider(platform, work_dir=tmp_path / "work")._client()
    assert type(client).__name__ == PLATFORMS[platform].client
    assert "playlist_url" in inspect.signature(client.parseplaylist).parameters
    download = inspect.signature(client.download).parameters
    assert {"song_infos", "num_threadings", "auto_supplement_song"} <= set(download)


def test_a_parse_of_real_songinfos_becomes_tracks(
    monkeypatch: pytest.MonkeyPatch, provider: MusicdlProvider
) -> None:
    songs = [
        real_song("101", "http://127.0.0.1:9/101.mp3"),
        real_song("102", "http://127.0.0.1:9/102.flac", ext="flac", singers="B, C"),
    ]
    client = serve_parse(monkeypatch, provider, songs)
    content = provider.fetch_playlist(NETEASE_URL)
    assert client.seen_urls == [NETEASE_URL]
    assert [(t.remote_id, t.name, t.singers, t.album, t.ext) for t in content.tracks] == [
        ("101", "Song 101", "Singer A", "Album B", "mp3"),
        ("102", "Song 102", "B, C", "Album B", "flac"),
    ]
    first = content.tracks[0]
    assert first.duration_seconds == 215.0 and first.file_size_bytes == 4170
    assert first.download_url == "http://127.0.0.1:9/101.mp3"
    # What the catalog stores is JSON (the songs.metadata_json column).
    json.dumps(first.metadata)


def test_a_snapshot_rebuilds_a_real_songinfo_with_fromdict(
    monkeypatch: pytest.MonkeyPatch, provider: MusicdlProvider
) -> None:
    original = real_song("201", "http://127.0.0.1:9/201.mp3", lyric="la la", bitrate=320)
    serve_parse(monkeypatch, provider, [original])
    track = provider.fetch_playlist(NETEASE_URL).tracks[0]
    # As the catalog gives it back: through songs.metadata_json.
    stored = dataclasses.replace(track, metadata=json.loads(json.dumps(track.metadata)))
    rebuilt = provider._song_from_snapshot(stored)
    assert isinstance(rebuilt, SongInfo)
    for name in (
        "identifier",
        "song_name",
        "singers",
        "album",
        "ext",
        "download_url",
        "file_size_bytes",
        "duration_s",
        "bitrate",
    ):
        assert getattr(rebuilt, name) == getattr(original, name), name
    # Round trip through musicdl's own dict form too.
    assert SongInfo.fromdict(rebuilt.todict()).identifier == "201"


def test_resolve_hands_our_downloader_the_url_and_the_platform_headers(
    monkeypatch: pytest.MonkeyPatch, provider: MusicdlProvider
) -> None:
    serve_parse(monkeypatch, provider, [real_song("301", "http://127.0.0.1:9/301.mp3")])
    track = provider.fetch_playlist(NETEASE_URL).tracks[0]
    assert not provider.uses_opaque_download(track)
    spec = provider.resolve(track)
    assert spec.url == "http://127.0.0.1:9/301.mp3"
    assert spec.headers.get("Referer") == "https://music.163.com/"
    assert spec.ext == "mp3"


def test_the_real_client_downloads_a_song_from_loopback(
    monkeypatch: pytest.MonkeyPatch, provider: MusicdlProvider, tmp_path: Path, http_server: Any
) -> None:
    """musicdl's own downloader (the opaque path) writes the bytes 127.0.0.1 served."""
    body = mp3_body(50_000, seed=7)
    url = http_server.route("/401.mp3", body=body)
    serve_parse(
        monkeypatch,
        provider,
        [real_song("401", url, file_size_bytes=len(body), file_size="48.8KB")],
    )
    track = provider.fetch_playlist(NETEASE_URL).tracks[0]
    progress: list[tuple[int, int | None]] = []
    saved = provider.download(
        track,
        tmp_path / "library" / "Song 401.mp3",
        should_stop=lambda: False,
        on_progress=lambda done, total=None: progress.append((done, total)),
    )
    assert saved.read_bytes() == body
