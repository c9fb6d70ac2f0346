"""Which provider understands a playlist reference, and providers by platform name.

Providers are registered as factories and built on first use, so a provider whose
dependency is optional (musicdl) costs nothing until someone needs it; a factory that raises
``ImportError`` makes its platform report "not available" instead of breaking the registry.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass

from catalogsync.errors import CatalogsyncError, ProviderError
from catalogsync.providers.base import Provider
from catalogsync.providers.manifest import ManifestProvider

ProviderFactory = Callable[[], Provider]


@dataclass
class _Registration:
    """A registered factory and, once built, its provider."""

    platform: str
    factory: ProviderFactory
    instance: Provider | None = None


_lock = threading.RLock()
_registrations: dict[str, _Registration] = {}  # in registration (= lookup) order


def register(
    provider_factory: ProviderFactory, *, platform: str | None = None, replace: bool = False
) -> ProviderFactory:
    """Register a provider factory (a Provider class or a callable returning one).

    The platform key is ``platform``, else the factory's ``platform`` attribute (true for
    Provider classes), else the built provider's. Returns the factory so it works as a
    decorator. Registering a taken platform raises ValueError unless ``replace`` is true.
    """
    key = platform or getattr(provider_factory, "platform", "") or ""
    instance: Provider | None = None
    if not key:
        instance = provider_factory()
        key = instance.platform
    if not key:
        raise ValueError(f"{provider_factory!r} provides no platform name")
    with _lock:
        if key in _registrations and not replace:
            raise ValueError(f"platform {key!r} is already registered")
        _registrations[key] = _Registration(key, provider_factory, instance)
    return provider_factory


def unregister(platform: str) -> None:
    """Remove a platform (no-op when it is not registered)."""
    with _lock:
        _registrations.pop(platform, None)


def lazy_factory(module: str, attribute: str) -> ProviderFactory:
    """A factory that imports ``module`` and builds ``module.attribute()`` only when called."""

    def build() -> Provider:
        provider: Provider = getattr(importlib.import_module(module), attribute)()
        return provider

    build.__qualname__ = build.__name__ = f"lazy:{module}.{attribute}"
    return build


def available_platforms() -> list[str]:
    """Registered platform keys in lookup order (optional ones may still lack their library)."""
    with _lock:
        return list(_registrations)


def _build(registration: _Registration) -> Provider:
    """The provider of a registration, building it on first use."""
    with _lock:
        if registration.instance is None:
            try:
                registration.instance = registration.factory()
            except ImportError as exc:
                raise ProviderError(
                    f"the {registration.platform} provider is not available ({exc}); "
                    f"install it with: pip install 'catalogsync[{registration.platform}]'"
                ) from exc
        return registration.instance


def get_provider(platform: str) -> Provider:
    """The provider for a platform key (ProviderError when unknown or not installed)."""
    with _lock:
        registration = _registrations.get(platform)
    if registration is None:
        known = ", ".join(available_platforms()) or "none"
        raise ProviderError(f"unknown platform {platform!r} (known: {known})")
    return _build(registration)


def provider_for_ref(ref: str) -> Provider:
    """The first registered provider that handles ``ref`` (ProviderError when none does)."""
    with _lock:
        registrations = list(_registrations.values())
    unavailable: list[str] = []
    for registration in registrations:
        try:
            provider = _build(registration)
        except ProviderError:
            unavailable.append(registration.platform)
            continue
        try:
            if provider.handles(ref):
                return provider
        except CatalogsyncError:  # a provider refusing the ref outright does not handle it
            continue
    shown = ref if len(ref) <= 200 else ref[:197] + "..."
    hint = (
        "give the path of a .m3u, .m3u8, .pls, .json or .csv playlist file "
        "(or a file:// URL to one)"
    )
    if unavailable:
        hint += f"; not available: {', '.join(unavailable)}"
    online = _online_platforms & {r.platform for r in registrations}
    if ref.lower().startswith(("http://", "https://")) and not online:
        hint += "; online playlists need the musicdl provider: pip install 'catalogsync[musicdl]'"
    raise ProviderError(f"no provider understands {shown!r}: {hint}")


# Platforms of optional providers that read online playlists (filled by _register_optional).
_online_platforms: set[str] = set()


def _register_optional() -> None:
    """Register providers whose libraries are optional; never import those libraries here."""
    # musicdl: one provider per platform key (netease, qq, kuwo, kugou, migu), because
    # playlists.platform / songs.platform hold that key and get_provider() looks it up.
    # They are registered only when musicdl can be imported (find_spec does not import it),
    # so available_platforms() lists them only then. catalogsync.providers.musicdl is
    # stdlib-only; each factory builds its provider on first use and the provider imports
    # musicdl on its first network call.
    import functools
    import importlib.util
    import sys

    if "musicdl" in sys.modules and sys.modules["musicdl"] is None:
        return  # None in sys.modules blocks the import (Python's convention)
    if sys.modules.get("musicdl") is None:
        try:
            if importlib.util.find_spec("musicdl") is None:
                return
        except (ImportError, ValueError):
            return
    from catalogsync.providers import musicdl as musicdl_provider

    for key in musicdl_provider.PLATFORMS:
        factory = functools.partial(musicdl_provider.MusicdlProvider, key)
        register(factory, platform=key, replace=True)
        _online_platforms.add(key)


register(ManifestProvider)
_register_optional()
