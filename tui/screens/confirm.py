"""A modal question with a few labelled answers (cancel a job? quit with jobs running?)."""

from __future__ import annotations

from dataclasses import dataclass

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from catalogsync.ops.readmodels import TaskRow


@dataclass(frozen=True)
class Choice:
    """One answer: the value dismissed with, its button label, key and button variant."""

    value: str
    label: str
    key: str
    variant: str = "default"
    key_display: str = ""


class ConfirmScreen(ModalScreen[str | None]):
    """Ask, and dismiss with the chosen value (None on Escape); the last choice is the safe one."""

    BINDINGS = [Binding("escape", "dismiss_none", "Back", id="confirm.back")]

    def __init__(
        self,
        title: str,
        message: str,
        choices: list[Choice],
        *,
        stacked: bool = False,
        id: str | None = None,
    ) -> None:
        super().__init__(classes="dialog-screen", id=id)
        self.title_text = title
        self.message = message
        self.choices = choices
        self.stacked = stacked

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="confirm-dialog"):
            yield Static(self.title_text, classes="dialog-title", markup=False)
            yield Static(self.message, classes="dialog-message", markup=False)
            buttons = Vertical if self.stacked else Horizontal
            with buttons(classes="dialog-buttons"):
                for choice in self.choices:
                    yield Button(
                        f"{choice.label} ({choice.key_display or choice.key})",
                        id=f"choice-{choice.value}",
                        variant=choice.variant,  # type: ignore[arg-type]
                        compact=True,
                    )

    def on_mount(self) -> None:
        # Enter takes the last, safe answer ("Keep it", "Cancel"); the others need their key.
        self.query(Button).last().focus()

    def set_message(self, message: str) -> None:
        """Say something newer (the quit dialog follows the running jobs)."""
        if message != self.message and self.is_mounted:
            self.message = message
            self.query_one(".dialog-message", Static).update(message)

    def on_key(self, event: events.Key) -> None:
        """A choice's key answers at once."""
        for choice in self.choices:
            if event.key == choice.key:
                event.stop()
                self.dismiss(choice.value)
                return

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(str(event.button.id).removeprefix("choice-"))

    def action_dismiss_none(self) -> None:
        """Escape answers nothing."""
        self.dismiss(None)


def cancel_job_dialog(job: TaskRow) -> ConfirmScreen:
    """`Cancel job 4?` with `Cancel job (y)` / `Keep it (n)`."""
    return ConfirmScreen(
        f"Cancel job {job.id}?",
        f"{job.display_name} · {job.status} · {job.scope_summary}\n"
        "Unfinished items are canceled; partial files are kept for a later job.",
        [Choice("yes", "Cancel job", "y", "error"), Choice("no", "Keep it", "n", "primary")],
    )


def running_text(running: int) -> str:
    """`1 job is running in this app's runner.` (or that none is any more)."""
    if running == 0:
        return "No job is running any more: Stop quits at once."
    jobs = "1 job is" if running == 1 else f"{running} jobs are"
    return f"{jobs} running in this app's runner."


def quit_dialog(running: int) -> ConfirmScreen:
    """Quitting while this app runs jobs: stop them, wait for them, or stay."""
    return ConfirmScreen(
        "Quit catalogsync?",
        running_text(running),
        [
            Choice("stop", "Stop running jobs (they resume at next start)", "s", "warning"),
            Choice("wait", "Quit when they finish", "w", "primary"),
            Choice("stay", "Stay", "escape", key_display="Esc"),
        ],
        stacked=True,
        id="quit-dialog",
    )


def all_jobs_dialog(what: str, jobs: list[TaskRow]) -> ConfirmScreen:
    """`Pause all 3 jobs?` with `Pause all (y)` / `Keep them (n)`."""
    names = ", ".join(f"{j.id} {j.display_name}" for j in jobs[:4])
    more = f" and {len(jobs) - 4} more" if len(jobs) > 4 else ""
    count = "1 job" if len(jobs) == 1 else f"{len(jobs)} jobs"
    return ConfirmScreen(
        f"{what.title()} all ({count})?",
        f"{names}{more}.",
        [
            Choice("yes", f"{what.title()} all", "y", "warning"),
            Choice("no", "Keep them as they are", "n", "primary"),
        ],
    )
