"""Update a text widget only when its content changed (a refresh must not re-layout)."""

from __future__ import annotations

from typing import Any

from textual.widgets import Static

_LAST = "_catalogsync_last_content"


def update_if_changed(widget: Static, content: Any, *, layout: bool = True) -> bool:
    """``widget.update(content)`` unless it already shows exactly that; True if updated.

    ``Static.update`` schedules a layout pass every time; at 1 Hz with a dozen text
    widgets that is a measurable share of the TUI's CPU for nothing.
    """
    last = getattr(widget, _LAST, None)
    if last == content:
        return False
    setattr(widget, _LAST, content)
    # Same number of lines: the widget keeps its size, a repaint is enough (a layout
    # pass each second for a changed count was most of the refresh's CPU).
    if layout and last is not None and _lines(last) == _lines(content):
        layout = False
    widget.update(content, layout=layout)
    return True


def _lines(content: Any) -> int:
    return str(content.plain if hasattr(content, "plain") else content).count("\n")
