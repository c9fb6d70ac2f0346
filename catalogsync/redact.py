"""Secrets never shown: one place that masks credentials in URLs and messages.

Playlist URLs may carry ``user:password@`` (the download needs it), but every
message, event, log line, ``--json`` output and TUI text goes through
``mask_secrets`` first, which turns ``http://bob:hunter2@host/`` into
``http://bob:***@host/`` and ``?token=abc`` into ``?token=***``.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any, TypeVar

T = TypeVar("T")

MASK = "***"

# Option and query names that hold a secret, compared case-insensitively; a name
# ending in one of them (``webdav_password``, ``x-api-key``) counts too.
SECRET_NAMES = (
    "password",
    "passwd",
    "pass",
    "pwd",
    "passphrase",
    "token",
    "secret",
    "api_key",
    "apikey",
    "key",
    "auth",
    "authorization",
    "credential",
    "credentials",
    "cookie",
    "session",
    "sig",
    "signature",
)

# scheme://user:password@  (the user part may be empty: scheme://:password@)
_USERINFO = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@?#]*:)(?P<secret>[^\s/@?#]*)@")
_QUERY = re.compile(r"(?P<head>[?&;](?P<name>[A-Za-z0-9_.-]+)=)(?P<secret>[^&#\s\"']+)")


def is_secret_name(name: str) -> bool:
    """``PassWord``, ``api-key``, ``webdav_token``: True; ``password_env``: False."""
    lowered = name.strip().lower().replace("-", "_")
    if lowered.endswith("_env"):
        return False
    parts = [p for p in re.split(r"[_.]", lowered) if p]
    return lowered in SECRET_NAMES or any(part in SECRET_NAMES for part in parts)


def mask_url(url: str) -> str:
    """The URL with its password (and secret query values) replaced by ``***``."""
    return mask_secrets(url)


def mask_secrets(text: str) -> str:
    """Every URL password and secret query value in ``text`` masked."""
    if "://" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(lambda m: m.group("head") + MASK + "@", text)

    def _query(match: re.Match[str]) -> str:
        if is_secret_name(match.group("name")):
            return match.group("head") + MASK
        return match.group(0)

    return _QUERY.sub(_query, text)


def mask_value(value: T) -> T:
    """``mask_secrets`` applied to every string inside a JSON-like value or read model.

    Frozen dataclasses (ops/readmodels.py) come back as copies only where a field
    changed; anything without a secret is returned as it is.
    """
    return _masked(value)


def _masked(value: Any) -> Any:
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, dict):
        return {key: _masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_masked(item) for item in value]
    if isinstance(value, tuple):
        items = tuple(_masked(item) for item in value)
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for field in dataclasses.fields(value):
            old = getattr(value, field.name)
            new = _masked(old)
            if new is not old and new != old:
                changes[field.name] = new
        return dataclasses.replace(value, **changes) if changes else value
    return value


def url_has_credentials(url: str) -> bool:
    return bool(_USERINFO.search(url))


class MaskingFormatter(logging.Formatter):
    """A log formatter whose every line (traceback included) has secrets masked."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))
