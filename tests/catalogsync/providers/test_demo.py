"""Tests for the built-in demo server and its playlists."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from catalogsync.providers.base import Provider
from catalogsync.providers.demo import (
    DEMO_PLAYLISTS,
    MAX_SONG_BYTES,
    MIN_SONG_BYTES,
    DemoServer,
    iter_song_bytes,
    song_sha256,
    song_size,
    write_demo_manifests,
)
from catalogsync.providers.manifest import ManifestProvider, parse_manifest_text

from .conformance import ProviderConformance


@pytest.fixture(scope="module")
def server() -> Iterator[DemoServer]:
    """A demo server without a bandwidth cap, shared by the module."""
    with DemoServer(bandwidth_bytes_per_sec=None) as demo:
        yield demo


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    """An HTTP client that ignores proxy settings from the environment."""
    with httpx.Client(trust_env=False, timeout=10) as http:
        yield http


def test_demo_playlists_shape() -> None:
    assert 3 <= len(DEMO_PLAYLISTS) <= 4
    assert len({p.slug for p in DEMO_PLAYLISTS}) == len(DEMO_PLAYLISTS)
    counts: dict[str, int] = {}
    for playlist in DEMO_PLAYLISTS:
        assert 4 <= len(playlist.songs) <= 8
        for song in playlist.songs:
            counts[song.id] = counts.get(song.id, 0) + 1
    assert sorted(n for n in counts.values() if n > 1) == [2]  # exactly one shared song


def test_song_content_is_deterministic_and_sized() -> None:
    for playlist in DEMO_PLAYLISTS:
        for song in playlist.songs:
            assert MIN_SONG_BYTES <= song.size <= MAX_SONG_BYTES
    song_id = DEMO_PLAYLISTS[0].songs[0].id
    whole = b"".join(iter_song_bytes(song_id))
    assert len(whole) == song_size(song_id)
    assert whole[:4] == b"RIFF" and whole[8:16] == b"WAVEfmt "
    assert hashlib.sha256(whole).hexdigest() == song_sha256(song_id)
    assert b"".join(iter_song_bytes(song_id, 40, 70_000, chunk_size=1000)) == whole[40:70_000]
    other = DEMO_PLAYLISTS[1].songs[0].id
    assert song_sha256(other) != song_sha256(song_id)


def test_server_binds_loopback(server: DemoServer) -> None:
    assert server.running
    assert server.base_url == f"http://127.0.0.1:{server.port}"
    assert server.port > 0


def test_index_lists_playlists(server: DemoServer, client: httpx.Client) -> None:
    index = client.get(server.base_url + "/playlists/").json()
    assert [p["name"] for p in index] == [p.name for p in DEMO_PLAYLISTS]
    assert index[0]["m3u"] == server.playlist_url(DEMO_PLAYLISTS[0].slug, "m3u")


def test_m3u_playlist(server: DemoServer, client: httpx.Client) -> None:
    demo = DEMO_PLAYLISTS[0]
    response = client.get(server.playlist_url(demo.slug, "m3u"))
    assert response.status_code == 200
    content = parse_manifest_text(response.text, path="/tmp/x.m3u", fmt="m3u")
    assert content.name == demo.name
    assert [(t.singers, t.name) for t in content.tracks] == [
        (s.artist, s.title) for s in demo.songs
    ]
    assert all(t.download_url.startswith(server.base_url + "/songs/") for t in content.tracks)
    assert all(t.ext == "wav" for t in content.tracks)


def test_json_playlist_and_song_download(server: DemoServer, client: httpx.Client) -> None:
    doc = client.get(server.playlist_url("night-drive")).json()
    assert doc["name"] == "Night Drive"
    track = doc["tracks"][0]
    assert set(track) >= {"url", "title", "artist", "size", "sha256", "id", "duration"}
    response = client.get(track["url"])
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/wav"
    assert int(response.headers["content-length"]) == len(response.content) == track["size"]
    assert hashlib.sha256(response.content).hexdigest() == track["sha256"]


def test_demo_songs_look_like_a_library(server: DemoServer, client: httpx.Client) -> None:
    """Albums, track numbers, years, album artists (compilations) and a cover per album."""
    doc = client.get(server.playlist_url("night-drive")).json()
    first, second = doc["tracks"][0], doc["tracks"][1]
    assert (first["album"], first["track"], second["track"]) == ("Tail Lights", 1, 2)
    assert first["albumartist"] == "Various Artists" and first["year"]
    cover = client.get(first["cover"])
    assert cover.status_code == 200 and cover.headers["content-type"] == "image/png"
    assert cover.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert client.get(server.base_url + "/covers/nope.png").status_code == 404


def test_range_requests(server: DemoServer, client: httpx.Client) -> None:
    song = DEMO_PLAYLISTS[1].songs[0]
    url, size = server.song_url(song), song.size
    whole = b"".join(iter_song_bytes(song.id))
    part = client.get(url, headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 1000-1999/{size}"
    assert part.content == whole[1000:2000]
    tail = client.get(url, headers={"Range": f"bytes={size - 100}-"})
    assert (tail.status_code, tail.content) == (206, whole[-100:])
    suffix = client.get(url, headers={"Range": "bytes=-44"})
    assert (suffix.status_code, suffix.content) == (206, whole[-44:])
    beyond = client.get(url, headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{size}"
    head = client.head(url)
    assert head.headers["content-length"] == str(size)
    assert head.headers["accept-ranges"] == "bytes"


def test_not_found(server: DemoServer, client: httpx.Client) -> None:
    assert client.get(server.base_url + "/songs/nope.wav").status_code == 404
    assert client.get(server.base_url + "/playlists/nope.json").status_code == 404
    assert client.get(server.base_url + "/etc/passwd").status_code == 404


def test_bandwidth_cap_is_roughly_honoured(client: httpx.Client) -> None:
    with DemoServer(bandwidth_bytes_per_sec=1_000_000) as slow:
        url = slow.song_url(DEMO_PLAYLISTS[0].songs[0])
        started = time.monotonic()
        response = client.get(url, headers={"Range": "bytes=0-999999"})
        elapsed = time.monotonic() - started
    assert len(response.content) == 1_000_000
    assert elapsed > 0.5


def test_stop_shuts_down_and_cuts_transfers(client: httpx.Client) -> None:
    demo = DemoServer(bandwidth_bytes_per_sec=50_000).start()
    port, url = demo.port, demo.song_url(DEMO_PLAYLISTS[0].songs[0])
    outcome: list[object] = []

    def download() -> None:
        try:
            outcome.append(len(client.get(url).content))
        except httpx.HTTPError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=download, daemon=True)
    worker.start()
    time.sleep(0.2)
    demo.stop()
    demo.stop()  # idempotent
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert outcome and outcome[0] != DEMO_PLAYLISTS[0].songs[0].size
    assert not demo.running
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_write_demo_manifests_is_idempotent(server: DemoServer, tmp_path: Path) -> None:
    first = write_demo_manifests(server, tmp_path / "demo")
    again = write_demo_manifests(server, tmp_path / "demo")
    assert first == again
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == sorted(
        f"{p.slug}.json" for p in DEMO_PLAYLISTS
    )
    provider = ManifestProvider()
    contents = {path.stem: provider.fetch_playlist(str(path)) for path in first}
    assert contents["night-drive"].name == "Night Drive"
    track = contents["night-drive"].tracks[0]
    assert track.download_url == server.song_url(DEMO_PLAYLISTS[0].songs[0])
    assert track.file_size_bytes == DEMO_PLAYLISTS[0].songs[0].size
    assert track.sha256 == song_sha256(DEMO_PLAYLISTS[0].songs[0].id)
    ids = [{t.remote_id for t in c.tracks} for c in contents.values()]
    shared = [i for i in set().union(*ids) if sum(i in s for s in ids) > 1]
    assert len(shared) == 1


def test_root_receives_manifests_on_start(tmp_path: Path) -> None:
    with DemoServer(tmp_path, songs_per_playlist=2, bandwidth_bytes_per_sec=None) as demo:
        assert [p.parent for p in demo.manifest_paths] == [tmp_path] * len(DEMO_PLAYLISTS)
        doc = json.loads(demo.manifest_paths[0].read_text(encoding="utf-8"))
        assert len(doc["tracks"]) == 2
        assert doc["tracks"][0]["url"].startswith(demo.base_url)


# --------------------------------------------------------------------- conformance


class _DemoConformance(ProviderConformance):
    fmt = "json"

    @pytest.fixture(autouse=True)
    def _demo(self, server: DemoServer, client: httpx.Client) -> None:
        self.server, self.client = server, client

    def make_provider(self) -> Provider:
        return ManifestProvider()

    def make_ref(self, tmp_path: Path) -> str:
        response = self.client.get(self.server.playlist_url("workout-mix", self.fmt))
        path = tmp_path / f"workout-mix.{self.fmt}"
        path.write_bytes(response.content)
        return str(path)


class TestDemoJSONConformance(_DemoConformance):
    fmt = "json"


class TestDemoM3UConformance(_DemoConformance):
    fmt = "m3u"
