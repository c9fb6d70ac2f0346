"""Tests for the musicdl provider, with a fake ``musicdl`` package (no network, no musicdl)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from catalogsync.errors import ProviderError, TransferError, TransferStopped
from catalogsync.providers import registry
from catalogsync.providers.base import DownloadSpec, Provider, Track
from catalogsync.providers.musicdl import (
    PLATFORMS,
    MusicdlProvider,
    platform_for_url,
    playlist_id_from_url,
)
from tests.support.audio import mp3_body

from .conformance import ProviderConformance

NETEASE_URL = "https://music.163.com/#/playlist?id=24381616"


# --------------------------------------------------------------------------- the fake musicdl


@dataclass
class FakeSongInfo:
    """The fields of musicdl's ``SongInfo`` dataclass that the provider reads."""

    raw_data: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    song_name: str | None = None
    singers: str | None = None
    album: str | None = None
    ext: str | None = None
    file_size_bytes: int | None = None
    duration_s: int | None = None
    download_url: Any = None
    download_url_status: Any = None
    default_download_headers: dict[str, Any] = field(default_factory=dict)
    downloaded_contents: Any = None
    protocol: str = "HTTP"
    episodes: list[FakeSongInfo] | None = None
    work_dir: str | None = "./"
    _save_path: str | None = None
    identifier: str | None = None

    @property
    def save_path(self) -> str:
        """Where musicdl saves the song."""
        if self._save_path is not None:
            return self._save_path
        return os.path.join(
            self.work_dir or ".", f"{self.song_name} - {self.identifier}.{self.ext}"
        )

    @classmethod
    def fromdict(cls, data: dict[str, Any]) -> FakeSongInfo:
        """Rebuild from ``todict()`` output, ignoring unknown keys."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def todict(self) -> dict[str, Any]:
        """Every field, like musicdl's ``SongInfo.todict``."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def song(identifier: str, url: Any, *, name: str | None = None, size: int = 1000, **kw: Any):
    """A parsed song as musicdl returns it."""
    kw.setdefault(
        "work_dir", "/nonexistent/musicdl_outputs/NeteaseMusicClient/2025-01-02-03-04-05 Night Mix"
    )
    return FakeSongInfo(
        raw_data={"search": {"id": identifier}},
        source="NeteaseMusicClient",
        song_name=name or f"Song {identifier}",
        singers="Singer A",
        album="Album B",
        ext="mp3",
        file_size_bytes=size,
        duration_s=215,
        download_url=url,
        download_url_status={"ok": True},
        identifier=identifier,
        **kw,
    )


class FakeMusicdl:
    """State behind the fake ``musicdl.modules``: playlists, built clients, calls."""

    def __init__(self) -> None:
        self.playlists: dict[str, Callable[[int], list[Any]]] = {}
        self.parse_counts: dict[str, int] = {}
        self.clients: list[FakeClient] = []
        self.download_body = b""
        self.download_chunks = 4
        self.download_delay = 0.0
        self.download_fails = False
        self.lock = threading.Lock()

    def serve(self, url: str, songs: list[Any] | Callable[[int], list[Any]]) -> None:
        """Make ``parseplaylist(url)`` return ``songs`` (or ``songs(n)`` on the n-th parse)."""
        self.playlists[url] = songs if callable(songs) else (lambda _n, s=songs: list(s))

    def build(self, module_cfg: dict[str, Any]) -> FakeClient:
        """``BuildMusicClient``: pops ``type`` like musicdl's module builder."""
        cfg = dict(module_cfg)
        client_type = cfg.pop("type")
        if client_type not in {p.client for p in PLATFORMS.values()}:
            raise KeyError(client_type)
        client = FakeClient(self, client_type, cfg)
        with self.lock:
            self.clients.append(client)
        return client


