"""A built-in demo source: a local HTTP server with generated songs and playlists.

A new user can watch real transfers without any account: ``DemoServer`` serves a few
playlists of generated WAV songs (deterministic bytes, 1.5-4 MB each) from 127.0.0.1 with a
per-connection bandwidth cap, and ``write_demo_manifests`` writes those playlists as JSON
manifests that the ordinary manifest provider reads.

Routes: ``/playlists/`` (JSON index), ``/playlists/<slug>.m3u``, ``/playlists/<slug>.json``
and ``/songs/<song id>.wav`` (with ``Range`` support).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import socket
import struct
import sys
import threading
import time
import zlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

SAMPLE_RATE = 22_050
MIN_SONG_BYTES = 1_500_000
MAX_SONG_BYTES = 4_000_000
CHUNK_BYTES = 32 * 1024
_HEADER_BYTES = 44
_BLOCK_SAMPLES = 32_768  # one repeating block of 16-bit mono PCM (64 KiB)
_BLOCK_BYTES = _BLOCK_SAMPLES * 2


@dataclass(frozen=True)
class DemoSong:
    """One generated song; its bytes are a pure function of ``id``."""

    id: str
    artist: str
    title: str
    album: str
    track: int = 0  # number on its album (0 = unknown)
    year: int = 0

    @property
    def size(self) -> int:
        """File size in bytes."""
        return song_size(self.id)

    @property
    def duration_seconds(self) -> float:
        """Playing time of the PCM data."""
        return round((self.size - _HEADER_BYTES) / (SAMPLE_RATE * 2), 2)

    @property
    def path(self) -> str:
        """URL path of the song on the demo server."""
        return f"/songs/{self.id}.wav"


@dataclass(frozen=True)
class DemoPlaylist:
    """A named demo playlist."""

    slug: str
    name: str
    songs: tuple[DemoSong, ...]


_SHARED = DemoSong(
    "neon-harbor-overpass", "Neon Harbor", "Midnight Overpass", "Tail Lights", 1, 2020
)

#: The demo playlists; "Midnight Overpass" is in both Night Drive and Deep Focus, so the
#: library downloads it once.
DEMO_PLAYLISTS: tuple[DemoPlaylist, ...] = (
    DemoPlaylist(
        "night-drive",
        "Night Drive",
        (
            _SHARED,
            DemoSong(
                "velvet-static-sodium", "Velvet Static", "Sodium Lights", "Tail Lights", 2, 2020
            ),
            DemoSong(
                "the-long-exits-route9", "The Long Exits", "Route Nine", "Mile Markers", 1, 2023
            ),
            DemoSong(
                "lumen-kid-afterhours", "Lumen Kid", "After Hours Arcade", "Coinslot", 1, 2018
            ),
            DemoSong("glass-orchard-rearview", "Glass Orchard", "Rearview", "Reflections", 1, 2015),
            DemoSong("nova-ferry-coastline", "Nova Ferry", "Coastline at 3am", "Low Tide", 1, 2023),
        ),
    ),
    DemoPlaylist(
        "morning-coffee",
        "Morning Coffee",
        (
            DemoSong(
                "june-paper-first-light", "June Paper", "First Light", "Kettle Songs", 1, 2016
            ),
            DemoSong(
                "the-oat-milks-porch", "The Oat Milks", "Porch Swing", "Sunday Papers", 1, 2024
            ),
            DemoSong(
                "clara-bell-crumbs", "Clara Bell", "Crumbs on the Table", "Kettle Songs", 2, 2016
            ),
            DemoSong("slow-toast-french-press", "Slow Toast", "French Press", "Brew", 1, 2015),
            DemoSong("maple-avenue-window", "Maple Avenue", "Open Window", "Houseplants", 1, 2019),
        ),
    ),
    DemoPlaylist(
        "workout-mix",
        "Workout Mix",
        (
            DemoSong("iron-pulse-overdrive", "Iron Pulse", "Overdrive", "Reps", 1, 2015),
            DemoSong("kilo-sprint-hill", "Kilo Sprint", "Hill Repeats", "Interval", 1, 2022),
            DemoSong("the-cadence-one-more", "The Cadence", "One More Set", "Reps", 2, 2015),
            DemoSong("volt-theory-redline", "Volt Theory", "Redline", "Amperage", 1, 2017),
            DemoSong("max-heart-finish", "Max Heart", "Finish Line", "Personal Best", 1, 2021),
            DemoSong("static-jump-box", "Static Jump", "Box Jumps", "Plyo", 1, 2015),
            DemoSong(
                "cooldown-club-stretch", "Cooldown Club", "Stretch It Out", "Rest Day", 1, 2017
            ),
        ),
    ),
    DemoPlaylist(
        "deep-focus",
        "Deep Focus",
        (
            DemoSong("quiet-index-margins", "Quiet Index", "Margins", "Footnotes", 1, 2016),
            _SHARED,
            DemoSong("ambient-ledger-ink", "Ambient Ledger", "Slow Ink", "Footnotes", 2, 2016),
            DemoSong("hollow-lattice-grid", "Hollow Lattice", "Grid Paper", "Graphite", 1, 2015),
        ),
    ),
)


def album_artist(song: DemoSong) -> str:
    """The song's artist, or "Various Artists" on an album several artists share (beets' way)."""
    artists = {s.artist for p in DEMO_PLAYLISTS for s in p.songs if s.album == song.album}
    return song.artist if len(artists) == 1 else "Various Artists"


def album_slug(album: str) -> str:
    """The album's name in a cover URL (``Tail Lights`` -> ``tail-lights``)."""
    return re.sub(r"[^a-z0-9]+", "-", album.lower()).strip("-") or "album"


