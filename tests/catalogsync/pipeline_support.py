"""Helpers for end-to-end tests: playlists on a local HTTP server, a service, waiting."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from catalogsync.service import Catalogsync
from tests.support.audio import mp3_body
from tests.support.httpserver import LocalServer


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, step: float = 0.05) -> bool:
    """Poll ``predicate`` until it is truthy or ``timeout`` passes (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def serve_songs(
    server: LocalServer,
    count: int,
    *,
    size: int = 150_000,
    rate_bps: int | None = None,
    prefix: str = "song",
) -> dict[str, bytes]:
    """Register ``count`` songs on the server; returns {url: body}."""
    songs = {}
    for n in range(count):
        body = mp3_body(size + n * 997, seed=1000 + n + hash(prefix) % 1000)
        url = server.route(f"/{prefix}{n}.mp3", body=body, rate_bps=rate_bps)
        songs[url] = body
    return songs


def write_m3u(path: Path, entries: list[tuple[str, str, str]], name: str | None = None) -> Path:
    """An extended M3U of (artist, title, url) entries."""
    lines = ["#EXTM3U"]
    if name:
        lines.append(f"#PLAYLIST:{name}")
    for artist, title, url in entries:
        lines.append(f"#EXTINF:200,{artist} - {title}")
        lines.append(url)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# The layout before issue 11, untagged and without playlist files: the tests of the
# transfer engine compare library files byte for byte with what the server sent.
V2_LAYOUT_TOML = (
    '[library]\ntemplate = "{platform}/{artist}/{title}"\nwrite_tags = false\nplaylists = ""\n'
)


def use_v2_layout(home: Path) -> Path:
    """Write a config.toml with the v2 layout into ``home``; returns its path."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "config.toml"
    config.write_text(V2_LAYOUT_TOML, encoding="utf-8")
    return config


def open_service(home: Path) -> Catalogsync:
    return Catalogsync.open(home=str(home))


def library_files(service: Catalogsync) -> dict[str, bytes]:
    """Every song file (no .m3u8) under the library root, by POSIX path relative to it.

    Checks the library invariant on the way: every record names an existing file of
    the recorded size and SHA-256.
    """
    assert service.catalog.library_invariant_violations() == []
    root = service.settings.library_root
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.suffix != ".m3u8"
    }
