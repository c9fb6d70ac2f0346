"""Upload targets: a local folder or mounted share, a WebDAV server, or any rclone remote."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from catalogsync.errors import ConfigError
from catalogsync.transfer.backends.base import (
    PROBE_PREFIX,
    RemoteFile,
    StorageBackend,
    check_relative,
)
from catalogsync.transfer.backends.local import LocalBackend
from catalogsync.transfer.backends.rclone import RcloneBackend
from catalogsync.transfer.backends.webdav import WebDavBackend
from catalogsync.transfer.ratelimit import TokenBucket

BACKEND_CLASSES: dict[str, type[StorageBackend]] = {
    "local": LocalBackend,
    "webdav": WebDavBackend,
    "rclone": RcloneBackend,
}


def _options(row: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(row.get("options"), Mapping):
        return dict(row["options"])
    raw = row.get("options_json") or "{}"
    try:
        options = json.loads(raw) if isinstance(raw, str | bytes) else raw
    except ValueError as exc:
        raise ConfigError(
            f"backend {row.get('name')!r}: options are not valid JSON: {exc}"
        ) from exc
    if not isinstance(options, Mapping):
        raise ConfigError(f"backend {row.get('name')!r}: options must be a JSON object")
    return dict(options)


def make_backend(
    row: Mapping[str, Any], *, limiter: TokenBucket | None = None, **kwargs: Any
) -> StorageBackend:
    """Build the backend of a ``storage_backends`` row (``name``, ``kind``, ``target``, options)."""
    kind = str(row.get("kind") or "")
    cls = BACKEND_CLASSES.get(kind)
    if cls is None:
        known = ", ".join(sorted(BACKEND_CLASSES))
        raise ConfigError(f"backend {row.get('name')!r}: unknown kind {kind!r} (use {known})")
    return cls(str(row["name"]), str(row["target"]), _options(row), limiter=limiter, **kwargs)


__all__ = [
    "BACKEND_CLASSES",
    "PROBE_PREFIX",
    "LocalBackend",
    "RcloneBackend",
    "RemoteFile",
    "StorageBackend",
    "WebDavBackend",
    "check_relative",
    "make_backend",
]
