"""The task center's header: title, who runs the queue, summary counts and total speed."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.reactive import reactive
from textual.widgets import Static

from tui.widgets.updates import update_if_changed

# summary key, label, label when narrow, colour of a non-zero count
COUNTS = (
    ("running_jobs", "Running", "Running", "green"),
    ("queued_download_jobs", "Queued Download Jobs", "Queued downloads", "yellow"),
    ("paused_jobs", "Paused", "Paused", "yellow"),
    ("failed_jobs", "Failed / Errors", "Failed", "red"),
)
NARROW_BELOW = 90


class SummaryHeader(Static):
    """Two lines: `catalogsync · Task Center   runner ...` and the counts with total speed."""

    runner_text: reactive[str] = reactive("")
    demo: reactive[bool] = reactive(False)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._summary: dict[str, Any] = {}
        self._speed_text = "-"

    def show_dashboard(self, dashboard: dict[str, Any]) -> None:
        """Take the counts and speed from a dashboard payload."""
        summary = dict(dashboard.get("summary") or {})
        speed = str((dashboard.get("download_stats") or {}).get("speed_text") or "-")
        if summary != self._summary or speed != self._speed_text:
            self._summary, self._speed_text = summary, speed
            self.refresh_text()

    def watch_runner_text(self) -> None:
        self.refresh_text()

    def watch_demo(self) -> None:
        self.refresh_text()

    def refresh_text(self) -> None:
        """Rebuild the two lines."""
        title = Text.assemble(("catalogsync", "bold"), " · Task Center")
        if self.demo:
            title.append("  DEMO", style="bold reverse")
        width = max(self.size.width, 40)
        runner = Text(self.runner_text, style="dim")
        hints = Text("  ⏎ detail  ^p commands", style="dim")
        if len(title) + len(hints) + len(runner) + 2 <= width:
            title.append_text(hints)
        gap = max(2, width - len(title) - len(runner))
        line1 = Text.assemble(title, " " * gap, runner)
        line2 = Text()
        for key, label, short, style in COUNTS:
            label = short if width < NARROW_BELOW else label
            value = int(self._summary.get(key) or 0)
            if line2:
                line2.append(" │ ", style="dim")
            line2.append(f"{label} ")
            line2.append(str(value), style=f"bold {style}" if value else "bold")
        line2.append(" │ ", style="dim")
        line2.append("↓ ")
        line2.append(self._speed_text, style="bold")
        update_if_changed(self, Text("\n").join([line1, line2]))

    def on_resize(self) -> None:
        self.refresh_text()
