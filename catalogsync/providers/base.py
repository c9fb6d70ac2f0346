"""The provider contract: where playlists and songs come from."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import field
from pathlib import Path
from typing import Any

from catalogsync.records import record
from catalogsync.transfer.spec import DownloadSpec, ProgressCallback

__all__ = [
    "DownloadSpec",
    "PlaylistContent",
    "PlaylistRef",
    "ProgressCallback",
    "Provider",
    "Track",
]


@record(frozen=True)
class Track:
    """One song as a provider sees it inside a playlist."""

    remote_id: str
    name: str
    singers: str = ""
    album: str = ""
    duration_seconds: float | None = None
    ext: str = ""
    file_size_bytes: int | None = None
    sha256: str | None = None
    download_url: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # Library fields (issue 11): the layout template and the tags use them.
    albumartist: str = ""
    track_number: int | None = None
    disc_number: int | None = None
    year: int | None = None
    cover_url: str | None = None
    lyrics: str | None = None


@record(frozen=True)
class PlaylistRef:
    """A playlist a provider can fetch: ``ref`` is what ``fetch_playlist`` takes back."""

    platform: str
    remote_id: str
    name: str
    ref: str


@record(frozen=True)
class PlaylistContent:
    """A fetched playlist: its name and its tracks in order."""

    name: str
    tracks: list[Track]


class Provider(ABC):
    """One source of playlists and songs.

    A provider either resolves a track to a ``DownloadSpec`` (our downloader
    moves the bytes with exact progress) or, when ``opaque_download`` is true,
    downloads it itself with ``download`` (watched by file growth).
    """

    #: platform key stored in playlists.platform and songs.platform
    platform: str = ""
    #: true when ``download`` must be used instead of ``resolve``
    opaque_download: bool = False

    def uses_opaque_download(self, track: Track) -> bool:
        """Whether ``download`` (not ``resolve``) must fetch this track; default: the class flag."""
        return self.opaque_download

    @abstractmethod
    def handles(self, ref: str) -> bool:
        """Whether this provider understands a playlist reference (a path or URL)."""

    @abstractmethod
    def describe(self, ref: str) -> PlaylistRef:
        """Identify a playlist cheaply (for `playlists add`)."""

    @abstractmethod
    def fetch_playlist(self, ref: str) -> PlaylistContent:
        """Read a playlist's tracks in order; raise a ``CatalogsyncError`` on bad input."""

    def list_playlists(self, options: dict[str, Any]) -> list[PlaylistRef]:
        """Playlists a `playlist_square` source offers; most providers offer none."""
        return []

    def resolve(self, track: Track) -> DownloadSpec:
        """Turn a track into something our downloader can fetch."""
        if not track.download_url:
            raise_no_url(track)
        return DownloadSpec(
            url=track.download_url or "",
            expected_size=track.file_size_bytes,
            sha256=track.sha256,
            ext=track.ext,
        )

    def download(
        self,
        track: Track,
        dest: Path,
        *,
        should_stop: Callable[[], bool],
        on_progress: ProgressCallback,
    ) -> Path:
        """Download a track with the provider's own machinery (opaque providers only)."""
        raise NotImplementedError(f"{self.platform} provider has no opaque download")


def raise_no_url(track: Track) -> None:
    from catalogsync.errors import TransferError

    raise TransferError(f"song {track.name!r} has no download URL", code="no_url", permanent=True)
