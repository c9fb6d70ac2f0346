"""Logging for `catalogsync run`: stderr (plain under journald) and an optional log file.

The file is reopened when logrotate moves it (``WatchedFileHandler``), or rotated by
size when `[log] max_bytes` is set (``RotatingFileHandler`` with `backups` old files).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path
from typing import TextIO

from catalogsync.config import LogSettings
from catalogsync.errors import ConfigError
from catalogsync.redact import MaskingFormatter

FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# journald stamps each line itself and shows the level; keep the lines plain.
JOURNAL_FORMAT = "%(levelname)s %(name)s: %(message)s"
_OURS = "catalogsync-handler"


def under_journald(stream: TextIO | None = None) -> bool:
    """True when stderr is systemd's journal stream ($JOURNAL_STREAM = its device:inode)."""
    value = os.environ.get("JOURNAL_STREAM", "")
    if not value:
        return False
    stream = stream or sys.stderr
    try:
        device, inode = (int(part) for part in value.split(":", 1))
        st = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (device, inode)


def file_handler(path: str | Path, max_bytes: int = 0, backups: int = 5) -> logging.Handler:
    """A handler for the log file; ConfigError naming the file when it cannot be opened."""
    path = Path(path).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if max_bytes > 0:
            handler: logging.Handler = logging.handlers.RotatingFileHandler(
                path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
            )
        else:
            handler = logging.handlers.WatchedFileHandler(path, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"log file {path}: {exc.strerror or exc}") from None
    handler.setFormatter(MaskingFormatter(FILE_FORMAT))
    return handler


def setup_runner_logging(
    settings: LogSettings, log_file: str | None = None, *, level: int = logging.INFO
) -> logging.Handler | None:
    """Log the runner at ``level`` to stderr and, when set, to the log file; the file handler."""
    root = logging.getLogger()
    plain = under_journald()
    for handler in root.handlers:
        if plain and type(handler) is logging.StreamHandler:
            handler.setFormatter(MaskingFormatter(JOURNAL_FORMAT))
    logging.getLogger("catalogsync").setLevel(level)
    path = log_file or settings.file
    if not path:
        return None
    ours = logging.getLogger("catalogsync")
    for old in list(ours.handlers):
        if old.get_name() == _OURS:
            ours.removeHandler(old)
            old.close()
    handler = file_handler(path, settings.max_bytes, settings.backups)
    handler.set_name(_OURS)
    handler.setLevel(level)
    ours.addHandler(handler)
    return handler
