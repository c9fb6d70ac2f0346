"""The runner's log file never holds a secret: URLs are masked on the way in."""

from __future__ import annotations

import logging

from catalogsync.config import LogSettings
from catalogsync.logs import setup_runner_logging

SECRET_URL = "http://bob:hunter2@127.0.0.1:9/song.mp3?token=abc123"


def test_the_runner_log_file_masks_credentials(tmp_path):
    path = tmp_path / "runner.log"
    handler = setup_runner_logging(LogSettings(file=str(path)))
    try:
        logging.getLogger("catalogsync.test").warning("HTTP 404 from %s", SECRET_URL)
        assert handler is not None
        handler.flush()
    finally:
        if handler is not None:
            logging.getLogger("catalogsync").removeHandler(handler)
            handler.close()
    text = path.read_text(encoding="utf-8")
    assert "bob:***@" in text and "hunter2" not in text and "abc123" not in text
