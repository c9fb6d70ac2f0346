"""One active worker in the detail pane: name, speed sparkline, bytes, speed, percent, song."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, Sparkline

from tui.formatting import percent_text
from tui.widgets.updates import update_if_changed


def worker_stats(worker: dict[str, Any]) -> Text:
    """`3.2 MB/s  78%  15.6 / 20.0 MB  Artist - Song` (the song last, cut with an ellipsis)."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{worker.get('speed_text') or '-':>9}", style="bold")
    text.append(f" {percent_text(worker.get('progress_percent')):>4}")
    text.append(f"  {worker.get('bytes_text') or '-':<15}", style="dim")
    text.append(f" {worker.get('display_text') or '-'}")
    return text


class WorkerRow(Horizontal):
    """A worker's line; ``show`` updates it in place with a new list of speed samples."""

    def __init__(self, worker: dict[str, Any]) -> None:
        super().__init__(classes="worker-row")
        self.worker_id = int(worker["id"])
        self._worker = worker

    def compose(self) -> ComposeResult:
        yield Label(Text(str(self._worker.get("worker_name") or "-")), classes="worker-name")
        yield Sparkline(list(self._worker.get("speed_samples") or []), classes="worker-speed")
        yield Label(worker_stats(self._worker), classes="worker-stats")

    def show(self, worker: dict[str, Any]) -> None:
        """Take a fresh worker dict from the read model."""
        self._worker = worker
        if not self.is_mounted:
            return
        name = Text(str(worker.get("worker_name") or "-"))
        update_if_changed(self.query_one(".worker-name", Label), name, layout=False)
        # A new list each tick: the reactive does not see mutation of the old one.
        self.query_one(Sparkline).data = list(worker.get("speed_samples") or [])
        update_if_changed(
            self.query_one(".worker-stats", Label), worker_stats(worker), layout=False
        )
