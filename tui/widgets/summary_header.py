"""The task center's header: who runs the queue, counts, total speed and its graph."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from catalogsync import clock
from catalogsync.ops.readmodels import DashboardSummary, DashboardView, ScheduleView
from catalogsync.transfer.meter import format_speed
from tui.widgets.speed_graph import speed_bars
from tui.widgets.updates import update_if_changed

# the count, labels wide / narrow / tiny, colour of a non-zero count
COUNTS: tuple[tuple[Callable[[DashboardSummary], int], tuple[str, str, str], str], ...] = (
    (lambda s: s.running_jobs, ("Running", "Running", "Run"), "green"),
    (
        lambda s: s.queued_download_jobs,
        ("Queued Download Jobs", "Queued downloads", "Queued"),
        "yellow",
    ),
    (lambda s: s.paused_jobs, ("Paused", "Paused", "Paused"), "yellow"),
    (lambda s: s.failed_jobs, ("Failed / Errors", "Failed", "Failed"), "red"),
)
NARROW_BELOW = 90
TINY_BELOW = 76
HISTORY = 120  # seconds of lane-wide speed kept for the graph, one sample a second


def fit_text(text: Text, width: int) -> Text:
    """Cut with an ellipsis so a line never wraps (a wrapped line pushes the next away)."""
    if text.cell_len <= width:
        return text
    cut = text.copy()
    cut.truncate(max(1, width), overflow="ellipsis")
    return cut


def next_schedule_text(schedule: ScheduleView | None) -> str:
    """`next: nightly 03:00` (local time) from the dashboard's ``next_schedule``."""
    if not schedule:
        return ""
    at = clock.parse_text(schedule.next_run_at)
    if at is None:
        return ""
    import time

    return f"next: {schedule.name} {time.strftime('%H:%M', time.localtime(at))}"


class SummaryHeader(Static):
    """Three lines: title and runner; counts and total speed; jobs shown, sort, speed graph."""

    runner_text: reactive[str] = reactive("")
    demo: reactive[bool] = reactive(False)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._summary: DashboardSummary | None = None
        self._speed_text = "-"
        self.speeds: deque[float] = deque(maxlen=HISTORY)
        self._sampled_at: int | None = None
        self.jobs_text = ""
        self.schedule_text = ""

    def show_dashboard(self, dashboard: DashboardView, jobs_text: str = "") -> None:
        """Take the counts and speed from a dashboard payload (each call adds a sample)."""
        self._summary = dashboard.summary
        stats = dashboard.download_stats
        speed = stats.speed_bytes_per_sec
        self._speed_text = stats.speed_text or "-"
        # One sample per second of the clock, not per read: extra reads after a command
        # would otherwise stretch the graph's time axis.
        second = int(clock.now())
        if second == self._sampled_at and self.speeds:
            self.speeds[-1] = float(speed or 0.0)
        else:
            self.speeds.append(float(speed or 0.0))
            self._sampled_at = second
        self.jobs_text = jobs_text
        self.schedule_text = next_schedule_text(dashboard.next_schedule)
        self.refresh_text()

    def watch_runner_text(self) -> None:
        self.refresh_text()

    def watch_demo(self) -> None:
        self.refresh_text()

    def refresh_text(self) -> None:
        """Rebuild the three lines (each cut to the width, never wrapped)."""
        width = max(self.size.width, 30)
        title = Text.assemble(("catalogsync", "bold"), " · Task Center")
        if self.demo:
            title.append("  DEMO", style="bold reverse")
        runner = Text(self.runner_text, style="dim")
        hints = Text("  ^p commands", style="dim")
        if title.cell_len + hints.cell_len + runner.cell_len + 2 <= width:
            title.append_text(hints)
        runner = fit_text(runner, width - title.cell_len - 2)
        gap = max(2, width - title.cell_len - runner.cell_len)
        line1 = fit_text(Text.assemble(title, " " * gap, runner), width)

        line2 = Text()
        level = 0 if width >= NARROW_BELOW else 1 if width >= TINY_BELOW else 2
        for count, labels, style in COUNTS:
            label = labels[level]
            value = count(self._summary) if self._summary else 0
            if line2:
                line2.append(" │ ", style="dim")
            line2.append(f"{label} ")
            line2.append(str(value), style=f"bold {style}" if value else "bold")
        line2.append(" │ ", style="dim")
        line2.append("↓ ")
        line2.append(self._speed_text, style="bold")
        line2 = fit_text(line2, width)

        jobs_line = Text(self.jobs_text)
        if self.schedule_text:
            jobs_line.append(f" · {self.schedule_text}", style="dim")
        peak = max(self.speeds, default=0.0)
        peak_label = Text(f" max {format_speed(peak)}" if peak else " no transfer", style="dim")
        graph_width = min(40, width - jobs_line.cell_len - peak_label.cell_len - 4)
        line3 = jobs_line
        if graph_width >= 8:
            line3 = Text.assemble(
                jobs_line,
                " " * (width - jobs_line.cell_len - graph_width - peak_label.cell_len - 2),
                "↓ ",
                speed_bars(list(self.speeds), peak, graph_width),
                peak_label,
            )
        # Three lines always (its height is fixed): a repaint, never a layout pass.
        update_if_changed(
            self, Text("\n").join([line1, line2, fit_text(line3, width)]), layout=False
        )

    def on_resize(self) -> None:
        self.refresh_text()
