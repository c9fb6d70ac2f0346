"""Where log records go while the TUI draws on the terminal: a file and Textual's log."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def default_log_file(settings: Any) -> Path:
    """`HOME/logs/tui.log` with `--home`, else `tui.log` in platformdirs' user state dir."""
    if getattr(settings, "home", None):
        return Path(settings.home) / "logs" / "tui.log"
    import platformdirs

    return Path(platformdirs.user_state_dir("catalogsync")) / "tui.log"


def _writes_to_terminal(handler: logging.Handler) -> bool:
    stream = getattr(handler, "stream", None)
    return (
        isinstance(handler, logging.StreamHandler)
        and not isinstance(handler, logging.FileHandler)
        and stream in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)
    )


@contextmanager
def tui_logging(log_file: Path) -> Iterator[Path]:
    """Send every record to ``log_file`` and Textual's log; none to stderr meanwhile.

    A WARNING written to stderr while Textual draws lands over the header. The root
    logger's terminal handlers (``basicConfig``) are set aside and restored afterwards;
    having handlers also keeps ``logging.lastResort`` (stderr) quiet.
    """
    from textual.logging import TextualHandler

    from catalogsync.redact import MaskingFormatter

    log_file = Path(log_file).expanduser()
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler: logging.Handler = logging.FileHandler(log_file, encoding="utf-8")
    except OSError as exc:
        from catalogsync.errors import CatalogsyncError

        raise CatalogsyncError(f"cannot write the log file {log_file}: {exc}") from None
    file_handler.setFormatter(MaskingFormatter(FORMAT))
    textual_handler = TextualHandler(stderr=False, stdout=False)
    textual_handler.setFormatter(MaskingFormatter(FORMAT))
    root = logging.getLogger()
    set_aside = [h for h in root.handlers if _writes_to_terminal(h)]
    for handler in set_aside:
        root.removeHandler(handler)
    root.addHandler(file_handler)
    root.addHandler(textual_handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        level_before = root.level
        root.setLevel(logging.INFO)
    else:
        level_before = root.level
    try:
        yield log_file
    finally:
        root.removeHandler(textual_handler)
        root.removeHandler(file_handler)
        file_handler.close()
        root.setLevel(level_before)
        for handler in set_aside:
            root.addHandler(handler)
