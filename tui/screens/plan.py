"""The plan before launching: what a sync then download of the selection would do."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from catalogsync.transfer.meter import format_speed


def _mb(n: int | None) -> str:
    return "size unknown" if n is None else f"{n / (1024 * 1024):.1f} MB"


def _eta(seconds: int | None) -> str:
    if seconds is None:
        return "unknown"
    minutes, rest = divmod(int(seconds), 60)
    return (
        f"{minutes // 60} h {minutes % 60:02d} min"
        if minutes >= 60
        else f"{minutes} min {rest:02d} s"
    )


def plan_lines(plan: dict[str, Any]) -> list[str]:
    """The plan payload (ops/plan.py) as short lines, one block per playlist."""
    lines = []
    for entry in plan["playlists"]:
        head = (
            f"{entry['name']} ({entry['sync_policy']}{'' if entry['wanted'] else ', not wanted'})"
        )
        if entry["error"]:
            lines += [head, f"  cannot read it: {entry['error']}"]
            continue
        lines.append(head)
        lines.append(
            f"  +{entry['tracks_to_add']} / -{entry['tracks_to_remove']} tracks, "
            f"{entry['songs_to_download']} to download ({_mb(entry['download_bytes'])}), "
            f"{len(entry['files_to_quarantine'])} to the trash"
        )
        lines += [f"  + {title}" for title in entry["add"][:5]]
        lines += [f"  - {title}" for title in entry["remove"][:5]]
    totals = plan["totals"]
    speed = totals["recent_speed_bytes_per_sec"]
    lines.append("")
    lines.append(
        f"Total: {totals['songs_to_download']} songs ({_mb(totals['download_bytes'])}), "
        f"{totals['files_to_quarantine']} files to the trash, ETA {_eta(totals['eta_seconds'])}"
        + (f" at {format_speed(speed)}" if speed else "")
    )
    return lines


class PlanScreen(ModalScreen[str | None]):
    """Shows a plan; dismissed with "sync_download" to launch it, None to go back."""

    # Kept here rather than in app.tcss: the body scrolls so the buttons fit at 80x24.
    DEFAULT_CSS = """
    #plan-body { height: auto; max-height: 14; }
    """
    BINDINGS = [
        Binding("escape", "dismiss_none", "Back", id="plan.back"),
        Binding("b", "launch", "Sync Then Download", id="plan.launch"),
    ]

    def __init__(self, plan: dict[str, Any]) -> None:
        super().__init__(classes="dialog-screen")
        self.plan = plan

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="plan-dialog"):
            yield Static("Plan: what a sync then download would do", classes="dialog-title")
            with VerticalScroll(id="plan-body"):
                yield Static("\n".join(plan_lines(self.plan)), markup=False, id="plan-text")
            with Horizontal(classes="dialog-buttons"):
                yield Button(
                    "Sync Then Download (b)", id="plan-launch", variant="primary", compact=True
                )
                yield Button("Back (esc)", id="plan-back", compact=True)

    def on_mount(self) -> None:
        self.query_one("#plan-back", Button).focus()

    @on(Button.Pressed, "#plan-launch")
    def action_launch(self) -> None:
        """Launch the planned sync then download."""
        self.dismiss("sync_download")

    @on(Button.Pressed, "#plan-back")
    def action_dismiss_none(self) -> None:
        """Back to the picker, nothing launched."""
        self.dismiss(None)