@lru_cache(maxsize=64)
def cover_png(slug: str) -> bytes:
    """A 64x64 PNG in two colours drawn from the album's name: the demo's cover art."""
    digest = hashlib.sha256(slug.encode("utf-8")).digest()
    top, bottom = digest[0:3], digest[3:6]
    rows = b"".join(b"\x00" + (top if y < 40 else bottom) * 64 for y in range(64))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------- song bytes


def _seed(song_id: str) -> int:
    """A 64-bit number derived from a song id."""
    return int.from_bytes(hashlib.sha256(song_id.encode("utf-8")).digest()[:8], "big")


def song_size(song_id: str) -> int:
    """Deterministic size in bytes (1.5-4 MB, whole 16-bit samples) of a generated song."""
    size = MIN_SONG_BYTES + _seed(song_id) % (MAX_SONG_BYTES - MIN_SONG_BYTES)
    return size - (size - _HEADER_BYTES) % 2


def _wav_header(data_bytes: int) -> bytes:
    """A 44-byte RIFF/WAVE header for 16-bit mono PCM."""
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16, 1, 1,
        SAMPLE_RATE, SAMPLE_RATE * 2, 2, 16, b"data", data_bytes,
    )  # fmt: skip


@lru_cache(maxsize=64)
def _pcm_block(song_id: str) -> bytes:
    """64 KiB of PCM (a two-tone chord) that repeats seamlessly for the song's data."""
    seed = _seed(song_id)
    low = 300 + (seed >> 16) % 600  # whole cycles per block -> seamless repetition
    high = low * 3 // 2
    samples = array(
        "h",
        (
            int(
                5000 * math.sin(2 * math.pi * low * n / _BLOCK_SAMPLES)
                + 2500 * math.sin(2 * math.pi * high * n / _BLOCK_SAMPLES)
            )
            for n in range(_BLOCK_SAMPLES)
        ),
    )
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def _song_slice(song_id: str, start: int, stop: int) -> bytes:
    """Bytes ``[start, stop)`` of a generated song."""
    size = song_size(song_id)
    stop = min(stop, size)
    out = bytearray()
    pos = start
    if pos < _HEADER_BYTES:
        header = _wav_header(size - _HEADER_BYTES)
        out += header[pos : min(stop, _HEADER_BYTES)]
        pos = min(stop, _HEADER_BYTES)
    block = _pcm_block(song_id)
    while pos < stop:
        offset = (pos - _HEADER_BYTES) % _BLOCK_BYTES
        take = min(_BLOCK_BYTES - offset, stop - pos)
        out += block[offset : offset + take]
        pos += take
    return bytes(out)


def iter_song_bytes(
    song_id: str, start: int = 0, stop: int | None = None, chunk_size: int = CHUNK_BYTES
) -> Iterator[bytes]:
    """Yield bytes ``[start, stop)`` of a generated song in chunks, generated on the fly."""
    end = song_size(song_id) if stop is None else min(stop, song_size(song_id))
    pos = max(start, 0)
    while pos < end:
        nxt = min(pos + chunk_size, end)
        yield _song_slice(song_id, pos, nxt)
        pos = nxt


