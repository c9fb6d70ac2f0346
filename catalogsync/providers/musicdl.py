"""Online playlists (NetEase, QQ, Kuwo, Kugou, Migu) through the optional musicdl library.

One ``MusicdlProvider`` exists per platform key (``netease``, ``qq``, ``kuwo``, ``kugou``,
``migu``): the key is what ``playlists.platform`` and ``songs.platform`` hold, so the registry's
``get_provider(platform)`` finds the right one and the library is laid out per platform.
``PLATFORMS`` is the one table mapping keys to musicdl clients and playlist URL hosts.

musicdl is imported on first real use (``fetch_playlist``, ``refresh``, ``download``), never
when this module is imported: ``import musicdl`` costs about 1.5 s. musicdl clients are not
thread-safe, so each worker thread builds its own. See ``docs/musicdl.md``.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from catalogsync.errors import (
    CatalogsyncError,
    ProviderError,
    TransferError,
    TransferStopped,
    shorten,
)
from catalogsync.providers.base import (
    DownloadSpec,
    PlaylistContent,
    PlaylistRef,
    ProgressCallback,
    Provider,
    Track,
    raise_no_url,
)

INSTALL_HINT = "pip install 'catalogsync[musicdl]'"
#: a re-parsed playlist is reused this long (seconds) before ``refresh`` parses it again
REFRESH_TTL_SECONDS = 300.0
#: a song snapshot larger than this (JSON bytes) loses its ``raw_data`` and ``lyric``
MAX_SNAPSHOT_BYTES = 64 * 1024
#: SongInfo fields never stored: local paths and in-memory payloads
_SNAPSHOT_SKIP = frozenset({"work_dir", "_save_path", "downloaded_contents", "episodes"})
#: request headers our downloader sets itself
_HEADER_SKIP = frozenset(
    {"range", "accept-encoding", "content-length", "host", "connection", "cookie"}
)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_WORK_DIR_NAME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}-\d{2}-\d{2}-\d{2} (.+)$")
_EXT_RE = re.compile(r"^[a-z0-9]{1,10}$")
_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class MusicdlPlatform:
    """One platform: its key, musicdl client and the playlist URLs it understands."""

    key: str
    client: str
    label: str
    hosts: tuple[str, ...]
    id_params: tuple[str, ...]
    id_pattern: str


#: platform key -> how to reach it through musicdl (the only place hosts are listed)
PLATFORMS: dict[str, MusicdlPlatform] = {
    p.key: p
    for p in (
        MusicdlPlatform("netease", "NeteaseMusicClient", "NetEase Cloud Music",
                        ("music.163.com",), ("id",), r"\d{1,20}"),
        MusicdlPlatform("qq", "QQMusicClient", "QQ Music",
                        ("y.qq.com",), ("id", "disstid"), r"\d{1,20}"),
        MusicdlPlatform("kuwo", "KuwoMusicClient", "Kuwo Music",
                        ("kuwo.cn",), ("id", "pid"), r"\d{1,20}"),
        MusicdlPlatform("kugou", "KugouMusicClient", "Kugou Music",
                        ("kugou.com",), ("specialid", "global_collection_id", "id"),
                        r"\d{1,20}|(?:gcid|collection)_[A-Za-z0-9_]{1,80}"),
        MusicdlPlatform("migu", "MiguMusicClient", "Migu Music",
                        ("music.migu.cn", "c.migu.cn"), ("playlistId", "id"), r"\d{1,20}"),
    )
}  # fmt: skip


# --------------------------------------------------------------------------- URLs


def _one_line(exc: BaseException) -> str:
    """An exception as a short single line: its type and first message line."""
    lines = str(exc).strip().splitlines()
    text = lines[0].strip() if lines else ""
    return shorten(f"{type(exc).__name__}: {text}" if text else type(exc).__name__, 160)


def _split_url(ref: object) -> Any:
    """``urlsplit`` of an http(s) URL with a host, or None for anything else."""
    if not isinstance(ref, str) or _CONTROL_RE.search(ref):
        return None
    try:
        parts = urlsplit(ref.strip())
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return parts


def _host_matches(host: str, suffixes: tuple[str, ...]) -> bool:
    """Whether ``host`` is one of ``suffixes`` or a subdomain of one."""
    return any(host == s or host.endswith("." + s) for s in suffixes)


def platform_for_url(ref: object) -> str | None:
    """The platform key whose hosts serve the http(s) URL ``ref``, or None."""
    parts = _split_url(ref)
    if parts is None:
        return None
    host = parts.hostname.rstrip(".")
    for platform in PLATFORMS.values():
        if _host_matches(host, platform.hosts):
            return platform.key
    return None


def playlist_id_from_url(ref: str, platform: MusicdlPlatform) -> str | None:
    """The playlist id in a playlist URL (query, ``#/...?id=`` fragment or last path segment)."""
    parts = _split_url(ref)
    if parts is None:
        return None
    pattern = re.compile(platform.id_pattern)
    frag_path, _, frag_query = parts.fragment.partition("?")
    for query in (parts.query, frag_query):
        params = parse_qs(query)
        for name in platform.id_params:
            for value in params.get(name, []):
                found: str = value.strip()
                if pattern.fullmatch(found):
                    return found
    for path in (frag_path, parts.path):
        segments = [s for s in path.split("/") if s]
        if segments:
            last = re.sub(r"\.html?$", "", segments[-1], flags=re.IGNORECASE)
            if pattern.fullmatch(last):
                return last
    return None


# --------------------------------------------------------------------------- SongInfo access


def _field(song: Any, name: str, default: Any = None) -> Any:
    """A SongInfo field (SongInfo objects, or dicts from old musicdl releases)."""
    if isinstance(song, dict):
        return song.get(name, default)
    return getattr(song, name, default)


def _set_field(song: Any, name: str, value: Any) -> None:
    """Set a SongInfo field on an object or dict."""
    if isinstance(song, dict):
        song[name] = value
    else:
        setattr(song, name, value)


def _text(value: Any) -> str:
    """A display string from a SongInfo field (None -> "")."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(_text(v) for v in value if v is not None)
    return _CONTROL_RE.sub("", str(value)).strip()


MAX_LYRICS_CHARS = 64 * 1024


def _cover_url(value: Any) -> str | None:
    """SongInfo.cover_url when it is an http(s) URL (the tagger fetches it), else None."""
    text = _text(value)
    return text if text.lower().startswith(("http://", "https://")) and " " not in text else None


def _lyrics(value: Any) -> str | None:
    """SongInfo.lyric (plain or LRC text) with its line breaks, bounded; None when absent."""
    if not isinstance(value, str):
        return None
    lines = [_CONTROL_RE.sub("", line).rstrip() for line in value.splitlines()]
    text = "\n".join(lines).strip()[:MAX_LYRICS_CHARS]
    return text or None


def _positive_int(value: Any) -> int | None:
    """An integer > 0 from a SongInfo field, else None."""
    try:
        number = int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number > 0 else None


def _positive_float(value: Any) -> float | None:
    """A finite float > 0 from a SongInfo field, else None."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _iter_songs(songs: Any) -> Iterator[Any]:
    """SongInfos of a parsed playlist, with multi-episode items replaced by their episodes."""
    for song in songs or []:
        episodes = _field(song, "episodes")
        if isinstance(episodes, list) and episodes:
            yield from episodes
        elif song is not None:
            yield song


def opaque_reason(song: Any) -> str:
    """Why a song needs musicdl's own downloader ("" when its URL is plain HTTP)."""
    url = _field(song, "download_url")
    if not isinstance(url, str):
        return "its download is a stream object, not a URL"
    if _split_url(url) is None:
        return "its download URL is not http(s)"
    protocol = str(_field(song, "protocol") or "HTTP").upper()
    if protocol != "HTTP":
        return f"it is delivered over {protocol}"
    if _field(song, "downloaded_contents"):
        return "musicdl holds its bytes in memory"
    raw = _field(song, "raw_data")
    if isinstance(raw, dict) and raw.get("decryption"):
        return "it must be decrypted after download"
    if urlsplit(url).path.lower().endswith((".m3u8", ".m3u", ".mpd")):
        return "it is a streaming playlist"
    return ""


_DROP = object()


def _json_safe(value: Any, depth: int = 0) -> Any:
    """``value`` reduced to JSON types; anything else becomes ``_DROP``."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth > 16:
        return _DROP
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            safe = _json_safe(item, depth + 1)
            if safe is not _DROP and isinstance(key, (str, int, float, bool)):
                out[str(key)] = safe
        return out
    if isinstance(value, (list, tuple)):
        return [s for s in (_json_safe(v, depth + 1) for v in value) if s is not _DROP]
    return _DROP


def song_snapshot(song: Any) -> dict[str, Any]:
    """A JSON-serializable copy of ``SongInfo.todict()`` without local paths or payloads."""
    todict = getattr(song, "todict", None)
    try:
        data = todict() if callable(todict) else dict(song) if isinstance(song, dict) else {}
    except Exception:  # a foreign object: keep what we can read below
        data = {}
    if not isinstance(data, dict):
        data = {}
    snapshot = {k: v for k, v in data.items() if k not in _SNAPSHOT_SKIP}
    if not isinstance(snapshot.get("download_url"), str):
        snapshot.pop("download_url", None)
    safe = _json_safe(snapshot)
    result: dict[str, Any] = safe if isinstance(safe, dict) else {}
    for bulky in ("raw_data", "lyric"):
        if len(json.dumps(result, ensure_ascii=False)) <= MAX_SNAPSHOT_BYTES:
            break
        result.pop(bulky, None)
    return result


def _string_headers(*sources: Any) -> dict[str, str]:
    """Merge header dicts, keeping string values and dropping ones our downloader sets."""
    headers: dict[str, str] = {}
    for source in sources:
        if not isinstance(source, dict):
            continue
        for key, value in source.items():
            if not isinstance(key, str) or not isinstance(value, (str, int, float)):
                continue
            if key.lower() in _HEADER_SKIP or _CONTROL_RE.search(f"{key}{value}"):
                continue
            for existing in [k for k in headers if k.lower() == key.lower()]:
                del headers[existing]
            headers[key] = str(value)
    return headers


def _cookie_header(cookies: Any) -> str:
    """A Cookie header value from a musicdl cookies setting (dict or string)."""
    if isinstance(cookies, str):
        return "" if _CONTROL_RE.search(cookies) else cookies.strip()
    if isinstance(cookies, dict):
        pairs = [f"{k}={v}" for k, v in cookies.items() if isinstance(k, str) and v is not None]
        text = "; ".join(pairs)
        return "" if _CONTROL_RE.search(text) else text
    return ""


def _accepts(func: Any, name: str) -> bool:
    """Whether calling ``func`` with keyword ``name`` is allowed by its signature."""
    import inspect

    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _import_musicdl_modules() -> Any:
    """``musicdl.modules`` (ProviderError with the install hint when musicdl is missing)."""
    try:
        return importlib.import_module("musicdl.modules")
    except ImportError as exc:
        if (exc.name or "").split(".")[0] == "musicdl" or exc.name is None:
            raise ProviderError(f"musicdl is not installed: {INSTALL_HINT}") from exc
        raise ProviderError(
            f"musicdl is not installed: {INSTALL_HINT} (importing it failed: {_one_line(exc)})"
        ) from exc


# --------------------------------------------------------------------------- provider


@dataclass
class _Parsed:
    """One parse of a playlist: tracks and live SongInfos by remote id."""

    at: float
    name: str
    tracks: list[Track]
    songs: dict[str, Any] = field(default_factory=dict)
    by_id: dict[str, Track] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        """Index the tracks by remote id."""
        self.by_id = {t.remote_id: t for t in self.tracks}

    def track(self, remote_id: str) -> Track | None:
        """The track with ``remote_id``, or None."""
        return self.by_id.get(remote_id)


class MusicdlProvider(Provider):
    """Playlists and songs of one musicdl platform (the key is ``platform``)."""

    platform = ""
    opaque_download = False  # plain HTTP songs go through our downloader; see download()

    def __init__(
        self,
        platform: str,
        *,
        work_dir: str | os.PathLike[str] | None = None,
        client_options: dict[str, Any] | None = None,
        refresh_ttl: float = REFRESH_TTL_SECONDS,
    ) -> None:
        """Prepare the provider; musicdl itself is imported on first use."""
        if platform not in PLATFORMS:
            raise ValueError(
                f"unknown musicdl platform {platform!r} (known: {', '.join(PLATFORMS)})"
            )
        self.spec = PLATFORMS[platform]
        self.platform = platform
        if work_dir is None:
            from platformdirs import user_cache_path

            work_dir = user_cache_path("catalogsync") / "musicdl"
        self.work_dir = Path(work_dir)
        self.client_options = dict(client_options or {})
        self.refresh_ttl = refresh_ttl
        self._local = threading.local()
        self._lock = threading.Lock()
        self._ref_locks: dict[str, threading.Lock] = {}
        self._cache: dict[str, _Parsed] = {}

    # -- clients ---------------------------------------------------------------

    def _client(self) -> Any:
        """This thread's musicdl client, built on first use (clients are not thread-safe)."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._build_client()
        return client

    def _drop_client(self) -> None:
        """Forget this thread's client (another thread may still be using it)."""
        self._local.client = None

    def _build_client(self) -> Any:
        """A new musicdl client for this platform."""
        modules = _import_musicdl_modules()
        config: dict[str, Any] = {"disable_print": True, "work_dir": str(self.work_dir)}
        config.update(self.client_options)
        config["type"] = self.spec.client
        try:
            return modules.BuildMusicClient(module_cfg=config)
        except KeyError:
            raise ProviderError(
                f"this musicdl release has no {self.spec.client}; upgrade it: "
                f"pip install -U 'catalogsync[musicdl]'"
            ) from None
        except Exception as exc:
            raise ProviderError(
                f"cannot start musicdl's {self.spec.client}: {_one_line(exc)}"
            ) from exc

    # -- playlists ---------------------------------------------------------------

    def handles(self, ref: str) -> bool:
        """True for an http(s) playlist URL on one of this platform's hosts."""
        return (
            platform_for_url(ref) == self.platform
            and playlist_id_from_url(ref, self.spec) is not None
        )

    def _playlist_id(self, ref: str) -> str:
        """The playlist id of a URL this provider handles (ProviderError otherwise)."""
        if platform_for_url(ref) == self.platform:
            playlist_id = playlist_id_from_url(ref, self.spec)
            if playlist_id is not None:
                return playlist_id
            reason = "has no playlist id"
        else:
            reason = f"is not a {self.spec.label} playlist URL"
        shown = shorten(repr(ref if isinstance(ref, str) else str(ref)))
        hosts = ", ".join(self.spec.hosts)
        raise ProviderError(f"{shown} {reason} (expected an http(s) link on {hosts})")

    def describe(self, ref: str) -> PlaylistRef:
        """Identify a playlist from its URL alone (no network); the name is a placeholder."""
        playlist_id = self._playlist_id(ref)
        return PlaylistRef(
            platform=self.platform,
            remote_id=playlist_id,
            name=f"{self.spec.label} playlist {playlist_id}",
            ref=ref.strip(),
        )

    def fetch_playlist(self, ref: str) -> PlaylistContent:
        """Tracks of a playlist from ``client.parseplaylist`` (ProviderError naming the URL)."""
        parsed = self._parse(ref)
        return PlaylistContent(name=parsed.name, tracks=list(parsed.tracks))

    def _parse(self, ref: str) -> _Parsed:
        """Parse a playlist with musicdl, cache the result and return it."""
        playlist_id = self._playlist_id(ref)
        url = ref.strip()
        client = self._client()
        try:
            songs = list(client.parseplaylist(url) or [])
        except CatalogsyncError:
            raise
        except NotImplementedError:
            raise ProviderError(
                f"this musicdl release cannot read {self.spec.label} playlists ({shorten(url)})"
            ) from None
        except Exception as exc:
            raise ProviderError(
                f"musicdl could not read playlist {shorten(url)}: {_one_line(exc)}"
            ) from exc
        headers = _string_headers(getattr(client, "default_download_headers", None))
        name, tracks, live = "", [], {}
        for song in _iter_songs(songs):
            track = self._track_from_song(song, url, headers)
            if track.remote_id in live:
                continue
            live[track.remote_id] = song
            tracks.append(track)
            name = name or self._name_from_work_dir(_field(song, "work_dir"), playlist_id)
        if not tracks:
            raise ProviderError(
                f"musicdl found no playable songs in {shorten(url)} "
                "(network problem, private or empty playlist?)"
            )
        name = name or f"{self.spec.label} playlist {playlist_id}"
        parsed = _Parsed(time.monotonic(), name, tracks, live)
        with self._lock:
            now = time.monotonic()
            for key in [k for k, v in self._cache.items() if now - v.at > self.refresh_ttl]:
                del self._cache[key]
            self._cache[url] = parsed
        return parsed

    def _name_from_work_dir(self, work_dir: Any, playlist_id: str) -> str:
        """The playlist name musicdl put in the folder it made, removing that empty folder."""
        if not isinstance(work_dir, str) or not work_dir:
            return ""
        folder = Path(work_dir)
        match = _WORK_DIR_NAME_RE.match(folder.name)
        try:
            if folder.resolve().is_relative_to(self.work_dir.resolve()):
                folder.rmdir()  # musicdl creates one empty folder per parse; only if empty
        except OSError:
            pass
        name = _text(match.group(1)) if match else ""
        return "" if name in ("", f"playlist-{playlist_id}") else name

    def _track_from_song(self, song: Any, playlist_ref: str, headers: dict[str, str]) -> Track:
        """Map a musicdl SongInfo to a Track (metadata holds a JSON snapshot of it)."""
        name = _text(_field(song, "song_name"))
        singers = _text(_field(song, "singers"))
        album = _text(_field(song, "album"))
        remote_id = _text(_field(song, "identifier"))
        if not remote_id:
            key = f"{name}\x1f{singers}\x1f{album}".encode()
            remote_id = "h" + hashlib.sha1(key, usedforsecurity=False).hexdigest()[:16]
        ext = _text(_field(song, "ext")).lower().lstrip(".")
        reason = opaque_reason(song)
        url = _field(song, "download_url")
        return Track(
            remote_id=remote_id,
            name=name or f"song {remote_id}",
            singers=singers,
            album=album,
            duration_seconds=_positive_float(_field(song, "duration_s")),
            ext=ext if _EXT_RE.match(ext) else "",
            file_size_bytes=_positive_int(_field(song, "file_size_bytes")),
            download_url=None if reason else str(url),
            cover_url=_cover_url(_field(song, "cover_url")),
            lyrics=_lyrics(_field(song, "lyric")),
            metadata={
                "musicdl": {
                    "client": self.spec.client,
                    "playlist_ref": playlist_ref,
                    "opaque": bool(reason),
                    "opaque_reason": reason,
                    "headers": _string_headers(headers, _field(song, "default_download_headers")),
                    "song": song_snapshot(song),
                }
            },
        )

    # -- songs ---------------------------------------------------------------------

    @staticmethod
    def _info(track: Track) -> dict[str, Any]:
        """The ``musicdl`` part of a track's metadata ({} when absent)."""
        info = track.metadata.get("musicdl") if isinstance(track.metadata, dict) else None
        return info if isinstance(info, dict) else {}

    def uses_opaque_download(self, track: Track) -> bool:
        """Whether this track needs ``download`` (musicdl's machinery) instead of ``resolve``."""
        return bool(self._info(track).get("opaque"))

    def resolve(self, track: Track) -> DownloadSpec:
        """A DownloadSpec for a plain HTTP song, with the platform's download headers."""
        info = self._info(track)
        if info.get("opaque"):
            reason = info.get("opaque_reason") or "it is not a plain HTTP download"
            raise TransferError(
                f"song {track.name!r} needs musicdl's own downloader ({reason}); "
                "this catalogsync engine only runs it for opaque providers",
                code="opaque_only",
                permanent=True,
            )
        if not track.download_url:
            raise_no_url(track)
        url = track.download_url or ""
        if _split_url(url) is None:
            raise TransferError(
                f"song {track.name!r} has a non-HTTP download URL {shorten(url)!r}",
                code="bad_url",
                permanent=True,
            )
        headers = _string_headers(info.get("headers"))
        cookie = _cookie_header(self.client_options.get("default_download_cookies"))
        if cookie:
            headers["Cookie"] = cookie
        return DownloadSpec(
            url=url,
            headers=headers,
            expected_size=track.file_size_bytes,
            sha256=track.sha256,
            ext=track.ext,
        )

    def _ref_lock(self, ref: str) -> threading.Lock:
        """The lock serializing re-parses of one playlist."""
        with self._lock:
            return self._ref_locks.setdefault(ref, threading.Lock())

    def _fresh(self, track: Track, *, stale_url: str | None) -> tuple[Track, Any]:
        """The track (and live SongInfo) from a recent parse whose URL is not ``stale_url``."""
        # musicdl has no public call to re-resolve one song, so the playlist the song came
        # from is parsed again; parses are cached for ``refresh_ttl`` seconds and serialized
        # per playlist, so many expired songs of one playlist cost one parse.
        ref = self._info(track).get("playlist_ref")
        if not isinstance(ref, str) or not ref:
            raise TransferError(
                f"song {track.name!r} cannot be refreshed: the playlist it came from is unknown",
                code="refresh_failed",
                permanent=True,
            )
        with self._ref_lock(ref):
            with self._lock:
                parsed = self._cache.get(ref)
            if parsed is not None and time.monotonic() - parsed.at <= self.refresh_ttl:
                hit = parsed.track(track.remote_id)
                if hit is not None and (stale_url is None or hit.download_url != stale_url):
                    return hit, parsed.songs.get(track.remote_id)
            parsed = self._parse(ref)
        hit = parsed.track(track.remote_id)
        if hit is None:
            raise TransferError(
                f"song {track.name!r} is no longer offered by playlist {shorten(ref)}",
                code="refresh_failed",
            )
        return hit, parsed.songs.get(track.remote_id)

    def refresh(self, track: Track) -> DownloadSpec:
        """Re-resolve an expired URL once (re-parses the song's playlist, see ``_fresh``)."""
        fresh, _song = self._fresh(track, stale_url=track.download_url)
        return self.resolve(fresh)

    def _song_info_class(self) -> Any:
        """musicdl's SongInfo class, or None when this release has none."""
        modules = _import_musicdl_modules()
        found = getattr(modules, "SongInfo", None)
        if found is None:
            try:
                found = getattr(importlib.import_module("musicdl.modules.utils"), "SongInfo", None)
            except ImportError:
                found = None
        return found

    def _song_from_snapshot(self, track: Track) -> Any:
        """A SongInfo rebuilt from the track's snapshot, or None when that is not possible."""
        snapshot = self._info(track).get("song")
        if not isinstance(snapshot, dict) or not isinstance(snapshot.get("download_url"), str):
            return None
        song_info = self._song_info_class()
        if song_info is None or not callable(getattr(song_info, "fromdict", None)):
            return None
        try:
            return song_info.fromdict(copy.deepcopy(snapshot))
        except Exception:  # an incompatible snapshot: the caller asks musicdl again
            return None

    def download(
        self,
        track: Track,
        dest: Path,
        *,
        should_stop: Callable[[], bool],
        on_progress: ProgressCallback,
    ) -> Path:
        """Download a song with ``client.download`` into ``dest``'s folder; returns the file."""
        # The SongInfo is rebuilt from the track's snapshot; when that cannot be rebuilt (a
        # stream object) or saves nothing, the playlist is parsed again once.
        if should_stop():
            raise TransferStopped("transfer stopped")
        dest = Path(dest)
        song = self._song_from_snapshot(track)
        saved = None
        if song is not None:
            saved = self._download_once(song, track, dest, should_stop, on_progress)
        if saved is None:
            stale = track.metadata["musicdl"]["song"]["download_url"] if song is not None else None
            fresh = self._fresh(track, stale_url=stale)[1]
            if fresh is not None:
                saved = self._download_once(fresh, track, dest, should_stop, on_progress)
        if saved is None:
            raise TransferError(
                f"musicdl could not download song {track.name!r} (no file was saved)",
                code="musicdl_failed",
            )
        return saved

    def _download_once(
        self,
        song: Any,
        track: Track,
        dest: Path,
        should_stop: Callable[[], bool],
        on_progress: ProgressCallback,
    ) -> Path | None:
        """One ``client.download`` of a SongInfo copy saved next to ``dest``; None on failure."""
        work = copy.copy(song)
        ext = _text(_field(work, "ext")).lower().lstrip(".") or track.ext or "bin"
        target = dest.with_name(f"{dest.stem}.musicdl.{ext}")  # seen by FileGrowthMonitor
        dest.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        _set_field(work, "work_dir", str(dest.parent))
        if isinstance(work, dict) or hasattr(work, "_save_path"):
            _set_field(work, "_save_path", str(target))
        saved = self._run_download(work, track, target, should_stop, on_progress)
        return saved if saved is not None and saved.is_file() else None

    def _run_download(
        self,
        song: Any,
        track: Track,
        target: Path,
        should_stop: Callable[[], bool],
        on_progress: ProgressCallback,
    ) -> Path | None:
        """Run ``client.download`` in a helper thread, reporting growth and honouring stops."""
        client = self._client()
        kwargs: dict[str, Any] = {"num_threadings": 1}
        if _accepts(client.download, "auto_supplement_song"):
            kwargs["auto_supplement_song"] = False
        if _accepts(client.download, "progress_handler"):
            from rich.progress import Progress

            kwargs["progress_handler"] = Progress(disable=True)
        outcome: dict[str, Any] = {}
        done, abandoned = threading.Event(), threading.Event()

        def work() -> None:
            try:
                try:
                    outcome["songs"] = client.download([song], **kwargs)
                except TypeError as exc:  # an older release without our extra keywords
                    if "unexpected keyword" not in str(exc):
                        raise
                    outcome["songs"] = client.download([song], num_threadings=1)
            except BaseException as exc:
                outcome["error"] = exc
            finally:
                done.set()
                if abandoned.is_set():
                    target.unlink(missing_ok=True)

        thread = threading.Thread(target=work, name=f"musicdl-download:{track.remote_id}")
        thread.daemon = True
        thread.start()
        expected = track.file_size_bytes
        while not done.wait(_POLL_SECONDS):
            on_progress(_size(target), expected)
            if should_stop():
                # musicdl cannot be interrupted: leave it to finish (it deletes its file then)
                # on a client nobody else will use.
                abandoned.set()
                self._drop_client()
                raise TransferStopped("transfer stopped")
        on_progress(_size(target), expected)
        error = outcome.get("error")
        if error is not None:
            if isinstance(error, CatalogsyncError):
                raise error
            raise TransferError(
                f"musicdl could not download song {track.name!r}: {_one_line(error)}",
                code="musicdl_error",
            ) from error
        for done_song in outcome.get("songs") or []:
            path = _field(done_song, "save_path")
            if isinstance(path, (str, os.PathLike)) and str(path):
                return Path(path)
        return target if target.is_file() and outcome.get("songs") else None


def _size(path: Path) -> int:
    """Bytes in ``path`` (0 when absent)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0
