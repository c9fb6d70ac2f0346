"""Tests for the provider registry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from catalogsync.errors import ProviderError
from catalogsync.providers import registry
from catalogsync.providers.base import PlaylistContent, PlaylistRef, Provider
from catalogsync.providers.manifest import ManifestProvider


class FakeProvider(Provider):
    """Handles refs starting with fake:."""

    platform = "fake"

    def handles(self, ref: str) -> bool:
        return ref.startswith("fake:")

    def describe(self, ref: str) -> PlaylistRef:
        return PlaylistRef(self.platform, ref, ref, ref)

    def fetch_playlist(self, ref: str) -> PlaylistContent:
        return PlaylistContent(ref, [])


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let each test change the registry without leaking into the others."""
    # Without the optional providers, whether or not musicdl is installed here (CI has it).
    builtin = {
        k: v for k, v in registry._registrations.items() if k not in registry._online_platforms
    }
    monkeypatch.setattr(registry, "_registrations", builtin)


def test_manifest_is_registered_by_default() -> None:
    assert registry.available_platforms()[0] == "manifest"
    assert isinstance(registry.get_provider("manifest"), ManifestProvider)
    assert registry.get_provider("manifest") is registry.get_provider("manifest")


@pytest.mark.parametrize("ref", ["/music/list.m3u", "list.PLS", "file:///x/y.json", "a.csv"])
def test_provider_for_playlist_files(ref: str) -> None:
    assert registry.provider_for_ref(ref).platform == "manifest"


@pytest.mark.parametrize("ref", ["garbage", "", "https://example.com/playlist/1", "/x/list.txt"])
def test_unknown_ref_raises_provider_error_with_hint(ref: str) -> None:
    with pytest.raises(ProviderError) as info:
        registry.provider_for_ref(ref)
    assert str(info.value).startswith(f"no provider understands {ref!r}: ")
    assert ".m3u" in str(info.value)


def test_http_ref_hint_mentions_musicdl() -> None:
    with pytest.raises(ProviderError, match=r"catalogsync\[musicdl\]"):
        registry.provider_for_ref("https://music.example.com/playlist/1")


def test_get_unknown_platform() -> None:
    with pytest.raises(ProviderError, match="unknown platform 'nope' \\(known: manifest"):
        registry.get_provider("nope")


def test_register_and_unregister() -> None:
    registry.register(FakeProvider)
    assert registry.available_platforms() == ["manifest", "fake"]
    assert isinstance(registry.provider_for_ref("fake:abc"), FakeProvider)
    assert registry.get_provider("fake").platform == "fake"
    with pytest.raises(ValueError, match="already registered"):
        registry.register(FakeProvider)
    registry.unregister("fake")
    assert registry.available_platforms() == ["manifest"]
    with pytest.raises(ProviderError):
        registry.provider_for_ref("fake:abc")


def test_register_plain_callable_and_replace() -> None:
    built: list[int] = []

    def factory() -> Provider:
        built.append(1)
        return FakeProvider()

    registry.register(factory, platform="fake")
    assert built == []  # built lazily
    registry.get_provider("fake")
    registry.get_provider("fake")
    assert built == [1]
    registry.register(lambda: FakeProvider(), replace=True)  # platform read from the instance
    assert registry.available_platforms() == ["manifest", "fake"]


def test_first_provider_that_handles_wins() -> None:
    class GreedyProvider(FakeProvider):
        platform = "greedy"

        def handles(self, ref: str) -> bool:
            return True

    registry.register(GreedyProvider)
    assert registry.provider_for_ref("/x/list.m3u").platform == "manifest"
    assert registry.provider_for_ref("anything").platform == "greedy"


def test_lazy_factory_with_missing_module_is_not_available() -> None:
    registry.register(
        registry.lazy_factory("catalogsync_no_such_module", "Provider"), platform="optional"
    )
    assert "optional" in registry.available_platforms()
    with pytest.raises(ProviderError, match="optional provider is not available"):
        registry.get_provider("optional")
    assert registry.provider_for_ref("/x/list.m3u").platform == "manifest"
    with pytest.raises(ProviderError, match="not available: optional"):
        registry.provider_for_ref("garbage")


def test_lazy_factory_imports_on_first_use() -> None:
    factory = registry.lazy_factory("catalogsync.providers.manifest", "ManifestProvider")
    registry.register(factory, platform="manifest2")
    assert isinstance(registry.get_provider("manifest2"), ManifestProvider)


def test_import_does_not_import_musicdl() -> None:
    code = (
        "import sys, catalogsync.providers.registry; "
        "assert 'musicdl' not in sys.modules, 'musicdl imported'"
    )
    root = Path(__file__).resolve().parents[3]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, timeout=60)