class FakeClient:
    """A musicdl client: ``parseplaylist`` and ``download``, checked for cross-thread use."""

    def __init__(self, state: FakeMusicdl, source: str, cfg: dict[str, Any]) -> None:
        self.state, self.source, self.cfg = state, source, cfg
        self.thread = threading.get_ident()
        self.default_download_headers = {
            "User-Agent": "FakeUA/1.0",
            "Referer": "https://music.163.com/",
        }

    def parseplaylist(self, playlist_url: str, request_overrides: dict | None = None) -> list[Any]:
        """Songs of a served playlist; unknown URLs fail like a network error."""
        assert threading.get_ident() == self.thread, "client used from another thread"
        with self.state.lock:
            n = self.state.parse_counts.get(playlist_url, 0)
            self.state.parse_counts[playlist_url] = n + 1
        if playlist_url not in self.state.playlists:
            raise ConnectionError(f"HTTPSConnectionPool: failed to reach {playlist_url}\nmore")
        return self.state.playlists[playlist_url](n)

    def download(
        self,
        song_infos: list[Any],
        num_threadings: int = 5,
        request_overrides: dict | None = None,
        auto_supplement_song: bool = True,
    ) -> list[Any]:
        """Write each song's bytes progressively to its save_path; return the successes."""
        assert num_threadings == 1 and auto_supplement_song is False
        if self.state.download_fails:
            return []
        done = []
        for info in song_infos:
            body = self.state.download_body
            path = info.save_path
            step = max(len(body) // self.state.download_chunks, 1)
            with open(path, "wb") as fh:
                for pos in range(0, len(body), step):
                    fh.write(body[pos : pos + step])
                    fh.flush()
                    time.sleep(self.state.download_delay)
            done.append(info)
        return done


@pytest.fixture
def fake_musicdl(monkeypatch: pytest.MonkeyPatch) -> FakeMusicdl:
    """Install a fake ``musicdl`` / ``musicdl.modules`` in sys.modules."""
    state = FakeMusicdl()
    package = types.ModuleType("musicdl")
    modules = types.ModuleType("musicdl.modules")
    modules.BuildMusicClient = state.build  # type: ignore[attr-defined]
    modules.SongInfo = FakeSongInfo  # type: ignore[attr-defined]
    package.modules = modules  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "musicdl", package)
    monkeypatch.setitem(sys.modules, "musicdl.modules", modules)
    return state


