"""The task center's log file never holds a secret: URLs are masked on the way in."""

from __future__ import annotations

import logging

SECRET_URL = "http://bob:hunter2@127.0.0.1:9/song.mp3?token=abc123"


def test_the_task_center_log_file_masks_credentials(tmp_path):
    from tui.logsetup import tui_logging

    path = tmp_path / "tui.log"
    with tui_logging(path):
        logging.getLogger("catalogsync.test").warning("cannot fetch %s", SECRET_URL)
    text = path.read_text(encoding="utf-8")
    assert "bob:***@" in text and "hunter2" not in text and "abc123" not in text
