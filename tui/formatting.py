"""Text helpers shared by the widgets: status styles, relative times, short labels."""

from __future__ import annotations

from rich.text import Text

from catalogsync import clock

# ANSI colour names so the table reads the same in a 16-colour terminal.
STATUS_STYLES = {
    "running": "bold green",
    "pause_requested": "yellow",
    "queued": "yellow",
    "paused": "bold yellow",
    "failed": "bold red",
    "completed_with_errors": "red",
    "completed": "dim",
    "canceled": "dim",
}
STATUS_LABELS = {"pause_requested": "pausing", "completed_with_errors": "done, errors"}


def status_label(status: str) -> str:
    """The status as the table shows it (`pausing` for pause_requested)."""
    return STATUS_LABELS.get(status, status)


def status_text(status: str) -> Text:
    """A status coloured by what it asks of the operator."""
    return Text(status_label(status), style=STATUS_STYLES.get(status, ""))


def relative_time(stamp: str | None, *, never: str = "never") -> str:
    """`just now`, `3 min ago`, `2 h ago`, `4 days ago` from a stored UTC timestamp."""
    at = clock.parse_text(stamp)
    if at is None:
        return never
    seconds = max(0.0, clock.now() - at)
    if seconds < 60:
        return "just now"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min ago"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h ago"
    return f"{hours // 24} days ago"


def percent_text(value: float | None) -> str:
    """`42%`, or `-` when unknown."""
    return "-" if value is None else f"{value:.0f}%"


def plain(value: object) -> Text:
    """A cell that is never parsed as markup (names may contain `[brackets]`)."""
    return Text(str(value) if value is not None else "-")
