"""A reusable contract test for providers: subclass it in a ``Test...`` class."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalogsync.errors import CatalogsyncError
from catalogsync.providers.base import DownloadSpec, PlaylistContent, PlaylistRef, Provider


class ProviderConformance:
    """Checks every provider must pass; override ``make_provider`` and ``make_ref``."""

    #: the smallest number of tracks ``make_ref``'s playlist holds
    min_tracks: int = 1

    def make_provider(self) -> Provider:
        """Build the provider under test."""
        raise NotImplementedError

    def make_ref(self, tmp_path: Path) -> str:
        """Create (if needed) a valid playlist and return its reference."""
        raise NotImplementedError

    def garbage_refs(self, tmp_path: Path) -> list[str]:
        """References that must fail with a CatalogsyncError in describe/fetch_playlist."""
        return [
            "",
            "garbage",
            "\x00",
            str(tmp_path / "missing" / "nothing.m3u"),
            str(tmp_path / "missing.json"),
            "ftp://example.invalid/list.m3u",
            "javascript:alert(1)",
            "file:///dev/null/not-a-playlist.pls",
        ]

    def test_handles_its_ref(self, tmp_path: Path) -> None:
        """The provider recognises the reference it produced."""
        assert self.make_provider().handles(self.make_ref(tmp_path))

    def test_describe_is_stable(self, tmp_path: Path) -> None:
        """describe() returns a PlaylistRef of this platform with a stable remote_id."""
        provider = self.make_provider()
        ref = self.make_ref(tmp_path)
        first, second = provider.describe(ref), provider.describe(ref)
        assert isinstance(first, PlaylistRef)
        assert first.platform == provider.platform
        assert first.remote_id and first.remote_id == second.remote_id
        assert first.name
        assert provider.handles(first.ref)

    def test_fetch_playlist_tracks(self, tmp_path: Path) -> None:
        """Tracks have non-empty ids and names, unique within the playlist."""
        provider = self.make_provider()
        content = provider.fetch_playlist(self.make_ref(tmp_path))
        assert isinstance(content, PlaylistContent)
        assert content.name
        assert len(content.tracks) >= self.min_tracks
        ids = [track.remote_id for track in content.tracks]
        assert all(ids) and all(track.name for track in content.tracks)
        assert len(set(ids)) == len(ids)

    def test_fetch_is_repeatable(self, tmp_path: Path) -> None:
        """Fetching twice gives the same tracks in the same order."""
        provider = self.make_provider()
        ref = self.make_ref(tmp_path)
        assert provider.fetch_playlist(ref) == provider.fetch_playlist(ref)

    def test_resolve_tracks_with_urls(self, tmp_path: Path) -> None:
        """resolve() turns a track with a URL into a DownloadSpec for that URL."""
        provider = self.make_provider()
        content = provider.fetch_playlist(self.make_ref(tmp_path))
        with_url = [track for track in content.tracks if track.download_url]
        if provider.opaque_download:
            pytest.skip("opaque providers download tracks themselves")
        assert with_url
        for track in with_url:
            spec = provider.resolve(track)
            assert isinstance(spec, DownloadSpec)
            assert spec.url == track.download_url
            assert spec.expected_size == track.file_size_bytes
            assert spec.sha256 == track.sha256

    def test_garbage_refs_raise_catalogsync_errors(self, tmp_path: Path) -> None:
        """Bad references fail with a CatalogsyncError subclass, never another exception."""
        provider = self.make_provider()
        for ref in self.garbage_refs(tmp_path):
            assert isinstance(provider.handles(ref), bool)
            for method in (provider.describe, provider.fetch_playlist):
                with pytest.raises(CatalogsyncError):
                    method(ref)
