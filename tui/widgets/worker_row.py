"""One active worker in the detail pane: name, speed bars, bytes, speed, percent, song."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label

from catalogsync.ops.readmodels import WorkerView
from tui.formatting import percent_text
from tui.widgets.speed_graph import SpeedGraph
from tui.widgets.updates import update_if_changed


def worker_stats(worker: WorkerView) -> Text:
    """`3.2 MB/s  78%  15.6 / 20.0 MB  Artist - Song` (the song last, cut with an ellipsis)."""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{worker.speed_text or '-':>9}", style="bold")
    text.append(f" {percent_text(worker.progress_percent):>4}")
    text.append(f"  {worker.bytes_text or '-':<15}", style="dim")
    text.append(f" {worker.display_text or '-'}")
    return text


class WorkerRow(Horizontal):
    """A worker's line; ``show`` updates it in place, its bars on the job's shared scale."""

    def __init__(self, worker: WorkerView, scale: float = 0.0) -> None:
        super().__init__(classes="worker-row")
        self.worker_id = worker.id
        self._worker = worker
        self.scale = scale

    def compose(self) -> ComposeResult:
        yield Label(Text(self._worker.worker_name or "-"), classes="worker-name")
        yield SpeedGraph(classes="worker-speed")
        yield Label(worker_stats(self._worker), classes="worker-stats")

    def on_mount(self) -> None:
        self.show(self._worker, self.scale)

    @property
    def samples(self) -> list[float]:
        """The speed samples drawn (a new list each tick)."""
        return self.query_one(SpeedGraph).samples

    def show(self, worker: WorkerView, scale: float) -> None:
        """Take a fresh worker from the read model and the job's speed scale."""
        self._worker, self.scale = worker, scale
        if not self.is_mounted:
            return
        name = Text(worker.worker_name or "-")
        update_if_changed(self.query_one(".worker-name", Label), name, layout=False)
        self.query_one(SpeedGraph).show(list(worker.speed_samples), scale)
        update_if_changed(
            self.query_one(".worker-stats", Label), worker_stats(worker), layout=False
        )