@pytest.fixture
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let a test change the registry without leaking into the others."""
    # Without the optional providers, whether or not musicdl is installed here (CI has it).
    builtin = {
        k: v for k, v in registry._registrations.items() if k not in registry._online_platforms
    }
    monkeypatch.setattr(registry, "_registrations", builtin)


def make_provider(tmp_path: Path, **kwargs: Any) -> MusicdlProvider:
    """A netease provider whose clients work under tmp_path."""
    return MusicdlProvider("netease", work_dir=tmp_path / "work", **kwargs)


# --------------------------------------------------------------------------- URLs and clients


@pytest.mark.parametrize(
    ("url", "platform", "playlist_id"),
    [
        ("https://music.163.com/#/playlist?id=24381616", "netease", "24381616"),
        ("https://music.163.com/playlist?id=123&userid=9", "netease", "123"),
        ("https://y.music.163.com/m/playlist?id=77", "netease", "77"),
        ("https://y.qq.com/n/ryqq/playlist/7364061065", "qq", "7364061065"),
        ("https://i.y.qq.com/n2/m/share/details/taoge.html?id=8", "qq", "8"),
        ("http://www.kuwo.cn/playlist_detail/3373205497", "kuwo", "3373205497"),
        ("https://www.kugou.com/yy/special/single/6295165.html", "kugou", "6295165"),
        ("https://www.kugou.com/songlist/gcid_3zs3r5qiz2z0e9/", "kugou", "gcid_3zs3r5qiz2z0e9"),
        ("https://music.migu.cn/v3/music/playlist/228114498", "migu", "228114498"),
        ("HTTPS://MUSIC.163.COM/playlist?id=5", "netease", "5"),
    ],
)
def test_host_maps_to_platform_and_playlist_id(url: str, platform: str, playlist_id: str) -> None:
    assert platform_for_url(url) == platform
    assert playlist_id_from_url(url, PLATFORMS[platform]) == playlist_id
    provider = MusicdlProvider(platform)
    assert provider.handles(url)
    assert all(not MusicdlProvider(k).handles(url) for k in PLATFORMS if k != platform)
    ref = provider.describe(url)
    assert (ref.platform, ref.remote_id, ref.ref) == (platform, playlist_id, url)


@pytest.mark.parametrize(
    "url",
    [
        "https://music.163.com/",
        "https://music.163.com/playlist",
        "https://music.163.com.evil.example/playlist?id=1",
        "https://music.163.com@evil.example/playlist?id=1",
        "https://example.com/playlist?id=1",
        "ftp://music.163.com/playlist?id=1",
        "music.163.com/playlist?id=1",
        "https://music.163.com:99999/playlist?id=1",
        "https://music.163.com/playlist?id=1\n",
        "/music/list.m3u",
    ],
)
def test_urls_not_handled(url: str) -> None:
    provider = MusicdlProvider("netease")
    assert provider.handles(url) is False
    with pytest.raises(ProviderError):
        provider.describe(url)


def test_each_platform_builds_its_own_client(fake_musicdl: FakeMusicdl, tmp_path: Path) -> None:
    expected = {
        "netease": "NeteaseMusicClient",
        "qq": "QQMusicClient",
        "kuwo": "KuwoMusicClient",
        "kugou": "KugouMusicClient",
        "migu": "MiguMusicClient",
    }
    for platform, client_type in expected.items():
        client = MusicdlProvider(
            platform, work_dir=tmp_path, client_options={"max_retries": 2}
        )._client()
        assert client.source == client_type
        assert client.cfg == {"disable_print": True, "work_dir": str(tmp_path), "max_retries": 2}


def test_one_client_per_thread(fake_musicdl: FakeMusicdl, tmp_path: Path) -> None:
    provider = make_provider(tmp_path)
    main = provider._client()
    assert provider._client() is main
    seen: dict[int, list[Any]] = {}
    barrier = threading.Barrier(2)

    def worker() -> None:
        barrier.wait()  # both threads alive at once: two different threads
        seen[threading.get_ident()] = [provider._client(), provider._client()]

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    (a1, a2), (b1, b2) = seen.values()
    assert a1 is a2 and b1 is b2
    assert a1 is not b1 and main not in (a1, b1)
    assert len(fake_musicdl.clients) == 3


# --------------------------------------------------------------------------- playlists


def test_fetch_playlist_maps_song_infos(fake_musicdl: FakeMusicdl, tmp_path: Path) -> None:
    odd = song("3", {"stream": object()}, name="Stream Song")
    fake_musicdl.serve(
        NETEASE_URL,
        [
            song(
                "1",
                "https://m701.music.126.net/a.mp3?sig=x",
                default_download_headers={"Origin": "o"},
            ),
            song("2", "http://m8.music.126.net/b.flac", size=0),
            odd,
            song("1", "https://dup.example/again.mp3"),
        ],
    )
    provider = make_provider(tmp_path)
    content = provider.fetch_playlist(NETEASE_URL)
    assert content.name == "Night Mix"
    assert [t.remote_id for t in content.tracks] == ["1", "2", "3"]
    first, second, third = content.tracks
    assert (first.name, first.singers, first.album, first.ext) == (
        "Song 1",
        "Singer A",
        "Album B",
        "mp3",
    )
    assert (first.file_size_bytes, first.duration_seconds) == (1000, 215.0)
    assert first.download_url == "https://m701.music.126.net/a.mp3?sig=x"
    assert second.file_size_bytes is None
    info = first.metadata["musicdl"]
    assert info["client"] == "NeteaseMusicClient"
    assert info["playlist_ref"] == NETEASE_URL
    assert info["opaque"] is False
    assert info["headers"] == {
        "User-Agent": "FakeUA/1.0",
        "Referer": "https://music.163.com/",
        "Origin": "o",
    }
    snapshot = info["song"]
    assert snapshot["identifier"] == "1" and snapshot["download_url_status"] == {"ok": True}
    assert "work_dir" not in snapshot and "_save_path" not in snapshot
    # the stream-object song is kept but marked opaque, without a URL
    assert third.download_url is None
    assert third.metadata["musicdl"]["opaque"] is True
    assert "download_url" not in third.metadata["musicdl"]["song"]
    json.dumps([t.metadata for t in content.tracks])  # JSON-serializable
    assert provider.uses_opaque_download(third) and not provider.uses_opaque_download(first)


def test_snapshot_is_json_safe_and_bounded(fake_musicdl: FakeMusicdl, tmp_path: Path) -> None:
    big = song("1", "https://x.example/a.mp3", downloaded_contents=b"\x00" * 10)
    big.raw_data = {"blob": "x" * 200_000, 3: float("nan"), "obj": object(), "ok": [1, "a", None]}
    hls = song("2", "https://x.example/list.m3u8")
    fake_musicdl.serve(
        NETEASE_URL, [big, hls, song("3", "https://x.example/c.mp3", protocol="HLS")]
    )
    tracks = make_provider(tmp_path).fetch_playlist(NETEASE_URL).tracks
    assert "raw_data" not in tracks[0].metadata["musicdl"]["song"]
    assert len(json.dumps(tracks[0].metadata)) < 70_000
    assert [t.metadata["musicdl"]["opaque"] for t in tracks] == [True, True, True]


def test_playlist_name_falls_back_and_empty_work_dir_is_removed(
    fake_musicdl: FakeMusicdl, tmp_path: Path
) -> None:
    provider = make_provider(tmp_path)
    folder = provider.work_dir / "NeteaseMusicClient" / "2025-01-02-03-04-05 playlist-24381616"
    folder.mkdir(parents=True)
    fake_musicdl.serve(NETEASE_URL, [song("1", "https://x.example/a.mp3", work_dir=str(folder))])
    assert provider.fetch_playlist(NETEASE_URL).name == "NetEase Cloud Music playlist 24381616"
    assert not folder.exists()


def test_client_errors_become_provider_errors_naming_the_url(
    fake_musicdl: FakeMusicdl, tmp_path: Path
) -> None:
    provider = make_provider(tmp_path)
    with pytest.raises(ProviderError) as info:
        provider.fetch_playlist(NETEASE_URL)  # not served: a ConnectionError
    message = str(info.value)
    assert NETEASE_URL in message and "ConnectionError" in message and "\n" not in message
    fake_musicdl.serve(NETEASE_URL, [])
    with pytest.raises(ProviderError, match="no playable songs in .*24381616"):
        provider.fetch_playlist(NETEASE_URL)

    def broken(_n: int) -> list[Any]:
        raise NotImplementedError("Not supported now")

    fake_musicdl.serve(NETEASE_URL, broken)
    with pytest.raises(ProviderError, match="cannot read NetEase Cloud Music playlists"):
        provider.fetch_playlist(NETEASE_URL)


def test_missing_musicdl_gives_the_install_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "musicdl", None)
    monkeypatch.delitem(sys.modules, "musicdl.modules", raising=False)
    provider = make_provider(tmp_path)
    assert provider.handles(NETEASE_URL)
    assert provider.describe(NETEASE_URL).remote_id == "24381616"  # no musicdl needed
    with pytest.raises(ProviderError) as info:
        provider.fetch_playlist(NETEASE_URL)
    assert str(info.value) == "musicdl is not installed: pip install 'catalogsync[musicdl]'"


def test_unknown_client_in_this_musicdl_release(
    fake_musicdl: FakeMusicdl, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(
        sys.modules["musicdl.modules"],
        "BuildMusicClient",
        lambda module_cfg: {}[module_cfg["type"]],
    )
    with pytest.raises(ProviderError, match="no NeteaseMusicClient"):
        make_provider(tmp_path).fetch_playlist(NETEASE_URL)


# --------------------------------------------------------------------------- resolve / refresh


def test_resolve_plain_http_song(fake_musicdl: FakeMusicdl, tmp_path: Path) -> None:
    fake_musicdl.serve(NETEASE_URL, [song("1", "https://m701.music.126.net/a.mp3")])
    provider = make_provider(
        tmp_path, client_options={"default_download_cookies": {"MUSIC_U": "t"}}
    )
    track = provider.fetch_playlist(NETEASE_URL).tracks[0]
    spec = provider.resolve(track)
    assert spec == DownloadSpec(
        url="https://m701.music.126.net/a.mp3",
        headers={
            "User-Agent": "FakeUA/1.0",
            "Referer": "https://music.163.com/",
            "Cookie": "MUSIC_U=t",
        },
        expected_size=1000,
        sha256=None,
        ext="mp3",
    )
    # resolve needs no client: it works from the stored metadata alone
    assert len(fake_musicdl.clients) == 1


def test_resolve_refuses_opaque_and_urlless_tracks(tmp_path: Path) -> None:
    provider = make_provider(tmp_path)
    opaque = Track("1", "S", metadata={"musicdl": {"opaque": True, "opaque_reason": "HLS"}})
    with pytest.raises(TransferError) as info:
        provider.resolve(opaque)
    assert (info.value.code, info.value.permanent) == ("opaque_only", True)
    with pytest.raises(TransferError) as info:
        provider.resolve(Track("2", "T"))
    assert info.value.code == "no_url"
    with pytest.raises(TransferError) as info:
        provider.resolve(Track("3", "U", download_url="ftp://x/y.mp3"))
    assert info.value.code == "bad_url"


def test_refresh_reparses_once_and_returns_a_fresh_url(
    fake_musicdl: FakeMusicdl, tmp_path: Path
) -> None:
    fake_musicdl.serve(
        NETEASE_URL,
        lambda n: [song(str(i), f"https://cdn.example/{i}.mp3?v={n}") for i in range(3)],
    )
    provider = make_provider(tmp_path)
    tracks = provider.fetch_playlist(NETEASE_URL).tracks
    assert tracks[0].download_url == "https://cdn.example/0.mp3?v=0"
    spec = provider.refresh(tracks[0])
    assert spec.url == "https://cdn.example/0.mp3?v=1"
    assert spec.headers["Referer"] == "https://music.163.com/"
    # the other expired songs of the playlist reuse that parse
    assert [provider.refresh(t).url for t in tracks[1:]] == [
        "https://cdn.example/1.mp3?v=1",
        "https://cdn.example/2.mp3?v=1",
    ]
    assert fake_musicdl.parse_counts[NETEASE_URL] == 2


def test_refresh_from_a_new_process_and_for_a_vanished_song(
    fake_musicdl: FakeMusicdl, tmp_path: Path
) -> None:
    fake_musicdl.serve(NETEASE_URL, lambda n: [song("1", f"https://cdn.example/1.mp3?v={n}")])
    stored = make_provider(tmp_path).fetch_playlist(NETEASE_URL).tracks[0]
    fresh_provider = make_provider(tmp_path)  # nothing cached, as after a restart
    assert fresh_provider.refresh(stored).url == "https://cdn.example/1.mp3?v=1"
    gone = Track("9", "Gone", metadata={"musicdl": {"playlist_ref": NETEASE_URL}})
    with pytest.raises(TransferError) as info:
        fresh_provider.refresh(gone)
    assert info.value.code == "refresh_failed" and NETEASE_URL in str(info.value)
    with pytest.raises(TransferError, match="playlist it came from is unknown"):
        fresh_provider.refresh(Track("1", "Orphan", download_url="https://x/1.mp3"))


# --------------------------------------------------------------------------- opaque download


def test_opaque_download_through_client_download(fake_musicdl: FakeMusicdl, tmp_path: Path) -> None:
    body = mp3_body(40_000)
    fake_musicdl.download_body, fake_musicdl.download_delay = body, 0.15
    fake_musicdl.serve(NETEASE_URL, [song("1", "https://x.example/list.m3u8", size=len(body))])
    provider = make_provider(tmp_path)
    track = provider.fetch_playlist(NETEASE_URL).tracks[0]
    assert provider.uses_opaque_download(track)
    dest = tmp_path / "library" / "netease" / "Singer A" / "Song 1.mp3"
    progress: list[tuple[int, int | None]] = []
    saved = provider.download(
        track, dest, should_stop=lambda: False, on_progress=lambda d, t: progress.append((d, t))
    )
    assert saved == dest.with_name("Song 1.musicdl.mp3")
    assert saved.read_bytes() == body
    assert progress[-1] == (len(body), len(body))
    assert any(0 < done < len(body) for done, _ in progress), progress
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)


def test_opaque_download_reparses_when_the_snapshot_fails(
    fake_musicdl: FakeMusicdl, tmp_path: Path
) -> None:
    fake_musicdl.download_body = b"abc" * 100
    fake_musicdl.serve(NETEASE_URL, [song("1", {"stream": 1})])  # a stream object: no snapshot URL
    provider = make_provider(tmp_path)
    track = provider.fetch_playlist(NETEASE_URL).tracks[0]
    other = make_provider(tmp_path)  # a new process: must parse again for a live SongInfo
    saved = other.download(
        track, tmp_path / "d" / "x.mp3", should_stop=lambda: False, on_progress=lambda d, t: None
    )
    assert saved.read_bytes() == b"abc" * 100
    assert fake_musicdl.parse_counts[NETEASE_URL] == 2
    fake_musicdl.download_fails = True
    with pytest.raises(TransferError) as info:
        other.download(
            track,
            tmp_path / "d" / "y.mp3",
            should_stop=lambda: False,
            on_progress=lambda d, t: None,
        )
    assert info.value.code == "musicdl_failed"


def test_opaque_download_stops_when_asked(fake_musicdl: FakeMusicdl, tmp_path: Path) -> None:
    fake_musicdl.download_body, fake_musicdl.download_delay = b"z" * 4000, 0.3
    fake_musicdl.serve(NETEASE_URL, [song("1", "https://x.example/a.m3u8")])
    provider = make_provider(tmp_path)
    track = provider.fetch_playlist(NETEASE_URL).tracks[0]
    client = provider._client()
    stop = threading.Event()
    with pytest.raises(TransferStopped):
        provider.download(
            track,
            tmp_path / "d" / "s.mp3",
            should_stop=stop.is_set,
            on_progress=lambda d, t: stop.set(),
        )
    assert provider._client() is not client  # the busy client is not reused
    with pytest.raises(TransferStopped):
        provider.download(
            track, tmp_path / "d" / "s.mp3", should_stop=lambda: True, on_progress=lambda d, t: None
        )
    deadline = time.monotonic() + 5
    while (tmp_path / "d" / "s.musicdl.mp3").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (tmp_path / "d" / "s.musicdl.mp3").exists()


# --------------------------------------------------------------------------- registry


def test_registry_lists_musicdl_platforms_only_when_importable(
    isolated_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "musicdl", None)
    registry._register_optional()
    assert not set(PLATFORMS) & set(registry.available_platforms())


def test_registry_with_musicdl(isolated_registry: None, fake_musicdl: FakeMusicdl) -> None:
    registry._register_optional()
    registry._register_optional()  # idempotent
    platforms = registry.available_platforms()
    assert platforms[0] == "manifest" and platforms[-len(PLATFORMS) :] == list(PLATFORMS)
    provider = registry.provider_for_ref("https://y.qq.com/n/ryqq/playlist/7364061065")
    assert isinstance(provider, MusicdlProvider) and provider.platform == "qq"
    assert registry.get_provider("qq") is provider
    assert registry.provider_for_ref("/x/list.m3u").platform == "manifest"
    assert fake_musicdl.clients == []  # routing never builds a musicdl client


def test_importing_does_not_import_musicdl() -> None:
    code = (
        "import sys\n"
        "import catalogsync.providers.registry\n"
        "import catalogsync.providers.musicdl as m\n"
        "p = m.MusicdlProvider('netease')\n"
        f"assert p.handles({NETEASE_URL!r}) and p.describe({NETEASE_URL!r}).remote_id\n"
        "assert 'musicdl' not in sys.modules, 'musicdl imported'\n"
    )
    root = Path(__file__).resolve().parents[3]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, timeout=60)


# --------------------------------------------------------------------------- conformance


class TestMusicdlConformance(ProviderConformance):
    """The shared provider contract, against the fake musicdl."""

    min_tracks = 3

    @pytest.fixture(autouse=True)
    def _fake(self, fake_musicdl: FakeMusicdl, tmp_path: Path) -> None:
        fake_musicdl.serve(
            NETEASE_URL, [song(str(i), f"https://cdn.example/{i}.mp3") for i in range(3)]
        )
        self.tmp_path = tmp_path

    def make_provider(self) -> Provider:
        return make_provider(self.tmp_path)

    def make_ref(self, tmp_path: Path) -> str:
        return NETEASE_URL

    def garbage_refs(self, tmp_path: Path) -> list[str]:
        return [
            *super().garbage_refs(tmp_path),
            "https://music.163.com/",
            "https://example.com/playlist?id=1",
            "https://y.qq.com/n/ryqq/playlist/1",
        ]


# --------------------------------------------------------------------------- end to end


class _SongHandler(BaseHTTPRequestHandler):
    """Serves /expired/* with 403 and /fresh/* with the song bytes."""

    protocol_version = "HTTP/1.1"
    server: _SongServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0]
        with self.server.lock:
            self.server.seen.append(path)
        body, status = (self.server.body, 200) if path.startswith("/fresh/") else (b"expired", 403)
        self.send_response(status)
        self.send_header("Content-Type", "audio/mpeg" if status == 200 else "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _SongServer(ThreadingHTTPServer):
    daemon_threads = True
    body = b""
    lock = threading.Lock()
    seen: list[str]


@pytest.fixture
def song_server() -> Iterator[_SongServer]:
    """A real HTTP server on 127.0.0.1 for the end-to-end test."""
    server = _SongServer(("127.0.0.1", 0), _SongHandler)
    server.seen = []
    server.body = mp3_body(200_000)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_sync_download_end_to_end_refreshes_an_expired_url(
    isolated_registry: None,
    fake_musicdl: FakeMusicdl,
    song_server: _SongServer,
    tmp_path: Path,
    v2_layout: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from catalogsync.service import Catalogsync

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    base = f"http://127.0.0.1:{song_server.server_address[1]}"
    fake_musicdl.serve(
        NETEASE_URL,
        lambda n: [
            song(
                "1",
                f"{base}/{'expired' if n == 0 else 'fresh'}/1.mp3?sig={n}",
                name="Signed Song",
                size=len(song_server.body),
            )
        ],
    )
    registry._register_optional()
    service = Catalogsync.open(home=str(tmp_path / "home"))
    try:
        added = service.add_playlists([NETEASE_URL])
        assert [(a.platform, a.name) for a in added] == [
            ("netease", "NetEase Cloud Music playlist 24381616")
        ]
        job = service.submit_job("sync_download").id
        service.make_runner().run_forever(until_idle=True)
        assert service.job_row(job).status == "completed", service.job_detail(job)
        files = [p for p in service.settings.library_root.rglob("*") if p.is_file()]
        assert [p.relative_to(service.settings.library_root).as_posix() for p in files] == [
            "netease/Singer A/Signed Song.mp3"
        ]
        assert files[0].read_bytes() == song_server.body  # byte-identical
    finally:
        service.close()
    assert song_server.seen == ["/expired/1.mp3", "/fresh/1.mp3"]
    assert fake_musicdl.parse_counts[NETEASE_URL] == 2