@lru_cache(maxsize=128)
def song_sha256(song_id: str) -> str:
    """Hex SHA-256 of a generated song's full content."""
    digest = hashlib.sha256()
    for chunk in iter_song_bytes(song_id, chunk_size=1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------- HTTP server

_RANGE_RE = re.compile(r"^\s*bytes\s*=\s*(\d{0,18})\s*-\s*(\d{0,18})\s*$", re.IGNORECASE)


def _parse_range(header: str, size: int) -> tuple[int, int] | None | bool:
    """``(start, stop)`` of a single byte range, None to ignore it, False if unsatisfiable."""
    match = _RANGE_RE.match(header)
    if not match or not (match.group(1) or match.group(2)):
        return None  # malformed or multi-range: serve the whole file (allowed by RFC 9110)
    first, last = match.groups()
    if not first:
        suffix = int(last)
        return (max(size - suffix, 0), size) if suffix else False
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        return False
    return start, size if not last else min(int(last) + 1, size)


class _DemoHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its DemoServer."""

    daemon_threads = True
    demo: DemoServer


class _DemoHandler(BaseHTTPRequestHandler):
    """Serves playlists and paced song bytes."""

    server: _DemoHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "catalogsync-demo/1"
    timeout = 30  # idle keep-alive connections go away on their own

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the demo must not scribble over the terminal UI."""

    def setup(self) -> None:
        """Track the connection so ``stop()`` can cut it."""
        super().setup()
        self.server.demo._track_connection(self.connection, add=True)

    def finish(self) -> None:
        """Forget the connection."""
        try:
            super().finish()
        finally:
            self.server.demo._track_connection(self.connection, add=False)

    def do_GET(self) -> None:
        """Serve a GET request."""
        self._serve(head=False)

    def do_HEAD(self) -> None:
        """Serve a HEAD request."""
        self._serve(head=True)

    def _serve(self, *, head: bool) -> None:
        """Route a request; a client that goes away is not an error."""
        try:
            self._route(head)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            self.close_connection = True

    def _route(self, head: bool) -> None:
        """Dispatch on the URL path."""
        demo = self.server.demo
        path = unquote(urlsplit(self.path).path)
        if path in ("/", "/playlists", "/playlists/"):
            self._send_body(200, "application/json", demo.index_json().encode(), head)
            return
        match = re.fullmatch(r"/playlists/([a-z0-9-]+)\.(m3u|json)", path)
        if match:
            playlist = demo.playlist(match.group(1))
            if playlist is None:
                self._send_body(404, "text/plain", b"no such playlist\n", head)
            elif match.group(2) == "m3u":
                body = demo.playlist_m3u(playlist).encode("utf-8")
                self._send_body(200, "audio/x-mpegurl; charset=utf-8", body, head)
            else:
                body = json.dumps(demo.playlist_json(playlist), indent=2).encode("utf-8")
                self._send_body(200, "application/json", body, head)
            return
        match = re.fullmatch(r"/covers/([a-z0-9-]+)\.png", path)
        if match and match.group(1) in {album_slug(s.album) for s in demo.songs.values()}:
            self._send_body(200, "image/png", cover_png(match.group(1)), head)
            return
        match = re.fullmatch(r"/songs/([a-z0-9-]+)\.wav", path)
        if match and match.group(1) in demo.songs:
            self._send_song(match.group(1), head)
            return
        self._send_body(404, "text/plain", b"not found\n", head)

    def _send_body(self, status: int, content_type: str, body: bytes, head: bool) -> None:
        """Send a small complete response."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _send_song(self, song_id: str, head: bool) -> None:
        """Send a song (or a byte range of it) at the server's bandwidth cap."""
        size = song_size(song_id)
        start, stop, status = 0, size, 200
        header = self.headers.get("Range")
        if header:
            wanted = _parse_range(header, size)
            if wanted is False:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if isinstance(wanted, tuple):
                (start, stop), status = wanted, 206
        self.send_response(status)
        self.send_header("Content-Type", "audio/wav")
        self.send_header("Content-Length", str(stop - start))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", f'"{song_sha256(song_id)}"')
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{stop - 1}/{size}")
        self.end_headers()
        if not head:
            self._send_paced(iter_song_bytes(song_id, start, stop))

    def _send_paced(self, chunks: Iterator[bytes]) -> None:
        """Write chunks, sleeping so this connection stays under the bandwidth cap."""
        demo = self.server.demo
        rate = demo.bandwidth_bytes_per_sec
        began, sent = time.monotonic(), 0
        for chunk in chunks:
            if demo._stopping.is_set():
                self.close_connection = True
                return
            self.wfile.write(chunk)
            sent += len(chunk)
            if rate:
                delay = sent / rate - (time.monotonic() - began)
                if delay > 0 and demo._stopping.wait(delay):
                    self.close_connection = True
                    return


class DemoServer:
    """An in-process HTTP server on 127.0.0.1 serving the demo playlists and songs."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        songs_per_playlist: int | None = None,
        bandwidth_bytes_per_sec: int | None = 1_500_000,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """Configure the server; ``root`` (optional) receives the JSON manifests on start."""
        if songs_per_playlist is not None and songs_per_playlist < 1:
            raise ValueError("songs_per_playlist must be at least 1")
        self.root = Path(root) if root is not None else None
        self.bandwidth_bytes_per_sec = bandwidth_bytes_per_sec or None
        self.host = host
        self._requested_port = port
        self.playlists: tuple[DemoPlaylist, ...] = tuple(
            DemoPlaylist(p.slug, p.name, p.songs[:songs_per_playlist]) for p in DEMO_PLAYLISTS
        )
        self.songs: dict[str, DemoSong] = {s.id: s for p in self.playlists for s in p.songs}
        #: manifests written into ``root`` by the last ``start()``
        self.manifest_paths: list[Path] = []
        self._httpd: _DemoHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()

    # lifecycle ---------------------------------------------------------------

    def start(self) -> DemoServer:
        """Bind and serve in a daemon thread (no-op when running); write manifests to root."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _DemoHTTPServer((self.host, self._requested_port), _DemoHandler)
        httpd.demo = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="catalogsync-demo-server",
            daemon=True,
        )
        self._thread.start()
        if self.root is not None:
            try:
                self.manifest_paths = write_demo_manifests(self, self.root)
            except BaseException:
                self.stop()
                raise
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections and release the port (idempotent)."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if thread is not None:
            thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> DemoServer:
        """Start the server."""
        return self.start()

    def __exit__(self, *exc: object) -> None:
        """Stop the server."""
        self.stop()

    def _track_connection(self, conn: socket.socket, *, add: bool) -> None:
        """Remember or forget a client connection."""
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    # addresses ---------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server is serving."""
        return self._httpd is not None

    @property
    def port(self) -> int:
        """The bound TCP port."""
        if self._httpd is None:
            raise RuntimeError("the demo server is not running")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` of the running server."""
        return f"http://{self.host}:{self.port}"

    def song_url(self, song: DemoSong) -> str:
        """Absolute URL of a song."""
        return self.base_url + song.path

    def playlist_url(self, slug: str, fmt: str = "json") -> str:
        """Absolute URL of a playlist as ``json`` or ``m3u``."""
        return f"{self.base_url}/playlists/{slug}.{fmt}"

    def playlist(self, slug: str) -> DemoPlaylist | None:
        """The playlist with this slug, if any."""
        return next((p for p in self.playlists if p.slug == slug), None)

    # documents ---------------------------------------------------------------

    def playlist_json(self, playlist: DemoPlaylist) -> dict[str, Any]:
        """A playlist in the manifest JSON schema, with size and sha256 per track."""
        return {
            "name": playlist.name,
            "tracks": [
                {
                    "id": f"demo-{song.id}",
                    "url": self.song_url(song),
                    "title": song.title,
                    "artist": song.artist,
                    "album": song.album,
                    "albumartist": album_artist(song),
                    "cover": f"{self.base_url}/covers/{album_slug(song.album)}.png",
                    "track": song.track or None,
                    "year": song.year or None,
                    "duration": song.duration_seconds,
                    "size": song.size,
                    "sha256": song_sha256(song.id),
                }
                for song in playlist.songs
            ],
        }

    def playlist_m3u(self, playlist: DemoPlaylist) -> str:
        """A playlist as extended M3U with absolute song URLs."""
        lines = ["#EXTM3U", f"#PLAYLIST:{playlist.name}"]
        for song in playlist.songs:
            lines.append(f"#EXTINF:{round(song.duration_seconds)},{song.artist} - {song.title}")
            lines.append(f"#EXTALB:{song.album}")
            lines.append(self.song_url(song))
        return "\n".join(lines) + "\n"

    def index_json(self) -> str:
        """The list of playlists with their URLs."""
        return json.dumps(
            [
                {
                    "slug": p.slug,
                    "name": p.name,
                    "tracks": len(p.songs),
                    "json": self.playlist_url(p.slug, "json"),
                    "m3u": self.playlist_url(p.slug, "m3u"),
                }
                for p in self.playlists
            ],
            indent=2,
        )


def write_demo_manifests(server: DemoServer, directory: Path) -> list[Path]:
    """Write each demo playlist as ``<slug>.json`` into ``directory``, overwriting; return paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for playlist in server.playlists:
        target = directory / f"{playlist.slug}.json"
        temp = directory / f".{playlist.slug}.json.tmp"
        temp.write_text(
            json.dumps(server.playlist_json(playlist), indent=2, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
        os.replace(temp, target)
        written.append(target)
    return written
